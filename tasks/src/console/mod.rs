//! The DevKit configuration-mode console client.
//!
//! The firmware's console (devkit-facts.md §2) echoes every character, masks the arguments of
//! `set_wifipwd` and `set_dps_uds` with `*`, splits words on spaces with quotes and
//! backslash escapes, parses at most 4 words and a 1023-character line, and ends every reply
//! with the prompt `"\r\n# "`. The original tools wrote blindly and slept; this client:
//! - detects configuration mode ([`Console::enter_config_mode`]: the prompt answers an empty
//!   line) and, when the device is not in it, tells the user to hold A and press reset, then
//!   keeps waiting up to a timeout;
//! - encodes arguments so the firmware reads back exactly the value ([`Command`]: spaces and
//!   quotes escaped) and refuses, before sending anything, what the firmware would mangle
//!   (more than 4 words, over-long lines, control characters);
//! - consumes the echo (masked for secrets: the secret never comes back), waits for the
//!   prompt and classifies the reply ([`ReplyKind`]);
//! - never logs or formats a secret: [`Command`]'s `Debug` shows the command name only.
//!
//! The client is synchronous over any [`Transport`]: an owned serial port
//! ([`Console::open`]) or a port the monitor lent out for exclusive use
//! ([`crate::monitor::ExclusivePort`], via [`crate::monitor::PortRegistry::exclusive`]).
//! From async code run it on `spawn_blocking` ([`run_on_port`] does that).

pub mod tcp;

use crate::error::{DomainError, ErrorKind, Input, InvalidInput, NextAction, NextStep};
use crate::identity::Uds;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// The prompt the console prints after every command.
pub const PROMPT: &[u8] = b"\r\n# ";
/// Longest line the firmware accepts (its buffer holds 1024 bytes, the 1024th overflows).
pub const MAX_LINE: usize = 1023;
/// Most words the firmware parses.
pub const MAX_WORDS: usize = 4;
/// Longest Wi-Fi SSID the firmware stores (its zone holds 32 bytes with the NUL).
pub const MAX_SSID: usize = 31;
/// Longest Wi-Fi password the firmware stores (64 bytes with the NUL).
pub const MAX_WIFI_PASSWORD: usize = 63;
/// What the user must do when the DevKit is not in configuration mode.
pub const GUIDANCE: &str = "the DevKit is not in configuration mode: hold button A, press and release the reset button, then release A";
/// Commands whose arguments the firmware echoes as `*`.
pub const MASKED_COMMANDS: [&str; 2] = ["set_wifipwd", "set_dps_uds"];

/// Default serial speed of the DevKit (115200 8N1).
pub const DEFAULT_BAUD: u32 = 115_200;

/// Something that moves bytes to and from the device.
pub trait Transport: Send {
    /// Read what arrives within `timeout`: `Ok(0)` when nothing did; an error when the port
    /// is gone.
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize>;
    fn write_all(&mut self, data: &[u8]) -> io::Result<()>;
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        (**self).read_timeout(buf, timeout)
    }
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        (**self).write_all(data)
    }
}

/// A transport that stops at the next read or write once `cancel` is cancelled. Reads wait
/// at most [`CANCEL_POLL`] at a time, so a cancelled blocking loop (waiting for configuration
/// mode, say) lets go of its port within that, not at its own timeout.
pub struct Cancellable<T> {
    pub inner: T,
    pub cancel: crate::progress::CancellationToken,
}

/// The longest a [`Cancellable`] read waits before looking at its cancellation again.
pub const CANCEL_POLL: Duration = Duration::from_millis(100);

impl<T: Transport> Transport for Cancellable<T> {
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        if self.cancel.is_cancelled() {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "cancelled"));
        }
        self.inner.read_timeout(buf, timeout.min(CANCEL_POLL))
    }
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        if self.cancel.is_cancelled() {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "cancelled"));
        }
        self.inner.write_all(data)
    }
}

/// A serial port opened by path.
pub struct SerialTransport(pub Box<dyn serialport::SerialPort>);

