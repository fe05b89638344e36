//! Enrolling a device's alias certificate: the rules shared by `devkit enroll`, the daemon's
//! `devkit/enroll` and `devkit provision`.
//!
//! Which certificate (the one named, else the one `generate-cert` last wrote for the project),
//! that it is an alias certificate (users enrolling the DeviceID certificate is a known
//! failure), that its CN is a registration ID DPS accepts, what the individual enrollment
//! holds, and recording what was enrolled in the project state all live here, so that the
//! CLI and the daemon cannot drift apart. The adapters only name their inputs (`--cert` /
//! `cert`) in the errors.

use super::enrollment::{IndividualEnrollment, ProvisioningStatus};
use super::{DpsError, IfMatch, ServiceClient};
use crate::error::{DomainError, Input};
use crate::identity::{self, CertInfo, RegistrationId};
use crate::project::{IdentityRecord, IdentitySource, ProjectError, ProjectState};
use std::path::{Path, PathBuf};

/// Errors preparing an enrollment. Messages never contain secrets (a certificate is public).
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error("the project at {0} has no generated certificate: generate the certificate first, or name the certificate to enroll")]
    NoGeneratedCertificate(PathBuf),
    #[error("cannot read the certificate {path}: {source}")]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    InvalidCertificate { path: PathBuf, reason: String },
    #[error("{value:?}: {reason}")]
    InvalidSetting {
        input: Input,
        value: String,
        reason: &'static str,
    },
    #[error(transparent)]
    Project(#[from] ProjectError),
}

impl DomainError for EnrollError {
    fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind;
        match self {
            EnrollError::Unreadable { source, .. }
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                ErrorKind::NotFound
            }
            EnrollError::Project(e) => e.kind(),
            _ => ErrorKind::InvalidInput,
        }
    }
    /// The input the error is about, when it is the caller's input.
    fn input(&self) -> Option<Input> {
        match self {
            EnrollError::NoGeneratedCertificate(_)
            | EnrollError::Unreadable { .. }
            | EnrollError::InvalidCertificate { .. } => Some(Input::Cert),
            EnrollError::InvalidSetting { input, .. } => Some(*input),
            EnrollError::Project(_) => None,
        }
    }
    fn next_actions(&self) -> Vec<crate::error::NextStep> {
        match self {
            EnrollError::NoGeneratedCertificate(_) => {
                vec![crate::error::NextAction::RegenerateCert.into()]
            }
            _ => Vec::new(),
        }
    }
}

/// How an enrollment reaches DPS.
pub enum EnrollVia {
    /// The DPS REST API with the service connection string's SAS.
    Rest(super::ConnectionString),
    /// `az iot dps enrollment` (Azure CLI).
    Az(super::az::AzTarget),
}

/// The one rule choosing how to enroll: with the az backend, a named DPS (the user's
/// `az login`) or else the connection string handed to az; without it, the connection string.
pub fn select_target(
    use_az: bool,
    dps_name: Option<String>,
    resource_group: Option<String>,
    cs: Option<super::ConnectionString>,
) -> Result<EnrollVia, crate::error::InvalidInput> {
    use crate::error::{Input, InvalidInput};
    match (use_az, dps_name, cs) {
        (true, Some(dps_name), _) => Ok(EnrollVia::Az(super::az::AzTarget::Named {
            dps_name,
            resource_group,
        })),
        (true, None, Some(cs)) => Ok(EnrollVia::Az(super::az::AzTarget::Login(cs))),
        (true, None, None) => Err(InvalidInput::new(
            Input::DpsName,
            "is required with the az backend (it uses your az login), or give a connection string",
        )),
        (false, _, Some(cs)) => Ok(EnrollVia::Rest(cs)),
        (false, _, None) => Err(InvalidInput::new(
            Input::ConnectionString,
            "is required: the DPS service connection string (or use the az backend)",
        )),
    }
}

/// What to do with the enrollment besides the certificate. Whatever is not asked for here is
/// left as it is when the enrollment exists (see [`EnrollmentSettings::apply_to`]).
#[derive(Debug, Clone, Default)]
pub struct EnrollmentSettings {
    /// Set the IoT Hub device ID; `None` = keep it (new enrollments: the registration ID).
    pub device_id: Option<String>,
    /// Pin the device to this hub (static allocation); `None` = keep the hubs and allocation
    /// (new enrollments: the DPS allocation policy).
    pub iot_hub: Option<String>,
    /// Disable the enrollment.
    pub disabled: bool,
    /// Enable the enrollment (a disabled one stays disabled unless this is asked).
    pub enable: bool,
}

