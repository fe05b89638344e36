//! A provisioning run as the adapters receive it (CLI flags, daemon params), turned into a
//! [`ProvisionPlan`] by one set of rules: defaults (certificate location, timeouts), the open
//! Wi-Fi rule, which image errors are the caller's, and every input validated before anything
//! is sent to the device or the service.

use super::{HubCheck, ProvisionError, ProvisionPlan, Upload, WifiSettings};
use crate::dps::enroll::EnrollmentSettings;
use crate::dps::{ClientOptions, ConnectionString};
use crate::error::{Input, InvalidInput};
use crate::flash::{BackendRequest, FlashImage};
use crate::identity::{RegistrationId, Uds};
use std::path::PathBuf;
use std::time::Duration;
use zeroize::Zeroizing;

/// How long to wait for the device's registration result unless told otherwise.
pub const DEFAULT_REGISTRATION_TIMEOUT: Duration = Duration::from_secs(90);
/// How long the user has to put the DevKit into configuration mode.
pub const CONSOLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The inputs of a run against a DevKit on a serial port. Secrets arrive as text already read
/// by the adapter (from a file, stdin or a request param) and are parsed here.
#[derive(Default)]
pub struct ProvisionRequest {
    pub port: Option<String>,
    /// The image; else the image of `build_dir` ([`crate::build::find_outputs`]).
    pub bin: Option<PathBuf>,
    pub build_dir: Option<PathBuf>,
    pub flash: BackendRequest,
    /// The DPS service connection string (its first non-empty line is used).
    pub connection_string: Option<Zeroizing<String>>,
    /// An IoT Hub connection string: check the device arrives in that hub.
    pub hub_connection_string: Option<Zeroizing<String>>,
    /// A CA certificate file to trust for the service (the DPS emulator's).
    pub ca_file: Option<PathBuf>,
    /// Wi-Fi to store on the DevKit. An SSID without a password is an open network.
    pub wifi_ssid: Option<String>,
    pub wifi_password: Option<Zeroizing<String>>,
    /// The UDS to set (read and checked by the adapter); `None` = generate one.
    pub uds: Option<Uds>,
    pub save_uds_to: Option<PathBuf>,
    pub registration_id: Option<String>,
    pub mac: Option<String>,
    /// The project whose state records the identity (required).
    pub project_dir: Option<PathBuf>,
    /// Where the alias certificate is written [default: the project directory].
    pub cert_dir: Option<PathBuf>,
    pub enrollment: EnrollmentSettings,
    /// [default: [`DEFAULT_REGISTRATION_TIMEOUT`]]
    pub registration_timeout: Option<Duration>,
}

/// A validated run, with what the user should know before it starts.
pub struct PlannedRun {
    pub plan: ProvisionPlan,
    pub warnings: Vec<String>,
}

fn connection_string(
    text: Option<&Zeroizing<String>>,
    input: Input,
) -> Result<Option<ConnectionString>, ProvisionError> {
    let Some(text) = text else { return Ok(None) };
    ConnectionString::parse_file_text(text)
        .map(Some)
        .map_err(|e| InvalidInput::new(input, e.to_string()).into())
}

