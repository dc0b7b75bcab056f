import { KiloError } from "../../../src/errors.js";
import { malformedResponse, providerError } from "../../../src/gateway/provider-errors.js";
import type {
  ContentBlock,
  LlmMessage,
  LlmProvider,
  LlmRequest,
  LlmResponse,
  LlmStreamEvent,
  LlmToolDefinition,
  LlmUsage,
  StopReason,
  SystemBlock,
} from "../../../src/ports/llm-provider.js";

const PACKAGE = "@anthropic-ai/sdk";
const DEFAULT_MODEL = "claude-sonnet-4-6";
const DEFAULT_TIMEOUT_MS = 60_000;
// The API rejects extended thinking with a smaller budget.
const MIN_THINKING_BUDGET = 1024;

/** A prompt-cache breakpoint. */
export interface AnthropicCacheControl {
  type: "ephemeral";
}

/** A `text` block of a request. */
export interface AnthropicTextParam {
  type: "text";
  text: string;
  cache_control?: AnthropicCacheControl;
}

/** A `thinking` block sent back unchanged, signature included. */
export interface AnthropicThinkingParam {
  type: "thinking";
  thinking: string;
  signature: string;
}

/** A `redacted_thinking` block sent back unchanged. */
export interface AnthropicRedactedThinkingParam {
  type: "redacted_thinking";
  data: string;
}

/** A `tool_use` block of an earlier assistant turn. */
export interface AnthropicToolUseParam {
  type: "tool_use";
  id: string;
  name: string;
  input: Record<string, unknown>;
  cache_control?: AnthropicCacheControl;
}

/** A `tool_result` block of a user turn. */
export interface AnthropicToolResultParam {
  type: "tool_result";
  tool_use_id: string;
  content: string;
  is_error?: boolean;
  cache_control?: AnthropicCacheControl;
}

/** The content blocks kilo sends. */
export type AnthropicContentParam =
  | AnthropicTextParam
  | AnthropicThinkingParam
  | AnthropicRedactedThinkingParam
  | AnthropicToolUseParam
  | AnthropicToolResultParam;

/** One message of a request. */
export interface AnthropicMessageParam {
  role: "user" | "assistant";
  content: AnthropicContentParam[];
}

/** A tool definition. */
export interface AnthropicToolParam {
  name: string;
  description: string;
  input_schema: { type: "object"; [key: string]: unknown };
  cache_control?: AnthropicCacheControl;
}

/** The body of `POST /v1/messages` as kilo builds it (before `providerOptions` are merged in). */
export interface AnthropicMessageCreateParams {
  model: string;
  max_tokens: number;
  messages: AnthropicMessageParam[];
  system?: AnthropicTextParam[];
  tools?: AnthropicToolParam[];
  thinking?: { type: "enabled"; budget_tokens: number };
  temperature?: number;
  stream?: boolean;
}

/** Per-request options kilo passes to `messages.create`. */
export interface AnthropicRequestOptions {
  signal?: AbortSignal;
  /** Milliseconds. */
  timeout?: number;
}

/**
 * The subset of an `@anthropic-ai/sdk` client (`new Anthropic(...)`) the
 * provider uses. The response is read defensively, so it is typed `unknown`:
 * a `Message` for a plain call, an async iterable of stream events when the
 * body has `stream: true`.
 */
export interface AnthropicClient {
  messages: {
    /**
     * `POST /v1/messages`: resolves with the raw Message, which the provider validates itself;
     * rejects with the SDK's `APIError` (its `status` decides retryable or rejected).
     */
    create(body: AnthropicMessageCreateParams, options?: AnthropicRequestOptions): PromiseLike<unknown>;
  };
}

