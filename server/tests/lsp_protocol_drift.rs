//! The protocol is declared three times: in the server (`server/src/lsp/ext.rs`), in its
//! documentation (`docs/protocol.md`) and in the extension (`extension/src/lsp_ext.ts`, when
//! the extension is present). This test fails when they disagree on the method names, when a
//! documented method has no example JSON, or when an error code is not documented.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The extension's declarations; `None` when this checkout has no extension (the server
/// builds alone): nothing to compare then.
fn extension_ts() -> Option<String> {
    std::fs::read_to_string(root().join("extension/src/lsp_ext.ts")).ok()
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
        if name.len() > "devkit/".len()
            && !name.ends_with('/')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '/')
        {
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
    assert!(
        server.len() >= 17,
        "ext.rs declares {} methods",
        server.len()
    );
    assert_eq!(
        server,
        documented,
        "{}",
        diff(
            "server/src/lsp/ext.rs",
            &server,
            "docs/protocol.md",
            &documented
        )
    );
}

#[test]
fn every_documented_method_has_example_json() {
    let doc = read("docs/protocol.md");
    let sections: Vec<&str> = doc.split("\n### `").skip(1).collect();
    assert!(!sections.is_empty());
    for s in sections {
        let name = s.split('`').next().unwrap_or_default();
        let body = s.split("\n## ").next().unwrap_or_default();
        assert!(
            body.contains("```json"),
            "{name} has no example JSON in docs/protocol.md"
        );
    }
}

#[test]
fn every_error_code_is_documented() {
    let ext = read("server/src/lsp/ext.rs");
    let doc = read("docs/protocol.md");
    let codes = ext
        .split("pub mod codes")
        .nth(1)
        .expect("ext.rs has a codes module");
    let mut seen = 0;
    for line in codes
        .lines()
        .filter(|l| l.contains("pub const") && l.contains(": (i64, &str) = ("))
    {
        let tuple = line.split("= (").nth(1).unwrap();
        let code = tuple.split(',').next().unwrap().trim();
        let name = tuple.split('"').nth(1).unwrap();
        let row = format!("| {code} | `{name}` |");
        assert!(
            doc.contains(&row),
            "docs/protocol.md lacks the error row {row}"
        );
        seen += 1;
    }
    assert!(seen >= 10, "found {seen} codes");
}

#[test]
fn the_extension_mirrors_the_server_when_present() {
    let Some(ts) = extension_ts() else { return };
    let server = quoted_methods(&read("server/src/lsp/ext.rs"));
    let client = quoted_methods(&ts);
    assert_eq!(
        server,
        client,
        "{}",
        diff(
            "server/src/lsp/ext.rs",
            &server,
            "extension/src/lsp_ext.ts",
            &client
        )
    );
}

#[test]
fn the_parsers_see_what_they_should() {
    let m = quoted_methods(
        r#"const A: &str = "devkit/a"; x("devkit/monitor/open") "devkit/" "other/x" "devkit/with space""#,
    );
    assert_eq!(
        m.into_iter().collect::<Vec<_>>(),
        ["devkit/a", "devkit/monitor/open"]
    );
    let d =
        documented_methods("## x\n### `devkit/a`\ntext `devkit/b`\n### `devkit/monitor/open`\n");
    assert_eq!(
        d.into_iter().collect::<Vec<_>>(),
        ["devkit/a", "devkit/monitor/open"]
    );
}

// ---- Field drift ------------------------------------------------------------------------------

use std::collections::BTreeMap;

