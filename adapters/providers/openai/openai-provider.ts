import { KiloError } from "../../../src/errors.js";
import { malformedResponse, providerError } from "../../../src/gateway/provider-errors.js";
import type {
  ContentBlock,
  LlmMessage,
  LlmProvider,
  LlmProviderCapabilities,
  LlmRequest,
  LlmResponse,
  LlmStreamEvent,
  LlmUsage,
  StopReason,
  ToolCallBlock,
} from "../../../src/ports/llm-provider.js";

/** A tool call as the Chat Completions API sends and takes it. */
export interface OpenAIToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

/** A chat message as the Chat Completions API takes it (the subset kilo sends). */
export type OpenAIChatMessage =
  | { role: "system" | "developer" | "user"; content: string }
  | { role: "assistant"; content: string | null; tool_calls?: OpenAIToolCall[] }
  | { role: "tool"; tool_call_id: string; content: string };

/** A function tool as the Chat Completions API takes it. */
export interface OpenAIFunctionTool {
  type: "function";
  function: { name: string; description: string; parameters: Record<string, unknown> };
}

/**
 * The body of a `POST /chat/completions` request as kilo builds it. Keys from
 * `providerOptions.openai` are merged in unchanged.
 */
export interface OpenAIChatRequest {
  model: string;
  messages: OpenAIChatMessage[];
  tools?: OpenAIFunctionTool[];
  max_completion_tokens?: number;
  temperature?: number;
  reasoning_effort?: "low" | "medium" | "high";
  stream?: boolean;
  stream_options?: { include_usage: boolean };
}

/** Per-request options kilo passes to the SDK. */
export interface OpenAIRequestOptions {
  signal?: AbortSignal;
  /** Milliseconds before the SDK gives up waiting for the response headers. */
  timeout?: number;
}

/**
 * The subset of an `openai` SDK client (`new OpenAI(...)`) the adapter uses.
 * Any object with this shape works, e.g. a client the host configured with
 * its own proxy, headers or `fetch`. The adapter validates what `create`
 * returns, so its result is typed `unknown` here.
 */
export interface OpenAIClient {
  chat: {
    completions: {
      /**
       * `POST /chat/completions`: resolves with the raw ChatCompletion (or a chunk stream when
       * `body.stream` is true), which the provider validates itself; rejects with the SDK's `APIError`.
       */
      create(body: OpenAIChatRequest, options?: OpenAIRequestOptions): PromiseLike<unknown>;
    };
  };
}

/** Options of {@link openaiProvider}. Every option is optional. */
export interface OpenAIProviderOptions {
  /**
   * The API key. Default: the `OPENAI_API_KEY` environment variable, read at
   * each call. A local OpenAI-compatible server that checks no key still
   * needs a non-empty value: pass any placeholder, e.g. `apiKey: "none"`.
   * Ignored when `client` is given.
   */
  apiKey?: string | undefined;
  /**
   * The API's base URL, e.g. `http://127.0.0.1:11434/v1` for Ollama. Default:
   * the `OPENAI_BASE_URL` environment variable, else `https://api.openai.com/v1`.
   * Ignored when `client` is given.
   */
  baseURL?: string | undefined;
  /**
   * The host's own `openai` SDK client. kilo then uses it as it is (its key,
   * base URL and retries) and only passes `timeoutMs` and the call's
   * AbortSignal per request. Set `maxRetries: 0` on it: the gateway retries.
   */
  client?: OpenAIClient | undefined;
  /** The model used when a route names none. Default `"gpt-4.1-mini"`. */
  defaultModel?: string | undefined;
  /**
   * Milliseconds to wait for the response to start, and, when streaming,
   * between two chunks. Default 60 000.
   */
  timeoutMs?: number | undefined;
  /** The provider's name in routes, usage records and errors. Default `"openai"`. */
  name?: string | undefined;
  /**
   * Whether a model is a reasoning model: it gets a `developer` message
   * instead of a `system` one, `reasoning_effort` from a thinking budget, and
   * no `temperature`. Default: the o1, o3, o4 and gpt-5 families (not
   * `gpt-5-chat`), also behind a router prefix such as `openai/o3-mini`.
   */
  reasoningModels?: ((model: string) => boolean) | undefined;
}

