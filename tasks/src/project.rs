//! Per-project state: the identity last generated or enrolled for this project.
//!
//! Kept in `<project>/.devkit/state.json` (written atomically). `generate-cert` records what it
//! wrote, `enroll` defaults to that certificate and records what it enrolled, and
//! `device-upload` compares a new build's FWID and RIoT core digest with it to warn that the
//! certificate must be regenerated and the enrollment updated (the identity drift guard). No
//! secret is ever stored here.

use crate::fsutil::{self, Mode};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Errors reading or writing project state.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("cannot read project state {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("project state {path} is not valid ({source}); delete it to start afresh")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Write(#[from] fsutil::FsError),
}

impl crate::error::DomainError for ProjectError {
    fn kind(&self) -> crate::error::ErrorKind {
        match self {
            ProjectError::Write(e) => e.kind(),
            _ => crate::error::ErrorKind::Failed,
        }
    }
}

/// Where an identity record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentitySource {
    Generated,
    Enrolled,
}

/// A device identity as the project last saw it. Public data only. camelCase in the file like
/// every JSON devkit writes; files written with snake_case keys are still read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityRecord {
    #[serde(alias = "registration_id")]
    pub registration_id: String,
    /// FWID: SHA-256 of the `.riot_fw` code, lower-case hex (as `generate-cert --json` prints it).
    pub fwid: String,
    #[serde(alias = "sha256_thumbprint")]
    pub sha256_thumbprint: String,
    /// Absolute path of the alias certificate PEM.
    #[serde(alias = "alias_cert")]
    pub alias_cert: PathBuf,
    pub source: IdentitySource,
    /// DSHA of the `.riot_core` bytes, lower-case hex (with the UDS it fixes the DeviceID key).
    /// Absent in state files written before it was recorded, and for an enrolled certificate
    /// that was not generated in this project.
    #[serde(
        default,
        alias = "core_digest",
        skip_serializing_if = "Option::is_none"
    )]
    pub core_digest: Option<String>,
    /// The DeviceID public key (uncompressed point, upper-case hex as `inspect-cert` prints it).
    #[serde(
        default,
        alias = "device_id_public_key",
        skip_serializing_if = "Option::is_none"
    )]
    pub device_id_public_key: Option<String>,
}

/// What differs between a recorded identity and a new image. The RIoT regions sit after all
/// `.text`/`.rodata` and hold absolute addresses, so nearly any change to the sketch, a
/// library, the platform or the toolchain moves them and changes both digests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageChange {
    /// FWID (SHA-256 of `.riot_fw`) differs: new alias key and certificate.
    pub fwid: bool,
    /// The RIoT core digest differs (new DeviceID key, hence new DeviceID and alias
    /// certificates); `None` when the record has no core digest to compare with.
    pub core_digest: Option<bool>,
}

impl ImageChange {
    /// True when the device will present another alias certificate.
    pub fn any(&self) -> bool {
        self.fwid || self.core_digest == Some(true)
    }
}

impl IdentityRecord {
    /// Compare this record with an image's FWID and core digest (hex, any case).
    pub fn image_change(&self, fwid_hex: &str, core_digest_hex: &str) -> ImageChange {
        ImageChange {
            fwid: !self.fwid.eq_ignore_ascii_case(fwid_hex),
            core_digest: self
                .core_digest
                .as_deref()
                .map(|c| !c.eq_ignore_ascii_case(core_digest_hex)),
        }
    }
}

/// The whole state file (`.devkit/state.json`: `lastGenerated`, `lastEnrolled`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectState {
    #[serde(default, alias = "last_generated")]
    pub last_generated: Option<IdentityRecord>,
    #[serde(default, alias = "last_enrolled")]
    pub last_enrolled: Option<IdentityRecord>,
}

/// The state file of the project rooted at `root`.
pub fn state_path(root: &Path) -> PathBuf {
    root.join(".devkit").join("state.json")
}

