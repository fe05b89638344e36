// Errors speak VS Code: a daemon error's typed next actions (`data.nextActions`, the contract
// shared with the CLI, which renders them as flags) become buttons that run the matching
// command or open the matching setting. Toasts cannot show line breaks, so a message of several
// lines shows its first line with a "Details" button that opens the whole text, line breaks
// kept, in a modal.

import * as vscode from "vscode";
import { BootstrapError } from "./bootstrap";
import * as ext from "./lsp_ext";

/** A button: its label and what it does. */
export interface ActionButton {
    label: string;
    /** The command it runs (for tests and logs). */
    command: string;
    args: unknown[];
}

const openSetting = (label: string, setting: string): ActionButton => ({
    label,
    command: "workbench.action.openSettings",
    args: [setting],
});

/** The button for one next action; `undefined` for names this version does not know. */
export function buttonFor(a: ext.NextAction, retry?: ActionButton): ActionButton | undefined {
    switch (a.action) {
        case "setUds":
            return { label: "Set UDS", command: "devkit.setUds", args: [] };
        case "enroll":
            return { label: "Enroll", command: "devkit.enroll", args: [] };
        case "regenerateCert":
            return { label: "Generate Certificate", command: "devkit.generateCert", args: [] };
        case "chooseUploadBackend":
            return openSetting("Choose Upload Backend", "devkitDps.upload.backend");
        case "installToolchain":
            return { label: "Installation Guide", command: "devkit.installationGuide", args: [] };
        case "setArduinoCliPath":
            return openSetting("Set arduino-cli Path", "devkitDps.arduinoCli.path");
        case "setArduinoDataPath":
            return openSetting("Set Arduino Data Folder", "devkitDps.arduinoData.path");
        case "configureDps":
            return { label: "Configure DPS", command: "devkit.configureDps", args: [] };
        case "selectPort":
            return { label: "Select Port", command: "devkit.selectPort", args: [] };
        case "enterConfigMode":
            return { label: "Enter Configuration Mode", command: "devkit.enterConfigMode", args: [] };
        case "installUdevRule":
        case "checkSetup":
            return { label: "Check Setup", command: "devkit.checkSetup", args: [] };
        case "retry":
            // "Run the build first, then retry" (a build directory without an image).
            return a.detail === "build" ? { label: "Build Sketch", command: "devkit.build", args: [] } : retry;
        default:
            return undefined;
    }
}

/**
 * A missing precondition, said as the daemon says its errors: the message, and the next actions
 * whose buttons fix it (Build, Select Port, Configure DPS...). Rendered like any daemon error.
 */
export function missing(message: string, ...actions: ext.NextAction[]): Error {
    return Object.assign(new Error(message), { data: { nextActions: actions } });
}

/** The next actions a daemon error carries (`data.nextActions`), as buttons, without duplicates. */
export function buttonsFor(actions: ext.NextAction[] | undefined, retry?: ActionButton): ActionButton[] {
    const out: ActionButton[] = [];
    for (const a of Array.isArray(actions) ? actions : []) {
        if (!a || typeof a.action !== "string") continue;
        const b = buttonFor(a, retry);
        if (b && !out.some((o) => o.label === b.label)) out.push(b);
    }
    return out;
}

/**
 * The typed next actions of a report (`nextActions` on a result). Read without a declared
 * field: every report may carry them, and older daemons send none.
 */
export function nextActionsOf(result: unknown): ext.NextAction[] {
    const a = (result as { nextActions?: unknown } | undefined)?.nextActions;
    return Array.isArray(a) ? (a as ext.NextAction[]) : [];
}

/** A button that shows something of the result itself (open a file, copy a value): not a next step. */
export interface ViewButton {
    label: string;
    run: () => unknown;
}

/**
 * Shows a task's outcome: `message` with the buttons of the report's next actions, after the
 * buttons that show the result itself. Resolves once the user picked (or dismissed) it.
 */
export async function showReport(severity: "info" | "warning", message: string, next: ext.NextAction[], views: ViewButton[] = []): Promise<void> {
    const actions = buttonsFor(next);
    const labels = [...views.map((v) => v.label), ...actions.map((b) => b.label)];
    const pick = severity === "warning" ? await vscode.window.showWarningMessage(message, ...labels) : await vscode.window.showInformationMessage(message, ...labels);
    const view = views.find((v) => v.label === pick);
    if (view) return void (await view.run());
    const b = actions.find((x) => x.label === pick);
    if (b) await vscode.commands.executeCommand(b.command, ...b.args);
}

export interface ErrorView {
    /** The toast: the message's first line, then the daemon's hint. */
    title: string;
    /** The whole text, line breaks kept (message, then the daemon's hint). */
    full: string;
    buttons: ActionButton[];
}

