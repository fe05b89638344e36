//! Enrolling an X.509 CA enrollment group (`devkit enroll --group`, `devkit/enroll` with
//! `group`): [`GroupEnrollRequest`] → [`GroupEnrollRequest::plan`] → [`run_group`] →
//! [`GroupEnrollReport`].
//!
//! The group holds a root or intermediate CA certificate; every device whose chain leads to it
//! registers. The CA is checked before anything is sent, and refused when it is one of the
//! RIoT certificates: the published RIoT root key (anyone can mint DeviceID certificates
//! under it, [`crate::identity::riot_root`]), a DeviceID certificate (the DevKit signs with a
//! fixed nonce, so its private key follows from any certificate it signed) or an alias
//! certificate (a device's, not a CA). Group enrollments go through the REST API.

use super::{select_target, EnrollBackend, EnrollError, EnrollVia, EnrollmentSettings};
use crate::dps::emulator::chain;
use crate::dps::enrollment::ProvisioningStatus;
use crate::dps::enrollment_group::EnrollmentGroup;
use crate::dps::{cert, ClientOptions, ConnectionString, DpsError, IfMatch, ServiceClient};
use crate::error::{Input, InvalidInput, NextStep};
use crate::identity::{self, riot_root};
use crate::progress::{CancellationToken, Progress};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// RIoT DeviceID certificates carry this fixed serial (devkit-facts.md §4; the C SDK's
/// simulator HSM uses it too).
const RIOT_DEVICE_ID_SERIAL: &str = "0E0D0C0B0A";
/// RIoT alias certificates carry this one.
const RIOT_ALIAS_SERIAL: &str = "0A0B0C0D0E";

/// A group enrollment as an adapter receives it.
#[derive(Default)]
pub struct GroupEnrollRequest {
    /// The DPS service connection string (its first non-empty line is used).
    pub connection_string: Option<Zeroizing<String>>,
    /// A CA certificate file to trust for the service (the DPS emulator's).
    pub ca_file: Option<PathBuf>,
    /// The enrollment group's ID.
    pub group_id: String,
    /// The group's signing certificate (a root or intermediate CA), PEM or DER.
    pub ca_cert: Option<PathBuf>,
    /// Hub, status; a device ID is refused (it belongs to individual enrollments).
    pub settings: EnrollmentSettings,
    /// Only `rest`: `az` is refused by name.
    pub backend: EnrollBackend,
}

/// A checked group enrollment: nothing has been sent yet.
pub struct GroupEnrollPlan {
    pub group_id: String,
    /// Absolute path of the CA certificate.
    pub ca_cert: PathBuf,
    pub ca_der: Vec<u8>,
    pub settings: EnrollmentSettings,
    pub warnings: Vec<String>,
    cs: ConnectionString,
    ca_pem: Option<String>,
}

/// What was enrolled: `devkit enroll --group --json` prints it and `devkit/enroll` with a
/// `group` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupEnrollReport {
    pub enrollment_group_id: String,
    /// `enabled` or `disabled`.
    pub provisioning_status: ProvisioningStatus,
    /// The hubs the group pins; `null`: the DPS allocation policy chooses.
    pub iot_hubs: Option<Vec<String>>,
    /// The CA certificate file (absolute) and its subject CN.
    pub ca_cert: PathBuf,
    pub ca_subject: Option<String>,
    pub sha256_thumbprint: String,
    pub sha1_thumbprint: String,
    /// The group's ETag, bare as in DPS's JSON.
    pub etag: Option<String>,
    pub warnings: Vec<String>,
    pub next_actions: Vec<NextStep>,
}

