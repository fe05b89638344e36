//! Device log lines turned into structured log events.
//!
//! The DevKit SDK (the Azure IoT C SDK inside the AZ3166 package) logs `Info: <text>` and
//! `Error: Time:<ctime> File:<path> Func:<name> Line:<n> <text>` lines; the DPS client and the
//! sketch add status lines and, with tracing on, the raw HTTP exchange (devkit-facts.md §6).
//! The shapes recognised are those the SDK and firmware print (prov_device_ll_client.c,
//! prov_transport_http_client.c, uhttp.c, DevkitDPSClient.cpp and the older DPSClient.cpp;
//! tests/fixtures/device-logs names the source of each):
//! `Provisioning Status:` / `Registration status:` / `DPS Status:` with
//! `PROV_DEVICE_REG_STATUS_*`, `DPS_REGISTRATION_STATUS_*`, a bare name or the enum's number;
//! `HTTP Status:` / `Reply Status:` and DPS's reply JSON; `PROV_DEVICE_RESULT_*` and
//! `DPS_ERROR_*` results on any line (`device result: ...`, `Failure registering device: ...`);
//! `Provisioning Failure: Reason: ...` and `Provisioning Failure: OperationId: ... - Msg: ...`;
//! `Unsuccessful json encountered: {...}`; the firmware's UDS and Wi-Fi lines; the SDK's status
//! tokens in any application's words (`Device provision status update:
//! PROV_DEVICE_REG_STATUS_ASSIGNING`); the MQTT transport's trace (azure-umqtt-c: the CONNECT
//! user name, DPS's status in the `$dps/registrations/res/<status>/` reply topic).
//!
//! [`EventParser`] reads that stream (bytes or lines, CRLF or not, split anywhere, ANSI colours,
//! garbage mixed in, behind monitor timestamps, syslog/journald prefixes or `[LEVEL] name:`,
//! see `prefix`) and returns [`LogEvent`]s, each serialised as JSON with a camelCase `kind` tag (and camelCase
//! keys):
//!
//! | kind | when |
//! | --- | --- |
//! | `boot` | the boot banner (state from the previous boot is forgotten) |
//! | `configMode` | the configuration console's help banner |
//! | `identity` | MAC, firmware version, alias certificate SHA-256 (fields known so far) |
//! | `status` | `wifiConnected`, `dpsStarted`, and the SDK's `connected`, `registering`, `assigning`, `assigned`, `error` (a raw `"status":"assigning"` reply when the firmware prints no statuses) |
//! | `registrationRequest` | the traced `PUT /<scope>/registrations/<id>/register` |
//! | `dpsError` | a DPS error reply (`HTTP Status:` + `{"errorCode":...}`) |
//! | `assigned` | the hub (and device ID when known) the device was assigned to |
//! | `failed` | registration failed: `reason` and a `hint` saying what to do (see `diagnosis`) |
//! | `udsMissing` | the device has no (valid) UDS |
//! | `wifiFailed` | the device could not join Wi-Fi |
//! | `deviceError` | any other `Error:` line |
//!
//! `failed` comes once per attempt, as soon as the failure is certain: at DPS's final answer
//! (an `errorCode` 4xx other than 429, a `failed`/`disabled` registration state), at the SDK's
//! `Provisioning Failure:` or result line, or at the sketch's `registration failed!`. The SDK's
//! error lines that follow it in the same attempt are that failure unwinding and add no
//! `deviceError`, `dpsError` or error `status` (the C SDK repeats DPS's reply body in
//! `Unsuccessful json encountered:` after the traced reply), so a failed attempt ends in its
//! `failed` event. 429 and 5xx replies are retried by the SDK and give only `dpsError`.
//! DPS tracking IDs are kept (`redact::tracking_id`).
//!
//! The parser never panics on any input and gives the same events however the input is split
//! into chunks; no event string holds more than [`redact::MAX_FIELD`] characters of input, and nothing
//! key-like from the input (see `redact`) — all property-tested.

mod diagnosis;
mod prefix;
pub mod redact;

use crate::error::NextStep;
use crate::monitor::framing::LineFramer;
pub use diagnosis::{Hint, HINT_401002};
use diagnosis::{HINT_UDS, HINT_WIFI};
use redact::{field, MAX_FIELD};
use serde::{Deserialize, Serialize};

/// One event recognised in the device's output.
///
/// Serialized with `kind` and every key in camelCase, the one casing of every `--json` output and
/// of the daemon: `devkit monitor --events`, `devkit logs --events` and the daemon's
/// `devkit/registrationEvent` all print exactly this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum LogEvent {
    /// The boot banner.
    Boot,
    /// The configuration console's command list (the device is in configuration mode).
    ConfigMode,
    /// What the device said about itself since boot (fields known so far).
    Identity {
        #[serde(skip_serializing_if = "Option::is_none")]
        mac: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        firmware_version: Option<String>,
        /// Upper-case hex SHA-256 of the alias certificate, as our sketch prints it.
        #[serde(skip_serializing_if = "Option::is_none")]
        alias_cert_sha256: Option<String>,
    },
    /// Progress: `wifiConnected`, `dpsStarted`, `connected`, `registering`, `assigning`,
    /// `assigned`, ... (`PROV_DEVICE_REG_STATUS_X` becomes `x`).
    Status {
        status: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// The traced registration request.
    RegistrationRequest {
        id_scope: String,
        registration_id: String,
    },
    /// DPS answered with an error.
    DpsError {
        #[serde(skip_serializing_if = "Option::is_none")]
        http_status: Option<u16>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error_code: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        tracking_id: Option<String>,
    },
    /// DPS assigned the device to an IoT hub.
    Assigned {
        hub: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        device_id: Option<String>,
    },
    /// Registration failed; `hint` says what the user should do, `next_actions` the typed
    /// steps each adapter renders (commands in the terminal, buttons in the editor).
    Failed {
        reason: String,
        hint: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        error_code: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        http_status: Option<u16>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        next_actions: Vec<NextStep>,
    },
    /// The device has no usable UDS.
    UdsMissing {
        message: String,
        hint: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        next_actions: Vec<NextStep>,
    },
    /// The device could not join Wi-Fi.
    WifiFailed {
        message: String,
        hint: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        next_actions: Vec<NextStep>,
    },
    /// Any other SDK `Error:` line.
    DeviceError {
        text: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        function: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        line: Option<u32>,
    },
}

/// The longest string an event holds: [`MAX_FIELD`] characters of input plus our own fixed
/// text (reasons and hints).
pub const MAX_EVENT_TEXT: usize = 1024;

/// Turns device output into [`LogEvent`]s. Feed it bytes ([`push_bytes`](Self::push_bytes))
/// or whole lines ([`push_line`](Self::push_line)).
#[derive(Debug, Default)]
pub struct EventParser {
    framer: LineFramer,
    mac: Option<String>,
    firmware_version: Option<String>,
    alias_cert_sha256: Option<String>,
    http_status: Option<u16>,
    error: Option<(Option<u32>, Option<String>)>,
    /// A failed registration state from DPS's reply (`failed`, `disabled`, `blacklisted`).
    dps_status: Option<String>,
    last_status: Option<String>,
    /// `PROV_DEVICE_RESULT_X` of the SDK's registration callback (or what the SDK's own error
    /// lines imply it will be), as `X`.
    result: Option<String>,
    device_id: Option<String>,
    assigned_hub: Option<String>,
    failed_reported: bool,
    /// Counts attempts, so a line can tell whether it started a new one.
    attempt: u32,
    uds_missing: bool,
    wifi_failed: bool,
    /// The firmware reports the SDK's status callbacks; raw reply statuses are then not needed.
    sdk_status_seen: bool,
}

