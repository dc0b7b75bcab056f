/**
 * Evolution's pattern detection over 10,000 and 100,000 synthetic traces
 * with planted patterns, on the memory and SQLite adapters: the time to read
 * a user's traces from storage and detect patterns, how many planted
 * patterns were found (all should be) and how many false patterns came up
 * (none should).
 *
 *   npx tsx bench/evolution.ts [--quick]      (quick: 10,000 traces only)
 */
import { memoryStorage } from "../adapters/storage/memory/index.js";
import { sqliteStorage } from "../adapters/storage/sqlite/index.js";
import type { Storage, Trace } from "../src/index.js";
import { allPages } from "../src/runtime/pages.js";
import { detectPatterns } from "../src/skills/trace-patterns.js";
import { rng } from "./matcher.js";
import { isMain, saveResult } from "./support.js";

/** One measured size on one adapter. */
export interface EvolutionRow {
  storage: string;
  traces: number;
  /** Reading every trace of the user from storage, paged. */
  readMs: number;
  /** Detecting patterns over them. */
  detectMs: number;
  totalMs: number;
  planted: number;
  found: number;
  falsePatterns: number;
}

/** What {@link benchEvolution} measured. */
export interface EvolutionResult {
  rows: EvolutionRow[];
}

const BOT = "bot_bench";
const USER = "user_bench";
const PLANTED = 25;

const SYLLABLES = "ka lo mi ne ru sa ti vo zu pe gra blen tor quin dax fol mur vek sil harp".split(" ");

function words(count: number, next: () => number, prefix: string): string[] {
  const seen = new Set<string>();
  while (seen.size < count) {
    const parts = 2 + Math.floor(next() * 3);
    let word = prefix;
    for (let i = 0; i < parts; i++) word += SYLLABLES[Math.floor(next() * SYLLABLES.length)];
    seen.add(word);
  }
  return [...seen];
}

/** Synthetic traces: noise from a 20,000-word vocabulary, plus planted patterns (2-3 fixed keywords, varying slot words). */
function synthesize(total: number): { traces: Trace[]; plantedOf: Map<string, number> } {
  const next = rng(total);
  const vocabulary = words(20_000, next, "");
  const keywordPool = words(PLANTED * 3, next, "zq");
  const plantedOf = new Map<string, number>();
  const traces: Trace[] = [];
  const pick = (list: readonly string[]) => list[Math.floor(next() * list.length)]!;
  const base = Date.UTC(2026, 0, 1);
  const push = (message: string, pattern: number | null) => {
    const id = `trace_${traces.length}`;
    if (pattern !== null) plantedOf.set(id, pattern);
    traces.push({
      id,
      botId: BOT,
      userId: USER,
      conversationId: null,
      userMessageId: null,
      replyMessageId: null,
      message,
      skillId: null,
      skillName: null,
      matchPass: "none",
      matchConfidence: 1,
      skillsInjected: [],
      toolCalls: [],
      outcome: "ok",
      errorCode: null,
      latencyMs: 1,
      model: "bench",
      promptTokens: 0,
      completionTokens: 0,
      costUsd: 0,
      feedback: null,
      createdAt: new Date(base + traces.length * 1000),
    });
  };
  // Each planted pattern occurs 3..(0.2% of the traces) times.
  const plantedCounts = Array.from({ length: PLANTED }, (_, i) =>
    Math.max(3, Math.round(3 + (i / PLANTED) * total * 0.002)),
  );
  const plantedTotal = plantedCounts.reduce((sum, count) => sum + count, 0);
  const slots: Array<number | null> = [];
  plantedCounts.forEach((count, pattern) => {
    for (let i = 0; i < count; i++) slots.push(pattern);
  });
  while (slots.length < total) slots.push(null);
  for (let i = slots.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [slots[i], slots[j]] = [slots[j]!, slots[i]!];
  }
  for (const pattern of slots) {
    if (pattern === null) {
      const length = 4 + Math.floor(next() * 5);
      push(Array.from({ length }, () => pick(vocabulary)).join(" "), null);
    } else {
      const keywords = keywordPool.slice(pattern * 3, pattern * 3 + 2 + (pattern % 2));
      const slotWords = Array.from({ length: 1 + Math.floor(next() * 3) }, () => pick(vocabulary));
      push(`please ${keywords.join(" ")} for ${slotWords.join(" ")}`, pattern);
    }
  }
  if (plantedTotal > total) throw new Error("too many planted traces");
  return { traces, plantedOf };
}

async function measure(name: string, storage: Storage, total: number): Promise<EvolutionRow> {
  await storage.init?.();
  const { traces, plantedOf } = synthesize(total);
  await storage.users.upsert({ id: USER, name: null, metadata: {}, createdAt: new Date(0) });
  await storage.bots.create({
    id: BOT,
    userId: USER,
    name: "Bench",
    soul: null,
    personality: null,
    context: null,
    metadata: {},
    createdAt: new Date(0),
    updatedAt: new Date(0),
  });
  const repository = storage.traces!;
  await storage.transaction(async (tx) => {
    for (const trace of traces) await tx.traces!.create(trace);
  });

  const started = performance.now();
  const read = await allPages((cursor) =>
    repository.list({ botId: BOT, userId: USER }, { limit: 1000, cursor }),
  );
  const readDone = performance.now();
  const patterns = detectPatterns(read, { minOccurrences: 3 });
  const detected = performance.now();

  const found = new Set<number>();
  let falsePatterns = 0;
  for (const pattern of patterns) {
    const sources = pattern.members.map((index) => plantedOf.get(read[index]!.id));
    const first = sources[0];
    const pure = first !== undefined && sources.every((source) => source === first);
    const expected = first === undefined ? -1 : [...plantedOf.values()].filter((p) => p === first).length;
    if (pure && pattern.members.length === expected) found.add(first);
    else falsePatterns += 1;
  }
  await storage.close?.();
  return {
    storage: name,
    traces: total,
    readMs: readDone - started,
    detectMs: detected - readDone,
    totalMs: detected - started,
    planted: PLANTED,
    found: found.size,
    falsePatterns,
  };
}

/** Runs the bench: 10,000 traces (quick), and 100,000 too in a full run, on memory and SQLite. */
export async function benchEvolution(options: { quick?: boolean } = {}): Promise<EvolutionResult> {
  const sizes = options.quick ? [10_000] : [10_000, 100_000];
  const rows: EvolutionRow[] = [];
  for (const total of sizes) {
    rows.push(await measure("memory", memoryStorage(), total));
    rows.push(await measure("sqlite", sqliteStorage({ filename: ":memory:" }), total));
  }
  return { rows };
}

if (isMain(import.meta.url)) {
  const result = await benchEvolution({ quick: process.argv.includes("--quick") });
  console.table(
    result.rows.map((row) => ({
      ...row,
      readMs: row.readMs.toFixed(0),
      detectMs: row.detectMs.toFixed(0),
      totalMs: row.totalMs.toFixed(0),
    })),
  );
  await saveResult("evolution", result);
}
