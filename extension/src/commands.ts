// Palette commands. Each is a small function over the daemon's requests (rust-analyzer's command
// factory): gather inputs (settings, SecretStorage, a prompt), call the daemon with progress and
// cancellation, show the result, and set the walkthrough's context keys.

import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as vscode from "vscode";
import { Ctx } from "./ctx";
import { ActionButton, buttonsFor, errorView, showErrorView } from "./errors";
import * as ext from "./lsp_ext";
import { MonitorManager } from "./monitor";
import { isCancelled, withNotificationProgress } from "./progress";
import { checkConnectionString, checkUds, newUds, PUBLISHED_SAMPLE_UDS, Secrets } from "./secrets";
import { StatusBar } from "./status";
import { taskJsonEntries, TASK_TYPE } from "./tasks";

export interface Services {
    ctx: Ctx;
    monitors: MonitorManager;
    status: StatusBar;
    secrets: Secrets;
}

/** Arguments the commands accept when called programmatically (tasks, tests, code lenses). */
export interface CertArgs {
    bin?: string;
    map?: string;
    buildDir?: string;
    registrationId?: string;
    mac?: string;
    firmwareVersion?: string;
    outDir?: string;
    deviceCert?: boolean;
    /** Report failures by throwing instead of a message (tasks, tests). */
    quiet?: boolean;
}

const cfg = () => vscode.workspace.getConfiguration("devkitDps");

function setContext(key: string, value: unknown): void {
    void vscode.commands.executeCommand("setContext", key, value);
}

function workspaceRoot(): string | undefined {
    return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
}

async function updateSetting(key: string, value: unknown): Promise<void> {
    const target = vscode.workspace.workspaceFolders?.length ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
    await cfg().update(key, value, target);
}

// --------------------------------------------------------------------------------------------
// Port

/** State directories of virtual DevKits this workspace knows of, for `devkit/listPorts`. */
export function knownSimDirs(s: Services): string[] {
    const dirs = [
        s.ctx.extCtx.workspaceState.get<string>("devkitDps.simDir"),
        virtualDevkitDir(cfg().get<string>("serial.port", "")),
        path.join(simulatedWorkDir(s.ctx.extCtx.globalStorageUri.fsPath), "devkit"),
    ];
    return [...new Set(dirs.filter((d): d is string => !!d))];
}

/** The ports the daemon sees, virtual DevKits included. */
export async function listPorts(s: Services): Promise<ext.PortInfo[]> {
    const client = await s.ctx.ready();
    return (await client.sendRequest(ext.listPorts, { simDirs: knownSimDirs(s) })).ports;
}

/** One port as the picker shows it: what it is (USB product, maker) and its serial number. */
export function portItem(p: ext.PortInfo): vscode.QuickPickItem & { port: string } {
    const virtual = p.kind === "virtual";
    const what = virtual ? "Virtual DevKit" : p.isDevkit ? "MXChip AZ3166 DevKit" : p.description;
    const details = [
        p.isDevkit && !virtual && p.description ? p.description : undefined,
        p.manufacturer,
        p.serialNumber ? `serial ${p.serialNumber}` : undefined,
        virtual && p.simDir ? `state ${p.simDir}` : undefined,
        p.heldBy ? `in use by ${p.heldBy}` : undefined,
        p.monitorOpen ? "monitor open" : undefined,
    ].filter(Boolean);
    return {
        label: `${virtual ? "$(vm) " : p.isDevkit ? "$(circuit-board) " : "$(plug) "}${p.port}`,
        description: what ?? "",
        detail: details.length ? details.join(" · ") : undefined,
        port: p.port,
    };
}

export async function pickPort(s: Services): Promise<string | undefined> {
    const ports = await listPorts(s);
    const items: (vscode.QuickPickItem & { port?: string })[] = ports.map(portItem);
    items.push({ label: "$(edit) Enter a port path…", port: undefined });
    const pick = await vscode.window.showQuickPick(items, {
        title: "DevKit serial port",
        placeHolder: ports.length ? "DevKits (USB 0483:374B) first, then virtual DevKits" : "No serial port found: plug the DevKit in, or enter a path",
        matchOnDescription: true,
        matchOnDetail: true,
    });
    if (!pick) return undefined;
    const port =
        pick.port ??
        (await vscode.window.showInputBox({ title: "Serial port path", placeHolder: "/dev/ttyACM0 or COM3", ignoreFocusOut: true }));
    if (!port) return undefined;
    await updateSetting("serial.port", port);
    setContext("devkit.portSelected", true);
    return port;
}

/** The configured port, else the only DevKit found, else ask. */
export async function resolvePort(s: Services): Promise<string | undefined> {
    const configured = cfg().get<string>("serial.port", "");
    if (configured) return configured;
    const devkits = (await listPorts(s)).filter((p) => p.isDevkit);
    if (devkits.length === 1) return devkits[0].port;
    return pickPort(s);
}

// --------------------------------------------------------------------------------------------
// Device identity: registration ID and UDS

