// In-host integration tests: run inside a real VS Code extension host (code-server), against the
// real `devkit` daemon (DEVKIT_SERVER_PATH). See scripts/test.mjs.

import * as cp from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import * as vscode from "vscode";
import { Redactor } from "../../src/channels";
import { batchSummary } from "../../src/commands/factory";
import { portItem } from "../../src/commands/port";
import { readmeUri } from "../../src/commands/setup";
import { sketchSelector } from "../../src/ctx";
import { taskJsonEntries } from "../../src/tasks";
import { buttonsFor, errorView } from "../../src/errors";
import type { DevkitApi } from "../../src/extension";
import * as ext from "../../src/lsp_ext";
import { LineFormatter } from "../../src/monitor";
import { explanationView } from "../../src/rejection";
import { registrationDetail, registrationStateOf, shortHub, StatusBar } from "../../src/status";
import { assert, assertEq, canaries, runAll, skip, skipIfUnimplemented, strict, test, waitFor } from "./harness";

const EXT_ID = "devkit-dps.devkit-dps";
const FIXTURES = process.env.DEVKIT_TEST_FIXTURES ?? path.resolve(__dirname, "../../test/fixtures");
const SERVER = process.env.DEVKIT_SERVER_PATH ?? "devkit";

interface Case {
    dir: string;
    uds: string;
    registrationId: string | null;
    mac: string | null;
    firmwareVersion: string | null;
    expectedId: string;
    der: Buffer;
}

function loadCase(name: string): Case {
    const dir = path.join(FIXTURES, "vectors", name);
    const c = JSON.parse(fs.readFileSync(path.join(dir, "case.json"), "utf8"));
    const pem = fs.readFileSync(path.join(dir, c.expected.alias_cert_file), "utf8");
    return {
        dir,
        uds: c.inputs.uds,
        registrationId: c.inputs.registration_id,
        mac: c.inputs.mac,
        firmwareVersion: c.inputs.firmware_version,
        expectedId: c.expected.registration_id,
        der: pemToDer(pem),
    };
}

function pemToDer(pem: string): Buffer {
    const b64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
    return Buffer.from(b64, "base64");
}

const hex = (algo: string, data: Buffer) => crypto.createHash(algo).update(data).digest("hex").toUpperCase();
const sameHex = (a: string, b: string) => a.replace(/[^0-9a-f]/gi, "").toUpperCase() === b.toUpperCase();

let api: DevkitApi;
let daemonUp = false;
// Scratch space for virtual devices and the DPS emulator (their own stores hold secrets by
// design), outside the code-server folders the runner scans for leaked secrets.
const scratch = process.env.DEVKIT_TEST_SCRATCH ?? os.tmpdir();
fs.mkdirSync(scratch, { recursive: true });
const tmp = fs.mkdtempSync(path.join(scratch, "devkit-ext-test-"));
const sims: cp.ChildProcess[] = [];

/** Starts a virtual DevKit (`devkit sim`); resolves its pty path (first stdout line). */
function startSim(stateDir: string, opts: string[]): Promise<{ port: string; proc: cp.ChildProcess }> {
    fs.mkdirSync(stateDir, { recursive: true });
    const proc = cp.spawn(SERVER, ["sim", "--sim-dir", stateDir, ...opts], { stdio: ["ignore", "pipe", "pipe"] });
    sims.push(proc);
    return new Promise((resolve, reject) => {
        let out = "";
        let err = "";
        const timer = setTimeout(() => reject(new Error(`devkit sim printed no pty path in 15 s (stderr: ${err.slice(0, 300)})`)), 15_000);
        proc.stdout?.on("data", (d: Buffer) => {
            out += d.toString();
            const m = /virtual DevKit on (\S+)/.exec(out);
            if (m) {
                clearTimeout(timer);
                resolve({ port: m[1], proc });
            }
        });
        proc.stderr?.on("data", (d: Buffer) => (err += d.toString()));
        proc.on("exit", (code) => {
            clearTimeout(timer);
            reject(new Error(`devkit sim exited with ${code}: ${err.slice(0, 300)}`));
        });
    });
}

/**
 * A virtual DevKit for a test, or the test is skipped (a build without `devkit sim`). In CI the
 * virtual DevKit is part of the build: its failure fails the test with the real error.
 */
async function simOrSkip(stateDir: string, opts: string[]): Promise<{ port: string; proc: cp.ChildProcess }> {
    try {
        return await startSim(stateDir, opts);
    } catch (e) {
        if (strict) throw e;
        skip(`the virtual DevKit is not available in this build (${(e as Error).message.slice(0, 160)})`);
    }
}

// Every unhandled promise rejection in the extension host during the run (the last test
// asserts there was none: a failed restart or a dismissed notification must not leave one).
const rejections: string[] = [];
process.on("unhandledRejection", (r) => rejections.push(String((r as Error)?.stack ?? r).slice(0, 300)));

function needDaemon(): void {
    if (!daemonUp) skip("the devkit daemon did not start (see the daemon test)");
}

// ---------------------------------------------------------------------------------------------

test("activation: extension activates and contributes its commands, tasks and walkthrough", async () => {
    const e = vscode.extensions.getExtension<DevkitApi>(EXT_ID);
    assert(e, `extension ${EXT_ID} is installed`);
    api = await e.activate();
    assert(api?.ctx, "activate() returns the API");
    const pkg = e.packageJSON;
    const contributed: string[] = pkg.contributes.commands.map((c: { command: string }) => c.command);
    for (const id of [
        "devkit.deviceUpload", "devkit.generateCert", "devkit.setUds", "devkit.configureWifi", "devkit.enroll",
        "devkit.openMonitor", "devkit.closeMonitor", "devkit.selectPort", "devkit.provisionSimulated", "devkit.showLogs",
    ]) {
        assert(contributed.includes(id), `package.json contributes ${id}`);
    }
    for (const c of pkg.contributes.commands) assertEq(c.category, "DevKit", `category of ${c.command}`);
    assertEq(pkg.contributes.commands.find((c: { command: string }) => c.command === "devkit.deviceUpload").title, "Device Upload", "title of devkit.deviceUpload");
    const registered = await vscode.commands.getCommands(true);
    for (const id of contributed) assert(registered.includes(id), `command ${id} is registered`);
    const tasks = await vscode.tasks.fetchTasks({ type: "devkit" });
    for (const name of ["build", "upload", "device-upload", "monitor", "generate-cert"]) assert(tasks.some((t) => t.name === name), `task devkit: ${name} is provided`);
    const walk = pkg.contributes.walkthroughs.find((w: { id: string }) => w.id === "devkit.provisioning");
    assert(walk && walk.steps.length >= 8, "walkthrough devkit.provisioning with its steps");
    for (const s of walk.steps) assert(s.completionEvents?.length, `walkthrough step ${s.id} has a completion event`);
    // A step is ticked by what it asks for, not by opening its command (a cancelled picker).
    for (const s of walk.steps) assert(!s.completionEvents.some((e: string) => e.startsWith("onCommand:devkit.selectPort")), `${s.id}: not ticked by opening the port picker`);
    const groups: { title: string; order: number; properties: Record<string, { order?: number }> }[] = pkg.contributes.configuration;
    assertEq(groups.map((g) => g.title).join(", "), "DPS, Device, Build, Upload, Daemon", "settings groups in order");
    const props = groups.flatMap((g) => Object.keys(g.properties));
    for (const g of groups) for (const [k, v] of Object.entries(g.properties)) assert(typeof v.order === "number", `setting ${k} has an order`);
    for (const k of [
        "devkitDps.dps.globalEndpoint", "devkitDps.dps.idScope", "devkitDps.registrationId", "devkitDps.serial.port",
        "devkitDps.serial.baudRate", "devkitDps.serial.lineEnding", "devkitDps.upload.backend", "devkitDps.arduinoCli.path",
        "devkitDps.server.path",
    ]) {
        assert(props.includes(k), `setting ${k}`);
    }
    assertEq(vscode.workspace.getConfiguration("devkitDps").get("dps.globalEndpoint"), "global.azure-devices-provisioning.net", "default endpoint");
    // Every command stays in the palette (a missing precondition is said by the command, with
    // its fix); only the DevKit view's commands, which need the view's item, are left out.
    for (const c of pkg.contributes.commands) assert(!c.enablement, `${c.command} is never disabled in the palette (enablement: ${c.enablement})`);
    const hidden = pkg.contributes.menus.commandPalette.filter((m: { when: string }) => m.when === "false").map((m: { command: string }) => m.command).sort();
    assertEq(hidden.join(" "), "devkit.copyThumbprint devkit.forgetSecrets devkit.openPortal devkit.reenroll devkit.refreshDevices devkit.showCertificate devkit.showDrift", "palette: only the view's commands hidden");
    assert(pkg.categories.includes("Azure") && !pkg.categories.includes("Other"), `marketplace category: ${pkg.categories}`);
});

test("installation guide: the README is found whatever case the packager gave its name", async () => {
    const dir = fs.mkdtempSync(path.join(tmp, "pkg-"));
    fs.writeFileSync(path.join(dir, "readme.md"), "# guide\n");
    const found = await readmeUri(vscode.Uri.file(dir));
    assertEq(found ? path.basename(found.fsPath) : "none", "readme.md", "the packaged, lower-cased readme");
    const none = fs.mkdtempSync(path.join(tmp, "pkg-"));
    assertEq(await readmeUri(vscode.Uri.file(none)), undefined, "no README: undefined, not a broken path");
});

test("status bar: port item and monitor toggle are shown", async () => {
    assert(api.status.port.text.includes("$(plug)"), `port item text ${api.status.port.text}`);
    assert(/Monitor/.test(api.status.monitor.text), `monitor item text ${api.status.monitor.text}`);
    assertEq(api.status.monitor.command, "devkit.toggleMonitor", "monitor item command");
});

