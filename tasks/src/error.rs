//! One error model for every task: which input was wrong, what kind of failure it is, and
//! what the user can do next.
//!
//! Each domain error type (`IdentityError`, `BuildError`, `FlashError`, ...) implements
//! [`DomainError`]; the adapters render from it and nothing else:
//! - the CLI: exit code from [`ErrorKind::exit_code`], an invalid input named by its flag
//!   ([`Input::flag`]), next actions as commands and flags ([`NextAction::cli_hint`]);
//! - the daemon: `data.code` from [`ErrorKind::code_name`], `data.field` from [`Input::field`]
//!   (never from matching message text), `data.nextActions` from [`DomainError::next_actions`]
//!   (wire names of [`NextAction`], the extension renders them as buttons).
//!
//! Messages written here name inputs and rules, never values of secrets.

use serde::{Deserialize, Serialize};

/// Declares [`Input`] from one table: variant => daemon param (`data.field`), CLI flag, words.
/// One row per input, so a new input cannot miss a name (and [`Input::ALL`] lists every one).
macro_rules! inputs {
    ($( $(#[$doc:meta])* $v:ident => $field:literal, $flag:literal, $label:literal; )*) => {
        /// The inputs a task can refuse, one name per concept across CLI flags, daemon params and docs.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Input {
            $( $(#[$doc])* $v, )*
        }

        impl Input {
            /// Every input, in declaration order.
            pub const ALL: &'static [Input] = &[$(Input::$v),*];

            /// The daemon's camelCase param name (`data.field`).
            pub const fn field(self) -> &'static str {
                match self { $(Input::$v => $field,)* }
            }

            /// The CLI flag that carries this input.
            pub const fn flag(self) -> &'static str {
                match self { $(Input::$v => $flag,)* }
            }

            /// What the input is, in words (the default subject of a message).
            pub const fn label(self) -> &'static str {
                match self { $(Input::$v => $label,)* }
            }
        }
    };
}

inputs! {
    Port => "port", "--port", "serial port";
    Bin => "bin", "--bin", "image";
    Map => "map", "--map", "map";
    BuildDir => "buildDir", "--build-dir", "build directory";
    ProjectDir => "projectDir", "--project-dir", "project directory";
    Sketch => "sketch", "--sketch", "sketch directory";
    ArduinoCli => "arduinoCli", "--arduino-cli", "arduino-cli";
    Builder => "builder", "--builder", "builder";
    ArduinoBuilder => "arduinoBuilder", "--arduino-builder", "arduino-builder";
    ArduinoData => "arduinoData", "--arduino-data", "Arduino data directory";
    GlobalEndpoint => "globalEndpoint", "--global-endpoint", "global device endpoint";
    IdScope => "idScope", "--id-scope", "ID Scope";
    RegistrationId => "registrationId", "--registration-id", "registration ID";
    Mac => "mac", "--mac", "MAC address";
    FirmwareVersion => "firmwareVersion", "--firmware-version", "firmware version";
    Uds => "uds", "--uds-file", "UDS";
    ConnectionString => "connectionString", "--connection-string-file", "connection string";
    HubConnectionString => "hubConnectionString", "--hub-connection-string-file", "IoT Hub connection string";
    CaFile => "caFile", "--ca-file", "CA certificate";
    TrustedCa => "trustedCa", "--trusted-ca", "trusted CA certificate";
    Cert => "cert", "--cert", "certificate";
    AliasKey => "aliasKey", "--alias-key", "alias private key";
    DeviceId => "deviceId", "--device-id", "device ID";
    IotHub => "iotHub", "--iot-hub", "IoT hub";
    DpsName => "dpsName", "--dps-name", "DPS name";
    Backend => "backend", "--backend", "flash backend";
    Probe => "probe", "--probe", "probe selector";
    Openocd => "openocd", "--openocd", "openocd";
    SimDir => "simDir", "--sim-dir", "sim state directory";
    Address => "address", "--address", "address";
    WifiSsid => "wifiSsid", "--wifi-ssid", "SSID";
    WifiPassword => "wifiPassword", "--wifi-password-file", "Wi-Fi password";
    Link => "link", "--link", "link";
    Hub => "hub", "--hub", "hub";
    Manifest => "manifest", "--manifest", "manifest";
    OutDir => "outDir", "--out-dir", "output directory";
    /// Where a batch's certificates are (`<registration id>.pem` each).
    CertDir => "certDir", "--cert-dir", "certificate directory";
    /// A line for the DevKit's console.
    Command => "text", "--command", "command";
    /// A request body we built ourselves (an enrollment) that the service would not take.
    Enrollment => "enrollment", "enrollment", "enrollment";
    HostName => "hostName", "--host-name", "host name";
    Transport => "transport", "--transport", "transport";
    /// Where a generated UDS is saved (never over an existing file).
    SaveUdsTo => "saveUdsTo", "--save-uds-to", "file to save the UDS to";
}

