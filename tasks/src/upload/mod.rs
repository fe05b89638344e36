//! upload: the `device-upload` task: build (or skip) -> pause the monitor on the port ->
//! flash -> resume -> report.
//!
//! Two things the old task did not do: the serial monitor is paused around the upload (the
//! ST-LINK and the virtual COM port are one USB device, and a held port made uploads fail with
//! "access denied"), and the identity drift guard: when a new build's `.riot_fw` bytes change
//! FWID, the device's alias certificate changes with it and the DPS enrollment no longer
//! matches; when its `.riot_core` changes, the DeviceID key changes too. Both digests are
//! compared, and because the RIoT regions sit after all code and hold absolute addresses,
//! nearly any rebuild after a code or toolchain change trips the guard. We warn before
//! flashing, naming what changed, with the new thumbprint when the UDS is at hand.
//!
//! The monitor is not a dependency: the caller passes a [`PortPause`] (the daemon implements it
//! with its monitor registry; the CLI, which owns no monitor, passes [`NoMonitor`]).

use crate::build::{self, BuildError, BuildOptions, BuildOutput};
use crate::error::{DomainError, ErrorKind, InvalidInput, NextAction, NextStep};
use crate::flash::{self, Backend, FlashError, FlashImage};
use crate::identity::{FirmwareImage, Uds};
use crate::progress::{CancellationToken, Progress};
pub use crate::project::Drift;
use crate::project::ProjectState;
use serde::Serialize;
use std::future::Future;
use std::path::PathBuf;

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
    #[error(
        "cannot pause the monitor on {port}: {message}; close whatever holds the port and retry"
    )]
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

/// The identity drift found before flashing: the one typed drift ([`crate::project::Drift`]).
pub type IdentityDrift = Drift;

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

pub use crate::project::DRIFT_EXPLANATION;

/// Compare a new image's FWID and RIoT core digest with the identity last enrolled (else last
/// generated) for the project ([`crate::identity::status::image_drift`], the rule
/// `devkit/identity` uses too). `None` when there is nothing to compare with or nothing changed.
pub fn check_drift(
    state: &ProjectState,
    image: &FirmwareImage,
    registration_id: Option<&str>,
    uds: Option<&Uds>,
) -> Option<Drift> {
    crate::identity::status::image_drift(state, image, registration_id, uds)
}

/// Build (or skip), check identity drift, pause the monitor, flash, resume.
pub async fn device_upload<P: PortPause>(
    opts: &DeviceUploadOptions,
    uds: Option<&Uds>,
    pause: &P,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<DeviceUploadReport, UploadError> {
    let built = build::build(&opts.build, progress, cancel).await?;
    let image = FlashImage::load(&built.bin)?;

    // Identity drift guard, before anything is flashed.
    let state = ProjectState::load(&opts.project_root).unwrap_or_else(|e| {
        progress.warn(format!(
            "{e}; the identity drift check has nothing to compare with"
        ));
        ProjectState::default()
    });
    let (fwid, drift) = match FirmwareImage::load(&built.bin, &built.map) {
        Ok(fw) => {
            let reg = opts.build.dps.registration_id.as_ref().map(|r| r.as_str());
            let drift = check_drift(&state, &fw, reg, uds);
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
            Some(
                pause
                    .pause(port)
                    .await
                    .map_err(|message| UploadError::Pause {
                        port: port.clone(),
                        message,
                    })?,
            )
        }
        None => None,
    };
    let result = flash::flash(&image, &opts.backend, progress, cancel).await;
    drop(guard);
    if let Some(port) = &opts.port {
        progress.report(format!("Monitor on {port} resumed"), None);
    }
    result?;
    Ok(DeviceUploadReport {
        build: built,
        fwid,
        drift,
        backend: opts.backend.name(),
        port_paused: opts.port.clone(),
    })
}
