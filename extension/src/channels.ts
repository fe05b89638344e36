// Output channels that can never show a secret.
//
// Every secret the extension handles (UDS, Wi-Fi password, DPS connection string) is registered
// with `Redactor` (src/redact.ts) before it is used, and every line written to one of our channels
// (including the language client's log and trace channels, which see request params) goes
// through it. Known secret-bearing JSON fields and secret-shaped text are masked as well, so a
// value registered too late still does not leak. What `append()` gets in pieces (the daemon's
// stderr) goes through a `RedactingStream`: a secret split across two chunks is masked whole.
// The channels also keep a bounded transcript, which the integration tests read.

import * as vscode from "vscode";
import { RedactingStream, Redactor } from "./redact";

export { Redactor } from "./redact";

const TRANSCRIPT_LIMIT = 1 << 20;

/** An OutputChannel that redacts everything written to it and keeps a transcript. */
export class SafeChannel implements vscode.OutputChannel {
    private readonly inner: vscode.OutputChannel;
    private text = "";
    /** `append()`'s pieces: a partial line waits (briefly) for the rest of a secret. */
    private readonly stream: RedactingStream;

    constructor(
        readonly name: string,
        private readonly redactor: Redactor,
        inner?: vscode.OutputChannel,
    ) {
        this.inner = inner ?? vscode.window.createOutputChannel(name);
        this.stream = new RedactingStream(redactor, (safe) => {
            this.keep(safe);
            this.inner.append(safe);
        });
    }

    get transcript(): string {
        return this.text;
    }

    private keep(safe: string): void {
        this.text += safe;
        if (this.text.length > TRANSCRIPT_LIMIT) this.text = this.text.slice(-TRANSCRIPT_LIMIT / 2);
    }

    /** Redacts `s` (after what `append()` holds) and keeps it in the transcript; what may be
     * written. */
    protected record(s: string): string {
        this.stream.flush();
        const safe = this.redactor.redact(s);
        this.keep(safe);
        return safe;
    }

    append(value: string): void {
        this.stream.push(value);
    }
    appendLine(value: string): void {
        // The held partial line ends here: redacted with it (a secret may span them).
        const safe = this.stream.end(value);
        this.keep(safe + "\n");
        this.inner.appendLine(safe);
    }
    replace(value: string): void {
        this.stream.discard();
        this.text = "";
        this.inner.replace(this.record(value));
    }
    clear(): void {
        this.stream.discard();
        this.inner.clear();
    }
    show(columnOrPreserve?: vscode.ViewColumn | boolean, preserveFocus?: boolean): void {
        if (typeof columnOrPreserve === "boolean" || columnOrPreserve === undefined) this.inner.show(columnOrPreserve);
        else this.inner.show(columnOrPreserve, preserveFocus);
    }
    hide(): void {
        this.inner.hide();
    }
    dispose(): void {
        this.stream.flush();
        this.inner.dispose();
    }
}

export type LogLevelName = "trace" | "debug" | "info" | "warn" | "error";

/**
 * The extension's own log: a LogOutputChannel (levels, timestamps, the user's log level from
 * "Developer: Set Log Level...") behind the same redaction and transcript as SafeChannel.
 */
export class Log {
    readonly channel: SafeLogChannel;

    constructor(name: string, redactor: Redactor) {
        this.channel = new SafeLogChannel(name, redactor);
    }

    trace(msg: string): void {
        this.channel.log("trace", msg);
    }
    debug(msg: string): void {
        this.channel.log("debug", msg);
    }
    info(msg: string): void {
        this.channel.log("info", msg);
    }
    warn(msg: string): void {
        this.channel.log("warn", msg);
    }
    error(msg: string): void {
        this.channel.log("error", msg);
    }
}

/** A redacting LogOutputChannel (`createOutputChannel(name, { log: true })`). */
export class SafeLogChannel extends SafeChannel {
    private readonly logChannel: vscode.LogOutputChannel;

    constructor(name: string, redactor: Redactor) {
        const inner = vscode.window.createOutputChannel(name, { log: true });
        super(name, redactor, inner);
        this.logChannel = inner;
    }

    /** The level the user chose for this channel (Developer: Set Log Level...). */
    get logLevel(): vscode.LogLevel {
        return this.logChannel.logLevel;
    }

    log(level: LogLevelName, msg: string): void {
        const safe = this.record(`[${level}] ${msg}\n`).slice(0, -1).replace(/^\[\w+\] /, "");
        this.logChannel[level](safe);
    }
}
