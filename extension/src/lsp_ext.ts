// The daemon's protocol extensions, mirrored 1:1 from the server (`devkit lsp`,
// server/src/lsp/ and docs/protocol.md), rust-analyzer style.
//
// Keep exactly ONE string literal per method name in this file, and no method name in comments:
// the server's drift test reads the quoted method strings here and compares them with the
// methods the server declares.
// Params are camelCase. Secrets (uds, password, connectionString) travel only in params and
// must never be logged by the client either.

import * as lc from "vscode-languageclient/node";

// ---------------------------------------------------------------------------------------------
// Shared shapes

/** Progress-capable requests accept the standard work-done token. */
export type WithProgress<T> = T & lc.WorkDoneProgressParams;

/** Stable error codes (`error.code`; `error.data.code` holds the name). */
export const ErrorCode = {
    invalidParams: -32602,
    internal: -32603,
    cancelled: -32800,
    busy: 1001,
    notAvailable: 1002,
    taskFailed: 1003,
    notFound: 1004,
    wouldOverwrite: 1005,
    deviceError: 1006,
    buildFailed: 1007,
    flashFailed: 1008,
    dpsError: 1009,
    monitorNotOpen: 1010,
} as const;

/** What the user can do about an error (`error.data.nextActions`), rendered as buttons. */
export type NextActionName =
    | "setUds"
    | "enroll"
    | "regenerateCert"
    | "chooseUploadBackend"
    | "installToolchain"
    | "setArduinoCliPath"
    | "setArduinoDataPath"
    | "configureDps"
    | "selectPort"
    | "enterConfigMode"
    | "installUdevRule"
    | "checkSetup"
    | "retry";
export interface NextAction {
    action: NextActionName;
    /** A setting id, a tool or package name, or what to run first. */
    detail?: string;
}
/** `error.data` of every daemon error. */
export interface ErrorData {
    code: string;
    /** The camelCase param the error is about. */
    field?: string;
    nextActions?: NextAction[];
    hint?: string;
    resource?: string;
    heldBy?: string;
    method?: string;
    diagnostics?: CompilerDiagnostic[];
}

// ---------------------------------------------------------------------------------------------
// listPorts

export interface ListPortsParams {
    /** Only DevKits (USB 0483:374B, and virtual DevKits). */
    devkitsOnly?: boolean;
    /** State directories of virtual DevKits the client knows of (at most 16). */
    simDirs?: string[];
}
export interface PortInfo {
    /** OS name of the port (`/dev/ttyACM0`, `COM3`). */
    port: string;
    /** A DevKit (USB 0483:374B). */
    isDevkit: boolean;
    /** `usb`, `pci`, `bluetooth`, `virtual` (a running virtual DevKit) or `unknown`. */
    kind: string;
    vid?: number;
    pid?: number;
    serialNumber?: string;
    manufacturer?: string;
    /** USB product string. */
    description?: string;
    /** The request currently holding the port, if any (e.g. an upload). */
    heldBy?: string;
    /** Whether the daemon's monitor is open on it. */
    monitorOpen: boolean;
    /** A virtual DevKit's state directory (`kind: "virtual"`). */
    simDir?: string;
}
export interface ListPortsResult {
    /** DevKits first. */
    ports: PortInfo[];
}
export const listPorts = new lc.RequestType<ListPortsParams, ListPortsResult, void>("devkit/listPorts");

// ---------------------------------------------------------------------------------------------
// generateCert