fn camel(snake: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Fields of a declaration: its own JSON names, and the declarations it flattens / extends.
#[derive(Debug, Default, Clone)]
struct Decl {
    fields: BTreeSet<String>,
    includes: Vec<String>,
}

/// Every `pub struct` in ext.rs with its JSON field names (camelCase, `rename` honoured,
/// `flatten` followed).
fn rust_structs(text: &str) -> BTreeMap<String, Decl> {
    let mut out = BTreeMap::new();
    let mut current: Option<(String, Decl)> = None;
    let (mut flatten, mut rename, mut skip) = (false, None::<String>, false);
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = line.strip_prefix("pub struct ") {
            if let Some(name) = rest.strip_suffix(" {") {
                current = Some((name.trim().to_string(), Decl::default()));
            }
            continue;
        }
        let Some((_, decl)) = current.as_mut() else {
            continue;
        };
        if line == "}" {
            let (name, decl) = current.take().unwrap();
            out.insert(name, decl);
            continue;
        }
        if t.starts_with("#[serde(") && t.contains("flatten") {
            flatten = true;
        }
        // Never on the wire (e.g. a report's compiler diagnostics, published separately).
        if t.starts_with("#[serde(")
            && ["skip)", "skip,", "skip_serializing)", "skip_serializing,"]
                .iter()
                .any(|a| t.contains(a))
        {
            skip = true;
        }
        if let Some(r) = t.strip_prefix("#[serde(rename = \"") {
            rename = r.split('"').next().map(str::to_string);
        }
        if let Some(field) = t.strip_prefix("pub ") {
            let Some((name, ty)) = field.split_once(':') else {
                continue;
            };
            if skip {
                // not a JSON field
            } else if flatten {
                decl.includes
                    .push(ty.trim().trim_end_matches(',').to_string());
            } else {
                decl.fields
                    .insert(rename.take().unwrap_or_else(|| camel(name.trim())));
            }
            flatten = false;
            rename = None;
            skip = false;
        }
    }
    out
}

/// The declarations of ext.rs, with each `pub type XResult = tasks::...::XReport;` (a result
/// that is a task's report as it is) resolved to that struct in `tasks/src`.
fn server_declarations() -> BTreeMap<String, Decl> {
    let ext = read("server/src/lsp/ext.rs");
    let mut decls = rust_structs(&ext);
    let mut tasks = BTreeMap::new();
    let mut dirs = vec![root().join("tasks/src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                tasks.extend(rust_structs(&std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    for line in ext.lines() {
        let Some(alias) = line.strip_prefix("pub type ") else {
            continue;
        };
        let Some((name, target)) = alias.trim_end_matches(';').split_once(" = ") else {
            continue;
        };
        let target = target.rsplit("::").next().unwrap_or(target);
        let decl = tasks.get(target).unwrap_or_else(|| {
            panic!("ext.rs: {name} = {target}, which tasks/src does not declare")
        });
        decls.insert(name.to_string(), decl.clone());
        for inc in &decl.includes {
            if let Some(d) = tasks.get(inc) {
                decls.entry(inc.clone()).or_insert_with(|| d.clone());
            }
        }
    }
    decls
}

/// Every `export interface` in lsp_ext.ts with its field names and what it extends.
fn ts_interfaces(text: &str) -> BTreeMap<String, Decl> {
    let mut out = BTreeMap::new();
    let mut current: Option<(String, Decl)> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("export interface ") {
            let head = rest.trim_end_matches('{').trim();
            let (name, includes) = match head.split_once(" extends ") {
                Some((n, ext)) => (
                    n.trim(),
                    ext.split(',').map(|s| s.trim().to_string()).collect(),
                ),
                None => (head, Vec::new()),
            };
            current = Some((
                name.to_string(),
                Decl {
                    fields: BTreeSet::new(),
                    includes,
                },
            ));
            continue;
        }
        let Some((_, decl)) = current.as_mut() else {
            continue;
        };
        if line == "}" {
            let (name, decl) = current.take().unwrap();
            out.insert(name, decl);
            continue;
        }
        let t = line.trim();
        if t.starts_with("//") || t.starts_with('*') || t.starts_with("/*") {
            continue;
        }
        if let Some((name, _)) = t.split_once(':') {
            let name = name.trim().trim_end_matches('?');
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                decl.fields.insert(name.to_string());
            }
        }
    }
    out
}

