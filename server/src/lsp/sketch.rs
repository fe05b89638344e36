//! What the daemon understands of the sketch: the DPS settings in `dps_config.h` / `*.ino`.
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
//! line. Checks are the CLI's: [`tasks::identity::RegistrationId`] for the registration ID,
//! `tasks::build::settings::is_usual_id_scope` (`0ne` + 8 hex digits; a warning: the format is
//! not documented) for the ID Scope, and `tasks::build::DpsSettings`' endpoint check.

/// One of the settings we look for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingKind {
    RegistrationId,
    IdScope,
    Endpoint,
}

/// A setting found in a file. Columns are UTF-16 code units (LSP's default encoding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub kind: SettingKind,
    pub value: String,
    pub line: u32,
    /// Range of the value inside the quotes.
    pub start: u32,
    pub end: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
    Information,
}

/// A problem with a setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub line: u32,
    pub start: u32,
    pub end: u32,
    pub severity: Severity,
    /// Stable rule name (`registration-id`, `id-scope`, `endpoint`).
    pub code: &'static str,
    pub message: String,
}

/// Files we analyse: `*.ino` and `dps_config.h`.
pub fn is_sketch_file(path: &str) -> bool {
    let name = path
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(path)
        .to_ascii_lowercase();
    name.ends_with(".ino") || name == "dps_config.h"
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

fn utf16_len(s: &str) -> u32 {
    s.chars().map(|c| c.len_utf16() as u32).sum()
}

/// Find the settings in `text` (first occurrence of each kind wins).
pub fn scan(text: &str) -> Vec<Setting> {
    let mut found: Vec<Setting> = Vec::new();
    let mut in_block_comment = false;
    for (lineno, line) in text.lines().enumerate() {
        let code = strip_comments(line, &mut in_block_comment);
        if let Some(s) = scan_line(&code, line, lineno as u32) {
            if !found.iter().any(|f| f.kind == s.kind) {
                found.push(s);
            }
        }
    }
    found
}

/// The line with comments blanked out (same length, so columns still match).
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
                out.push(if c.is_ascii() { ' ' } else { c });
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

fn scan_line(code: &str, original: &str, line: u32) -> Option<Setting> {
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
            if let Some(kind) = classify(&code[start..i]) {
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
                let start = utf16_len(&original[..vstart]);
                let end = utf16_len(&original[..j]);
                return Some(Setting {
                    kind,
                    value,
                    line,
                    start,
                    end,
                });
            }
            continue;
        }
        i += 1;
    }
    None
}

/// Check the settings with the CLI's rules.
pub fn check(settings: &[Setting]) -> Vec<Finding> {
    settings.iter().filter_map(check_one).collect()
}

fn finding(
    s: &Setting,
    severity: Severity,
    code: &'static str,
    message: String,
) -> Option<Finding> {
    Some(Finding {
        line: s.line,
        start: s.start,
        end: s.end,
        severity,
        code,
        message,
    })
}

fn check_one(s: &Setting) -> Option<Finding> {
    match s.kind {
        SettingKind::RegistrationId => {
            if s.value.is_empty() {
                return finding(
                    s,
                    Severity::Information,
                    "registration-id",
                    "registration ID is empty: the DevKit uses `az-<mac>v<x>v<y>v<z>` from its MAC and firmware version"
                        .into(),
                );
            }
            match tasks::identity::RegistrationId::parse(&s.value) {
                Ok(_) => None,
                Err(e) => finding(s, Severity::Error, "registration-id", e.to_string()),
            }
        }
        SettingKind::IdScope => {
            if tasks::build::settings::is_usual_id_scope(&s.value) {
                None
            } else {
                finding(
                    s,
                    Severity::Warning,
                    "id-scope",
                    "ID Scope usually is `0ne` followed by 8 hex digits (see the DPS instance's Overview page)".into(),
                )
            }
        }
        // The build's own check (a known-good scope so that only the endpoint is judged).
        SettingKind::Endpoint => {
            match tasks::build::DpsSettings::new(&s.value, "0ne00000000", None) {
                Ok(_) => tasks::build::settings::endpoint_warning(&s.value)
                    .and_then(|w| finding(s, Severity::Warning, "endpoint", w)),
                Err(e) => finding(s, Severity::Error, "endpoint", e.to_string()),
            }
        }
    }
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

    #[test]
    fn finds_defines_and_skips_comments() {
        let s = scan(CONFIG);
        assert_eq!(s.len(), 3);
        let id = s
            .iter()
            .find(|s| s.kind == SettingKind::RegistrationId)
            .unwrap();
        assert_eq!(id.value, "my-devkit-01");
        assert_eq!(id.line, 4);
        assert_eq!(id.start, 29);
        assert_eq!(id.end, 29 + 12);
    }

    #[test]
    fn finds_constants_in_the_original_sketch_style() {
        let ino = "static const char* Global_Device_Endpoint = \"https://x.net\";\nstatic const char* ID_Scope = \"[ID Scope]\"; // fill in\nstatic const char* registrationId = \"\";\n";
        let s = scan(ino);
        assert_eq!(s.len(), 3);
        let f = check(&s);
        let codes: Vec<_> = f.iter().map(|f| (f.code, f.severity)).collect();
        assert!(codes.contains(&("endpoint", Severity::Error)), "{f:?}");
        assert!(codes.contains(&("id-scope", Severity::Warning)), "{f:?}");
        assert!(
            codes.contains(&("registration-id", Severity::Information)),
            "{f:?}"
        );
    }

    #[test]
    fn endpoint_and_scope_rules_are_the_builds() {
        let f = |t: &str| check(&scan(t));
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
                (found.len(), found[0].code, found[0].severity),
                (1, "endpoint", Severity::Warning),
                "{found:?}"
            );
        }
        assert_eq!(
            f("#define DPS_GLOBAL_DEVICE_ENDPOINT \"host/path\"")[0].code,
            "endpoint"
        );
        assert!(f("#define DPS_ID_SCOPE \"0NE1234abcd\"").is_empty());
        assert_eq!(
            f("#define DPS_ID_SCOPE \"0ne0000A0A\"")[0].severity,
            Severity::Warning
        );
    }

    #[test]
    fn columns_are_utf16() {
        let s = scan("const char* idScope = /* é */ \"0ne00000A0A\";");
        assert_eq!(s[0].start, 31);
    }

    #[test]
    fn sketch_files() {
        assert!(is_sketch_file("/a/b/DevKitDPS.ino"));
        assert!(is_sketch_file("C:\\x\\dps_config.h"));
        assert!(!is_sketch_file("/a/b/other.h"));
    }
}
