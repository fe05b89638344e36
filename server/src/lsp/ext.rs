//! The DevKit protocol extensions: every custom method and notification of `devkit lsp`, with
//! its params and result types, in one place (like rust-analyzer's `lsp_ext.rs`).
//!
//! `docs/protocol.md` documents each of them with example JSON and `extension/src/lsp_ext.ts`
//! mirrors them 1:1; `server/tests/lsp_protocol_drift.rs` fails when the three drift apart.
//! Params and results are camelCase JSON. Fields that carry secrets are [`Secret`]s: they have
//! no Debug or Serialize and are never logged.

use super::secret::{ReturnedSecret, Secret};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use tower_lsp_server::lsp_types::notification::Notification;

// ---- Requests (client -> server) -------------------------------------------------------------

pub const LIST_PORTS: &str = "devkit/listPorts";
pub const GENERATE_CERT: &str = "devkit/generateCert";
pub const INSPECT_CERT: &str = "devkit/inspectCert";
pub const IDENTITY: &str = "devkit/identity";
pub const BUILD: &str = "devkit/build";
pub const UPLOAD: &str = "devkit/upload";
pub const DEVICE_UPLOAD: &str = "devkit/deviceUpload";
pub const SET_UDS: &str = "devkit/setUds";
pub const SET_WIFI: &str = "devkit/setWifi";
pub const MONITOR_OPEN: &str = "devkit/monitor/open";
pub const MONITOR_CLOSE: &str = "devkit/monitor/close";
pub const MONITOR_SEND: &str = "devkit/monitor/send";
pub const ENROLL: &str = "devkit/enroll";
pub const ENROLL_BATCH: &str = "devkit/enrollBatch";
pub const ENROLL_GROUP: &str = "devkit/enrollGroup";
pub const PROVISION: &str = "devkit/provision";
pub const CHECK_SETUP: &str = "devkit/checkSetup";
pub const SIM_CONFIG_MODE: &str = "devkit/simConfigMode";
pub const SIM_RESET: &str = "devkit/simReset";
pub const SIM_START: &str = "devkit/simStart";
pub const SIM_STOP: &str = "devkit/simStop";
pub const VALIDATE_INPUT: &str = "devkit/validateInput";
pub const FIND_BUILD: &str = "devkit/findBuild";
pub const REGISTRATION_ID: &str = "devkit/registrationId";

// ---- Notifications (server -> client) --------------------------------------------------------

pub const SERIAL_DATA: &str = "devkit/serialData";
pub const REGISTRATION_EVENT: &str = "devkit/registrationEvent";
pub const STATUS: &str = "devkit/status";

/// Every custom request, in documentation order.
pub const REQUESTS: &[&str] = &[
    LIST_PORTS,
    GENERATE_CERT,
    INSPECT_CERT,
    IDENTITY,
    BUILD,
    UPLOAD,
    DEVICE_UPLOAD,
    SET_UDS,
    SET_WIFI,
    MONITOR_OPEN,
    MONITOR_CLOSE,
    MONITOR_SEND,
    ENROLL,
    ENROLL_BATCH,
    ENROLL_GROUP,
    PROVISION,
    CHECK_SETUP,
    SIM_CONFIG_MODE,
    SIM_RESET,
    SIM_START,
    SIM_STOP,
    VALIDATE_INPUT,
    FIND_BUILD,
    REGISTRATION_ID,
];

/// The requests that run device or cloud tasks (their outcome sets the health in `devkit/status`).
pub const TASKS: &[&str] = &[
    GENERATE_CERT,
    BUILD,
    UPLOAD,
    DEVICE_UPLOAD,
    SET_UDS,
    SET_WIFI,
    ENROLL,
    ENROLL_BATCH,
    ENROLL_GROUP,
    PROVISION,
];

/// A custom request: its method paired with its params and result types (like
/// `lsp_types::request::Request`, which needs `Serialize` params: ours hold [`Secret`]s).
pub trait Request {
    type Params: serde::de::DeserializeOwned + Send + 'static;
    type Result: Serialize + Send + 'static;
    const METHOD: &'static str;
}

macro_rules! request_markers {
    ($($marker:ident: $method:ident, $params:ty => $result:ty;)*) => {$(
        #[doc = concat!("The `", stringify!($method), "` request.")]
        pub enum $marker {}
        impl Request for $marker {
            type Params = $params;
            type Result = $result;
            const METHOD: &'static str = $method;
        }
    )*};
}

