//! Why DPS rejected a device's certificate (401002 "Invalid certificate"), explained rather than
//! named: the enrollment DPS holds is fetched and compared with the certificates this project
//! generated and enrolled, and the one input that differs is named with the one action that
//! fixes it (issue 22, item 8; the `inspect-cert --against` diagnosis, [`crate::identity::compare`],
//! applied to what DPS holds).
//!
//! DPS's service API returns an enrollment's certificate as its info (thumbprints, subject),
//! not always its bytes, so the enrollment is recognised by its SHA-256 thumbprint among the
//! project's records (`lastGenerated`, `lastEnrolled`), whose public parts (FWID, DeviceID
//! key, RIoT core digest) say which input moved.

use super::enrollment::IndividualEnrollment;
use super::{DpsError, ServiceClient};
use crate::error::{NextAction, NextStep};
use crate::project::{IdentityRecord, ProjectState};
use serde::Serialize;

/// Which input differs between what DPS holds and what the project generates now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum MismatchCause {
    /// The project has no generated certificate to compare with.
    NothingGenerated,
    /// The device registers under another registration ID than the generated certificate's CN.
    RegistrationId,
    /// DPS holds no enrollment for the registration ID.
    NoEnrollment,
    /// The enrollment holds the certificate generated now: the device presents another one
    /// (it runs another build, or holds another UDS).
    DeviceDiffers,
    /// Another UDS (same RIoT core): the DeviceID key differs.
    Uds,
    /// Other `.riot_core` bytes (a rebuild): the DeviceID key differs.
    RiotCore,
    /// The UDS or the `.riot_core` bytes (the records cannot tell which).
    UdsOrRiotCore,
    /// Other `.riot_fw` bytes (a rebuild): FWID, hence the alias key, differs.
    RiotFw,
    /// The enrollment holds a certificate this project never generated.
    NeverGenerated,
}

/// The explanation: what differs, in words, and the one action that fixes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MismatchExplanation {
    pub registration_id: String,
    pub cause: MismatchCause,
    /// SHA-256 thumbprint DPS holds (`null`: no enrollment) and the generated one.
    pub enrolled_sha256_thumbprint: Option<String>,
    pub generated_sha256_thumbprint: Option<String>,
    pub message: String,
    pub next_actions: Vec<NextStep>,
}

/// When a log's last attempt ended in 401002 (or the SDK's "Invalid certificate" without a
/// trace), the registration ID it used (from the traced
/// request; `Some(None)` when the trace did not show it). `None`: no 401002 verdict.
pub fn rejected_registration(events: &[crate::logs::LogEvent]) -> Option<Option<String>> {
    let mut watch = RejectionWatch::default();
    events.iter().for_each(|e| watch.see(e));
    watch.verdict()
}

/// [`rejected_registration`] over a stream of events: it keeps the last verdict and the last
/// registration request, not the events.
#[derive(Debug, Default)]
pub struct RejectionWatch {
    last_request: Option<String>,
    verdict: Option<Option<String>>,
}

impl RejectionWatch {
    pub fn see(&mut self, event: &crate::logs::LogEvent) {
        use crate::logs::LogEvent;
        match event {
            LogEvent::RegistrationRequest {
                registration_id, ..
            } => self.last_request = Some(registration_id.clone()),
            // With tracing off the SDK shows no error code, only the reason the diagnosis
            // maps to 401002's hint.
            LogEvent::Failed {
                error_code, hint, ..
            } if *error_code == Some(401002) || hint == crate::logs::HINT_401002.text => {
                self.verdict = Some(self.last_request.clone())
            }
            LogEvent::Failed { .. } | LogEvent::Assigned { .. } | LogEvent::Boot => {
                self.verdict = None
            }
            _ => {}
        }
    }
    /// What [`rejected_registration`] says of the events seen so far.
    pub fn verdict(&self) -> Option<Option<String>> {
        self.verdict.clone()
    }
}

/// Fetch the enrollment of `registration_id` and explain the rejection against `state`.
pub async fn explain_rejection(
    client: &ServiceClient,
    registration_id: &str,
    state: &ProjectState,
) -> Result<MismatchExplanation, DpsError> {
    let enrollment = client.get_optional(registration_id).await?;
    Ok(explain(registration_id, enrollment.as_ref(), state))
}

