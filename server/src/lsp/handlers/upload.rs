//! `devkit/build`, `devkit/upload`, `devkit/deviceUpload` over `tasks::build`, `tasks::flash`
//! and `tasks::upload`. Compiler messages are published as diagnostics; the monitor on the
//! DevKit's port is paused around flashing and resumed after (through the port registry).

use crate::lsp::backend::Backend;
use crate::lsp::error::TaskError;
use crate::lsp::ext::{self, codes, *};
use crate::lsp::jobs::{run_job, JobSpec, Resource};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use tasks::build::{self as b, BuildError, BuildOptions, BuilderSettings, DpsSettings, DEFAULT_GLOBAL_ENDPOINT, DPS_CONFIG_JSON};
use tasks::flash::{self, Backend as FlashBackend, FlashError, FlashImage};
use tasks::identity::Uds;
use tasks::monitor::{ExclusivePort, PortRegistry};
use tasks::upload::{DeviceUploadOptions, PortPause, UploadError};
use tower_lsp_server::lsp_types::{Diagnostic, DiagnosticSeverity, NumberOrString, Position, ProgressToken, Range, Uri};
use tower_lsp_server::UriExt;

fn build_error(e: BuildError) -> TaskError {
    match &e {
        BuildError::Invalid { input, .. } => {
            let field = match input.as_str() {
                i if i.contains("endpoint") => "globalEndpoint",
                i if i.contains("Scope") || i.contains("scope") => "idScope",
                i if i.contains("registration") => "registrationId",
                i if i.contains("build") => "buildDir",
                _ => "sketch",
            };
            TaskError::invalid(field, &e)
        }
        BuildError::ArduinoCliNotFound { .. } | BuildError::PlatformMissing { .. } => {
            TaskError::from_error(codes::NOT_FOUND, &e).with("field", "arduinoCli")
        }
        BuildError::Compile { diagnostics, .. } => {
            TaskError::from_error(codes::BUILD_FAILED, &e).with("diagnostics", serde_json::json!(diagnostics.iter().map(compiler_diagnostic).collect::<Vec<_>>()))
        }
        BuildError::Cancelled => TaskError::cancelled(),
        _ => TaskError::from_error(codes::TASK_FAILED, &e),
    }
}

fn flash_error(e: FlashError) -> TaskError {
    match &e {
        FlashError::Invalid { input, .. } => {
            let field = if input.contains("build") { "buildDir" } else if input.contains("probe") { "probe" } else { "bin" };
            TaskError::invalid(field, &e)
        }
        FlashError::NoProbe { .. } | FlashError::ToolNotFound(_) => TaskError::from_error(codes::NOT_FOUND, &e),
        FlashError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            TaskError::from_error(codes::NOT_FOUND, &e).with("field", "bin")
        }
        FlashError::Cancelled => TaskError::cancelled(),
        _ => TaskError::from_error(codes::FLASH_FAILED, &e),
    }
}

