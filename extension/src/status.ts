// Status bar: the DevKit's port, the monitor toggle, and the registration state as the device
// reports it (`devkit/registrationEvent`): assigning / assigned to <hub> / failed, where a click
// on a failure shows the hint and the next action.

import * as vscode from "vscode";
import { affects, config } from "./config";
import { Ctx } from "./ctx";
import { buttonsFor } from "./errors";
import * as ext from "./lsp_ext";
import { MonitorManager } from "./monitor";
import { showExplanation } from "./rejection";

export type RegistrationState =
    | { state: "none" }
    | { state: "progress"; kind: string; event: ext.RegistrationEventParams }
    | { state: "configMode"; event: ext.RegistrationEventParams }
    | { state: "assigned"; hub: string; event: ext.RegistrationEventParams }
    | { state: "failed"; event: ext.RegistrationEventParams };

/** What the device said, in one sentence (events carry `reason` or `message`). */
export function describe(e: ext.RegistrationEventParams): string {
    return String(e.reason ?? e.message ?? e.kind);
}

/**
 * Maps one device event onto the state shown in the status bar; `undefined` for events that do
 * not change it (identity lines, configuration mode).
 */
export function registrationStateOf(e: ext.RegistrationEventParams): RegistrationState | undefined {
    switch (e.kind) {
        case "assigned":
            return { state: "assigned", hub: String(e.hub ?? "?"), event: e };
        case "failed":
        case "dpsError":
        case "udsMissing":
        case "wifiFailed":
        case "deviceError":
            return { state: "failed", event: e };
        case "status":
            return { state: "progress", kind: String(e.status ?? "registering").toLowerCase(), event: e };
        case "registrationRequest":
            return { state: "progress", kind: "registering", event: e };
        case "boot":
            return { state: "progress", kind: "booted", event: e };
        case "configMode":
            return { state: "configMode", event: e };
        default:
            return undefined;
    }
}

/** The workspace's last registration verdict (an event: no secrets), shown again after a reload. */
const LAST_REGISTRATION = "devkitDps.lastRegistration";

/** What the registration item stands for, in full (its click). */
export function registrationDetail(r: RegistrationState, where: string): string {
    switch (r.state) {
        case "assigned": {
            const who = [r.event.registrationId ? `registration ID ${r.event.registrationId}` : undefined, r.event.deviceId ? `device ID ${r.event.deviceId}` : undefined].filter(Boolean).join(", ");
            return `DPS assigned ${where}${who ? ` (${who})` : ""} to the IoT hub ${r.hub}: it connects there from now on.`;
        }
        case "configMode":
            return `${where[0].toUpperCase()}${where.slice(1)} is in configuration mode: set its UDS or Wi-Fi now, then press Reset to run the sketch.`;
        case "progress":
            return `Registration of ${where} in progress (${r.kind}): the item turns to the hub it is assigned to, or says why DPS refused it.`;
        case "failed":
            return `Registration failed: ${describe(r.event)}.`;
        case "none":
            return "No registration seen yet.";
    }
}

/** `myhub` for `myhub.azure-devices.net`: the status bar is narrow; the tooltip has the full name. */
export function shortHub(hub: string): string {
    return hub.replace(/\.azure-devices\.net$/i, "");
}

/** What a DevKit said about itself (the daemon's `identity` events): fills in the registration ID. */
export interface DeviceFacts {
    mac?: string;
    firmwareVersion?: string;
}

export class StatusBar implements vscode.Disposable {
    readonly port: vscode.StatusBarItem;
    readonly monitor: vscode.StatusBarItem;
    readonly registration: vscode.StatusBarItem;
    reg: RegistrationState = { state: "none" };
    /** The latest events, oldest first (the tests read them). */
    readonly events: ext.RegistrationEventParams[] = [];
    /** Per port, what the device said about itself since it was monitored. */
    private readonly facts = new Map<string, DeviceFacts>();
    private readonly disposables: vscode.Disposable[] = [];