export interface GenerateCertParams {
    /** The build's `.bin`; with `map`. Or give `buildDir`. */
    bin?: string;
    map?: string;
    /** Directory holding exactly one `*.ino.bin` and its `*.ino.map`. */
    buildDir?: string;
    /** 64 hex digits. Secret. */
    uds: string;
    /** Explicit registration ID; or `mac` + `firmwareVersion`. */
    registrationId?: string;
    mac?: string;
    firmwareVersion?: string;
    /** Default: `certs` in the project's `.devkit` folder, else the daemon's working directory. */
    outDir?: string;
    /** Also write the DeviceID certificate (and the DeviceID public key). */
    deviceCert?: boolean;
    /** Also write the alias private key `alias-key.pem` (mode 0600): only on request. */
    aliasKey?: boolean;
    /** Record the identity in the project's state file (`.devkit` folder). */
    projectDir?: string;
    /** Allow the UDS published in the original tutorial (its keys are public: tests only). */
    allowSampleUds?: boolean;
}
/** What happened to one file: `written` (new), `unchanged`, or `replaced` (the old one kept as `backup`). */
export interface WrittenFile {
    kind: "aliasCert" | "deviceCert" | "deviceIdPublicKey" | "aliasKey";
    path: string;
    action: "written" | "unchanged" | "replaced";
    backup: string | null;
}
/** The task's report (`devkit generate-cert --json` prints the same object). */
export interface GenerateCertResult {
    registrationId: string;
    /** Path of the alias certificate PEM written. */
    aliasCert: string;
    /** The alias certificate itself (64-column PEM; public). */
    aliasCertPem: string;
    /** Path of the DeviceID certificate PEM, when `deviceCert` was asked for. */
    deviceCert: string | null;
    deviceCertPem: string | null;
    /** Path of the DeviceID public key PEM (with `deviceCert`). */
    deviceIdPublicKey: string | null;
    /** Path of the alias private key (with `aliasKey`). */
    aliasKey: string | null;
    sha1Thumbprint: string;
    sha256Thumbprint: string;
    /** SHA-256 of `.riot_fw`, lower-case hex. */
    fwid: string;
    files: WrittenFile[];
    warnings: string[];
    /** `enroll` when the enrollment of this registration ID holds another certificate. */
    nextActions: NextAction[];
    /** The fixed-nonce weakness: never use the DeviceID certificate as a CA. */
    note: string;
}
export const generateCert = new lc.RequestType<WithProgress<GenerateCertParams>, GenerateCertResult, void>(
    "devkit/generateCert",
);

// ---------------------------------------------------------------------------------------------
// inspectCert

export interface InspectCertParams {
    /** A PEM or DER file; or `pem` inline. */
    path?: string;
    pem?: string;
    /** Another certificate file to compare with. */
    against?: string;
}
export interface CertInfo {
    subjectCn: string;
    issuerCn: string;
    publicKey: string;
    deviceIdPublicKey: string | null;
    fwid: string | null;
    signatureValid: boolean;
    isAlias: boolean;
    sha1Thumbprint: string;
    sha256Thumbprint: string;
}
/** Which input differs between two certificates. */
export type Difference = "identical" | "deviceId" | "fwid" | "registrationId" | "encoding";
export interface CertComparison {
    cert: CertInfo;
    /** What differs first. */
    difference: Difference;
    /** Every input that differs (empty when identical). */
    differences: Difference[];
    explanation: string;
}
/** The task's report (`devkit inspect-cert --json` prints the same object). */
export interface InspectCertResult extends CertInfo {
    /** Present when `against` was given. */
    against?: CertComparison;
    /** The fixed-nonce weakness, for an alias certificate. */
    note?: string;
}
export const inspectCert = new lc.RequestType<InspectCertParams, InspectCertResult, void>("devkit/inspectCert");

// ---------------------------------------------------------------------------------------------
// identity

export interface IdentityParams {
    /** The project directory (holding the `.devkit` state folder). */
    projectDir: string;
    /** A build directory to compare the current FWID with the recorded identity. */
    buildDir?: string;
}
export interface IdentityRecord {
    registrationId: string;
    /** Lower-case hex. */
    fwid: string;
    sha256Thumbprint: string;
    aliasCert: string;
    source: "generated" | "enrolled";
    /** RIoT core digest, lower-case hex (absent in older records). */
    coreDigest?: string;
    /** DeviceID public key, upper-case hex (absent in older records). */
    deviceIdPublicKey?: string;
}
/**
 * Why the recorded identity no longer matches the build (or the enrollment): one shape for
 * `devkit/identity` and `devkit/deviceUpload`. Render `message`; buttons from `nextActions`.
 */