const DEFAULT_MODEL = "gpt-4.1-mini";
const DEFAULT_TIMEOUT_MS = 60_000;
const CAPABILITIES: LlmProviderCapabilities = Object.freeze({
  // Reasoning effort is not a thinking transcript: no thinking blocks come back,
  // but the gateway still sends the budget, which becomes `reasoning_effort`.
  thinking: false,
  reasoning: true,
  streaming: true,
  promptCaching: true,
});

/** The default `reasoningModels` test: o1, o3, o4 and gpt-5 (but not gpt-5-chat) families. */
export function isOpenAIReasoningModel(model: string): boolean {
  const id = model.slice(model.lastIndexOf("/") + 1).toLowerCase();
  if (/^o[134](-|$)/.test(id)) return true;
  return /^gpt-5(\.\d+)?(-|$)/.test(id) && !id.includes("-chat");
}

/** A thinking budget as a reasoning effort: up to 4 000 tokens low, up to 10 000 medium, else high. */
function reasoningEffortFor(budgetTokens: number): "low" | "medium" | "high" {
  if (budgetTokens <= 4_000) return "low";
  if (budgetTokens <= 10_000) return "medium";
  return "high";
}

type Json = Record<string, unknown>;

function isRecord(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function count(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? Math.round(value) : 0;
}

function mapUsage(raw: unknown): LlmUsage {
  const usage = isRecord(raw) ? raw : {};
  const prompt = count(usage.prompt_tokens);
  const promptDetails = isRecord(usage.prompt_tokens_details) ? usage.prompt_tokens_details : {};
  const completionDetails = isRecord(usage.completion_tokens_details) ? usage.completion_tokens_details : {};
  const cached = Math.min(prompt, count(promptDetails.cached_tokens));
  return {
    inputTokens: prompt - cached,
    outputTokens: count(usage.completion_tokens),
    cacheReadTokens: cached,
    // OpenAI caches prefixes by itself and charges nothing extra to write them.
    cacheWriteTokens: 0,
    reasoningTokens: count(completionDetails.reasoning_tokens),
  };
}

function mapStopReason(reason: unknown, hasToolCalls: boolean): StopReason {
  switch (reason) {
    case "tool_calls":
    case "function_call":
      return "tool_use";
    case "stop":
      // Some OpenAI-compatible servers report "stop" even when the answer is a tool call.
      return hasToolCalls ? "tool_use" : "end_turn";
    case "length":
      return "max_tokens";
    case "content_filter":
      return "refusal";
    default:
      return "other";
  }
}

function textOfBlocks(blocks: readonly ContentBlock[]): string {
  return blocks
    .filter((block) => block.type === "text")
    .map((block) => block.text)
    .join("\n\n");
}

function stripSchemaKeyword(schema: Record<string, unknown>): Record<string, unknown> {
  // Some OpenAI-compatible servers reject the `$schema` keyword that z.toJSONSchema adds.
  const { $schema: _dropped, ...rest } = schema;
  return rest;
}

/** Retry-After as seconds: `retry-after-ms`, else `retry-after` (seconds or an HTTP date). */
function retryAfterSeconds(headers: unknown): number | undefined {
  if (typeof headers !== "object" || headers === null) return undefined;
  const get = (headers as { get?: unknown }).get;
  if (typeof get !== "function") return undefined;
  const read = (key: string): string | null => {
    const value: unknown = get.call(headers, key);
    return typeof value === "string" && value.trim() !== "" ? value.trim() : null;
  };
  const millis = read("retry-after-ms");
  if (millis !== null && Number.isFinite(Number(millis))) return Math.max(0, Number(millis) / 1000);
  const after = read("retry-after");
  if (after === null) return undefined;
  if (Number.isFinite(Number(after))) return Math.max(0, Number(after));
  const date = Date.parse(after);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

/** True when `error` is an instance of a class named `className` (any copy of the SDK). */
function isSdkError(error: unknown, className: string): boolean {
  let prototype: unknown = typeof error === "object" && error !== null ? Object.getPrototypeOf(error) : null;
  while (typeof prototype === "object" && prototype !== null) {
    if ((prototype as { constructor?: { name?: unknown } }).constructor?.name === className) return true;
    prototype = Object.getPrototypeOf(prototype);
  }
  return false;
}

type OpenAIConstructor = new (options: Record<string, unknown>) => OpenAIClient;

let sdk: Promise<OpenAIConstructor> | undefined;

function loadSdk(): Promise<OpenAIConstructor> {
  sdk ??= (async () => {
    let loaded: Record<string, unknown>;
    try {
      loaded = (await import("openai")) as unknown as Record<string, unknown>;
    } catch (error) {
      throw new KiloError(
        "CONFIGURATION_INVALID",
        "openaiProvider needs the 'openai' package, an optional peer dependency of kilo: npm install openai",
        { provider: "openai", cause: error },
      );
    }
    const fallback = loaded.default as Record<string, unknown> | undefined;
    const OpenAI = loaded.OpenAI ?? fallback?.OpenAI ?? fallback;
    if (typeof OpenAI !== "function") {
      throw new KiloError("CONFIGURATION_INVALID", "The installed 'openai' package exports no OpenAI class", {
        provider: "openai",
      });
    }
    return OpenAI as OpenAIConstructor;
  })();
  const attempt = sdk;
  attempt.catch(() => {
    if (sdk === attempt) sdk = undefined;
  });
  return attempt;
}

/** Aborts the SDK request when the caller's signal aborts or no chunk arrived for `idleMs`. */
class RequestControl {
  readonly controller = new AbortController();
  timedOut = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly onAbort = (): void => this.controller.abort(this.signal?.reason);

  constructor(
    private readonly signal: AbortSignal | undefined,
    private readonly idleMs: number,
  ) {
    if (signal?.aborted === true) this.controller.abort(signal.reason);
    else signal?.addEventListener("abort", this.onAbort, { once: true });
  }

  arm(): void {
    this.disarm();
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.controller.abort(new Error(`no stream chunk within ${this.idleMs} ms`));
    }, this.idleMs);
  }

  disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  dispose(): void {
    this.disarm();
    this.signal?.removeEventListener("abort", this.onAbort);
  }
}

