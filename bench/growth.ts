/**
 * Cost growth: how kilo's own per-turn work grows with the size of what it
 * keeps. Per-turn overhead (memory adapter, a provider that answers at once)
 * with 10, 100 and 1,000 earlier messages in the conversation; memory recall
 * with 100 to 100,000 memories; the matcher at 100 to 10,000 skills (from
 * `bench/matcher.ts`); evolution's pattern detection per 1,000 traces at
 * 10,000 and 100,000 traces (from `bench/evolution.ts`; 10,000 only in quick
 * mode). Writes `bench/results/growth.json` and a chart,
 * `docs/performance-growth.svg`.
 *
 *   npx tsx bench/growth.ts [--quick]
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { memoryStorage } from "../adapters/storage/memory/index.js";
import { createKilo, type LlmProvider, lexicalMemoryRetriever } from "../src/index.js";
import { benchEvolution, type EvolutionResult } from "./evolution.js";
import { benchMatcher, type MatcherResult } from "./matcher.js";
import { isMain, percentile, repoRoot, saveResult } from "./support.js";

/** One point of a growth curve. */
export interface GrowthPoint {
  /** How many messages, memories or skills were kept. */
  size: number;
  medianMs: number;
  p99Ms: number;
}

/** What the growth bench reports. */
export interface GrowthResult {
  history: GrowthPoint[];
  memories: GrowthPoint[];
  skills: GrowthPoint[];
  /** Evolution's pattern detection on the memory adapter: milliseconds per 1,000 traces, by trace count. */
  evolution: GrowthPoint[];
  /** Median at the largest size over the median at the smallest, per curve. */
  growth: { history: number; memories: number; skills: number; evolution: number };
  chart: string;
}

const usage = {
  inputTokens: 100,
  outputTokens: 5,
  cacheReadTokens: 0,
  cacheWriteTokens: 0,
  reasoningTokens: 0,
};
const instant: LlmProvider = {
  name: "instant",
  defaultModel: "instant-1",
  capabilities: { thinking: false, streaming: false, promptCaching: false },
  async complete(request) {
    return {
      content: [{ type: "text", text: "Noted." }],
      stopReason: "end_turn",
      usage,
      model: request.model,
    };
  },
};

async function timeMany(count: number, run: (index: number) => Promise<unknown>): Promise<number[]> {
  const times: number[] = [];
  for (let index = 0; index < count; index += 1) {
    const started = performance.now();
    await run(index);
    times.push(performance.now() - started);
  }
  return times;
}

const point = (size: number, times: number[]): GrowthPoint => ({
  size,
  medianMs: percentile(times, 0.5),
  p99Ms: percentile(times, 0.99),
});

/** Per-turn overhead in a conversation that already holds `size` messages. */
async function historyPoint(size: number, turns: number): Promise<GrowthPoint> {
  const storage = memoryStorage();
  const kilo = createKilo({
    storage,
    providers: [instant],
    prices: { "instant-1": { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 } },
  });
  const bot = await kilo.bots.create({ userId: "growth", name: "Crumb" });
  const first = await kilo.chat({ botId: bot.id, userId: "growth", message: "hello" });
  for (let n = 2; n < size; n += 1) {
    await storage.messages.append({
      id: `msg_fill_${n}`,
      conversationId: first.conversationId,
      botId: bot.id,
      role: n % 2 === 0 ? "user" : "assistant",
      content: `Earlier message number ${n} about the bakery's week.`,
      metadata: {},
      createdAt: new Date(),
    });
  }
  const chat = (index: number) =>
    kilo.chat({
      botId: bot.id,
      userId: "growth",
      conversationId: first.conversationId,
      message: `Turn ${index}`,
    });
  await timeMany(Math.ceil(turns / 4), chat);
  const times = await timeMany(turns, chat);
  await kilo.close();
  return point(size, times);
}

/** Memory recall (standing + relevant) for a user with `size` memories. */
async function memoryPoint(size: number, calls: number): Promise<GrowthPoint> {
  const storage = memoryStorage();
  await storage.users.upsert({ id: "growth", name: null, metadata: {}, createdAt: new Date() });
  const kilo = createKilo({ storage, providers: [instant] });
  const bot = await kilo.bots.create({ userId: "growth", name: "Crumb" });
  for (let n = 0; n < size; n += 1) {
    await storage.memories.create({
      id: `mem_${n}`,
      botId: bot.id,
      userId: "growth",
      key: `fact ${n}`,
      content: `Fact ${n}: supplier ${n % 97} delivers flour on day ${n % 7}.`,
      source: { kind: "manual", conversationId: null, messageId: null },
      history: [],
      createdAt: new Date(Date.UTC(2026, 0, 1) + n * 1000),
      updatedAt: new Date(Date.UTC(2026, 0, 1) + n * 1000),
    });
  }
  const retriever = lexicalMemoryRetriever(storage);
  const recall = (index: number) =>
    retriever.recall!({
      botId: bot.id,
      userId: "growth",
      query: `When does supplier ${index % 97} deliver flour?`,
      limit: 8,
      standingLimit: 5,
    });
  await timeMany(Math.ceil(calls / 4), recall);
  const times = await timeMany(calls, recall);
  await kilo.close();
  return point(size, times);
}

