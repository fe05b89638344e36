// A minimal test runner for the extension host: sequential tests, each pass / fail / skip (with
// the reason), results written as JSON for scripts/test.mjs to report.

import * as fs from "node:fs";
import * as lc from "vscode-languageclient/node";

export class Skip extends Error {}

/**
 * In CI (`CI=true`, or `DEVKIT_TEST_STRICT=1`) a skip is a failure: every test there has what it
 * needs (the daemon, the virtual DevKit, the emulator), so a skip can only hide a broken part
 * (a daemon that does not start turned ~20 tests into skips and the run into a pass).
 */
export const strict = process.env.CI === "true" || process.env.DEVKIT_TEST_STRICT === "1";

/** Marks the current test skipped, with the reason printed in the report. */
export function skip(reason: string): never {
    throw new Skip(reason);
}

export interface Result {
    name: string;
    status: "passed" | "failed" | "skipped";
    reason?: string;
    error?: string;
    ms: number;
    /** Secrets the test used: the runner greps code-server's files for them afterwards. */
    canaries?: string[];
}

interface Test {
    name: string;
    fn: () => Promise<void>;
    timeoutMs: number;
}

const tests: Test[] = [];
export const canaries = new Set<string>();

export function test(name: string, fn: () => Promise<void>, timeoutMs = 60_000): void {
    tests.push({ name, fn, timeoutMs });
}

export function assert(cond: unknown, msg: string): asserts cond {
    if (!cond) throw new Error(`assertion failed: ${msg}`);
}

export function assertEq<T>(actual: T, expected: T, what: string): void {
    if (actual !== expected) throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}

/** Polls `f` until it returns a truthy value. */
export async function waitFor<T>(what: string, f: () => T | Promise<T>, timeoutMs = 20_000): Promise<NonNullable<T>> {
    const end = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
        try {
            const v = await f();
            if (v) return v as NonNullable<T>;
        } catch (e) {
            last = e;
        }
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ""}`);
        await new Promise((r) => setTimeout(r, 100));
    }
}

/** A daemon method that is not there yet (-32601) turns the test into a skip naming it. */
export function skipIfUnimplemented(e: unknown, method: string): void {
    const msg = String((e as Error)?.message ?? e);
    // The error comes from the extension's own bundle of vscode-languageclient: compare the code,
    // not the class.
    const code = (e as { code?: number })?.code;
    // 1002 = notAvailable: the task is not part of this build of the daemon.
    if (code === lc.ErrorCodes.MethodNotFound || code === 1002 || /method not found|unhandled method|not implemented/i.test(msg)) {
        skip(`the daemon does not implement ${method} yet (${msg.slice(0, 120)})`);
    }
}

/** Tests every run needs (they set up the API and the daemon), kept by DEVKIT_TEST_FILTER. */
const SETUP = /^(activation:|daemon: starts)/;

/** With DEVKIT_TEST_FILTER set (substrings of test names, `|`-separated), only those tests and the setup. */
function selected(): Test[] {
    const filters = (process.env.DEVKIT_TEST_FILTER ?? "").split("|").filter(Boolean);
    return filters.length ? tests.filter((t) => SETUP.test(t.name) || filters.some((f) => t.name.includes(f))) : tests;
}

export async function runAll(): Promise<Result[]> {
    const results: Result[] = [];
    for (const t of selected()) {
        const start = Date.now();
        let timer: NodeJS.Timeout | undefined;
        try {
            await Promise.race([
                t.fn(),
                new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${t.timeoutMs} ms`)), t.timeoutMs))),
            ]);
            results.push({ name: t.name, status: "passed", ms: Date.now() - start });
            console.warn(`ok   ${t.name}`);
        } catch (e) {
            if (e instanceof Skip && !strict) {
                results.push({ name: t.name, status: "skipped", reason: e.message, ms: Date.now() - start });
                console.warn(`skip ${t.name}: ${e.message}`);
            } else if (e instanceof Skip) {
                const err = `skipped in CI, which counts as a failure: ${e.message}`;
                results.push({ name: t.name, status: "failed", error: err, ms: Date.now() - start });
                console.warn(`FAIL ${t.name}: ${err}`);
            } else {
                const err = e instanceof Error ? `${e.message}` : String(e);
                results.push({ name: t.name, status: "failed", error: err, ms: Date.now() - start });
                console.warn(`FAIL ${t.name}: ${err}`);
            }
        } finally {
            clearTimeout(timer);
        }
    }
    if (results.length) results[0].canaries = [...canaries];
    const out = process.env.DEVKIT_TEST_RESULTS;
    if (out) fs.writeFileSync(out, JSON.stringify(results, null, 2));
    return results;
}
