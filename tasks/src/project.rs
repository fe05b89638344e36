//! Per-project state: the identity last generated or enrolled for this project.
//!
//! Kept in `<project>/.devkit/state.json` (written atomically). `generate-cert` records what it
//! wrote, `enroll` defaults to that certificate and records what it enrolled, and
//! `device-upload` compares a new build's FWID and RIoT core digest with it to warn that the
//! certificate must be regenerated and the enrollment updated (the identity drift guard). No
//! secret is ever stored here.

use crate::error::{NextAction, NextStep};
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

/// What the device is expected to present now: a build's digests and, when the UDS was at
/// hand, the identity derived from them (public data only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CurrentIdentity {
    /// FWID of the build, lower-case hex.
    pub fwid: String,
    /// RIoT core digest of the build, lower-case hex.
    pub core_digest: String,
    /// The registration ID the build uses, when known (else the recorded one is named).
    pub registration_id: Option<String>,
    /// The alias certificate's SHA-256 thumbprint, when the UDS was given.
    pub sha256_thumbprint: Option<String>,
    /// The DeviceID public key (upper-case hex), when the UDS was given.
    pub device_id_public_key: Option<String>,
}

/// Why the project's identity no longer matches what the device presents (or will present
/// after this build): the one drift of `devkit/identity`, `device-upload` and the editor.
///
/// The RIoT regions sit after all `.text`/`.rodata` and hold absolute addresses, so nearly any
/// change to the sketch, a library, the platform or the toolchain changes both digests: a
/// changed FWID means a new alias key; a changed core digest a new DeviceID key too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Drift {
    /// The device the drift is about.
    pub registration_id: String,
    /// What the build was compared with: the enrollment when there is one, else the last
    /// generated certificate.
    pub reference: IdentitySource,
    /// FWID (SHA-256 of `.riot_fw`) differs: new alias key and certificate.
    pub fwid_changed: bool,
    /// The RIoT core digest differs (new DeviceID key); `null` when the reference has no core
    /// digest recorded (then whether the DeviceID key changed is unknown).
    pub core_digest_changed: Option<bool>,
    /// Whether the DeviceID public key changes, when the UDS was given and the reference holds
    /// the old key.
    pub device_id_key_changed: Option<bool>,
    /// The enrollment holds another certificate than the last generated one (which the device
    /// presents with this build, or with the build it runs when no build was compared).
    pub stale_enrollment: bool,
    pub previous_fwid: String,
    /// FWID of the compared build (absent when no build was compared).
    pub new_fwid: Option<String>,
    /// The recorded RIoT core digest (absent in records made before it was kept).
    pub previous_core_digest: Option<String>,
    pub new_core_digest: Option<String>,
    pub previous_sha256_thumbprint: String,
    /// The alias certificate the device will present, when known (derived with the UDS, or the
    /// last generated one for a stale enrollment).
    pub new_sha256_thumbprint: Option<String>,
    /// What to tell the user ([`Drift::message`]; no adapter words: see `next_actions`).
    pub message: String,
    /// `regenerateCert` when the build changed the identity, then `enroll`.
    pub next_actions: Vec<NextStep>,
}

/// Why nearly every rebuild changes the identity (said once, in every drift message).
pub const DRIFT_EXPLANATION: &str = "The RIoT regions (.riot_core, .riot_fw) are linked after all other code and constant data and contain absolute addresses, so almost any change to the sketch, a library, the platform or the compiler moves or changes them.";

impl Drift {
    /// True when the build changes the identity (as opposed to only a stale enrollment).
    pub fn image_changed(&self) -> bool {
        self.fwid_changed
            || self.core_digest_changed == Some(true)
            || self.device_id_key_changed == Some(true)
    }

