//! The CLI's words for the task vocabulary: which flag carries each [`Input`], how a terminal
//! says each [`NextStep`] (the command or flag that does it), and an invalid input's message
//! named by its flag. `tasks` holds only the typed names; this is the one place they become
//! flags (the daemon's param names are in `crate::lsp::vocab`).
//!
//! Call sites read `input.flag()`, `step.hint()`, `invalid.cli_message()` with
//! `use crate::cli::vocab::CliVocab;`.

use tasks::error::{Input, InvalidInput, NextAction, NextStep};

/// The CLI flag that carries `input` (an exhaustive match: a new input cannot miss its flag).
/// An enrollment is a body we built, not something a flag carries: it is named in words.
pub const fn flag(input: Input) -> &'static str {
    match input {
        Input::Port => "--port",
        Input::Bin => "--bin",
        Input::Map => "--map",
        Input::BuildDir => "--build-dir",
        Input::ProjectDir => "--project-dir",
        Input::Sketch => "--sketch",
        Input::ArduinoCli => "--arduino-cli",
        Input::Builder => "--builder",
        Input::ArduinoBuilder => "--arduino-builder",
        Input::ArduinoData => "--arduino-data",
        Input::GlobalEndpoint => "--global-endpoint",
        Input::IdScope => "--id-scope",
        Input::RegistrationId => "--registration-id",
        Input::Mac => "--mac",
        Input::FirmwareVersion => "--firmware-version",
        Input::Uds => "--uds-file",
        Input::ConnectionString => "--connection-string-file",
        Input::HubConnectionString => "--hub-connection-string-file",
        Input::CaFile => "--ca-file",
        Input::TrustedCa => "--trusted-ca",
        Input::Cert => "--cert",
        Input::Group => "--group",
        Input::CaCert => "--ca-cert",
        Input::AliasKey => "--alias-key",
        Input::DeviceId => "--device-id",
        Input::IotHub => "--iot-hub",
        Input::DpsName => "--dps-name",
        Input::Backend => "--backend",
        Input::Probe => "--probe",
        Input::Openocd => "--openocd",
        Input::SimDir => "--sim-dir",
        Input::Address => "--address",
        Input::WifiSsid => "--wifi-ssid",
        Input::WifiPassword => "--wifi-password-file",
        Input::Link => "--link",
        Input::Hub => "--hub",
        Input::Manifest => "--manifest",
        Input::OutDir => "--out-dir",
        Input::CertDir => "--cert-dir",
        Input::Command => "--command",
        Input::Enrollment => "enrollment",
        Input::HostName => "--host-name",
        Input::Transport => "--transport",
        Input::SaveUdsTo => "--save-uds-to",
    }
}

/// How the terminal says `action`: the command or flag that does it.
pub const fn action_hint(action: NextAction) -> &'static str {
    match action {
        NextAction::SetUds => "push a UDS to the DevKit in configuration mode with `devkit set-uds --port PORT --generate --save-uds-to FILE` (or --uds-file FILE)",
        NextAction::Enroll => "update the enrollment with `devkit enroll`",
        NextAction::RegenerateCert => "recompute the certificate with `devkit generate-cert` (`devkit inspect-cert ENROLLED.pem --against GENERATED.pem` shows which input differs)",
        NextAction::ChooseUploadBackend => "choose another flash backend with --backend probe-rs|openocd|sim",
        NextAction::InstallToolchain => "install the missing tool (`devkit doctor` says what is missing and how)",
        NextAction::SetArduinoCliPath => "point at arduino-cli with --arduino-cli FILE (or DEVKIT_ARDUINO_CLI)",
        NextAction::SetArduinoDataPath => "point at the Arduino15 folder that holds the platform with --arduino-data DIR (or DEVKIT_ARDUINO_DATA)",
        NextAction::ConfigureDps => "give the DPS settings with --id-scope and --global-endpoint",
        NextAction::SelectPort => "pick the DevKit's port with --port (`devkit ports` lists them)",
        NextAction::EnterConfigMode => "put the DevKit in configuration mode (hold button A, press and release Reset, release A), where `devkit set-uds` and `devkit set-wifi` store its settings",
        NextAction::InstallUdevRule => "install the ST-LINK udev rule (`devkit doctor` prints it)",
        NextAction::CheckSetup => "watch the device with `devkit monitor --events`",
        NextAction::Retry => "run the command again",
    }
}

