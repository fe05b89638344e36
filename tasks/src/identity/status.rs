//! The project's identity status: what was last generated and enrolled, and whether it still
//! matches (a build, the enrollment): the daemon's `devkit/identity` result. The drift itself
//! is [`crate::project::drift`], shared with `device-upload`.

use super::{derive, FirmwareImage, IdentityError, RegistrationId, Uds};
use crate::error::NextStep;
use crate::project::{self, CurrentIdentity, Drift, IdentityRecord, ProjectState};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Which project, and optionally which build to compare with it.
#[derive(Debug, Clone, Default)]
pub struct IdentityStatusRequest {
    /// Holds `.devkit/state.json`.
    pub project_dir: PathBuf,
    /// A build directory (one `*.ino.bin` with its map) to compare with the recorded identity.
    pub build_dir: Option<PathBuf>,
}

/// Whether DPS holds the project's current certificate (the last generated one, else the last
/// enrolled), as far as the project knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EnrollmentStatus {
    /// No identity recorded yet.
    NoIdentity,
    /// Its registration ID was never enrolled from this project.
    NotEnrolled,
    /// Enrolled with the current certificate, and the build has not drifted.
    Enrolled,
    /// Enrolled, but with another certificate or for a build that changed: enroll again.
    OutOfDate,
}

impl EnrollmentStatus {
    /// The one rule: the current record is the last generated one (else the last enrolled);
    /// enrolled means the enrollment of that registration ID holds its thumbprint and there is
    /// no drift.
    pub fn of(state: &ProjectState, drift: Option<&Drift>) -> EnrollmentStatus {
        let Some(current) = state.last_generated.as_ref().or(state.last_enrolled.as_ref()) else {
            return EnrollmentStatus::NoIdentity;
        };
        match &state.last_enrolled {
            Some(e) if e.registration_id == current.registration_id => {
                if e.sha256_thumbprint == current.sha256_thumbprint && drift.is_none() {
                    EnrollmentStatus::Enrolled
                } else {
                    EnrollmentStatus::OutOfDate
                }
            }
            _ => EnrollmentStatus::NotEnrolled,
        }
    }
}

/// The project's identity and its drift.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityStatusReport {
    pub last_generated: Option<IdentityRecord>,
    pub last_enrolled: Option<IdentityRecord>,
    /// Whether DPS holds the current certificate ([`EnrollmentStatus::of`]): the editor shows
    /// it as it is, it does not compare thumbprints itself.
    pub enrollment: EnrollmentStatus,
    /// FWID of the build in `build_dir`, when given (lower-case hex).
    pub current_fwid: Option<String>,
    /// RIoT core digest of that build (lower-case hex).
    pub current_core_digest: Option<String>,
    /// Why the enrollment (or the generated certificate) no longer matches; `null` when it does.
    pub drift: Option<Drift>,
    pub warnings: Vec<String>,
    /// The drift's next actions (`regenerateCert`, `enroll`).
    pub next_actions: Vec<NextStep>,
}

impl IdentityStatusRequest {
    /// Read the state (and the build). Blocking (files); writes nothing.
    pub fn run(self) -> Result<IdentityStatusReport, IdentityError> {
        let state = ProjectState::load(&self.project_dir)?;
        let current = match &self.build_dir {
            None => None,
            Some(dir) => {
                let image = super::generate::ImageInput {
                    build_dir: Some(dir.clone()),
                    ..Default::default()
                }
                .load()?;
                Some(current_identity(&image, None, None))
            }
        };
        let drift = project::drift(&state, current.as_ref());
        Ok(IdentityStatusReport {
            enrollment: EnrollmentStatus::of(&state, drift.as_ref()),
            current_fwid: current.as_ref().map(|c| c.fwid.clone()),
            current_core_digest: current.map(|c| c.core_digest),
            warnings: drift.iter().map(|d| d.message.clone()).collect(),
            next_actions: drift
                .as_ref()
                .map(|d| d.next_actions.clone())
                .unwrap_or_default(),
            drift,
            last_generated: state.last_generated,
            last_enrolled: state.last_enrolled,
        })
    }
}

