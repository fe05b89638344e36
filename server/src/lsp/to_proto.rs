//! Conversions from `tasks` types to the protocol's types (rust-analyzer's `to_proto`): the one
//! place where a domain value becomes a wire value, so handlers only call tasks and convert.

use crate::lsp::ext::{CompilerDiagnostic, PortInfo, RegistrationEventParams};
use crate::lsp::ext::{WriteSettingParams, CMD_WRITE_SETTING};
use std::collections::HashMap;
use std::path::Path;
use tasks::build as b;
use tasks::build::sketch::{self, Severity};
use tasks::text::{LineCol, LineIndex, TextRange};
use tower_lsp_server::lsp_types::{
    CodeAction, CodeActionKind, CodeDescription, Command, Diagnostic, DiagnosticSeverity,
    NumberOrString, Position, Range, TextEdit, Uri, WorkspaceEdit,
};
use tower_lsp_server::UriExt;

/// A serial port as `devkit/listPorts` lists it, with what the daemon knows of its use.
pub fn port_info(
    port: tasks::monitor::ports::PortInfo,
    held_by: Option<String>,
    monitor_open: bool,
    sim_dir: Option<std::path::PathBuf>,
) -> PortInfo {
    PortInfo {
        held_by,
        monitor_open,
        sim_dir,
        port: port.port,
        is_devkit: port.is_devkit,
        kind: port.kind,
        vid: port.vid,
        pid: port.pid,
        serial_number: port.serial_number,
        manufacturer: port.manufacturer,
        description: port.description,
    }
}

/// A `tasks::logs` event as notification params (the event's own camelCase serialization,
/// exactly what `devkit monitor --events` prints, plus the port).
pub fn registration_event(port: &str, event: &tasks::logs::LogEvent) -> RegistrationEventParams {
    RegistrationEventParams {
        port: port.to_string(),
        event: event.clone(),
        explanation: None,
    }
}

pub fn compiler_diagnostic(d: &b::Diagnostic) -> CompilerDiagnostic {
    CompilerDiagnostic {
        file: d.file.clone(),
        line: d.line,
        column: d.column,
        severity: match d.severity {
            b::Severity::Error => "error",
            b::Severity::Warning => "warning",
            b::Severity::Note => "note",
        }
        .into(),
        message: d.message.clone(),
    }
}

/// Compiler messages as LSP diagnostics per file (relative paths are taken from the sketch).
// `Uri` hashes and compares by its string only, so it is a sound key.
#[allow(clippy::mutable_key_type)]
pub fn compiler_diagnostics(
    diags: &[b::Diagnostic],
    sketch_dir: &Path,
) -> HashMap<Uri, Vec<Diagnostic>> {
    let mut out: HashMap<Uri, Vec<Diagnostic>> = HashMap::new();
    for d in diags {
        let path = Path::new(&d.file);
        let path = if path.is_absolute() {
            path.to_path_buf()
        } else {
            sketch_dir.join(path)
        };
        let Some(uri) = Uri::from_file_path(&path) else {
            continue;
        };
        let at = LineCol {
            line: d.line.saturating_sub(1),
            col: d.column.unwrap_or(1).saturating_sub(1),
        };
        let position = match source_text(&path) {
            Some(text) => {
                let index = LineIndex::new(&text);
                match index.offset(at) {
                    Some(offset) => position(&text, &index, offset),
                    None => Position::new(at.line, 0),
                }
            }
            None => Position::new(at.line, at.col),
        };
        out.entry(uri).or_default().push(Diagnostic {
            range: Range::new(position, position),
            severity: Some(match d.severity {
                b::Severity::Error => DiagnosticSeverity::ERROR,
                b::Severity::Warning => DiagnosticSeverity::WARNING,
                b::Severity::Note => DiagnosticSeverity::INFORMATION,
            }),
            code: Some(NumberOrString::String(COMPILER_CODE.into())),
            code_description: code_description(COMPILER_CODE),
            source: Some("arm-none-eabi-gcc".into()),
            message: d.message.clone(),
            ..Default::default()
        });
    }
    out
}