impl SerialTransport {
    /// Open `path` at `baud`, 8N1, no flow control, exclusively; a `tcp://HOST:PORT` name
    /// (the virtual DevKit on Windows, or `devkit sim --transport tcp`) is a [`tcp::TcpPort`].
    pub fn open(path: &Path, baud: u32) -> Result<SerialTransport, serialport::Error> {
        let name = path.to_string_lossy();
        if let Some(address) = tcp::tcp_address(&name) {
            return Ok(SerialTransport(Box::new(tcp::TcpPort::open(
                address,
                &name,
                baud,
                Duration::from_millis(100),
            )?)));
        }
        let port = serialport::new(name, baud)
            .data_bits(serialport::DataBits::Eight)
            .parity(serialport::Parity::None)
            .stop_bits(serialport::StopBits::One)
            .flow_control(serialport::FlowControl::None)
            .timeout(Duration::from_millis(100))
            .open()?;
        Ok(SerialTransport(port))
    }
}

/// Read from a serial port with a timeout, telling "nothing yet" (Ok(0)) from "gone" (Err).
pub fn read_port(
    port: &mut dyn serialport::SerialPort,
    buf: &mut [u8],
    timeout: Duration,
) -> io::Result<usize> {
    port.set_timeout(timeout.max(Duration::from_millis(1)))
        .map_err(io::Error::from)?;
    match port.read(buf) {
        Ok(0) => Err(io::Error::new(
            io::ErrorKind::BrokenPipe,
            "the port was closed (end of file)",
        )),
        Ok(n) => Ok(n),
        Err(e) if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::Interrupted => {
            Ok(0)
        }
        Err(e) => Err(e),
    }
}

impl Transport for SerialTransport {
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        read_port(&mut *self.0, buf, timeout)
    }
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        io::Write::write_all(&mut self.0, data)?;
        io::Write::flush(&mut self.0)
    }
}

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
pub struct Reply {
    pub kind: ReplyKind,
    pub text: String,
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

/// Errors talking to the console. None of them carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// Invalid input, refused before anything was sent (the CLI exits 2).
    #[error("{0} (nothing was sent)")]
    Refused(InvalidInput),
    #[error("cannot open serial port {port}: {source}")]
    Open {
        port: String,
        #[source]
        source: serialport::Error,
    },
    #[error("{GUIDANCE} (waited {waited_secs} s on {port})")]
    NotInConfigMode { port: String, waited_secs: u64 },
    #[error("no answer to `{command}` from {port} within {waited_secs} s; is the DevKit still in configuration mode?")]
    Timeout {
        port: String,
        command: String,
        waited_secs: u64,
    },
    #[error("serial port {port} went away while waiting for the answer to `{command}` ({detail}); was the DevKit unplugged or reset? Nothing was confirmed")]
    PortGone {
        port: String,
        command: String,
        detail: String,
    },
    #[error("serial port {port}: {source}")]
    Io {
        port: String,
        #[source]
        source: io::Error,
    },
    #[error("the DevKit refused `{command}`: {}", describe(kind, reply))]
    Rejected {
        command: String,
        kind: ReplyKind,
        reply: String,
    },
    #[error("unexpected answer from the DevKit to `{command}`: {detail}")]
    Protocol { command: String, detail: String },
}

impl ConsoleError {
    fn refused(input: Input, reason: impl Into<String>) -> Self {
        ConsoleError::Refused(InvalidInput::new(input, reason))
    }
}

impl DomainError for ConsoleError {
    fn kind(&self) -> ErrorKind {
        match self {
            ConsoleError::Refused(_) => ErrorKind::InvalidInput,
            ConsoleError::Open { .. } => ErrorKind::NotFound,
            _ => ErrorKind::Device,
        }
    }
    fn invalid_input(&self) -> Option<&InvalidInput> {
        match self {
            ConsoleError::Refused(i) => Some(i),
            _ => None,
        }
    }
    fn next_actions(&self) -> Vec<NextStep> {
        match self {
            ConsoleError::NotInConfigMode { .. } | ConsoleError::Timeout { .. } => vec![
                NextStep::new(NextAction::EnterConfigMode),
                NextStep::new(NextAction::Retry),
            ],
            ConsoleError::Open { .. } | ConsoleError::PortGone { .. } => {
                vec![NextStep::new(NextAction::SelectPort)]
            }
            _ => Vec::new(),
        }
    }
}

fn describe(kind: &ReplyKind, reply: &str) -> String {
    let what = match kind {
        ReplyKind::Usage => "missing or malformed argument".to_string(),
        ReplyKind::InvalidValue => "the value is invalid for the device".to_string(),
        ReplyKind::EepromWrite { zone } => format!(
            "writing the secure chip failed (zone {})",
            zone.map_or("?".into(), |z| format!("0x{z:02x}"))
        ),
        ReplyKind::EepromVerify => "the secure chip did not read back what was written".into(),
        ReplyKind::SyntaxError => "syntax error (unterminated quote)".into(),
        ReplyKind::InvalidCommand { name } => format!("unknown command `{name}` (older firmware?)"),
        ReplyKind::BufferOverflow => "the line overflowed the device's input buffer".into(),
        ReplyKind::Success | ReplyKind::Output => "unexpected".into(),
    };
    let reply = reply.trim().replace("\r\n", " / ");
    if reply.is_empty() {
        what
    } else {
        format!("{what} (device said: {reply})")
    }
}

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

