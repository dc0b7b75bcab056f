import { describe, expect, it } from "vitest";
import { memoryStorage } from "../../adapters/storage/memory/index.js";
import { createKilo, jsonLogger, KiloError, type SkillMatcher } from "../../src/index.js";
import { mockProvider } from "../../src/testing/index.js";
import { bakeryBot, classify, setup, USER } from "./helpers.js";

const fail = {
  error: { code: "PROVIDER_FAILED" as const, message: "upstream overloaded", retryable: false },
};

describe("the pipeline's guarantees", () => {
  it("stores the user's message before calling the model, so a model failure loses nothing", async () => {
    const { kilo } = setup({ chat: [fail] });
    const { bot } = await bakeryBot(kilo);
    const errors: string[] = [];
    kilo.onError((event) => errors.push(event.error.code));
    const failure = await kilo
      .chat({
        botId: bot.id,
        userId: USER,
        conversationId: "conv_keep",
        message: "New order: Ana, tart, Sunday",
      })
      .catch((e: unknown) => e);
    expect(KiloError.is(failure, "PROVIDER_FAILED")).toBe(true);
    expect(errors).toEqual(["PROVIDER_FAILED"]);
    const messages = await kilo.conversations.messages(bot.id, "conv_keep");
    expect(messages.map((m) => [m.role, m.content])).toEqual([["user", "New order: Ana, tart, Sunday"]]);
  });

  it("still records the usage of a failed turn's calls", async () => {
    const { kilo } = setup({
      classify: [{ text: classify(null), usage: { inputTokens: 200, outputTokens: 20 } }],
      chat: [
        {
          error: { code: "PROVIDER_FAILED", message: "cut off", retryable: false },
          usage: { inputTokens: 900 },
        },
      ],
    });
    const { bot } = await bakeryBot(kilo);
    await expect(kilo.chat({ botId: bot.id, userId: USER, message: "hello there" })).rejects.toThrow(
      /cut off|failed/,
    );
    const summary = await kilo.usage.summary({ userId: USER });
    expect(summary.calls).toBe(2);
    expect(summary.promptTokens).toBe(1100);
  });

  it("rejects invalid input with VALIDATION_FAILED and changes nothing", async () => {
    const { kilo, provider } = setup({});
    const { bot } = await bakeryBot(kilo);
    const cases = [
      { botId: bot.id, userId: USER, message: "   " },
      { botId: bot.id, userId: USER, message: "x".repeat(100_001) },
      { botId: "bad id!", userId: USER, message: "hi" },
      { botId: bot.id, userId: USER, message: 42 },
    ];
    for (const input of cases) {
      const failure = await kilo.chat(input as never).catch((e: unknown) => e);
      expect(KiloError.is(failure, "VALIDATION_FAILED")).toBe(true);
    }
    expect(provider.calls).toBe(0);
    expect((await kilo.conversations.list(bot.id)).items).toEqual([]);

    const badSkill = await kilo.skills
      .create(bot.id, { name: "Bad", dataFields: [{ name: "Not Snake", type: "string" }] })
      .catch((e: unknown) => e);
    expect(KiloError.is(badSkill, "VALIDATION_FAILED")).toBe(true);
    expect((badSkill as KiloError).message).toContain("dataFields.0.name");
    const duplicate = await kilo.skills.create(bot.id, { name: "order tracker" }).catch((e: unknown) => e);
    expect(KiloError.is(duplicate, "CONFLICT")).toBe(true);
    expect(await kilo.skills.list(bot.id)).toHaveLength(1);
  });

  it("never lets one user talk to another user's bot or conversation", async () => {
    const { kilo, provider } = setup({ classify: [classify(null)], chat: ["hello"] });
    const { bot } = await bakeryBot(kilo);
    const stranger = await kilo
      .chat({ botId: bot.id, userId: "someone_else", message: "hi" })
      .catch((e: unknown) => e);
    expect(KiloError.is(stranger, "NOT_FOUND")).toBe(true);

    const mine = await kilo.chat({ botId: bot.id, userId: USER, message: "hi" });
    const otherBot = await kilo.bots.create({ userId: "someone_else", name: "Other" });
    const hijack = await kilo
      .chat({
        botId: otherBot.id,
        userId: "someone_else",
        conversationId: mine.conversationId,
        message: "hi",
      })
      .catch((e: unknown) => e);
    // The conversation id belongs to another bot: it is neither read nor created over.
    expect(KiloError.is(hijack, "CONFLICT")).toBe(true);
    expect((await kilo.conversations.list(otherBot.id)).items).toEqual([]);
    expect(provider.calls).toBe(2);
  });

  it("emits typed events in pipeline order", async () => {
    const { kilo } = setup({ classify: [classify(null)], chat: ["Hi Ana!"] });
    const { bot } = await bakeryBot(kilo);
    const seen: string[] = [];
    for (const name of [
      "message-received",
      "skill-matched",
      "llm-call",
      "memory-extracted",
      "reply-sent",
    ] as const) {
      kilo.events.on(name, () => seen.push(name));
    }
    await kilo.chat({ botId: bot.id, userId: USER, message: "My name is Ana" });
    expect(seen).toEqual([
      "message-received",
      "llm-call",
      "skill-matched",
      "llm-call",
      "memory-extracted",
      "reply-sent",
    ]);
  });

  it("reports a throwing listener as an error event without breaking the turn", async () => {
    const { kilo } = setup({ classify: [classify(null)], chat: ["hello"] });
    const { bot } = await bakeryBot(kilo);
    kilo.events.on("skill-matched", () => {
      throw new Error("listener bug");
    });
    const errors: KiloError[] = [];
    kilo.onError((event) => errors.push(event.error));
    const result = await kilo.chat({ botId: bot.id, userId: USER, message: "hi" });
    expect(result.reply).toBe("hello");
    expect(errors.map((e) => e.code)).toEqual(["HOST_CALLBACK_FAILED"]);
    expect(errors[0]?.message).toContain("'skill-matched'");
  });

  it("records every LLM call with tokens and cost, and summarises usage by model, bot and day", async () => {
    const { kilo } = setup({
      classify: [{ text: classify(null), usage: { inputTokens: 1_000_000, outputTokens: 0 } }],
      chat: [{ text: "hi", usage: { inputTokens: 0, outputTokens: 1_000_000, cacheReadTokens: 1_000_000 } }],
    });
    const { bot } = await bakeryBot(kilo);
    const result = await kilo.chat({ botId: bot.id, userId: USER, message: "hello there" });
    // claude-sonnet-4-5: $3 per million input, $15 per million output, $0.30 per million cache reads.
    expect(result.usage.calls).toBe(2);
    expect(result.usage.costUsd).toBeCloseTo(3 + 15 + 0.3, 6);
    const summary = await kilo.usage.summary({ userId: USER });
    expect(summary).toMatchObject({ calls: 2, completionTokens: 1_000_000, cacheReadTokens: 1_000_000 });
    expect(summary.costUsd).toBeCloseTo(18.3, 6);
    const breakdown = await kilo.usage.breakdown({ userId: USER });
    expect(breakdown.byModel).toMatchObject([{ model: "claude-sonnet-4-5", calls: 2 }]);
    expect(breakdown.byBot).toMatchObject([{ botId: bot.id, calls: 2 }]);
    expect(breakdown.byDay).toMatchObject([{ day: "2026-11-21", calls: 2 }]);
    expect((await kilo.usage.summary({ userId: "nobody" })).calls).toBe(0);
  });

  it("deletes a bot with all of its data", async () => {
    const { kilo } = setup({
      classify: [classify(null)],
      chat: [
        {
          toolCalls: [
            {
              name: "record_create",
              input: { skill: "Order Tracker", data: { customer: "A", item: "B", pickup_day: "C" } },
            },
          ],
        },
        "ok",
        "ok",
      ],
    });
    const { bot, skill } = await bakeryBot(kilo);
    await kilo.chat({ botId: bot.id, userId: USER, message: "New order: A, B, C" });
    await kilo.chat({ botId: bot.id, userId: USER, message: "My name is Ana" });
    await kilo.bots.delete(bot.id);
    expect(KiloError.is(await kilo.bots.get(bot.id).catch((e: unknown) => e), "NOT_FOUND")).toBe(true);
    expect(KiloError.is(await kilo.skills.get(bot.id, skill.id).catch((e: unknown) => e), "NOT_FOUND")).toBe(
      true,
    );
    expect((await kilo.memories.list(bot.id, USER)).items).toEqual([]);
    expect((await kilo.usage.summary({ userId: USER, botId: bot.id })).calls).toBe(0);
    expect(KiloError.is(await kilo.bots.delete(bot.id).catch((e: unknown) => e), "NOT_FOUND")).toBe(true);
  });

  it("uses a host's replacement component", async () => {
    const calls: string[] = [];
    const matcher: SkillMatcher = {
      async match(input) {
        calls.push(input.message);
        return {
          skill: null,
          confidence: 1,
          pass: "none",
          reason: "host matcher",
          actionable: false,
          taskType: "complex_reasoning",
          candidates: [],
          context: { historyDepth: 0, memoryQuery: null, memoryLimit: 0, skillData: null },
        };
      },
    };
    const provider = mockProvider({
      replies: [{ text: "deep answer", thinking: "Let me weigh the options first." }],
    });
    const kilo = createKilo({ storage: memoryStorage(), providers: [provider], matcher });
    const bot = await kilo.bots.create({ userId: USER, name: "Thinker" });
    const result = await kilo.chat({ botId: bot.id, userId: USER, message: "Plan my week" });
    expect(calls).toEqual(["Plan my week"]);
    expect(result.match).toMatchObject({ reason: "host matcher", taskType: "complex_reasoning" });
    expect(result.thinking).toBe("Let me weigh the options first.");
    expect(provider.requests[0]?.thinking).toEqual({ budgetTokens: 10_000 });
    expect(kilo.components.matcher).toBe(matcher);
  });

  it("writes structured log lines with correlation fields and without the message text", async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = jsonLogger({ level: "debug", write: (line) => lines.push(JSON.parse(line)) });
    const { kilo } = setup({ classify: [classify(null)], chat: ["hello"] }, { logger });
    const { bot } = await bakeryBot(kilo);
    const result = await kilo.chat({ botId: bot.id, userId: USER, message: "my secret plan is to bake" });
    const turn = lines.find((line) => line.msg === "turn completed");
    expect(turn).toMatchObject({
      level: "info",
      botId: bot.id,
      userId: USER,
      conversationId: result.conversationId,
    });
    expect(JSON.stringify(lines)).not.toContain("secret plan");
  });

  it("stops at the caller's AbortSignal and keeps the user's message", async () => {
    const { kilo } = setup({ classify: [classify(null)], chat: ["never sent"] });
    const { bot } = await bakeryBot(kilo);
    const controller = new AbortController();
    controller.abort();
    const failure = await kilo
      .chat({
        botId: bot.id,
        userId: USER,
        conversationId: "conv_abort",
        message: "hi",
        signal: controller.signal,
      })
      .catch((e: unknown) => e);
    expect(KiloError.is(failure, "ABORTED")).toBe(true);
    expect((await kilo.conversations.messages(bot.id, "conv_abort")).map((m) => m.content)).toEqual(["hi"]);
  });

  it("refuses use after close", async () => {
    const { kilo } = setup({});
    await kilo.close();
    const failure = await kilo.bots.create({ userId: USER, name: "Late" }).catch((e: unknown) => e);
    expect(KiloError.is(failure, "CLOSED")).toBe(true);
  });

  it("explains a missing provider at construction", () => {
    expect(() => createKilo({ storage: memoryStorage() })).toThrowError(/at least one LLM provider/);
  });
});
