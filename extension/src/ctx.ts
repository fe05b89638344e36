// The running daemon and everything tied to its life: the language client, the health status
// item (rust-analyzer style: spinner while starting, warning/error with a tooltip that links to
// the logs and to restart), bounded restarts after crashes.

import * as vscode from "vscode";
import * as lc from "vscode-languageclient/node";
import { findServer, ServerBinary } from "./bootstrap";
import { Log, Redactor, SafeChannel } from "./channels";
import { config, initializationOptions } from "./config";
import * as ext from "./lsp_ext";

/**
 * The files the daemon gets to see: the sketch (`*.ino`, `dps_config.h`), only within the
 * workspace's folders (the daemon has nothing to say about other C/C++ files, nor about
 * sketches opened from elsewhere). Document filters take string globs only: absolute ones,
 * with forward slashes. A folder whose path holds glob characters, or no folder at all: any
 * sketch file.
 */
export function sketchSelector(folders: readonly { uri: vscode.Uri }[]): lc.DocumentSelector {
    const patterns = ["*.ino", "dps_config.h"];
    const roots = folders.map((f) => f.uri.fsPath.replace(/\\/g, "/").replace(/\/+$/, ""));
    if (!roots.length || roots.some((r) => /[*?[\]{}!]/.test(r))) return patterns.map((p) => ({ scheme: "file", pattern: `**/${p}` }));
    return roots.flatMap((r) => patterns.map((p) => ({ scheme: "file", pattern: `${r}/**/${p}` })));
}

/** At most this many automatic restarts within RESTART_WINDOW_MS, then we stop and say so. */
const MAX_RESTARTS = 3;
const RESTART_WINDOW_MS = 3 * 60_000;

export type Health = "starting" | "ok" | "warning" | "error" | "stopped";

export class Ctx implements vscode.Disposable {
    client: lc.LanguageClient | undefined;
    server: ServerBinary | undefined;
    health: Health = "stopped";
    healthMessage = "";
    lastStatus: ext.StatusParams | undefined;

    readonly log: Log;
    readonly serverChannel: SafeChannel;
    readonly traceChannel: SafeChannel;
    private readonly healthItem: vscode.StatusBarItem;
    private readonly crashes: number[] = [];
    private readonly disposables: vscode.Disposable[] = [];
    private readonly clientDisposables: vscode.Disposable[] = [];
    private readonly onCreatedEmitter = new vscode.EventEmitter<lc.LanguageClient>();
    /** Fires for each new client before it starts: register notification handlers here. */
    readonly onClientCreated = this.onCreatedEmitter.event;
    private readonly onRunningEmitter = new vscode.EventEmitter<lc.LanguageClient>();
    /** Fires each time the daemon is running again (first start, automatic restart, restart). */
    readonly onRunning = this.onRunningEmitter.event;
    private starting: Promise<void> | undefined;
    private running: boolean | undefined;

    constructor(
        readonly extCtx: vscode.ExtensionContext,
        readonly redactor: Redactor,
    ) {
        this.log = new Log("DevKit", redactor);
        this.serverChannel = new SafeChannel("DevKit Daemon", redactor);
        this.traceChannel = new SafeChannel("DevKit Daemon Trace", redactor);
        this.healthItem = vscode.window.createStatusBarItem("devkit.health", vscode.StatusBarAlignment.Left, 100);
        this.healthItem.name = "DevKit Daemon";
        this.healthItem.command = "devkit.serverStatus";
        this.disposables.push(this.healthItem, this.log.channel, this.serverChannel, this.traceChannel, this.onCreatedEmitter, this.onRunningEmitter);
        this.setHealth("stopped", "not started");
        this.healthItem.show();
    }

    get channels(): SafeChannel[] {
        return [this.log.channel, this.serverChannel, this.traceChannel];
    }

    setHealth(health: Health, message: string): void {
        // `devkit.daemonRunning`, for when clauses (commands stay enabled: without a daemon they say so, with its fix).
        const up = (health === "ok" || health === "warning") && !!this.client?.isRunning();
        if (up !== this.running) {
            this.running = up;
            void vscode.commands.executeCommand("setContext", "devkit.daemonRunning", up);
        }
        this.health = health;
        this.healthMessage = message;
        const icon = {
            starting: "$(loading~spin)",
            ok: "$(circuit-board)",
            warning: "$(warning)",
            error: "$(error)",
            stopped: "$(stop-circle)",
        }[health];
        this.healthItem.text = `${icon} DevKit`;
        this.healthItem.backgroundColor =
            health === "error"
                ? new vscode.ThemeColor("statusBarItem.errorBackground")
                : health === "warning"
                  ? new vscode.ThemeColor("statusBarItem.warningBackground")
                  : undefined;
        const md = new vscode.MarkdownString("", true);
        md.isTrusted = { enabledCommands: ["devkit.showLogs", "devkit.restartServer"] };
        md.appendMarkdown(`**DevKit daemon**: ${health}\n\n`);
        if (this.server) md.appendText(`${this.server.version} (${this.server.source}: ${this.server.path})\n\n`);
        if (message) md.appendText(message + "\n\n");
        const running = this.lastStatus?.running ?? [];
        if (running.length) {
            md.appendText(`Running: ${running.map((r) => `${r.method}${r.resources.length ? ` (${r.resources.join(", ")})` : ""}`).join("; ")}\n\n`);
        }
        md.appendMarkdown("[$(output) Show logs](command:devkit.showLogs) · [$(debug-restart) Restart daemon](command:devkit.restartServer)");
        this.healthItem.tooltip = md;
    }

