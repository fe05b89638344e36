// What the extension's output channels may show: never a secret. No `vscode` import here, so
// `node --test` runs its unit tests without a VS Code (test/unit/redact.test.ts).
//
// Masked as `***`:
// - every secret registered with `Redactor.add` (UDS, Wi-Fi password, connection string and its
//   key), in any case; a hex secret (a UDS) also as a dump, its bytes apart (`AB CD ..`,
//   `ab:cd:..`, `0xab, 0xcd, ..`, `19e2 5a25 ..`); a base64 key with or without its `=` padding
//   and URL-encoded (`%2B`, `%2F`, `%3D`);
// - whatever is shaped like one, registered or not: 64 hex digits in any case (a UDS; a SHA-256
//   right after a "thumbprint" or "SHA-256" label is kept), a hex dump of 16 bytes or more
//   (groups of 2, 4 or 8 digits between spaces, colons, dashes or commas), a base64 key of 32 or
//   64 bytes with or without padding, the value of `SharedAccessKey=`, known secret JSON fields
//   and the argument of the console's secret commands.
//
// `RedactingStream` carries this across chunk boundaries: a secret split over two `append()`
// calls is masked whole (see there).

export const MASK = "***";

const SECRET_FIELDS = /("(?:uds|password|wifiPassword|connectionString|hubConnectionString|sharedAccessKey|primaryKey|secondaryKey)"\s*:\s*)"(?:[^"\\]|\\.)*"/gi;
/** `devkit/validateInput` params for a secret input (the client sends `input` before `value`). */
const SECRET_VALUE = /("input"\s*:\s*"(?:uds|connectionString|hubConnectionString)"\s*,\s*"value"\s*:\s*)"(?:[^"\\]|\\.)*"/gi;
const SAS_KEY = /(SharedAccessKey=)[^;"\s]+/gi;
/** Masked console commands typed or pasted into the monitor (their argument is a secret). */
const MASKED_COMMAND = /((?:set_dps_uds|set_wifipwd)\s+)[^\s"\\]+/gi;

/** What may stand between the bytes of a hex dump (up to 3 of them: `", "`, `"  "`). */
const SEP = "[ :,\\-]{1,3}";
const HEX_GROUP = (w: number) => `(?:0x)?[0-9a-f]{${w}}`;
/** A run of `n` groups of `w` hex digits with separators, alone (not inside a word). */
const dump = (w: number, n: number) => `${HEX_GROUP(w)}(?:${SEP}${HEX_GROUP(w)}){${n - 1},}`;
/** Hex dumps of at least 16 bytes; 64 hex digits in a row (a UDS) unless a label says it is a
 * thumbprint. Not inside a word: `(?<![\w])` / `(?![\w])`. */
const HEX_SHAPES = new RegExp(
    `(?<![0-9A-Za-z_])(?:${dump(2, 16)}|${dump(4, 8)}|${dump(8, 4)}|(?<!(?:thumbprint|sha-?256)["'\\\\]*\\s*[:=]?\\s*["'\\\\]*)[0-9a-f]{64})(?![0-9A-Za-z_])`,
    "gi",
);
/** A base64 key of 32 or 64 bytes, padded or not, with digits and both cases (not a path). */
const KEY_SHAPE = /(?<![A-Za-z0-9+/=])(?=[A-Za-z0-9+/]*[0-9])(?=[A-Za-z0-9+/]*[a-z])(?=[A-Za-z0-9+/]*[A-Z])(?:[A-Za-z0-9+/]{43}=?|[A-Za-z0-9+/]{86}(?:==)?)(?![A-Za-z0-9+/=])/g;

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");

/** The pattern that finds `secret` in the forms it may be printed in. */
function secretPattern(secret: string): RegExp {
    if (/^[0-9a-f]+$/i.test(secret) && secret.length % 2 === 0) {
        // Hex (a UDS): any case, bytes apart with separators, each byte with `0x` or not.
        const bytes = secret.match(/../g) ?? [];
        return new RegExp(`(?:0x)?${bytes.join(`(?:${SEP}(?:0x)?)?`)}`, "gi");
    }
    if (secret.length >= 20 && /^[A-Za-z0-9+/]+={0,2}$/.test(secret)) {
        // Base64 (a SAS key): with or without its padding, and URL-encoded.
        const core = secret.replace(/=+$/, "");
        const body = [...core].map((c) => (c === "+" ? "(?:\\+|%2B)" : c === "/" ? "(?:/|%2F)" : c)).join("");
        return new RegExp(`${body}(?:=|%3D){0,2}`, "gi");
    }
    return new RegExp(escape(secret), "gi");
}

export class Redactor {
    private readonly secrets = new Map<string, RegExp>();

    /** Remember a secret so that it is masked wherever it would be written. */
    add(secret: string | undefined): void {
        if (!secret || secret.length < 6 || this.secrets.has(secret)) return;
        this.secrets.set(secret, secretPattern(secret));
    }

    redact(text: string): string {
        let out = text.replace(SECRET_FIELDS, '$1"***"').replace(SECRET_VALUE, '$1"***"').replace(SAS_KEY, "$1***").replace(MASKED_COMMAND, "$1***");
        for (const p of this.secrets.values()) out = out.replace(p, MASK);
        return out.replace(HEX_SHAPES, MASK).replace(KEY_SHAPE, MASK);
    }
}

/** The longest partial line a stream holds back; a longer one is cut where no secret can be. */
export const MAX_HOLD = 1024;
/** How long a partial line waits for the rest before it is written anyway. */
export const HOLD_MS = 200;

/** Characters a secret (or its separators, label or encoding) may be made of. */
const SECRETISH = /[A-Za-z0-9+/=%:,_\-]/;
/** Hex groups with separators at the end of a text: a dump whose bytes are apart. */
const DUMP_TAIL = /(?:(?:0x)?[0-9a-f]{1,8}[ :,\-]{1,3})+$/i;

/** Where the run of text that could be (the start of) a secret ends `text[from..]`: its
 * trailing secret-like characters, and the hex groups of a dump before them. */
function secretTail(text: string, from: number): number {
    let start = text.length;
    while (start > from && SECRETISH.test(text[start - 1])) start--;
    const before = text.slice(Math.max(from, start - MAX_HOLD), start);
    return start - (DUMP_TAIL.exec(before)?.[0].length ?? 0);
}

/**
 * Redacts a stream of chunks (a process's stderr as `append()` gets it): complete lines are
 * redacted and written at once; a partial line is held back until its end arrives, `HOLD_MS`
 * pass, or `flush()`. A secret split across two chunks is thus redacted whole. A partial line
 * longer than `MAX_HOLD` is written up to the start of its last word-like run, which stays held
 * (a secret is one run of such characters, or separators and hex groups).
 */
export class RedactingStream {
    private held = "";
    private timer: ReturnType<typeof setTimeout> | undefined;

    constructor(
        private readonly redactor: Redactor,
        /** Receives what may be written (already redacted). */
        private readonly write: (safe: string) => void,
        private readonly holdMs = HOLD_MS,
    ) {}

    push(chunk: string): void {
        const text = this.held + chunk;
        let cut = text.lastIndexOf("\n") + 1;
        if (text.length - cut > MAX_HOLD) {
            // A long partial line: hold only what could be a secret (unless that is too long
            // to be one).
            const start = secretTail(text, cut);
            cut = text.length - start > MAX_HOLD ? text.length : start;
        }
        this.held = text.slice(cut);
        this.out(text.slice(0, cut));
        this.schedule();
    }

    /** Write what is held (redacted as it is). */
    flush(): void {
        if (this.timer !== undefined) clearTimeout(this.timer);
        this.timer = undefined;
        const held = this.held;
        this.held = "";
        this.out(held);
    }

    /** What is held and `rest`, redacted together and no longer held (for a caller that writes
     * it itself, e.g. as a line). */
    end(rest: string): string {
        const text = this.held + rest;
        this.discard();
        return this.redactor.redact(text);
    }

    /** Forget what is held (the channel was cleared). */
    discard(): void {
        if (this.timer !== undefined) clearTimeout(this.timer);
        this.timer = undefined;
        this.held = "";
    }

    private out(text: string): void {
        if (text) this.write(this.redactor.redact(text));
    }

    private schedule(): void {
        if (this.timer !== undefined) clearTimeout(this.timer);
        this.timer = this.held ? setTimeout(() => this.flush(), this.holdMs) : undefined;
    }
}