impl GroupEnrollRequest {
    /// Check every input; nothing is sent. Reads the CA files (blocking).
    pub fn plan(self) -> Result<GroupEnrollPlan, EnrollError> {
        let cs = super::task::parse_connection_string(
            self.connection_string.as_deref().map(|s| s.as_str()),
        )?;
        if self.backend == EnrollBackend::Az {
            return Err(InvalidInput::new(
                Input::Backend,
                "enrollment groups are written through the DPS REST API only: use the rest backend with the service connection string",
            )
            .into());
        }
        let cs = match select_target(self.backend, None, None, cs)? {
            EnrollVia::Rest(cs) => cs,
            EnrollVia::Az(_) => unreachable!("the az backend was refused above"),
        };
        validate_group_id(&self.group_id)?;
        if self.settings.device_id.is_some() {
            return Err(InvalidInput::new(
                Input::DeviceId,
                "applies to individual enrollments only: each device of a group gets its registration ID",
            )
            .into());
        }
        self.settings.validate()?;
        let ca_pem = self
            .ca_file
            .as_deref()
            .map(super::task::read_ca)
            .transpose()?;
        let path = self.ca_cert.ok_or_else(|| {
            InvalidInput::new(
                Input::CaCert,
                "is required with a group: the root or intermediate CA certificate its devices chain to",
            )
        })?;
        let path = std::path::absolute(&path).unwrap_or(path);
        let ca_der = read_group_ca(&path)?;
        Ok(GroupEnrollPlan {
            group_id: self.group_id,
            ca_cert: path,
            ca_der,
            settings: self.settings,
            warnings: Vec::new(),
            cs,
            ca_pem,
        })
    }
}

/// DPS enrollment group IDs: 1–128 of letters, digits, `-`, `.`, `_`, `:`, ending in a letter,
/// a digit or `-`.
fn validate_group_id(id: &str) -> Result<(), InvalidInput> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':');
    let ok = !id.is_empty()
        && id.len() <= 128
        && id.chars().all(allowed)
        && id
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(InvalidInput::new(
            Input::Group,
            format!("{id:?}: expected 1 to 128 letters, digits, '-', '.', '_' or ':', ending in a letter, digit or '-'"),
        ))
    }
}

/// Read the group's CA certificate and refuse what must never be a group's CA, naming the file.
fn read_group_ca(path: &Path) -> Result<Vec<u8>, InvalidInput> {
    let name = format!("{:?}", path.display().to_string());
    let refuse = |reason: String| InvalidInput::new(Input::CaCert, format!("{name} {reason}"));
    let bytes = crate::fsutil::read_bounded(
        path,
        "group CA certificate",
        crate::fsutil::limits::CERT_FILE,
    )
    .map_err(|e| e.into_invalid(Input::CaCert))?;
    let der = match std::str::from_utf8(&bytes) {
        Ok(text) if text.contains("-----BEGIN") => identity::pem::decode(text, Some("CERTIFICATE"))
            .map_err(|e| refuse(format!("is not a PEM certificate ({e})")))?,
        _ => bytes,
    };
    check_group_ca(&der).map_err(refuse)?;
    Ok(der)
}

/// Why `der` cannot be a group's CA, if it cannot (the reason follows the file's name).
pub fn check_group_ca(der: &[u8]) -> Result<(), String> {
    let fields = cert::read(der).ok_or("is not an X.509 certificate")?;
    if fields
        .public_key
        .as_deref()
        .is_some_and(riot_root::is_published_root_key)
    {
        return Err(riot_root::PUBLISHED_ROOT_REFUSAL.into());
    }
    match fields.serial_number.as_deref() {
        Some(RIOT_DEVICE_ID_SERIAL) => return Err(
            "is a RIoT DeviceID certificate: the device signs with a fixed nonce, so anyone holding one certificate it signed can compute its private key; it must never be a group's CA".into(),
        ),
        Some(RIOT_ALIAS_SERIAL) => return Err(
            "is a RIoT alias certificate (a device's own certificate, not a CA): enroll it as an individual enrollment instead".into(),
        ),
        _ => {}
    }
    match chain::is_ca(der) {
        Some(true) => Ok(()),
        Some(false) => Err("is not a CA certificate (basicConstraints cA is not TRUE)".into()),
        None => Err("is not an ECDSA P-256 certificate DPS groups of DevKits can use".into()),
    }
}

