//! `devkit/enroll`, `devkit/provision` over `tasks::dps` and `tasks::provision`.
//!
//! Provisioning talks to the DevKit's port itself (console, then following its log): an open
//! monitor on that port is closed for the run and reopened after (its output during the run
//! reaches the client as progress and as the final `devkit/registrationEvent`).

use crate::lsp::backend::Backend;
use crate::lsp::error::TaskError;
use crate::lsp::ext::{self, codes, *};
use crate::lsp::jobs::{run_job, JobSpec, Resource};
use std::path::Path;
use std::time::Duration;
use tasks::dps::az::{self, AzEnrollment, AzTarget};
use tasks::dps::enroll::{self as enroll_rules, EnrollError, EnrollInput};
use tasks::dps::{ClientOptions, ConnectionString, DpsError, ServiceClient};
use tasks::flash::{Backend as FlashBackend, FlashImage};
use tasks::identity::{self as id, RegistrationId, Uds};
use tasks::provision::{self, EnrollmentSettings, HubCheck, ProvisionError, ProvisionPlan, SimulateOptions, Upload, WifiSettings};
use tower_lsp_server::lsp_types::ProgressToken;
use zeroize::Zeroizing;

fn dps_error(e: DpsError) -> TaskError {
    match &e {
        DpsError::Invalid { .. } => TaskError::invalid("cert", &e),
        DpsError::ConnectionString(_) => TaskError::invalid("connectionString", &e),
        DpsError::Cancelled => TaskError::cancelled(),
        _ => TaskError::from_error(codes::DPS, &e),
    }
}

fn provision_error(e: ProvisionError) -> TaskError {
    let hint = e.hint();
    let t = match &e {
        ProvisionError::Invalid { input, .. } => TaskError::invalid(input, &e),
        ProvisionError::Identity(_) | ProvisionError::Console(_) if e.is_invalid_input() => TaskError::invalid("params", &e),
        ProvisionError::Cancelled => TaskError::cancelled(),
        ProvisionError::Dps(_) | ProvisionError::Registration { .. } | ProvisionError::NotInRegistry { .. } | ProvisionError::Timeout { .. } => {
            TaskError::from_error(codes::DPS, &e)
        }
        ProvisionError::Console(_) | ProvisionError::Monitor(_) => TaskError::from_error(codes::DEVICE, &e),
        ProvisionError::Flash(_) => TaskError::from_error(codes::FLASH_FAILED, &e),
        _ => TaskError::from_error(codes::TASK_FAILED, &e),
    };
    match hint {
        Some(h) => t.with("hint", h),
        None => t,
    }
}

fn connection_string(s: &Option<crate::lsp::secret::Secret>, field: &str) -> Result<Option<ConnectionString>, TaskError> {
    s.as_ref().map(|s| ConnectionString::parse(s.expose()).map_err(|e| TaskError::invalid(field, e))).transpose()
}

fn read_ca(path: &Option<std::path::PathBuf>, field: &str) -> Result<Option<String>, TaskError> {
    path.as_ref()
        .map(|p| std::fs::read_to_string(p).map_err(|e| TaskError::invalid(field, format!("cannot read {}: {e}", p.display()))))
        .transpose()
}

/// An enrollment-preparation error, naming the param it is about.
fn enroll_error(e: EnrollError) -> TaskError {
    let field = match e.input() {
        Some(EnrollInput::Cert) => "cert",
        Some(EnrollInput::DeviceId) => "deviceId",
        Some(EnrollInput::IotHub) => "iotHub",
        None => return TaskError::new(codes::TASK_FAILED, e.to_string()),
    };
    match &e {
        EnrollError::Unreadable { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            TaskError::new(codes::NOT_FOUND, e.to_string()).with("field", field)
        }
        _ => TaskError::invalid(field, e.to_string()),
    }
}

