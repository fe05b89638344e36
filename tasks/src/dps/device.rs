//! Device-side DPS registration over HTTPS, exactly as the DevKit firmware does it.
//!
//! CONTRACT: the virtual DevKit (serial issue) calls [`register_like_device`] in user mode
//! when its image carries a DPS configuration; the DPS issue implements it. It logs through
//! `log` the same lines the real device prints (devkit-facts.md §6), including the HTTP trace.
//! Lines logged: `Info: >>>Provisioning Status: PROV_DEVICE_REG_STATUS_<S>` and
//! `Registration status: <S>` (CONNECTED, REGISTERING, ASSIGNING), the trace
//! (`PUT|GET <path>?api-version=2018-09-01-preview HTTP/1.1`, `HTTP Status: <code>`, the JSON
//! reply), then `Registration Information received from service: <hub>!` or
//! `Failure encountered on registration!`. The sketch's `registration failed!` is the
//! caller's line (the virtual DevKit prints it after a failed outcome, as the sketch does).

use std::time::Duration;
use zeroize::Zeroizing;

/// What the device has at registration time.
pub struct DeviceRegistrationConfig {
    /// `host` or `host:port`.
    pub global_endpoint: String,
    pub id_scope: String,
    pub registration_id: String,
    /// The whole TLS client chain: the DevKit's individual RIoT HSM presents its alias
    /// certificate alone, never the DeviceID certificate (docs/identity.md, "What the device
    /// presents").
    pub alias_cert_der: Vec<u8>,
    /// Alias private key, PKCS#8 DER.
    pub alias_key_pkcs8: Zeroizing<Vec<u8>>,
    /// PEM of the CA to trust for the server; `None` = public roots.
    pub trusted_ca_pem: Option<String>,
}

/// How registration ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationOutcome {
    Assigned {
        assigned_hub: String,
        device_id: String,
    },
    Failed {
        http_status: Option<u16>,
        error_code: Option<u32>,
        message: String,
    },
}

/// Errors before any DPS answer (connection, TLS, protocol).
#[derive(Debug, thiserror::Error)]
pub enum DeviceRegistrationError {
    #[error("cannot reach DPS at {endpoint}: {reason}")]
    Connect { endpoint: String, reason: String },
    #[error("DPS protocol error: {0}")]
    Protocol(String),
}

/// The api-version the DevKit firmware sends.
pub const DEVICE_API_VERSION: &str = "2018-09-01-preview";
/// The firmware's user agent, under its (sic) header name `UserAgent`.
pub const USER_AGENT: &str = "prov_device_client/1.0";
/// Polls before giving up on an operation that stays "assigning".
const MAX_POLLS: u32 = 30;
/// Register attempts when throttled (429).
const MAX_THROTTLED: u32 = 5;
/// Poll interval when the service sends no usable `Retry-After` (the C SDK's default).
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(2);
const MAX_RETRY_AFTER: Duration = Duration::from_secs(20);

fn status_lines(log: &mut (dyn FnMut(String) + Send), status: &str) {
    log(format!(
        "Info: >>>Provisioning Status: PROV_DEVICE_REG_STATUS_{status}"
    ));
    log(format!("Registration status: {status}"));
}

fn retry_after(resp: &reqwest::Response) -> Duration {
    super::retry::parse_retry_after(
        resp.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
    )
    .unwrap_or(DEFAULT_RETRY_AFTER)
    .min(MAX_RETRY_AFTER)
}

fn failed(
    log: &mut (dyn FnMut(String) + Send),
    http_status: Option<u16>,
    body: &[u8],
    status_field: Option<&str>,
) -> RegistrationOutcome {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let state = json.as_ref().and_then(|j| j.get("registrationState"));
    let pick = |k: &str| {
        state
            .and_then(|s| s.get(k))
            .or_else(|| json.as_ref().and_then(|j| j.get(k)))
    };
    let error_code = pick("errorCode").and_then(|v| v.as_u64()).map(|c| c as u32);
    let message = pick("errorMessage")
        .or_else(|| pick("message"))
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .or_else(|| status_field.map(|s| format!("registration status {s}")))
        .unwrap_or_else(|| format!("HTTP {}", http_status.unwrap_or(0)));
    // The DPS library's line; the sketch's own `registration failed!` follows from the caller.
    log("Failure encountered on registration!".into());
    RegistrationOutcome::Failed {
        http_status,
        error_code,
        message,
    }
}

