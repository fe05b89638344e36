// Shared by the in-host and smoke runners: headless Chromium quiet on a closed network.
const { chromium } = require("playwright-core");

exports.launch = () =>
    chromium.launch({
        executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
        headless: true,
        args: [
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage",
        ],
    });

const t0 = Date.now();
exports.ts = () => ((Date.now() - t0) / 1000).toFixed(1) + "s";
