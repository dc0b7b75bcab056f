import type { LlmUsage } from "../ports/llm-provider.js";

/**
 * The price of one model, in US dollars per million tokens.
 *
 * `input` prices prompt tokens that were neither read from nor written to the
 * prompt cache; `cacheWrite` and `cacheRead` price the cached ones. Reasoning
 * tokens are part of the output tokens and priced as output.
 */
export interface ModelPrice {
  input: number;
  output: number;
  cacheWrite: number;
  cacheRead: number;
}

/** Prices keyed by model id (undated, e.g. `claude-sonnet-4-5`, `gpt-4.1-mini`). */
export type PriceTable = Readonly<Record<string, ModelPrice>>;

/** Anthropic: cache writes (5-minute TTL) cost 1.25x input, cache reads 0.1x input. */
function anthropic(input: number, output: number): ModelPrice {
  return { input, output, cacheWrite: input * 1.25, cacheRead: input / 10 };
}

/** OpenAI caches automatically: writes cost plain input, reads cost the "cached input" price. */
function openai(input: number, output: number, cachedInput: number): ModelPrice {
  return { input, output, cacheWrite: input, cacheRead: cachedInput };
}

/**
 * Published list prices (standard tier, prompts under 200K tokens), USD per
 * million tokens. Dated ids (`claude-sonnet-4-5-20250929`, `gpt-4o-2024-08-06`)
 * and `-latest` aliases resolve to their undated entry; see {@link findPrice}.
 *
 * Prices change: pass your own table as the gateway's `prices` option (it is
 * merged over this one) rather than relying on these for billing.
 */
export const DEFAULT_PRICES: PriceTable = Object.freeze({
  // Anthropic
  "claude-opus-4-6": anthropic(5, 25),
  "claude-opus-4-5": anthropic(5, 25),
  "claude-opus-4-1": anthropic(15, 75),
  "claude-opus-4-0": anthropic(15, 75),
  "claude-opus-4": anthropic(15, 75),
  "claude-sonnet-4-6": anthropic(3, 15),
  "claude-sonnet-4-5": anthropic(3, 15),
  "claude-sonnet-4-0": anthropic(3, 15),
  "claude-sonnet-4": anthropic(3, 15),
  "claude-haiku-4-5": anthropic(1, 5),
  "claude-3-7-sonnet": anthropic(3, 15),
  "claude-3-5-sonnet": anthropic(3, 15),
  "claude-3-5-haiku": anthropic(0.8, 4),
  "claude-3-opus": anthropic(15, 75),
  "claude-3-haiku": { input: 0.25, output: 1.25, cacheWrite: 0.3, cacheRead: 0.03 },
  // OpenAI
  "gpt-5.2": openai(1.75, 14, 0.175),
  "gpt-5.1": openai(1.25, 10, 0.125),
  "gpt-5": openai(1.25, 10, 0.125),
  "gpt-5-chat-latest": openai(1.25, 10, 0.125),
  "gpt-5-mini": openai(0.25, 2, 0.025),
  "gpt-5-nano": openai(0.05, 0.4, 0.005),
  "gpt-5-pro": openai(15, 120, 15),
  "gpt-4.1": openai(2, 8, 0.5),
  "gpt-4.1-mini": openai(0.4, 1.6, 0.1),
  "gpt-4.1-nano": openai(0.1, 0.4, 0.025),
  "gpt-4o": openai(2.5, 10, 1.25),
  "gpt-4o-mini": openai(0.15, 0.6, 0.075),
  o3: openai(2, 8, 0.5),
  "o3-mini": openai(1.1, 4.4, 0.55),
  "o4-mini": openai(1.1, 4.4, 0.275),
  o1: openai(15, 60, 7.5),
});

// A dated snapshot or alias of a model: `-20250929`, `-2024-08-06`, `-latest`, or Vertex's `@20250929`.
const VERSION_SUFFIX = /^[-@](\d{8}|\d{4}-\d{2}-\d{2}|latest)$/;

/**
 * The price of `model` in `prices`: an exact match, else the entry the model
 * id is a dated snapshot or `-latest` alias of. Other suffixes do not match
 * (`gpt-5-pro` is not priced as `gpt-5`), so an unlisted variant is reported
 * as unknown instead of silently priced as its sibling.
 *
 * @returns `undefined` for an unknown model.
 */
export function findPrice(model: string, prices: PriceTable = DEFAULT_PRICES): ModelPrice | undefined {
  const exact = prices[model];
  if (exact !== undefined) return exact;
  for (const [key, price] of Object.entries(prices)) {
    if (model.startsWith(key) && VERSION_SUFFIX.test(model.slice(key.length))) return price;
  }
  return undefined;
}

/**
 * The cost of one call in US dollars (0 for a model not in `prices`).
 *
 * @example
 * ```ts
 * const usage = { inputTokens: 1_000_000, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0 };
 * priceOf(usage, "claude-sonnet-4-5-20250929"); // 3
 * ```
 */
export function priceOf(usage: LlmUsage, model: string, prices: PriceTable = DEFAULT_PRICES): number {
  const price = findPrice(model, prices);
  if (price === undefined) return 0;
  const micros =
    usage.inputTokens * price.input +
    usage.outputTokens * price.output +
    usage.cacheWriteTokens * price.cacheWrite +
    usage.cacheReadTokens * price.cacheRead;
  // Rounded to 1e-10 USD so sums of float prices compare cleanly in reports and tests.
  return Math.round((micros / 1_000_000) * 1e10) / 1e10;
}

/** `overrides` merged over {@link DEFAULT_PRICES}. */
export function mergePrices(overrides: PriceTable | undefined): PriceTable {
  return overrides === undefined ? DEFAULT_PRICES : Object.freeze({ ...DEFAULT_PRICES, ...overrides });
}
