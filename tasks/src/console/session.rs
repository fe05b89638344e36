//! A console session: configuration-mode detection, one command at a time (echo consumed,
//! prompt awaited, reply classified), and [`run_on_port`] for async callers.

use super::command::{wifi_password_command, wifi_ssid_command, Command};
use super::error::ConsoleError;
use super::reply::{classify, parse_version, ConfirmedBy, DeviceVersion, Reply};
use super::transport::{Cancellable, SerialTransport, Transport};
use super::{GUIDANCE, PROMPT};
use crate::identity::Uds;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
                        confirmed_by: ConfirmedBy::Echo,
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
        Some(Reply {
            kind,
            text,
            confirmed_by: ConfirmedBy::InfoLine,
        })
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
    use crate::console::reply::ReplyKind;
    #[cfg(unix)]
    use crate::console::DEFAULT_BAUD;
    use crate::console::PROMPT;

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
}