export interface Drift {
    registrationId: string;
    /** What the build was compared with: the enrollment when there is one. */
    reference: "generated" | "enrolled";
    /** New alias key and certificate. */
    fwidChanged: boolean;
    /** New DeviceID key; `null`: not recorded, unknown. */
    coreDigestChanged: boolean | null;
    deviceIdKeyChanged: boolean | null;
    /** The enrollment holds another certificate than the last generated one. */
    staleEnrollment: boolean;
    previousFwid: string;
    newFwid: string | null;
    previousCoreDigest: string | null;
    newCoreDigest: string | null;
    previousSha256Thumbprint: string;
    newSha256Thumbprint: string | null;
    message: string;
    nextActions: NextAction[];
}
export interface IdentityResult {
    lastGenerated: IdentityRecord | null;
    lastEnrolled: IdentityRecord | null;
    /** Whether DPS holds the current certificate (the daemon decides; the view shows it). */
    enrollment: "noIdentity" | "notEnrolled" | "enrolled" | "outOfDate";
    currentFwid: string | null;
    currentCoreDigest: string | null;
    /** `null` when the enrollment matches the build and the last generated certificate. */
    drift: Drift | null;
    warnings: string[];
    nextActions: NextAction[];
}
export const identity = new lc.RequestType<IdentityParams, IdentityResult, void>("devkit/identity");

// ---------------------------------------------------------------------------------------------
// build

export interface BuildParams {
    /** Project root (holds the `.devkit` folder). */
    projectDir: string;
    /** Sketch directory; default `<projectDir>/firmware/DevKitDPS`. */
    sketch?: string;
    /** arduino-cli build path; default: `build` in the project's `.devkit` folder. */
    buildDir?: string;
    arduinoCli?: string;
    /** `auto` (default), `arduino-cli` or `arduino-builder`. */
    builder?: string;
    arduinoBuilder?: string;
    /** Arduino15 folder holding `packages/AZ3166/hardware/stm32f4/<version>`. */
    arduinoData?: string;
    globalEndpoint?: string;
    idScope?: string;
    registrationId?: string;
    /** Compile even when nothing changed (the daemon also accepts the old name `force`). */
    rebuild?: boolean;
}
export interface CompilerDiagnostic {
    file: string;
    /** 1-based. */
    line: number;
    column: number | null;
    /** `error`, `warning` or `note`. */
    severity: string;
    message: string;
}
export interface BuildResult {
    bin: string;
    map: string;
    /** True when nothing changed and the compile was skipped. */
    skipped: boolean;
    diagnostics: CompilerDiagnostic[];
    warnings: string[];
}
export const build = new lc.RequestType<WithProgress<BuildParams>, BuildResult, void>("devkit/build");

// ---------------------------------------------------------------------------------------------
// upload

/** Where to flash (shared by upload and deviceUpload). */
export interface FlashParams {
    /** `probe-rs` (default), `openocd` or `sim`. */
    backend?: string;
    /** probe-rs probe selector `VID:PID[:serial]`. */
    probe?: string;
    openocd?: string;
    /** State directory of the virtual DevKit (backend `sim`). */
    simDir?: string;
    trustedCa?: string;
    /** The DevKit's serial port: its monitor is paused during the upload and resumed after. */
    port?: string;
}
export interface UploadParams extends FlashParams {
    bin?: string;
    buildDir?: string;
}
/** `tasks::upload::UploadReport` (what `devkit upload --json` prints). */
export interface UploadResult {
    bin: string;
    bytes: number;
    /** Flash address (0x0800C000 unless the CLI's `--address` said otherwise). */
    address: number;
    backend: string;
    /** The port whose monitor was paused around flashing. */
    portPaused: string | null;
    warnings: string[];
    nextActions: NextAction[];
}
export const upload = new lc.RequestType<WithProgress<UploadParams>, UploadResult, void>("devkit/upload");

