//! The protocol is declared three times: in the server (`server/src/lsp/ext.rs`), in its
//! documentation (`docs/protocol.md`) and in the extension (`extension/src/lsp_ext.ts`, when
//! the extension is present). This test fails when they disagree on the method names, when a
//! documented method has no example JSON, or when an error code is not documented.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
}

/// Every `"devkit/..."` string literal in `text`.
fn quoted_methods(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("\"devkit/") {
        let after = &rest[i + 1..];
        let end = after.find('"').unwrap_or(after.len());
        let name = &after[..end];
        if name.len() > "devkit/".len() && !name.ends_with('/') && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '/') {
            out.insert(name.to_string());
        }
        rest = &after[end.min(after.len())..];
    }
    out
}

/// The methods documented with their own section: `### \`devkit/...\``.
fn documented_methods(doc: &str) -> BTreeSet<String> {
    doc.lines()
        .filter_map(|l| l.strip_prefix("### `"))
        .filter_map(|l| l.strip_suffix('`'))
        .filter(|m| m.starts_with("devkit/"))
        .map(str::to_string)
        .collect()
}

fn diff(a_name: &str, a: &BTreeSet<String>, b_name: &str, b: &BTreeSet<String>) -> String {
    let only_a: Vec<_> = a.difference(b).collect();
    let only_b: Vec<_> = b.difference(a).collect();
    format!("only in {a_name}: {only_a:?}; only in {b_name}: {only_b:?}")
}

#[test]
fn server_and_documentation_declare_the_same_methods() {
    let server = quoted_methods(&read("server/src/lsp/ext.rs"));
    let doc = read("docs/protocol.md");
    let documented = documented_methods(&doc);
    assert!(server.len() >= 17, "ext.rs declares {} methods", server.len());
    assert_eq!(server, documented, "{}", diff("server/src/lsp/ext.rs", &server, "docs/protocol.md", &documented));
}

#[test]
fn every_documented_method_has_example_json() {
    let doc = read("docs/protocol.md");
    let sections: Vec<&str> = doc.split("\n### `").skip(1).collect();
    assert!(!sections.is_empty());
    for s in sections {
        let name = s.split('`').next().unwrap_or_default();
        let body = s.split("\n## ").next().unwrap_or_default();
        assert!(body.contains("```json"), "{name} has no example JSON in docs/protocol.md");
    }
}

#[test]
fn every_error_code_is_documented() {
    let ext = read("server/src/lsp/ext.rs");
    let doc = read("docs/protocol.md");
    let codes = ext.split("pub mod codes").nth(1).expect("ext.rs has a codes module");
    let mut seen = 0;
    for line in codes.lines().filter(|l| l.contains("pub const") && l.contains(": (i64, &str) = (")) {
        let tuple = line.split("= (").nth(1).unwrap();
        let code = tuple.split(',').next().unwrap().trim();
        let name = tuple.split('"').nth(1).unwrap();
        let row = format!("| {code} | `{name}` |");
        assert!(doc.contains(&row), "docs/protocol.md lacks the error row {row}");
        seen += 1;
    }
    assert!(seen >= 10, "found {seen} codes");
}

#[test]
fn the_extension_mirrors_the_server_when_present() {
    let ts = root().join("extension/src/lsp_ext.ts");
    if !ts.exists() {
        // Not every checkout has the extension (the server builds alone); nothing to compare.
        return;
    }
    let server = quoted_methods(&read("server/src/lsp/ext.rs"));
    let client = quoted_methods(&std::fs::read_to_string(&ts).unwrap());
    assert_eq!(server, client, "{}", diff("server/src/lsp/ext.rs", &server, "extension/src/lsp_ext.ts", &client));
}

#[test]
fn the_parsers_see_what_they_should() {
    let m = quoted_methods(r#"const A: &str = "devkit/a"; x("devkit/monitor/open") "devkit/" "other/x" "devkit/with space""#);
    assert_eq!(m.into_iter().collect::<Vec<_>>(), ["devkit/a", "devkit/monitor/open"]);
    let d = documented_methods("## x\n### `devkit/a`\ntext `devkit/b`\n### `devkit/monitor/open`\n");
    assert_eq!(d.into_iter().collect::<Vec<_>>(), ["devkit/a", "devkit/monitor/open"]);
}
