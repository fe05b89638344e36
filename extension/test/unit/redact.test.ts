// Unit tests of src/redact.ts in plain Node (`npm run test:unit`, and `npm test` before the
// in-host suite): what the output channels mask, across chunk boundaries too.

import assert from "node:assert/strict";
import { test } from "node:test";
import { HOLD_MS, MAX_HOLD, RedactingStream, Redactor } from "../../src/redact";

const UDS = "19e25a259d0c2be03a02d416c05c48ccd0cc7d1743458aae1cb488b074993eae";
/** A 32-byte SAS key as DPS shows it (one `=` of padding). */
const KEY = "nz68jY29+MgnH9ZWoIKeQKC6iM1FhuOdzB9y7GITj4M=";
const BYTES = UDS.match(/../g) as string[];

/** Whether `out` shows 4 consecutive bytes of `hex`, in any case, separator or `0x` form. */
function showsHex(out: string, hex: string): boolean {
    const flat = out.toLowerCase().replace(/0x/g, "").replace(/[ :,-]/g, "");
    for (let i = 0; i + 8 <= hex.length; i += 2) if (flat.includes(hex.slice(i, i + 8).toLowerCase())) return true;
    return false;
}

/** Whether `out` shows 12 consecutive characters of the base64 `key` (padding aside). */
function showsKey(out: string, key: string): boolean {
    const core = key.replace(/=+$/, "");
    for (let i = 0; i + 12 <= core.length; i++) if (out.includes(core.slice(i, i + 12))) return true;
    return false;
}

const mixedCase = (s: string) => [...s].map((c, i) => (i % 3 === 0 ? c.toUpperCase() : c)).join("");

/** The forms a UDS gets printed in. */
const udsForms = (hex: string): string[] => {
    const b = hex.match(/../g) as string[];
    const words = (n: number) => hex.match(new RegExp(`.{${n}}`, "g")) as string[];
    return [
        hex.toUpperCase(),
        mixedCase(hex),
        b.join(" "),
        b.join(":").toUpperCase(),
        mixedCase(b.join(":")),
        b.join("-"),
        `0x${b.join(", 0x")}`,
        words(4).join(" "),
        words(8).join(" "),
    ];
};

/** Everything a stream writes for `chunks`, flushed at the end. */
function streamed(r: Redactor, chunks: string[]): string {
    let out = "";
    const s = new RedactingStream(r, (safe) => (out += safe), 60_000);
    for (const c of chunks) s.push(c);
    s.flush();
    return out;
}

void test("a registered UDS is masked in any case, separator and 0x form", () => {
    const r = new Redactor();
    r.add(UDS);
    for (const form of udsForms(UDS)) {
        const out = r.redact(`uds is ${form} here`);
        assert.ok(!showsHex(out, UDS), `${form} -> ${out}`);
        assert.ok(out.startsWith("uds is ***") && out.endsWith(" here"), out);
    }
});

void test("an unregistered UDS is masked by its shape; thumbprints, UUIDs and MACs are kept", () => {
    const r = new Redactor();
    for (const form of udsForms(UDS)) {
        const out = r.redact(`device said ${form}.`);
        assert.ok(!showsHex(out, UDS), `${form} -> ${out}`);
    }
    // Half a UDS a line, as hexdump prints it.
    const dump = `00000000  ${BYTES.slice(0, 8).join(" ")}  ${BYTES.slice(8, 16).join(" ")}  |..Z%..+.:....\\H.|`;
    assert.ok(!showsHex(r.redact(dump), UDS.slice(0, 32)), r.redact(dump));
    for (const kept of [
        `"sha256Thumbprint":"${UDS.toUpperCase()}"`,
        `thumbprint: ${UDS.toUpperCase()} (SHA-256; SHA-1 ...)`,
        `DevKit alias certificate SHA-256: ${UDS.toUpperCase()}`,
        "Tracking ID:f40da7ba-8c91-4796-8fc3-89e1dfbdbe05",
        "DevKit MAC Address: c0:bd:d1:a2:b3:c4",
        "at 2026-12-03T16:47:00.123Z in /home/user/projects/DevKitDPS/build/output/firmware",
    ]) {
        assert.equal(r.redact(kept), kept);
    }
});

