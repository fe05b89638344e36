// Long daemon requests with the daemon's own `$/progress` (work-done) reports and cancellation,
// rendered either as a cancellable notification (commands) or as lines in a task terminal.

import * as crypto from "node:crypto";
import * as vscode from "vscode";
import * as lc from "vscode-languageclient/node";

export interface ProgressSink {
    begin?(title: string): void;
    report(message: string | undefined, percentage: number | undefined): void;
    end?(message: string | undefined): void;
}

/**
 * Sends `type` with a fresh work-done token and forwards the daemon's progress to `sink`;
 * cancelling `token` sends `$/cancelRequest` (the daemon stops the task and releases the port).
 */
export async function requestWithProgress<P extends object, R>(
    client: lc.LanguageClient,
    type: lc.RequestType<P & lc.WorkDoneProgressParams, R, void>,
    params: P,
    sink: ProgressSink,
    token?: vscode.CancellationToken,
): Promise<R> {
    const workDoneToken = `devkit-${crypto.randomUUID()}`;
    const sub = client.onProgress(lc.WorkDoneProgress.type, workDoneToken, (v) => {
        if (v.kind === "begin") {
            sink.begin?.(v.title);
            if (v.message || v.percentage !== undefined) sink.report(v.message, v.percentage);
        } else if (v.kind === "report") sink.report(v.message, v.percentage);
        else sink.end?.(v.message);
    });
    try {
        return await client.sendRequest(type, { ...params, workDoneToken } as P & lc.WorkDoneProgressParams, token);
    } finally {
        sub.dispose();
    }
}

/**
 * A cancellable notification fed by the daemon's progress; `onStep` also gets each step and
 * message (for the log: a run is not one final line).
 */
export function withNotificationProgress<P extends object, R>(
    client: lc.LanguageClient,
    title: string,
    type: lc.RequestType<P & lc.WorkDoneProgressParams, R, void>,
    params: P,
    onStep?: (text: string) => void,
): Promise<R> {
    return Promise.resolve(
        vscode.window.withProgress(
            { location: vscode.ProgressLocation.Notification, title, cancellable: true },
            (progress, token) => {
                let last = 0;
                let step = "";
                return requestWithProgress(
                    client,
                    type,
                    params,
                    {
                        begin: (t) => {
                            step = t;
                            last = 0;
                            progress.report({ message: t });
                            onStep?.(t);
                        },
                        report: (message, percentage) => {
                            const increment = percentage !== undefined ? Math.max(0, percentage - last) : undefined;
                            if (percentage !== undefined) last = percentage;
                            const text = [step, message].filter(Boolean).join(": ");
                            progress.report({ message: text, increment });
                            if (message) onStep?.(text);
                        },
                    },
                    token,
                );
            },
        ),
    );
}

/** True when `e` is the error of a request the user cancelled. */
export function isCancelled(e: unknown): boolean {
    return (
        e instanceof vscode.CancellationError ||
        (e instanceof lc.ResponseError && e.code === lc.LSPErrorCodes.RequestCancelled)
    );
}