request_markers! {
    ListPorts: LIST_PORTS, ListPortsParams => ListPortsResult;
    GenerateCert: GENERATE_CERT, GenerateCertParams => GenerateCertResult;
    InspectCert: INSPECT_CERT, InspectCertParams => InspectCertResult;
    Identity: IDENTITY, IdentityParams => IdentityResult;
    Build: BUILD, BuildParams => BuildResult;
    Upload: UPLOAD, UploadParams => UploadResult;
    DeviceUpload: DEVICE_UPLOAD, DeviceUploadParams => DeviceUploadResult;
    SetUds: SET_UDS, SetUdsParams => SetUdsResult;
    SetWifi: SET_WIFI, SetWifiParams => SetWifiResult;
    MonitorOpen: MONITOR_OPEN, MonitorOpenParams => MonitorOpenResult;
    MonitorClose: MONITOR_CLOSE, MonitorCloseParams => MonitorCloseResult;
    MonitorSend: MONITOR_SEND, MonitorSendParams => MonitorSendResult;
    Enroll: ENROLL, EnrollParams => EnrollResult;
    EnrollBatch: ENROLL_BATCH, EnrollBatchParams => EnrollBatchResult;
    EnrollGroup: ENROLL_GROUP, EnrollGroupParams => EnrollGroupResult;
    Provision: PROVISION, ProvisionParams => ProvisionResult;
    CheckSetup: CHECK_SETUP, CheckSetupParams => CheckSetupResult;
    SimConfigMode: SIM_CONFIG_MODE, SimConfigModeParams => SimConfigModeResult;
    SimReset: SIM_RESET, SimResetParams => SimResetResult;
    SimStart: SIM_START, SimStartParams => SimStartResult;
    SimStop: SIM_STOP, SimStopParams => SimStopResult;
    ValidateInput: VALIDATE_INPUT, ValidateInputParams => ValidateInputResult;
    FindBuild: FIND_BUILD, FindBuildParams => FindBuildResult;
    RegistrationId: REGISTRATION_ID, RegistrationIdParams => RegistrationIdResult;
}

/// Every custom notification the server sends.
pub const NOTIFICATIONS: &[&str] = &[SERIAL_DATA, REGISTRATION_EVENT, STATUS];

/// Client commands the code lenses invoke (implemented by the extension).
pub const CMD_GENERATE_CERT: &str = "devkit.generateCert";
pub const CMD_ENROLL: &str = "devkit.enroll";
/// The client command of the "Move <value> to settings" quick fix: writes one DPS setting,
/// argument `{ "setting": "devkitDps.dps.idScope", "value": "0ne..." }` (the extension
/// accepts only `devkitDps.dps.globalEndpoint`, `devkitDps.dps.idScope` and
/// `devkitDps.registrationId`).
pub const CMD_WRITE_SETTING: &str = "devkit.writeSetting";

/// The argument of [`CMD_WRITE_SETTING`] (a client command, not a request).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WriteSettingParams {
    /// The full setting id, e.g. `devkitDps.dps.idScope`.
    pub setting: String,
    pub value: String,
}

// ---- Error codes -----------------------------------------------------------------------------

/// Stable error codes. Every error also carries `data.code` (the string name).
pub mod codes {
    /// JSON-RPC invalid params; `data.field` names the field.
    pub const INVALID_PARAMS: (i64, &str) = (-32602, "invalidParams");
    /// JSON-RPC internal error: a task panicked (the daemon keeps running).
    pub const INTERNAL: (i64, &str) = (-32603, "internal");
    /// LSP RequestCancelled: `$/cancelRequest` or `window/workDoneProgress/cancel`.
    pub const CANCELLED: (i64, &str) = (-32800, "cancelled");
    /// A port or probe is held by another running request; `data.resource`, `data.heldBy`.
    pub const BUSY: (i64, &str) = (1001, "busy");
    /// The task is not part of this build of the daemon.
    pub const NOT_AVAILABLE: (i64, &str) = (1002, "notAvailable");
    /// A task failed for a reason not covered below; the message says why.
    pub const TASK_FAILED: (i64, &str) = (1003, "taskFailed");
    /// A file, port, probe or device was not found.
    pub const NOT_FOUND: (i64, &str) = (1004, "notFound");
    /// Refused to overwrite another identity's files.
    pub const WOULD_OVERWRITE: (i64, &str) = (1005, "wouldOverwrite");
    /// The DevKit answered with an error or not as expected (console, serial).
    pub const DEVICE: (i64, &str) = (1006, "deviceError");
    /// The sketch did not compile; the errors are published as diagnostics.
    pub const BUILD_FAILED: (i64, &str) = (1007, "buildFailed");
    /// Flashing failed (probe, OpenOCD, virtual DevKit).
    pub const FLASH_FAILED: (i64, &str) = (1008, "flashFailed");
    /// DPS refused or failed (enrollment, registration).
    pub const DPS: (i64, &str) = (1009, "dpsError");
    /// The monitor is not open on that port.
    pub const NOT_OPEN: (i64, &str) = (1010, "monitorNotOpen");