void test("a key is masked with or without its = padding, URL-encoded too", () => {
    const r = new Redactor();
    r.add(KEY);
    const bare = KEY.replace(/=+$/, "");
    for (const form of [KEY, bare, encodeURIComponent(KEY), encodeURIComponent(bare)]) {
        const out = r.redact(`key ${form};`);
        assert.ok(!showsKey(out, KEY) && !out.includes("%2B"), `${form} -> ${out}`);
    }
    // Unregistered: by shape (32 and 64 bytes, padded or not).
    const fresh = new Redactor();
    const k64 = Buffer.from(Array.from({ length: 64 }, (_, i) => (i * 37 + 11) & 0xff)).toString("base64");
    for (const form of [KEY, bare, k64, k64.replace(/=+$/, "")]) {
        const out = fresh.redact(`primary ${form} end`);
        assert.ok(!showsKey(out, form), `${form} -> ${out}`);
    }
});

void test("secret fields, connection strings and masked console commands stay masked", () => {
    const r = new Redactor();
    r.add("ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789");
    const s = r.redact('{"uds":"zzz","port":"p"} abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789 HostName=x;SharedAccessKey=k1k1k1=');
    assert.ok(!/zzz|abcdef0123456789|k1k1k1/.test(s), s);
    const fields = r.redact('{"wifiPassword":"pw-canary-1","hubConnectionString":"HostName=h;SharedAccessKeyName=n;SharedAccessKey=k","password":"pw-canary-2"}');
    assert.ok(!/pw-canary|SharedAccessKey=k/.test(fields), fields);
    const typed = r.redact('{"port":"p","text":"set_dps_uds 0011223344556677889900112233445566778899001122334455667788990011\\r"} set_wifipwd hunter22');
    assert.ok(!/00112233|hunter22/.test(typed), typed);
    r.add("Hunter 2 pass!");
    assert.equal(r.redact("wifi HUNTER 2 PASS! ok"), "wifi *** ok");
});

void test("a secret split across two append() calls is masked whole, wherever the cut", () => {
    const registered = new Redactor();
    registered.add(UDS);
    registered.add(KEY);
    const unregistered = new Redactor();
    const texts = [
        ...udsForms(UDS).map((f) => `[INFO] uds ${f} stored\n`),
        `key ${KEY.replace(/=+$/, "")} ok\n`,
        `HostName=h;SharedAccessKeyName=n;SharedAccessKey=${KEY}\n`,
    ];
    for (const r of [registered, unregistered]) {
        for (const text of texts) {
            for (let cut = 1; cut < text.length; cut++) {
                const out = streamed(r, [text.slice(0, cut), text.slice(cut)]);
                assert.ok(!showsHex(out, UDS) && !showsKey(out, KEY), `cut at ${cut}: ${out}`);
            }
        }
    }
    // Cut into many pieces.
    const text = `uds ${BYTES.join(":")} end\n`;
    const out = streamed(unregistered, text.match(/.{1,3}/gs) as string[]);
    assert.ok(!showsHex(out, UDS), out);
    assert.equal(out, "uds *** end\n");
});

void test("complete lines are written at once, a partial line after HOLD_MS or on flush", async () => {
    const r = new Redactor();
    let out = "";
    const s = new RedactingStream(r, (safe) => (out += safe), 50);
    s.push("one\ntwo ");
    assert.equal(out, "one\n");
    s.push(BYTES.slice(0, 10).join(":"));
    assert.equal(out, "one\n", "held: it may be the start of a secret");
    s.push(`:${BYTES.slice(10).join(":")} three`);
    await new Promise((resolve) => setTimeout(resolve, 120));
    assert.equal(out, "one\ntwo *** three");
    assert.ok(HOLD_MS <= 500, "a partial line is not held for long");
    assert.equal(s.end(" four"), " four");
});

void test("a partial line longer than MAX_HOLD is written up to where a secret could start", () => {
    const r = new Redactor();
    let out = "";
    const s = new RedactingStream(r, (safe) => (out += safe), 60_000);
    const words = "word ".repeat(Math.ceil(MAX_HOLD / 5) + 10);
    s.push(words + BYTES.slice(0, 12).join(" "));
    assert.ok(out.length >= MAX_HOLD && words.startsWith(out), "the words are out");
    assert.ok(!showsHex(out, UDS), "the start of the dump is held");
    s.push(` ${BYTES.slice(12).join(" ")}\n`);
    assert.ok(!showsHex(out, UDS), out.slice(-200));
    assert.ok(out.endsWith("***\n"), out.slice(-200));
});
