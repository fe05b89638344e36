//! `devkit/build`, `devkit/upload`, `devkit/deviceUpload` over `tasks::build`, `tasks::flash`
//! and `tasks::upload`. Compiler messages are published as diagnostics; the monitor on the
//! DevKit's port is paused around flashing and resumed after (through the port registry).

use crate::lsp::backend::Ctx;
use crate::lsp::error::TaskError;
use crate::lsp::ext::{self, *};
use crate::lsp::jobs::{JobSpec, Resource};
use crate::lsp::to_proto;
use crate::lsp::vocab::Field;
use std::path::Path;
use std::sync::Arc;
use tasks::build::{self as b, BuildError, BuildOptions, BuildRequest};
use tasks::flash::{Backend as FlashBackend, BackendKind, BackendRequest};
use tasks::monitor::{ExclusivePort, PortRegistry};
use tasks::upload::{DeviceUploadRequest, PortPause, UploadError, UploadRequest};
use tower_lsp_server::lsp_types::ProgressToken;

fn build_error(e: BuildError) -> TaskError {
    let t = TaskError::from_domain(&e);
    match &e {
        // Not found on PATH (no input to name): the setting that would point at it.
        BuildError::ToolNotFound {
            tool,
            configured: None,
        } => t.with("field", tool.input().field()),
        BuildError::PlatformMissing { .. } => t.with("field", "arduinoCli"),
        BuildError::Compile { diagnostics, .. } => t.with(
            "diagnostics",
            serde_json::json!(diagnostics
                .iter()
                .map(to_proto::compiler_diagnostic)
                .collect::<Vec<_>>()),
        ),
        _ => t,
    }
}

fn build_request(p: &BuildParams) -> BuildRequest {
    BuildRequest {
        project_dir: p.project_dir.clone(),
        sketch: p.sketch.clone(),
        build_dir: p.build_dir.clone(),
        arduino_cli: p.arduino_cli.clone(),
        global_endpoint: p.global_endpoint.clone(),
        id_scope: p.id_scope.clone(),
        registration_id: p.registration_id.clone(),
        builder: p.builder.clone(),
        arduino_builder: p.arduino_builder.clone(),
        arduino_data: p.arduino_data.clone(),
        force: p.rebuild,
    }
}

fn build_options(p: &BuildParams, warnings: &mut Vec<String>) -> Result<BuildOptions, TaskError> {
    let planned = build_request(p).options().map_err(build_error)?;
    warnings.extend(planned.warnings);
    Ok(planned.options)
}

/// The flash backend request (decided by the same rules as the CLI's, in `tasks::flash`) and
/// the resources it needs (the probe, or the virtual DevKit, and the port). A virtual DevKit
/// is remembered for `devkit/listPorts`.
pub fn flash_backend(
    bk: &Ctx,
    p: &FlashParams,
) -> Result<(BackendRequest, Vec<Resource>), TaskError> {
    let request = BackendRequest {
        kind: BackendKind::parse(p.backend.as_deref().unwrap_or("probe-rs"))?,
        probe: p.probe.clone(),
        openocd: p.openocd.clone(),
        sim_dir: p.sim_dir.clone(),
        trusted_ca: p.trusted_ca.clone(),
    };
    let backend = request.backend()?;
    if let FlashBackend::Sim { state_dir, .. } = &backend {
        bk.state.serial.remember_virtual_devkit(state_dir);
    }
    Ok((request, flash_resources(&backend, p.port.as_deref())))
}

/// What a flash with `backend` holds while it runs.
pub fn flash_resources(backend: &FlashBackend, port: Option<&str>) -> Vec<Resource> {
    let mut resources = vec![match backend {
        FlashBackend::Sim { state_dir, .. } => {
            Resource::Probe(format!("sim:{}", state_dir.display()))
        }
        FlashBackend::ProbeRs { probe: Some(p) } => Resource::Probe(p.clone()),
        _ => Resource::Probe("default".into()),
    }];
    if let Some(port) = port {
        resources.push(Resource::Port(port.to_string()));
    }
    resources
}

/// Pauses the monitor that owns a port (if any) through the registry; dropping the guard
/// gives the port back and the monitor resumes.
struct RegistryPause(Arc<PortRegistry>);

impl PortPause for RegistryPause {
    type Guard = Option<ExclusivePort>;
    async fn pause(&self, port: &str) -> Result<Option<ExclusivePort>, String> {
        let Some(monitor) = self.0.get(Path::new(port)) else {
            return Ok(None);
        };
        tokio::task::spawn_blocking(move || monitor.pause())
            .await
            .map_err(|e| e.to_string())?
            .map(Some)
            .map_err(|e| e.to_string())
    }
}

