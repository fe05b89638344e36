// Secrets live only in VS Code's SecretStorage (the OS keychain where there is one): the UDS per
// device, the DPS connection string. Nothing secret goes to settings, state files, logs or argv.
// What a valid UDS or connection string is, and generating a UDS, is the daemon's business
// (`devkit/validateInput`, `devkit/setUds` with `generate`): this module only keeps them.

import * as vscode from "vscode";
import { Redactor } from "./channels";

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

    private static unconfirmedKey(device: string): string {
        return `devkitDps.udsUnconfirmed/${device}`;
    }

    /** A UDS whose push failed after it may have reached the device (no confirmation): kept
     * apart from the confirmed one, so a UDS the device may hold is never lost and a confirmed
     * one is never replaced by a guess. */
    async getUnconfirmedUds(device: string): Promise<string | undefined> {
        const v = await this.storage.get(Secrets.unconfirmedKey(device));
        this.redactor.add(v);
        return v;
    }

    async storeUnconfirmedUds(device: string, uds: string | undefined): Promise<void> {
        if (uds === undefined) await this.storage.delete(Secrets.unconfirmedKey(device));
        else {
            this.redactor.add(uds);
            await this.storage.store(Secrets.unconfirmedKey(device), uds);
        }
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