    /// The code of a task error's kind (`data.code` is the kind's stable name).
    pub fn for_kind(kind: tasks::error::ErrorKind) -> (i64, &'static str) {
        use tasks::error::ErrorKind as K;
        let code = match kind {
            K::InvalidInput => INVALID_PARAMS,
            K::NotFound => NOT_FOUND,
            K::WouldOverwrite => WOULD_OVERWRITE,
            K::Device => DEVICE,
            K::BuildFailed => BUILD_FAILED,
            K::FlashFailed => FLASH_FAILED,
            K::Dps => DPS,
            K::Cancelled => CANCELLED,
            K::Failed => TASK_FAILED,
        };
        debug_assert_eq!(code.1, kind.code_name());
        code
    }

    /// All codes, for the documentation drift test.
    pub const ALL: &[(i64, &str)] = &[
        INVALID_PARAMS,
        INTERNAL,
        CANCELLED,
        BUSY,
        NOT_AVAILABLE,
        TASK_FAILED,
        NOT_FOUND,
        WOULD_OVERWRITE,
        DEVICE,
        BUILD_FAILED,
        FLASH_FAILED,
        DPS,
        NOT_OPEN,
    ];
}

fn is_false(b: &bool) -> bool {
    !*b
}

// ---- devkit/listPorts ------------------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListPortsParams {
    /// Only DevKits (USB 0483:374B, and virtual DevKits).
    #[serde(default)]
    pub devkits_only: bool,
    /// State directories of virtual DevKits the client knows of (at most
    /// [`MAX_SIM_DIRS`]); those running are listed with `kind: "virtual"`, as are the ones
    /// the daemon itself controlled or flashed.
    #[serde(default)]
    pub sim_dirs: Vec<PathBuf>,
}

/// Most `simDirs` one `devkit/listPorts` looks at.
pub const MAX_SIM_DIRS: usize = 16;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PortInfo {
    /// OS name of the port (`/dev/ttyACM0`, `COM3`).
    pub port: String,
    /// A DevKit (USB 0483:374B).
    pub is_devkit: bool,
    /// `usb`, `pci`, `bluetooth`, `virtual` (a running virtual DevKit) or `unknown`.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vid: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<String>,
    /// USB product string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The request currently holding the port, if any (e.g. `devkit/upload`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_by: Option<String>,
    /// Whether the daemon's monitor is open on it.
    pub monitor_open: bool,
    /// A virtual DevKit's state directory (`kind: "virtual"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sim_dir: Option<PathBuf>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ListPortsResult {
    /// DevKits first.
    pub ports: Vec<PortInfo>,
}

// ---- devkit/generateCert ---------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateCertParams {
    /// The build's `.bin`; with `map`. Or give `buildDir`.
    pub bin: Option<PathBuf>,
    pub map: Option<PathBuf>,
    /// Directory holding exactly one `*.ino.bin` and its `*.ino.map`.
    pub build_dir: Option<PathBuf>,
    /// 64 hex digits. Secret.
    pub uds: Secret,
    /// Explicit registration ID; or `mac` + `firmwareVersion`.
    pub registration_id: Option<String>,
    pub mac: Option<String>,
    pub firmware_version: Option<String>,
    /// Where `<registrationId>.pem` (and `device-cert.pem`) are written; default
    /// `<projectDir>/.devkit/certs`, else the daemon's working directory (as the CLI).
    pub out_dir: Option<PathBuf>,
    /// Also write the DeviceID certificate (and the DeviceID public key).
    #[serde(default)]
    pub device_cert: bool,
    /// Also write the alias private key `alias-key.pem` (mode 0600): only on request.
    #[serde(default)]
    pub alias_key: bool,
    /// Record the identity in `<projectDir>/.devkit/state.json`.
    pub project_dir: Option<PathBuf>,
    /// Allow the UDS published in the original tutorial (its keys are public: tests only).
    /// `force` is accepted as an alias (the old name; `force` alone now names nothing).
    #[serde(default, alias = "force")]
    pub allow_sample_uds: bool,
}

/// The task's report as it is (what `devkit generate-cert --json` prints too).
pub type GenerateCertResult = tasks::identity::generate::GenerateReport;

// ---- devkit/inspectCert ----------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InspectCertParams {
    /// A PEM or DER file; or `pem` inline.
    pub path: Option<PathBuf>,
    pub pem: Option<String>,
    /// Another certificate file to compare with (same key, FWID, thumbprint?).
    pub against: Option<PathBuf>,
}

/// The task's report as it is (what `devkit inspect-cert --json` prints too): the
/// certificate's fields, and `against` (`cert`, `difference`, `differences`, `explanation`).
pub type InspectCertResult = tasks::identity::inspection::InspectReport;

