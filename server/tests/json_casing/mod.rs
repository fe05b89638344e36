//! One casing for every JSON the CLI prints (`--json`, `--events`) and the daemon sends:
//! camelCase keys, and camelCase names where an enum value is a kind, status or action.
//! Shared by the CLI and daemon test suites (`mod json_casing;`).
#![allow(dead_code)]

use serde_json::Value;

/// Keys whose string value names a variant (a kind of event, a status, a next action).
const KIND_KEYS: &[&str] = &["kind", "status", "action", "code", "op", "severity"];

/// `snake_case` or `kebab-case` (two words or more, lower case): not camelCase.
fn not_camel(word: &str) -> bool {
    let mut seps = word.split(['_', '-']);
    let first = seps.next().unwrap_or_default();
    let rest: Vec<&str> = seps.collect();
    !rest.is_empty()
        && !first.is_empty()
        && first.starts_with(|c: char| c.is_ascii_lowercase())
        && word
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Every key (and kind-like value) in `v` that is not camelCase, with its JSON path.
pub fn violations(v: &Value) -> Vec<String> {
    fn walk(v: &Value, path: &str, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    let here = format!("{path}.{k}");
                    if not_camel(k) {
                        out.push(format!("key {here}"));
                    }
                    // LSP diagnostic codes follow linters (kebab-case, as rust-analyzer's).
                    let diagnostic_code = k == "code" && path.contains(".diagnostics[");
                    if KIND_KEYS.contains(&k.as_str()) && !diagnostic_code {
                        if let Some(s) = child.as_str() {
                            if not_camel(s) {
                                out.push(format!("value {here} = {s:?}"));
                            }
                        }
                    }
                    walk(child, &here, out);
                }
            }
            Value::Array(a) => {
                for (i, child) in a.iter().enumerate() {
                    walk(child, &format!("{path}[{i}]"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, "$", &mut out);
    out
}

/// Fail when `v` (what `what` printed or sent) has a key that is not camelCase.
pub fn assert_camel_case(v: &Value, what: &str) {
    let bad = violations(v);
    assert!(bad.is_empty(), "{what}: not camelCase: {bad:?}\n{v}");
}

/// Each line of `text` that is a JSON value (a `--json` document or `--events` lines).
pub fn assert_camel_case_lines(text: &str, what: &str) {
    if let Ok(v) = serde_json::from_str::<Value>(text.trim()) {
        return assert_camel_case(&v, what);
    }
    for line in text.lines() {
        if let Ok(v) = serde_json::from_str::<Value>(line) {
            assert_camel_case(&v, what);
        }
    }
}
