//! One error model for every task: which input was wrong, what kind of failure it is, and
//! what the user can do next.
//!
//! Each domain error type (`IdentityError`, `BuildError`, `FlashError`, ...) implements
//! [`DomainError`]; the adapters render from it and nothing else:
//! - the CLI: exit code from [`DomainError::exit_code`], an invalid input named by its flag
//!   and next actions as the commands that do them (`server/src/cli/vocab.rs`);
//! - the daemon: `data.code` from [`ErrorKind::code_name`], `data.field` from the input's
//!   param name (`server/src/lsp/vocab.rs`, never from matching message text),
//!   `data.nextActions` from [`DomainError::next_actions`] (wire names of [`NextAction`], the
//!   extension renders them as buttons).
//!
//! Nothing here names a CLI flag, a JSON field or an editor setting: messages name inputs by
//! their words ([`Input::label`]) and rules, never values of secrets.

use serde::{Deserialize, Serialize};

/// Declares [`Input`] from one table: variant => words. One row per input, so
/// [`Input::ALL`] lists every one; the adapters name each input in their own vocabulary
/// (the CLI's flags in `server/src/cli/vocab.rs`, the daemon's params in
/// `server/src/lsp/vocab.rs`, both exhaustive matches).
macro_rules! inputs {
    ($( $(#[$doc:meta])* $v:ident => $label:literal; )*) => {
        /// The inputs a task can refuse: one typed name per concept, whatever adapter carries it.
        /// In a report (a batch row's error) an input is its concept's camelCase name, which is
        /// the daemon's param name (`server/src/lsp/vocab.rs` checks that they agree).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase")]
        pub enum Input {
            $( $(#[$doc])* $v, )*
        }

        impl Input {
            /// Every input, in declaration order.
            pub const ALL: &'static [Input] = &[$(Input::$v),*];

            /// What the input is, in words (the default subject of a message).
            pub const fn label(self) -> &'static str {
                match self { $(Input::$v => $label,)* }
            }
        }
    };
}

inputs! {
    Port => "serial port";
    Bin => "image";
    Map => "map";
    BuildDir => "build directory";
    ProjectDir => "project directory";
    Sketch => "sketch directory";
    ArduinoCli => "arduino-cli";
    Builder => "builder";
    ArduinoBuilder => "arduino-builder";
    ArduinoData => "Arduino data directory";
    GlobalEndpoint => "global device endpoint";
    IdScope => "ID Scope";
    RegistrationId => "registration ID";
    Mac => "MAC address";
    FirmwareVersion => "firmware version";
    Uds => "UDS";
    ConnectionString => "connection string";
    HubConnectionString => "IoT Hub connection string";
    CaFile => "CA certificate";
    TrustedCa => "trusted CA certificate";
    Cert => "certificate";
    Group => "enrollment group ID";
    CaCert => "group CA certificate";
    AliasKey => "alias private key";
    DeviceId => "device ID";
    IotHub => "IoT hub";
    DpsName => "DPS name";
    Backend => "flash backend";
    Probe => "probe selector";
    Openocd => "openocd";
    SimDir => "sim state directory";
    Address => "address";
    WifiSsid => "SSID";
    WifiPassword => "Wi-Fi password";
    Link => "link";
    Hub => "hub";
    Manifest => "manifest";
    OutDir => "output directory";
    /// Where a batch's certificates are (`<registration id>.pem` each).
    CertDir => "certificate directory";
    /// A line for the DevKit's console.
    Command => "command";
    /// A request body we built ourselves (an enrollment) that the service would not take.
    Enrollment => "enrollment";
    HostName => "host name";
    Transport => "transport";
    /// Where a generated UDS is saved (never over an existing file).
    SaveUdsTo => "file to save the UDS to";
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
    /// Point at the Arduino15 folder that holds the board platform.
    SetArduinoDataPath,
    ConfigureDps,
    SelectPort,
    EnterConfigMode,
    InstallUdevRule,
    CheckSetup,
    Retry,
}

impl NextAction {
    pub const ALL: [NextAction; 13] = [
        NextAction::SetUds,
        NextAction::Enroll,
        NextAction::RegenerateCert,
        NextAction::ChooseUploadBackend,
        NextAction::InstallToolchain,
        NextAction::SetArduinoCliPath,
        NextAction::SetArduinoDataPath,
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
            NextAction::SetArduinoDataPath => "setArduinoDataPath",
            NextAction::ConfigureDps => "configureDps",
            NextAction::SelectPort => "selectPort",
            NextAction::EnterConfigMode => "enterConfigMode",
            NextAction::InstallUdevRule => "installUdevRule",
            NextAction::CheckSetup => "checkSetup",
            NextAction::Retry => "retry",
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
                "setArduinoDataPath",
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
        let step = serde_json::to_value(NextStep::with_detail(NextAction::InstallToolchain, "az"))
            .unwrap();
        assert_eq!(
            step,
            serde_json::json!({"action": "installToolchain", "detail": "az"})
        );
        assert_eq!(
            serde_json::to_value(NextStep::new(NextAction::Retry)).unwrap(),
            serde_json::json!({"action": "retry"})
        );
    }

    #[test]
    fn invalid_input_names_the_input_by_its_words() {
        let e = InvalidInput::new(Input::IdScope, "is required");
        assert_eq!(e.to_string(), "invalid ID Scope: is required");
        assert_eq!(e.exit_code(), 2);
        let named = InvalidInput::new(Input::Uds, "has 3 digits").named("--uds-file a.uds");
        assert_eq!(named.to_string(), "invalid --uds-file a.uds: has 3 digits");
    }
}
