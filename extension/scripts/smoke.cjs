// UI smoke test through the real workbench (the packaged VSIX installed in code-server, a
// fresh profile; scripts/test.mjs runs it twice in a row): the DevKit status items appear,
// "DevKit: Generate Certificate" runs from the palette, the UDS is pasted into the password
// box, and the toast shows the vector's SHA-1 thumbprint; the walkthrough, step by step, with
// a step's button; Set UDS on a virtual DevKit, Check Setup, "Provision a Virtual DevKit" twice
// in a row; a UDS push cancelled while it waits for configuration mode; the port picker
// listing the virtual DevKit; `task device-upload` from Quick Open; the Installation Guide.
// Screenshots go to OUT_DIR.
const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");
const { launch, ts } = require("./browser.cjs");

const HOST = process.env.CS_HOST;
const OUT = process.env.OUT_DIR;
const CASE = path.join(process.env.FIXTURES, "vectors", "uppercase-uds-medium");

function expected() {
    const c = JSON.parse(fs.readFileSync(path.join(CASE, "case.json"), "utf8"));
    const pem = fs.readFileSync(path.join(CASE, c.expected.alias_cert_file), "utf8");
    const der = Buffer.from(pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
    return { uds: c.inputs.uds, sha1: crypto.createHash("sha1").update(der).digest("hex").toUpperCase() };
}

async function openPalette(page) {
    const input = page.locator(".quick-input-widget .quick-input-box input");
    for (let attempt = 0; ; attempt++) {
        await page.keyboard.press("Escape");
        await page.locator("#workbench\\.parts\\.editor").click({ position: { x: 400, y: 300 } }).catch(() => {});
        await page.keyboard.press(attempt % 2 ? "Control+Shift+P" : "F1");
        try {
            await input.waitFor({ state: "visible", timeout: 3000 });
            return input;
        } catch (e) {
            if (attempt >= 3) throw e;
        }
    }
}

/** Clicks the quick pick row holding `text` once it shows. */
async function pickRow(page, text) {
    const row = page.locator(".quick-input-widget .monaco-list-row", { hasText: text }).first();
    await row.waitFor({ state: "visible", timeout: 15000 });
    await row.click();
}

/** Runs a palette command by its full title ("DevKit: ..."). */
async function runCommand(page, title) {
    const input = await openPalette(page);
    await input.fill(`>${title}`);
    await page.locator(".quick-input-widget .monaco-list-row", { hasText: title }).first().waitFor({ state: "visible", timeout: 15000 });
    await page.keyboard.press("Enter");
}

(async () => {
    const want = expected();
    const browser = await launch();
    const page = await (await browser.newContext({ viewport: { width: 1600, height: 1000 } })).newPage();
    page.on("pageerror", (e) => console.log("  [pageerror]", e.message.slice(0, 200)));
    const step = async (name, f) => {
        console.log(ts(), name);
        try {
            return await f();
        } catch (e) {
            await page.screenshot({ path: `${OUT}/smoke-failed.png` }).catch(() => {});
            throw new Error(`${name}: ${e.message}`);
        }
    };
    await page.goto(`http://${HOST}/?folder=${encodeURIComponent(process.env.WS)}`, { waitUntil: "domcontentloaded" });
    await step("workbench visible", () => page.locator(".monaco-workbench").waitFor({ state: "visible", timeout: 60000 }));
    const sb = (text) => page.locator("#workbench\\.parts\\.statusbar .statusbar-item", { hasText: text }).first();
    await step("DevKit status items visible", async () => {
        await sb("DevKit").waitFor({ state: "visible", timeout: 60000 });
        await sb("Monitor").waitFor({ state: "visible", timeout: 10000 });
        console.log("   status items:", JSON.stringify(await page.locator("#workbench\\.parts\\.statusbar .statusbar-item").allInnerTexts()).slice(0, 400));
    });
    // Commands that need the daemon are enabled once it runs (`devkit.daemonRunning`).
    await step("daemon healthy", () =>
        page.locator("#workbench\\.parts\\.statusbar .statusbar-item", { has: page.locator(".codicon-circuit-board") }).first().waitFor({ state: "visible", timeout: 60000 }),
    );
    await page.screenshot({ path: `${OUT}/01-workbench.png` });
    // The daemon's health item: its tooltip links to the logs and to a restart.
    await step("health tooltip with logs and restart links", async () => {
        await sb("DevKit").hover();
        await page.locator(".monaco-hover", { hasText: "Restart daemon" }).first().waitFor({ state: "visible", timeout: 10000 });
    });
    await page.screenshot({ path: `${OUT}/01b-health-tooltip.png` });
    await page.mouse.move(640, 300);

    const input = await step("palette opens", () => openPalette(page));
    await input.fill(">DevKit: Generate Certificate");
    await step("command listed", () =>
        page.locator(".quick-input-widget .monaco-list-row", { hasText: "DevKit: Generate Certificate" }).first().waitFor({ state: "visible", timeout: 15000 }),
    );
    await page.screenshot({ path: `${OUT}/02-palette.png` });
    if (process.env.SMOKE_UI_ONLY) {
        console.log(ts(), "smoke PASS (UI only: the daemon cannot generate certificates yet)");
        await browser.close();
        return;
    }
    await page.keyboard.press("Enter");

    // No UDS stored yet for this device: the command offers generate / paste. (On the second
    // run the workspace holds two builds, the fixture's and the upload's: the newest is first.)
    await step("UDS choice offered", async () => {
        const paste = page.locator(".quick-input-widget .monaco-list-row", { hasText: "Paste an existing UDS" }).first();
        const which = page.locator(".quick-input-widget .monaco-list-row", { hasText: "(newest)" }).first();
        const first = await Promise.race([paste.waitFor({ state: "visible", timeout: 30000 }).then(() => "paste"), which.waitFor({ state: "visible", timeout: 30000 }).then(() => "which")]);
        if (first === "which") {
            await page.screenshot({ path: `${OUT}/02b-which-build.png` });
            await which.click();
            await paste.waitFor({ state: "visible", timeout: 30000 });
        }
    });
    await page.screenshot({ path: `${OUT}/03-uds-choice.png` });
    await page.locator(".quick-input-widget .monaco-list-row", { hasText: "Paste an existing UDS" }).first().click();
    await step("password box", async () => {
        const box = page.locator(".quick-input-widget .quick-input-box input[type=password]");
        await box.waitFor({ state: "visible", timeout: 10000 });
        await box.fill(want.uds);
    });
    await page.screenshot({ path: `${OUT}/04-uds-masked.png` });
    await page.keyboard.press("Enter");

    const toast = page.locator(".notifications-toasts .notification-list-item-message", { hasText: /^Certificate for upper-case-uds: SHA-1 thumbprint/ });
    const failure = page.locator(".notifications-toasts .notification-list-item-message").first();
    await step("result toast", async () => {
        try {
            await toast.waitFor({ state: "visible", timeout: 60000 });
        } catch (e) {
            const other = await failure.innerText().catch(() => "(no notification)");
            throw new Error(`no certificate toast; notification: ${other}`);
        }
    });
    const text = await toast.innerText();
    await page.screenshot({ path: `${OUT}/05-certificate-toast.png` });
    console.log("   toast:", JSON.stringify(text));
    if (!text.replace(/[^0-9A-F]/gi, "").toUpperCase().includes(want.sha1)) throw new Error(`toast does not show SHA-1 ${want.sha1}: ${text}`);
    // The walkthrough, opened from the palette.
    await step("walkthrough command", () => runCommand(page, "DevKit: Get Started: Provision a DevKit"));
    await step("walkthrough shown", () => page.getByText("Provision your DevKit with Azure DPS").first().waitFor({ state: "visible", timeout: 20000 }));
    await page.waitForTimeout(500);
    await page.screenshot({ path: `${OUT}/06-walkthrough.png` });
    // Each step opens with its media (text and picture); the Check Setup step's button runs it.
    const walk = page.locator(".gettingStartedContainer");
    const steps = [
        ["No DevKit at hand? Try it without hardware", "06a"],
        ["Connect the DevKit and pick its port", "06b"],
        ["Set up Wi-Fi", "06c"],
        ["Set the Unique Device Secret", "06d"],
        ["Watch the registration", "06e"],
        ["Check your setup", "06f"],
    ];
    for (const [title, shot] of steps) {
        await step(`walkthrough step: ${title}`, async () => {
            await walk.locator(".getting-started-step", { hasText: title }).first().click();
            await walk.locator(".getting-started-step.expanded", { hasText: title }).first().waitFor({ state: "visible", timeout: 10000 });
        });
        await page.waitForTimeout(400);
        await page.screenshot({ path: `${OUT}/${shot}-walkthrough-step.png` });
    }
    // The step's markdown media is a webview: its picture (an SVG beside the markdown) loaded.
    await step("walkthrough media shows its picture", async () => {
        await walk.locator(".getting-started-step", { hasText: "Connect the DevKit and pick its port" }).first().click();
        const img = page.frameLocator("iframe.webview.ready").frameLocator("iframe#active-frame").locator("img").first();
        await img.waitFor({ state: "attached", timeout: 15000 });
        await img.scrollIntoViewIfNeeded();
        const width = await img.evaluate(async (i) => {
            if (!i.complete) await new Promise((r) => i.addEventListener("load", r, { once: true }));
            return i.naturalWidth;
        });
        if (!(width > 0)) throw new Error(`the picture did not load (${await img.getAttribute("src")})`);
    });
    await page.screenshot({ path: `${OUT}/06f2-walkthrough-picture.png` });
    await walk.locator(".getting-started-step", { hasText: "Check your setup" }).first().click();
    await step("walkthrough button: Check Setup", async () => {
        // The step's media webview may take the focus as it loads, which closes a quick pick:
        // let it settle, and click again if the list closed.
        await page.waitForTimeout(1000);
        for (let attempt = 0; ; attempt++) {
            await walk.locator(".getting-started-step.expanded").getByRole("button", { name: "Check Setup" }).first().click();
            try {
                await page.locator(".quick-input-widget .monaco-list-row", { hasText: "arduino-cli" }).first().waitFor({ state: "visible", timeout: 15000 });
                break;
            } catch (e) {
                if (attempt >= 2) throw e;
            }
        }
    });
    await page.screenshot({ path: `${OUT}/06g-walkthrough-check-setup.png` });
    await page.keyboard.press("Escape");

    // The serial monitor on the virtual DevKit (started by scripts/test.mjs, its pty link is the
    // workspace's port setting), from the palette; the status bar shows the port.
    await step("monitor command", () => runCommand(page, "DevKit: Open Serial Monitor"));
    await step("monitor terminal shows the boot output", () =>
        page.locator(".terminal-wrapper, .xterm", { hasText: /MAC\s+Address:\s+c0bdd1a2b3c4/ }).first().waitFor({ state: "visible", timeout: 30000 }),
    );
    await step("status bar shows the port and the open monitor", async () => {
        await sb("devkit.tty").waitFor({ state: "visible", timeout: 10000 });
    });
    await page.waitForTimeout(300);
    await page.screenshot({ path: `${OUT}/07-monitor.png` });

    // Set UDS on the virtual DevKit (in user mode): the extension puts it into configuration
    // mode by itself; the monitor pauses for the push and resumes after.
    await step("set UDS command", () => runCommand(page, "DevKit: Set Unique Device Secret (UDS)"));
    await step("use the stored UDS", async () => {
        await pickRow(page, "Use the stored UDS");
    });
    await step("UDS set toast", () =>
        page.locator(".notifications-toasts .notification-list-item-message", { hasText: /UDS set on/ }).first().waitFor({ state: "visible", timeout: 60000 }),
    );
    await step("monitor resumed after the push", () =>
        page.locator(".terminal-wrapper, .xterm", { hasText: /monitor\s+resumed/ }).first().waitFor({ state: "visible", timeout: 15000 }),
    );
    await page.screenshot({ path: `${OUT}/08-uds-set-virtual.png` });
    const errorsAfterUds = await page.locator(".notifications-toasts .notification-list-item .codicon-error").count();
    if (errorsAfterUds) throw new Error(`an error notification appeared: ${await page.locator(".notifications-toasts").innerText()}`);

    // Check Setup: the checks with their fixes.
    await step("check setup command", () => runCommand(page, "DevKit: Check Setup"));
    await step("check setup list", () =>
        page.locator(".quick-input-widget .monaco-list-row", { hasText: "arduino-cli" }).first().waitFor({ state: "visible", timeout: 30000 }),
    );
    await page.screenshot({ path: `${OUT}/09-check-setup.png` });
    await page.keyboard.press("Escape");

    // "Try it without hardware": the status bar follows the virtual DevKit to its hub.
    await step("provisioning command", () => runCommand(page, "DevKit: Provision a Virtual DevKit (no hardware)"));
    await step("status bar says assigned", () => sb("Assigned to").waitFor({ state: "visible", timeout: 90000 }));
    const registered = page.locator(".notifications-toasts .notification-list-item-message", { hasText: /^Virtual DevKit .* registered/ });
    await step("registered toast", () => registered.first().waitFor({ state: "visible", timeout: 30000 }));
    await page.waitForTimeout(300);
    await page.screenshot({ path: `${OUT}/10-provisioned.png` });
    // Twice in a row on the same profile: the same virtual DevKit registers again.
    await step("clear notifications", () => runCommand(page, "Notifications: Clear All Notifications"));
    await step("registered toast gone", () => registered.first().waitFor({ state: "hidden", timeout: 10000 }));
    await step("provisioning command again", () => runCommand(page, "DevKit: Provision a Virtual DevKit (no hardware)"));
    await step("registered again", async () => {
        const failure = page.locator(".notifications-toasts .notification-list-item", { has: page.locator(".codicon-error") });
        await Promise.race([
            registered.first().waitFor({ state: "visible", timeout: 90000 }),
            failure.first().waitFor({ state: "visible", timeout: 90000 }).then(async () => {
                throw new Error(`the second run failed: ${await failure.first().innerText()}`);
            }),
        ]);
    });
    await page.waitForTimeout(300);
    await page.screenshot({ path: `${OUT}/11-provisioned-again.png` });

    // `task device-upload` from Quick Open, as the old tutorial says: the tasks go into the
    // workspace's tasks.json first (Quick Open lists configured and recent tasks by name). The
    // virtual DevKit reboots into the new image, out of configuration mode.
    await step("add the DevKit tasks to tasks.json", () => runCommand(page, "DevKit: Add DevKit Tasks to tasks.json"));
    await step("quick open: task device-upload", async () => {
        for (let attempt = 0; ; attempt++) {
            await page.keyboard.press("Escape");
            await page.locator("#workbench\\.parts\\.editor").click({ position: { x: 400, y: 300 } }).catch(() => {});
            await page.keyboard.press("Control+P");
            const input = page.locator(".quick-input-widget .quick-input-box input");
            try {
                await input.waitFor({ state: "visible", timeout: 3000 });
                await input.fill("task device-upload");
                await page.locator(".quick-input-widget .monaco-list-row", { hasText: "devkit: device-upload" }).first().waitFor({ state: "visible", timeout: 15000 });
                break;
            } catch (e) {
                if (attempt >= 2) throw e;
            }
        }
        await page.screenshot({ path: `${OUT}/12-quick-open-task.png` });
        await page.keyboard.press("Enter");
    });
    await step("the task uploads to the virtual DevKit", () =>
        page.locator(".terminal-wrapper, .xterm", { hasText: /Uploaded to/ }).first().waitFor({ state: "visible", timeout: 120000 }),
    );
    await page.waitForTimeout(300);
    await page.screenshot({ path: `${OUT}/13-task-device-upload.png` });


    // A UDS push cancelled while the daemon waits for configuration mode: the port is the
    // virtual DevKit's raw pty (not its link), so the extension does not switch it by itself,
    // as with a real DevKit whose buttons nobody presses.
    const link = process.env.SMOKE_LINK;
    const pty = fs.realpathSync(link);
    await step("close the monitor", () => runCommand(page, "DevKit: Close Serial Monitor"));
    await step("select serial port: enter the pty", async () => {
        await runCommand(page, "DevKit: Select Serial Port");
        await pickRow(page, "Enter a port path");
        const box = page.locator(".quick-input-widget .quick-input-box input");
        await page.locator(".quick-input-widget", { hasText: "Serial port path" }).first().waitFor({ state: "visible", timeout: 10000 });
        await box.fill(pty);
        await page.keyboard.press("Enter");
        await sb(pty).waitFor({ state: "visible", timeout: 10000 });
    });
    await step("clear notifications before the push", () => runCommand(page, "Notifications: Clear All Notifications"));
    await step("set UDS (waits for configuration mode)", async () => {
        await runCommand(page, "DevKit: Set Unique Device Secret (UDS)");
        await pickRow(page, "Use the stored UDS");
    });
    const pushing = page.locator(".notifications-toasts .notification-list-item", { hasText: `Pushing the UDS to ${pty} ` }).first();
    await step("the push waits, cancellable", async () => {
        await pushing.waitFor({ state: "visible", timeout: 20000 });
        await pushing.getByRole("button", { name: "Cancel" }).first().waitFor({ state: "visible", timeout: 10000 });
    });
    await page.screenshot({ path: `${OUT}/14-uds-push-waiting.png` });
    await step("cancel the push", async () => {
        await pushing.getByRole("button", { name: "Cancel" }).first().click();
        await pushing.waitFor({ state: "hidden", timeout: 20000 });
    });
    await page.waitForTimeout(1500);
    const pushed = await page.locator(".notifications-toasts .notification-list-item-message", { hasText: `UDS set on ${pty}` }).count();
    if (pushed) throw new Error("the push was not cancelled: the UDS was set");
    const errorsAfterCancel = await page.locator(".notifications-toasts .notification-list-item .codicon-error").count();
    if (errorsAfterCancel) throw new Error(`cancelling showed an error: ${await page.locator(".notifications-toasts").innerText()}`);
    await page.screenshot({ path: `${OUT}/15-uds-push-cancelled.png` });

    // The port picker lists the virtual DevKit as such; picking it puts its link back.
    await step("port picker lists the virtual DevKit", async () => {
        await runCommand(page, "DevKit: Select Serial Port");
        const row = page.locator(".quick-input-widget .monaco-list-row", { hasText: "Virtual DevKit" }).first();
        await row.waitFor({ state: "visible", timeout: 15000 });
        await page.screenshot({ path: `${OUT}/16-port-picker.png` });
        await row.click();
        await sb("devkit.tty").waitFor({ state: "visible", timeout: 10000 });
    });

    // Last (its preview is a webview over the editor part): the installation guide opens the
    // packaged README (the VSIX holds it as `readme.md`; issue 19).
    await step("installation guide opens the packaged readme", async () => {
        await runCommand(page, "DevKit: Installation Guide");
        await page.locator(".tabs-container .tab", { hasText: /readme\.md/i }).first().waitFor({ state: "visible", timeout: 20000 });
        // The preview (a webview, frames inside frames) shows the README's installation guide.
        for (let i = 0; ; i++) {
            const counts = await Promise.all(page.frames().map((f) => f.locator("h2", { hasText: "Installation guide" }).count().catch(() => 0)));
            if (counts.some((n) => n > 0)) break;
            if (i >= 40) throw new Error("the preview does not show the README's Installation guide");
            await page.waitForTimeout(500);
        }
        const broken = await page.locator(".notifications-toasts .notification-list-item-message", { hasText: /cannot be found|is missing/i }).count();
        if (broken) throw new Error(`the guide did not open: ${await page.locator(".notifications-toasts").innerText()}`);
    });
    await page.screenshot({ path: `${OUT}/17-installation-guide.png` });

    const html = await page.content();
    if (html.toLowerCase().includes(want.uds.toLowerCase())) throw new Error("the UDS is visible in the page");
    await browser.close();
    console.log(ts(), "smoke PASS");
    process.exit(0);
})().catch((e) => {
    console.error("smoke FAIL:", e.message);
    process.exit(1);
});
