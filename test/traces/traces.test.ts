import { describe, expect, it } from "vitest";
import { memoryStorage } from "../../adapters/storage/memory/index.js";
import { sqliteStorage } from "../../adapters/storage/sqlite/index.js";
import { createKilo, KiloError, type Storage } from "../../src/index.js";
import { sequentialIds } from "../../src/runtime/defaults.js";
import { mockProvider, scriptByPurpose } from "../../src/testing/index.js";
import { ORDER_TRACKER } from "../fixtures.js";
import { setup, USER } from "../kilo/helpers.js";

const orderTurn = () => ({
  chat: [
    {
      toolCalls: [
        {
          name: "record_create",
          input: {
            skill: "Order Tracker",
            data: { customer: "Maria", item: "cake", pickup_day: "Saturday" },
          },
        },
      ],
    },
    "Got it: cake for Maria on Saturday.",
  ],
});

describe("traces", () => {
  for (const [name, make] of [
    ["memory", () => memoryStorage()],
    ["sqlite", () => sqliteStorage({ filename: ":memory:" })],
  ] as const) {
    it(`every chat turn leaves a trace with what it did (${name})`, async () => {
      const { kilo } = setup(orderTurn(), { storage: make() as Storage });
      const bot = await kilo.bots.create({ userId: USER, name: "Crumb" });
      await kilo.skills.create(bot.id, ORDER_TRACKER);
      const turn = await kilo.chat({
        botId: bot.id,
        userId: USER,
        message: "New order: Maria, cake, Saturday",
      });

      expect(turn.traceId).toEqual(expect.any(String));
      expect(turn.skillsUsed).toEqual(["Order Tracker"]);
      const trace = await kilo.traces.get(bot.id, turn.traceId!);
      expect(trace).toMatchObject({
        botId: bot.id,
        userId: USER,
        conversationId: turn.conversationId,
        userMessageId: turn.userMessageId,
        replyMessageId: turn.replyMessageId,
        message: "New order: Maria, cake, Saturday",
        skillId: turn.skill!.id,
        skillName: "Order Tracker",
        matchPass: "fast",
        skillsInjected: ["Order Tracker"],
        toolCalls: [{ name: "record_create", ok: true }],
        outcome: "ok",
        errorCode: null,
        model: "claude-sonnet-4-5",
        feedback: null,
      });
      expect(trace.matchConfidence).toBeGreaterThan(0);
      expect(trace.promptTokens).toBe(
        turn.usage.promptTokens + turn.usage.cacheReadTokens + turn.usage.cacheWriteTokens,
      );
      expect(trace.completionTokens).toBe(turn.usage.completionTokens);
      expect(trace.latencyMs).toBeGreaterThanOrEqual(0);
      // Tool inputs never reach a trace.
      expect(JSON.stringify(trace)).not.toContain("pickup_day");

      const page = await kilo.traces.list({ botId: bot.id, userId: USER });
      expect(page.items.map((item) => item.id)).toEqual([turn.traceId]);
      await kilo.close();
    });
  }

  it("records thumbs up/down feedback, and refuses unknown traces and bad ratings", async () => {
    const { kilo } = setup({ chat: ["Hi!"] });
    const bot = await kilo.bots.create({ userId: USER, name: "Crumb" });
    const turn = await kilo.chat({ botId: bot.id, userId: USER, message: "hello there" });
    const rated = await kilo.traces.feedback(bot.id, turn.traceId!, { rating: "down", comment: "too short" });
    expect(rated.feedback).toMatchObject({ rating: "down", comment: "too short" });
    expect(rated.feedback!.at).toBeInstanceOf(Date);
    const again = await kilo.traces.feedback(bot.id, turn.traceId!, { rating: "up" });
    expect(again.feedback).toMatchObject({ rating: "up", comment: null });

    const missing = await kilo.traces
      .feedback(bot.id, "trace_none", { rating: "up" })
      .catch((e: unknown) => e);
    expect(KiloError.is(missing, "NOT_FOUND")).toBe(true);
    const other = await kilo.bots.create({ userId: "user_2", name: "Other" });
    const foreign = await kilo.traces.get(other.id, turn.traceId!).catch((e: unknown) => e);
    expect(KiloError.is(foreign, "NOT_FOUND")).toBe(true);
    const bad = await kilo.traces
      .feedback(bot.id, turn.traceId!, { rating: "meh" as "up" })
      .catch((e: unknown) => e);
    expect(KiloError.is(bad, "VALIDATION_FAILED")).toBe(true);
  });

  it("a failed turn leaves a trace with its error code", async () => {
    const { kilo } = setup({ chat: [{ error: { code: "PROVIDER_FAILED", message: "down" } }] });
    const bot = await kilo.bots.create({ userId: USER, name: "Crumb" });
    await expect(kilo.chat({ botId: bot.id, userId: USER, message: "hello there" })).rejects.toThrow();
    const { items } = await kilo.traces.list({ botId: bot.id });
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ outcome: "error", errorCode: "PROVIDER_FAILED", replyMessageId: null });
  });

  it("prune() deletes traces older than retentionDays, and only those", async () => {
    let now = Date.UTC(2026, 0, 1);
    const provider = mockProvider({ respond: scriptByPurpose({ chat: ["one", "two"] }) });
    const kilo = createKilo({
      storage: memoryStorage(),
      providers: [provider],
      ids: sequentialIds(),
      clock: { now: () => new Date(now) },
      traces: { retentionDays: 30 },
    });
    const bot = await kilo.bots.create({ userId: USER, name: "Crumb" });
    const old = await kilo.chat({ botId: bot.id, userId: USER, message: "first message" });
    now += 20 * 86_400_000;
    const recent = await kilo.chat({ botId: bot.id, userId: USER, message: "second message" });
    now += 15 * 86_400_000;
    expect(await kilo.traces.prune()).toEqual({ deleted: 1 });
    const left = await kilo.traces.list({ botId: bot.id });
    expect(left.items.map((trace) => trace.id)).toEqual([recent.traceId]);
    expect(left.items.map((trace) => trace.id)).not.toContain(old.traceId);
    expect(await kilo.traces.prune({ olderThan: new Date(now + 1) })).toEqual({ deleted: 1 });
  });

  it("prune() without a retention deletes nothing", async () => {
    const { kilo } = setup({ chat: ["Hi!"] });
    const bot = await kilo.bots.create({ userId: USER, name: "Crumb" });
    await kilo.chat({ botId: bot.id, userId: USER, message: "hello there" });
    expect(await kilo.traces.prune()).toEqual({ deleted: 0 });
    expect((await kilo.traces.list({ botId: bot.id })).items).toHaveLength(1);
  });
});