    constructor(
        private readonly ctx: Ctx,
        private readonly monitors: MonitorManager,
    ) {
        this.port = vscode.window.createStatusBarItem("devkit.port", vscode.StatusBarAlignment.Left, 99);
        this.port.name = "DevKit Port";
        this.port.command = "devkit.selectPort";
        this.monitor = vscode.window.createStatusBarItem("devkit.monitor", vscode.StatusBarAlignment.Left, 98);
        this.monitor.name = "DevKit Serial Monitor";
        this.monitor.command = "devkit.toggleMonitor";
        this.registration = vscode.window.createStatusBarItem("devkit.registration", vscode.StatusBarAlignment.Left, 97);
        this.registration.name = "DevKit Registration";
        this.registration.command = "devkit.showRegistration";
        this.disposables.push(
            this.port,
            this.monitor,
            this.registration,
            ctx.onClientCreated((client) => client.onNotification(ext.registrationEvent, (e) => this.onEvent(e))),
            monitors.onDidChange(() => this.refresh()),
            vscode.workspace.onDidChangeConfiguration((e) => {
                if (affects(e, "serial")) this.refresh();
            }),
        );
        // The last verdict survives a window reload (a state in progress would only be stale).
        const kept = ctx.extCtx.workspaceState.get<ext.RegistrationEventParams>(LAST_REGISTRATION);
        const restored = kept && registrationStateOf(kept);
        if (restored && (restored.state === "assigned" || restored.state === "failed")) this.reg = restored;
        this.refresh();
    }

    configuredPort(): string {
        return config().port ?? "";
    }

    /** What the DevKit on `port` said about itself (MAC, firmware version), as the daemon parsed it. */
    deviceFacts(port: string): DeviceFacts {
        return this.facts.get(port) ?? {};
    }

    refresh(): void {
        const port = this.configuredPort();
        // Long paths (pty links, /dev/serial/by-id/...) are shortened; the tooltip has the full one.
        const shown = port.length > 24 ? `…/${port.split(/[\\/]/).pop()}` : port;
        this.port.text = `$(plug) ${shown || "Select DevKit port"}`;
        this.port.tooltip = port ? `DevKit serial port ${port}: click to change` : "Pick the DevKit's serial port";
        this.port.show();
        const open = port ? this.monitors.isOpen(port) : this.monitors.isOpen();
        this.monitor.text = open ? "$(eye) Monitor" : "$(eye-closed) Monitor";
        this.monitor.tooltip = open ? "Serial monitor is open: click to show it (click again to close it)" : "Open the serial monitor";
        this.monitor.show();
        this.renderRegistration();
    }

    /** A `devkit/registrationEvent`; `fromDaemon` false for a state the client inferred (not recorded). */
    onEvent(e: ext.RegistrationEventParams, fromDaemon = true): void {
        this.ctx.log.info(`registration event on ${e.port ?? "?"}: ${e.kind}${e.status ? ` ${e.status}` : ""}${e.hub ? ` (${e.hub})` : ""}${e.reason ? `: ${e.reason}` : ""}`);
        if (fromDaemon) {
            this.events.push(e);
            if (this.events.length > 200) this.events.shift();
        }
        if (e.kind === "identity" && e.port) {
            const f = this.facts.get(e.port) ?? {};
            if (typeof e.mac === "string") f.mac = e.mac;
            if (typeof e.firmwareVersion === "string") f.firmwareVersion = e.firmwareVersion;
            this.facts.set(e.port, f);
        }
        // A 401002 the daemon explained: one notification with the one fix.
        if (fromDaemon && e.kind === "failed" && e.explanation) void showExplanation(e.explanation);
        const next = registrationStateOf(e);
        if (!next) return;
        this.reg = next;
        if (next.state === "assigned" || next.state === "failed") void this.ctx.extCtx.workspaceState.update(LAST_REGISTRATION, e);
        // A virtual run ticks its own walkthrough step, not the real device's.
        if (this.reg.state === "assigned" && e.port !== "simulated") {
            void vscode.commands.executeCommand("setContext", "devkit.registrationAssigned", true);
        }
        this.renderRegistration();
    }

