// The DevKit's serial port: the picker over `devkit/listPorts` (virtual DevKits included) and
// the port a command uses (the setting, else the only DevKit, else ask).

import * as vscode from "vscode";
import { config, updateSetting } from "../config";
import * as ext from "../lsp_ext";
import { simDirOf } from "./inputs";
import { Services, setContext } from "./services";

/** State directories of virtual DevKits this workspace knows of, for `devkit/listPorts`. */
export async function knownSimDirs(s: Services): Promise<string[]> {
    const dirs = [s.ctx.extCtx.workspaceState.get<string>("devkitDps.simDir"), await simDirOf(s, config().port).catch(() => undefined)];
    return [...new Set(dirs.filter((d): d is string => !!d))];
}

/** The ports the daemon sees, virtual DevKits included. */
export async function listPorts(s: Services): Promise<ext.PortInfo[]> {
    const client = await s.ctx.ready();
    return (await client.sendRequest(ext.listPorts, { simDirs: await knownSimDirs(s) })).ports;
}

/** One port as the picker shows it: what it is (USB product, maker) and its serial number. */
export function portItem(p: ext.PortInfo): vscode.QuickPickItem & { port: string } {
    const virtual = p.kind === "virtual";
    const what = virtual ? "Virtual DevKit" : p.isDevkit ? "MXChip AZ3166 DevKit" : p.description;
    const details = [
        p.isDevkit && !virtual && p.description ? p.description : undefined,
        p.manufacturer,
        p.serialNumber ? `serial ${p.serialNumber}` : undefined,
        virtual && p.simDir ? `state ${p.simDir}` : undefined,
        p.heldBy ? `in use by ${p.heldBy}` : undefined,
        p.monitorOpen ? "monitor open" : undefined,
    ].filter(Boolean);
    return {
        label: `${virtual ? "$(vm) " : p.isDevkit ? "$(circuit-board) " : "$(plug) "}${p.port}`,
        description: what ?? "",
        detail: details.length ? details.join(" · ") : undefined,
        port: p.port,
    };
}

/**
 * Pick a port (or type a path). "Select Serial Port" keeps it in the setting (`save`); a
 * command that only needs one for this run uses it without saving: a setting is written only
 * when the user chose to set it (issue 19).
 */
export async function pickPort(s: Services, save = true): Promise<string | undefined> {
    const ports = await listPorts(s);
    const items: (vscode.QuickPickItem & { port?: string; start?: boolean })[] = ports.map(portItem);
    // No hardware: the virtual DevKit is one click away (the daemon runs it).
    if (!ports.some((p) => p.kind === "virtual")) items.push({ label: "$(vm) Start a Virtual DevKit", description: "no hardware needed", start: true });
    items.push({ label: "$(edit) Enter a port path…", port: undefined });
    const pick = await vscode.window.showQuickPick(items, {
        title: save ? "DevKit serial port" : "DevKit serial port (for this command; DevKit: Select Serial Port keeps one)",
        placeHolder: ports.length ? "DevKits (USB 0483:374B) first, then virtual DevKits" : "No serial port found: plug the DevKit in, or enter a path",
        matchOnDescription: true,
        matchOnDetail: true,
    });
    if (!pick) return undefined;
    if (pick.start) {
        const started = await vscode.commands.executeCommand<ext.SimStartResult | undefined>("devkit.startVirtualDevkit", { quiet: true });
        if (started && !save) lastPicked = started.port;
        return started?.port;
    }
    const port =
        pick.port ??
        (await vscode.window.showInputBox({ title: "Serial port path", placeHolder: "/dev/ttyACM0 or COM3", ignoreFocusOut: true }));
    if (!port) return undefined;
    if (save) {
        await updateSetting("serial.port", port);
        setContext("devkit.portSelected", true);
    } else lastPicked = port;
    return port;
}

/** The port picked for an earlier command in this window (not saved): offered first next time. */
let lastPicked: string | undefined;

/** The configured port, else the only DevKit found, else ask (without saving the answer). */
export async function resolvePort(s: Services): Promise<string | undefined> {
    const configured = config().port;
    if (configured) return configured;
    const devkits = (await listPorts(s)).filter((p) => p.isDevkit);
    if (devkits.length === 1) return devkits[0].port;
    if (lastPicked && devkits.some((p) => p.port === lastPicked)) return lastPicked;
    return pickPort(s, false);
}

export const selectPort = (s: Services) => () => pickPort(s);
