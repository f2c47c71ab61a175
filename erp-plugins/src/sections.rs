//! The top-level sections of a component (or module) binary, found with wasmparser, and the
//! appending of a custom section. Shared by the manifest and the signature.
//!
//! Only the outermost sections count: a nested core module's custom sections belong to that
//! module, and the bytes of a nested module or component are skipped as one section.

use std::ops::Range;

use wasmparser::{Parser, Payload};

/// One top-level section.
#[derive(Debug)]
pub(crate) struct Section<'a> {
    /// Offset of the section's id byte: everything before it precedes the section.
    pub start: usize,
    /// One past the section's last byte.
    pub end: usize,
    /// Name and payload when it is a custom section.
    pub custom: Option<(&'a str, &'a [u8])>,
}

/// The top-level sections of `bytes`, in file order, or why the binary does not parse.
pub(crate) fn top_level(bytes: &[u8]) -> Result<Vec<Section<'_>>, String> {
    let mut sections = Vec::new();
    let mut depth = 0usize;
    // Sections follow each other without gaps, so one starts where the previous one ended; the
    // first starts after the 8-byte preamble.
    let mut previous_end = 8usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| format!("not a WebAssembly binary: {e}"))?;
        if depth == 0
            && let Some((_, range)) = payload.as_section()
        {
            let custom = match &payload {
                Payload::CustomSection(c) => Some((c.name(), c.data())),
                _ => None,
            };
            sections.push(Section {
                start: previous_end,
                end: range.end,
                custom,
            });
            previous_end = range.end;
        }
        match payload {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) if depth > 0 => depth -= 1,
            Payload::End(_) => break,
            _ => {}
        }
    }
    if previous_end != bytes.len() {
        return Err(format!(
            "{} trailing bytes after the last section",
            bytes.len().saturating_sub(previous_end)
        ));
    }
    Ok(sections)
}

/// The payloads of every top-level custom section called `name`, with their byte ranges.
pub(crate) fn custom<'a>(sections: &[Section<'a>], name: &str) -> Vec<(Range<usize>, &'a [u8])> {
    sections
        .iter()
        .filter_map(|s| match s.custom {
            Some((n, data)) if n == name => Some((s.start..s.end, data)),
            _ => None,
        })
        .collect()
}

/// `bytes` with a custom section `name` holding `data` appended at the end.
pub(crate) fn append_custom(bytes: &[u8], name: &str, data: &[u8]) -> Vec<u8> {
    // A custom section has the same encoding in modules and components: id 0, the content size,
    // then the name (size, UTF-8) and the payload.
    let mut content = Vec::with_capacity(name.len() + data.len() + 5);
    leb128(&mut content, name.len());
    content.extend_from_slice(name.as_bytes());
    content.extend_from_slice(data);
    let mut out = Vec::with_capacity(bytes.len() + content.len() + 6);
    out.extend_from_slice(bytes);
    out.push(0);
    leb128(&mut out, content.len());
    out.extend_from_slice(&content);
    out
}

/// Unsigned LEB128, as Wasm encodes sizes.
fn leb128(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// `bytes` without the top-level sections in `ranges` (sorted, non-overlapping).
pub(crate) fn remove(bytes: &[u8], ranges: &[Range<usize>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    for r in ranges {
        out.extend_from_slice(&bytes[at..r.start]);
        at = r.end;
    }
    out.extend_from_slice(&bytes[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest component: the preamble only.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    #[test]
    fn appended_sections_are_found_and_removed() {
        let one = append_custom(EMPTY_COMPONENT, "a", b"first");
        let two = append_custom(&one, "b", b"second");
        let sections = top_level(&two).unwrap();
        assert_eq!(sections.len(), 2);
        assert_eq!(sections[0].start, 8);
        assert_eq!(sections[1].start, one.len());
        assert_eq!(sections[1].end, two.len());
        let b = custom(&sections, "b");
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].1, b"second");
        assert_eq!(remove(&two, &[b[0].0.clone()]), one);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(top_level(b"not wasm").is_err());
        let mut truncated = append_custom(EMPTY_COMPONENT, "a", b"payload");
        truncated.pop();
        assert!(top_level(&truncated).is_err());
    }
}
