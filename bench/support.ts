import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..");

/** True when the module at `url` is the script node was started with. */
export function isMain(url: string): boolean {
  return process.argv[1] !== undefined && fileURLToPath(url) === process.argv[1];
}

/** The q-quantile (0–1) of the values, by nearest rank. */
export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

/** Median and mean. */
export function summarize(values: readonly number[]): { median: number; mean: number } {
  const mean = values.reduce((sum, value) => sum + value, 0) / Math.max(1, values.length);
  return { median: percentile(values, 0.5), mean };
}

/** Writes `bench/results/<name>.json` with the machine it ran on. */
export async function saveResult(name: string, result: unknown): Promise<string> {
  const file = join(repoRoot, "bench", "results", `${name}.json`);
  await mkdir(dirname(file), { recursive: true });
  const payload = {
    name,
    measuredAt: new Date().toISOString(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    result,
  };
  await writeFile(file, `${JSON.stringify(payload, null, 2)}\n`);
  return file;
}
