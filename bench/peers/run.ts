/**
 * kilo side by side with a peer (Mastra), measured in the same run: installs
 * the peer into a scratch folder (see peer-mastra.ts), then runs every
 * variant of both in fresh `node --expose-gc` processes, round-robin (rep 1
 * of every variant, then rep 2, ...), takes the median of the reps and
 * prints the figures with their ratios and the targets.
 *
 *   npm run bench:peers                  3 reps, 200 warm-up + 2,000 timed turns (about 12 minutes)
 *   npm run bench:peers -- --quick       1 rep, 50 + 300 turns
 *   npm run bench:peers -- --only=kilo-memory,floor --reps=5
 *   npm run bench:peers -- --only=kilo-memory --reps=1 --cpu-prof
 *                                        kilo's processes write .cpuprofile files to <tmp>/kilo-peers-profiles
 *
 * Writes bench/results/peers.json (peers-quick.json with --quick). Targets
 * are reported, not asserted: the exit code is 1 only when kilo delivered a
 * history or stored messages out of order (2 when a variant failed to run).
 */
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot, saveResult } from "../support.js";
import { bundleKiloWorkload } from "./kilo-bundle.js";
import { installPeer, PEER_SOURCE } from "./peer-mastra.js";

const options = Object.fromEntries(
  process.argv.slice(2).map((arg) => {
    const [key, value] = arg.replace(/^--/, "").split("=");
    return [key!, value ?? "true"];
  }),
);
const quick = options.quick === "true";
const reps = Number(options.reps ?? (quick ? 1 : 3));
const turnArgs = quick ? { n: "300", warmup: "50" } : { n: "2000", warmup: "200" };
for (const key of ["n", "warmup"] as const) if (options[key]) turnArgs[key] = options[key];

interface Variant {
  name: string;
  side: "peer" | "kilo";
  kind: "sequential" | "concurrency";
  label: string;
}

const VARIANTS: Variant[] = [
  { name: "floor", side: "peer", kind: "sequential", label: "floor: AI SDK generateText (peer's install)" },
  { name: "nomem", side: "peer", kind: "sequential", label: "Mastra agent.generate, no memory" },
  { name: "mem-inmemory", side: "peer", kind: "sequential", label: "Mastra, history in InMemoryStore" },
  { name: "mem-libsql", side: "peer", kind: "sequential", label: "Mastra, history in LibSQL (file)" },
  { name: "kilo-memory", side: "kilo", kind: "sequential", label: "kilo.chat, history in memoryStorage" },
  {
    name: "kilo-sqlite",
    side: "kilo",
    kind: "sequential",
    label: "kilo.chat, history in sqliteStorage (file)",
  },
  { name: "kilo-rss", side: "kilo", kind: "sequential", label: "kilo.chat, memoryStorage, 10,000 turns" },
  { name: "conc-floor", side: "peer", kind: "concurrency", label: "floor: AI SDK generateText" },
  { name: "conc-nomem", side: "peer", kind: "concurrency", label: "Mastra, no memory" },
  { name: "conc-inmemory", side: "peer", kind: "concurrency", label: "Mastra, InMemoryStore" },
  { name: "conc-libsql", side: "peer", kind: "concurrency", label: "Mastra, LibSQL (file)" },
  { name: "kilo-conc-memory", side: "kilo", kind: "concurrency", label: "kilo.chat, memoryStorage" },
  { name: "kilo-conc-sqlite", side: "kilo", kind: "concurrency", label: "kilo.chat, sqliteStorage (file)" },
];
const only = options.only?.split(",");
const variants = only ? VARIANTS.filter((variant) => only.includes(variant.name)) : VARIANTS;
if (variants.length === 0)
  throw new Error(`--only matched no variant; known: ${VARIANTS.map((v) => v.name)}`);

type Result = Record<string, number | string | unknown[]>;

const peer = variants.some((variant) => variant.side === "peer") ? installPeer() : null;
if (peer)
  console.error(`Peer: ${JSON.stringify(peer.versions)} in ${peer.dir}${peer.reused ? " (reused)" : ""}`);
const kiloBundle = variants.some((variant) => variant.side === "kilo") ? await bundleKiloWorkload() : null;
const profileDir = join(tmpdir(), "kilo-peers-profiles");
const profile = options["cpu-prof"] === "true" ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [];
if (profile.length > 0) {
  mkdirSync(profileDir, { recursive: true });
  console.error(`kilo's CPU profiles go to ${profileDir}`);
}

