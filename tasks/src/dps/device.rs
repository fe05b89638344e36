//! Device-side DPS registration over HTTPS, exactly as the DevKit firmware does it.
//!
//! CONTRACT: the virtual DevKit (serial issue) calls [`register_like_device`] in user mode
//! when its image carries a DPS configuration; the DPS issue implements it. It logs through
//! `log` the same lines the real device prints (devkit-facts.md §6), including the HTTP trace.

use zeroize::Zeroizing;

/// What the device has at registration time.
pub struct DeviceRegistrationConfig {
    /// `host` or `host:port`.
    pub global_endpoint: String,
    pub id_scope: String,
    pub registration_id: String,
    pub alias_cert_der: Vec<u8>,
    /// Alias private key, PKCS#8 DER.
    pub alias_key_pkcs8: Zeroizing<Vec<u8>>,
    /// PEM of the CA to trust for the server; `None` = public roots.
    pub trusted_ca_pem: Option<String>,
}

/// How registration ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationOutcome {
    Assigned { assigned_hub: String, device_id: String },
    Failed { http_status: Option<u16>, error_code: Option<u32>, message: String },
}

/// Errors before any DPS answer (connection, TLS, protocol).
#[derive(Debug, thiserror::Error)]
pub enum DeviceRegistrationError {
    #[error("cannot reach DPS at {endpoint}: {reason}")]
    Connect { endpoint: String, reason: String },
    #[error("DPS protocol error: {0}")]
    Protocol(String),
}

/// Register like the DevKit: PUT register, poll operations until assigned or failed.
pub async fn register_like_device(
    config: DeviceRegistrationConfig,
    log: &mut (dyn FnMut(String) + Send),
) -> Result<RegistrationOutcome, DeviceRegistrationError> {
    let _ = (config, log);
    todo!("DPS issue")
}
