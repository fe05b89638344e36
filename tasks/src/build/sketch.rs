//! The DPS settings hard-coded in a sketch (`*.ino`, a hand-written `dps_config.h`), checked
//! with the build's rules and against the settings the build compiles in. One implementation
//! for both adapters: the daemon publishes the findings as diagnostics with quick fixes, and
//! `devkit build` prints the disagreements as warnings with file:line.
//!
//! The DPS settings (the editor's settings or `devkit build`'s options: each adapter names them
//! in its own words)
//! are the one source of truth: the build writes them into the generated `dps_config.h`. Users
//! coming from the old samples hard-code them in the sketch instead, and then the two disagree
//! silently; [`compare`] makes that visible.
//!
//! We do not parse C++. We look for the three settings the way people write them, one per
//! line, as a `#define` or a string constant:
//!
//! ```c
//! #define DPS_REGISTRATION_ID "my-devkit-01"
//! static const char* ID_Scope = "0ne00000A0A";
//! static const char *Global_Device_Endpoint = "global.azure-devices-provisioning.net";
//! ```
//!
//! A name matches when, lower-cased and without underscores, it ends in `registrationid`,
//! `idscope` or `endpoint`. The value is the first string literal after the name on that
//! line. Checks are the build's: [`crate::identity::RegistrationId`] for the registration ID,
//! [`is_usual_id_scope`] (`0ne` + 8 hex digits; a warning: the format is not documented) for
//! the ID Scope, and [`DpsSettings`]' endpoint check.

use super::settings::{
    endpoint_warning, is_usual_id_scope, DEFAULT_GLOBAL_ENDPOINT, GENERATED_HEADER_MARK,
};
use super::{DpsSettings, DPS_CONFIG_HEADER};
use crate::identity::RegistrationId;
use crate::text::{LineIndex, TextRange};
use std::path::Path;

/// One of the settings we look for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingKind {
    RegistrationId,
    IdScope,
    Endpoint,
}

impl SettingKind {
    /// The macro the generated `dps_config.h` defines for it.
    pub fn macro_name(self) -> &'static str {
        match self {
            SettingKind::RegistrationId => "DPS_REGISTRATION_ID",
            SettingKind::IdScope => "DPS_ID_SCOPE",
            SettingKind::Endpoint => "DPS_GLOBAL_DEVICE_ENDPOINT",
        }
    }
    /// What it is, in words. Messages name the setting by this, never by an adapter's name
    /// for it (the editor's setting id is the daemon's to give, the CLI's flag the CLI's).
    pub fn label(self) -> &'static str {
        match self {
            SettingKind::RegistrationId => "registration ID",
            SettingKind::IdScope => "ID Scope",
            SettingKind::Endpoint => "global device endpoint",
        }
    }
}

/// A setting found in a file. Positions are byte offsets into the file ([`crate::text`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub kind: SettingKind,
    /// The identifier it is written under (`DPS_ID_SCOPE`, `ID_Scope`).
    pub name: String,
    pub value: String,
    /// The value inside the quotes.
    pub range: TextRange,
    /// Where the setting's line starts.
    pub line_start: u32,
}

/// What [`scan`] finds in a file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sketch {
    pub settings: Vec<Setting>,
    /// The file includes the generated `dps_config.h`.
    pub includes_header: bool,
    /// The file is the header `devkit build` generates (its values are the last build's).
    pub generated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
    Information,
}

/// The rules, each with a stable code (the diagnostic's `code`, an anchor in
/// `docs/diagnostics.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    RegistrationId,
    IdScope,
    Endpoint,
    /// A hard-coded value that disagrees with (or is missing from) the settings.
    HardCoded,
}

impl Rule {
    pub const ALL: [Rule; 4] = [
        Rule::RegistrationId,
        Rule::IdScope,
        Rule::Endpoint,
        Rule::HardCoded,
    ];
    pub fn code(self) -> &'static str {
        match self {
            Rule::RegistrationId => "registration-id",
            Rule::IdScope => "id-scope",
            Rule::Endpoint => "endpoint",
            Rule::HardCoded => "hard-coded-setting",
        }
    }
}