pub async fn enroll(b: &Backend, p: EnrollParams, token: Option<ProgressToken>) -> Result<EnrollResult, TaskError> {
    // Validate everything before anything is sent.
    let cs = connection_string(&p.connection_string, "connectionString")?;
    let ca_pem = read_ca(&p.ca_file, "caFile")?;
    let mut warnings = Vec::new();
    let cert = enroll_rules::resolve_certificate(&p.project_dir, p.cert.as_deref()).map_err(enroll_error)?;
    if cert.from_project_state {
        warnings.push(format!("enrolling {} (last generated for this project)", cert.path.display()));
    }
    let settings = EnrollmentSettings { device_id: p.device_id.clone(), iot_hub: p.iot_hub.clone(), disabled: p.disabled, enable: false };
    settings.validate().map_err(enroll_error)?;
    let target = if p.use_az {
        Some(match (&p.dps_name, cs.clone()) {
            (Some(name), _) => AzTarget::Named { dps_name: name.clone(), resource_group: p.resource_group.clone() },
            (None, Some(cs)) => AzTarget::Login(cs),
            (None, None) => return Err(TaskError::invalid("dpsName", "is required with `useAz` (or give `connectionString`)")),
        })
    } else if cs.is_none() {
        return Err(TaskError::invalid("connectionString", "is required (or set `useAz` to use the Azure CLI)"));
    } else {
        None
    };
    let spec = JobSpec { method: ext::ENROLL, title: "Enrolling".into(), resources: vec![], work_done_token: token, progress: true };
    let job_cert = cert.clone();
    let enrolled = run_job(&b.jobs, &b.client, b.client_progress(), spec, move |ctx| async move {
        let reg = job_cert.registration_id.to_string();
        ctx.progress.report(format!("Enrolling {reg}"), None);
        match target {
            None => {
                let cs = cs.ok_or_else(|| TaskError::invalid("connectionString", "is required"))?;
                let client = ServiceClient::new(cs, ClientOptions { ca_pem, cancel: ctx.cancel.clone(), ..Default::default() })
                    .map_err(dps_error)?;
                tasks::dps::enroll::enroll_rest(&client, &settings, &reg, &job_cert.der).await.map_err(dps_error)
            }
            Some(target) => {
                let az = az::find_az().ok_or_else(|| {
                    TaskError::new(codes::NOT_FOUND, "`az` (Azure CLI) is not on PATH; install it with the azure-iot extension, or give `connectionString`")
                })?;
                let request = AzEnrollment {
                    target,
                    registration_id: reg,
                    certificate_path: job_cert.path.clone(),
                    device_id: settings.device_id.clone(),
                    status: settings.status(),
                    iot_hubs: settings.iot_hub.iter().cloned().collect(),
                };
                az::enroll(&az, &request).await.map_err(dps_error)
            }
        }
    })
    .await?;
    if let Err(e) = enroll_rules::record_enrolled(&p.project_dir, &cert) {
        warnings.push(format!("enrolled, but the project state was not updated: {e}"));
    }
    let info = cert.info;
    Ok(EnrollResult {
        registration_id: cert.registration_id.to_string(),
        device_id: enrolled.device_id.clone(),
        provisioning_status: if enrolled.is_enabled() { "enabled" } else { "disabled" }.into(),
        iot_hubs: enrolled.iot_hubs.clone(),
        sha256_thumbprint: enrolled.sha256_thumbprint().unwrap_or(info.sha256_thumbprint),
        sha1_thumbprint: info.sha1_thumbprint,
        etag: enrolled.etag.clone(),
        cert: cert.path,
        warnings,
    })
}

/// The plan for a real DevKit on a port, validated like `devkit provision --port`.
fn plan(p: ProvisionParams) -> Result<(ProvisionPlan, String, Vec<Resource>), TaskError> {
    let port = p.port.clone().ok_or_else(|| TaskError::invalid("port", "is required (or set `simulate`)"))?;
    let dps = connection_string(&p.connection_string, "connectionString")?
        .ok_or_else(|| TaskError::invalid("connectionString", "is required (the DPS service connection string)"))?;
    let hub_cs = connection_string(&p.hub_connection_string, "hubConnectionString")?;
    let ca_pem = read_ca(&p.ca_file, "caFile")?;
    let image = match (&p.bin, &p.build_dir) {
        (Some(bin), _) => FlashImage::load(bin),
        (None, Some(dir)) => FlashImage::from_build_dir(dir),
        (None, None) => return Err(TaskError::invalid("bin", "is required: give `bin` or `buildDir`")),
    }
    .map_err(|e| TaskError::invalid("bin", e))?;
    let map = image.map.clone().ok_or_else(|| TaskError::invalid("bin", "has no .map next to it (the identity is computed from the image and its map)"))?;
    let flash = FlashParams {
        backend: p.backend.clone(),
        probe: p.probe.clone(),
        openocd: p.openocd.clone(),
        sim_dir: p.sim_dir.clone(),
        trusted_ca: p.trusted_ca.clone(),
        port: Some(port.clone()),
    };
    let (backend, resources): (FlashBackend, Vec<Resource>) = super::upload::flash_backend(&flash)?;
    let wifi = match (&p.wifi_ssid, &p.wifi_password) {
        (Some(ssid), pw) => Some(WifiSettings {
            ssid: ssid.clone(),
            password: Zeroizing::new(pw.as_ref().map(|s| s.expose().to_string()).unwrap_or_default()),
        }),
        (None, Some(_)) => return Err(TaskError::invalid("wifiSsid", "is required with `wifiPassword`")),
        (None, None) => None,
    };
    let uds = match &p.uds {
        Some(s) => {
            let uds = Uds::parse(s.expose()).map_err(|e| TaskError::invalid("uds", e))?;
            if uds.is_published_sample() {
                return Err(TaskError::invalid("uds", "is the sample UDS published in the tutorial; its keys are public. Omit it to generate one"));
            }
            Some(uds)
        }
        None => None,
    };
    let registration_id = p.registration_id.as_deref().map(|r| RegistrationId::parse(r).map_err(|e| TaskError::invalid("registrationId", e))).transpose()?;
    let registration_id = registration_id
        .or_else(|| image.dps.as_ref().and_then(|d| d.registration_id.as_ref()).and_then(|r| RegistrationId::parse(r.as_str()).ok()));
    let mac = p.mac.as_deref().map(|m| id::normalize_mac(m).map_err(|e| TaskError::invalid("mac", e))).transpose()?;
    if registration_id.is_none() && mac.is_none() {
        return Err(TaskError::invalid("registrationId", "is required, or `mac` (on the DevKit's screen) for the automatic az-<mac>v<x>v<y>v<z>"));
    }
    let project = p.project_dir.clone().ok_or_else(|| TaskError::invalid("projectDir", "is required"))?;
    let plan = ProvisionPlan {
        port: port.clone().into(),
        image_bin: image.bin.clone(),
        image_map: map,
        upload: Upload::Flash { backend, image },
        dps,
        client: ClientOptions { ca_pem, ..Default::default() },
        hub_check: hub_cs.map(HubCheck::ConnectionString),
        wifi,
        uds,
        save_uds_to: p.save_uds_to.clone(),
        registration_id,
        mac,
        cert_dir: project.clone(),
        project_root: Some(project),
        enrollment: {
            let settings = EnrollmentSettings { device_id: p.device_id.clone(), iot_hub: p.iot_hub.clone(), disabled: p.disabled, enable: false };
            settings.validate().map_err(enroll_error)?;
            settings
        },
        fault: None,
        console_timeout: Duration::from_secs(60),
        registration_timeout: Duration::from_secs(p.timeout_secs.unwrap_or(90)),
    };
    Ok((plan, port, resources))
}

