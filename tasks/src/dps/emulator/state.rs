//! The emulator's persistent state (enrollments, registrations, hub registries) and the files
//! it lives in. Every write is atomic (`fsutil`); secrets go to a 0600 file.

use crate::dps::enrollment::IndividualEnrollment;
use crate::dps::enrollment_group::EnrollmentGroup;
use crate::fsutil::{self, Mode};
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// A registration as DPS records it (`registrationState`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationState {
    pub registration_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_hub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub substatus: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    pub created_date_time_utc: String,
    pub last_updated_date_time_utc: String,
    pub etag: String,
    #[serde(default)]
    pub x509: serde_json::Value,
}

/// Everything that survives a restart (no secrets: those are in `secrets.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Persisted {
    pub id_scope: String,
    /// Enrollments as stored, certificate included.
    #[serde(default)]
    pub enrollments: BTreeMap<String, IndividualEnrollment>,
    #[serde(default)]
    pub registrations: BTreeMap<String, RegistrationState>,
    /// Enrollment groups as stored, signing certificates included.
    #[serde(default)]
    pub enrollment_groups: BTreeMap<String, EnrollmentGroup>,
    /// registration ID -> the enrollment group it registered through.
    #[serde(default)]
    pub group_registrations: BTreeMap<String, String>,
    /// hub host name -> device ID -> device (IoT Hub registry JSON).
    #[serde(default)]
    pub hubs: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    pub next_etag: u64,
}

/// The emulator's secrets: its SAS key and its CA key.
pub struct Secrets {
    pub service_key: Zeroizing<Vec<u8>>,
    pub ca_key_pkcs8: Zeroizing<Vec<u8>>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecretsFile {
    service_key: String,
    ca_key_pkcs8: String,
}

impl Drop for SecretsFile {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.service_key.zeroize();
        self.ca_key_pkcs8.zeroize();
    }
}

/// Errors with the state directory.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("emulator state {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "emulator state {path} is not valid ({reason}); remove the state directory to start afresh"
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error(transparent)]
    Write(#[from] fsutil::FsError),
}

pub fn state_file(dir: &Path) -> PathBuf {
    dir.join("state.json")
}
pub fn secrets_file(dir: &Path) -> PathBuf {
    dir.join("secrets.json")
}
pub fn ca_file(dir: &Path) -> PathBuf {
    dir.join("ca.pem")
}

/// The emulator's own file, bounded (`fsutil::read_internal`); missing is `None`.
pub(super) fn read_optional(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, StateError> {
    match crate::fsutil::read_internal(path, crate::fsutil::limits::EMULATOR_STATE) {
        Ok(b) => Ok(b.map(Zeroizing::new)),
        Err(e) => Err(StateError::Read {
            path: path.to_path_buf(),
            source: e.into(),
        }),
    }
}

impl Persisted {
    pub fn load(dir: &Path) -> Result<Option<Persisted>, StateError> {
        let path = state_file(dir);
        match read_optional(&path)? {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| StateError::Corrupt {
                    path,
                    reason: e.to_string(),
                }),
        }
    }
    pub fn save(&self, dir: &Path) -> Result<(), StateError> {
        fsutil::write_atomic(&state_file(dir), &self.to_json(dir)?, Mode::Public)?;
        Ok(())
    }
    /// What [`save`](Self::save) writes.
    pub(super) fn to_json(&self, dir: &Path) -> Result<Vec<u8>, StateError> {
        serde_json::to_vec_pretty(self).map_err(|e| StateError::Corrupt {
            path: state_file(dir),
            reason: e.to_string(),
        })
    }
}

impl Secrets {
    pub fn load(dir: &Path) -> Result<Option<Secrets>, StateError> {
        let path = secrets_file(dir);
        let Some(bytes) = read_optional(&path)? else {
            return Ok(None);
        };
        let corrupt = |reason: &str| StateError::Corrupt {
            path: path.clone(),
            reason: reason.to_string(),
        };
        let f: SecretsFile =
            serde_json::from_slice(&bytes).map_err(|_| corrupt("not the expected JSON"))?;
        let b64 = base64::engine::general_purpose::STANDARD;
        Ok(Some(Secrets {
            service_key: Zeroizing::new(
                b64.decode(&f.service_key)
                    .map_err(|_| corrupt("serviceKey is not base64"))?,
            ),
            ca_key_pkcs8: Zeroizing::new(
                b64.decode(&f.ca_key_pkcs8)
                    .map_err(|_| corrupt("caKeyPkcs8 is not base64"))?,
            ),
        }))
    }
    /// The content of `secrets.json` (written once, with the CA, when the state is created).
    pub(super) fn to_json(&self) -> Zeroizing<Vec<u8>> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let f = SecretsFile {
            service_key: b64.encode(&*self.service_key),
            ca_key_pkcs8: b64.encode(&*self.ca_key_pkcs8),
        };
        Zeroizing::new(serde_json::to_vec_pretty(&f).unwrap_or_default())
    }
}