/** Options of {@link anthropicProvider}. */
export interface AnthropicProviderOptions {
  /**
   * The API key. Default: the `ANTHROPIC_API_KEY` environment variable, read
   * at each call (not when the provider is created). Not needed with `client`.
   */
  apiKey?: string | undefined;
  /** The API's base URL. Default: `ANTHROPIC_BASE_URL`, else the SDK's default (`https://api.anthropic.com`). */
  baseURL?: string | undefined;
  /**
   * The host's own `@anthropic-ai/sdk` client. kilo then uses it as it is
   * (its key, base URL and retry settings) and never loads the SDK itself;
   * create it with `maxRetries: 0`, since the gateway retries and falls back.
   */
  client?: AnthropicClient | undefined;
  /** The model used when a route names none. Default `"claude-sonnet-4-6"`. */
  defaultModel?: string | undefined;
  /**
   * How long a call may take, in milliseconds. For `complete` it bounds the
   * whole call; for `stream` the wait for the answer to start and every gap
   * between two stream events. Default 60 000.
   */
  timeoutMs?: number | undefined;
  /** The provider's name, for routes, usage records and `providerOptions`. Default `"anthropic"`. */
  name?: string | undefined;
  /**
   * Sets prompt-cache breakpoints (`cache_control`) on the last two system
   * blocks the composer marked `cacheable`, on the last tool definition and on
   * the conversation so far. Default `true`.
   */
  cacheControl?: boolean | undefined;
}

type AnthropicConstructor = new (options: {
  apiKey: string;
  baseURL?: string;
  maxRetries: number;
  timeout: number;
}) => AnthropicClient;

/** A content block of a response, as read from the wire. */
type WireBlock =
  | { type: "text"; text: string }
  | { type: "thinking"; thinking: string; signature: string }
  | { type: "redacted_thinking"; data: string }
  | { type: "tool_use"; id: string; name: string; input: Record<string, unknown> }
  | { type: "other"; original: string };

interface WireMessage {
  model: string;
  content: WireBlock[];
  stopReason: string | null;
  usage: LlmUsage;
}

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === "function"
  );
}

function count(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? value : 0;
}

function emptyUsage(): LlmUsage {
  return { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0 };
}

function hasTokens(usage: LlmUsage): boolean {
  return usage.inputTokens + usage.outputTokens + usage.cacheReadTokens + usage.cacheWriteTokens > 0;
}

// message_delta repeats counts cumulatively and sends null for the ones it does not report.
function mergeUsage(usage: LlmUsage, wire: unknown): void {
  if (!isObject(wire)) return;
  if (typeof wire.input_tokens === "number") usage.inputTokens = count(wire.input_tokens);
  if (typeof wire.output_tokens === "number") usage.outputTokens = count(wire.output_tokens);
  if (typeof wire.cache_read_input_tokens === "number") {
    usage.cacheReadTokens = count(wire.cache_read_input_tokens);
  }
  if (typeof wire.cache_creation_input_tokens === "number") {
    usage.cacheWriteTokens = count(wire.cache_creation_input_tokens);
  }
  const details = wire.output_tokens_details;
  if (isObject(details) && typeof details.thinking_tokens === "number") {
    usage.reasoningTokens = count(details.thinking_tokens);
  }
}

const STOP_REASONS: Record<string, StopReason> = {
  end_turn: "end_turn",
  tool_use: "tool_use",
  max_tokens: "max_tokens",
  stop_sequence: "stop_sequence",
  refusal: "refusal",
};

// Stream `error` events carry only the error type; this is the status the same error has on a plain response.
const STATUS_OF_TYPE: Record<string, number> = {
  invalid_request_error: 400,
  authentication_error: 401,
  billing_error: 402,
  permission_error: 403,
  not_found_error: 404,
  request_too_large: 413,
  rate_limit_error: 429,
  api_error: 500,
  timeout_error: 504,
  overloaded_error: 529,
};

// ---------------------------------------------------------------- request

interface BuiltRequest {
  body: AnthropicMessageCreateParams;
  warnings: string[];
}

/**
 * The API allows four breakpoints: one goes on the last tool and one on the
 * conversation so far, which leaves two for the system prompt. The composer's
 * cacheable blocks change at different times (soul and catalog vs standing
 * memories), so each gets its own: a new memory then re-pays only its block.
 */
const SYSTEM_BREAKPOINTS = 2;

function toSystem(system: readonly SystemBlock[], cacheControl: boolean): AnthropicTextParam[] {
  // The API rejects empty text blocks.
  const blocks = system.filter((block) => block.text !== "");
  const marked = new Set(
    cacheControl
      ? blocks.flatMap((block, index) => (block.cacheable === true ? [index] : [])).slice(-SYSTEM_BREAKPOINTS)
      : [],
  );
  return blocks.map((block, index) =>
    marked.has(index)
      ? { type: "text", text: block.text, cache_control: { type: "ephemeral" } }
      : { type: "text", text: block.text },
  );
}