pub async fn provision(b: &Backend, p: ProvisionParams, token: Option<ProgressToken>) -> Result<ProvisionResult, TaskError> {
    let simulate = p.simulate;
    let (job, port, resources) = if simulate {
        let opts = SimulateOptions {
            work_dir: p.work_dir.clone(),
            hub: p.hub.clone(),
            fault: None,
            registration_timeout: Duration::from_secs(p.timeout_secs.unwrap_or(60)),
        };
        (Err(opts), "simulated".to_string(), vec![])
    } else {
        let (plan, port, resources) = plan(p)?;
        (Ok(plan), port, resources)
    };
    // The run opens the port itself: an open monitor is closed for the run and reopened after.
    // Both happen in the job's own task, which has claimed the port and runs to its end even
    // when the request is cancelled (its future dropped) at any point.
    let had_monitor = job.is_ok() && b.state.serial.registry.get(Path::new(&port)).is_some();
    let spec = JobSpec { method: ext::PROVISION, title: "Provisioning".into(), resources, work_done_token: token, progress: true };
    let (client, jobs, state, monitor_port) = (b.client.clone(), b.jobs.clone(), b.state.clone(), port.clone());
    let r = run_job(&b.jobs, &b.client, b.client_progress(), spec, move |ctx| async move {
        let reopen = if had_monitor { state.serial.close_for_run(&monitor_port, &jobs).await } else { None };
        let r = match job {
            Ok(plan) => provision::provision(plan, &ctx.progress, &ctx.cancel).await,
            Err(opts) => provision::simulate(opts, &ctx.progress, &ctx.cancel).await,
        };
        if let Some(baud) = reopen {
            // After a cancellation the run's serial thread may hold the port (opened
            // exclusively) until its next read times out: retry for a bounded while.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            loop {
                match super::serial::open_monitor(client.clone(), jobs.clone(), state.clone(), monitor_port.clone(), baud).await {
                    Ok(_) => break,
                    Err(_) if tokio::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
                    Err(e) => {
                        tracing::warn!(port = %monitor_port, "the monitor could not be reopened after provisioning: {}", e.message);
                        ctx.progress.warn(format!("the monitor on {monitor_port} could not be reopened: {}", e.message));
                        break;
                    }
                }
            }
        }
        Ok((r, ctx.warnings()))
    })
    .await;
    let (r, warnings) = r?;
    // The outcome as a registration event, for status bars.
    let event = match &r {
        Ok(report) => serde_json::json!({"kind": "assigned", "hub": report.assigned_hub, "deviceId": report.device_id}),
        Err(ProvisionError::Registration { reason, hint, error_code, .. }) => {
            serde_json::json!({"kind": "failed", "reason": reason, "hint": hint, "errorCode": error_code})
        }
        Err(e) => serde_json::json!({"kind": "failed", "reason": e.to_string(), "hint": e.hint()}),
    };
    if let serde_json::Value::Object(event) = event {
        b.client.send_notification::<ext::RegistrationEvent>(RegistrationEventParams { port: port.clone(), event }).await;
    }
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