/** The registration ID: the setting, else `az-<mac>v<x>v<y>v<z>` from what the device printed, else ask. */
async function resolveRegistration(s: Services, args: CertArgs): Promise<Pick<CertArgs, "registrationId" | "mac" | "firmwareVersion"> | undefined> {
    if (args.registrationId) return { registrationId: args.registrationId };
    if (args.mac && args.firmwareVersion) return { mac: args.mac, firmwareVersion: args.firmwareVersion };
    const fromSetting = cfg().get<string>("registrationId", "");
    if (fromSetting) return { registrationId: fromSetting };
    for (const port of s.monitors.openPorts()) {
        const f = s.monitors.deviceFacts(port);
        if (f.mac && f.firmwareVersion) return { mac: f.mac, firmwareVersion: f.firmwareVersion };
    }
    if (args.quiet) throw new Error("No registration ID: set devkitDps.registrationId, or open the monitor and reset the DevKit so it prints its MAC.");
    const id = await vscode.window.showInputBox({
        title: "Registration ID",
        prompt: "The device's registration ID (certificate CN). Tip: open the monitor and reset the DevKit to fill it in from its MAC.",
        ignoreFocusOut: true,
        validateInput: (v) => (/^[a-z0-9-]{1,64}$/.test(v) ? undefined : "1 to 64 characters: lowercase letters, digits and '-'."),
    });
    return id ? { registrationId: id } : undefined;
}

/** The key a device's UDS is stored under: its registration ID (explicit or automatic). */
export function deviceKey(r: Pick<CertArgs, "registrationId" | "mac" | "firmwareVersion">): string {
    if (r.registrationId) return r.registrationId;
    return `az-${r.mac}v${(r.firmwareVersion ?? "").split(".").join("v")}`;
}

/** A UDS chosen by the user; `sample` when they insisted on the published tutorial value. */
interface ChosenUds {
    uds: string;
    sample: boolean;
    /** Already in secret storage. */
    stored: boolean;
}

/** Asks for a UDS (stored / generate / paste). Stores nothing: callers store it once it was used. */
async function askUds(s: Services, device: string, allowStored: boolean): Promise<ChosenUds | undefined> {
    const stored = allowStored ? await s.secrets.getUds(device) : undefined;
    const items: (vscode.QuickPickItem & { id: string })[] = [];
    if (stored) items.push({ id: "stored", label: "$(key) Use the stored UDS", description: `for ${device}` });
    const unconfirmed = allowStored ? await s.secrets.getUnconfirmedUds(device) : undefined;
    if (unconfirmed && unconfirmed !== stored) {
        items.push({ id: "unconfirmed", label: "$(history) Use the UDS of the last unconfirmed push", description: "the device may hold it" });
    }
    items.push({ id: "generate", label: "$(sparkle) Generate a new UDS", description: "recommended: 32 random bytes" });
    items.push({ id: "paste", label: "$(clippy) Paste an existing UDS", description: "64 hex characters" });
    const pick = await vscode.window.showQuickPick(items, { title: `Unique Device Secret for ${device}`, ignoreFocusOut: true });
    if (!pick) return undefined;
    if (pick.id === "stored" && stored) return { uds: stored, sample: stored.toLowerCase() === PUBLISHED_SAMPLE_UDS, stored: true };
    if (pick.id === "unconfirmed" && unconfirmed) return { uds: unconfirmed, sample: unconfirmed.toLowerCase() === PUBLISHED_SAMPLE_UDS, stored: false };
    if (pick.id === "generate") {
        const uds = newUds();
        s.secrets.remember(uds);
        return { uds, sample: false, stored: false };
    }
    const uds = await vscode.window.showInputBox({
        title: `Paste the UDS for ${device}`,
        password: true,
        ignoreFocusOut: true,
        validateInput: (v) => checkUds(v.trim()),
    });
    if (!uds) return undefined;
    const clean = uds.trim();
    s.secrets.remember(clean);
    const sample = clean.toLowerCase() === PUBLISHED_SAMPLE_UDS;
    if (sample) {
        const go = await vscode.window.showWarningMessage(
            "This is the UDS published in the old tutorial: anyone can compute this device's keys. Use it only for throwaway tests.",
            { modal: true },
            "Use it anyway",
        );
        if (go !== "Use it anyway") return undefined;
    }
    return { uds: clean, sample, stored: false };
}

// --------------------------------------------------------------------------------------------
// Build outputs

export async function findBuild(args: CertArgs): Promise<Pick<CertArgs, "bin" | "map" | "buildDir"> | undefined> {
    if (args.bin && args.map) return { bin: args.bin, map: args.map };
    if (args.buildDir) return { buildDir: args.buildDir };
    const bins = await vscode.workspace.findFiles("**/*.ino.bin", "**/node_modules/**", 20);
    // Newest first: the build just made (or flashed) is the likely one.
    const mtime = (p: string) => {
        try {
            return fs.statSync(p).mtimeMs;
        } catch {
            return 0;
        }
    };
    const withMap = bins
        .map((u) => u.fsPath)
        .filter(Boolean)
        .sort((a, b) => mtime(b) - mtime(a));
    if (withMap.length === 0) {
        if (args.quiet) throw new Error("No build found (<sketch>.ino.bin + .map): run Device Upload or the devkit: build task first.");
        const go = await vscode.window.showErrorMessage("No build of the sketch found (<sketch>.ino.bin and .ino.map).", "Build Now");
        if (go) await vscode.commands.executeCommand("devkit.build");
        return undefined;
    }
    let bin = withMap[0];
    if (withMap.length > 1 && !args.quiet) {
        const pick = await vscode.window.showQuickPick(
            withMap.map((p, i) => ({ label: path.basename(p), description: `${vscode.workspace.asRelativePath(p)}${i === 0 ? " (newest)" : ""}`, p })),
            { title: "Which build?" },
        );
        if (!pick) return undefined;
        bin = pick.p;
    }
    return { bin, map: bin.replace(/\.bin$/, ".map") };
}

// --------------------------------------------------------------------------------------------
// The commands

