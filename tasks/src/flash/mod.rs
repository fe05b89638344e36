//! flash: putting a build on the DevKit (probe-rs in process, OpenOCD, or the virtual DevKit).
//!
//! Every backend checks the image against the flash layout first ([`guard::check`]), before
//! any probe is opened: empty images, images over 999,424 bytes and anything below
//! 0x0800_C000 (the bootloader) or past the end of flash are refused as invalid input.

pub mod guard;
pub mod openocd;
pub mod probe;

use crate::error::{DomainError, ErrorKind, Input, InvalidInput, NextAction, NextStep};
use crate::progress::{CancellationToken, Progress};
use crate::sim::control::SimDpsConfig;
use std::path::{Path, PathBuf};

macro_rules! udev_rule {
    () => {
        r#"SUBSYSTEM=="usb", ATTRS{idVendor}=="0483", ATTRS{idProduct}=="374b", MODE="0660", TAG+="uaccess""#
    };
}
macro_rules! udev_rule_file {
    () => {
        "/etc/udev/rules.d/69-devkit-stlink.rules"
    };
}
macro_rules! udev_reload {
    () => {
        "sudo udevadm control --reload-rules && sudo udevadm trigger"
    };
}
/// The udev rule that lets the logged-in user open the DevKit's ST-LINK/V2-1 (USB 0483:374B).
pub const UDEV_RULE: &str = udev_rule!();
/// Where [`UDEV_RULE`] goes.
pub const UDEV_RULE_FILE: &str = udev_rule_file!();
/// The command that applies a new rule.
pub const UDEV_RELOAD: &str = udev_reload!();
/// What to do about USB permissions on Linux.
pub const UDEV_HINT: &str = concat!(
    "on Linux, allow your user to open the ST-LINK: add the udev rule `",
    udev_rule!(),
    "` to ",
    udev_rule_file!(),
    ", run `",
    udev_reload!(),
    "`, and replug the DevKit"
);

