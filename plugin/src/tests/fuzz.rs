//! Fuzzing on stable Rust: property tests (proptest) over every parser and mapping that reads
//! what Ponto (or an impostor) sends, and over the host arguments that come back to the plugin.
//!
//! Inputs mix purely random bytes and strings with structured mutations of real pages recorded
//! from the sandbox (`plugin/fuzz-corpus/`, see its README). The properties: never a panic; every
//! failure is a typed `ProviderError` (a malformed response names what, and the field and id when
//! known); valid inputs map exactly (decimals keep their digits, amounts never change value,
//! timestamps keep their instant).
//!
//! `PLUGIN_FUZZ_CASES` sets the total number of cases (default 4,000, a few seconds in debug);
//! `PLUGIN_FUZZ_SEED` picks another deterministic seed. The long run:
//!
//! ```text
//! PLUGIN_FUZZ_CASES=1000000 cargo test --release -p ponto-provider fuzz_long -- --ignored --nocapture
//! ```
//!
//! Both print `fuzz cases: N, panics: P` (and fail unless P and the property failures are 0).

use super::fake_imports::{ACC, BASE, FakeImports, INST};
use crate::bindings::http::{Body, Response};
use crate::bindings::provider::{SyncProgress, SyncRequest};
use crate::bindings::types::{InstitutionFilter, ProviderError};
use crate::client::Api;
use crate::config::{Config, DateField};
use crate::decimal::Decimal;
use crate::jsonapi::{ApiError, Collection, Resource, Single, When};
use crate::keys::{KEY_PENDING, KEY_REFRESH};
use crate::mapping;
use crate::provider::Provider;
use chrono::{Datelike, NaiveDate, TimeZone, Timelike, Utc};
use proptest::prelude::*;
use proptest::test_runner::{
    Config as RunnerConfig, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner,
};
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;
use std::time::Instant;

// ---- corpus ------------------------------------------------------------------------------------

/// The seed corpus: file name → text.
fn corpus() -> &'static BTreeMap<String, String> {
    static CORPUS: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz-corpus");
        let mut out = BTreeMap::new();
        for entry in std::fs::read_dir(dir).expect("plugin/fuzz-corpus exists") {
            let path = entry.expect("corpus entry").path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if name.ends_with(".json") || name.ends_with(".txt") {
                out.insert(name, std::fs::read_to_string(&path).expect("corpus file"));
            }
        }
        assert!(out.len() >= 20, "the seed corpus is missing: {dir}");
        out
    })
}

fn corpus_starting(prefix: &str) -> Vec<&'static str> {
    corpus()
        .iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(_, v)| v.as_str())
        .collect()
}

fn corpus_file(name: &str) -> &'static str {
    corpus().get(name).map(String::as_str).expect(name)
}

/// Every resource of the corpus (collection entries and single documents), by kind.
fn corpus_resources(kind: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for text in corpus().values() {
        let Ok(doc) = serde_json::from_str::<Value>(text) else {
            continue;
        };
        let items = match &doc["data"] {
            Value::Array(a) => a.clone(),
            Value::Object(_) => vec![doc["data"].clone()],
            _ => continue,
        };
        out.extend(items.into_iter().filter(|r| r["type"] == kind));
    }
    assert!(!out.is_empty(), "no {kind} in the corpus");
    out
}

// ---- structured mutations ----------------------------------------------------------------------

/// A JSON value put in place of a node.
#[derive(Debug, Clone)]
enum Leaf {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    /// Number text spliced in verbatim (exponents, 40 digits ... that an f64 cannot carry).
    RawNumber(String),
    EmptyObject,
    EmptyArray,
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Removes the picked member or element.
    Remove(u64),
    /// Replaces the picked node.
    Replace(u64, Leaf),
    /// Repeats the picked array element.
    Duplicate(u64),
    /// Renames the picked member (unknown attribute, wrong case).
    Rename(u64, String),
}

/// Text-level damage after serialisation.
#[derive(Debug, Clone)]
enum ByteOp {
    Truncate(u64),
    Flip(u64, u8),
    Insert(u64, u8),
}

fn interesting_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(" ".to_string()),
        Just("2026-11-24T23:00:00.000Z".to_string()),
        Just("2026-11-24T23:00:00.123456789+14:00".to_string()),
        Just("2026-02-30".to_string()),
        Just("+262143-12-31".to_string()),
        Just("-262144-01-01T00:00:00".to_string()),
        Just("9999-12-31T23:59:59.999Z".to_string()),
        Just("0001-01-01T00:00:00-14:00".to_string()),
        Just("+++090/9337/55493+++".to_string()),
        Just("RF18 5390 0754 7034".to_string()),
        Just("be07 6265 5061 6261".to_string()),
        Just("Europe/Brussels".to_string()),
        Just("Mars/Olympus_Mons".to_string()),
        Just("stable".to_string()),
        Just("beta".to_string()),
        Just("readonly".to_string()),
        Just("NaN".to_string()),
        Just("1e400".to_string()),
        Just("-0.00".to_string()),
        Just("0e2000000000".to_string()),
        Just("https://evil.test/steal".to_string()),
        Just("//evil.test/x".to_string()),
        Just("\u{0}\u{202e}é😀".to_string()),
        "[0-9+\\-.eE ]{0,24}",
        "[0-9TZ:.+\\- ]{0,32}",
        any::<String>(),
    ]
}

fn raw_number() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("1e400".to_string()),
        Just("-1E-19".to_string()),
        Just("0e2000000000".to_string()),
        Just("-0".to_string()),
        Just("123456789012345678901234567890".to_string()),
        Just("1234567890123456789012345678901".to_string()),
        Just("170141183460469231731687303715884105727".to_string()),
        Just("-1e38".to_string()),
        Just("0.000000000000000001".to_string()),
        Just("99999999999999999999.99".to_string()),
        Just("1.5e2".to_string()),
        Just("-100.10".to_string()),
        "-?(0|[1-9][0-9]{0,24})(\\.[0-9]{1,20})?([eE][+-]?[0-9]{1,4})?",
    ]
}

