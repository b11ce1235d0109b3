// Builds the app into dist/ (committed, embedded by the Go package): the
// page's bundle, the service worker stamped with a hash of everything it
// caches, and the static files. With --tests it also bundles the Node
// tests into dist-test/ (not committed).
import * as esbuild from "esbuild";
import { createHash } from "node:crypto";
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";

const here = new URL(".", import.meta.url).pathname;
const dist = here + "dist/";
rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });

const common = { bundle: true, format: "iife", target: "es2022", minify: true, legalComments: "none", logLevel: "warning" };
await esbuild.build({ ...common, entryPoints: [here + "src/main.ts"], outfile: dist + "app.js" });
cpSync(here + "static", dist, { recursive: true });

// The worker's cache is named for the content it caches, so a new build
// replaces the old copy on the phones and an unchanged one keeps it.
const shell = readdirSync(dist).sort();
const h = createHash("sha256");
for (const f of shell) h.update(f + "\0").update(readFileSync(dist + f));
const version = h.digest("hex").slice(0, 16);
await esbuild.build({
  ...common,
  entryPoints: [here + "src/sw.ts"],
  outfile: dist + "sw.js",
  define: { __VERSION__: JSON.stringify(version), __SHELL__: JSON.stringify(shell) },
});

if (process.argv.includes("--tests")) {
  const out = here + "dist-test/";
  rmSync(out, { recursive: true, force: true });
  const tests = readdirSync(here + "test").filter((f) => f.endsWith(".test.ts"));
  await esbuild.build({
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    logLevel: "warning",
    entryPoints: tests.map((f) => here + "test/" + f),
    outdir: out,
    outExtension: { ".js": ".mjs" },
    banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
  });
}
