//! Enrollment groups as DPS exchanges them (service API `/enrollmentGroups`): one enrollment
//! for every device whose X.509 chain leads to the group's signing certificate (a root or an
//! intermediate CA).

use super::enrollment::{ProvisioningStatus, X509CertificateWithInfo, X509Certificates};
use serde::{Deserialize, Serialize};

/// An enrollment group. Fields this project does not use (initial twin, reprovision policy,
/// custom allocation, ...) are kept in `extra` and sent back unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrollmentGroup {
    pub enrollment_group_id: String,
    pub attestation: GroupAttestation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_status: Option<ProvisioningStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iot_hubs: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_date_time_utc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_date_time_utc: Option<String>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A group's attestation mechanism (`type` `x509` with signing certificates, for X.509 CA
/// groups).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupAttestation {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x509: Option<GroupX509Attestation>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// `signingCertificates` (the CA certificate itself) or `caReferences` (names of CA
/// certificates registered with DPS).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupX509Attestation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_certificates: Option<X509Certificates>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl EnrollmentGroup {
    /// An enabled X.509 CA group whose signing certificate is `ca_der`.
    pub fn x509_ca(enrollment_group_id: &str, ca_der: &[u8]) -> EnrollmentGroup {
        EnrollmentGroup {
            enrollment_group_id: enrollment_group_id.to_string(),
            attestation: GroupAttestation {
                kind: "x509".into(),
                x509: Some(GroupX509Attestation {
                    signing_certificates: Some(X509Certificates {
                        primary: Some(X509CertificateWithInfo {
                            certificate: Some(super::cert::pem_encode(ca_der)),
                            info: None,
                        }),
                        secondary: None,
                    }),
                    extra: Default::default(),
                }),
                extra: Default::default(),
            },
            provisioning_status: Some(ProvisioningStatus::Enabled),
            allocation_policy: None,
            iot_hubs: None,
            etag: None,
            created_date_time_utc: None,
            last_updated_date_time_utc: None,
            extra: Default::default(),
        }
    }

    /// The signing certificates (primary, then secondary), as stored.
    pub fn signing_certificates_mut(
        &mut self,
    ) -> impl Iterator<Item = &mut X509CertificateWithInfo> {
        self.attestation
            .x509
            .as_mut()
            .and_then(|x| x.signing_certificates.as_mut())
            .into_iter()
            .flat_map(|c| [c.primary.as_mut(), c.secondary.as_mut()])
            .flatten()
    }

    /// The DER of each signing certificate given (primary first).
    pub fn signing_certificates_der(&self) -> Vec<Vec<u8>> {
        self.attestation
            .x509
            .as_ref()
            .and_then(|x| x.signing_certificates.as_ref())
            .into_iter()
            .flat_map(|c| [c.primary.as_ref(), c.secondary.as_ref()])
            .flatten()
            .filter_map(|c| super::cert::der_from_pem_or_base64(c.certificate.as_deref()?))
            .collect()
    }

    pub fn is_enabled(&self) -> bool {
        self.provisioning_status != Some(ProvisioningStatus::Disabled)
    }
}