test("client: registration events map to the status bar states", async () => {
    assertEq(registrationStateOf({ port: "test-port", kind: "status", status: "ASSIGNING" })?.state, "progress", "assigning");
    const a = registrationStateOf({ port: "test-port", kind: "assigned", hub: "hub1.azure-devices.net" });
    assert(a?.state === "assigned" && a.hub === "hub1.azure-devices.net", "assigned with hub");
    assertEq(registrationStateOf({ port: "test-port", kind: "failed", reason: "Invalid certificate" })?.state, "failed", "failed");
    assertEq(registrationStateOf({ port: "test-port", kind: "identity" }), undefined, "identity lines leave the state alone");
    api.status.onEvent({ port: "test-port", kind: "failed", reason: "Invalid certificate (401002)", hint: "enroll the current certificate" });
    assertEq(api.status.registration.text, "$(error) DPS: failed", "failed item text");
    assert(String(api.status.registration.tooltip).includes("enroll the current certificate"), "tooltip carries the hint");
    api.status.onEvent({ port: "test-port", kind: "status", status: "ASSIGNING" });
    assertEq(api.status.registration.text, "$(sync~spin) DPS: assigning", "assigning item text");
    api.status.onEvent({ port: "test-port", kind: "assigned", hub: "hub1.azure-devices.net" });
    assertEq(api.status.registration.text, "$(pass-filled) Assigned to hub1", "assigned item text (short hub label)");
    assert(String(api.status.registration.tooltip).includes("hub1.azure-devices.net"), "the tooltip has the full hub name");
    // The verdict survives a window reload: a new status bar (as after a reload) shows it again.
    const again = new StatusBar(api.ctx, api.monitors);
    try {
        assertEq(again.registration.text, "$(pass-filled) Assigned to hub1", "the assigned item after a reload");
    } finally {
        again.dispose();
    }
    assert(/assigned .*the DevKit on test-port.* to the IoT hub hub1\.azure-devices\.net/.test(registrationDetail(api.status.reg, "the DevKit on test-port")), `the click says more than the item: ${registrationDetail(api.status.reg, "the DevKit on test-port")}`);
    api.status.onEvent({ port: "test-port", kind: "configMode" });
    assertEq(api.status.registration.text, "$(tools) DevKit: configuration mode", "configuration mode is a state of its own");
    api.status.onEvent({ kind: "identity", port: "test-port", mac: "c0bdd1a2b3c4" });
    api.status.onEvent({ kind: "identity", port: "test-port", mac: "c0bdd1a2b3c4", firmwareVersion: "1.6.2" });
    const facts = api.status.deviceFacts("test-port");
    assertEq(`${facts.mac} ${facts.firmwareVersion}`, "c0bdd1a2b3c4 1.6.2", "device facts from the daemon's identity events");
    assertEq(api.status.deviceFacts("other-port").mac, undefined, "facts are per port");
    api.status.clearRegistration();
    api.status.events.length = 0;
});

test("client: monitor formatting (CRLF, timestamps across chunks) and redaction", async () => {
    const f = new LineFormatter(true);
    const at = () => new Date(2026, 0, 1, 12, 34, 56, 7);
    const out = f.format("ab", at) + f.format("c\r\nde\n", at);
    assert(out.includes("[12:34:56.007]\x1b[0m abc\r\n"), `first line stamped once: ${JSON.stringify(out)}`);
    assertEq((out.match(/12:34:56/g) ?? []).length, 2, "one stamp per line");
    const r = new Redactor();
    r.add("ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789");
    const s = r.redact('{"uds":"zzz","port":"p"} abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789 HostName=x;SharedAccessKey=k1k1k1=');
    assert(!/zzz|abcdef0123456789|k1k1k1/.test(s), `redacted: ${s}`);
    const fields = r.redact('{"wifiPassword":"pw-canary-1","hubConnectionString":"HostName=h;SharedAccessKeyName=n;SharedAccessKey=k","password":"pw-canary-2"}');
    assert(!/pw-canary|SharedAccessKey=k/.test(fields), `secret fields redacted: ${fields}`);
    const typed = r.redact('{"port":"p","text":"set_dps_uds 0011223344556677889900112233445566778899001122334455667788990011\\r"} set_wifipwd hunter22');
    assert(!/00112233|hunter22/.test(typed), `masked console commands redacted: ${typed}`);
});

test("daemon: starts (bootstrap with --version), status item healthy", async () => {
    try {
        await api.ctx.ready();
    } catch (e) {
        const msg = String((e as Error).message);
        if (/not implemented/i.test(msg + api.ctx.serverChannel.transcript)) skip(`\`devkit lsp\` is not implemented in this build (${msg.slice(0, 120)})`);
        throw e;
    }
    assert(api.ctx.server && /devkit/i.test(api.ctx.server.version), `server version ${api.ctx.server?.version}`);
    assertEq(api.ctx.health, "ok", "health");
    daemonUp = true;
});

test("validation: input boxes ask the daemon (devkit/validateInput, devkit/registrationId, devkit/findBuild)", async () => {
    needDaemon();
    const client = await api.ctx.ready();
    // By method name: the test bundle's RequestType objects are not the extension's.
    const check = (input: string, value: string) => client.sendRequest<ext.ValidateInputResult>(ext.validateInput.method, { input, value });
    const mac = await check("mac", "C0:BD:D1:A2:B3:C4");
    assert(mac.valid, `a MAC with separators is valid: ${mac.message}`);
    assertEq(mac.normalized, "c0bdd1a2b3c4", "the MAC as the tasks use it");
    const id = await check("registrationId", "My_DevKit");
    assert(!id.valid && /registration ID/.test(id.message ?? ""), `an invalid registration ID is refused, saying why: ${id.message}`);
    assertEq((await check("registrationId", "my-devkit-01")).valid, true, "a valid registration ID");
    const scope = await check("idScope", "0ne123");
    assert(scope.valid && scope.warnings.length > 0, "an unusual ID Scope is accepted with a warning");
    assertEq((await check("globalEndpoint", "not a host")).valid, false, "an endpoint with a space");
    // Secrets: judged, never echoed (nor traced: the redactor masks the value of a secret input).
    const uds = crypto.randomBytes(32).toString("hex");
    canaries.add(uds);
    const good = await check("uds", uds.toUpperCase());
    assert(good.valid && !good.publishedSample && good.normalized === undefined, `a random UDS: ${JSON.stringify(good)}`);
    const bad = await check("uds", uds.slice(0, 62));
    assert(!bad.valid && !JSON.stringify(bad).includes(uds.slice(0, 62)), `a short UDS is refused without being echoed: ${bad.message}`);
    const sample = await check("uds", "19e25a259d0c2be03a02d416c05c48ccd0cc7d1743458aae1cb488b074993eae");
    assert(sample.valid && sample.publishedSample && sample.warnings.length > 0, "the published sample is flagged (usable only with allowSampleUds)");
    const key = Buffer.from("validate-canary-key").toString("base64");
    canaries.add(key);
    const cs = await check("connectionString", `HostName=127.0.0.1:8443;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=${key}`);
    assert(cs.valid && cs.localHost && cs.hostName === "127.0.0.1:8443", `a local DPS: ${JSON.stringify(cs)}`);
    const azure = await check("connectionString", `HostName=x.azure-devices-provisioning.net;SharedAccessKeyName=p;SharedAccessKey=${key}`);
    assert(azure.valid && !azure.localHost, "an Azure DPS is not local");
    const noKey = await check("connectionString", "HostName=x.azure-devices-provisioning.net;SharedAccessKeyName=p");
    assert(!noKey.valid && /SharedAccessKey/.test(noKey.message ?? ""), `a connection string without its key: ${noKey.message}`);
    let err: { code?: number; data?: { field?: string } } | undefined;
    await check("wifiPassword", "x").catch((e) => (err = e));
    assertEq(err?.code, ext.ErrorCode.invalidParams, "an input that cannot be checked alone");
    assertEq(err?.data?.field, "input", "the error names the param");
    // The automatic registration ID normalises the MAC (the key a UDS is stored under).
    const auto = await client.sendRequest<ext.RegistrationIdResult>(ext.registrationId.method, { mac: "C0-BD-D1-A2-B3-C4", firmwareVersion: "1.6.2" });
    assertEq(auto.registrationId, "az-c0bdd1a2b3c4v1v6v2", "automatic registration ID");
    // The project's build, where the daemon looks for it.
    const root = vscode.workspace.workspaceFolders![0].uri.fsPath;
    const found = await client.sendRequest<ext.FindBuildResult>(ext.findBuild.method, { projectDir: root });
    assertEq(found.bin, path.join(root, ".devkit", "build", "DevKitDPS.ino.bin"), "the project's image");
    assertEq(found.map, path.join(root, ".devkit", "build", "DevKitDPS.ino.map"), "its map");
    const trace = api.ctx.traceChannel.transcript;
    assert(trace.includes("devkit/validateInput"), "the requests were traced (tracing is on)");
    assert(!trace.includes(uds.slice(0, 62)) && !trace.toUpperCase().includes(uds.toUpperCase()), "no UDS (nor part of one) in the trace");
}, 60_000);

