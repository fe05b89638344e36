//! Console commands encoded for the firmware's tokenizer: spaces and quotes escaped, what it
//! would mangle refused before anything is sent, secret arguments masked in the echo we expect
//! and never formatted.

use super::error::ConsoleError;
use super::{MASKED_COMMANDS, MAX_LINE, MAX_SSID, MAX_WIFI_PASSWORD, MAX_WORDS};
use crate::error::{Input, InvalidInput};
use zeroize::Zeroizing;

/// One console command, validated and encoded for the firmware's tokenizer. Arguments are
/// zeroized on drop; `Debug` shows the name only.
pub struct Command {
    name: String,
    args: Vec<Zeroizing<String>>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Command({}, {} argument(s))", self.name, self.args.len())
    }
}

impl Command {
    /// Validate a command: a name of `[a-z0-9_]`, at most 3 arguments (4 words), no control
    /// characters, a value may end in a backslash only as the last word, and the encoded line
    /// fits the firmware's buffer.
    pub fn new(name: &str, args: &[&str]) -> Result<Command, ConsoleError> {
        let input = match name {
            "set_wifissid" => Input::WifiSsid,
            "set_wifipwd" => Input::WifiPassword,
            "set_dps_uds" => Input::Uds,
            _ => Input::Command,
        };
        let refuse = |what: &str, reason: String| {
            ConsoleError::Refused(InvalidInput::new(input, reason).named(what))
        };
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(refuse(
                "command",
                format!("`{name}`: a command name is lower-case letters, digits and `_`"),
            ));
        }
        if 1 + args.len() > MAX_WORDS {
            return Err(refuse(
                "command",
                format!(
                    "`{name}` with {} arguments: the DevKit parses at most {MAX_WORDS} words",
                    args.len()
                ),
            ));
        }
        let masked = MASKED_COMMANDS.contains(&name);
        for (i, a) in args.iter().enumerate() {
            let what = if masked {
                format!("{name} argument")
            } else {
                format!("{name} argument `{a}`")
            };
            if a.chars().any(|c| c.is_control()) {
                return Err(refuse(&what, "control characters (tab, newline, ...) cannot be typed into the DevKit console".into()));
            }
            if a.ends_with('\\') && i + 1 < args.len() {
                return Err(refuse(
                    &what,
                    "a value ending in a backslash can only be the last word".into(),
                ));
            }
        }
        let cmd = Command {
            name: name.to_string(),
            args: args.iter().map(|a| Zeroizing::new(a.to_string())).collect(),
        };
        let len = cmd.encode().len();
        if len > MAX_LINE {
            return Err(refuse(
                &format!("{name} line"),
                format!("{len} bytes once encoded; the DevKit accepts at most {MAX_LINE}"),
            ));
        }
        Ok(cmd)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn masked(&self) -> bool {
        MASKED_COMMANDS.contains(&self.name.as_str())
    }

    /// The line the firmware prints once this command's value is stored and verified
    /// (devkit-facts.md §2). It confirms the command even when its echo never reached us
    /// (another reader on the port took it): the firmware has no command to read a secret back.
    pub fn confirmation(&self) -> Option<&'static str> {
        match self.name.as_str() {
            "set_dps_uds" => Some("INFO: Set DPS UDS successfully."),
            "set_wifissid" => Some("INFO: Set Wi-Fi SSID successfully."),
            "set_wifipwd" => Some("INFO: Set Wi-Fi password successfully."),
            _ => None,
        }
    }

    /// The bytes typed (without the final CR): spaces and quotes escaped with a backslash,
    /// an empty value as `""`.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut line = Zeroizing::new(self.name.as_bytes().to_vec());
        for a in &self.args {
            line.push(b' ');
            if a.is_empty() {
                line.extend_from_slice(b"\"\"");
            }
            for &b in a.as_bytes() {
                if b == b' ' || b == b'"' {
                    line.push(b'\\');
                }
                line.push(b);
            }
        }
        line
    }

    /// What the device echoes: the line, with everything after `name ` as `*` when masked.
    pub fn expected_echo(&self) -> Vec<u8> {
        let line = self.encode();
        if self.masked() && line.len() > self.name.len() {
            let mut echo = self.name.as_bytes().to_vec();
            echo.push(b' ');
            echo.resize(line.len(), b'*');
            echo
        } else {
            line.to_vec()
        }
    }
}