/// The explanation for a device registering as `registration_id`, given the enrollment DPS
/// holds (`None`: none) and the project's records.
pub fn explain(
    registration_id: &str,
    enrollment: Option<&IndividualEnrollment>,
    state: &ProjectState,
) -> MismatchExplanation {
    let enrolled = enrollment.and_then(IndividualEnrollment::sha256_thumbprint);
    let generated = state.last_generated.as_ref();
    let out = |cause, message: String, action: NextAction| MismatchExplanation {
        registration_id: registration_id.to_string(),
        cause,
        enrolled_sha256_thumbprint: enrolled.clone(),
        generated_sha256_thumbprint: generated.map(|g| g.sha256_thumbprint.to_ascii_uppercase()),
        message,
        next_actions: vec![NextStep::new(action)],
    };
    let Some(generated) = generated else {
        return out(
            MismatchCause::NothingGenerated,
            "this project has no generated certificate to compare the enrollment with: generate the certificate from the image on the device and its UDS".into(),
            NextAction::RegenerateCert,
        );
    };
    if generated.registration_id != registration_id {
        return out(
            MismatchCause::RegistrationId,
            format!(
                "the device registers as {registration_id}, but the certificate generated for this project is for {}: the registration ID differs (generate the certificate for {registration_id})",
                generated.registration_id
            ),
            NextAction::RegenerateCert,
        );
    }
    let Some(enrolled) = enrolled.clone() else {
        return out(
            MismatchCause::NoEnrollment,
            format!(
                "DPS holds no enrollment for {registration_id}: enroll the generated certificate"
            ),
            NextAction::Enroll,
        );
    };
    if enrolled.eq_ignore_ascii_case(&generated.sha256_thumbprint) {
        return out(
            MismatchCause::DeviceDiffers,
            format!("the enrollment holds the certificate generated from the current build and UDS (SHA-256 {enrolled}), so the device presents another one: it runs another build or holds another UDS; upload the current build, or set the UDS the certificate was generated with"),
            NextAction::SetUds,
        );
    }
    let known = state
        .last_enrolled
        .as_ref()
        .filter(|r| r.sha256_thumbprint.eq_ignore_ascii_case(&enrolled));
    let Some(known) = known else {
        return out(
            MismatchCause::NeverGenerated,
            format!("the enrollment holds a certificate this project never generated (SHA-256 {enrolled}): re-enroll with the current certificate"),
            NextAction::Enroll,
        );
    };
    let (cause, what) = differing_input(known, generated);
    out(
        cause,
        format!("the enrolled certificate (SHA-256 {enrolled}) was generated from {what} than the current certificate: re-enroll with the current certificate (or, if the device still runs the enrolled build, restore its UDS and image)"),
        NextAction::Enroll,
    )
}

