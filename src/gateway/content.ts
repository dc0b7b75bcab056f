import type { ContentBlock, LlmResponse, LlmStreamEvent } from "../ports/llm-provider.js";

/**
 * The text of `content`: its text blocks concatenated, in order. Thinking,
 * tool calls and tool results are left out.
 *
 * @example
 * ```ts
 * textOf(response.content); // "The bakery opens at 7."
 * ```
 */
export function textOf(content: readonly ContentBlock[]): string {
  let text = "";
  for (const block of content) {
    if (block.type === "text") text += block.text;
  }
  return text;
}

/**
 * A short, single-line summary of the model's thinking: the start of its
 * (non-redacted) thinking text, whitespace collapsed, cut at `maxLength`
 * characters with an ellipsis. `null` when the content holds no readable thinking.
 */
export function thinkingSummary(content: readonly ContentBlock[], maxLength = 200): string | null {
  const parts: string[] = [];
  for (const block of content) {
    if (block.type === "thinking" && block.redacted !== true) parts.push(block.text);
  }
  const text = parts.join(" ").replace(/\s+/g, " ").trim();
  if (text === "") return null;
  if (text.length <= maxLength) return text;
  return `${text.slice(0, Math.max(0, maxLength - 1)).trimEnd()}…`;
}

/**
 * The stream events equivalent to a whole response: readable thinking, the
 * text (split into `textChunks` roughly equal deltas), each tool call, then
 * `done`. Used to stream from providers that can only `complete`.
 */
export function responseEvents(response: LlmResponse, textChunks = 1): LlmStreamEvent[] {
  const events: LlmStreamEvent[] = [];
  for (const block of response.content) {
    if (block.type === "thinking" && block.redacted !== true && block.text !== "") {
      events.push({ type: "thinking-delta", text: block.text });
    }
  }
  const text = textOf(response.content);
  if (text !== "") {
    const size = Math.max(1, Math.ceil(text.length / Math.max(1, textChunks)));
    for (let start = 0; start < text.length; start += size) {
      events.push({ type: "text-delta", text: text.slice(start, start + size) });
    }
  }
  for (const block of response.content) {
    if (block.type === "tool_call") events.push({ type: "tool-call", call: block });
  }
  events.push({ type: "done", response });
  return events;
}
