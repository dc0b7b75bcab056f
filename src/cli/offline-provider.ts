import type { LlmProvider, LlmRequest } from "../ports/llm-provider.js";
// The mock's own module, not kilo/testing's index: that one also loads the vitest suites.
import { mockProvider } from "../testing/mock-provider.js";

/** The name the offline provider reports (in usage records and `/cost`). */
export const OFFLINE_PROVIDER_NAME = "offline";

/** The model the offline provider reports; it costs nothing. */
export const OFFLINE_MODEL = "offline-1";

/** The user's words in a chat request: the last text of the last user message that is not kilo's context block. */
function userText(request: LlmRequest): string {
  const message = request.messages.findLast((candidate) => candidate.role === "user");
  const texts = (message?.content ?? []).flatMap((block) =>
    block.type === "text" && !block.text.startsWith("<context>") ? [block.text] : [],
  );
  return (texts.at(-1) ?? "").trim();
}

/** What the offline model says to `text`: `pong` to `ping`, else an echo that explains itself. */
export function offlineReply(text: string): string {
  if (/^ping[.!?]*$/i.test(text)) return "pong";
  const quoted = text.length > 200 ? `${text.slice(0, 200)}...` : text;
  return `(offline model) You said: "${quoted}". Set ANTHROPIC_API_KEY or OPENAI_API_KEY for real answers.`;
}

/**
 * The model the CLI talks to when no provider key is set: deterministic,
 * offline, and streaming like a live one. The skill matcher's classifier
 * hears "no skill", the memory extractor "no facts", the skill proposer gets
 * no draft, and chat gets {@link offlineReply}.
 */
export function offlineProvider(): LlmProvider {
  return mockProvider({
    name: OFFLINE_PROVIDER_NAME,
    model: OFFLINE_MODEL,
    respond: (request) => {
      switch (request.purpose) {
        case "classify":
          return JSON.stringify({ skill: null, confidence: 0.9, actionable: false, reason: "offline model" });
        case "extract-memory":
          return JSON.stringify({ facts: [] });
        case "propose-skill":
          return "{}";
        default:
          return offlineReply(userText(request));
      }
    },
  });
}