/// The caller's input was refused: nothing was sent or written.
///
/// `subject` names the exact thing when more precise than the input's label (a file path, a
/// manifest row, the value of a non-secret input); it only changes the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {}: {reason}", self.subject())]
pub struct InvalidInput {
    pub input: Input,
    pub reason: String,
    pub name: Option<String>,
}

impl InvalidInput {
    pub fn new(input: Input, reason: impl Into<String>) -> Self {
        InvalidInput {
            input,
            reason: reason.into(),
            name: None,
        }
    }
    /// The same error, its message naming `name` (e.g. `--uds-file dev.uds`, `row 3: UDS`).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    pub fn subject(&self) -> &str {
        self.name.as_deref().unwrap_or(self.input.label())
    }
    /// The message with the input named by its CLI flag (when no more precise name is set).
    pub fn cli_message(&self) -> String {
        match &self.name {
            Some(n) => format!("invalid {n}: {}", self.reason),
            None => format!("invalid {}: {}", self.input.flag(), self.reason),
        }
    }
}

/// What kind of failure an error is: the daemon's `data.code` and the CLI's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The caller's input (CLI exit 2, JSON-RPC invalid params).
    InvalidInput,
    /// A file, port, probe, tool or device was not found.
    NotFound,
    /// Refused to overwrite another identity's files.
    WouldOverwrite,
    /// The DevKit answered with an error or not as expected (console, serial).
    Device,
    /// The sketch did not compile.
    BuildFailed,
    /// Flashing failed.
    FlashFailed,
    /// DPS (or the IoT hub) refused or failed.
    Dps,
    /// The run was cancelled.
    Cancelled,
    /// Anything else.
    Failed,
}

impl ErrorKind {
    /// The stable name (`data.code` on the wire).
    pub const fn code_name(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalidParams",
            ErrorKind::NotFound => "notFound",
            ErrorKind::WouldOverwrite => "wouldOverwrite",
            ErrorKind::Device => "deviceError",
            ErrorKind::BuildFailed => "buildFailed",
            ErrorKind::FlashFailed => "flashFailed",
            ErrorKind::Dps => "dpsError",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Failed => "taskFailed",
        }
    }
    pub const fn is_invalid(self) -> bool {
        matches!(self, ErrorKind::InvalidInput)
    }
}

/// Something the user can do about an error. The wire names (camelCase) are a contract with
/// the extension, which renders each as a button.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NextAction {
    SetUds,
    Enroll,
    RegenerateCert,
    ChooseUploadBackend,
    InstallToolchain,
    SetArduinoCliPath,
    ConfigureDps,
    SelectPort,
    EnterConfigMode,
    InstallUdevRule,
    CheckSetup,
    Retry,
}

impl NextAction {
    pub const ALL: [NextAction; 12] = [
        NextAction::SetUds,
        NextAction::Enroll,
        NextAction::RegenerateCert,
        NextAction::ChooseUploadBackend,
        NextAction::InstallToolchain,
        NextAction::SetArduinoCliPath,
        NextAction::ConfigureDps,
        NextAction::SelectPort,
        NextAction::EnterConfigMode,
        NextAction::InstallUdevRule,
        NextAction::CheckSetup,
        NextAction::Retry,
    ];