export async function generateCert(s: Services, args: CertArgs = {}): Promise<ext.GenerateCertResult | undefined> {
    const build = await findBuild(args);
    if (!build) return undefined;
    const reg = await resolveRegistration(s, args);
    if (!reg) return undefined;
    const device = deviceKey(reg);
    const storedUds = await s.secrets.getUds(device);
    let chosen: ChosenUds | undefined = storedUds ? { uds: storedUds, sample: storedUds.toLowerCase() === PUBLISHED_SAMPLE_UDS, stored: true } : undefined;
    if (!chosen) {
        if (args.quiet) throw new Error(`No UDS stored for ${device}: run "DevKit: Set Unique Device Secret" first.`);
        chosen = await askUds(s, device, false);
        if (!chosen) return undefined;
    }
    const uds = chosen.uds;
    const root = workspaceRoot();
    const params: ext.GenerateCertParams = {
        ...build,
        ...reg,
        uds,
        // Certificates go with the project's state (`.devkit/certs`), else next to the build.
        outDir: args.outDir ?? (root ? path.join(root, ".devkit", "certs") : path.dirname(build.bin ?? path.join(build.buildDir ?? ".", "x"))),
        projectDir: root,
        allowSampleUds: chosen.sample || undefined,
        deviceCert: args.deviceCert ?? true,
    };
    const client = await s.ctx.ready();
    const result = await withNotificationProgress(client, `Generating the certificate for ${device}`, ext.generateCert, params);
    if (!chosen.stored) await s.secrets.storeUds(device, uds);
    s.ctx.log.info(`certificate for ${result.registrationId}: ${result.aliasCert} (SHA-1 ${result.sha1Thumbprint}, SHA-256 ${result.sha256Thumbprint}, FWID ${result.fwid})`);
    for (const w of result.warnings ?? []) s.ctx.log.warn(w);
    setContext("devkit.certGenerated", true);
    void vscode.commands.executeCommand("devkit.refreshDevices");
    if (!args.quiet) {
        for (const w of result.warnings ?? []) void vscode.window.showWarningMessage(w);
        void vscode.window
            .showInformationMessage(
                `Certificate for ${result.registrationId}: SHA-1 thumbprint ${result.sha1Thumbprint}`,
                "Copy Thumbprint",
                "Open Certificate",
                "Enroll",
            )
            .then(async (pick) => {
                if (pick === "Copy Thumbprint") await vscode.env.clipboard.writeText(result.sha1Thumbprint);
                if (pick === "Open Certificate") await vscode.window.showTextDocument(vscode.Uri.file(result.aliasCert));
                if (pick === "Enroll") await vscode.commands.executeCommand("devkit.enroll");
            });
    }
    return result;
}

/** The state folder of the virtual DevKit whose port link is `port` (the link lies in it), if it is one. */
export function virtualDevkitDir(port: string): string | undefined {
    if (!port) return undefined;
    const dir = path.dirname(port);
    return ["device.json", "eeprom.json"].some((f) => fs.existsSync(path.join(dir, f))) ? dir : undefined;
}

/**
 * A virtual DevKit is put into configuration mode before a console command (a real one needs
 * button A held while pressing Reset; the progress title says so).
 */
async function virtualConfigMode(s: Services, port: string): Promise<void> {
    const simDir = virtualDevkitDir(port);
    if (!simDir) return;
    const client = await s.ctx.ready();
    await client.sendRequest(ext.simConfigMode, { simDir });
    s.ctx.log.info(`virtual DevKit ${simDir} reset into configuration mode`);
}

/** "Enter Configuration Mode": the virtual DevKit by itself; a real one by its buttons. */
export async function enterConfigMode(s: Services, args: { port?: string } = {}): Promise<boolean> {
    const port = args.port ?? (await resolvePort(s));
    if (!port) return false;
    if (virtualDevkitDir(port)) {
        await virtualConfigMode(s, port);
        void vscode.window.showInformationMessage(`The virtual DevKit on ${port} is in configuration mode.`);
        return true;
    }
    void vscode.window.showInformationMessage(
        "On the DevKit: hold button A, press and release Reset, then release A. The screen shows the configuration mode.",
    );
    return false;
}

export interface SetUdsArgs {
    port?: string;
    registrationId?: string;
    /** Push the UDS already in secret storage for this device, without asking. */
    useStored?: boolean;
    quiet?: boolean;
}

export async function setUds(s: Services, args: SetUdsArgs = {}): Promise<boolean> {
    const port = args.port ?? (await resolvePort(s));
    if (!port) return false;
    const reg = args.registrationId ? { registrationId: args.registrationId } : await resolveRegistration(s, { quiet: args.quiet });
    if (!reg) return false;
    const device = deviceKey(reg);
    let chosen: ChosenUds | undefined;
    if (args.useStored) {
        const stored = await s.secrets.getUds(device);
        if (!stored) throw new Error(`No UDS stored for ${device}.`);
        chosen = { uds: stored, sample: stored.toLowerCase() === PUBLISHED_SAMPLE_UDS, stored: true };
    } else chosen = await askUds(s, device, true);
    if (!chosen) return false;
    const uds = chosen.uds;
    const client = await s.ctx.ready();
    await virtualConfigMode(s, port);
    try {
        await withNotificationProgress(
            client,
            `Pushing the UDS to ${port} (configuration mode: hold A, press and release Reset)`,
            ext.setUds,
            { port, uds, allowSampleUds: chosen.sample || undefined },
        );
    } catch (e) {
        // Once the line may have reached the device (anything but refused params), the device
        // may hold this UDS although nothing confirmed it: keep it apart, never lose it.
        if (!chosen.stored && (e as { code?: number }).code !== -32602) await s.secrets.storeUnconfirmedUds(device, uds);
        throw e;
    }
    // Stored only once the device has it: secret storage holds what the device holds.
    if (!chosen.stored) await s.secrets.storeUds(device, uds);
    await s.secrets.storeUnconfirmedUds(device, undefined);
    s.ctx.log.info(`UDS for ${device} stored in secret storage and pushed to ${port}`);
    setContext("devkit.udsSet", true);
    if (!args.quiet) void vscode.window.showInformationMessage(`UDS set on ${port} for ${device}. It is kept in VS Code's secret storage.`);
    return true;
}

