// The "DevKit" view (Explorer): the project's device identity as the daemon records it
// (`devkit/identity`: last generated and last enrolled certificate, registration ID,
// thumbprint, FWID, drift) and the registration the status bar shows, with Copy Thumbprint,
// Re-enroll, Open in Azure portal, and the certificate decoded (`devkit/inspectCert`).

import * as vscode from "vscode";
import { Ctx } from "./ctx";
import { showReport } from "./errors";
import * as ext from "./lsp_ext";
import { LAST_VIRTUAL_RUN, VirtualRun } from "./commands/sim";
import { StatusBar } from "./status";

export class Node extends vscode.TreeItem {
    children: Node[] = [];
    /** For the context commands. */
    record?: Pick<ext.IdentityRecord, "registrationId" | "sha256Thumbprint" | "aliasCert">;
}

function leaf(label: string, description: string, icon: string, tooltip?: string): Node {
    const n = new Node(label, vscode.TreeItemCollapsibleState.None);
    n.description = description;
    n.iconPath = new vscode.ThemeIcon(icon);
    n.tooltip = tooltip ?? `${label}: ${description}`;
    return n;
}

/** The last virtual run's device: its identity and the hub it was assigned to. */
function virtualNode(v: VirtualRun): Node {
    const device = new Node(v.registrationId, vscode.TreeItemCollapsibleState.Expanded);
    device.description = "virtual DevKit";
    device.iconPath = new vscode.ThemeIcon("vm");
    device.contextValue = "devkitVirtual";
    device.record = v;
    const cert = leaf("Certificate", v.aliasCert, "shield");
    cert.command = { command: "devkit.showCertificate", title: "Show Certificate", arguments: [device] };
    device.children = [leaf("SHA-256", v.sha256Thumbprint, "key"), leaf("FWID", v.fwid, "file-binary"), leaf("Hub", v.assignedHub, "cloud"), cert];
    return device;
}

/** The drift, in the daemon's words; clicking it offers the drift's next actions. */
function driftLeaf(d: ext.Drift): Node {
    const what = d.fwidChanged ? "FWID changed" : d.coreDigestChanged ? "RIoT core changed" : d.staleEnrollment ? "enrollment out of date" : "identity changed";
    const n = leaf("Changed", what, "warning", d.message);
    n.command = { command: "devkit.showDrift", title: "What changed", arguments: [d] };
    return n;
}

export class DevkitView implements vscode.TreeDataProvider<Node>, vscode.Disposable {
    private readonly changed = new vscode.EventEmitter<void>();
    readonly onDidChangeTreeData = this.changed.event;
    private readonly disposables: vscode.Disposable[] = [this.changed];

    constructor(
        private readonly ctx: Ctx,
        private readonly status: StatusBar,
    ) {
        this.disposables.push(
            vscode.window.registerTreeDataProvider("devkit.devices", this),
            ctx.onRunning(() => this.refresh()),
        );
    }

    refresh(): void {
        this.changed.fire();
    }

    getTreeItem(n: Node): vscode.TreeItem {
        return n;
    }

    async getChildren(n?: Node): Promise<Node[]> {
        if (n) return n.children;
        const run = this.ctx.extCtx.globalState.get<VirtualRun>(LAST_VIRTUAL_RUN);
        return [...(await this.projectNodes()), ...(run ? [virtualNode(run)] : [])];
    }

