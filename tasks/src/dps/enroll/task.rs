//! The enroll task: [`EnrollRequest`] → [`EnrollRequest::plan`] → [`run`] → [`EnrollReport`].

use super::{
    enroll_rest, record_enrolled, resolve_certificate, select_target, EnrollBackend,
    EnrollCertificate, EnrollError, EnrollVia, EnrollmentSettings,
};
use crate::dps::az::{self, AzEnrollment, AzTarget};
use crate::dps::enrollment::{IndividualEnrollment, ProvisioningStatus};
use crate::dps::{ClientOptions, ConnectionString, DpsError, ServiceClient};
use crate::error::{Input, InvalidInput, NextAction, NextStep};
use crate::progress::{CancellationToken, Progress};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// An enrollment as an adapter receives it. The connection string arrives as text already read
/// (from a file, stdin or a request param) and is parsed by [`EnrollRequest::plan`].
#[derive(Default)]
pub struct EnrollRequest {
    /// The DPS service connection string (its first non-empty line is used).
    pub connection_string: Option<Zeroizing<String>>,
    /// A CA certificate file to trust for the service (the DPS emulator's); REST only.
    pub ca_file: Option<PathBuf>,
    /// The alias certificate; `None`: the one `generate-cert` last wrote for the project.
    pub cert: Option<PathBuf>,
    /// The project whose state gives the default certificate and records the enrollment.
    pub project_dir: PathBuf,
    pub settings: EnrollmentSettings,
    pub backend: EnrollBackend,
    /// With the az backend: the DPS (the `az login` session) and its resource group.
    pub dps_name: Option<String>,
    pub resource_group: Option<String>,
}

/// How a planned enrollment reaches DPS.
enum Via {
    Rest {
        cs: ConnectionString,
        ca_pem: Option<String>,
    },
    Az {
        az: PathBuf,
        target: AzTarget,
    },
}

/// A checked enrollment: nothing has been sent or written yet.
pub struct EnrollPlan {
    /// The certificate that will be enrolled.
    pub cert: EnrollCertificate,
    pub settings: EnrollmentSettings,
    pub project_dir: PathBuf,
    /// What the user should know before it runs (they end up in the report).
    pub warnings: Vec<String>,
    via: Via,
}

impl EnrollRequest {
    /// Check every input and decide every default; nothing is sent or written. Reads the CA
    /// and certificate files and looks for `az` (blocking: the daemon calls it on
    /// `spawn_blocking`). The connection string is checked first, so a malformed one is
    /// refused for what it is whatever else is wrong.
    pub fn plan(self) -> Result<EnrollPlan, EnrollError> {
        let cs = parse_connection_string(self.connection_string.as_deref().map(|s| s.as_str()))?;
        let mut warnings = Vec::new();
        if self.backend == EnrollBackend::Rest && self.dps_name.is_some() {
            warnings.push(
                "the DPS name is used by the az backend only: enrolling through the REST API with the connection string"
                    .into(),
            );
        }
        let via = select_target(self.backend, self.dps_name, self.resource_group, cs)?;
        self.settings.validate()?;
        let ca_pem = match (&self.ca_file, &via) {
            (Some(path), EnrollVia::Rest(_)) => Some(read_ca(path)?),
            (Some(_), EnrollVia::Az(_)) => {
                warnings.push(
                    "the CA file applies to the REST backend only: az trusts what it is configured to trust"
                        .into(),
                );
                None
            }
            (None, _) => None,
        };
        let cert = resolve_certificate(&self.project_dir, self.cert.as_deref())?;
        if cert.from_project_state {
            warnings.push(format!(
                "enrolling {} (the certificate last generated for this project)",
                cert.path.display()
            ));
        }
        let via = match via {
            EnrollVia::Rest(cs) => Via::Rest { cs, ca_pem },
            EnrollVia::Az(target) => Via::Az {
                az: az::find_az()?,
                target,
            },
        };
        Ok(EnrollPlan {
            cert,
            settings: self.settings,
            project_dir: self.project_dir,
            warnings,
            via,
        })
    }
}

/// The service connection string from the text an adapter read (its first non-empty line).
pub(super) fn parse_connection_string(
    text: Option<&str>,
) -> Result<Option<ConnectionString>, InvalidInput> {
    text.map(|text| {
        ConnectionString::parse_file_text(text)
            .map_err(|e| InvalidInput::new(Input::ConnectionString, e.to_string()))
    })
    .transpose()
}

/// The CA file, bounded like every certificate input.
pub(super) fn read_ca(path: &Path) -> Result<String, InvalidInput> {
    let name = format!("CA file {:?}", path.display().to_string());
    crate::fsutil::read_text_bounded(path, &name, crate::fsutil::limits::CERT_FILE)
        .map_err(|e| e.into_invalid(Input::CaFile))
}

