//! The set-uds and set-wifi tasks: request -> plan -> run -> report, the same for the CLI (which
//! opens the port) and the daemon (which borrows it from its monitor through
//! [`crate::monitor::PortRegistry::exclusive`]).
//!
//! One rule both adapters used to decide on their own now holds here: a generated UDS is kept
//! — in a new file (0600, written once the device is in configuration mode, before the UDS is
//! sent) or, when the caller asked for it, returned to the caller in the outcome (the daemon's
//! `returnUds`, for the editor's secret storage). A generated UDS kept nowhere is refused before
//! the port is touched: the device's certificate could never be computed.

use super::error::ConsoleError;
use super::reply::{ConfirmedBy, Reply};
use super::session::Console;
use super::transport::{Cancellable, SerialTransport, Transport};
use super::DEFAULT_BAUD;
use crate::error::{Input, InvalidInput, NextAction, NextStep};
use crate::identity::uds::{check_new_uds_file, save_new_uds};
use crate::identity::{IdentityError, Uds};
use crate::progress::{CancellationToken, Progress};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;
use zeroize::Zeroizing;

/// How long to wait for configuration mode (the user holds A and presses reset) and for each
/// reply, unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the UDS to push comes from.
pub enum UdsChoice {
    /// A UDS the caller read and checked (from a file, stdin or a request param).
    Given(Uds),
    /// A fresh UDS from the OS's cryptographic random source, kept as `keep` says.
    Generate(KeepUds),
}

/// Where a generated UDS is kept. There is no "nowhere".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeepUds {
    /// A new file (mode 0600, never over an existing file).
    File(PathBuf),
    /// Handed back to the caller in [`SetUdsOutcome::uds`] (the daemon's client stores it).
    ReturnToCaller,
    /// A file, and handed back too.
    FileAndCaller(PathBuf),
}

impl KeepUds {
    fn file(&self) -> Option<&Path> {
        match self {
            KeepUds::File(p) | KeepUds::FileAndCaller(p) => Some(p),
            KeepUds::ReturnToCaller => None,
        }
    }
    fn returned(&self) -> bool {
        matches!(self, KeepUds::ReturnToCaller | KeepUds::FileAndCaller(_))
    }
}

/// The inputs of a set-uds run as an adapter receives them.
#[derive(Default)]
pub struct SetUdsRequest {
    /// The DevKit's serial port (or the virtual DevKit's pty / `tcp://` address).
    pub port: String,
    /// A UDS already read and checked by the adapter; `None` with `generate`.
    pub uds: Option<Uds>,
    /// Generate a fresh UDS.
    pub generate: bool,
    /// With `generate`: the new file to keep it in.
    pub save_uds_to: Option<PathBuf>,
    /// With `generate`: hand it back to the caller (only an adapter that can store a secret
    /// for its user offers this: the daemon).
    pub return_uds: bool,
    /// [default: [`DEFAULT_BAUD`]]
    pub baud: Option<u32>,
    /// How long to wait for configuration mode and for each reply [default: [`DEFAULT_TIMEOUT`]].
    pub timeout: Option<Duration>,
}

/// A validated set-uds run: nothing has been sent or written yet.
pub struct SetUdsPlan {
    pub port: String,
    pub uds: UdsChoice,
    pub baud: u32,
    pub timeout: Duration,
}

fn refused(input: Input, reason: impl Into<String>) -> ConsoleError {
    ConsoleError::Refused(InvalidInput::new(input, reason))
}

/// A UDS file refusal is the caller's input; other identity errors are failures.
fn uds_file_error(e: IdentityError) -> ConsoleError {
    match e {
        IdentityError::Invalid(i) => ConsoleError::Refused(i),
        e => ConsoleError::SaveUds(e),
    }
}

fn port_and_timing(
    port: &str,
    baud: Option<u32>,
    timeout: Option<Duration>,
) -> Result<(String, u32, Duration), ConsoleError> {
    if port.trim().is_empty() {
        return Err(refused(
            Input::Port,
            "is required: the DevKit's serial port",
        ));
    }
    let baud = baud.unwrap_or(DEFAULT_BAUD);
    if baud == 0 {
        return Err(refused(
            Input::Port,
            "a baud rate of 0 cannot be set (the DevKit uses 115200)",
        ));
    }
    let timeout = timeout
        .unwrap_or(DEFAULT_TIMEOUT)
        .max(Duration::from_secs(1));
    Ok((port.to_string(), baud, timeout))
}