/// All JSON fields of `name`, its flattened / extended declarations included.
fn all_fields(decls: &BTreeMap<String, Decl>, name: &str) -> Option<BTreeSet<String>> {
    let d = decls.get(name)?;
    let mut out = d.fields.clone();
    for inc in &d.includes {
        out.extend(all_fields(decls, inc).unwrap_or_default());
    }
    Some(out)
}

/// `devkit/monitor/open` -> `MonitorOpen`.
fn type_stem(method: &str) -> String {
    method
        .trim_start_matches("devkit/")
        .split('/')
        .map(|part| {
            let mut c = part.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

#[test]
fn params_and_results_have_the_same_fields_in_server_and_extension() {
    let Some(ts) = extension_ts() else { return };
    let rust = server_declarations();
    let ts = ts_interfaces(&ts);
    let mut compared = 0;
    for name in rust
        .keys()
        .filter(|n| n.ends_with("Params") || n.ends_with("Result"))
    {
        let r = all_fields(&rust, name).unwrap();
        let t = all_fields(&ts, name)
            .unwrap_or_else(|| panic!("extension/src/lsp_ext.ts has no interface {name}"));
        // A flattened open map (an event's own keys) lets the extension name more fields.
        let open = rust[name].includes.iter().any(|i| !rust.contains_key(i));
        let only_r: Vec<_> = r.difference(&t).collect();
        let only_t: Vec<_> = if open {
            Vec::new()
        } else {
            t.difference(&r).collect()
        };
        assert!(
            only_r.is_empty() && only_t.is_empty(),
            "{name}: fields only in ext.rs: {only_r:?}; only in lsp_ext.ts: {only_t:?}"
        );
        compared += 1;
    }
    assert!(compared >= 25, "compared {compared} declarations");
}

#[test]
fn every_param_field_is_documented_with_its_method() {
    let rust = server_declarations();
    let doc = read("docs/protocol.md");
    let mut checked = 0;
    for section in doc.split("\n### `").skip(1) {
        let method = section.split('`').next().unwrap_or_default();
        let body = section.split("\n## ").next().unwrap_or_default();
        let stem = type_stem(method);
        for kind in ["Params", "Result"] {
            let Some(fields) = all_fields(&rust, &format!("{stem}{kind}")) else {
                continue;
            };
            for f in fields {
                let named = body.contains(&format!("`{f}`")) || body.contains(&format!("\"{f}\""));
                assert!(
                    named,
                    "docs/protocol.md: {method} does not mention its {kind} field `{f}`"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 60, "checked {checked} fields");
}

/// FNV-1a (64 bit) of the text with line endings normalised: stable across platforms.
fn fnv1a(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.replace("\r\n", "\n").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[test]
fn the_documentation_carries_the_hash_of_the_declarations() {
    let hash = fnv1a(&read("server/src/lsp/ext.rs"));
    let doc = read("docs/protocol.md");
    let line = format!("ext.rs hash: {hash}");
    assert!(
        doc.contains(&line),
        "server/src/lsp/ext.rs changed: review docs/protocol.md (and extension/src/lsp_ext.ts), then set its `ext.rs hash:` line to `{line}`"
    );
}

#[test]
fn the_field_parsers_see_what_they_should() {
    let r = rust_structs("pub struct AParams {\n    pub port_name: String,\n    #[serde(flatten)]\n    pub flash: BParams,\n    #[serde(rename = \"x\")]\n    pub y: u8,\n    #[serde(skip)]\n    pub diagnostics: Vec<u8>,\n    #[serde(skip_serializing_if = \"Option::is_none\")]\n    pub z: Option<u8>,\n}\npub struct BParams {\n    pub probe: Option<String>,\n}\n");
    assert_eq!(
        all_fields(&r, "AParams")
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        ["portName", "probe", "x", "z"]
    );
    let t = ts_interfaces("export interface AParams extends BParams {\n    /** doc: not a field */\n    portName?: string;\n}\nexport interface BParams {\n    probe: string;\n}\n");
    assert_eq!(
        all_fields(&t, "AParams")
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        ["portName", "probe"]
    );
    assert_eq!(type_stem("devkit/monitor/open"), "MonitorOpen");
}