// ---------------------------------------------------------------------------------------------
// deviceUpload

export interface DeviceUploadParams extends BuildParams, FlashParams {
    /** Optional. Secret. With it an identity-drift warning names the new thumbprint. */
    uds?: string;
}
/** `tasks::upload::DeviceUploadReport` (what `devkit device-upload --json` prints). */
export interface DeviceUploadResult {
    bin: string;
    map: string;
    skippedBuild: boolean;
    backend: string;
    fwid: string | null;
    /** The build changes the identity (`drift` is present). */
    identityChanged: boolean;
    drift: Drift | null;
    /** The port whose monitor was paused around flashing. */
    portPaused: string | null;
    warnings: string[];
    /** The drift's next actions (empty without drift). */
    nextActions: NextAction[];
}
export const deviceUpload = new lc.RequestType<WithProgress<DeviceUploadParams>, DeviceUploadResult, void>(
    "devkit/deviceUpload",
);

// ---------------------------------------------------------------------------------------------
// setUds, setWifi

export interface SetUdsParams {
    port: string;
    /** 64 hex digits. Secret. Omit with `generate: true`. */
    uds?: string;
    /** Generate a UDS in the daemon; it must be kept: `saveUdsTo`, `returnUds`, or both. */
    generate?: boolean;
    /** With `generate`: a new file (0600) the UDS is written to before it is sent. */
    saveUdsTo?: string;
    /** With `generate`: return the new UDS in the result's `uds` (secret). */
    returnUds?: boolean;
    allowSampleUds?: boolean;
    /** Serial speed when the daemon opens the port itself (default 115200). */
    baudRate?: number;
    /** Seconds to wait for configuration mode and each reply (default 60). */
    timeoutSecs?: number;
}
/** How the device confirmed: its echo then the reply, or only its `INFO:` line. */
export type ConfirmedBy = "echo" | "infoLine";
/** `tasks::console::configure::SetUdsReport` plus the secret `uds` (with `returnUds`). */
export interface SetUdsResult {
    port: string;
    generated: boolean;
    confirmedBy: ConfirmedBy;
    /** The device's confirmation line (never the UDS). */
    reply: string;
    /** The file a generated UDS was saved to. */
    udsSavedTo?: string;
    /** Only with `returnUds`: the new UDS. Secret: store it in SecretStorage, never show or log it. */
    uds?: string;
    warnings: string[];
    nextActions: NextAction[];
}
export const setUds = new lc.RequestType<WithProgress<SetUdsParams>, SetUdsResult, void>("devkit/setUds");

export interface SetWifiParams {
    port: string;
    /** As `devkit/provision` names it (`ssid` is still accepted). */
    wifiSsid: string;
    /** Secret. Omit or empty to clear. */
    wifiPassword?: string;
    /** Serial speed when the daemon opens the port itself (default 115200). */
    baudRate?: number;
    /** Seconds to wait for configuration mode and each reply (default 60). */
    timeoutSecs?: number;
}
/** `tasks::console::configure::SetWifiReport` (never the password). */
export interface SetWifiResult {
    port: string;
    wifiSsid: string;
    /** False for an open network. */
    passwordSet: boolean;
    confirmedBy: ConfirmedBy;
    warnings: string[];
    nextActions: NextAction[];
}
export const setWifi = new lc.RequestType<WithProgress<SetWifiParams>, SetWifiResult, void>("devkit/setWifi");

// ---------------------------------------------------------------------------------------------
// monitor/*

export interface MonitorOpenParams {
    port: string;
    /** Default 115200. */
    baudRate?: number;
    /** DPS service connection string. Secret. With `projectDir`: a 401002 is explained (`explanation` on the `failed` event). */
    connectionString?: string;
    /** PEM file of a CA to trust for the DPS service (the local emulator's). */
    caFile?: string;
    /** The project whose certificates the enrollment is compared with (required with `connectionString`). */
    projectDir?: string;
}
export interface MonitorOpenResult {
    port: string;
    baudRate: number;
    /** False when it was already open (idempotent). */
    opened: boolean;
}
export const monitorOpen = new lc.RequestType<MonitorOpenParams, MonitorOpenResult, void>("devkit/monitor/open");