/// A text replacement in the scanned file (byte offsets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub range: TextRange,
    pub new_text: String,
}

/// A fix for a finding: edits of the file and, for "move to settings", the setting to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fix {
    pub title: String,
    pub edits: Vec<Edit>,
    /// Write this value into this setting (done by the editor: it owns the settings).
    pub write_setting: Option<(SettingKind, String)>,
    pub preferred: bool,
}

/// A problem with a setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The value the finding is about (byte offsets into the file).
    pub range: TextRange,
    pub severity: Severity,
    pub rule: Rule,
    pub message: String,
    pub fixes: Vec<Fix>,
}

/// The settings the build compiles in, as the editor or the CLI holds them (`None`: not set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Configured {
    /// Empty: the default, [`DEFAULT_GLOBAL_ENDPOINT`].
    pub global_endpoint: String,
    pub id_scope: Option<String>,
    pub registration_id: Option<String>,
}

impl Configured {
    /// From raw setting values; empty strings are "not set".
    pub fn new(
        global_endpoint: Option<&str>,
        id_scope: Option<&str>,
        registration_id: Option<&str>,
    ) -> Self {
        let set = |v: Option<&str>| {
            v.map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        Configured {
            global_endpoint: set(global_endpoint)
                .unwrap_or_else(|| DEFAULT_GLOBAL_ENDPOINT.to_string()),
            id_scope: set(id_scope),
            registration_id: set(registration_id),
        }
    }

    fn value(&self, kind: SettingKind) -> Option<&str> {
        match kind {
            SettingKind::RegistrationId => self.registration_id.as_deref(),
            SettingKind::IdScope => self.id_scope.as_deref(),
            SettingKind::Endpoint => Some(self.global_endpoint.as_str()),
        }
    }
}

impl From<&DpsSettings> for Configured {
    fn from(d: &DpsSettings) -> Self {
        Configured::new(
            Some(&d.global_endpoint),
            Some(&d.id_scope),
            d.registration_id.as_ref().map(|r| r.as_str()),
        )
    }
}

/// Files we analyse: `*.ino` and `dps_config.h`.
pub fn is_sketch_file(path: &str) -> bool {
    let name = path
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(path)
        .to_ascii_lowercase();
    name.ends_with(".ino") || name == DPS_CONFIG_HEADER
}

fn classify(ident: &str) -> Option<SettingKind> {
    let norm: String = ident
        .chars()
        .filter(|c| *c != '_')
        .collect::<String>()
        .to_ascii_lowercase();
    if norm.ends_with("registrationid") {
        Some(SettingKind::RegistrationId)
    } else if norm.ends_with("idscope") {
        Some(SettingKind::IdScope)
    } else if norm.ends_with("endpoint") {
        Some(SettingKind::Endpoint)
    } else {
        None
    }
}

/// Find the settings in `text` (first occurrence of each kind wins).
pub fn scan(text: &str) -> Sketch {
    let mut sketch = Sketch {
        generated: text.starts_with(GENERATED_HEADER_MARK),
        ..Sketch::default()
    };
    let mut in_block_comment = false;
    let mut line_start = 0u32;
    for raw in text.split_inclusive('\n') {
        let start = line_start;
        line_start += raw.len() as u32;
        let line = raw.strip_suffix('\n').unwrap_or(raw);
        let line = line.strip_suffix('\r').unwrap_or(line);
        let code = strip_comments(line, &mut in_block_comment);
        let directive = code.trim_start();
        if directive.starts_with('#')
            && directive[1..].trim_start().starts_with("include")
            && directive.contains(DPS_CONFIG_HEADER)
        {
            sketch.includes_header = true;
            continue;
        }
        if let Some(s) = scan_line(&code, start) {
            if !sketch.settings.iter().any(|f| f.kind == s.kind) {
                sketch.settings.push(s);
            }
        }
    }
    sketch
}

/// The line with comments blanked out (same length in bytes, so offsets still match).
fn strip_comments(line: &str, in_block: &mut bool) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if *in_block {
            if c == '*' && chars.peek() == Some(&'/') {
                chars.next();
                *in_block = false;
                out.push_str("  ");
            } else {
                // Blank, keeping the byte length.
                out.extend(std::iter::repeat_n(' ', c.len_utf8()));
            }
            continue;
        }
        if in_string {
            out.push(c);
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '/' if chars.peek() == Some(&'/') => break,
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                *in_block = true;
                out.push_str("  ");
            }
            _ => out.push(c),
        }
    }
    out
}

