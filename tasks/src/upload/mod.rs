//! upload: the `device-upload` task: build (or skip) -> pause the monitor on the port ->
//! flash -> resume -> report.
//!
//! Two things the old task did not do: the serial monitor is paused around the upload (the
//! ST-LINK and the virtual COM port are one USB device, and a held port made uploads fail with
//! "access denied"), and the identity drift guard: when a new build's `.riot_fw` code changes
//! FWID, the device's alias certificate changes with it and the DPS enrollment no longer
//! matches. We warn before flashing, with the new thumbprint when the UDS is at hand.
//!
//! The monitor is not a dependency: the caller passes a [`PortPause`] (the daemon implements it
//! with its monitor registry; the CLI, which owns no monitor, passes [`NoMonitor`]).

use crate::build::{self, BuildError, BuildOptions, BuildOutput};
use crate::error::{DomainError, ErrorKind, InvalidInput, NextAction, NextStep};
use crate::flash::{self, Backend, FlashError, FlashImage};
use crate::identity::{FirmwareImage, RegistrationId, Uds};
use crate::progress::{CancellationToken, Progress};
use crate::project::{IdentitySource, ProjectState};
use serde::Serialize;
use std::future::Future;
use std::path::{Path, PathBuf};

/// Pauses whatever holds a serial port (the monitor) for the duration of an upload.
/// Dropping the guard resumes it.
pub trait PortPause: Send + Sync {
    type Guard: Send;
    fn pause(&self, port: &str) -> impl Future<Output = Result<Self::Guard, String>> + Send;
}

/// Nothing to pause (the CLI: monitors run in other processes).
pub struct NoMonitor;

impl PortPause for NoMonitor {
    type Guard = ();
    async fn pause(&self, _port: &str) -> Result<(), String> {
        Ok(())
    }
}

/// Errors from `device-upload`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UploadError {
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Flash(#[from] FlashError),
    #[error("cannot pause the monitor on {port}: {message}; close whatever holds the port and retry")]
    Pause { port: String, message: String },
}

impl DomainError for UploadError {
    fn kind(&self) -> ErrorKind {
        match self {
            UploadError::Build(e) => e.kind(),
            UploadError::Flash(e) => e.kind(),
            UploadError::Pause { .. } => ErrorKind::Device,
        }
    }
    fn invalid_input(&self) -> Option<&InvalidInput> {
        match self {
            UploadError::Build(e) => e.invalid_input(),
            UploadError::Flash(e) => e.invalid_input(),
            UploadError::Pause { .. } => None,
        }
    }
    fn next_actions(&self) -> Vec<NextStep> {
        match self {
            UploadError::Build(e) => e.next_actions(),
            UploadError::Flash(e) => e.next_actions(),
            UploadError::Pause { .. } => vec![NextStep::new(NextAction::Retry)],
        }
    }
}

/// What `device-upload` needs.
#[derive(Debug, Clone)]
pub struct DeviceUploadOptions {
    /// The project root (holds `.devkit/state.json`).
    pub project_root: PathBuf,
    pub build: BuildOptions,
    pub backend: Backend,
    /// The DevKit's serial port, paused around the upload when given.
    pub port: Option<String>,
}

/// The identity drift found before flashing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityDrift {
    pub registration_id: String,
    /// Where the old identity came from (the enrollment when there is one).
    pub previous_source: IdentitySource,
    pub previous_fwid: String,
    pub new_fwid: String,
    pub previous_sha256_thumbprint: String,
    /// The new alias certificate's SHA-256 thumbprint, when the UDS was available.
    pub new_sha256_thumbprint: Option<String>,
    /// What to tell the user.
    pub message: String,
}

/// What `device-upload` did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceUploadReport {
    pub build: BuildOutput,
    /// FWID of the flashed image (lower-case hex), when its map locates `.riot_fw`.
    pub fwid: Option<String>,
    pub drift: Option<IdentityDrift>,
    pub backend: &'static str,
    pub port_paused: Option<String>,
}