impl EventParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed raw bytes (any chunking); returns the events of the lines they complete.
    pub fn push_bytes(&mut self, bytes: &[u8]) -> Vec<LogEvent> {
        let mut events = Vec::new();
        self.push_bytes_each(bytes, |e| events.push(e));
        events
    }

    /// Feed raw bytes (any chunking); `event` gets each event as its line completes. Nothing
    /// of the input is kept but the partial line and what the parser knows of the current
    /// boot and attempt (each field bounded): see [`retained_bytes`](Self::retained_bytes).
    pub fn push_bytes_each(&mut self, bytes: &[u8], mut event: impl FnMut(LogEvent)) {
        // The framer is taken out while its lines are parsed (a boot line resets the rest).
        let mut framer = std::mem::take(&mut self.framer);
        framer.push_each(bytes, |l| self.line(&l).into_iter().for_each(&mut event));
        self.framer = framer;
    }

    /// The bytes of input the parser holds: the partial line's buffer and the text fields it
    /// remembers. Bounded by [`MAX_LINE`](crate::monitor::framing::MAX_LINE) plus a few
    /// [`MAX_FIELD`]s, whatever the input's length.
    pub fn retained_bytes(&self) -> usize {
        let text = |s: &Option<String>| s.as_ref().map_or(0, String::capacity);
        self.framer.retained_bytes()
            + text(&self.mac)
            + text(&self.firmware_version)
            + text(&self.alias_cert_sha256)
            + self.error.as_ref().map_or(0, |(_, m)| text(m))
            + text(&self.dps_status)
            + text(&self.last_status)
            + text(&self.result)
            + text(&self.device_id)
            + text(&self.assigned_hub)
    }

    /// End of input: parse a last unterminated line.
    pub fn finish(&mut self) -> Vec<LogEvent> {
        match self.framer.finish() {
            Some(l) => self.line(&l),
            None => Vec::new(),
        }
    }

    /// Feed one complete line (terminators optional).
    pub fn push_line(&mut self, line: &str) -> Vec<LogEvent> {
        // A line may itself hold several CR/LF-separated lines.
        let mut framer = LineFramer::new();
        let mut lines = framer.push(line.as_bytes());
        lines.extend(framer.finish());
        lines.iter().flat_map(|l| self.line(l)).collect()
    }

    /// Parse every line of a whole captured log.
    pub fn parse_all(bytes: &[u8]) -> Vec<LogEvent> {
        let mut p = EventParser::new();
        let mut events = p.push_bytes(bytes);
        events.extend(p.finish());
        events
    }

    fn line(&mut self, raw: &str) -> Vec<LogEvent> {
        let verdict_given = self.failed_reported.then_some(self.attempt);
        let mut out = self.events_of_line(raw);
        // The last event of an attempt is its verdict: once `failed` is out, what the SDK
        // prints while unwinding the same attempt (`Unsuccessful json encountered: {...}`
        // repeating DPS's reply, `Unable to process registration reply.`, an error status)
        // is that failure again, not news.
        if verdict_given.is_some() && verdict_given == self.failed_reported.then_some(self.attempt)
        {
            out.retain(|e| !is_unwinding(e));
        }
        out
    }

    fn events_of_line(&mut self, raw: &str) -> Vec<LogEvent> {
        let cleaned = prefix::clean(raw);
        let mut text = prefix::strip_prefixes(cleaned.trim()).trim_end();
        // An SDK error line behind a prefix we do not know.
        if !starts_with_sdk_level(text) {
            if let Some(i) = text.find("Error: Time:") {
                text = &text[i..];
            }
        }
        let mut out = Vec::new();
        if text.is_empty() {
            return out;
        }
        if text.contains("MXChip - Microsoft IoT Developer Kit") {
            *self = EventParser {
                framer: std::mem::take(&mut self.framer),
                ..EventParser::default()
            };
            out.push(LogEvent::Boot);
            return out;
        }
        if text.starts_with("Configuration console:") {
            out.push(LogEvent::ConfigMode);
            return out;
        }
        if let Some(rest) =
            strip_prefix_ci(text, "Error:").or_else(|| strip_prefix_ci(text, "Critical:"))
        {
            let sdk = parse_sdk_error(rest);
            let recognised = self.classify(&sdk.text, &mut out);
            let console_reply = rest.trim_start().starts_with("Syntax error")
                || rest.trim_start().starts_with("Invalid command");
            // After `failed`, the SDK's further error lines are that failure unwinding
            // ("Unable to process registration reply", "registration failed!"): the failure
            // stays the attempt's last word.
            if !recognised && !console_reply && !self.failed_reported {
                out.push(LogEvent::DeviceError {
                    text: field(&sdk.text),
                    function: sdk.function.map(|f| field(&f)),
                    line: sdk.line,
                });
            }
        } else {
            let inner = match strip_prefix_ci(text, "Warning:")
                .or_else(|| strip_prefix_ci(text, "Verbose:"))
            {
                Some(rest) => parse_sdk_error(rest).text,
                None => strip_prefix_ci(text, "Info:")
                    .unwrap_or(text)
                    .trim()
                    .to_string(),
            };
            self.classify(&inner, &mut out);
        }
        // The SDK and the sketch both report each status: keep one event per change.
        out.retain(|e| match e {
            LogEvent::Status { status, .. } => {
                let repeated = self.last_status.as_deref() == Some(status.as_str());
                self.last_status = Some(status.clone());
                !repeated
            }
            _ => true,
        });
        out
    }

    /// Recognise one line's text (without any `Info:`/`Error:` prefix); false when the line
    /// means nothing to the parser (a recognised line may add no event: a repeat, a status
    /// code kept for the diagnosis).
    fn classify(&mut self, text: &str, out: &mut Vec<LogEvent>) -> bool {
        let lower = text.to_ascii_lowercase();
        // The SDK's result code can share a line with "registration failed" (the sketch logs
        // `DPS registration failed. Error code: PROV_DEVICE_RESULT_DEV_AUTH_ERROR`): record it
        // before deciding what the line means, so the failure it announces is diagnosed right.
        let failed_result = sdk_result(text).filter(|r| !diagnosis::is_success_result(r));
        if let Some(r) = &failed_result {
            self.result = Some(r.clone());
        } else if self.result.is_none() {
            self.result = SDK_RESULT_LINES
                .iter()
                .find(|(needle, _)| lower.contains(needle))
                .map(|(_, r)| r.to_string());
        }
        if let Some(v) = after(text, "DevKit MAC Address:") {
            let mac: String = v
                .chars()
                .filter(|c| c.is_ascii_hexdigit())
                .collect::<String>()
                .to_ascii_lowercase();
            if mac.len() == 12 {
                self.mac = Some(mac);
                out.push(self.identity());
            }
        } else if let Some(v) = after(text, "DevKit Firmware Version:") {
            if let Some(v) = version_word(v) {
                self.firmware_version = Some(v);
                out.push(self.identity());
            }
        } else if let Some(v) = after(text, "alias certificate SHA-256:") {
            let hex = first_word(v);
            if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
                self.alias_cert_sha256 = Some(hex.to_ascii_uppercase());
                out.push(self.identity());
            }
        } else if let Some(v) = after(text, "DPS Version:") {
            self.new_attempt();
            out.push(LogEvent::Status {
                status: "dpsStarted".into(),
                detail: version_word(v),
            });
        } else if let Some((scope, id)) =
            parse_register_put(text).or_else(|| parse_mqtt_username(text))
        {
            self.new_attempt();
            out.push(LogEvent::RegistrationRequest {
                id_scope: scope,
                registration_id: id,
            });
        } else if is_json_reply(text) {
            self.json_reply(text, out);
        } else if let Some(status) = after_ci(text, &lower, "provisioning status:")
            .or_else(|| after_ci(text, &lower, "registration status:"))
            .or_else(|| after_ci(text, &lower, "dps status:"))
            .and_then(|v| normalise_status(first_word(v)))
            .or_else(|| status_token(text))
        {
            // The firmware's own words (`Provisioning Status:`) or any application's around
            // the SDK's token (`Device provision status update: PROV_DEVICE_REG_STATUS_X`).
            self.sdk_status_seen = true;
            if status == "connected" && self.failed_reported {
                // The SDK connects again: a new attempt (a sketch that retries).
                self.new_attempt();
            }
            out.push(LogEvent::Status {
                status,
                detail: None,
            });
        } else if let Some(v) = after(text, "Registration Information received from service:")
            .or_else(|| after(text, "Registration Information received from DPS:"))
        {
            // `<hub>!` (DevKit), `<hub>, deviceId: <id>` (the SDK's sample).
            if let Some(hub) = hub_name(v) {
                if let Some(id) = after(v, "deviceId:")
                    .or_else(|| after(v, "deviceId="))
                    .map(first_word)
                {
                    self.device_id = Some(field(id.trim_end_matches(['!', ',', '.'])));
                }
                if self.assigned_hub.as_deref() != Some(hub.as_str()) {
                    self.assigned_hub = Some(hub.clone());
                    out.push(LogEvent::Assigned {
                        hub,
                        device_id: self.device_id.clone(),
                    });
                }
            }
        } else if let Some(v) = after(text, "Provisioning Failure:") {
            // `Provisioning Failure: OperationId: <id> - Date: <utc> - Msg: <DPS errorMessage>`
            // (prov_device_ll_client.c) or `Provisioning Failure: Reason: <text>`: without the
            // HTTP trace this line is all the device says of DPS's answer.
            let msg = after(v, "Msg:")
                .unwrap_or_else(|| v.trim().trim_start_matches("Reason:").trim())
                .trim_end_matches('.');
            // DPS's error body may ride inside the message, its quotes escaped
            // (azure-iot-sdk-c#2362: `Msg: {"Message":"{\"errorCode\":401002,...}"}`):
            // its code decides the diagnosis and its tracking ID is kept.
            let nested = msg.replace("\\\"", "\"");
            if let Some(code) =
                json_number(&nested, "errorCode").and_then(|c| u32::try_from(c).ok())
            {
                let message = json_string(&nested, "message")
                    .map(|m| field(&m))
                    .filter(|m| !m.is_empty());
                out.push(LogEvent::DpsError {
                    http_status: None,
                    error_code: Some(code),
                    message: message.clone(),
                    tracking_id: json_string(&nested, "trackingId")
                        .and_then(|t| redact::tracking_id(&t)),
                });
                self.error = Some((Some(code), message));
            }
            if !msg.is_empty() && !msg.contains("PROV_DEVICE_RESULT_") {
                let msg = field(msg);
                match &mut self.error {
                    None => self.error = Some((None, Some(msg))),
                    Some((_, m @ None)) => *m = Some(msg),
                    Some(_) => {}
                }
            }
            self.fail(out);
        } else if failed_result.is_some()
            || lower.contains("failure encountered on registration")
            || lower.contains("registration failed")
            || lower.contains("failure registering device")
            || lower.contains("dps failed")
        {
            self.fail(out);
        } else if UDS_LINES.iter().any(|l| lower.contains(l)) {
            if !self.uds_missing {
                self.uds_missing = true;
                out.push(LogEvent::UdsMissing {
                    message: field(text),
                    hint: HINT_UDS.text.into(),
                    next_actions: HINT_UDS.next_steps(),
                });
            }
        } else if let Some(v) = after(text, "HTTP Status:")
            .or_else(|| after(text, "Reply Status:"))
            .or_else(|| after(text, "Failure status code sent from the server:"))
            // The MQTT transport's trace (umqtt `<- hh:mm:ss PUBLISH | ... | TOPIC_NAME:
            // $dps/registrations/res/401/?$rid=1 | PAYLOAD_LEN: n`): DPS's reply status is
            // in the topic, and the reply body is never traced.
            .or_else(|| after(text, "$dps/registrations/res/"))
        {
            if let Some(code) = leading_status(v) {
                self.http_status = Some(code);
            }
        } else if let Some(code) = http_response_status(text) {
            self.http_status = Some(code);
        } else if is_wifi_line(&lower) {
            // `Wi-Fi <ssid> connected.`: the SSID itself may contain any word, so the success
            // shape is checked first.
            let connected = lower.trim_end_matches('.').ends_with(" connected")
                && !lower.contains("not connected")
                && !lower.contains("failed to connect");
            if connected {
                out.push(LogEvent::Status {
                    status: "wifiConnected".into(),
                    detail: None,
                });
            } else if !is_failure(&lower) {
                return false;
            } else if !self.wifi_failed {
                self.wifi_failed = true;
                out.push(LogEvent::WifiFailed {
                    message: field(text),
                    hint: HINT_WIFI.text.into(),
                    next_actions: HINT_WIFI.next_steps(),
                });
            }
        } else {
            return false;
        }
        true
    }

    /// A DPS reply body: an error (`errorCode`, or a failed registration state), an
    /// assignment, or an operation still assigning.
    fn json_reply(&mut self, text: &str, out: &mut Vec<LogEvent>) {
        // The top-level `status` comes first in DPS's replies (`registrationState` after it).
        let status = json_string(text, "status").map(|s| s.to_ascii_lowercase());
        let failed_state = status
            .as_deref()
            .filter(|s| matches!(*s, "failed" | "disabled" | "blacklisted"))
            .map(str::to_string);
        let code = json_number(text, "errorCode").and_then(|c| u32::try_from(c).ok());
        if code.is_some() || failed_state.is_some() {
            let message = json_string(text, "message")
                .or_else(|| json_string(text, "errorMessage"))
                .map(|m| field(&m))
                .filter(|m| !m.is_empty());
            if code.is_some() {
                let http_status = self.http_status.or_else(|| {
                    code.and_then(|c| u16::try_from(c / 1000).ok())
                        .filter(|s| (100..=599).contains(s))
                });
                self.http_status = http_status;
                let tracking_id =
                    json_string(text, "trackingId").and_then(|t| redact::tracking_id(&t));
                out.push(LogEvent::DpsError {
                    http_status,
                    error_code: code,
                    message: message.clone(),
                    tracking_id,
                });
            }
            self.error = Some((code, message));
            self.dps_status = failed_state.clone();
            // 4xx answers are final (the SDK gives up); throttling (429) and 5xx are retried.
            let final_code =
                code.is_some_and(|c| c / 1000 >= 400 && c / 1000 < 500 && c / 1000 != 429);
            if final_code || failed_state.is_some() {
                self.fail(out);
            }
        } else if let Some(hub) = json_string(text, "assignedHub") {
            self.device_id = json_string(text, "deviceId").map(|d| field(&d));
            if let Some(hub) = hub_name(&hub) {
                if self.assigned_hub.as_deref() != Some(hub.as_str()) {
                    self.assigned_hub = Some(hub.clone());
                    out.push(LogEvent::Assigned {
                        hub,
                        device_id: self.device_id.clone(),
                    });
                }
            }
        } else if status.as_deref() == Some("assigning") && !self.sdk_status_seen {
            // Older firmware without status callbacks: the reply is the only progress shown.
            out.push(LogEvent::Status {
                status: "assigning".into(),
                detail: None,
            });
        }
    }

    fn identity(&self) -> LogEvent {
        LogEvent::Identity {
            mac: self.mac.clone(),
            firmware_version: self.firmware_version.clone(),
            alias_cert_sha256: self.alias_cert_sha256.clone(),
        }
    }

    fn new_attempt(&mut self) {
        self.attempt = self.attempt.wrapping_add(1);
        self.http_status = None;
        self.error = None;
        self.dps_status = None;
        self.result = None;
        self.failed_reported = false;
        self.assigned_hub = None;
        self.device_id = None;
    }

    /// Report the attempt's failure, once.
    fn fail(&mut self, out: &mut Vec<LogEvent>) {
        if !self.failed_reported {
            self.failed_reported = true;
            out.push(self.failure());
        }
    }

    fn failure(&self) -> LogEvent {
        let (code, message) = self.error.clone().unwrap_or((None, None));
        let facts = diagnosis::Facts {
            error_code: code,
            message: message.as_deref(),
            http_status: self.http_status,
            result: self.result.as_deref(),
            dps_status: self.dps_status.as_deref(),
            uds_missing: self.uds_missing,
            wifi_failed: self.wifi_failed,
        };
        let (reason, hint) = diagnosis::diagnose(&facts);
        LogEvent::Failed {
            reason,
            hint: hint.text.into(),
            error_code: code,
            http_status: self.http_status,
            next_actions: hint.next_steps(),
        }
    }
}