function toContent(block: ContentBlock, dropped: { unsigned: number }): AnthropicContentParam | null {
  switch (block.type) {
    case "text":
      return block.text === "" ? null : { type: "text", text: block.text };
    case "thinking":
      if (block.redacted === true) return { type: "redacted_thinking", data: block.text };
      // The API verifies the signature; thinking from another provider has none and would be refused.
      if (block.signature === undefined || block.signature === "") {
        dropped.unsigned += 1;
        return null;
      }
      return { type: "thinking", thinking: block.text, signature: block.signature };
    case "tool_call":
      return { type: "tool_use", id: block.id, name: block.name, input: block.input };
    case "tool_result":
      return {
        type: "tool_result",
        tool_use_id: block.toolCallId,
        content: block.content,
        ...(block.isError === true ? { is_error: true } : {}),
      };
  }
}

/**
 * A breakpoint at the end of the conversation so far (the message before the
 * newest one): the next call, which repeats these messages, reads them from
 * the cache instead of paying for them again.
 */
function markHistoryBreakpoint(messages: AnthropicMessageParam[]): void {
  const previous = messages.at(-2);
  const block = previous?.content.at(-1);
  if (block && (block.type === "text" || block.type === "tool_use" || block.type === "tool_result")) {
    block.cache_control = { type: "ephemeral" };
  }
}

function toMessages(messages: readonly LlmMessage[], warnings: string[]): AnthropicMessageParam[] {
  const dropped = { unsigned: 0 };
  const result: AnthropicMessageParam[] = [];
  for (const message of messages) {
    let content = message.content
      .map((block) => toContent(block, dropped))
      .filter((block): block is AnthropicContentParam => block !== null);
    if (message.role === "user") {
      // The API requires a user turn's tool results to come before anything else in it.
      content = [
        ...content.filter((block) => block.type === "tool_result"),
        ...content.filter((block) => block.type !== "tool_result"),
      ];
    }
    if (content.length > 0) result.push({ role: message.role, content });
  }
  if (dropped.unsigned > 0) {
    warnings.push(`${dropped.unsigned} thinking block(s) without a signature were not sent back`);
  }
  return result;
}

function toTools(tools: readonly LlmToolDefinition[], cacheControl: boolean): AnthropicToolParam[] {
  return tools.map((tool, index) => {
    const definition: AnthropicToolParam = {
      name: tool.name,
      description: tool.description,
      input_schema: { ...tool.inputSchema, type: "object" },
    };
    if (cacheControl && index === tools.length - 1) definition.cache_control = { type: "ephemeral" };
    return definition;
  });
}

function providerSettings(request: LlmRequest, name: string): JsonObject {
  const all = request.providerOptions ?? {};
  return { ...(all.anthropic ?? {}), ...(name === "anthropic" ? {} : (all[name] ?? {})) };
}

function buildRequest(request: LlmRequest, name: string, cacheControl: boolean): BuiltRequest {
  const warnings: string[] = [];
  const body: AnthropicMessageCreateParams = {
    model: request.model,
    max_tokens: request.maxTokens,
    messages: toMessages(request.messages, warnings),
  };
  if (cacheControl) markHistoryBreakpoint(body.messages);
  const system = toSystem(request.system, cacheControl);
  if (system.length > 0) body.system = system;
  if (request.tools !== undefined && request.tools.length > 0) {
    body.tools = toTools(request.tools, cacheControl);
  }
  if (request.thinking !== undefined) {
    const budget = Math.max(MIN_THINKING_BUDGET, Math.floor(request.thinking.budgetTokens));
    if (budget < request.maxTokens) {
      body.thinking = { type: "enabled", budget_tokens: budget };
    } else {
      warnings.push(
        `thinking was not enabled: its budget (at least ${MIN_THINKING_BUDGET} tokens) must be below maxTokens`,
      );
    }
  }
  if (request.temperature !== undefined) {
    if (body.thinking === undefined) body.temperature = request.temperature;
    else warnings.push("temperature is ignored while extended thinking is on (the API does not allow both)");
  }
  const { stream: _stream, messages: _messages, ...settings } = providerSettings(request, name);
  return { body: { ...body, ...(settings as Partial<AnthropicMessageCreateParams>) }, warnings };
}

