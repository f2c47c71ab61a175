//! The facts about Ponto Connect that the sandbox's spec check relies on, in our own compact form:
//! for each response we serve, the type of its body; for each type, its fields, their types and
//! which are required. No descriptions or examples: names, types and formats only.
//!
//! `openapi-facts.json` (beside this folder) is derived from Ibanity's OpenAPI v2 spec by
//! [`derive`]; the spec itself is not in the repository. With the spec present in
//! `../shared/ponto-connect/`, `UPDATE_PONTO_FACTS=1 cargo test -p ponto-sandbox --test openapi`
//! rewrites the file, and `the_facts_agree_with_the_official_spec` checks it has not drifted.
//!
//! Type expressions: `string`, `string/<format>` (`uuid`, `date-time`, ...), `number`, `integer`,
//! `boolean`, `any` (the spec's bare `object`, which its examples fill with strings),
//! `array<T>`, or the name of a type in `types` (the spec's schema name, or `parent.field` for an
//! inline object, `parent.field[]` for an inline array item).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The responses the sandbox serves and the provider reads: `(method, path template, status)`.
pub const RESPONSES: &[(&str, &str, u16)] = &[
    ("get", "/financial-institutions", 200),
    ("get", "/financial-institutions/{id}", 200),
    ("get", "/accounts", 200),
    ("get", "/accounts/{id}", 200),
    ("delete", "/accounts/{id}", 200),
    ("get", "/accounts/{accountId}/transactions", 200),
    ("get", "/accounts/{accountId}/transactions/{id}", 200),
    (
        "post",
        "/accounts/{accountId}/reauthorization-requests",
        201,
    ),
    ("post", "/synchronizations", 201),
    ("get", "/synchronizations/{id}", 200),
    (
        "get",
        "/synchronizations/{synchronizationId}/updated-transactions",
        200,
    ),
    ("get", "/userinfo", 200),
];

const ABOUT: &str = "Fields, types, formats and required names of the Ponto Connect responses the \
sandbox serves, derived from Ibanity's OpenAPI v2 spec by ponto-sandbox/tests/spec_facts (facts \
only, none of the spec's text); regenerate with UPDATE_PONTO_FACTS=1 cargo test -p ponto-sandbox \
--test openapi. Types: string, string/<format>, number, integer, boolean, any, array<T>, or a \
name in types.";

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    /// What this file is and how it is made, so a reader of the JSON alone knows.
    pub about: String,
    /// `"<METHOD> <path template> <status>"` → type expression of the body.
    pub responses: BTreeMap<String, String>,
    pub types: BTreeMap<String, Type>,
}

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Type {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required: Vec<String>,
    pub fields: BTreeMap<String, String>,
}

pub fn response_key(method: &str, path: &str, status: u16) -> String {
    format!("{} {path} {status}", method.to_uppercase())
}

pub fn facts_path() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/openapi-facts.json"
    ))
}

pub fn spec_path() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/ponto-connect/openapi.json"
    ))
}

/// The committed facts; a missing or unreadable file fails the test that needs it.
pub fn load() -> Facts {
    let p = facts_path();
    let text = std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{} is missing ({e}): the spec check needs it", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not facts JSON: {e}", p.display()))
}

/// Derives the facts from the official spec.
pub fn derive(spec: &Value) -> Facts {
    let mut d = Deriver {
        spec,
        types: BTreeMap::new(),
    };
    let mut responses = BTreeMap::new();
    for &(method, path, status) in RESPONSES {
        let schema = &spec["paths"][path][method]["responses"][status.to_string()]["content"]["application/json"]
            ["schema"];
        assert!(
            !schema.is_null(),
            "the spec has no JSON body for {method} {path} {status}"
        );
        let hint = format!("{method} {path} {status}");
        responses.insert(response_key(method, path, status), d.expr(schema, &hint));
    }
    Facts {
        about: ABOUT.into(),
        responses,
        types: d.types,
    }
}

struct Deriver<'a> {
    spec: &'a Value,
    types: BTreeMap<String, Type>,
}

impl Deriver<'_> {
    fn expr(&mut self, schema: &Value, name: &str) -> String {
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            let target = self
                .spec
                .pointer(r.strip_prefix('#').expect("local $ref"))
                .unwrap_or_else(|| panic!("dangling $ref {r}"));
            let named = r.rsplit('/').next().unwrap().to_string();
            return self.expr(target, &named);
        }
        match schema.get("type").and_then(Value::as_str) {
            Some("object") => match schema.get("properties").and_then(Value::as_object) {
                Some(props) => {
                    if !self.types.contains_key(name) {
                        // Reserve the name first: a schema may refer to itself.
                        self.types.insert(name.to_string(), Type::default());
                        let mut ty = Type {
                            required: schema
                                .get("required")
                                .and_then(Value::as_array)
                                .into_iter()
                                .flatten()
                                .filter_map(|r| r.as_str().map(str::to_string))
                                .collect(),
                            fields: BTreeMap::new(),
                        };
                        for (k, v) in props {
                            let e = self.expr(v, &format!("{name}.{k}"));
                            ty.fields.insert(k.clone(), e);
                        }
                        self.types.insert(name.to_string(), ty);
                    }
                    name.to_string()
                }
                None => "any".into(),
            },
            Some("array") => {
                let items = schema.get("items").cloned().unwrap_or(Value::Null);
                let item = if items.is_null() {
                    "any".to_string()
                } else {
                    self.expr(&items, &format!("{name}[]"))
                };
                format!("array<{item}>")
            }
            Some("string") => match schema.get("format").and_then(Value::as_str) {
                Some(f) => format!("string/{f}"),
                None => "string".into(),
            },
            Some(t @ ("number" | "integer" | "boolean")) => t.into(),
            _ => "any".into(),
        }
    }
}
