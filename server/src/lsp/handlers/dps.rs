//! `devkit/enroll`, `devkit/provision` over `tasks::dps` and `tasks::provision`.
//!
//! Provisioning borrows the DevKit's port through the monitor registry (the console step
//! pauses an open monitor, following the registration reads its output), so an open monitor
//! stays open; the outcome also reaches the client as a `devkit/registrationEvent`.

use crate::lsp::backend::Ctx;
use crate::lsp::error::TaskError;
use crate::lsp::ext::{self, *};
use crate::lsp::jobs::{run_job, JobSpec, Resource};
use crate::lsp::to_proto;
use crate::lsp::vocab::Field;
use std::time::Duration;
use tasks::dps::az::{self, AzEnrollment};
use tasks::dps::enroll::{self as enroll_rules, EnrollVia};
use tasks::dps::{ClientOptions, ConnectionString, ServiceClient};
use tasks::error::{Input, InvalidInput};
use tasks::flash::{BackendKind, BackendRequest};
use tasks::provision::{
    self, EnrollmentSettings, ProvisionError, ProvisionPlan, ProvisionRequest, SimulateOptions,
    Upload,
};
use tower_lsp_server::lsp_types::ProgressToken;
use zeroize::Zeroizing;

fn provision_error(e: ProvisionError) -> TaskError {
    let t = TaskError::from_domain(&e);
    match e.hint() {
        Some(h) => t.with("hint", h),
        None => t,
    }
}

fn connection_string(
    s: &Option<crate::lsp::secret::Secret>,
    input: Input,
) -> Result<Option<ConnectionString>, TaskError> {
    s.as_ref()
        .map(|s| {
            ConnectionString::parse(s.expose())
                .map_err(|e| InvalidInput::new(input, e.to_string()).into())
        })
        .transpose()
}

fn read_ca(path: &Option<std::path::PathBuf>) -> Result<Option<String>, TaskError> {
    path.as_ref()
        .map(|p| super::read_text_file(p, Input::CaFile.field(), tasks::fsutil::limits::CERT_FILE))
        .transpose()
}

pub async fn enroll(
    b: &Ctx,
    p: EnrollParams,
    token: Option<ProgressToken>,
) -> Result<EnrollResult, TaskError> {
    // Validate everything before anything is sent.
    let cs = connection_string(&p.connection_string, Input::ConnectionString)?;
    let ca_pem = read_ca(&p.ca_file)?;
    let mut warnings = Vec::new();
    let cert = enroll_rules::resolve_certificate(&p.project_dir, p.cert.as_deref())?;
    if cert.from_project_state {
        warnings.push(format!(
            "enrolling {} (last generated for this project)",
            cert.path.display()
        ));
    }
    let settings = EnrollmentSettings {
        device_id: p.device_id.clone(),
        iot_hub: p.iot_hub.clone(),
        disabled: p.disabled,
        enable: false,
    };
    settings.validate()?;
    let via =
        enroll_rules::select_target(p.use_az, p.dps_name.clone(), p.resource_group.clone(), cs)?;
    let spec = JobSpec {
        method: ext::ENROLL,
        title: "Enrolling".into(),
        resources: vec![],
        work_done_token: token,
        progress: true,
    };
    let job_cert = cert.clone();
    let enrolled = run_job(
        &b.jobs,
        &b.client,
        b.client_progress(),
        spec,
        move |ctx| async move {
            let reg = job_cert.registration_id.to_string();
            ctx.progress.report(format!("Enrolling {reg}"), None);
            match via {
                EnrollVia::Rest(cs) => {
                    let client = ServiceClient::new(
                        cs,
                        ClientOptions {
                            ca_pem,
                            cancel: ctx.cancel.clone(),
                            ..Default::default()
                        },
                    )?;
                    Ok(enroll_rules::enroll_rest(&client, &settings, &reg, &job_cert.der).await?)
                }
                EnrollVia::Az(target) => {
                    let az = az::find_az()?;
                    let request = AzEnrollment {
                        target,
                        registration_id: reg,
                        certificate_path: job_cert.path.clone(),
                        device_id: settings.device_id.clone(),
                        status: settings.status(),
                        iot_hubs: settings.iot_hub.iter().cloned().collect(),
                    };
                    Ok(az::enroll(&az, &request).await?)
                }
            }
        },
    )
    .await?;
    if let Err(e) = enroll_rules::record_enrolled(&p.project_dir, &cert) {
        warnings.push(format!(
            "enrolled, but the project state was not updated: {e}"
        ));
    }
    let info = cert.info;
    Ok(EnrollResult {
        registration_id: cert.registration_id.to_string(),
        device_id: enrolled.device_id.clone(),
        provisioning_status: if enrolled.is_enabled() {
            "enabled"
        } else {
            "disabled"
        }
        .into(),
        iot_hubs: enrolled.iot_hubs.clone(),
        sha256_thumbprint: enrolled
            .sha256_thumbprint()
            .unwrap_or(info.sha256_thumbprint),
        sha1_thumbprint: info.sha1_thumbprint,
        etag: enrolled.etag.clone(),
        cert: cert.path,
        warnings,
    })
}