impl SetUdsRequest {
    /// Validate every input; nothing is sent or written. A file to save a generated UDS to is
    /// refused here when it exists, before the port is touched.
    pub fn plan(self) -> Result<SetUdsPlan, ConsoleError> {
        let (port, baud, timeout) = port_and_timing(&self.port, self.baud, self.timeout)?;
        let uds = match (self.uds, self.generate) {
            (Some(_), true) => {
                return Err(refused(Input::Uds, "give a UDS or generate one, not both"))
            }
            (Some(uds), false) => {
                if self.save_uds_to.is_some() || self.return_uds {
                    return Err(refused(
                        Input::SaveUdsTo,
                        "only a generated UDS is saved or returned (the given one is already kept by its owner)",
                    ));
                }
                UdsChoice::Given(uds)
            }
            (None, true) => {
                let keep = match (self.save_uds_to, self.return_uds) {
                    (Some(path), false) => KeepUds::File(path),
                    (Some(path), true) => KeepUds::FileAndCaller(path),
                    (None, true) => KeepUds::ReturnToCaller,
                    (None, false) => {
                        return Err(refused(
                            Input::SaveUdsTo,
                            "is required to keep a generated UDS: a UDS kept nowhere is lost and this device's certificate can never be computed",
                        ))
                    }
                };
                if let Some(path) = keep.file() {
                    check_new_uds_file(path).map_err(uds_file_error)?;
                }
                UdsChoice::Generate(keep)
            }
            (None, false) => {
                return Err(refused(
                    Input::Uds,
                    "is required (64 hexadecimal digits), or generate one",
                ))
            }
        };
        Ok(SetUdsPlan {
            port,
            uds,
            baud,
            timeout,
        })
    }
}

/// What set-uds did. Never holds the UDS (see [`SetUdsOutcome::uds`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetUdsReport {
    pub port: String,
    /// Whether the UDS was generated by this run (else the caller gave it).
    pub generated: bool,
    /// How the device confirmed the stored value.
    pub confirmed_by: ConfirmedBy,
    /// The device's confirmation line (never a secret: the UDS is echoed masked).
    pub reply: String,
    /// The file a generated UDS was saved to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uds_saved_to: Option<PathBuf>,
    pub warnings: Vec<String>,
    pub next_actions: Vec<NextStep>,
}

/// A finished set-uds run: the report, and the generated UDS when the caller asked for it back.
pub struct SetUdsOutcome {
    pub report: SetUdsReport,
    /// Only with [`KeepUds::ReturnToCaller`] / [`KeepUds::FileAndCaller`].
    pub uds: Option<Uds>,
}

/// Open `port` at `baud` for a run of its own (the CLI; the daemon borrows the port instead).
pub fn open_port(port: &str, baud: u32) -> Result<SerialTransport, ConsoleError> {
    SerialTransport::open(Path::new(port), baud).map_err(|source| ConsoleError::Open {
        port: port.to_string(),
        source,
    })
}