/// Register like the DevKit: PUT register, poll operations until assigned or failed.
pub async fn register_like_device(
    config: DeviceRegistrationConfig,
    log: &mut (dyn FnMut(String) + Send),
) -> Result<RegistrationOutcome, DeviceRegistrationError> {
    let endpoint = config.global_endpoint.clone();
    let connect_err = |reason: String| DeviceRegistrationError::Connect {
        endpoint: endpoint.clone(),
        reason,
    };
    let tls = super::tls::client_config_with_cert(
        config.trusted_ca_pem.as_deref(),
        &config.alias_cert_der,
        &config.alias_key_pkcs8,
    )
    .map_err(|e| connect_err(e.to_string()))?;
    let http = super::tls::http_client(tls, Duration::from_secs(30))
        .map_err(|e| connect_err(e.to_string()))?;
    let enc = super::sas::url_encode;
    let base = format!("https://{}", config.global_endpoint);
    let reg_path = format!(
        "/{}/registrations/{}",
        enc(&config.id_scope),
        enc(&config.registration_id)
    );
    let send = |req: reqwest::RequestBuilder| {
        req.header("Accept", "application/json")
            .header("Content-Type", "application/json; charset=utf-8")
            .header("UserAgent", USER_AGENT)
            .send()
    };
    let describe = super::tls::describe;

    status_lines(log, "CONNECTED");
    let register_target = format!("{reg_path}/register?api-version={DEVICE_API_VERSION}");
    let body = serde_json::json!({ "registrationId": config.registration_id }).to_string();
    let mut throttled = 0;
    let (operation_id, mut wait) = loop {
        log(format!("PUT {register_target} HTTP/1.1"));
        let resp = send(
            http.put(format!("{base}{register_target}"))
                .body(body.clone()),
        )
        .await
        .map_err(|e| connect_err(describe(e)))?;
        let status = resp.status().as_u16();
        let wait = retry_after(&resp);
        let bytes = resp.bytes().await.map_err(|e| connect_err(describe(e)))?;
        log(format!("HTTP Status: {status}"));
        log(String::from_utf8_lossy(&bytes).into_owned());
        if status == 429 && throttled + 1 < MAX_THROTTLED {
            throttled += 1;
            tokio::time::sleep(wait).await;
            continue;
        }
        if status != 200 && status != 202 {
            return Ok(failed(log, Some(status), &bytes, None));
        }
        let json: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            DeviceRegistrationError::Protocol(format!("register reply is not JSON: {e}"))
        })?;
        if let Some(outcome) = finished(log, status, &json, &bytes) {
            return Ok(outcome);
        }
        let op = json["operationId"].as_str().ok_or_else(|| {
            DeviceRegistrationError::Protocol("register reply has no operationId".into())
        })?;
        break (op.to_string(), wait);
    };
    status_lines(log, "REGISTERING");

    let op_target = format!(
        "{reg_path}/operations/{}?api-version={DEVICE_API_VERSION}",
        enc(&operation_id)
    );
    for poll in 0..MAX_POLLS {
        tokio::time::sleep(wait).await;
        log(format!("GET {op_target} HTTP/1.1"));
        let resp = send(http.get(format!("{base}{op_target}")))
            .await
            .map_err(|e| connect_err(describe(e)))?;
        let status = resp.status().as_u16();
        wait = retry_after(&resp);
        let bytes = resp.bytes().await.map_err(|e| connect_err(describe(e)))?;
        log(format!("HTTP Status: {status}"));
        log(String::from_utf8_lossy(&bytes).into_owned());
        if status == 429 {
            continue;
        }
        if status != 200 && status != 202 {
            return Ok(failed(log, Some(status), &bytes, None));
        }
        let json: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            DeviceRegistrationError::Protocol(format!("operation reply is not JSON: {e}"))
        })?;
        if let Some(outcome) = finished(log, status, &json, &bytes) {
            return Ok(outcome);
        }
        if poll == 0 {
            status_lines(log, "ASSIGNING");
        }
    }
    Err(DeviceRegistrationError::Protocol(format!(
        "still assigning after {MAX_POLLS} polls"
    )))
}

/// `Some` when the reply ends the registration (assigned or any final failure status).
fn finished(
    log: &mut (dyn FnMut(String) + Send),
    http_status: u16,
    json: &serde_json::Value,
    body: &[u8],
) -> Option<RegistrationOutcome> {
    match json["status"].as_str().unwrap_or("assigning") {
        "assigning" | "unassigned" => None,
        "assigned" => {
            let state = &json["registrationState"];
            match (state["assignedHub"].as_str(), state["deviceId"].as_str()) {
                (Some(hub), Some(device)) => {
                    log(format!(
                        "Registration Information received from service: {hub}!"
                    ));
                    Some(RegistrationOutcome::Assigned {
                        assigned_hub: hub.to_string(),
                        device_id: device.to_string(),
                    })
                }
                // The C SDK fails to parse an assignment without these.
                _ => Some(failed(
                    log,
                    Some(http_status),
                    body,
                    Some("assigned without assignedHub/deviceId"),
                )),
            }
        }
        other => Some(failed(log, Some(http_status), body, Some(other))),
    }
}
