#!/usr/bin/env node
// Renders media/icon.svg to media/icon.png (128x128, transparent corners) with the headless
// Chromium the tests use (playwright-core from .vscode-test-work/tools: run `npm test` once
// first, or set NODE_PATH to a node_modules holding playwright-core). The PNG is committed;
// run this again after changing the SVG: `node scripts/icon.cjs`.
const fs = require("node:fs");
const path = require("node:path");
const EXT = path.resolve(__dirname, "..");
process.env.NODE_PATH ||= path.join(EXT, ".vscode-test-work", "tools", "node_modules");
require("node:module").Module._initPaths();
const { launch } = require("./browser.cjs");

(async () => {
    const svg = fs.readFileSync(path.join(EXT, "media", "icon.svg"), "utf8");
    const browser = await launch();
    const page = await browser.newPage({ viewport: { width: 128, height: 128 }, deviceScaleFactor: 1 });
    await page.setContent(`<html><body style="margin:0;background:transparent">${svg}</body></html>`);
    const png = await page.locator("svg").screenshot({ omitBackground: true });
    await browser.close();
    const out = path.join(EXT, "media", "icon.png");
    fs.writeFileSync(out, png);
    console.log(`${out}: ${png.length} bytes`);
})().catch((e) => {
    console.error(e);
    process.exit(1);
});
