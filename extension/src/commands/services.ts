// What every command module gets (rust-analyzer's `Ctx` for its command factories): the daemon,
// the monitors, the status bar and the secret store. Commands are small factories
// `(s: Services) => handler`, registered in ./index.ts.

import * as vscode from "vscode";
import { Ctx } from "../ctx";
import { MonitorManager } from "../monitor";
import { Secrets } from "../secrets";
import { StatusBar } from "../status";

export interface Services {
    ctx: Ctx;
    monitors: MonitorManager;
    status: StatusBar;
    secrets: Secrets;
}

/** A command handler built from the services; its arguments come from callers (tasks, tests, lenses). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Cmd = (...args: any[]) => unknown;
export type Factory = (s: Services) => Cmd;

/** Arguments most commands accept when called programmatically. */
export interface Quiet {
    /** Report failures by throwing instead of a message (tasks, tests). */
    quiet?: boolean;
}

export function setContext(key: string, value: unknown): void {
    void vscode.commands.executeCommand("setContext", key, value);
}

export function workspaceRoot(): string | undefined {
    return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
}