/// The setting on one line (comments blanked), its range offset by `line_start`.
fn scan_line(code: &str, line_start: u32) -> Option<Setting> {
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'"' {
            // A string before any setting name: skip it.
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let name = &code[start..i];
            if let Some(kind) = classify(name) {
                // The first string literal after the name.
                let rest = &code[i..];
                let q = rest.find('"')?;
                let vstart = i + q + 1;
                let mut j = vstart;
                let mut value = String::new();
                while j < bytes.len() && bytes[j] != b'"' {
                    if bytes[j] == b'\\' && j + 1 < bytes.len() {
                        j += 1;
                    }
                    let ch = code[j..].chars().next()?;
                    value.push(ch);
                    j += ch.len_utf8();
                }
                if j >= bytes.len() {
                    return None; // unterminated
                }
                return Some(Setting {
                    kind,
                    name: name.to_string(),
                    value,
                    range: TextRange::new(line_start + vstart as u32, line_start + j as u32),
                    line_start,
                });
            }
            continue;
        }
        i += 1;
    }
    None
}

/// Every finding for a file: the build's rules on each value and, when the settings are
/// known, the disagreements with them (not in the generated header: its values are simply
/// the last build's, and the next build rewrites them).
pub fn findings(text: &str, configured: Option<&Configured>) -> Vec<Finding> {
    let sketch = scan(text);
    let mut out = check(&sketch.settings);
    if let (Some(c), false) = (configured, sketch.generated) {
        out.extend(compare(&sketch, c));
    }
    out
}

/// Check the settings with the build's rules.
pub fn check(settings: &[Setting]) -> Vec<Finding> {
    settings.iter().filter_map(check_one).collect()
}

fn finding(
    s: &Setting,
    severity: Severity,
    rule: Rule,
    message: String,
    fixes: Vec<Fix>,
) -> Finding {
    Finding {
        range: s.range,
        severity,
        rule,
        message,
        fixes,
    }
}

/// "Use <value>": replace the value inside the quotes.
fn replace_value(s: &Setting, title: String, value: &str, preferred: bool) -> Fix {
    Fix {
        title,
        edits: vec![Edit {
            range: s.range,
            new_text: value.to_string(),
        }],
        write_setting: None,
        preferred,
    }
}

/// Why a value is refused by the build, if it is (warnings are not refusals).
fn refusal(kind: SettingKind, value: &str) -> Option<String> {
    match kind {
        SettingKind::RegistrationId if value.is_empty() => None,
        SettingKind::RegistrationId => RegistrationId::parse(value).err().map(|e| e.to_string()),
        // A known-good value for the other fields, so that only this one is judged.
        SettingKind::IdScope => DpsSettings::new(DEFAULT_GLOBAL_ENDPOINT, value, None)
            .err()
            .map(|e| e.to_string()),
        SettingKind::Endpoint => DpsSettings::new(value, "0ne00000000", None)
            .err()
            .map(|e| e.to_string()),
    }
}

/// The endpoint without a scheme, a path or a trailing dot, when that makes it valid.
fn endpoint_host(value: &str) -> Option<String> {
    let v = value.trim();
    let v = v.split_once("://").map_or(v, |(_, rest)| rest);
    let v = v.split(['/', '?', '#']).next().unwrap_or(v);
    let v = v.strip_suffix('.').unwrap_or(v);
    (v != value && refusal(SettingKind::Endpoint, v).is_none()).then(|| v.to_string())
}