/// Bring the console on `transport` to configuration mode, telling the user how through
/// `progress` when they must act.
fn config_mode_console<T: Transport>(
    transport: T,
    port: &str,
    timeout: Duration,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<Console<Cancellable<T>>, ConsoleError> {
    let mut console = Console::new(
        Cancellable {
            inner: transport,
            cancel: cancel.clone(),
        },
        port,
    );
    progress.report(
        format!("Checking that {port} is in configuration mode"),
        None,
    );
    console.enter_config_mode(timeout, &mut |g| {
        progress.report(
            format!(
                "waiting up to {} s for configuration mode: {g}",
                timeout.as_secs()
            ),
            None,
        )
    })?;
    Ok(console)
}

/// Any error of a cancelled run is the cancellation.
fn or_cancelled(e: ConsoleError, cancel: &CancellationToken) -> ConsoleError {
    if cancel.is_cancelled() {
        ConsoleError::Cancelled
    } else {
        e
    }
}

fn confirmation_warning(reply: &Reply, command: &str) -> Option<String> {
    (reply.confirmed_by == ConfirmedBy::InfoLine).then(|| {
        format!("the echo of `{command}` did not reach us (another program reading the port?); the device's confirmation line did")
    })
}

impl SetUdsPlan {
    /// Open the port and run. Blocking (serial I/O): call it on `spawn_blocking` from async code.
    pub fn run_on_port(
        self,
        progress: &Progress,
        cancel: &CancellationToken,
    ) -> Result<SetUdsOutcome, ConsoleError> {
        let transport = open_port(&self.port, self.baud)?;
        self.run(transport, progress, cancel)
    }

    /// Run over `transport` (an opened or borrowed port): configuration mode, save a generated
    /// UDS to its file, send it, read the confirmation. Blocking; honours `cancel` within
    /// [`super::CANCEL_POLL`].
    pub fn run<T: Transport>(
        self,
        transport: T,
        progress: &Progress,
        cancel: &CancellationToken,
    ) -> Result<SetUdsOutcome, ConsoleError> {
        let mut console =
            config_mode_console(transport, &self.port, self.timeout, progress, cancel)
                .map_err(|e| or_cancelled(e, cancel))?;
        let (uds, keep) = match self.uds {
            UdsChoice::Given(uds) => (uds, None),
            UdsChoice::Generate(keep) => (Uds::generate(), Some(keep)),
        };
        let saved_to = keep.as_ref().and_then(KeepUds::file).map(Path::to_path_buf);
        if let Some(path) = &saved_to {
            // Written (atomically, 0600, never over an existing file) before it is sent, and
            // only once the device is in configuration mode: a UDS the device may have stored
            // is never lost, and a wrong port leaves no file behind that would refuse the retry.
            save_new_uds(&uds, path).map_err(uds_file_error)?;
            progress.report(
                format!(
                    "Saved the new UDS to {} (mode 0600); keep it secret, it is this device's root secret",
                    path.display()
                ),
                None,
            );
        }
        progress.report(format!("Sending the UDS to {}", self.port), None);
        let reply = console.set_uds(&uds, self.timeout).map_err(|e| {
            let e = or_cancelled(e, cancel);
            match (&saved_to, e) {
                (_, ConsoleError::Cancelled) => ConsoleError::Cancelled,
                // Sent, perhaps stored: the file keeps it.
                (Some(path), e) => ConsoleError::UdsKept {
                    path: path.clone(),
                    source: Box::new(e),
                },
                (None, e) => e,
            }
        })?;
        let warnings = confirmation_warning(&reply, "set_dps_uds")
            .into_iter()
            .collect();
        let returned = keep.as_ref().is_some_and(KeepUds::returned);
        Ok(SetUdsOutcome {
            report: SetUdsReport {
                port: self.port,
                generated: keep.is_some(),
                confirmed_by: reply.confirmed_by,
                reply: reply.text.trim().to_string(),
                uds_saved_to: saved_to,
                warnings,
                // The device's identity follows its UDS: its certificate and enrollment must.
                next_actions: vec![
                    NextStep::new(NextAction::RegenerateCert),
                    NextStep::new(NextAction::Enroll),
                ],
            },
            uds: returned.then_some(uds),
        })
    }
}

/// The inputs of a set-wifi run. The password arrives as text the adapter already read.
#[derive(Default)]
pub struct SetWifiRequest {
    pub port: String,
    pub wifi_ssid: String,
    /// `None` or empty: an open network (the stored password is cleared).
    pub wifi_password: Option<Zeroizing<String>>,
    /// [default: [`DEFAULT_BAUD`]]
    pub baud: Option<u32>,
    /// [default: [`DEFAULT_TIMEOUT`]]
    pub timeout: Option<Duration>,
}

/// A validated set-wifi run: both values fit the firmware and encode losslessly.
pub struct SetWifiPlan {
    pub port: String,
    pub wifi_ssid: String,
    wifi_password: Zeroizing<String>,
    pub baud: u32,
    pub timeout: Duration,
}

impl SetWifiRequest {
    /// Validate both values before the port is touched.
    pub fn plan(self) -> Result<SetWifiPlan, ConsoleError> {
        let (port, baud, timeout) = port_and_timing(&self.port, self.baud, self.timeout)?;
        let password = self.wifi_password.unwrap_or_default();
        super::wifi_ssid_command(&self.wifi_ssid)?;
        super::wifi_password_command(&password)?;
        Ok(SetWifiPlan {
            port,
            wifi_ssid: self.wifi_ssid,
            wifi_password: password,
            baud,
            timeout,
        })
    }
}

/// What set-wifi did. The password is never in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetWifiReport {
    pub port: String,
    pub wifi_ssid: String,
    /// Whether a password was stored (false: an open network).
    pub password_set: bool,
    /// How the device confirmed the SSID and the password (the weaker of the two).
    pub confirmed_by: ConfirmedBy,
    pub warnings: Vec<String>,
    pub next_actions: Vec<NextStep>,
}

impl SetWifiPlan {
    /// Open the port and run. Blocking.
    pub fn run_on_port(
        self,
        progress: &Progress,
        cancel: &CancellationToken,
    ) -> Result<SetWifiReport, ConsoleError> {
        let transport = open_port(&self.port, self.baud)?;
        self.run(transport, progress, cancel)
    }