/** A small SVG with one log-log panel per curve, so a reader sees the growth at a glance. */
export function growthChart(result: Omit<GrowthResult, "chart" | "growth">): string {
  const panels: Array<{ title: string; unit: string; points: GrowthPoint[] }> = [
    { title: "chat turn vs messages in the conversation", unit: "messages", points: result.history },
    { title: "memory recall vs memories kept", unit: "memories", points: result.memories },
    { title: "matcher vs active skills", unit: "skills", points: result.skills },
    { title: "evolution per 1,000 traces vs traces", unit: "traces", points: result.evolution },
  ];
  const width = 300;
  const height = 220;
  const pad = { left: 52, right: 14, top: 34, bottom: 40 };
  const log = Math.log10;
  const svgPanels = panels.map((panel, index) => {
    const x0 = index * width;
    const sizes = panel.points.map((p) => p.size);
    const values = panel.points.flatMap((p) => [p.medianMs, p.p99Ms]).filter((v) => v > 0);
    const [minX, maxX] = [log(Math.min(...sizes)), log(Math.max(...sizes))];
    const [minY, maxY] = [Math.floor(log(Math.min(...values))), Math.ceil(log(Math.max(...values)))];
    const sx = (size: number) =>
      x0 + pad.left + ((log(size) - minX) / Math.max(1e-9, maxX - minX)) * (width - pad.left - pad.right);
    const sy = (ms: number) =>
      pad.top +
      (1 - (log(Math.max(ms, 10 ** minY)) - minY) / Math.max(1, maxY - minY)) *
        (height - pad.top - pad.bottom);
    const line = (key: "medianMs" | "p99Ms") =>
      panel.points.map((p) => `${sx(p.size).toFixed(1)},${sy(p[key]).toFixed(1)}`).join(" ");
    const yTicks = Array.from({ length: maxY - minY + 1 }, (_, k) => minY + k).map(
      (exp) =>
        `<text x="${x0 + pad.left - 6}" y="${sy(10 ** exp) + 4}" text-anchor="end">${10 ** exp >= 1 ? 10 ** exp : (10 ** exp).toFixed(-exp)} ms</text>` +
        `<line x1="${x0 + pad.left}" x2="${x0 + width - pad.right}" y1="${sy(10 ** exp)}" y2="${sy(10 ** exp)}" stroke="#ddd"/>`,
    );
    const xTicks = panel.points.map(
      (p) =>
        `<text x="${sx(p.size)}" y="${height - pad.bottom + 16}" text-anchor="middle">${p.size.toLocaleString("en")}</text>`,
    );
    return [
      `<text x="${x0 + width / 2}" y="18" text-anchor="middle" font-weight="bold">${panel.title}</text>`,
      ...yTicks,
      ...xTicks,
      `<text x="${x0 + width / 2}" y="${height - 6}" text-anchor="middle">${panel.unit} (log scale)</text>`,
      `<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="${line("medianMs")}"/>`,
      `<polyline fill="none" stroke="#d62728" stroke-width="1.5" stroke-dasharray="4 3" points="${line("p99Ms")}"/>`,
    ].join("\n");
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width * panels.length}" height="${height + 20}" font-family="sans-serif" font-size="11" role="img" aria-label="kilo cost growth">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    ...svgPanels,
    `<text x="10" y="${height + 14}" fill="#1f77b4">— median</text><text x="80" y="${height + 14}" fill="#d62728">- - p99</text>`,
    "</svg>",
    "",
  ].join("\n");
}

/** Runs the growth bench; pass the matcher and evolution benches' results when they already ran in this process. */
export async function benchGrowth(
  options: { quick?: boolean; matcher?: MatcherResult; evolution?: EvolutionResult } = {},
): Promise<GrowthResult> {
  const turns = options.quick ? 200 : 1_000;
  const history: GrowthPoint[] = [];
  for (const size of [10, 100, 1_000]) history.push(await historyPoint(size, turns));
  const memories: GrowthPoint[] = [];
  const memorySizes = options.quick ? [100, 1_000, 10_000] : [100, 1_000, 10_000, 100_000];
  for (const size of memorySizes) memories.push(await memoryPoint(size, turns));
  const matcher = options.matcher ?? (await benchMatcher());
  const skills = matcher.sizes.map((entry) => ({
    size: entry.skills,
    medianMs: entry.match.medianMs,
    p99Ms: entry.match.p99Ms,
  }));
  const evolutionRows = (options.evolution ?? (await benchEvolution({ quick: options.quick }))).rows;
  const evolution = evolutionRows
    .filter((row) => row.storage === "memory")
    .map((row) => {
      const perThousand = (row.totalMs / row.traces) * 1000;
      return { size: row.traces, medianMs: perThousand, p99Ms: perThousand };
    });
  const ratio = (points: GrowthPoint[]) => points.at(-1)!.medianMs / points[0]!.medianMs;
  const body = { history, memories, skills, evolution };
  const chart = join(repoRoot, "docs", "performance-growth.svg");
  await writeFile(chart, growthChart(body));
  return {
    ...body,
    growth: {
      history: ratio(history),
      memories: ratio(memories),
      skills: ratio(skills),
      evolution: ratio(evolution),
    },
    chart: "docs/performance-growth.svg",
  };
}

if (isMain(import.meta.url)) {
  const result = await benchGrowth({ quick: process.argv.includes("--quick") });
  for (const [name, points] of Object.entries({
    history: result.history,
    memories: result.memories,
    skills: result.skills,
  })) {
    console.table(
      points.map((p) => ({
        [name]: p.size,
        "median ms": p.medianMs.toFixed(3),
        "p99 ms": p.p99Ms.toFixed(3),
      })),
    );
  }
  console.log(`growth, largest/smallest median: ${JSON.stringify(result.growth)}; chart: ${result.chart}`);
  await saveResult("growth", result);
}