/// Errors from flashing. Messages say what to do.
#[derive(Debug, thiserror::Error)]
pub enum FlashError {
    /// The caller's input (exit 2 at the CLI); nothing was opened or written.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    #[error("{wanted} not found; probes found: {}. {detail}", if .found.is_empty() { "none".to_string() } else { .found.join(", ") })]
    NoProbe {
        wanted: String,
        found: Vec<String>,
        detail: String,
    },
    #[error("{0}")]
    ProbeFirmwareTooOld(String),
    #[error("USB permission denied: {detail}; {hint}")]
    PermissionDenied { detail: String, hint: String },
    /// openocd (the OpenOCD backend) is missing: at `configured` (the caller's input), else
    /// on PATH.
    #[error("openocd not found {}; install it (Debian/Ubuntu: `sudo apt-get install openocd`, macOS: `brew install open-ocd`) or use the probe-rs backend", match .configured { Some(p) => format!("at {}", p.display()), None => "on PATH".into() })]
    ToolNotFound { configured: Option<PathBuf> },
    #[error("{0}")]
    Backend(String),
    #[error(transparent)]
    Sim(#[from] crate::sim::control::ControlError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("flashing cancelled")]
    Cancelled,
}

impl FlashError {
    pub(crate) fn invalid(input: Input, reason: impl Into<String>) -> Self {
        FlashError::Invalid(InvalidInput::new(input, reason))
    }
}

impl DomainError for FlashError {
    fn kind(&self) -> ErrorKind {
        match self {
            FlashError::Invalid(_) => ErrorKind::InvalidInput,
            FlashError::NoProbe { .. } | FlashError::ToolNotFound { .. } => ErrorKind::NotFound,
            FlashError::Read { source, .. } => crate::error::io_kind(source),
            FlashError::Cancelled => ErrorKind::Cancelled,
            _ => ErrorKind::FlashFailed,
        }
    }
    fn invalid_input(&self) -> Option<&InvalidInput> {
        match self {
            FlashError::Invalid(i) => Some(i),
            _ => None,
        }
    }
    fn input(&self) -> Option<Input> {
        match self {
            FlashError::Invalid(i) => Some(i.input),
            FlashError::Read { .. } => Some(Input::Bin),
            FlashError::ToolNotFound {
                configured: Some(_),
            } => Some(Input::Openocd),
            _ => None,
        }
    }
    fn next_actions(&self) -> Vec<NextStep> {
        match self {
            FlashError::NoProbe { .. } => vec![
                NextStep::new(NextAction::ChooseUploadBackend),
                NextStep::new(NextAction::Retry),
            ],
            FlashError::PermissionDenied { .. } => vec![NextStep::new(NextAction::InstallUdevRule)],
            FlashError::ToolNotFound { .. } => vec![
                NextStep::with_detail(NextAction::InstallToolchain, "openocd"),
                NextStep::new(NextAction::ChooseUploadBackend),
            ],
            FlashError::ProbeFirmwareTooOld(_) => vec![
                NextStep::with_detail(NextAction::InstallToolchain, "stlink-firmware"),
                NextStep::new(NextAction::ChooseUploadBackend),
            ],
            _ => Vec::new(),
        }
    }
}

/// A build to flash: the raw image (starting at `address`), and its map and DPS settings when
/// known (the virtual DevKit needs them; a real probe does not).
#[derive(Debug, Clone)]
pub struct FlashImage {
    pub bin_path: PathBuf,
    pub bin: Vec<u8>,
    pub map: Option<String>,
    pub dps: Option<crate::build::DpsSettings>,
    pub address: u32,
}

impl FlashImage {
    /// `bin` and, when it exists, the map next to it (same stem, `.map`), and the build's
    /// `dps_config.json` in the same directory.
    pub fn load(bin: &Path) -> Result<FlashImage, FlashError> {
        use crate::fsutil::{limits, read_bounded};
        let name = |p: &Path| format!("image {:?}", p.display().to_string());
        let bytes =
            read_bounded(bin, &name(bin), limits::FIRMWARE_BIN).map_err(|e| match e.io_kind {
                Some(kind) => FlashError::Read {
                    path: bin.to_path_buf(),
                    source: std::io::Error::new(kind, e.reason),
                },
                None => FlashError::Invalid(e.into_invalid(Input::Bin)),
            })?;
        let map_path = bin.with_extension("map");
        let map = match read_bounded(&map_path, &name(&map_path), limits::MAP_FILE) {
            Ok(b) => Some(String::from_utf8_lossy(&b).into_owned()),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(FlashError::Invalid(e.into_invalid(Input::Map))),
        };
        let dps = bin
            .parent()
            .and_then(|d| {
                read_bounded(
                    &d.join(crate::build::DPS_CONFIG_JSON),
                    "dps_config.json",
                    limits::CERT_FILE,
                )
                .ok()
            })
            .and_then(|b| serde_json::from_slice(&b).ok());
        Ok(FlashImage {
            bin_path: bin.to_path_buf(),
            bin: bytes,
            map,
            dps,
            address: guard::APP_BASE,
        })
    }

    /// The image of a build directory ([`crate::build::find_outputs`]), with its map.
    pub fn from_build_dir(dir: &Path) -> Result<FlashImage, FlashError> {
        match crate::build::find_outputs(dir) {
            Ok((bin, _map)) => Self::load(&bin),
            Err(crate::build::FindOutputError::Invalid(i)) => Err(FlashError::Invalid(i)),
            Err(crate::build::FindOutputError::Unreadable { dir, source }) => {
                Err(FlashError::invalid(
                    Input::BuildDir,
                    format!("cannot read {}: {source}", dir.display()),
                ))
            }
            Err(e @ crate::build::FindOutputError::MapMissing { .. }) => {
                Err(FlashError::invalid(Input::BuildDir, e.to_string()))
            }
        }
    }