impl EnrollmentSettings {
    /// Check the settings before anything is sent.
    pub fn validate(&self) -> Result<(), EnrollError> {
        if let Some(hub) = &self.iot_hub {
            if !is_host_name(hub) {
                return Err(EnrollError::InvalidSetting {
                    input: Input::IotHub,
                    value: hub.clone(),
                    reason: "expected a host name such as myhub.azure-devices.net",
                });
            }
        }
        if let Some(d) = &self.device_id {
            if d.is_empty()
                || d.len() > 128
                || d.chars().any(|c| c.is_control() || c == '/' || c == ' ')
            {
                return Err(EnrollError::InvalidSetting {
                    input: Input::DeviceId,
                    value: d.clone(),
                    reason: "expected 1 to 128 printable characters without '/' or spaces",
                });
            }
        }
        Ok(())
    }

    /// The status asked for; `None` = keep the current one (enabled for a new enrollment).
    pub fn status(&self) -> Option<ProvisioningStatus> {
        match (self.disabled, self.enable) {
            (true, _) => Some(ProvisioningStatus::Disabled),
            (false, true) => Some(ProvisioningStatus::Enabled),
            (false, false) => None,
        }
    }

    /// The X.509 individual enrollment for `cert_der` under `registration_id`, when none exists.
    pub fn individual_enrollment(
        &self,
        registration_id: &str,
        cert_der: &[u8],
    ) -> IndividualEnrollment {
        self.apply_to(
            IndividualEnrollment::x509(registration_id, cert_der),
            cert_der,
        )
    }

    /// `existing` (as the service returned it) with the attestation replaced by `cert_der` and
    /// only what these settings ask for changed: its device ID, hubs and allocation, initial
    /// twin, reprovision policy, capabilities and a disabled state are kept, so that re-running
    /// enroll never wipes what someone else set. The ETag stays, for `If-Match`.
    pub fn apply_to(
        &self,
        existing: IndividualEnrollment,
        cert_der: &[u8],
    ) -> IndividualEnrollment {
        let mut e = existing;
        e.attestation = IndividualEnrollment::x509(&e.registration_id, cert_der).attestation;
        // Read-only: the service sets it.
        e.extra.remove("registrationState");
        if let Some(d) = &self.device_id {
            e.device_id = Some(d.clone());
        }
        if let Some(hub) = &self.iot_hub {
            e.iot_hubs = Some(vec![hub.clone()]);
            e.allocation_policy = Some("static".into());
        }
        if let Some(status) = self.status() {
            e.provisioning_status = Some(status);
        }
        e
    }
}

/// Enroll `cert_der` under `registration_id` through the REST API: read the existing
/// enrollment, change only the attestation and what `settings` ask for, and write it back
/// under its ETag (a concurrent change is a [`DpsError::EtagMismatch`], never overwritten).
pub async fn enroll_rest(
    client: &ServiceClient,
    settings: &EnrollmentSettings,
    registration_id: &str,
    cert_der: &[u8],
) -> Result<IndividualEnrollment, DpsError> {
    let (enrollment, if_match) = match client.get_optional(registration_id).await? {
        Some(existing) => {
            let if_match = existing
                .etag
                .clone()
                .map(IfMatch::Etag)
                .unwrap_or(IfMatch::Any);
            (settings.apply_to(existing, cert_der), if_match)
        }
        None => (
            settings.individual_enrollment(registration_id, cert_der),
            IfMatch::None,
        ),
    };
    client.create_or_update(&enrollment, if_match).await
}