    /// Run over `transport`: configuration mode, `set_wifissid`, `set_wifipwd`. Blocking.
    pub fn run<T: Transport>(
        self,
        transport: T,
        progress: &Progress,
        cancel: &CancellationToken,
    ) -> Result<SetWifiReport, ConsoleError> {
        let run = || -> Result<SetWifiReport, ConsoleError> {
            let mut console =
                config_mode_console(transport, &self.port, self.timeout, progress, cancel)?;
            progress.report(format!("Storing the Wi-Fi settings on {}", self.port), None);
            let ssid = console.run(&super::wifi_ssid_command(&self.wifi_ssid)?, self.timeout)?;
            let pwd = console.run(
                &super::wifi_password_command(&self.wifi_password)?,
                self.timeout,
            )?;
            let warnings = confirmation_warning(&ssid, "set_wifissid")
                .into_iter()
                .chain(confirmation_warning(&pwd, "set_wifipwd"))
                .collect();
            let confirmed_by = if ssid.confirmed_by == ConfirmedBy::Echo
                && pwd.confirmed_by == ConfirmedBy::Echo
            {
                ConfirmedBy::Echo
            } else {
                ConfirmedBy::InfoLine
            };
            Ok(SetWifiReport {
                port: self.port.clone(),
                wifi_ssid: self.wifi_ssid.clone(),
                password_set: !self.wifi_password.is_empty(),
                confirmed_by,
                warnings,
                // The settings are read at boot: reset the DevKit and watch it connect.
                next_actions: vec![NextStep::new(NextAction::CheckSetup)],
            })
        };
        run().map_err(|e| or_cancelled(e, cancel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::DomainError;

    fn uds() -> Uds {
        Uds::generate()
    }

    fn request() -> SetUdsRequest {
        SetUdsRequest {
            port: "/dev/ttyACM0".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_generated_uds_must_be_kept_somewhere() {
        let e = SetUdsRequest {
            generate: true,
            ..request()
        }
        .plan()
        .err()
        .expect("refused");
        assert_eq!(e.input(), Some(Input::SaveUdsTo));
        assert!(e.is_invalid_input());
        let p = SetUdsRequest {
            generate: true,
            return_uds: true,
            ..request()
        }
        .plan()
        .unwrap();
        assert!(matches!(
            p.uds,
            UdsChoice::Generate(KeepUds::ReturnToCaller)
        ));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("new.uds");
        let p = SetUdsRequest {
            generate: true,
            save_uds_to: Some(file.clone()),
            ..request()
        }
        .plan()
        .unwrap();
        assert!(matches!(p.uds, UdsChoice::Generate(KeepUds::File(f)) if f == file));
        assert!(!file.exists(), "planning writes nothing");
    }

    #[test]
    fn an_existing_uds_file_is_refused_before_the_port_is_touched() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("old.uds");
        std::fs::write(&file, "keep me").unwrap();
        let e = SetUdsRequest {
            generate: true,
            save_uds_to: Some(file.clone()),
            ..request()
        }
        .plan()
        .err()
        .expect("refused");
        assert_eq!(e.input(), Some(Input::SaveUdsTo));
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    }

    #[test]
    fn a_uds_is_given_or_generated_not_both_nor_neither() {
        let e = SetUdsRequest {
            uds: Some(uds()),
            generate: true,
            ..request()
        }
        .plan()
        .err()
        .expect("refused");
        assert_eq!(e.input(), Some(Input::Uds));
        let e = request().plan().err().expect("refused");
        assert_eq!(e.input(), Some(Input::Uds));
        let e = SetUdsRequest {
            uds: Some(uds()),
            return_uds: true,
            ..request()
        }
        .plan()
        .err()
        .expect("refused");
        assert_eq!(e.input(), Some(Input::SaveUdsTo));
        let p = SetUdsRequest {
            uds: Some(uds()),
            ..request()
        }
        .plan()
        .unwrap();
        assert!(matches!(p.uds, UdsChoice::Given(_)));
        assert_eq!((p.baud, p.timeout), (DEFAULT_BAUD, DEFAULT_TIMEOUT));
    }

    #[test]
    fn a_port_is_required() {
        let e = SetUdsRequest {
            port: " ".into(),
            uds: Some(uds()),
            ..Default::default()
        }
        .plan()
        .err()
        .expect("refused");
        assert_eq!(e.input(), Some(Input::Port));
    }

    #[test]
    fn wifi_values_are_validated_in_the_plan() {
        let plan = |ssid: &str, pw: &str| {
            SetWifiRequest {
                port: "/dev/ttyACM0".into(),
                wifi_ssid: ssid.into(),
                wifi_password: Some(Zeroizing::new(pw.into())),
                ..Default::default()
            }
            .plan()
        };
        assert!(plan("Joe's \"Lab\" 5 GHz", "pass \"word\" x").is_ok());
        assert_eq!(
            plan(&"x".repeat(32), "pw").err().unwrap().input(),
            Some(Input::WifiSsid)
        );
        let e = plan("Lab", &"p".repeat(64)).err().unwrap();
        assert_eq!(e.input(), Some(Input::WifiPassword));
        assert!(!e.to_string().contains("pppp"), "{e}");
        let open = plan("Lab", "").unwrap();
        assert!(open.wifi_password.is_empty());
    }
}
