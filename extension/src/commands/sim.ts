// The virtual DevKit without hardware: "Provision a Virtual DevKit" (`devkit/provision` with
// `simulate`) and "Reset Virtual DevKit" (`devkit/simReset`).

import * as path from "node:path";
import * as vscode from "vscode";
import { nextActionsOf, showReport } from "../errors";
import * as ext from "../lsp_ext";
import { withNotificationProgress } from "../progress";
import { Quiet, Services, setContext } from "./services";

/**
 * Where simulated runs keep their state and certificate: the extension's storage, not the
 * user's workspace (what goes inside, and where sockets go when the path is long, is the
 * daemon's business).
 */
export function simulatedWorkDir(globalStorage: string): string {
    return path.join(globalStorage, "simulated");
}

export async function provisionSimulated(s: Services, args: Quiet = {}): Promise<ext.ProvisionResult> {
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
    if (s.status.reg.state !== "none" && s.status.reg.event.port === "simulated") s.status.clearRegistration();
    s.ctx.log.info(`virtual DevKit reset (${removed ? "state removed" : "nothing to remove"}): ${workDir}`);
    if (!args.quiet) void vscode.window.showInformationMessage(removed ? "The virtual DevKit was reset." : "The virtual DevKit had no state yet.");
    return removed;
}

export const provisionSimulatedCommand = (s: Services) => (args?: Quiet) => provisionSimulated(s, args ?? {});
export const resetSimulatedCommand = (s: Services) => (args?: Quiet) => resetSimulated(s, args ?? {});