export async function configureWifi(s: Services): Promise<boolean> {
    const port = await resolvePort(s);
    if (!port) return false;
    const ssid = await vscode.window.showInputBox({ title: "Wi-Fi network (SSID)", ignoreFocusOut: true, validateInput: (v) => (v ? undefined : "The SSID cannot be empty.") });
    if (!ssid) return false;
    const password = await vscode.window.showInputBox({ title: `Password for ${ssid}`, password: true, ignoreFocusOut: true, prompt: "Empty for an open network" });
    if (password === undefined) return false;
    s.secrets.remember(password);
    const client = await s.ctx.ready();
    await virtualConfigMode(s, port);
    await withNotificationProgress(client, `Storing Wi-Fi settings on ${port} (configuration mode)`, ext.setWifi, { port, wifiSsid: ssid, wifiPassword: password });
    setContext("devkit.wifiConfigured", true);
    void vscode.window.showInformationMessage(`Wi-Fi network ${ssid} stored on the DevKit.`);
    return true;
}

export async function configureDps(): Promise<boolean> {
    const endpoint = await vscode.window.showInputBox({
        title: "DPS global device endpoint",
        value: cfg().get<string>("dps.globalEndpoint", "global.azure-devices-provisioning.net"),
        ignoreFocusOut: true,
        validateInput: (v) => (/^[A-Za-z0-9.-]+(:\d+)?$/.test(v) ? undefined : "A host name, optionally with :port."),
    });
    if (!endpoint) return false;
    const scope = await vscode.window.showInputBox({
        title: "DPS ID Scope",
        value: cfg().get<string>("dps.idScope", ""),
        placeHolder: "0ne0001A2B3",
        ignoreFocusOut: true,
        validateInput: (v) => (/^0ne[0-9A-Fa-f]{8}$/.test(v) ? undefined : "An ID Scope is 0ne followed by 8 hex digits (DPS overview in the Azure portal)."),
    });
    if (!scope) return false;
    await updateSetting("dps.globalEndpoint", endpoint);
    await updateSetting("dps.idScope", scope);
    setContext("devkit.dpsConfigured", true);
    return true;
}

/** The settings the daemon's "Move <value> to settings" quick fix may write. */
const WRITABLE_SETTINGS = ["devkitDps.dps.globalEndpoint", "devkitDps.dps.idScope", "devkitDps.registrationId"];

/** `devkit.writeSetting`: the "Move <value> to settings" quick fix's command (lsp_ext.ts). */
export async function writeSetting(args: ext.WriteSettingParams | undefined): Promise<void> {
    const setting = String(args?.setting ?? "");
    const value = args?.value;
    if (!WRITABLE_SETTINGS.includes(setting)) throw new Error(`${setting.slice(0, 80)} is not a DPS setting; allowed: ${WRITABLE_SETTINGS.join(", ")}`);
    if (typeof value !== "string" || value.length > 256) throw new Error(`The value for ${setting} must be a string of at most 256 characters.`);
    await updateSetting(setting.slice("devkitDps.".length), value);
    if (setting === "devkitDps.dps.idScope") setContext("devkit.dpsConfigured", true);
    vscode.window.setStatusBarMessage(`$(check) ${setting} = "${value}": every build compiles it in (dps_config.h)`, 5000);
}

export interface EnrollArgs {
    /** Alias certificate; default: the project's last generated certificate. */
    cert?: string;
    useAz?: boolean;
    /** PEM of a CA to trust for the DPS service (a local emulator). */
    caFile?: string;
    quiet?: boolean;
}

async function askAzTarget(s: Services): Promise<{ dpsName: string; resourceGroup: string } | undefined> {
    const state = s.ctx.extCtx.workspaceState;
    const dpsName = await vscode.window.showInputBox({
        title: "DPS name (Azure CLI)",
        value: state.get<string>("devkitDps.az.dpsName", ""),
        ignoreFocusOut: true,
        validateInput: (v) => (v.trim() ? undefined : "The name of your Device Provisioning Service."),
    });
    if (!dpsName) return undefined;
    const resourceGroup = await vscode.window.showInputBox({
        title: `Resource group of ${dpsName}`,
        value: state.get<string>("devkitDps.az.resourceGroup", ""),
        ignoreFocusOut: true,
        validateInput: (v) => (v.trim() ? undefined : "The resource group the DPS is in."),
    });
    if (!resourceGroup) return undefined;
    await state.update("devkitDps.az.dpsName", dpsName.trim());
    await state.update("devkitDps.az.resourceGroup", resourceGroup.trim());
    return { dpsName: dpsName.trim(), resourceGroup: resourceGroup.trim() };
}

/** The host of a connection string (`HostName=`), lower-cased. */
function hostOf(cs: string): string {
    return (/(?:^|;)\s*HostName=([^;]+)/i.exec(cs)?.[1] ?? "").trim().toLowerCase();
}