pub fn severity(s: Severity) -> DiagnosticSeverity {
    match s {
        Severity::Error => DiagnosticSeverity::ERROR,
        Severity::Warning => DiagnosticSeverity::WARNING,
        Severity::Information => DiagnosticSeverity::INFORMATION,
    }
}

/// The text of a file a compiler diagnostic names, to convert its byte column (sketch files
/// are small; a larger or unreadable file keeps the column as gcc printed it).
fn source_text(path: &Path) -> Option<String> {
    const MAX_SOURCE: u64 = 1 << 20;
    tasks::fsutil::read_text_bounded(path, "source file", MAX_SOURCE).ok()
}

/// The LSP position (UTF-16 columns, LSP's default encoding) of a byte `offset` into `text`
/// (`index` is `text`'s). An offset inside a character counts from that character's start.
pub fn position(text: &str, index: &LineIndex, offset: u32) -> Position {
    let lc = index.line_col(offset);
    let start = index.line_start(lc.line).unwrap_or(0) as usize;
    let mut end = (start + lc.col as usize).min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let col = text[start..end].encode_utf16().count() as u32;
    Position::new(lc.line, col)
}

/// The LSP range of a byte range into `text`.
pub fn range(text: &str, index: &LineIndex, r: TextRange) -> Range {
    Range::new(position(text, index, r.start), position(text, index, r.end))
}

/// A range at the start of `line` (a code lens's place).
pub fn line_start(line: u32) -> Range {
    Range::new(Position::new(line, 0), Position::new(line, 0))
}

/// The `code` of compiler diagnostics (the sketch rules have theirs in [`sketch::Rule`]).
pub const COMPILER_CODE: &str = "compiler";

/// Where every diagnostic code is explained: one section per code, its anchor the code. The
/// repository's address is the workspace's (`Cargo.toml`), so the links follow it.
pub const DIAGNOSTICS_DOC: &str = concat!(
    env!("CARGO_PKG_REPOSITORY"),
    "/blob/main/docs/diagnostics.md"
);

/// The documentation link of a diagnostic code (`codeDescription`).
pub fn code_description(code: &str) -> Option<CodeDescription> {
    format!("{DIAGNOSTICS_DOC}#{code}")
        .parse()
        .ok()
        .map(|href| CodeDescription { href })
}

/// A sketch check's finding as an LSP diagnostic (`text` is the file it was found in).
pub fn sketch_diagnostic(text: &str, index: &LineIndex, f: &sketch::Finding) -> Diagnostic {
    Diagnostic {
        range: range(text, index, f.range),
        severity: Some(severity(f.severity)),
        code: Some(NumberOrString::String(f.rule.code().to_string())),
        code_description: code_description(f.rule.code()),
        source: Some("devkit".into()),
        message: f.message.clone(),
        ..Default::default()
    }
}

