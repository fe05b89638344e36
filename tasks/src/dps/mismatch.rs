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
use crate::error::{Input, InvalidInput};
use crate::error::{NextAction, NextStep};
use crate::progress::CancellationToken;
use crate::project::{IdentityRecord, ProjectState};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Which input differs between what DPS holds and what the project generates now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    events.iter().for_each(|e| {
        watch.push(e);
    });
    watch.verdict()
}

/// [`rejected_registration`] over a stream of events, line by line (`devkit logs` and a
/// monitor cannot keep the whole log): bounded state, the registration ID of the attempt in
/// progress and the last verdict. A boot starts a new attempt.
#[derive(Debug, Default, Clone)]
pub struct RejectionWatch {
    last_request: Option<String>,
    verdict: Option<Option<String>>,
}

impl RejectionWatch {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next event of the log. `Some(registration ID, if the trace showed it)` when it is
    /// a 401002 verdict (or the SDK's "Invalid certificate" without a trace).
    pub fn push(&mut self, event: &crate::logs::LogEvent) -> Option<Option<String>> {
        use crate::logs::LogEvent;
        match event {
            LogEvent::Boot => {
                self.last_request = None;
                self.verdict = None;
            }
            LogEvent::RegistrationRequest {
                registration_id, ..
            } => self.last_request = Some(registration_id.clone()),
            // With tracing off the SDK shows no error code, only the reason the diagnosis
            // maps to 401002's hint.
            LogEvent::Failed {
                error_code, hint, ..
            } if *error_code == Some(401002) || hint == crate::logs::HINT_401002.text => {
                self.verdict = Some(self.last_request.clone());
                return self.verdict.clone();
            }
            LogEvent::Failed { .. } | LogEvent::Assigned { .. } => self.verdict = None,
            _ => {}
        }
        None
    }

    /// What [`rejected_registration`] says of the events seen so far.
    pub fn verdict(&self) -> Option<Option<String>> {
        self.verdict.clone()
    }
}

/// What a follower of a live log (the daemon's monitor) needs to explain a 401002: the DPS
/// service, the CA it trusts, and the project whose certificates the enrollment is compared
/// with. The adapters pass the secret text as they received it.
pub struct ExplainRequest {
    pub connection_string: zeroize::Zeroizing<String>,
    pub ca_file: Option<PathBuf>,
    pub project_dir: PathBuf,
    /// Stops a request DPS is slow to answer (the CLI's Ctrl-C).
    pub cancel: CancellationToken,
    /// How long one request to DPS may take (a live monitor waits less than a user at a prompt).
    pub timeout: std::time::Duration,
}

/// A checked [`ExplainRequest`]: ready to ask DPS, as often as the device is rejected.
pub struct ExplainPlan {
    client: ServiceClient,
    project_dir: PathBuf,
}

impl ExplainRequest {
    /// Check the connection string and read the CA file (blocking); nothing is sent.
    pub fn plan(self) -> Result<ExplainPlan, DpsError> {
        let cs = super::ConnectionString::parse_file_text(&self.connection_string)
            .map_err(|e| InvalidInput::new(Input::ConnectionString, e.to_string()))?;
        let ca_pem = match &self.ca_file {
            Some(path) => Some(
                crate::fsutil::read_text_bounded(
                    path,
                    &format!("CA file {:?}", path.display().to_string()),
                    crate::fsutil::limits::CERT_FILE,
                )
                .map_err(|e| e.into_invalid(Input::CaFile))?,
            ),
            None => None,
        };
        let options = super::ClientOptions {
            ca_pem,
            cancel: self.cancel,
            timeout: self.timeout,
            ..Default::default()
        };
        Ok(ExplainPlan {
            client: ServiceClient::new(cs, options)?,
            project_dir: self.project_dir,
        })
    }
}

impl ExplainPlan {
    /// Explain a 401002 verdict for `registration_id` (when the log showed it; else the
    /// project's last generated certificate's). `None`: neither is known, nothing to compare.
    /// Reads the project state (blocking, small; unreadable: a project without records, so a
    /// live log is still explained) and asks DPS.
    pub async fn explain(
        &self,
        registration_id: Option<&str>,
    ) -> Result<Option<MismatchExplanation>, DpsError> {
        let state = ProjectState::load(&self.project_dir).unwrap_or_default();
        self.explain_against(registration_id, &state).await
    }

    /// [`explain`](Self::explain) against project records the caller read.
    pub async fn explain_against(
        &self,
        registration_id: Option<&str>,
        state: &ProjectState,
    ) -> Result<Option<MismatchExplanation>, DpsError> {
        let Some(registration_id) = rejected_id(registration_id, state) else {
            return Ok(None);
        };
        explain_rejection(&self.client, &registration_id, state)
            .await
            .map(Some)
    }
}

/// The registration ID a 401002 is explained for: the one the log showed, else the project's
/// last generated certificate's. `None`: neither is known, nothing to compare.
pub fn rejected_id(shown: Option<&str>, state: &ProjectState) -> Option<String> {
    shown.map(str::to_string).or_else(|| {
        state
            .last_generated
            .as_ref()
            .map(|g| g.registration_id.clone())
    })
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
    fn a_live_log_gives_its_401002_verdicts_one_by_one() {
        use crate::logs::LogEvent;
        let failed = |code| LogEvent::Failed {
            reason: "r".into(),
            hint: "h".into(),
            error_code: Some(code),
            http_status: Some(401),
            next_actions: vec![],
        };
        let request = |id: &str| LogEvent::RegistrationRequest {
            id_scope: "0ne".into(),
            registration_id: id.into(),
        };
        let mut w = RejectionWatch::new();
        assert_eq!(w.push(&failed(401002)), Some(None));
        assert_eq!(w.push(&request("dev-1")), None);
        assert_eq!(w.push(&failed(404201)), None);
        assert_eq!(w.push(&failed(401002)), Some(Some("dev-1".into())));
        // A boot is a new attempt: the old request's ID is not this one's.
        assert_eq!(w.push(&LogEvent::Boot), None);
        assert_eq!(w.push(&failed(401002)), Some(None));
        assert_eq!(w.push(&request("dev-2")), None);
        let sdk = LogEvent::Failed {
            reason: "Invalid certificate".into(),
            hint: crate::logs::HINT_401002.text.into(),
            error_code: None,
            http_status: None,
            next_actions: vec![],
        };
        assert_eq!(w.push(&sdk), Some(Some("dev-2".into())));
    }

    #[test]
    fn an_explain_request_refuses_a_bad_connection_string_without_echoing_it() {
        let r = ExplainRequest {
            connection_string: zeroize::Zeroizing::new(
                "HostName=x;SharedAccessKey=c2VjcmV0".into(),
            ),
            ca_file: None,
            project_dir: "/nowhere".into(),
            cancel: CancellationToken::new(),
            timeout: std::time::Duration::from_secs(1),
        };
        let e = r.plan().err().expect("refused");
        assert!(
            matches!(e, DpsError::Invalid(ref i) if i.input == Input::ConnectionString),
            "{e}"
        );
        assert!(!e.to_string().contains("c2VjcmV0"), "{e}");
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
