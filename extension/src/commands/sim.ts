// The virtual DevKit without hardware: "Provision a Virtual DevKit" (`devkit/provision` with
// `simulate`), "Reset Virtual DevKit" (`devkit/simReset`), and the virtual DevKit as a device
// of its own: "Start Virtual DevKit" / "Stop Virtual DevKit" (`devkit/simStart`, `devkit/simStop`:
// the daemon runs it; its port is picked like a real DevKit's, and every walkthrough step
// works on it).

import * as path from "node:path";
import * as vscode from "vscode";
import { nextActionsOf, showReport } from "../errors";
import * as ext from "../lsp_ext";
import { withNotificationProgress } from "../progress";
import { updateSetting } from "../config";
import { Quiet, Services, setContext } from "./services";

/**
 * Where simulated runs keep their state and certificate: the extension's storage, not the
 * user's workspace (what goes inside, and where sockets go when the path is long, is the
 * daemon's business).
 */
export function simulatedWorkDir(globalStorage: string): string {
    return path.join(globalStorage, "simulated");
}

/** What the DevKit view shows of the last virtual run (no secrets). */
export const LAST_VIRTUAL_RUN = "devkitDps.lastVirtualRun";
export type VirtualRun = Pick<ext.ProvisionResult, "registrationId" | "sha256Thumbprint" | "fwid" | "assignedHub" | "aliasCert">;

export async function provisionSimulated(s: Services, args: Quiet = {}): Promise<ext.ProvisionResult> {
    const client = await s.ctx.ready();
    const workDir = simulatedWorkDir(s.ctx.extCtx.globalStorageUri.fsPath);
    await vscode.workspace.fs.createDirectory(vscode.Uri.file(workDir));
    // The run is under way: the status bar says so (not the previous run's "Assigned").
    s.status.onEvent({ kind: "status", status: "assigning", port: "simulated" }, false);
    let result: ext.ProvisionResult;
    try {
        result = await withNotificationProgress(client, "Provisioning a virtual DevKit", ext.provision, { simulate: true, workDir }, (step) =>
            s.ctx.log.info(`virtual run: ${step}`),
        );
    } catch (e) {
        // A cancelled or failed run leaves no "assigning" behind (a failure's own event says failed).
        if (s.status.reg.state === "progress" && s.status.reg.event.port === "simulated") s.status.clearRegistration();
        throw e;
    }
    if (s.status.reg.state !== "assigned") {
        // The result is authoritative even if the final event was missed.
        s.status.onEvent({ kind: "assigned", hub: result.assignedHub, deviceId: result.deviceId, port: result.port }, false);
    }
    const run: VirtualRun = { registrationId: result.registrationId, sha256Thumbprint: result.sha256Thumbprint, fwid: result.fwid, assignedHub: result.assignedHub, aliasCert: result.aliasCert };
    await s.ctx.extCtx.globalState.update(LAST_VIRTUAL_RUN, run);
    void vscode.commands.executeCommand("devkit.refreshDevices");
    setContext("devkit.simulatedAssigned", true);
    s.ctx.log.info(`virtual DevKit ${result.registrationId} assigned to ${result.assignedHub} (certificate ${result.aliasCert})`);
    if (!args.quiet) {
        void showReport("info", `Virtual DevKit ${result.registrationId} registered: assigned to ${result.assignedHub}.`, nextActionsOf(result), [
            { label: "Open Certificate", run: () => vscode.window.showTextDocument(vscode.Uri.file(result.aliasCert)) },
        ]);
    }
    return result;
}

/** "Reset Virtual DevKit": the next "Provision a Virtual DevKit" starts with a new device. */
export async function resetSimulated(s: Services, args: Quiet = {}): Promise<boolean> {
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
    await s.ctx.extCtx.globalState.update(LAST_VIRTUAL_RUN, undefined);
    void vscode.commands.executeCommand("devkit.refreshDevices");
    if (s.status.reg.state !== "none" && s.status.reg.event.port === "simulated") s.status.clearRegistration();
    s.ctx.log.info(`virtual DevKit reset (${removed ? "state removed" : "nothing to remove"}): ${workDir}`);
    if (!args.quiet) void vscode.window.showInformationMessage(removed ? "The virtual DevKit was reset." : "The virtual DevKit had no state yet.");
    return removed;
}

/** Where the virtual DevKit the user starts keeps its state: the same device each time. */
export function virtualDevkitDir(globalStorage: string): string {
    return path.join(globalStorage, "virtual-devkit");
}

/** It runs (the daemon owns it): started again when the daemon starts again (a window reload). */
const VIRTUAL_RUNNING = "devkitDps.virtualDevkitRunning";

/**
 * "Start Virtual DevKit": the daemon runs one (or finds it running); its port becomes the
 * DevKit's port, as if the user picked it (ticks "Connect"), and upload, Wi-Fi and UDS use it.
 */
export async function startVirtualDevkit(s: Services, args: Quiet & { select?: boolean } = {}): Promise<ext.SimStartResult> {
    const client = await s.ctx.ready();
    const simDir = virtualDevkitDir(s.ctx.extCtx.globalStorageUri.fsPath);
    await vscode.workspace.fs.createDirectory(vscode.Uri.file(simDir));
    const r = await client.sendRequest(ext.simStart, { simDir });
    await s.ctx.extCtx.globalState.update(VIRTUAL_RUNNING, true);
    await s.ctx.extCtx.workspaceState.update("devkitDps.simDir", r.simDir);
    if (args.select !== false) {
        await updateSetting("serial.port", r.port);
        setContext("devkit.portSelected", true);
    }
    s.ctx.log.info(`virtual DevKit ${r.started ? "started" : "already running"} on ${r.port} (state ${r.simDir})`);
    if (!args.quiet) void vscode.window.showInformationMessage(`The virtual DevKit runs on ${r.port} and is the selected port.`);
    return r;
}

/** "Stop Virtual DevKit": its state stays (Start gives the same device again). */
export async function stopVirtualDevkit(s: Services, args: Quiet = {}): Promise<boolean> {
    const client = await s.ctx.ready();
    const simDir = virtualDevkitDir(s.ctx.extCtx.globalStorageUri.fsPath);
    const { stopped } = await client.sendRequest(ext.simStop, { simDir });
    await s.ctx.extCtx.globalState.update(VIRTUAL_RUNNING, false);
    if (!args.quiet) void vscode.window.showInformationMessage(stopped ? "The virtual DevKit stopped (Start Virtual DevKit brings the same device back)." : "No virtual DevKit was running.");
    return stopped;
}

/** After the daemon (re)started: the virtual DevKit the user started runs again, on the same port. */
export async function resumeVirtualDevkit(s: Services): Promise<void> {
    if (!s.ctx.extCtx.globalState.get<boolean>(VIRTUAL_RUNNING)) return;
    await startVirtualDevkit(s, { quiet: true, select: false }).catch((e) => s.ctx.log.warn(`virtual DevKit not restarted: ${(e as Error).message}`));
}

export const startVirtualDevkitCommand = (s: Services) => (args?: Quiet) => startVirtualDevkit(s, args ?? {});
export const stopVirtualDevkitCommand = (s: Services) => (args?: Quiet) => stopVirtualDevkit(s, args ?? {});
export const provisionSimulatedCommand = (s: Services) => (args?: Quiet) => provisionSimulated(s, args ?? {});
export const resetSimulatedCommand = (s: Services) => (args?: Quiet) => resetSimulated(s, args ?? {});