fn compiler_diagnostic(d: &b::Diagnostic) -> CompilerDiagnostic {
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
fn lsp_diagnostics(diags: &[b::Diagnostic], sketch_dir: &Path) -> HashMap<Uri, Vec<Diagnostic>> {
    let mut out: HashMap<Uri, Vec<Diagnostic>> = HashMap::new();
    for d in diags {
        let path = Path::new(&d.file);
        let path = if path.is_absolute() { path.to_path_buf() } else { sketch_dir.join(path) };
        let Some(uri) = Uri::from_file_path(&path) else { continue };
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

/// Build options from params, validated like the CLI's `devkit build`.
fn build_options(p: &BuildParams, warnings: &mut Vec<String>) -> Result<BuildOptions, TaskError> {
    let build_path = p.build_dir.clone().unwrap_or_else(|| p.project_dir.join(".devkit").join("build"));
    let dps = if p.global_endpoint.is_none() && p.id_scope.is_none() && p.registration_id.is_none() {
        std::fs::read(build_path.join(DPS_CONFIG_JSON))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<DpsSettings>(&bytes).ok())
            .ok_or_else(|| {
                TaskError::invalid("idScope", "is required (0ne + 8 hex digits, from the DPS instance's overview page): no previous build to take it from")
            })?
    } else {
        let scope = p.id_scope.as_deref().ok_or_else(|| TaskError::invalid("idScope", "is required (0ne + 8 hex digits)"))?;
        let endpoint = p.global_endpoint.as_deref().unwrap_or(DEFAULT_GLOBAL_ENDPOINT);
        let (dps, w) = DpsSettings::new(endpoint, scope, p.registration_id.as_deref()).map_err(|e| build_error(e.into()))?;
        warnings.extend(w);
        dps
    };
    Ok(BuildOptions {
        sketch_dir: p.sketch.clone().unwrap_or_else(|| p.project_dir.join("firmware").join("DevKitDPS")),
        build_path,
        arduino_cli: p.arduino_cli.clone(),
        builder: BuilderSettings {
            choice: p.builder.as_deref().unwrap_or("auto").parse().map_err(|_| TaskError::invalid("builder", "must be one of `auto`, `arduino-cli`, `arduino-builder`"))?,
            arduino_builder: p.arduino_builder.clone(),
            arduino_data: p.arduino_data.clone(),
        },
        dps,
        force: p.force,
    })
}

/// The flash backend and the resources it needs (the probe, or the virtual DevKit).
pub fn flash_backend(p: &FlashParams) -> Result<(FlashBackend, Vec<Resource>), TaskError> {
    let mut resources = Vec::new();
    let backend = match p.backend.as_deref().unwrap_or("probe-rs") {
        "probe-rs" => FlashBackend::ProbeRs { probe: p.probe.clone() },
        "openocd" => FlashBackend::OpenOcd { openocd: p.openocd.clone() },
        "sim" => {
            let state_dir = p.sim_dir.clone().ok_or_else(|| TaskError::invalid("simDir", "is required with backend `sim` (the virtual DevKit's state directory)"))?;
            let trusted_ca_pem = match &p.trusted_ca {
                Some(path) => Some(std::fs::read_to_string(path).map_err(|e| TaskError::invalid("trustedCa", format!("cannot read {}: {e}", path.display())))?),
                None => None,
            };
            FlashBackend::Sim { state_dir, trusted_ca_pem }
        }
        _ => return Err(TaskError::invalid("backend", "must be one of `probe-rs`, `openocd`, `sim`")),
    };
    resources.push(match &backend {
        FlashBackend::Sim { state_dir, .. } => Resource::Probe(format!("sim:{}", state_dir.display())),
        _ => Resource::Probe(p.probe.clone().unwrap_or_else(|| "default".into())),
    });
    if let Some(port) = &p.port {
        resources.push(Resource::Port(port.clone()));
    }
    Ok((backend, resources))
}

/// Pauses the monitor that owns a port (if any) through the registry; dropping the guard
/// gives the port back and the monitor resumes.
struct RegistryPause(Arc<PortRegistry>);

impl PortPause for RegistryPause {
    type Guard = Option<ExclusivePort>;
    async fn pause(&self, port: &str) -> Result<Option<ExclusivePort>, String> {
        let Some(monitor) = self.0.get(Path::new(port)) else { return Ok(None) };
        tokio::task::spawn_blocking(move || monitor.pause())
            .await
            .map_err(|e| e.to_string())?
            .map(Some)
            .map_err(|e| e.to_string())
    }
}

pub async fn build(bk: &Backend, p: BuildParams, token: Option<ProgressToken>) -> Result<BuildResult, TaskError> {
    let mut warnings = Vec::new();
    let opts = build_options(&p, &mut warnings)?;
    let sketch_dir = opts.sketch_dir.clone();
    let spec = JobSpec {
        method: ext::BUILD,
        title: "Building the sketch".into(),
        resources: vec![Resource::BuildDir(opts.build_path.clone())],
        work_done_token: token,
        progress: true,
    };
    let outcome = run_job(&bk.jobs, &bk.client, bk.client_progress(), spec, move |ctx| async move {
        let r = b::build(&opts, &ctx.progress, &ctx.cancel).await;
        Ok((r, ctx.warnings()))
    })
    .await?;
    let (r, task_warnings) = outcome;
    warnings.extend(task_warnings);
    match r {
        Ok(out) => {
            bk.set_build_diagnostics(lsp_diagnostics(&out.diagnostics, &sketch_dir)).await;
            Ok(BuildResult {
                bin: out.bin,
                map: out.map,
                skipped: out.skipped,
                diagnostics: out.diagnostics.iter().map(compiler_diagnostic).collect(),
                warnings,
            })
        }
        Err(e) => {
            if let BuildError::Compile { diagnostics, .. } = &e {
                bk.set_build_diagnostics(lsp_diagnostics(diagnostics, &sketch_dir)).await;
            }
            Err(build_error(e))
        }
    }
}

/// Without `port`, the one open monitor (if exactly one is open) is the DevKit's: pause it.
fn default_port(bk: &Backend, flash: &mut FlashParams) {
    if flash.port.is_none() {
        if let [only] = bk.state.serial.registry.open_ports().as_slice() {
            flash.port = Some(only.display().to_string());
        }
    }
}

pub async fn upload(bk: &Backend, mut p: UploadParams, token: Option<ProgressToken>) -> Result<UploadResult, TaskError> {
    default_port(bk, &mut p.flash);
    let (backend, resources) = flash_backend(&p.flash)?;
    let image_src = match (&p.bin, &p.build_dir) {
        (Some(bin), _) => Ok(bin.clone()),
        (None, Some(dir)) => Err(dir.clone()),
        (None, None) => return Err(TaskError::invalid("bin", "is required: give `bin` or `buildDir`")),
    };
    let image = match image_src {
        Ok(bin) => FlashImage::load(&bin),
        Err(dir) => FlashImage::from_build_dir(&dir),
    }
    .map_err(flash_error)?;
    let pause = RegistryPause(bk.state.serial.registry.clone());
    let port = p.flash.port.clone();
    let spec = JobSpec { method: ext::UPLOAD, title: "Uploading".into(), resources, work_done_token: token, progress: true };
    run_job(&bk.jobs, &bk.client, bk.client_progress(), spec, move |ctx| async move {
        let guard = match &port {
            Some(port) => pause.pause(port).await.map_err(|m| TaskError::new(codes::DEVICE, format!("cannot pause the monitor on {port}: {m}")))?,
            None => None,
        };
        let r = flash::flash(&image, &backend, &ctx.progress, &ctx.cancel).await;
        drop(guard);
        r.map_err(flash_error)?;
        Ok(UploadResult { backend: backend.name().into(), bytes: image.bin.len() as u64, warnings: ctx.warnings() })
    })
    .await
}

pub async fn device_upload(bk: &Backend, mut p: DeviceUploadParams, token: Option<ProgressToken>) -> Result<DeviceUploadResult, TaskError> {
    default_port(bk, &mut p.flash);
    let mut warnings = Vec::new();
    let build = build_options(&p.build, &mut warnings)?;
    let uds = match &p.uds {
        Some(s) => Some(Uds::parse(s.expose()).map_err(|e| TaskError::invalid("uds", e))?),
        None => None,
    };
    let (backend, resources) = flash_backend(&p.flash)?;
    let sketch_dir = build.sketch_dir.clone();
    let opts = DeviceUploadOptions { project_root: p.build.project_dir.clone(), build, backend, port: p.flash.port.clone() };
    let pause = RegistryPause(bk.state.serial.registry.clone());
    let spec = JobSpec { method: ext::DEVICE_UPLOAD, title: "Device upload".into(), resources, work_done_token: token, progress: true };
    let (r, task_warnings) = run_job(&bk.jobs, &bk.client, bk.client_progress(), spec, move |ctx| async move {
        let r = tasks::upload::device_upload(&opts, uds.as_ref(), &pause, &ctx.progress, &ctx.cancel).await;
        Ok((r, ctx.warnings()))
    })
    .await?;
    warnings.extend(task_warnings);
    match r {
        Ok(report) => {
            bk.set_build_diagnostics(lsp_diagnostics(&report.build.diagnostics, &sketch_dir)).await;
            Ok(DeviceUploadResult {
                bin: report.build.bin,
                map: report.build.map,
                skipped_build: report.build.skipped,
                backend: report.backend.into(),
                fwid: report.fwid,
                identity_changed: report.drift.is_some(),
                drift: report.drift.and_then(|d| serde_json::to_value(d).ok()),
                warnings,
            })
        }
        Err(UploadError::Build(e)) => {
            if let BuildError::Compile { diagnostics, .. } = &e {
                bk.set_build_diagnostics(lsp_diagnostics(diagnostics, &sketch_dir)).await;
            }
            Err(build_error(e))
        }
        Err(UploadError::Flash(e)) => Err(flash_error(e)),
        Err(e @ UploadError::Pause { .. }) => Err(TaskError::from_error(codes::DEVICE, &e)),
        Err(e) => Err(TaskError::from_error(codes::TASK_FAILED, &e)),
    }
}