fn leaf() -> impl Strategy<Value = Leaf> {
    prop_oneof![
        2 => Just(Leaf::Null),
        1 => any::<bool>().prop_map(Leaf::Bool),
        1 => any::<i64>().prop_map(Leaf::Int),
        4 => interesting_string().prop_map(Leaf::Str),
        3 => raw_number().prop_map(Leaf::RawNumber),
        1 => Just(Leaf::EmptyObject),
        1 => Just(Leaf::EmptyArray),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => any::<u64>().prop_map(Mutation::Remove),
        6 => (any::<u64>(), leaf()).prop_map(|(p, l)| Mutation::Replace(p, l)),
        1 => any::<u64>().prop_map(Mutation::Duplicate),
        1 => (any::<u64>(), "[a-zA-Z]{1,12}").prop_map(|(p, n)| Mutation::Rename(p, n)),
    ]
}

fn byte_op() -> impl Strategy<Value = ByteOp> {
    prop_oneof![
        any::<u64>().prop_map(ByteOp::Truncate),
        (any::<u64>(), any::<u8>()).prop_map(|(p, b)| ByteOp::Flip(p, b)),
        (any::<u64>(), any::<u8>()).prop_map(|(p, b)| ByteOp::Insert(p, b)),
    ]
}

/// Mutations and (rarely) byte damage to apply to one seed.
#[derive(Debug, Clone)]
struct Damage {
    mutations: Vec<Mutation>,
    bytes: Vec<ByteOp>,
}

fn damage() -> impl Strategy<Value = Damage> {
    (
        proptest::collection::vec(mutation(), 0..5),
        prop_oneof![
            6 => Just(Vec::new()),
            1 => proptest::collection::vec(byte_op(), 1..3),
        ],
    )
        .prop_map(|(mutations, bytes)| Damage { mutations, bytes })
}

#[derive(Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn paths(v: &Value, here: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                here.push(Step::Key(k.clone()));
                out.push(here.clone());
                paths(c, here, out);
                here.pop();
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                here.push(Step::Index(i));
                out.push(here.clone());
                paths(c, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

fn parent_mut<'v>(root: &'v mut Value, path: &[Step]) -> Option<&'v mut Value> {
    let mut v = root;
    for s in path {
        v = match s {
            Step::Key(k) => v.get_mut(k.as_str())?,
            Step::Index(i) => v.get_mut(*i)?,
        };
    }
    Some(v)
}

/// Applies the damage to a JSON document and returns its text.
fn apply(seed: &Value, d: &Damage) -> Vec<u8> {
    let mut doc = seed.clone();
    let mut raws = Vec::new();
    for m in &d.mutations {
        let mut all = Vec::new();
        paths(&doc, &mut Vec::new(), &mut all);
        let pick = |p: u64| -> Option<Vec<Step>> {
            (!all.is_empty()).then(|| all[(p % all.len() as u64) as usize].clone())
        };
        let p = match m {
            Mutation::Remove(p)
            | Mutation::Replace(p, _)
            | Mutation::Duplicate(p)
            | Mutation::Rename(p, _) => *p,
        };
        let Some(path) = pick(p) else { continue };
        let (last, parent_path) = path.split_last().expect("non-empty path");
        let Some(parent) = parent_mut(&mut doc, parent_path) else {
            continue;
        };
        match (m, last, parent) {
            (Mutation::Remove(_), Step::Key(k), Value::Object(o)) => {
                o.remove(k);
            }
            (Mutation::Remove(_), Step::Index(i), Value::Array(a)) => {
                a.remove(*i);
            }
            (Mutation::Duplicate(_), Step::Index(i), Value::Array(a)) => {
                let c = a[*i].clone();
                a.insert(*i, c);
            }
            (Mutation::Rename(_, n), Step::Key(k), Value::Object(o)) => {
                if let Some(c) = o.remove(k) {
                    o.insert(n.clone(), c);
                }
            }
            (Mutation::Replace(_, l), step, parent) => {
                let new = match l {
                    Leaf::Null => Value::Null,
                    Leaf::Bool(b) => Value::Bool(*b),
                    Leaf::Int(i) => Value::from(*i),
                    Leaf::Str(s) => Value::String(s.clone()),
                    Leaf::RawNumber(t) => {
                        raws.push(t.clone());
                        Value::String(format!("@@RAW{}@@", raws.len() - 1))
                    }
                    Leaf::EmptyObject => Value::Object(Default::default()),
                    Leaf::EmptyArray => Value::Array(Vec::new()),
                };
                let slot = match step {
                    Step::Key(k) => parent.get_mut(k.as_str()),
                    Step::Index(i) => parent.get_mut(*i),
                };
                if let Some(slot) = slot {
                    *slot = new;
                }
            }
            _ => {}
        }
    }
    let mut text = doc.to_string();
    for (i, t) in raws.iter().enumerate() {
        text = text.replace(&format!("\"@@RAW{i}@@\""), t);
    }
    let mut bytes = text.into_bytes();
    for op in &d.bytes {
        let at = |p: u64, len: usize| (p % (len as u64 + 1)) as usize;
        match op {
            ByteOp::Truncate(p) => bytes.truncate(at(*p, bytes.len())),
            ByteOp::Flip(p, b) if !bytes.is_empty() => {
                let i = at(*p, bytes.len() - 1);
                bytes[i] ^= b | 1;
            }
            ByteOp::Insert(p, b) => bytes.insert(at(*p, bytes.len()), *b),
            ByteOp::Flip(..) => {}
        }
    }
    bytes
}

// ---- runner ------------------------------------------------------------------------------------

struct Tally {
    /// Cases executed (shrinking steps after a failure included).
    cases: u64,
    panics: u64,
    failures: Vec<String>,
}

fn seed() -> [u8; 32] {
    let n: u64 = std::env::var("PLUGIN_FUZZ_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0x5eed_0007);
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&n.to_le_bytes());
    s
}

/// Runs `cases` cases of one target; a panic is caught and counted, never a crash.
fn target<S: Strategy>(
    tally: &mut Tally,
    name: &str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let config = RunnerConfig {
        cases: cases.max(1),
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..RunnerConfig::default()
    };
    let mut name_seed = seed();
    for (i, b) in name.bytes().enumerate() {
        name_seed[8 + i % 24] ^= b;
    }
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &name_seed));
    let executed = std::cell::Cell::new(0u64);
    let result = runner.run(&strategy, |v| {
        executed.set(executed.get() + 1);
        match std::panic::catch_unwind(AssertUnwindSafe(|| test(v))) {
            Ok(r) => r,
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Err(TestCaseError::fail(format!("PANIC: {msg}")))
            }
        }
    });
    tally.cases += executed.get();
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, value)) => {
            if reason.message().starts_with("PANIC") {
                tally.panics += 1;
            }
            tally
                .failures
                .push(format!("{name}: {reason}\n  minimal input: {value:?}"));
        }
        Err(e) => tally.failures.push(format!("{name}: {e}")),
    }
}