/// Which input differs between two records of the same registration ID.
fn differing_input(
    enrolled: &IdentityRecord,
    generated: &IdentityRecord,
) -> (MismatchCause, &'static str) {
    let same = |a: &Option<String>, b: &Option<String>| match (a, b) {
        (Some(a), Some(b)) => Some(a.eq_ignore_ascii_case(b)),
        _ => None,
    };
    match same(
        &enrolled.device_id_public_key,
        &generated.device_id_public_key,
    ) {
        Some(false) => match same(&enrolled.core_digest, &generated.core_digest) {
            Some(true) => (MismatchCause::Uds, "another UDS"),
            Some(false) => (
                MismatchCause::RiotCore,
                "other RIoT core (.riot_core) bytes",
            ),
            None => (
                MismatchCause::UdsOrRiotCore,
                "another UDS or other RIoT core (.riot_core) bytes",
            ),
        },
        _ if !enrolled.fwid.eq_ignore_ascii_case(&generated.fwid) => {
            (MismatchCause::RiotFw, "other firmware (.riot_fw) bytes")
        }
        _ => (
            MismatchCause::UdsOrRiotCore,
            "another UDS or other RIoT core (.riot_core) bytes",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::IdentitySource;

    fn record(thumb: &str, fwid: &str, key: Option<&str>, core: Option<&str>) -> IdentityRecord {
        IdentityRecord {
            registration_id: "dev-1".into(),
            fwid: fwid.into(),
            sha256_thumbprint: thumb.into(),
            alias_cert: "/p/dev-1.pem".into(),
            source: IdentitySource::Generated,
            core_digest: core.map(str::to_string),
            device_id_public_key: key.map(str::to_string),
        }
    }

    fn enrollment(thumb: &str) -> IndividualEnrollment {
        let mut e = IndividualEnrollment::x509("dev-1", b"unused");
        let primary = e
            .attestation
            .x509
            .as_mut()
            .and_then(|x| x.client_certificates.as_mut())
            .and_then(|c| c.primary.as_mut())
            .unwrap();
        primary.certificate = None;
        primary.info = Some(crate::dps::enrollment::X509CertificateInfo {
            sha256_thumbprint: thumb.into(),
            ..Default::default()
        });
        e
    }

    fn cause(enrolled: Option<&str>, state: &ProjectState) -> MismatchCause {
        let e = enrolled.map(enrollment);
        explain("dev-1", e.as_ref(), state).cause
    }

    #[test]
    fn only_a_401002_verdict_is_explained() {
        use crate::logs::LogEvent;
        let failed = |code| LogEvent::Failed {
            reason: "r".into(),
            hint: if code == 0 {
                crate::logs::HINT_401002.text.into()
            } else {
                "h".into()
            },
            error_code: Some(code),
            http_status: Some(401),
            next_actions: vec![],
        };
        let request = LogEvent::RegistrationRequest {
            id_scope: "0ne".into(),
            registration_id: "dev-1".into(),
        };
        assert_eq!(
            rejected_registration(&[request.clone(), failed(401002)]),
            Some(Some("dev-1".into()))
        );
        assert_eq!(rejected_registration(&[failed(401002)]), Some(None));
        // No code (tracing off), but the SDK's reason: 401002's hint.
        assert_eq!(rejected_registration(&[failed(0)]), Some(None));
        assert_eq!(
            rejected_registration(&[request.clone(), failed(404201)]),
            None
        );
        // A later boot starts a new attempt: the old verdict is not the last.
        assert_eq!(
            rejected_registration(&[request, failed(401002), LogEvent::Boot]),
            None
        );
    }

    #[test]
    fn each_differing_input_is_named_with_its_action() {
        let generated = record("AA", "f1", Some("K1"), Some("c1"));
        let state = |enrolled: Option<IdentityRecord>| ProjectState {
            last_generated: Some(generated.clone()),
            last_enrolled: enrolled,
        };
        assert_eq!(
            cause(Some("AA"), &ProjectState::default()),
            MismatchCause::NothingGenerated
        );
        assert_eq!(cause(None, &state(None)), MismatchCause::NoEnrollment);
        assert_eq!(
            cause(Some("aa"), &state(None)),
            MismatchCause::DeviceDiffers
        );
        assert_eq!(
            cause(Some("BB"), &state(None)),
            MismatchCause::NeverGenerated
        );
        let uds = record("BB", "f1", Some("K2"), Some("c1"));
        assert_eq!(cause(Some("BB"), &state(Some(uds))), MismatchCause::Uds);
        let core = record("BB", "f1", Some("K2"), Some("c2"));
        assert_eq!(
            cause(Some("BB"), &state(Some(core))),
            MismatchCause::RiotCore
        );
        let old = record("BB", "f1", Some("K2"), None);
        assert_eq!(
            cause(Some("BB"), &state(Some(old))),
            MismatchCause::UdsOrRiotCore
        );
        let fw = record("BB", "f2", Some("K1"), Some("c1"));
        assert_eq!(cause(Some("BB"), &state(Some(fw))), MismatchCause::RiotFw);
        let e = enrollment("BB");
        let x = explain(
            "dev-1",
            Some(&e),
            &state(Some(record("BB", "f2", Some("K1"), None))),
        );
        assert_eq!(x.next_actions, vec![NextStep::new(NextAction::Enroll)]);
        assert!(
            x.message.contains(".riot_fw") && x.message.contains("BB"),
            "{}",
            x.message
        );
        let other = explain("dev-2", Some(&e), &state(None));
        assert_eq!(other.cause, MismatchCause::RegistrationId);
        assert!(other.message.contains("dev-2") && other.message.contains("dev-1"));
    }
}