impl ProjectState {
    /// Load the state of the project at `root`; a missing file is an empty state.
    pub fn load(root: &Path) -> Result<Self, ProjectError> {
        let path = state_path(root);
        match fsutil::read_internal(&path, fsutil::limits::STATE_FILE) {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes)
                .map_err(|source| ProjectError::Parse { path, source }),
            Ok(None) => Ok(Self::default()),
            Err(e) => Err(ProjectError::Read {
                path,
                source: e.into(),
            }),
        }
    }

    /// Save atomically.
    pub fn save(&self, root: &Path) -> Result<(), ProjectError> {
        let mut json = serde_json::to_vec_pretty(self).expect("state serialises");
        json.push(b'\n');
        fsutil::write_atomic(&state_path(root), &json, Mode::Public)?;
        Ok(())
    }

    /// Load, apply `f`, save when that changed anything: the one writer of the state file
    /// (an unchanged state costs no write and no fsync).
    pub fn update(
        root: &Path,
        f: impl FnOnce(&mut ProjectState),
    ) -> Result<ProjectState, ProjectError> {
        let before = Self::load(root)?;
        let mut state = before.clone();
        f(&mut state);
        if state != before {
            state.save(root)?;
        }
        Ok(state)
    }

    /// The identity the device is expected to have (what a new build's drift is computed
    /// against, with [`IdentityRecord::image_change`]): the last enrolled, else the last generated.
    pub fn reference(&self) -> Option<(&IdentityRecord, IdentitySource)> {
        match (&self.last_enrolled, &self.last_generated) {
            (Some(r), _) => Some((r, IdentitySource::Enrolled)),
            (None, Some(r)) => Some((r, IdentitySource::Generated)),
            (None, None) => None,
        }
    }

    /// True when the last generated certificate of the enrolled device is not the enrolled one.
    pub fn enrollment_is_stale(&self) -> bool {
        matches!((&self.last_enrolled, &self.last_generated), (Some(e), Some(g)) if e.registration_id == g.registration_id && e.sha256_thumbprint != g.sha256_thumbprint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unchanged_state_is_not_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let record = IdentityRecord {
            registration_id: "dev-a".into(),
            fwid: "ab".into(),
            sha256_thumbprint: "cd".into(),
            alias_cert: "/x/dev-a.pem".into(),
            source: IdentitySource::Generated,
            core_digest: None,
            device_id_public_key: None,
        };
        ProjectState::update(dir.path(), |s| s.last_generated = Some(record.clone())).unwrap();
        let path = state_path(dir.path());
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        // Replace the file's content behind the writer's back: an unchanged update leaves it.
        let text = std::fs::read(&path).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        ProjectState::update(dir.path(), |s| s.last_generated = Some(record.clone())).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            before
        );
        assert_eq!(std::fs::read(&path).unwrap(), text);
        let state = ProjectState::load(dir.path()).unwrap();
        assert_eq!(
            state
                .reference()
                .map(|(r, s)| (r.registration_id.as_str(), s)),
            Some(("dev-a", IdentitySource::Generated))
        );
    }

    #[test]
    fn round_trip_and_missing_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            ProjectState::load(dir.path()).unwrap(),
            ProjectState::default()
        );
        let rec = IdentityRecord {
            registration_id: "my-devkit-01".into(),
            fwid: "AB".into(),
            sha256_thumbprint: "CD".into(),
            alias_cert: dir.path().join("my-devkit-01.pem"),
            source: IdentitySource::Generated,
            core_digest: Some("ef".into()),
            device_id_public_key: None,
        };
        ProjectState::update(dir.path(), |s| s.last_generated = Some(rec.clone())).unwrap();
        assert_eq!(
            ProjectState::load(dir.path()).unwrap().last_generated,
            Some(rec)
        );
        // camelCase in the file, like every JSON devkit writes.
        let text = std::fs::read_to_string(state_path(dir.path())).unwrap();
        assert!(
            text.contains("\"lastGenerated\"") && text.contains("\"sha256Thumbprint\""),
            "{text}"
        );
    }

    #[test]
    fn records_without_the_new_fields_still_load_and_compare_by_fwid_only() {
        let old = r#"{"last_generated":{"registration_id":"r","fwid":"AB","sha256_thumbprint":"CD","alias_cert":"/x.pem","source":"generated"}}"#;
        let state: ProjectState = serde_json::from_str(old).unwrap();
        let rec = state.last_generated.unwrap();
        assert_eq!(rec.core_digest, None);
        assert_eq!(
            rec.image_change("ab", "00"),
            ImageChange {
                fwid: false,
                core_digest: None
            }
        );
        assert!(!rec.image_change("ab", "00").any());
        let rec = IdentityRecord {
            core_digest: Some("00".into()),
            ..rec
        };
        assert_eq!(
            rec.image_change("ab", "01"),
            ImageChange {
                fwid: false,
                core_digest: Some(true)
            }
        );
        assert!(rec.image_change("ab", "01").any());
        assert!(rec.image_change("ac", "00").any());
    }

    #[test]
    fn corrupt_state_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".devkit")).unwrap();
        std::fs::write(state_path(dir.path()), b"{not json").unwrap();
        let err = ProjectState::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("state.json"), "{err}");
    }
}
