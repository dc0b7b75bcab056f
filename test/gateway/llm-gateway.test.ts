import { describe, expect, it } from "vitest";
import type { UsageRecord } from "../../src/domain/usage.js";
import { KiloError } from "../../src/errors.js";
import { textOf, thinkingSummary } from "../../src/gateway/content.js";
import {
  createLlmGateway,
  type LlmCallEvent,
  type LlmGatewayOptions,
} from "../../src/gateway/llm-gateway.js";
import type { GatewayRequest, GatewayResponse } from "../../src/ports/llm-gateway.js";
import type { LlmProvider, LlmRequest, LlmStreamEvent } from "../../src/ports/llm-provider.js";
import type { LogFields, Logger } from "../../src/ports/logger.js";
import type { UsageRepository } from "../../src/ports/storage.js";
import { silentLogger } from "../../src/runtime/logger.js";
import { mockProvider } from "../../src/testing/mock-provider.js";

interface LogLine {
  level: "debug" | "info" | "warn" | "error";
  fields: LogFields;
  message: string | undefined;
}

function captureLogger(lines: LogLine[] = []): Logger & { lines: LogLine[] } {
  const at =
    (level: LogLine["level"]) =>
    (fields: LogFields, message?: string): void => {
      lines.push({ level, fields, message });
    };
  return {
    lines,
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    child: () => captureLogger(lines),
  };
}

function fakeUsage(): UsageRepository & { records: UsageRecord[] } {
  const records: UsageRecord[] = [];
  return {
    records,
    async record(usage) {
      records.push(usage);
      return usage;
    },
    async list() {
      return { items: records, nextCursor: null };
    },
  };
}

function setup(overrides: Partial<LlmGatewayOptions> & Pick<LlmGatewayOptions, "providers">) {
  const usage = fakeUsage();
  const logger = captureLogger();
  const calls: LlmCallEvent[] = [];
  let id = 0;
  let tick = 0;
  const gateway = createLlmGateway({
    usage,
    clock: { now: () => new Date("2026-01-01T00:00:00Z") },
    ids: { next: (prefix) => `${prefix}_${++id}` },
    logger,
    onCall: (event) => calls.push(event),
    retryDelayMs: 0,
    // Each reading advances 10 ms, so latencies are deterministic.
    timer: () => (tick += 10),
    ...overrides,
  });
  return { gateway, usage, logger, calls };
}

function ask(taskType: GatewayRequest["taskType"], extra: Partial<GatewayRequest> = {}): GatewayRequest {
  return {
    taskType,
    purpose: "chat",
    system: [{ text: "You are a helpful baker.", cacheable: true }],
    messages: [{ role: "user", content: [{ type: "text", text: "secret prompt text: when do you open?" }] }],
    botId: "bot_1",
    userId: "user_1",
    conversationId: "conv_1",
    ...extra,
  };
}

const noThinking = { thinking: false, streaming: true, promptCaching: false };

async function collect(events: AsyncIterable<LlmStreamEvent>): Promise<LlmStreamEvent[]> {
  const out: LlmStreamEvent[] = [];
  for await (const event of events) out.push(event);
  return out;
}

/** The gateway's done event carries a GatewayResponse. */
function doneResponse(events: LlmStreamEvent[]): GatewayResponse {
  const done = events.at(-1);
  if (done?.type !== "done") throw new Error("expected a done event last");
  return done.response as GatewayResponse;
}

async function failure(promise: Promise<unknown>): Promise<KiloError> {
  try {
    await promise;
  } catch (error) {
    if (KiloError.is(error)) return error;
    throw error;
  }
  throw new Error("expected the call to fail");
}