// ---- devkit/identity -------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityParams {
    /// The project directory holding `.devkit/state.json` (`root` is accepted as an alias).
    #[serde(alias = "root")]
    pub project_dir: PathBuf,
    /// A build directory to compare the current FWID with the recorded identity.
    pub build_dir: Option<PathBuf>,
}

/// The task's report as it is: the recorded identities and the one typed drift.
pub type IdentityResult = tasks::identity::status::IdentityStatusReport;

// ---- devkit/build ----------------------------------------------------------------------------

/// Where the sketch is and what DPS settings are compiled into it (shared by build and
/// deviceUpload). When none of `globalEndpoint`, `idScope`, `registrationId` is given, the
/// settings of the previous build in `buildDir` are reused.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildParams {
    /// Project root (holds `.devkit/`).
    pub project_dir: PathBuf,
    /// Sketch directory; default `<projectDir>/firmware/DevKitDPS`.
    pub sketch: Option<PathBuf>,
    /// arduino-cli build path; default `<projectDir>/.devkit/build`.
    pub build_dir: Option<PathBuf>,
    /// arduino-cli binary; default `arduino-cli` on PATH.
    pub arduino_cli: Option<PathBuf>,
    /// `auto` (default: arduino-cli when found, else arduino-builder), `arduino-cli` or
    /// `arduino-builder`.
    pub builder: Option<String>,
    /// arduino-builder binary; default `arduino-builder` on PATH.
    pub arduino_builder: Option<PathBuf>,
    /// Arduino15 folder holding `packages/AZ3166/hardware/stm32f4/<version>`; default the OS's
    /// usual place.
    pub arduino_data: Option<PathBuf>,
    /// Default `global.azure-devices-provisioning.net`.
    pub global_endpoint: Option<String>,
    /// `0ne` + 8 hex digits.
    pub id_scope: Option<String>,
    /// Default: the device's `az-<mac>v<x>v<y>v<z>`.
    pub registration_id: Option<String>,
    /// Compile even when nothing changed. `force` is accepted as an alias (the old name).
    #[serde(default, alias = "force")]
    pub rebuild: bool,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BuildResult {
    pub bin: PathBuf,
    pub map: PathBuf,
    /// True when nothing changed and the compile was skipped.
    pub skipped: bool,
    /// Compiler warnings of a successful build (also published as diagnostics).
    pub diagnostics: Vec<CompilerDiagnostic>,
    pub warnings: Vec<String>,
}

/// One compiler message. Errors of a failed build come in `error.data.diagnostics`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CompilerDiagnostic {
    pub file: String,
    /// 1-based, as the compiler prints it.
    pub line: u32,
    pub column: Option<u32>,
    /// `error`, `warning` or `note`.
    pub severity: String,
    pub message: String,
}

// ---- devkit/upload ---------------------------------------------------------------------------

/// Where to flash (shared by upload and deviceUpload).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlashParams {
    /// `probe-rs` (default), `openocd` or `sim`.
    pub backend: Option<String>,
    /// probe-rs probe selector `VID:PID[:serial]` (default `0483:374b`).
    pub probe: Option<String>,
    /// openocd executable (backend `openocd`).
    pub openocd: Option<PathBuf>,
    /// State directory of the virtual DevKit (backend `sim`).
    pub sim_dir: Option<PathBuf>,
    /// PEM file of the CA the virtual DevKit trusts for DPS (backend `sim`).
    pub trusted_ca: Option<PathBuf>,
    /// The DevKit's serial port: its monitor is paused during the upload and resumed after.
    pub port: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadParams {
    /// The image; or `buildDir`.
    pub bin: Option<PathBuf>,
    pub build_dir: Option<PathBuf>,
    #[serde(flatten)]
    pub flash: FlashParams,
}

/// The `tasks::upload` report as it is: `bin`, `bytes`, `address`, `backend`, `portPaused`,
/// `warnings`, `nextActions` (what `devkit upload --json` prints).
pub type UploadResult = tasks::upload::UploadReport;

// ---- devkit/deviceUpload ---------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceUploadParams {
    #[serde(flatten)]
    pub build: BuildParams,
    #[serde(flatten)]
    pub flash: FlashParams,
    /// The device's UDS (secret, optional): with it an identity-drift warning names the new
    /// certificate thumbprint.
    pub uds: Option<Secret>,
}

/// The `tasks::upload` report as it is: `bin`, `map`, `skippedBuild`, `backend`, `fwid`,
/// `identityChanged`, `drift`, `portPaused`, `warnings`, `nextActions` (what
/// `devkit device-upload --json` prints).
pub type DeviceUploadResult = tasks::upload::DeviceUploadReport;

