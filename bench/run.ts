/**
 * Runs every benchmark, prints one summary table with each target, and saves
 * the figures as JSON under bench/results/.
 *
 *   npm run bench            full run
 *   npm run bench -- --quick fewer turns (what CI runs)
 */
import { benchClinc150 } from "./clinc150.js";
import { benchEvolution } from "./evolution.js";
import { benchGrowth } from "./growth.js";
import { benchMatcher } from "./matcher.js";
import { benchOverhead } from "./overhead.js";
import { benchRoundTrips } from "./round-trips.js";
import { benchRuns } from "./runs.js";
import { saveResult } from "./support.js";
import { benchTokens } from "./tokens.js";

const quick = process.argv.includes("--quick");
const ms = (value: number) => `${value.toFixed(3)} ms`;
const pct = (value: number) => `${(value * 100).toFixed(1)}%`;

const overhead = await benchOverhead({ quick });
await saveResult("overhead", overhead);
const matcher = await benchMatcher();
const clinc = await benchClinc150();
const roundTrips = await benchRoundTrips({ quick });
const tokenUse = await benchTokens();
await saveResult("tokens", tokenUse);
await saveResult("round-trips", roundTrips);
const runs = await benchRuns({ quick, overheadMs: overhead.medianMs });
await saveResult("runs", runs);
const evolution = await benchEvolution({ quick });
await saveResult("evolution", evolution);
const growth = await benchGrowth({ quick, matcher, evolution });
await saveResult("growth", growth);

const rows = [
  {
    benchmark: "per-turn overhead (memory, instant provider)",
    figure: `median ${ms(overhead.medianMs)}, p99 ${ms(overhead.p99Ms)} over ${overhead.turns} turns; RSS ${overhead.rssMb.toFixed(0)} MB`,
    target: "median <= 0.5 ms",
    met: overhead.medianMs <= 0.5,
  },
  ...matcher.sizes.map((size) => ({
    benchmark: `matcher fast path, ${size.skills} skills`,
    figure: `median ${ms(size.match.medianMs)}, p99 ${ms(size.match.p99Ms)} (index build ${size.buildMs.toFixed(0)} ms)`,
    target: size.skills === 10_000 ? "p99 <= 1 ms" : "",
    met: size.skills === 10_000 ? size.match.p99Ms <= 1 : true,
  })),
  {
    benchmark: "CLINC150 test: confident-decision precision",
    figure: `${pct(clinc.test.precision)} (coverage ${pct(clinc.test.coverage)})`,
    target: ">= 95%",
    met: clinc.test.precision >= 0.95,
  },
  {
    benchmark: "CLINC150 test: out-of-scope accepted",
    figure: pct(clinc.test.oosFalseAccepts),
    target: "<= 5%",
    met: clinc.test.oosFalseAccepts <= 0.05,
  },
];
for (const row of roundTrips) {
  rows.push({
    benchmark: `chat turn on ${row.storage}`,
    figure: `median ${ms(row.medianMs)}, p99 ${ms(row.p99Ms)}; queries: ${row.roundTrips.chat} (chat${row.storage === "postgres" ? `: ${row.roundTrips.chat - row.roundTrips.chatRun} turn + ${row.roundTrips.chatRun} its run` : ""}), ${row.roundTrips.skillWithData} (data skill + tool)`,
    // A chat turn is a run (issue 6): storing it and the end-of-run claim come on top of the turn's own.
    target: row.storage === "postgres" ? "<= 4 round trips (the warm chat turn's own)" : "",
    met: row.storage === "postgres" ? row.roundTrips.chat - row.roundTrips.chatRun <= 4 : true,
  });
}
for (const row of runs.rows) {
  // Memory is held to the issue's bound (the single-turn overhead, measured on memory); a durable
  // storage to the same bound with its own run alone, since each of its runs also costs the
  // storage's writes (bench/README.md).
  const own = row.storage !== "memory";
  rows.push({
    benchmark: `runs: ${row.conversations} conversations x ${runs.messagesPerConversation} messages, ${row.storage}, ${row.processes} process${row.processes > 1 ? "es" : ""}`,
    figure: `${(row.wallMs / 1000).toFixed(2)} s = ${row.storageRatio.toFixed(2)}x the bound with its storage's run alone (${row.storageRunMeanMs.toFixed(2)} ms mean, ${row.storageRunMs.toFixed(2)} ms median), ${row.ratio.toFixed(1)}x the bound ${row.boundMs.toFixed(0)} ms with the memory overhead; ${row.runsPerSecond.toFixed(0)} runs/s; gap median ${row.medianGapMs.toFixed(2)} ms (${row.medianStoredGapMs} ms by stored timestamps); ${row.orderingViolations} ordering violations; concurrency ${row.concurrency}`,
    target: `0 violations, <= ${row.targetRatio}x the bound${own ? " with its storage's run alone" : ""}${row.targetGapMs === null ? " (gap reported)" : `, gap < ${row.targetGapMs} ms`}`,
    met:
      row.orderingViolations === 0 &&
      (own ? row.storageRatio : row.ratio) <= row.targetRatio &&
      (row.targetGapMs === null || row.medianGapMs < row.targetGapMs),
  });
}
rows.push(
  {
    benchmark: "prompt tokens at turn 50 vs naive prompt (20 skills, 100 memories)",
    figure: pct(tokenUse.atTurn50.ratio),
    target: "<= 35%",
    met: tokenUse.atTurn50.met,
  },
  {
    benchmark: "prompt share before the last cache breakpoint, turns 2-50",
    figure: `lowest ${pct(tokenUse.minBreakpointShareFromTurn2.share)}`,
    target: ">= 80% every turn",
    met: tokenUse.minBreakpointShareFromTurn2.met,
  },
  {
    benchmark: "prompt share reused from the previous prompt, turns 2-50",
    figure: `lowest ${pct(tokenUse.minCacheableFromTurn2.share)}, median ${pct(
      [...tokenUse.turns.slice(1)].map((turn) => turn.cacheableShare).sort((a, b) => a - b)[24]!,
    )}; below 80% on turns ${tokenUse.minCacheableFromTurn2.turnsBelow.join(", ") || "none"}`,
    target: ">= 80% every turn",
    met: tokenUse.minCacheableFromTurn2.met,
  },
);
const first = matcher.sizes[0]!;
const last = matcher.sizes.at(-1)!;
rows.push({
  benchmark: "matcher growth 100 -> 10,000 skills (p99)",
  figure: `${(last.match.p99Ms / first.match.p99Ms).toFixed(1)}x for ${last.skills / first.skills}x skills`,
  target: "sublinear",
  met: last.match.p99Ms / first.match.p99Ms < last.skills / first.skills,
});

