#!/usr/bin/env node
// Packages a platform-specific VSIX with the `devkit` daemon inside (server/devkit), which the
// extension prefers when devkitDps.server.path is empty. The binary: $DEVKIT_SERVER_PATH, else
// ../target/release/devkit (build it with `cargo build --release -p devkit`).
// Usage: node scripts/package-with-server.mjs [vsce target, default linux-x64]
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

const EXT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const target = process.argv[2] ?? `${process.platform === "win32" ? "win32" : process.platform}-${process.arch}`;
const exe = target.startsWith("win32") ? "devkit.exe" : "devkit";
const src = process.env.DEVKIT_SERVER_PATH ?? path.join(EXT, "..", "target", "release", exe);
if (!fs.existsSync(src)) {
    console.error(`${src} not found: build it with \`cargo build --release -p devkit\` or set DEVKIT_SERVER_PATH`);
    process.exit(2);
}
fs.mkdirSync(path.join(EXT, "server"), { recursive: true });
fs.copyFileSync(src, path.join(EXT, "server", exe));
fs.chmodSync(path.join(EXT, "server", exe), 0o755);
const run = (cmd, args) => {
    const r = spawnSync(cmd, args, { cwd: EXT, stdio: "inherit" });
    if (r.status !== 0) process.exit(r.status ?? 1);
};
run(process.execPath, ["scripts/bundle.mjs", "--minify"]);
run(path.join(EXT, "node_modules", ".bin", "vsce"), ["package", "--no-dependencies", "--target", target, "--out", `dist/devkit-dps-${target}.vsix`]);
