// A 401002 explained (issue 22, item 8): when the daemon could ask DPS why the device's
// certificate was rejected, the `failed` registration event carries which input differs and
// the one action that fixes it. The editor shows that as ONE notification with ONE button:
// re-enroll the current certificate, restore the UDS, or generate the certificate. The
// daemon decides which; this module only words the button and shows it once.

import * as vscode from "vscode";
import { ActionButton, shownErrors } from "./errors";
import * as ext from "./lsp_ext";

export interface ExplanationView {
    title: string;
    /** The one fix; `undefined` when this version knows no command for the daemon's action. */
    button: ActionButton | undefined;
}

/** The button for the explanation's action, worded for what it does here. */
function fixFor(x: ext.MismatchExplanation): ActionButton | undefined {
    const a = x.nextActions?.[0];
    switch (a?.action) {
        case "enroll":
            return {
                label: x.enrolledSha256Thumbprint ? "Re-enroll with the Current Certificate" : "Enroll the Current Certificate",
                command: "devkit.enroll",
                args: [],
            };
        case "setUds":
            // The UDS the current certificate was generated with: the one kept for this device.
            return { label: "Restore the UDS", command: "devkit.setUds", args: [{ registrationId: x.registrationId, useStored: true }] };
        case "regenerateCert":
            return { label: "Generate Certificate", command: "devkit.generateCert", args: [] };
        default:
            return undefined;
    }
}

/** What the notification says and its one button. */
export function explanationView(x: ext.MismatchExplanation): ExplanationView {
    const why = x.message.trim().replace(/[.\s]*$/, "");
    return {
        title: `DPS rejected the certificate of ${x.registrationId} (401002): ${why}.`,
        button: fixFor(x),
    };
}

/** The same explanation again within this time (the device retries) is not shown again. */
const REPEAT_MS = 60_000;
const lastShown = new Map<string, number>();

/**
 * Shows the explanation as one error notification with its one button (no other), once per
 * explanation within a minute; `force` (the user clicked the status item) shows it anyway.
 * Resolves when the user picked or dismissed it.
 */
export async function showExplanation(x: ext.MismatchExplanation, force = false): Promise<void> {
    const key = `${x.registrationId}|${x.cause}|${x.enrolledSha256Thumbprint ?? ""}|${x.generatedSha256Thumbprint ?? ""}`;
    const now = Date.now();
    if (!force && now - (lastShown.get(key) ?? 0) < REPEAT_MS) return;
    lastShown.set(key, now);
    const view = explanationView(x);
    shownErrors.push({ title: view.title, full: view.title, buttons: view.button ? [view.button.label] : [] });
    if (shownErrors.length > 50) shownErrors.shift();
    const pick = await vscode.window.showErrorMessage(view.title, ...(view.button ? [view.button.label] : []));
    if (pick && view.button) await vscode.commands.executeCommand(view.button.command, ...view.button.args);
}