    /// `bin` when given, else the image of `build_dir`: the image inputs of upload and provision.
    pub fn from_inputs(
        bin: Option<&Path>,
        build_dir: Option<&Path>,
    ) -> Result<FlashImage, FlashError> {
        match (bin, build_dir) {
            (Some(bin), _) => Self::load(bin),
            (None, Some(dir)) => Self::from_build_dir(dir),
            (None, None) => Err(FlashError::invalid(
                Input::Bin,
                "is required: name the image or the build directory holding it",
            )),
        }
    }
}

/// Where to flash.
#[derive(Debug, Clone)]
pub enum Backend {
    /// probe-rs in process; `probe` is a `VID:PID[:serial]` selector (default 0483:374b).
    ProbeRs { probe: Option<String> },
    /// External OpenOCD (`which openocd` when `None`).
    OpenOcd { openocd: Option<PathBuf> },
    /// The virtual DevKit with this state directory; `trusted_ca_pem` is the DPS emulator's CA.
    Sim {
        state_dir: PathBuf,
        trusted_ca_pem: Option<String>,
    },
}

/// Which backend the adapters asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendKind {
    #[default]
    ProbeRs,
    OpenOcd,
    Sim,
}

impl BackendKind {
    /// From its name (`probe-rs`, `openocd`, `sim`).
    pub fn parse(name: &str) -> Result<BackendKind, InvalidInput> {
        match name {
            "probe-rs" => Ok(BackendKind::ProbeRs),
            "openocd" => Ok(BackendKind::OpenOcd),
            "sim" => Ok(BackendKind::Sim),
            _ => Err(InvalidInput::new(
                Input::Backend,
                "must be one of `probe-rs`, `openocd`, `sim`",
            )),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::ProbeRs => "probe-rs",
            BackendKind::OpenOcd => "openocd",
            BackendKind::Sim => "sim",
        }
    }
}

/// A flash backend as the adapters receive it. [`BackendRequest::backend`] refuses options
/// that do not fit the chosen backend (the same rule for the CLI and the daemon).
#[derive(Debug, Clone, Default)]
pub struct BackendRequest {
    pub kind: BackendKind,
    pub probe: Option<String>,
    pub openocd: Option<PathBuf>,
    pub sim_dir: Option<PathBuf>,
    pub trusted_ca: Option<PathBuf>,
}

impl BackendRequest {
    pub fn backend(&self) -> Result<Backend, FlashError> {
        let only = |input: Input, set: bool, backend: BackendKind| {
            if set && self.kind != backend {
                Err(FlashError::invalid(
                    input,
                    format!(
                        "is only used with backend `{}` (the backend is `{}`)",
                        backend.name(),
                        self.kind.name()
                    ),
                ))
            } else {
                Ok(())
            }
        };
        only(Input::SimDir, self.sim_dir.is_some(), BackendKind::Sim)?;
        only(
            Input::TrustedCa,
            self.trusted_ca.is_some(),
            BackendKind::Sim,
        )?;
        only(Input::Probe, self.probe.is_some(), BackendKind::ProbeRs)?;
        only(Input::Openocd, self.openocd.is_some(), BackendKind::OpenOcd)?;
        Ok(match self.kind {
            BackendKind::ProbeRs => Backend::ProbeRs {
                probe: self.probe.clone(),
            },
            BackendKind::OpenOcd => Backend::OpenOcd {
                openocd: self.openocd.clone(),
            },
            BackendKind::Sim => {
                let state_dir = self.sim_dir.clone().ok_or_else(|| {
                    FlashError::invalid(
                        Input::SimDir,
                        "is required with backend `sim` (the virtual DevKit's state directory)",
                    )
                })?;
                let trusted_ca_pem = match &self.trusted_ca {
                    Some(path) => {
                        let name = format!(
                            "{} {:?}",
                            Input::TrustedCa.label(),
                            path.display().to_string()
                        );
                        let bytes = crate::fsutil::read_bounded(
                            path,
                            &name,
                            crate::fsutil::limits::CERT_FILE,
                        )
                        .map_err(|e| FlashError::Invalid(e.into_invalid(Input::TrustedCa)))?;
                        Some(String::from_utf8(bytes).map_err(|_| {
                            FlashError::invalid(
                                Input::TrustedCa,
                                "is not UTF-8 text (expected a PEM certificate)",
                            )
                        })?)
                    }
                    None => None,
                };
                Backend::Sim {
                    state_dir,
                    trusted_ca_pem,
                }
            }
        })
    }
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::ProbeRs { .. } => "probe-rs",
            Backend::OpenOcd { .. } => "openocd",
            Backend::Sim { .. } => "sim",
        }
    }
}

