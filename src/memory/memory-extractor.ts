import { z } from "zod";
import { textOf } from "../gateway/content.js";
import type { LlmGateway } from "../ports/llm-gateway.js";
import type { ExtractedFact, ExtractInput, MemoryExtractor } from "../ports/memory.js";

const clean = (value: string) =>
  value
    .trim()
    .replace(/^["'“”‘’]+|["'“”‘’.!,;]+$/g, "")
    .trim();

interface Rule {
  pattern: RegExp;
  fact: (match: RegExpMatchArray) => ExtractedFact | null;
}

const NOUN = "[a-z][a-z' -]{0,40}?";
const VALUE = "(.{1,120}?)";

// Sentences about the user's own world; each names what the fact is about so a later statement replaces it.
const RULES: Rule[] = [
  {
    pattern: new RegExp(`^(?:and |also |actually,? |btw,? |by the way,? |oh,? )*my name is ${VALUE}$`, "i"),
    fact: (m) => ({ key: "name", content: `The user's name is ${clean(m[1]!)}.` }),
  },
  {
    pattern: new RegExp(`^(?:and |also |actually,? )*(?:please )?call me ${VALUE}$`, "i"),
    fact: (m) => ({ key: "name", content: `The user's name is ${clean(m[1]!)}.` }),
  },
  {
    pattern: new RegExp(
      `^(?:and |also |actually,? |btw,? |by the way,? |oh,? )*(?:my|our) (${NOUN}) (?:is|are) (called|named) ${VALUE}$`,
      "i",
    ),
    fact: (m) => {
      const subject = clean(m[1]!).toLowerCase();
      return {
        key: `${subject} name`,
        content: `The user's ${subject} is ${m[2]!.toLowerCase()} ${clean(m[3]!)}.`,
      };
    },
  },
  {
    pattern: new RegExp(
      `^(?:and |also |actually,? |btw,? |by the way,? |oh,? )*(?:my|our) (${NOUN}) (?:is|are) ${VALUE}$`,
      "i",
    ),
    fact: (m) => {
      const subject = clean(m[1]!).toLowerCase();
      const value = clean(m[2]!);
      // "my order is late" is news, not a standing fact; only keep short noun-like values.
      if (value.split(/\s+/).length > 8 || /^(not|late|done|ready|broken|here|there)\b/i.test(value))
        return null;
      return { key: subject, content: `The user's ${subject} is ${value}.` };
    },
  },
  {
    pattern: new RegExp(`^(?:and |also |actually,? )*i (?:live|am based|'m based) in ${VALUE}$`, "i"),
    fact: (m) => ({ key: "location", content: `The user lives in ${clean(m[1]!)}.` }),
  },
  {
    pattern: new RegExp(`^(?:and |also |actually,? )*i work (?:as an?|at|for) ${VALUE}$`, "i"),
    fact: (m) => ({
      key: "work",
      content: `The user works ${m[0]!.match(/as an?|at|for/i)![0]} ${clean(m[1]!)}.`,
    }),
  },
  {
    pattern: new RegExp(`^(?:please )?remember (?:that )?${VALUE}$`, "i"),
    fact: (m) => {
      const note = clean(m[1]!);
      const nested = extractFromSentence(note);
      if (nested) return nested;
      return {
        key: `note: ${note.toLowerCase().split(/\s+/).slice(0, 6).join(" ")}`,
        content: `The user asked to remember: ${note}.`,
      };
    },
  },
];

function extractFromSentence(sentence: string): ExtractedFact | null {
  const text = sentence.trim();
  if (text.length === 0 || text.endsWith("?")) return null;
  for (const rule of RULES) {
    const match = text.match(rule.pattern);
    if (match) {
      const fact = rule.fact(match);
      if (fact) return fact;
    }
  }
  return null;
}

/** Splits a message into sentences without breaking on abbreviations' inner dots too often. */
function sentences(text: string): string[] {
  return text
    .split(/(?<=[.!?])\s+|\n+/)
    .map((part) => part.trim())
    .filter(Boolean);
}

/**
 * The default memory extractor: deterministic rules over the user's own
 * statements ("my bakery is called Sweet Crumb", "call me Ana", "remember
 * that ..."). It costs no LLM call per turn; use {@link llmMemoryExtractor}
 * for open-ended extraction.
 */
export function ruleMemoryExtractor(): MemoryExtractor {
  return {
    async extract(input: ExtractInput): Promise<ExtractedFact[]> {
      const facts = new Map<string, ExtractedFact>();
      for (const sentence of sentences(input.userMessage)) {
        const fact = extractFromSentence(sentence);
        if (fact) facts.set(fact.key, fact);
      }
      return [...facts.values()];
    },
  };
}

const LlmFactsSchema = z.object({
  facts: z.array(z.object({ key: z.string().min(1).max(200), content: z.string().min(1).max(2000) })).max(20),
});

/** Options of {@link llmMemoryExtractor}. */
export interface LlmMemoryExtractorOptions {
  gateway: LlmGateway;
  /** Run the rule extractor too and merge (rules win on the same key). Default true. */
  withRules?: boolean;
}

/**
 * A memory extractor that asks the LLM (task type `simple_qa`, purpose
 * `extract-memory`) for durable facts about the user. One extra call per turn.
 */
export function llmMemoryExtractor(options: LlmMemoryExtractorOptions): MemoryExtractor {
  const rules = ruleMemoryExtractor();
  return {
    async extract(input: ExtractInput): Promise<ExtractedFact[]> {
      const response = await options.gateway.complete({
        taskType: "simple_qa",
        purpose: "extract-memory",
        thinking: false,
        maxTokens: 500,
        botId: input.bot.id,
        userId: input.userId,
        conversationId: input.conversationId,
        signal: input.signal,
        system: [
          {
            text:
              "Extract durable facts the user stated about themselves or their world (names, preferences, businesses, " +
              'people). Reply with JSON only: {"facts":[{"key":"short subject, e.g. bakery name","content":"one sentence"}]}. ' +
              'Reply {"facts":[]} when there are none. Never include secrets or credentials.',
          },
        ],
        messages: [
          {
            role: "user",
            content: [{ type: "text", text: `User: ${input.userMessage}\nAssistant: ${input.reply}` }],
          },
        ],
      });
      const merged = new Map<string, ExtractedFact>();
      for (const fact of parseFacts(textOf(response.content))) merged.set(fact.key.toLowerCase(), fact);
      if (options.withRules ?? true) {
        for (const fact of await rules.extract(input)) merged.set(fact.key.toLowerCase(), fact);
      }
      return [...merged.values()];
    },
  };
}

function parseFacts(text: string): ExtractedFact[] {
  const start = text.indexOf("{");
  const end = text.lastIndexOf("}");
  if (start < 0 || end <= start) return [];
  try {
    const parsed = LlmFactsSchema.safeParse(JSON.parse(text.slice(start, end + 1)));
    return parsed.success ? parsed.data.facts : [];
  } catch {
    return [];
  }
}
