//! What the individual enrollment holds besides the certificate, and writing it through the
//! REST API without wiping what someone else set.

use super::EnrollError;
use crate::dps::enrollment::{IndividualEnrollment, ProvisioningStatus};
use crate::dps::{DpsError, IfMatch, ServiceClient};
use crate::error::Input;

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
        if self.disabled && self.enable {
            return Err(EnrollError::ContradictoryStatus);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::DomainError;

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
        let both = EnrollmentSettings {
            disabled: true,
            enable: true,
            ..Default::default()
        };
        assert!(both.validate().unwrap_err().is_invalid_input());
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
}
