// Task type `devkit`: build, upload, device-upload, monitor, generate-cert (so that
// `task device-upload` in Quick Open works as in the old tutorial, once the tasks are in the
// workspace's tasks.json: "DevKit: Add DevKit Tasks to tasks.json"). Each runs in a custom
// execution whose terminal shows the daemon's progress and the compiler's messages. No problem
// matcher: the daemon publishes the compiler's diagnostics itself (replaced by the next build's),
// and a matcher would list each error twice in Problems. The contributed `$arm-none-eabi-gcc`
// matcher is for tasks users write themselves around a plain `arduino-cli compile`.

import * as vscode from "vscode";
import { buildInputs, findBuild, flashTarget, gccLines } from "./commands/build";
import { generateCert } from "./commands/identity";
import { resolvePort } from "./commands/port";
import { Services } from "./commands/services";
import { buttonsFor, errorView, missing, personMessage, showErrorView, showReport } from "./errors";
import * as ext from "./lsp_ext";
import { isCancelled, requestWithProgress } from "./progress";

export const TASK_TYPE = "devkit";
export type TaskName = "build" | "upload" | "device-upload" | "monitor" | "generate-cert";
export const TASKS: { name: TaskName; detail: string; group?: vscode.TaskGroup }[] = [
    { name: "build", detail: "Build the sketch with arduino-cli", group: vscode.TaskGroup.Build },
    { name: "upload", detail: "Flash the last build (no build), pausing the monitor" },
    { name: "device-upload", detail: "Build (when needed), pause the monitor, flash the DevKit, resume", group: vscode.TaskGroup.Build },
    { name: "monitor", detail: "Open the serial monitor on the DevKit's port" },
    { name: "generate-cert", detail: "Compute the device's DICE/RIoT alias certificate" },
];

/** The tasks.json entries "Add DevKit Tasks" writes (`task device-upload` then lists them). */
export function taskJsonEntries(): { type: string; task: TaskName; problemMatcher: string[]; group?: string; detail: string }[] {
    return TASKS.map((t) => ({
        type: TASK_TYPE,
        task: t.name,
        // The daemon publishes the compiler's diagnostics: a matcher would show each error twice.
        problemMatcher: [],
        ...(t.group === vscode.TaskGroup.Build ? { group: "build" } : {}),
        detail: t.detail,
    }));
}

interface DevkitTaskDefinition extends vscode.TaskDefinition {
    task: TaskName;
    sketch?: string;
    port?: string;
}

/** A task terminal: writes lines, closes with an exit code, cancels the request on close. */
class TaskPty implements vscode.Pseudoterminal {
    private readonly writeEmitter = new vscode.EventEmitter<string>();
    private readonly closeEmitter = new vscode.EventEmitter<number>();
    readonly onDidWrite = this.writeEmitter.event;
    readonly onDidClose = this.closeEmitter.event;
    private readonly cancel = new vscode.CancellationTokenSource();

    constructor(
        private readonly name: string,
        private readonly log: { info(m: string): void; error(m: string): void },
        private readonly body: (pty: TaskPty, token: vscode.CancellationToken) => Promise<void>,
        /** A failure, shown as a command's would be (notification, next actions as buttons). */
        private readonly failed: (e: unknown) => void,
    ) {}

    line(s: string): void {
        this.writeEmitter.fire(s.replace(/\r?\n/g, "\r\n") + "\r\n");
    }

    open(): void {
        this.body(this, this.cancel.token).then(
            () => {
                this.log.info(`task ${this.name}: done`);
                this.closeEmitter.fire(0);
            },
            (e) => {
                const data = (e as { data?: { hint?: unknown; field?: unknown } }).data;
                const hint = data?.hint;
                const field = typeof data?.field === "string" ? data.field : undefined;
                const msg = `${personMessage((e as Error).message, field)}${typeof hint === "string" ? `\n${hint}` : ""}`;
                this.log.error(`task ${this.name}: ${isCancelled(e) ? "cancelled" : msg}`);
                this.line(isCancelled(e) ? "\x1b[33mCancelled.\x1b[0m" : `\x1b[31m${msg}\x1b[0m`);
                if (!isCancelled(e)) this.failed(e);
                this.closeEmitter.fire(isCancelled(e) ? 130 : 1);
            },
        );
    }

    close(): void {
        this.cancel.cancel();
    }
}

export class DevkitTaskProvider implements vscode.TaskProvider {
    constructor(private readonly s: Services) {}

    provideTasks(): vscode.Task[] {
        return TASKS.map((t) => this.make({ type: TASK_TYPE, task: t.name }, vscode.TaskScope.Workspace));
    }

    resolveTask(task: vscode.Task): vscode.Task | undefined {
        const def = task.definition as DevkitTaskDefinition;
        if (!TASKS.some((t) => t.name === def.task)) return undefined;
        return this.make(def, task.scope ?? vscode.TaskScope.Workspace);
    }

    private make(def: DevkitTaskDefinition, scope: vscode.TaskScope | vscode.WorkspaceFolder): vscode.Task {
        const meta = TASKS.find((t) => t.name === def.task) ?? TASKS[0];
        const task = new vscode.Task(
            def,
            scope,
            def.task,
            TASK_TYPE,
            new vscode.CustomExecution(
                async () =>
                    new TaskPty(
                        def.task,
                        this.s.ctx.log,
                        (pty, token) => this.run(def, pty, token),
                        (e) => this.failed(def, e),
                    ),
            ),
            // No matcher: the daemon's diagnostics are the one source of compiler errors.
            [],
        );
        task.detail = meta.detail;
        if (meta.group) task.group = meta.group;
        task.presentationOptions = { reveal: vscode.TaskRevealKind.Always, clear: true };
        return task;
    }