    /** The project's identity (its last generated certificate) and its enrollment. */
    private async projectNodes(): Promise<Node[]> {
        const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
        if (!root || !this.ctx.client?.isRunning()) return [];
        let id: ext.IdentityResult;
        try {
            id = await this.ctx.client.sendRequest(ext.identity, { projectDir: root });
        } catch (e) {
            return [leaf("Identity", `not available: ${(e as Error).message}`, "warning")];
        }
        // The current identity is the last generated certificate; the enrollment is checked against it.
        const rec = id.lastGenerated ?? id.lastEnrolled;
        if (!rec) return [];
        const device = new Node(rec.registrationId, vscode.TreeItemCollapsibleState.Expanded);
        device.iconPath = new vscode.ThemeIcon("circuit-board");
        device.contextValue = "devkitDevice";
        device.record = rec;
        const reg = this.status.reg;
        const enrolled = id.enrollment !== "notEnrolled";
        const current = id.enrollment === "enrolled";
        device.children = [
            leaf("SHA-256", rec.sha256Thumbprint, "key"),
            leaf("FWID", rec.fwid, "file-binary"),
            leaf("Enrollment", enrolled ? (current ? "enrolled" : "out of date: enroll the current certificate") : "not enrolled", current ? "pass" : "warning"),
            // What changed (the FWID, or only the RIoT core digest, or the enrollment), in the daemon's words.
            ...(id.drift ? [driftLeaf(id.drift)] : []),
            leaf("Hub", reg.state === "assigned" ? reg.hub : "not seen yet", reg.state === "assigned" ? "cloud" : "circle-outline"),
        ];
        const cert = leaf("Certificate", rec.aliasCert, "shield");
        cert.command = { command: "devkit.showCertificate", title: "Show Certificate", arguments: [device] };
        device.children.push(cert);
        return [device];
    }

    dispose(): void {
        for (const d of this.disposables) d.dispose();
    }
}

/** The Azure portal's list of DPS instances. */
const PORTAL_DPS_LIST = "https://portal.azure.com/#browse/Microsoft.Devices%2FProvisioningServices";

/** The view's commands; `node` is the device node (context menu) or its certificate. */
export function registerViewCommands(ctx: Ctx, view: DevkitView): vscode.Disposable[] {
    const rec = (node?: Node) => node?.record;
    return [
        vscode.commands.registerCommand("devkit.refreshDevices", () => view.refresh()),
        vscode.commands.registerCommand("devkit.showDrift", (d?: ext.Drift) => d && showReport("warning", d.message, d.nextActions)),
        vscode.commands.registerCommand("devkit.copyThumbprint", async (node?: Node) => {
            const r = rec(node);
            if (r) await vscode.env.clipboard.writeText(r.sha256Thumbprint);
        }),
        vscode.commands.registerCommand("devkit.reenroll", async (node?: Node) => {
            await vscode.commands.executeCommand("devkit.enroll", rec(node) ? { cert: rec(node)!.aliasCert } : undefined);
            view.refresh();
        }),
        vscode.commands.registerCommand("devkit.openPortal", async (node?: Node) => {
            // The portal has no link to one enrollment without the DPS resource's name: open the
            // DPS list, with the registration ID on the clipboard for "Manage enrollments".
            const r = rec(node);
            if (r) {
                await vscode.env.clipboard.writeText(r.registrationId);
                void vscode.window.showInformationMessage(`Registration ID ${r.registrationId} copied: in your DPS, Manage enrollments › Individual enrollments.`);
            }
            await vscode.env.openExternal(vscode.Uri.parse(PORTAL_DPS_LIST));
        }),
        vscode.commands.registerCommand("devkit.showCertificate", async (node?: Node) => {
            const r = rec(node);
            if (!r || !ctx.client) return;
            const info = await ctx.client.sendRequest(ext.inspectCert, { path: r.aliasCert });
            const lines = [
                `Subject CN        ${info.subjectCn}`,
                `Issuer CN         ${info.issuerCn}`,
                `Kind              ${info.isAlias ? "RIoT alias certificate" : "DeviceID certificate"}`,
                `Signature valid   ${info.signatureValid}`,
                `SHA-1             ${info.sha1Thumbprint}`,
                `SHA-256           ${info.sha256Thumbprint}`,
                `FWID              ${info.fwid ?? "-"}`,
                `Public key        ${info.publicKey}`,
                `DeviceID key      ${info.deviceIdPublicKey ?? "-"}`,
                `File              ${r.aliasCert}`,
            ];
            const doc = await vscode.workspace.openTextDocument({ content: lines.join("\n") + "\n", language: "plaintext" });
            await vscode.window.showTextDocument(doc, { preview: true });
        }),
    ];
}