/// The device's versions (`version`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceVersion {
    /// `DevKitSDK version: X.Y.Z` (what the registration ID is built from).
    pub devkit_sdk: String,
    /// Every `Name version: value` line.
    pub all: Vec<(String, String)>,
}

/// A console session over a transport.
pub struct Console<T: Transport> {
    port: T,
    name: String,
    rx: Vec<u8>,
}

impl Console<SerialTransport> {
    /// Open the serial port at `path` (115200 8N1 for a DevKit).
    pub fn open(path: &Path, baud: u32) -> Result<Self, ConsoleError> {
        let t = SerialTransport::open(path, baud).map_err(|source| ConsoleError::Open {
            port: path.display().to_string(),
            source,
        })?;
        Ok(Console::new(t, path.display().to_string()))
    }
}

impl<T: Transport> Console<T> {
    /// A console over `port`; `name` names the port in messages.
    pub fn new(port: T, name: impl Into<String>) -> Self {
        Console {
            port,
            name: name.into(),
            rx: Vec::new(),
        }
    }

    fn gone(&self, command: &str, e: io::Error) -> ConsoleError {
        ConsoleError::PortGone {
            port: self.name.clone(),
            command: command.to_string(),
            detail: e.to_string(),
        }
    }

    /// Read once (up to `slice`); returns whether bytes arrived.
    fn fill(&mut self, slice: Duration, command: &str) -> Result<bool, ConsoleError> {
        let mut buf = [0u8; 1024];
        let n = self
            .port
            .read_timeout(&mut buf, slice)
            .map_err(|e| self.gone(command, e))?;
        self.rx.extend_from_slice(&buf[..n]);
        Ok(n > 0)
    }

    /// Make sure the DevKit is in configuration mode: an empty line is answered with the
    /// prompt. When it is not, `guidance` is called once with [`GUIDANCE`] and we keep
    /// asking until `timeout`.
    pub fn enter_config_mode(
        &mut self,
        timeout: Duration,
        guidance: &mut dyn FnMut(&str),
    ) -> Result<(), ConsoleError> {
        let start = Instant::now();
        let mut told = false;
        loop {
            self.rx.clear();
            self.port
                .write_all(b"\r")
                .map_err(|e| self.gone("(configuration mode check)", e))?;
            let probe_end = Instant::now() + Duration::from_millis(800);
            while Instant::now() < probe_end {
                self.fill(Duration::from_millis(50), "(configuration mode check)")?;
                if find(&self.rx, PROMPT).is_some() {
                    // Output ending at the prompt: the console waits for us. Otherwise let the
                    // rest of a boot banner / extra prompts pass (bounded), then start clean.
                    if !self.rx.ends_with(PROMPT) {
                        let quiet_by = Instant::now() + Duration::from_secs(1);
                        while self.fill(Duration::from_millis(100), "(configuration mode check)")?
                            && Instant::now() < quiet_by
                        {}
                    }
                    self.rx.clear();
                    return Ok(());
                }
                if find(&self.rx, b"Configuration console:").is_some() {
                    // Booting into configuration mode right now: the prompt follows.
                    continue;
                }
            }
            if start.elapsed() >= timeout {
                return Err(ConsoleError::NotInConfigMode {
                    port: self.name.clone(),
                    waited_secs: timeout.as_secs(),
                });
            }
            if !told {
                told = true;
                guidance(GUIDANCE);
            }
        }
    }

