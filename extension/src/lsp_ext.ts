// The daemon's protocol extensions, mirrored 1:1 from the server (`devkit lsp`,
// server/src/lsp/ and docs/protocol.md), rust-analyzer style.
//
// Keep exactly ONE string literal per method name in this file: the server's drift test reads
// the `devkit/...` strings here and compares them with the methods the server declares.
// Params are camelCase. Secrets (uds, password, connectionString) travel only in params and
// must never be logged by the client either.

import * as lc from "vscode-languageclient/node";

// ---------------------------------------------------------------------------------------------
// Shared shapes

/** A serial port as the daemon lists it; DevKits (USB 0483:374B) are marked and come first. */
export interface PortInfo {
    name: string;
    isDevKit?: boolean;
    description?: string;
    manufacturer?: string;
    serialNumber?: string;
    vid?: number;
    pid?: number;
}

/** Progress-capable requests accept the standard work-done token. */
export type WithProgress<T> = T & lc.WorkDoneProgressParams;

// ---------------------------------------------------------------------------------------------
// Requests

export interface ListPortsParams {
    /** Only DevKits (USB 0483:374B). */
    devkitsOnly?: boolean;
}
export interface ListPortsResult {
    ports: PortInfo[];
}
export const listPorts = new lc.RequestType<ListPortsParams, ListPortsResult, void>("devkit/listPorts");

export interface GenerateCertParams {
    /** The build's `<sketch>.ino.bin`. With `map`, or use `buildDir`. */
    bin?: string;
    map?: string;
    /** Build folder holding exactly one `*.ino.bin` + `*.ino.map`. */
    buildDir?: string;
    /** 64 hex characters. Secret. */
    uds: string;
    registrationId?: string;
    /** 12 hex digits; with `firmwareVersion` gives `az-<mac>v<x>v<y>v<z>`. */
    mac?: string;
    firmwareVersion?: string;
    outDir?: string;
    /** Also write the DeviceID certificate. */
    deviceCert?: boolean;
    /** Accept the UDS published in the old tutorial (never for real devices). */
    force?: boolean;
}
export interface GenerateCertResult {
    registrationId: string;
    aliasCert: string;
    deviceCert?: string | null;
    sha1Thumbprint: string;
    sha256Thumbprint: string;
    fwid: string;
    warnings: string[];
}
export const generateCert = new lc.RequestType<WithProgress<GenerateCertParams>, GenerateCertResult, void>(
    "devkit/generateCert",
);

export interface InspectCertParams {
    path: string;
    /** Compare with a second certificate (e.g. what the device presented vs the enrollment). */
    against?: string;
}
export interface InspectCertResult {
    subject?: string;
    registrationId?: string;
    sha1Thumbprint: string;
    sha256Thumbprint: string;
    fwid?: string;
    signatureValid?: boolean;
    same?: boolean;
    [key: string]: unknown;
}
export const inspectCert = new lc.RequestType<InspectCertParams, InspectCertResult, void>("devkit/inspectCert");

export interface BuildParams {
    /** Sketch folder or `.ino` file. */
    sketch: string;
    buildDir?: string;
    fqbn?: string;
    arduinoCli?: string;
}
export interface BuildResult {
    bin: string;
    map: string;
    buildDir?: string;
    /** Raw compiler output (for the problem matcher). */
    output?: string;
    warnings?: string[];
}
export const build = new lc.RequestType<WithProgress<BuildParams>, BuildResult, void>("devkit/build");

export type UploadBackend = "auto" | "probe-rs" | "openocd" | "sim";

export interface UploadParams {
    bin: string;
    backend?: UploadBackend;
    port?: string;
}
export interface UploadResult {
    backend?: string;
    bytes?: number;
    warnings?: string[];
}
export const upload = new lc.RequestType<WithProgress<UploadParams>, UploadResult, void>("devkit/upload");

export interface DeviceUploadParams {
    sketch?: string;
    buildDir?: string;
    port?: string;
    backend?: UploadBackend;
    arduinoCli?: string;
}
export interface DeviceUploadResult {
    bin?: string;
    map?: string;
    fwid?: string;
    /** True when the new build's FWID differs from the enrolled identity (re-enroll needed). */
    identityChanged?: boolean;
    warnings?: string[];
}
export const deviceUpload = new lc.RequestType<WithProgress<DeviceUploadParams>, DeviceUploadResult, void>(
    "devkit/deviceUpload",
);

