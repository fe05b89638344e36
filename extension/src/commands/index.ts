// Every palette command, by feature module, as rust-analyzer's client registers them: a table
// of factories `(s) => handler`. Failures are shown with the daemon's next actions as buttons
// (and a link to the logs); cancellations quietly; with `quiet` they are thrown to the caller.

import * as vscode from "vscode";
import { errorView, showErrorView } from "../errors";
import * as ext from "../lsp_ext";
import { isCancelled } from "../progress";
import { buildCommand, deviceUploadCommand } from "./build";
import { enrollCommand, manageSecretsCommand } from "./enroll";
import { enrollBatchCommand, enrollGroupCommand } from "./factory";
import { generateCertCommand } from "./identity";
import { selectPort } from "./port";
import {
    clearMonitor,
    closeMonitor,
    configureWifiCommand,
    enterConfigModeCommand,
    openMonitor,
    setUdsCommand,
    toggleMonitor,
    watchRegistrationCommand,
} from "./serial";
import { Factory, Quiet, Services } from "./services";
import {
    addTasksCommand,
    checkSetupCommand,
    configureDpsCommand,
    installationGuideCommand,
    serverStatusCommand,
    writeSettingCommand,
} from "./setup";
import { provisionSimulatedCommand, resetSimulatedCommand, startVirtualDevkitCommand, stopVirtualDevkitCommand } from "./sim";

export type { Services } from "./services";

const COMMANDS: Record<string, Factory> = {
    "devkit.selectPort": selectPort,
    "devkit.generateCert": generateCertCommand,
    "devkit.setUds": setUdsCommand,
    "devkit.configureWifi": configureWifiCommand,
    "devkit.configureDps": configureDpsCommand,
    [ext.writeSettingCommand]: writeSettingCommand,
    "devkit.enroll": enrollCommand,
    "devkit.enrollBatch": enrollBatchCommand,
    "devkit.enrollGroup": enrollGroupCommand,
    "devkit.deviceUpload": deviceUploadCommand,
    "devkit.build": buildCommand,
    "devkit.provisionSimulated": provisionSimulatedCommand,
    "devkit.resetSimulated": resetSimulatedCommand,
    "devkit.startVirtualDevkit": startVirtualDevkitCommand,
    "devkit.stopVirtualDevkit": stopVirtualDevkitCommand,
    "devkit.enterConfigMode": enterConfigModeCommand,
    "devkit.checkSetup": checkSetupCommand,
    "devkit.installationGuide": installationGuideCommand,
    "devkit.manageSecrets": manageSecretsCommand,
    "devkit.forgetSecrets": manageSecretsCommand,
    "devkit.watchRegistration": watchRegistrationCommand,
    "devkit.addTasks": addTasksCommand,
    "devkit.showRegistration": (s) => () => s.status.explain(),
    "devkit.openMonitor": openMonitor,
    "devkit.closeMonitor": closeMonitor,
    "devkit.toggleMonitor": toggleMonitor,
    "devkit.clearMonitor": clearMonitor,
    "devkit.showLogs": (s) => () => s.ctx.log.channel.show(true),
    "devkit.openWalkthrough": (s) => () =>
        vscode.commands.executeCommand("workbench.action.openWalkthrough", `${s.ctx.extCtx.extension.id}#devkit.provisioning`, false),
    "devkit.restartServer": (s) => () => s.ctx.restart(),
    "devkit.serverStatus": serverStatusCommand,
};

/** Registers every command. */
export function registerCommands(s: Services): vscode.Disposable[] {
    return Object.entries(COMMANDS).map(([id, factory]) => {
        const fn = factory(s);
        return vscode.commands.registerCommand(id, async (...args: unknown[]) => {
            try {
                return await fn(...args);
            } catch (e) {
                const quiet = (args[0] as Quiet | undefined)?.quiet;
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
        });
    });
}
