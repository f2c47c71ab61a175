//! Fills the sandbox's consent page as a user would, ticking every account (other institutions'
//! too, as the guide says), and returns the callback URL the page redirects to. For development
//! tools and tests; a real user consents in a browser.

use std::time::Duration;

/// Fill the consent page at `authorization_url` ticking every account, submit it, and return the
/// callback URL the page redirects to.
pub fn auto_consent(authorization_url: &str) -> Result<String, String> {
    let fail = |what: String| what;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut page = agent.get(authorization_url).call().map_err(|e| {
        fail(format!(
            "cannot open the consent page {authorization_url}: {e}"
        ))
    })?;
    if page.status() != 200 {
        return Err(fail(format!(
            "the consent page answered HTTP {}",
            page.status()
        )));
    }
    let html = page
        .body_mut()
        .read_to_string()
        .map_err(|e| fail(format!("cannot read the consent page: {e}")))?;
    let form = parse_consent_form(&html);
    if form.accounts == 0 {
        return Err(fail("the consent page offers no account to tick".into()));
    }
    let base = url::Url::parse(authorization_url)
        .map_err(|e| fail(format!("bad authorization URL: {e}")))?;
    let action = base
        .join(form.action.as_deref().unwrap_or(base.path()))
        .map_err(|e| fail(format!("bad form action: {e}")))?;
    let answer = agent
        .post(action.as_str())
        .send_form(form.fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|e| fail(format!("cannot submit the consent page: {e}")))?;
    let location = answer
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            fail(format!(
                "the consent page answered HTTP {} without a redirect",
                answer.status()
            ))
        })?;
    base.join(location)
        .map(|u| u.to_string())
        .map_err(|e| fail(format!("bad redirect `{location}`: {e}")))
}

#[derive(Debug, Default, PartialEq)]
pub struct ConsentForm {
    pub action: Option<String>,
    pub fields: Vec<(String, String)>,
    pub accounts: usize,
}

/// The hidden inputs and every account checkbox (ticked) of a consent page.
pub fn parse_consent_form(html: &str) -> ConsentForm {
    let mut form = ConsentForm::default();
    for tag in tags(html, "form") {
        if let Some(a) = attr(tag, "action") {
            form.action = Some(a);
            break;
        }
    }
    for tag in tags(html, "input") {
        let kind = attr(tag, "type")
            .unwrap_or_else(|| "text".into())
            .to_ascii_lowercase();
        let Some(name) = attr(tag, "name") else {
            continue;
        };
        let value = attr(tag, "value").unwrap_or_default();
        match kind.as_str() {
            "hidden" => form.fields.push((name, value)),
            "checkbox" if name == "account" => {
                form.accounts += 1;
                form.fields.push((name, value));
            }
            _ => {}
        }
    }
    form
}

/// The attribute text of every `<name ...>` tag.
fn tags<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
    let lower = html.to_ascii_lowercase();
    let open = format!("<{name}");
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = lower[from..].find(&open) {
        let start = from + i + open.len();
        let next = lower[start..].chars().next();
        if !next.is_some_and(|c| c.is_whitespace() || c == '>' || c == '/') {
            from = start;
            continue;
        }
        let end = html[start..].find('>').map_or(html.len(), |e| start + e);
        out.push(&html[start..end]);
        from = end;
    }
    out
}

/// One attribute's value in a tag's text (quoted or bare), entities decoded.
fn attr(tag: &str, name: &str) -> Option<String> {
    let bytes = tag.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        let key_start = i;
        while i < bytes.len()
            && !bytes[i].is_ascii_whitespace()
            && bytes[i] != b'='
            && bytes[i] != b'>'
        {
            i += 1;
        }
        let key = &tag[key_start..i];
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = None;
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < bytes.len() && (bytes[i] == b'"' || bytes[i] == b'\'') {
                let q = bytes[i];
                let s = i + 1;
                let e = tag[s..].find(q as char).map_or(tag.len(), |e| s + e);
                value = Some(&tag[s..e]);
                i = e + 1;
            } else {
                let s = i;
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
                value = Some(&tag[s..i]);
            }
        }
        if key.eq_ignore_ascii_case(name) {
            return Some(decode_entities(value.unwrap_or("")));
        }
        if key.is_empty() {
            i += 1;
        }
    }
    None
}

fn decode_entities(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consent_form_ticks_every_account_and_keeps_hidden_fields() {
        let html = r#"<html><form method="post" action="/oauth2/auth">
            <input type="hidden" name="state" value="a&amp;b">
            <input type='hidden' name=client_id value=xyz />
            <h2>KBC</h2><input type="checkbox" name="account" value="acc-1">
            <h2>ING</h2><input type="checkbox" name="account" value="acc-2" checked>
            <input type="text" name="note" value="ignored"><input type="submit" value="Allow">
            <inputx name="bogus" value="no">
            </form></html>"#;
        let form = parse_consent_form(html);
        assert_eq!(form.action.as_deref(), Some("/oauth2/auth"));
        assert_eq!(form.accounts, 2);
        assert_eq!(
            form.fields,
            vec![
                ("state".into(), "a&b".into()),
                ("client_id".into(), "xyz".into()),
                ("account".into(), "acc-1".into()),
                ("account".into(), "acc-2".into()),
            ]
        );
    }
}