/// `set_wifissid <ssid>`, validated: 1 to 31 bytes.
pub fn wifi_ssid_command(ssid: &str) -> Result<Command, ConsoleError> {
    if ssid.is_empty() || ssid.len() > MAX_SSID {
        return Err(ConsoleError::refused(
            Input::WifiSsid,
            format!("{} bytes; the DevKit stores 1 to {MAX_SSID}", ssid.len()),
        ));
    }
    Command::new("set_wifissid", &[ssid])
}

/// `set_wifipwd [password]`, validated: at most 63 bytes; empty clears it.
pub fn wifi_password_command(password: &str) -> Result<Command, ConsoleError> {
    if password.len() > MAX_WIFI_PASSWORD {
        return Err(ConsoleError::refused(
            Input::WifiPassword,
            format!("too long; the DevKit stores at most {MAX_WIFI_PASSWORD} bytes"),
        ));
    }
    if password.is_empty() {
        Command::new("set_wifipwd", &[])
    } else {
        Command::new("set_wifipwd", &[password])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[allow(unused_imports)]
    use crate::error::DomainError;
    use crate::sim::console::parse_args;

    fn roundtrip(args: &[&str]) -> Vec<String> {
        let cmd = Command::new("set_wifissid", args).unwrap();
        parse_args(&cmd.encode())
            .unwrap()
            .iter()
            .map(|a| String::from_utf8(a.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn encoding_survives_the_firmware_tokenizer() {
        for v in [
            "plain",
            "My Home Net",
            "say \"hi\"",
            "\"lead",
            "a\\ b",
            "a\\\"b",
            "end\\",
            "tab-free  double",
            "ünï côdé",
        ] {
            assert_eq!(
                roundtrip(&[v]),
                vec!["set_wifissid".to_string(), v.to_string()],
                "value {v:?}"
            );
        }
        assert_eq!(
            roundtrip(&[""]),
            vec!["set_wifissid".to_string(), String::new()]
        );
    }

    proptest::proptest! {
        /// Whatever the value (no control characters), the firmware reads back exactly it.
        #[test]
        fn any_value_survives_the_firmware_tokenizer(a in "[^\\p{Cc}]{0,60}", b in "[^\\p{Cc}]{0,60}") {
            match Command::new("set_az_iothub", &[&a, &b]) {
                Ok(cmd) => {
                    let args: Vec<Vec<u8>> = parse_args(&cmd.encode()).unwrap().iter().map(|x| x.to_vec()).collect();
                    proptest::prop_assert_eq!(args, vec![b"set_az_iothub".to_vec(), a.as_bytes().to_vec(), b.as_bytes().to_vec()]);
                }
                Err(e) => proptest::prop_assert!(a.ends_with('\\'), "refused only for a trailing backslash before another word: {}", e),
            }
        }
    }

    #[test]
    fn refusals_happen_before_sending() {
        assert!(Command::new("set_wifissid", &["a", "b", "c", "d"])
            .unwrap_err()
            .is_invalid_input());
        assert!(Command::new("set_wifissid", &["a\tb"])
            .unwrap_err()
            .is_invalid_input());
        assert!(Command::new("set_wifissid", &["a\\", "b"])
            .unwrap_err()
            .is_invalid_input());
        assert!(Command::new("set_az_iothub", &[&"x".repeat(1010)])
            .unwrap_err()
            .is_invalid_input());
        assert!(Command::new("set_az_iothub", &[&"x".repeat(1009)]).is_ok());
        assert!(wifi_ssid_command(&"s".repeat(32))
            .unwrap_err()
            .is_invalid_input());
        assert!(wifi_password_command(&"p".repeat(64))
            .unwrap_err()
            .is_invalid_input());
    }

    #[test]
    fn masked_echo_and_debug_hide_the_value() {
        let cmd = Command::new("set_dps_uds", &["secretsecret"]).unwrap();
        assert_eq!(cmd.expected_echo(), b"set_dps_uds ************");
        assert!(!format!("{cmd:?}").contains("secret"));
        let err = Command::new("set_wifipwd", &["sec\nret"])
            .unwrap_err()
            .to_string();
        assert!(!err.contains("sec"), "{err}");
    }
}
