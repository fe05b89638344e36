// Setting up: "Check Setup" (the daemon's checks with their fixes), the installation guide,
// "Configure DPS" (validated by the daemon), the quick fix's "write setting", tasks.json and
// the daemon's own status.

import * as vscode from "vscode";
import { config, folderTasks, QUICK_FIX_SETTINGS, updateSetting, WritableSetting, writeFolderTasks } from "../config";
import { ActionButton, buttonsFor } from "../errors";
import * as ext from "../lsp_ext";
import { taskJsonEntries, TASK_TYPE } from "../tasks";
import { validate, validator } from "./inputs";
import { Quiet, Services, setContext } from "./services";

const CHECK_ICON = { ok: "$(pass)", warning: "$(warning)", error: "$(error)", notNeeded: "$(circle-slash)" } as const;

/** "Check Setup": the daemon's checks (arduino-cli, platform, probe, udev rule) with their fixes. */
export async function checkSetup(s: Services, args: Quiet = {}): Promise<ext.CheckSetupResult> {
    const client = await s.ctx.ready();
    const c = config();
    const result = await client.sendRequest(ext.checkSetup, { arduinoCli: c.arduinoCli, arduinoData: c.arduinoData });
    for (const check of result.checks) s.ctx.log.info(`check setup: ${check.status} ${check.title}: ${check.detail.split("\n")[0]}`);
    setContext("devkit.setupChecked", true);
    if (args.quiet) return result;
    const items = result.checks.map((check) => ({
        label: `${CHECK_ICON[check.status] ?? ""} ${check.title}`,
        description: check.detail.split("\n")[0],
        detail: check.status === "ok" || check.status === "notNeeded" ? undefined : check.nextActions.length ? "Select for the fix" : undefined,
        check,
    }));
    const pick = await vscode.window.showQuickPick(items, {
        title: result.ready ? "DevKit setup: ready (select a line for details)" : "DevKit setup: something is missing (select a line to fix it)",
        matchOnDescription: true,
    });
    if (!pick) return result;
    const check = pick.check;
    const buttons: ActionButton[] = buttonsFor(check.nextActions).filter((b) => b.command !== "devkit.checkSetup");
    const rule = check.nextActions.some((a) => a.action === "installUdevRule") ? check.detail.split("\n").find((l) => l.includes("ATTRS{idVendor}")) : undefined;
    const labels = [...buttons.map((b) => b.label), ...(rule ? ["Copy udev Rule"] : [])];
    // The modal's icon says what the line said: an error, a warning, or fine.
    const show = check.status === "error" ? vscode.window.showErrorMessage : check.status === "warning" ? vscode.window.showWarningMessage : vscode.window.showInformationMessage;
    const chosen = await show(`${check.title}: ${check.status}`, { modal: true, detail: check.detail }, ...labels);
    if (chosen === "Copy udev Rule" && rule) await vscode.env.clipboard.writeText(rule);
    const b = buttons.find((x) => x.label === chosen);
    if (b) await vscode.commands.executeCommand(b.command, ...b.args);
    return result;
}

/**
 * The extension's README, whatever case the packager gave its name (vsce stores `README.md` as
 * `readme.md`, and Linux paths are case-sensitive); `undefined` when there is none.
 */
export async function readmeUri(extensionUri: vscode.Uri): Promise<vscode.Uri | undefined> {
    const entries = await vscode.workspace.fs.readDirectory(extensionUri);
    const name = entries.find(([n, type]) => type === vscode.FileType.File && n.toLowerCase() === "readme.md")?.[0];
    return name ? vscode.Uri.joinPath(extensionUri, name) : undefined;
}

/** The installation guide: the extension's README (daemon, arduino-cli, the AZ3166 platform). */
export async function installationGuide(s: Services): Promise<void> {
    const readme = await readmeUri(s.ctx.extCtx.extensionUri);
    if (!readme) throw new Error(`The extension's README is missing from ${s.ctx.extCtx.extensionUri.fsPath}: reinstall the extension.`);
    try {
        await vscode.commands.executeCommand("markdown.showPreview", readme);
    } catch {
        await vscode.window.showTextDocument(readme);
    }
}

/** "Configure DPS": the endpoint and ID Scope, each checked by the daemon as the build will. */
export async function configureDps(s: Services): Promise<boolean> {
    const c = config();
    const endpoint = await vscode.window.showInputBox({
        title: "DPS global device endpoint",
        value: c.globalEndpoint ?? "global.azure-devices-provisioning.net",
        ignoreFocusOut: true,
        validateInput: validator(s, "globalEndpoint"),
    });
    if (!endpoint) return false;
    const scope = await vscode.window.showInputBox({
        title: "DPS ID Scope",
        value: c.idScope ?? "",
        placeHolder: "0ne0001A2B3",
        prompt: "The DPS overview in the Azure portal shows it.",
        ignoreFocusOut: true,
        validateInput: validator(s, "idScope"),
    });
    if (!scope) return false;
    await updateSetting("dps.globalEndpoint", endpoint.trim());
    await updateSetting("dps.idScope", scope.trim());
    setContext("devkit.dpsConfigured", true);
    return true;
}