export interface MonitorCloseParams {
    port: string;
}
export interface MonitorCloseResult {
    port: string;
    closed: boolean;
}
export const monitorClose = new lc.RequestType<MonitorCloseParams, MonitorCloseResult, void>("devkit/monitor/close");

export interface MonitorSendParams {
    port: string;
    text: string;
    /** `none`, `cr` (default), `lf` or `crlf`: appended to `text`. */
    lineEnding?: "none" | "cr" | "lf" | "crlf";
}
export interface MonitorSendResult {
    bytes: number;
}
export const monitorSend = new lc.RequestType<MonitorSendParams, MonitorSendResult, void>("devkit/monitor/send");

// ---------------------------------------------------------------------------------------------
// enroll, provision

/** How `devkit/enroll` reaches DPS, as the CLI's `--backend`. */
export type EnrollBackend = "rest" | "az";
export interface EnrollParams {
    /** DPS service connection string. Secret. */
    connectionString?: string;
    /** `rest` (default: the REST API with `connectionString`) or `az` (the Azure CLI). */
    backend?: EnrollBackend;
    /** @deprecated `backend: "az"`. */
    useAz?: boolean;
    /** With the az backend: the DPS name (the `az login` session) and its resource group. */
    dpsName?: string;
    resourceGroup?: string;
    /** Alias certificate PEM; default: the project's last generated certificate. */
    cert?: string;
    /** Project whose state gives the default certificate and records the enrollment. */
    projectDir: string;
    /** IoT Hub device ID; default the registration ID. */
    deviceId?: string;
    /** Pin the device to this hub (static allocation). */
    iotHub?: string;
    /** Disable the enrollment. */
    disabled?: boolean;
    /** Enable an enrollment that is disabled (re-enrolling otherwise keeps it disabled). */
    enable?: boolean;
    /** PEM file of a CA to trust for the DPS service (the local emulator's). */
    caFile?: string;
}
export interface EnrollGroupParams {
    /** DPS service connection string (REST only). Secret. */
    connectionString?: string;
    /** The enrollment group's ID. */
    group: string;
    /** The group's root or intermediate CA certificate (RIoT certificates are refused). */
    caCert?: string;
    /** Pin the group's devices to this hub (static allocation). */
    iotHub?: string;
    /** Disable the group. */
    disabled?: boolean;
    /** Enable a disabled group. */
    enable?: boolean;
    /** PEM file of a CA to trust for the DPS service (the local emulator's). */
    caFile?: string;
}
/** The group task's report (what `devkit enroll --group --json` prints too). */
export interface EnrollGroupResult {
    enrollmentGroupId: string;
    provisioningStatus: "enabled" | "disabled";
    /** `null`: the DPS allocation policy chooses. */
    iotHubs: string[] | null;
    /** The CA certificate file and its subject CN. */
    caCert: string;
    caSubject: string | null;
    sha256Thumbprint: string;
    sha1Thumbprint: string;
    /** Bare, as in DPS's JSON. */
    etag: string | null;
    warnings: string[];
    nextActions: NextAction[];
}
/** The enroll task's report (what `devkit enroll --json` prints too). */
export interface EnrollResult {
    /** The certificate's CN. */
    registrationId: string;
    /** `null`: the registration ID. */
    deviceId: string | null;
    provisioningStatus: "enabled" | "disabled";
    /** `null`: the DPS allocation policy chooses. */
    iotHubs: string[] | null;
    sha256Thumbprint: string;
    sha1Thumbprint: string;
    /** Bare, as in DPS's JSON. */
    etag: string | null;
    /** The enrolled certificate file. */
    cert: string;
    /** No certificate was named: the project's last generated one was enrolled. */
    certFromProjectState: boolean;
    /** E.g. the project state could not be saved (the enrollment exists in DPS). */
    warnings: string[];
    /** `retry` when the project state was not saved. */
    nextActions: NextAction[];
}
export const enroll = new lc.RequestType<WithProgress<EnrollParams>, EnrollResult, void>("devkit/enroll");
export const enrollGroup = new lc.RequestType<WithProgress<EnrollGroupParams>, EnrollGroupResult, void>("devkit/enrollGroup");

