#!/usr/bin/env node
// Packages the extension, rust-analyzer style:
//   node scripts/package.mjs                                   universal VSIX, no daemon inside
//   node scripts/package.mjs --target linux-x64 [--server F]   platform VSIX with that daemon
// A platform VSIX carries the stripped `devkit` for its target (server/devkit[.exe]; the
// workspace's release profile strips), from --server, else $DEVKIT_SERVER_PATH, else
// ../target/release/devkit: its format is checked against the target. A universal VSIX never
// carries a binary: packaging refuses while server/ holds one (a leftover of another target).
// Targets: win32-x64, win32-arm64, linux-x64, linux-arm64, linux-armhf, alpine-x64, darwin-x64, darwin-arm64.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

const EXT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const SERVER_DIR = path.join(EXT, "server");

function fail(msg) {
    console.error(`package: ${msg}`);
    process.exit(2);
}

function arg(name) {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : undefined;
}

/** What kind of executable `buf` is: { os, arch } from its header, or undefined. */
export function binaryKind(buf) {
    if (buf.length >= 20 && buf.readUInt32BE(0) === 0x7f454c46) {
        const machine = buf.readUInt16LE(18);
        return { os: "linux", arch: { 0x3e: "x64", 0xb7: "arm64", 0x28: "armhf" }[machine] ?? `elf-${machine}` };
    }
    if (buf.length >= 0x40 && buf.toString("latin1", 0, 2) === "MZ") {
        const pe = buf.readUInt32LE(0x3c);
        if (buf.length >= pe + 6 && buf.toString("latin1", pe, pe + 4) === "PE\0\0") {
            const machine = buf.readUInt16LE(pe + 4);
            return { os: "win32", arch: { 0x8664: "x64", 0xaa64: "arm64" }[machine] ?? `pe-${machine}` };
        }
    }
    if (buf.length >= 8 && [0xfeedfacf, 0xcffaedfe].includes(buf.readUInt32BE(0))) {
        const cpu = buf.readUInt32LE(4);
        return { os: "darwin", arch: { 0x01000007: "x64", 0x0100000c: "arm64" }[cpu] ?? `macho-${cpu}` };
    }
    return undefined;
}

function run(cmd, args) {
    const r = spawnSync(cmd, args, { cwd: EXT, stdio: "inherit" });
    if (r.status !== 0) process.exit(r.status ?? 1);
}

const vsce = path.join(EXT, "node_modules", ".bin", "vsce");
const target = arg("--target");
fs.mkdirSync(path.join(EXT, "dist"), { recursive: true });
if (!target) {
    const left = fs.existsSync(SERVER_DIR) ? fs.readdirSync(SERVER_DIR) : [];
    if (left.length) fail(`server/ holds ${left.join(", ")}: a universal VSIX must not carry a daemon of one platform. Remove server/, or pass --target.`);
    run(process.execPath, ["scripts/bundle.mjs", "--minify"]);
    run(vsce, ["package", "--no-dependencies", "--out", "dist/devkit-dps.vsix"]);
    process.exit(0);
}
const [os, arch] = target.replace(/^alpine/, "linux").split("-");
if (!os || !arch) fail(`--target ${target}: expected <os>-<arch>, e.g. linux-x64, win32-x64, darwin-arm64`);
const exe = os === "win32" ? "devkit.exe" : "devkit";
const src = arg("--server") ?? process.env.DEVKIT_SERVER_PATH ?? path.join(EXT, "..", "target", "release", exe);
if (!fs.existsSync(src)) fail(`${src} not found: build it with \`cargo build --release -p devkit\` for ${target}, or pass --server FILE`);
const head = Buffer.alloc(4096);
const fd = fs.openSync(src, "r");
fs.readSync(fd, head, 0, head.length, 0);
fs.closeSync(fd);
const kind = binaryKind(head);
if (!kind || kind.os !== os || kind.arch !== arch) {
    fail(`${src} is ${kind ? `a ${kind.os}-${kind.arch}` : "not a known"} executable, not one for ${target}`);
}
const size = fs.statSync(src).size;
if (size > 60 << 20) console.warn(`package: ${src} is ${(size / 2 ** 20).toFixed(0)} MB: is it the stripped release build?`);
fs.rmSync(SERVER_DIR, { recursive: true, force: true });
fs.mkdirSync(SERVER_DIR);
try {
    fs.copyFileSync(src, path.join(SERVER_DIR, exe));
    fs.chmodSync(path.join(SERVER_DIR, exe), 0o755);
    run(process.execPath, ["scripts/bundle.mjs", "--minify"]);
    run(vsce, ["package", "--no-dependencies", "--target", target, "--out", `dist/devkit-dps-${target}.vsix`]);
} finally {
    // Never left behind for the next (universal or other-target) package.
    fs.rmSync(SERVER_DIR, { recursive: true, force: true });
}
