//! The virtual DevKit's secure-chip zones, persisted in `<state-dir>/eeprom.json`.
//!
//! The file holds secrets (UDS, Wi-Fi password), so it is written atomically with mode 0600
//! through [`crate::fsutil`], and values are zeroized when dropped.

use crate::fsutil::{self, Mode};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use zeroize::Zeroize;

/// The zones, with the firmware's zone indices (used in `Failed to write EEPROM: 0xNN.`) and
/// maximum lengths including the terminating NUL.
pub const ZONES: [(&str, u8, usize); 5] = [
    ("wifi_ssid", 0x03, 32),
    ("wifi_pwd", 0x0A, 64),
    ("az_iothub", 0x05, 200),
    ("dps_uds", 0x07, 65),
    ("az_iotdps", 0x06, 200),
];

/// Injected failures, to exercise the host's handling of the firmware's error replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EepromFault {
    /// `ERROR: Failed to write EEPROM: 0xNN.`
    WriteFails,
    /// `ERROR: Verify failed.`
    VerifyFails,
}

/// The zones in memory, written through to disk on every change.
pub struct Eeprom {
    path: PathBuf,
    values: BTreeMap<String, String>,
}

impl Eeprom {
    /// Load `<state_dir>/eeprom.json`; a missing file is an empty chip.
    pub fn load(state_dir: &Path) -> std::io::Result<Eeprom> {
        let path = state_dir.join("eeprom.json");
        let values = match crate::fsutil::read_internal(&path, crate::fsutil::limits::STATE_FILE)? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            })?,
            None => BTreeMap::new(),
        };
        Ok(Eeprom { path, values })
    }

    /// A zone's value ("" when never written).
    pub fn get(&self, zone: &str) -> &str {
        self.values.get(zone).map(String::as_str).unwrap_or("")
    }

    /// Store a zone and persist the whole chip atomically (0600).
    pub fn set(&mut self, zone: &str, value: &str) -> Result<(), fsutil::FsError> {
        if let Some(mut old) = self.values.insert(zone.to_string(), value.to_string()) {
            old.zeroize();
        }
        let mut json = serde_json::to_vec_pretty(&self.values).unwrap_or_default();
        let result = fsutil::write_atomic(&self.path, &json, Mode::Private);
        json.zeroize();
        result
    }
}

impl Drop for Eeprom {
    fn drop(&mut self) {
        for v in self.values.values_mut() {
            v.zeroize();
        }
    }
}