function runOnce(variant: Variant): Result | null {
  const extra = Object.entries(turnArgs).map(([key, value]) => `--${key}=${value}`);
  const [script, cwd] =
    variant.side === "peer" ? [[peer!.benchFile], peer!.dir] : [[...profile, kiloBundle!], repoRoot];
  const child = spawnSync(process.execPath, ["--expose-gc", ...script, variant.name, ...extra], {
    cwd,
    encoding: "utf8",
    env: {
      ...process.env,
      MASTRA_TELEMETRY_DISABLED: "1",
      NODE_ENV: "production",
      KILO_PEER_SOURCE: PEER_SOURCE,
    },
    maxBuffer: 64 * 2 ** 20,
  });
  const line = (child.stdout ?? "").split("\n").find((text) => text.startsWith("RESULT "));
  if (child.status !== 0 || !line) {
    console.error(`[${variant.name}] FAILED (status ${child.status})\n${child.stdout}\n${child.stderr}`);
    return null;
  }
  return JSON.parse(line.slice("RESULT ".length)) as Result;
}

const runs = new Map<string, Result[]>();
let failures = 0;
for (let rep = 1; rep <= reps; rep++) {
  for (const variant of variants) {
    const started = Date.now();
    const result = runOnce(variant);
    if (!result) {
      failures += 1;
      continue;
    }
    runs.set(variant.name, [...(runs.get(variant.name) ?? []), result]);
    const headline =
      variant.kind === "concurrency"
        ? `wall ${fixed(result.wallMs, 0)} ms, ${fixed(result.turnsPerSec, 0)} turns/s, history bad ${result.promptHistoryBad ?? "-"}/${result.promptHistoryChecked ?? "-"}, stored bad ${result.storedOrderBad ?? "-"}/${result.storedOrderChecked ?? "-"}`
        : `median ${fixed(result.medianMs, 3)} ms, p99 ${fixed(result.p99Ms, 3)} ms, ${fixed(result.turnsPerSec, 0)} turns/s`;
    console.error(
      `[${variant.name} rep ${rep}/${reps}] ${headline} (${((Date.now() - started) / 1000).toFixed(1)} s)`,
    );
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
function fixed(value: unknown, digits: number): string {
  return typeof value === "number" && Number.isFinite(value) ? value.toFixed(digits) : "-";
}

const medians: Record<string, Record<string, number>> = {};
for (const [name, results] of runs) {
  medians[name] = {};
  for (const key of Object.keys(results[0]!)) {
    if (typeof results[0]![key] === "number")
      medians[name][key] = median(results.map((r) => r[key] as number));
  }
}
const sumOf = (name: string, key: string) =>
  (runs.get(name) ?? []).reduce((sum, result) => sum + ((result[key] as number | undefined) ?? 0), 0);
const stat = (name: string, key: string): number => medians[name]?.[key] ?? Number.NaN;

console.log(
  `\nkilo vs peer (Mastra ${peer?.versions["@mastra/core"] ?? "-"}), node ${process.version}, ${reps} rep(s), median of reps`,
);
console.log(
  `sequential: ${turnArgs.warmup} warm-up + ${turnArgs.n} timed turns (kilo-rss: 10,000), mock model answers at once`,
);
/** One table row per variant of `kind` that ran: its name, what it is, then `columns`. */
function tableOf(kind: Variant["kind"], columns: (name: string) => Record<string, string | number>) {
  console.table(
    variants
      .filter((variant) => variant.kind === kind && medians[variant.name])
      .map((variant) => ({ variant: variant.name, what: variant.label, ...columns(variant.name) })),
  );
}
const orderCell = (name: string, bad: string, checked: string) =>
  sumOf(name, checked) ? `${sumOf(name, bad)}/${sumOf(name, checked)}` : "n/a";

tableOf("sequential", (name) => ({
  "median ms": fixed(stat(name, "medianMs"), 3),
  "p90 ms": fixed(stat(name, "p90Ms"), 3),
  "p99 ms": fixed(stat(name, "p99Ms"), 3),
  "turns/s": fixed(stat(name, "turnsPerSec"), 0),
  "CPU ms/turn": fixed(stat(name, "cpuMsPerTurn"), 3),
  "x floor": fixed(stat(name, "medianMs") / stat("floor", "medianMs"), 2),
  "RSS after MB": fixed(stat(name, "rssAfterMB"), 0),
}));
console.log("concurrency: 200 conversations x 10 turns, model delay 20 ms (ideal wall 200 ms)");
tableOf("concurrency", (name) => ({
  "wall ms": fixed(stat(name, "wallMs"), 0),
  "turns/s": fixed(stat(name, "turnsPerSec"), 0),
  "CPU ms/turn": fixed(stat(name, "cpuMsPerTurn"), 3),
  "turn p50/p99 ms": `${fixed(stat(name, "turnMedianMs"), 0)} / ${fixed(stat(name, "turnP99Ms"), 0)}`,
  "history bad/checked": orderCell(name, "promptHistoryBad", "promptHistoryChecked"),
  "stored bad/checked": orderCell(name, "storedOrderBad", "storedOrderChecked"),
  "wrong replies": sumOf(name, "replyMismatch"),
}));

const kiloConc = variants.filter((variant) => variant.side === "kilo" && variant.kind === "concurrency");
const violations = kiloConc.reduce(
  (sum, variant) =>
    sum +
    sumOf(variant.name, "promptHistoryBad") +
    sumOf(variant.name, "storedOrderBad") +
    sumOf(variant.name, "replyMismatch"),
  0,
);
interface TargetRow {
  target: string;
  figure: string;
  ratio: number;
  limit: string;
  met: boolean | null;
}
/** Variant `a`'s figure over variant `b`'s (`key` of both), held to `limit` when one is given. */
function versus(
  target: string,
  [a, aLabel, b, bLabel]: [string, string, string, string],
  [key, unit, digits]: [string, string, number],
  limit?: [text: string, test: (ratio: number) => boolean],
): TargetRow {
  const ratio = stat(a, key) / stat(b, key);
  return {
    target,
    figure: `${aLabel} ${fixed(stat(a, key), digits)} vs ${bLabel} ${fixed(stat(b, key), digits)} ${unit}`,
    ratio,
    limit: limit?.[0] ?? "(reported)",
    met: limit ? limit[1](ratio) : null,
  };
}
const latency: [string, string, number] = ["medianMs", "ms", 3];
const throughput: [string, string, number] = ["turnsPerSec", "turns/s", 0];
const targets: TargetRow[] = [
  versus(
    "per-turn median, history in memory <= 1/20 of the peer's",
    ["kilo-memory", "kilo", "mem-inmemory", "peer"],
    latency,
    ["<= 0.05", (r) => r <= 0.05],
  ),
  versus(
    "per-turn median, history in memory <= 2x the bare floor",
    ["kilo-memory", "kilo", "floor", "floor"],
    latency,
    ["<= 2", (r) => r <= 2],
  ),
  versus(
    "per-turn median, history in a file (kilo SQLite vs peer LibSQL)",
    ["kilo-sqlite", "kilo", "mem-libsql", "peer"],
    latency,
  ),
  versus(
    "200 x 10 concurrency turns/s >= 20x the peer's (memory)",
    ["kilo-conc-memory", "kilo", "conc-inmemory", "peer"],
    throughput,
    [">= 20", (r) => r >= 20],
  ),
  versus(
    "200 x 10 concurrency, peer's CPU per turn over kilo's (memory)",
    ["conc-inmemory", "peer", "kilo-conc-memory", "kilo"],
    ["cpuMsPerTurn", "CPU ms/turn", 3],
  ),
  versus(
    "200 x 10 concurrency turns/s vs the floor",
    ["kilo-conc-memory", "kilo", "conc-floor", "floor"],
    throughput,
  ),
  versus(
    "200 x 10 concurrency turns/s, file (kilo SQLite vs peer LibSQL)",
    ["kilo-conc-sqlite", "kilo", "conc-libsql", "peer"],
    throughput,
  ),
  {
    target: "ordering violations (kilo: history seen by the model, stored order, replies)",
    figure: `${violations} in ${kiloConc.reduce((sum, v) => sum + sumOf(v.name, "promptHistoryChecked"), 0)} prompts checked`,
    ratio: violations,
    limit: "= 0",
    met: kiloConc.length > 0 ? violations === 0 : null,
  },
  {
    target: "memoryStorage RSS growth over 10,000 turns (after forced GC)",
    figure: `${fixed(stat("kilo-rss", "rssGrowthMB"), 1)} MB RSS, ${fixed(stat("kilo-rss", "heapGrowthMB"), 1)} MB heap`,
    ratio: stat("kilo-rss", "rssGrowthMB"),
    limit: "< 50 MB",
    met: stat("kilo-rss", "rssGrowthMB") < 50,
  },
];
console.log("targets (issue 10)");
console.table(
  targets.map((row) => ({
    ...row,
    ratio: fixed(row.ratio, 3),
    met: row.met === null ? "-" : Number.isNaN(row.ratio) ? "not run" : row.met ? "yes" : "NO",
  })),
);

const file = await saveResult(quick ? "peers-quick" : "peers", {
  quick,
  reps,
  turns: turnArgs,
  peer: peer ? { name: "mastra", versions: peer.versions } : null,
  targets,
  medians,
  runs: Object.fromEntries(runs),
});
console.error(`wrote ${file}`);
if (violations > 0) {
  console.error(`kilo delivered ${violations} message(s) out of order`);
  process.exitCode = 1;
} else if (failures > 0) process.exitCode = 2;
