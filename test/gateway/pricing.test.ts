import { describe, expect, it } from "vitest";
import { KiloError } from "../../src/errors.js";
import { DEFAULT_PRICES, findPrice, mergePrices, priceOf } from "../../src/gateway/pricing.js";
import { DEFAULT_TASK_SETTINGS, resolveTaskSettings } from "../../src/gateway/task-routing.js";
import type { LlmUsage } from "../../src/ports/llm-provider.js";

function usage(fields: Partial<LlmUsage>): LlmUsage {
  return {
    inputTokens: 0,
    outputTokens: 0,
    cacheReadTokens: 0,
    cacheWriteTokens: 0,
    reasoningTokens: 0,
    ...fields,
  };
}

const MILLION = 1_000_000;

describe("priceOf", () => {
  it("prices one million input tokens at the model's input price", () => {
    expect(priceOf(usage({ inputTokens: MILLION }), "claude-sonnet-4-5")).toBe(3);
    expect(priceOf(usage({ inputTokens: MILLION }), "gpt-4o")).toBe(2.5);
    expect(priceOf(usage({ inputTokens: MILLION }), "claude-haiku-4-5")).toBe(1);
  });

  it("prices output, cache writes and cache reads", () => {
    expect(priceOf(usage({ outputTokens: MILLION }), "claude-sonnet-4-5")).toBe(15);
    expect(priceOf(usage({ cacheWriteTokens: MILLION }), "claude-sonnet-4-5")).toBe(3.75);
    expect(priceOf(usage({ cacheReadTokens: MILLION }), "claude-sonnet-4-5")).toBe(0.3);
    expect(priceOf(usage({ cacheReadTokens: MILLION }), "gpt-4o-mini")).toBe(0.075);
  });

  it("adds the parts up and does not price reasoning tokens twice", () => {
    const cost = priceOf(
      usage({ inputTokens: 1000, outputTokens: 2000, reasoningTokens: 1500, cacheReadTokens: 10_000 }),
      "claude-opus-4-5",
    );
    // 1000*5 + 2000*25 + 10000*0.5, per million
    expect(cost).toBeCloseTo(0.06, 10);
  });

  it("matches dated snapshots and -latest aliases to their model", () => {
    expect(findPrice("claude-sonnet-4-5-20250929")).toBe(DEFAULT_PRICES["claude-sonnet-4-5"]);
    expect(findPrice("claude-opus-4-20250514")).toBe(DEFAULT_PRICES["claude-opus-4"]);
    expect(findPrice("claude-3-5-haiku-latest")).toBe(DEFAULT_PRICES["claude-3-5-haiku"]);
    expect(findPrice("gpt-4o-mini-2024-07-18")).toBe(DEFAULT_PRICES["gpt-4o-mini"]);
    expect(findPrice("gpt-4o-2024-08-06")).toBe(DEFAULT_PRICES["gpt-4o"]);
    expect(findPrice("claude-sonnet-4-5@20250929")).toBe(DEFAULT_PRICES["claude-sonnet-4-5"]);
  });

  it("does not price an unlisted variant as its sibling", () => {
    expect(findPrice("gpt-4o-audio-preview")).toBeUndefined();
    expect(findPrice("claude-opus-4-9")).toBeUndefined();
    expect(priceOf(usage({ inputTokens: MILLION }), "my-local-model")).toBe(0);
  });

  it("merges host prices over the defaults", () => {
    const prices = mergePrices({ "my-local-model": { input: 1, output: 2, cacheWrite: 0, cacheRead: 0 } });
    expect(priceOf(usage({ outputTokens: MILLION }), "my-local-model", prices)).toBe(2);
    expect(priceOf(usage({ inputTokens: MILLION }), "gpt-4o", prices)).toBe(2.5);
    expect(mergePrices(undefined)).toBe(DEFAULT_PRICES);
  });
});

describe("task settings", () => {
  it("follow the seed's table", () => {
    expect(DEFAULT_TASK_SETTINGS).toEqual({
      simple_qa: { thinkingBudget: null, maxTokens: 2048 },
      skill_execution: { thinkingBudget: 5000, maxTokens: 8192 },
      skill_generation: { thinkingBudget: 5000, maxTokens: 8192 },
      complex_reasoning: { thinkingBudget: 10000, maxTokens: 16384 },
      data_analysis: { thinkingBudget: 5000, maxTokens: 8192 },
      doc_extraction: { thinkingBudget: 8000, maxTokens: 12288 },
    });
  });

  it("merge overrides and reject bad ones", () => {
    const settings = resolveTaskSettings({
      simple_qa: { maxTokens: 512 },
      data_analysis: { thinkingBudget: null },
    });
    expect(settings.simple_qa).toEqual({ thinkingBudget: null, maxTokens: 512 });
    expect(settings.data_analysis).toEqual({ thinkingBudget: null, maxTokens: 8192 });
    expect(settings.skill_execution).toEqual({ thinkingBudget: 5000, maxTokens: 8192 });
    expect(() => resolveTaskSettings({ simple_qa: { thinkingBudget: 4096 } })).toThrowError(
      /below maxTokens/,
    );
    expect(() => resolveTaskSettings({ chit_chat: {} } as never)).toThrowError(
      /unknown task type 'chit_chat'/,
    );
    try {
      resolveTaskSettings({ simple_qa: { maxTokens: 0 } });
      expect.unreachable();
    } catch (error) {
      expect(KiloError.is(error, "CONFIGURATION_INVALID")).toBe(true);
    }
  });
});
