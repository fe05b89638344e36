// Asks a `devkit lsp` daemon which custom methods it implements: each is called with empty
// params; -32601 (method not found) means missing, any other answer means present.
// Used by scripts/test.mjs to skip (and say why) UI tests whose daemon feature has not landed.

import { spawn } from "node:child_process";

export function probeDaemon(server, methods, timeoutMs = 15000) {
    return new Promise((resolve) => {
        const proc = spawn(server, ["lsp"], { stdio: ["pipe", "pipe", "pipe"] });
        const result = { started: false, error: "", methods: {} };
        let buf = Buffer.alloc(0);
        let stderr = "";
        const pending = new Map();
        let nextId = 1;
        const finish = () => {
            clearTimeout(timer);
            try {
                proc.kill("SIGKILL");
            } catch {
                /* gone */
            }
            resolve(result);
        };
        const timer = setTimeout(() => {
            result.error ||= "timed out";
            finish();
        }, timeoutMs);
        const send = (msg) => {
            const body = Buffer.from(JSON.stringify({ jsonrpc: "2.0", ...msg }));
            proc.stdin.write(`Content-Length: ${body.length}\r\n\r\n`);
            proc.stdin.write(body);
        };
        const request = (method, params) =>
            new Promise((res) => {
                const id = nextId++;
                pending.set(id, res);
                send({ id, method, params });
            });
        proc.stdin.on("error", () => {});
        proc.stderr.on("data", (d) => (stderr += d));
        proc.on("exit", (code) => {
            result.error ||= `devkit lsp exited with ${code}: ${stderr.trim().split("\n").pop() ?? ""}`;
            finish();
        });
        proc.stdout.on("data", (d) => {
            buf = Buffer.concat([buf, d]);
            for (;;) {
                const sep = buf.indexOf("\r\n\r\n");
                if (sep < 0) return;
                const m = /Content-Length: *(\d+)/i.exec(buf.subarray(0, sep).toString());
                if (!m) return;
                const len = +m[1];
                if (buf.length < sep + 4 + len) return;
                const msg = JSON.parse(buf.subarray(sep + 4, sep + 4 + len).toString());
                buf = buf.subarray(sep + 4 + len);
                if (msg.id !== undefined && pending.has(msg.id)) {
                    pending.get(msg.id)(msg);
                    pending.delete(msg.id);
                }
            }
        });
        (async () => {
            const init = await request("initialize", { processId: process.pid, rootUri: null, capabilities: {} });
            if (init.error) {
                result.error = `initialize failed: ${init.error.message}`;
                return finish();
            }
            send({ method: "initialized", params: {} });
            result.started = true;
            for (const m of methods) {
                const r = await request(m, {});
                result.methods[m] = r.error?.code === -32601 ? "missing" : "present";
            }
            await request("shutdown", null);
            send({ method: "exit" });
            finish();
        })();
    });
}