/// How the terminal says `step`: [`action_hint`], made precise by the detail where the
/// terminal has a better command (which tool to install, and how).
pub fn hint(step: &NextStep) -> String {
    match (step.action, step.detail.as_deref()) {
        (NextAction::InstallToolchain, Some("arduino-cli")) => "install arduino-cli and the AZ3166 platform (`devkit doctor` says how), \
             or build from an existing Arduino15 folder with --builder arduino-builder --arduino-data DIR"
            .into(),
        (NextAction::InstallToolchain, Some("arduino-builder")) => "install arduino-builder \
             (Debian/Ubuntu: `sudo apt-get install arduino-builder`) or name it with --arduino-builder FILE, \
             or build with --builder arduino-cli"
            .into(),
        (NextAction::InstallToolchain, Some(tasks::build::PLATFORM_ID)) => "install arduino-cli and the AZ3166 platform \
             (`devkit doctor` says how), or give an Arduino15 folder holding packages/AZ3166/hardware/stm32f4/<version> \
             with --arduino-data DIR (or DEVKIT_ARDUINO_DATA)"
            .into(),
        (NextAction::InstallToolchain, Some("az")) => "install the Azure CLI and its extension (`az extension add --name azure-iot`), \
             or enroll with --backend rest and the service connection string"
            .into(),
        (NextAction::InstallToolchain, Some(what)) => {
            format!("install {what} (`devkit doctor` says how)")
        }
        (action, _) => action_hint(action).into(),
    }
}

/// The message of a refused input, the input named by its flag (when no more precise name,
/// such as `--uds-file a.uds` or `row 3: UDS`, is set).
pub fn message(invalid: &InvalidInput) -> String {
    match &invalid.name {
        Some(n) => format!("invalid {n}: {}", invalid.reason),
        None => format!("invalid {}: {}", flag(invalid.input), invalid.reason),
    }
}

/// `input.flag()` (with `use crate::cli::vocab::Flag;`).
pub trait Flag {
    fn flag(self) -> &'static str;
}
impl Flag for Input {
    fn flag(self) -> &'static str {
        flag(self)
    }
}

/// `step.hint()` and `action.hint()` (with `use crate::cli::vocab::Hint;`).
pub trait Hint {
    fn hint(&self) -> String;
}
impl Hint for NextStep {
    fn hint(&self) -> String {
        hint(self)
    }
}
impl Hint for NextAction {
    fn hint(&self) -> String {
        action_hint(*self).into()
    }
}

/// `invalid.cli_message()` (with `use crate::cli::vocab::CliMessage;`).
pub trait CliMessage {
    fn cli_message(&self) -> String;
}
impl CliMessage for InvalidInput {
    fn cli_message(&self) -> String {
        message(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tasks::error::DomainError;

    #[test]
    fn every_input_has_a_kebab_case_flag() {
        for &i in Input::ALL {
            // An enrollment is a body we built, not something a flag carries.
            let is_flag = i.flag().starts_with("--") || i == Input::Enrollment;
            assert!(
                is_flag
                    && i.flag()
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{i:?}: {}",
                i.flag()
            );
        }
    }

    #[test]
    fn invalid_input_is_named_by_its_flag() {
        let e = InvalidInput::new(Input::IdScope, "is required");
        assert_eq!(e.cli_message(), "invalid --id-scope: is required");
        let named = InvalidInput::new(Input::Uds, "has 3 digits").named("--uds-file a.uds");
        assert_eq!(named.cli_message(), named.to_string());
    }

    /// The CLI renders a step by its detail where the terminal has a better command.
    #[test]
    fn hints_use_the_detail() {
        let hint = |d: Option<&str>| {
            NextStep {
                action: NextAction::InstallToolchain,
                detail: d.map(str::to_string),
            }
            .hint()
        };
        assert!(hint(Some("arduino-builder")).contains("apt-get install arduino-builder"));
        assert!(hint(Some("arduino-cli")).contains("--builder arduino-builder"));
        assert!(hint(Some("az")).contains("--backend rest"));
        assert_eq!(
            hint(Some("openocd")),
            "install openocd (`devkit doctor` says how)"
        );
        assert_eq!(hint(None), NextAction::InstallToolchain.hint());
        assert_eq!(
            NextStep::new(NextAction::Enroll).hint(),
            NextAction::Enroll.hint()
        );
        for a in NextAction::ALL {
            assert!(!a.hint().is_empty(), "{a:?}");
        }
        // The task's side of a missing az: typed, no CLI flag in the message.
        let e = tasks::dps::DpsError::AzNotFound;
        assert_eq!(e.kind(), tasks::error::ErrorKind::NotFound);
        assert!(!e.to_string().contains("--"), "{e}");
        assert_eq!(
            e.next_actions()[0],
            NextStep::with_detail(NextAction::InstallToolchain, "az")
        );
    }
}