describe("createLlmGateway: routing", () => {
  it("routes each task type to its configured provider and model", async () => {
    const fast = mockProvider({ name: "fast", model: "fast-1", replies: ["quick"] });
    const smart = mockProvider({ name: "smart", model: "smart-1", replies: ["deep"] });
    const { gateway } = setup({
      providers: [fast, smart],
      routes: {
        simple_qa: [{ provider: "fast", model: "fast-mini" }],
        complex_reasoning: [{ provider: "smart", model: "smart-max" }],
      },
    });

    const quick = await gateway.complete(ask("simple_qa"));
    const deep = await gateway.complete(ask("complex_reasoning"));

    expect(textOf(quick.content)).toBe("quick");
    expect(quick.provider).toBe("fast");
    expect(quick.taskType).toBe("simple_qa");
    expect(fast.requests[0]).toMatchObject({ model: "fast-mini", maxTokens: 2048, purpose: "chat" });
    expect(fast.requests[0]?.thinking).toBeUndefined();
    expect(deep.provider).toBe("smart");
    expect(smart.requests[0]).toMatchObject({
      model: "smart-max",
      maxTokens: 16384,
      thinking: { budgetTokens: 10000 },
    });
  });

  it("tries every provider in order with its default model when no route is given", async () => {
    const first = mockProvider({ name: "first", model: "first-1", replies: [{ error: new Error("down") }] });
    const second = mockProvider({ name: "second", model: "second-1", replies: ["ok"] });
    const { gateway } = setup({ providers: [first, second], routes: { simple_qa: [{ provider: "first" }] } });

    const response = await gateway.complete(ask("data_analysis"));

    expect(response.attempts.map((attempt) => `${attempt.provider}/${attempt.model}`)).toEqual([
      "first/first-1",
      "second/second-1",
    ]);
  });

  it("passes tools, the request's max tokens and the signal through", async () => {
    const provider = mockProvider({ replies: ["ok"] });
    const { gateway } = setup({ providers: [provider] });
    const tools = [{ name: "get_hours", description: "Opening hours", inputSchema: { type: "object" } }];

    await gateway.complete(ask("simple_qa", { tools, maxTokens: 100 }));

    expect(provider.requests[0]).toMatchObject({ tools, maxTokens: 100 });
  });

  it("rejects duplicate provider names and routes naming unknown providers", () => {
    const a = mockProvider({ name: "a" });
    expect(() => setup({ providers: [a, mockProvider({ name: "a" })] })).toThrowError(/named 'a'/);
    try {
      setup({ providers: [a], routes: { simple_qa: [{ provider: "anthropic" }] } });
      expect.unreachable();
    } catch (error) {
      expect(KiloError.is(error, "CONFIGURATION_INVALID")).toBe(true);
      expect((error as KiloError).message).toContain("unknown provider 'anthropic'");
      expect((error as KiloError).message).toContain("'a'");
    }
    expect(() => setup({ providers: [a], retries: -1 })).toThrowError(/retries/);
  });

  it("throws PROVIDER_NOT_CONFIGURED when a task type has no provider", async () => {
    const { gateway } = setup({ providers: [] });
    const error = await failure(gateway.complete(ask("simple_qa")));
    expect(error.code).toBe("PROVIDER_NOT_CONFIGURED");
    expect(error.message).toContain("simple_qa");

    const { gateway: partial } = setup({
      providers: [mockProvider({ replies: ["x"] })],
      routes: { doc_extraction: [] },
    });
    expect((await failure(partial.complete(ask("doc_extraction")))).code).toBe("PROVIDER_NOT_CONFIGURED");
    await expect(partial.complete(ask("simple_qa"))).resolves.toMatchObject({ provider: "mock" });
  });
});

describe("createLlmGateway: extended thinking", () => {
  it("applies the task type's budget on a provider that can think", async () => {
    const provider = mockProvider({ replies: [{ thinking: "Check the hours table.", text: "At 7." }] });
    const { gateway } = setup({ providers: [provider] });

    const response = await gateway.complete(ask("skill_execution"));

    expect(provider.requests[0]).toMatchObject({ maxTokens: 8192, thinking: { budgetTokens: 5000 } });
    expect(thinkingSummary(response.content)).toBe("Check the hours table.");
  });

  it("skips thinking silently on a provider without it", async () => {
    const provider = mockProvider({ name: "plain", capabilities: noThinking, replies: ["At 7."] });
    const free = { input: 0, output: 0, cacheWrite: 0, cacheRead: 0 };
    const { gateway, logger } = setup({ providers: [provider], prices: { "mock-1": free } });

    const response = await gateway.complete(ask("skill_execution"));

    expect(textOf(response.content)).toBe("At 7.");
    expect(provider.requests[0]?.thinking).toBeUndefined();
    expect(provider.requests[0]?.maxTokens).toBe(8192);
    expect(logger.lines.filter((line) => line.level !== "debug")).toEqual([]);
  });

  it("honours thinking: false and a max tokens override below the budget", async () => {
    const provider = mockProvider({ replies: ["a", "b", "c"] });
    const { gateway } = setup({
      providers: [provider],
      taskSettings: { simple_qa: { thinkingBudget: 1024, maxTokens: 4096 } },
    });

    await gateway.complete(ask("doc_extraction", { thinking: false }));
    await gateway.complete(ask("doc_extraction", { maxTokens: 4000 }));
    await gateway.complete(ask("simple_qa"));

    expect(provider.requests[0]?.thinking).toBeUndefined();
    expect(provider.requests[0]?.maxTokens).toBe(12288);
    expect(provider.requests[1]?.thinking).toBeUndefined();
    expect(provider.requests[1]?.maxTokens).toBe(4000);
    expect(provider.requests[2]?.thinking).toEqual({ budgetTokens: 1024 });
  });
});