/// SDK error lines that decide the callback's result before the callback reports it
/// (prov_device_ll_client.c), so a bare `Failure encountered on registration!` after them is
/// diagnosed right.
const SDK_RESULT_LINES: [(&str, &str); 8] = [
    ("timeout waiting for reply", "TIMEOUT"),
    ("timed out connecting to provisioning service", "TIMEOUT"),
    ("provisioning result is unauthorized", "DEV_AUTH_ERROR"),
    ("the device has been disabled by dps service", "DISABLED"),
    ("the device is unauthorized with service", "ERROR"),
    (
        "failure retrieving data from the provisioning service",
        "TRANSPORT",
    ),
    ("http error encountered", "TRANSPORT"),
    // A reply without the field the SDK looked for: what older SDKs (the DevKit's 1.6.0
    // core, microsoft/vscode-iot-workbench#590) print for DPS's 401 error body.
    ("failure retrieving json auth key value", "PARSING"),
];

/// The firmware's lines for a missing or unusable UDS (DevkitDPSClient.cpp, the older
/// DPSClient.cpp's `Untrusted device.`).
const UDS_LINES: [&str; 5] = [
    "uds string is empty",
    "diceinit failed",
    "length of dps uds string must be",
    "unable to get dps uds string",
    "untrusted device",
];

