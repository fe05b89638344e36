//! The protocol is declared three times: in the server (`server/src/lsp/ext.rs`), in its
//! documentation (`docs/protocol.md`) and in the extension (`extension/src/lsp_ext.ts`, when
//! the extension is present). This test fails when they disagree on the method names, when a
//! documented method has no example JSON, when an error code is not documented, or when a
//! request's params or result (followed into `tasks/src` where the type lives) and the
//! extension's interface for it differ in a field or its type ("Typed drift" below).

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
        if let Some(r) = t.strip_prefix("#[serde(rename = \"") {
            rename = r.split('"').next().map(str::to_string);
        }
        // A field that is never serialized is not on the wire.
        if t == "#[serde(skip)]" || t == "#[serde(skip_serializing)]" {
            skip = true;
        }
        if let Some(field) = t.strip_prefix("pub ") {
            let Some((name, ty)) = field.split_once(':') else {
                continue;
            };
            if std::mem::take(&mut skip) {
                rename = None;
                flatten = false;
                continue;
            }
            if flatten {
                decl.includes
                    .push(ty.trim().trim_end_matches(',').to_string());
            } else {
                decl.fields
                    .insert(rename.take().unwrap_or_else(|| camel(name.trim())));
            }
            flatten = false;
            rename = None;
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
    ts_side(text)
        .interfaces
        .into_iter()
        .map(|(name, i)| {
            let decl = Decl {
                fields: i.fields.into_iter().map(|(n, ..)| n).collect(),
                includes: i.extends,
            };
            (name, decl)
        })
        .collect()
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
    let r = rust_structs("pub struct AParams {\n    pub port_name: String,\n    #[serde(flatten)]\n    pub flash: BParams,\n    #[serde(rename = \"x\")]\n    pub y: u8,\n}\npub struct BParams {\n    pub probe: Option<String>,\n}\n");
    assert_eq!(
        all_fields(&r, "AParams")
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        ["portName", "probe", "x"]
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

// ---- Typed drift ------------------------------------------------------------------------------
//
// Every request's params and result (and every notification's params), as the server declares
// them (`request_markers!` and `impl Notification` in ext.rs, the types followed into
// `tasks/src/**` when they live there), against the TypeScript the extension declares for the
// same method (`new lc.RequestType<P, R, void>("devkit/...")`), field by field with types:
// String/PathBuf -> string, bool -> boolean, numbers -> number, Option<T> -> optional or
// `| null`, Vec<T> -> T[], nested structs compared by their fields, unit enums -> their names
// (or string), tagged enums -> an interface with the tag. A type the test cannot follow fails,
// naming it.

/// A Rust declaration with what serde makes of it.
#[derive(Debug, Clone)]
enum RDecl {
    /// Fields: (JSON name, type, may be absent: Option / default / skip_serializing_if).
    Struct {
        fields: Vec<(String, String, bool)>,
        flatten: Vec<String>,
    },
    /// A newtype (`struct X(T)`): serialized as `T`.
    Newtype(String),
    /// Unit variants only: their JSON names.
    Names(Vec<String>),
    /// Variants with data, internally tagged by `tag` (`None`: not tagged).
    Tagged(Option<String>),
    /// `pub type X = path::Y;` (a result that is a tasks report).
    Alias(String),
}

fn rename(name: &str, rule: Option<&str>) -> String {
    match rule {
        Some("camelCase") => {
            let c = camel(name);
            // PascalCase variant names too.
            let mut chars = c.chars();
            chars
                .next()
                .map(|f| f.to_lowercase().chain(chars).collect())
                .unwrap_or_default()
        }
        Some("lowercase") => name.to_lowercase(),
        Some("snake_case") => {
            let mut out = String::new();
            for (i, ch) in name.chars().enumerate() {
                if ch.is_uppercase() && i > 0 {
                    out.push('_');
                }
                out.extend(ch.to_lowercase());
            }
            out
        }
        Some("kebab-case") => rename(name, Some("snake_case")).replace('_', "-"),
        _ => name.to_string(),
    }
}

fn attr_value(attrs: &str, key: &str) -> Option<String> {
    let i = attrs.find(&format!("{key} = \""))?;
    let rest = &attrs[i + key.len() + 4..];
    rest.split('"').next().map(str::to_string)
}

/// Every `pub struct` / `pub enum` in `text` (any indentation), by name.
fn rust_decls(text: &str, file: &str, out: &mut BTreeMap<String, Vec<(String, RDecl)>>) {
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    let mut attrs = String::new();
    while i < lines.len() {
        let t = lines[i].trim();
        if t.starts_with("#[") {
            // An attribute, over as many lines as it takes.
            attrs.push_str(t);
            while !lines[i].trim_end().ends_with(']') && i + 1 < lines.len() {
                i += 1;
                attrs.push_str(lines[i].trim());
            }
            i += 1;
            continue;
        }
        if t.starts_with("///") || t.starts_with("//") {
            i += 1;
            continue;
        }
        if let Some((name, target)) = t
            .strip_prefix("pub type ")
            .and_then(|r| r.trim_end_matches(';').split_once('='))
        {
            let name = name.trim().to_string();
            if !name.contains('<') {
                out.entry(name)
                    .or_default()
                    .push((file.into(), RDecl::Alias(target.trim().to_string())));
            }
            attrs.clear();
            i += 1;
            continue;
        }
        let header = t
            .strip_prefix("pub struct ")
            .map(|r| (false, r))
            .or_else(|| t.strip_prefix("pub enum ").map(|r| (true, r)));
        let Some((is_enum, rest)) = header else {
            attrs.clear();
            i += 1;
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let rule = attr_value(&attrs, "rename_all");
        let struct_default = attrs.contains("serde(default") || attrs.contains(", default");
        let tag = attr_value(&attrs, "tag");
        attrs.clear();
        if !is_enum && rest.contains('(') {
            let inner = rest.split_once('(').unwrap().1;
            let inner = inner.rsplit_once(')').map_or(inner, |(a, _)| a);
            let inner = inner.trim().trim_start_matches("pub ").to_string();
            out.entry(name)
                .or_default()
                .push((file.into(), RDecl::Newtype(inner)));
            i += 1;
            continue;
        }
        if !rest.trim_end().ends_with('{') {
            i += 1;
            continue;
        }
        let indent = lines[i].len() - lines[i].trim_start().len();
        // The body: up to the closing brace at the header's indentation.
        let mut body = Vec::new();
        i += 1;
        while i < lines.len() {
            let l = lines[i];
            if l.trim() == "}" && l.len() - l.trim_start().len() == indent {
                break;
            }
            body.push(l);
            i += 1;
        }
        i += 1;
        let decl = if is_enum {
            let depth0: Vec<&str> = {
                // Variant lines: those at the body's first indentation.
                let vindent = body
                    .iter()
                    .find(|l| !l.trim().is_empty())
                    .map(|l| l.len() - l.trim_start().len())
                    .unwrap_or(0);
                body.iter()
                    .filter(|l| l.len() - l.trim_start().len() == vindent)
                    .map(|l| l.trim())
                    .filter(|l| {
                        !l.starts_with("//") && !l.starts_with('#') && *l != "}," && *l != "}"
                    })
                    .collect()
            };
            let unit = depth0
                .iter()
                .all(|l| l.ends_with(',') && !l.contains('(') && !l.contains('{'));
            if unit {
                let mut names = Vec::new();
                let mut vrename = None;
                for l in body.iter().map(|l| l.trim()) {
                    if l.starts_with("#[serde(rename") {
                        vrename = attr_value(l, "rename");
                    } else if !l.starts_with("//") && !l.starts_with('#') && l.ends_with(',') {
                        let v = l.trim_end_matches(',');
                        names.push(vrename.take().unwrap_or_else(|| rename(v, rule.as_deref())));
                    }
                }
                RDecl::Names(names)
            } else {
                RDecl::Tagged(tag)
            }
        } else {
            let (mut fields, mut flatten) = (Vec::new(), Vec::new());
            let mut fattrs = String::new();
            for l in body.iter().map(|l| l.trim()) {
                if l.starts_with("#[") {
                    fattrs.push_str(l);
                    continue;
                }
                if l.starts_with("//") {
                    continue;
                }
                let Some(f) = l.strip_prefix("pub ") else {
                    if !l.is_empty() {
                        fattrs.clear();
                    }
                    continue;
                };
                let Some((fname, ty)) = f.split_once(':') else {
                    continue;
                };
                let ty = ty.trim().trim_end_matches(',').to_string();
                if fattrs.contains("flatten") {
                    flatten.push(ty);
                } else if !fattrs.contains("serde(skip)") && !fattrs.contains("skip_serializing)") {
                    let json = attr_value(&fattrs, "rename")
                        .unwrap_or_else(|| rename(fname.trim(), rule.as_deref()));
                    let absent = struct_default
                        || fattrs.contains("default")
                        || fattrs.contains("skip_serializing_if")
                        || ty.starts_with("Option<");
                    fields.push((json, ty, absent));
                }
                fattrs.clear();
            }
            RDecl::Struct { fields, flatten }
        };
        out.entry(name).or_default().push((file.into(), decl));
    }
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

struct RustSide {
    decls: BTreeMap<String, Vec<(String, RDecl)>>,
}

impl RustSide {
    fn load() -> RustSide {
        let mut decls = BTreeMap::new();
        rust_decls(&read("server/src/lsp/ext.rs"), "ext.rs", &mut decls);
        // The daemon's own wire types (`Secret`, `ReturnedSecret`).
        rust_decls(&read("server/src/lsp/secret.rs"), "ext.rs", &mut decls);
        let mut files = Vec::new();
        rust_files(&root().join("tasks/src"), &mut files);
        files.sort();
        for f in files {
            let rel = f.strip_prefix(root()).unwrap().display().to_string();
            rust_decls(&std::fs::read_to_string(&f).unwrap(), &rel, &mut decls);
        }
        RustSide { decls }
    }

    /// `path::to::Name` resolved (through `pub type` aliases): ext.rs first, then the one
    /// tasks declaration of that name.
    fn get(&self, ty: &str) -> Result<&RDecl, String> {
        match self.get_one(ty)? {
            RDecl::Alias(target) if target != ty => self.get(target),
            d => Ok(d),
        }
    }

    fn get_one(&self, ty: &str) -> Result<&RDecl, String> {
        let name = ty.rsplit("::").next().unwrap_or(ty);
        let found = self
            .decls
            .get(name)
            .ok_or_else(|| format!("cannot follow the Rust type `{ty}` (no `pub struct`/`pub enum {name}` in ext.rs or tasks/src)"))?;
        if let Some((_, d)) = found.iter().find(|(f, _)| f == "ext.rs") {
            if !ty.contains("::") || ty.starts_with("crate::lsp") {
                return Ok(d);
            }
        }
        let in_tasks: Vec<_> = found.iter().filter(|(f, _)| f != "ext.rs").collect();
        // A path names its module: prefer the file it points at.
        if ty.contains("::") && in_tasks.len() > 1 {
            let module = ty
                .trim_start_matches("tasks::")
                .rsplit_once("::")
                .map(|(m, _)| m.replace("::", "/"));
            if let Some(m) = module {
                if let Some((_, d)) = in_tasks.iter().find(|(f, _)| f.contains(&m)) {
                    return Ok(d);
                }
            }
        }
        match in_tasks.as_slice() {
            [(_, d)] => Ok(d),
            [] => Ok(&found[0].1),
            many => Err(format!(
                "the Rust type `{ty}` is ambiguous: declared in {:?}; name it by its path",
                many.iter().map(|(f, _)| f).collect::<Vec<_>>()
            )),
        }
    }
}

/// The TypeScript side: interfaces (fields with their type text and optionality, extends)
/// and type aliases.
struct TsSide {
    interfaces: BTreeMap<String, TsInterface>,
    aliases: BTreeMap<String, String>,
}

/// An interface: its own fields (name, type text, optional), what it extends, and whether it
/// has an index signature (`[key: string]: unknown`).
struct TsInterface {
    fields: Vec<(String, String, bool)>,
    extends: Vec<String>,
    open: bool,
}

/// An interface's fields, extended ones included: name -> (type text, optional).
type TsFields = BTreeMap<String, (String, bool)>;

fn ts_side(text: &str) -> TsSide {
    let mut interfaces = BTreeMap::new();
    let mut aliases = BTreeMap::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        if let Some(rest) = l.strip_prefix("export type ") {
            let (name, value) = rest.split_once('=').unwrap_or((rest, ""));
            let mut value = value.trim().to_string();
            while !value.ends_with(';') && i + 1 < lines.len() {
                i += 1;
                value.push(' ');
                value.push_str(lines[i].trim());
            }
            aliases.insert(
                name.trim().to_string(),
                value.trim_end_matches(';').trim().to_string(),
            );
        } else if let Some(rest) = l.strip_prefix("export interface ") {
            let head = rest.trim_end_matches('{').trim();
            let (name, extends) = match head.split_once(" extends ") {
                Some((n, e)) => (
                    n.trim(),
                    e.split(',').map(|s| s.trim().to_string()).collect(),
                ),
                None => (head, Vec::new()),
            };
            let (mut fields, mut open) = (Vec::new(), false);
            i += 1;
            while i < lines.len() && lines[i] != "}" {
                let t = lines[i].trim();
                if t.starts_with('[') {
                    open = true;
                } else if !(t.starts_with("//") || t.starts_with('*') || t.starts_with("/*")) {
                    if let Some((n, ty)) = t.split_once(':') {
                        let optional = n.trim().ends_with('?');
                        let n = n.trim().trim_end_matches('?');
                        if n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !n.is_empty()
                        {
                            fields.push((
                                n.to_string(),
                                ty.trim().trim_end_matches(';').trim().to_string(),
                                optional,
                            ));
                        }
                    }
                }
                i += 1;
            }
            interfaces.insert(
                name.to_string(),
                TsInterface {
                    fields,
                    extends,
                    open,
                },
            );
        }
        i += 1;
    }
    TsSide {
        interfaces,
        aliases,
    }
}

impl TsSide {
    /// All fields of an interface, extended ones included; and whether it is open (an index
    /// signature).
    fn fields(&self, name: &str) -> Option<(TsFields, bool)> {
        let TsInterface {
            fields: own,
            extends,
            open,
        } = self.interfaces.get(name)?;
        let mut out = BTreeMap::new();
        let mut open = *open;
        for e in extends {
            let (f, o) = self.fields(e)?;
            out.extend(f);
            open |= o;
        }
        for (n, t, opt) in own {
            out.insert(n.clone(), (t.clone(), *opt));
        }
        Some((out, open))
    }
}

/// Split `a | b<c | d> | e[]` at top-level `|`.
fn union_members(t: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth) = (Vec::new(), String::new(), 0);
    for c in t.chars() {
        match c {
            '<' | '(' | '{' => depth += 1,
            '>' | ')' | '}' => depth -= 1,
            '|' if depth == 0 => {
                out.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur.trim().to_string());
    // A leading `|` (a union over several lines) makes no member.
    out.retain(|m| !m.is_empty());
    out
}

/// `Outer<Inner>` -> Some(("Outer", "Inner")).
fn generic(ty: &str) -> Option<(&str, &str)> {
    let (outer, rest) = ty.split_once('<')?;
    Some((outer.trim(), rest.strip_suffix('>')?.trim()))
}

struct Checker<'a> {
    rust: &'a RustSide,
    ts: &'a TsSide,
    /// (Rust type, TS type) pairs being or already compared (cycles, repeats).
    seen: BTreeSet<(String, String)>,
    errors: Vec<String>,
    /// Fields compared.
    compared: usize,
}

impl<'a> Checker<'a> {
    fn new(rust: &'a RustSide, ts: &'a TsSide) -> Self {
        Checker {
            rust,
            ts,
            seen: BTreeSet::new(),
            errors: Vec::new(),
            compared: 0,
        }
    }

    fn fail(&mut self, at: &str, what: String) {
        self.errors.push(format!("{at}: {what}"));
    }

    /// Compare a whole Rust type with a TS type text (null already taken off for Options).
    fn compare(&mut self, at: &str, rust: &str, ts: &str) {
        let rust = rust.trim();
        let ts = ts.trim();
        let members = union_members(ts);
        let non_null: Vec<&String> = members
            .iter()
            .filter(|m| *m != "null" && *m != "undefined")
            .collect();
        if let Some(("Option", inner)) = generic(rust) {
            // Optionality is the field's (`?`, checked there); here the value may be null.
            let joined = non_null
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" | ");
            return self.compare(at, inner, &joined);
        }
        if non_null.len() != members.len() {
            return self.fail(
                at,
                format!("`{rust}` is never null, but lsp_ext.ts says `{ts}`"),
            );
        }
        if ts == "unknown" || ts == "any" {
            // Open in TS: only untyped JSON may be.
            if !rust.contains("serde_json::") && !rust.starts_with("Value") {
                self.fail(at, format!("`{rust}` is typed, but lsp_ext.ts says `{ts}`"));
            }
            return;
        }
        let prim = |r: &str| -> Option<&'static str> {
            let last = r.rsplit("::").next().unwrap_or(r);
            Some(match last {
                "String" | "PathBuf" | "str" | "&str" | "&'static str" | "Secret" | "Uri"
                | "char" => "string",
                "bool" => "boolean",
                "u8" | "u16" | "u32" | "u64" | "usize" | "i8" | "i16" | "i32" | "i64" | "isize"
                | "f32" | "f64" => "number",
                _ => return None,
            })
        };
        if let Some(p) = prim(rust) {
            // A TS alias of literals (`type ValidatedInput = "mac" | ...`) is its members.
            if let Some(value) = self.ts.aliases.get(ts) {
                let value = value.clone();
                return self.compare(at, rust, &value);
            }
            let ok = ts == p
                || (p == "string" && members.iter().all(|m| m.starts_with('"')))
                || (p == "number" && members.iter().all(|m| m.parse::<f64>().is_ok()));
            if !ok {
                self.fail(at, format!("`{rust}` is a {p}, but lsp_ext.ts says `{ts}`"));
            }
            return;
        }
        if let Some((outer, inner)) = generic(rust) {
            let outer = outer.rsplit("::").next().unwrap_or(outer);
            match outer {
                "Vec" | "HashSet" | "BTreeSet" | "VecDeque" => {
                    let elem = ts
                        .strip_suffix("[]")
                        .map(|e| e.trim_start_matches('(').trim_end_matches(')').to_string())
                        .or_else(|| {
                            generic(ts)
                                .filter(|(o, _)| *o == "Array")
                                .map(|(_, i)| i.to_string())
                        });
                    match elem {
                        Some(e) => self.compare(&format!("{at}[]"), inner, &e),
                        None => self.fail(
                            at,
                            format!("`{rust}` is an array, but lsp_ext.ts says `{ts}`"),
                        ),
                    }
                }
                "Box" | "Arc" | "Zeroizing" => self.compare(at, inner, ts),
                "HashMap" | "BTreeMap" | "Map" => {
                    if !(ts.starts_with("Record<") || ts.starts_with('{')) {
                        self.fail(at, format!("`{rust}` is a map, but lsp_ext.ts says `{ts}`"));
                    }
                }
                _ => self.fail(at, format!("cannot follow the Rust type `{rust}`")),
            }
            return;
        }
        if rust.contains("serde_json::") || rust == "Value" {
            if !(ts == "unknown" || ts.starts_with("Record<") || ts.starts_with('{')) {
                self.fail(
                    at,
                    format!("`{rust}` is untyped JSON, but lsp_ext.ts says `{ts}`"),
                );
            }
            return;
        }
        // A named Rust type.
        let decl = match self.rust.get(rust) {
            Ok(d) => d.clone(),
            Err(e) => return self.fail(at, e),
        };
        match decl {
            RDecl::Newtype(inner) => self.compare(at, &inner, ts),
            RDecl::Names(names) => {
                let ts_resolved = self
                    .ts
                    .aliases
                    .get(ts)
                    .cloned()
                    .unwrap_or_else(|| ts.to_string());
                if ts_resolved == "string" {
                    return;
                }
                let lits: BTreeSet<String> = union_members(&ts_resolved)
                    .iter()
                    .map(|m| m.trim_matches('"').to_string())
                    .collect();
                let names: BTreeSet<String> = names.into_iter().collect();
                if lits != names {
                    self.fail(
                        at,
                        format!(
                            "`{rust}` is one of {names:?}, but lsp_ext.ts says `{ts}` ({lits:?})"
                        ),
                    );
                }
            }
            RDecl::Tagged(tag) => {
                let Some((fields, _)) = self.ts.fields(ts) else {
                    return self.fail(
                        at,
                        format!("`{rust}` is an object, but lsp_ext.ts has no interface `{ts}`"),
                    );
                };
                match tag {
                    Some(tag) if fields.contains_key(&tag) => {}
                    Some(tag) => self.fail(
                        at,
                        format!(
                            "`{rust}` is tagged by `{tag}`, but lsp_ext.ts `{ts}` has no `{tag}`"
                        ),
                    ),
                    None => self.fail(at, format!("cannot follow the untagged enum `{rust}`")),
                }
            }
            RDecl::Struct { .. } => self.compare_struct(at, rust, ts),
            RDecl::Alias(target) => {
                self.fail(at, format!("cannot follow the alias `{rust}` = `{target}`"))
            }
        }
    }

    /// A Rust struct (flattened members included) against a TS interface, both ways.
    fn compare_struct(&mut self, at: &str, rust: &str, ts: &str) {
        if !self.seen.insert((rust.to_string(), ts.to_string())) {
            return;
        }
        let Some((ts_fields, open)) = self.ts.fields(ts) else {
            return self.fail(
                at,
                format!("`{rust}` is an object, but lsp_ext.ts has no interface `{ts}`"),
            );
        };
        let mut rust_fields = Vec::new();
        let mut flattened_open = false;
        if let Err(e) = self.collect(rust, &mut rust_fields, &mut flattened_open) {
            return self.fail(at, e);
        }
        for (name, ty, absent) in &rust_fields {
            let here = format!("{at}.{name}");
            let Some((ts_ty, optional)) = ts_fields.get(name) else {
                self.fail(
                    &here,
                    format!("in {rust} (`{ty}`), missing from lsp_ext.ts `{ts}`"),
                );
                continue;
            };
            if *optional && !absent {
                self.fail(
                    &here,
                    format!("always present in {rust} (`{ty}`), optional in lsp_ext.ts"),
                );
            }
            self.compared += 1;
            let nullable = union_members(ts_ty)
                .iter()
                .any(|m| m == "null" || m == "unknown" || m == "any");
            if ty.starts_with("Option<") && !optional && !nullable {
                self.fail(&here, format!("`{ty}` may be absent or null: lsp_ext.ts needs `?` or `| null`, has `{ts_ty}`"));
            }
            self.compare(&here, ty, ts_ty);
        }
        if !open && !flattened_open {
            for name in ts_fields.keys() {
                if !rust_fields.iter().any(|(n, ..)| n == name) {
                    self.fail(
                        &format!("{at}.{name}"),
                        format!("in lsp_ext.ts `{ts}`, not in {rust}"),
                    );
                }
            }
        }
    }

    /// A struct's fields with its flattened members'.
    fn collect(
        &self,
        rust: &str,
        out: &mut Vec<(String, String, bool)>,
        open: &mut bool,
    ) -> Result<(), String> {
        match self.rust.get(rust)? {
            RDecl::Struct { fields, flatten } => {
                out.extend(fields.iter().cloned());
                for f in flatten {
                    if f.contains("serde_json::")
                        || f.starts_with("HashMap")
                        || f.starts_with("BTreeMap")
                    {
                        *open = true;
                        continue;
                    }
                    match self.rust.get(f)? {
                        // A flattened tagged enum: its tag and some of its variants' fields.
                        RDecl::Tagged(Some(tag)) => {
                            out.push((tag.clone(), "String".into(), false));
                            *open = true;
                        }
                        _ => self.collect(f, out, open)?,
                    }
                }
                Ok(())
            }
            other => Err(format!(
                "`{rust}` is flattened or compared as a struct, but is {other:?}"
            )),
        }
    }
}

/// (method, params type, result type or None for a notification), from ext.rs.
fn rust_methods(ext: &str) -> Vec<(String, String, Option<String>)> {
    let consts: BTreeMap<String, String> = ext
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub const "))
        .filter_map(|l| {
            let (name, rest) = l.split_once(": &str = \"")?;
            Some((name.to_string(), rest.split('"').next()?.to_string()))
        })
        .collect();
    let mut out = Vec::new();
    let markers = ext
        .split("request_markers! {")
        .nth(1)
        .expect("ext.rs has request_markers!");
    for line in markers.lines().take_while(|l| l.trim() != "}") {
        let Some((_, rest)) = line.split_once(':') else {
            continue;
        };
        let Some((konst, types)) = rest.split_once(',') else {
            continue;
        };
        let Some((p, r)) = types.split_once("=>") else {
            continue;
        };
        let method = consts
            .get(konst.trim())
            .unwrap_or_else(|| panic!("no const {konst}"));
        out.push((
            method.clone(),
            p.trim().to_string(),
            Some(r.trim().trim_end_matches(';').to_string()),
        ));
    }
    for block in ext.split("impl Notification for ").skip(1) {
        let params = block
            .split("type Params = ")
            .nth(1)
            .and_then(|r| r.split(';').next())
            .unwrap();
        let konst = block
            .split("const METHOD: &'static str = ")
            .nth(1)
            .and_then(|r| r.split(';').next())
            .unwrap();
        out.push((
            consts[konst.trim()].clone(),
            params.trim().to_string(),
            None,
        ));
    }
    out
}

/// (method, params type, result type) from lsp_ext.ts's `RequestType`/`NotificationType`.
fn ts_methods(ts: &str) -> BTreeMap<String, (String, Option<String>)> {
    let flat = ts.replace('\n', " ");
    let mut out = BTreeMap::new();
    for (kind, rest) in flat
        .split("new lc.")
        .skip(1)
        .map(|s| (s.starts_with("RequestType"), s))
    {
        let Some(generics) = rest.split_once('<').map(|(_, g)| g) else {
            continue;
        };
        let Some((args, call)) = generics.split_once(">(") else {
            continue;
        };
        let Some(method) = call.split('"').nth(1) else {
            continue;
        };
        let args = args.replace("WithProgress<", "").replace('>', "");
        let parts: Vec<String> = args.split(',').map(|s| s.trim().to_string()).collect();
        let result = if kind { parts.get(1).cloned() } else { None };
        out.insert(method.to_string(), (parts[0].clone(), result));
    }
    out
}

#[test]
fn params_and_results_have_the_same_types_in_server_and_extension() {
    let Some(ts_text) = extension_ts() else {
        return;
    };
    let rust = RustSide::load();
    let ts = ts_side(&ts_text);
    let ts_methods = ts_methods(&ts_text);
    let mut checker = Checker::new(&rust, &ts);
    let methods = rust_methods(&read("server/src/lsp/ext.rs"));
    assert!(methods.len() >= 20, "{methods:?}");
    for (method, params, result) in &methods {
        let Some((ts_params, ts_result)) = ts_methods.get(method) else {
            checker.fail(
                method,
                "no RequestType/NotificationType in lsp_ext.ts".into(),
            );
            continue;
        };
        checker.compare_struct(&format!("{method} params"), params, ts_params);
        if let (Some(r), Some(t)) = (result, ts_result) {
            checker.compare(&format!("{method} result"), r, t);
        }
    }
    assert!(
        checker.errors.is_empty(),
        "lsp_ext.ts disagrees with the server's types:\n{}",
        checker.errors.join("\n")
    );
    assert!(
        checker.compared >= 150,
        "compared {} fields",
        checker.compared
    );
}

#[test]
fn the_typed_checker_finds_mismatches() {
    let mut decls = BTreeMap::new();
    rust_decls(
        "#[serde(rename_all = \"camelCase\")]\npub struct AResult {\n    pub port_name: String,\n    pub count: Option<u32>,\n    pub items: Vec<B>,\n    #[serde(skip_serializing_if = \"Vec::is_empty\")]\n    pub extra: Vec<String>,\n    pub kind: K,\n}\npub struct B {\n    pub ok: bool,\n}\n#[serde(rename_all = \"camelCase\")]\npub enum K {\n    FirstOne,\n    Second,\n}\n",
        "ext.rs",
        &mut decls,
    );
    let rust = RustSide { decls };
    let check = |ts_text: &str| {
        let ts = ts_side(ts_text);
        let mut c = Checker::new(&rust, &ts);
        c.compare_struct("m", "AResult", "AResult");
        c.errors
    };
    let good = "export type K = \"firstOne\" | \"second\";\nexport interface AResult {\n    portName: string;\n    count?: number;\n    items: B[];\n    extra?: string[];\n    kind: K;\n}\nexport interface B {\n    ok: boolean;\n}\n";
    assert_eq!(check(good), Vec::<String>::new());
    let bad = good
        .replace("portName: string", "portName: number")
        .replace("count?: number", "count: number")
        .replace("ok: boolean", "ok: boolean;\n    more: string")
        .replace("\"second\"", "\"third\"");
    let errors = check(&bad).join("\n");
    for want in [
        "m.portName: `String` is a string, but lsp_ext.ts says `number`",
        "m.count: `Option<u32>` may be absent or null",
        "m.items[].more: in lsp_ext.ts `B`, not in B",
        "m.kind: `K` is one of",
    ] {
        assert!(errors.contains(want), "missing {want:?} in:\n{errors}");
    }
    // A result that is an alias of a tasks type is followed.
    let mut decls = rust.decls.clone();
    rust_decls("pub type CResult = tasks::x::B;\n", "ext.rs", &mut decls);
    let aliased = RustSide { decls };
    let ts = ts_side("export interface CResult {\n    ok: string;\n}\n");
    let mut c = Checker::new(&aliased, &ts);
    c.compare("c", "CResult", "CResult");
    assert_eq!(
        c.errors,
        ["c.ok: `bool` is a boolean, but lsp_ext.ts says `string`"]
    );
    // A type that cannot be followed fails, naming it.
    let ts = ts_side("export interface X {\n    a: string;\n}\n");
    let mut c = Checker::new(&rust, &ts);
    c.compare("m", "Mystery", "X");
    assert!(
        c.errors[0].contains("cannot follow the Rust type `Mystery`"),
        "{:?}",
        c.errors
    );
}
