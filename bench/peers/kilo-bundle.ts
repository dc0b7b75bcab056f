/**
 * Builds kilo's side of the comparison the way the published package is
 * built (tsup/esbuild, ES2022 for Node 20, dependencies left external), so
 * the figures are those of the code a host runs. Running the TypeScript
 * sources through tsx instead would add esbuild's `keepNames` wrappers
 * (`__name(...)`) to every function created at run time.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { build } from "tsup";
import { repoRoot } from "../support.js";

/** Where the bundle goes: inside node_modules so it resolves kilo's dependencies, and git ignores it. */
export const BUNDLE_DIR = join(repoRoot, "node_modules", ".cache", "kilo-peers");

/** Bundles bench/peers/kilo-workload.ts; returns the file to run with node. */
export async function bundleKiloWorkload(): Promise<string> {
  const manifest = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as {
    dependencies?: Record<string, string>;
    peerDependencies?: Record<string, string>;
  };
  await build({
    config: false,
    entry: { "kilo-workload": join(repoRoot, "bench/peers/kilo-workload.ts") },
    format: ["esm"],
    target: "node20",
    outDir: BUNDLE_DIR,
    external: [...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.peerDependencies ?? {})],
    treeshake: true,
    splitting: false,
    sourcemap: false,
    dts: false,
    clean: true,
    silent: true,
  });
  return join(BUNDLE_DIR, "kilo-workload.js");
}