/** A DPS service on this machine (the local emulator, `devkit dps-emulator`). */
export function isLocalDps(cs: string): boolean {
    return /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$/.test(hostOf(cs));
}

/**
 * The CA to trust for the DPS service: `devkitDps.dps.caFile`; for a local emulator without
 * it, ask for the emulator's `ca.pem` once and keep it in the setting.
 */
async function dpsCaFile(cs: string | undefined, quiet: boolean): Promise<string | undefined> {
    const configured = cfg().get<string>("dps.caFile", "");
    if (configured || !cs || !isLocalDps(cs) || quiet) return configured || undefined;
    const picked = await vscode.window.showOpenDialog({
        title: `DPS at ${hostOf(cs)} is local (the DPS emulator?): pick its CA certificate (ca.pem in its state folder)`,
        canSelectFiles: true,
        canSelectFolders: false,
        filters: { "PEM certificate": ["pem", "crt"] },
    });
    const file = picked?.[0]?.fsPath;
    if (file) await updateSetting("dps.caFile", file);
    return file;
}

export async function enroll(s: Services, args: EnrollArgs = {}): Promise<ext.EnrollResult | undefined> {
    const projectDir = workspaceRoot();
    if (!projectDir) throw new Error("Open the project's folder first: the enrollment is recorded in its state.");
    let connectionString = await s.secrets.getConnectionString();
    // Stored only once an enrollment worked with it.
    let newConnectionString = false;
    let useAz = args.useAz ?? false;
    if (!connectionString && !useAz) {
        if (args.quiet) throw new Error("No DPS connection string stored: run DevKit: Enroll Device in DPS once interactively.");
        const pick = await vscode.window.showQuickPick(
            [
                { id: "cs", label: "$(key) DPS connection string", description: "kept in VS Code's secret storage once it worked" },
                { id: "az", label: "$(azure) Azure CLI (az)", description: "uses your `az login` session" },
            ],
            { title: "How should the enrollment be created?", ignoreFocusOut: true },
        );
        if (!pick) return undefined;
        if (pick.id === "az") useAz = true;
        else {
            connectionString = await askConnectionString(s);
            if (!connectionString) return undefined;
            newConnectionString = true;
        }
    }
    const caFile = args.caFile ?? (useAz ? undefined : await dpsCaFile(connectionString, !!args.quiet));
    const params: ext.EnrollParams = { projectDir, cert: args.cert, caFile };
    if (useAz) {
        const target = await askAzTarget(s);
        if (!target) return undefined;
        Object.assign(params, { backend: "az" }, target);
    } else params.connectionString = connectionString;
    const client = await s.ctx.ready();
    const result = await withNotificationProgress(client, "Creating the DPS enrollment", ext.enroll, params);
    if (newConnectionString && connectionString) await s.secrets.storeConnectionString(connectionString);
    s.ctx.log.info(`enrolled ${result.registrationId} (${result.provisioningStatus}, SHA-1 ${result.sha1Thumbprint}, ${result.cert})`);
    for (const w of result.warnings) s.ctx.log.warn(w);
    setContext("devkit.enrolled", true);
    void vscode.commands.executeCommand("devkit.refreshDevices");
    if (!args.quiet) {
        void vscode.window
            .showInformationMessage(`Enrollment for ${result.registrationId} is ${result.provisioningStatus}. Reset the DevKit to register.`, "Watch Registration")
            .then((p) => {
                if (p) void vscode.commands.executeCommand("devkit.watchRegistration");
            });
    }
    return result;
}

async function askConnectionString(s: Services): Promise<string | undefined> {
    const cs = await vscode.window.showInputBox({
        title: "DPS service connection string",
        prompt: "Azure portal > your DPS > Shared access policies > provisioningserviceowner",
        password: true,
        ignoreFocusOut: true,
        validateInput: (v) => checkConnectionString(v.trim()),
    });
    if (!cs) return undefined;
    s.secrets.remember(cs.trim());
    return cs.trim();
}

/** "Manage Stored Secrets": change or forget the DPS connection string or a device's UDS, with confirmation. */
export async function manageSecrets(s: Services): Promise<void> {
    const cs = await s.secrets.getConnectionString();
    const devices = s.secrets.knownDevices();
    const items: (vscode.QuickPickItem & { id: string; device?: string })[] = [];
    if (cs) {
        items.push({ id: "cs-change", label: "$(edit) Change the DPS connection string", description: hostOf(cs) });
        items.push({ id: "cs-forget", label: "$(trash) Forget the DPS connection string", description: hostOf(cs) });
    } else items.push({ id: "cs-none", label: "$(info) No DPS connection string stored", description: "Enroll asks for one" });
    for (const d of devices) items.push({ id: "uds-forget", device: d, label: `$(trash) Forget the UDS of ${d}` });
    const pick = await vscode.window.showQuickPick(items, { title: "DevKit secrets (VS Code secret storage)" });
    if (!pick || pick.id === "cs-none") return;
    if (pick.id === "cs-change") {
        const next = await askConnectionString(s);
        if (next) await s.secrets.storeConnectionString(next);
        return;
    }
    const what = pick.id === "cs-forget" ? "the DPS connection string" : `the UDS of ${pick.device}`;
    const sure = await vscode.window.showWarningMessage(
        `Forget ${what}?`,
        { modal: true, detail: pick.id === "cs-forget" ? "Enroll will ask for it again." : "Without it, its certificate cannot be generated again: the device needs a new UDS." },
        "Forget",
    );
    if (sure !== "Forget") return;
    if (pick.id === "cs-forget") await s.secrets.deleteConnectionString();
    else if (pick.device) await s.secrets.deleteUds(pick.device);
}

