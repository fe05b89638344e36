//! provision: the end-to-end provisioning job, from a DevKit in configuration mode to "the
//! device is in its IoT hub's registry".
//!
//! Steps (each a progress `Begin`/`End`; device output is reported as it arrives):
//! 1. configure the DevKit over its console: Wi-Fi, UDS (generated from the OS CSPRNG unless
//!    given), read its firmware version;
//! 2. compute the alias certificate from UDS + image + registration ID (and write it);
//! 3. enroll it (DPS service API, create or update under the current ETag);
//! 4. open the serial port, upload the image (which resets the DevKit into user mode);
//! 5. follow the registration in the device's log ([`crate::logs::EventParser`]) until it is
//!    assigned or fails (failures carry the logs' hint, e.g. 401002 -> certificate mismatch);
//! 6. check that the device appears in the assigned hub's registry.
//!
//! [`simulate`] runs the same job against an in-process DPS emulator and virtual DevKit with
//! the built-in [`sample`] image. The CLI (and the daemon) only render the progress events and
//! the [`ProvisionReport`].

mod follow;
mod request;
pub mod sample;

pub use request::{PlannedRun, ProvisionRequest, CONSOLE_TIMEOUT, DEFAULT_REGISTRATION_TIMEOUT};

use crate::console::{ConsoleError, DEFAULT_BAUD};
use crate::dps::emulator::{Emulator, EmulatorConfig, EmulatorError, HUB_POLICY};
use crate::dps::hub::HubClient;
use crate::dps::{ClientOptions, ConnectionString, DpsError, ServiceClient};
use crate::error::{DomainError, ErrorKind, Input, InvalidInput, NextAction, NextStep};
use crate::flash::{Backend, FlashError, FlashImage};
use crate::fsutil::FsError;
use crate::identity::{self, FirmwareImage, IdentityError, RegistrationId, Uds};
use crate::logs::LogEvent;
use crate::progress::{CancellationToken, Progress};
use crate::project::ProjectError;
use crate::sim::control::{self, ControlError, SimDpsConfig};
use crate::sim::{SimError, SimOptions, SimTransport, VirtualDevKit};
use follow::{Followed, Follower};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;
use zeroize::Zeroizing;

/// Wi-Fi settings to store on the DevKit.
pub struct WifiSettings {
    pub ssid: String,
    pub password: Zeroizing<String>,
}

/// How the image gets onto the DevKit.
pub enum Upload {
    /// The virtual DevKit with this state directory; `dps` is what its sketch compiles in.
    Sim {
        state_dir: PathBuf,
        dps: SimDpsConfig,
    },
    /// Through a flash backend: a real DevKit's probe (the image's own `dps_config.h`
    /// settings apply), or the sim backend for a separately running virtual DevKit.
    Flash { backend: Backend, image: FlashImage },
}

/// Where to check that the device arrived in its hub.
pub enum HubCheck {
    /// An IoT Hub connection string (Azure); checked when it names the assigned hub.
    ConnectionString(ConnectionString),
    /// The DPS emulator: every hub it assigns to is served under `<service>/iothubs/<hub>`,
    /// SAS-signed with the emulator's key.
    Emulator {
        service_endpoint: String,
        key: Zeroizing<Vec<u8>>,
    },
}

/// Fault injection for demos and tests of the failure paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Enroll a certificate computed from another UDS than the one set on the device (401002).
    WrongUds,
    /// Enroll the certificate as disabled.
    DisabledEnrollment,
    /// The emulator throttles (429) the first service request and the first registration.
    Throttle,
}

/// What to do with the enrollment (shared with `devkit enroll`).
pub use crate::dps::enroll::EnrollmentSettings;

/// Everything one provisioning run needs.
pub struct ProvisionPlan {
    /// The DevKit's serial port.
    pub port: PathBuf,
    pub upload: Upload,
    pub image_bin: Vec<u8>,
    pub image_map: String,
    /// DPS service connection string and client options (CA, retries, cancellation).
    pub dps: ConnectionString,
    pub client: ClientOptions,
    pub hub_check: Option<HubCheck>,
    pub wifi: Option<WifiSettings>,
    /// The UDS to set; `None` = generate one.
    pub uds: Option<Uds>,
    /// Where to save a generated UDS (mode 0600).
    pub save_uds_to: Option<PathBuf>,
    /// Registration ID; `None` = `az-<mac>v<x>v<y>v<z>` from `mac` and the device's version.
    pub registration_id: Option<RegistrationId>,
    pub mac: Option<String>,
    /// Where the alias certificate is written.
    pub cert_dir: PathBuf,
    /// Project whose state records the generated and enrolled identity.
    pub project_root: Option<PathBuf>,
    pub enrollment: EnrollmentSettings,
    pub fault: Option<Fault>,
    /// The monitors of whoever runs the job (the daemon's): the port is borrowed from its
    /// monitor for the console and the monitor's output followed, instead of opening the port
    /// again. `None` = the run opens the port itself.
    pub ports: Option<std::sync::Arc<crate::monitor::PortRegistry>>,
    /// How long to wait for the configuration console and for the registration.
    pub console_timeout: Duration,
    pub registration_timeout: Duration,
}