/// What was enrolled: what `devkit enroll --json` prints and `devkit/enroll` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrollReport {
    /// The certificate's CN, the enrollment's ID.
    pub registration_id: String,
    /// The IoT Hub device ID the enrollment sets; `null`: the registration ID.
    pub device_id: Option<String>,
    /// `enabled` or `disabled`.
    pub provisioning_status: ProvisioningStatus,
    /// The hubs the enrollment pins; `null`: the DPS allocation policy chooses.
    pub iot_hubs: Option<Vec<String>>,
    pub sha256_thumbprint: String,
    pub sha1_thumbprint: String,
    /// The enrollment's ETag, bare as in DPS's JSON; `null` when the service gave none.
    pub etag: Option<String>,
    /// The enrolled certificate file (absolute).
    pub cert: PathBuf,
    /// True when no certificate was named and the project's last generated one was enrolled.
    pub cert_from_project_state: bool,
    pub warnings: Vec<String>,
    /// What the user has to do (e.g. run enroll again when the project state was not saved).
    pub next_actions: Vec<NextStep>,
}

/// Write the enrollment, then record it in the project state.
///
/// Once DPS holds the enrollment, a project state that cannot be saved (a full disk, a
/// `.devkit` that is not a directory) does not fail the run: failing would hide the ETag of an
/// enrollment that exists. The report says what failed (a warning naming the state file, a
/// `retry` next action) and keeps the thumbprint and ETag; enrolling again records it, since
/// re-enrolling the same certificate changes nothing in DPS.
pub async fn run(
    plan: EnrollPlan,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<EnrollReport, EnrollError> {
    let EnrollPlan {
        cert,
        settings,
        project_dir,
        mut warnings,
        via,
    } = plan;
    if cancel.is_cancelled() {
        return Err(DpsError::Cancelled.into());
    }
    let reg = cert.registration_id.to_string();
    progress.report(format!("Enrolling {reg}"), None);
    let enrolled = match via {
        Via::Rest { cs, ca_pem } => {
            let options = ClientOptions {
                ca_pem,
                cancel: cancel.clone(),
                ..Default::default()
            };
            let client = ServiceClient::new(cs, options)?;
            enroll_rest(&client, &settings, &reg, &cert.der).await?
        }
        Via::Az { az, target } => {
            let request = AzEnrollment {
                target,
                registration_id: reg.clone(),
                certificate_path: cert.path.clone(),
                device_id: settings.device_id.clone(),
                status: settings.status(),
                iot_hubs: settings.iot_hub.iter().cloned().collect(),
            };
            // Dropping the future kills az (kill_on_drop).
            tokio::select! {
                r = az::enroll(&az, &request) => r?,
                _ = cancel.cancelled() => return Err(DpsError::Cancelled.into()),
            }
        }
    };
    progress.report(format!("Recording {reg} in the project state"), None);
    let mut next_actions = Vec::new();
    let recorded = {
        let (dir, cert) = (project_dir.clone(), cert.clone());
        tokio::task::spawn_blocking(move || record_enrolled(&dir, &cert)).await
    };
    let failure = match recorded {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(e) => Some(e.to_string()),
    };
    if let Some(reason) = failure {
        // Name the state file once: the error usually names it already.
        let state = crate::project::state_path(&project_dir)
            .display()
            .to_string();
        let reason = if reason.contains(&state) {
            reason
        } else {
            format!("{state}: {reason}")
        };
        warnings.push(format!(
            "the enrollment exists in DPS, but the project state was not saved ({reason}): enroll again once it can be written"
        ));
        next_actions.push(NextStep::new(NextAction::Retry));
    }
    Ok(report(&cert, &enrolled, warnings, next_actions))
}

fn report(
    cert: &EnrollCertificate,
    enrolled: &IndividualEnrollment,
    warnings: Vec<String>,
    next_actions: Vec<NextStep>,
) -> EnrollReport {
    EnrollReport {
        registration_id: cert.registration_id.to_string(),
        device_id: enrolled.device_id.clone(),
        provisioning_status: if enrolled.is_enabled() {
            ProvisioningStatus::Enabled
        } else {
            ProvisioningStatus::Disabled
        },
        iot_hubs: enrolled.iot_hubs.clone(),
        sha256_thumbprint: enrolled
            .sha256_thumbprint()
            .unwrap_or_else(|| cert.info.sha256_thumbprint.clone()),
        sha1_thumbprint: cert.info.sha1_thumbprint.clone(),
        etag: enrolled
            .etag
            .as_deref()
            .map(|e| e.trim_matches('"').to_string()),
        cert: cert.path.clone(),
        cert_from_project_state: cert.from_project_state,
        warnings,
        next_actions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::DomainError;
    use crate::identity::{self, RegistrationId};

    const CS: &str = "HostName=127.0.0.1:9;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=Y2FuYXJ5LWtleQ==";

    /// A project whose last generated certificate is `plan-test`'s alias certificate.
    fn project() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let uds = identity::Uds::parse(&"ab".repeat(32)).unwrap();
        let image = crate::provision::sample::image().unwrap();
        let id = RegistrationId::parse("plan-test").unwrap();
        let d = identity::derive(&uds, &image, &id).unwrap();
        let written = identity::files::write_identity(&d, dir.path(), Default::default()).unwrap();
        identity::files::record_generated(dir.path(), &d, &written[0].path).unwrap();
        dir
    }

    fn request(dir: &Path) -> EnrollRequest {
        EnrollRequest {
            connection_string: Some(Zeroizing::new(format!("{CS}\n"))),
            project_dir: dir.to_path_buf(),
            ..Default::default()
        }
    }

    fn refused(r: EnrollRequest) -> EnrollError {
        match r.plan() {
            Ok(_) => panic!("planned"),
            Err(e) => e,
        }
    }

    #[test]
    fn a_complete_request_plans_the_project_certificate_and_says_so() {
        let dir = project();
        let plan = request(dir.path()).plan().unwrap();
        assert_eq!(plan.cert.registration_id.as_str(), "plan-test");
        assert!(plan.cert.from_project_state);
        assert!(
            matches!(&plan.warnings[..], [w] if w.contains("last generated")),
            "{:?}",
            plan.warnings
        );
        assert!(matches!(plan.via, Via::Rest { ca_pem: None, .. }));
        // Named, it is not from the project state: no warning.
        let named = EnrollRequest {
            cert: Some(plan.cert.path.clone()),
            ..request(dir.path())
        };
        let plan = named.plan().unwrap();
        assert!(!plan.cert.from_project_state && plan.warnings.is_empty());
    }

    #[test]
    fn each_input_is_refused_by_name_before_anything_is_sent() {
        let dir = project();
        let empty = tempfile::tempdir().unwrap();
        // A malformed connection string is named (never echoed), even with no certificate.
        let e = refused(EnrollRequest {
            connection_string: Some(Zeroizing::new(
                "HostName=h;SharedAccessKeyName=p;SharedAccessKey:c2VjcmV0LWNhbmFyeQ==".into(),
            )),
            project_dir: empty.path().to_path_buf(),
            ..Default::default()
        });
        assert_eq!(e.input(), Some(Input::ConnectionString));
        assert!(!e.to_string().contains("c2VjcmV0LWNhbmFyeQ"), "{e}");
        // Missing: the connection string with REST, the DPS name with az.
        let e = refused(EnrollRequest {
            connection_string: None,
            ..request(dir.path())
        });
        assert_eq!(
            (e.input(), e.exit_code()),
            (Some(Input::ConnectionString), 2)
        );
        let e = refused(EnrollRequest {
            connection_string: None,
            backend: EnrollBackend::Az,
            ..request(dir.path())
        });
        assert_eq!(e.input(), Some(Input::DpsName));
        // Settings.
        let mut bad_hub = request(dir.path());
        bad_hub.settings.iot_hub = Some("not a host".into());
        assert_eq!(refused(bad_hub).input(), Some(Input::IotHub));
        let mut both = request(dir.path());
        both.settings.disabled = true;
        both.settings.enable = true;
        let e = refused(both);
        assert!(matches!(e, EnrollError::ContradictoryStatus) && e.is_invalid_input());
        // The CA file.
        let e = refused(EnrollRequest {
            ca_file: Some(dir.path().join("missing-ca.pem")),
            ..request(dir.path())
        });
        assert_eq!((e.input(), e.exit_code()), (Some(Input::CaFile), 2));
        // No certificate known: generate one first.
        let e = refused(request(empty.path()));
        assert_eq!(e.input(), Some(Input::Cert));
        assert_eq!(e.next_actions(), vec![NextAction::RegenerateCert.into()]);
    }

    #[tokio::test]
    async fn a_cancelled_run_sends_nothing() {
        let dir = project();
        let plan = request(dir.path()).plan().unwrap();
        let cancel = CancellationToken::new();
        cancel.cancel();
        let e = run(plan, &Progress::none(), &cancel).await.unwrap_err();
        assert!(matches!(e, EnrollError::Dps(DpsError::Cancelled)), "{e}");
        assert_eq!(e.kind(), crate::error::ErrorKind::Cancelled);
        assert!(crate::project::ProjectState::load(dir.path())
            .unwrap()
            .last_enrolled
            .is_none());
    }

    #[test]
    fn the_report_has_a_bare_etag_and_round_trips() {
        let dir = project();
        let plan = request(dir.path()).plan().unwrap();
        let mut enrolled = IndividualEnrollment::x509("plan-test", &plan.cert.der);
        enrolled.etag = Some("\"AAAAAAAAAAE=\"".into());
        enrolled.provisioning_status = Some(ProvisioningStatus::Disabled);
        let r = report(&plan.cert, &enrolled, vec![], vec![]);
        assert_eq!(r.etag.as_deref(), Some("AAAAAAAAAAE="));
        assert_eq!(r.sha256_thumbprint, plan.cert.info.sha256_thumbprint);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["provisioningStatus"], "disabled");
        assert_eq!(v["certFromProjectState"], true);
        assert_eq!(serde_json::from_value::<EnrollReport>(v).unwrap(), r);
    }
}