describe("createLlmGateway: fallback", () => {
  it("falls back to the next provider, lists both attempts and records the success", async () => {
    const anthropic = mockProvider({
      name: "anthropic",
      model: "claude-sonnet-4-5",
      replies: [{ error: { code: "PROVIDER_REJECTED", message: "invalid x-api-key" } }],
    });
    const openai = mockProvider({ name: "openai", model: "gpt-4o", replies: ["We open at 7."] });
    const { gateway, usage, logger, calls } = setup({ providers: [anthropic, openai] });

    const response = await gateway.complete(ask("skill_execution"));

    expect(textOf(response.content)).toBe("We open at 7.");
    expect(response.provider).toBe("openai");
    expect(response.attempts).toEqual([
      {
        provider: "anthropic",
        model: "claude-sonnet-4-5",
        ok: false,
        errorCode: "PROVIDER_REJECTED",
        latencyMs: 10,
      },
      { provider: "openai", model: "gpt-4o", ok: true, errorCode: null, latencyMs: 10 },
    ]);
    expect(response.latencyMs).toBe(50);
    // The budget applies afresh to each provider that can think.
    expect(openai.requests[0]?.thinking).toEqual({ budgetTokens: 5000 });

    expect(usage.records).toHaveLength(1);
    expect(usage.records[0]).toMatchObject({
      id: "usage_1",
      botId: "bot_1",
      userId: "user_1",
      conversationId: "conv_1",
      provider: "openai",
      model: "gpt-4o",
      taskType: "skill_execution",
      purpose: "chat",
      success: true,
      errorCode: null,
      latencyMs: 10,
      createdAt: new Date("2026-01-01T00:00:00Z"),
    });
    expect(usage.records[0]?.promptTokens).toBeGreaterThan(0);
    expect(calls).toEqual([{ usage: usage.records[0], attempt: 2, fallback: true }]);

    const warnings = logger.lines.filter((line) => line.level === "warn");
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.fields).toMatchObject({
      provider: "anthropic",
      model: "claude-sonnet-4-5",
      code: "PROVIDER_REJECTED",
    });
    expect(JSON.stringify(logger.lines)).not.toContain("secret prompt text");
  });

  it("records a failed attempt that carried usage", async () => {
    const first = mockProvider({
      name: "first",
      model: "gpt-4o",
      replies: [
        {
          error: { code: "PROVIDER_FAILED", message: "stream cut" },
          usage: { inputTokens: 1_000_000, outputTokens: 20 },
        },
      ],
    });
    const second = mockProvider({ name: "second", replies: ["ok"] });
    const { gateway, usage, calls } = setup({ providers: [first, second] });

    await gateway.complete(ask("simple_qa"));

    expect(usage.records.map((record) => [record.provider, record.success, record.errorCode])).toEqual([
      ["first", false, "PROVIDER_FAILED"],
      ["second", true, null],
    ]);
    expect(usage.records[0]).toMatchObject({ promptTokens: 1_000_000, completionTokens: 20 });
    expect(usage.records[0]?.costUsd).toBeCloseTo(2.5 + 20 * 10e-6, 10);
    expect(calls.map((call) => [call.attempt, call.fallback])).toEqual([
      [1, false],
      [2, true],
    ]);
  });

  it("retries a retryable failure on the same provider before falling back", async () => {
    const flaky = mockProvider({
      name: "flaky",
      replies: [{ error: { code: "PROVIDER_FAILED", message: "overloaded", retryable: true } }, "second try"],
    });
    const backup = mockProvider({ name: "backup", replies: ["backup"] });
    const { gateway } = setup({ providers: [flaky, backup] });

    const response = await gateway.complete(ask("simple_qa"));

    expect(textOf(response.content)).toBe("second try");
    expect(response.attempts.map((attempt) => [attempt.provider, attempt.ok])).toEqual([
      ["flaky", false],
      ["flaky", true],
    ]);
    expect(backup.calls).toBe(0);
  });

  it("does not retry when retries is 0", async () => {
    const flaky = mockProvider({
      name: "flaky",
      replies: [{ error: { code: "PROVIDER_FAILED", message: "overloaded", retryable: true } }],
    });
    const backup = mockProvider({ name: "backup", replies: ["backup"] });
    const { gateway } = setup({ providers: [flaky, backup], retries: 0 });

    const response = await gateway.complete(ask("simple_qa"));

    expect(response.provider).toBe("backup");
    expect(flaky.calls).toBe(1);
  });

  it("throws PROVIDER_FAILED naming every provider and its code when all fail", async () => {
    const rejected = new KiloError("PROVIDER_REJECTED", "bad request");
    const a = mockProvider({ name: "anthropic", model: "claude-haiku-4-5", replies: [{ error: rejected }] });
    const b = mockProvider({
      name: "openai",
      model: "gpt-4o-mini",
      replies: [
        { error: { code: "PROVIDER_FAILED", message: "503", retryable: true } },
        { error: { code: "PROVIDER_FAILED", message: "503", retryable: true } },
      ],
    });
    const { gateway, usage } = setup({ providers: [a, b] });

    const error = await failure(gateway.complete(ask("simple_qa")));

    expect(error.code).toBe("PROVIDER_FAILED");
    expect(error.message).toContain("anthropic (claude-haiku-4-5): PROVIDER_REJECTED");
    expect(error.message).toContain("openai (gpt-4o-mini): PROVIDER_FAILED x2");
    expect(error.retryable).toBe(true);
    expect(error.provider).toBe("openai");
    expect(KiloError.is(error.cause, "PROVIDER_FAILED")).toBe(true);
    expect((error.details as { attempts: unknown[] }).attempts).toHaveLength(3);
    expect(usage.records).toEqual([]);
  });

  it("wraps a provider's plain error as PROVIDER_FAILED", async () => {
    const broken: LlmProvider = {
      name: "broken",
      defaultModel: "b-1",
      capabilities: noThinking,
      complete: async () => {
        throw new TypeError("fetch failed");
      },
    };
    const { gateway } = setup({ providers: [broken] });

    const error = await failure(gateway.complete(ask("simple_qa")));

    expect(error.code).toBe("PROVIDER_FAILED");
    expect(error.retryable).toBe(false);
    expect(error.message).toContain("broken (b-1): PROVIDER_FAILED");
    expect((error.cause as KiloError).message).toContain("fetch failed");
  });

  it("throws ABORTED without falling back when the signal aborts", async () => {
    const slow = mockProvider({ name: "slow", latencyMs: 5_000, replies: ["late"] });
    const backup = mockProvider({ name: "backup", replies: ["backup"] });
    const { gateway, usage } = setup({ providers: [slow, backup] });
    const controller = new AbortController();

    const pending = gateway.complete(ask("simple_qa", { signal: controller.signal }));
    setTimeout(() => controller.abort(), 10);
    const error = await failure(pending);

    expect(error.code).toBe("ABORTED");
    expect(slow.calls).toBe(1);
    expect(backup.calls).toBe(0);
    expect(usage.records).toEqual([]);

    const already = await failure(gateway.complete(ask("simple_qa", { signal: AbortSignal.abort() })));
    expect(already.code).toBe("ABORTED");
    expect(slow.calls).toBe(1);
  });
});