/// Every failure of a provider call must be typed and say what; malformed ones name the kind.
fn check_error(e: &ProviderError) -> Result<(), TestCaseError> {
    let text = e.to_string();
    prop_assert!(!text.trim().is_empty());
    if let ProviderError::MalformedResponse(m) = e {
        prop_assert!(!m.what.is_empty() && !m.reason.is_empty(), "{m:?}");
    }
    Ok(())
}

/// A malformed-response error, the only way a mapping may fail; when the resource's id could be
/// read, the error names it.
fn check_mapping_error(e: &ProviderError, raw: &str) -> Result<(), TestCaseError> {
    let ProviderError::MalformedResponse(m) = e else {
        return Err(TestCaseError::fail(format!(
            "not malformed-response: {e:?}"
        )));
    };
    prop_assert!(!m.what.is_empty() && !m.reason.is_empty());
    let id = serde_json::from_str::<Value>(raw)
        .ok()
        .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_string))
        .filter(|s| !s.is_empty());
    if let (Some(id), Some(field)) = (id, m.field.as_deref())
        && field != "id"
    {
        prop_assert_eq!(m.resource_id.as_deref(), Some(id.as_str()), "{:?}", m);
    }
    Ok(())
}

/// The amount text of a raw resource as Ponto wrote it (number or numeric string).
fn raw_amount(raw: &str) -> Option<Decimal> {
    #[derive(serde::Deserialize)]
    struct R<'a> {
        #[serde(borrow)]
        attributes: BTreeMap<String, &'a RawValue>,
    }
    let r: R<'_> = serde_json::from_str(raw).ok()?;
    let t = r.attributes.get("amount")?.get();
    let t = if t.starts_with('"') {
        serde_json::from_str::<String>(t).ok()?
    } else {
        t.to_string()
    };
    Decimal::parse(&t).ok()
}

// ---- targets -----------------------------------------------------------------------------------

fn decimals(t: &mut Tally, n: u32) {
    target(
        t,
        "decimal text",
        n,
        prop_oneof![
            raw_number(),
            interesting_string(),
            "[0-9]{0,3}[eE][0-9]{8,10}"
        ],
        |s| {
            if let Ok(d) = Decimal::parse(&s) {
                let text = d.to_string();
                // Canonical: the printed form parses to the same value and prints the same.
                let again = Decimal::parse(&text).map_err(TestCaseError::fail)?;
                prop_assert_eq!(again, d);
                prop_assert_eq!(again.to_string(), text);
            }
            Ok(())
        },
    );
    // Generated canonical texts keep every digit; sums are exact against i128 arithmetic.
    let canonical = (
        any::<bool>(),
        "(0|[1-9][0-9]{0,11})",
        proptest::option::of("[0-9]{1,6}"),
        any::<i64>(),
        0u32..7,
    );
    target(
        t,
        "decimal exact",
        n,
        canonical,
        |(neg, int, frac, m2, s2)| {
            let mut text = String::new();
            let zero = int == "0" && frac.as_deref().is_none_or(|f| f.bytes().all(|b| b == b'0'));
            if neg && !zero {
                text.push('-');
            }
            text.push_str(&int);
            if let Some(f) = &frac {
                text.push('.');
                text.push_str(f);
            }
            let a = Decimal::parse(&text).map_err(TestCaseError::fail)?;
            prop_assert_eq!(a.to_string(), text.clone());
            // b = m2 / 10^s2, built as text.
            let b_text = {
                let digits = format!("{:0>w$}", m2.unsigned_abs(), w = s2 as usize + 1);
                let (i, f) = digits.split_at(digits.len() - s2 as usize);
                let sign = if m2 < 0 { "-" } else { "" };
                if s2 == 0 {
                    format!("{sign}{i}")
                } else {
                    format!("{sign}{i}.{f}")
                }
            };
            let b = Decimal::parse(&b_text).map_err(TestCaseError::fail)?;
            let sum = a
                .checked_add(b)
                .ok_or_else(|| TestCaseError::fail("overflow"))?;
            // Reference: both as integers at the common scale.
            let sa = frac.as_ref().map_or(0, |f| f.len() as u32);
            let scale = sa.max(s2);
            let ma: i128 = format!("{int}{}", frac.clone().unwrap_or_default())
                .parse::<i128>()
                .unwrap()
                * if neg { -1 } else { 1 }
                * 10i128.pow(scale - sa);
            let mb = i128::from(m2) * 10i128.pow(scale - s2);
            let want = Decimal::parse(&format!("{}e-{scale}", ma + mb)).unwrap();
            prop_assert_eq!(sum.to_string(), want.to_string());
            prop_assert!(
                sum.checked_sub(b)
                    .unwrap()
                    .checked_sub(a)
                    .unwrap()
                    .is_zero()
            );
            Ok(())
        },
    );
}

