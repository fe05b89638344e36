// The serial monitor: one terminal per port, fed by `devkit/serialData`, typing sent with
// `devkit/monitor/send`.
//
// The daemon owns the port: it pauses the monitor around uploads and console commands and keeps
// reading across device resets, so the terminal never has to be reopened (the complaint users of
// other extensions have). When the daemon itself restarts, open monitors are re-opened.

import * as vscode from "vscode";
import { affects, config, LineEnding } from "./config";
import { Ctx } from "./ctx";
import * as ext from "./lsp_ext";

export type { LineEnding } from "./config";

export function eolString(e: LineEnding): string {
    return { cr: "\r", lf: "\n", crlf: "\r\n", none: "\r" }[e] ?? "\r";
}

/**
 * Turns chunks of device output into terminal text: CRLF line ends, optional timestamps at the
 * start of each line (tracked across chunks, since a line may arrive in pieces).
 */
export class LineFormatter {
    private atLineStart = true;
    private pendingCr = false;

    constructor(public timestamps: boolean) {}

    format(text: string, now: () => Date = () => new Date()): string {
        let out = "";
        for (const ch of text) {
            if (this.pendingCr && ch !== "\n") {
                // A lone CR: return to the start of the line (progress bars, erase sequences).
                out += "\r";
            }
            this.pendingCr = false;
            if (ch === "\r") {
                this.pendingCr = true;
                continue;
            }
            if (ch === "\n") {
                out += "\r\n";
                this.atLineStart = true;
                continue;
            }
            if (this.atLineStart && this.timestamps) out += `\x1b[2m[${now().toTimeString().slice(0, 8)}.${String(now().getMilliseconds()).padStart(3, "0")}]\x1b[0m `;
            this.atLineStart = false;
            out += ch;
        }
        return out;
    }
}

class MonitorTerminal implements vscode.Pseudoterminal {
    private readonly writeEmitter = new vscode.EventEmitter<string>();
    private readonly closeEmitter = new vscode.EventEmitter<void>();
    readonly onDidWrite = this.writeEmitter.event;
    readonly onDidClose = this.closeEmitter.event;
    private opened = false;
    private backlog: string[] = [];
    /** Everything shown, without escapes (the tests read it). */
    transcript = "";
    terminal: vscode.Terminal | undefined;
    readonly formatter: LineFormatter;
    private sending: Promise<void> = Promise.resolve();

    constructor(
        readonly port: string,
        private readonly mgr: MonitorManager,
    ) {
        this.formatter = new LineFormatter(mgr.settings().timestamps);
    }

    open(): void {
        this.opened = true;
        for (const s of this.backlog) this.writeEmitter.fire(s);
        this.backlog = [];
    }

    close(): void {
        // The user closed the terminal: release the port.
        this.mgr.onTerminalClosed(this);
    }

    write(s: string): void {
        if (this.opened) this.writeEmitter.fire(s);
        else this.backlog.push(s);
    }

    /** Device output. */
    data(text: string): void {
        this.transcript += text;
        if (this.transcript.length > 1 << 20) this.transcript = this.transcript.slice(-(1 << 19));
        this.write(this.formatter.format(text));
    }

    /** A line from the monitor itself (not the device), dimmed. */
    note(text: string): void {
        const lead = this.transcript.endsWith("\n") || this.transcript === "" ? "" : "\r\n";
        this.transcript += `${lead}--- ${text} ---\n`;
        this.write(`${lead}\x1b[2m--- ${text} ---\x1b[0m\r\n`);
        this.formatter.format("\n");
    }

    clear(): void {
        this.transcript = "";
        this.write("\x1b[2J\x1b[3J\x1b[H");
    }

    handleInput(data: string): void {
        const eol = eolString(this.mgr.settings().lineEnding);
        const text = data.replace(/\r/g, eol);
        // Keep the order of keystrokes: one send at a time.
        this.sending = this.sending.then(() => this.mgr.send(this.port, text)).catch((e) => this.note(`send failed: ${(e as Error).message}`));
    }

    dispose(): void {
        this.writeEmitter.dispose();
        this.closeEmitter.dispose();
    }

    end(): void {
        this.closeEmitter.fire();
    }
}

/** What holds the port, in a person's words (the monitor never shows protocol method names). */
export function pausedFor(method: string): string {
    switch (method) {
        case ext.setUds.method:
            return "the UDS push";
        case ext.setWifi.method:
            return "the Wi-Fi settings";
        case ext.upload.method:
        case ext.deviceUpload.method:
            return "the upload";
        case ext.provision.method:
            return "provisioning";
        default:
            return "another DevKit command";
    }
}

/** What a monitor explains a 401002 with (`devkit/monitor/open`): empty when no DPS connection is known. */
export type DpsConnection = Pick<ext.MonitorOpenParams, "connectionString" | "caFile" | "projectDir">;

export class MonitorManager implements vscode.Disposable {
    private readonly terminals = new Map<string, MonitorTerminal>();
    /**
     * The DPS connection the user gave Enroll (secret storage) with the project: the daemon then
     * explains a 401002 the device reports. Set by the extension's activation.
     */
    dpsConnection: () => Promise<DpsConnection> = async () => ({});
    private readonly changeEmitter = new vscode.EventEmitter<void>();
    readonly onDidChange = this.changeEmitter.event;
    private readonly disposables: vscode.Disposable[] = [this.changeEmitter];

    constructor(private readonly ctx: Ctx) {
        this.disposables.push(
            ctx.onClientCreated((client) => {
                client.onNotification(ext.serialData, (p) => this.terminals.get(p.port)?.data(p.text));
                client.onNotification(ext.status, (p) => this.onStatus(p));
            }),
            ctx.onRunning(() => void this.reopenAll()),
            vscode.workspace.onDidChangeConfiguration((e) => {
                if (affects(e, "serial.timestamps")) {
                    for (const t of this.terminals.values()) t.formatter.timestamps = this.settings().timestamps;
                }
            }),
        );
    }