    private renderRegistration(): void {
        const r = this.reg;
        const item = this.registration;
        item.backgroundColor = undefined;
        switch (r.state) {
            case "none":
                item.hide();
                return;
            case "progress":
                item.text = `$(sync~spin) DPS: ${r.kind}`;
                item.tooltip = `Registration: ${r.kind}`;
                break;
            case "configMode":
                item.text = "$(tools) DevKit: configuration mode";
                item.tooltip = "The DevKit is in configuration mode: it accepts UDS and Wi-Fi settings. Press Reset to run the sketch.";
                break;
            case "assigned":
                item.text = `$(pass-filled) Assigned to ${shortHub(r.hub)}`;
                item.tooltip = `Registered${r.event.registrationId ? ` as ${r.event.registrationId}` : ""} and assigned to IoT hub ${r.hub}`;
                break;
            case "failed":
                item.text = "$(error) DPS: failed";
                item.tooltip = `${describe(r.event)}${r.event.explanation ? `\n\n${r.event.explanation.message}` : r.event.hint ? `\n\n${r.event.hint}` : ""}\n\nClick for the next step.`;
                item.backgroundColor = new vscode.ThemeColor("statusBarItem.errorBackground");
                break;
        }
        item.show();
    }

    /** Forget the registration shown (the virtual DevKit was reset). */
    clearRegistration(): void {
        this.reg = { state: "none" };
        void this.ctx.extCtx.workspaceState.update(LAST_REGISTRATION, undefined);
        this.renderRegistration();
    }

    /** The click on the registration item: what happened and what to do next. */
    async explain(): Promise<void> {
        const r = this.reg;
        if (r.state === "none") {
            void vscode.window.showInformationMessage("No registration seen yet. Open the serial monitor and reset the DevKit to watch it register.");
            return;
        }
        // What the item cannot say in a few words, and where to look next.
        const where = r.event.port === "simulated" ? "a virtual run" : r.event.port ? `the DevKit on ${r.event.port}` : "the DevKit";
        const watch = async (...labels: string[]) => {
            const pick = await vscode.window.showInformationMessage(registrationDetail(r, where), ...labels, "Show Logs");
            if (pick === "Open Serial Monitor") await vscode.commands.executeCommand("devkit.openMonitor", r.event.port);
            if (pick === "Set UDS") await vscode.commands.executeCommand("devkit.setUds", { port: r.event.port });
            if (pick === "Configure Wi-Fi") await vscode.commands.executeCommand("devkit.configureWifi");
            if (pick === "Show Logs") this.ctx.log.channel.show(true);
        };
        const realPort = r.event.port && r.event.port !== "simulated";
        if (r.state === "assigned") return watch(...(realPort ? ["Open Serial Monitor"] : []));
        if (r.state === "configMode") return watch("Set UDS", "Configure Wi-Fi");
        if (r.state === "progress") return watch(...(realPort ? ["Open Serial Monitor"] : []));
        if (r.event.explanation) return showExplanation(r.event.explanation, true);
        // What to do is the daemon's diagnosis of the device's words (the event's next actions).
        const actions = buttonsFor(r.event.nextActions);
        const msg = [`Registration failed: ${describe(r.event)}.`, r.event.hint].filter(Boolean).join(" ");
        const pick = await vscode.window.showErrorMessage(msg, ...actions.map((a) => a.label));
        const chosen = actions.find((a) => a.label === pick);
        if (chosen) await vscode.commands.executeCommand(chosen.command, ...chosen.args);
    }

    dispose(): void {
        for (const d of this.disposables) d.dispose();
    }
}
