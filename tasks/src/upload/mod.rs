//! upload: the `upload` task (flash an image: pause the monitor on the port -> flash ->
//! resume -> report) and the `device-upload` task (build, or skip -> identity drift guard ->
//! the same pause/flash/resume step -> report). The CLI and the daemon run these, nothing else.
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

use crate::build::{self, BuildError, BuildOptions, BuildRequest, Diagnostic};
use crate::error::{DomainError, ErrorKind, InvalidInput, NextAction, NextStep};
use crate::flash::{self, Backend, BackendRequest, FlashError, FlashImage};
use crate::identity::{FirmwareImage, Uds};
use crate::progress::{CancellationToken, Progress, ProgressEvent};
pub use crate::project::Drift;
use crate::project::ProjectState;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

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
    #[error("cancelled")]
    Cancelled,
}

impl DomainError for UploadError {
    fn kind(&self) -> ErrorKind {
        match self {
            UploadError::Build(e) => e.kind(),
            UploadError::Flash(e) => e.kind(),
            UploadError::Pause { .. } => ErrorKind::Device,
            UploadError::Cancelled => ErrorKind::Cancelled,
        }
    }
    fn invalid_input(&self) -> Option<&InvalidInput> {
        match self {
            UploadError::Build(e) => e.invalid_input(),
            UploadError::Flash(e) => e.invalid_input(),
            UploadError::Pause { .. } | UploadError::Cancelled => None,
        }
    }
    fn input(&self) -> Option<crate::error::Input> {
        match self {
            UploadError::Build(e) => e.input(),
            UploadError::Flash(e) => e.input(),
            UploadError::Pause { .. } | UploadError::Cancelled => None,
        }
    }
    fn next_actions(&self) -> Vec<NextStep> {
        match self {
            UploadError::Build(e) => e.next_actions(),
            UploadError::Flash(e) => e.next_actions(),
            UploadError::Pause { .. } => vec![NextStep::new(NextAction::Retry)],
            UploadError::Cancelled => Vec::new(),
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

/// What `device-upload` did: the daemon's `devkit/deviceUpload` result and what
/// `device-upload --json` prints.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceUploadReport {
    pub bin: PathBuf,
    pub map: PathBuf,
    /// True when nothing changed and the compile was skipped.
    pub skipped_build: bool,
    /// Warnings and notes of the compile (the daemon publishes them as diagnostics).
    #[serde(skip)]
    pub diagnostics: Vec<Diagnostic>,
    pub backend: String,
    /// FWID of the flashed image (lower-case hex), when its map locates `.riot_fw`.
    pub fwid: Option<String>,
    /// True when the new build changes the enrolled (or generated) identity: `drift` says how.
    pub identity_changed: bool,
    pub drift: Option<IdentityDrift>,
    /// The port whose monitor was paused around flashing.
    pub port_paused: Option<String>,
    pub warnings: Vec<String>,
    /// The drift's next actions (regenerate the certificate, update the enrollment).
    pub next_actions: Vec<NextStep>,
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

/// A progress sink that forwards to `progress` and keeps the warnings for the report.
fn collecting(progress: &Progress) -> (Progress, Arc<Mutex<Vec<String>>>) {
    let warnings = Arc::new(Mutex::new(Vec::new()));
    let (inner, kept) = (progress.clone(), warnings.clone());
    let p = Progress::new(move |e| {
        if let ProgressEvent::Warning { message } = &e {
            if let Ok(mut w) = kept.lock() {
                w.push(message.clone());
            }
        }
        inner.emit(e)
    });
    (p, warnings)
}

fn taken(warnings: &Mutex<Vec<String>>) -> Vec<String> {
    warnings
        .lock()
        .map(|mut w| std::mem::take(&mut *w))
        .unwrap_or_default()
}

/// The one pause -> flash -> resume step of `upload` and `device-upload`: the monitor on
/// `port` (if any) is paused, the image flashed, and the monitor resumed whatever happened.
async fn flash_paused<P: PortPause>(
    image: &FlashImage,
    backend: &Backend,
    port: Option<&str>,
    pause: &P,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<(), UploadError> {
    if cancel.is_cancelled() {
        return Err(UploadError::Cancelled);
    }
    let guard = match port {
        Some(port) => {
            progress.report(format!("Pausing the monitor on {port}"), None);
            Some(
                pause
                    .pause(port)
                    .await
                    .map_err(|message| UploadError::Pause {
                        port: port.to_string(),
                        message,
                    })?,
            )
        }
        None => None,
    };
    let result = flash::flash(image, backend, progress, cancel).await;
    drop(guard);
    if let Some(port) = port {
        progress.report(format!("Monitor on {port} resumed"), None);
    }
    match result {
        Err(_) if cancel.is_cancelled() => Err(UploadError::Cancelled),
        r => Ok(r?),
    }
}

/// The inputs of a plain upload as an adapter receives them.
#[derive(Debug, Clone, Default)]
pub struct UploadRequest {
    /// The image; else the image of `build_dir`.
    pub bin: Option<PathBuf>,
    pub build_dir: Option<PathBuf>,
    pub flash: BackendRequest,
    /// Flash address [default: the image's, 0x0800C000].
    pub address: Option<u32>,
    /// The DevKit's serial port: its monitor is paused around flashing.
    pub port: Option<String>,
}

/// A validated upload: the image read, the backend decided.
#[derive(Debug, Clone)]
pub struct UploadPlan {
    pub image: FlashImage,
    pub backend: Backend,
    pub port: Option<String>,
}

impl UploadRequest {
    /// Read the image and decide the backend; nothing is flashed. Blocking (reads the image).
    pub fn plan(self) -> Result<UploadPlan, UploadError> {
        let backend = self.flash.backend()?;
        let mut image = FlashImage::from_inputs(self.bin.as_deref(), self.build_dir.as_deref())?;
        if let Some(address) = self.address {
            image.address = address;
        }
        Ok(UploadPlan {
            image,
            backend,
            port: self.port,
        })
    }
}

/// What `upload` did: the daemon's `devkit/upload` result and what `upload --json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadReport {
    pub bin: PathBuf,
    pub bytes: u64,
    pub address: u32,
    pub backend: String,
    /// The port whose monitor was paused around flashing.
    pub port_paused: Option<String>,
    pub warnings: Vec<String>,
    pub next_actions: Vec<NextStep>,
}

impl UploadPlan {
    /// Pause the monitor, flash, resume.
    pub async fn run<P: PortPause>(
        &self,
        pause: &P,
        progress: &Progress,
        cancel: &CancellationToken,
    ) -> Result<UploadReport, UploadError> {
        let (progress, warnings) = collecting(progress);
        flash_paused(
            &self.image,
            &self.backend,
            self.port.as_deref(),
            pause,
            &progress,
            cancel,
        )
        .await?;
        Ok(UploadReport {
            bin: self.image.bin_path.clone(),
            bytes: self.image.bin.len() as u64,
            address: self.image.address,
            backend: self.backend.name().to_string(),
            port_paused: self.port.clone(),
            warnings: taken(&warnings),
            next_actions: Vec::new(),
        })
    }
}

/// The inputs of `device-upload` as an adapter receives them.
pub struct DeviceUploadRequest {
    pub build: BuildRequest,
    pub flash: BackendRequest,
    /// The DevKit's serial port: its monitor is paused around flashing.
    pub port: Option<String>,
    /// The device's UDS (read by the adapter): with it the drift names the new thumbprint.
    pub uds: Option<Uds>,
}

/// A validated `device-upload`.
pub struct DeviceUploadPlan {
    pub options: DeviceUploadOptions,
    pub uds: Option<Uds>,
    /// Settings warnings found while planning (they also go into the report).
    pub warnings: Vec<String>,
    /// Set when the DPS settings of the previous build are reused.
    pub note: Option<String>,
}

impl DeviceUploadRequest {
    /// Validate the build settings and the backend; nothing is built or flashed.
    pub fn plan(self) -> Result<DeviceUploadPlan, UploadError> {
        let planned = self.build.options()?;
        let backend = self.flash.backend()?;
        Ok(DeviceUploadPlan {
            options: DeviceUploadOptions {
                project_root: self.build.project_dir.clone(),
                build: planned.options,
                backend,
                port: self.port,
            },
            uds: self.uds,
            warnings: planned.warnings,
            note: planned.note,
        })
    }
}

impl DeviceUploadPlan {
    /// Build (or skip), check identity drift, pause the monitor, flash, resume.
    pub async fn run<P: PortPause>(
        &self,
        pause: &P,
        progress: &Progress,
        cancel: &CancellationToken,
    ) -> Result<DeviceUploadReport, UploadError> {
        let mut report =
            device_upload(&self.options, self.uds.as_ref(), pause, progress, cancel).await?;
        let mut warnings = self.warnings.clone();
        warnings.append(&mut report.warnings);
        report.warnings = warnings;
        Ok(report)
    }
}

/// Build (or skip), check identity drift, pause the monitor, flash, resume.
pub async fn device_upload<P: PortPause>(
    opts: &DeviceUploadOptions,
    uds: Option<&Uds>,
    pause: &P,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<DeviceUploadReport, UploadError> {
    let (progress, warnings) = collecting(progress);
    let progress = &progress;
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

    flash_paused(
        &image,
        &opts.backend,
        opts.port.as_deref(),
        pause,
        progress,
        cancel,
    )
    .await?;
    let next_actions = drift
        .as_ref()
        .map(|d| d.next_actions.clone())
        .unwrap_or_default();
    Ok(DeviceUploadReport {
        bin: built.bin,
        map: built.map,
        skipped_build: built.skipped,
        diagnostics: built.diagnostics,
        backend: opts.backend.name().to_string(),
        fwid,
        identity_changed: drift.is_some(),
        drift,
        port_paused: opts.port.clone(),
        warnings: taken(&warnings),
        next_actions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Input;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn small_image() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/dice-vectors/explicit-id-small/DevKitDPS.ino.bin")
    }

    /// Counts pauses; the guard counts resumes.
    #[derive(Default)]
    struct Counting(Arc<AtomicUsize>, Arc<AtomicUsize>);
    struct Resume(Arc<AtomicUsize>);
    impl Drop for Resume {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    impl PortPause for Counting {
        type Guard = Resume;
        async fn pause(&self, _port: &str) -> Result<Resume, String> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(Resume(self.1.clone()))
        }
    }

    #[test]
    fn an_upload_plan_needs_an_image_and_a_known_backend_combination() {
        let e = UploadRequest::default().plan().unwrap_err();
        assert_eq!(e.input(), Some(Input::Bin));
        let e = UploadRequest {
            bin: Some(small_image()),
            flash: BackendRequest {
                probe: Some("0483:374b".into()),
                kind: crate::flash::BackendKind::Sim,
                sim_dir: Some("/tmp/x".into()),
                ..Default::default()
            },
            ..Default::default()
        }
        .plan()
        .unwrap_err();
        assert_eq!(e.input(), Some(Input::Probe), "{e}");
        let plan = UploadRequest {
            bin: Some(small_image()),
            address: Some(0x0801_0000),
            port: Some("/dev/ttyACM0".into()),
            ..Default::default()
        }
        .plan()
        .unwrap();
        assert_eq!(plan.image.address, 0x0801_0000);
        assert_eq!(plan.port.as_deref(), Some("/dev/ttyACM0"));
        assert_eq!(plan.backend.name(), "probe-rs");
    }

    #[tokio::test]
    async fn an_upload_pauses_the_port_flashes_and_resumes_once() {
        let state = tempfile::tempdir().unwrap();
        let plan = UploadRequest {
            bin: Some(small_image()),
            flash: BackendRequest {
                kind: crate::flash::BackendKind::Sim,
                sim_dir: Some(state.path().to_path_buf()),
                ..Default::default()
            },
            port: Some("/dev/ttyACM0".into()),
            ..Default::default()
        }
        .plan()
        .unwrap();
        let pause = Counting::default();
        let report = plan
            .run(&pause, &Progress::none(), &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(pause.0.load(Ordering::SeqCst), 1);
        assert_eq!(pause.1.load(Ordering::SeqCst), 1);
        assert_eq!(report.backend, "sim");
        assert_eq!(
            report.bytes,
            std::fs::metadata(small_image()).unwrap().len()
        );
        assert_eq!(report.port_paused.as_deref(), Some("/dev/ttyACM0"));
        // A cancelled run flashes nothing and never pauses.
        let cancel = CancellationToken::new();
        cancel.cancel();
        let e = plan
            .run(&pause, &Progress::none(), &cancel)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Cancelled);
        assert_eq!(pause.0.load(Ordering::SeqCst), 1);
    }
}
