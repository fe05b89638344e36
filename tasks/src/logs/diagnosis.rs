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

use crate::error::NextAction::{self, *};
use crate::error::NextStep;

/// What to tell the user: a sentence for the terminal and the editor alike (no CLI flags or
/// subcommands) and the typed next actions each adapter renders (commands in the terminal,
/// buttons in the editor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hint {
    pub text: &'static str,
    pub next: &'static [NextAction],
}

impl Hint {
    const fn new(text: &'static str, next: &'static [NextAction]) -> Hint {
        Hint { text, next }
    }
    /// The next actions as the events carry them.
    pub fn next_steps(&self) -> Vec<NextStep> {
        self.next.iter().map(|a| NextStep::new(*a)).collect()
    }
}

/// The hint for DPS error 401002, the most common provisioning failure.
pub const HINT_401002: Hint = Hint::new("the enrolled certificate does not match this device's identity: compare the enrolled certificate with one generated now to see which input differs (UDS, firmware .riot_core/.riot_fw, registration ID), then regenerate the certificate and update the enrollment", &[RegenerateCert, Enroll]);
pub(super) const HINT_UDS: Hint = Hint::new("the device has no valid UDS: hold button A, press reset to enter configuration mode, then set a UDS on it (a new one, kept in a file, or the device's own)", &[EnterConfigMode, SetUds]);
pub(super) const HINT_WIFI: Hint = Hint::new("check the Wi-Fi name and password: enter configuration mode (hold A, press reset) and store them on the DevKit again", &[EnterConfigMode]);
const HINT_HUB_LINK: Hint = Hint::new("DPS could not create the device in its linked IoT hub: the linked hub's access policy or connection string in DPS is wrong or was regenerated. Re-link the hub (Azure portal: the DPS instance > Linked IoT hubs, or `az iot dps linked-hub create` with the hub's current `iothubowner` connection string), then press reset on the DevKit", &[]);
const HINT_NO_HUB: Hint = Hint::new("DPS has no IoT hub to assign the device to: link an IoT hub to the DPS instance (Azure portal: Linked IoT hubs, or `az iot dps linked-hub create`) and select it for the enrollment, then press reset on the DevKit", &[Enroll]);
const HINT_DISABLED: Hint = Hint::new("enable the individual enrollment (enroll the device again, enabled, or enable it in the Azure portal), then press reset", &[Enroll]);
const HINT_TRANSPORT: Hint = Hint::new("the device could not reach DPS (network, DNS, TLS or endpoint): check the Wi-Fi, that the network allows HTTPS (port 443) to the global endpoint, and the global endpoint and ID scope in the sketch's dps_config.h; then press reset. With tracing on, the device's log events show the HTTP exchange", &[CheckSetup, ConfigureDps]);
const HINT_TIMEOUT: Hint = Hint::new("DPS did not answer in time: check the network (Wi-Fi signal, firewall, proxy), then press reset to retry", &[]);
const HINT_RETRY: Hint = Hint::new(
    "press reset to retry; if it persists, check the enrollment in the Azure portal",
    &[],
);

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
pub(super) fn diagnose(f: &Facts<'_>) -> (String, Hint) {
    let msg = f.message.map(|m| format!(": {m}")).unwrap_or_default();
    let lower_msg = f.message.unwrap_or("").to_ascii_lowercase();
    if let Some(c) = f.error_code {
        let (what, hint): (String, Hint) = match c {
            // DPS gives an X.509 device 401002 both when the enrolled certificate differs and
            // when no enrollment matches it at all (docs/dps.md, "A device without an
            // enrollment").
            401002 => (format!("DPS rejected the device certificate (errorCode 401002{msg}): the enrolled certificate does not match this device's identity, or no enrollment exists for it"), HINT_401002),
            400208 => (format!("DPS found no IoT hub for the device (errorCode 400208{msg})"), HINT_NO_HUB),
            400209 => (format!("DPS could not register the device in the linked IoT hub (errorCode 400209{msg})"), HINT_HUB_LINK),
            _ if is_hub_unauthorized(&lower_msg) => (format!("DPS could not register the device in the linked IoT hub (errorCode {c}{msg})"), HINT_HUB_LINK),
            c if c / 1000 == 401 => (
                format!("DPS refused the device's credentials (errorCode {c}{msg})"),
                Hint::new("check that an individual enrollment with this device's alias certificate exists and that the ID scope is right", &[Enroll, ConfigureDps]),
            ),
            c if c / 1000 == 404 => (
                format!("DPS has no enrollment for this registration ID (errorCode {c}{msg})"),
                Hint::new("create the enrollment for this device, and check the ID scope compiled into the sketch", &[Enroll, ConfigureDps]),
            ),
            c if c / 1000 == 400 => (
                format!("DPS rejected the registration request (errorCode {c}{msg})"),
                Hint::new("check the registration ID (1 to 64 of a-z, 0-9 and '-') and the ID scope", &[ConfigureDps]),
            ),
            c if c / 1000 == 429 => (format!("DPS throttled the device (errorCode {c}{msg})"), Hint::new("wait a minute, then press reset on the DevKit to try again", &[])),
            c => (format!("DPS answered with errorCode {c}{msg}"), HINT_RETRY),
        };
        return (what, hint);
    }
    if is_hub_unauthorized(&lower_msg) {
        return (
            format!("DPS could not register the device in the linked IoT hub{msg}"),
            HINT_HUB_LINK,
        );
    }
    if lower_msg.contains("invalid certificate") {
        return (format!("DPS rejected the device certificate{msg}: the enrolled certificate does not match this device's identity"), HINT_401002);
    }
    match f.dps_status {
        Some("disabled") => return (format!("the device's enrollment is disabled{msg}"), HINT_DISABLED),
        Some("blacklisted") => return (format!("DPS has blocked this device{msg}"), Hint::new("the enrollment or device is blocked in DPS: check the individual enrollment in the Azure portal (enable it, or create it again), then press reset", &[Enroll])),
        _ => {}
    }
    // DPS's own 401 (an HTTP status, or the MQTT reply topic's) is an authentication
    // failure whatever the SDK makes of the reply body after it: older SDKs report
    // PROV_DEVICE_RESULT_PARSING, some TRANSPORT or ERROR. Only the results that name a
    // different cause keep their own diagnosis.
    if f.http_status == Some(401)
        && !matches!(
            f.result,
            Some("UNAUTHORIZED" | "HUB_NOT_SPECIFIED" | "DISABLED")
        )
    {
        let sdk = f
            .result
            .map(|r| format!("; the SDK reported PROV_DEVICE_RESULT_{r}"))
            .unwrap_or_default();
        return (format!("DPS refused the device's authentication (HTTP 401{sdk}{msg}): the enrolled certificate does not match this device's identity, or no enrollment exists for it"), HINT_401002);
    }
    if let Some(r) = f.result {
        return by_result(r, &msg);
    }
    if f.uds_missing {
        return (
            "the device has no valid UDS, so it has no identity to register with".into(),
            HINT_UDS,
        );
    }
    if f.wifi_failed {
        return (
            "the device is not on the network (Wi-Fi failed)".into(),
            HINT_WIFI,
        );
    }
    if !msg.is_empty() {
        return (format!("DPS registration failed{msg}"), HINT_RETRY);
    }
    match f.http_status {
        Some(s) if s >= 400 => (
            format!("DPS answered HTTP {s}"),
            Hint::new(
                "press reset to retry; if it persists, check the enrollment and the ID scope",
                &[],
            ),
        ),
        _ => (
            "registration failed before DPS answered (network, TLS or endpoint)".into(),
            HINT_TRANSPORT,
        ),
    }
}