// ---- devkit/setUds ---------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetUdsParams {
    /// The DevKit's serial port (in configuration mode, or the virtual DevKit's pty).
    pub port: String,
    /// 64 hex digits. Secret. Omit with `generate: true`.
    pub uds: Option<Secret>,
    /// Generate a fresh UDS (OS CSPRNG) and push it. It must be kept: in `saveUdsTo`, or
    /// returned with `returnUds` (or both); kept nowhere is refused (`data.field` `saveUdsTo`).
    #[serde(default)]
    pub generate: bool,
    /// With `generate`: a new file (0600, never over an existing one) the UDS is written to
    /// once the device is in configuration mode, before it is sent (`set-uds --save-uds-to`).
    pub save_uds_to: Option<PathBuf>,
    /// With `generate`: return the new UDS in the result's `uds` (a secret, for the client's
    /// secret storage).
    #[serde(default)]
    pub return_uds: bool,
    #[serde(default)]
    pub allow_sample_uds: bool,
    /// Serial speed when the daemon opens the port itself (`--baud`); default 115200.
    pub baud_rate: Option<u32>,
    /// Seconds to wait for configuration mode (hold A, press reset) and for each reply
    /// (`--timeout`); default 60.
    pub timeout_secs: Option<u64>,
}

/// The `tasks::console::configure` report (`port`, `generated`, `confirmedBy`, `reply`,
/// `udsSavedTo`, `warnings`, `nextActions`), plus the secret `uds` with `returnUds`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetUdsResult {
    #[serde(flatten)]
    pub report: tasks::console::configure::SetUdsReport,
    /// Only with `returnUds`: the generated UDS. Secret: store it, never show or log it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uds: Option<ReturnedSecret>,
}

// ---- devkit/setWifi --------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetWifiParams {
    pub port: String,
    /// `wifiSsid` like `devkit/provision` and `--wifi-ssid` (`ssid`: the old name, accepted).
    #[serde(alias = "ssid")]
    pub wifi_ssid: String,
    /// Secret. Omit or empty to clear. (`password`: the old name, accepted.)
    #[serde(alias = "password")]
    pub wifi_password: Option<Secret>,
    /// Serial speed when the daemon opens the port itself (`--baud`); default 115200.
    pub baud_rate: Option<u32>,
    /// Seconds to wait for configuration mode (hold A, press reset) and for each reply
    /// (`--timeout`); default 60.
    pub timeout_secs: Option<u64>,
}

/// The `tasks::console::configure` report as it is: `port`, `wifiSsid`, `passwordSet`,
/// `confirmedBy`, `warnings`, `nextActions` (what `devkit set-wifi --json` prints).
pub type SetWifiResult = tasks::console::configure::SetWifiReport;