fn timestamps(t: &mut Tally, n: u32) {
    let zones = [
        chrono_tz::Europe::Brussels,
        chrono_tz::America::New_York,
        chrono_tz::Asia::Tokyo,
        chrono_tz::Pacific::Kiritimati,
        chrono_tz::Etc::GMTPlus12,
    ];
    target(
        t,
        "timestamp text",
        n,
        prop_oneof![
            interesting_string(),
            "[+-]?[0-9]{4,6}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,12})?(Z|[+-][0-9]{2}:[0-9]{2})?)?",
        ],
        |s| {
            if let Some(w) = When::parse(&s) {
                for tz in zones {
                    let _ = w.local_date(tz).to_string();
                }
                // The contract's timestamp keeps the instant (to the millisecond).
                let back = When::parse(&w.to_timestamp()).ok_or_else(|| {
                    TestCaseError::fail(format!("{} does not parse", w.to_timestamp()))
                })?;
                let i = w.instant();
                let ms = i
                    .with_nanosecond(i.nanosecond() / 1_000_000 * 1_000_000)
                    .unwrap();
                prop_assert_eq!(back.instant(), ms);
            }
            Ok(())
        },
    );
    // Generated instants with 0–9 fraction digits and any offset parse to exactly that instant.
    let parts = (
        1i32..=9999,
        1u32..=12,
        1u32..=28,
        0u32..24,
        0u32..60,
        0u32..60,
        "[0-9]{0,9}",
        -14 * 60i32..=14 * 60,
        any::<bool>(),
    );
    target(
        t,
        "timestamp exact",
        n,
        parts,
        |(y, mo, d, h, mi, s, frac, off, zulu)| {
            let nanos: u32 = if frac.is_empty() {
                0
            } else {
                format!("{frac:0<9}").parse().unwrap()
            };
            let local = NaiveDate::from_ymd_opt(y, mo, d)
                .unwrap()
                .and_hms_nano_opt(h, mi, s, nanos)
                .unwrap();
            let off = if zulu { 0 } else { off };
            let zone = if zulu {
                "Z".to_string()
            } else {
                format!(
                    "{}{:02}:{:02}",
                    if off < 0 { '-' } else { '+' },
                    off.abs() / 60,
                    off.abs() % 60
                )
            };
            let dot = if frac.is_empty() { "" } else { "." };
            let text = format!("{}{dot}{frac}{zone}", local.format("%Y-%m-%dT%H:%M:%S"));
            let want = local - chrono::Duration::minutes(i64::from(off));
            match When::parse(&text) {
                Some(When::Instant(got)) => prop_assert_eq!(got, want.and_utc(), "{}", text),
                other if (1..=9999).contains(&want.year()) => {
                    return Err(TestCaseError::fail(format!("{text} gave {other:?}")));
                }
                _ => {}
            }
            Ok(())
        },
    );
}

fn references(t: &mut Tally, n: u32) {
    target(t, "reference text", n, interesting_string(), |s| {
        if let Some(d) = mapping::belgian_structured(&s) {
            prop_assert!(d.len() == 12 && d.bytes().all(|b| b.is_ascii_digit()));
            let formatted = mapping::format_belgian(&d);
            prop_assert_eq!(mapping::belgian_structured(&formatted), Some(d));
        }
        if let Some(r) = mapping::iso_creditor_reference(&s) {
            prop_assert_eq!(mapping::iso_creditor_reference(&r), Some(r.clone()));
        }
        let iban = mapping::normalise_iban(&s);
        prop_assert!(!iban.chars().any(char::is_whitespace));
        prop_assert_eq!(mapping::normalise_iban(&iban), iban.clone());
        let _ = mapping::normalise_reference(&s, "BBAN");
        Ok(())
    });
    // Valid structured communications are recognised in every written form; a wrong check
    // digit never is.
    target(
        t,
        "structured communication",
        n,
        (0u64..10_000_000_000, 0usize..4, 1u64..97),
        |(base, form, wrong)| {
            let check = match base % 97 {
                0 => 97,
                r => r,
            };
            let digits = format!("{base:010}{check:02}");
            let written = match form {
                0 => digits.clone(),
                1 => mapping::format_belgian(&digits),
                2 => format!("***{}/{}/{}***", &digits[..3], &digits[3..7], &digits[7..]),
                _ => format!(" {} {} {} ", &digits[..3], &digits[3..7], &digits[7..]),
            };
            prop_assert_eq!(mapping::belgian_structured(&written), Some(digits.clone()));
            let bad = format!("{base:010}{:02}", (check + wrong - 1) % 97 + 1);
            if bad != digits {
                prop_assert_eq!(mapping::belgian_structured(&bad), None);
            }
            Ok(())
        },
    );
}

fn envelopes_and_urls(t: &mut Tally, n: u32) {
    let docs: Vec<Value> = corpus()
        .values()
        .filter_map(|s| serde_json::from_str(s).ok())
        .collect();
    let count = docs.len();
    let input = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        (0..count, damage()).prop_map(move |(i, d)| apply(&docs[i], &d)),
    ];
    let f = FakeImports::new();
    let api = Api::new(&f, Config::load(&f).unwrap());
    target(
        t,
        "envelopes and error bodies",
        n,
        (input, 100u16..600),
        |(body, status)| {
            let _ = ApiError::parse(&body);
            if let Ok(c) = serde_json::from_slice::<Collection>(&body) {
                for r in &c.data {
                    if let Ok(r) = Resource::parse(r, "x") {
                        let _ = (
                            r.require_id("x"),
                            r.relationship_id("account"),
                            r.meta_str("a"),
                        );
                    }
                }
            }
            if let Ok(s) = serde_json::from_slice::<Single>(&body) {
                let _ = Resource::parse(&s.data, "x");
            }
            let resp = Response {
                status,
                headers: vec![("retry-after".into(), String::from_utf8_lossy(&body).into())],
                body: Body::from_bytes(body),
            };
            check_error(&api.error_from(&resp, "token"))?;
            check_error(&api.error_from(&resp, "accounts"))?;
            Ok(())
        },
    );
    let api_origin = crate::url::origin(BASE).unwrap();
    target(t, "urls", n, interesting_string(), |s| {
        let _ = crate::url::query_pairs(&s);
        let _ = crate::url::encode(&s);
        match api.check_next(&s, "transactions") {
            // A followed link is always on the API's origin.
            Ok(u) => prop_assert_eq!(crate::url::origin(&u), Some(api_origin.clone())),
            Err(e) => check_mapping_error(&e, "{}")?,
        }
        Ok(())
    });
}