    /** A failed task gets the notification and buttons a failed command gets (Retry runs the task again). */
    private failed(def: DevkitTaskDefinition, e: unknown): void {
        const retry = { label: "Retry", command: "workbench.action.tasks.runTask", args: [`${TASK_TYPE}: ${def.task}`] };
        const view = errorView(e, (t) => this.s.ctx.redactor.redact(t), retry);
        void showErrorView(view, () => this.s.ctx.log.channel.show(true));
    }

    private async run(def: DevkitTaskDefinition, pty: TaskPty, token: vscode.CancellationToken): Promise<void> {
        const s = this.s;
        const sink = {
            begin: (t: string) => pty.line(`\x1b[1m${t}\x1b[0m`),
            report: (m: string | undefined, p: number | undefined) => {
                if (m !== undefined || p !== undefined) pty.line(`${p !== undefined ? `[${String(p).padStart(3)}%] ` : ""}${m ?? ""}`);
            },
            end: (m: string | undefined) => m && pty.line(m),
        };
        const client = await s.ctx.ready();
        const compilerErrors = (e: unknown): never => {
            // A failed build carries the compiler's messages: print them (Problems has them from the daemon).
            const data = (e as { data?: { diagnostics?: ext.CompilerDiagnostic[] } }).data;
            for (const l of gccLines(data?.diagnostics)) pty.line(l);
            throw e;
        };
        switch (def.task) {
            case "build": {
                const params = await buildInputs(def.sketch);
                const r = await requestWithProgress(client, ext.build, params, sink, token).catch(compilerErrors);
                for (const l of gccLines(r.diagnostics)) pty.line(l);
                for (const w of r.warnings) pty.line(`\x1b[33mwarning: ${w}\x1b[0m`);
                pty.line(r.skipped ? `Up to date: ${r.bin}` : `Built ${r.bin}`);
                break;
            }
            case "device-upload": {
                // The sketch first: a folder without one is said before a port is asked for.
                const inputs = await buildInputs(def.sketch);
                const port = def.port ?? (await resolvePort(s));
                if (!port) throw noPort();
                const params = { ...inputs, ...(await flashTarget(s, port)) };
                const r = await requestWithProgress(client, ext.deviceUpload, params, sink, token).catch(compilerErrors);
                // The drift's message is among the warnings too: said once, below.
                for (const w of r.warnings.filter((x) => x !== r.drift?.message)) pty.line(`\x1b[33mwarning: ${w}\x1b[0m`);
                pty.line(`Uploaded to ${port}.`);
                // Which digest changed and what it means: the daemon's words, with its next steps.
                if (r.drift) {
                    pty.line(`\x1b[33m${r.drift.message}\x1b[0m`);
                    nextSteps(pty, r.drift.nextActions);
                    void showReport("warning", r.drift.message, r.drift.nextActions);
                } else nextSteps(pty, r.nextActions);
                void vscode.commands.executeCommand("setContext", "devkit.uploaded", true);
                break;
            }
            case "upload": {
                const port = def.port ?? (await resolvePort(s));
                if (!port) throw noPort();
                const build = await findBuild(s, { quiet: true });
                if (!build) throw missing("No build found: build the sketch first.", { action: "retry", detail: "build" });
                pty.line(`Flashing ${build.bin}`);
                const r = await requestWithProgress(client, ext.upload, { bin: build.bin, ...(await flashTarget(s, port)) }, sink, token);
                for (const w of r.warnings) pty.line(`\x1b[33mwarning: ${w}\x1b[0m`);
                pty.line(`Uploaded ${r.bytes} bytes to ${port} (${r.backend}${r.portPaused ? ", monitor paused meanwhile" : ""}).`);
                nextSteps(pty, r.nextActions);
                void vscode.commands.executeCommand("setContext", "devkit.uploaded", true);
                break;
            }
            case "monitor": {
                const port = def.port ?? (await resolvePort(s));
                if (!port) throw noPort();
                await s.monitors.open(port);
                pty.line(`Serial monitor open on ${port} (its own terminal).`);
                break;
            }
            case "generate-cert": {
                const r = await generateCert(s, { quiet: true });
                if (!r) throw new Error("Cancelled.");
                pty.line(`Registration ID  ${r.registrationId}`);
                pty.line(`Alias cert       ${r.aliasCert}`);
                pty.line(`SHA-1            ${r.sha1Thumbprint}`);
                pty.line(`SHA-256          ${r.sha256Thumbprint}`);
                pty.line(`FWID             ${r.fwid}`);
                for (const w of r.warnings) pty.line(`\x1b[33mwarning: ${w}\x1b[0m`);
                pty.line(r.note);
                nextSteps(pty, r.nextActions);
                break;
            }
        }
    }
}

/** No port given and none picked: said with the button that picks one. */
const noPort = () => missing("No DevKit port was chosen: select the DevKit's serial port.", { action: "selectPort" });

/** The report's next actions, as the palette commands that do them. */
function nextSteps(pty: TaskPty, actions: ext.NextAction[]): void {
    for (const b of buttonsFor(actions)) pty.line(`\x1b[33mnext: DevKit: ${b.label}\x1b[0m`);
}
