//! Conversions from `tasks` types to the protocol's types (rust-analyzer's `to_proto`): the one
//! place where a domain value becomes a wire value, so handlers only call tasks and convert.

use crate::lsp::ext::{
    CertInfo, CompilerDiagnostic, IdentityRecord, PortInfo, RegistrationEventParams,
};
use crate::lsp::sketch::{self, Severity};
use std::collections::HashMap;
use std::path::Path;
use tasks::build as b;
use tasks::identity as id;
use tower_lsp_server::lsp_types::{
    Diagnostic, DiagnosticSeverity, NumberOrString, Position, Range, Uri,
};
use tower_lsp_server::UriExt;

pub fn cert_info(c: id::CertInfo) -> CertInfo {
    CertInfo {
        subject_cn: c.subject_cn,
        issuer_cn: c.issuer_cn,
        public_key: c.public_key,
        device_id_public_key: c.device_id_public_key,
        fwid: c.fwid,
        signature_valid: c.signature_valid,
        is_alias: c.is_alias,
        sha1_thumbprint: c.sha1_thumbprint,
        sha256_thumbprint: c.sha256_thumbprint,
    }
}

/// The difference's wire name (its camelCase serde name, as `inspect-cert --json` prints it).
pub fn difference_name(d: &id::Difference) -> String {
    serde_json::to_value(d)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub fn identity_record(r: tasks::project::IdentityRecord) -> IdentityRecord {
    IdentityRecord {
        registration_id: r.registration_id,
        fwid: r.fwid,
        sha256_thumbprint: r.sha256_thumbprint,
        alias_cert: r.alias_cert,
    }
}

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
            code: Some(NumberOrString::String("compiler".into())),
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

/// A sketch check's finding as an LSP diagnostic.
pub fn sketch_diagnostic(f: sketch::Finding) -> Diagnostic {
    Diagnostic {
        range: range(f.line, f.start, f.end),
        severity: Some(severity(f.severity)),
        code: Some(NumberOrString::String(f.code.to_string())),
        source: Some("devkit".into()),
        message: f.message,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tasks::logs::LogEvent;

    #[test]
    fn log_events_become_camel_case_params() {
        let e = LogEvent::UdsMissing {
            message: "m".into(),
            hint: "h".into(),
        };
        let p = registration_event("/dev/x", &e).unwrap();
        assert_eq!(p.event["kind"], "udsMissing");
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
