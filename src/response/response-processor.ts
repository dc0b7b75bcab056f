import type { ProcessedResponse, ProcessInput, ResponseProcessor } from "../ports/response-processor.js";

/** Options of {@link createResponseProcessor}. */
export interface ResponseProcessorOptions {
  /** Channels that cannot render Markdown; replies to them are stripped to plain text. Default `["sms", "cli-plain"]`. */
  plainTextChannels?: string[];
  /** Hard length cap per channel, in characters. Default: none (channels split long replies themselves). */
  channelMaxLength?: Record<string, number>;
  /** Extra patterns whose matches are redacted from replies. */
  redactPatterns?: RegExp[];
  /** Text put in place of a redacted secret. Default `[redacted]`. */
  redactionText?: string;
}

// Shapes of credentials that must never reach a user, whatever the model was tricked into saying.
const SECRET_PATTERNS: RegExp[] = [
  /\bsk-ant-[A-Za-z0-9_-]{10,}/g,
  /\bsk-(?:proj-)?[A-Za-z0-9_-]{20,}/g,
  /\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}/g,
  /\bAKIA[0-9A-Z]{16}\b/g,
  /\bgh[pousr]_[A-Za-z0-9]{30,}/g,
  /\bxox[abposr]-[A-Za-z0-9-]{10,}/g,
  /\bAIza[0-9A-Za-z_-]{35}\b/g,
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g,
  /\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/g,
];

/** Markdown to plain text, keeping the words: headings, emphasis, links, code fences, list markers. */
export function stripMarkdown(text: string): string {
  return text
    .replace(/```[a-zA-Z0-9_-]*\n?([\s\S]*?)```/g, "$1")
    .replace(/`([^`]+)`/g, "$1")
    .replace(/!\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/\[([^\]]+)\]\(([^)]+)\)/g, "$1 ($2)")
    .replace(/^#{1,6}\s+/gm, "")
    .replace(/(\*\*|__)(.+?)\1/g, "$2")
    .replace(/(^|[^*\w])\*(?!\s)([^*\n]+?)\*(?!\w)/g, "$1$2")
    .replace(/(^|[^_\w])_(?!\s)([^_\n]+?)_(?!\w)/g, "$1$2")
    .replace(/^\s*[-*+]\s+/gm, "- ")
    .replace(/^>\s?/gm, "");
}

function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, max - 1);
  const space = cut.lastIndexOf(" ");
  return `${space > max * 0.6 ? cut.slice(0, space) : cut}…`;
}

/**
 * The default response processor: redacts anything shaped like a
 * credential, strips Markdown when the soul or the channel wants plain text,
 * and enforces the soul's and the channel's length caps.
 */
export function createResponseProcessor(options: ResponseProcessorOptions = {}): ResponseProcessor {
  const plain = new Set(options.plainTextChannels ?? ["sms", "cli-plain"]);
  const patterns = [...SECRET_PATTERNS, ...(options.redactPatterns ?? [])];
  const redaction = options.redactionText ?? "[redacted]";
  const globals = patterns.map((pattern) =>
    pattern.global ? pattern : new RegExp(pattern.source, `${pattern.flags}g`),
  );
  const redact = (text: string): { text: string; redacted: boolean } => {
    let out = text;
    for (const pattern of globals) out = out.replace(pattern, redaction);
    return { text: out, redacted: out !== text };
  };
  return {
    filterDelta: (text) => redact(text).text,
    process(input: ProcessInput): ProcessedResponse {
      const actions: string[] = [];
      const redacted = redact(input.text);
      let text = redacted.text;
      if (redacted.redacted) actions.push("secret-redacted");
      if (input.bot.soul?.communicationStyle.formatting === "plain" || plain.has(input.channel)) {
        const next = stripMarkdown(text);
        if (next !== text) actions.push("markdown-stripped");
        text = next;
      }
      const caps = [
        input.bot.soul?.communicationStyle.maxReplyLength,
        options.channelMaxLength?.[input.channel],
      ].filter((cap): cap is number => cap !== undefined);
      if (caps.length > 0) {
        const max = Math.min(...caps);
        if (text.length > max) {
          text = truncate(text, max);
          actions.push("truncated");
        }
      }
      text = text.trim();
      if (text.length === 0) {
        text = "Sorry, I don't have an answer for that.";
        actions.push("empty-replaced");
      }
      return { text, actions };
    },
  };
}