    /// The wire name.
    pub const fn name(self) -> &'static str {
        match self {
            NextAction::SetUds => "setUds",
            NextAction::Enroll => "enroll",
            NextAction::RegenerateCert => "regenerateCert",
            NextAction::ChooseUploadBackend => "chooseUploadBackend",
            NextAction::InstallToolchain => "installToolchain",
            NextAction::SetArduinoCliPath => "setArduinoCliPath",
            NextAction::ConfigureDps => "configureDps",
            NextAction::SelectPort => "selectPort",
            NextAction::EnterConfigMode => "enterConfigMode",
            NextAction::InstallUdevRule => "installUdevRule",
            NextAction::CheckSetup => "checkSetup",
            NextAction::Retry => "retry",
        }
    }

    /// How the CLI says it: the command or flag that does it.
    pub const fn cli_hint(self) -> &'static str {
        match self {
            NextAction::SetUds => "push a UDS to the DevKit in configuration mode with `devkit set-uds --port PORT --generate --save-uds-to FILE` (or --uds-file FILE)",
            NextAction::Enroll => "update the enrollment with `devkit enroll`",
            NextAction::RegenerateCert => "recompute the certificate with `devkit generate-cert` (`devkit inspect-cert ENROLLED.pem --against GENERATED.pem` shows which input differs)",
            NextAction::ChooseUploadBackend => "choose another flash backend with --backend probe-rs|openocd|sim",
            NextAction::InstallToolchain => "install the missing tool (see README: toolchain)",
            NextAction::SetArduinoCliPath => "point at arduino-cli with --arduino-cli FILE (or DEVKIT_ARDUINO_CLI)",
            NextAction::ConfigureDps => "give the DPS settings with --id-scope and --global-endpoint",
            NextAction::SelectPort => "pick the DevKit's port with --port (`devkit ports` lists them)",
            NextAction::EnterConfigMode => "put the DevKit in configuration mode (hold button A, press and release Reset, release A), where `devkit set-uds` and `devkit set-wifi` store its settings",
            NextAction::InstallUdevRule => "install the ST-LINK udev rule (see README)",
            NextAction::CheckSetup => "watch the device with `devkit monitor --events`",
            NextAction::Retry => "run the command again",
        }
    }
}

/// A next action with an optional detail (a setting id, a tool name, a registration ID).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextStep {
    pub action: NextAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl NextStep {
    pub fn new(action: NextAction) -> Self {
        NextStep {
            action,
            detail: None,
        }
    }
    pub fn with_detail(action: NextAction, detail: impl Into<String>) -> Self {
        NextStep {
            action,
            detail: Some(detail.into()),
        }
    }
}

impl NextStep {
    /// How the CLI says it: [`NextAction::cli_hint`], made precise by the detail where the
    /// terminal has a better command (which tool to install, and how).
    pub fn cli_hint(&self) -> String {
        match (self.action, self.detail.as_deref()) {
            (NextAction::InstallToolchain, Some("arduino-cli")) => "install arduino-cli (see README: toolchain), \
                 or build from an existing Arduino15 folder with --builder arduino-builder --arduino-data DIR"
                .into(),
            (NextAction::InstallToolchain, Some("arduino-builder")) => "install arduino-builder \
                 (Debian/Ubuntu: `sudo apt-get install arduino-builder`) or name it with --arduino-builder FILE, \
                 or build with --builder arduino-cli"
                .into(),
            (NextAction::InstallToolchain, Some("az")) => "install the Azure CLI and its extension (`az extension add --name azure-iot`), \
                 or enroll with --backend rest and the service connection string"
                .into(),
            (NextAction::InstallToolchain, Some(what)) => {
                format!("install {what} (see README: toolchain)")
            }
            (action, _) => action.cli_hint().into(),
        }
    }
}

impl From<NextAction> for NextStep {
    fn from(action: NextAction) -> Self {
        NextStep::new(action)
    }
}

/// What every task error tells its adapters, defined once per error type.
pub trait DomainError: std::error::Error {
    fn kind(&self) -> ErrorKind;
    /// The refused input, for [`ErrorKind::InvalidInput`].
    fn invalid_input(&self) -> Option<&InvalidInput> {
        None
    }
    /// The input an [`ErrorKind::InvalidInput`] (or a missing input file) is about.
    fn input(&self) -> Option<Input> {
        self.invalid_input().map(|i| i.input)
    }
    fn next_actions(&self) -> Vec<NextStep> {
        Vec::new()
    }
    /// What the user should know to fix it, beyond the message (a DPS error code's meaning, what
    /// a refusal usually comes from), when there is something to say. Words only, no adapter
    /// vocabulary: the CLI prints it as `hint:` after the error, the daemon as `data.hint`.
    fn hint(&self) -> Option<String> {
        None
    }
    /// True when the error is about the caller's input (CLI exit 2).
    fn is_invalid_input(&self) -> bool {
        self.kind().is_invalid()
    }
    /// The CLI's exit code, decided here only: 2 for invalid input and for an input file
    /// that does not exist (both the caller's to fix), 1 for everything else.
    fn exit_code(&self) -> i32 {
        match self.kind() {
            ErrorKind::InvalidInput => 2,
            ErrorKind::NotFound if self.input().is_some() => 2,
            _ => 1,
        }
    }
}

impl DomainError for InvalidInput {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidInput
    }
    fn invalid_input(&self) -> Option<&InvalidInput> {
        Some(self)
    }
}