interface PendingToolCall {
  id: string;
  name: string;
  arguments: string;
}

/**
 * An {@link LlmProvider} on OpenAI's Chat Completions API, which OpenAI-compatible
 * servers (Ollama, vLLM, llama.cpp server, OpenRouter, ...) speak too: point
 * `baseURL` at them.
 *
 * - The system blocks become one `system` message (`developer` for reasoning
 *   models), stable prefix first, so OpenAI's automatic prefix caching hits;
 *   cached prompt tokens are reported as `cacheReadTokens`.
 * - Tool calls and tool results map to `tool_calls` and `tool` messages.
 *   Thinking blocks from other providers are dropped with a warning.
 * - A thinking budget becomes `reasoning_effort` for reasoning models
 *   (up to 4 000 tokens `low`, up to 10 000 `medium`, else `high`); other
 *   models ignore it with a warning.
 *   `capabilities.thinking` is `false`, since no thinking transcript comes
 *   back; `capabilities.reasoning` is `true`, so the gateway sends the budget.
 * - `providerOptions.openai` (and `providerOptions[name]` for a renamed
 *   provider) is merged into the request body last.
 * - The `openai` SDK is loaded on the first call, with `maxRetries: 0`: the
 *   gateway retries and falls back.
 *
 * Errors: rate limits, 5xx, timeouts, unreachable hosts, malformed or cut-off
 * responses are `PROVIDER_FAILED` with `retryable: true` (`details.retryAfterSeconds`
 * from `retry-after`); 400/401/403/404/422 are `PROVIDER_REJECTED`; an aborted
 * signal is `ABORTED`; a missing key or SDK is `CONFIGURATION_INVALID` on the
 * first call. Messages never contain the API key or request headers.
 *
 * @example
 * ```ts
 * import { createKilo } from "kilo";
 * import { openaiProvider } from "kilo/providers/openai";
 *
 * const kilo = createKilo({ storage, providers: [openaiProvider()] }); // OPENAI_API_KEY
 * // A local Ollama server:
 * const local = openaiProvider({ name: "ollama", baseURL: "http://127.0.0.1:11434/v1", apiKey: "none", defaultModel: "llama3.1" });
 * ```
 */
