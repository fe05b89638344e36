// DPS: "Enroll Device in DPS" (REST with the connection string from SecretStorage, or the Azure
// CLI) and "Manage Stored Secrets". What a connection string is, and whether its host is this
// machine, the daemon says (`devkit/validateInput`).

import * as vscode from "vscode";
import { config, updateSetting } from "../config";
import { showReport } from "../errors";
import * as ext from "../lsp_ext";
import { withNotificationProgress } from "../progress";
import { validate, validator } from "./inputs";
import { Quiet, Services, setContext, workspaceRoot } from "./services";

export interface EnrollArgs extends Quiet {
    /** Alias certificate; default: the project's last generated certificate. */
    cert?: string;
    /** `rest` (the connection string in secret storage) or `az` (the Azure CLI); default: ask when none is stored. */
    backend?: ext.EnrollBackend;
    /** PEM of a CA to trust for the DPS service (a local emulator). */
    caFile?: string;
    /** Enable the enrollment if it is disabled (re-enrolling otherwise keeps it disabled). */
    enable?: boolean;
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

/**
 * The CA to trust for the DPS service: `devkitDps.dps.caFile`; when the daemon says the
 * connection string's host is this machine (the DPS emulator) and none is set, ask for the
 * emulator's `ca.pem` once and keep it in the setting.
 */
export async function dpsCaFile(s: Services, cs: string | undefined, quiet: boolean): Promise<string | undefined> {
    const configured = config().caFile;
    if (configured || !cs || quiet) return configured;
    const v = await validate(s, "connectionString", cs);
    if (!v.localHost) return undefined;
    const picked = await vscode.window.showOpenDialog({
        title: `DPS at ${v.hostName} is local (the DPS emulator?): pick its CA certificate (ca.pem in its state folder)`,
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
    let backend: ext.EnrollBackend | undefined = args.backend;
    if (!connectionString && backend !== "az") {
        if (args.quiet) throw new Error("No DPS connection string stored: run DevKit: Enroll Device in DPS once interactively.");
        const pick = await vscode.window.showQuickPick(
            [
                { id: "cs", label: "$(key) DPS connection string", description: "kept in VS Code's secret storage once it worked" },
                { id: "az", label: "$(azure) Azure CLI (az)", description: "uses your `az login` session" },
            ],
            { title: "How should the enrollment be created?", ignoreFocusOut: true },
        );
        if (!pick) return undefined;
        if (pick.id === "az") backend = "az";
        else {
            connectionString = await askConnectionString(s);
            if (!connectionString) return undefined;
            newConnectionString = true;
        }
    }
    const az = backend === "az";
    const caFile = args.caFile ?? (az ? undefined : await dpsCaFile(s, connectionString, !!args.quiet));
    const params: ext.EnrollParams = { projectDir, cert: args.cert, caFile, backend: az ? "az" : "rest", enable: args.enable || undefined };
    if (az) {
        const target = await askAzTarget(s);
        if (!target) return undefined;
        Object.assign(params, target);
    } else params.connectionString = connectionString;
    const client = await s.ctx.ready();
    const result = await withNotificationProgress(client, "Creating the DPS enrollment", ext.enroll, params);
    if (newConnectionString && connectionString) {
        await s.secrets.storeConnectionString(connectionString);
        // Open monitors now explain a rejected certificate against this DPS.
        void s.monitors.updateDpsConnection();
    }
    s.ctx.log.info(`enrolled ${result.registrationId} (${result.provisioningStatus}, SHA-1 ${result.sha1Thumbprint}, ${result.cert})`);
    for (const w of result.warnings) s.ctx.log.warn(w);
    setContext("devkit.enrolled", true);
    void vscode.commands.executeCommand("devkit.refreshDevices");
    if (!args.quiet) {
        // Which certificate, when the user named none: the project's last generated one.
        const which = result.certFromProjectState ? " (the project's last generated certificate)" : "";
        const next = result.provisioningStatus === "enabled" ? " Reset the DevKit to register." : " It is disabled: DPS refuses the device until it is enabled.";
        const said = result.warnings.length ? ` ${result.warnings.join(" ")}` : "";
        // A disabled enrollment stays disabled on re-enrolling: offer to enable it.
        const enable = { label: "Enable", run: () => vscode.commands.executeCommand("devkit.enroll", { ...args, cert: result.cert, enable: true }) };
        const views = result.provisioningStatus === "disabled" ? [enable] : [];
        void showReport(result.warnings.length ? "warning" : "info", `Enrollment for ${result.registrationId}${which} is ${result.provisioningStatus}.${next}${said}`, result.nextActions, views);
    }
    return result;
}

export async function askConnectionString(s: Services): Promise<string | undefined> {
    const cs = await vscode.window.showInputBox({
        title: "DPS service connection string",
        prompt: "Azure portal > your DPS > Shared access policies > provisioningserviceowner",
        password: true,
        ignoreFocusOut: true,
        validateInput: validator(s, "connectionString"),
    });
    if (!cs) return undefined;
    s.secrets.remember(cs.trim());
    return cs.trim();
}

/** "Manage Stored Secrets": change or forget the DPS connection string or a device's UDS, with confirmation. */
export async function manageSecrets(s: Services): Promise<void> {
    const cs = await s.secrets.getConnectionString();
    const host = cs ? ((await validate(s, "connectionString", cs).catch(() => undefined))?.hostName ?? "") : "";
    const devices = s.secrets.knownDevices();
    const items: (vscode.QuickPickItem & { id: string; device?: string })[] = [];
    if (cs) {
        items.push({ id: "cs-change", label: "$(edit) Change the DPS connection string", description: host });
        items.push({ id: "cs-forget", label: "$(trash) Forget the DPS connection string", description: host });
    } else items.push({ id: "cs-none", label: "$(info) No DPS connection string stored", description: "Enroll asks for one" });
    for (const d of devices) items.push({ id: "uds-forget", device: d, label: `$(trash) Forget the UDS of ${d}` });
    const pick = await vscode.window.showQuickPick(items, { title: "DevKit secrets (VS Code secret storage)" });
    if (!pick || pick.id === "cs-none") return;
    if (pick.id === "cs-change") {
        const next = await askConnectionString(s);
        if (next) await s.secrets.storeConnectionString(next);
        void s.monitors.updateDpsConnection();
        return;
    }
    const what = pick.id === "cs-forget" ? "the DPS connection string" : `the UDS of ${pick.device}`;
    const sure = await vscode.window.showWarningMessage(
        `Forget ${what}?`,
        { modal: true, detail: pick.id === "cs-forget" ? "Enroll will ask for it again." : "Without it, its certificate cannot be generated again: the device needs a new UDS." },
        "Forget",
    );
    if (sure !== "Forget") return;
    if (pick.id === "cs-forget") {
        await s.secrets.deleteConnectionString();
        void s.monitors.updateDpsConnection();
    }
    else if (pick.device) await s.secrets.deleteUds(pick.device);
}

export const enrollCommand = (s: Services) => (args?: EnrollArgs) => enroll(s, args ?? {});
export const manageSecretsCommand = (s: Services) => () => manageSecrets(s);