// ---- devkit/monitor/* ------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MonitorOpenParams {
    pub port: String,
    /// Default 115200.
    pub baud_rate: Option<u32>,
    /// DPS service connection string. Secret. With it (and `projectDir`), a 401002 the device
    /// reports is explained: the `failed` registration event carries `explanation`. Opening an
    /// open monitor again with it (or without it) updates what the monitor knows.
    pub connection_string: Option<Secret>,
    /// PEM file of a CA to trust for the DPS service (the local emulator's).
    pub ca_file: Option<PathBuf>,
    /// The project whose generated and enrolled certificates the enrollment is compared with
    /// (required with `connectionString`).
    pub project_dir: Option<PathBuf>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MonitorOpenResult {
    pub port: String,
    pub baud_rate: u32,
    /// False when it was already open (the call is idempotent).
    pub opened: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MonitorCloseParams {
    pub port: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MonitorCloseResult {
    pub port: String,
    /// False when it was not open.
    pub closed: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MonitorSendParams {
    pub port: String,
    pub text: String,
    /// `none`, `cr` (default, what the DevKit console expects), `lf` or `crlf`.
    pub line_ending: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MonitorSendResult {
    pub bytes: usize,
}

// ---- devkit/enroll ---------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrollParams {
    /// DPS service connection string (`HostName=...;SharedAccessKeyName=...;SharedAccessKey=...`). Secret.
    pub connection_string: Option<Secret>,
    /// `rest` (default: the DPS REST API with `connectionString`) or `az` (the Azure CLI,
    /// `az iot dps enrollment ...`), as the CLI's `--backend`.
    pub backend: Option<EnrollBackend>,
    /// Deprecated: `"backend": "az"` (still accepted; contradicting `backend` is refused).
    #[serde(default)]
    pub use_az: bool,
    /// With the az backend: the DPS name (uses the `az login` session) and its resource group.
    pub dps_name: Option<String>,
    pub resource_group: Option<String>,
    /// Alias certificate PEM; default: the project's last generated certificate.
    pub cert: Option<PathBuf>,
    /// Project whose state gives the default certificate and records the enrollment.
    pub project_dir: PathBuf,
    /// IoT Hub device ID; default the registration ID.
    pub device_id: Option<String>,
    /// Pin the device to this hub (static allocation), e.g. `myhub.azure-devices.net`.
    pub iot_hub: Option<String>,
    /// Disable the enrollment.
    #[serde(default)]
    pub disabled: bool,
    /// Enable an enrollment that is disabled (re-enrolling otherwise keeps a disabled state).
    #[serde(default)]
    pub enable: bool,
    /// PEM file of a CA to trust for the DPS service (the local emulator's); default public roots.
    pub ca_file: Option<PathBuf>,
}

/// `rest` or `az`.
pub use tasks::dps::enroll::EnrollBackend;

/// The task's report as it is (what `devkit enroll --json` prints too).
pub type EnrollResult = tasks::dps::enroll::EnrollReport;

// ---- devkit/enrollBatch ----------------------------------------------------------------------

/// `devkit enroll --batch`: every registration ID of a manifest, in DPS bulk requests,
/// resumable from the journal next to the manifest.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrollBatchParams {
    /// DPS service connection string. Secret.
    pub connection_string: Option<Secret>,
    /// The `generate-cert --batch` manifest.
    pub manifest: PathBuf,
    /// Where each row's `<registration id>.pem` is.
    pub cert_dir: PathBuf,
    /// The report CSV; default `<manifest>.enroll-report.csv`.
    pub report_csv: Option<PathBuf>,
    /// Requests per minute at most; default 1000 (one DPS unit's quota), 0 = no pacing.
    pub requests_per_minute: Option<u32>,
    /// IoT Hub device ID of every enrollment; default the registration ID.
    pub device_id: Option<String>,
    /// Pin every device to this hub (static allocation).
    pub iot_hub: Option<String>,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default)]
    pub enable: bool,
    /// PEM file of a CA to trust for the DPS service (the local emulator's).
    pub ca_file: Option<PathBuf>,
}

/// The batch task's report as it is (what `devkit enroll --batch --json` prints too).
pub type EnrollBatchResult = tasks::dps::enroll::BatchEnrollReport;

// ---- devkit/enrollGroup ----------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrollGroupParams {
    /// DPS service connection string. Secret. Group enrollments go through the REST API only.
    pub connection_string: Option<Secret>,
    /// The enrollment group's ID.
    pub group: String,
    /// The group's root or intermediate CA certificate (PEM or DER). RIoT certificates (the
    /// published root key, DeviceID and alias certificates) are refused.
    pub ca_cert: Option<PathBuf>,
    /// Pin the group's devices to this hub (static allocation).
    pub iot_hub: Option<String>,
    /// Disable the group.
    #[serde(default)]
    pub disabled: bool,
    /// Enable a disabled group (updating otherwise keeps its state).
    #[serde(default)]
    pub enable: bool,
    /// PEM file of a CA to trust for the DPS service (the local emulator's); default public roots.
    pub ca_file: Option<PathBuf>,
}

/// The group task's report as it is (what `devkit enroll --group --json` prints too).
pub type EnrollGroupResult = tasks::dps::enroll::GroupEnrollReport;

