//! Device log lines turned into structured registration events.
//!
//! The DevKit SDK logs `Info: <text>` and
//! `Error: Time:<ctime> File:<path> Func:<name> Line:<n> <text>` lines; the DPS client and our
//! sketch add status lines and, with tracing on, the raw HTTP exchange (devkit-facts.md §6).
//! [`EventParser`] reads that stream (bytes or lines, CRLF or not, split anywhere, with
//! garbage mixed in) and returns [`LogEvent`]s, each serialised as JSON with a `kind` tag:
//!
//! | kind | when |
//! | --- | --- |
//! | `boot` | the boot banner (state from the previous boot is forgotten) |
//! | `config_mode` | the configuration console's help banner |
//! | `identity` | MAC, firmware version, alias certificate SHA-256 (fields known so far) |
//! | `status` | Wi-Fi connected, DPS started, `PROV_DEVICE_REG_STATUS_*` / `Registration status:` |
//! | `registration_request` | the traced `PUT /<scope>/registrations/<id>/register` |
//! | `dps_error` | a DPS error reply (`HTTP Status:` + `{"errorCode":...}`) |
//! | `assigned` | the hub (and device ID when traced) the device was assigned to |
//! | `failed` | registration failed: `reason` and a `hint` saying what to do |
//! | `uds_missing` | the device has no (valid) UDS |
//! | `wifi_failed` | the device could not join Wi-Fi |
//! | `device_error` | any other `Error:` line |
//!
//! The parser never panics on any input (property-tested) and gives the same events however
//! the input is split into chunks.

use crate::monitor::framing::LineFramer;
use serde::{Deserialize, Serialize};

/// The hint for DPS error 401002, the most common provisioning failure.
pub const HINT_401002: &str = "the enrolled certificate does not match this device's identity; run `devkit inspect-cert <enrolled.pem> --against <generated.pem>` to see which input differs (UDS, firmware .riot_core/.riot_fw, registration ID), then regenerate the certificate and re-enroll it with `devkit enroll`";

/// One event recognised in the device's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
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
    /// Progress: `wifi_connected`, `dps_started`, `connected`, `registering`, `assigning`,
    /// `assigned`, ... (`PROV_DEVICE_REG_STATUS_X` becomes `x`).
    Status {
        status: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// The traced registration request.
    RegistrationRequest { id_scope: String, registration_id: String },
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
    /// Registration failed; `hint` says what the user should do.
    Failed {
        reason: String,
        hint: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        error_code: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        http_status: Option<u16>,
    },
    /// The device has no usable UDS.
    UdsMissing { message: String, hint: String },
    /// The device could not join Wi-Fi.
    WifiFailed { message: String, hint: String },
    /// Any other SDK `Error:` line.
    DeviceError {
        text: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        function: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        line: Option<u32>,
    },
}

const HINT_UDS: &str = "the device has no valid UDS: hold button A, press reset to enter configuration mode, then run `devkit set-uds --port <port> --generate --save-to <uds file>` (or --uds-file)";
const HINT_WIFI: &str = "check the Wi-Fi name and password: enter configuration mode (hold A, press reset) and run `devkit set-wifi --port <port> --ssid <name> --password-stdin`";

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
    last_status: Option<String>,
    /// `PROV_DEVICE_RESULT_X` of the SDK's registration callback, when logged.
    result: Option<String>,
    device_id: Option<String>,
    assigned_hub: Option<String>,
    failed_reported: bool,
    uds_missing: bool,
    wifi_failed: bool,
}