describe("createLlmGateway: cost and usage", () => {
  it("prices calls from the price table", async () => {
    const provider = mockProvider({
      name: "anthropic",
      model: "claude-sonnet-4-5",
      replies: [
        {
          text: "a",
          usage: { inputTokens: 1_000_000, outputTokens: 0 },
          model: "claude-sonnet-4-5-20250929",
        },
        { text: "b", usage: { inputTokens: 0, outputTokens: 0, cacheReadTokens: 1_000_000 } },
        { text: "c", usage: { inputTokens: 0, outputTokens: 0, cacheWriteTokens: 1_000_000 } },
      ],
    });
    const { gateway, usage } = setup({ providers: [provider] });

    const responses: GatewayResponse[] = [];
    for (let index = 0; index < 3; index++) responses.push(await gateway.complete(ask("simple_qa")));

    expect(responses.map((response) => response.costUsd)).toEqual([3, 0.3, 3.75]);
    expect(usage.records.map((record) => record.costUsd)).toEqual([3, 0.3, 3.75]);
    expect(usage.records[0]?.model).toBe("claude-sonnet-4-5-20250929");
    expect(usage.records[1]).toMatchObject({ cacheReadTokens: 1_000_000, promptTokens: 0 });
  });

  it("uses host prices and warns once per unpriced model", async () => {
    const local = mockProvider({ name: "local", model: "llama-local", replies: ["a", "b"] });
    const priced = mockProvider({ name: "priced", model: "house-model", replies: ["c"] });
    const { gateway, logger } = setup({
      providers: [local, priced],
      routes: { simple_qa: [{ provider: "local" }], data_analysis: [{ provider: "priced" }] },
      prices: { "house-model": { input: 1, output: 1, cacheWrite: 1, cacheRead: 1 } },
    });

    const first = await gateway.complete(ask("simple_qa"));
    await gateway.complete(ask("simple_qa"));
    const third = await gateway.complete(ask("data_analysis", { messages: [{ role: "user", content: [] }] }));

    expect(first.costUsd).toBe(0);
    const warnings = logger.lines.filter((line) => line.level === "warn");
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.fields).toMatchObject({ model: "llama-local" });
    expect(third.costUsd).toBeGreaterThan(0);
  });

  it("accepts a function as the usage sink and survives one that throws", async () => {
    const seen: UsageRecord[] = [];
    const provider = mockProvider({ replies: ["a", "b"] });
    const { gateway } = setup({
      providers: [provider],
      usage: async (record) => {
        seen.push(record);
      },
    });
    await gateway.complete(ask("simple_qa"));
    expect(seen).toHaveLength(1);

    const { gateway: failing, logger } = setup({
      providers: [mockProvider({ replies: ["a"] })],
      usage: async () => {
        throw new KiloError("STORAGE_FAILED", "disk full");
      },
    });
    await expect(failing.complete(ask("simple_qa"))).resolves.toMatchObject({ provider: "mock" });
    expect(logger.lines.find((line) => line.level === "error")?.fields).toMatchObject({
      code: "STORAGE_FAILED",
    });
  });
});

