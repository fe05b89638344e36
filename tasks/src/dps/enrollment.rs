//! Individual enrollment documents as DPS exchanges them (dps-api.md §1).

use serde::{Deserialize, Serialize};

/// `enabled` / `disabled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProvisioningStatus {
    Enabled,
    Disabled,
}

/// An individual enrollment. Unknown fields from the service are kept in `extra` so a
/// read-modify-write does not drop them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndividualEnrollment {
    pub registration_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    pub attestation: Attestation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_status: Option<ProvisioningStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iot_hubs: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_date_time_utc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_date_time_utc: Option<String>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attestation {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x509: Option<X509Attestation>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct X509Attestation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificates: Option<X509Certificates>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct X509Certificates {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<X509CertificateWithInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secondary: Option<X509CertificateWithInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct X509CertificateWithInfo {
    /// PEM text or bare base64 DER.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<X509CertificateInfo>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct X509CertificateInfo {
    #[serde(default)]
    pub subject_name: String,
    #[serde(default)]
    pub sha1_thumbprint: String,
    #[serde(default)]
    pub sha256_thumbprint: String,
    #[serde(default)]
    pub issuer_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before_utc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after_utc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
}

impl IndividualEnrollment {
    /// An X.509 individual enrollment for an alias certificate (sent as PEM, as the Azure CLI does).
    pub fn x509(registration_id: &str, cert_der: &[u8]) -> IndividualEnrollment {
        IndividualEnrollment {
            registration_id: registration_id.to_string(),
            device_id: None,
            attestation: Attestation {
                kind: "x509".into(),
                x509: Some(X509Attestation {
                    client_certificates: Some(X509Certificates {
                        primary: Some(X509CertificateWithInfo {
                            certificate: Some(super::cert::pem_encode(cert_der)),
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
            capabilities: Some(serde_json::json!({"iotEdge": false})),
            etag: None,
            created_date_time_utc: None,
            last_updated_date_time_utc: None,
            extra: Default::default(),
        }
    }

    /// The primary X.509 certificate entry.
    pub fn primary_certificate(&self) -> Option<&X509CertificateWithInfo> {
        self.attestation
            .x509
            .as_ref()?
            .client_certificates
            .as_ref()?
            .primary
            .as_ref()
    }

    /// The primary certificate's DER, when the document carries the certificate (PEM or base64).
    pub fn primary_certificate_der(&self) -> Option<Vec<u8>> {
        super::cert::der_from_pem_or_base64(self.primary_certificate()?.certificate.as_deref()?)
    }

    /// Upper-case SHA-256 thumbprint: from `info` when present, else computed from the certificate.
    pub fn sha256_thumbprint(&self) -> Option<String> {
        let primary = self.primary_certificate()?;
        match &primary.info {
            Some(info) if !info.sha256_thumbprint.is_empty() => {
                Some(info.sha256_thumbprint.to_ascii_uppercase())
            }
            _ => self
                .primary_certificate_der()
                .map(|d| crate::identity::sha256_thumbprint(&d)),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.provisioning_status != Some(ProvisioningStatus::Disabled)
    }
}

/// `mode` of a bulk operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BulkMode {
    Create,
    Update,
    UpdateIfMatchETag,
    Delete,
}

/// A bulk call's answer (`{"isSuccessful":..,"errors":[..]}`), merged over all chunks.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkResult {
    pub is_successful: bool,
    #[serde(default)]
    pub errors: Vec<BulkError>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkError {
    pub registration_id: String,
    #[serde(default)]
    pub error_code: Option<u32>,
    #[serde(default)]
    pub error_status: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_like_the_documented_body_and_keeps_unknown_fields() {
        let mut e =
            IndividualEnrollment::x509("az-c0bdd1a2b3c4v1v6v2", &[0x30, 0x03, 0x02, 0x01, 0x01]);
        e.iot_hubs = Some(vec!["myhub.azure-devices.net".into()]);
        e.allocation_policy = Some("static".into());
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["attestation"]["type"], "x509");
        assert_eq!(v["provisioningStatus"], "enabled");
        assert_eq!(v["iotHubs"][0], "myhub.azure-devices.net");
        assert!(
            v["attestation"]["x509"]["clientCertificates"]["primary"]["certificate"]
                .as_str()
                .unwrap()
                .starts_with("-----BEGIN CERTIFICATE-----\n")
        );
        assert!(v.get("etag").is_none());
        let mut v2 = v.clone();
        v2["reprovisionPolicy"] = serde_json::json!({"updateHubAssignment": true});
        let back: IndividualEnrollment = serde_json::from_value(v2.clone()).unwrap();
        assert_eq!(serde_json::to_value(&back).unwrap(), v2);
        assert_eq!(
            back.primary_certificate_der().unwrap(),
            vec![0x30, 0x03, 0x02, 0x01, 0x01]
        );
    }
}