// ---- devkit/provision ------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionParams {
    /// Run everything in the daemon: a local DPS emulator, a virtual DevKit and the built-in
    /// sample image (no hardware, no Azure). Only `workDir`, `hub` and `timeoutSecs` apply.
    #[serde(default)]
    pub simulate: bool,
    /// With `simulate`: keep the emulator's and virtual DevKit's state and the certificate here.
    pub work_dir: Option<PathBuf>,
    /// With `simulate`: the hub the emulator assigns to.
    pub hub: Option<String>,
    /// The DevKit's serial port.
    pub port: Option<String>,
    /// The image to flash (`<sketch>.ino.bin` with its `.map` next to it); or `buildDir`.
    pub bin: Option<PathBuf>,
    pub build_dir: Option<PathBuf>,
    /// Flash backend (as `devkit/upload`): `probe-rs` (default), `openocd`, `sim` + `simDir`.
    pub backend: Option<String>,
    pub probe: Option<String>,
    pub openocd: Option<PathBuf>,
    pub sim_dir: Option<PathBuf>,
    pub trusted_ca: Option<PathBuf>,
    /// DPS service connection string. Secret.
    pub connection_string: Option<Secret>,
    /// PEM file of a CA to trust for the DPS service.
    pub ca_file: Option<PathBuf>,
    /// IoT Hub connection string to check the device arrived. Secret.
    pub hub_connection_string: Option<Secret>,
    pub wifi_ssid: Option<String>,
    /// Secret.
    pub wifi_password: Option<Secret>,
    /// The UDS to set (secret); generated when omitted (and returned nowhere: give
    /// `saveUdsTo` to keep it).
    pub uds: Option<Secret>,
    /// Where to save a generated UDS (mode 0600).
    pub save_uds_to: Option<PathBuf>,
    /// Registration ID; or `mac` for the automatic `az-<mac>v<x>v<y>v<z>`.
    pub registration_id: Option<String>,
    pub mac: Option<String>,
    pub device_id: Option<String>,
    pub iot_hub: Option<String>,
    #[serde(default)]
    pub disabled: bool,
    /// Project whose state records the identity; the certificate is written here too.
    pub project_dir: Option<PathBuf>,
    /// Seconds to wait for the device's registration result (default 90; 60 simulated).
    pub timeout_secs: Option<u64>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionResult {
    /// `assigned` (failures are errors).
    pub status: String,
    pub registration_id: String,
    pub device_id: String,
    pub assigned_hub: String,
    pub sha256_thumbprint: String,
    pub fwid: String,
    pub alias_cert: PathBuf,
    pub enrollment_etag: Option<String>,
    /// True when the hub registry was checked and holds the device.
    pub in_hub_registry: Option<bool>,
    pub uds_saved_to: Option<PathBuf>,
    /// The serial port the run used (`simulated` for `simulate`).
    pub port: String,
    pub warnings: Vec<String>,
}

// ---- devkit/checkSetup -----------------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CheckSetupParams {
    /// The configured arduino-cli; default `arduino-cli` on PATH.
    pub arduino_cli: Option<PathBuf>,
    /// Arduino15 folder holding the platform (as `devkit/build`'s `arduinoData`).
    pub arduino_data: Option<PathBuf>,
}

/// `checks`: one entry per check: `id`, `title`, `status` (`ok`, `warning`, `error`,
/// `notNeeded`), `detail`, `nextActions` (`{action, detail?}`, the next-action contract of
/// errors); `ready`: no check is an error (warnings allowed); `builder`: the route the build
/// takes (`arduino-cli`, `arduino-builder`, or null when neither is complete).
pub type CheckSetupResult = tasks::doctor::SetupReport;

// ---- devkit/simConfigMode --------------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SimConfigModeParams {
    /// The virtual DevKit's state directory; or `port`.
    pub sim_dir: Option<PathBuf>,
    /// A virtual DevKit's port link inside its state directory (`devkit sim --link`).
    pub port: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SimConfigModeResult {
    pub sim_dir: PathBuf,
    /// The port it speaks through (its pty, or `tcp://127.0.0.1:PORT`): `port` like every
    /// port field.
    pub port: PathBuf,
    pub config_mode: bool,
}

// ---- devkit/simReset -------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimResetParams {
    /// The `workDir` given to `devkit/provision` with `simulate`.
    pub work_dir: PathBuf,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SimResetResult {
    /// False when there was nothing to reset.
    pub removed: bool,
}

// ---- devkit/simStart, devkit/simStop -----------------------------------------------------------

