//! Why a registration failed and what to do about it: one table from everything the device
//! said (DPS `errorCode`, the SDK's `PROV_DEVICE_RESULT_*`, its reason text, the HTTP status,
//! an earlier UDS or Wi-Fi failure) to a `reason` and a `hint` that names the next step.
//!
//! The result codes and their meaning come from the Azure IoT C SDK
//! (provisioning_client/inc/azure_prov_client/prov_device_ll_client.h and
//! provisioning_client/src/prov_device_ll_client.c: DPS error 400208 becomes
//! `PROV_DEVICE_RESULT_HUB_NOT_SPECIFIED`, 400209 `PROV_DEVICE_RESULT_UNAUTHORIZED`, any other
//! failed registration state `PROV_DEVICE_RESULT_DEV_AUTH_ERROR`, network and TLS failures
//! `PROV_DEVICE_RESULT_TRANSPORT`); the older DPS client named them `DPS_ERROR_*`.

/// The hint for DPS error 401002, the most common provisioning failure.
pub const HINT_401002: &str = "the enrolled certificate does not match this device's identity; run `devkit inspect-cert <enrolled.pem> --against <generated.pem>` to see which input differs (UDS, firmware .riot_core/.riot_fw, registration ID), then regenerate the certificate and re-enroll it with `devkit enroll`";
pub(super) const HINT_UDS: &str = "the device has no valid UDS: hold button A, press reset to enter configuration mode, then run `devkit set-uds --port <port> --generate --save-to <uds file>` (or --uds-file)";
pub(super) const HINT_WIFI: &str = "check the Wi-Fi name and password: enter configuration mode (hold A, press reset) and run `devkit set-wifi --port <port> --ssid <name> --password-stdin`";
const HINT_HUB_LINK: &str = "DPS could not create the device in its linked IoT hub: the linked hub's access policy or connection string in DPS is wrong or was regenerated. Re-link the hub (Azure portal: the DPS instance > Linked IoT hubs, or `az iot dps linked-hub create` with the hub's current `iothubowner` connection string), then press reset on the DevKit";
const HINT_NO_HUB: &str = "DPS has no IoT hub to assign the device to: link an IoT hub to the DPS instance (Azure portal: Linked IoT hubs, or `az iot dps linked-hub create`) and select it for the enrollment, then press reset on the DevKit";
const HINT_DISABLED: &str = "enable the individual enrollment (`devkit enroll` without --disabled, or in the Azure portal), then press reset";
const HINT_TRANSPORT: &str = "the device could not reach DPS (network, DNS, TLS or endpoint): check the Wi-Fi, that the network allows HTTPS (port 443) to the global endpoint, and the global endpoint and ID scope in the sketch's dps_config.h; then press reset. With tracing on, `devkit monitor --events` shows the HTTP exchange";
const HINT_TIMEOUT: &str = "DPS did not answer in time: check the network (Wi-Fi signal, firewall, proxy), then press reset to retry";
const HINT_RETRY: &str =
    "press reset to retry; if it persists, check the enrollment in the Azure portal";

/// Everything known about the failed attempt.
#[derive(Debug, Default, Clone)]
pub(super) struct Facts<'a> {
    pub error_code: Option<u32>,
    pub message: Option<&'a str>,
    pub http_status: Option<u16>,
    /// `PROV_DEVICE_RESULT_X` / `DPS_ERROR_X`, as `X`.
    pub result: Option<&'a str>,
    /// The registration state DPS reported (`failed`, `disabled`, `blacklisted`).
    pub dps_status: Option<&'a str>,
    pub uds_missing: bool,
    pub wifi_failed: bool,
}