/** `devkit.writeSetting`: the "Move <value> to settings" quick fix's command (lsp_ext.ts). */
export async function writeSetting(args: ext.WriteSettingParams | undefined): Promise<void> {
    const setting = String(args?.setting ?? "");
    const value = args?.value;
    if (!QUICK_FIX_SETTINGS.includes(setting)) throw new Error(`${setting.slice(0, 80)} is not a DPS setting; allowed: ${QUICK_FIX_SETTINGS.join(", ")}`);
    if (typeof value !== "string" || value.length > 256) throw new Error(`The value for ${setting} must be a string of at most 256 characters.`);
    await updateSetting(setting.slice("devkitDps.".length) as WritableSetting, value);
    if (setting === "devkitDps.dps.idScope") setContext("devkit.dpsConfigured", true);
    vscode.window.setStatusBarMessage(`$(check) ${setting} = "${value}": every build compiles it in (dps_config.h)`, 5000);
}

/**
 * "Add DevKit Tasks to tasks.json": the workspace's tasks.json gets the `devkit` tasks it does
 * not have yet (nothing else in it changes), so that Quick Open's `task device-upload` lists
 * them as the old tutorial says (Quick Open lists configured and recent tasks by name; provided
 * ones only under their type). Resolves how many were added.
 */
export async function addTasks(args: Quiet = {}): Promise<number> {
    const folder = vscode.workspace.workspaceFolders?.[0];
    if (!folder) throw new Error("Open the sketch's folder (or the project) first.");
    const { tasks: current, hasVersion } = folderTasks(folder);
    const has = (name: string) => current.some((t) => (t as { type?: unknown; task?: unknown }).type === TASK_TYPE && (t as { task?: unknown }).task === name);
    const missing = taskJsonEntries().filter((t) => !has(t.task));
    if (missing.length) await writeFolderTasks(folder, [...current, ...missing], !hasVersion);
    if (!args.quiet) {
        void vscode.window.showInformationMessage(
            missing.length
                ? `Added ${missing.map((t) => t.task).join(", ")} to .vscode/tasks.json: run them with Quick Open (Ctrl+P), "task device-upload".`
                : "The DevKit tasks are already in .vscode/tasks.json.",
        );
    }
    return missing.length;
}

/** The daemon's status item: logs, its output, restart. */
export async function serverStatus(s: Services): Promise<void> {
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
}

export const checkSetupCommand = (s: Services) => (args?: Quiet) => checkSetup(s, args ?? {});
export const installationGuideCommand = (s: Services) => () => installationGuide(s);
export const configureDpsCommand = (s: Services) => () => configureDps(s);
export const writeSettingCommand = () => (args?: ext.WriteSettingParams) => writeSetting(args);
export const addTasksCommand = () => (args?: Quiet) => addTasks(args ?? {});
export const serverStatusCommand = (s: Services) => () => serverStatus(s);

/** The DPS settings the daemon checks when they change (the Settings editor has no rule of its own). */
const CHECKED_SETTINGS: { key: "dps.idScope" | "dps.globalEndpoint" | "registrationId"; input: ext.ValidatedInput; value: (c: ReturnType<typeof config>) => string | undefined }[] = [
    { key: "dps.idScope", input: "idScope", value: (c) => c.idScope },
    { key: "dps.globalEndpoint", input: "globalEndpoint", value: (c) => c.globalEndpoint },
    { key: "registrationId", input: "registrationId", value: (c) => c.registrationId },
];

/**
 * Asks the daemon about the DPS settings `changed` selects (all when omitted) and shows what it
 * refuses, with a button to the setting. Resolves the messages shown (the tests read them).
 */
export async function checkDpsSettings(s: Services, changed: (key: string) => boolean = () => true): Promise<string[]> {
    const c = config();
    const shown: string[] = [];
    for (const setting of CHECKED_SETTINGS) {
        const value = setting.value(c);
        if (!value || !changed(setting.key)) continue;
        const r = await validate(s, setting.input, value);
        if (r.valid) continue;
        const msg = `devkitDps.${setting.key}: ${r.message ?? "invalid"}`;
        shown.push(msg);
        s.ctx.log.warn(msg);
        void vscode.window.showWarningMessage(msg, "Open Setting").then((p) => {
            if (p) void vscode.commands.executeCommand("workbench.action.openSettings", `devkitDps.${setting.key}`);
        });
    }
    return shown;
}
