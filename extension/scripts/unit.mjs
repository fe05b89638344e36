#!/usr/bin/env node
// Unit tests that need no VS Code (`npm run test:unit`; `npm test` runs them before the in-host
// suite): test/unit/*.test.ts, bundled with esbuild into out/unit/ and run by `node --test`.
// Their modules must not import `vscode` (the bundle fails if they do).
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const EXT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const OUT = path.join(EXT, "out", "unit");
const tests = fs
    .readdirSync(path.join(EXT, "test", "unit"))
    .filter((f) => f.endsWith(".test.ts"))
    .map((f) => path.join(EXT, "test", "unit", f));
fs.rmSync(OUT, { recursive: true, force: true });
await esbuild.build({
    entryPoints: tests,
    outdir: OUT,
    outExtension: { ".js": ".cjs" },
    bundle: true,
    platform: "node",
    target: "node20",
    format: "cjs",
    sourcemap: "inline",
    logLevel: "warning",
});
const files = fs.readdirSync(OUT).filter((f) => f.endsWith(".test.cjs")).map((f) => path.join(OUT, f));
const r = spawnSync(process.execPath, ["--test", "--enable-source-maps", ...files], { stdio: "inherit", cwd: EXT });
process.exit(r.status ?? 1);