/** The sketch folder: the daemon's default `firmware/DevKitDPS` when present, else the first `.ino`'s folder. */
async function sketchPath(root: string): Promise<string | undefined> {
    try {
        await vscode.workspace.fs.stat(vscode.Uri.file(path.join(root, "firmware", "DevKitDPS")));
        return undefined;
    } catch {
        const inos = await vscode.workspace.findFiles("**/*.ino", "**/{node_modules,.devkit}/**", 1);
        return inos[0] ? path.dirname(inos[0].fsPath) : undefined;
    }
}

/** `devkitDps.upload.backend`: "auto" lets the daemon choose. */
export function uploadBackend(): string | undefined {
    const b = cfg().get<string>("upload.backend", "auto");
    return b === "auto" ? undefined : b;
}

/**
 * The flash target for `port`: the backend, and for the virtual DevKit its state folder (the
 * folder holding the port's link and `eeprom.json`, else the one chosen before, else ask).
 */
export async function flashTarget(s: Services, port: string): Promise<ext.FlashParams> {
    const backend = uploadBackend();
    if (backend !== "sim") return { port, backend };
    const remembered = s.ctx.extCtx.workspaceState.get<string>("devkitDps.simDir");
    let simDir = virtualDevkitDir(port) ?? remembered;
    if (!simDir) {
        const picked = await vscode.window.showOpenDialog({
            title: "State folder of the virtual DevKit (devkit sim --sim-dir)",
            canSelectFolders: true,
            canSelectFiles: false,
        });
        if (!picked?.[0]) throw new vscode.CancellationError();
        simDir = picked[0].fsPath;
        await s.ctx.extCtx.workspaceState.update("devkitDps.simDir", simDir);
    }
    return { port, backend, simDir };
}

/** What build and device-upload need: the project, the sketch and the DPS settings compiled in. */
export async function buildInputs(): Promise<ext.BuildParams> {
    const root = workspaceRoot();
    if (!root) throw new Error("Open the sketch's folder (or the project) first.");
    const c = cfg();
    const idScope = c.get<string>("dps.idScope") || undefined;
    return {
        projectDir: root,
        sketch: await sketchPath(root),
        arduinoCli: c.get<string>("arduinoCli.path", "") || undefined,
        arduinoData: c.get<string>("arduinoData.path", "") || undefined,
        // Without an ID Scope the daemon reuses the DPS settings of the previous build.
        ...(idScope
            ? { idScope, globalEndpoint: c.get<string>("dps.globalEndpoint") || undefined, registrationId: c.get<string>("registrationId") || undefined }
            : {}),
    };
}

/** Compiler messages in GCC's format, for the task terminal (Problems has them from the daemon). */
export function gccLines(diags: ext.CompilerDiagnostic[] | undefined): string[] {
    return (diags ?? []).map((d) => `${d.file}:${d.line}:${d.column ?? 1}: ${d.severity}: ${d.message}`);
}

export async function deviceUpload(s: Services): Promise<ext.DeviceUploadResult | undefined> {
    const port = await resolvePort(s);
    if (!port) return undefined;
    const client = await s.ctx.ready();
    const result = await withNotificationProgress(client, "Device Upload", ext.deviceUpload, {
        ...(await buildInputs()),
        ...(await flashTarget(s, port)),
    });
    setContext("devkit.uploaded", true);
    for (const w of result.warnings ?? []) void vscode.window.showWarningMessage(w);
    if (result.identityChanged) {
        void vscode.window
            .showWarningMessage("The firmware's RIoT code changed (new FWID): the device's certificate changed and the enrollment must be updated.", "Generate Certificate", "Enroll")
            .then((p) => {
                if (p === "Generate Certificate") void vscode.commands.executeCommand("devkit.generateCert");
                if (p === "Enroll") void vscode.commands.executeCommand("devkit.enroll");
            });
    } else void vscode.window.showInformationMessage(`Uploaded to the DevKit on ${port}.`);
    return result;
}

/**
 * Where the virtual DevKit's state and certificate go: the extension's storage, not the user's
 * workspace. The virtual DevKit listens on a unix socket in it, and socket paths must fit in
 * 108 bytes: when the storage path is too long (macOS, deep homes), a short per-user temp
 * folder is used instead.
 */
export function simulatedWorkDir(globalStorage: string): string {
    const preferred = path.join(globalStorage, "simulated");
    if (Buffer.byteLength(path.join(preferred, "devkit", "control.sock")) < 100) return preferred;
    const tag = crypto.createHash("sha256").update(globalStorage).digest("hex").slice(0, 8);
    return path.join(os.tmpdir(), `devkit-dps-sim-${tag}`);
}

export async function provisionSimulated(s: Services, args: { quiet?: boolean } = {}): Promise<ext.ProvisionResult> {
    const client = await s.ctx.ready();
    const workDir = simulatedWorkDir(s.ctx.extCtx.globalStorageUri.fsPath);
    await vscode.workspace.fs.createDirectory(vscode.Uri.file(workDir));
    const result = await withNotificationProgress(client, "Provisioning a virtual DevKit", ext.provision, { simulate: true, workDir });
    if (s.status.reg.state !== "assigned") {
        // The result is authoritative even if the final event was missed.
        s.status.onEvent({ kind: "assigned", hub: result.assignedHub, deviceId: result.deviceId, port: result.port }, false);
    }
    setContext("devkit.simulatedAssigned", true);
    s.ctx.log.info(`virtual DevKit ${result.registrationId} assigned to ${result.assignedHub} (certificate ${result.aliasCert})`);
    if (!args.quiet) {
        void vscode.window
            .showInformationMessage(`Virtual DevKit ${result.registrationId} registered: assigned to ${result.assignedHub}.`, "Open Certificate")
            .then((p) => {
                if (p) void vscode.window.showTextDocument(vscode.Uri.file(result.aliasCert));
            });
    }
    return result;
}

