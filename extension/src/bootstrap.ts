// Finding the `devkit` daemon, rust-analyzer style: the user's setting first, then the binary
// bundled in the extension, then `devkit` on PATH; each candidate is checked with `--version`
// before it is used, so a wrong path gives a clear message instead of a dead client.

import * as cp from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export interface ServerBinary {
    path: string;
    version: string;
    /** Where it came from: "setting" | "env" | "bundled" | "PATH". */
    source: string;
}

export class BootstrapError extends Error {}

function expandHome(p: string): string {
    return p.startsWith("~/") ? path.join(os.homedir(), p.slice(2)) : p;
}

/** Runs `<bin> --version`; resolves the first line, rejects with why it failed. */
export function probeVersion(bin: string, timeoutMs = 10_000): Promise<string> {
    return new Promise((resolve, reject) => {
        cp.execFile(bin, ["--version"], { timeout: timeoutMs, windowsHide: true }, (err, stdout, stderr) => {
            if (err) {
                const why = (err as NodeJS.ErrnoException).code === "ENOENT" ? "not found" : String(stderr || err.message).trim();
                reject(new BootstrapError(`${bin}: ${why}`));
                return;
            }
            const line = stdout.split(/\r?\n/)[0]?.trim() ?? "";
            if (!/devkit/i.test(line)) {
                reject(new BootstrapError(`${bin} --version printed ${JSON.stringify(line)}, not a devkit version`));
                return;
            }
            resolve(line);
        });
    });
}

function onPath(name: string): string | undefined {
    const exts = process.platform === "win32" ? [".exe", ".cmd", ""] : [""];
    for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
        if (!dir) continue;
        for (const ext of exts) {
            const p = path.join(dir, name + ext);
            try {
                fs.accessSync(p, fs.constants.X_OK);
                if (fs.statSync(p).isFile()) return p;
            } catch {
                /* not here */
            }
        }
    }
    return undefined;
}

/**
 * Resolves the daemon binary. `settingPath` is `devkitDps.server.path`; `extensionPath` is
 * where a bundled `server/devkit` may live. `DEVKIT_SERVER_PATH` (used by CI and the tests)
 * counts as the setting when the setting is empty.
 */
export async function findServer(settingPath: string, extensionPath: string): Promise<ServerBinary> {
    const exe = process.platform === "win32" ? "devkit.exe" : "devkit";
    const tried: string[] = [];
    const candidates: { path: string; source: string; explicit: boolean }[] = [];
    if (settingPath.trim()) candidates.push({ path: expandHome(settingPath.trim()), source: "setting", explicit: true });
    else if (process.env.DEVKIT_SERVER_PATH) {
        candidates.push({ path: process.env.DEVKIT_SERVER_PATH, source: "env", explicit: true });
    }
    const bundled = path.join(extensionPath, "server", exe);
    if (fs.existsSync(bundled)) {
        // Unpacking a VSIX does not always keep the execute bit.
        if (process.platform !== "win32") {
            try {
                fs.accessSync(bundled, fs.constants.X_OK);
            } catch {
                try {
                    fs.chmodSync(bundled, 0o755);
                } catch {
                    /* reported by the --version check */
                }
            }
        }
        candidates.push({ path: bundled, source: "bundled", explicit: false });
    }
    const fromPath = onPath("devkit");
    if (fromPath) candidates.push({ path: fromPath, source: "PATH", explicit: false });

    for (const c of candidates) {
        try {
            const version = await probeVersion(c.path);
            return { path: c.path, version, source: c.source };
        } catch (e) {
            tried.push(String((e as Error).message));
            // An explicit setting that does not work is an error, not a reason to silently
            // run some other binary.
            if (c.explicit) {
                throw new BootstrapError(
                    `devkitDps.server.path (${c.source}) does not point to a working devkit binary: ${(e as Error).message}`,
                );
            }
        }
    }
    throw new BootstrapError(
        "No devkit daemon found. Set devkitDps.server.path, or install `devkit` on PATH" +
            (tried.length ? ` (tried: ${tried.join("; ")})` : "") +
            ".",
    );
}