/// `0ne` + upper-case hex, as the portal shows ID Scopes.
fn canonical_id_scope(value: &str) -> String {
    format!("0ne{}", value[3..].to_ascii_uppercase())
}

fn check_one(s: &Setting) -> Option<Finding> {
    let rule = match s.kind {
        SettingKind::RegistrationId => Rule::RegistrationId,
        SettingKind::IdScope => Rule::IdScope,
        SettingKind::Endpoint => Rule::Endpoint,
    };
    match s.kind {
        SettingKind::RegistrationId if s.value.is_empty() => Some(finding(
            s,
            Severity::Information,
            rule,
            "registration ID is empty: the DevKit uses `az-<mac>v<x>v<y>v<z>` from its MAC and firmware version".into(),
            vec![],
        )),
        SettingKind::RegistrationId => {
            let why = refusal(s.kind, &s.value)?;
            let fixes = RegistrationId::suggest(&s.value)
                .map(|id| vec![replace_value(s, format!("Use \"{id}\" (lower case, only a-z, 0-9 and -)"), id.as_str(), true)])
                .unwrap_or_default();
            Some(finding(s, Severity::Error, rule, why, fixes))
        }
        SettingKind::IdScope => {
            if is_usual_id_scope(&s.value) {
                let canonical = canonical_id_scope(&s.value);
                (canonical != s.value).then(|| {
                    finding(
                        s,
                        Severity::Information,
                        rule,
                        format!("ID Scope {:?} is written {canonical:?} on the DPS instance's overview page", s.value),
                        vec![replace_value(s, format!("Write it as \"{canonical}\""), &canonical, true)],
                    )
                })
            } else {
                Some(finding(
                    s,
                    Severity::Warning,
                    rule,
                    "ID Scope usually is `0ne` followed by 8 hex digits (see the DPS instance's Overview page)".into(),
                    vec![],
                ))
            }
        }
        SettingKind::Endpoint => match refusal(s.kind, &s.value) {
            Some(why) => {
                let fixes = endpoint_host(&s.value)
                    .map(|host| vec![replace_value(s, format!("Use \"{host}\" (no scheme, no path)"), &host, true)])
                    .unwrap_or_default();
                Some(finding(s, Severity::Error, rule, why, fixes))
            }
            None => endpoint_warning(&s.value).map(|w| finding(s, Severity::Warning, rule, w, vec![])),
        },
    }
}

/// Whether a hard-coded value says the same as the setting (host names in any case; an empty
/// registration ID is the unset one).
fn agrees(kind: SettingKind, hard_coded: &str, configured: Option<&str>) -> bool {
    match (kind, configured) {
        (SettingKind::Endpoint, Some(c)) => hard_coded.trim().eq_ignore_ascii_case(c),
        (SettingKind::RegistrationId, None) => hard_coded.is_empty(),
        (_, Some(c)) => hard_coded.trim() == c,
        (_, None) => false,
    }
}

