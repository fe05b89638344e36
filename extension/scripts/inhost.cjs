// Runs the in-host integration tests (out/test/index.js) inside code-server's Node extension host:
// the workbench is opened with extensionDevelopmentPath + extensionTestsPath, and the test
// module's exit code comes back through `codeAutomationExit`.
const { launch, ts } = require("./browser.cjs");

const HOST = process.env.CS_HOST;
const remote = (p) => `vscode-remote://${HOST}${p}`;

(async () => {
    const browser = await launch();
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    let done;
    const exited = new Promise((r) => (done = r));
    await page.exposeFunction("codeAutomationLog", (type, args) => {
        const line = (args || []).join(" ");
        if (/ENOTFOUND|open-vsx|telemetry/i.test(line)) return;
        console.log(`  [ext-host:${type}]`, line);
    });
    await page.exposeFunction("codeAutomationExit", (code) => done(code));
    page.on("pageerror", (e) => console.log("  [pageerror]", e.message.slice(0, 200)));
    const payload = JSON.stringify([
        ["extensionDevelopmentPath", remote(process.env.EXT_DEV)],
        ["extensionTestsPath", remote(process.env.EXT_TESTS)],
        ["skipWelcome", "true"],
    ]);
    const url = `http://${HOST}/?folder=${encodeURIComponent(process.env.WS)}&payload=${encodeURIComponent(payload)}`;
    console.log(ts(), "opening the workbench with the extension under test");
    await page.goto(url);
    const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r("timeout"), +(process.env.TMO || 180000)))]);
    console.log(ts(), "in-host tests exit code:", code);
    await page.screenshot({ path: `${process.env.OUT_DIR}/20-inhost-end.png` }).catch(() => {});
    await browser.close();
    process.exit(code === 0 ? 0 : 1);
})().catch((e) => {
    console.error("in-host runner failed:", e);
    process.exit(2);
});
