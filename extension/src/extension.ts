// DevKit DPS: a thin client over the `devkit lsp` daemon.

import * as vscode from "vscode";
import { Redactor, SafeChannel } from "./channels";
import { registerCommands, Services } from "./commands";
import { Ctx } from "./ctx";
import { errorView, shownErrors, showErrorView } from "./errors";
import { MonitorManager } from "./monitor";
import { Secrets } from "./secrets";
import { StatusBar } from "./status";
import { DevkitTaskProvider, TASK_TYPE } from "./tasks";
import { DevkitView, registerViewCommands } from "./view";

/** What the extension exports: used by its integration tests (and other extensions, read-only). */
export interface DevkitApi {
    ctx: Ctx;
    monitors: MonitorManager;
    status: StatusBar;
    secrets: Secrets;
    /** Everything our output channels showed (already redacted), per channel name. */
    channels(): SafeChannel[];
    /** The error notifications shown, with their buttons (newest last). */
    shownErrors: typeof shownErrors;
    view: DevkitView;
}

let services: Services | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<DevkitApi> {
    const redactor = new Redactor();
    const ctx = new Ctx(context, redactor);
    const monitors = new MonitorManager(ctx);
    const status = new StatusBar(ctx, monitors);
    const secrets = new Secrets(context.secrets, redactor, context.globalState);
    const s: Services = { ctx, monitors, status, secrets };
    const view = new DevkitView(ctx, status);
    services = s;
    context.subscriptions.push(
        ctx,
        monitors,
        status,
        ...registerCommands(s),
        vscode.tasks.registerTaskProvider(TASK_TYPE, new DevkitTaskProvider(s)),
        view,
        ...registerViewCommands(ctx, view),
        vscode.workspace.onDidChangeConfiguration((e) => {
            if (e.affectsConfiguration("devkitDps.server.path")) {
                void vscode.window.showInformationMessage("The DevKit daemon's path changed: restart the daemon?", "Restart").then((p) => {
                    // Through the command: a failed restart is shown, never an unhandled rejection.
                    if (p) void vscode.commands.executeCommand("devkit.restartServer");
                });
            }
        }),
    );
    context.subscriptions.push(...contextKeys());
    // Start the daemon in the background; commands wait for it. A failure shows on the status
    // item and once as a notification that says how to fix it.
    ctx.start().catch((e) => void showErrorView(errorView(e, (t) => redactor.redact(t)), () => ctx.log.channel.show(true)));
    return { ctx, monitors, status, secrets, channels: () => ctx.channels, shownErrors, view };
}

/**
 * The context keys the commands' `enablement` and the walkthrough read, kept up to date:
 * `devkit.portSelected`, `devkit.dpsConfigured` (settings), `devkit.hasBuild` (a
 * `<sketch>.ino.bin` in the workspace). `devkit.daemonRunning` follows the daemon (Ctx),
 * `devkit.monitorOpen` the monitors.
 */
function contextKeys(): vscode.Disposable[] {
    const set = (key: string, value: unknown) => void vscode.commands.executeCommand("setContext", key, value);
    const settings = () => {
        const cfg = vscode.workspace.getConfiguration("devkitDps");
        set("devkit.portSelected", !!cfg.get<string>("serial.port"));
        set("devkit.dpsConfigured", !!cfg.get<string>("dps.idScope"));
    };
    const builds = async () => set("devkit.hasBuild", (await vscode.workspace.findFiles("**/*.ino.bin", "**/node_modules/**", 1)).length > 0);
    settings();
    void builds();
    const watcher = vscode.workspace.createFileSystemWatcher("**/*.ino.bin");
    return [
        watcher,
        watcher.onDidCreate(() => set("devkit.hasBuild", true)),
        watcher.onDidDelete(() => void builds()),
        vscode.workspace.onDidChangeConfiguration((e) => {
            if (e.affectsConfiguration("devkitDps")) settings();
        }),
        vscode.workspace.onDidChangeWorkspaceFolders(() => void builds()),
    ];
}

export async function deactivate(): Promise<void> {
    await services?.ctx.stop();
    services = undefined;
}