/// `(reason, hint)` for a failed registration.
pub(super) fn diagnose(f: &Facts<'_>) -> (String, String) {
    let msg = f.message.map(|m| format!(": {m}")).unwrap_or_default();
    let lower_msg = f.message.unwrap_or("").to_ascii_lowercase();
    if let Some(c) = f.error_code {
        let (what, hint): (String, &str) = match c {
            401002 => (format!("DPS rejected the device certificate (errorCode 401002{msg}): the enrolled certificate does not match this device's identity"), HINT_401002),
            400208 => (format!("DPS found no IoT hub for the device (errorCode 400208{msg})"), HINT_NO_HUB),
            400209 => (format!("DPS could not register the device in the linked IoT hub (errorCode 400209{msg})"), HINT_HUB_LINK),
            _ if is_hub_unauthorized(&lower_msg) => (format!("DPS could not register the device in the linked IoT hub (errorCode {c}{msg})"), HINT_HUB_LINK),
            c if c / 1000 == 401 => (
                format!("DPS refused the device's credentials (errorCode {c}{msg})"),
                "check that an individual enrollment with this device's alias certificate exists (`devkit enroll`) and that the ID scope is right",
            ),
            c if c / 1000 == 404 => (
                format!("DPS has no enrollment for this registration ID (errorCode {c}{msg})"),
                "create the enrollment with `devkit enroll`, and check the ID scope compiled into the sketch",
            ),
            c if c / 1000 == 400 => (
                format!("DPS rejected the registration request (errorCode {c}{msg})"),
                "check the registration ID (1 to 64 of a-z, 0-9 and '-') and the ID scope",
            ),
            c if c / 1000 == 429 => (format!("DPS throttled the device (errorCode {c}{msg})"), "wait a minute, then press reset on the DevKit to try again"),
            c => (format!("DPS answered with errorCode {c}{msg}"), HINT_RETRY),
        };
        return (what, hint.into());
    }
    if is_hub_unauthorized(&lower_msg) {
        return (
            format!("DPS could not register the device in the linked IoT hub{msg}"),
            HINT_HUB_LINK.into(),
        );
    }
    if lower_msg.contains("invalid certificate") {
        return (format!("DPS rejected the device certificate{msg}: the enrolled certificate does not match this device's identity"), HINT_401002.into());
    }
    match f.dps_status {
        Some("disabled") => return (format!("the device's enrollment is disabled{msg}"), HINT_DISABLED.into()),
        Some("blacklisted") => return (format!("DPS has blocked this device{msg}"), "the enrollment or device is blocked in DPS: check the individual enrollment in the Azure portal (enable it, or re-create it with `devkit enroll`), then press reset".into()),
        _ => {}
    }
    if let Some(r) = f.result {
        return by_result(r, &msg);
    }
    if f.uds_missing {
        return (
            "the device has no valid UDS, so it has no identity to register with".into(),
            HINT_UDS.into(),
        );
    }
    if f.wifi_failed {
        return (
            "the device is not on the network (Wi-Fi failed)".into(),
            HINT_WIFI.into(),
        );
    }
    if !msg.is_empty() {
        return (format!("DPS registration failed{msg}"), HINT_RETRY.into());
    }
    match f.http_status {
        Some(s) if s >= 400 => (
            format!("DPS answered HTTP {s}"),
            "press reset to retry; if it persists, check the enrollment and the ID scope".into(),
        ),
        _ => (
            "registration failed before DPS answered (network, TLS or endpoint)".into(),
            HINT_TRANSPORT.into(),
        ),
    }
}

/// The DPS-to-hub link failure as DPS words it (`ErrorCode:IotHubUnauthorizedAccess;...`).
fn is_hub_unauthorized(lower_msg: &str) -> bool {
    lower_msg.contains("iothubunauthorized")
}