describe("createLlmGateway: stream", () => {
  it("streams from a provider that streams and records usage from done", async () => {
    const provider = mockProvider({ model: "gpt-4o", replies: ["We open at seven every day."] });
    const { gateway, usage, calls } = setup({ providers: [provider] });

    const events = await collect(gateway.stream(ask("simple_qa")));

    const deltas = events.filter((event) => event.type === "text-delta");
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.map((event) => event.text).join("")).toBe("We open at seven every day.");
    const response = doneResponse(events);
    expect(response.provider).toBe("mock");
    expect(response.costUsd).toBeGreaterThan(0);
    expect(response.attempts).toHaveLength(1);
    expect(usage.records).toHaveLength(1);
    expect(usage.records[0]?.costUsd).toBe(response.costUsd);
    expect(calls).toHaveLength(1);
  });

  it("streams a provider without streaming as one delta, tool calls and done", async () => {
    const provider = mockProvider({
      capabilities: { streaming: false, thinking: false },
      replies: [{ text: "Let me check.", toolCalls: [{ name: "get_hours", input: { day: "mon" } }] }],
    });
    expect(provider.stream).toBeUndefined();
    const { gateway, usage } = setup({ providers: [provider] });

    const events = await collect(gateway.stream(ask("skill_execution")));

    expect(events.map((event) => event.type)).toEqual(["text-delta", "tool-call", "done"]);
    expect(events[0]).toEqual({ type: "text-delta", text: "Let me check." });
    expect(events[1]).toEqual({
      type: "tool-call",
      call: { type: "tool_call", id: "call_1", name: "get_hours", input: { day: "mon" } },
    });
    expect(usage.records).toHaveLength(1);
  });

  it("falls back when a stream fails before any output", async () => {
    const first = mockProvider({
      name: "first",
      replies: [{ error: { code: "PROVIDER_FAILED", message: "overloaded" } }],
    });
    const second = mockProvider({ name: "second", replies: ["from second"] });
    const { gateway } = setup({ providers: [first, second] });

    const events = await collect(gateway.stream(ask("simple_qa")));

    const response = doneResponse(events);
    expect(response.provider).toBe("second");
    expect(response.attempts.map((attempt) => attempt.ok)).toEqual([false, true]);
    expect(textOf(response.content)).toBe("from second");
  });

  it("never falls back after text was yielded", async () => {
    const cutOff: LlmProvider = {
      name: "cut",
      defaultModel: "cut-1",
      capabilities: noThinking,
      complete: async () => {
        throw new Error("unused");
      },
      async *stream() {
        yield { type: "text-delta", text: "We open" };
        throw new KiloError("PROVIDER_FAILED", "connection reset", { retryable: true });
      },
    };
    const backup = mockProvider({ name: "backup", replies: ["backup"] });
    const { gateway } = setup({ providers: [cutOff, backup] });

    const seen: LlmStreamEvent[] = [];
    const error = await failure(
      (async () => {
        for await (const event of gateway.stream(ask("simple_qa"))) seen.push(event);
      })(),
    );

    expect(seen).toEqual([{ type: "text-delta", text: "We open" }]);
    expect(error.code).toBe("PROVIDER_FAILED");
    expect(error.message).toContain("mid-stream");
    expect(backup.calls).toBe(0);
  });

  it("treats a stream that ends without done as a failure", async () => {
    const silent: LlmProvider = {
      name: "silent",
      defaultModel: "s-1",
      capabilities: noThinking,
      complete: async () => {
        throw new Error("unused");
      },
      async *stream() {},
    };
    const backup = mockProvider({ name: "backup", replies: ["backup"] });
    const { gateway } = setup({ providers: [silent, backup], retries: 0 });

    const events = await collect(gateway.stream(ask("simple_qa")));

    expect(doneResponse(events).provider).toBe("backup");
  });

  it("throws ABORTED from a stream whose signal aborted", async () => {
    const provider = mockProvider({ latencyMs: 5_000, replies: ["late"] });
    const { gateway } = setup({ providers: [provider] });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 10);

    const error = await failure(collect(gateway.stream(ask("simple_qa", { signal: controller.signal }))));

    expect(error.code).toBe("ABORTED");
  });
});