/** "Reset Virtual DevKit": the next "Provision a Virtual DevKit" starts with a new device. */
export async function resetSimulated(s: Services, args: { quiet?: boolean } = {}): Promise<boolean> {
    if (!args.quiet) {
        const sure = await vscode.window.showWarningMessage(
            "Reset the virtual DevKit?",
            { modal: true, detail: "Its secret (UDS), certificate and the local DPS emulator's enrollment are deleted; the next run provisions a new virtual device." },
            "Reset",
        );
        if (sure !== "Reset") return false;
    }
    const client = await s.ctx.ready();
    const workDir = simulatedWorkDir(s.ctx.extCtx.globalStorageUri.fsPath);
    const { removed } = await client.sendRequest(ext.simReset, { workDir });
    setContext("devkit.simulatedAssigned", false);
    if (s.status.reg.state !== "none" && s.status.reg.event.port === "simulated") s.status.clearRegistration();
    s.ctx.log.info(`virtual DevKit reset (${removed ? "state removed" : "nothing to remove"}): ${workDir}`);
    if (!args.quiet) void vscode.window.showInformationMessage(removed ? "The virtual DevKit was reset." : "The virtual DevKit had no state yet.");
    return removed;
}

const CHECK_ICON = { ok: "$(pass)", warning: "$(warning)", error: "$(error)" } as const;

/** "Check Setup": the daemon's checks (arduino-cli, platform, probe, udev rule) with their fixes. */
export async function checkSetup(s: Services, args: { quiet?: boolean } = {}): Promise<ext.CheckSetupResult> {
    const client = await s.ctx.ready();
    const result = await client.sendRequest(ext.checkSetup, {
        arduinoCli: cfg().get<string>("arduinoCli.path", "") || undefined,
        arduinoData: cfg().get<string>("arduinoData.path", "") || undefined,
    });
    for (const c of result.checks) s.ctx.log.info(`check setup: ${c.status} ${c.title}: ${c.detail.split("\n")[0]}`);
    setContext("devkit.setupChecked", true);
    if (args.quiet) return result;
    const items = result.checks.map((c) => ({
        label: `${CHECK_ICON[c.status] ?? ""} ${c.title}`,
        description: c.detail.split("\n")[0],
        detail: c.status === "ok" ? undefined : c.nextActions.length ? "Select for the fix" : undefined,
        check: c,
    }));
    const pick = await vscode.window.showQuickPick(items, {
        title: result.ready ? "DevKit setup: ready (select a line for details)" : "DevKit setup: something is missing (select a line to fix it)",
        matchOnDescription: true,
    });
    if (!pick) return result;
    const c = pick.check;
    const buttons: ActionButton[] = buttonsFor(c.nextActions).filter((b) => b.command !== "devkit.checkSetup");
    const rule = c.nextActions.some((a) => a.action === "installUdevRule") ? c.detail.split("\n").find((l) => l.includes("ATTRS{idVendor}")) : undefined;
    const labels = [...buttons.map((b) => b.label), ...(rule ? ["Copy udev Rule"] : [])];
    const chosen = await vscode.window.showInformationMessage(`${c.title}: ${c.status}`, { modal: true, detail: c.detail }, ...labels);
    if (chosen === "Copy udev Rule" && rule) await vscode.env.clipboard.writeText(rule);
    const b = buttons.find((x) => x.label === chosen);
    if (b) await vscode.commands.executeCommand(b.command, ...b.args);
    return result;
}

/** The installation guide: the extension's README (daemon, arduino-cli, the AZ3166 platform). */
export async function installationGuide(s: Services): Promise<void> {
    const readme = vscode.Uri.joinPath(s.ctx.extCtx.extensionUri, "README.md");
    try {
        await vscode.commands.executeCommand("markdown.showPreview", readme);
    } catch {
        await vscode.window.showTextDocument(readme);
    }
}

/**
 * "Add DevKit Tasks to tasks.json": the workspace's tasks.json gets the `devkit` tasks it does
 * not have yet (nothing else in it changes), so that Quick Open's `task device-upload` lists
 * them as the old tutorial says (Quick Open lists configured and recent tasks by name; provided
 * ones only under their type). Resolves how many were added.
 */
export async function addTasks(args: { quiet?: boolean } = {}): Promise<number> {
    const folder = vscode.workspace.workspaceFolders?.[0];
    if (!folder) throw new Error("Open the sketch's folder (or the project) first.");
    const tasksCfg = vscode.workspace.getConfiguration("tasks", folder.uri);
    const current = (tasksCfg.inspect<unknown[]>("tasks")?.workspaceFolderValue ?? []).filter((t) => t && typeof t === "object");
    const has = (name: string) => current.some((t) => (t as { type?: unknown; task?: unknown }).type === TASK_TYPE && (t as { task?: unknown }).task === name);
    const missing = taskJsonEntries().filter((t) => !has(t.task));
    if (missing.length) {
        if (tasksCfg.inspect("version")?.workspaceFolderValue === undefined) await tasksCfg.update("version", "2.0.0", vscode.ConfigurationTarget.WorkspaceFolder);
        await tasksCfg.update("tasks", [...current, ...missing], vscode.ConfigurationTarget.WorkspaceFolder);
    }
    if (!args.quiet) {
        void vscode.window.showInformationMessage(
            missing.length
                ? `Added ${missing.map((t) => t.task).join(", ")} to .vscode/tasks.json: run them with Quick Open (Ctrl+P), "task device-upload".`
                : "The DevKit tasks are already in .vscode/tasks.json.",
        );
    }
    return missing.length;
}

