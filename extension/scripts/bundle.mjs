// Bundles the extension (dist/extension.js) and its in-host test suite (out/test/index.js).
import * as esbuild from "esbuild";

const common = {
    bundle: true,
    platform: "node",
    target: "node20",
    format: "cjs",
    external: ["vscode"],
    sourcemap: true,
    logLevel: "warning",
};

await Promise.all([
    esbuild.build({ ...common, entryPoints: ["src/extension.ts"], outfile: "dist/extension.js", minify: process.argv.includes("--minify") }),
    esbuild.build({ ...common, entryPoints: ["test/suite/index.ts"], outfile: "out/test/index.js" }),
]);
