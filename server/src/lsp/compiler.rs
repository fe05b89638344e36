//! Compiler output (arm-none-eabi-gcc via arduino-cli) -> diagnostics per file.
//!
//! GCC prints `path:line:col: error: message` (column optional; `fatal error`, `warning` and
//! `note` too). arduino-cli's preprocessed sketch carries `#line` directives, so errors in
//! the `.ino` point back at the `.ino`.

use super::sketch::Severity;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompilerMessage {
    pub path: PathBuf,
    /// 0-based.
    pub line: u32,
    /// 0-based; 0 when the compiler gave no column.
    pub column: u32,
    pub severity: Severity,
    pub message: String,
}

/// Parse every `path:line[:col]: (fatal error|error|warning|note): message` line. Relative
/// paths are taken relative to `base`.
pub fn parse(output: &str, base: &Path) -> Vec<CompilerMessage> {
    output.lines().filter_map(|l| parse_line(l.trim_end_matches('\r'), base)).collect()
}

fn parse_line(line: &str, base: &Path) -> Option<CompilerMessage> {
    const KINDS: &[(&str, Severity)] = &[
        (": fatal error: ", Severity::Error),
        (": error: ", Severity::Error),
        (": warning: ", Severity::Warning),
        (": note: ", Severity::Information),
    ];
    let (idx, marker, severity) =
        KINDS.iter().filter_map(|(m, s)| line.find(m).map(|i| (i, *m, *s))).min_by_key(|(i, _, _)| *i)?;
    let location = &line[..idx];
    let message = line[idx + marker.len()..].trim().to_string();
    // location = path:line[:col]; the path itself may contain ':' (Windows drive letters).
    let mut parts = location.rsplitn(3, ':');
    let last = parts.next()?;
    let mid = parts.next()?;
    let (path, line_no, col) = match (mid.parse::<u32>(), last.parse::<u32>()) {
        (Ok(l), Ok(c)) => (&location[..location.len() - last.len() - mid.len() - 2], l, c),
        (Err(_), Ok(l)) => (&location[..location.len() - last.len() - 1], l, 0),
        _ => return None,
    };
    if path.is_empty() || line_no == 0 {
        return None;
    }
    let path = PathBuf::from(path);
    let path = if path.is_absolute() { path } else { base.join(path) };
    Some(CompilerMessage { path, line: line_no - 1, column: col.saturating_sub(1), severity, message })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_gcc_errors_and_warnings() {
        let out = "/s/DevKitDPS/DevKitDPS.ino: In function 'void setup()':\n\
                   /s/DevKitDPS/DevKitDPS.ino:12:5: error: 'foo' was not declared in this scope\r\n\
                   dps_config.h:3:1: warning: extra tokens\n\
                   /s/x.cpp:7: error: no column\n\
                   compilation terminated.\n";
        let m = parse(out, Path::new("/s/DevKitDPS"));
        assert_eq!(m.len(), 3, "{m:?}");
        assert_eq!(m[0].path, PathBuf::from("/s/DevKitDPS/DevKitDPS.ino"));
        assert_eq!((m[0].line, m[0].column), (11, 4));
        assert_eq!(m[0].severity, Severity::Error);
        assert_eq!(m[0].message, "'foo' was not declared in this scope");
        assert_eq!(m[1].path, PathBuf::from("/s/DevKitDPS/dps_config.h"));
        assert_eq!(m[1].severity, Severity::Warning);
        assert_eq!((m[2].path.clone(), m[2].line, m[2].column), (PathBuf::from("/s/x.cpp"), 6, 0));
    }
}