    /** Starts the daemon if needed; resolves when it is running (rejects with a clear message). */
    async start(): Promise<void> {
        if (this.client?.isRunning()) return;
        this.starting ??= this.doStart().finally(() => (this.starting = undefined));
        return this.starting;
    }

    private async doStart(): Promise<void> {
        this.setHealth("starting", "starting…");
        try {
            this.server = await findServer(config().serverPath, this.extCtx.extensionPath);
        } catch (e) {
            const msg = (e as Error).message;
            this.setHealth("error", msg);
            this.log.error(msg);
            throw e;
        }
        this.log.info(`daemon: ${this.server.version} from ${this.server.source} (${this.server.path})`);
        const cwd = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
        const run: lc.Executable = {
            command: this.server.path,
            args: ["lsp"],
            options: { cwd, env: { ...process.env, RUST_BACKTRACE: "1" } },
        };
        const clientOptions: lc.LanguageClientOptions = {
            documentSelector: sketchSelector(vscode.workspace.workspaceFolders ?? []),
            outputChannel: this.serverChannel,
            traceOutputChannel: this.traceChannel,
            revealOutputChannelOn: lc.RevealOutputChannelOn.Never,
            initializationOptions: initializationOptions(),
            errorHandler: {
                error: (_error, _message, count) => ({
                    action: (count ?? 0) <= 3 ? lc.ErrorAction.Continue : lc.ErrorAction.Shutdown,
                }),
                closed: () => this.onClosed(),
            },
            markdown: { isTrusted: false },
        };
        const client = new lc.LanguageClient("devkitDps", "DevKit Daemon", { run, debug: run }, clientOptions);
        this.client = client;
        this.clientDisposables.push(
            client.onDidChangeState((e) => {
                if (e.newState === lc.State.Running) {
                    this.setHealth("ok", "running");
                    this.onRunningEmitter.fire(client);
                }
                else if (e.newState === lc.State.Starting) this.setHealth("starting", "starting…");
            }),
            client.onNotification(ext.status, (p) => {
                this.lastStatus = p;
                const h: Health = p.health === "error" ? "error" : p.health === "warning" ? "warning" : "ok";
                this.setHealth(h, p.message ?? "");
            }),
        );
        this.onCreatedEmitter.fire(client);
        try {
            await client.start();
        } catch (e) {
            const msg = `The DevKit daemon did not start: ${(e as Error).message}`;
            this.setHealth("error", msg);
            this.log.error(msg);
            throw new Error(msg);
        }
        this.setHealth("ok", "running");
        this.log.info("daemon started");
    }

    /** The daemon's process ended. Restart a bounded number of times, then explain. */
    private onClosed(): lc.CloseHandlerResult {
        const now = Date.now();
        this.crashes.push(now);
        while (this.crashes.length && now - this.crashes[0] > RESTART_WINDOW_MS) this.crashes.shift();
        if (this.crashes.length <= MAX_RESTARTS) {
            const msg = `The DevKit daemon stopped unexpectedly; restarting (${this.crashes.length}/${MAX_RESTARTS}).`;
            this.log.warn(msg);
            this.setHealth("warning", msg);
            return { action: lc.CloseAction.Restart, message: msg, handled: true };
        }
        const msg = `The DevKit daemon stopped ${this.crashes.length} times in ${RESTART_WINDOW_MS / 60_000} minutes; it will not be restarted automatically.`;
        this.log.error(msg);
        this.setHealth("error", msg);
        void vscode.window.showErrorMessage(msg, "Show Logs", "Restart").then((pick) => {
            if (pick === "Show Logs") this.serverChannel.show(true);
            if (pick === "Restart") void vscode.commands.executeCommand("devkit.restartServer");
        });
        return { action: lc.CloseAction.DoNotRestart, handled: true };
    }

    async restart(): Promise<void> {
        this.crashes.length = 0;
        await this.stop();
        await this.start();
    }

    async stop(): Promise<void> {
        const c = this.client;
        this.client = undefined;
        for (const d of this.clientDisposables.splice(0)) d.dispose();
        if (c) {
            try {
                await c.dispose(5000);
            } catch (e) {
                this.log.warn(`stopping the daemon: ${(e as Error).message}`);
            }
        }
        this.setHealth("stopped", "stopped");
    }

    /** The running client, starting the daemon first if needed. */
    async ready(): Promise<lc.LanguageClient> {
        await this.start();
        if (!this.client) throw new Error("The DevKit daemon is not running.");
        return this.client;
    }

    dispose(): void {
        void this.stop();
        for (const d of this.disposables) d.dispose();
    }
}