// ---------------------------------------------------------------- response

function readBlock(provider: string, wire: unknown): WireBlock {
  if (!isObject(wire) || typeof wire.type !== "string") {
    throw malformedResponse(provider, "a content block has no type");
  }
  switch (wire.type) {
    case "text":
      if (typeof wire.text !== "string") throw malformedResponse(provider, "a text block has no text");
      return { type: "text", text: wire.text };
    case "thinking":
      if (typeof wire.thinking !== "string") {
        throw malformedResponse(provider, "a thinking block has no thinking text");
      }
      return {
        type: "thinking",
        thinking: wire.thinking,
        signature: typeof wire.signature === "string" ? wire.signature : "",
      };
    case "redacted_thinking":
      if (typeof wire.data !== "string") {
        throw malformedResponse(provider, "a redacted_thinking block has no data");
      }
      return { type: "redacted_thinking", data: wire.data };
    case "tool_use":
      if (typeof wire.id !== "string" || typeof wire.name !== "string" || !isObject(wire.input)) {
        throw malformedResponse(provider, "a tool_use block lacks its id, name or input object");
      }
      return { type: "tool_use", id: wire.id, name: wire.name, input: wire.input };
    default:
      return { type: "other", original: wire.type };
  }
}

function readMessage(provider: string, wire: unknown, requestedModel: string): WireMessage {
  if (!isObject(wire) || !Array.isArray(wire.content)) {
    throw malformedResponse(provider, "the response is not a message with a content array");
  }
  const usage = emptyUsage();
  mergeUsage(usage, wire.usage);
  return {
    model: typeof wire.model === "string" && wire.model !== "" ? wire.model : requestedModel,
    content: wire.content.map((block) => readBlock(provider, block)),
    stopReason: typeof wire.stop_reason === "string" ? wire.stop_reason : null,
    usage,
  };
}

function toResponse(message: WireMessage, requestWarnings: readonly string[]): LlmResponse {
  const content: ContentBlock[] = [];
  const ignored = new Set<string>();
  for (const block of message.content) {
    switch (block.type) {
      case "text":
        content.push({ type: "text", text: block.text });
        break;
      case "thinking":
        content.push({ type: "thinking", text: block.thinking, signature: block.signature });
        break;
      case "redacted_thinking":
        content.push({ type: "thinking", text: block.data, redacted: true });
        break;
      case "tool_use":
        content.push({ type: "tool_call", id: block.id, name: block.name, input: block.input });
        break;
      case "other":
        ignored.add(block.original);
        break;
    }
  }
  const warnings = [...requestWarnings];
  if (ignored.size > 0) warnings.push(`ignored content blocks of type ${[...ignored].join(", ")}`);
  const response: LlmResponse = {
    content,
    stopReason: STOP_REASONS[message.stopReason ?? ""] ?? "other",
    usage: message.usage,
    model: message.model,
  };
  if (warnings.length > 0) response.warnings = warnings;
  return response;
}

// ---------------------------------------------------------------- streaming

const KNOWN_DELTAS = new Set(["text_delta", "thinking_delta", "signature_delta", "input_json_delta"]);

interface OpenBlock {
  block: WireBlock;
  json: string;
}

/** Builds the whole message from stream events and says which LlmStreamEvents each one produces. */
class StreamAssembler {
  readonly usage = emptyUsage();
  model: string;
  stopReason: string | null = null;
  stopped = false;
  private readonly blocks = new Map<number, OpenBlock>();

  constructor(
    private readonly provider: string,
    requestedModel: string,
  ) {
    this.model = requestedModel;
  }