/// Compare a new image's FWID with the identity last enrolled (else last generated) for the
/// project. `None` when there is nothing to compare with or FWID is unchanged.
pub fn check_drift(state: &ProjectState, image: &FirmwareImage, bin: &Path, map: &Path, registration_id: Option<&str>, uds: Option<&Uds>) -> Option<IdentityDrift> {
    let new_fwid = hex::encode(image.fwid());
    let (record, source) = state.fwid_drift(&new_fwid)?;
    let reg_text = registration_id.unwrap_or(&record.registration_id).to_string();
    let new_thumb = match (uds, RegistrationId::parse(&reg_text)) {
        (Some(uds), Ok(reg)) => crate::identity::derive(uds, image, &reg).ok().map(|id| id.sha256_thumbprint()),
        _ => None,
    };
    let what = match source {
        IdentitySource::Enrolled => "enrolled",
        IdentitySource::Generated => "generated",
    };
    let next = match &new_thumb {
        Some(t) => format!(
            "The new alias certificate's SHA-256 thumbprint is {t}. Regenerate it with `devkit generate-cert --bin {} --map {} --registration-id {reg_text} --uds-file <UDS file>` and update the enrollment with `devkit enroll`.",
            bin.display(),
            map.display()
        ),
        None => format!(
            "New FWID: {new_fwid}. Regenerate the certificate with the device's UDS: `devkit generate-cert --bin {} --map {} --registration-id {reg_text} --uds-file <UDS file>`, then update the enrollment with `devkit enroll`.",
            bin.display(),
            map.display()
        ),
    };
    let message = format!(
        "This build changes the device identity: the code in .riot_fw changed (FWID {} -> {new_fwid}), so the {what} certificate for {reg_text} (SHA-256 {}) will no longer match the device and DPS will reject it (401002 \"Invalid certificate\") until the enrollment is updated. {next}",
        record.fwid, record.sha256_thumbprint
    );
    Some(IdentityDrift {
        registration_id: reg_text,
        previous_source: source,
        previous_fwid: record.fwid.clone(),
        new_fwid,
        previous_sha256_thumbprint: record.sha256_thumbprint.clone(),
        new_sha256_thumbprint: new_thumb,
        message,
    })
}

/// Build (or skip), check identity drift, pause the monitor, flash, resume.
pub async fn device_upload<P: PortPause>(opts: &DeviceUploadOptions, uds: Option<&Uds>, pause: &P, progress: &Progress, cancel: &CancellationToken) -> Result<DeviceUploadReport, UploadError> {
    let built = build::build(&opts.build, progress, cancel).await?;
    let image = FlashImage::load(&built.bin)?;

    // Identity drift guard, before anything is flashed.
    let state = ProjectState::load(&opts.project_root).unwrap_or_else(|e| {
        progress.warn(format!("{e}; the identity drift check has nothing to compare with"));
        ProjectState::default()
    });
    let (fwid, drift) = match FirmwareImage::load(&built.bin, &built.map) {
        Ok(fw) => {
            let reg = opts.build.dps.registration_id.as_ref().map(|r| r.as_str());
            let drift = check_drift(&state, &fw, &built.bin, &built.map, reg, uds);
            (Some(hex::encode(fw.fwid())), drift)
        }
        Err(e) => {
            progress.warn(format!("cannot locate the RIoT regions in this build ({e}); the identity drift check was skipped"));
            (None, None)
        }
    };
    if let Some(d) = &drift {
        progress.warn(d.message.clone());
    }

    let guard = match &opts.port {
        Some(port) => {
            progress.report(format!("Pausing the monitor on {port}"), None);
            Some(pause.pause(port).await.map_err(|message| UploadError::Pause { port: port.clone(), message })?)
        }
        None => None,
    };
    let result = flash::flash(&image, &opts.backend, progress, cancel).await;
    drop(guard);
    if let Some(port) = &opts.port {
        progress.report(format!("Monitor on {port} resumed"), None);
    }
    result?;
    Ok(DeviceUploadReport { build: built, fwid, drift, backend: opts.backend.name(), port_paused: opts.port.clone() })
}
