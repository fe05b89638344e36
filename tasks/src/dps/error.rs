//! DPS (and IoT Hub) service errors, typed so callers can react and users get a hint.

use crate::error::{DomainError, ErrorKind, Input, InvalidInput, NextAction, NextStep};

impl DomainError for DpsError {
    fn kind(&self) -> ErrorKind {
        match self {
            DpsError::Invalid(_) | DpsError::ConnectionString(_) => ErrorKind::InvalidInput,
            DpsError::Cancelled => ErrorKind::Cancelled,
            DpsError::AzNotFound => ErrorKind::NotFound,
            _ => ErrorKind::Dps,
        }
    }
    fn invalid_input(&self) -> Option<&InvalidInput> {
        match self {
            DpsError::Invalid(i) => Some(i),
            _ => None,
        }
    }
    fn next_actions(&self) -> Vec<NextStep> {
        match self {
            DpsError::Unauthorized(_) => vec![NextStep::new(NextAction::ConfigureDps)],
            DpsError::AzNotFound => vec![
                NextStep::with_detail(NextAction::InstallToolchain, "az"),
                NextStep::new(NextAction::ConfigureDps),
            ],
            DpsError::EtagMismatch(_) | DpsError::Throttled(_) | DpsError::Transport { .. } => {
                vec![NextStep::new(NextAction::Retry)]
            }
            _ => Vec::new(),
        }
    }
    /// The service's answers are about the service API (enrollments, the hub registry), not
    /// the device's registration, so the variant speaks first: a 401 here is the connection
    /// string's key (the emulator and DPS answer it with 401002, whose device-side meaning,
    /// a certificate mismatch, would mislead). Other error codes mean what
    /// [`hint_for_error_code`] says.
    fn hint(&self) -> Option<String> {
        let hint = match self {
            DpsError::Unauthorized(_) => "check the connection string's SharedAccessKey and policy: a shared access policy of this DPS with enrollment write permission (such as provisioningserviceowner)",
            DpsError::EtagMismatch(_) => "someone changed the enrollment meanwhile: enroll again, which reads the enrollment as it is now and changes only what you ask",
            DpsError::Throttled(_) => "DPS limits service operations per minute: wait a minute and try again",
            _ => return self
                .service_error()
                .and_then(|s| s.error_code)
                .and_then(hint_for_error_code)
                .map(str::to_string),
        };
        Some(hint.to_string())
    }
}

/// What a DPS or IoT Hub error body says: `{"errorCode":..,"trackingId":..,"message":..}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    pub status: u16,
    pub error_code: Option<u32>,
    pub message: String,
    pub tracking_id: Option<String>,
}

impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if let Some(code) = self.error_code {
            write!(f, ", errorCode {code}")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(t) = &self.tracking_id {
            write!(f, " (trackingId {t})")?;
        }
        Ok(())
    }
}

