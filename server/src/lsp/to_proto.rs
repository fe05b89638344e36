//! Conversions from `tasks` types to the protocol's types (rust-analyzer's `to_proto`): the one
//! place where a domain value becomes a wire value, so handlers only call tasks and convert.

use crate::lsp::ext::{CompilerDiagnostic, PortInfo, RegistrationEventParams};
use crate::lsp::ext::{WriteSettingParams, CMD_WRITE_SETTING};
use std::collections::HashMap;
use std::path::Path;
use tasks::build as b;
use tasks::build::sketch::{self, Severity};
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
pub fn registration_event(
    port: &str,
    event: &tasks::logs::LogEvent,
) -> Option<RegistrationEventParams> {
    let serde_json::Value::Object(event) = serde_json::to_value(event).ok()? else {
        return None;
    };
    Some(RegistrationEventParams {
        port: port.to_string(),
        event,
    })
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
        let line = d.line.saturating_sub(1);
        let col = d.column.unwrap_or(1).saturating_sub(1);
        out.entry(uri).or_default().push(Diagnostic {
            range: Range::new(Position::new(line, col), Position::new(line, col)),
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

pub fn range(line: u32, start: u32, end: u32) -> Range {
    Range::new(Position::new(line, start), Position::new(line, end))
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

/// A sketch check's finding as an LSP diagnostic.
pub fn sketch_diagnostic(f: &sketch::Finding) -> Diagnostic {
    Diagnostic {
        range: range(f.line, f.start, f.end),
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
pub fn code_actions(uri: &Uri, f: &sketch::Finding) -> Vec<CodeAction> {
    let diagnostic = sketch_diagnostic(f);
    f.fixes
        .iter()
        .map(|fix| {
            let edits = fix
                .edits
                .iter()
                .map(|e| TextEdit {
                    range: range(e.line, e.start, e.end),
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
                        setting: kind.setting_id().into(),
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

    #[test]
    fn log_events_become_camel_case_params() {
        let e = LogEvent::UdsMissing {
            message: "m".into(),
            hint: "h".into(),
            next_actions: vec![tasks::error::NextAction::SetUds.into()],
        };
        let p = registration_event("/dev/x", &e).unwrap();
        assert_eq!(p.event["kind"], "udsMissing");
        assert_eq!(
            p.event["nextActions"],
            serde_json::json!([{"action": "setUds"}])
        );
        let e = LogEvent::Assigned {
            hub: "hub.azure-devices.net".into(),
            device_id: Some("d".into()),
        };
        let v = serde_json::to_value(registration_event("/dev/x", &e).unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"port": "/dev/x", "kind": "assigned", "hub": "hub.azure-devices.net", "deviceId": "d"})
        );
    }
}