test("config: src/config.ts is the only place settings are read", async () => {
    const src = path.join(vscode.extensions.getExtension(EXT_ID)!.extensionPath, "src");
    const files: string[] = [];
    const walk = (d: string) => {
        for (const e of fs.readdirSync(d, { withFileTypes: true })) {
            const p = path.join(d, e.name);
            if (e.isDirectory()) walk(p);
            else if (e.name.endsWith(".ts")) files.push(p);
        }
    };
    walk(src);
    assert(files.length >= 10 && files.some((f) => f.endsWith(path.join("commands", "identity.ts"))), `the extension's sources: ${files.length} files`);
    const readers = files.filter((f) => /\bgetConfiguration\s*\(/.test(fs.readFileSync(f, "utf8"))).map((f) => path.relative(src, f));
    assertEq(readers.join(","), "config.ts", "files that call getConfiguration");
    // The command modules stay small: no second commands.ts.
    for (const f of files) {
        const lines = fs.readFileSync(f, "utf8").split("\n").length;
        if (f.includes(`${path.sep}commands${path.sep}`)) assert(lines < 300, `${path.relative(src, f)} has ${lines} lines`);
    }
});

test("generate-cert on the fixture workspace gives the vector's thumbprint (explicit registration ID)", async () => {
    needDaemon();
    const c = loadCase("uppercase-uds-medium");
    canaries.add(c.uds);
    canaries.add(c.uds.toLowerCase());
    await api.secrets.storeUds(c.expectedId, c.uds);
    const outDir = path.join(tmp, "certs-explicit");
    let r: ext.GenerateCertResult | undefined;
    try {
        r = await vscode.commands.executeCommand<ext.GenerateCertResult>("devkit.generateCert", {
            buildDir: path.join(vscode.workspace.workspaceFolders![0].uri.fsPath, ".devkit", "build"),
            outDir,
            quiet: true,
        });
    } catch (e) {
        skipIfUnimplemented(e, "devkit/generateCert");
        throw e;
    }
    assert(r, "a result");
    assertEq(r.registrationId, "upper-case-uds", "registration ID (from the workspace setting)");
    assert(sameHex(r.sha1Thumbprint, hex("sha1", c.der)), `SHA-1 thumbprint ${r.sha1Thumbprint} = ${hex("sha1", c.der)}`);
    assert(sameHex(r.sha256Thumbprint, hex("sha256", c.der)), `SHA-256 thumbprint ${r.sha256Thumbprint}`);
    const written = pemToDer(fs.readFileSync(r.aliasCert, "utf8"));
    assert(written.equals(c.der), "the written alias certificate equals the vector byte for byte");
    assert(pemToDer(r.aliasCertPem).equals(c.der), "the returned PEM is the same certificate");
});

test("generate-cert with MAC + firmware version gives the automatic registration ID and thumbprint", async () => {
    needDaemon();
    const c = loadCase("auto-id-small");
    canaries.add(c.uds);
    await api.secrets.storeUds(c.expectedId, c.uds);
    let r: ext.GenerateCertResult | undefined;
    try {
        r = await vscode.commands.executeCommand<ext.GenerateCertResult>("devkit.generateCert", {
            bin: path.join(c.dir, "DevKitDPS.ino.bin"),
            map: path.join(c.dir, "DevKitDPS.ino.map"),
            mac: c.mac,
            firmwareVersion: c.firmwareVersion,
            outDir: path.join(tmp, "certs-auto"),
            quiet: true,
        });
    } catch (e) {
        skipIfUnimplemented(e, "devkit/generateCert");
        throw e;
    }
    assert(r, "a result");
    assertEq(r.registrationId, c.expectedId, "automatic registration ID");
    assert(sameHex(r.sha256Thumbprint, hex("sha256", c.der)), `SHA-256 thumbprint ${r.sha256Thumbprint}`);
});

/** Starts the local DPS emulator (`devkit dps-emulator`); resolves its connection string and CA. */
function startEmulator(stateDir: string): Promise<{ connectionString: string; ca: string }> {
    const proc = cp.spawn(SERVER, ["dps-emulator", "--state-dir", stateDir], { stdio: ["ignore", "pipe", "pipe"] });
    sims.push(proc);
    return new Promise((resolve, reject) => {
        let out = "";
        let err = "";
        const timer = setTimeout(() => reject(new Error(`devkit dps-emulator did not start in 15 s (${err.slice(0, 200)})`)), 15_000);
        proc.stdout?.on("data", (d: Buffer) => {
            out += d.toString();
            const cs = /connection string: (\S+)/.exec(out);
            const ca = /ca certificate: (\S+)/.exec(out);
            if (cs && ca) {
                clearTimeout(timer);
                resolve({ connectionString: cs[1], ca: ca[1] });
            }
        });
        proc.stderr?.on("data", (d: Buffer) => (err += d.toString()));
        proc.on("exit", (code) => {
            clearTimeout(timer);
            reject(new Error(`devkit dps-emulator exited with ${code}: ${err.slice(0, 200)}`));
        });
    });
}

test("enroll (DPS emulator, connection string from secret storage) enrolls the last generated certificate", async () => {
    needDaemon();
    let emu: { connectionString: string; ca: string };
    try {
        emu = await startEmulator(path.join(tmp, "emulator"));
    } catch (e) {
        skip(`the DPS emulator is not available in this build (${(e as Error).message.slice(0, 160)})`);
    }
    canaries.add(emu.connectionString);
    canaries.add(/SharedAccessKey=([^;]+)/.exec(emu.connectionString)![1]);
    await api.secrets.storeConnectionString(emu.connectionString);
    let r: ext.EnrollResult | undefined;
    try {
        r = await vscode.commands.executeCommand<ext.EnrollResult>("devkit.enroll", { caFile: emu.ca, quiet: true });
    } catch (e) {
        skipIfUnimplemented(e, "devkit/enroll");
        throw e;
    } finally {
        await api.secrets.deleteConnectionString();
    }
    assert(r, "a result");
    // The default certificate is the project's last generated one: the automatic-ID test's.
    const c = loadCase("auto-id-small");
    assertEq(r.registrationId, c.expectedId, "enrolled registration ID (the workspace's last generated certificate)");
    assert(sameHex(r.sha1Thumbprint, hex("sha1", c.der)), `enrolled SHA-1 thumbprint ${r.sha1Thumbprint}`);
    assertEq(r.provisioningStatus, "enabled", "provisioning status");
}, 60_000);

test("task devkit: generate-cert runs in its terminal and writes the certificate", async () => {
    needDaemon();
    const root = vscode.workspace.workspaceFolders![0].uri.fsPath;
    const pem = path.join(root, ".devkit", "certs", "upper-case-uds.pem");
    fs.rmSync(pem, { force: true });
    assertEq(await runTask("generate-cert"), 0, "task exit code");
    const c = loadCase("uppercase-uds-medium");
    assert(pemToDer(fs.readFileSync(pem, "utf8")).equals(c.der), "the task wrote the vector's certificate to .devkit/certs");
}, 60_000);

/** Runs a `devkit` task to its end; resolves its exit code. */
async function runTask(name: string): Promise<number | undefined> {
    const task = (await vscode.tasks.fetchTasks({ type: "devkit" })).find((t) => t.name === name);
    assert(task, `the ${name} task`);
    const ended = new Promise<number | undefined>((resolve) => {
        const sub = vscode.tasks.onDidEndTaskProcess((e) => {
            if (e.execution.task.name === name) {
                sub.dispose();
                resolve(e.exitCode);
            }
        });
    });
    await vscode.tasks.executeTask(task);
    return ended;
}

test("task devkit: device-upload without arduino-cli fails with a clear message (exit 1)", async () => {
    needDaemon();
    const cfg = vscode.workspace.getConfiguration("devkitDps");
    await cfg.update("serial.port", path.join(tmp, "no-such-devkit"), vscode.ConfigurationTarget.Workspace);
    await cfg.update("arduinoCli.path", path.join(tmp, "no-such-arduino-cli"), vscode.ConfigurationTarget.Workspace);
    await cfg.update("dps.idScope", "0ne0001A2B3", vscode.ConfigurationTarget.Workspace);
    try {
        const shown = api.shownErrors.length;
        assertEq(await runTask("device-upload"), 1, "task exit code");
        const log = api.ctx.log.channel.transcript;
        assert(/task device-upload: .*arduino-cli/i.test(log), `the log names arduino-cli: ${log.split("\n").filter((l) => l.includes("device-upload")).join(" | ")}`);
        // A failed task gets the notification and buttons a failed command gets.
        const last = await waitFor("the task's error notification", () => (api.shownErrors.length > shown ? api.shownErrors[api.shownErrors.length - 1] : undefined));
        assert(/arduino-cli/i.test(last.title), `the notification names arduino-cli: ${last.title}`);
        assert(last.buttons.includes("Set arduino-cli Path"), `the daemon's next action as a button: ${last.buttons.join(", ")}`);
    } finally {
        await cfg.update("serial.port", undefined, vscode.ConfigurationTarget.Workspace);
        await cfg.update("arduinoCli.path", undefined, vscode.ConfigurationTarget.Workspace);
        await cfg.update("dps.idScope", undefined, vscode.ConfigurationTarget.Workspace);
    }
}, 60_000);

test("device upload in a folder without a sketch says so before asking for a port, and saves no setting", async () => {
    needDaemon();
    const root = vscode.workspace.workspaceFolders![0].uri.fsPath;
    const ino = path.join(root, "DevKitDPS", "DevKitDPS.ino");
    const cfg = vscode.workspace.getConfiguration("devkitDps");
    const portBefore = cfg.inspect("serial.port")?.workspaceValue;
    fs.renameSync(ino, `${ino}.off`);
    try {
        const shown = api.shownErrors.length;
        await vscode.commands.executeCommand("devkit.deviceUpload");
        const last = await waitFor("the error notification", () => (api.shownErrors.length > shown ? api.shownErrors[api.shownErrors.length - 1] : undefined));
        assert(/no sketch/i.test(last.title), `the notification says the folder has no sketch: ${last.title}`);
        assert(!/invalid params/i.test(last.full), `no protocol words: ${last.full}`);
        assertEq(vscode.workspace.getConfiguration("devkitDps").inspect("serial.port")?.workspaceValue, portBefore, "no port was saved");
    } finally {
        fs.renameSync(`${ino}.off`, ino);
    }
});

test("DevKit view: the project's identity with its thumbprint, FWID and enrollment state", async () => {
    needDaemon();
    const c = loadCase("uppercase-uds-medium");
    await api.secrets.storeUds(c.expectedId, c.uds);
    const r = await vscode.commands.executeCommand<ext.GenerateCertResult>("devkit.generateCert", {
        buildDir: path.join(vscode.workspace.workspaceFolders![0].uri.fsPath, ".devkit", "build"),
        quiet: true,
    });
    assert(r, "a certificate generated into the project");
    const roots = await api.view.getChildren();
    const device = roots.find((n) => n.label === r.registrationId);
    assert(device, `a device node for ${r.registrationId}: ${roots.map((n) => String(n.label)).join(", ")}`);
    const kids = await api.view.getChildren(device);
    const text = kids.map((k) => `${String(k.label)}=${String(k.description)}`).join("; ");
    assert(text.includes(`SHA-256=${r.sha256Thumbprint}`), `thumbprint shown: ${text}`);
    assert(/Enrollment=not enrolled/.test(text), `enrollment state: ${text}`);
    assertEq(device.contextValue, "devkitDevice", "the node carries Copy Thumbprint / Re-enroll / Open in Azure portal");
    // Copy Thumbprint and the decoded certificate (not the PEM).
    await vscode.commands.executeCommand("devkit.copyThumbprint", device);
    assertEq(await vscode.env.clipboard.readText(), r.sha256Thumbprint, "the thumbprint copied");
    await vscode.commands.executeCommand("devkit.showCertificate", device);
    const shown = await waitFor("the decoded certificate", () => {
        const t = vscode.window.activeTextEditor?.document.getText() ?? "";
        return t.includes("Subject CN") ? t : undefined;
    });
    assert(shown.includes(`Subject CN        ${r.registrationId}`), `subject shown: ${shown}`);
    assert(sameHex(/SHA-256\s+(\S+)/.exec(shown)?.[1] ?? "", r.sha256Thumbprint.replace(/[^0-9a-f]/gi, "").toUpperCase()), `SHA-256 shown: ${shown}`);
    assert(!shown.includes("BEGIN CERTIFICATE"), "decoded, not PEM");
    await vscode.commands.executeCommand("workbench.action.revertAndCloseActiveEditor");
}, 60_000);

/** What a DevKit's log says when DPS rejects its certificate (401002), for `registrationId`. */
function rejectedLog(registrationId: string): string {
    return `PUT /0ne00000001/registrations/${registrationId}/register?api-version=2019-03-31 HTTP/1.1\r\nHTTP Status: 401\r\n{"errorCode":401002,"trackingId":"t-1","message":"Invalid certificate"}\r\nFailure encountered on registration!\r\nregistration failed!\r\n`;
}

test("401002 explained: the words and the one button for each fix the daemon names", async () => {
    const x = (cause: ext.MismatchCause, action: ext.NextActionName, enrolled: string | null): ext.MismatchExplanation => ({
        registrationId: "dev-1",
        cause,
        enrolledSha256Thumbprint: enrolled,
        generatedSha256Thumbprint: "AA",
        message: "the enrollment holds a certificate this project never generated (SHA-256 BB): re-enroll with the current certificate.",
        nextActions: [{ action }],
    });
    const reenroll = explanationView(x("neverGenerated", "enroll", "BB"));
    assertEq(reenroll.title, "DPS rejected the certificate of dev-1 (401002): the enrollment holds a certificate this project never generated (SHA-256 BB): re-enroll with the current certificate.", "title");
    assertEq(`${reenroll.button?.label}=${reenroll.button?.command}`, "Re-enroll with the Current Certificate=devkit.enroll", "re-enroll");
    assertEq(explanationView(x("noEnrollment", "enroll", null)).button?.label, "Enroll the Current Certificate", "no enrollment yet");
    const restore = explanationView(x("deviceDiffers", "setUds", "AA")).button;
    assertEq(`${restore?.label}=${restore?.command}`, "Restore the UDS=devkit.setUds", "restore the UDS");
    assertEq(JSON.stringify(restore?.args), '[{"registrationId":"dev-1","useStored":true}]', "the UDS kept for that device");
    assertEq(explanationView(x("registrationId", "regenerateCert", "AA")).button?.command, "devkit.generateCert", "another registration ID");
    const registered = await vscode.commands.getCommands(true);
    for (const a of ["enroll", "setUds", "regenerateCert"] as ext.NextActionName[]) {
        const b = explanationView(x("uds", a, "BB")).button;
        assert(b && registered.includes(b.command), `${a}: a registered command`);
    }
});

test("401002 explained: a monitor given the stored DPS connection shows ONE notification with ONE button, then the next fix", async () => {
    needDaemon();
    let emu: { connectionString: string; ca: string };
    try {
        emu = await startEmulator(path.join(tmp, "emulator-explain"));
    } catch (e) {
        if (strict) throw e;
        skip(`the DPS emulator is not available in this build (${(e as Error).message.slice(0, 160)})`);
    }
    canaries.add(emu.connectionString);
    canaries.add(/SharedAccessKey=([^;]+)/.exec(emu.connectionString)![1]);
    const cfg = vscode.workspace.getConfiguration("devkitDps");
    const T = vscode.ConfigurationTarget.Workspace;
    // The device: a TCP port that says what a rejected DevKit's log says.
    let sock: net.Socket | undefined;
    const device = net.createServer((c) => (sock = c));
    await new Promise<void>((r) => device.listen(0, "127.0.0.1", r));
    const port = `tcp://127.0.0.1:${(device.address() as net.AddressInfo).port}`;
    await api.secrets.storeConnectionString(emu.connectionString);
    await cfg.update("dps.caFile", emu.ca, T);
    const explained = () => api.shownErrors.filter((e) => e.title.includes("(401002)"));
    const before = explained().length;
    const failures = () => api.status.events.filter((e) => e.port === port && e.kind === "failed").length;
    try {
        // The project's last generated certificate (the DevKit view test's); DPS holds none yet.
        const id = "upper-case-uds";
        await vscode.commands.executeCommand("devkit.openMonitor", port);
        const conn = await waitFor("the monitor connected to the device", () => sock);
        conn.write(rejectedLog(id));
        const first = await waitFor("the explanation", () => explained()[before]);
        assert(first.title.includes(`holds no enrollment for ${id}`), `says DPS holds no enrollment: ${first.title}`);
        assertEq(first.buttons.join(","), "Enroll the Current Certificate", "one button, the fix");
        assert(String(api.status.registration.tooltip).includes("holds no enrollment"), "the status item carries the explanation");
        // The fix (the button's command), then the device is what differs: restore its UDS.
        await vscode.commands.executeCommand("devkit.enroll", { caFile: emu.ca, quiet: true });
        conn.write(rejectedLog(id));
        const second = await waitFor("the next explanation", () => explained()[before + 1]);
        assert(/presents another one/.test(second.title), `the device differs: ${second.title}`);
        assertEq(second.buttons.join(","), "Restore the UDS", "one button, the fix");
        // The device retries: the same explanation is not shown again.
        const n = failures();
        conn.write(rejectedLog(id));
        await waitFor("the retry's failed event", () => failures() > n);
        await new Promise((r) => setTimeout(r, 300));
        assertEq(explained().length, before + 2, "no repeated notification");
        assert(!api.ctx.traceChannel.transcript.includes(emu.connectionString), "the connection string is not traced");
    } finally {
        await vscode.commands.executeCommand("devkit.closeMonitor", port);
        await api.secrets.deleteConnectionString();
        await cfg.update("dps.caFile", undefined, T);
        device.close();
        sock?.destroy();
    }
}, 90_000);

test("Enroll a Batch: a factory manifest through devkit/enrollBatch, with a summary and the report CSV; a re-run skips every row", async () => {
    needDaemon();
    let emu: { connectionString: string; ca: string };
    try {
        emu = await startEmulator(path.join(tmp, "emulator-batch"));
    } catch (e) {
        if (strict) throw e;
        skip(`the DPS emulator is not available in this build (${(e as Error).message.slice(0, 160)})`);
    }
    canaries.add(emu.connectionString);
    canaries.add(/SharedAccessKey=([^;]+)/.exec(emu.connectionString)![1]);
    // Two rows: the vectors' certificates, as generate-cert --batch leaves them.
    const dir = fs.mkdtempSync(path.join(tmp, "batch-"));
    const certDir = path.join(dir, "certs");
    fs.mkdirSync(certDir);
    const rows: string[] = [];
    for (const name of ["uppercase-uds-medium", "auto-id-small"]) {
        const c = loadCase(name);
        const meta = JSON.parse(fs.readFileSync(path.join(c.dir, "case.json"), "utf8"));
        fs.copyFileSync(path.join(c.dir, meta.expected.alias_cert_file), path.join(certDir, `${c.expectedId}.pem`));
        rows.push(`${c.expectedId}.uds,${c.expectedId}`);
    }
    const manifest = path.join(dir, "line.csv");
    fs.writeFileSync(manifest, rows.join("\n") + "\n");
    await api.secrets.storeConnectionString(emu.connectionString);
    try {
        const r = await vscode.commands.executeCommand<ext.EnrollBatchResult>("devkit.enrollBatch", { manifest, certDir, caFile: emu.ca, requestsPerMinute: 0, quiet: true });
        assert(r, "a result");
        assertEq(`${r.rows} ${r.created} ${r.failed}`, "2 2 0", "rows, created, failed");
        assert(fs.existsSync(r.reportCsv), `the report CSV ${r.reportCsv}`);
        assert(fs.readFileSync(r.reportCsv, "utf8").includes("upper-case-uds"), "the report names the rows");
        assertEq(batchSummary(r), "Batch line.csv: 2 rows, 2 created (1 DPS request).", "the summary");
        const again = await vscode.commands.executeCommand<ext.EnrollBatchResult>("devkit.enrollBatch", { manifest, certDir, caFile: emu.ca, requestsPerMinute: 0, quiet: true });
        assertEq(`${again?.skipped} ${again?.requests}`, "2 0", "a re-run skips what DPS confirmed");
        assertEq(batchSummary(again!), "Batch line.csv: 2 rows, 2 skipped (enrolled by an earlier run) (0 DPS requests).", "the re-run's summary");
        const log = api.ctx.log.channel.transcript;
        assert(log.includes("Report: ") && !log.includes(emu.connectionString), "the log has the summary, not the secret");
    } finally {
        await api.secrets.deleteConnectionString();
    }
    // No connection string stored: said, with the command that stores one.
    let err: { message?: string; data?: { nextActions?: ext.NextAction[] } } | undefined;
    await vscode.commands.executeCommand("devkit.enrollBatch", { manifest, certDir, quiet: true }).then(undefined, (e) => (err = e));
    assert(err && /No DPS connection string stored/.test(err.message ?? ""), `says what is missing: ${err?.message}`);
}, 90_000);

test("Enroll a Group: devkit/enrollGroup from the palette's command; a DevKit's RIoT certificate is refused as the group's CA, saying why", async () => {
    needDaemon();
    let emu: { connectionString: string; ca: string };
    try {
        emu = await startEmulator(path.join(tmp, "emulator-group"));
    } catch (e) {
        if (strict) throw e;
        skip(`the DPS emulator is not available in this build (${(e as Error).message.slice(0, 160)})`);
    }
    canaries.add(emu.connectionString);
    canaries.add(/SharedAccessKey=([^;]+)/.exec(emu.connectionString)![1]);
    const c = loadCase("uppercase-uds-medium");
    const meta = JSON.parse(fs.readFileSync(path.join(c.dir, "case.json"), "utf8"));
    await api.secrets.storeConnectionString(emu.connectionString);
    let err: { message?: string; data?: { field?: string } } | undefined;
    try {
        await vscode.commands
            .executeCommand("devkit.enrollGroup", { group: "line-7", caCert: path.join(c.dir, meta.expected.alias_cert_file), caFile: emu.ca, quiet: true })
            .then(undefined, (e) => (err = e));
    } finally {
        await api.secrets.deleteConnectionString();
    }
    assert(err, "refused");
    assert(/RIoT|alias|DeviceID/i.test(err.message ?? ""), `says why: ${err.message}`);
    assert(!(err.message ?? "").includes(emu.connectionString), "no secret in the error");
}, 60_000);

test("generate-cert with no UDS stored fails clearly (nothing guessed)", async () => {
    needDaemon();
    const c = loadCase("uppercase-uds-medium");
    let err: Error | undefined;
    try {
        await vscode.commands.executeCommand("devkit.generateCert", {
            bin: path.join(c.dir, "DevKitDPS.ino.bin"),
            map: path.join(c.dir, "DevKitDPS.ino.map"),
            registrationId: "no-uds-stored-here",
            quiet: true,
        });
    } catch (e) {
        err = e as Error;
    }
    assert(err && /No UDS stored for no-uds-stored-here/.test(err.message), `error names the device: ${err?.message}`);
});

test("sketch: code lenses above the registration ID run the extension's commands; a bad ID gets a diagnostic", async () => {
    needDaemon();
    const root = vscode.workspace.workspaceFolders![0].uri.fsPath;
    const uri = vscode.Uri.file(path.join(root, "DevKitDPS", "DevKitDPS.ino"));
    await vscode.window.showTextDocument(await vscode.workspace.openTextDocument(uri));
    const lenses = await waitFor("code lenses from the daemon", async () => {
        const l = await vscode.commands.executeCommand<vscode.CodeLens[]>("vscode.executeCodeLensProvider", uri);
        return l?.filter((x) => x.command).length ? l : undefined;
    });
    const registered = await vscode.commands.getCommands(true);
    for (const title of ["Generate certificate", "Enroll"]) {
        const lens = lenses.find((l) => l.command?.title === title);
        assert(lens?.command, `a "${title}" lens`);
        assert(registered.includes(lens.command.command), `its command ${lens.command.command} is the extension's`);
        assertEq(lens.range.start.line, 2, `the "${title}" lens sits on the registration ID's line`);
    }
    const bad = vscode.Uri.file(path.join(root, "DevKitDPS", "bad_id.ino"));
    fs.writeFileSync(bad.fsPath, '#define DPS_REGISTRATION_ID "Not_Valid!"\n');
    await vscode.window.showTextDocument(await vscode.workspace.openTextDocument(bad));
    const diags = await waitFor("a diagnostic on the bad registration ID", () => {
        const d = vscode.languages.getDiagnostics(bad).filter((x) => x.range.start.line === 0);
        return d.length ? d : undefined;
    });
    assert(/registration/i.test(diags.map((d) => d.message).join(" ")), `the diagnostic is about the registration ID: ${diags.map((d) => d.message).join(" | ")}`);
    // No "Generate certificate" / "Enroll" on an invalid ID: one lens that says what is wrong.
    const badLenses = await waitFor("the lens on the invalid registration ID", async () => {
        const l = await vscode.commands.executeCommand<vscode.CodeLens[]>("vscode.executeCodeLensProvider", bad);
        return l?.length ? l : undefined;
    });
    assertEq(badLenses.length, 1, "one lens");
    assert(/invalid registration ID/i.test(badLenses[0].command?.title ?? ""), `the lens says so: ${badLenses[0].command?.title}`);
    // Quick fix: lower case, invalid characters replaced.
    const fix = await quickFix(bad, diags[0], /^Use "/);
    assert(await vscode.workspace.applyEdit(fix.edit!), "the quick fix's edit applies");
    const doc = await vscode.workspace.openTextDocument(bad);
    assertEq(doc.lineAt(0).text, '#define DPS_REGISTRATION_ID "not-valid-"', "the fixed line");
    await waitFor("no registration-id diagnostic left", () => !vscode.languages.getDiagnostics(bad).some((d) => codeOf(d) === "registration-id"));
    await doc.save();
    await vscode.commands.executeCommand("workbench.action.closeAllEditors");
    fs.rmSync(bad.fsPath, { force: true });
}, 60_000);

/** A diagnostic's `code` (the daemon sends a `codeDescription`, so VS Code has `{ value, target }`). */
function codeOf(d: vscode.Diagnostic): string | number | undefined {
    return typeof d.code === "object" ? d.code.value : d.code;
}

/** The daemon's quick fix for `diag` whose title matches `title`. */
async function quickFix(uri: vscode.Uri, diag: vscode.Diagnostic, title: RegExp): Promise<vscode.CodeAction> {
    const actions = await vscode.commands.executeCommand<vscode.CodeAction[]>("vscode.executeCodeActionProvider", uri, diag.range, vscode.CodeActionKind.QuickFix.value);
    const action = actions?.find((a) => title.test(a.title));
    assert(action?.edit, `a quick fix ${title} among: ${(actions ?? []).map((a) => a.title).join(" | ")}`);
    assertEq(action.kind?.value, "quickfix", "its kind");
    return action;
}

test("sketch: an ID Scope hard-coded against the setting; Move to settings writes the setting and the sketch reads dps_config.h", async () => {
    needDaemon();
    const root = vscode.workspace.workspaceFolders![0].uri.fsPath;
    const T = vscode.ConfigurationTarget.Workspace;
    await vscode.workspace.getConfiguration("devkitDps").update("dps.idScope", "0ne00000B0B", T);
    const uri = vscode.Uri.file(path.join(root, "DevKitDPS", "old_sample.ino"));
    fs.writeFileSync(uri.fsPath, 'static const char* ID_Scope = "0ne00000A0A";\nvoid setupOld() {}\n');
    try {
        const doc = await vscode.workspace.openTextDocument(uri);
        await vscode.window.showTextDocument(doc);
        const diag = await waitFor("the hard-coded-setting diagnostic", () =>
            vscode.languages.getDiagnostics(uri).find((d) => codeOf(d) === "hard-coded-setting" && d.message.includes("0ne00000B0B")),
        );
        const target = typeof diag.code === "object" ? diag.code.target.toString() : "";
        assert(target.endsWith("docs/diagnostics.md#hard-coded-setting"), `codeDescription links to the rule: ${target}`);
        const move = await quickFix(uri, diag, /^Move "0ne00000A0A" to the ID Scope setting/);
        assert(move.command, "Move carries the command that writes the setting");
        assert(await vscode.workspace.applyEdit(move.edit!), "the edit applies");
        await vscode.commands.executeCommand(move.command.command, ...(move.command.arguments ?? []));
        assertEq(vscode.workspace.getConfiguration("devkitDps").get("dps.idScope"), "0ne00000A0A", "the setting now holds the sketch's value");
        const text = doc.getText();
        assert(text.includes("ID_Scope = DPS_ID_SCOPE;") && text.startsWith('#include "dps_config.h"'), `the sketch reads the generated header: ${text}`);
        // The daemon pulls the changed settings: nothing left to report.
        await waitFor("the diagnostic gone", () => !vscode.languages.getDiagnostics(uri).some((d) => codeOf(d) === "hard-coded-setting"));
        // A setting the quick fix must not write is refused.
        const serverPath = vscode.workspace.getConfiguration("devkitDps").get("server.path");
        let refused: Error | undefined;
        try {
            await vscode.commands.executeCommand(ext.writeSettingCommand, { setting: "devkitDps.server.path", value: "/tmp/x", quiet: true });
        } catch (e) {
            refused = e as Error;
        }
        assert(refused && /not a DPS setting/.test(refused.message), `refused: ${refused?.message}`);
        assertEq(vscode.workspace.getConfiguration("devkitDps").get("server.path"), serverPath, "server.path untouched");
        await doc.save();
    } finally {
        await vscode.commands.executeCommand("workbench.action.closeAllEditors");
        fs.rmSync(uri.fsPath, { force: true });
        await vscode.workspace.getConfiguration("devkitDps").update("dps.idScope", undefined, T);
    }
}, 60_000);

test("monitor: the terminal shows the virtual DevKit's boot output", async () => {
    needDaemon();
    const sim = await simOrSkip(path.join(tmp, "sim-monitor"), ["--mac", "c0bdd1a2b3c4", "--link", path.join(tmp, "sim-monitor.tty")]);
    const port = path.join(tmp, "sim-monitor.tty");
    try {
        await vscode.commands.executeCommand("devkit.openMonitor", port);
    } catch (e) {
        skipIfUnimplemented(e, "devkit/monitor/open");
        throw e;
    }
    assert(api.monitors.isOpen(port), "monitor is open");
    assert(vscode.window.terminals.some((t) => t.name === `DevKit Monitor (${port})`), "a monitor terminal exists");
    await waitFor("the boot banner in the monitor", () => api.monitors.transcript(port).includes("MXChip - Microsoft IoT Developer Kit"));
    await waitFor("the MAC line in the monitor", () => /DevKit MAC Address:\s*c0bdd1a2b3c4/i.test(api.monitors.transcript(port)));
    // The daemon parses the device's words (`identity` events); the extension only keeps them.
    await waitFor("the MAC from the daemon's identity event", () => api.status.deviceFacts(port).mac === "c0bdd1a2b3c4");
    assert(api.status.monitor.text.includes("$(eye)") || api.monitors.isOpen(port), "monitor toggle reflects it");
    monitorSim = { ...sim, port };
}, 60_000);

let monitorSim: { port: string; proc: cp.ChildProcess } | undefined;

test("monitor: survives a device restart (same port, no new terminal)", async () => {
    if (!monitorSim) skip("the monitor test did not get a virtual DevKit");
    const { port, proc } = monitorSim;
    // A device reset (here: the virtual DevKit restarts on the same link) must not need a new monitor.
    const before = api.monitors.transcript(port).split("MXChip - Microsoft IoT Developer Kit").length;
    proc.kill("SIGTERM");
    await new Promise((r) => proc.once("exit", r));
    await startSim(path.join(tmp, "sim-monitor"), ["--mac", "c0bdd1a2b3c4", "--link", port]);
    await waitFor(
        "the boot banner again after the device restarted",
        () => api.monitors.transcript(port).split("MXChip - Microsoft IoT Developer Kit").length > before,
        30_000,
    );
    assertEq(vscode.window.terminals.filter((t) => t.name === `DevKit Monitor (${port})`).length, 1, "still one monitor terminal");
    await vscode.commands.executeCommand("devkit.closeMonitor", port);
    assert(!api.monitors.isOpen(port), "monitor closed");
}, 60_000);

/** The arduino-cli stand-in: "compiles" by copying a vector's image into the build path. */
function standinArduinoCli(): string {
    const data = path.join(tmp, "arduino-data");
    fs.mkdirSync(path.join(data, "packages", "AZ3166", "hardware", "stm32f4", "1.6.2"), { recursive: true });
    const cli = path.join(tmp, "arduino-cli");
    const standin = path.join(FIXTURES, "arduino-cli-standin", "arduino-cli");
    const image = path.join(FIXTURES, "vectors", "uppercase-uds-medium");
    fs.writeFileSync(cli, `#!/bin/sh\nexport ARDUINO_DIRECTORIES_DATA='${data}' DEVKIT_STANDIN_IMAGE_DIR='${image}'\nexec bash '${standin}' "$@"\n`, { mode: 0o755 });
    return cli;
}

test("task devkit: build: each compile error shows once in Problems (the daemon's; the task has no matcher)", async () => {
    needDaemon();
    const root = vscode.workspace.workspaceFolders![0].uri.fsPath;
    const broken = path.join(root, "DevKitDPS", "broken.cpp");
    fs.writeFileSync(broken, "// a compile error for Problems\n#error devkit-problems-canary\n");
    const cfg = vscode.workspace.getConfiguration("devkitDps");
    const T = vscode.ConfigurationTarget.Workspace;
    await cfg.update("arduinoCli.path", standinArduinoCli(), T);
    await cfg.update("dps.idScope", "0ne0001A2B3", T);
    const canary = () => vscode.languages.getDiagnostics(vscode.Uri.file(broken)).filter((d) => d.message.includes("devkit-problems-canary"));
    try {
        const task = (await vscode.tasks.fetchTasks({ type: "devkit" })).find((t) => t.name === "build");
        assertEq(task?.problemMatchers.length, 0, "problem matchers on the devkit build task");
        assertEq(await runTask("build"), 1, "task exit code");
        await waitFor("the compiler's diagnostic on broken.cpp", () => canary().length > 0);
        // A problem matcher would add its copy when the task ends: give it time to show up.
        await new Promise((r) => setTimeout(r, 1500));
        const diags = canary();
        assertEq(diags.length, 1, `diagnostics for the #error (sources: ${diags.map((d) => d.source).join(", ")})`);
        assertEq(diags[0].range.start.line, 1, "line (0-based) of the #error");
        assertEq(diags[0].severity, vscode.DiagnosticSeverity.Error, "severity");
        assertEq(codeOf(diags[0]), "compiler", "code");
        const target = typeof diags[0].code === "object" ? diags[0].code.target.toString() : "";
        assert(target.endsWith("docs/diagnostics.md#compiler"), `codeDescription: ${target}`);
    } finally {
        fs.rmSync(broken, { force: true });
        for (const k of ["arduinoCli.path", "dps.idScope"]) await cfg.update(k, undefined, T);
    }
}, 60_000);

test("task devkit: device-upload flashes the virtual DevKit; the open monitor pauses, resumes and sees the reboot", async () => {
    needDaemon();
    const stateDir = path.join(tmp, "sim-upload");
    const link = path.join(stateDir, "devkit.tty");
    await simOrSkip(stateDir, ["--mac", "c0bdd1a2b3c4", "--link", link]);
    const cli = standinArduinoCli();
    const cfg = vscode.workspace.getConfiguration("devkitDps");
    const T = vscode.ConfigurationTarget.Workspace;
    await cfg.update("serial.port", link, T);
    await cfg.update("arduinoCli.path", cli, T);
    await cfg.update("upload.backend", "sim", T);
    await cfg.update("dps.idScope", "0ne0001A2B3", T);
    await api.ctx.extCtx.workspaceState.update("devkitDps.simDir", stateDir);
    try {
        await vscode.commands.executeCommand("devkit.openMonitor", link);
        await waitFor("the first boot in the monitor", () => api.monitors.transcript(link).includes("DevKit MAC Address"));
        const boots = () => api.monitors.transcript(link).split("MXChip - Microsoft IoT Developer Kit").length;
        const before = boots();
        api.status.events.length = 0;
        const code = await runTask("device-upload");
        const why = api.ctx.log.channel.transcript.split("\n").filter((l) => l.includes("task device-upload")).pop();
        assertEq(code, 0, `task exit code (${why})`);
        const t = api.monitors.transcript(link);
        assert(/monitor paused for the upload/.test(t), "the monitor noted the pause for the upload");
        assert(!/devkit\//.test(t), "no protocol method names in the monitor");
        await waitFor("the monitor resumed", () => api.monitors.transcript(link).includes("monitor resumed"));
        await waitFor("the device rebooted into the new image", () => boots() > before, 30_000);
        await waitFor("registration events from the monitored port", () => api.status.events.some((e) => e.port === link));
        assert(api.monitors.isOpen(link), "the monitor is still open");
    } finally {
        await vscode.commands.executeCommand("devkit.closeMonitor", link);
        for (const k of ["serial.port", "arduinoCli.path", "upload.backend", "dps.idScope"]) await cfg.update(k, undefined, T);
    }
}, 90_000);

test("set UDS on the virtual DevKit (configuration mode) lands in its secure chip", async () => {
    needDaemon();
    const stateDir = path.join(tmp, "sim-uds");
    const link = path.join(tmp, "sim-uds.tty");
    await simOrSkip(stateDir, ["--config-mode", "--link", link]);
    const uds = crypto.randomBytes(32).toString("hex");
    canaries.add(uds);
    await api.secrets.storeUds("sim-uds-device", uds);
    try {
        const ok = await vscode.commands.executeCommand("devkit.setUds", { port: link, registrationId: "sim-uds-device", useStored: true, quiet: true });
        assertEq(ok, true, "setUds result");
    } catch (e) {
        skipIfUnimplemented(e, "devkit/setUds");
        throw e;
    }
    const eeprom = JSON.parse(fs.readFileSync(path.join(stateDir, "eeprom.json"), "utf8"));
    assertEq(String(eeprom.dps_uds).toLowerCase(), uds, "dps_uds in eeprom.json");
    configModeSim = link;
}, 60_000);

let configModeSim: string | undefined;

test("monitor: typing goes to the device, Enter sends the configured line ending (CR)", async () => {
    if (!configModeSim) skip("the set-UDS test did not get a virtual DevKit in configuration mode");
    const port = configModeSim;
    await vscode.commands.executeCommand("devkit.openMonitor", port);
    const term = vscode.window.terminals.find((t) => t.name === `DevKit Monitor (${port})`);
    assert(term, "the monitor terminal");
    assertEq(vscode.workspace.getConfiguration("devkitDps.serial").get("lineEnding"), "cr", "default line ending");
    term.sendText("version", true); // "version\r", as if typed and Enter pressed
    await waitFor("the console's answer in the monitor", () => /DevKitSDK version: \d+\.\d+\.\d+/.test(api.monitors.transcript(port)));
    await vscode.commands.executeCommand("devkit.clearMonitor");
    assertEq(api.monitors.transcript(port), "", "cleared");
    await vscode.commands.executeCommand("devkit.closeMonitor", port);
}, 60_000);

test("simulated provisioning turns the status bar to assigned", async () => {
    needDaemon();
    const events = api.status.events;
    events.length = 0;
    let r: ext.ProvisionResult | undefined;
    try {
        r = await vscode.commands.executeCommand<ext.ProvisionResult>("devkit.provisionSimulated", { quiet: true });
    } catch (e) {
        skipIfUnimplemented(e, "devkit/provision");
        throw e;
    }
    assert(r, "a result");
    assertEq(r.status, "assigned", "provision status");
    // The daemon's notification and its response travel separately: the event may come just after.
    await waitFor("an assigned devkit/registrationEvent from the daemon", () => events.some((e) => registrationStateOf(e)?.state === "assigned"));
    await waitFor("status bar says assigned", () => api.status.registration.text.startsWith("$(pass-filled) Assigned to "));
    assert(r.assignedHub && api.status.registration.text.includes(shortHub(r.assignedHub)), `item names the hub ${r.assignedHub}: ${api.status.registration.text}`);
    // Each stage of the run is in the log, not only its end.
    const stages = api.ctx.log.channel.transcript.split("\n").filter((l) => l.includes("virtual run: "));
    assert(stages.length >= 3, `the run's stages in the log: ${stages.join(" | ")}`);
    // The DevKit view shows the virtual device's identity after the run.
    const virtual = (await api.view.getChildren()).find((n) => n.description === "virtual DevKit");
    assertEq(String(virtual?.label), r.registrationId, "the virtual device in the DevKit view");
    const kids = (await api.view.getChildren(virtual)).map((k) => `${String(k.label)}=${String(k.description)}`).join("; ");
    assert(kids.includes(`SHA-256=${r.sha256Thumbprint}`) && kids.includes(`Hub=${r.assignedHub}`), `its thumbprint and hub: ${kids}`);
}, 120_000);

test("simulated provisioning again: the same virtual DevKit registers again (no refusal); Reset starts a new one", async () => {
    needDaemon();
    const first = await vscode.commands.executeCommand<ext.ProvisionResult>("devkit.provisionSimulated", { quiet: true });
    const second = await vscode.commands.executeCommand<ext.ProvisionResult>("devkit.provisionSimulated", { quiet: true });
    assert(first && second, "two results");
    assertEq(second.status, "assigned", "second run");
    assertEq(second.registrationId, first.registrationId, "same virtual DevKit");
    assertEq(second.sha256Thumbprint, first.sha256Thumbprint, "same identity");
    const removed = await vscode.commands.executeCommand<boolean>("devkit.resetSimulated", { quiet: true });
    assertEq(removed, true, "reset removed the virtual DevKit's state");
    assertEq(api.status.reg.state, "none", "status bar cleared after the reset");
    const third = await vscode.commands.executeCommand<ext.ProvisionResult>("devkit.provisionSimulated", { quiet: true });
    assert(third && third.sha256Thumbprint !== first.sha256Thumbprint, "after a reset the virtual DevKit is a new device");
    assert(api.status.registration.text.startsWith("$(pass-filled) Assigned to "), `short hub label: ${api.status.registration.text}`);
    assert(!api.status.registration.text.includes(".azure-devices.net"), `hub label without the domain: ${api.status.registration.text}`);
    assert(String(api.status.registration.tooltip).includes(third.assignedHub), "the tooltip has the full hub name");
}, 180_000);

test("Start Virtual DevKit: the daemon runs it, its port is selected and listed; UDS and upload (backend auto) use it; Stop and Start give the same device", async () => {
    needDaemon();
    const cfg = vscode.workspace.getConfiguration("devkitDps");
    const T = vscode.ConfigurationTarget.Workspace;
    const portBefore = cfg.inspect("serial.port")?.workspaceValue;
    let r: ext.SimStartResult | undefined;
    try {
        r = await vscode.commands.executeCommand<ext.SimStartResult>("devkit.startVirtualDevkit", { quiet: true });
    } catch (e) {
        skipIfUnimplemented(e, "devkit/simStart");
        throw e;
    }
    try {
        assert(r, "a result");
        assertEq(vscode.workspace.getConfiguration("devkitDps").get("serial.port"), r.port, "its port is the selected one");
        const ports = (await api.ctx.client!.sendRequest<ext.ListPortsResult>(ext.listPorts.method, {})).ports;
        const listed = ports.find((p) => p.port === r!.port);
        assertEq(listed?.kind, "virtual", `listed as a virtual DevKit without naming its folder: ${JSON.stringify(ports)}`);
        // The walkthrough's UDS step on it: the daemon puts it into configuration mode itself.
        const uds = crypto.randomBytes(32).toString("hex");
        canaries.add(uds);
        await api.secrets.storeUds("started-virtual", uds);
        assertEq(await vscode.commands.executeCommand("devkit.setUds", { port: r.port, registrationId: "started-virtual", useStored: true, quiet: true }), true, "setUds");
        const eeprom = JSON.parse(fs.readFileSync(path.join(r.simDir, "eeprom.json"), "utf8"));
        assertEq(String(eeprom.dps_uds).toLowerCase(), uds, "the UDS in its secure chip");
        // Upload with backend "auto" on its port goes through the virtual DevKit's loader.
        const target = await api.flashTarget(r.port);
        assertEq(`${target.backend} ${target.simDir}`, `sim ${r.simDir}`, "the flash target of a virtual port");
        const again = await vscode.commands.executeCommand<ext.SimStartResult>("devkit.startVirtualDevkit", { quiet: true });
        assertEq(again?.started, false, "starting it again finds it running");
        assertEq(await vscode.commands.executeCommand("devkit.stopVirtualDevkit", { quiet: true }), true, "stopped");
        const back = await vscode.commands.executeCommand<ext.SimStartResult>("devkit.startVirtualDevkit", { quiet: true });
        assert(back?.started && back.port === r.port, "started again on the same port");
        const kept = JSON.parse(fs.readFileSync(path.join(r.simDir, "eeprom.json"), "utf8"));
        assertEq(String(kept.dps_uds).toLowerCase(), uds, "the same device (its secure chip kept)");
    } finally {
        await vscode.commands.executeCommand("devkit.stopVirtualDevkit", { quiet: true }).then(undefined, () => undefined);
        await cfg.update("serial.port", portBefore, T);
    }
}, 90_000);

test("set UDS on a virtual DevKit in user mode puts it into configuration mode by itself", async () => {
    needDaemon();
    const stateDir = path.join(tmp, "sim-auto-config");
    const link = path.join(stateDir, "devkit.tty");
    await simOrSkip(stateDir, ["--link", link]);
    const uds = crypto.randomBytes(32).toString("hex");
    canaries.add(uds);
    await api.secrets.storeUds("sim-auto-config", uds);
    const ok = await vscode.commands.executeCommand("devkit.setUds", { port: link, registrationId: "sim-auto-config", useStored: true, quiet: true });
    assertEq(ok, true, "setUds result");
    const eeprom = JSON.parse(fs.readFileSync(path.join(stateDir, "eeprom.json"), "utf8"));
    assertEq(String(eeprom.dps_uds).toLowerCase(), uds, "dps_uds in eeprom.json");
    const mode = await api.ctx.client!.sendRequest<ext.SimConfigModeResult>(ext.simConfigMode.method, { port: link });
    assertEq(mode.configMode, true, "devkit/simConfigMode by port");
    let err: Error | undefined;
    await api.ctx.client!.sendRequest(ext.simConfigMode.method, { port: path.join(tmp, "not-a-devkit", "x.tty") }).catch((e) => (err = e));
    assert(err && /not the link of a virtual DevKit/.test(err.message) && !/--/.test(err.message), `clear error without CLI flags: ${err?.message}`);
}, 60_000);

test("check setup: the daemon's checks, each failure with next actions that map to buttons", async () => {
    needDaemon();
    const cfg = vscode.workspace.getConfiguration("devkitDps");
    await cfg.update("arduinoCli.path", path.join(tmp, "no-such-arduino-cli"), vscode.ConfigurationTarget.Workspace);
    try {
        const r = await vscode.commands.executeCommand<ext.CheckSetupResult>("devkit.checkSetup", { quiet: true });
        assert(r, "a result");
        for (const id of ["daemon", "arduinoCli", "platform"]) assert(r.checks.some((c) => c.id === id), `a ${id} check`);
        const cli = r.checks.find((c) => c.id === "arduinoCli")!;
        assertEq(cli.status, "error", "a missing arduino-cli");
        assertEq(r.ready, false, "not ready");
        assert(cli.detail.includes("no-such-arduino-cli"), `the detail names the configured path: ${cli.detail}`);
        const labels = buttonsFor(cli.nextActions).map((b) => b.label);
        assertEq(labels.join(","), "Installation Guide,Set arduino-cli Path", "buttons of the arduino-cli check");
    } finally {
        await cfg.update("arduinoCli.path", undefined, vscode.ConfigurationTarget.Workspace);
    }
}, 60_000);

test("errors: data.nextActions become buttons running the matching commands; line breaks kept in Details", async () => {
    const e = Object.assign(new Error("The certificate does not match the enrollment.\nThe FWID changed since the last enrollment."), {
        data: {
            hint: "regenerate the certificate, then enroll it again",
            nextActions: [{ action: "regenerateCert" }, { action: "enroll" }, { action: "setArduinoCliPath", detail: "devkitDps.arduinoCli.path" }, { action: "retry" }, { action: "noSuchAction" }],
        },
    });
    const v = errorView(e, (t) => t, { label: "Retry", command: "devkit.enroll", args: [] });
    assertEq(v.title, "The certificate does not match the enrollment. Regenerate the certificate, then enroll it again.", "toast: the first line, then the hint as a sentence");
    assertEq(v.full.split("\n").length, 3, "message lines and the hint, line breaks kept");
    assertEq(v.buttons.map((b) => b.label).join(","), "Generate Certificate,Enroll,Set arduino-cli Path,Retry", "buttons, unknown names left out");
    const build = buttonsFor([{ action: "retry", detail: "build" }], { label: "Retry", command: "devkit.enroll", args: [] });
    assertEq(build.map((b) => `${b.label}=${b.command}`).join(","), "Build Sketch=devkit.build", "retry after a build runs the build");
    assertEq(v.buttons[0].command, "devkit.generateCert", "regenerateCert runs Generate Certificate");
    assertEq(v.buttons[2].command, "workbench.action.openSettings", "a path action opens the setting");
    assertEq(String(v.buttons[2].args[0]), "devkitDps.arduinoCli.path", "that setting");
    // Errors speak to a person: no protocol prefix, the field by its UI name, its fix as a button.
    const scope = errorView(Object.assign(new Error("invalid params: `idScope`: is required"), { data: { code: "invalidParams", field: "idScope" } }), (t) => t);
    assertEq(scope.title, "ID Scope: is required", "no \"invalid params:\", the field's name");
    assertEq(scope.buttons.map((b) => b.command).join(","), "devkit.configureDps", "a bad ID Scope offers Configure DPS");
    const registered = await vscode.commands.getCommands(true);
    const names: ext.NextActionName[] = ["setUds", "enroll", "regenerateCert", "chooseUploadBackend", "installToolchain", "setArduinoCliPath", "setArduinoDataPath", "configureDps", "selectPort", "enterConfigMode", "installUdevRule", "checkSetup"];
    for (const name of names) {
        const b = buttonsFor([{ action: name }])[0];
        assert(b, `a button for ${name}`);
        assert(registered.includes(b.command), `${name} runs a registered command (${b.command})`);
    }
});

test("keybindings: Build/Upload/Monitor do not clash with VS Code's default keybindings", async () => {
    const pkg = vscode.extensions.getExtension(EXT_ID)!.packageJSON;
    const ours: { command: string; key: string; mac?: string }[] = pkg.contributes.keybindings;
    assertEq(ours.map((k) => k.command).sort().join(" "), "devkit.build devkit.deviceUpload devkit.toggleMonitor", "the three keybindings");
    await vscode.commands.executeCommand("workbench.action.openDefaultKeybindingsFile");
    const doc = await waitFor("the default keybindings file", () => vscode.window.activeTextEditor?.document);
    const defaults = doc.getText();
    await vscode.commands.executeCommand("workbench.action.closeActiveEditor");
    assert(defaults.includes('"key": "ctrl+p"') || defaults.includes('"key": "ctrl+e"'), "the default keybindings file was read");
    // Each default as `key` (first chord) -> command; ours must not take a key VS Code uses.
    const taken = new Map<string, string>();
    for (const m of defaults.matchAll(/"key":\s*"([^"]+)",\s*"command":\s*"([^"]+)"/g)) {
        if (!m[2].startsWith("devkit.") && !m[2].startsWith("-")) taken.set(m[1].split(" ")[0], m[2]);
    }
    for (const k of ours) {
        for (const key of [k.key]) assert(!taken.has(key), `${k.command}: ${key} is VS Code's ${taken.get(key)}`);
    }
});

test("context keys: every devkit.* key in when/enablement clauses is set by the extension", async () => {
    const pkg = vscode.extensions.getExtension(EXT_ID)!.packageJSON;
    const c = pkg.contributes;
    const clauses: string[] = [
        ...c.commands.map((x: { enablement?: string }) => x.enablement ?? ""),
        ...Object.values(c.menus).flatMap((items) => (items as { when?: string }[]).map((x) => x.when ?? "")),
        ...c.keybindings.map((x: { when?: string }) => x.when ?? ""),
        ...c.walkthroughs.flatMap((w: { steps: { completionEvents: string[] }[] }) => w.steps.flatMap((st) => st.completionEvents.filter((ev) => ev.startsWith("onContext:")))),
    ];
    const notKeys = new Set([...c.commands.map((x: { command: string }) => x.command), ...c.views.explorer.map((v: { id: string }) => v.id)]);
    const keys = new Set(clauses.flatMap((w) => [...w.matchAll(/devkit\.[A-Za-z]+/g)].map((m) => m[0])).filter((k) => !notKeys.has(k)));
    const bundle = fs.readFileSync(path.join(vscode.extensions.getExtension(EXT_ID)!.extensionPath, "dist", "extension.js"), "utf8");
    for (const k of keys) assert(bundle.includes(`"${k}"`), `context key ${k} is set by the extension`);
    const all = clauses.join(" ");
    // No command is disabled by a missing precondition: the command itself says what is missing.
    for (const k of ["devkit.daemonRunning", "devkit.hasBuild"]) assert(!all.includes(k), `${k} gates no command`);
    // Commands that only make sense with arguments are not in the palette.
    const hidden = new Set(pkg.contributes.menus.commandPalette.filter((m: { when: string }) => m.when === "false").map((m: { command: string }) => m.command));
    for (const id of ["devkit.copyThumbprint", "devkit.reenroll", "devkit.showCertificate"]) assert(hidden.has(id), `${id} is hidden from the palette`);
});

test("tasks: Add DevKit Tasks writes the missing devkit tasks to tasks.json once; they are then configured tasks", async () => {
    const folder = vscode.workspace.workspaceFolders![0];
    const file = path.join(folder.uri.fsPath, ".vscode", "tasks.json");
    const added = await vscode.commands.executeCommand<number>("devkit.addTasks", { quiet: true });
    assertEq(added, 5, "tasks added the first time");
    assertEq(await vscode.commands.executeCommand<number>("devkit.addTasks", { quiet: true }), 0, "tasks added the second time");
    const text = fs.readFileSync(file, "utf8");
    for (const name of ["build", "upload", "device-upload", "monitor", "generate-cert"]) assert(text.includes(`"task": "${name}"`), `tasks.json has ${name}`);
    // The repository's own .vscode/tasks.json carries the same entries.
    const repoTasks = path.resolve(vscode.extensions.getExtension(EXT_ID)!.extensionPath, "..", ".vscode", "tasks.json");
    if (fs.existsSync(repoTasks)) {
        const json = JSON.parse(fs.readFileSync(repoTasks, "utf8").replace(/^\s*\/\/.*$/gm, ""));
        assertEq(JSON.stringify(json.tasks), JSON.stringify(taskJsonEntries()), "the repository's .vscode/tasks.json");
    }
    const tasks = await vscode.tasks.fetchTasks({ type: "devkit" });
    assert(tasks.some((t) => t.name === "device-upload" && t.source === "Workspace"), `device-upload is a configured task (${tasks.map((t) => `${t.name}/${t.source}`).join(", ")})`);
});

test("port picker: a running virtual DevKit is listed as such (devkit/listPorts kind virtual), USB details shown", async () => {
    needDaemon();
    const stateDir = path.join(tmp, "sim-ports");
    const link = path.join(stateDir, "devkit.tty");
    const sim = await simOrSkip(stateDir, ["--mac", "c0bdd1a2b3c4", "--link", link]);
    try {
        const client = await api.ctx.ready();
        const r = await client.sendRequest<ext.ListPortsResult>("devkit/listPorts", { simDirs: [stateDir] });
        // (Other virtual DevKits of earlier tests, which the daemon controlled, may be listed too.)
        const v = r.ports.find((p) => p.kind === "virtual" && p.simDir === stateDir);
        assert(v, `the virtual DevKit in ${JSON.stringify(r.ports)}`);
        assertEq(v.port, link, "the virtual DevKit's port is its link");
        const item = portItem(v);
        assertEq(item.description, "Virtual DevKit", "picker description");
        const usb = portItem({ port: "/dev/ttyACM0", isDevkit: true, kind: "usb", description: "STM32 STLink", manufacturer: "STMicroelectronics", serialNumber: "0672FF", monitorOpen: false });
        assertEq(usb.description, "MXChip AZ3166 DevKit", "a DevKit's description");
        assert(/STM32 STLink.*STMicroelectronics.*serial 0672FF/.test(item.detail ?? "") || /STM32 STLink.*STMicroelectronics.*serial 0672FF/.test(usb.detail ?? ""), `USB product, maker and serial: ${usb.detail}`);
    } finally {
        sim.proc.kill();
    }
});

test("logs: the extension's log is a LogOutputChannel with levels; sketch selector limited to the workspace", async () => {
    const ch = api.ctx.log.channel as unknown as { logLevel?: vscode.LogLevel };
    assert(typeof ch.logLevel === "number", "the DevKit log has a log level");
    api.ctx.log.warn("a warning for the test");
    assert(/\[warn\] a warning for the test/.test(api.ctx.log.channel.transcript), "the level is kept");
    const folder = vscode.workspace.workspaceFolders![0];
    const sel = sketchSelector([folder]) as { scheme: string; pattern: string }[];
    const match = (p: string) => vscode.languages.match(sel as vscode.DocumentSelector, { uri: vscode.Uri.file(p), fileName: p, languageId: "cpp" } as vscode.TextDocument) > 0;
    assert(match(path.join(folder.uri.fsPath, "DevKitDPS", "DevKitDPS.ino")), "the workspace's sketch is selected");
    assert(match(path.join(folder.uri.fsPath, "DevKitDPS", "dps_config.h")), "its dps_config.h is selected");
    assert(!match(path.join(tmp, "elsewhere", "Other.ino")), "a sketch outside the workspace is not");
    assert(!match(path.join(folder.uri.fsPath, "DevKitDPS", "other.h")), "other headers are not");
});

test("package: icon, walkthrough media and their images exist; activation globs are shallow", async () => {
    const e = vscode.extensions.getExtension(EXT_ID)!;
    const pkg = e.packageJSON;
    const icon = path.join(e.extensionPath, pkg.icon);
    assert(fs.readFileSync(icon).subarray(1, 4).toString() === "PNG", `${pkg.icon} is a PNG`);
    assertEq(fs.readFileSync(icon).readUInt32BE(16), 128, "icon width");
    for (const step of pkg.contributes.walkthroughs[0].steps) {
        const md = path.join(e.extensionPath, step.media.markdown ?? step.media.image);
        assert(fs.existsSync(md), `${step.id}: ${md}`);
        for (const m of fs.readFileSync(md, "utf8").matchAll(/!\[[^\]]*\]\(([^)]+)\)/g)) {
            assert(fs.existsSync(path.join(path.dirname(md), m[1])), `${step.id}: image ${m[1]}`);
        }
    }
    for (const a of pkg.activationEvents) assert(!a.includes("**"), `shallow activation event ${a}`);
    assert(pkg.repository?.url, "a repository URL");
});

test("daemon: restarted after a crash, with a message in the log", async () => {
    needDaemon();
    const children = cp.execFileSync("ps", ["-o", "pid=,args=", "--ppid", String(process.pid)], { encoding: "utf8" });
    const line = children.split("\n").find((l) => / lsp\s*$/.test(l.trim()) && l.includes(path.basename(SERVER)));
    assert(line, `the daemon is a child of the extension host: ${children}`);
    process.kill(parseInt(line.trim(), 10), "SIGKILL");
    await waitFor("the restart message", () => api.ctx.log.channel.transcript.includes("stopped unexpectedly; restarting (1/3)"));
    await waitFor("the daemon running again", () => api.ctx.client?.isRunning() && api.ctx.health === "ok", 30_000);
    // By method name: the test bundle's RequestType objects are not the extension's.
    const ports = await api.ctx.client!.sendRequest<ext.ListPortsResult>(ext.listPorts.method, {});
    assert(Array.isArray(ports.ports), "the restarted daemon answers");
}, 60_000);

test("bootstrap: a devkitDps.server.path that is not devkit gives a clear error on the status item", async () => {
    const cfg = vscode.workspace.getConfiguration("devkitDps");
    const before = cfg.inspect<string>("server.path")?.globalValue;
    await cfg.update("server.path", "/bin/false", vscode.ConfigurationTarget.Global);
    try {
        let err: Error | undefined;
        await api.ctx.restart().catch((e) => (err = e));
        assert(err && /devkitDps\.server\.path .* does not point to a working devkit binary/.test(err.message), `error: ${err?.message}`);
        assertEq(api.ctx.health, "error", "health");
    } finally {
        await cfg.update("server.path", before, vscode.ConfigurationTarget.Global);
    }
    if (daemonUp) {
        await api.ctx.restart();
        assertEq(api.ctx.health, "ok", "health after restoring the setting");
    }
}, 60_000);

test("no daemon: Restart shows an error with Open Setting and Installation Guide (no unhandled rejection)", async () => {
    const cfg = vscode.workspace.getConfiguration("devkitDps");
    const before = cfg.inspect<string>("server.path")?.globalValue;
    await cfg.update("server.path", path.join(tmp, "no-such-devkit"), vscode.ConfigurationTarget.Global);
    try {
        const shown = api.shownErrors.length;
        await vscode.commands.executeCommand("devkit.restartServer"); // resolves: the failure is shown, not thrown
        const last = await waitFor("the error notification", () => (api.shownErrors.length > shown ? api.shownErrors[api.shownErrors.length - 1] : undefined));
        assert(/devkitDps\.server\.path/.test(last.title), `names the setting: ${last.title}`);
        assertEq(last.buttons.slice(0, 2).join(","), "Open Setting,Installation Guide", "buttons");
        assertEq(api.ctx.health, "error", "health");
    } finally {
        await cfg.update("server.path", before, vscode.ConfigurationTarget.Global);
    }
    if (daemonUp) await api.ctx.restart();
}, 60_000);

test("no unhandled promise rejections during the run", async () => {
    await new Promise((r) => setTimeout(r, 500));
    assertEq(rejections.length, 0, `unhandled rejections: ${rejections.join(" | ")}`);
});

test("a UDS never shows in any output channel (with verbose protocol tracing on)", async () => {
    const channels = api.channels();
    const all = channels.map((c) => c.transcript).join("\n");
    assert(all.length > 0, "the channels recorded something");
    if (daemonUp) {
        assert(api.ctx.traceChannel.transcript.includes("devkit/"), "the trace channel saw devkit/ requests (tracing is on)");
    }
    assert(canaries.size > 0 || !daemonUp, "some UDS was used");
    for (const c of channels) {
        for (const secret of canaries) {
            assert(!c.transcript.includes(secret), `channel "${c.name}" does not contain a UDS`);
            assert(!c.transcript.toLowerCase().includes(secret.toLowerCase()), `channel "${c.name}" does not contain a UDS (any case)`);
        }
    }
    if (!daemonUp) skip("no daemon: no UDS was sent, nothing meaningful to check");
});

// ---------------------------------------------------------------------------------------------

export async function run(): Promise<void> {
    let results;
    try {
        results = await runAll();
    } finally {
        for (const p of sims) p.kill("SIGTERM");
        await api?.ctx.stop().catch(() => undefined);
    }
    const failed = results.filter((r) => r.status === "failed").length;
    if (failed) throw new Error(`${failed} in-host test(s) failed`);
}