/// The outcome of a successful run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionReport {
    pub registration_id: String,
    pub device_id: String,
    pub assigned_hub: String,
    pub sha256_thumbprint: String,
    pub fwid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enrollment_etag: Option<String>,
    pub alias_cert: PathBuf,
    /// `Some(true)` when the hub registry was checked and holds the device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_hub_registry: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uds_saved_to: Option<PathBuf>,
}

/// Why provisioning stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Console(#[from] ConsoleError),
    #[error("enrollment: {0}")]
    Dps(#[from] DpsError),
    #[error(transparent)]
    Flash(#[from] FlashError),
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error(transparent)]
    Emulator(#[from] EmulatorError),
    #[error(transparent)]
    Sim(#[from] SimError),
    #[error(transparent)]
    Project(#[from] ProjectError),
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error("serial port: {0}")]
    Monitor(String),
    /// The device reported a failed registration.
    #[error("registration failed: {reason}")]
    Registration {
        reason: String,
        hint: String,
        error_code: Option<u32>,
        http_status: Option<u16>,
        /// From the device log's diagnosis (`tasks::logs`), the one place that decides them.
        next_actions: Vec<NextStep>,
    },
    #[error("no registration result from the device within {waited_secs} s (last status: {last_status})")]
    Timeout {
        waited_secs: u64,
        last_status: String,
    },
    #[error("the device was assigned to {hub}, but that hub's registry has no device {device_id}")]
    NotInRegistry { hub: String, device_id: String },
    #[error("cancelled")]
    Cancelled,
}

impl DomainError for ProvisionError {
    fn kind(&self) -> ErrorKind {
        match self {
            ProvisionError::Invalid(_) => ErrorKind::InvalidInput,
            ProvisionError::Identity(e) => e.kind(),
            ProvisionError::Console(e) => e.kind(),
            ProvisionError::Dps(e) => e.kind(),
            ProvisionError::Flash(e) => e.kind(),
            ProvisionError::Emulator(e) => e.kind(),
            ProvisionError::Sim(e) => e.kind(),
            ProvisionError::Project(e) => e.kind(),
            ProvisionError::Fs(e) => e.kind(),
            ProvisionError::Control(_) => ErrorKind::Failed,
            ProvisionError::Monitor(_) => ErrorKind::Device,
            ProvisionError::Registration { .. }
            | ProvisionError::Timeout { .. }
            | ProvisionError::NotInRegistry { .. } => ErrorKind::Dps,
            ProvisionError::Cancelled => ErrorKind::Cancelled,
        }
    }
    fn invalid_input(&self) -> Option<&InvalidInput> {
        match self {
            ProvisionError::Invalid(i) => Some(i),
            ProvisionError::Identity(e) => e.invalid_input(),
            ProvisionError::Console(e) => e.invalid_input(),
            ProvisionError::Dps(e) => e.invalid_input(),
            ProvisionError::Flash(e) => e.invalid_input(),
            ProvisionError::Emulator(e) => e.invalid_input(),
            ProvisionError::Sim(e) => e.invalid_input(),
            _ => None,
        }
    }
    fn next_actions(&self) -> Vec<NextStep> {
        match self {
            ProvisionError::Console(e) => e.next_actions(),
            ProvisionError::Dps(e) => e.next_actions(),
            ProvisionError::Flash(e) => e.next_actions(),
            ProvisionError::Registration { next_actions, .. } if !next_actions.is_empty() => {
                next_actions.clone()
            }
            ProvisionError::Registration { .. } | ProvisionError::Timeout { .. } => vec![
                NextStep::new(NextAction::CheckSetup),
                NextStep::new(NextAction::Retry),
            ],
            ProvisionError::NotInRegistry { .. } => vec![NextStep::new(NextAction::Enroll)],
            ProvisionError::Monitor(_) => vec![NextStep::new(NextAction::SelectPort)],
            _ => Vec::new(),
        }
    }
    /// What the user should do, when we know.
    fn hint(&self) -> Option<String> {
        match self {
            ProvisionError::Registration { hint, .. } => Some(hint.clone()),
            ProvisionError::Timeout { .. } => Some("check the DevKit's Wi-Fi, and the global endpoint and ID scope compiled into the sketch; the device's log shows what it does".into()),
            ProvisionError::NotInRegistry { .. } => Some("the DPS enrollment may point at another hub (iotHubs / allocation policy); check the enrollment".into()),
            ProvisionError::Console(ConsoleError::NotInConfigMode { .. }) => Some(crate::console::GUIDANCE.into()),
            ProvisionError::Dps(e) => e.hint(),
            _ => None,
        }
    }
}

/// A provisioning run's outcome as the log event a status bar shows (`assigned`, or
/// `failed` with the reason and what to do), the same event the device's log would give.
pub fn outcome_event(outcome: &Result<ProvisionReport, ProvisionError>) -> crate::logs::LogEvent {
    use crate::logs::LogEvent;
    match outcome {
        Ok(r) => LogEvent::Assigned {
            hub: r.assigned_hub.clone(),
            device_id: Some(r.device_id.clone()),
        },
        Err(ProvisionError::Registration {
            reason,
            hint,
            error_code,
            http_status,
            next_actions,
        }) => LogEvent::Failed {
            reason: reason.clone(),
            hint: hint.clone(),
            error_code: *error_code,
            http_status: *http_status,
            next_actions: next_actions.clone(),
        },
        Err(e) => LogEvent::Failed {
            reason: e.to_string(),
            hint: e.hint().unwrap_or_default(),
            error_code: None,
            http_status: None,
            next_actions: e.next_actions(),
        },
    }
}

fn check_cancel(cancel: &CancellationToken) -> Result<(), ProvisionError> {
    if cancel.is_cancelled() {
        Err(ProvisionError::Cancelled)
    } else {
        Ok(())
    }
}

/// A one-line description of a device event for progress reports.
pub fn describe_event(e: &LogEvent) -> Option<String> {
    Some(match e {
        LogEvent::Boot => "device: booted".into(),
        LogEvent::Identity {
            alias_cert_sha256: Some(t),
            ..
        } => format!("device: alias certificate SHA-256 {t}"),
        LogEvent::Status { status, .. } => format!("device: {}", status.replace('_', " ")),
        LogEvent::RegistrationRequest {
            id_scope,
            registration_id,
        } => format!("device: registering {registration_id} in ID scope {id_scope}"),
        LogEvent::DpsError {
            http_status,
            error_code,
            message,
            ..
        } => format!(
            "device: DPS answered{}{}{}",
            http_status
                .map(|s| format!(" HTTP {s}"))
                .unwrap_or_default(),
            error_code
                .map(|c| format!(", errorCode {c}"))
                .unwrap_or_default(),
            message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ),
        LogEvent::Assigned { hub, .. } => format!("device: assigned to {hub}"),
        LogEvent::Failed { reason, .. } => format!("device: {reason}"),
        LogEvent::UdsMissing { message, .. } | LogEvent::WifiFailed { message, .. } => {
            format!("device: {message}")
        }
        LogEvent::DeviceError { text, .. } => format!("device error: {text}"),
        _ => return None,
    })
}

/// The console step: Wi-Fi, UDS, then the device's version.
fn configure<T: crate::console::Transport>(
    c: &mut crate::console::Console<T>,
    wifi: Option<&WifiSettings>,
    uds_hex: &str,
) -> Result<crate::console::DeviceVersion, ConsoleError> {
    if let Some(w) = wifi {
        c.set_wifi(&w.ssid, &w.password, Duration::from_secs(10))?;
    }
    // Parsing our own hex cannot fail; the UDS crosses the thread as zeroizing text.
    let uds = Uds::parse(uds_hex)
        .map_err(|e| ConsoleError::Refused(InvalidInput::new(Input::Uds, e.to_string())))?;
    c.set_uds(&uds, Duration::from_secs(10))?;
    c.version(Duration::from_secs(10))
}

/// Run the whole job. Progress goes to `progress`; `cancel` stops it between and during steps.
pub async fn provision(
    mut plan: ProvisionPlan,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<ProvisionReport, ProvisionError> {
    // A UDS file is never overwritten (another device's secret?): refused before anything runs.
    if let (None, Some(path)) = (&plan.uds, &plan.save_uds_to) {
        identity::uds::check_new_uds_file(path)?;
    }
    let image = FirmwareImage::from_parts_named(
        plan.image_bin.clone(),
        &plan.image_map,
        "image .bin",
        "image .map",
    )?;
    let service = ServiceClient::new(
        plan.dps.clone(),
        ClientOptions {
            cancel: cancel.clone(),
            ..plan.client.clone()
        },
    )?;

    let (uds, uds_saved_to, version) = console_step(&mut plan, progress, cancel).await?;
    check_cancel(cancel)?;
    let (registration_id, identity, alias_cert) =
        identity_step(&mut plan, &uds, &image, &version, progress)?;
    check_cancel(cancel)?;
    let enrolled = enroll_step(
        &plan,
        &service,
        &image,
        &registration_id,
        &identity,
        &alias_cert,
        progress,
    )
    .await?;
    check_cancel(cancel)?;
    let follower = upload_step(&plan, progress, cancel).await?;
    let generated = identity::files::generated_record(&identity, &alias_cert);
    let (assigned_hub, device_id) = registration_step(
        &plan,
        follower,
        &service,
        (&registration_id, generated),
        progress,
        cancel,
    )
    .await?;
    let in_hub_registry = hub_step(&plan, &assigned_hub, &device_id, progress, cancel).await?;
    Ok(ProvisionReport {
        registration_id: registration_id.to_string(),
        device_id,
        assigned_hub,
        sha256_thumbprint: identity.sha256_thumbprint(),
        fwid: identity.fwid_hex(),
        enrollment_etag: enrolled.etag,
        alias_cert,
        in_hub_registry,
        uds_saved_to,
    })
}

/// Step 1, the console: the UDS to set (the plan's, or a generated one saved to
/// `save_uds_to` before it is sent, so a UDS the device may store is never lost), then Wi-Fi,
/// UDS and the device's version over the DevKit's configuration console. The port is borrowed
/// from the runner's monitor when it has one. A saved UDS that never reached the device is
/// removed again, so a retry may use the same file name.
async fn console_step(
    plan: &mut ProvisionPlan,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<(Uds, Option<PathBuf>, crate::console::DeviceVersion), ProvisionError> {
    progress.begin(format!("Configuring the DevKit on {}", plan.port.display()));
    let generated = plan.uds.is_none();
    let uds = plan.uds.take().unwrap_or_else(Uds::generate);
    let mut uds_saved_to = None;
    if generated {
        // Saved (0600, atomically, never over a file) before it is sent: a UDS the device
        // may store is never lost, even when the run fails later.
        if let Some(path) = &plan.save_uds_to {
            identity::uds::save_new_uds(&uds, path)?;
            uds_saved_to = Some(path.clone());
        }
    }
    let uds_hex = uds.to_hex();
    let wifi = plan.wifi.take();
    let guidance_progress = progress.clone();
    let exchange = async {
        Ok::<_, ProvisionError>(match &plan.ports {
            // Borrow the port from its monitor (paused meanwhile), stopping when cancelled.
            Some(ports) => {
                let (port_name, job_cancel, timeout) = (
                    plan.port.display().to_string(),
                    cancel.clone(),
                    plan.console_timeout,
                );
                let borrowed = ports.exclusive(&plan.port, DEFAULT_BAUD, move |ex| {
                    let mut console = crate::console::Console::new(
                        crate::console::Cancellable {
                            inner: ex,
                            cancel: job_cancel,
                        },
                        port_name,
                    );
                    console.enter_config_mode(timeout, &mut |g: &str| guidance_progress.warn(g))?;
                    configure(&mut console, wifi.as_ref(), &uds_hex)
                });
                match borrowed.await {
                    _ if cancel.is_cancelled() => return Err(ProvisionError::Cancelled),
                    Ok(r) => r?,
                    Err(e) => return Err(ProvisionError::Monitor(e.to_string())),
                }
            }
            None => {
                let job = crate::console::run_on_port(
                    plan.port.clone(),
                    DEFAULT_BAUD,
                    plan.console_timeout,
                    cancel.clone(),
                    move |g: &str| guidance_progress.warn(g),
                    move |c| configure(c, wifi.as_ref(), &uds_hex),
                );
                // The console stops at its next read once cancelled: waiting for it means the port
                // is free when this returns.
                let r = job.await;
                check_cancel(cancel)?;
                r?
            }
        })
    };
    let version = match exchange.await {
        Ok(v) => v,
        Err(e) => {
            // Nothing reached the device (no port, or never in configuration mode): the UDS we
            // just saved was never sent, so its file goes too and a retry may use the same name.
            let unsent = matches!(
                e,
                ProvisionError::Monitor(_)
                    | ProvisionError::Console(
                        ConsoleError::Open { .. } | ConsoleError::NotInConfigMode { .. }
                    )
            );
            if let (true, Some(path)) = (unsent, &uds_saved_to) {
                let _ = std::fs::remove_file(path);
            }
            return Err(e);
        }
    };
    progress.end(format!(
        "Wi-Fi and UDS stored; DevKit SDK {}",
        version.devkit_sdk
    ));
    Ok((uds, uds_saved_to, version))
}

/// Step 2, the identity: the registration ID (the plan's, or the automatic one from the MAC
/// and the version the device reported), the alias certificate derived from UDS + image + ID,
/// written with `devkit generate-cert`'s files and backups and recorded in the project's state.
/// Returns the ID, the identity and the alias certificate's path.
fn identity_step(
    plan: &mut ProvisionPlan,
    uds: &Uds,
    image: &FirmwareImage,
    version: &crate::console::DeviceVersion,
    progress: &Progress,
) -> Result<(RegistrationId, identity::DeviceIdentity, PathBuf), ProvisionError> {
    let registration_id = match (plan.registration_id.take(), plan.mac.as_deref()) {
        (Some(id), _) => id,
        (None, Some(mac)) => RegistrationId::from_mac_and_version(mac, &version.devkit_sdk)?,
        (None, None) => {
            return Err(InvalidInput::new(Input::RegistrationId, "is required, or the DevKit's MAC address (on its screen) for the automatic az-<mac>v<x>v<y>v<z>").into())
        }
    };
    progress.begin(format!(
        "Computing the alias certificate for {registration_id}"
    ));
    let identity = identity::derive(uds, image, &registration_id)?;
    // The same files and backups as `devkit generate-cert`: a file holding another identity
    // is kept as `<name>.<UTC>.bak`, then replaced, and we say so.
    let written = identity::files::write_identity(
        &identity,
        &plan.cert_dir,
        identity::files::FileOptions::default(),
    )?;
    for w in written
        .iter()
        .filter_map(identity::files::WrittenFile::warning)
    {
        progress.warn(w);
    }
    let alias_cert = written[0].path.clone();
    if let Some(root) = &plan.project_root {
        identity::files::record_generated(root, &identity, &alias_cert)?;
    }
    progress.end(format!(
        "{} (SHA-256 {})",
        alias_cert.display(),
        identity.sha256_thumbprint()
    ));
    Ok((registration_id, identity, alias_cert))
}

/// Step 3, the enrollment: the alias certificate enrolled in DPS (created, or updated under its
/// ETag), with the plan's fault injected (another UDS's certificate, a disabled enrollment);
/// a real enrollment is recorded in the project's state.
async fn enroll_step(
    plan: &ProvisionPlan,
    service: &ServiceClient,
    image: &FirmwareImage,
    registration_id: &RegistrationId,
    identity: &identity::DeviceIdentity,
    alias_cert: &std::path::Path,
    progress: &Progress,
) -> Result<crate::dps::IndividualEnrollment, ProvisionError> {
    let enrolled_der = if plan.fault == Some(Fault::WrongUds) {
        progress.warn("fault injection: enrolling a certificate computed from a different UDS");
        identity::derive(&Uds::generate(), image, registration_id)?.alias_cert_der
    } else {
        identity.alias_cert_der.clone()
    };
    progress.begin(format!(
        "Enrolling {registration_id} with {}",
        service.endpoint()
    ));
    let mut settings = plan.enrollment.clone();
    if plan.fault == Some(Fault::DisabledEnrollment) {
        settings.disabled = true;
    }
    let enrolled = crate::dps::enroll::enroll_rest(
        service,
        &settings,
        registration_id.as_str(),
        &enrolled_der,
    )
    .await?;
    if let Some(root) = &plan.project_root {
        if plan.fault.is_none() {
            identity::files::record_enrolled(root, identity, alias_cert)?;
        }
    }
    progress.end(format!(
        "enrolled ({}, etag {})",
        if enrolled.is_enabled() {
            "enabled"
        } else {
            "disabled"
        },
        enrolled.etag.as_deref().unwrap_or("-")
    ));
    Ok(enrolled)
}

/// Step 4, the upload: the device's output followed first (subscribed to the runner's monitor,
/// or the port opened), so nothing it prints after the reset is missed; then the image
/// uploaded, which resets the DevKit into user mode.
async fn upload_step(
    plan: &ProvisionPlan,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<Follower, ProvisionError> {
    progress.begin(format!(
        "Opening {} to follow the registration",
        plan.port.display()
    ));
    let follower = match plan.ports.as_ref().and_then(|p| p.subscribe(&plan.port)) {
        Some(rx) => Follower::subscribed(&plan.port, rx),
        None => Follower::open(&plan.port).map_err(ProvisionError::Monitor)?,
    };
    progress.end("following the device's output");
    match &plan.upload {
        Upload::Sim { state_dir, dps } => {
            progress
                .begin("Uploading the image to the virtual DevKit and resetting it into user mode");
            control::load_image(state_dir, &plan.image_bin, &plan.image_map, Some(dps)).await?;
            progress.end("uploaded; the DevKit is booting");
        }
        Upload::Flash { backend, image } => {
            crate::flash::flash(image, backend, progress, cancel).await?;
        }
    }
    Ok(follower)
}

/// Step 5, the registration: the device's log followed until it is assigned or fails.
/// A refusal DPS gives without an error code is told apart by asking the service whether the
/// enrollment is disabled. Returns the assigned hub and the device ID (the device's, the
/// enrollment's, or the registration ID).
async fn registration_step(
    plan: &ProvisionPlan,
    mut follower: Follower,
    service: &ServiceClient,
    (registration_id, generated): (&RegistrationId, crate::project::IdentityRecord),
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<(String, String), ProvisionError> {
    progress.begin("Waiting for the device to register with DPS");
    let outcome =
        wait_for_outcome(&mut follower, plan.registration_timeout, progress, cancel).await;
    // Closing the monitor joins its reader thread: keep that off the async workers.
    let _ = tokio::task::spawn_blocking(move || drop(follower)).await;
    let (assigned_hub, device_id) = match outcome {
        Ok(x) => x,
        Err(ProvisionError::Registration {
            mut reason,
            mut hint,
            error_code,
            http_status,
            mut next_actions,
        }) => {
            // DPS says "disabled" without an error code: ask the service which it is.
            let enrollment = service.get_optional(registration_id.as_str()).await;
            if let Ok(Some(e)) = &enrollment {
                if !e.is_enabled() {
                    reason = format!("DPS refused the registration: the enrollment for {registration_id} is disabled");
                    hint = "the enrollment is disabled: enable it, then reset the DevKit".into();
                    next_actions = vec![NextStep::new(NextAction::Enroll)];
                }
            }
            // 401002 explained, not just named: which input differs from what DPS holds.
            let rejected = error_code == Some(401002) || hint == crate::logs::HINT_401002.text;
            if let (true, Ok(enrollment)) = (rejected, &enrollment) {
                let last_enrolled = plan
                    .project_root
                    .as_deref()
                    .and_then(|root| crate::project::ProjectState::load(root).ok())
                    .and_then(|s| s.last_enrolled);
                let state = crate::project::ProjectState {
                    last_generated: Some(generated),
                    last_enrolled,
                };
                let x = crate::dps::mismatch::explain(
                    registration_id.as_str(),
                    enrollment.as_ref(),
                    &state,
                );
                hint = x.message;
                next_actions = x.next_actions;
            }
            return Err(ProvisionError::Registration {
                reason,
                hint,
                error_code,
                http_status,
                next_actions,
            });
        }
        Err(e) => return Err(e),
    };
    let device_id = device_id
        .or_else(|| plan.enrollment.device_id.clone())
        .unwrap_or_else(|| registration_id.to_string());
    progress.end(format!("assigned to {assigned_hub} as {device_id}"));
    Ok((assigned_hub, device_id))
}

/// Step 6, the hub check: when the plan names a hub to check, the device must be in the assigned
/// hub's registry. `None` = not checked.
async fn hub_step(
    plan: &ProvisionPlan,
    assigned_hub: &str,
    device_id: &str,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<Option<bool>, ProvisionError> {
    let in_hub_registry = match &plan.hub_check {
        None => None,
        Some(check) => Some(
            check_hub(
                check,
                assigned_hub,
                device_id,
                &plan.client,
                progress,
                cancel,
            )
            .await?,
        ),
    };
    if in_hub_registry == Some(false) {
        return Err(ProvisionError::NotInRegistry {
            hub: assigned_hub.to_string(),
            device_id: device_id.to_string(),
        });
    }
    Ok(in_hub_registry)
}

async fn wait_for_outcome(
    follower: &mut Follower,
    timeout: Duration,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<(String, Option<String>), ProvisionError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_status = "no output yet".to_string();
    loop {
        let msg = tokio::select! {
            m = follower.next() => m,
            _ = tokio::time::sleep_until(deadline) => return Err(ProvisionError::Timeout { waited_secs: timeout.as_secs(), last_status }),
            _ = cancel.cancelled() => return Err(ProvisionError::Cancelled),
        };
        let event = match msg {
            Followed::Event(e) => e,
            Followed::Reconnecting(reason) => {
                progress.report(format!("port disconnected ({reason}); reopening"), None);
                continue;
            }
            Followed::Gone(reason) => return Err(ProvisionError::Monitor(reason)),
        };
        if let Some(text) = describe_event(&event) {
            progress.report(text.clone(), None);
            last_status = text;
        }
        match event {
            LogEvent::Assigned { hub, device_id } => return Ok((hub, device_id)),
            LogEvent::Failed {
                reason,
                hint,
                error_code,
                http_status,
                next_actions,
            } => {
                return Err(ProvisionError::Registration {
                    reason,
                    hint,
                    error_code,
                    http_status,
                    next_actions,
                })
            }
            LogEvent::UdsMissing {
                message,
                hint,
                next_actions,
            }
            | LogEvent::WifiFailed {
                message,
                hint,
                next_actions,
            } => {
                return Err(ProvisionError::Registration {
                    reason: message,
                    hint,
                    error_code: None,
                    http_status: None,
                    next_actions,
                })
            }
            _ => {}
        }
    }
}

async fn check_hub(
    check: &HubCheck,
    hub: &str,
    device_id: &str,
    client: &ClientOptions,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<bool, ProvisionError> {
    let options = ClientOptions {
        cancel: cancel.clone(),
        ..client.clone()
    };
    let hub_client = match check {
        HubCheck::ConnectionString(cs) => {
            if !cs.host_name().eq_ignore_ascii_case(hub) {
                progress.warn(format!("the IoT Hub connection string is for {}, but the device was assigned to {hub}: registry not checked", cs.host_name()));
                return Ok(true);
            }
            HubClient::new(cs.clone(), options)?
        }
        HubCheck::Emulator {
            service_endpoint,
            key,
        } => HubClient::with_base_url(
            ConnectionString::new(hub, HUB_POLICY, key),
            format!("{service_endpoint}/iothubs/{hub}"),
            options,
        )?,
    };
    progress.begin(format!(
        "Checking that {device_id} is in {hub}'s device registry"
    ));
    let found = hub_client.get_device(device_id).await?;
    match &found {
        Some(d) => progress.end(format!(
            "found {} (status {})",
            d.device_id,
            d.status.as_deref().unwrap_or("unknown")
        )),
        None => progress.end("not found"),
    }
    Ok(found.is_some())
}

/// Options of [`simulate`].
#[derive(Debug, Clone)]
pub struct SimulateOptions {
    /// Keep the emulator's and virtual DevKit's state and the certificate here; `None` = a
    /// temporary directory removed at the end.
    pub work_dir: Option<PathBuf>,
    /// Hub the emulator assigns to.
    pub hub: Option<String>,
    pub fault: Option<Fault>,
    pub registration_timeout: Duration,
    /// How the virtual DevKit's console is reached (a pty on Unix, TCP on Windows by default).
    pub transport: SimTransport,
}

impl Default for SimulateOptions {
    fn default() -> Self {
        SimulateOptions {
            work_dir: None,
            hub: None,
            fault: None,
            registration_timeout: Duration::from_secs(60),
            transport: SimTransport::default(),
        }
    }
}

/// The folders [`simulate`] keeps in its work dir: the emulator's state, the virtual DevKit's
/// state, the certificates.
const SIMULATED_DIRS: [&str; 3] = ["dps", "devkit", "certs"];

/// Forget the virtual DevKit of a [`simulate`] work dir (its secure chip, MAC and image), the
/// emulator's enrollments and CA, and the certificates: the next run is a new device. Only
/// the folders [`simulate`] creates are removed; anything else in `work_dir` stays. Returns
/// whether there was anything to remove.
pub fn reset_simulated(work_dir: &std::path::Path) -> Result<bool, ProvisionError> {
    let mut removed = false;
    for name in SIMULATED_DIRS {
        let d = work_dir.join(name);
        match std::fs::remove_dir_all(&d) {
            Ok(()) => removed = true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(ProvisionError::Fs(FsError::Io { path: d, source })),
        }
    }
    Ok(removed)
}

/// `devkit provision --simulate`: a DPS emulator and a virtual DevKit in process (loopback,
/// temporary state), the built-in sample image, then [`provision`] end to end.
pub async fn simulate(
    opts: SimulateOptions,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<ProvisionReport, ProvisionError> {
    let (temp, work) = simulation_work_dir(&opts)?;
    let [dps_dir, sim_dir, cert_dir] = SIMULATED_DIRS.map(|d| work.join(d));
    for d in [&dps_dir, &sim_dir, &cert_dir] {
        std::fs::create_dir_all(d).map_err(|source| FsError::Io {
            path: d.clone(),
            source,
        })?;
    }

    let emulator = start_emulator(&opts, &dps_dir, progress).await?;
    let devkit = start_virtual_devkit(&opts, &sim_dir, progress)?;
    let plan = simulated_plan(&opts, &emulator, &devkit, sim_dir, cert_dir, cancel);
    let result = provision(plan, progress, cancel).await;
    // Turning the virtual DevKit off joins its threads: keep that off the async workers.
    let _ = tokio::task::spawn_blocking(move || drop(devkit)).await;
    emulator.shutdown().await;
    drop(temp);
    result
}

/// The work dir of a [`simulate`] run: the one asked for, or a new temporary directory (with
/// a short path) that is removed when the returned guard is dropped.
fn simulation_work_dir(
    opts: &SimulateOptions,
) -> Result<(Option<tempfile::TempDir>, PathBuf), ProvisionError> {
    // Short paths: the virtual DevKit's control socket path must stay under ~100 bytes.
    let temp = match &opts.work_dir {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("devkit-sim-")
                .tempdir_in(std::env::temp_dir())
                .map_err(|e| {
                    ProvisionError::Fs(FsError::Io {
                        path: std::env::temp_dir(),
                        source: e,
                    })
                })?,
        ),
    };
    let work: PathBuf = match (&opts.work_dir, &temp) {
        (Some(d), _) => d.clone(),
        (None, Some(t)) => t.path().to_path_buf(),
        (None, None) => unreachable!(),
    };
    Ok((temp, work))
}

/// The in-process DPS emulator of a [`simulate`] run, its state in `dps_dir`.
async fn start_emulator(
    opts: &SimulateOptions,
    dps_dir: &std::path::Path,
    progress: &Progress,
) -> Result<Emulator, ProvisionError> {
    progress.begin("Starting the DPS emulator");
    let mut config = EmulatorConfig::new(std::net::SocketAddr::from(([127, 0, 0, 1], 0)), dps_dir);
    config.hub = opts.hub.clone();
    // The demo hub answers with `Retry-After: 0`: the device-like register/poll exchange is
    // kept, without the two 1 s waits a real DPS asks for.
    config.retry_after_secs = 0;
    if opts.fault == Some(Fault::Throttle) {
        config.inject_429 = 1;
    }
    let emulator = Emulator::start(config).await?;
    progress.end(format!(
        "service {}, device endpoint {}, ID scope {}",
        emulator.service_endpoint(),
        emulator.device_endpoint(),
        emulator.id_scope()
    ));
    Ok(emulator)
}

/// The virtual DevKit of a [`simulate`] run, its state in `sim_dir`, started in configuration
/// mode.
fn start_virtual_devkit(
    opts: &SimulateOptions,
    sim_dir: &std::path::Path,
    progress: &Progress,
) -> Result<VirtualDevKit, ProvisionError> {
    progress.begin("Starting a virtual DevKit");
    let devkit = VirtualDevKit::start(SimOptions {
        config_mode: true,
        transport: opts.transport,
        ..SimOptions::new(sim_dir)
    })?;
    progress.end(format!(
        "{} (MAC {}), in configuration mode",
        devkit.device_port().display(),
        devkit.mac()
    ));
    Ok(devkit)
}

/// The [`ProvisionPlan`] of a [`simulate`] run: the virtual DevKit provisioned with the
/// built-in sample image against the emulator, its hub checked.
fn simulated_plan(
    opts: &SimulateOptions,
    emulator: &Emulator,
    devkit: &VirtualDevKit,
    sim_dir: PathBuf,
    cert_dir: PathBuf,
    cancel: &CancellationToken,
) -> ProvisionPlan {
    // A second run in the same work dir is the same virtual DevKit: keep the UDS in its secure
    // chip, so the certificate (and the emulator's enrollment) stays that device's identity
    // instead of being refused as a different one. [`reset_simulated`] starts from scratch.
    let uds = crate::sim::eeprom::Eeprom::load(&sim_dir)
        .ok()
        .and_then(|e| Uds::parse(e.get("dps_uds")).ok());
    ProvisionPlan {
        port: devkit.device_port().to_path_buf(),
        upload: Upload::Sim {
            state_dir: sim_dir.clone(),
            dps: SimDpsConfig {
                global_endpoint: emulator.device_endpoint(),
                id_scope: emulator.id_scope().to_string(),
                registration_id: None,
                trusted_ca_pem: Some(emulator.ca_certificate_pem().to_string()),
                emulator: true,
            },
        },
        image_bin: sample::SAMPLE_BIN.to_vec(),
        image_map: sample::SAMPLE_MAP.to_string(),
        dps: emulator.connection_string(),
        client: ClientOptions {
            ca_pem: Some(emulator.ca_certificate_pem().to_string()),
            cancel: cancel.clone(),
            ..Default::default()
        },
        hub_check: Some(HubCheck::Emulator {
            service_endpoint: emulator.service_endpoint(),
            key: Zeroizing::new(emulator.connection_string().key().to_vec()),
        }),
        wifi: Some(WifiSettings {
            ssid: "DevKitSim".into(),
            password: Zeroizing::new("simulated-wifi-password".into()),
        }),
        uds,
        save_uds_to: None,
        registration_id: None,
        mac: Some(devkit.mac().to_string()),
        cert_dir,
        project_root: None,
        enrollment: EnrollmentSettings::default(),
        fault: opts.fault,
        ports: None,
        console_timeout: Duration::from_secs(15),
        registration_timeout: opts.registration_timeout,
    }
}