  accept(event: unknown): LlmStreamEvent[] {
    if (!isObject(event)) return [];
    switch (event.type) {
      case "message_start": {
        const message = isObject(event.message) ? event.message : {};
        if (typeof message.model === "string" && message.model !== "") this.model = message.model;
        mergeUsage(this.usage, message.usage);
        return [];
      }
      case "content_block_start":
        return this.start(event);
      case "content_block_delta":
        return this.delta(event);
      case "content_block_stop":
        return this.stop(event);
      case "message_delta":
        if (isObject(event.delta) && typeof event.delta.stop_reason === "string") {
          this.stopReason = event.delta.stop_reason;
        }
        mergeUsage(this.usage, event.usage);
        return [];
      case "message_stop":
        this.stopped = true;
        return [];
      default:
        return [];
    }
  }

  message(): WireMessage {
    const content = [...this.blocks.entries()].sort(([a], [b]) => a - b).map(([, open]) => open.block);
    return { model: this.model, content, stopReason: this.stopReason, usage: { ...this.usage } };
  }

  private open(event: JsonObject): OpenBlock {
    const open = typeof event.index === "number" ? this.blocks.get(event.index) : undefined;
    if (open === undefined) {
      throw malformedResponse(this.provider, `a stream event names content block ${String(event.index)}`);
    }
    return open;
  }

  private start(event: JsonObject): LlmStreamEvent[] {
    if (typeof event.index !== "number") {
      throw malformedResponse(this.provider, "content_block_start has no index");
    }
    const wire = isObject(event.content_block) ? { ...event.content_block } : event.content_block;
    // tool_use starts with an empty input that input_json_delta events then fill in.
    if (isObject(wire) && wire.type === "tool_use") wire.input = {};
    const block = readBlock(this.provider, wire);
    this.blocks.set(event.index, { block, json: "" });
    if (block.type === "text" && block.text !== "") return [{ type: "text-delta", text: block.text }];
    if (block.type === "thinking" && block.thinking !== "") {
      return [{ type: "thinking-delta", text: block.thinking }];
    }
    return [];
  }

  private delta(event: JsonObject): LlmStreamEvent[] {
    const open = this.open(event);
    const delta = isObject(event.delta) ? event.delta : {};
    const { block } = open;
    if (delta.type === "text_delta" && block.type === "text" && typeof delta.text === "string") {
      block.text += delta.text;
      return delta.text === "" ? [] : [{ type: "text-delta", text: delta.text }];
    }
    if (delta.type === "thinking_delta" && block.type === "thinking" && typeof delta.thinking === "string") {
      block.thinking += delta.thinking;
      return delta.thinking === "" ? [] : [{ type: "thinking-delta", text: delta.thinking }];
    }
    if (
      delta.type === "signature_delta" &&
      block.type === "thinking" &&
      typeof delta.signature === "string"
    ) {
      block.signature += delta.signature;
      return [];
    }
    if (
      delta.type === "input_json_delta" &&
      block.type === "tool_use" &&
      typeof delta.partial_json === "string"
    ) {
      open.json += delta.partial_json;
      return [];
    }
    // Deltas of block types kilo does not map, and delta types newer than this adapter, are skipped.
    if (block.type === "other" || !KNOWN_DELTAS.has(String(delta.type))) return [];
    throw malformedResponse(
      this.provider,
      `a ${String(delta.type)} event arrived for a ${block.type} content block`,
    );
  }

  private stop(event: JsonObject): LlmStreamEvent[] {
    const open = this.open(event);
    const { block } = open;
    if (block.type !== "tool_use") return [];
    let input: unknown = {};
    if (open.json.trim() !== "") {
      try {
        input = JSON.parse(open.json);
      } catch (error) {
        throw malformedResponse(
          this.provider,
          `the input of tool call '${block.name}' is not valid JSON`,
          error,
        );
      }
    }
    if (!isObject(input)) {
      throw malformedResponse(this.provider, `the input of tool call '${block.name}' is not a JSON object`);
    }
    block.input = input;
    return [{ type: "tool-call", call: { type: "tool_call", id: block.id, name: block.name, input } }];
  }
}

// ---------------------------------------------------------------- errors and timeouts

/**
 * One call's signal: aborts when the caller's signal does or when the call
 * runs out of time. The SDK's own timeout only covers the wait for response
 * headers; a body or a stream that stalls afterwards would otherwise hang the turn.
 */
class CallControl {
  private readonly controller = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;
  timedOut = false;