/// One reason and hint per `PROV_DEVICE_RESULT_*` (and the older `DPS_ERROR_*`) value.
fn by_result(result: &str, msg: &str) -> (String, String) {
    let code = |r: &str| format!("PROV_DEVICE_RESULT_{r}");
    let (what, hint): (String, &str) = match result {
        "DEV_AUTH_ERROR" => (
            format!("DPS refused the device's authentication ({}{msg}): the enrolled certificate probably does not match this device's identity", code(result)),
            HINT_401002,
        ),
        "DISABLED" => (format!("the device's enrollment is disabled ({}{msg})", code(result)), HINT_DISABLED),
        "UNAUTHORIZED" => (format!("DPS could not register the device in the linked IoT hub ({}{msg})", code(result)), HINT_HUB_LINK),
        "HUB_NOT_SPECIFIED" => (format!("DPS found no IoT hub for the device ({}{msg})", code(result)), HINT_NO_HUB),
        "TRANSPORT" | "TRANSMISSION" => (format!("the device could not talk to DPS ({}{msg})", code("TRANSPORT")), HINT_TRANSPORT),
        "TIMEOUT" => (format!("DPS did not answer in time ({}{msg})", code(result)), HINT_TIMEOUT),
        "PARSING" => (
            format!("the device could not understand DPS's reply ({}{msg})", code(result)),
            "turn tracing on and run `devkit monitor --events` to see the reply; a DevKit SDK older than the DPS API may need updating (rebuild and upload the sketch with the current AZ3166 package)",
        ),
        "KEY_ERROR" => (
            format!("the device could not use its key ({}{msg})", code(result)),
            "the device identity could not be loaded: check the UDS (`devkit set-uds` in configuration mode), then press reset; if the certificate was regenerated, re-enroll it with `devkit enroll`",
        ),
        "MEMORY" => (format!("the device ran out of memory while registering ({}{msg})", code(result)), "press reset to retry; if it persists, reduce the sketch's memory use (large buffers, trace output)"),
        "INVALID_ARG" => (
            format!("the sketch gave the DPS client an invalid argument ({}{msg})", code(result)),
            "check the global endpoint, ID scope and registration ID in the sketch's dps_config.h, then rebuild and upload it",
        ),
        "INVALID_STATE" => (format!("the DPS client was used out of order ({}{msg})", code(result)), "press reset to start the registration again"),
        "ERROR" | "SERVER_STATUS" => (
            format!("DPS registration failed ({}{msg})", code(result)),
            "DPS may have blocked the device or the enrollment may be disabled: check the individual enrollment in the Azure portal (or re-create it with `devkit enroll`), then press reset",
        ),
        other => (format!("DPS registration failed (result {other}{msg})"), HINT_RETRY),
    };
    (what, hint.into())
}

/// `PROV_DEVICE_RESULT_X` values that are not failures.
pub(super) fn is_success_result(result: &str) -> bool {
    matches!(result, "OK" | "SUCCESS")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sdk_result_has_its_own_hint() {
        let results = [
            "INVALID_ARG",
            "MEMORY",
            "PARSING",
            "TRANSPORT",
            "INVALID_STATE",
            "DEV_AUTH_ERROR",
            "TIMEOUT",
            "KEY_ERROR",
            "ERROR",
            "HUB_NOT_SPECIFIED",
            "UNAUTHORIZED",
            "DISABLED",
        ];
        let mut hints = std::collections::HashMap::new();
        for r in results {
            let (reason, hint) = diagnose(&Facts {
                result: Some(r),
                ..Facts::default()
            });
            assert!(
                reason.contains(&format!("PROV_DEVICE_RESULT_{r}")),
                "{reason}"
            );
            hints.entry(hint).or_insert_with(Vec::new).push(r);
        }
        // Every result names its own cause.
        assert_eq!(hints.len(), results.len(), "{hints:?}");
    }

    #[test]
    fn the_hub_link_failure_points_at_the_linked_hub() {
        let (reason, hint) = diagnose(&Facts {
            message: Some("{\"Message\":\"ErrorCode:IotHubUnauthorizedAccess;Unauthorized\"}"),
            ..Facts::default()
        });
        assert!(reason.contains("linked IoT hub"), "{reason}");
        assert!(
            hint.contains("Linked IoT hubs") && hint.contains("connection string"),
            "{hint}"
        );
        assert_eq!(
            diagnose(&Facts {
                error_code: Some(400209),
                ..Facts::default()
            })
            .1,
            hint
        );
    }

    #[test]
    fn the_error_code_wins_over_the_sdk_result() {
        let (_, hint) = diagnose(&Facts {
            error_code: Some(401002),
            result: Some("TRANSPORT"),
            ..Facts::default()
        });
        assert_eq!(hint, HINT_401002);
    }
}
