/**
 * kilo's side of the peer comparison: the peer's workloads (see
 * `../shared/peers/mastra/bench.mjs`) run through `kilo.chat`. One variant
 * per process, like the peer; prints one line `RESULT {json}`.
 *
 *   node --expose-gc --import tsx bench/peers/kilo-workload.ts <variant> [--n=2000] [--warmup=200]
 *
 * Sequential (a provider that answers a fixed text at once):
 *   kilo-memory    memoryStorage(): history persisted in process memory
 *   kilo-sqlite    sqliteStorage({ filename }): history persisted in a file (the peer's LibSQL file)
 *   kilo-rss       memoryStorage(), 10,000 turns: RSS and heap growth (after forced GC)
 * Concurrency (the provider waits 20 ms and answers "ack:<user text>"):
 *   kilo-conc-memory, kilo-conc-sqlite
 *   200 conversations x 10 turns, turns of a conversation one after another, all conversations at once.
 *
 * Same shape as the peer: the system text is the peer's 1,445-character
 * instructions (as the bot's context), 4 conversations over 2 users, history
 * of at least the last 10 messages, usage recorded, 3 fresh processes per
 * variant (bench/peers/run.ts takes the medians).
 */
import { readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { memoryStorage } from "../../adapters/storage/memory/index.js";
import { sqliteStorage } from "../../adapters/storage/sqlite/index.js";
import {
  createKilo,
  type Kilo,
  type LlmProvider,
  type LlmRequest,
  type LlmResponse,
  type Storage,
} from "../../src/index.js";
import { createSkillMatcher } from "../../src/skills/skill-matcher.js";
import { percentile } from "../support.js";
import { PEER_SOURCE } from "./peer-mastra.js";

const args = Object.fromEntries(
  process.argv.slice(3).map((arg) => {
    const [key, value] = arg.replace(/^--/, "").split("=");
    return [key!, value ?? "true"];
  }),
);
const variant = process.argv[2] ?? "";
const N = Number(args.n ?? 2000);
const WARMUP = Number(args.warmup ?? 200);
const THREADS = Number(args.threads ?? 4);
const CONVS = Number(args.convs ?? 200);
const TURNS = Number(args.turns ?? 10);
const DELAY_MS = Number(args.delay ?? 20);
const HISTORY = Number(args.history ?? 10);
const RSS_TURNS = Number(args.rssTurns ?? 10_000);

/** The peer's system text, read from its benchmark so both sides always use the same one. */
export function peerInstructions(): string {
  const source = readFileSync(join(PEER_SOURCE, "bench.mjs"), "utf8");
  const found = /const INSTRUCTIONS = `([^`]+)`;/.exec(source);
  if (!found) throw new Error(`No INSTRUCTIONS template in ${PEER_SOURCE}/bench.mjs`);
  return found[1]!;
}

const INSTRUCTIONS = peerInstructions();
const REPLY = "Sure, I can help with that.";
const USAGE = {
  inputTokens: 320,
  outputTokens: 8,
  cacheReadTokens: 0,
  cacheWriteTokens: 0,
  reasoningTokens: 0,
};

type Block = LlmRequest["messages"][number]["content"][number];
const textOf = (block: Block) => (block.type === "text" ? block.text : "");
// The composer sends the turn's volatile context as its own text block before the user's text.
const isContext = (text: string) => text.startsWith("<context>");

function lastUserText(request: LlmRequest): string {
  for (let i = request.messages.length - 1; i >= 0; i--) {
    const message = request.messages[i]!;
    if (message.role === "user") return textOf(message.content.at(-1)!);
  }
  return "";
}

/** What the model saw at each call, checked against the conversation's previous turns. */
const checks = { checked: 0, bad: 0, historyLengths: [] as number[], examples: [] as unknown[] };

// User texts are "c<conv>-t<turn>": the history must be the latest previous turns of that
// conversation, in order, each user text followed by its own "ack:" reply, at least HISTORY of them.
function checkPrompt(request: LlmRequest, text: string): void {
  const found = /^c(\d+)-t(\d+)$/.exec(text);
  if (!found) return;
  const conv = Number(found[1]);
  const turn = Number(found[2]);
  const got: Array<{ role: string; text: string }> = [];
  for (const message of request.messages) {
    for (const block of message.content) {
      const blockText = textOf(block);
      if (block.type !== "text" || isContext(blockText)) continue;
      got.push({ role: message.role, text: blockText });
    }
  }
  const current = got.pop();
  const previous: string[] = [];
  for (let t = 0; t < turn; t++) previous.push(`c${conv}-t${t}`, `ack:c${conv}-t${t}`);
  const window = previous.slice(previous.length - got.length);
  checks.checked += 1;
  checks.historyLengths.push(got.length);
  const ok =
    current?.text === text &&
    current.role === "user" &&
    got.length >= Math.min(HISTORY, previous.length) &&
    got.length <= previous.length &&
    got.every(
      (entry, i) =>
        entry.text === window[i] && entry.role === (window[i]!.startsWith("ack:") ? "assistant" : "user"),
    );
  if (!ok) {
    checks.bad += 1;
    if (checks.examples.length < 3) checks.examples.push({ text, got, want: window });
  }
}

/** A provider that answers at once (or after `delayMs`), keeps nothing and counts its calls. */
function benchProvider(options: { delayMs?: number; echo?: boolean; check?: boolean } = {}) {
  let calls = 0;
  let systemChars = 0;
  const provider: LlmProvider = {
    name: "bench",
    defaultModel: "bench-1",
    capabilities: { thinking: false, streaming: false, promptCaching: false },
    async complete(request): Promise<LlmResponse> {
      calls += 1;
      if (options.delayMs) await new Promise((resolve) => setTimeout(resolve, options.delayMs));
      const text = lastUserText(request);
      if (options.check) checkPrompt(request, text);
      systemChars = request.system.reduce((sum, block) => sum + block.text.length, 0);
      return {
        content: [{ type: "text", text: options.echo ? `ack:${text}` : REPLY }],
        stopReason: "end_turn",
        usage: USAGE,
        model: request.model,
      };
    },
  };
  return {
    provider,
    get calls() {
      return calls;
    },
    get systemChars() {
      return systemChars;
    },
  };
}

let dbFile: string | null = null;
function makeStorage(kind: "memory" | "sqlite"): Storage {
  if (kind === "memory") return memoryStorage();
  dbFile = join(tmpdir(), `kilo-peers-${process.pid}-${Date.now()}.db`);
  return sqliteStorage({ filename: dbFile });
}

function makeKilo(storage: Storage, provider: LlmProvider): Kilo {
  const depth = {
    simple_qa: HISTORY,
    skill_execution: HISTORY,
    skill_generation: HISTORY,
    complex_reasoning: HISTORY,
    data_analysis: HISTORY,
    doc_extraction: HISTORY,
  };
  return createKilo({
    storage,
    providers: [provider],
    prices: { "bench-1": { input: 1, output: 1, cacheRead: 0.1, cacheWrite: 1.25 } },
    // The peer keeps the last 10 messages; kilo loads at least that many.
    matcher: (parts) => createSkillMatcher({ gateway: parts.gateway, historyDepth: depth }),
  });
}

async function makeBots(kilo: Kilo, count: number): Promise<string[]> {
  const bots: string[] = [];
  for (let i = 0; i < count; i++) {
    const bot = await kilo.bots.create({
      id: `bot-${i}`,
      userId: `user-${i}`,
      name: "Atlas",
      context: INSTRUCTIONS,
    });
    bots.push(bot.id);
  }
  return bots;
}

const mb = (bytes: number) => bytes / 2 ** 20;
function mem() {
  const usage = process.memoryUsage();
  return { rssMB: mb(usage.rss), heapUsedMB: mb(usage.heapUsed) };
}
function gcMem() {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  return mem();
}

type MemoryReading = ReturnType<typeof mem>;
/** The peer's memory fields: before the timed turns (after GC), right after them, and after GC. */
function memoryFigures(before: MemoryReading, afterNoGc: MemoryReading, after: MemoryReading) {
  return {
    rssBeforeMB: before.rssMB,
    heapBeforeMB: before.heapUsedMB,
    rssAfterMB: afterNoGc.rssMB,
    heapAfterMB: afterNoGc.heapUsedMB,
    rssAfterGcMB: after.rssMB,
    heapAfterGcMB: after.heapUsedMB,
  };
}

async function sequential(kind: "memory" | "sqlite", turns: number, warmup: number) {
  const bench = benchProvider();
  const kilo = makeKilo(makeStorage(kind), bench.provider);
  const bots = await makeBots(kilo, 2);
  const threadBot = (t: number) => bots[t % 2]!;
  const call = (i: number) => {
    const t = i % THREADS;
    return kilo.chat({
      botId: threadBot(t),
      userId: `user-${t % 2}`,
      conversationId: `thread-${t}`,
      message: `Where is my order? (turn ${i})`,
    });
  };
  let memBefore = gcMem();
  const latencies: number[] = [];
  let firstTurnMs = Number.NaN;
  let reply = "";
  let measuredFrom = 0;
  let cpuFrom: NodeJS.CpuUsage | undefined;
  let callsFrom = 0;
  for (let i = 0; i < warmup + turns; i++) {
    if (i === warmup) {
      // The RSS variant measures growth over the timed turns only, after warm-up.
      if (variant === "kilo-rss") memBefore = gcMem();
      measuredFrom = performance.now();
      cpuFrom = process.cpuUsage();
      callsFrom = bench.calls;
    }
    const started = performance.now();
    const result = await call(i);
    const elapsed = performance.now() - started;
    if (i === 0) firstTurnMs = elapsed;
    if (i >= warmup) latencies.push(elapsed);
    reply = result.reply;
  }
  const measuredMs = performance.now() - measuredFrom;
  const cpu = process.cpuUsage(cpuFrom);
  if (reply !== REPLY) throw new Error(`unexpected reply ${JSON.stringify(reply)}`);
  const memAfterNoGc = mem();
  const memAfter = gcMem();
  let storedMessages = 0;
  for (let t = 0; t < THREADS; t++) {
    // Pages of 500, the most one call returns.
    let beforeSeq: number | undefined;
    for (;;) {
      const page = await kilo.conversations.messages(threadBot(t), `thread-${t}`, { limit: 500, beforeSeq });
      storedMessages += page.length;
      if (page.length < 500) break;
      beforeSeq = page[0]!.seq;
    }
  }
  await kilo.close();
  const sorted = [...latencies].sort((a, b) => a - b);
  const tenth = Math.max(1, Math.floor(latencies.length / 10));
  return {
    n: turns,
    warmup,
    firstTurnMs,
    medianMs: percentile(sorted, 0.5),
    p90Ms: percentile(sorted, 0.9),
    p99Ms: percentile(sorted, 0.99),
    meanMs: latencies.reduce((sum, value) => sum + value, 0) / latencies.length,
    maxMs: sorted.at(-1)!,
    medianFirst10pctMs: percentile(latencies.slice(0, tenth), 0.5),
    medianLast10pctMs: percentile(latencies.slice(-tenth), 0.5),
    turnsPerSec: (turns / measuredMs) * 1000,
    cpuMsPerTurn: (cpu.user + cpu.system) / 1000 / turns,
    providerCallsPerTurn: (bench.calls - callsFrom) / turns,
    systemPromptChars: bench.systemChars,
    ...memoryFigures(memBefore, memAfterNoGc, memAfter),
    rssGrowthMB: memAfter.rssMB - memBefore.rssMB,
    heapGrowthMB: memAfter.heapUsedMB - memBefore.heapUsedMB,
    storedMessages,
  };
}

async function concurrency(kind: "memory" | "sqlite") {
  const bench = benchProvider({ delayMs: DELAY_MS, echo: true, check: true });
  const kilo = makeKilo(makeStorage(kind), bench.provider);
  const bots = await makeBots(kilo, CONVS);
  const turnOnce = (c: number, t: number, conversationId = `conv-${c}`) =>
    kilo.chat({
      botId: bots[c % CONVS]!,
      userId: `user-${c % CONVS}`,
      conversationId,
      message: `c${c}-t${t}`,
    });
  // Warm-up, as the peer: a few sequential turns on throwaway conversations.
  for (let i = 0; i < 20; i++) await turnOnce(i % CONVS, 0, `warm-${i}`);
  Object.assign(checks, { checked: 0, bad: 0, historyLengths: [], examples: [] });

  const memBefore = gcMem();
  const latencies: number[] = [];
  let replyMismatch = 0;
  const started = performance.now();
  const cpuFrom = process.cpuUsage();
  await Promise.all(
    Array.from({ length: CONVS }, async (_, c) => {
      for (let t = 0; t < TURNS; t++) {
        const turnStarted = performance.now();
        const result = await turnOnce(c, t);
        latencies.push(performance.now() - turnStarted);
        if (result.reply !== `ack:c${c}-t${t}`) replyMismatch += 1;
      }
    }),
  );
  const wallMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuFrom);
  const memAfterNoGc = mem();

  // What was persisted, per conversation in storage order: c-t0, ack:c-t0, c-t1, ...
  let storedOrderChecked = 0;
  let storedOrderBad = 0;
  const storedOrderExamples: unknown[] = [];
  for (let c = 0; c < CONVS; c++) {
    const messages = await kilo.conversations.messages(bots[c]!, `conv-${c}`, { limit: 500 });
    const got = messages.map((message) => message.content);
    const want: string[] = [];
    for (let t = 0; t < TURNS; t++) want.push(`c${c}-t${t}`, `ack:c${c}-t${t}`);
    storedOrderChecked += 1;
    if (got.length !== want.length || got.some((text, i) => text !== want[i])) {
      storedOrderBad += 1;
      if (storedOrderExamples.length < 2) storedOrderExamples.push({ c, got, want });
    }
  }
  const memAfter = gcMem();
  await kilo.close();
  const sorted = [...latencies].sort((a, b) => a - b);
  const ideal = TURNS * DELAY_MS;
  return {
    convs: CONVS,
    turns: TURNS,
    delayMs: DELAY_MS,
    wallMs,
    idealMs: ideal,
    wallOverIdeal: wallMs / ideal,
    turnsPerSec: ((CONVS * TURNS) / wallMs) * 1000,
    cpuMsPerTurn: (cpu.user + cpu.system) / 1000 / (CONVS * TURNS),
    turnMedianMs: percentile(sorted, 0.5),
    turnP90Ms: percentile(sorted, 0.9),
    turnP99Ms: percentile(sorted, 0.99),
    replyMismatch,
    promptHistoryChecked: checks.checked,
    promptHistoryBad: checks.bad,
    promptHistoryExamples: checks.examples,
    historyMessagesMedian: percentile(checks.historyLengths, 0.5),
    historyMessagesMax: Math.max(...checks.historyLengths),
    storedOrderChecked,
    storedOrderBad,
    storedOrderExamples,
    ...memoryFigures(memBefore, memAfterNoGc, memAfter),
  };
}

const startupMs = performance.now();
try {
  let result: Record<string, unknown>;
  if (variant === "kilo-memory") result = await sequential("memory", N, WARMUP);
  else if (variant === "kilo-sqlite") result = await sequential("sqlite", N, WARMUP);
  else if (variant === "kilo-rss") result = await sequential("memory", RSS_TURNS, WARMUP);
  else if (variant === "kilo-conc-memory") result = await concurrency("memory");
  else if (variant === "kilo-conc-sqlite") result = await concurrency("sqlite");
  else throw new Error(`unknown variant '${variant}'`);
  process.stdout.write(
    `RESULT ${JSON.stringify({ variant, ...result, startupMs, instructionsChars: INSTRUCTIONS.length, node: process.version })}\n`,
  );
} finally {
  if (dbFile)
    for (const suffix of ["", "-wal", "-shm", "-journal"]) rmSync(`${dbFile}${suffix}`, { force: true });
}