/// What a device running `image` presents: the digests, and with the UDS (and a valid
/// registration ID) the alias certificate's thumbprint and the DeviceID key.
pub fn current_identity(
    image: &FirmwareImage,
    registration_id: Option<&str>,
    uds: Option<&Uds>,
) -> CurrentIdentity {
    let derived = match (uds, registration_id.map(RegistrationId::parse)) {
        (Some(uds), Some(Ok(id))) => derive(uds, image, &id).ok(),
        _ => None,
    };
    CurrentIdentity {
        fwid: hex::encode(image.fwid()),
        core_digest: hex::encode(image.core_digest()),
        registration_id: registration_id.map(str::to_string),
        sha256_thumbprint: derived.as_ref().map(|d| d.sha256_thumbprint()),
        device_id_public_key: derived.map(|d| hex::encode_upper(d.device_id_public)),
    }
}

/// The drift of `image` against the project's recorded identity (`device-upload`'s guard):
/// the registration ID defaults to the recorded one, so that the UDS yields the thumbprint.
pub fn image_drift(
    state: &ProjectState,
    image: &FirmwareImage,
    registration_id: Option<&str>,
    uds: Option<&Uds>,
) -> Option<Drift> {
    let recorded = state.reference().map(|(r, _)| r.registration_id.clone());
    let id = registration_id.map(str::to_string).or(recorded);
    let mut current = current_identity(image, id.as_deref(), uds);
    current.registration_id = registration_id.map(str::to_string);
    project::drift(state, Some(&current))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{NextAction, NextStep};
    use crate::identity::files::generated_record;
    use crate::project::IdentitySource;
    use std::path::Path;

    use crate::identity::test_vector as vector;

    fn image(case: &str) -> FirmwareImage {
        let d = vector(case);
        FirmwareImage::load(&d.join("DevKitDPS.ino.bin"), &d.join("DevKitDPS.ino.map")).unwrap()
    }

    fn record(case: &str, uds: &Uds) -> IdentityRecord {
        let d = derive(uds, &image(case), &RegistrationId::parse("dev").unwrap()).unwrap();
        generated_record(&d, Path::new("/x/dev.pem"))
    }

    /// The view shows this as it is: every state of the project gives one answer.
    #[test]
    fn enrollment_status_of_the_current_certificate() {
        let uds = Uds::parse(&"1".repeat(64)).unwrap();
        let small = record("explicit-id-small", &uds);
        let other = record("explicit-id-medium-crlf", &uds);
        let state = |generated: Option<&IdentityRecord>, enrolled: Option<&IdentityRecord>| {
            ProjectState {
                last_generated: generated.cloned(),
                last_enrolled: enrolled.cloned(),
            }
        };
        use EnrollmentStatus as E;
        assert_eq!(E::of(&state(None, None), None), E::NoIdentity);
        assert_eq!(E::of(&state(Some(&small), None), None), E::NotEnrolled);
        assert_eq!(E::of(&state(Some(&small), Some(&small)), None), E::Enrolled);
        assert_eq!(E::of(&state(None, Some(&small)), None), E::Enrolled);
        // Another certificate enrolled for the same registration ID.
        assert_eq!(E::of(&state(Some(&small), Some(&other)), None), E::OutOfDate);
        // The same certificate, but the build drifted since.
        let drifted = image_drift(
            &state(Some(&small), Some(&small)),
            &image("explicit-id-medium-crlf"),
            None,
            Some(&uds),
        );
        assert!(drifted.is_some());
        assert_eq!(
            E::of(&state(Some(&small), Some(&small)), drifted.as_ref()),
            E::OutOfDate
        );
        // Another registration ID enrolled: this one is not.
        let mut elsewhere = small.clone();
        elsewhere.registration_id = "another".into();
        assert_eq!(E::of(&state(Some(&small), Some(&elsewhere)), None), E::NotEnrolled);
        assert_eq!(serde_json::to_value(E::OutOfDate).unwrap(), "outOfDate");
    }

    #[test]
    fn drift_kinds_and_their_next_actions() {
        let uds = Uds::parse(&"1".repeat(64)).unwrap();
        let small = record("explicit-id-small", &uds);
        let medium = image("explicit-id-medium-crlf");
        let state = ProjectState {
            last_generated: Some(small.clone()),
            ..Default::default()
        };
        // Same build: nothing.
        assert_eq!(
            image_drift(&state, &image("explicit-id-small"), None, Some(&uds)),
            None
        );
        // Both digests changed; with the UDS the DeviceID key is known to change.
        let d = image_drift(&state, &medium, None, Some(&uds)).unwrap();
        assert!(d.fwid_changed && d.core_digest_changed == Some(true));
        assert_eq!(d.device_id_key_changed, Some(true));
        assert_eq!(d.reference, IdentitySource::Generated);
        assert_eq!(d.registration_id, "dev");
        assert!(d.new_sha256_thumbprint.is_some());
        assert_eq!(
            d.next_actions,
            [
                NextStep::new(NextAction::RegenerateCert),
                NextStep::new(NextAction::Enroll)
            ]
        );
        // Only the core digest changed: said so, and not as a FWID change.
        let mut only_core = small.clone();
        only_core.fwid = hex::encode(medium.fwid());
        let d = image_drift(
            &ProjectState {
                last_generated: Some(only_core),
                ..Default::default()
            },
            &medium,
            None,
            None,
        )
        .unwrap();
        assert!(!d.fwid_changed && d.core_digest_changed == Some(true));
        assert!(
            !d.message.contains("FWID (SHA-256") && d.message.contains("RIoT core digest"),
            "{}",
            d.message
        );
        // Only FWID changed: the DeviceID key stays.
        let mut only_fw = small.clone();
        only_fw.core_digest = Some(hex::encode(medium.core_digest()));
        let d = project::drift(
            &ProjectState {
                last_generated: Some(only_fw),
                ..Default::default()
            },
            Some(&current_identity(&medium, None, None)),
        )
        .unwrap();
        assert!(d.fwid_changed && d.core_digest_changed == Some(false));
        assert!(!d.message.contains("DeviceID key changes"), "{}", d.message);
    }

    #[test]
    fn a_stale_enrollment_asks_to_enroll_only() {
        let small = record("explicit-id-small", &Uds::parse(&"1".repeat(64)).unwrap());
        let other = record("explicit-id-small", &Uds::parse(&"2".repeat(64)).unwrap());
        let state = ProjectState {
            last_generated: Some(other.clone()),
            last_enrolled: Some(IdentityRecord {
                source: IdentitySource::Enrolled,
                ..small
            }),
        };
        // No build compared: the device presents the last generated certificate.
        let d = project::drift(&state, None).unwrap();
        assert!(d.stale_enrollment && !d.image_changed());
        assert_eq!(d.reference, IdentitySource::Enrolled);
        assert_eq!(d.next_actions, [NextStep::new(NextAction::Enroll)]);
        assert_eq!(
            d.new_sha256_thumbprint.as_deref(),
            Some(other.sha256_thumbprint.as_str())
        );
        assert!(d.message.contains("enroll again"), "{}", d.message);
        // A build of another image: the enrollment is compared with the build, not stale.
        let d = project::drift(
            &state,
            Some(&current_identity(
                &image("explicit-id-medium-crlf"),
                None,
                None,
            )),
        )
        .unwrap();
        assert!(!d.stale_enrollment && d.image_changed());
    }

    #[test]
    fn the_status_reads_the_state_and_the_build() {
        let project = tempfile::tempdir().unwrap();
        let report = IdentityStatusRequest {
            project_dir: project.path().to_path_buf(),
            build_dir: Some(vector("explicit-id-small")),
        }
        .run()
        .unwrap();
        assert_eq!(
            report.drift, None,
            "nothing recorded, nothing to drift from"
        );
        assert_eq!(report.current_fwid.as_deref().map(str::len), Some(64));
        let rec = record("explicit-id-small", &Uds::parse(&"1".repeat(64)).unwrap());
        ProjectState::update(project.path(), |s| s.last_generated = Some(rec)).unwrap();
        let report = IdentityStatusRequest {
            project_dir: project.path().to_path_buf(),
            build_dir: Some(vector("explicit-id-medium-crlf")),
        }
        .run()
        .unwrap();
        let d = report.drift.as_ref().unwrap();
        assert!(d.fwid_changed);
        assert_eq!(report.warnings, std::slice::from_ref(&d.message));
        assert_eq!(report.next_actions, d.next_actions);
        let e = IdentityStatusRequest {
            project_dir: project.path().to_path_buf(),
            build_dir: Some(project.path().join("no-build")),
        }
        .run()
        .unwrap_err();
        use crate::error::DomainError;
        assert_eq!(e.input(), Some(crate::error::Input::BuildDir));
    }
}
