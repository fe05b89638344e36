// Output channels that can never show a secret.
//
// Every secret the extension handles (UDS, Wi-Fi password, DPS connection string) is registered
// with `Redactor` before it is used, and every line written to one of our channels (including the
// language client's log and trace channels, which see request params) goes through it. Known
// secret-bearing JSON fields are masked as well, so a value registered too late still does not
// leak. The channels also keep a bounded transcript, which the integration tests read.

import * as vscode from "vscode";

const SECRET_FIELDS = /("(?:uds|password|wifiPassword|connectionString|hubConnectionString|sharedAccessKey|primaryKey|secondaryKey)"\s*:\s*)"(?:[^"\\]|\\.)*"/gi;
/** `devkit/validateInput` params for a secret input (the client sends `input` before `value`). */
const SECRET_VALUE = /("input"\s*:\s*"(?:uds|connectionString|hubConnectionString)"\s*,\s*"value"\s*:\s*)"(?:[^"\\]|\\.)*"/gi;
const SAS_KEY = /(SharedAccessKey=)[^;"\s]+/gi;
/** Masked console commands typed or pasted into the monitor (their argument is a secret). */
const MASKED_COMMAND = /((?:set_dps_uds|set_wifipwd)\s+)[^\s"\\]+/gi;

export class Redactor {
    private readonly secrets = new Set<string>();

    /** Remember a secret so that it is masked wherever it would be written. */
    add(secret: string | undefined): void {
        if (!secret || secret.length < 6) return;
        this.secrets.add(secret);
        // The UDS is hex: mask it in both cases.
        this.secrets.add(secret.toLowerCase());
        this.secrets.add(secret.toUpperCase());
    }

    redact(text: string): string {
        let out = text.replace(SECRET_FIELDS, '$1"***"').replace(SECRET_VALUE, '$1"***"').replace(SAS_KEY, "$1***").replace(MASKED_COMMAND, "$1***");
        for (const s of this.secrets) {
            if (out.includes(s)) out = out.split(s).join("***");
        }
        return out;
    }
}

const TRANSCRIPT_LIMIT = 1 << 20;

/** An OutputChannel that redacts everything written to it and keeps a transcript. */
export class SafeChannel implements vscode.OutputChannel {
    private readonly inner: vscode.OutputChannel;
    private text = "";

    constructor(
        readonly name: string,
        private readonly redactor: Redactor,
        inner?: vscode.OutputChannel,
    ) {
        this.inner = inner ?? vscode.window.createOutputChannel(name);
    }

    get transcript(): string {
        return this.text;
    }

    /** Redacts `s` and keeps it in the transcript; what may be written. */
    protected record(s: string): string {
        const safe = this.redactor.redact(s);
        this.text += safe;
        if (this.text.length > TRANSCRIPT_LIMIT) this.text = this.text.slice(-TRANSCRIPT_LIMIT / 2);
        return safe;
    }

    append(value: string): void {
        this.inner.append(this.record(value));
    }
    appendLine(value: string): void {
        this.inner.appendLine(this.record(value + "\n").slice(0, -1));
    }
    replace(value: string): void {
        this.text = "";
        this.inner.replace(this.record(value));
    }
    clear(): void {
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
