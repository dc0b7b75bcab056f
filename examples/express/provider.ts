/**
 * Which model the example server talks to: Anthropic or OpenAI when a key is
 * set in the environment, else an offline mock that answers a fixed friendly
 * text, so the example runs without a network or an account.
 */
import { anthropicProvider } from "../../adapters/providers/anthropic/index.js";
import { openaiProvider } from "../../adapters/providers/openai/index.js";
import type { LlmProvider } from "../../src/index.js";
import { mockProvider } from "../../src/testing/index.js";

/** What the offline provider says to every chat message. */
export const OFFLINE_REPLY =
  "Hello from kilo! I'm running offline with a mock model: set ANTHROPIC_API_KEY or OPENAI_API_KEY for real answers.";

/**
 * An offline provider: the skill matcher's classifier hears "no skill", the
 * memory extractor hears "no facts", and chat gets {@link OFFLINE_REPLY}.
 */
export function offlineProvider(): LlmProvider {
  return mockProvider({
    name: "offline",
    respond: (request) => {
      switch (request.purpose) {
        case "classify":
          return JSON.stringify({ skill: null, confidence: 0.9, actionable: false, reason: "offline" });
        case "extract-memory":
          return JSON.stringify({ facts: [] });
        default:
          return OFFLINE_REPLY;
      }
    },
  });
}

/** Anthropic first, then OpenAI (and `OPENAI_BASE_URL`), else {@link offlineProvider}. */
export function providerFromEnv(env: NodeJS.ProcessEnv = process.env): LlmProvider {
  if (env.ANTHROPIC_API_KEY) return anthropicProvider();
  if (env.OPENAI_API_KEY) return openaiProvider();
  return offlineProvider();
}
