/**
 * Per-turn SDK overhead: kilo.chat on the memory adapter with a mock
 * provider that answers instantly, so everything measured is kilo's own work
 * (validation, matching, context loading, composing, persistence, events).
 *
 *   npx tsx bench/overhead.ts [--quick]
 */
import { memoryStorage } from "../adapters/storage/memory/index.js";
import { createKilo, type LlmProvider } from "../src/index.js";
import { isMain, percentile, saveResult, summarize } from "./support.js";

/** What the overhead bench reports. */
export interface OverheadResult {
  turns: number;
  warmup: number;
  medianMs: number;
  p99Ms: number;
  meanMs: number;
  rssMb: number;
  heapUsedMb: number;
  targetMedianMs: number;
  meetsTarget: boolean;
}

const MESSAGES = [
  "New order: Maria, chocolate cake, Saturday",
  "What orders do I have on Saturday?",
  "Inventory: 20 kg flour in stock",
  "Thanks, that's all for now",
];

export async function benchOverhead(options: { quick?: boolean } = {}): Promise<OverheadResult> {
  const turns = options.quick ? 2_000 : 5_000;
  const warmup = options.quick ? 300 : 1_000;
  const classifyReply = JSON.stringify({ skill: null, confidence: 0.9, actionable: false, reason: "chat" });
  // A provider that answers at once and keeps nothing, so the figures are kilo's own cost.
  const usage = {
    inputTokens: 100,
    outputTokens: 5,
    cacheReadTokens: 0,
    cacheWriteTokens: 0,
    reasoningTokens: 0,
  };
  const provider: LlmProvider = {
    name: "instant",
    defaultModel: "instant-1",
    capabilities: { thinking: false, streaming: false, promptCaching: false },
    async complete(request) {
      const text = request.purpose === "classify" ? classifyReply : "Noted!";
      return { content: [{ type: "text", text }], stopReason: "end_turn", usage, model: request.model };
    },
  };
  const kilo = createKilo({
    storage: memoryStorage(),
    providers: [provider],
    prices: { "instant-1": { input: 1, output: 1, cacheRead: 0.1, cacheWrite: 1.25 } },
  });
  const bot = await kilo.bots.create({ userId: "bench-user", name: "Bench" });
  await kilo.skills.create(bot.id, {
    name: "Order Tracker",
    triggers: ["new order", "orders"],
    examples: ["What orders are due Friday?"],
    dataFields: [{ name: "customer", type: "string" }],
  });
  await kilo.skills.create(bot.id, { name: "Inventory Tracker", triggers: ["inventory", "stock"] });
  for (let i = 0; i < 18; i += 1) {
    await kilo.skills.create(bot.id, { name: `Skill ${i}`, triggers: [`topic${i}`, `thing${i} list`] });
  }

  const conversations: string[] = [];
  const durations: number[] = [];
  for (let turn = 0; turn < warmup + turns; turn += 1) {
    const slot = turn % 50;
    const started = performance.now();
    const result = await kilo.chat({
      botId: bot.id,
      userId: "bench-user",
      conversationId: conversations[slot],
      message: MESSAGES[turn % MESSAGES.length]!,
    });
    const elapsed = performance.now() - started;
    conversations[slot] = result.conversationId;
    if (turn >= warmup) durations.push(elapsed);
  }
  const stats = summarize(durations);
  const memory = process.memoryUsage();
  await kilo.close();
  return {
    turns,
    warmup,
    medianMs: stats.median,
    p99Ms: percentile(durations, 0.99),
    meanMs: stats.mean,
    rssMb: memory.rss / 2 ** 20,
    heapUsedMb: memory.heapUsed / 2 ** 20,
    targetMedianMs: 0.5,
    meetsTarget: stats.median <= 0.5,
  };
}

if (isMain(import.meta.url)) {
  const result = await benchOverhead({ quick: process.argv.includes("--quick") });
  console.table([result]);
  await saveResult("overhead", result);
}