// "No worse than logarithmic": the median grows by at most log2 of the growth in size.
for (const [name, points] of [
  ["chat turn vs messages of history", growth.history],
  ["memory recall vs memories kept", growth.memories],
] as const) {
  const [small, large] = [points[0]!, points.at(-1)!];
  const bound = Math.log2(large.size / small.size);
  rows.push({
    benchmark: `growth: ${name}, ${small.size} -> ${large.size}`,
    figure: `median ${ms(small.medianMs)} -> ${ms(large.medianMs)} (${(large.medianMs / small.medianMs).toFixed(1)}x); chart ${growth.chart}`,
    target: `<= ${bound.toFixed(1)}x (log2 of ${large.size / small.size}x)`,
    met: large.medianMs / small.medianMs <= bound,
  });
}

for (const row of evolution.rows) {
  rows.push({
    benchmark: `evolution: pattern detection over ${row.traces.toLocaleString("en-US")} traces, ${row.storage}`,
    figure: `${(row.totalMs / 1000).toFixed(2)} s (read ${row.readMs.toFixed(0)} ms + detect ${row.detectMs.toFixed(0)} ms); planted found ${row.found}/${row.planted}, false ${row.falsePatterns}`,
    target: row.traces >= 100_000 ? "<= 5 s, all found, 0 false" : "all found, 0 false",
    met:
      row.found === row.planted && row.falsePatterns === 0 && (row.traces < 100_000 || row.totalMs <= 5000),
  });
}

console.log(`\nkilo benchmarks (${quick ? "quick" : "full"}, node ${process.version})`);
console.table(rows.map((row) => ({ ...row, met: row.met ? "yes" : "NO" })));
await saveResult("summary", { quick, rows });