impl ServiceError {
    /// Build from a status, the `x-ms-error-code` header and a body (JSON or not).
    pub fn from_response(status: u16, header_code: Option<&str>, body: &[u8]) -> ServiceError {
        let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let field = |k: &str| json.as_ref().and_then(|j| j.get(k));
        let error_code = field("errorCode")
            .and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .map(|c| c as u32)
            .or_else(|| header_code.and_then(|h| h.parse().ok()));
        let message = field("message")
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .or_else(|| {
                header_code
                    .filter(|h| h.parse::<u32>().is_err())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| {
                // A non-JSON body: keep a short printable prefix (redacted below).
                String::from_utf8_lossy(body)
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect()
            });
        let tracking_id = field("trackingId")
            .and_then(|v| v.as_str())
            .map(str::to_string);
        // The reply may echo the request's SAS token (a proxy, a misbehaving service).
        ServiceError {
            status,
            error_code,
            message: super::reply::redact(&message),
            tracking_id: tracking_id.map(|t| super::reply::redact(&t)),
        }
    }
}

/// Errors from the DPS service client, the az backend and the IoT Hub client.
#[derive(Debug, thiserror::Error)]
pub enum DpsError {
    /// The caller's input (registration ID, certificate, ...) is invalid; CLI exit 2.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    #[error(transparent)]
    ConnectionString(#[from] super::connection_string::ConnectionStringError),
    /// 401/403: the SAS key or policy is wrong.
    #[error("the service refused the credentials ({0})")]
    Unauthorized(ServiceError),
    #[error("not found ({0})")]
    NotFound(ServiceError),
    /// 412: the enrollment changed since its ETag was read.
    #[error("the enrollment was changed by someone else ({0})")]
    EtagMismatch(ServiceError),
    /// 429 after all retries.
    #[error("the service is throttling requests ({0})")]
    Throttled(ServiceError),
    /// Any other error answer.
    #[error("the service refused the request ({0})")]
    Rejected(ServiceError),
    #[error("cannot reach {endpoint}: {reason}")]
    Transport { endpoint: String, reason: String },
    #[error("unexpected answer from {endpoint}: {reason}")]
    Protocol { endpoint: String, reason: String },
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("cancelled")]
    Cancelled,
    #[error("az CLI: {0}")]
    Az(String),
    /// The az backend was chosen and `az` is not on PATH.
    #[error("`az` (Azure CLI) is not on PATH: install it with its azure-iot extension, or enroll through the DPS REST API with the service connection string")]
    AzNotFound,
}

impl DpsError {
    pub(crate) fn invalid(input: Input, reason: impl Into<String>) -> Self {
        DpsError::Invalid(InvalidInput::new(input, reason))
    }
    /// Map an error answer to its variant.
    pub fn from_service(e: ServiceError) -> DpsError {
        match e.status {
            401 | 403 => DpsError::Unauthorized(e),
            404 => DpsError::NotFound(e),
            412 => DpsError::EtagMismatch(e),
            429 => DpsError::Throttled(e),
            _ => DpsError::Rejected(e),
        }
    }
    /// The service error behind this one, if any.
    pub fn service_error(&self) -> Option<&ServiceError> {
        match self {
            DpsError::Unauthorized(e)
            | DpsError::NotFound(e)
            | DpsError::EtagMismatch(e)
            | DpsError::Throttled(e)
            | DpsError::Rejected(e) => Some(e),
            _ => None,
        }
    }
}

/// What to tell the user about a DPS error code (dps-api.md §6), when we know.
pub fn hint_for_error_code(code: u32) -> Option<&'static str> {
    Some(match code {
        401002 => "the certificate the device presented does not match the enrolled one: the device's UDS, registration ID or firmware (.riot_fw code, hence FWID) differs from what the certificate was generated from; regenerate the certificate from the image on the device and the UDS set on it, then enroll again",
        400004 => "invalid registration ID: DevKit registration IDs are 1-64 characters of lowercase letters, digits and '-'",
        401 | 401000 => "the device is not authorised: check that an individual enrollment exists for this registration ID",
        403 | 403000 | 403001 => "the enrollment is disabled or the device is blocked: enable the enrollment",
        404 | 404201 | 404202 => "no enrollment was found for this registration ID: enroll the device's alias certificate first",
        429 | 429001 | 429002 => "DPS is throttling registrations: wait and reset the device",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_error_bodies_and_headers() {
        let e = ServiceError::from_response(401, None, br#"{"errorCode":401002,"trackingId":"t-1","message":"Invalid certificate","timestampUtc":"x"}"#);
        assert_eq!(e.error_code, Some(401002));
        assert_eq!(
            e.to_string(),
            "HTTP 401, errorCode 401002: Invalid certificate (trackingId t-1)"
        );
        assert!(matches!(
            DpsError::from_service(e),
            DpsError::Unauthorized(_)
        ));
        let e = ServiceError::from_response(412, Some("412"), b"");
        assert_eq!(e.error_code, Some(412));
        assert!(matches!(
            DpsError::from_service(e),
            DpsError::EtagMismatch(_)
        ));
        let e = ServiceError::from_response(500, Some("ServerError"), b"<html>\n");
        assert_eq!(e.message, "ServerError");
        assert!(hint_for_error_code(401002).unwrap().contains("UDS"));
    }

    /// A service-side 401 is the key, whatever its error code says on the device side.
    #[test]
    fn hints_come_from_the_variant_then_the_error_code() {
        let e = |status, code: u32| {
            DpsError::from_service(ServiceError {
                status,
                error_code: Some(code),
                message: String::new(),
                tracking_id: None,
            })
        };
        let key = e(401, 401002).hint().unwrap();
        assert!(
            key.contains("SharedAccessKey") && !key.contains("UDS"),
            "{key}"
        );
        assert!(e(400, 400004).hint().unwrap().contains("registration ID"));
        assert!(e(412, 412).hint().unwrap().contains("enroll again"));
        assert!(e(500, 500000).hint().is_none());
        assert!(DpsError::Cancelled.hint().is_none());
    }
}
