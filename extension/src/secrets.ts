// Secrets live only in VS Code's SecretStorage (the OS keychain where there is one): the UDS per
// device, the DPS connection string. Nothing secret goes to settings, state files, logs or argv.

import * as crypto from "node:crypto";
import * as vscode from "vscode";
import { Redactor } from "./channels";

/** The UDS published in the old tutorial: refused unless the user insists (and never generated). */
export const PUBLISHED_SAMPLE_UDS = "19e25a259d0c2be03a02d416c05c48ccd0cc7d1743458aae1cb488b074993eae";

const UDS_RE = /^[0-9a-fA-F]{64}$/;

/** Why a UDS is unusable, or undefined when it is fine. */
export function checkUds(uds: string): string | undefined {
    if (!UDS_RE.test(uds)) return "A UDS is exactly 64 hexadecimal characters (32 bytes).";
    if (/^0+$/.test(uds) || /^f+$/i.test(uds)) return "This UDS has no entropy; generate one instead.";
    return undefined;
}

/** A fresh UDS from the platform's cryptographic random source. */
export function newUds(): string {
    return crypto.randomBytes(32).toString("hex");
}

export function checkConnectionString(cs: string): string | undefined {
    const parts = new Map(
        cs
            .split(";")
            .filter((p) => p.includes("="))
            .map((p) => [p.slice(0, p.indexOf("=")).trim().toLowerCase(), p.slice(p.indexOf("=") + 1)] as const),
    );
    for (const k of ["hostname", "sharedaccesskeyname", "sharedaccesskey"]) {
        if (!parts.get(k)) {
            return "A DPS connection string looks like HostName=<dps>.azure-devices-provisioning.net;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=<key>.";
        }
    }
    return undefined;
}

export class Secrets {
    constructor(
        private readonly storage: vscode.SecretStorage,
        private readonly redactor: Redactor,
        /** Which devices have a UDS stored (secret storage cannot list its keys); no secrets. */
        private readonly index?: vscode.Memento,
    ) {}

    /** Registration IDs with a UDS stored. */
    knownDevices(): string[] {
        return this.index?.get<string[]>("devkitDps.udsDevices", []) ?? [];
    }

    private async indexDevice(device: string, present: boolean): Promise<void> {
        if (!this.index) return;
        const rest = this.knownDevices().filter((d) => d !== device);
        await this.index.update("devkitDps.udsDevices", present ? [...rest, device] : rest);
    }

    private static udsKey(device: string): string {
        return `devkitDps.uds/${device}`;
    }

    async getUds(device: string): Promise<string | undefined> {
        const v = await this.storage.get(Secrets.udsKey(device));
        this.redactor.add(v);
        return v;
    }

    async storeUds(device: string, uds: string): Promise<void> {
        this.redactor.add(uds);
        await this.storage.store(Secrets.udsKey(device), uds);
        await this.indexDevice(device, true);
    }

    async deleteUds(device: string): Promise<void> {
        await this.storage.delete(Secrets.udsKey(device));
        await this.indexDevice(device, false);
    }

    async getConnectionString(): Promise<string | undefined> {
        const v = await this.storage.get("devkitDps.dpsConnectionString");
        this.redactor.add(v);
        if (v) this.redactor.add(/SharedAccessKey=([^;]+)/i.exec(v)?.[1]);
        return v;
    }

    async storeConnectionString(cs: string): Promise<void> {
        this.redactor.add(cs);
        this.redactor.add(/SharedAccessKey=([^;]+)/i.exec(cs)?.[1]);
        await this.storage.store("devkitDps.dpsConnectionString", cs);
    }

    async deleteConnectionString(): Promise<void> {
        await this.storage.delete("devkitDps.dpsConnectionString");
    }

    /** Marks a transient secret (e.g. a Wi-Fi password) so that it is masked in all output. */
    remember(secret: string): void {
        this.redactor.add(secret);
    }
}