  constructor(
    private readonly timeoutMs: number,
    private readonly outer: AbortSignal | undefined,
  ) {
    if (outer?.aborted === true) this.controller.abort(outer.reason);
    else outer?.addEventListener("abort", this.onAbort, { once: true });
    this.touch();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get aborted(): boolean {
    return this.outer?.aborted === true;
  }

  /** Restarts the clock (stream progress). */
  touch(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.controller.abort();
    }, this.timeoutMs);
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.outer?.removeEventListener("abort", this.onAbort);
  }

  private readonly onAbort = (): void => {
    this.controller.abort(this.outer?.reason);
  };
}

function retryAfterSeconds(headers: unknown): number | undefined {
  if (!isObject(headers) || typeof headers.get !== "function") return undefined;
  const get = (name: string): string | null => {
    const value: unknown = (headers.get as (name: string) => unknown).call(headers, name);
    return typeof value === "string" && value.trim() !== "" ? value.trim() : null;
  };
  const milliseconds = Number(get("retry-after-ms") ?? Number.NaN);
  if (Number.isFinite(milliseconds) && milliseconds >= 0) return milliseconds / 1000;
  const value = get("retry-after");
  if (value === null) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : "";
}

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Adds the tokens a failed call consumed, so the gateway still records them. */
function withUsage(error: KiloError, usage: LlmUsage | undefined): KiloError {
  if (usage === undefined || !hasTokens(usage)) return error;
  if (isObject(error.details) && "usage" in error.details) return error;
  return new KiloError(error.code, error.message, {
    cause: error.cause,
    status: error.status,
    retryable: error.retryable,
    ...(error.provider === undefined ? {} : { provider: error.provider }),
    details: { ...(isObject(error.details) ? error.details : {}), usage: { ...usage } },
  });
}

interface FailureContext {
  provider: string;
  control: CallControl;
  timeoutMs: number;
  /** Set while streaming: the tokens reported so far. */
  usage?: LlmUsage | undefined;
  streaming?: boolean | undefined;
  /** The API key, masked should the vendor ever echo it in an error message. */
  secret?: string | undefined;
}

function masked(text: string, context: FailureContext): string {
  const { secret } = context;
  return secret === undefined || secret === "" ? text : text.split(secret).join("***");
}

function abortedError(provider: string, cause: unknown): KiloError {
  return new KiloError("ABORTED", `${provider} call was aborted through its AbortSignal`, {
    provider,
    cause,
  });
}

function consumed(context: FailureContext): LlmUsage | undefined {
  return context.usage !== undefined && hasTokens(context.usage) ? { ...context.usage } : undefined;
}

function timeoutError(context: FailureContext, cause: unknown): KiloError {
  return providerError({
    provider: context.provider,
    timeout: true,
    message: `no answer within ${context.timeoutMs} ms, the timeoutMs option`,
    usage: consumed(context),
    cause,
  });
}

// "Connection error." wraps "fetch failed", which wraps what went wrong ("connect ECONNREFUSED ...").
function innermostReason(error: unknown): string {
  let current = error;
  for (let depth = 0; depth < 5 && current instanceof Error && current.cause instanceof Error; depth++) {
    current = current.cause;
  }
  return reasonOf(current);
}

// Duck-typed rather than `instanceof`: a host's client may come from another copy of the SDK.
function toFailure(error: unknown, context: FailureContext): KiloError {
  const { provider } = context;
  const usage = consumed(context);
  if (KiloError.is(error)) return withUsage(error, usage);
  if (context.control.timedOut) return timeoutError(context, error);
  const name = errorName(error);
  if (context.control.aborted || name === "APIUserAbortError" || name === "AbortError") {
    return abortedError(provider, error);
  }
  if (name === "APIConnectionTimeoutError") return timeoutError(context, error);
  if (name === "APIConnectionError") {
    return providerError({
      provider,
      unreachable: true,
      message: masked(innermostReason(error), context),
      usage,
      cause: error,
    });
  }
  if (error instanceof Error && "status" in error && "error" in error) {
    const api = error as Error & {
      status?: unknown;
      type?: unknown;
      apiMessage?: unknown;
      headers?: unknown;
    };
    const type = typeof api.type === "string" ? api.type : undefined;
    const status = typeof api.status === "number" ? api.status : (STATUS_OF_TYPE[type ?? ""] ?? 500);
    let message = typeof api.apiMessage === "string" && api.apiMessage !== "" ? api.apiMessage : api.message;
    if (status === 401 || status === 403) {
      message += " (the key comes from the `apiKey` option or ANTHROPIC_API_KEY)";
    }
    return providerError({
      provider,
      status,
      type,
      message: masked(message, context),
      retryAfterSeconds: retryAfterSeconds(api.headers),
      usage,
      cause: error,
    });
  }
  const problem =
    error instanceof SyntaxError
      ? `the body is not valid JSON (${error.message})`
      : context.streaming === true
        ? `the stream broke off before message_stop (${reasonOf(error)})`
        : `the response could not be read (${reasonOf(error)})`;
  return withUsage(malformedResponse(provider, masked(problem, context), error), usage);
}