export async function watchRegistration(s: Services): Promise<void> {
    const port = await resolvePort(s);
    if (!port) return;
    await s.monitors.open(port);
    void vscode.window.showInformationMessage("Press Reset on the DevKit: the status bar shows the registration as it happens.");
}

// --------------------------------------------------------------------------------------------

/** Registers every command; failures are shown with a link to the logs, cancellations quietly. */
export function registerCommands(s: Services): vscode.Disposable[] {
    const cmds: Record<string, (...args: never[]) => unknown> = {
        "devkit.selectPort": () => pickPort(s),
        "devkit.generateCert": (args?: CertArgs) => generateCert(s, args ?? {}),
        "devkit.setUds": (args?: SetUdsArgs) => setUds(s, args ?? {}),
        "devkit.configureWifi": () => configureWifi(s),
        "devkit.configureDps": () => configureDps(),
        [ext.writeSettingCommand]: (args?: ext.WriteSettingParams) => writeSetting(args),
        "devkit.enroll": (args?: EnrollArgs) => enroll(s, args ?? {}),
        "devkit.deviceUpload": () => deviceUpload(s),
        "devkit.build": () => vscode.commands.executeCommand("workbench.action.tasks.runTask", "devkit: build"),
        "devkit.provisionSimulated": (args?: { quiet?: boolean }) => provisionSimulated(s, args ?? {}),
        "devkit.resetSimulated": (args?: { quiet?: boolean }) => resetSimulated(s, args ?? {}),
        "devkit.enterConfigMode": (args?: { port?: string }) => enterConfigMode(s, args ?? {}),
        "devkit.checkSetup": (args?: { quiet?: boolean }) => checkSetup(s, args ?? {}),
        "devkit.installationGuide": () => installationGuide(s),
        "devkit.manageSecrets": () => manageSecrets(s),
        "devkit.watchRegistration": () => watchRegistration(s),
        "devkit.addTasks": (args?: { quiet?: boolean }) => addTasks(args ?? {}),
        "devkit.showRegistration": () => s.status.explain(),
        "devkit.openMonitor": async (port?: string) => {
            const p = port ?? (await resolvePort(s));
            if (p) await s.monitors.open(p);
            return p;
        },
        "devkit.closeMonitor": async (port?: string) => {
            const ports = port ? [port] : s.monitors.openPorts();
            for (const p of ports) await s.monitors.close(p);
        },
        "devkit.toggleMonitor": async () => {
            const port = s.status.configuredPort();
            const open = port ? s.monitors.isOpen(port) : s.monitors.isOpen();
            // A monitor that is open but hidden is revealed; a shown one is closed.
            const term = open ? await s.monitors.open(port || s.monitors.openPorts()[0], false) : undefined;
            if (term && vscode.window.activeTerminal !== term) term.show(true);
            else if (open) {
                for (const p of port ? [port] : s.monitors.openPorts()) await s.monitors.close(p);
            } else await vscode.commands.executeCommand("devkit.openMonitor");
        },
        "devkit.clearMonitor": () => s.monitors.clear(),
        "devkit.showLogs": () => s.ctx.log.channel.show(true),
        "devkit.openWalkthrough": () =>
            vscode.commands.executeCommand("workbench.action.openWalkthrough", `${s.ctx.extCtx.extension.id}#devkit.provisioning`, false),
        "devkit.restartServer": () => s.ctx.restart(),
        "devkit.serverStatus": async () => {
            const pick = await vscode.window.showQuickPick(
                [
                    { label: "$(output) Show logs", id: "logs" },
                    { label: "$(output) Show daemon output", id: "daemon" },
                    { label: "$(debug-restart) Restart daemon", id: "restart" },
                ],
                { title: `DevKit daemon: ${s.ctx.health}${s.ctx.healthMessage ? ` (${s.ctx.healthMessage})` : ""}` },
            );
            if (pick?.id === "logs") s.ctx.log.channel.show(true);
            if (pick?.id === "daemon") s.ctx.serverChannel.show(true);
            if (pick?.id === "restart") await s.ctx.restart();
        },
        "devkit.forgetSecrets": () => manageSecrets(s),
    };
    return Object.entries(cmds).map(([id, fn]) =>
        vscode.commands.registerCommand(id, async (...args: never[]) => {
            try {
                return await fn(...args);
            } catch (e) {
                const quiet = (args[0] as CertArgs | undefined)?.quiet;
                if (isCancelled(e)) {
                    s.ctx.log.info(`${id}: cancelled`);
                    if (quiet) throw e;
                    return undefined;
                }
                // Daemon errors carry what to do next: `data.nextActions` (buttons), `data.hint`.
                const view = errorView(e, (t) => s.ctx.redactor.redact(t), { label: "Retry", command: id, args });
                s.ctx.log.error(`${id}: ${view.full}`);
                if (quiet) throw Object.assign(new Error(view.full), { code: (e as { code?: unknown }).code, data: (e as { data?: unknown }).data });
                void showErrorView(view, () => s.ctx.log.channel.show(true));
                return undefined;
            }
        }),
    );
}