fn mappings(t: &mut Tally, n: u32) {
    let kinds = [
        "transaction",
        "pendingTransaction",
        "account",
        "financialInstitution",
    ];
    let seeds: Vec<(usize, Value)> = kinds
        .iter()
        .enumerate()
        .flat_map(|(k, kind)| corpus_resources(kind).into_iter().map(move |v| (k, v)))
        .collect();
    let count = seeds.len();
    let strategy = prop_oneof![
        9 => (0..count, damage()),
        1 => (0..count, Just(Damage { mutations: Vec::new(), bytes: Vec::new() })),
    ];
    let tz = chrono_tz::Europe::Brussels;
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
    target(t, "resource mapping", n, strategy, |(i, d)| {
        let (kind, seed) = &seeds[i];
        let bytes = apply(seed, &d);
        let Ok(text) = String::from_utf8(bytes) else {
            return Ok(());
        };
        // A resource that is not JSON fails at the page level (covered by the sync target).
        let Ok(raw) = RawValue::from_string(text.clone()) else {
            return Ok(());
        };
        let unmutated = d.mutations.is_empty() && d.bytes.is_empty();
        match kinds[*kind] {
            "transaction" => {
                for field in [DateField::Execution, DateField::Value] {
                    match mapping::transaction(&raw, tz, field) {
                        Ok(m) => {
                            prop_assert_eq!(&m.line.raw_json, &text);
                            // Amounts never change value, and keep their digits.
                            let want = raw_amount(&text)
                                .ok_or_else(|| TestCaseError::fail("mapped without amount"))?;
                            prop_assert_eq!(m.amount, want);
                            prop_assert_eq!(&m.line.amount, &want.to_string());
                            prop_assert!(
                                NaiveDate::parse_from_str(&m.line.booking_date, "%Y-%m-%d").is_ok()
                            );
                            if m.line.structured_reference {
                                let r = &m.line.payment_reference;
                                prop_assert!(
                                    mapping::belgian_structured(r).is_some()
                                        || mapping::iso_creditor_reference(r).is_some(),
                                    "{}",
                                    r
                                );
                            }
                        }
                        Err(e) => {
                            prop_assert!(!(unmutated && field == DateField::Execution), "{e}");
                            check_mapping_error(&e, &text)?
                        }
                    }
                }
            }
            "pendingTransaction" => match mapping::pending(&raw, tz) {
                Ok(p) => {
                    let want = raw_amount(&text).ok_or_else(|| TestCaseError::fail("amount"))?;
                    prop_assert_eq!(&p.amount, &want.to_string());
                }
                Err(e) => {
                    prop_assert!(!unmutated, "{e}");
                    check_mapping_error(&e, &text)?
                }
            },
            "account" => {
                let r = match Resource::parse(&raw, "account") {
                    Ok(r) => r,
                    Err(e) => return check_mapping_error(&e, &text),
                };
                match mapping::account(&r, tz, now) {
                    Ok(a) => {
                        prop_assert!(!a.id.is_empty() && !a.institution_id.is_empty());
                        if let Some(b) = &a.current_balance {
                            prop_assert!(Decimal::parse(&b.amount).is_ok());
                        }
                    }
                    Err(e) => {
                        prop_assert!(!unmutated, "{e}");
                        check_mapping_error(&e, &text)?
                    }
                }
            }
            _ => match mapping::institution(&raw) {
                Ok(i) => prop_assert!(mapping::time_zone(&i.time_zone).is_some()),
                Err(e) => {
                    prop_assert!(!unmutated, "{e}");
                    check_mapping_error(&e, &text)?
                }
            },
        }
        Ok(())
    });
}

fn answer(status: u16, body: Vec<u8>) -> Result<Response, crate::bindings::http::HttpError> {
    Ok(Response {
        status,
        headers: vec![
            ("content-type".into(), "application/vnd.api+json".into()),
            ("ibanity-request-id".into(), "fuzz-request".into()),
        ],
        body: Body::from_bytes(body),
    })
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        12 => Just(200u16),
        1 => Just(400u16),
        1 => Just(401u16),
        1 => Just(404u16),
        1 => Just(429u16),
        1 => Just(500u16),
        1 => 100u16..600,
    ]
}

fn tokens(t: &mut Tally, n: u32) {
    let seeds: Vec<Value> = ["token-response.json", "token-response-refresh.json"]
        .iter()
        .chain(&["error-oauth-invalid-grant.json", "error-unauthorized.json"])
        .map(|f| serde_json::from_str(corpus_file(f)).unwrap())
        .collect();
    let count = seeds.len();
    let stored = prop_oneof![
        Just(None),
        Just(Some(
            r#"{"token":"access-0","expiresAt":"2020-01-01T00:00:00Z"}"#.to_string()
        )),
        interesting_string().prop_map(Some),
    ];
    let strategy = (0..count, damage(), status(), stored);
    target(
        t,
        "token responses",
        n,
        strategy,
        |(i, d, status, stored)| {
            let f = FakeImports::new();
            f.connected();
            match &stored {
                Some(s) => f.store.map().insert("oauth/access-token".into(), s.clone()),
                None => f.store.map().remove("oauth/access-token"),
            };
            let body = apply(&seeds[i], &d);
            // Read as leniently as the plugin does (other members skipped unread), so that a `1e400`
            // or a broken byte elsewhere does not hide the tokens from the oracle.
            #[derive(serde::Deserialize)]
            struct Sent {
                access_token: Option<String>,
                refresh_token: Option<String>,
            }
            let answered: Option<Value> = serde_json::from_slice::<Sent>(&body)
            .ok()
            .map(|s| serde_json::json!({"access_token": s.access_token, "refresh_token": s.refresh_token}));
            f.on("POST", "/oauth2/token", vec![answer(status, body)]);
            let api = Api::new(&f, Config::load(&f).unwrap());
            match api.access_token() {
                Ok(tok) => {
                    // A rotated refresh token is the one Ponto sent, stored before use.
                    let stored = f.store.map().get(KEY_REFRESH).cloned();
                    if stored.as_deref() != Some("refresh-0") {
                        let sent = answered
                            .as_ref()
                            .and_then(|v| v.get("refresh_token"))
                            .and_then(Value::as_str);
                        prop_assert_eq!(stored.as_deref(), sent);
                    }
                    // The stored access token had expired: the token is the one just answered.
                    let sent = answered
                        .as_ref()
                        .and_then(|v| v.get("access_token"))
                        .and_then(Value::as_str);
                    prop_assert_eq!(Some(tok.as_str()), sent);
                }
                Err(e) => {
                    check_error(&e)?;
                    // Bad input changes nothing stored.
                    let kept = f.store.map().get(KEY_REFRESH).cloned();
                    prop_assert_eq!(kept.as_deref(), Some("refresh-0"));
                }
            }
            Ok(())
        },
    );
}