// ---------------------------------------------------------------- the provider

/**
 * An {@link LlmProvider} for Anthropic's Messages API through the official
 * `@anthropic-ai/sdk` (an optional peer dependency, loaded on the first call).
 *
 * - System blocks become `system` text blocks; prompt-cache breakpoints go on
 *   the last two blocks the composer marked `cacheable`, the last tool and
 *   the conversation so far (the API's limit is four).
 * - Extended thinking (`thinking: { type: "enabled", budget_tokens }`) when
 *   the request has a budget; thinking and redacted thinking blocks come back
 *   with their signatures and are sent back unchanged on later turns.
 * - `providerOptions.anthropic` (or `providerOptions.<name>`) is merged into
 *   the request body: `top_k`, `metadata`, `tool_choice`, ...
 * - Usage maps `input_tokens`, `output_tokens`, `cache_read_input_tokens`,
 *   `cache_creation_input_tokens` and reported thinking tokens.
 * - The SDK never retries (`maxRetries: 0`): the gateway retries and falls back.
 *   Failures are `KiloError`s: `PROVIDER_FAILED` (retryable: 429 with
 *   `details.retryAfterSeconds`, 529, 5xx, timeouts, unreachable, malformed or
 *   truncated answers), `PROVIDER_REJECTED` (400, 401, 403, ...), `ABORTED`,
 *   and `CONFIGURATION_INVALID` when no API key is set or the SDK is missing.
 *
 * @example
 * ```ts
 * import { createKilo } from "kilo";
 * import { anthropicProvider } from "kilo/providers/anthropic";
 * import { memoryStorage } from "kilo/storage/memory";
 *
 * const kilo = createKilo({
 *   storage: memoryStorage(),
 *   providers: [anthropicProvider({ defaultModel: "claude-sonnet-4-6" })], // reads ANTHROPIC_API_KEY
 * });
 * ```
 */