/// Flash `image` with `backend`, then reset the target.
pub async fn flash(
    image: &FlashImage,
    backend: &Backend,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<(), FlashError> {
    guard::check(image.address, image.bin.len())?;
    progress.begin(format!(
        "Flashing {} bytes at {:#010x} ({})",
        image.bin.len(),
        image.address,
        backend.name()
    ));
    match backend {
        Backend::ProbeRs { probe } => {
            let bin = image.bin.clone();
            let address = image.address;
            let probe = probe.clone();
            let p = progress.clone();
            if cancel.is_cancelled() {
                return Err(FlashError::Cancelled);
            }
            let mut job = tokio::task::spawn_blocking(move || {
                probe::flash_blocking(&bin, address, probe.as_deref(), &p)
            });
            // Once the probe is open the write runs to the end: stopping between sectors would
            // leave a half-written application (and a busy probe) while reporting "cancelled".
            let r = tokio::select! {
                r = &mut job => r,
                _ = cancel.cancelled() => {
                    progress.warn("cancellation requested: flashing cannot be interrupted safely; finishing first");
                    job.await
                }
            };
            r.map_err(|e| FlashError::Backend(format!("flash task failed: {e}")))??;
        }
        Backend::OpenOcd { openocd: path } => {
            let exe = openocd::find(path.as_deref())?;
            openocd::flash(
                &exe,
                &image.bin_path,
                image.bin.len(),
                image.address,
                progress,
                cancel,
            )
            .await?;
        }
        Backend::Sim {
            state_dir,
            trusted_ca_pem,
        } => {
            if image.address != guard::APP_BASE {
                return Err(FlashError::invalid(
                    Input::Address,
                    format!(
                        "the virtual DevKit boots images linked at {:#010x} only",
                        guard::APP_BASE
                    ),
                ));
            }
            let map = image.map.as_deref().ok_or_else(|| {
                FlashError::invalid(
                    Input::Bin,
                    format!(
                        "the virtual DevKit needs the map file next to {} (same name, .map)",
                        image.bin_path.display()
                    ),
                )
            })?;
            let dps = image.dps.as_ref().map(|d| SimDpsConfig {
                global_endpoint: d.global_endpoint.clone(),
                id_scope: d.id_scope.clone(),
                registration_id: d.registration_id.as_ref().map(|r| r.as_str().to_string()),
                trusted_ca_pem: trusted_ca_pem.clone(),
                // Trusting a CA of one's own means a local emulator (a DevKit trusts Azure only).
                emulator: trusted_ca_pem.is_some(),
            });
            crate::sim::control::load_image(state_dir, &image.bin, map, dps.as_ref()).await?;
        }
    }
    progress.end("Flashed, verified and reset");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[allow(unused_imports)]
    use crate::error::DomainError;

    #[test]
    fn build_dir_picks_the_sketch_image() {
        let dir = tempfile::tempdir().unwrap();
        assert!(FlashImage::from_build_dir(dir.path())
            .unwrap_err()
            .is_invalid_input());
        std::fs::write(dir.path().join("S.ino.bin"), b"\x01\x02").unwrap();
        std::fs::write(dir.path().join("S.ino.map"), "map").unwrap();
        std::fs::write(dir.path().join("S.ino.bootloader.bin"), b"x").unwrap();
        std::fs::write(dir.path().join("other.bin"), b"x").unwrap();
        let img = FlashImage::from_build_dir(dir.path()).unwrap();
        assert_eq!(img.bin, b"\x01\x02");
        assert_eq!(img.map.as_deref(), Some("map"));
        assert_eq!(img.address, guard::APP_BASE);
    }
}