impl ProvisionRequest {
    /// Validate every input; nothing is sent or written.
    pub fn plan(self) -> Result<PlannedRun, ProvisionError> {
        let invalid =
            |input, reason: &str| -> ProvisionError { InvalidInput::new(input, reason).into() };
        let port = self.port.clone().ok_or_else(|| {
            invalid(
                Input::Port,
                "is required: the DevKit's serial port (or run the simulated provisioning)",
            )
        })?;
        let dps = connection_string(self.connection_string.as_ref(), Input::ConnectionString)?
            .ok_or_else(|| {
                invalid(
                    Input::ConnectionString,
                    "is required: the DPS service connection string",
                )
            })?;
        let hub_cs = connection_string(
            self.hub_connection_string.as_ref(),
            Input::HubConnectionString,
        )?;
        let ca_pem = match &self.ca_file {
            Some(p) => {
                let name = format!("{} {:?}", Input::CaFile.label(), p.display().to_string());
                let bytes = crate::fsutil::read_bounded(p, &name, crate::fsutil::limits::CERT_FILE)
                    .map_err(|e| e.into_invalid(Input::CaFile))?;
                Some(String::from_utf8(bytes).map_err(|_| {
                    invalid(
                        Input::CaFile,
                        "is not UTF-8 text (expected a PEM certificate)",
                    )
                })?)
            }
            None => None,
        };
        let project = self
            .project_dir
            .clone()
            .ok_or_else(|| invalid(Input::ProjectDir, "is required"))?;
        self.enrollment.validate().map_err(|e| {
            use crate::error::DomainError;
            InvalidInput::new(
                DomainError::input(&e).unwrap_or(Input::DeviceId),
                e.to_string(),
            )
        })?;
        let backend = self.flash.backend()?;
        let image = FlashImage::from_inputs(self.bin.as_deref(), self.build_dir.as_deref())?;
        let map = image.map.clone().ok_or_else(|| {
            invalid(
                Input::Bin,
                "has no .map next to it (the identity is computed from the image and its map)",
            )
        })?;
        let wifi = match (&self.wifi_ssid, &self.wifi_password) {
            (Some(ssid), password) => Some(WifiSettings {
                ssid: ssid.clone(),
                password: password.clone().unwrap_or_default(),
            }),
            (None, Some(_)) => {
                return Err(invalid(
                    Input::WifiSsid,
                    "is required with a Wi-Fi password",
                ))
            }
            (None, None) => None,
        };
        let registration_id = self
            .registration_id
            .as_deref()
            .map(RegistrationId::parse)
            .transpose()?;
        // The image's own settings may name the device.
        let registration_id = registration_id.or_else(|| {
            image
                .dps
                .as_ref()
                .and_then(|d| d.registration_id.as_ref())
                .and_then(|r| RegistrationId::parse(r.as_str()).ok())
        });
        let mac = self
            .mac
            .as_deref()
            .map(crate::identity::normalize_mac)
            .transpose()?;
        if registration_id.is_none() && mac.is_none() {
            return Err(invalid(Input::RegistrationId, "is required, or the DevKit's MAC address (on its screen) for the automatic az-<mac>v<x>v<y>v<z>"));
        }
        // A UDS file is never overwritten (another device's secret?).
        if let Some(path) = &self.save_uds_to {
            crate::identity::uds::check_new_uds_file(path)?;
        }
        let mut warnings = Vec::new();
        if self.uds.is_none() && self.save_uds_to.is_none() {
            warnings.push(
                "the generated UDS is not saved: this certificate cannot be regenerated later"
                    .to_string(),
            );
        }
        let plan = ProvisionPlan {
            port: PathBuf::from(port),
            image_bin: image.bin.clone(),
            image_map: map,
            upload: Upload::Flash { backend, image },
            dps,
            client: ClientOptions {
                ca_pem,
                ..Default::default()
            },
            hub_check: hub_cs.map(HubCheck::ConnectionString),
            wifi,
            uds: self.uds,
            save_uds_to: self.save_uds_to,
            registration_id,
            mac,
            cert_dir: self.cert_dir.unwrap_or_else(|| project.clone()),
            project_root: Some(project),
            enrollment: self.enrollment,
            fault: None,
            ports: None,
            console_timeout: CONSOLE_TIMEOUT,
            registration_timeout: self
                .registration_timeout
                .unwrap_or(DEFAULT_REGISTRATION_TIMEOUT),
        };
        Ok(PlannedRun { plan, warnings })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::DomainError;

    fn request() -> ProvisionRequest {
        ProvisionRequest {
            port: Some("/dev/ttyACM0".into()),
            connection_string: Some(Zeroizing::new("HostName=x.azure-devices-provisioning.net;SharedAccessKeyName=p;SharedAccessKey=a2V5".into())),
            project_dir: Some("/tmp".into()),
            ..Default::default()
        }
    }

    #[test]
    fn missing_inputs_are_named_by_type() {
        let e = ProvisionRequest {
            port: None,
            ..request()
        }
        .plan()
        .err()
        .unwrap();
        assert_eq!(e.invalid_input().map(|i| i.input), Some(Input::Port));
        let e = ProvisionRequest {
            connection_string: None,
            ..request()
        }
        .plan()
        .err()
        .unwrap();
        assert_eq!(
            e.invalid_input().map(|i| i.input),
            Some(Input::ConnectionString)
        );
        let e = request().plan().err().unwrap();
        assert_eq!(e.invalid_input().map(|i| i.input), Some(Input::Bin), "{e}");
        assert!(e.is_invalid_input());
    }

    #[test]
    fn flags_of_another_backend_are_refused() {
        let mut r = request();
        r.flash.sim_dir = Some("/tmp/sim".into());
        let e = r.plan().err().unwrap();
        assert_eq!(
            e.invalid_input().map(|i| i.input),
            Some(Input::SimDir),
            "{e}"
        );
    }

    #[test]
    fn a_bad_connection_string_is_invalid_and_not_echoed() {
        let r = ProvisionRequest {
            hub_connection_string: Some(Zeroizing::new("SharedAccessKey=c2VjcmV0Y2FuYXJ5".into())),
            ..request()
        };
        let e = r.plan().err().unwrap();
        assert_eq!(
            e.invalid_input().map(|i| i.input),
            Some(Input::HubConnectionString),
            "{e}"
        );
        assert!(!e.to_string().contains("c2VjcmV0Y2FuYXJ5"));
    }
}