impl EventParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed raw bytes (any chunking); returns the events of the lines they complete.
    pub fn push_bytes(&mut self, bytes: &[u8]) -> Vec<LogEvent> {
        let lines = self.framer.push(bytes);
        lines.iter().flat_map(|l| self.line(l)).collect()
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
        let cleaned: String = raw.chars().map(|c| if c == '\t' { ' ' } else { c }).filter(|c| !c.is_control()).collect();
        let text = strip_timestamp(cleaned.trim());
        let mut out = Vec::new();
        if text.is_empty() {
            return out;
        }
        if text.contains("MXChip - Microsoft IoT Developer Kit") {
            *self = EventParser { framer: std::mem::take(&mut self.framer), ..EventParser::default() };
            out.push(LogEvent::Boot);
            return out;
        }
        if text.starts_with("Configuration console:") {
            out.push(LogEvent::ConfigMode);
            return out;
        }
        if let Some(rest) = strip_prefix_ci(text, "Error:") {
            let sdk = parse_sdk_error(rest);
            let before = out.len();
            self.classify(&sdk.text, &mut out);
            if out.len() == before && !rest.starts_with("Syntax error") && !rest.starts_with("Invalid command") {
                out.push(LogEvent::DeviceError { text: sdk.text, function: sdk.function, line: sdk.line });
            }
            return out;
        }
        let inner = strip_prefix_ci(text, "Info:").map(str::trim).unwrap_or(text);
        self.classify(inner, &mut out);
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

    /// Recognise one line's text (without any `Info:`/`Error:` prefix).
    fn classify(&mut self, text: &str, out: &mut Vec<LogEvent>) {
        let lower = text.to_ascii_lowercase();
        // The SDK's result code can share a line with "registration failed" (the sketch logs
        // `DPS registration failed. Error code: PROV_DEVICE_RESULT_DEV_AUTH_ERROR`): record it
        // before deciding what the line means, so the failure it announces is diagnosed right.
        if let Some(v) = after(text, "PROV_DEVICE_RESULT_") {
            let result: String = v.chars().take_while(|c| c.is_ascii_uppercase() || *c == '_').collect();
            if !result.is_empty() && result != "OK" {
                self.result = Some(result);
            }
        }
        if let Some(v) = after(text, "DevKit MAC Address:") {
            let mac: String = v.chars().filter(|c| c.is_ascii_hexdigit()).collect::<String>().to_ascii_lowercase();
            if mac.len() == 12 {
                self.mac = Some(mac);
                out.push(self.identity());
            }
        } else if let Some(v) = after(text, "DevKit Firmware Version:") {
            let v = first_word(v);
            if !v.is_empty() {
                self.firmware_version = Some(v.to_string());
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
            out.push(LogEvent::Status { status: "dps_started".into(), detail: Some(first_word(v).to_string()) });
        } else if let Some(v) = after(text, "Provisioning Status:") {
            let s = first_word(v);
            let s = s.strip_prefix("PROV_DEVICE_REG_STATUS_").unwrap_or(s);
            if !s.is_empty() {
                out.push(LogEvent::Status { status: s.to_ascii_lowercase(), detail: None });
            }
        } else if let Some(v) = after(text, "Registration status:") {
            let s = first_word(v);
            if !s.is_empty() {
                out.push(LogEvent::Status { status: s.to_ascii_lowercase(), detail: None });
            }
        } else if let Some(v) = after(text, "Registration Information received from service:") {
            let hub = v.trim().trim_end_matches('!').trim().to_string();
            if !hub.is_empty() && self.assigned_hub.as_deref() != Some(hub.as_str()) {
                self.assigned_hub = Some(hub.clone());
                out.push(LogEvent::Assigned { hub, device_id: self.device_id.clone() });
            }
        } else if lower.contains("failure encountered on registration")
            || lower.contains("registration failed")
            || lower.contains("failure registering device")
        {
            if !self.failed_reported {
                self.failed_reported = true;
                out.push(self.failure());
            }
        } else if lower.contains("uds string is empty") || lower.contains("diceinit failed") {
            if !self.uds_missing {
                self.uds_missing = true;
                out.push(LogEvent::UdsMissing { message: text.to_string(), hint: HINT_UDS.into() });
            }
        } else if let Some((scope, id)) = parse_register_put(text) {
            self.new_attempt();
            out.push(LogEvent::RegistrationRequest { id_scope: scope, registration_id: id });
        } else if let Some(v) = after(text, "HTTP Status:") {
            self.http_status = first_word(v).parse().ok();
        } else if let Some(code) = http_response_status(text) {
            self.http_status = Some(code);
        } else if let Some(v) = after(text, "Provisioning Failure:") {
            // Without the HTTP trace this SDK line is all the device says of DPS's answer
            // (`Provisioning Failure: Reason: Invalid certificate`); keep it for the diagnosis.
            let reason = v.trim().trim_start_matches("Reason:").trim().trim_end_matches('.');
            if self.error.is_none() && !reason.is_empty() {
                self.error = Some((None, Some(reason.to_string())));
            }
        } else if text.contains("\"errorCode\"") {
            let code = json_number(text, "errorCode").and_then(|c| u32::try_from(c).ok());
            let message = json_string(text, "message");
            let http_status = self.http_status.or_else(|| code.and_then(|c| u16::try_from(c / 1000).ok()));
            self.http_status = http_status;
            self.error = Some((code, message.clone()));
            out.push(LogEvent::DpsError { http_status, error_code: code, message, tracking_id: json_string(text, "trackingId") });
        } else if text.contains("\"assignedHub\"") {
            self.device_id = json_string(text, "deviceId");
            if let Some(hub) = json_string(text, "assignedHub") {
                if self.assigned_hub.as_deref() != Some(hub.as_str()) {
                    self.assigned_hub = Some(hub.clone());
                    out.push(LogEvent::Assigned { hub, device_id: self.device_id.clone() });
                }
            }
        } else if is_wifi_line(&lower) {
            // `Wi-Fi <ssid> connected.`: the SSID itself may contain any word, so the success
            // shape is checked first.
            let connected = lower.trim_end_matches('.').ends_with(" connected") && !lower.contains("not connected") && !lower.contains("failed to connect");
            if connected {
                out.push(LogEvent::Status { status: "wifi_connected".into(), detail: None });
            } else if is_failure(&lower) && !self.wifi_failed {
                self.wifi_failed = true;
                out.push(LogEvent::WifiFailed { message: text.to_string(), hint: HINT_WIFI.into() });
            }
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
        self.http_status = None;
        self.error = None;
        self.result = None;
        self.failed_reported = false;
        self.assigned_hub = None;
        self.device_id = None;
    }

    fn failure(&self) -> LogEvent {
        let (code, message) = self.error.clone().unwrap_or((None, None));
        let status = self.http_status;
        let msg = message.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
        let (reason, hint): (String, String) = match code {
            Some(401002) => (format!("DPS rejected the device certificate (errorCode 401002{msg}): {}", "the enrolled certificate does not match this device's identity"), HINT_401002.into()),
            Some(c) if c / 1000 == 401 => (
                format!("DPS refused the device's credentials (errorCode {c}{msg})"),
                "check that an individual enrollment with this device's alias certificate exists (`devkit enroll`) and that the ID scope is right".into(),
            ),
            Some(c) if c / 1000 == 404 => (
                format!("DPS has no enrollment for this registration ID (errorCode {c}{msg})"),
                "create the enrollment with `devkit enroll`, and check the ID scope compiled into the sketch".into(),
            ),
            Some(c) if c / 1000 == 400 => (
                format!("DPS rejected the registration request (errorCode {c}{msg})"),
                "check the registration ID (1 to 64 of a-z, 0-9 and '-') and the ID scope".into(),
            ),
            Some(c) if c / 1000 == 429 => (format!("DPS throttled the device (errorCode {c}{msg})"), "wait a minute, then press reset on the DevKit to try again".into()),
            Some(c) => (format!("DPS answered with errorCode {c}{msg}"), "press reset to retry; if it persists, check the enrollment in the Azure portal".into()),
            None if message.as_deref().is_some_and(|m| m.to_ascii_lowercase().contains("invalid certificate")) => (
                format!("DPS rejected the device certificate{msg}: the enrolled certificate does not match this device's identity"),
                HINT_401002.into(),
            ),
            None if self.result.as_deref() == Some("DEV_AUTH_ERROR") => (
                "DPS refused the device's authentication (PROV_DEVICE_RESULT_DEV_AUTH_ERROR): the enrolled certificate probably does not match this device's identity".into(),
                HINT_401002.into(),
            ),
            None if self.result.as_deref() == Some("DISABLED") => (
                "the device's enrollment is disabled (PROV_DEVICE_RESULT_DISABLED)".into(),
                "enable the individual enrollment (`devkit enroll` without --disabled, or in the Azure portal), then press reset".into(),
            ),
            None if self.uds_missing => ("the device has no valid UDS, so it has no identity to register with".into(), HINT_UDS.into()),
            None if self.wifi_failed => ("the device is not on the network (Wi-Fi failed)".into(), HINT_WIFI.into()),
            None => match status {
                Some(s) if s >= 400 => (format!("DPS answered HTTP {s}"), "press reset to retry; if it persists, check the enrollment and the ID scope".into()),
                _ => (
                    "registration failed before DPS answered (network, TLS or endpoint)".into(),
                    "check Wi-Fi and the global endpoint and ID scope in the sketch's dps_config.h; with tracing on, `devkit monitor --events` shows the HTTP exchange".into(),
                ),
            },
        };
        LogEvent::Failed { reason, hint, error_code: code, http_status: status }
    }
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
        let digits: String = after.chars().take_while(|c| c.is_ascii_digit()).collect();
        line = digits.parse().ok();
        text = after[digits.len()..].trim();
    }
    SdkError { text: text.to_string(), function, line }
}

/// Remove a leading `[timestamp] ` as `devkit monitor --timestamps` writes it.
fn strip_timestamp(text: &str) -> &str {
    if let Some(rest) = text.strip_prefix('[') {
        if let Some(end) = rest.find(']') {
            let stamp = &rest[..end];
            if end <= 40 && !stamp.is_empty() && stamp.chars().all(|c| c.is_ascii_digit() || ":.-+TZ ".contains(c)) {
                return rest[end + 1..].trim_start();
            }
        }
    }
    text
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

fn after<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    text.find(marker).map(|i| text[i + marker.len()..].trim())
}

fn first_word(text: &str) -> &str {
    text.split_whitespace().next().unwrap_or("")
}

fn is_wifi_line(lower: &str) -> bool {
    lower.contains("wi-fi") || lower.contains("wifi")
}

fn is_failure(lower: &str) -> bool {
    ["fail", "no wi-fi", "no wifi", "not connect", "cannot", "can't", "unable", "not set", "empty", "error", "timeout", "timed out"]
        .iter()
        .any(|w| lower.contains(w))
}

/// `HTTP/1.1 401 Unauthorized` (a traced response status line).
fn http_response_status(text: &str) -> Option<u16> {
    let i = text.find("HTTP/1.1 ")?;
    let code = text[i + 9..].get(..3)?;
    code.chars().all(|c| c.is_ascii_digit()).then(|| code.parse().ok())?
}

/// `PUT /<scope>/registrations/<id>/register...`
fn parse_register_put(text: &str) -> Option<(String, String)> {
    let i = text.find("PUT /")?;
    let path = text[i + 5..].split_whitespace().next()?;
    let path = path.split('?').next()?;
    let mut parts = path.split('/');
    let scope = parts.next()?;
    (parts.next()? == "registrations").then_some(())?;
    let id = parts.next()?;
    (parts.next()? == "register").then_some(())?;
    Some((percent_decode(scope), percent_decode(id)))
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// The number after `"key":` (lenient: the JSON may be cut or interleaved).
fn json_number(text: &str, key: &str) -> Option<u64> {
    let v = json_value_start(text, key)?;
    let digits: String = v.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// The string after `"key":` (lenient; `\"` escapes handled).
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
        let failed: Vec<_> = EventParser::parse_all(log).into_iter().filter(|e| matches!(e, LogEvent::Failed { .. })).collect();
        assert_eq!(failed.len(), 1, "{failed:?}");
        let LogEvent::Failed { reason, hint, .. } = &failed[0] else { unreachable!() };
        assert!(reason.contains("Invalid certificate") && reason.contains("does not match"), "{reason}");
        assert_eq!(hint, HINT_401002);
    }

    #[test]
    fn the_sdk_callback_failure_alone_is_a_failure() {
        let log = b"Error: Time:Wed Apr 11 03:41:34 2018 File:D:\\a\\prov_device_ll_client.c Func:prov_transport_process_json_reply Line:333 Provisioning Failure: Reason: Invalid certificate.\r\n\
Error: Time:Wed Apr 11 03:41:35 2018 File:D:\\a\\DevkitDPSClient.cpp Func:registation_status_callback Line:45 Failure registering device: PROV_DEVICE_RESULT_DEV_AUTH_ERROR\r\n";
        let events = EventParser::parse_all(log);
        let Some(LogEvent::Failed { reason, hint, .. }) = events.last() else { panic!("{events:?}") };
        assert_eq!(hint, HINT_401002);
        assert!(reason.contains("Invalid certificate:") && !reason.contains("certificate.:"), "{reason}");
    }

    #[test]
    fn a_result_code_on_the_failure_line_itself_is_used() {
        let log = b"DPS registration failed. Error code: PROV_DEVICE_RESULT_DEV_AUTH_ERROR\r\n";
        let events = EventParser::parse_all(log);
        assert!(matches!(&events[..], [LogEvent::Failed { hint, .. }] if hint == HINT_401002), "{events:?}");
    }

    #[test]
    fn error_401002_gives_failed_with_inspect_cert_hint() {
        let log = b"Info:    DPS Version: 1.3.9\r\nPUT /0ne00000001/registrations/az-c0bdd1a2b3c4v1v6v2/register?api-version=2019-03-31 HTTP/1.1\r\nHTTP Status: 401\r\n{\"errorCode\":401002,\"trackingId\":\"t-1\",\"message\":\"Invalid certificate\",\"timestampUtc\":\"x\"}\r\nFailure encountered on registration!\r\nregistration failed!\r\n";
        let events = EventParser::parse_all(log);
        assert!(events.contains(&LogEvent::RegistrationRequest { id_scope: "0ne00000001".into(), registration_id: "az-c0bdd1a2b3c4v1v6v2".into() }));
        assert!(events.contains(&LogEvent::DpsError { http_status: Some(401), error_code: Some(401002), message: Some("Invalid certificate".into()), tracking_id: Some("t-1".into()) }));
        let failed: Vec<_> = events.iter().filter(|e| matches!(e, LogEvent::Failed { .. })).collect();
        assert_eq!(failed.len(), 1, "one failure per attempt: {events:?}");
        match failed[0] {
            LogEvent::Failed { hint, error_code, reason, .. } => {
                assert_eq!(*error_code, Some(401002));
                assert!(reason.contains("does not match this device's identity"));
                assert!(hint.contains("devkit inspect-cert") && hint.contains("--against"));
            }
            _ => unreachable!(),
        }
    }

    #[test]
    fn sdk_error_lines_keep_function_and_line() {
        let mut p = EventParser::new();
        let ev = p.push_line("Error: Time:Sat Nov 28 17:00:00 2026 File:/src/x.cpp Func:foo Line:42 something odd happened\r\n");
        assert_eq!(ev, vec![LogEvent::DeviceError { text: "something odd happened".into(), function: Some("foo".into()), line: Some(42) }]);
    }

    #[test]
    fn timestamps_from_the_monitor_are_ignored() {
        let mut p = EventParser::new();
        let ev = p.push_line("[17:01:02.123] Info: DevKit MAC Address: C0:BD:D1:A2:B3:C4");
        assert_eq!(ev, vec![LogEvent::Identity { mac: Some("c0bdd1a2b3c4".into()), firmware_version: None, alias_cert_sha256: None }]);
    }

    #[test]
    fn events_serialise_with_kind() {
        let v = serde_json::to_value(LogEvent::Assigned { hub: "h.azure-devices.net".into(), device_id: None }).unwrap();
        assert_eq!(v, serde_json::json!({"kind": "assigned", "hub": "h.azure-devices.net"}));
        assert_eq!(serde_json::to_value(LogEvent::Boot).unwrap(), serde_json::json!({"kind": "boot"}));
    }

    proptest! {
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