    settings(): { lineEnding: LineEnding; timestamps: boolean; baudRate: number } {
        const c = config();
        return { lineEnding: c.lineEnding, timestamps: c.timestamps, baudRate: c.baudRate };
    }

    isOpen(port?: string): boolean {
        return port ? this.terminals.has(port) : this.terminals.size > 0;
    }

    openPorts(): string[] {
        return [...this.terminals.keys()];
    }

    transcript(port: string): string {
        return this.terminals.get(port)?.transcript ?? "";
    }

    /** Per port: whether a pause is noted in its terminal, and the daemon's pause count then. */
    private pausedNoted = new Map<string, { paused: boolean; pauses: number }>();

    private onStatus(p: ext.StatusParams): void {
        for (const m of p.monitors ?? []) {
            const t = this.terminals.get(m.port);
            if (!t) continue;
            const pauses = m.pauses ?? 0;
            const was = this.pausedNoted.get(m.port) ?? { paused: false, pauses };
            const now = !!m.paused;
            // Status is coalesced: a pause that began and ended between two notifications shows
            // only as a higher count, and is noted (paused, then resumed) all the same.
            const missed = !was.paused && pauses > was.pauses;
            if (now && !was.paused) {
                const by = [...new Set(p.running.filter((r) => r.resources.includes(`port:${m.port}`)).map((r) => pausedFor(r.method)))];
                t.note(`monitor paused${by.length ? ` for ${by.join(", ")}` : ""}`);
            } else if (!now && (was.paused || missed)) {
                if (missed) t.note("monitor paused");
                t.note("monitor resumed");
            }
            this.pausedNoted.set(m.port, { paused: now, pauses });
        }
    }

    async open(port: string, show = true): Promise<vscode.Terminal> {
        let t = this.terminals.get(port);
        if (!t) {
            const client = await this.ctx.ready();
            const term = new MonitorTerminal(port, this);
            this.terminals.set(port, term);
            try {
                await client.sendRequest(ext.monitorOpen, { port, baudRate: this.settings().baudRate, ...(await this.dpsConnection()) });
            } catch (e) {
                this.terminals.delete(port);
                term.dispose();
                throw e;
            }
            term.terminal = vscode.window.createTerminal({
                name: `DevKit Monitor (${port})`,
                pty: term,
                iconPath: new vscode.ThemeIcon("plug"),
            });
            term.note(`monitor on ${port} at ${this.settings().baudRate} baud; Enter sends ${this.settings().lineEnding.toUpperCase()}`);
            t = term;
            this.ctx.log.info(`monitor opened on ${port}`);
            void vscode.commands.executeCommand("setContext", "devkit.monitorOpen", true);
            this.changeEmitter.fire();
        }
        if (show) t.terminal?.show(true);
        // `t.terminal` is set above before the terminal is registered.
        return t.terminal as vscode.Terminal;
    }

    async close(port: string): Promise<void> {
        const t = this.terminals.get(port);
        if (!t) return;
        this.terminals.delete(port);
        t.end();
        t.terminal?.dispose();
        await this.release(port);
    }

    onTerminalClosed(t: MonitorTerminal): void {
        if (this.terminals.get(t.port) !== t) return;
        this.terminals.delete(t.port);
        void this.release(t.port);
    }

    private async release(port: string): Promise<void> {
        void vscode.commands.executeCommand("setContext", "devkit.monitorOpen", this.terminals.size > 0);
        this.changeEmitter.fire();
        this.ctx.log.info(`monitor closed on ${port}`);
        if (this.ctx.client?.isRunning()) {
            try {
                await this.ctx.client.sendRequest(ext.monitorClose, { port });
            } catch (e) {
                this.ctx.log.warn(`closing the monitor on ${port}: ${(e as Error).message}`);
            }
        }
    }

    clear(port?: string): void {
        for (const [p, t] of this.terminals) if (!port || p === port) t.clear();
    }

    async send(port: string, text: string): Promise<void> {
        const client = await this.ctx.ready();
        // The line ending is already applied to what was typed: send the bytes as they are.
        await client.sendRequest(ext.monitorSend, { port, text, lineEnding: "none" });
    }

    /** The DPS connection changed (stored or forgotten): open monitors learn it (the call is idempotent). */
    async updateDpsConnection(): Promise<void> {
        const client = this.ctx.client;
        if (!client?.isRunning()) return;
        const dps = await this.dpsConnection();
        for (const port of this.terminals.keys()) {
            await client.sendRequest(ext.monitorOpen, { port, baudRate: this.settings().baudRate, ...dps }).catch((e) => {
                this.ctx.log.warn(`monitor on ${port}: ${(e as Error).message}`);
            });
        }
    }

    /** After a daemon restart, ask it to watch the ports whose terminals are still open. */
    private async reopenAll(): Promise<void> {
        const client = this.ctx.client;
        if (!client) return;
        for (const [port, t] of this.terminals) {
            try {
                await client.sendRequest(ext.monitorOpen, { port, baudRate: this.settings().baudRate, ...(await this.dpsConnection()) });
                t.note("daemon restarted; monitor reconnected");
            } catch (e) {
                t.note(`could not reconnect: ${(e as Error).message}`);
            }
        }
    }

    dispose(): void {
        for (const t of this.terminals.values()) {
            t.end();
            t.terminal?.dispose();
        }
        this.terminals.clear();
        for (const d of this.disposables) d.dispose();
    }
}
