// DevKit DPS: a thin client over the `devkit lsp` daemon.

import * as vscode from "vscode";
import { Redactor, SafeChannel } from "./channels";
import { registerCommands, Services } from "./commands";
import { CHOSEN_BUILD_DIR, flashTarget } from "./commands/build";
import { checkDpsSettings } from "./commands/setup";
import { resumeVirtualDevkit } from "./commands/sim";
import { affects, config } from "./config";
import { Ctx } from "./ctx";
import { errorView, shownErrors, showErrorView } from "./errors";
import * as ext from "./lsp_ext";
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
    /** Where Device Upload would flash `port` (the backend from the setting and the port). */
    flashTarget(port: string): Promise<ext.FlashParams>;
}

let services: Services | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<DevkitApi> {
    const redactor = new Redactor();
    const ctx = new Ctx(context, redactor);
    const monitors = new MonitorManager(ctx);
    const status = new StatusBar(ctx, monitors);
    const secrets = new Secrets(context.secrets, redactor, context.globalState);
    // A 401002 is explained when the DPS connection Enroll keeps is known (secret storage).
    monitors.dpsConnection = async () => {
        const connectionString = await secrets.getConnectionString();
        const projectDir = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
        return connectionString && projectDir ? { connectionString, caFile: config().caFile, projectDir } : {};
    };
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
            if (affects(e, "server.path")) {
                void vscode.window.showInformationMessage("The DevKit daemon's path changed: restart the daemon?", "Restart").then((p) => {
                    // Through the command: a failed restart is shown, never an unhandled rejection.
                    if (p) void vscode.commands.executeCommand("devkit.restartServer");
                });
            }
        }),
    );
    context.subscriptions.push(...contextKeys(s));
    // Start the daemon in the background; commands wait for it. A failure shows on the status
    // item and once as a notification that says how to fix it.
    ctx.start().catch((e) => void showErrorView(errorView(e, (t) => redactor.redact(t)), () => ctx.log.channel.show(true)));
    return { ctx, monitors, status, secrets, channels: () => ctx.channels, shownErrors, view, flashTarget: (port) => flashTarget(s, port) };
}

/**
 * The context keys the commands' `enablement` and the walkthrough read, kept up to date:
 * `devkit.portSelected`, `devkit.dpsConfigured` (settings), `devkit.hasBuild` (the daemon
 * finds the project's build). `devkit.daemonRunning` follows the daemon (Ctx),
 * `devkit.monitorOpen` the monitors. Changed DPS settings are checked by the daemon.
 */
function contextKeys(s: Services): vscode.Disposable[] {
    const set = (key: string, value: unknown) => void vscode.commands.executeCommand("setContext", key, value);
    const settings = () => {
        const c = config();
        set("devkit.portSelected", !!c.port);
        set("devkit.dpsConfigured", !!c.idScope);
    };
    const builds = async () => {
        const projectDir = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
        const client = s.ctx.client;
        if (!projectDir || !client?.isRunning()) return;
        // The project's build directory, or the folder the user chose for this workspace.
        const buildDir = s.ctx.extCtx.workspaceState.get<string>(CHOSEN_BUILD_DIR);
        const found = await client.sendRequest(ext.findBuild, { projectDir, buildDir }).then(
            () => true,
            () => false,
        );
        set("devkit.hasBuild", found);
    };
    settings();
    // Images and maps appear and go with builds: ask the daemon again (it decides what a build is).
    const watcher = vscode.workspace.createFileSystemWatcher("**/*.{bin,map}");
    return [
        watcher,
        watcher.onDidCreate(() => void builds()),
        watcher.onDidDelete(() => void builds()),
        s.ctx.onRunning(() => {
            void builds();
            // The virtual DevKit the user started runs again (the daemon owns it; a reload restarts the daemon).
            void resumeVirtualDevkit(s);
            void checkDpsSettings(s).catch(() => undefined);
        }),
        vscode.workspace.onDidChangeConfiguration((e) => {
            if (!affects(e)) return;
            settings();
            void checkDpsSettings(s, (key) => affects(e, key)).catch(() => undefined);
        }),
        vscode.workspace.onDidChangeWorkspaceFolders(() => void builds()),
    ];
}

export async function deactivate(): Promise<void> {
    await services?.ctx.stop();
    services = undefined;
}
