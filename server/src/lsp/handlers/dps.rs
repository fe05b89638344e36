//! `devkit/enroll`, `devkit/provision` over `tasks::dps` and `tasks::provision`.
//!
//! Provisioning borrows the DevKit's port through the monitor registry (the console step
//! pauses an open monitor, following the registration reads its output), so an open monitor
//! stays open; the outcome also reaches the client as a `devkit/registrationEvent`.

use crate::lsp::backend::Ctx;
use crate::lsp::error::TaskError;
use crate::lsp::ext::{self, *};
use crate::lsp::jobs::{JobSpec, Resource};
use crate::lsp::to_proto;
use std::time::Duration;
use tasks::dps::enroll::{self, EnrollRequest, GroupEnrollRequest};
use tasks::flash::{BackendKind, BackendRequest};
use tasks::provision::{
    self, EnrollmentSettings, ProvisionPlan, ProvisionRequest, SimulateOptions, Upload,
};
use tower_lsp_server::lsp_types::ProgressToken;
use zeroize::Zeroizing;

/// The request from params: `backend` (or the deprecated `useAz`), the rest as they are.
fn enroll_request(p: EnrollParams) -> Result<EnrollRequest, TaskError> {
    let backend = match (p.backend, p.use_az) {
        (Some(EnrollBackend::Rest), true) => {
            return Err(TaskError::invalid(
                "useAz",
                "contradicts `backend`: \"rest\" (`useAz` is deprecated: give `backend` only)",
            ))
        }
        (Some(b), _) => b,
        (None, true) => EnrollBackend::Az,
        (None, false) => EnrollBackend::Rest,
    };
    Ok(EnrollRequest {
        connection_string: p
            .connection_string
            .as_ref()
            .map(|s| Zeroizing::new(s.expose().to_string())),
        ca_file: p.ca_file,
        cert: p.cert,
        project_dir: p.project_dir,
        settings: EnrollmentSettings {
            device_id: p.device_id,
            iot_hub: p.iot_hub,
            disabled: p.disabled,
            enable: p.enable,
        },
        backend,
        dps_name: p.dps_name,
        resource_group: p.resource_group,
    })
}

pub async fn enroll(
    b: &Ctx,
    p: EnrollParams,
    token: Option<ProgressToken>,
) -> Result<EnrollResult, TaskError> {
    let request = enroll_request(p)?;
    // Reading the certificate and CA files and finding az: off the async threads.
    let plan = super::blocking(move || request.plan().map_err(TaskError::from)).await?;
    let spec = JobSpec::with_progress(ext::ENROLL, "Enrolling", token);
    b.run_job(spec, move |ctx| async move {
        Ok(enroll::run(plan, &ctx.progress, &ctx.cancel).await?)
    })
    .await
}

/// `devkit/enrollGroup`: the same group task as `devkit enroll --group`.
pub async fn enroll_group(
    b: &Ctx,
    p: EnrollGroupParams,
    token: Option<ProgressToken>,
) -> Result<EnrollGroupResult, TaskError> {
    let request = GroupEnrollRequest {
        connection_string: p
            .connection_string
            .as_ref()
            .map(|s| Zeroizing::new(s.expose().to_string())),
        ca_file: p.ca_file,
        group_id: p.group,
        ca_cert: p.ca_cert,
        settings: EnrollmentSettings {
            device_id: None,
            iot_hub: p.iot_hub,
            disabled: p.disabled,
            enable: p.enable,
        },
        backend: EnrollBackend::Rest,
    };
    let plan = super::blocking(move || request.plan().map_err(TaskError::from)).await?;
    let spec = JobSpec::with_progress(ext::ENROLL_GROUP, "Enrolling group", token);
    b.run_job(spec, move |ctx| async move {
        Ok(enroll::run_group(plan, &ctx.progress, &ctx.cancel).await?)
    })
    .await
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
    let run = request.plan()?;
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
            save_uds_to: p.save_uds_to.clone(),
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
    let r = b
        .run_job(spec, move |ctx| async move {
            let r = match job {
                Ok(plan) => provision::provision(plan, &ctx.progress, &ctx.cancel).await,
                Err(opts) => provision::simulate(opts, &ctx.progress, &ctx.cancel).await,
            };
            Ok((r, ctx.warnings()))
        })
        .await;
    let (r, task_warnings) = r?;
    let mut warnings = plan_warnings;
    warnings.extend(task_warnings);
    // The outcome as a log event, for status bars.
    let event = to_proto::registration_event(&port, &tasks::provision::outcome_event(&r));
    b.client
        .send_notification::<ext::RegistrationEvent>(event)
        .await;
    let report = r?;
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