/// The DPS-to-hub link failure as DPS words it (`ErrorCode:IotHubUnauthorizedAccess;...`).
fn is_hub_unauthorized(lower_msg: &str) -> bool {
    lower_msg.contains("iothubunauthorized")
}

/// The SDK's failing `PROV_DEVICE_RESULT_*` values (azure-iot-sdk-c `prov_device_ll_client.h`),
/// each of which [`by_result`] must explain on its own (tests walk them).
#[cfg(test)]
pub(crate) const SDK_RESULTS: [&str; 12] = [
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

/// One reason and hint per `PROV_DEVICE_RESULT_*` (and the older `DPS_ERROR_*`) value.
fn by_result(result: &str, msg: &str) -> (String, Hint) {
    let code = |r: &str| format!("PROV_DEVICE_RESULT_{r}");
    let (what, hint): (String, Hint) = match result {
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
            Hint::new("turn tracing on and watch the device's log events to see the reply; a DevKit SDK older than the DPS API may need updating (rebuild and upload the sketch with the current AZ3166 package)", &[CheckSetup]),
        ),
        "KEY_ERROR" => (
            format!("the device could not use its key ({}{msg})", code(result)),
            Hint::new("the device identity could not be loaded: check the UDS (set it again in configuration mode), then press reset; if the certificate was regenerated, enroll it again", &[SetUds, Enroll]),
        ),
        "MEMORY" => (format!("the device ran out of memory while registering ({}{msg})", code(result)), Hint::new("press reset to retry; if it persists, reduce the sketch's memory use (large buffers, trace output)", &[])),
        "INVALID_ARG" => (
            format!("the sketch gave the DPS client an invalid argument ({}{msg})", code(result)),
            Hint::new("check the global endpoint, ID scope and registration ID in the sketch's dps_config.h, then rebuild and upload it", &[ConfigureDps]),
        ),
        "INVALID_STATE" => (format!("the DPS client was used out of order ({}{msg})", code(result)), Hint::new("press reset to start the registration again", &[])),
        "ERROR" | "SERVER_STATUS" => (
            format!("DPS registration failed ({}{msg})", code(result)),
            Hint::new("DPS may have blocked the device or the enrollment may be disabled: check the individual enrollment in the Azure portal (or create it again), then press reset", &[Enroll]),
        ),
        other => (format!("DPS registration failed (result {other}{msg})"), HINT_RETRY),
    };
    (what, hint)
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
        let results = SDK_RESULTS;
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
            hint.text.contains("Linked IoT hubs") && hint.text.contains("connection string"),
            "{hint:?}"
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

    /// Hints are read in the terminal and in the editor: no devkit flag or subcommand in them
    /// (the next actions carry those); third-party commands (`az ...`) are fine.
    #[test]
    fn hints_name_no_devkit_command_and_carry_their_next_actions() {
        let mut all = vec![HINT_401002, HINT_UDS, HINT_WIFI];
        for code in [
            401002, 401000, 404201, 400004, 429001, 500000, 400208, 400209,
        ] {
            all.push(
                diagnose(&Facts {
                    error_code: Some(code),
                    ..Facts::default()
                })
                .1,
            );
        }
        for r in [
            "PARSING",
            "KEY_ERROR",
            "TRANSPORT",
            "ERROR",
            "DISABLED",
            "INVALID_ARG",
        ] {
            all.push(
                diagnose(&Facts {
                    result: Some(r),
                    ..Facts::default()
                })
                .1,
            );
        }
        for h in &all {
            assert!(
                !h.text.contains("devkit ") && !h.text.contains(" --"),
                "{h:?}"
            );
        }
        assert_eq!(HINT_401002.next, [RegenerateCert, Enroll]);
        assert_eq!(HINT_UDS.next, [EnterConfigMode, SetUds]);
    }
}
