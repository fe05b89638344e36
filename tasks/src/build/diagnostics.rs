//! gcc diagnostics (`file:line:col: error: message`) turned into structured data.
//!
//! arduino-cli passes the compiler's output through unchanged, and gcc's format is stable
//! (`-fdiagnostics-format=text`): `<file>:<line>[:<column>]: <severity>: <message>`. The file
//! may itself contain `:` (Windows drive letters), so the line and column are taken from the
//! right of the prefix, never the left. Lines that are not diagnostics (carets, notes about
//! includes, progress text) are simply not diagnostics: the parser never fails and never panics.

use serde::Serialize;

/// How serious a diagnostic is, as gcc names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Note,
}

/// One compiler diagnostic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Diagnostic {
    /// The file as the compiler printed it (arduino-cli maps `.ino` lines back to the sketch).
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, when gcc printed one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    pub severity: Severity,
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        };
        match self.column {
            Some(c) => write!(
                f,
                "{}:{}:{}: {sev}: {}",
                self.file, self.line, c, self.message
            ),
            None => write!(f, "{}:{}: {sev}: {}", self.file, self.line, self.message),
        }
    }
}

const MARKERS: &[(&str, Severity)] = &[
    (": fatal error: ", Severity::Error),
    (": error: ", Severity::Error),
    (": warning: ", Severity::Warning),
    (": note: ", Severity::Note),
];

/// Parse one line of compiler output; `None` when it is not a `file:line[:col]: sev: msg` line.
pub fn parse_line(line: &str) -> Option<Diagnostic> {
    let line = line.trim_end_matches(['\r', '\n']);
    // The earliest marker wins: a message may itself contain ": error: ".
    let (at, marker, severity) = MARKERS
        .iter()
        .filter_map(|(m, s)| line.find(m).map(|at| (at, *m, *s)))
        .min_by_key(|(at, _, _)| *at)?;
    let prefix = &line[..at];
    let message = line[at + marker.len()..].trim().to_string();
    let (rest, last) = prefix.rsplit_once(':')?;
    let last: u32 = parse_number(last)?;
    let (file, line_no, column) = match rest.rsplit_once(':') {
        Some((file, l)) if parse_number(l).is_some() => (file, parse_number(l)?, Some(last)),
        _ => (rest, last, None),
    };
    let file = file.trim();
    if file.is_empty() || line_no == 0 {
        return None;
    }
    Some(Diagnostic {
        file: file.to_string(),
        line: line_no,
        column,
        severity,
        message,
    })
}

fn parse_number(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Every diagnostic in a block of compiler output.
pub fn parse_output(text: &str) -> Vec<Diagnostic> {
    text.lines().filter_map(parse_line).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn error_with_column() {
        let d = parse_line(
            "/home/u/DevKitDPS/DevKitDPS.ino:12:5: error: 'foo' was not declared in this scope",
        )
        .unwrap();
        assert_eq!(d.file, "/home/u/DevKitDPS/DevKitDPS.ino");
        assert_eq!((d.line, d.column), (12, Some(5)));
        assert_eq!(d.severity, Severity::Error);
        assert_eq!(d.message, "'foo' was not declared in this scope");
    }

    #[test]
    fn windows_path_warning_and_fatal() {
        let d = parse_line(r"C:\Users\me\DevKitDPS\DevKitDPS.ino:3:10: fatal error: dps_config.h: No such file or directory").unwrap();
        assert_eq!(d.file, r"C:\Users\me\DevKitDPS\DevKitDPS.ino");
        assert_eq!(
            (d.line, d.column, d.severity),
            (3, Some(10), Severity::Error)
        );
        assert_eq!(d.message, "dps_config.h: No such file or directory");
        let w = parse_line("a.cpp:7: warning: unused variable 'x'\r").unwrap();
        assert_eq!((w.line, w.column, w.severity), (7, None, Severity::Warning));
    }

    #[test]
    fn non_diagnostics_are_ignored() {
        for line in [
            "",
            "Sketch uses 12345 bytes (1%) of program storage space.",
            "   ^~~~",
            "In file included from /x/y.h:3:0,",
            "error: something without a location",
            "file.c:abc: error: not a line number",
            "file.c:0:1: error: line zero",
            ":1:2: error: no file",
        ] {
            assert_eq!(parse_line(line), None, "{line:?}");
        }
    }

    #[test]
    fn display_round_trips() {
        let text = "x.ino:1:2: error: boom\nnoise\ny.h:9: warning: hmm\n";
        let ds = parse_output(text);
        assert_eq!(ds.len(), 2);
        assert_eq!(ds[0].to_string(), "x.ino:1:2: error: boom");
        assert_eq!(parse_line(&ds[1].to_string()), Some(ds[1].clone()));
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = parse_line(&s);
        }

        #[test]
        fn never_panics_on_near_misses(file in "[a-zA-Z:/\\\\. ]{0,12}", a in "[0-9:]{0,8}", sev in "(error|warning|note|fatal error|)", msg in "\\PC{0,20}") {
            let line = format!("{file}:{a}: {sev}: {msg}");
            if let Some(d) = parse_line(&line) {
                prop_assert!(d.line > 0);
                prop_assert!(!d.file.is_empty());
            }
        }

        #[test]
        fn well_formed_lines_parse(file in "[a-zA-Z0-9_/.]{1,20}", line in 1u32..100000, col in 1u32..500, msg in "[a-zA-Z0-9 ']{0,40}") {
            let text = format!("{file}:{line}:{col}: error: {msg}");
            let d = parse_line(&text).unwrap();
            prop_assert_eq!(d.file, file);
            prop_assert_eq!(d.line, line);
            prop_assert_eq!(d.column, Some(col));
            prop_assert_eq!(d.message, msg.trim());
        }
    }
}