/// Create the group, or update it keeping what the settings do not ask to change, under its
/// ETag (a concurrent change is a [`DpsError::EtagMismatch`], never overwritten).
pub async fn run_group(
    plan: GroupEnrollPlan,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<GroupEnrollReport, EnrollError> {
    if cancel.is_cancelled() {
        return Err(DpsError::Cancelled.into());
    }
    progress.report(format!("Enrolling group {}", plan.group_id), None);
    let options = ClientOptions {
        ca_pem: plan.ca_pem.clone(),
        cancel: cancel.clone(),
        ..Default::default()
    };
    let client = ServiceClient::new(plan.cs.clone(), options)?;
    let (group, if_match) = match client.get_group(&plan.group_id).await {
        Ok(existing) => {
            let if_match = existing
                .etag
                .clone()
                .map(IfMatch::Etag)
                .unwrap_or(IfMatch::Any);
            (apply_to(&plan.settings, existing, &plan.ca_der), if_match)
        }
        Err(DpsError::NotFound(_)) => (
            apply_to(
                &plan.settings,
                EnrollmentGroup::x509_ca(&plan.group_id, &plan.ca_der),
                &plan.ca_der,
            ),
            IfMatch::None,
        ),
        Err(e) => return Err(e.into()),
    };
    let written = client.create_or_update_group(&group, if_match).await?;
    Ok(GroupEnrollReport {
        enrollment_group_id: written.enrollment_group_id.clone(),
        provisioning_status: if written.is_enabled() {
            ProvisioningStatus::Enabled
        } else {
            ProvisioningStatus::Disabled
        },
        iot_hubs: written.iot_hubs.clone(),
        ca_subject: cert::read(&plan.ca_der).and_then(|f| f.subject_cn),
        sha256_thumbprint: identity::sha256_thumbprint(&plan.ca_der),
        sha1_thumbprint: identity::sha1_thumbprint(&plan.ca_der),
        etag: written
            .etag
            .as_deref()
            .map(|e| e.trim_matches('"').to_string()),
        ca_cert: plan.ca_cert,
        warnings: plan.warnings,
        next_actions: Vec::new(),
    })
}

/// `existing` with its signing certificate replaced by `ca_der` and only what `settings` ask
/// changed (hubs, status); the rest (allocation, twin, ...) is kept.
fn apply_to(
    settings: &EnrollmentSettings,
    existing: EnrollmentGroup,
    ca_der: &[u8],
) -> EnrollmentGroup {
    let mut g = existing;
    g.attestation = EnrollmentGroup::x509_ca(&g.enrollment_group_id, ca_der).attestation;
    if let Some(hub) = &settings.iot_hub {
        g.iot_hubs = Some(vec![hub.clone()]);
        g.allocation_policy = Some("static".into());
    }
    if let Some(status) = settings.status() {
        g.provisioning_status = Some(status);
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dps::emulator::TestCa;
    use crate::error::DomainError;

    const CS: &str = "HostName=127.0.0.1:9;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=Y2FuYXJ5LWtleQ==";

    fn request(dir: &Path, ca: &[u8]) -> GroupEnrollRequest {
        let path = dir.join("ca.pem");
        std::fs::write(&path, cert::pem_encode(ca)).unwrap();
        GroupEnrollRequest {
            connection_string: Some(Zeroizing::new(CS.into())),
            group_id: "fleet-1".into(),
            ca_cert: Some(path),
            ..Default::default()
        }
    }

    fn refusal(r: GroupEnrollRequest) -> (Option<Input>, String) {
        match r.plan() {
            Ok(_) => panic!("planned"),
            Err(e) => (e.input(), e.to_string()),
        }
    }

    /// A CA certificate whose own key is replaced by `point` (the outline stays readable).
    fn with_key(der: &[u8], point: &[u8; 65]) -> Vec<u8> {
        let own = cert::read(der).unwrap().public_key.unwrap();
        let at = der.windows(65).position(|w| w == own).unwrap();
        let mut out = der.to_vec();
        out[at..at + 65].copy_from_slice(point);
        out
    }

    #[test]
    fn a_ca_certificate_plans_and_riot_certificates_are_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = TestCa::root("fleet-root").unwrap();
        let plan = request(dir.path(), &root.der).plan().unwrap();
        assert_eq!(
            (plan.group_id.as_str(), plan.ca_der.clone()),
            ("fleet-1", root.der.clone())
        );

        // The published RIoT root key, whatever certificate carries it.
        let riot_root = with_key(&root.der, &riot_root::PUBLISHED_ROOT_PUBLIC_KEY);
        let (input, msg) = refusal(request(dir.path(), &riot_root));
        assert_eq!(input, Some(Input::CaCert));
        assert!(
            msg.contains("ca.pem") && msg.contains("published development root key"),
            "{msg}"
        );

        // The DevKit's DeviceID and alias certificates.
        let uds = identity::Uds::parse(&"ab".repeat(32)).unwrap();
        let image = crate::provision::sample::image().unwrap();
        let id = identity::RegistrationId::parse("group-test").unwrap();
        let d = identity::derive(&uds, &image, &id).unwrap();
        let (input, msg) = refusal(request(dir.path(), &d.device_cert_der));
        assert_eq!(input, Some(Input::CaCert));
        assert!(
            msg.contains("DeviceID certificate") && msg.contains("fixed nonce"),
            "{msg}"
        );
        let (_, msg) = refusal(request(dir.path(), &d.alias_cert_der));
        assert!(msg.contains("alias certificate"), "{msg}");

        // A leaf is not a CA.
        let leaf = root.leaf("dev-1").unwrap();
        let (input, msg) = refusal(request(dir.path(), &leaf.der));
        assert_eq!(input, Some(Input::CaCert));
        assert!(msg.contains("not a CA"), "{msg}");
    }

    #[test]
    fn other_inputs_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let root = TestCa::root("fleet-root").unwrap();
        let mut r = request(dir.path(), &root.der);
        r.group_id = "bad id!".into();
        assert_eq!(refusal(r).0, Some(Input::Group));
        let mut r = request(dir.path(), &root.der);
        r.ca_cert = None;
        assert_eq!(refusal(r).0, Some(Input::CaCert));
        let mut r = request(dir.path(), &root.der);
        r.backend = EnrollBackend::Az;
        assert_eq!(refusal(r).0, Some(Input::Backend));
        let mut r = request(dir.path(), &root.der);
        r.settings.device_id = Some("d".into());
        assert_eq!(refusal(r).0, Some(Input::DeviceId));
        let mut r = request(dir.path(), &root.der);
        r.connection_string = None;
        assert_eq!(refusal(r).0, Some(Input::ConnectionString));
    }

    #[test]
    fn updating_keeps_what_is_not_asked_for() {
        let root = TestCa::root("r").unwrap();
        let mut existing = EnrollmentGroup::x509_ca("g", b"old");
        existing.provisioning_status = Some(ProvisioningStatus::Disabled);
        existing.allocation_policy = Some("hashed".into());
        existing.etag = Some("\"e\"".into());
        let g = apply_to(&EnrollmentSettings::default(), existing, &root.der);
        assert_eq!(g.signing_certificates_der(), vec![root.der.clone()]);
        assert!(!g.is_enabled());
        assert_eq!(g.allocation_policy.as_deref(), Some("hashed"));
        let enable = EnrollmentSettings {
            enable: true,
            ..Default::default()
        };
        assert!(apply_to(&enable, g, &root.der).is_enabled());
    }
}