export function anthropicProvider(options: AnthropicProviderOptions = {}): LlmProvider {
  const name = options.name ?? "anthropic";
  const defaultModel = options.defaultModel ?? DEFAULT_MODEL;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const cacheControl = options.cacheControl ?? true;
  if (typeof name !== "string" || name === "") {
    throw new KiloError("CONFIGURATION_INVALID", "anthropicProvider `name` must be a non-empty string");
  }
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new KiloError("CONFIGURATION_INVALID", "anthropicProvider `timeoutMs` must be a positive number", {
      provider: name,
    });
  }
  if (options.client !== undefined && typeof options.client?.messages?.create !== "function") {
    throw new KiloError(
      "CONFIGURATION_INVALID",
      "anthropicProvider `client` must be an @anthropic-ai/sdk client (with messages.create)",
      { provider: name },
    );
  }

  let sdk: Promise<AnthropicConstructor> | undefined;
  let owned: { apiKey: string; baseURL: string | undefined; client: AnthropicClient } | undefined;

  function loadSdk(): Promise<AnthropicConstructor> {
    sdk ??= (async () => {
      let loaded: JsonObject;
      try {
        loaded = (await import("@anthropic-ai/sdk")) as unknown as JsonObject;
      } catch (error) {
        throw new KiloError(
          "CONFIGURATION_INVALID",
          `anthropicProvider needs the '${PACKAGE}' package, an optional peer dependency of kilo: npm install ${PACKAGE}`,
          { provider: name, cause: error },
        );
      }
      const fallback = isObject(loaded.default) || typeof loaded.default === "function" ? loaded.default : {};
      const Anthropic = loaded.Anthropic ?? (fallback as JsonObject).Anthropic ?? loaded.default;
      if (typeof Anthropic !== "function") {
        throw new KiloError(
          "CONFIGURATION_INVALID",
          `The installed '${PACKAGE}' exports no Anthropic client`,
          {
            provider: name,
          },
        );
      }
      return Anthropic as AnthropicConstructor;
    })();
    const attempt = sdk;
    attempt.catch(() => {
      if (sdk === attempt) sdk = undefined;
    });
    return attempt;
  }

  async function client(): Promise<{ client: AnthropicClient; secret?: string }> {
    if (options.client !== undefined) return { client: options.client };
    const apiKey = options.apiKey ?? process.env.ANTHROPIC_API_KEY;
    if (apiKey === undefined || apiKey === "") {
      throw new KiloError(
        "CONFIGURATION_INVALID",
        `${name} has no API key: pass the \`apiKey\` option to anthropicProvider() or set the ANTHROPIC_API_KEY environment variable`,
        { provider: name },
      );
    }
    const baseURL = options.baseURL ?? (process.env.ANTHROPIC_BASE_URL || undefined);
    if (owned !== undefined && owned.apiKey === apiKey && owned.baseURL === baseURL) {
      return { client: owned.client, secret: apiKey };
    }
    const Anthropic = await loadSdk();
    const created = new Anthropic({
      apiKey,
      ...(baseURL === undefined ? {} : { baseURL }),
      maxRetries: 0,
      timeout: timeoutMs,
    });
    owned = { apiKey, baseURL, client: created };
    return { client: created, secret: apiKey };
  }

  async function complete(request: LlmRequest): Promise<LlmResponse> {
    const { body, warnings } = buildRequest(request, name, cacheControl);
    const { client: sdkClient, secret } = await client();
    const control = new CallControl(timeoutMs, request.signal);
    const context: FailureContext = { provider: name, control, timeoutMs, secret };
    let wire: unknown;
    try {
      wire = await sdkClient.messages.create(body, { signal: control.signal, timeout: timeoutMs });
    } catch (error) {
      throw toFailure(error, context);
    } finally {
      control.dispose();
    }
    return toResponse(readMessage(name, wire, request.model), warnings);
  }

  async function* stream(request: LlmRequest): AsyncGenerator<LlmStreamEvent, void, undefined> {
    const { body, warnings } = buildRequest(request, name, cacheControl);
    const { client: sdkClient, secret } = await client();
    const control = new CallControl(timeoutMs, request.signal);
    const assembler = new StreamAssembler(name, request.model);
    const context: FailureContext = {
      provider: name,
      control,
      timeoutMs,
      usage: assembler.usage,
      streaming: true,
      secret,
    };
    try {
      const events = await sdkClient.messages.create(
        { ...body, stream: true },
        { signal: control.signal, timeout: timeoutMs },
      );
      if (!isAsyncIterable(events)) {
        throw malformedResponse(name, "the streamed response is not an event stream");
      }
      for await (const event of events) {
        // The SDK may still hand out events it had buffered before the abort.
        if (control.aborted) throw abortedError(name, request.signal?.reason);
        control.touch();
        yield* assembler.accept(event);
        if (assembler.stopped) break;
      }
      // The SDK ends an aborted stream quietly, so an early end is told apart here.
      if (!assembler.stopped) {
        if (control.timedOut) throw timeoutError(context, undefined);
        if (control.aborted) throw abortedError(name, request.signal?.reason);
        throw withUsage(malformedResponse(name, "the stream ended before message_stop"), assembler.usage);
      }
    } catch (error) {
      throw toFailure(error, context);
    } finally {
      control.dispose();
    }
    yield { type: "done", response: toResponse(assembler.message(), warnings) };
  }

  return {
    name,
    defaultModel,
    capabilities: { thinking: true, streaming: true, promptCaching: cacheControl },
    complete,
    stream,
  };
}