export function openaiProvider(options: OpenAIProviderOptions = {}): LlmProvider {
  const name = options.name ?? "openai";
  if (typeof name !== "string" || name === "") {
    throw new KiloError("CONFIGURATION_INVALID", "openaiProvider `name` must be a non-empty string");
  }
  const defaultModel = options.defaultModel ?? DEFAULT_MODEL;
  if (typeof defaultModel !== "string" || defaultModel === "") {
    throw new KiloError("CONFIGURATION_INVALID", "openaiProvider `defaultModel` must be a non-empty string", {
      provider: name,
    });
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
    throw new KiloError(
      "CONFIGURATION_INVALID",
      `openaiProvider \`timeoutMs\` must be a positive integer, got ${timeoutMs}`,
      { provider: name },
    );
  }
  if (options.client !== undefined && typeof options.client?.chat?.completions?.create !== "function") {
    throw new KiloError(
      "CONFIGURATION_INVALID",
      "openaiProvider `client` must be an openai SDK client (client.chat.completions.create)",
      { provider: name },
    );
  }
  if (options.reasoningModels !== undefined && typeof options.reasoningModels !== "function") {
    throw new KiloError("CONFIGURATION_INVALID", "openaiProvider `reasoningModels` must be a function", {
      provider: name,
    });
  }
  const isReasoningModel = options.reasoningModels ?? isOpenAIReasoningModel;
  let owned: { apiKey: string; baseURL: string | undefined; client: OpenAIClient } | undefined;
  let lastApiKey: string | undefined;

  async function resolveClient(): Promise<OpenAIClient> {
    if (options.client !== undefined) return options.client;
    const apiKey = options.apiKey || process.env.OPENAI_API_KEY || undefined;
    if (apiKey === undefined) {
      throw new KiloError(
        "CONFIGURATION_INVALID",
        `LLM provider '${name}' has no API key: pass the \`apiKey\` option to openaiProvider or set the ` +
          'OPENAI_API_KEY environment variable (a local server that needs no key takes apiKey: "none")',
        { provider: name },
      );
    }
    lastApiKey = apiKey;
    const baseURL = options.baseURL || process.env.OPENAI_BASE_URL || undefined;
    if (owned !== undefined && owned.apiKey === apiKey && owned.baseURL === baseURL) return owned.client;
    const OpenAI = await loadSdk();
    const client = new OpenAI({
      apiKey,
      baseURL,
      maxRetries: 0,
      timeout: timeoutMs,
      // Failures reach the host as KiloErrors; the SDK must not also write to the console.
      logLevel: "off",
    });
    owned = { apiKey, baseURL, client };
    return client;
  }

  /** Removes credentials from text that came from the vendor (OpenAI echoes a masked key on 401). */
  function redact(text: string): string {
    let clean = text.replace(/Bearer\s+\S+/gi, "Bearer ***").replace(/\bsk-[A-Za-z0-9_*.-]+/g, "sk-***");
    if (lastApiKey !== undefined && lastApiKey.length >= 4) clean = clean.split(lastApiKey).join("***");
    return clean;
  }

  function aborted(cause: unknown): KiloError {
    return new KiloError("ABORTED", `LLM call to '${name}' was aborted`, { provider: name, cause });
  }

  function timedOut(cause: unknown): KiloError {
    return providerError({
      provider: name,
      message: `no answer within ${timeoutMs} ms (timeoutMs)`,
      timeout: true,
      cause,
    });
  }

  function toError(error: unknown, signal: AbortSignal | undefined, control?: RequestControl): KiloError {
    if (KiloError.is(error)) return error;
    if (control?.timedOut === true) return timedOut(error);
    if (signal?.aborted === true || isSdkError(error, "APIUserAbortError")) return aborted(error);
    if (isSdkError(error, "APIConnectionTimeoutError")) return timedOut(error);
    const failure = isRecord(error) || error instanceof Error ? (error as Json) : {};
    const message = redact(error instanceof Error ? error.message : String(error));
    if (isSdkError(error, "APIConnectionError")) {
      const cause = failure.cause instanceof Error ? `: ${redact(failure.cause.message)}` : "";
      return providerError({
        provider: name,
        message: `${message}${cause}`,
        unreachable: true,
        cause: error,
      });
    }
    if (typeof failure.status === "number") {
      const body = isRecord(failure.error) ? failure.error : {};
      const type = [failure.code, failure.type, body.code, body.type].find(
        (value): value is string => typeof value === "string" && value !== "",
      );
      let text = typeof body.message === "string" && body.message !== "" ? redact(body.message) : message;
      if (failure.status === 401) {
        text = `${text.replace(/[.\s]+$/, "")}; set the \`apiKey\` option of openaiProvider or the OPENAI_API_KEY environment variable`;
      }
      return providerError({
        provider: name,
        status: failure.status,
        type,
        message: text,
        retryAfterSeconds: retryAfterSeconds(failure.headers),
        cause: error,
      });
    }
    if (isSdkError(error, "APIError")) {
      // An error event inside a stream that had already started with HTTP 200.
      return malformedResponse(name, `the stream broke off with an error event (${message})`, error);
    }
    if (error instanceof SyntaxError) {
      return malformedResponse(name, `the response is not valid JSON (${message})`, error);
    }
    // undici's "terminated" and friends: the connection dropped while the body was read.
    return malformedResponse(
      name,
      `the connection closed before the response was complete (${message})`,
      error,
    );
  }

  function buildBody(request: LlmRequest): { body: OpenAIChatRequest; warnings: string[] } {
    const reasoning = isReasoningModel(request.model);
    const warnings: string[] = [];
    const messages: OpenAIChatMessage[] = [];
    const system = request.system.map((block) => block.text).filter((text) => text !== "");
    if (system.length > 0) {
      messages.push({ role: reasoning ? "developer" : "system", content: system.join("\n\n") });
    }
    let droppedThinking = 0;
    for (const message of request.messages) {
      droppedThinking += message.content.filter((block) => block.type === "thinking").length;
      messages.push(...toChatMessages(message));
    }
    if (droppedThinking > 0) {
      warnings.push(
        `${name}: dropped ${droppedThinking} thinking block(s); the Chat Completions API does not take them back`,
      );
    }
    const body: OpenAIChatRequest = {
      model: request.model,
      messages,
      max_completion_tokens: request.maxTokens,
    };
    if (request.tools !== undefined && request.tools.length > 0) {
      body.tools = request.tools.map((tool) => ({
        type: "function",
        function: {
          name: tool.name,
          description: tool.description,
          parameters: stripSchemaKeyword(tool.inputSchema),
        },
      }));
    }
    if (request.thinking !== undefined) {
      if (reasoning) body.reasoning_effort = reasoningEffortFor(request.thinking.budgetTokens);
      else {
        warnings.push(
          `${name}: the thinking budget was ignored; model '${request.model}' is not a reasoning model`,
        );
      }
    }
    if (request.temperature !== undefined) {
      if (reasoning) {
        warnings.push(`${name}: temperature was ignored; reasoning model '${request.model}' takes none`);
      } else body.temperature = request.temperature;
    }
    const extra = request.providerOptions;
    if (extra !== undefined) {
      Object.assign(body, extra.openai, name === "openai" ? undefined : extra[name]);
    }
    return { body, warnings };
  }

  function toChatMessages(message: LlmMessage): OpenAIChatMessage[] {
    if (message.role === "assistant") {
      const text = textOfBlocks(message.content);
      const toolCalls: OpenAIToolCall[] = message.content
        .filter((block) => block.type === "tool_call")
        .map((block) => ({
          id: block.id,
          type: "function",
          function: { name: block.name, arguments: JSON.stringify(block.input) },
        }));
      if (toolCalls.length > 0)
        return [{ role: "assistant", content: text === "" ? null : text, tool_calls: toolCalls }];
      return text === "" ? [] : [{ role: "assistant", content: text }];
    }
    // Tool messages must directly follow the assistant message that asked for them.
    const result: OpenAIChatMessage[] = [];
    for (const block of message.content) {
      if (block.type !== "tool_result") continue;
      // The API has no error flag on tool results; the model reads the failure from the text.
      const content = block.isError === true ? `Error: ${block.content}` : block.content;
      result.push({ role: "tool", tool_call_id: block.toolCallId, content });
    }
    const text = textOfBlocks(message.content);
    if (text !== "") result.push({ role: "user", content: text });
    return result;
  }

  function requestOptions(signal: AbortSignal | undefined): OpenAIRequestOptions {
    return signal === undefined ? { timeout: timeoutMs } : { timeout: timeoutMs, signal };
  }

  function toolCallBlock(id: unknown, toolName: unknown, args: unknown, position: number): ToolCallBlock {
    if (typeof toolName !== "string" || toolName === "") {
      throw malformedResponse(name, `tool call ${position} has no function name`);
    }
    const source = typeof args === "string" ? args.trim() : "";
    let input: unknown = {};
    if (source !== "") {
      try {
        input = JSON.parse(source);
      } catch (error) {
        throw malformedResponse(name, `the arguments of tool call '${toolName}' are not valid JSON`, error);
      }
    }
    if (!isRecord(input)) {
      throw malformedResponse(name, `the arguments of tool call '${toolName}' are not a JSON object`);
    }
    // Some OpenAI-compatible servers omit tool call ids; the follow-up turn needs one to reference.
    const callId = typeof id === "string" && id !== "" ? id : `call_${position}`;
    return { type: "tool_call", id: callId, name: toolName, input };
  }

  function assemble(
    request: LlmRequest,
    parts: { text: string; refusal: string; toolCalls: ToolCallBlock[]; finishReason: unknown },
    usage: unknown,
    model: unknown,
    warnings: string[],
  ): LlmResponse {
    const content: ContentBlock[] = [];
    const text = parts.text !== "" ? parts.text : parts.refusal;
    if (text !== "") content.push({ type: "text", text });
    content.push(...parts.toolCalls);
    let stopReason = mapStopReason(parts.finishReason, parts.toolCalls.length > 0);
    if (parts.text === "" && parts.refusal !== "") stopReason = "refusal";
    const response: LlmResponse = {
      content,
      stopReason,
      usage: mapUsage(usage),
      model: typeof model === "string" && model !== "" ? model : request.model,
    };
    if (warnings.length > 0) response.warnings = warnings;
    return response;
  }

  function parseCompletion(raw: unknown, request: LlmRequest, warnings: string[]): LlmResponse {
    if (!isRecord(raw)) throw malformedResponse(name, "the response body is not a JSON object");
    const choice = Array.isArray(raw.choices) ? raw.choices[0] : undefined;
    if (!isRecord(choice)) throw malformedResponse(name, "the response has no choices");
    const message = choice.message;
    if (!isRecord(message)) throw malformedResponse(name, "the response's choice has no message");
    const rawCalls = Array.isArray(message.tool_calls) ? message.tool_calls : [];
    const toolCalls = rawCalls.map((call: unknown, index) => {
      const fn = isRecord(call) && isRecord(call.function) ? call.function : {};
      return toolCallBlock(isRecord(call) ? call.id : undefined, fn.name, fn.arguments, index);
    });
    return assemble(
      request,
      {
        text: typeof message.content === "string" ? message.content : "",
        refusal: typeof message.refusal === "string" ? message.refusal : "",
        toolCalls,
        finishReason: choice.finish_reason,
      },
      raw.usage,
      raw.model,
      warnings,
    );
  }

  async function complete(request: LlmRequest): Promise<LlmResponse> {
    const { body, warnings } = buildBody(request);
    // providerOptions must not turn a whole-response call into a stream.
    delete body.stream;
    delete body.stream_options;
    const client = await resolveClient();
    let raw: unknown;
    try {
      raw = await client.chat.completions.create(body, requestOptions(request.signal));
    } catch (error) {
      throw toError(error, request.signal);
    }
    return parseCompletion(raw, request, warnings);
  }

  async function* stream(request: LlmRequest): AsyncGenerator<LlmStreamEvent, void, undefined> {
    const { body, warnings } = buildBody(request);
    body.stream = true;
    body.stream_options = {
      ...(isRecord(body.stream_options) ? body.stream_options : {}),
      include_usage: true,
    };
    const client = await resolveClient();
    const control = new RequestControl(request.signal, timeoutMs);
    let iterator: AsyncIterator<unknown> | undefined;
    let finished = false;
    const pending = new Map<number, PendingToolCall>();
    let text = "";
    let refusal = "";
    let finishReason: unknown;
    let usage: unknown;
    let model: unknown;
    try {
      let source: unknown;
      try {
        source = await client.chat.completions.create(body, {
          timeout: timeoutMs,
          signal: control.controller.signal,
        });
      } catch (error) {
        throw toError(error, request.signal, control);
      }
      const iterable = source as { [Symbol.asyncIterator]?: unknown } | null;
      if (typeof iterable?.[Symbol.asyncIterator] !== "function") {
        throw malformedResponse(name, "a streamed call returned no stream");
      }
      iterator = (source as AsyncIterable<unknown>)[Symbol.asyncIterator]();
      for (;;) {
        control.arm();
        let next: IteratorResult<unknown>;
        try {
          next = await iterator.next();
        } catch (error) {
          throw toError(error, request.signal, control);
        } finally {
          control.disarm();
        }
        if (next.done === true) {
          finished = true;
          break;
        }
        const chunk = next.value;
        if (!isRecord(chunk)) throw malformedResponse(name, "a stream chunk is not a JSON object");
        if (typeof chunk.model === "string" && chunk.model !== "") model = chunk.model;
        if (isRecord(chunk.usage)) usage = chunk.usage;
        const choices = Array.isArray(chunk.choices) ? chunk.choices : [];
        const choice = choices.find((entry: unknown) => isRecord(entry) && (entry.index ?? 0) === 0);
        if (!isRecord(choice)) continue;
        if (choice.finish_reason !== null && choice.finish_reason !== undefined) {
          finishReason = choice.finish_reason;
        }
        const delta = isRecord(choice.delta) ? choice.delta : {};
        if (typeof delta.refusal === "string") refusal += delta.refusal;
        if (Array.isArray(delta.tool_calls)) {
          delta.tool_calls.forEach((entry: unknown, position) => {
            if (!isRecord(entry)) return;
            const index = typeof entry.index === "number" ? entry.index : position;
            const call = pending.get(index) ?? { id: "", name: "", arguments: "" };
            pending.set(index, call);
            if (typeof entry.id === "string" && call.id === "") call.id = entry.id;
            const fn = isRecord(entry.function) ? entry.function : {};
            if (typeof fn.name === "string" && call.name === "") call.name = fn.name;
            if (typeof fn.arguments === "string") call.arguments += fn.arguments;
          });
        }
        if (typeof delta.content === "string" && delta.content !== "") {
          text += delta.content;
          yield { type: "text-delta", text: delta.content };
        }
      }
    } finally {
      control.dispose();
      // The consumer stopped early or we failed: close the HTTP stream instead of leaving it open.
      if (!finished) await iterator?.return?.().catch(() => undefined);
    }
    if (request.signal?.aborted === true) throw aborted(request.signal.reason);
    if (control.timedOut) throw timedOut(undefined);
    if (finishReason === undefined) {
      throw malformedResponse(name, "the stream ended before the model finished (no finish_reason)");
    }
    const toolCalls = [...pending.entries()]
      .sort(([a], [b]) => a - b)
      .map(([, call], position) => toolCallBlock(call.id, call.name, call.arguments, position));
    for (const call of toolCalls) yield { type: "tool-call", call };
    yield {
      type: "done",
      response: assemble(request, { text, refusal, toolCalls, finishReason }, usage, model, warnings),
    };
  }

  return { name, defaultModel, capabilities: CAPABILITIES, complete, stream };
}