fn connects(t: &mut Tally, n: u32) {
    let docs = |name: &str| -> Value { serde_json::from_str(corpus_file(name)).unwrap() };
    let mut accounts = docs("accounts-page.json");
    for a in accounts["data"].as_array_mut().unwrap() {
        a["relationships"]["financialInstitution"]["data"]["id"] = Value::from(INST);
    }
    accounts["links"] = serde_json::json!({});
    let mut institution = docs("institution.json");
    institution["data"]["id"] = Value::from(INST);
    let token = docs("token-response.json");
    let userinfo = docs("userinfo.json");
    let callback = prop_oneof![
        3 => (proptest::option::of("[A-Za-z0-9._~%+-]{0,40}"), proptest::collection::vec(("[a-z_]{1,8}", interesting_string()), 0..3))
            .prop_map(|(code, extra)| (true, code, extra)),
        1 => interesting_string().prop_map(|s| (false, Some(s), Vec::new())),
    ];
    let strategy = (callback, (damage(), status()), damage(), damage(), damage());
    target(
        t,
        "connect callback",
        n,
        strategy,
        |((well_formed, code, extra), (dt, st), du, da, di)| {
            let f = FakeImports::new();
            f.on(
                "GET",
                &format!("/financial-institutions/{INST}"),
                vec![answer(200, apply(&institution, &di))],
            );
            let begun = Provider::new(&f)
                .begin_connect(INST, "https://erp.example.test/cb")
                .map_err(|e| TestCaseError::fail(e.to_string()));
            let Ok(start) = begun else {
                // A damaged institution can refuse begin-connect: typed, nothing stored.
                prop_assert!(!f.store.map().contains_key(KEY_PENDING));
                return Ok(());
            };
            f.on(
                "POST",
                "/oauth2/token",
                vec![answer(st, apply(&token, &dt))],
            );
            f.on("GET", "/userinfo", vec![answer(200, apply(&userinfo, &du))]);
            f.on(
                "GET",
                "/accounts?page[limit]=100",
                vec![answer(200, apply(&accounts, &da))],
            );
            let url = if well_formed {
                let mut pairs: Vec<(String, String)> = vec![("state".into(), start.state.clone())];
                if let Some(c) = code {
                    pairs.push(("code".into(), c));
                }
                pairs.extend(extra);
                let refs: Vec<(&str, &str)> = pairs
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                format!("https://erp.example.test/cb?{}", crate::url::form(&refs))
            } else {
                code.unwrap_or_default()
            };
            match Provider::new(&f).complete_connect(&url) {
                Ok(c) => {
                    prop_assert!(c.accounts.iter().all(|a| a.institution_id == INST));
                    prop_assert!(f.store.map().contains_key(KEY_REFRESH));
                }
                Err(e) => {
                    check_error(&e)?;
                    if matches!(e, ProviderError::StateMismatch(_)) {
                        // A forged callback does not cancel the genuine attempt.
                        prop_assert!(f.store.map().contains_key(KEY_PENDING));
                        prop_assert!(!f.store.map().contains_key(KEY_REFRESH));
                    }
                }
            }
            Ok(())
        },
    );
    // Institution listing with damaged pages.
    let mut pages = docs("institutions-page.json");
    pages["links"] = serde_json::json!({});
    target(t, "institution list", n / 4, damage(), |d| {
        let f = FakeImports::new();
        f.on(
            "GET",
            "/financial-institutions?page[limit]=100",
            vec![answer(200, apply(&pages, &d))],
        );
        match Provider::new(&f).list_institutions(&InstitutionFilter::default()) {
            Ok(list) => prop_assert!(list.iter().all(|i| !i.id.is_empty())),
            Err(e) => check_error(&e)?,
        }
        Ok(())
    });
}

/// Where a page's `links.next` leads.
#[derive(Debug, Clone)]
enum Next {
    Following,
    None,
    Same,
    Back(usize),
    Foreign,
    Relative,
    Text(String),
}

fn next_kind() -> impl Strategy<Value = Next> {
    prop_oneof![
        12 => Just(Next::Following),
        1 => Just(Next::None),
        1 => Just(Next::Same),
        2 => (0usize..8).prop_map(Next::Back),
        1 => Just(Next::Foreign),
        1 => Just(Next::Relative),
        1 => interesting_string().prop_map(Next::Text),
    ]
}

#[derive(Debug, Clone)]
struct SyncCase {
    account: Damage,
    pages: Vec<(usize, Damage, Next, u16)>,
    pending: (usize, Damage),
    max_lines: u32,
    page_size: u32,
    grouping: usize,
    value_dates: bool,
    state: Option<String>,
    cursor_junk: Option<String>,
}

