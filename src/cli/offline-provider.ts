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
 * The offline model's draft for `kilo evolve`: a skill named after the
 * pattern's keywords (the first line of the request, `Keywords: a, b, c`),
 * so evolution can be tried without a key; a live model writes real ones.
 */
export function offlineDraft(request: string): string {
  const keywords = (/^Keywords: (.*)$/m.exec(request)?.[1] ?? "")
    .split(",")
    .map((word) => word.trim().toLowerCase())
    .filter((word) => /^[a-z0-9]+$/.test(word));
  if (keywords.length === 0) return "{}";
  const topic = keywords.slice(0, 3).join(" ");
  return JSON.stringify({
    name: keywords.slice(0, 3).join("-"),
    description: `Handles requests about ${topic}. Drafted offline from repeated requests; review before use.`,
    triggers: keywords.slice(0, 5),
    examples: [],
    body: `# ${topic}\n\nThe user often asks about ${topic}. Answer from what they told you before, and ask for what is missing.\n`,
    category: "drafted",
  });
}

/**
 * The model the CLI talks to when no provider key is set: deterministic,
 * offline, and streaming like a live one. The skill matcher's classifier
 * hears "no skill", the memory extractor "no facts", the skill proposer gets
 * no draft, evolution gets {@link offlineDraft}, and chat gets {@link offlineReply}.
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
        case "evolve-skill":
          return offlineDraft(userText(request));
        default:
          return offlineReply(userText(request));
      }
    },
  });
}
