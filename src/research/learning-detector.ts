/** What {@link detectLearningIntent} found in a message. */
export interface LearningIntent {
  /** What to learn, as the user named it ("Stripe", "the Notion API", "our Slack webhook"). */
  topic: string;
  /** 0.6–0.95: how sure the matching rule is that the user wants the bot to learn an integration. */
  confidence: number;
  /**
   * `true` when the topic names something researchable (a product, an API, a
   * URL); `false` for a vague one ("tell time"), which gets a clarifying
   * question instead of research.
   */
  specific: boolean;
  /** Why: the rule that matched. */
  rule: string;
}

interface Rule {
  name: string;
  pattern: RegExp;
  confidence: number;
  /** The verb alone says the topic is a service or an API ("how to use X"). */
  namesService: boolean;
}

const POLITE = String.raw`^(?:(?:hey|hi|ok(?:ay)?|so)[,!]?\s+)?(?:(?:please|pls)\s+)?(?:(?:can|could|would|will)\s+you\s+(?:please\s+)?)?(?:(?:go\s+(?:and\s+)?|try\s+to\s+)?)`;

// Ordered: the first matching rule decides. Groups: the topic.
const RULES: readonly Rule[] = [
  {
    name: "learn-how-to-use",
    pattern: new RegExp(
      `${POLITE}learn\\s+(?:how\\s+to\\s+|to\\s+)(?:use|work\\s+with|call|integrate\\s+with|connect\\s+to)\\s+(.+)$`,
      "i",
    ),
    confidence: 0.95,
    namesService: true,
  },
  {
    name: "learn-the-api",
    pattern: new RegExp(
      `${POLITE}learn\\s+(?:about\\s+)?(.+?\\b(?:api|apis|sdk|webhooks?|integration|endpoints?))\\b.*$`,
      "i",
    ),
    confidence: 0.9,
    namesService: true,
  },
  {
    name: "figure-out",
    pattern: new RegExp(
      `${POLITE}(?:figure\\s+out|work\\s+out|find\\s+out)\\s+how\\s+to\\s+(?:use|call|post\\s+to|send\\s+to|talk\\s+to|connect\\s+to|integrate\\s+with|work\\s+with)\\s+(.+)$`,
      "i",
    ),
    confidence: 0.8,
    namesService: true,
  },
  {
    name: "set-up-integration",
    pattern: new RegExp(
      `${POLITE}(?:set\\s+up|add)\\s+(?:an?\\s+)?(?:integration|connection)\\s+(?:with|to|for)\\s+(.+)$`,
      "i",
    ),
    confidence: 0.8,
    namesService: true,
  },
  {
    name: "learn-about",
    pattern: new RegExp(`${POLITE}learn\\s+(?:about\\s+|up\\s+on\\s+)(.+)$`, "i"),
    confidence: 0.7,
    namesService: false,
  },
  {
    name: "learn-how-to",
    pattern: new RegExp(`${POLITE}learn\\s+how\\s+to\\s+(.+)$`, "i"),
    confidence: 0.6,
    namesService: false,
  },
];

const API_WORDS = /\b(?:api|apis|sdk|webhooks?|endpoints?|rest|graphql|oauth|integration)\b/i;
const URLISH = /\b(?:https?:\/\/\S+|[a-z0-9-]+\.(?:com|io|dev|org|net|app|ai|co)\b)/i;
const OWNED = /\b(?:our|my|the\s+team'?s)\s+\S+/i;
// A capitalised word (a product name) that is not just the first word of a sentence.
const PROPER_NOUN = /(?:^|\s)(?:[A-Z][a-z0-9]+[A-Z]\w*|[A-Z]{2,}\w*|[A-Z][a-z0-9]+)\b/;
// Everyday skills: "learn how to tell time", "learn to cook" are not integrations.
const EVERYDAY_VERBS =
  /^(?:tell|cook|bake|swim|speak|read|write|draw|paint|sing|dance|drive|knit|play|code|count|spell|meditate|relax|sleep|type|think)\b/i;

function cleanTopic(raw: string): string {
  return raw
    .replace(/[?.!]+$/g, "")
    .replace(/\s+(?:for\s+me|please|pls|for\s+us|now|today)$/i, "")
    .replace(/^(?:the\s+)?(?:docs|documentation)\s+(?:of|for)\s+/i, "")
    .replace(/^the\s+/i, "")
    .trim()
    .slice(0, 200);
}

/**
 * Finds a request to learn an integration ("Learn how to use Stripe", "learn
 * the Notion API", "figure out how to post to our Slack webhook") with
 * deterministic rules; no model call. Returns `null` when the message is not
 * a learning request. A vague topic ("learn how to tell time") comes back
 * with `specific: false`, for a clarifying question instead of research.
 *
 * @example
 * ```ts
 * detectLearningIntent("Learn how to use Stripe");
 * // { topic: "Stripe", confidence: 0.95, specific: true, rule: "learn-how-to-use" }
 * ```
 */
export function detectLearningIntent(message: string): LearningIntent | null {
  const text = message.trim().replace(/\s+/g, " ");
  if (text.length === 0 || text.length > 300) return null;
  for (const rule of RULES) {
    const match = rule.pattern.exec(text);
    const raw = match?.[1];
    if (!raw) continue;
    const topic = cleanTopic(raw);
    if (topic.length < 2) continue;
    const everyday = EVERYDAY_VERBS.test(topic);
    const signals =
      API_WORDS.test(topic) || URLISH.test(topic) || OWNED.test(topic) || PROPER_NOUN.test(topic);
    const specific = !everyday && (rule.namesService || signals);
    // A service-naming phrase or a product name makes the rule surer; a vague topic never rises.
    const confidence =
      specific && !rule.namesService ? Math.round((rule.confidence + 0.1) * 100) / 100 : rule.confidence;
    return { topic, confidence, specific, rule: rule.name };
  }
  return null;
}

/** The question the bot asks instead of researching a vague topic. */
export function clarifyingQuestion(intent: LearningIntent): string {
  return (
    `Happy to learn something new! Do you mean an online service or API for "${intent.topic}"? ` +
    'Tell me its name (for example "Learn how to use Stripe" or "learn our Slack webhook") and I\'ll read its documentation and propose how to connect it.'
  );
}
