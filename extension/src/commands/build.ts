// Build and flash: the build the daemon finds (`devkit/findBuild`), the inputs of
// `devkit/build` and `devkit/deviceUpload` from the settings, and "Device Upload".

import * as path from "node:path";
import * as vscode from "vscode";
import { config } from "../config";
import { buttonsFor, showReport } from "../errors";
import * as ext from "../lsp_ext";
import { isCancelled, withNotificationProgress } from "../progress";
import { simDirOf } from "./inputs";
import { resolvePort } from "./port";
import { Quiet, Services, setContext, workspaceRoot } from "./services";

/** Where the build is: the image and its map, or a build directory (the daemon finds the pair). */
export interface BuildArgs extends Quiet {
    bin?: string;
    map?: string;
    buildDir?: string;
}

/** The build folder the user chose once (when the project's own has no image). */
export const CHOSEN_BUILD_DIR = "devkitDps.buildDir";

/**
 * The image and map to use: as given, else the daemon's choice (`devkit/findBuild`: the given
 * or chosen build directory, else the project's `.devkit/build`). When it finds none, the
 * user may build or pick the folder (remembered for this workspace).
 */
export async function findBuild(s: Services, args: BuildArgs): Promise<{ bin: string; map: string } | undefined> {
    if (args.bin && args.map) return { bin: args.bin, map: args.map };
    const projectDir = workspaceRoot();
    if (!projectDir && !args.buildDir) throw new Error("Open the sketch's folder (or the project) first.");
    const client = await s.ctx.ready();
    const state = s.ctx.extCtx.workspaceState;
    const buildDir = args.buildDir ?? state.get<string>(CHOSEN_BUILD_DIR);
    try {
        return await client.sendRequest(ext.findBuild, { projectDir: projectDir ?? buildDir ?? "", buildDir });
    } catch (e) {
        if (args.quiet || args.buildDir || isCancelled(e)) throw e;
        // The daemon says why (no image, several, no map) and what to do next (build).
        const actions = buttonsFor((e as { data?: { nextActions?: ext.NextAction[] } }).data?.nextActions);
        const choose = "Choose Build Folder…";
        const pick = await vscode.window.showErrorMessage(String((e as Error).message), ...actions.map((a) => a.label), choose);
        const action = actions.find((a) => a.label === pick);
        if (action) await vscode.commands.executeCommand(action.command, ...action.args);
        if (pick !== choose) return undefined;
        const picked = await vscode.window.showOpenDialog({ title: "Build folder (holding <sketch>.ino.bin and .ino.map)", canSelectFolders: true, canSelectFiles: false });
        const dir = picked?.[0]?.fsPath;
        if (!dir) return undefined;
        const found = await client.sendRequest(ext.findBuild, { projectDir: projectDir ?? dir, buildDir: dir });
        await state.update(CHOSEN_BUILD_DIR, dir);
        return found;
    }
}

/**
 * The sketch folder: the daemon's default `firmware/DevKitDPS` when present, else the first
 * `.ino`'s folder. A folder without any sketch is said at once, before a port is asked for.
 */
async function sketchPath(root: string): Promise<string | undefined> {
    try {
        await vscode.workspace.fs.stat(vscode.Uri.file(path.join(root, "firmware", "DevKitDPS")));
        return undefined;
    } catch {
        const inos = await vscode.workspace.findFiles("**/*.ino", "**/{node_modules,.devkit}/**", 1);
        if (!inos[0]) throw new Error(`This folder has no sketch (no .ino file in ${path.basename(root)}): open your DevKit sketch's folder, or try DevKit: Provision a Virtual DevKit.`);
        return path.dirname(inos[0].fsPath);
    }
}

/** What build and device-upload need: the project, the sketch (`sketch`, else found) and the DPS settings compiled in. */
export async function buildInputs(sketch?: string): Promise<ext.BuildParams> {
    const root = workspaceRoot();
    if (!root) throw new Error("Open the sketch's folder (or the project) first.");
    const c = config();
    return {
        projectDir: root,
        sketch: sketch ?? (await sketchPath(root)),
        arduinoCli: c.arduinoCli,
        arduinoData: c.arduinoData,
        // Without an ID Scope the daemon reuses the DPS settings of the previous build.
        ...(c.idScope ? { idScope: c.idScope, globalEndpoint: c.globalEndpoint, registrationId: c.registrationId } : {}),
    };
}

/** Compiler messages in GCC's format, for the task terminal (Problems has them from the daemon). */
export function gccLines(diags: ext.CompilerDiagnostic[] | undefined): string[] {
    return (diags ?? []).map((d) => `${d.file}:${d.line}:${d.column ?? 1}: ${d.severity}: ${d.message}`);
}

/**
 * The flash target for `port`: the backend, and for the virtual DevKit its state folder (the
 * daemon's answer for the port, else the one chosen before, else ask).
 */
export async function flashTarget(s: Services, port: string): Promise<ext.FlashParams> {
    const backend = config().uploadBackend;
    if (backend === undefined) {
        // "auto": a virtual DevKit's port is flashed through the virtual DevKit's loader.
        const virtual = await simDirOf(s, port);
        return virtual ? { port, backend: "sim", simDir: virtual } : { port, backend };
    }
    if (backend !== "sim") return { port, backend };
    const remembered = s.ctx.extCtx.workspaceState.get<string>("devkitDps.simDir");
    let simDir = (await simDirOf(s, port)) ?? remembered;
    if (!simDir) {
        const picked = await vscode.window.showOpenDialog({
            title: "State folder of the virtual DevKit (devkit sim --sim-dir)",
            canSelectFolders: true,
            canSelectFiles: false,
        });
        if (!picked?.[0]) throw new vscode.CancellationError();
        simDir = picked[0].fsPath;
        await s.ctx.extCtx.workspaceState.update("devkitDps.simDir", simDir);
    }
    return { port, backend, simDir };
}

export async function deviceUpload(s: Services): Promise<ext.DeviceUploadResult | undefined> {
    // What the folder lacks is said before anything is asked (a port, a build folder).
    const inputs = await buildInputs();
    const port = await resolvePort(s);
    if (!port) return undefined;
    const client = await s.ctx.ready();
    const result = await withNotificationProgress(client, "Device Upload", ext.deviceUpload, { ...inputs, ...(await flashTarget(s, port)) });
    setContext("devkit.uploaded", true);
    for (const w of result.warnings) s.ctx.log.warn(w);
    // The daemon's words for what changed (the FWID, or only the RIoT core digest) and its next steps.
    // The drift's message is among the warnings too: said once.
    const said = [...result.warnings.filter((w) => w !== result.drift?.message), ...(result.drift ? [result.drift.message] : [])];
    const next = result.drift ? result.drift.nextActions : result.nextActions;
    void showReport(said.length ? "warning" : "info", [`Uploaded to the DevKit on ${port}.`, ...said].join(" "), next);
    return result;
}

export const deviceUploadCommand = (s: Services) => () => deviceUpload(s);
export const buildCommand = () => () => vscode.commands.executeCommand("workbench.action.tasks.runTask", "devkit: build");