/** `devkit enroll --batch`: every row of a manifest in DPS bulk requests, resumable. */
export interface EnrollBatchParams {
    /** Secret. */
    connectionString?: string;
    /** The `generate-cert --batch` manifest. */
    manifest: string;
    /** Where each row's `<registration id>.pem` is. */
    certDir: string;
    /** Default `<manifest>.enroll-report.csv`. */
    reportCsv?: string;
    /** Default 1000 (one DPS unit's quota); 0: no pacing. */
    requestsPerMinute?: number;
    deviceId?: string;
    iotHub?: string;
    disabled?: boolean;
    enable?: boolean;
    caFile?: string;
}
export interface EnrollBatchFailure {
    line: number;
    registrationId: string;
    errorCode: number | null;
    message: string;
}
export interface EnrollBatchResult {
    manifest: string;
    /** What DPS confirmed; a re-run skips those rows. */
    journal: string;
    /** Registration ID, thumbprint, result, DPS error code of every row. */
    reportCsv: string;
    rows: number;
    created: number;
    updated: number;
    unchanged: number;
    /** Enrolled by an earlier run (journal): nothing sent. */
    skipped: number;
    failed: number;
    requests: number;
    /** The first 100 failed rows (all are in the report CSV). */
    failures: EnrollBatchFailure[];
    warnings: string[];
    /** `retry` when rows failed. */
    nextActions: NextAction[];
}
export const enrollBatch = new lc.RequestType<WithProgress<EnrollBatchParams>, EnrollBatchResult, void>("devkit/enrollBatch");

export interface ProvisionParams {
    /** Virtual DevKit + local DPS emulator + sample image (no hardware, no Azure). */
    simulate?: boolean;
    /** With `simulate`: where the emulator's and virtual DevKit's state and the certificate go. */
    workDir?: string;
    /** With `simulate`: the hub the emulator assigns to. */
    hub?: string;
    port?: string;
    bin?: string;
    buildDir?: string;
    backend?: string;
    probe?: string;
    openocd?: string;
    simDir?: string;
    trustedCa?: string;
    /** Secret. */
    connectionString?: string;
    caFile?: string;
    /** Secret. */
    hubConnectionString?: string;
    wifiSsid?: string;
    /** Secret. */
    wifiPassword?: string;
    /** Secret; generated when omitted. */
    uds?: string;
    saveUdsTo?: string;
    registrationId?: string;
    mac?: string;
    deviceId?: string;
    iotHub?: string;
    disabled?: boolean;
    projectDir?: string;
    /** Default 90 (60 simulated). */
    timeoutSecs?: number;
}
export interface ProvisionResult {
    /** `assigned` (failures are errors). */
    status: string;
    registrationId: string;
    deviceId: string;
    assignedHub: string;
    sha256Thumbprint: string;
    fwid: string;
    aliasCert: string;
    enrollmentEtag: string | null;
    inHubRegistry: boolean | null;
    udsSavedTo: string | null;
    /** `simulated` for `simulate`. */
    port: string;
    warnings: string[];
}
export const provision = new lc.RequestType<WithProgress<ProvisionParams>, ProvisionResult, void>("devkit/provision");

// ---------------------------------------------------------------------------------------------
// checkSetup, simConfigMode, simReset