/// `PROV_DEVICE_RESULT_X` or the older client's `DPS_ERROR_X`, as `X`.
fn sdk_result(text: &str) -> Option<String> {
    let v = after_raw(text, "PROV_DEVICE_RESULT_").or_else(|| after_raw(text, "DPS_ERROR_"))?;
    let result: String = v
        .chars()
        .take_while(|c| c.is_ascii_uppercase() || *c == '_')
        .take(32)
        .collect();
    let result = result.trim_end_matches('_');
    (!result.is_empty()).then(|| result.to_string())
}

/// The SDK's status token anywhere in a line (`PROV_DEVICE_REG_STATUS_X`, or the older
/// client's `DPS_REGISTRATION_STATUS_X`), normalised.
fn status_token(text: &str) -> Option<String> {
    ["PROV_DEVICE_REG_STATUS_", "DPS_REGISTRATION_STATUS_"]
        .iter()
        .find_map(|prefix| {
            let i = text.find(prefix)?;
            let token: String = text[i..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                .take(48)
                .collect();
            normalise_status(&token)
        })
}

/// A status code at the start of `text` (`401`, `401/?$rid=1`).
fn leading_status(text: &str) -> Option<u16> {
    let digits: String = text
        .chars()
        .take_while(char::is_ascii_digit)
        .take(4)
        .collect();
    digits.parse().ok().filter(|c| (100..=599).contains(c))
}

/// A registration status as the parser names it everywhere: `PROV_DEVICE_REG_STATUS_X`,
/// `DPS_REGISTRATION_STATUS_X`, `X` and the enum's number all become `x`.
fn normalise_status(word: &str) -> Option<String> {
    let upper = word
        .trim_end_matches(['.', ',', '!', ';'])
        .to_ascii_uppercase();
    let name = upper
        .strip_prefix("PROV_DEVICE_REG_STATUS_")
        .or_else(|| upper.strip_prefix("DPS_REGISTRATION_STATUS_"))
        .unwrap_or(&upper);
    let name = match name {
        "0" => "CONNECTED",
        "1" => "REGISTERING",
        "2" => "ASSIGNING",
        "3" => "ASSIGNED",
        "4" => "ERROR",
        n => n,
    };
    let status = name.to_ascii_lowercase();
    KNOWN_STATUSES.contains(&status.as_str()).then_some(status)
}

const KNOWN_STATUSES: [&str; 8] = [
    "connected",
    "registering",
    "assigning",
    "assigned",
    "unassigned",
    "error",
    "failed",
    "disabled",
];

/// Events that, after an attempt's `failed`, only repeat that failure.
fn is_unwinding(event: &LogEvent) -> bool {
    match event {
        LogEvent::DpsError { .. } | LogEvent::DeviceError { .. } => true,
        LogEvent::Status { status, .. } => {
            matches!(status.as_str(), "error" | "failed" | "disabled")
        }
        _ => false,
    }
}

fn starts_with_sdk_level(text: &str) -> bool {
    ["Error:", "Critical:", "Warning:", "Info:", "Verbose:"]
        .iter()
        .any(|p| strip_prefix_ci(text, p).is_some())
}

fn is_json_reply(text: &str) -> bool {
    text.contains("\"errorCode\"")
        || text.contains("\"assignedHub\"")
        || (text.contains("\"operationId\"") && text.contains("\"status\""))
}

/// An IoT hub host name (`<name>.azure-devices.net`, or any DNS name): never key material.
fn hub_name(text: &str) -> Option<String> {
    let hub = first_word(text).trim_end_matches(['!', ',', '.', ';']);
    let ok = (3..=253).contains(&hub.len())
        && hub.contains('.')
        && hub
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    ok.then(|| hub.to_ascii_lowercase())
}

/// A version (`1.3.9`, `1.6.2-preview`); anything else is not one.
fn version_word(text: &str) -> Option<String> {
    let v = first_word(text);
    let ok = (1..=32).contains(&v.len())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-+_".contains(c))
        && v.chars().any(|c| c.is_ascii_digit());
    ok.then(|| v.to_string())
}

struct SdkError {
    text: String,
    function: Option<String>,
    line: Option<u32>,
}

/// `Time:<ctime> File:<path> Func:<name> Line:<n> <text>` (each part optional).
fn parse_sdk_error(rest: &str) -> SdkError {
    let rest = rest.trim();
    let mut function = None;
    let mut line = None;
    let mut text = rest;
    if let Some(i) = rest.find("Func:") {
        function = rest[i + 5..].split_whitespace().next().map(str::to_string);
    }
    if let Some(i) = rest.find(" Line:") {
        let after = &rest[i + 6..];
        let digits: String = after
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .take(9)
            .collect();
        line = digits.parse().ok();
        text = after[digits.len()..].trim();
    }
    SdkError {
        text: text.to_string(),
        function,
        line,
    }
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// What follows `marker`, trimmed.
fn after<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    after_raw(text, marker).map(str::trim)
}

fn after_raw<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    text.find(marker).map(|i| &text[i + marker.len()..])
}