/// Start a virtual DevKit the daemon owns (what `devkit sim --sim-dir DIR --link
/// DIR/devkit.tty` runs), or find the one already running there.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimStartParams {
    /// Its state directory (secure chip, MAC, flashed image: kept across starts).
    pub sim_dir: PathBuf,
    /// MAC address, 12 hex digits; default the one kept in `simDir`, else a new random one.
    pub mac: Option<String>,
    /// Boot into configuration mode (as if button A were held).
    #[serde(default)]
    pub config_mode: bool,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SimStartResult {
    pub sim_dir: PathBuf,
    /// The port to pick: its link `<simDir>/devkit.tty` when the daemon started it on Unix, a
    /// `tcp://127.0.0.1:PORT` on Windows.
    pub port: String,
    /// False when one was already running there.
    pub started: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimStopParams {
    pub sim_dir: PathBuf,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SimStopResult {
    /// False when the daemon ran none there (one started elsewhere is left alone).
    pub stopped: bool,
}

// ---- devkit/validateInput --------------------------------------------------------------------

/// One value a user typed, checked by the rule the tasks apply to it (an input box asks before
/// it accepts). `value` is a [`Secret`]: a UDS or a connection string is never echoed.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidateInputParams {
    /// The input's param name (`data.field` of errors): `registrationId`, `mac`,
    /// `firmwareVersion`, `uds`, `connectionString`, `hubConnectionString`, `idScope`,
    /// `globalEndpoint`, `port`.
    pub input: String,
    /// The text as typed. Secret for `uds` and the connection strings.
    pub value: Secret,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ValidateInputResult {
    /// The tasks would accept the value.
    pub valid: bool,
    /// Why not (or, when valid, nothing). Never holds a secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The value as the tasks use it (a MAC without separators, lower case; a trimmed ID
    /// Scope); never for secrets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub normalized: Option<String>,
    /// Accepted, but worth a look (an ID Scope of an unusual shape, an endpoint a real DevKit
    /// cannot reach, the published sample UDS).
    pub warnings: Vec<String>,
    /// `uds`: the UDS published in the original tutorial (its keys are public): the requests
    /// that take a UDS accept it only with `allowSampleUds`.
    #[serde(skip_serializing_if = "is_false", default)]
    pub published_sample: bool,
    /// `connectionString`, `hubConnectionString`: the service's host (not secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_name: Option<String>,
    /// `connectionString`: the host is this machine (the local DPS emulator, whose CA the
    /// enrollment must trust: `caFile`).
    #[serde(skip_serializing_if = "is_false", default)]
    pub local_host: bool,
    /// `port`: the state directory of the virtual DevKit whose link the port is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sim_dir: Option<PathBuf>,
}

// ---- devkit/findBuild ------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FindBuildParams {
    /// The project (its build goes to `<projectDir>/.devkit/build` unless told otherwise).
    pub project_dir: PathBuf,
    /// A build directory to look in instead.
    pub build_dir: Option<PathBuf>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FindBuildResult {
    /// The directory looked in.
    pub build_dir: PathBuf,
    /// Its image (`<sketch>.ino.bin`) and map, both present.
    pub bin: PathBuf,
    pub map: PathBuf,
}

// ---- devkit/registrationId -------------------------------------------------------------------

/// The registration ID from what the user gave: the ID itself, else the automatic
/// `az-<mac>v<x>v<y>v<z>` from the MAC address (any accepted form) and firmware version.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationIdParams {
    pub registration_id: Option<String>,
    pub mac: Option<String>,
    pub firmware_version: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationIdResult {
    pub registration_id: String,
}

// ---- Notifications ---------------------------------------------------------------------------

/// `devkit/serialData`: text read from a monitored port, batched (at most one per port every 20 ms).
pub enum SerialData {}
impl Notification for SerialData {
    type Params = SerialDataParams;
    const METHOD: &'static str = SERIAL_DATA;
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SerialDataParams {
    pub port: String,
    /// UTF-8 text (invalid bytes replaced by U+FFFD), line endings as received.
    pub text: String,
}

/// `devkit/registrationEvent`: a device log line recognised as a provisioning step.
pub enum RegistrationEvent {}
impl Notification for RegistrationEvent {
    type Params = RegistrationEventParams;
    const METHOD: &'static str = REGISTRATION_EVENT;
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationEventParams {
    /// The port it came from (`simulated` for `devkit/provision` with `simulate`).
    pub port: String,
    /// The `tasks::logs::LogEvent`, flattened (its own camelCase serialization): `kind` is
    /// one of `boot`, `configMode`, `identity`, `status` (with `status`: `connected`,
    /// `registering`, `assigning`, ...), `registrationRequest`, `dpsError`, `assigned` (with
    /// `hub`, `deviceId`), `failed` (with `reason`, `hint`), `udsMissing`, `wifiFailed`,
    /// `deviceError`.
    #[serde(flatten)]
    pub event: tasks::logs::LogEvent,
    /// On a `failed` event for a 401002 (the certificate was rejected), when the daemon could
    /// ask DPS (`devkit/monitor/open` with `connectionString`): which input differs from what
    /// the enrollment holds (`cause`, `message`) and the one action that fixes it
    /// (`nextActions`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<tasks::dps::mismatch::MismatchExplanation>,
}

/// `devkit/status`: health and what is running, sent whenever it changes.
pub enum Status {}
impl Notification for Status {
    type Params = StatusParams;
    const METHOD: &'static str = STATUS;
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StatusParams {
    /// `ok`, `warning` (the last task failed) or `error` (a task panicked).
    pub health: String,
    /// True when nothing is running.
    pub quiescent: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub running: Vec<RunningTask>,
    /// Ports with an open monitor, and whether it is paused for another task.
    pub monitors: Vec<MonitorStatus>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RunningTask {
    pub id: u64,
    pub method: String,
    /// Ports and probes it holds (`port:/dev/ttyACM0`, `probe:default`).
    pub resources: Vec<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MonitorStatus {
    pub port: String,
    #[serde(skip_serializing_if = "is_false", default)]
    pub paused: bool,
    /// How many times the monitor was paused since it opened: a pause shorter than the status's
    /// coalescing still changes it, so a client notes "paused, resumed" it never saw as `paused`.
    #[serde(default)]
    pub pauses: u32,
}