/// Call `$m!` with every task error type that implements [`DomainError`] (the adapters
/// derive their conversions from it, so a new error type is added in one place).
#[macro_export]
macro_rules! for_each_domain_error {
    ($m:ident) => {
        $m!(
            $crate::identity::IdentityError,
            $crate::fsutil::FsError,
            $crate::project::ProjectError,
            $crate::build::BuildError,
            $crate::build::FindOutputError,
            $crate::flash::FlashError,
            $crate::console::ConsoleError,
            $crate::monitor::MonitorError,
            $crate::dps::DpsError,
            $crate::dps::enroll::EnrollError,
            $crate::upload::UploadError,
            $crate::provision::ProvisionError,
            $crate::sim::SimError,
            $crate::sim::control::ControlError,
            $crate::dps::emulator::EmulatorError,
            $crate::error::InvalidInput
        );
    };
}

/// `NotFound` for a missing file, `Failed` for other I/O errors.
pub fn io_kind(e: &std::io::Error) -> ErrorKind {
    if e.kind() == std::io::ErrorKind::NotFound {
        ErrorKind::NotFound
    } else {
        ErrorKind::Failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_action_wire_names_are_the_contract() {
        let names: Vec<&str> = NextAction::ALL.iter().map(|a| a.name()).collect();
        assert_eq!(
            names,
            [
                "setUds",
                "enroll",
                "regenerateCert",
                "chooseUploadBackend",
                "installToolchain",
                "setArduinoCliPath",
                "configureDps",
                "selectPort",
                "enterConfigMode",
                "installUdevRule",
                "checkSetup",
                "retry"
            ]
        );
        for a in NextAction::ALL {
            assert_eq!(serde_json::to_value(a).unwrap(), a.name());
        }
        let step = serde_json::to_value(NextStep::with_detail(
            NextAction::SetArduinoCliPath,
            "devkitDps.arduinoCli.path",
        ))
        .unwrap();
        assert_eq!(
            step,
            serde_json::json!({"action": "setArduinoCliPath", "detail": "devkitDps.arduinoCli.path"})
        );
        assert_eq!(
            serde_json::to_value(NextStep::new(NextAction::Retry)).unwrap(),
            serde_json::json!({"action": "retry"})
        );
    }

    /// The CLI renders a step by its detail where the terminal has a better command.
    #[test]
    fn cli_hints_use_the_detail() {
        let hint = |d: Option<&str>| {
            NextStep {
                action: NextAction::InstallToolchain,
                detail: d.map(str::to_string),
            }
            .cli_hint()
        };
        assert!(hint(Some("arduino-builder")).contains("apt-get install arduino-builder"));
        assert!(hint(Some("arduino-cli")).contains("--builder arduino-builder"));
        assert!(hint(Some("az")).contains("--backend rest"));
        assert_eq!(
            hint(Some("openocd")),
            "install openocd (see README: toolchain)"
        );
        assert_eq!(hint(None), NextAction::InstallToolchain.cli_hint());
        assert_eq!(
            NextStep::new(NextAction::Enroll).cli_hint(),
            NextAction::Enroll.cli_hint()
        );
        // The daemon's side of a missing az: typed, no CLI flag in the message.
        let e = crate::dps::DpsError::AzNotFound;
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(!e.to_string().contains("--"), "{e}");
        assert_eq!(
            e.next_actions()[0],
            NextStep::with_detail(NextAction::InstallToolchain, "az")
        );
    }

    #[test]
    fn invalid_input_names_the_input_per_adapter() {
        let e = InvalidInput::new(Input::IdScope, "is required");
        assert_eq!(e.to_string(), "invalid ID Scope: is required");
        assert_eq!(e.cli_message(), "invalid --id-scope: is required");
        assert_eq!(e.input.field(), "idScope");
        assert_eq!(e.exit_code(), 2);
        let named = InvalidInput::new(Input::Uds, "has 3 digits").named("--uds-file a.uds");
        assert_eq!(named.to_string(), "invalid --uds-file a.uds: has 3 digits");
        assert_eq!(named.cli_message(), named.to_string());
    }

    #[test]
    fn fields_are_camel_case_and_flags_kebab_case() {
        for &i in Input::ALL {
            assert!(
                i.field().chars().all(|c| c.is_ascii_alphanumeric()),
                "{i:?}"
            );
            assert!(
                i.field().starts_with(|c: char| c.is_ascii_lowercase()),
                "{i:?}"
            );
            // An enrollment is a body we built, not something a flag carries.
            let is_flag = i.flag().starts_with("--") || i == Input::Enrollment;
            assert!(is_flag && !i.flag().contains(char::is_uppercase), "{i:?}");
        }
        let fields: std::collections::HashSet<_> = Input::ALL.iter().map(|i| i.field()).collect();
        assert_eq!(fields.len(), Input::ALL.len(), "one param name per input");
    }
}