/**
 * The params a person knows by another name: the daemon's messages start with "`field`: why";
 * the extension says what the field is called in its settings and input boxes.
 */
const FIELD_LABELS: Record<string, string> = {
    idScope: "ID Scope",
    globalEndpoint: "DPS endpoint",
    registrationId: "Registration ID",
    uds: "UDS",
    connectionString: "DPS connection string",
    hubConnectionString: "IoT Hub connection string",
    port: "Serial port",
    wifiSsid: "Wi-Fi network name",
    ssid: "Wi-Fi network name",
    mac: "MAC address",
    firmwareVersion: "Firmware version",
    projectDir: "Project folder",
    buildDir: "Build folder",
    caFile: "DPS CA file (devkitDps.dps.caFile)",
    arduinoCli: "arduino-cli (devkitDps.arduinoCli.path)",
    arduinoData: "Arduino data folder (devkitDps.arduinoData.path)",
};

/** The fix a setting-backed field offers when the daemon named none for it. */
const FIELD_ACTIONS: Record<string, ext.NextAction> = {
    idScope: { action: "configureDps" },
    globalEndpoint: { action: "configureDps" },
    port: { action: "selectPort" },
};

/** `message` as a person reads it: no protocol prefix, the field by its name in the UI. */
export function personMessage(message: string, field: string | undefined): string {
    let m = message.replace(/^invalid params:\s*/i, "");
    const named = /^`([A-Za-z0-9_.]+)`:\s*/.exec(m);
    if (named) {
        const label = FIELD_LABELS[named[1]] ?? (named[1] === field ? FIELD_LABELS[field] : undefined);
        if (label) m = `${label}: ${m.slice(named[0].length)}`;
    }
    return m;
}

/** What to show for an error thrown by a command (a daemon ResponseError or any Error). */
export function errorView(e: unknown, redact: (s: string) => string, retry?: ActionButton): ErrorView {
    const data = (e as { data?: { hint?: unknown; field?: unknown; nextActions?: ext.NextAction[] } }).data;
    const field = typeof data?.field === "string" ? data.field : undefined;
    const message = personMessage(String((e as Error)?.message ?? e), field);
    const hint = typeof data?.hint === "string" && data.hint && !message.includes(data.hint) ? data.hint : undefined;
    const full = redact([message, hint].filter(Boolean).join("\n").trim());
    const first = redact(message).split(/\r?\n/)[0] ?? "";
    // The hint under the message: a toast has no line breaks, so it follows as its own sentence.
    const title = hint ? `${first.replace(/[\s.:;,]*$/, "")}. ${sentence(redact(hint))}` : first;
    const actions = [...(Array.isArray(data?.nextActions) ? data.nextActions : []), ...(field && FIELD_ACTIONS[field] ? [FIELD_ACTIONS[field]] : [])];
    const buttons = buttonsFor(actions, retry);
    // No working daemon: where to point the extension at one, and how to get one.
    if (e instanceof BootstrapError) {
        buttons.unshift(openSetting("Open Setting", "devkitDps.server.path"), { label: "Installation Guide", command: "devkit.installationGuide", args: [] });
    }
    return { title, full, buttons };
}

/** `s` as a sentence: capitalised, ending with a period. */
function sentence(s: string): string {
    const t = s.trim();
    if (!t) return t;
    return t[0].toUpperCase() + t.slice(1) + (/[.!?]$/.test(t) ? "" : ".");
}

/** Every error notification shown (the tests read it), newest last, bounded. */
export const shownErrors: { title: string; full: string; buttons: string[] }[] = [];

/**
 * Shows `view` as an error notification with its buttons (and Details, Show Logs); runs the
 * chosen one. Resolves when the user picked or dismissed it.
 */
export async function showErrorView(view: ErrorView, showLogs: () => void): Promise<void> {
    shownErrors.push({ title: view.title, full: view.full, buttons: view.buttons.map((b) => b.label) });
    if (shownErrors.length > 50) shownErrors.shift();
    const multiLine = view.full.includes("\n");
    const labels = [...view.buttons.map((b) => b.label), ...(multiLine ? ["Details"] : []), "Show Logs"];
    const pick = await vscode.window.showErrorMessage(view.title, ...labels);
    await runPick(pick, view, showLogs);
}

async function runPick(pick: string | undefined, view: ErrorView, showLogs: () => void): Promise<void> {
    if (!pick) return;
    if (pick === "Show Logs") return showLogs();
    if (pick === "Details") {
        const [head, ...rest] = view.full.split(/\r?\n/);
        const again = await vscode.window.showErrorMessage(head, { modal: true, detail: rest.join("\n") }, ...view.buttons.map((b) => b.label));
        return runPick(again, { ...view, full: head }, showLogs);
    }
    const b = view.buttons.find((x) => x.label === pick);
    if (b) await vscode.commands.executeCommand(b.command, ...b.args);
}