    /// The one wording of a drift, for every adapter.
    pub fn message(&self) -> String {
        let what = match self.reference {
            IdentitySource::Enrolled => "enrolled",
            IdentitySource::Generated => "generated",
        };
        let mut parts = Vec::new();
        if self.image_changed() {
            let new_fwid = self.new_fwid.as_deref().unwrap_or("?");
            let new_core = self.new_core_digest.as_deref().unwrap_or("?");
            let mut which = Vec::new();
            if self.fwid_changed {
                which.push(format!(
                    "FWID (SHA-256 of .riot_fw) {} -> {new_fwid}, so the alias key and certificate change",
                    self.previous_fwid
                ));
            }
            if self.core_digest_changed == Some(true) || self.device_id_key_changed == Some(true) {
                which.push(format!(
                    "the RIoT core digest {} -> {new_core}, so the DeviceID key changes too (new DeviceID certificate and public key)",
                    self.previous_core_digest.as_deref().unwrap_or("(not recorded)")
                ));
            } else if self.core_digest_changed.is_none() && self.device_id_key_changed.is_none() {
                which.push("the RIoT core digest was not recorded with that certificate, so whether the DeviceID key changed is unknown".into());
            }
            let next = match (&self.new_sha256_thumbprint, self.stale_enrollment) {
                (Some(t), true) => format!("The certificate for this build was already generated (SHA-256 {t}): update the enrollment."),
                (Some(t), false) => format!("The new alias certificate's SHA-256 thumbprint is {t}. Regenerate the certificate for this build and update the enrollment."),
                (None, _) => "Regenerate the certificate for this build with the device's UDS, then update the enrollment.".to_string(),
            };
            parts.push(format!(
                "This build changes the device identity: {}. The {what} certificate for {} (SHA-256 {}) will no longer match the device and DPS will reject it (401002 \"Invalid certificate\") until the certificate is regenerated and the enrollment updated. {DRIFT_EXPLANATION} {next}",
                which.join("; "),
                self.registration_id,
                self.previous_sha256_thumbprint
            ));
        } else if self.stale_enrollment {
            parts.push(format!(
                "The enrollment of {} holds another certificate (SHA-256 {}) than the last generated one{}: enroll again.",
                self.registration_id,
                self.previous_sha256_thumbprint,
                self.new_sha256_thumbprint
                    .as_deref()
                    .map(|t| format!(" (SHA-256 {t})"))
                    .unwrap_or_default()
            ));
        }
        parts.join(" ")
    }
}

/// Compare the project's recorded identity with `current` (a build; `None`: the device runs
/// whatever the last generated certificate was made for). `None` when nothing is recorded or
/// nothing differs. The one rule for the daemon's identity status and `device-upload`:
///
/// - the reference is the last enrolled identity, else the last generated one;
/// - the build drifts when its FWID or RIoT core digest (or, with the UDS, DeviceID key)
///   differs from the reference's;
/// - the enrollment is stale when the last generated certificate of the enrolled device is
///   not the enrolled one and the device presents it (no build compared, or the build is the
///   one it was generated for).
pub fn drift(state: &ProjectState, current: Option<&CurrentIdentity>) -> Option<Drift> {
    let (record, reference) = state.reference()?;
    let change = current.map(|c| record.image_change(&c.fwid, &c.core_digest));
    let device_id_key_changed = match (
        current.and_then(|c| c.device_id_public_key.as_deref()),
        &record.device_id_public_key,
    ) {
        (Some(new), Some(old)) => Some(!old.eq_ignore_ascii_case(new)),
        _ => None,
    };
    let generated_is_current = match (current, &state.last_generated) {
        (None, _) => true,
        (Some(c), Some(g)) => !g.image_change(&c.fwid, &c.core_digest).any(),
        (Some(_), None) => false,
    };
    let stale_enrollment = state.enrollment_is_stale() && generated_is_current;
    let fwid_changed = change.is_some_and(|c| c.fwid);
    let core_digest_changed = match change {
        Some(c) => c.core_digest,
        None => Some(false),
    };
    let image_changed =
        fwid_changed || core_digest_changed == Some(true) || device_id_key_changed == Some(true);
    if !image_changed && !stale_enrollment {
        return None;
    }
    let new_sha256_thumbprint = current
        .and_then(|c| c.sha256_thumbprint.clone())
        .or_else(|| {
            stale_enrollment
                .then(|| {
                    state
                        .last_generated
                        .as_ref()
                        .map(|g| g.sha256_thumbprint.clone())
                })
                .flatten()
        });
    let mut next_actions = Vec::new();
    if image_changed && !stale_enrollment {
        next_actions.push(NextStep::new(NextAction::RegenerateCert));
    }
    next_actions.push(NextStep::new(NextAction::Enroll));
    let mut d = Drift {
        registration_id: current
            .and_then(|c| c.registration_id.clone())
            .unwrap_or_else(|| record.registration_id.clone()),
        reference,
        fwid_changed,
        core_digest_changed,
        device_id_key_changed,
        stale_enrollment,
        previous_fwid: record.fwid.clone(),
        new_fwid: current.map(|c| c.fwid.clone()),
        previous_core_digest: record.core_digest.clone(),
        new_core_digest: current.map(|c| c.core_digest.clone()),
        previous_sha256_thumbprint: record.sha256_thumbprint.clone(),
        new_sha256_thumbprint,
        message: String::new(),
        next_actions,
    };
    d.message = d.message();
    Some(d)
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