/// The hard-coded values that disagree with the settings the build compiles in, or that stand
/// in for a setting that is not set (warnings), each with its fixes: "Use the setting's
/// value", and "Move <value> to settings" (when the build would accept the value). Moving
/// comments out a `#define` of the generated header's own macro, and otherwise makes the
/// constant read that macro (`ID_Scope = DPS_ID_SCOPE;`), including `dps_config.h` when the
/// file does not. A value equal to its setting is information: it shadows the setting, so a
/// later change of the setting would not reach the device; its fix makes the sketch read it.
pub fn compare(sketch: &Sketch, configured: &Configured) -> Vec<Finding> {
    sketch
        .settings
        .iter()
        .filter_map(|s| {
            let setting = configured.value(s.kind);
            if agrees(s.kind, &s.value, setting) {
                if s.value.is_empty() {
                    return None;
                }
                let label = s.kind.label();
                let message = format!(
                    "{label} {:?} is hard-coded here, the same as the {label} setting now; the sketch will not follow a change of the setting: read {} from dps_config.h instead",
                    s.value,
                    s.kind.macro_name()
                );
                let read = Fix {
                    title: format!("Read {} from the settings (dps_config.h)", s.kind.macro_name()),
                    write_setting: None,
                    ..move_to_settings(sketch, s)
                };
                return Some(finding(s, Severity::Information, Rule::HardCoded, message, vec![read]));
            }
            let label = s.kind.label();
            let message = match setting {
                Some(v) => format!(
                    "{label} {:?} is hard-coded here, but the build compiles in {v:?} from the {label} setting; keep one: move it to the settings or use the setting's value",
                    s.value
                ),
                None if s.kind == SettingKind::RegistrationId => format!(
                    "{label} {:?} is hard-coded here, but the {label} setting is not set, so the build compiles in none (the device uses az-<mac>v<x>v<y>v<z>); move it to the settings",
                    s.value
                ),
                None => format!(
                    "{label} {:?} is hard-coded here, but the {label} setting is not set, and the build compiles in the setting, not this value; move it to the settings",
                    s.value
                ),
            };
            let mut fixes = Vec::new();
            if refusal(s.kind, &s.value).is_none() && !s.value.is_empty() {
                fixes.push(move_to_settings(sketch, s));
            }
            if let Some(v) = setting {
                fixes.push(replace_value(s, format!("Use the setting's value \"{v}\""), v, false));
            }
            Some(finding(s, Severity::Warning, Rule::HardCoded, message, fixes))
        })
        .collect()
}

fn move_to_settings(sketch: &Sketch, s: &Setting) -> Fix {
    let macro_name = s.kind.macro_name();
    let mut edits = Vec::new();
    if s.name == macro_name {
        // `#define DPS_ID_SCOPE "..."`: the generated header defines it.
        edits.push(Edit {
            range: TextRange::empty(s.line_start),
            new_text: format!(
                "// Moved to the {} setting (dps_config.h): ",
                s.kind.label()
            ),
        });
    } else {
        if !sketch.includes_header {
            edits.push(Edit {
                range: TextRange::empty(0),
                new_text: format!("#include \"{DPS_CONFIG_HEADER}\" // generated from the DPS settings by `devkit build`\n"),
            });
        }
        // The quotes too: the macro is the string.
        edits.push(Edit {
            range: TextRange::new(s.range.start.saturating_sub(1), s.range.end + 1),
            new_text: macro_name.to_string(),
        });
    }
    Fix {
        title: format!("Move \"{}\" to the {} setting", s.value, s.kind.label()),
        edits,
        write_setting: Some((s.kind, s.value.clone())),
        preferred: true,
    }
}

/// Largest sketch file read by [`hard_coded_in`]; larger ones are not sketches we can judge.
const MAX_SKETCH_FILE: u64 = 1 << 20;

