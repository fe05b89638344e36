// Factory scale (issue 21): "Enroll a Batch" (`devkit/enrollBatch`: every row of a
// `generate-cert --batch` manifest in DPS bulk requests, resumable from the journal next to the
// manifest) and "Enroll a Group" (`devkit/enrollGroup`: an X.509 CA enrollment group). The
// connection string comes from secret storage, as for Enroll; the daemon does the rest.

import * as path from "node:path";
import * as vscode from "vscode";
import { missing, showReport } from "../errors";
import * as ext from "../lsp_ext";
import { withNotificationProgress } from "../progress";
import { askConnectionString, dpsCaFile } from "./enroll";
import { Quiet, Services } from "./services";

/** The stored DPS connection string, else ask (stored once a task worked with it). */
async function connection(s: Services, quiet: boolean): Promise<{ cs: string; isNew: boolean } | undefined> {
    const stored = await s.secrets.getConnectionString();
    if (stored) return { cs: stored, isNew: false };
    if (quiet) throw missing("No DPS connection string stored: run DevKit: Enroll Device in DPS once interactively.", { action: "enroll" });
    const cs = await askConnectionString(s);
    return cs ? { cs, isNew: true } : undefined;
}

async function pickFile(title: string, filters: Record<string, string[]>, near?: string): Promise<string | undefined> {
    const picked = await vscode.window.showOpenDialog({
        title,
        canSelectFiles: true,
        canSelectFolders: false,
        filters,
        defaultUri: near ? vscode.Uri.file(near) : vscode.workspace.workspaceFolders?.[0]?.uri,
    });
    return picked?.[0]?.fsPath;
}

export interface EnrollBatchArgs extends Quiet {
    /** The `generate-cert --batch` manifest. */
    manifest?: string;
    /** Where each row's `<registration id>.pem` is; default: asked, starting at the manifest's folder. */
    certDir?: string;
    caFile?: string;
    reportCsv?: string;
    /** 0: no pacing (the emulator); default DPS's quota. */
    requestsPerMinute?: number;
}

/** One line for a person: what the batch did, counts that are zero left out. */
export function batchSummary(r: ext.EnrollBatchResult): string {
    const parts = [
        [r.created, "created"],
        [r.updated, "updated"],
        [r.unchanged, "already enrolled with the same certificate"],
        [r.skipped, "skipped (enrolled by an earlier run)"],
        [r.failed, "failed"],
    ]
        .filter(([n]) => n)
        .map(([n, what]) => `${n} ${what}`);
    const rows = `${r.rows} row${r.rows === 1 ? "" : "s"}`;
    return `Batch ${path.basename(r.manifest)}: ${rows}${parts.length ? `, ${parts.join(", ")}` : ""} (${r.requests} DPS request${r.requests === 1 ? "" : "s"}).`;
}