    /// Send a command, consume its echo, wait for the prompt and classify the reply. When the
    /// echo is missing (another program reading the port took it) but the command's
    /// confirmation line arrives before a prompt, that line is the answer.
    pub fn command(&mut self, cmd: &Command, timeout: Duration) -> Result<Reply, ConsoleError> {
        let label = cmd.name().to_string();
        // Forget stale output so that only this command's echo and reply are read.
        let drain_by = Instant::now() + Duration::from_millis(200);
        while self.fill(Duration::from_millis(1), &label)? && Instant::now() < drain_by {}
        self.rx.clear();
        let mut line = cmd.encode();
        line.push(b'\r');
        self.port
            .write_all(&line)
            .map_err(|e| self.gone(&label, e))?;
        drop(line);
        let echo = cmd.expected_echo();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = find(&self.rx, &echo) {
                let after = e + echo.len();
                if let Some(p) = find(&self.rx[after..], PROMPT) {
                    let text = String::from_utf8_lossy(&self.rx[after..after + p])
                        .trim_start_matches("\r\n")
                        .to_string();
                    self.rx.drain(..after + p + PROMPT.len());
                    return Ok(Reply {
                        kind: classify(&text),
                        text,
                    });
                }
            } else if let Some(reply) = self.confirmed_without_echo(cmd) {
                return Ok(reply);
            }
            let now = Instant::now();
            if now >= deadline {
                if find(&self.rx, PROMPT).is_some() && find(&self.rx, &echo).is_none() {
                    let stored = if cmd.confirmation().is_some() {
                        "; the device may have stored the value"
                    } else {
                        ""
                    };
                    return Err(ConsoleError::Protocol {
                        command: label,
                        detail: format!("the echo did not match what was sent (line noise, or another program reading or typing on the port?){stored}"),
                    });
                }
                return Err(ConsoleError::Timeout {
                    port: self.name.clone(),
                    command: label,
                    waited_secs: timeout.as_secs(),
                });
            }
            self.fill((deadline - now).min(Duration::from_millis(100)), &label)?;
        }
    }

    /// The reply to `cmd` from its confirmation line and the prompt after it, when its echo
    /// is missing. The reply is what the device printed since the previous prompt (so a
    /// preceding `Invalid ...` line still counts), shown as the confirmation line alone.
    fn confirmed_without_echo(&mut self, cmd: &Command) -> Option<Reply> {
        let confirmation = cmd.confirmation()?.as_bytes();
        let c = find(&self.rx, confirmation)?;
        let p = c + find(&self.rx[c..], PROMPT)?;
        let start = self.rx[..c]
            .windows(PROMPT.len())
            .rposition(|w| w == PROMPT)
            .map_or(0, |i| i + PROMPT.len());
        let kind = classify(&String::from_utf8_lossy(&self.rx[start..p]));
        let text = format!("{}\r\n", String::from_utf8_lossy(confirmation));
        self.rx.drain(..p + PROMPT.len());
        Some(Reply { kind, text })
    }

    /// Run a command and require success.
    pub fn run(&mut self, cmd: &Command, timeout: Duration) -> Result<Reply, ConsoleError> {
        let reply = self.command(cmd, timeout)?;
        if reply.is_success() {
            Ok(reply)
        } else {
            Err(ConsoleError::Rejected {
                command: cmd.name().to_string(),
                kind: reply.kind,
                reply: reply.text,
            })
        }
    }

    /// Store the UDS (`set_dps_uds`). The [`Uds`] type is already validated (the firmware
    /// would store a bad one anyway); the value is sent once and echoed back masked.
    pub fn set_uds(&mut self, uds: &Uds, timeout: Duration) -> Result<Reply, ConsoleError> {
        let hex = uds.to_hex();
        let cmd = Command::new("set_dps_uds", &[hex.as_str()])?;
        self.run(&cmd, timeout)
    }

    /// Store the Wi-Fi SSID and password (`set_wifissid`, `set_wifipwd`). Both are validated
    /// before anything is sent. An empty password clears it (open network).
    pub fn set_wifi(
        &mut self,
        ssid: &str,
        password: &str,
        timeout: Duration,
    ) -> Result<(), ConsoleError> {
        let ssid_cmd = wifi_ssid_command(ssid)?;
        let pwd_cmd = wifi_password_command(password)?;
        self.run(&ssid_cmd, timeout)?;
        self.run(&pwd_cmd, timeout)?;
        Ok(())
    }

    /// The device's versions (`version`).
    pub fn version(&mut self, timeout: Duration) -> Result<DeviceVersion, ConsoleError> {
        let reply = self.run(&Command::new("version", &[])?, timeout)?;
        parse_version(&reply.text).ok_or_else(|| ConsoleError::Protocol {
            command: "version".into(),
            detail: "no `DevKitSDK version:` line".into(),
        })
    }

    /// Give the transport back.
    pub fn into_inner(self) -> T {
        self.port
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

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Open `port`, make sure it is in configuration mode (calling `guidance` if the user must
/// act), then run `f`, all on a blocking thread.
pub async fn run_on_port<R, F>(
    port: PathBuf,
    baud: u32,
    config_timeout: Duration,
    cancel: crate::progress::CancellationToken,
    guidance: impl FnMut(&str) + Send + 'static,
    f: F,
) -> Result<R, ConsoleError>
where
    R: Send + 'static,
    F: FnOnce(&mut Console<Cancellable<SerialTransport>>) -> Result<R, ConsoleError>
        + Send
        + 'static,
{
    let name = port.display().to_string();
    tokio::task::spawn_blocking(move || {
        let mut guidance = guidance;
        let t = SerialTransport::open(&port, baud).map_err(|source| ConsoleError::Open {
            port: port.display().to_string(),
            source,
        })?;
        let mut console =
            Console::new(Cancellable { inner: t, cancel }, port.display().to_string());
        console.enter_config_mode(config_timeout, &mut guidance)?;
        f(&mut console)
    })
    .await
    .map_err(|e| ConsoleError::Io {
        port: name,
        source: io::Error::other(e.to_string()),
    })?
}

#[cfg(test)]
mod tests {
    use super::*;
    #[allow(unused_imports)]
    use crate::error::DomainError;
    use crate::sim::console::parse_args;

    #[cfg(unix)]
    #[tokio::test]
    async fn a_cancelled_run_lets_go_of_the_port_long_before_its_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = crate::sim::SimOptions::new(dir.path());
        opts.config_mode = false; // it waits for configuration mode, up to a minute
        let sim = crate::sim::VirtualDevKit::start(opts).unwrap();
        let cancel = crate::progress::CancellationToken::new();
        let later = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            later.cancel();
        });
        let run = run_on_port(
            sim.port_path().to_path_buf(),
            DEFAULT_BAUD,
            Duration::from_secs(60),
            cancel,
            |_: &str| {},
            |c| c.version(Duration::from_secs(10)),
        );
        // Returning means the blocking loop has ended and closed the port.
        let r = tokio::time::timeout(Duration::from_secs(30), run)
            .await
            .expect("the cancelled run still holds the port");
        assert!(r.is_err());
        assert!(
            SerialTransport::open(sim.port_path(), DEFAULT_BAUD).is_ok(),
            "the port opens again"
        );
    }

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

    /// A device whose echo another reader takes: only the reply lines reach us.
    struct EchoEaten {
        out: std::collections::VecDeque<u8>,
        reply: &'static str,
    }

    impl Transport for EchoEaten {
        fn read_timeout(&mut self, buf: &mut [u8], _timeout: Duration) -> io::Result<usize> {
            let n = buf.len().min(self.out.len());
            for b in buf.iter_mut().take(n) {
                *b = self.out.pop_front().unwrap_or_default();
            }
            Ok(n)
        }
        fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
            if data.ends_with(b"\r") {
                // The echo (`set_dps_u` + masked part) went to someone else; a scrap may remain.
                self.out
                    .extend(b"\r\n".iter().chain(self.reply.as_bytes()).chain(PROMPT));
            }
            Ok(())
        }
    }

    #[test]
    fn a_stored_uds_is_confirmed_by_its_reply_when_the_echo_was_taken() {
        let uds = crate::identity::Uds::generate();
        let mut c = Console::new(
            EchoEaten {
                out: Default::default(),
                reply: "***\r\nINFO: Set DPS UDS successfully.\r\n",
            },
            "test",
        );
        let reply = c.set_uds(&uds, Duration::from_millis(500)).unwrap();
        assert_eq!(reply.kind, ReplyKind::Success);
        assert!(!reply.text.contains(uds.to_hex().as_str()));
        // A device that answered with an error is still an error.
        let mut c = Console::new(
            EchoEaten {
                out: Default::default(),
                reply: "ERROR: Verify failed.\r\nINFO: Set DPS UDS successfully.\r\n",
            },
            "test",
        );
        assert!(matches!(
            c.set_uds(&uds, Duration::from_millis(500)),
            Err(ConsoleError::Rejected {
                kind: ReplyKind::EepromVerify,
                ..
            })
        ));
        // No confirmation at all: a protocol error that says the value may be stored.
        let mut c = Console::new(
            EchoEaten {
                out: Default::default(),
                reply: "",
            },
            "test",
        );
        let e = c
            .set_uds(&uds, Duration::from_millis(300))
            .unwrap_err()
            .to_string();
        assert!(e.contains("may have stored"), "{e}");
    }

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