/// The run's inputs from params; `tasks` validates them (the same rules as the CLI's).
fn plan(
    p: ProvisionParams,
) -> Result<(ProvisionPlan, String, Vec<Resource>, Vec<String>), TaskError> {
    let uds = match &p.uds {
        Some(s) => Some(super::identity::uds_param(s, false)?.0),
        None => None,
    };
    let request = ProvisionRequest {
        port: p.port.clone(),
        bin: p.bin.clone(),
        build_dir: p.build_dir.clone(),
        flash: BackendRequest {
            kind: BackendKind::parse(p.backend.as_deref().unwrap_or("probe-rs"))?,
            probe: p.probe.clone(),
            openocd: p.openocd.clone(),
            sim_dir: p.sim_dir.clone(),
            trusted_ca: p.trusted_ca.clone(),
        },
        connection_string: p
            .connection_string
            .as_ref()
            .map(|s| Zeroizing::new(s.expose().to_string())),
        hub_connection_string: p
            .hub_connection_string
            .as_ref()
            .map(|s| Zeroizing::new(s.expose().to_string())),
        ca_file: p.ca_file.clone(),
        wifi_ssid: p.wifi_ssid.clone(),
        wifi_password: p
            .wifi_password
            .as_ref()
            .map(|s| Zeroizing::new(s.expose().to_string())),
        uds,
        save_uds_to: p.save_uds_to.clone(),
        registration_id: p.registration_id.clone(),
        mac: p.mac.clone(),
        project_dir: p.project_dir.clone(),
        cert_dir: None,
        enrollment: EnrollmentSettings {
            device_id: p.device_id.clone(),
            iot_hub: p.iot_hub.clone(),
            disabled: p.disabled,
            enable: false,
        },
        registration_timeout: p.timeout_secs.map(Duration::from_secs),
    };
    let run = request.plan().map_err(provision_error)?;
    let port = run.plan.port.display().to_string();
    let resources = match &run.plan.upload {
        Upload::Flash { backend, .. } => super::upload::flash_resources(backend, Some(&port)),
        Upload::Sim { .. } => vec![Resource::Port(port.clone())],
    };
    Ok((run.plan, port, resources, run.warnings))
}

pub async fn provision(
    b: &Ctx,
    p: ProvisionParams,
    token: Option<ProgressToken>,
) -> Result<ProvisionResult, TaskError> {
    let simulate = p.simulate;
    let (job, port, resources, plan_warnings) = if simulate {
        let opts = SimulateOptions {
            work_dir: p.work_dir.clone(),
            hub: p.hub.clone(),
            fault: None,
            registration_timeout: p
                .timeout_secs
                .map_or(provision::DEFAULT_REGISTRATION_TIMEOUT, Duration::from_secs),
            transport: Default::default(),
        };
        (Err(opts), "simulated".to_string(), vec![], vec![])
    } else {
        // Reading the image and its map is file work: off the async threads.
        let (plan, port, resources, warnings) = super::blocking(move || plan(p)).await?;
        (Ok(plan), port, resources, warnings)
    };
    // The run borrows the port from an open monitor (paused for the console, then followed),
    // through the registry, like devkit/setUds: the monitor stays open throughout.
    let job = job.map(|mut plan| {
        plan.ports = Some(b.state.serial.registry.clone());
        plan
    });
    let spec = JobSpec {
        method: ext::PROVISION,
        title: "Provisioning".into(),
        resources,
        work_done_token: token,
        progress: true,
    };
    let r = run_job(
        &b.jobs,
        &b.client,
        b.client_progress(),
        spec,
        move |ctx| async move {
            let r = match job {
                Ok(plan) => provision::provision(plan, &ctx.progress, &ctx.cancel).await,
                Err(opts) => provision::simulate(opts, &ctx.progress, &ctx.cancel).await,
            };
            Ok((r, ctx.warnings()))
        },
    )
    .await;
    let (r, task_warnings) = r?;
    let mut warnings = plan_warnings;
    warnings.extend(task_warnings);
    // The outcome as a log event, for status bars.
    let event = to_proto::registration_event(&port, &tasks::provision::outcome_event(&r));
    b.client
        .send_notification::<ext::RegistrationEvent>(event)
        .await;
    let report = r.map_err(provision_error)?;
    Ok(ProvisionResult {
        status: "assigned".into(),
        registration_id: report.registration_id,
        device_id: report.device_id,
        assigned_hub: report.assigned_hub,
        sha256_thumbprint: report.sha256_thumbprint,
        fwid: report.fwid,
        alias_cert: report.alias_cert,
        enrollment_etag: report.enrollment_etag,
        in_hub_registry: report.in_hub_registry,
        uds_saved_to: report.uds_saved_to,
        port,
        warnings,
    })
}
