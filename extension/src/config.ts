// The one place the extension reads (and writes) settings, rust-analyzer style: every other
// module asks `config()` for a typed snapshot and never calls `getConfiguration` itself (the
// suite's "config.ts is the only settings reader" test fails otherwise). Setting ids appear here
// and in package.json only.

import * as vscode from "vscode";

/** The extension's configuration section. */
export const SECTION = "devkitDps";

export type LineEnding = "cr" | "lf" | "crlf" | "none";

/** The settings, as the extension uses them (empty strings become `undefined`). */
export interface Config {
    /** `devkitDps.server.path`: the daemon binary ("" = bundled, else PATH). */
    serverPath: string;
    idScope: string | undefined;
    globalEndpoint: string | undefined;
    /** PEM of a CA to trust for the DPS service (a local emulator). */
    caFile: string | undefined;
    registrationId: string | undefined;
    port: string | undefined;
    baudRate: number;
    lineEnding: LineEnding;
    timestamps: boolean;
    arduinoCli: string | undefined;
    arduinoData: string | undefined;
    /** `devkitDps.upload.backend`; `undefined` for "auto" (the daemon chooses). */
    uploadBackend: string | undefined;
}

/** Setting keys under `devkitDps` the extension writes. */
export type WritableSetting = "serial.port" | "dps.globalEndpoint" | "dps.idScope" | "dps.caFile" | "registrationId";

/** The settings the daemon's "Move <value> to settings" quick fix may write (full ids). */
export const QUICK_FIX_SETTINGS: readonly string[] = ["devkitDps.dps.globalEndpoint", "devkitDps.dps.idScope", "devkitDps.registrationId"];

const text = (c: vscode.WorkspaceConfiguration, key: string): string | undefined => c.get<string>(key, "") || undefined;

/** A snapshot of the settings now. */
export function config(): Config {
    const c = vscode.workspace.getConfiguration(SECTION);
    const backend = c.get<string>("upload.backend", "auto");
    return {
        serverPath: c.get<string>("server.path", ""),
        idScope: text(c, "dps.idScope"),
        globalEndpoint: text(c, "dps.globalEndpoint"),
        caFile: text(c, "dps.caFile"),
        registrationId: text(c, "registrationId"),
        port: text(c, "serial.port"),
        baudRate: c.get<number>("serial.baudRate", 115200),
        lineEnding: c.get<LineEnding>("serial.lineEnding", "cr"),
        timestamps: c.get<boolean>("serial.timestamps", false),
        arduinoCli: text(c, "arduinoCli.path"),
        arduinoData: text(c, "arduinoData.path"),
        uploadBackend: backend === "auto" ? undefined : backend,
    };
}

/** What the daemon gets at start (`initializationOptions`): the DPS settings it checks sketches against. */
export function initializationOptions(): Record<string, unknown> {
    const c = config();
    return {
        globalEndpoint: c.globalEndpoint,
        idScope: c.idScope,
        registrationId: c.registrationId,
        uploadBackend: c.uploadBackend ?? "auto",
        arduinoCli: c.arduinoCli,
    };
}

/** Writes one setting: in the workspace when a folder is open, else for the user. */
export async function updateSetting(key: WritableSetting, value: unknown): Promise<void> {
    const target = vscode.workspace.workspaceFolders?.length ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
    await vscode.workspace.getConfiguration(SECTION).update(key, value, target);
}

/** True when the change `e` touches `devkitDps.<key>` (or the whole section without a key). */
export function affects(e: vscode.ConfigurationChangeEvent, key?: string): boolean {
    return e.affectsConfiguration(key ? `${SECTION}.${key}` : SECTION);
}

/** The `tasks` entries of a folder's tasks.json (its own value, not the user's). */
export function folderTasks(folder: vscode.WorkspaceFolder): { tasks: unknown[]; hasVersion: boolean } {
    const c = vscode.workspace.getConfiguration("tasks", folder.uri);
    return {
        tasks: (c.inspect<unknown[]>("tasks")?.workspaceFolderValue ?? []).filter((t) => t && typeof t === "object"),
        hasVersion: c.inspect("version")?.workspaceFolderValue !== undefined,
    };
}

/** Writes a folder's tasks.json `tasks` (and `version` when it has none). */
export async function writeFolderTasks(folder: vscode.WorkspaceFolder, tasks: unknown[], setVersion: boolean): Promise<void> {
    const c = vscode.workspace.getConfiguration("tasks", folder.uri);
    if (setVersion) await c.update("version", "2.0.0", vscode.ConfigurationTarget.WorkspaceFolder);
    await c.update("tasks", tasks, vscode.ConfigurationTarget.WorkspaceFolder);
}
