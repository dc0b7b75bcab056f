#!/usr/bin/env node
/**
 * The `kilo` executable (`bin` in package.json, built to `dist/cli.js`).
 * See `docs/cli.md`.
 *
 * @module
 */
import { runCli } from "./cli-program.js";

// Commands close what they open, so the process ends by itself; this only
// bounds how long a handle left behind by a driver could keep it alive.
const EXIT_GRACE_MS = 5_000;

runCli(process.argv).then(
  (code) => {
    process.exitCode = code;
    setTimeout(() => process.exit(code), EXIT_GRACE_MS).unref();
  },
  (error: unknown) => {
    process.stderr.write(`kilo: error INTERNAL: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
