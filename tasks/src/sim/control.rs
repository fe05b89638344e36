//! Control of a running virtual DevKit, through its state directory.
//!
//! CONTRACT: the state directory of a virtual DevKit holds `eeprom.json` (the secure-chip
//! zones), `firmware/image.bin` + `firmware/image.map` (the image it boots), optionally
//! `firmware/dps_config.json` (what the sketch's generated `dps_config.h` compiles in: see
//! [`SimDpsConfig`]), and while it runs a local control socket. The serial issue implements
//! this module; the upload (sim backend) and DPS (provision) issues call it.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// What our sketch compiles in from `dps_config.h`, as the virtual DevKit reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimDpsConfig {
    /// Global device endpoint, `host` or `host:port` (the emulator's device endpoint).
    pub global_endpoint: String,
    pub id_scope: String,
    /// Registration ID compiled in; `None` = automatic `az-<mac>v<x>v<y>v<z>`.
    #[serde(default)]
    pub registration_id: Option<String>,
    /// PEM of the CA the device trusts for the DPS server (the emulator's CA); `None` = public roots.
    #[serde(default)]
    pub trusted_ca_pem: Option<String>,
}

/// Errors controlling a virtual DevKit.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("virtual DevKit state directory {0}: {1}")]
    Io(std::path::PathBuf, #[source] std::io::Error),
    #[error("no virtual DevKit is running with state directory {0}")]
    NotRunning(std::path::PathBuf),
    #[error("virtual DevKit control: {0}")]
    Protocol(String),
}

/// "Flash" the virtual DevKit: store the image (and the sketch's DPS settings) in its state
/// directory atomically, then reset it if it is running, so its next boot runs the new image.
pub async fn load_image(state_dir: &Path, bin: &[u8], map: &str, dps: Option<&SimDpsConfig>) -> Result<(), ControlError> {
    let _ = (state_dir, bin, map, dps);
    todo!("serial issue")
}

/// Reset a running virtual DevKit, into configuration mode or user mode.
pub async fn reset(state_dir: &Path, config_mode: bool) -> Result<(), ControlError> {
    let _ = (state_dir, config_mode);
    todo!("serial issue")
}