export interface CheckSetupParams {
    arduinoCli?: string;
    /** Arduino15 folder holding the platform. */
    arduinoData?: string;
}
export interface SetupCheck {
    /** `daemon`, `buildRoute`, `arduinoCli`, `platform`, `arduinoBuilder`, `arduinoData`, `armGcc`, `probe`, `udevRule`. */
    id: string;
    title: string;
    /** `notNeeded`: fails only on the build route not taken (the other one is complete). */
    status: "ok" | "warning" | "error" | "notNeeded";
    /** May span lines. */
    detail: string;
    nextActions: NextAction[];
}
export interface CheckSetupResult {
    checks: SetupCheck[];
    /** No check is an error. */
    ready: boolean;
    /** The route the build takes; null when neither is complete. */
    builder: "arduino-cli" | "arduino-builder" | null;
}
export const checkSetup = new lc.RequestType<CheckSetupParams, CheckSetupResult, void>("devkit/checkSetup");

export interface SimConfigModeParams {
    /** The virtual DevKit's state directory; or `port`. */
    simDir?: string;
    /** Its port link, inside its state directory. */
    port?: string;
}
export interface SimConfigModeResult {
    simDir: string;
    /** The port it speaks through (its pty, or `tcp://127.0.0.1:PORT`). */
    port: string;
    configMode: boolean;
}
export const simConfigMode = new lc.RequestType<SimConfigModeParams, SimConfigModeResult, void>("devkit/simConfigMode");

export interface SimResetParams {
    /** The `workDir` of simulated provisioning runs. */
    workDir: string;
}
export interface SimResetResult {
    removed: boolean;
}
export const simReset = new lc.RequestType<SimResetParams, SimResetResult, void>("devkit/simReset");


/** Start a virtual DevKit the daemon owns (its state in `simDir`: the same device each time). */
export interface SimStartParams {
    simDir: string;
    /** 12 hex digits; default the one kept in `simDir`. */
    mac?: string;
    configMode?: boolean;
}
export interface SimStartResult {
    simDir: string;
    /** The port to pick: its link `<simDir>/devkit.tty` (Unix), `tcp://127.0.0.1:PORT` (Windows). */
    port: string;
    /** False when one already ran there. */
    started: boolean;
}
export const simStart = new lc.RequestType<SimStartParams, SimStartResult, void>("devkit/simStart");

export interface SimStopParams {
    simDir: string;
}
export interface SimStopResult {
    /** False when the daemon ran none there. */
    stopped: boolean;
}
export const simStop = new lc.RequestType<SimStopParams, SimStopResult, void>("devkit/simStop");
// ---------------------------------------------------------------------------------------------
// validateInput, findBuild, registrationId: what input boxes and pickers ask the daemon

/** The inputs `validateInput` checks, by their param names (`data.field` of errors). */
export type ValidatedInput =
    | "registrationId"
    | "mac"
    | "firmwareVersion"
    | "uds"
    | "connectionString"
    | "hubConnectionString"
    | "idScope"
    | "globalEndpoint"
    | "port";
export interface ValidateInputParams {
    input: ValidatedInput;
    /** The text as typed. Secret for `uds` and the connection strings (never echoed back). */
    value: string;
}
export interface ValidateInputResult {
    /** The tasks would accept the value. */
    valid: boolean;
    /** Why not. Never holds a secret. */
    message?: string;
    /** The value as the tasks use it (never for secrets). */
    normalized?: string;
    /** Accepted, but worth a look. */
    warnings: string[];
    /** `uds`: the UDS of the old tutorial (requests accept it only with `allowSampleUds`). */
    publishedSample?: boolean;
    /** Connection strings: the service's host (not secret). */
    hostName?: string;
    /** `connectionString`: the host is this machine (the DPS emulator: give `caFile` to enroll). */
    localHost?: boolean;
    /** `port`: the state directory of the virtual DevKit whose link the port is. */
    simDir?: string;
}
export const validateInput = new lc.RequestType<ValidateInputParams, ValidateInputResult, void>("devkit/validateInput");