pub async fn build(
    bk: &Ctx,
    p: BuildParams,
    token: Option<ProgressToken>,
) -> Result<BuildResult, TaskError> {
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
    let outcome = bk
        .run_job(spec, move |ctx| async move {
            let r = b::build(&opts, &ctx.progress, &ctx.cancel).await;
            Ok((r, ctx.warnings()))
        })
        .await?;
    let (r, task_warnings) = outcome;
    warnings.extend(task_warnings);
    match r {
        Ok(out) => {
            bk.set_build_diagnostics(to_proto::compiler_diagnostics(
                &out.diagnostics,
                &sketch_dir,
            ))
            .await;
            Ok(BuildResult {
                bin: out.bin,
                map: out.map,
                skipped: out.skipped,
                diagnostics: out
                    .diagnostics
                    .iter()
                    .map(to_proto::compiler_diagnostic)
                    .collect(),
                warnings,
            })
        }
        Err(e) => {
            if let BuildError::Compile { diagnostics, .. } = &e {
                bk.set_build_diagnostics(to_proto::compiler_diagnostics(diagnostics, &sketch_dir))
                    .await;
            }
            Err(build_error(e))
        }
    }
}

/// Without `port`, the one open monitor (if exactly one is open) is the DevKit's: pause it.
fn default_port(bk: &Ctx, flash: &mut FlashParams) {
    if flash.port.is_none() {
        if let [only] = bk.state.serial.registry.open_ports().as_slice() {
            flash.port = Some(only.display().to_string());
        }
    }
}

pub async fn upload(
    bk: &Ctx,
    mut p: UploadParams,
    token: Option<ProgressToken>,
) -> Result<UploadResult, TaskError> {
    default_port(bk, &mut p.flash);
    let (backend_request, resources) = flash_backend(bk, &p.flash)?;
    let request = UploadRequest {
        bin: p.bin,
        build_dir: p.build_dir,
        flash: backend_request,
        address: None,
        port: p.flash.port.clone(),
    };
    // Reading the image is file work: off the async threads.
    let plan = super::blocking(move || Ok(request.plan()?)).await?;
    let pause = RegistryPause(bk.state.serial.registry.clone());
    let spec = JobSpec {
        method: ext::UPLOAD,
        title: "Uploading".into(),
        resources,
        work_done_token: token,
        progress: true,
    };
    bk.run_job(spec, move |ctx| async move {
        Ok(plan.run(&pause, &ctx.progress, &ctx.cancel).await?)
    })
    .await
}

pub async fn device_upload(
    bk: &Ctx,
    mut p: DeviceUploadParams,
    token: Option<ProgressToken>,
) -> Result<DeviceUploadResult, TaskError> {
    default_port(bk, &mut p.flash);
    let uds = match &p.uds {
        // Only for the drift warning's thumbprint: the sample is accepted here.
        Some(s) => Some(super::identity::uds_param(s, true)?.0),
        None => None,
    };
    let (backend_request, resources) = flash_backend(bk, &p.flash)?;
    let plan = DeviceUploadRequest {
        build: build_request(&p.build),
        flash: backend_request,
        port: p.flash.port.clone(),
        uds,
    }
    .plan()
    .map_err(upload_error)?;
    let sketch_dir = plan.options.build.sketch_dir.clone();
    let pause = RegistryPause(bk.state.serial.registry.clone());
    let spec = JobSpec {
        method: ext::DEVICE_UPLOAD,
        title: "Device upload".into(),
        resources,
        work_done_token: token,
        progress: true,
    };
    let r = bk
        .run_job(spec, move |ctx| async move {
            Ok(plan.run(&pause, &ctx.progress, &ctx.cancel).await)
        })
        .await?;
    match r {
        Ok(report) => {
            bk.set_build_diagnostics(to_proto::compiler_diagnostics(
                &report.diagnostics,
                &sketch_dir,
            ))
            .await;
            Ok(report)
        }
        Err(UploadError::Build(e)) => {
            if let BuildError::Compile { diagnostics, .. } = &e {
                bk.set_build_diagnostics(to_proto::compiler_diagnostics(diagnostics, &sketch_dir))
                    .await;
            }
            Err(build_error(e))
        }
        Err(e) => Err(e.into()),
    }
}

/// An upload error; build errors carry the daemon's build details (the setting to fix, the
/// compiler diagnostics).
fn upload_error(e: UploadError) -> TaskError {
    match e {
        UploadError::Build(e) => build_error(e),
        e => e.into(),
    }
}