/// A finding's fixes as quick fixes: the file's edits, and for "move to settings" the
/// extension's [`CMD_WRITE_SETTING`] command with `{ "setting", "value" }`.
// `Uri` hashes and compares by its string only, so it is a sound key.
#[allow(clippy::mutable_key_type)]
pub fn code_actions(
    uri: &Uri,
    text: &str,
    index: &LineIndex,
    f: &sketch::Finding,
) -> Vec<CodeAction> {
    let diagnostic = sketch_diagnostic(text, index, f);
    f.fixes
        .iter()
        .map(|fix| {
            let edits = fix
                .edits
                .iter()
                .map(|e| TextEdit {
                    range: range(text, index, e.range),
                    new_text: e.new_text.clone(),
                })
                .collect();
            CodeAction {
                title: fix.title.clone(),
                kind: Some(CodeActionKind::QUICKFIX),
                diagnostics: Some(vec![diagnostic.clone()]),
                edit: Some(WorkspaceEdit {
                    changes: Some(HashMap::from([(uri.clone(), edits)])),
                    ..Default::default()
                }),
                command: fix.write_setting.as_ref().map(|(kind, value)| Command {
                    title: fix.title.clone(),
                    command: CMD_WRITE_SETTING.into(),
                    arguments: serde_json::to_value(WriteSettingParams {
                        setting: super::vocab::setting_id(*kind).into(),
                        value: value.clone(),
                    })
                    .ok()
                    .map(|v| vec![v]),
                }),
                is_preferred: Some(fix.preferred),
                ..Default::default()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code a diagnostic can carry has its section in docs/diagnostics.md.
    #[test]
    fn every_diagnostic_code_links_to_an_existing_section() {
        let doc = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/diagnostics.md"),
        )
        .unwrap();
        let codes = sketch::Rule::ALL
            .iter()
            .map(|r| r.code())
            .chain([COMPILER_CODE]);
        for code in codes {
            // GitHub's anchor of a heading `## code` is `#code`.
            assert!(
                doc.lines().any(|l| l == format!("## {code}")),
                "docs/diagnostics.md has no `## {code}` section"
            );
            let link = code_description(code).unwrap().href;
            assert!(
                link.as_str()
                    .ends_with(&format!("docs/diagnostics.md#{code}")),
                "{link:?}"
            );
            assert!(link.as_str().starts_with("https://"), "{link:?}");
        }
    }
    use tasks::logs::LogEvent;

    /// Byte offsets become UTF-16 columns: non-ASCII text before the position on its line.
    #[test]
    fn positions_are_utf16_at_the_edge() {
        let text = "ab\n/* é日本 */ const char* idScope = \"0ne00000A0A\";\n// é日本𝄞 x\n";
        let index = LineIndex::new(text);
        let x = text.find(" x").unwrap() as u32 + 1;
        // `// ` 3, `é` 1, `日本` 2, `𝄞` 2 (a surrogate pair), ` ` 1.
        assert_eq!(position(text, &index, x), Position::new(2, 9));
        let f = sketch::findings(
            text,
            Some(&sketch::Configured::new(None, Some("0ne00000B0B"), None)),
        );
        let d = sketch_diagnostic(text, &index, &f[0]);
        // `/* é日本 */ ` is 15 bytes and 10 UTF-16 units; the value is 23 bytes further.
        assert_eq!(
            d.range,
            Range::new(Position::new(1, 33), Position::new(1, 44))
        );
        // Inside a character: its start.
        let e = text.find('é').unwrap() as u32;
        assert_eq!(position(text, &index, e + 1), position(text, &index, e));
    }

    #[test]
    // `Uri` hashes and compares by its string only, so it is a sound key.
    #[allow(clippy::mutable_key_type)]
    fn compiler_columns_are_bytes_converted_with_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("S.ino");
        std::fs::write(&file, "// é日本\nint x = é日本y;\n").unwrap();
        let col = "int x = é日本".len() as u32 + 1;
        let diags = [b::Diagnostic {
            file: "S.ino".into(),
            line: 2,
            column: Some(col),
            severity: b::Severity::Error,
            message: "m".into(),
        }];
        let out = compiler_diagnostics(&diags, dir.path());
        let d = &out.values().next().unwrap()[0];
        // `int x = ` 8, `é日本` 3.
        assert_eq!(d.range.start, Position::new(1, 11));
    }

    #[test]
    fn log_events_become_camel_case_params() {
        let e = LogEvent::UdsMissing {
            message: "m".into(),
            hint: "h".into(),
            next_actions: vec![tasks::error::NextAction::SetUds.into()],
        };
        let p = serde_json::to_value(registration_event("/dev/x", &e)).unwrap();
        assert_eq!(
            p,
            serde_json::json!({"port": "/dev/x", "kind": "udsMissing", "message": "m", "hint": "h",
                               "nextActions": [{"action": "setUds"}]})
        );
        // The event alone serializes the same, and the params read back typed.
        let mut alone = serde_json::to_value(&e).unwrap();
        alone["port"] = "/dev/x".into();
        assert_eq!(p, alone);
        let back: RegistrationEventParams = serde_json::from_value(p).unwrap();
        assert_eq!(back.event, e);
        let e = LogEvent::Assigned {
            hub: "hub.azure-devices.net".into(),
            device_id: Some("d".into()),
        };
        let v = serde_json::to_value(registration_event("/dev/x", &e)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"port": "/dev/x", "kind": "assigned", "hub": "hub.azure-devices.net", "deviceId": "d"})
        );
    }
}