export async function enrollBatch(s: Services, args: EnrollBatchArgs = {}): Promise<ext.EnrollBatchResult | undefined> {
    const quiet = !!args.quiet;
    const manifest = args.manifest ?? (quiet ? undefined : await pickFile("The batch's manifest (the CSV generate-cert --batch read)", { CSV: ["csv"], "All files": ["*"] }));
    if (!manifest) {
        if (quiet) throw new Error("Enroll a Batch needs the manifest.");
        return undefined;
    }
    let certDir = args.certDir;
    if (!certDir && !quiet) {
        const picked = await vscode.window.showOpenDialog({
            title: "The folder with the batch's certificates (<registration id>.pem)",
            canSelectFiles: false,
            canSelectFolders: true,
            defaultUri: vscode.Uri.file(path.dirname(manifest)),
        });
        certDir = picked?.[0]?.fsPath;
    }
    if (!certDir) {
        if (quiet) throw new Error("Enroll a Batch needs the certificates' folder.");
        return undefined;
    }
    const conn = await connection(s, quiet);
    if (!conn) return undefined;
    const caFile = args.caFile ?? (await dpsCaFile(s, conn.cs, quiet));
    const client = await s.ctx.ready();
    const params: ext.EnrollBatchParams = { connectionString: conn.cs, manifest, certDir, caFile, reportCsv: args.reportCsv, requestsPerMinute: args.requestsPerMinute };
    const result = await withNotificationProgress(client, `Enrolling the batch ${path.basename(manifest)}`, ext.enrollBatch, params);
    if (conn.isNew) await s.secrets.storeConnectionString(conn.cs);
    const summary = batchSummary(result);
    s.ctx.log.info(`${summary} Report: ${result.reportCsv}`);
    for (const f of result.failures) s.ctx.log.warn(`batch line ${f.line} (${f.registrationId}): ${f.message}`);
    for (const w of result.warnings) s.ctx.log.warn(w);
    if (!quiet) {
        const views = [{ label: "Open Report", run: () => vscode.window.showTextDocument(vscode.Uri.file(result.reportCsv)) }];
        // What failed is retried by running the batch again: what DPS confirmed is skipped.
        if (result.failed) views.push({ label: "Run Again", run: () => vscode.commands.executeCommand("devkit.enrollBatch", { ...args, manifest, certDir, caFile }) });
        const said = result.warnings.length ? ` ${result.warnings.join(" ")}` : "";
        void showReport(result.failed || result.warnings.length ? "warning" : "info", `${summary}${said}`, [], views);
    }
    return result;
}

export interface EnrollGroupArgs extends Quiet {
    group?: string;
    /** The group's root or intermediate CA certificate (PEM or DER). */
    caCert?: string;
    caFile?: string;
    iotHub?: string;
}

export async function enrollGroup(s: Services, args: EnrollGroupArgs = {}): Promise<ext.EnrollGroupResult | undefined> {
    const quiet = !!args.quiet;
    const group =
        args.group ??
        (quiet
            ? undefined
            : await vscode.window.showInputBox({
                  title: "Enrollment group ID",
                  prompt: "Lowercase letters, digits and - (the group's name in DPS)",
                  ignoreFocusOut: true,
                  validateInput: (v) => (v.trim() ? undefined : "The group needs an ID."),
              }));
    if (!group) {
        if (quiet) throw new Error("Enroll a Group needs the group's ID.");
        return undefined;
    }
    const caCert = args.caCert ?? (quiet ? undefined : await pickFile(`The CA certificate of ${group} (your root or intermediate CA; not a DevKit's RIoT certificate)`, { Certificate: ["pem", "crt", "cer", "der"] }));
    if (!caCert) {
        if (quiet) throw new Error("Enroll a Group needs the group's CA certificate.");
        return undefined;
    }
    const conn = await connection(s, quiet);
    if (!conn) return undefined;
    const caFile = args.caFile ?? (await dpsCaFile(s, conn.cs, quiet));
    const client = await s.ctx.ready();
    const params: ext.EnrollGroupParams = { connectionString: conn.cs, group: group.trim(), caCert, caFile, iotHub: args.iotHub };
    const result = await withNotificationProgress(client, `Creating the enrollment group ${group.trim()}`, ext.enrollGroup, params);
    if (conn.isNew) await s.secrets.storeConnectionString(conn.cs);
    s.ctx.log.info(`enrollment group ${result.enrollmentGroupId} (${result.provisioningStatus}, CA ${result.caSubject ?? "?"}, SHA-256 ${result.sha256Thumbprint})`);
    for (const w of result.warnings) s.ctx.log.warn(w);
    if (!quiet) {
        const said = result.warnings.length ? ` ${result.warnings.join(" ")}` : "";
        const subject = result.caSubject ? ` (CA ${result.caSubject})` : "";
        void showReport(result.warnings.length ? "warning" : "info", `Enrollment group ${result.enrollmentGroupId}${subject} is ${result.provisioningStatus}.${said}`, result.nextActions);
    }
    return result;
}

export const enrollBatchCommand = (s: Services) => (args?: EnrollBatchArgs) => enrollBatch(s, args ?? {});
export const enrollGroupCommand = (s: Services) => (args?: EnrollGroupArgs) => enrollGroup(s, args ?? {});