describe("content helpers", () => {
  it("concatenates text and summarizes thinking", () => {
    const long = "step ".repeat(100);
    const content = [
      { type: "thinking" as const, text: "opaque", redacted: true },
      { type: "thinking" as const, text: long },
      { type: "text" as const, text: "Hello, " },
      { type: "tool_call" as const, id: "call_1", name: "x", input: {} },
      { type: "text" as const, text: "world" },
    ];
    expect(textOf(content)).toBe("Hello, world");
    const summary = thinkingSummary(content);
    expect(summary?.length).toBeLessThanOrEqual(200);
    expect(summary?.endsWith("…")).toBe(true);
    expect(summary).not.toContain("opaque");
    expect(thinkingSummary([{ type: "thinking", text: "x", redacted: true }])).toBeNull();
    expect(thinkingSummary([{ type: "text", text: "hi" }])).toBeNull();
  });
});

describe("reasoning providers and provider options", () => {
  it("sends the thinking budget to a provider that turns it into reasoning effort, and forwards providerOptions", async () => {
    const seen: LlmRequest[] = [];
    const reasoner: LlmProvider = {
      name: "reasoner",
      defaultModel: "o4-mini",
      capabilities: { thinking: false, reasoning: true, streaming: false, promptCaching: true },
      async complete(request) {
        seen.push(request);
        return {
          content: [{ type: "text", text: "ok" }],
          stopReason: "end_turn",
          usage: {
            inputTokens: 1,
            outputTokens: 1,
            cacheReadTokens: 0,
            cacheWriteTokens: 0,
            reasoningTokens: 0,
          },
          model: request.model,
        };
      },
    };
    const gateway = createLlmGateway({
      providers: [reasoner],
      usage: async () => undefined,
      clock: { now: () => new Date(0) },
      ids: { next: (prefix) => `${prefix}_1` },
      logger: silentLogger(),
    });
    await gateway.complete({
      taskType: "complex_reasoning",
      purpose: "chat",
      system: [],
      messages: [{ role: "user", content: [{ type: "text", text: "plan" }] }],
      providerOptions: { reasoner: { seed: 7 } },
    });
    expect(seen[0]?.thinking).toEqual({ budgetTokens: 10_000 });
    expect(seen[0]?.providerOptions).toEqual({ reasoner: { seed: 7 } });
  });
});