fn syncs(t: &mut Tally, n: u32) {
    let tx_pages: Vec<Value> = corpus_starting("transactions-")
        .iter()
        .chain(&corpus_starting("updated-transactions"))
        .map(|s| serde_json::from_str(s).unwrap())
        .collect();
    let pending_pages: Vec<Value> = corpus_starting("pending-")
        .iter()
        .map(|s| serde_json::from_str(s).unwrap())
        .collect();
    let mut account: Value = serde_json::from_str(corpus_file("account-0.json")).unwrap();
    account["data"]["id"] = Value::from(ACC);
    account["data"]["relationships"]["financialInstitution"]["data"]["id"] = Value::from(INST);
    let mut institution: Value = serde_json::from_str(corpus_file("institution.json")).unwrap();
    institution["data"]["id"] = Value::from(INST);
    let (np, npp) = (tx_pages.len(), pending_pages.len());
    let state = prop_oneof![
        4 => Just(None),
        1 => Just(Some(r#"{"watermark":"2026-11-20","anchor":{"date":"2026-11-13","balance":"100.00"},"synced_at":null}"#.to_string())),
        1 => Just(Some(r#"{"watermark":"-262144-01-01","anchor":null,"synced_at":null}"#.to_string())),
        1 => interesting_string().prop_map(Some),
    ];
    let strategy = (
        damage(),
        proptest::collection::vec((0..np, damage(), next_kind(), status()), 1..6),
        (0..npp, damage()),
        1u32..40,
        1u32..=100,
        0usize..4,
        any::<bool>(),
        state,
        prop_oneof![8 => Just(None), 1 => interesting_string().prop_map(Some)],
    )
        .prop_map(
            |(
                account,
                pages,
                pending,
                max_lines,
                page_size,
                grouping,
                value_dates,
                state,
                junk,
            )| {
                SyncCase {
                    account,
                    pages,
                    pending,
                    max_lines,
                    page_size,
                    grouping,
                    value_dates,
                    state,
                    cursor_junk: junk,
                }
            },
        );
    target(t, "sync paging", n, strategy, |c| {
        let f = FakeImports::new();
        f.connected();
        f.set_config("page-size", &c.page_size.to_string());
        f.set_config(
            "statement-grouping",
            ["day", "week", "month", "sync"][c.grouping],
        );
        if c.value_dates {
            f.set_config("date-field", "value");
        }
        f.on(
            "GET",
            &format!("/accounts/{ACC}"),
            vec![answer(200, apply(&account, &c.account))],
        );
        f.on_json(
            "GET",
            &format!("/financial-institutions/{INST}"),
            institution.clone(),
        );
        let limit = c.page_size.min(c.max_lines).max(1);
        let path = |i: usize| {
            if i == 0 {
                format!("/accounts/{ACC}/transactions?page[limit]={limit}")
            } else {
                format!("/accounts/{ACC}/transactions?page[after]=p{i}&page[limit]={limit}")
            }
        };
        let mut total = 0usize;
        for (i, (seed, d, next, st)) in c.pages.iter().enumerate() {
            let mut page = tx_pages[*seed].clone();
            total += page["data"].as_array().map_or(0, Vec::len);
            let link = match next {
                Next::Following if i + 1 < c.pages.len() => Some(format!("{BASE}{}", path(i + 1))),
                Next::Following | Next::None => None,
                Next::Same => Some(format!("{BASE}{}", path(i))),
                Next::Back(k) => Some(format!("{BASE}{}", path(k % (i + 1)))),
                Next::Foreign => Some(format!("https://evil.test{}", path(i + 1))),
                Next::Relative => Some(format!("/ponto-connect{}", path(i + 1))),
                Next::Text(s) => Some(s.clone()),
            };
            page["links"] = match link {
                Some(l) => serde_json::json!({ "next": l }),
                None => serde_json::json!({}),
            };
            f.on("GET", &path(i), vec![answer(*st, apply(&page, d))]);
        }
        let (pi, pd) = &c.pending;
        let mut pending = pending_pages[*pi].clone();
        pending["links"] = serde_json::json!({});
        f.on(
            "GET",
            &format!("/accounts/{ACC}/pending-transactions?page[limit]=100"),
            vec![answer(200, apply(&pending, pd))],
        );
        let p = Provider::new(&f);
        let mut cursor = c.cursor_junk.clone();
        let mut lines = 0usize;
        for call in 0.. {
            // Each call reads at least one page: a sync that does not end is a loop.
            prop_assert!(call <= c.pages.len() + 4, "the sync does not end");
            let req = SyncRequest {
                account_id: ACC.into(),
                cursor: cursor.clone(),
                state: c.state.clone(),
                customer_ip: None,
                since: None,
                max_lines: c.max_lines,
            };
            let batch = match p.sync(&req) {
                Ok(b) => b,
                Err(e) => {
                    check_error(&e)?;
                    if cursor.is_some() && call == 0 {
                        prop_assert!(matches!(e, ProviderError::InvalidArgument(_)), "{e:?}");
                    }
                    return Ok(());
                }
            };
            for l in batch.lines.iter().chain(&batch.updated_lines) {
                let want = raw_amount(&l.raw_json).ok_or_else(|| TestCaseError::fail("amount"))?;
                prop_assert_eq!(&l.amount, &want.to_string());
                prop_assert!(!l.statement_key.is_empty());
            }
            for s in &batch.statements {
                // Balances are sums and may pass the 30 digits of one amount: read them as the
                // cursor is read.
                let stored = |t: &str| {
                    serde_json::from_value::<Decimal>(Value::String(t.to_string()))
                        .map_err(|e| TestCaseError::fail(e.to_string()))
                };
                let (start, end) = (stored(&s.balance_start)?, stored(&s.balance_end)?);
                let sum = batch
                    .lines
                    .iter()
                    .filter(|l| l.statement_key == s.key)
                    .try_fold(Decimal::ZERO, |acc, l| {
                        acc.checked_add(Decimal::parse(&l.amount).ok()?)
                    });
                // Within one batch, a statement holding every line of this batch chains.
                if call == 0
                    && matches!(batch.progress, SyncProgress::Done(_))
                    && let Some(sum) = sum
                {
                    prop_assert!(
                        end.checked_sub(start)
                            .unwrap()
                            .checked_sub(sum)
                            .unwrap()
                            .is_zero()
                    );
                }
            }
            lines += batch.lines.len();
            prop_assert!(lines <= total * 2 + 1, "more lines than the pages hold");
            match batch.progress {
                SyncProgress::More(next) => cursor = Some(next),
                SyncProgress::Done(_) => return Ok(()),
            }
        }
        Ok(())
    });
}

fn run_all(total: u64) -> Tally {
    let mut t = Tally {
        cases: 0,
        panics: 0,
        failures: Vec::new(),
    };
    // Shares of the total, by cost and by how much input each parser meets.
    let share = |pct: u64| u32::try_from(total * pct / 100).unwrap_or(u32::MAX).max(1);
    decimals(&mut t, share(7));
    timestamps(&mut t, share(7));
    references(&mut t, share(6));
    envelopes_and_urls(&mut t, share(8));
    mappings(&mut t, share(28));
    tokens(&mut t, share(8));
    connects(&mut t, share(8));
    syncs(&mut t, share(14));
    t
}

fn report(total: u64) {
    let started = Instant::now();
    let t = run_all(total);
    println!(
        "fuzz cases: {}, panics: {} ({} property failures, {:.1} s)",
        t.cases,
        t.panics,
        t.failures.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(t.failures.is_empty(), "{}", t.failures.join("\n\n"));
}

fn cases_from_env(default: u64) -> u64 {
    std::env::var("PLUGIN_FUZZ_CASES")
        .ok()
        .and_then(|s| s.trim().replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// The quick run of every `cargo test`.
#[test]
fn fuzz_parsers_and_mapping() {
    report(cases_from_env(4_000));
}

/// The long run: at least 1,000,000 cases (release build recommended).
#[test]
#[ignore = "long: run with --release -- --ignored"]
fn fuzz_long() {
    report(cases_from_env(1_000_000).max(1_000_000));
}

/// The recorded pages, undamaged, map exactly: every transaction once, amounts as written.
#[test]
fn corpus_pages_sync_exactly() {
    let f = FakeImports::new();
    f.connected();
    let mut account: Value = serde_json::from_str(corpus_file("account-0.json")).unwrap();
    account["data"]["id"] = Value::from(ACC);
    account["data"]["relationships"]["financialInstitution"]["data"]["id"] = Value::from(INST);
    f.on_json("GET", &format!("/accounts/{ACC}"), account);
    let mut institution: Value = serde_json::from_str(corpus_file("institution.json")).unwrap();
    institution["data"]["id"] = Value::from(INST);
    f.on_json(
        "GET",
        &format!("/financial-institutions/{INST}"),
        institution,
    );
    let mut want = Vec::new();
    for (i, name) in ["transactions-0-page1.json", "transactions-0-page2.json"]
        .iter()
        .enumerate()
    {
        let mut page: Value = serde_json::from_str(corpus_file(name)).unwrap();
        for r in page["data"].as_array().unwrap() {
            want.push((r["id"].as_str().unwrap().to_string(), r.to_string()));
        }
        page["links"] = if i == 0 {
            serde_json::json!({"next": format!("{BASE}/accounts/{ACC}/transactions?page[after]=p1&page[limit]=100")})
        } else {
            serde_json::json!({})
        };
        let path = if i == 0 {
            format!("/accounts/{ACC}/transactions?page[limit]=100")
        } else {
            format!("/accounts/{ACC}/transactions?page[after]=p1&page[limit]=100")
        };
        f.on(
            "GET",
            &path,
            vec![answer(200, page.to_string().into_bytes())],
        );
    }
    let batch = Provider::new(&f)
        .sync(&SyncRequest {
            account_id: ACC.into(),
            max_lines: 1000,
            ..SyncRequest::default()
        })
        .unwrap();
    assert!(matches!(batch.progress, SyncProgress::Done(_)));
    let got: Vec<(String, String)> = batch
        .lines
        .iter()
        .map(|l| (l.transaction_id.clone(), l.amount.clone()))
        .collect();
    assert_eq!(got.len(), want.len());
    for ((id, amount), (want_id, raw)) in got.iter().zip(&want) {
        assert_eq!(id, want_id);
        assert_eq!(
            Some(Decimal::parse(amount).unwrap()),
            raw_amount(raw),
            "{raw}"
        );
    }
}

/// The corpus's own dates are ordinary: guards the year bound of `When::parse`.
#[test]
fn corpus_dates_parse() {
    for r in corpus_resources("transaction") {
        let d = r["attributes"]["executionDate"].as_str().unwrap();
        let w = When::parse(d).unwrap();
        assert!((2000..2100).contains(&w.instant().year()), "{d}");
    }
    assert_eq!(When::parse("+262143-12-31"), None);
    assert_eq!(When::parse("0000-01-01"), None);
    assert!(When::parse("9999-12-31T23:59:59Z").is_some());
}

/// A next link back to an earlier page (a loop of two) ends the sync with a typed error instead
/// of handing the host the same lines forever; the lines already handed over stay exact.
#[test]
fn paging_loop_in_sync_is_malformed() {
    let f = FakeImports::new();
    f.connected();
    let mut account: Value = serde_json::from_str(corpus_file("account-0.json")).unwrap();
    account["data"]["id"] = Value::from(ACC);
    account["data"]["relationships"]["financialInstitution"]["data"]["id"] = Value::from(INST);
    f.on_json("GET", &format!("/accounts/{ACC}"), account);
    let mut institution: Value = serde_json::from_str(corpus_file("institution.json")).unwrap();
    institution["data"]["id"] = Value::from(INST);
    f.on_json(
        "GET",
        &format!("/financial-institutions/{INST}"),
        institution,
    );
    let first = format!("/accounts/{ACC}/transactions?page[limit]=5");
    let second = format!("/accounts/{ACC}/transactions?page[after]=p1&page[limit]=5");
    for (path, name, next) in [
        (&first, "transactions-0-page1.json", &second),
        (&second, "transactions-0-page2.json", &first),
    ] {
        let mut page: Value = serde_json::from_str(corpus_file(name)).unwrap();
        page["links"] = serde_json::json!({ "next": format!("{BASE}{next}") });
        f.on(
            "GET",
            path,
            vec![answer(200, page.to_string().into_bytes())],
        );
    }
    let p = Provider::new(&f);
    let mut cursor = None;
    let mut error = None;
    for _ in 0..10 {
        let req = SyncRequest {
            account_id: ACC.into(),
            cursor: cursor.clone(),
            max_lines: 5,
            ..SyncRequest::default()
        };
        match p.sync(&req) {
            Ok(b) => match b.progress {
                SyncProgress::More(c) => cursor = Some(c),
                SyncProgress::Done(_) => panic!("a looping walk cannot finish"),
            },
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    match error {
        Some(ProviderError::MalformedResponse(m)) => {
            assert_eq!(m.field.as_deref(), Some("links.next"));
            assert!(m.reason.contains("loop"), "{}", m.reason);
        }
        other => panic!("{other:?}"),
    }
    // Two pages read, then the loop was seen before the first page was read again.
    assert_eq!(
        f.calls()
            .iter()
            .filter(|c| c.contains("/transactions"))
            .count(),
        2
    );
}

/// Institution pages A → B → A: a typed error after two requests, not 10,000.
#[test]
fn paging_loop_in_a_listing_is_malformed() {
    let f = FakeImports::new();
    let mut page: Value = serde_json::from_str(corpus_file("institutions-page.json")).unwrap();
    let a = "/financial-institutions?page[limit]=100";
    let b = "/financial-institutions?page[after]=x&page[limit]=100";
    for (path, next) in [(a, b), (b, a)] {
        page["links"] = serde_json::json!({ "next": format!("{BASE}{next}") });
        f.on(
            "GET",
            path,
            vec![answer(200, page.to_string().into_bytes())],
        );
    }
    match Provider::new(&f).list_institutions(&InstitutionFilter::default()) {
        Err(ProviderError::MalformedResponse(m)) => {
            assert_eq!(m.field.as_deref(), Some("links.next"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(f.requests.borrow().len(), 2);
}