export interface SetUdsParams {
    port: string;
    /** 64 hex characters. Secret. */
    uds: string;
    force?: boolean;
}
export interface SetUdsResult {
    ok?: boolean;
    warnings?: string[];
}
export const setUds = new lc.RequestType<WithProgress<SetUdsParams>, SetUdsResult, void>("devkit/setUds");

export interface SetWifiParams {
    port: string;
    ssid: string;
    /** Secret. Empty clears it. */
    password?: string;
}
export interface SetWifiResult {
    ok?: boolean;
    warnings?: string[];
}
export const setWifi = new lc.RequestType<WithProgress<SetWifiParams>, SetWifiResult, void>("devkit/setWifi");

export interface MonitorOpenParams {
    port: string;
    baudRate?: number;
}
export interface MonitorOpenResult {
    port?: string;
    [key: string]: unknown;
}
export const monitorOpen = new lc.RequestType<MonitorOpenParams, MonitorOpenResult | null, void>(
    "devkit/monitor/open",
);

export interface MonitorCloseParams {
    port: string;
}
export const monitorClose = new lc.RequestType<MonitorCloseParams, unknown, void>("devkit/monitor/close");

export interface MonitorSendParams {
    port: string;
    text: string;
}
export const monitorSend = new lc.RequestType<MonitorSendParams, unknown, void>("devkit/monitor/send");

export interface EnrollParams {
    /** DPS service connection string. Secret. Absent: the daemon uses `az`. */
    connectionString?: string;
    useAz?: boolean;
    dpsName?: string;
    cert?: string;
    registrationId?: string;
    iotHub?: string;
}
export interface EnrollResult {
    registrationId: string;
    sha256Thumbprint?: string;
    created?: boolean;
    etag?: string;
    [key: string]: unknown;
}
export const enroll = new lc.RequestType<WithProgress<EnrollParams>, EnrollResult, void>("devkit/enroll");

export interface ProvisionParams {
    /** Run against the virtual DevKit and a local DPS emulator (no hardware, no Azure). */
    simulate?: boolean;
    port?: string;
    registrationId?: string;
    idScope?: string;
    globalEndpoint?: string;
    /** Where the daemon keeps its outputs (certificates, sim state). */
    workDir?: string;
}
export interface ProvisionResult {
    registrationId?: string;
    assignedHub?: string;
    deviceId?: string;
    status?: string;
    /** Serial port of the virtual DevKit, when simulated. */
    port?: string;
    [key: string]: unknown;
}
export const provision = new lc.RequestType<WithProgress<ProvisionParams>, ProvisionResult, void>("devkit/provision");

export interface IdentityParams {
    /** Project root (default: the workspace the daemon was started in). */
    root?: string;
}
export interface IdentityRecord {
    registrationId: string;
    fwid: string;
    sha256Thumbprint: string;
    aliasCert: string;
    source?: string;
}
export interface IdentityResult {
    lastGenerated?: IdentityRecord | null;
    lastEnrolled?: IdentityRecord | null;
}
export const identity = new lc.RequestType<IdentityParams, IdentityResult, void>("devkit/identity");

// ---------------------------------------------------------------------------------------------
// Notifications (server -> client)

export interface SerialDataParams {
    port: string;
    text: string;
}
export const serialData = new lc.NotificationType<SerialDataParams>("devkit/serialData");

/** One registration log event, as `tasks::logs` recognises them from the device's output. */
export interface RegistrationEventParams {
    /** e.g. "connected", "registering", "assigning", "assigned", "failed", "udsMissing", ... */
    kind: string;
    port?: string;
    registrationId?: string;
    hub?: string;
    message?: string;
    /** What to do next, for failures. */
    hint?: string;
    [key: string]: unknown;
}
export const registrationEvent = new lc.NotificationType<RegistrationEventParams>("devkit/registrationEvent");

export interface StatusParams {
    /** "ok" | "warning" | "error" */
    health: string;
    message?: string;
    /** What is running now (e.g. "upload /dev/ttyACM0"). */
    running?: string[];
    /** Ports with an open monitor, and whether paused. */
    monitors?: { port: string; paused?: boolean }[];
    [key: string]: unknown;
}
export const status = new lc.NotificationType<StatusParams>("devkit/status");