/// `devkit build`'s warnings: every `*.ino` of the sketch directory (and a `dps_config.h` not
/// generated by us) compared with the settings the build compiles in, the disagreements as
/// `<file>:<line>: <message>`. Unreadable files are skipped (the build reports them).
pub fn hard_coded_in(sketch_dir: &Path, dps: &DpsSettings) -> Vec<String> {
    let configured = Configured::from(dps);
    let Ok(entries) = std::fs::read_dir(sketch_dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_sketch_file(&p.to_string_lossy()))
        .filter(|p| p.metadata().is_ok_and(|m| m.len() <= MAX_SKETCH_FILE))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let sketch = scan(&text);
        if sketch.generated {
            continue;
        }
        let index = LineIndex::new(&text);
        // Values equal to their setting compile the same: nothing to warn about here.
        for f in compare(&sketch, &configured)
            .into_iter()
            .filter(|f| f.severity == Severity::Warning)
        {
            let line = index.line_col(f.range.start).line + 1;
            out.push(format!("{}:{line}: {}", path.display(), f.message));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"// DPS settings
#define DPS_GLOBAL_ENDPOINT "global.azure-devices-provisioning.net"
#define DPS_ID_SCOPE "0ne00000A0A"
// #define DPS_REGISTRATION_ID "commented-out"
#define DPS_REGISTRATION_ID "my-devkit-01"
"#;

    fn codes(f: &[Finding]) -> Vec<(&'static str, Severity)> {
        f.iter().map(|f| (f.rule.code(), f.severity)).collect()
    }

    /// The file with the fix's edits applied (edits in order, not overlapping).
    fn apply(text: &str, fix: &Fix) -> String {
        let mut text = text.to_string();
        for e in fix.edits.iter().rev() {
            text.replace_range(e.range.as_usize(), &e.new_text);
        }
        text
    }

    #[test]
    fn finds_defines_and_skips_comments() {
        let s = scan(CONFIG).settings;
        assert_eq!(s.len(), 3);
        let id = s
            .iter()
            .find(|s| s.kind == SettingKind::RegistrationId)
            .unwrap();
        assert_eq!(id.value, "my-devkit-01");
        assert_eq!(id.name, "DPS_REGISTRATION_ID");
        let index = LineIndex::new(CONFIG);
        let at = index.line_col(id.range.start);
        assert_eq!((at.line, at.col), (4, 29));
        assert_eq!(id.range.end - id.range.start, 12);
        assert_eq!(&CONFIG[id.range.as_usize()], "my-devkit-01");
    }

    #[test]
    fn finds_constants_in_the_original_sketch_style() {
        let ino = "static const char* Global_Device_Endpoint = \"https://x.net\";\nstatic const char* ID_Scope = \"[ID Scope]\"; // fill in\nstatic const char* registrationId = \"\";\n";
        let s = scan(ino);
        assert_eq!(s.settings.len(), 3);
        assert!(!s.includes_header && !s.generated);
        let f = check(&s.settings);
        let codes = codes(&f);
        assert!(codes.contains(&("endpoint", Severity::Error)), "{f:?}");
        assert!(codes.contains(&("id-scope", Severity::Warning)), "{f:?}");
        assert!(
            codes.contains(&("registration-id", Severity::Information)),
            "{f:?}"
        );
        // The endpoint's fix drops the scheme.
        let e = f.iter().find(|f| f.rule == Rule::Endpoint).unwrap();
        assert_eq!(e.fixes[0].edits[0].new_text, "x.net");
    }

    #[test]
    fn the_firmware_sketch_hard_codes_nothing() {
        let ino = include_str!("../../../firmware/DevKitDPS/DevKitDPS.ino");
        let s = scan(ino);
        assert!(s.settings.is_empty(), "{:?}", s.settings);
        assert!(s.includes_header);
        let header = DpsSettings::new(DEFAULT_GLOBAL_ENDPOINT, "0ne00000A0A", Some("dev-1"))
            .unwrap()
            .0
            .render_header();
        let generated = scan(&header);
        assert!(generated.generated);
        // The generated header never disagrees with other settings: it is the last build's.
        assert!(findings(
            &header,
            Some(&Configured::new(None, Some("0ne00000B0B"), None))
        )
        .is_empty());
    }

    #[test]
    fn endpoint_and_scope_rules_are_the_builds() {
        let f = |t: &str| check(&scan(t).settings);
        assert!(
            f("#define DPS_GLOBAL_DEVICE_ENDPOINT \"global.azure-devices-provisioning.net\"")
                .is_empty()
        );
        // Valid, but a real DevKit dials 443 and trusts only Azure: a warning, not silence.
        for endpoint in ["127.0.0.1:8443", "localhost"] {
            let found = f(&format!(
                "#define DPS_GLOBAL_DEVICE_ENDPOINT \"{endpoint}\""
            ));
            assert_eq!(
                (found.len(), found[0].rule, found[0].severity),
                (1, Rule::Endpoint, Severity::Warning),
                "{found:?}"
            );
        }
        let path = f("#define DPS_GLOBAL_DEVICE_ENDPOINT \"host.example/path\"");
        assert_eq!(path[0].rule, Rule::Endpoint);
        assert_eq!(path[0].fixes[0].edits[0].new_text, "host.example");
        assert!(f("#define DPS_ID_SCOPE \"0ne1234ABCD\"").is_empty());
        // The usual shape in another case: information, with a fix to the portal's spelling.
        let case = f("#define DPS_ID_SCOPE \"0NE1234abcd\"");
        assert_eq!(codes(&case), [("id-scope", Severity::Information)]);
        assert_eq!(case[0].fixes[0].edits[0].new_text, "0ne1234ABCD");
        assert_eq!(
            f("#define DPS_ID_SCOPE \"0ne0000A0A\"")[0].severity,
            Severity::Warning
        );
        let id = f("#define DPS_REGISTRATION_ID \"My_DevKit\"");
        assert_eq!(codes(&id), [("registration-id", Severity::Error)]);
        assert_eq!(id[0].fixes[0].edits[0].new_text, "my-devkit");
    }

    #[test]
    fn hard_coded_values_that_disagree_with_the_settings_get_both_fixes() {
        let ino = "static const char* ID_Scope = \"0ne00000A0A\";\nvoid setup() {}\n";
        let settings = Configured::new(None, Some("0ne00000B0B"), None);
        let f = findings(ino, Some(&settings));
        assert_eq!(codes(&f), [("hard-coded-setting", Severity::Warning)]);
        assert!(
            f[0].message.contains("\"0ne00000A0A\"") && f[0].message.contains("\"0ne00000B0B\"")
        );
        let titles: Vec<_> = f[0].fixes.iter().map(|x| x.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "Move \"0ne00000A0A\" to the ID Scope setting",
                "Use the setting's value \"0ne00000B0B\""
            ]
        );
        let moved = apply(ino, &f[0].fixes[0]);
        assert_eq!(
            moved,
            "#include \"dps_config.h\" // generated from the DPS settings by `devkit build`\nstatic const char* ID_Scope = DPS_ID_SCOPE;\nvoid setup() {}\n"
        );
        assert_eq!(
            f[0].fixes[0].write_setting,
            Some((SettingKind::IdScope, "0ne00000A0A".to_string()))
        );
        assert!(scan(&moved).settings.is_empty());
        let used = apply(ino, &f[0].fixes[1]);
        assert!(used.contains("\"0ne00000B0B\""));
        assert!(findings(&used, Some(&settings))
            .iter()
            .all(|f| f.severity == Severity::Information));
        // No settings known: only the build's rules.
        assert!(findings(ino, None).is_empty());
        // The same value: information (it shadows the setting), the fix makes the sketch read
        // the setting; endpoints compare in any case.
        let same = findings(ino, Some(&Configured::new(None, Some("0ne00000A0A"), None)));
        assert_eq!(
            codes(&same),
            [("hard-coded-setting", Severity::Information)]
        );
        assert_eq!(same[0].fixes.len(), 1);
        assert_eq!(same[0].fixes[0].write_setting, None);
        assert!(apply(ino, &same[0].fixes[0]).contains("ID_Scope = DPS_ID_SCOPE;"));
        let endpoint = findings(
            "#define X_ENDPOINT \"Global.Azure-Devices-Provisioning.net\"",
            Some(&Configured::new(Some(""), Some("0ne00000A0A"), None)),
        );
        assert_eq!(
            codes(&endpoint),
            [("hard-coded-setting", Severity::Information)]
        );
        // An empty registration ID and no setting: both mean the automatic ID.
        assert!(findings(
            "static const char* registrationId = \"\";",
            Some(&Configured::new(None, None, None))
        )
        .iter()
        .all(|f| f.rule != Rule::HardCoded));
    }

    #[test]
    fn a_define_of_the_generated_macro_is_commented_out_when_moved() {
        let ino = "#include \"dps_config.h\"\n#define DPS_REGISTRATION_ID \"dev-7\"\n";
        let f = findings(ino, Some(&Configured::new(None, Some("0ne00000A0A"), None)));
        assert_eq!(codes(&f), [("hard-coded-setting", Severity::Warning)]);
        assert!(f[0].message.contains("is not set"), "{}", f[0].message);
        assert_eq!(f[0].fixes.len(), 1, "no setting value to use");
        let moved = apply(ino, &f[0].fixes[0]);
        assert_eq!(
            moved,
            "#include \"dps_config.h\"\n// Moved to the registration ID setting (dps_config.h): #define DPS_REGISTRATION_ID \"dev-7\"\n"
        );
        // An invalid value is not offered for the settings (the build would refuse it).
        let bad = findings(
            "#define DPS_REGISTRATION_ID \"Dev_7\"",
            Some(&Configured::new(None, Some("0ne00000A0A"), Some("dev-8"))),
        );
        let hard = bad.iter().find(|f| f.rule == Rule::HardCoded).unwrap();
        assert_eq!(hard.fixes.len(), 1);
        assert!(hard.fixes[0].title.starts_with("Use the setting's value"));
    }

    #[test]
    fn the_build_warns_with_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Sketch.ino"),
            "#include \"dps_config.h\"\n\nstatic const char* Global_Device_Endpoint = \"other.azure-devices-provisioning.net\";\n",
        )
        .unwrap();
        let (dps, _) = DpsSettings::new(DEFAULT_GLOBAL_ENDPOINT, "0ne00000A0A", None).unwrap();
        // The generated header is not judged.
        super::super::write_header(dir.path(), &dps).unwrap();
        let w = hard_coded_in(dir.path(), &dps);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("Sketch.ino:3: "), "{}", w[0]);
        assert!(
            w[0].contains("other.azure-devices-provisioning.net")
                && w[0].contains(DEFAULT_GLOBAL_ENDPOINT)
        );
    }

    proptest::proptest! {
        /// Any text: no panic, ranges on one line and on character boundaries, and every
        /// edit inside the file.
        #[test]
        fn any_text_scans_within_its_lines(text in "(.|\n){0,400}") {
            let index = LineIndex::new(&text);
            let settings = Configured::new(Some("h.example"), Some("0ne00000A0A"), Some("dev-1"));
            for f in findings(&text, Some(&settings)) {
                let r = f.range;
                proptest::prop_assert!(r.start <= r.end && text.get(r.as_usize()).is_some(), "{f:?}");
                proptest::prop_assert!(!text[r.as_usize()].contains('\n'), "{f:?}");
                proptest::prop_assert_eq!(index.line_col(r.start).line, index.line_col(r.end).line);
                for e in f.fixes.iter().flat_map(|x| &x.edits) {
                    proptest::prop_assert!(e.range.start <= e.range.end && text.get(e.range.as_usize()).is_some());
                }
            }
        }

        /// Any quoted value is found as written, and a registration ID's fix is a valid ID.
        #[test]
        fn values_are_found_and_fixes_are_valid(value in "[^\"\\\\\r\n]{0,80}") {
            let s = scan(&format!("#define DPS_REGISTRATION_ID \"{value}\" // x")).settings;
            proptest::prop_assert_eq!(&s[0].value, &value);
            for f in check(&s) {
                for fix in f.fixes {
                    proptest::prop_assert!(RegistrationId::parse(&fix.edits[0].new_text).is_ok());
                }
            }
        }
    }

    /// Byte offsets, whatever comes before the value on its line (the daemon converts to
    /// UTF-16 columns).
    #[test]
    fn ranges_are_byte_offsets() {
        let text = "// é日本\nconst char* idScope = /* é日本 */ \"0ne00000A0A\"; // é\n";
        let s = scan(text).settings;
        assert_eq!(&text[s[0].range.as_usize()], "0ne00000A0A");
        let at = LineIndex::new(text).line_col(s[0].range.start);
        // `é` is 2 bytes, `日` and `本` 3 each.
        assert_eq!((at.line, at.col), (1, 38));
        assert_eq!(s[0].line_start, "// é日本\n".len() as u32);
    }

    #[test]
    fn sketch_files() {
        assert!(is_sketch_file("/a/b/DevKitDPS.ino"));
        assert!(is_sketch_file("C:\\x\\dps_config.h"));
        assert!(!is_sketch_file("/a/b/other.h"));
    }
}