/// [`after`] ignoring ASCII case; `lower` is `text` in lower case, `marker` lower case.
fn after_ci<'a>(text: &'a str, lower: &str, marker: &str) -> Option<&'a str> {
    // ASCII lowering keeps byte offsets.
    lower.find(marker).map(|i| text[i + marker.len()..].trim())
}

fn first_word(text: &str) -> &str {
    text.split_whitespace().next().unwrap_or("")
}

fn is_wifi_line(lower: &str) -> bool {
    lower.contains("wi-fi") || lower.contains("wifi")
}

fn is_failure(lower: &str) -> bool {
    [
        "fail",
        "no wi-fi",
        "no wifi",
        "not connect",
        "cannot",
        "can't",
        "unable",
        "not set",
        "empty",
        "error",
        "timeout",
        "timed out",
    ]
    .iter()
    .any(|w| lower.contains(w))
}

/// `HTTP/1.1 401 Unauthorized` (a traced response status line).
fn http_response_status(text: &str) -> Option<u16> {
    let i = text.find("HTTP/1.1 ")?;
    let code = text[i + 9..].get(..3)?;
    code.chars()
        .all(|c| c.is_ascii_digit())
        .then(|| code.parse().ok())?
}

/// `PUT /<scope>/registrations/<id>/register...` (DPS's ID scopes are alphanumeric; the
/// registration IDs it accepts are lower-case alphanumerics and `-._:`).
fn parse_register_put(text: &str) -> Option<(String, String)> {
    let i = text.find("PUT /")?;
    let path = text[i + 5..].split_whitespace().next()?;
    let path = path.split('?').next()?;
    let mut parts = path.split('/');
    let scope = percent_decode(parts.next()?);
    (parts.next()? == "registrations").then_some(())?;
    let id = percent_decode(parts.next()?);
    (parts.next()? == "register").then_some(())?;
    let scope_ok =
        (1..=32).contains(&scope.len()) && scope.chars().all(|c| c.is_ascii_alphanumeric());
    let id_ok = (1..=128).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-._:".contains(c));
    (scope_ok && id_ok).then_some((scope, id))
}

/// The MQTT transport's CONNECT trace: `... CONNECT | ... | USERNAME:
/// <scope>/registrations/<id>/api-version=...&ClientVersion=... | PWD: XXXX | ...`
/// (prov_transport_mqtt_common.c builds the user name; umqtt traces it, never the password).
fn parse_mqtt_username(text: &str) -> Option<(String, String)> {
    if !text.contains("CONNECT") {
        return None;
    }
    let user = after(text, "USERNAME:")?;
    let mut parts = first_word(user).split('/');
    let scope = parts.next()?;
    (parts.next()? == "registrations").then_some(())?;
    let id = parts.next()?;
    parse_register_put(&format!("PUT /{scope}/registrations/{id}/register"))
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The number after `"key":` (lenient: the JSON may be cut or interleaved).
fn json_number(text: &str, key: &str) -> Option<u64> {
    let v = json_value_start(text, key)?;
    let digits: String = v
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .take(12)
        .collect();
    digits.parse().ok()
}

/// The string after `"key":` (lenient; `\"` escapes handled; at most [`MAX_FIELD`] * 4
/// characters are read).
fn json_string(text: &str, key: &str) -> Option<String> {
    let v = json_value_start(text, key)?.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
        if out.len() > MAX_FIELD * 4 {
            return Some(out);
        }
    }
    None
}

