#!/usr/bin/env node
// Size of the core entry (`import "kilo"`): dist/index.js plus every chunk it imports statically,
// raw and gzipped (the files concatenated, gzip level 9). Fails when either figure is over its
// budget, unless run with --report (what `npm run build` does: it only prints the figures).
// Raise a budget deliberately, in the same change that explains the growth.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

/**
 * Bytes. History: set at 328 297 raw / 87 951 gzip plus about 15% headroom (378 000 / 101 000).
 * Raised to 486 000 / 127 000 (the size then, 441 341 / 114 998, plus about 10%) when skill scopes,
 * teams, promotion requests, the skill volume link and the run-executor seam landed: they are
 * `kilo.teams`, `kilo.skills.*` and `createKilo({ volume, runs: { executor } })` of the core API,
 * not adapters (the git volume and DBOS executors themselves live behind their subpaths). The
 * largest parts that could move behind a subpath next: auto-learning (src/research, about 30 KB)
 * and evolution (about 16 KB).
 */
export const BUDGET = { raw: 486_000, gzip: 127_000 };

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const entry = join(root, "dist", "index.js");

// esbuild's ESM output: `import ... from "./x.js"`, `export ... from "./x.js"`, `import "./x.js"`.
// Dynamic `import("./x.js")` is left out on purpose: it is loaded only when used.
const STATIC_IMPORT =
  /(?:^|[;\n}])\s*(?:import|export)\s*(?:[\w*{}\s,$]+?\s*from\s*)?["'](\.{1,2}\/[^"']+)["']/g;

/** The entry and every local file it reaches through static imports, entry first. */
export function staticGraph(file) {
  const seen = new Set();
  const visit = (path) => {
    if (seen.has(path)) return;
    seen.add(path);
    const code = readFileSync(path, "utf8");
    for (const match of code.matchAll(STATIC_IMPORT)) visit(resolve(dirname(path), match[1]));
  };
  visit(file);
  return [...seen];
}

const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;

function main() {
  const reportOnly = process.argv.includes("--report");
  if (!existsSync(entry)) {
    process.stderr.write(`check-size: ${relative(root, entry)} is missing; run \`npm run build\` first\n`);
    process.exit(1);
  }
  const files = staticGraph(entry);
  const contents = files.map((file) => readFileSync(file));
  const raw = contents.reduce((sum, content) => sum + content.length, 0);
  const gzip = gzipSync(Buffer.concat(contents), { level: 9 }).length;
  const lines = [
    `core entry (import "kilo"): dist/index.js + ${files.length - 1} static chunks`,
    `  raw  ${kb(raw).padStart(10)}  (${raw} B; budget ${BUDGET.raw} B, ${((raw / BUDGET.raw) * 100).toFixed(0)}%)`,
    `  gzip ${kb(gzip).padStart(10)}  (${gzip} B; budget ${BUDGET.gzip} B, ${((gzip / BUDGET.gzip) * 100).toFixed(0)}%)`,
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
  const over = [raw > BUDGET.raw ? "raw" : null, gzip > BUDGET.gzip ? "gzip" : null].filter(Boolean);
  if (over.length > 0 && !reportOnly) {
    process.stderr.write(
      `check-size: the core entry is over its ${over.join(" and ")} budget (scripts/check-size.mjs BUDGET)\n`,
    );
    process.exit(1);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
