// Input boxes ask the daemon (`devkit/validateInput`) whether a value is acceptable: the rule
// is the one the tasks apply later, so the box and the request never disagree. Also the
// automatic registration ID (`devkit/registrationId`) and what a port is.

import * as vscode from "vscode";
import * as ext from "../lsp_ext";
import { Services } from "./services";

/** The daemon's verdict on `value` as `input` (a secret value is sent, never echoed back). */
export async function validate(s: Services, input: ext.ValidatedInput, value: string): Promise<ext.ValidateInputResult> {
    const client = await s.ctx.ready();
    // `input` first: the channels' redactor masks the `value` that follows a secret input.
    return client.sendRequest(ext.validateInput, { input, value });
}

/**
 * An input box validator over `devkit/validateInput`: an error blocks Enter, a warning (an
 * unusual ID Scope, the published sample UDS) shows but lets the user go on. A daemon that
 * cannot answer blocks nothing: the request itself refuses a bad value with the same words.
 */
export function validator(s: Services, input: ext.ValidatedInput): (v: string) => Promise<vscode.InputBoxValidationMessage | undefined> {
    return async (v) => {
        let r: ext.ValidateInputResult;
        try {
            r = await validate(s, input, v);
        } catch (e) {
            s.ctx.log.warn(`validating ${input}: ${(e as Error).message}`);
            return undefined;
        }
        if (!r.valid) return { message: r.message ?? `invalid ${input}`, severity: vscode.InputBoxValidationSeverity.Error };
        if (r.warnings.length) return { message: r.warnings.join(" "), severity: vscode.InputBoxValidationSeverity.Warning };
        return undefined;
    };
}

/** Who a device is: its registration ID, or its MAC address and firmware version. */
export interface DeviceRef {
    registrationId?: string;
    mac?: string;
    firmwareVersion?: string;
}

/** The registration ID of `r` as the daemon builds it (`az-<mac>v<x>v<y>v<z>`, MAC normalised): the key its UDS is stored under. */
export async function deviceKey(s: Services, r: DeviceRef): Promise<string> {
    const client = await s.ctx.ready();
    return (await client.sendRequest(ext.registrationId, r)).registrationId;
}

/** The state directory of the virtual DevKit whose link `port` is, if it is one. */
export async function simDirOf(s: Services, port: string | undefined): Promise<string | undefined> {
    if (!port) return undefined;
    return (await validate(s, "port", port)).simDir;
}