fn json_value_start<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\"");
    let i = text.find(&pat)?;
    let rest = text[i + pat.len()..].trim_start().strip_prefix(':')?;
    Some(rest.trim_start())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn invalid_certificate_without_http_trace_is_diagnosed_as_a_certificate_mismatch() {
        // The shape of public DevKit bug reports: tracing off, the SDK's reason line, then the
        // sketch's result line that also says "registration failed".
        let log = b"Info: >>>Provisioning Status: PROV_DEVICE_REG_STATUS_REGISTERING\r\n\
Error: Time:Fri Jul 20 08:02:55 2018 File:C:\\x\\prov_device_ll_client.c Func:prov_transport_process_json_reply Line:439 Provisioning Failure: Reason: Invalid certificate\r\n\
Error: Time:Fri Jul 20 08:02:56 2018 File:C:\\x\\DevkitDPSClient.cpp Func:register_device_callback Line:71 DPS registration failed. Error code: PROV_DEVICE_RESULT_DEV_AUTH_ERROR\r\n\
Failure encountered on registration!\r\nregistration failed!\r\n";
        let failed: Vec<_> = EventParser::parse_all(log)
            .into_iter()
            .filter(|e| matches!(e, LogEvent::Failed { .. }))
            .collect();
        assert_eq!(failed.len(), 1, "{failed:?}");
        let LogEvent::Failed { reason, hint, .. } = &failed[0] else {
            unreachable!()
        };
        assert!(
            reason.contains("Invalid certificate") && reason.contains("does not match"),
            "{reason}"
        );
        assert_eq!(hint, HINT_401002.text);
    }

    #[test]
    fn the_sdk_callback_failure_alone_is_a_failure() {
        let log = b"Error: Time:Wed Apr 11 03:41:34 2018 File:D:\\a\\prov_device_ll_client.c Func:prov_transport_process_json_reply Line:333 Provisioning Failure: Reason: Invalid certificate.\r\n\
Error: Time:Wed Apr 11 03:41:35 2018 File:D:\\a\\DevkitDPSClient.cpp Func:registation_status_callback Line:45 Failure registering device: PROV_DEVICE_RESULT_DEV_AUTH_ERROR\r\n";
        let events = EventParser::parse_all(log);
        let Some(LogEvent::Failed { reason, hint, .. }) = events.last() else {
            panic!("{events:?}")
        };
        assert_eq!(hint, HINT_401002.text);
        assert!(
            reason.contains("Invalid certificate:") && !reason.contains("certificate.:"),
            "{reason}"
        );
    }

    #[test]
    fn a_result_code_on_the_failure_line_itself_is_used() {
        let log = b"DPS registration failed. Error code: PROV_DEVICE_RESULT_DEV_AUTH_ERROR\r\n";
        let events = EventParser::parse_all(log);
        assert!(
            matches!(&events[..], [LogEvent::Failed { hint, .. }] if hint == HINT_401002.text),
            "{events:?}"
        );
    }

    #[test]
    fn error_401002_gives_failed_with_compare_hint_and_typed_next_actions() {
        let log = b"Info:    DPS Version: 1.3.9\r\nPUT /0ne00000001/registrations/az-c0bdd1a2b3c4v1v6v2/register?api-version=2019-03-31 HTTP/1.1\r\nHTTP Status: 401\r\n{\"errorCode\":401002,\"trackingId\":\"t-1\",\"message\":\"Invalid certificate\",\"timestampUtc\":\"x\"}\r\nFailure encountered on registration!\r\nregistration failed!\r\n";
        let events = EventParser::parse_all(log);
        assert!(events.contains(&LogEvent::RegistrationRequest {
            id_scope: "0ne00000001".into(),
            registration_id: "az-c0bdd1a2b3c4v1v6v2".into()
        }));
        assert!(events.contains(&LogEvent::DpsError {
            http_status: Some(401),
            error_code: Some(401002),
            message: Some("Invalid certificate".into()),
            tracking_id: Some("t-1".into())
        }));
        let failed: Vec<_> = events
            .iter()
            .filter(|e| matches!(e, LogEvent::Failed { .. }))
            .collect();
        assert_eq!(failed.len(), 1, "one failure per attempt: {events:?}");
        match failed[0] {
            LogEvent::Failed {
                hint,
                error_code,
                reason,
                next_actions,
                ..
            } => {
                assert_eq!(*error_code, Some(401002));
                assert!(reason.contains("does not match this device's identity"));
                assert!(hint.contains("compare the enrolled certificate"), "{hint}");
                let names: Vec<&str> = next_actions.iter().map(|n| n.action.name()).collect();
                assert_eq!(names, ["regenerateCert", "enroll"]);
            }
            _ => unreachable!(),
        }
    }

    #[test]
    fn sdk_error_lines_keep_function_and_line() {
        let mut p = EventParser::new();
        let ev = p.push_line("Error: Time:Sat Nov 28 17:00:00 2026 File:/src/x.cpp Func:foo Line:42 something odd happened\r\n");
        assert_eq!(
            ev,
            vec![LogEvent::DeviceError {
                text: "something odd happened".into(),
                function: Some("foo".into()),
                line: Some(42)
            }]
        );
    }

    /// A long log streamed through the parser: what it holds stays bounded (the partial line
    /// and a few fields), however many lines went through, and no event is lost on the way.
    #[test]
    fn a_long_stream_keeps_bounded_state() {
        let log = "MXChip - Microsoft IoT Developer Kit\r\nDevKit MAC Address: a0:b1:c2:d3:e4:f5\r\nDPS Version: 1.0.2\r\nInfo: Provisioning Status: PROV_DEVICE_REG_STATUS_ASSIGNING\r\nError: Time:Tue Line:12 some error\r\nRegistration Information received from service: hub-1.azure-devices.net!\r\n";
        let mut p = EventParser::new();
        let (mut events, mut most) = (0usize, 0usize);
        let bound = crate::monitor::framing::MAX_LINE + 10 * MAX_FIELD;
        for i in 0..20_000 {
            p.push_bytes_each(log.as_bytes(), |_| events += 1);
            // Now and then a run without a line end, longer than any line kept.
            if i % 5_000 == 0 {
                p.push_bytes_each(
                    &vec![b'x'; 3 * crate::monitor::framing::MAX_LINE + 7],
                    |_| {},
                );
                p.push_bytes_each(b"\n", |_| {});
            }
            most = most.max(p.retained_bytes());
        }
        assert!(most <= bound, "{most} bytes held (bound {bound})");
        let per_boot = EventParser::parse_all(log.as_bytes()).len();
        assert_eq!(events, 20_000 * per_boot);
    }

    #[test]
    fn timestamps_from_the_monitor_are_ignored() {
        let mut p = EventParser::new();
        let ev = p.push_line("[17:01:02.123] Info: DevKit MAC Address: C0:BD:D1:A2:B3:C4");
        assert_eq!(
            ev,
            vec![LogEvent::Identity {
                mac: Some("c0bdd1a2b3c4".into()),
                firmware_version: None,
                alias_cert_sha256: None
            }]
        );
    }

    #[test]
    fn events_serialise_with_kind() {
        let v = serde_json::to_value(LogEvent::Assigned {
            hub: "h.azure-devices.net".into(),
            device_id: None,
        })
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"kind": "assigned", "hub": "h.azure-devices.net"})
        );
        assert_eq!(
            serde_json::to_value(LogEvent::Boot).unwrap(),
            serde_json::json!({"kind": "boot"})
        );
    }

    fn last(log: &str) -> LogEvent {
        let events = EventParser::parse_all(log.as_bytes());
        events
            .last()
            .cloned()
            .unwrap_or_else(|| panic!("no events from {log:?}"))
    }

    fn failed_hint(log: &str) -> (String, String) {
        match last(log) {
            LogEvent::Failed { reason, hint, .. } => (reason, hint),
            other => panic!("{other:?} from {log:?}"),
        }
    }

    #[test]
    fn http_trace_401002_ends_in_failed_without_any_failure_line() {
        // uhttp.c's trace (`HTTP Status: %d`, the headers, the body) as in
        // microsoft/vscode-iot-workbench#590, cut right after the reply.
        let log = "Info: >>>Provisioning Status: PROV_DEVICE_REG_STATUS_CONNECTED\r\n\r\nHTTP Status: 401\r\n\r\ndate: Fri, 15 Mar 2019 19:43:02 GMT\r\ncontent-type: application/json; charset=utf-8\r\n\r\n{\"errorCode\":401002,\"trackingId\":\"f40da7ba-8c91-4796-8fc3-89e1dfbdbe05\",\"message\":\"Invalid certificate\",\"timestampUtc\":\"2019-03-15T19:43:02.7904455Z\"}\r\n";
        let events = EventParser::parse_all(log.as_bytes());
        assert!(
            matches!(
                &events[events.len() - 2],
                LogEvent::DpsError {
                    error_code: Some(401002),
                    http_status: Some(401),
                    ..
                }
            ),
            "{events:?}"
        );
        let LogEvent::Failed {
            hint,
            error_code,
            http_status,
            ..
        } = last(log)
        else {
            panic!()
        };
        assert_eq!(
            (hint.as_str(), error_code, http_status),
            (HINT_401002.text, Some(401002), Some(401))
        );
    }

    #[test]
    fn throttling_and_server_errors_are_not_final() {
        let log = "HTTP Status: 429\r\n{\"errorCode\":429001,\"message\":\"Operations are being throttled\"}\r\n";
        assert!(matches!(
            last(log),
            LogEvent::DpsError {
                error_code: Some(429001),
                ..
            }
        ));
        let log = "HTTP Status: 500\r\n{\"errorCode\":500000,\"message\":\"internal\"}\r\n";
        assert!(matches!(last(log), LogEvent::DpsError { .. }));
    }

    #[test]
    fn older_sdk_dps_status_and_reply_status() {
        // The older DPS client (DPSClient.cpp: `LogInfo(">>>DPS Status: %s", ...)`) and a raw
        // `Reply Status:` trace with the operation reply.
        let log = "Info: >>>DPS Status: DPS_REGISTRATION_STATUS_CONNECTED\r\nInfo: >>>DPS Status: DPS_REGISTRATION_STATUS_ASSIGNING\r\n";
        let statuses: Vec<_> = EventParser::parse_all(log.as_bytes()).into_iter().collect();
        assert_eq!(
            statuses,
            [
                LogEvent::Status {
                    status: "connected".into(),
                    detail: None
                },
                LogEvent::Status {
                    status: "assigning".into(),
                    detail: None
                }
            ]
        );
        let log = "Reply Status: 202\r\n{\"operationId\":\"4.d0a671905ea5b2c8.42d78160-4c78-479e-8be7-61d5e55dac0d\",\"status\":\"assigning\"}\r\n";
        assert_eq!(
            last(log),
            LogEvent::Status {
                status: "assigning".into(),
                detail: None
            }
        );
        let log = "Reply Status: 200\r\n{\"operationId\":\"4.x\",\"status\":\"assigned\",\"registrationState\":{\"assignedHub\":\"hub.azure-devices.net\",\"deviceId\":\"dev-1\",\"status\":\"assigned\"}}\r\nInfo: >>>Registration Information received from DPS: hub.azure-devices.net!\r\n";
        let events = EventParser::parse_all(log.as_bytes());
        assert_eq!(
            events,
            [LogEvent::Assigned {
                hub: "hub.azure-devices.net".into(),
                device_id: Some("dev-1".into())
            }]
        );
    }

    #[test]
    fn registration_status_names_are_normalised() {
        // prov_dev_client_sample.c prints `Registration status: %s` with the enum's name; some
        // builds print its number (`Provisioning Status: 2`).
        for (line, status) in [
            (
                "Registration status: PROV_DEVICE_REG_STATUS_CONNECTED",
                "connected",
            ),
            (
                "Registration status: PROV_DEVICE_REG_STATUS_REGISTERING",
                "registering",
            ),
            (
                "Registration status: PROV_DEVICE_REG_STATUS_ASSIGNING",
                "assigning",
            ),
            (
                "Registration status: PROV_DEVICE_REG_STATUS_ASSIGNED",
                "assigned",
            ),
            ("Registration status: PROV_DEVICE_REG_STATUS_ERROR", "error"),
            ("Registration status: CONNECTED", "connected"),
            ("Provisioning Status: 2", "assigning"),
            (
                "DPS Status: DPS_REGISTRATION_STATUS_REGISTERING",
                "registering",
            ),
        ] {
            assert_eq!(
                last(line),
                LogEvent::Status {
                    status: status.into(),
                    detail: None
                },
                "{line}"
            );
        }
        assert!(EventParser::parse_all(b"Registration status: SOMETHING_ELSE").is_empty());
    }

    #[test]
    fn every_device_result_is_a_failure_with_its_hint() {
        // `device result: %s` as printed by applications on the SDK (azure-iot-sdk-c#564).
        let mut hints = std::collections::HashSet::new();
        for r in diagnosis::SDK_RESULTS {
            let (reason, hint) = failed_hint(&format!("device result: PROV_DEVICE_RESULT_{r}\r\n"));
            assert!(
                reason.contains(&format!("PROV_DEVICE_RESULT_{r}")),
                "{reason}"
            );
            hints.insert(hint);
        }
        assert_eq!(hints.len(), 12, "one hint per result");
        let (_, hint) = failed_hint("device result: PROV_DEVICE_RESULT_TRANSPORT\r\n");
        assert!(hint.contains("443") && hint.contains("Wi-Fi"), "{hint}");
        assert!(EventParser::parse_all(b"device result: PROV_DEVICE_RESULT_OK\r\n").is_empty());
    }

    #[test]
    fn sdk_error_lines_before_the_callback_decide_the_hint() {
        // azure-iot-sdk-c#564: `Failure retrieving data from the provisioning service` (the
        // SDK sets PROV_DEVICE_RESULT_TRANSPORT), then the sketch's generic failure line.
        let log = "Error: Time:Fri Jul 13 10:32:01 2018 File:prov_device_ll_client.c Func:on_transport_registration_data Line:454 Failure retrieving data from the provisioning service\r\nError: Time:Fri Jul 13 10:32:01 2018 File:DevkitDPSClient.cpp Func:register_device_callback Line:60 Failure encountered on registration!\r\n";
        let (reason, hint) = failed_hint(log);
        assert!(reason.contains("PROV_DEVICE_RESULT_TRANSPORT"), "{reason}");
        assert!(hint.contains("443"));
        let log = "Error: Time:x File:prov_device_ll_client.c Func:Prov_Device_LL_DoWork Line:1 Timeout waiting for reply\r\nregistration failed!\r\n";
        assert!(failed_hint(log).0.contains("TIMEOUT"));
    }

    #[test]
    fn hub_link_failure_says_the_linked_hub_is_broken() {
        // prov_device_ll_client.c: LogError("Provisioning Failure: OperationId: %s - Date: %s - Msg: %s", ...)
        // with DPS's errorMessage for a linked hub whose access policy no longer works.
        let log = "Error: Time:Mon Nov 30 10:00:00 2026 File:/sdk/provisioning_client/src/prov_device_ll_client.c Func:prov_transport_process_json_reply Line:402 Provisioning Failure: OperationId: 4.d0a671905ea5b2c8.42d78160-4c78-479e-8be7-61d5e55dac0d - Date: 2026-11-30T10:00:00.000Z - Msg: {\"Message\":\"ErrorCode:IotHubUnauthorizedAccess;Unauthorized\",\"ExceptionMessage\":\"Tracking ID:0b9c1d2e-G:10-TimeStamp:11/30/2026 10:00:00\"}\r\n";
        let events = EventParser::parse_all(log.as_bytes());
        assert_eq!(events.len(), 1, "{events:?}");
        let (reason, hint) = failed_hint(log);
        assert!(
            reason.contains("linked IoT hub") && reason.contains("IotHubUnauthorizedAccess"),
            "{reason}"
        );
        assert!(
            hint.contains("Linked IoT hubs") && hint.contains("connection string"),
            "{hint}"
        );
        // The same failure from the operation-status reply (errorCode 400209).
        let log = "HTTP Status: 200\r\n{\"operationId\":\"4.x\",\"status\":\"failed\",\"registrationState\":{\"registrationId\":\"az-1\",\"status\":\"failed\",\"errorCode\":400209,\"errorMessage\":\"{\\\"Message\\\":\\\"ErrorCode:IotHubUnauthorizedAccess;Unauthorized\\\"}\"}}\r\n";
        let (_, hint2) = failed_hint(log);
        assert_eq!(hint2, hint);
    }

    #[test]
    fn a_disabled_enrollment_from_the_reply() {
        let log = "HTTP Status: 200\r\n{\"operationId\":\"4.x\",\"status\":\"disabled\",\"registrationState\":{\"registrationId\":\"az-1\",\"status\":\"disabled\"}}\r\n";
        assert!(failed_hint(log)
            .1
            .contains("enable the individual enrollment"));
    }

    #[test]
    fn any_prefix_crlf_and_colours() {
        let sdk = "Info: >>>Provisioning Status: PROV_DEVICE_REG_STATUS_ASSIGNING";
        for prefix in [
            "",
            "[12:34:56.789] ",
            "Nov 28 17:01:02 pi devkit[812]: ",
            "[INFO] DevKitDPS: ",
            "\u{1b}[32m",
            "2026-11-28T17:01:02Z ",
        ] {
            let mut p = EventParser::new();
            let ev = p.push_bytes(format!("{prefix}{sdk}\u{1b}[0m\r\n").as_bytes());
            assert_eq!(
                ev,
                vec![LogEvent::Status {
                    status: "assigning".into(),
                    detail: None
                }],
                "{prefix:?}"
            );
        }
        let ev = EventParser::parse_all(
            "[12:34:56.789] Error: Time:Sat Nov 28 17:00:00 2026 File:x.c Func:f Line:7 odd\r\n"
                .as_bytes(),
        );
        assert_eq!(
            ev,
            vec![LogEvent::DeviceError {
                text: "odd".into(),
                function: Some("f".into()),
                line: Some(7)
            }]
        );
        // An unknown prefix before the SDK's error line.
        let ev = EventParser::parse_all(
            b"devkit | Error: Time:Sat Nov 28 17:00:00 2026 File:x.c Func:f Line:7 odd\r\n",
        );
        assert_eq!(
            ev,
            vec![LogEvent::DeviceError {
                text: "odd".into(),
                function: Some("f".into()),
                line: Some(7)
            }]
        );
    }

    #[test]
    fn a_retrying_sketch_gets_one_failure_per_attempt() {
        let attempt = "Info: >>>Provisioning Status: PROV_DEVICE_REG_STATUS_CONNECTED\r\nFailure encountered on registration!\r\nregistration failed!\r\n";
        let events = EventParser::parse_all(format!("{attempt}{attempt}").as_bytes());
        assert_eq!(
            events
                .iter()
                .filter(|e| matches!(e, LogEvent::Failed { .. }))
                .count(),
            2,
            "{events:?}"
        );
    }

    #[test]
    fn status_tokens_whatever_the_words_around_them() {
        for (line, status) in [
            (
                "Device provision status update: PROV_DEVICE_REG_STATUS_ASSIGNING",
                "assigning",
            ),
            (
                "[app] state -> DPS_REGISTRATION_STATUS_REGISTERING (retry 1)",
                "registering",
            ),
            (
                "Provisioning Status - PROV_DEVICE_REG_STATUS_CONNECTED",
                "connected",
            ),
        ] {
            assert_eq!(
                EventParser::parse_all(line.as_bytes()),
                [LogEvent::Status {
                    status: status.into(),
                    detail: None
                }],
                "{line}"
            );
        }
        assert!(EventParser::parse_all(b"PROV_DEVICE_REG_STATUS_SOMETHING").is_empty());
    }

    const TEMPLATES: [&str; 11] = [
        "HTTP Status: 401\r\n{\"errorCode\":401002,\"trackingId\":\"{pre}{secret}{post}\"}",
        "Provisioning Failure: OperationId: x - Date: y - Msg: {\"Message\":\"{\\\"errorCode\\\":401002,\\\"trackingId\\\":\\\"{secret}{post}\\\"}\"} Tracking ID:{secret}",
        "Error: Time:Sat Nov 28 17:00:00 2026 File:x.c Func:f Line:1 {pre}{secret}{post}",
        "HTTP Status: 401\r\n{\"errorCode\":401002,\"message\":\"{pre}{secret}{post}\"}",
        "Info: Wi-Fi {pre}{secret}{post} failed",
        "Provisioning Failure: OperationId: x - Date: y - Msg: {pre}{secret}{post}",
        "Error: Time:x File:y Func:z Line:2 HostName=h.azure-devices.net;DeviceId=d;SharedAccessKey={secret}{post}",
        "Registration Information received from service: {pre}{secret}{post}!",
        "Info:    DPS Version: {secret}",
        "PUT /{secret}/registrations/{secret}/register?api-version=1 HTTP/1.1",
        "The DPS UDS string is empty. {pre}{secret}{post}",
    ];

    proptest! {
        #[test]
        fn events_never_echo_key_material(
            secret in "[A-Za-z0-9+/]{40,88}",
            pre in "[ -~]{0,20}",
            post in "[ -~]{0,20}",
            template in 0usize..TEMPLATES.len(),
        ) {
            let log = TEMPLATES[template].replace("{pre}", &pre).replace("{post}", &post).replace("{secret}", &secret);
            for event in EventParser::parse_all(log.as_bytes()) {
                let json = serde_json::to_string(&event).unwrap();
                for window in secret.as_bytes().windows(12) {
                    let window = std::str::from_utf8(window).unwrap();
                    prop_assert!(!json.contains(window), "{json} holds part of the secret {secret}");
                }
            }
        }

        /// A UDS printed as a hex dump (any case, any of the usual separators, bytes or words,
        /// `0x` or not) is never echoed by an event (`devkit logs --events`).
        #[test]
        fn events_never_echo_a_uds_as_a_hex_dump(
            uds in proptest::array::uniform32(any::<u8>()),
            upper in proptest::collection::vec(any::<bool>(), 64),
            sep in proptest::sample::select(vec![" ", ":", "-", ", ", "  "]),
            width in proptest::sample::select(vec![2usize, 4, 8]),
            prefix in any::<bool>(),
            pre in "[ -~]{0,20}",
            post in "[ -~]{0,20}",
            template in 0usize..TEMPLATES.len(),
        ) {
            let hex = hex::encode(uds);
            let cased: String = hex
                .chars()
                .zip(&upper)
                .map(|(c, &u)| if u { c.to_ascii_uppercase() } else { c })
                .collect();
            let dump = (0..64 / width)
                .map(|i| format!("{}{}", if prefix { "0x" } else { "" }, &cased[width * i..width * (i + 1)]))
                .collect::<Vec<_>>()
                .join(sep);
            let log = TEMPLATES[template]
                .replace("{pre}", &format!("{pre} "))
                .replace("{post}", &format!(" {post}"))
                .replace("{secret}", &dump);
            for event in EventParser::parse_all(log.as_bytes()) {
                let json = serde_json::to_string(&event).unwrap().to_ascii_lowercase().replace("0x", "");
                let flat: String = json.chars().filter(|c| !" :-,".contains(*c)).collect();
                // 6 bytes (a lone group, such as a version's first word, is no dump).
                for i in (0..=hex.len() - 12).step_by(2) {
                    prop_assert!(!flat.contains(&hex[i..i + 12]), "{json} holds part of the UDS {hex}");
                }
            }
        }

        #[test]
        fn events_hold_a_bounded_amount_of_input(
            filler in "[a-z ]{300,3000}",
            template in 0usize..TEMPLATES.len(),
        ) {
            let log = TEMPLATES[template].replace("{pre}", "").replace("{post}", "").replace("{secret}", &filler);
            for event in EventParser::parse_all(log.as_bytes()) {
                let json = serde_json::to_value(&event).unwrap();
                for (key, value) in json.as_object().unwrap() {
                    if let Some(s) = value.as_str() {
                        // Reasons and hints add our own text to at most MAX_FIELD of input;
                        // every other field is input only.
                        let max = if key == "reason" || key == "hint" { MAX_EVENT_TEXT } else { MAX_FIELD };
                        prop_assert!(s.chars().count() <= max, "{key}: {} chars", s.chars().count());
                    }
                }
            }
        }


        #[test]
        fn never_panics_and_chunking_does_not_matter(bytes in proptest::collection::vec(any::<u8>(), 0..2048), cut in 0usize..2048) {
            let whole = EventParser::parse_all(&bytes);
            let cut = cut.min(bytes.len());
            let mut p = EventParser::new();
            let mut split = p.push_bytes(&bytes[..cut]);
            split.extend(p.push_bytes(&bytes[cut..]));
            split.extend(p.finish());
            prop_assert_eq!(whole, split);
        }

        #[test]
        fn never_panics_on_log_like_text(lines in proptest::collection::vec("(Info: |Error: |HTTP Status: |\\{\"errorCode\":|PUT /|Registration |DevKit MAC Address: )?[ -~\\r\\n\u{80}-\u{10ffff}]{0,80}", 0..40)) {
            let text = lines.join("\r\n");
            let _ = EventParser::parse_all(text.as_bytes());
        }
    }
}