export interface FindBuildParams {
    projectDir: string;
    /** Default: the project's build directory (`.devkit/build`). */
    buildDir?: string;
}
export interface FindBuildResult {
    buildDir: string;
    bin: string;
    map: string;
}
export const findBuild = new lc.RequestType<FindBuildParams, FindBuildResult, void>("devkit/findBuild");

/** The registration ID itself (validated), else `mac` + `firmwareVersion` for the automatic one. */
export interface RegistrationIdParams {
    registrationId?: string;
    mac?: string;
    firmwareVersion?: string;
}
export interface RegistrationIdResult {
    registrationId: string;
}
export const registrationId = new lc.RequestType<RegistrationIdParams, RegistrationIdResult, void>("devkit/registrationId");

// ---------------------------------------------------------------------------------------------
// Client commands the daemon's quick fixes run (ext.rs CMD_*)

/** The command of the "Move <value> to settings" quick fix: writes one DPS setting. */
export const writeSettingCommand = "devkit.writeSetting";
/** Its one argument. */
export interface WriteSettingParams {
    /** The full setting id: devkitDps.dps.globalEndpoint, devkitDps.dps.idScope or devkitDps.registrationId. */
    setting: string;
    value: string;
}

// ---------------------------------------------------------------------------------------------
// Notifications (server -> client)

export interface SerialDataParams {
    port: string;
    /** UTF-8 text, line endings as received; batched (at most one per port every 20 ms). */
    text: string;
}
export const serialData = new lc.NotificationType<SerialDataParams>("devkit/serialData");

/**
 * A device log line recognised as a provisioning step. `kind`: `boot`, `configMode`,
 * `identity`, `status` (with `status`: `connected`, `registering`, `assigning`, ...),
 * `registrationRequest`, `dpsError`, `assigned` (with `hub`, `deviceId`), `failed` (with
 * `reason`, `hint`), `udsMissing`, `wifiFailed`, `deviceError`.
 */
export interface RegistrationEventParams {
    /** The port it came from (`simulated` for a simulated provisioning run). */
    port: string;
    kind: string;
    status?: string;
    hub?: string;
    deviceId?: string;
    reason?: string;
    hint?: string;
    /** `failed`, `udsMissing`, `wifiFailed`: what to do, as the errors' typed next actions. */
    nextActions?: NextAction[];
    message?: string;
    registrationId?: string;
    /** `failed` for a 401002 on a monitor opened with `connectionString`: which input differs, and its one fix. */
    explanation?: MismatchExplanation;
    [key: string]: unknown;
}

/** Which input differs between what DPS holds and what the project generates now. */
export type MismatchCause =
    | "nothingGenerated"
    | "registrationId"
    | "noEnrollment"
    | "deviceDiffers"
    | "uds"
    | "riotCore"
    | "udsOrRiotCore"
    | "riotFw"
    | "neverGenerated";
/** Why DPS rejected the device's certificate (401002), explained against the project's certificates. */
export interface MismatchExplanation {
    registrationId: string;
    cause: MismatchCause;
    /** `null`: DPS holds no enrollment. */
    enrolledSha256Thumbprint: string | null;
    generatedSha256Thumbprint: string | null;
    /** Which input differs, in words. */
    message: string;
    /** The one action that fixes it. */
    nextActions: NextAction[];
}
export const registrationEvent = new lc.NotificationType<RegistrationEventParams>("devkit/registrationEvent");

export interface RunningTask {
    id: number;
    method: string;
    /** Ports and probes it holds (`port:/dev/ttyACM0`, `probe:default`). */
    resources: string[];
}
export interface MonitorStatus {
    port: string;
    paused?: boolean;
    /** How many times the monitor was paused since it opened (a short pause still shows). */
    pauses: number;
}
export interface StatusParams {
    /** `ok`, `warning` (the last task failed) or `error` (a task panicked). */
    health: string;
    /** True when nothing is running. */
    quiescent: boolean;
    message?: string;
    running: RunningTask[];
    monitors: MonitorStatus[];
}
export const status = new lc.NotificationType<StatusParams>("devkit/status");