fn is_host_name(h: &str) -> bool {
    !h.is_empty()
        && h.split('.')
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

/// The certificate to enroll, read and checked.
#[derive(Debug, Clone)]
pub struct EnrollCertificate {
    /// Absolute path.
    pub path: PathBuf,
    pub der: Vec<u8>,
    pub info: CertInfo,
    /// The certificate's CN, which DPS requires to equal the registration ID.
    pub registration_id: RegistrationId,
    /// True when no certificate was named and the project's last generated one is used.
    pub from_project_state: bool,
}

/// The certificate to enroll: `cert` when given, else the one `generate-cert` last wrote for
/// the project at `project`. It must be an alias certificate whose CN is a valid registration ID.
pub fn resolve_certificate(
    project: &Path,
    cert: Option<&Path>,
) -> Result<EnrollCertificate, EnrollError> {
    let (path, from_project_state) = match cert {
        Some(p) => (p.to_path_buf(), false),
        None => {
            let state = ProjectState::load(project)?;
            let rec = state
                .last_generated
                .ok_or_else(|| EnrollError::NoGeneratedCertificate(project.to_path_buf()))?;
            (rec.alias_cert, true)
        }
    };
    let path = std::path::absolute(&path).unwrap_or(path);
    let invalid = |reason: String| EnrollError::InvalidCertificate {
        path: path.clone(),
        reason,
    };
    let bytes = crate::fsutil::read_bounded(&path, "certificate", crate::fsutil::limits::CERT_FILE)
        .map_err(|e| match e.io_kind {
            Some(kind) => EnrollError::Unreadable {
                path: path.clone(),
                source: std::io::Error::new(kind, e.reason),
            },
            None => invalid(e.reason),
        })?;
    let text = String::from_utf8(bytes).map_err(|_| invalid("is not a PEM text file".into()))?;
    let der =
        identity::pem::decode(&text, Some("CERTIFICATE")).map_err(|e| invalid(e.to_string()))?;
    let info = identity::inspect(&der).map_err(|e| invalid(e.to_string()))?;
    if !info.is_alias {
        return Err(invalid(format!(
            "this is the DeviceID certificate (CN={}); enroll the alias certificate `<registration id>.pem` instead",
            info.subject_cn
        )));
    }
    let registration_id = RegistrationId::parse(&info.subject_cn)
        .map_err(|e| invalid(format!("its CN is not a valid registration ID ({e})")))?;
    Ok(EnrollCertificate {
        path,
        der,
        info,
        registration_id,
        from_project_state,
    })
}

/// Record `cert` as the project's enrolled identity (what `device-upload`'s drift guard and
/// `devkit/identity` compare new builds with).
pub fn record_enrolled(project: &Path, cert: &EnrollCertificate) -> Result<(), ProjectError> {
    ProjectState::update(project, |s| {
        // The core digest is not in the certificate: carry it over when this is the certificate
        // generated in this project.
        let core_digest = s
            .last_generated
            .as_ref()
            .filter(|g| {
                g.sha256_thumbprint
                    .eq_ignore_ascii_case(&cert.info.sha256_thumbprint)
            })
            .and_then(|g| g.core_digest.clone());
        s.last_enrolled = Some(IdentityRecord {
            registration_id: cert.registration_id.to_string(),
            fwid: cert.info.fwid.clone().unwrap_or_default(),
            sha256_thumbprint: cert.info.sha256_thumbprint.clone(),
            alias_cert: cert.path.clone(),
            source: IdentitySource::Enrolled,
            core_digest,
            device_id_public_key: cert.info.device_id_public_key.clone(),
        })
    })
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector_identity() -> identity::DeviceIdentity {
        let uds = identity::Uds::parse(&"ab".repeat(32)).unwrap();
        let image = crate::provision::sample::image().unwrap();
        identity::derive(&uds, &image, &RegistrationId::parse("enroll-test").unwrap()).unwrap()
    }

    #[test]
    fn settings_are_validated_and_shape_the_enrollment() {
        let bad_hub = EnrollmentSettings {
            iot_hub: Some("not a host".into()),
            ..Default::default()
        };
        assert_eq!(bad_hub.validate().unwrap_err().input(), Some(Input::IotHub));
        let bad_id = EnrollmentSettings {
            device_id: Some("a/b".into()),
            ..Default::default()
        };
        assert_eq!(
            bad_id.validate().unwrap_err().input(),
            Some(Input::DeviceId)
        );
        let s = EnrollmentSettings {
            device_id: Some("dev".into()),
            iot_hub: Some("hub.azure-devices.net".into()),
            disabled: true,
            enable: false,
        };
        s.validate().unwrap();
        let e = s.individual_enrollment("enroll-test", b"der");
        assert_eq!(e.iot_hubs, Some(vec!["hub.azure-devices.net".to_string()]));
        assert_eq!(e.allocation_policy.as_deref(), Some("static"));
        assert_eq!(e.provisioning_status, Some(ProvisioningStatus::Disabled));
        assert_eq!(e.device_id.as_deref(), Some("dev"));
        let fresh = EnrollmentSettings::default().individual_enrollment("enroll-test", b"der");
        assert_eq!(fresh.provisioning_status, Some(ProvisioningStatus::Enabled));
    }

    /// Re-enrolling changes the attestation only: what others set on the enrollment stays.
    #[test]
    fn re_enrolling_keeps_what_others_set() {
        let existing: IndividualEnrollment = serde_json::from_value(serde_json::json!({
            "registrationId": "enroll-test",
            "deviceId": "kitchen-sensor",
            "attestation": {"type": "x509", "x509": {"clientCertificates": {"primary": {"info": {"sha256Thumbprint": "AB"}}}}},
            "provisioningStatus": "disabled",
            "allocationPolicy": "hashed",
            "iotHubs": ["a.azure-devices.net", "b.azure-devices.net"],
            "initialTwin": {"tags": {"site": "lab"}},
            "reprovisionPolicy": {"updateHubAssignment": false, "migrateDeviceData": true},
            "registrationState": {"status": "assigned"},
            "etag": "AAAAAAAAAAU="
        }))
        .unwrap();
        let e = EnrollmentSettings::default().apply_to(existing.clone(), &[0x30, 0x00]);
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(e.primary_certificate_der().unwrap(), vec![0x30, 0x00]);
        assert!(v["attestation"]["x509"]["clientCertificates"]["primary"]
            .get("info")
            .is_none());
        assert_eq!(v["deviceId"], "kitchen-sensor");
        assert_eq!(v["provisioningStatus"], "disabled");
        assert_eq!(v["allocationPolicy"], "hashed");
        assert_eq!(
            v["iotHubs"],
            serde_json::json!(["a.azure-devices.net", "b.azure-devices.net"])
        );
        assert_eq!(v["initialTwin"]["tags"]["site"], "lab");
        assert_eq!(v["reprovisionPolicy"]["migrateDeviceData"], true);
        assert_eq!(v["etag"], "AAAAAAAAAAU=");
        assert!(v.get("registrationState").is_none());
        // Only what is asked changes.
        let asked = EnrollmentSettings {
            device_id: Some("d2".into()),
            iot_hub: Some("c.azure-devices.net".into()),
            disabled: false,
            enable: true,
        };
        let e = asked.apply_to(existing, &[0x30, 0x00]);
        assert_eq!((e.device_id.as_deref(), e.is_enabled()), (Some("d2"), true));
        assert_eq!(
            (e.iot_hubs.unwrap(), e.allocation_policy.unwrap()),
            (
                vec!["c.azure-devices.net".to_string()],
                "static".to_string()
            )
        );
        assert_eq!(e.extra["initialTwin"]["tags"]["site"], "lab");
    }

    #[test]
    fn the_certificate_comes_from_the_project_and_must_be_an_alias_certificate() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            resolve_certificate(dir.path(), None),
            Err(EnrollError::NoGeneratedCertificate(_))
        ));
        let d = vector_identity();
        let written = identity::files::write_identity(
            &d,
            dir.path(),
            identity::files::FileOptions {
                device_cert: true,
                ..Default::default()
            },
        )
        .unwrap();
        identity::files::record_generated(dir.path(), &d, &written[0].path).unwrap();
        let cert = resolve_certificate(dir.path(), None).unwrap();
        assert!(cert.from_project_state);
        assert_eq!(cert.registration_id.as_str(), "enroll-test");
        assert_eq!(cert.der, d.alias_cert_der);
        let device =
            resolve_certificate(dir.path(), Some(&dir.path().join("device-cert.pem"))).unwrap_err();
        assert!(
            device.to_string().contains("DeviceID certificate"),
            "{device}"
        );
        assert_eq!(device.input(), Some(Input::Cert));
        record_enrolled(dir.path(), &cert).unwrap();
        let state = ProjectState::load(dir.path()).unwrap();
        assert_eq!(
            state.last_enrolled.unwrap().sha256_thumbprint,
            d.sha256_thumbprint()
        );
    }
}
