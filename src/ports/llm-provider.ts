/**
 * A JSON Schema object describing a tool's input (what `z.toJSONSchema` returns).
 */
export type JsonSchema = Record<string, unknown>;

/** A tool the model may call. */
export interface LlmToolDefinition {
  /** `^[a-zA-Z0-9_-]{1,64}$`, unique within a request. */
  name: string;
  description: string;
  inputSchema: JsonSchema;
}

/** Plain text. */
export interface TextBlock {
  type: "text";
  text: string;
}

/** The model's reasoning. `signature` must be sent back unchanged on later turns (Anthropic). */
export interface ThinkingBlock {
  type: "thinking";
  text: string;
  signature?: string | undefined;
  /** True for redacted thinking: `text` is opaque data, not reasoning. */
  redacted?: boolean | undefined;
}

/** The model asks to call a tool. */
export interface ToolCallBlock {
  type: "tool_call";
  id: string;
  name: string;
  input: Record<string, unknown>;
}

/** The result of a tool call, sent back in a `user` message. */
export interface ToolResultBlock {
  type: "tool_result";
  toolCallId: string;
  /** The result as text (JSON for structured results). */
  content: string;
  isError?: boolean | undefined;
}

/** Any block of message content. */
export type ContentBlock = TextBlock | ThinkingBlock | ToolCallBlock | ToolResultBlock;

/** One message sent to the model. Tool results travel in `user` messages. */
export interface LlmMessage {
  role: "user" | "assistant";
  content: ContentBlock[];
}

/**
 * One part of the system prompt. The composer puts stable parts first;
 * `cacheable` marks the end of a prefix that does not change between turns,
 * where a provider with prompt caching sets a cache breakpoint.
 */
export interface SystemBlock {
  text: string;
  cacheable?: boolean | undefined;
}

/** Why the model stopped. */
export type StopReason = "end_turn" | "tool_use" | "max_tokens" | "stop_sequence" | "refusal" | "other";

/** Token counts of one call. */
export interface LlmUsage {
  /** Prompt tokens not read from or written to the cache. */
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  /** Reasoning tokens, when the provider reports them separately (part of outputTokens). */
  reasoningTokens: number;
}

/** What the gateway sends to a provider. */
export interface LlmRequest {
  model: string;
  system: SystemBlock[];
  messages: LlmMessage[];
  tools?: LlmToolDefinition[] | undefined;
  maxTokens: number;
  /** Extended thinking budget. A provider without thinking ignores it. */
  thinking?: { budgetTokens: number } | undefined;
  temperature?: number | undefined;
  /** What the call is for (`chat`, `classify`, `propose-skill`, ...): for logs, usage and test fakes. */
  purpose?: string | undefined;
  /** Provider-specific settings, keyed by provider name. */
  providerOptions?: Record<string, Record<string, unknown>> | undefined;
  signal?: AbortSignal | undefined;
}

/** What a provider returns. */
export interface LlmResponse {
  content: ContentBlock[];
  stopReason: StopReason;
  usage: LlmUsage;
  /** The model that actually answered. */
  model: string;
  /** Options the provider ignored, and why. */
  warnings?: string[] | undefined;
}

/** An event of a streamed response. */
export type LlmStreamEvent =
  | { type: "text-delta"; text: string }
  | { type: "thinking-delta"; text: string }
  | { type: "tool-call"; call: ToolCallBlock }
  | { type: "done"; response: LlmResponse };

/** What a provider can do; the gateway reads these. */
export interface LlmProviderCapabilities {
  /** The provider returns thinking blocks (extended thinking). */
  thinking: boolean;
  /**
   * The provider turns a thinking budget into a reasoning setting (such as
   * OpenAI's `reasoning_effort`) without returning thinking blocks. The gateway
   * sends the budget to providers with `thinking` or `reasoning`.
   */
  reasoning?: boolean | undefined;
  streaming: boolean;
  promptCaching: boolean;
}

/**
 * The LlmProvider port: one model vendor (Anthropic, OpenAI, a local server,
 * the mock provider in `kilo/testing`).
 *
 * `complete` sends one request and returns the whole response. Providers do
 * not retry across vendors or record usage: the gateway does both. A provider
 * throws `KiloError` with code `PROVIDER_FAILED` (with `retryable` set) when
 * the call failed and `PROVIDER_REJECTED` when the vendor refused it; the
 * gateway wraps anything else as `PROVIDER_FAILED`.
 *
 * @example
 * ```ts
 * const echo: LlmProvider = {
 *   name: "echo",
 *   defaultModel: "echo-1",
 *   capabilities: { thinking: false, streaming: false, promptCaching: false },
 *   async complete(request) {
 *     const last = request.messages.at(-1)?.content.find((b) => b.type === "text");
 *     return {
 *       content: [{ type: "text", text: last?.type === "text" ? last.text : "" }],
 *       stopReason: "end_turn",
 *       usage: { inputTokens: 1, outputTokens: 1, cacheReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0 },
 *       model: request.model,
 *     };
 *   },
 * };
 * ```
 */
export interface LlmProvider {
  /** Unique among the configured providers; routes name providers by it. */
  readonly name: string;
  /** The model used when a route names no model. */
  readonly defaultModel: string;
  readonly capabilities: LlmProviderCapabilities;
  /**
   * Sends one request to `request.model` and resolves with the whole response and its token usage.
   * Throws `PROVIDER_FAILED` (with `retryable`) or `PROVIDER_REJECTED`; see the interface notes.
   */
  complete(request: LlmRequest): Promise<LlmResponse>;
  /** Streams the response. Optional: the gateway falls back to `complete`. */
  stream?(request: LlmRequest): AsyncIterable<LlmStreamEvent>;
}
