//! What the device answered: the reply between a command's echo and the next prompt,
//! classified by the firmware's fixed texts (devkit-facts.md §2).

/// How the device answered a command.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum ReplyKind {
    /// `INFO: ...`: the value was stored and verified.
    Success,
    /// Plain output (`help`, `version`, `scan`).
    Output,
    /// `Usage: ...`: missing argument.
    Usage,
    /// `Invalid ...` (for `set_dps_uds` the firmware stores the value anyway).
    InvalidValue,
    /// `ERROR: Failed to write EEPROM: 0xNN.`
    EepromWrite { zone: Option<u8> },
    /// `ERROR: Verify failed.`
    EepromVerify,
    /// `Error:Syntax error` (unterminated quote).
    SyntaxError,
    /// `Error:Invalid command: NAME`.
    InvalidCommand { name: String },
    /// `Error: input buffer overflow`.
    BufferOverflow,
}

/// A classified reply. `text` is what the device printed between the echo and the prompt
/// (never a secret: secrets are not echoed).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reply {
    pub kind: ReplyKind,
    pub text: String,
    /// Whether the command's echo came back before the reply, or only its confirmation line.
    pub confirmed_by: ConfirmedBy,
}

/// How a command was confirmed: its echo followed by the reply, or (when another reader on
/// the port took the echo) the firmware's confirmation line alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConfirmedBy {
    Echo,
    InfoLine,
}

impl Reply {
    pub fn is_success(&self) -> bool {
        matches!(self.kind, ReplyKind::Success | ReplyKind::Output)
    }
}

/// Classify the device's answer to one command.
pub fn classify(text: &str) -> ReplyKind {
    let lines: Vec<&str> = text
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let any = |p: &dyn Fn(&str) -> bool| lines.iter().any(|l| p(l));
    if any(&|l| l.starts_with("Error:Syntax error")) {
        ReplyKind::SyntaxError
    } else if let Some(l) = lines
        .iter()
        .find(|l| l.starts_with("Error:Invalid command:"))
    {
        ReplyKind::InvalidCommand {
            name: l["Error:Invalid command:".len()..].trim().to_string(),
        }
    } else if any(&|l| l.contains("input buffer overflow")) {
        ReplyKind::BufferOverflow
    } else if let Some(l) = lines
        .iter()
        .find(|l| l.starts_with("ERROR: Failed to write EEPROM"))
    {
        let zone = l
            .rsplit("0x")
            .next()
            .and_then(|h| u8::from_str_radix(h.trim_end_matches('.'), 16).ok());
        ReplyKind::EepromWrite { zone }
    } else if any(&|l| l.starts_with("ERROR: Verify failed")) {
        ReplyKind::EepromVerify
    } else if any(&|l| l.starts_with("Usage:")) {
        ReplyKind::Usage
    } else if any(&|l| l.starts_with("Invalid ")) {
        ReplyKind::InvalidValue
    } else if any(&|l| l.starts_with("INFO:")) {
        ReplyKind::Success
    } else {
        ReplyKind::Output
    }
}

/// The device's versions (`version`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceVersion {
    /// `DevKitSDK version: X.Y.Z` (what the registration ID is built from).
    pub devkit_sdk: String,
    /// Every `Name version: value` line.
    pub all: Vec<(String, String)>,
}

/// Parse the `version` command's output.
pub fn parse_version(text: &str) -> Option<DeviceVersion> {
    let all: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| {
            l.split_once(" version:")
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    let devkit_sdk = all.iter().find(|(k, _)| k == "DevKitSDK")?.1.clone();
    Some(DeviceVersion { devkit_sdk, all })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_classified() {
        assert_eq!(
            classify("INFO: Set Wi-Fi SSID successfully.\r\n"),
            ReplyKind::Success
        );
        assert_eq!(
            classify("Invalid UDS.\r\nINFO: Set DPS UDS successfully.\r\n"),
            ReplyKind::InvalidValue
        );
        assert_eq!(
            classify("Usage: set_wifissid <SSID>. Please provide the SSID of the Wi-Fi.\r\n"),
            ReplyKind::Usage
        );
        assert_eq!(
            classify("ERROR: Failed to write EEPROM: 0x0a.\r\n"),
            ReplyKind::EepromWrite { zone: Some(10) }
        );
        assert_eq!(
            classify("ERROR: Verify failed.\r\n"),
            ReplyKind::EepromVerify
        );
        assert_eq!(classify("Error:Syntax error\r\n"), ReplyKind::SyntaxError);
        assert_eq!(
            classify("Error:Invalid command: frob\r\n"),
            ReplyKind::InvalidCommand {
                name: "frob".into()
            }
        );
        assert_eq!(classify("DevKitSDK version: 1.6.2\r\n"), ReplyKind::Output);
        let v = parse_version("DevKitSDK version: 1.6.2\r\nMico version: 3\r\n").unwrap();
        assert_eq!(v.devkit_sdk, "1.6.2");
    }
}
