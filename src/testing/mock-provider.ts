import { KiloError, type KiloErrorCode } from "../errors.js";
import { responseEvents } from "../gateway/content.js";
import type {
  ContentBlock,
  LlmProvider,
  LlmProviderCapabilities,
  LlmRequest,
  LlmResponse,
  LlmStreamEvent,
  LlmUsage,
  StopReason,
} from "../ports/llm-provider.js";

/** A tool call a mock reply asks for; `id` defaults to `call_1`, `call_2`, ... counted per provider. */
export interface MockToolCall {
  name: string;
  input: Record<string, unknown>;
  id?: string | undefined;
}

/** A scripted answer. */
export interface MockAnswer {
  text?: string | undefined;
  toolCalls?: MockToolCall[] | undefined;
  /** Thinking text, returned as a thinking block before the text. */
  thinking?: string | undefined;
  /** Default `tool_use` when there are tool calls, else `end_turn`. */
  stopReason?: StopReason | undefined;
  /** Overrides the estimated token counts. */
  usage?: Partial<LlmUsage> | undefined;
  /** The model reported as answering; default the requested model. */
  model?: string | undefined;
}

/** A scripted failure. A plain object becomes a KiloError from this provider. */
export interface MockFailure {
  error: KiloError | Error | { code: KiloErrorCode; message: string; retryable?: boolean | undefined };
  /** Tokens the failed call used; travels as the KiloError's `details.usage` (plain-object errors only). */
  usage?: Partial<LlmUsage> | undefined;
}

/** One scripted reply: plain text, an answer, or a failure. */
export type MockReply = string | MockAnswer | MockFailure;

/** Options of {@link mockProvider}. Give `replies` or `respond`, not both. */
export interface MockProviderOptions {
  /** Default `mock`. */
  name?: string | undefined;
  /** The default model. Default `mock-1`. */
  model?: string | undefined;
  /** Replies used in order, one per call. */
  replies?: MockReply[] | undefined;
  /** Computes the reply for each call; `index` counts calls from 0. */
  respond?: ((request: LlmRequest, index: number) => MockReply | Promise<MockReply>) | undefined;
  /** Simulated latency of each call; an abort during the wait fails the call with `ABORTED`. */
  latencyMs?: number | undefined;
  /** Default `{ thinking: true, streaming: true, promptCaching: false }`; `streaming: false` removes `stream`. */
  capabilities?: Partial<LlmProviderCapabilities> | undefined;
  /**
   * Whether to keep a copy of every request in `requests`. Default `true`. `false` keeps none
   * (`requests` stays empty): for benchmarks and soak tests of thousands of calls, where the
   * copies would cost a deep clone per call and a heap that grows with every call.
   */
  recordRequests?: boolean | undefined;
}

/** An LlmProvider for tests that answers from a script and records what it was sent. */
export interface MockProvider extends LlmProvider {
  /** Every request received, in order: deep copies, without the signal (none with `recordRequests: false`). */
  readonly requests: LlmRequest[];
  /** Number of calls received (`complete` and `stream`). */
  readonly calls: number;
  /** Forgets recorded requests, rewinds the script and restarts tool call ids at `call_1`. */
  reset(): void;
}

function estimateTokens(chars: number): number {
  return Math.ceil(chars / 4);
}

function blockChars(block: ContentBlock): number {
  switch (block.type) {
    case "text":
    case "thinking":
      return block.text.length;
    case "tool_call":
      return block.name.length + JSON.stringify(block.input).length;
    case "tool_result":
      return block.content.length;
  }
}

function promptChars(request: LlmRequest): number {
  let chars = 0;
  for (const part of request.system) chars += part.text.length;
  for (const message of request.messages) {
    for (const block of message.content) chars += blockChars(block);
  }
  for (const tool of request.tools ?? []) {
    chars += tool.name.length + tool.description.length + JSON.stringify(tool.inputSchema).length;
  }
  return chars;
}

function copyRequest(request: LlmRequest): LlmRequest {
  const { signal: _signal, ...rest } = request;
  return structuredClone(rest);
}

function isFailure(reply: MockReply): reply is MockFailure {
  return typeof reply === "object" && reply !== null && "error" in reply;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timeout);
      reject(signal?.reason);
    };
    const timeout = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * A scripted LLM provider for unit tests: scripted or computed replies, tool
 * calls, thinking, simulated latency and failures. It records every request
 * it receives, estimates token usage deterministically (about four
 * characters per token) and streams text in a few deltas.
 *
 * When the script runs out it throws `REPLAY_EXHAUSTED`.
 *
 * @example
 * ```ts
 * const provider = mockProvider({
 *   replies: [
 *     { toolCalls: [{ name: "get_hours", input: { day: "monday" } }] },
 *     "We open at 7 on Mondays.",
 *     { error: { code: "PROVIDER_FAILED", message: "overloaded", retryable: true } },
 *   ],
 * });
 * const kilo = createKilo({ storage: memoryStorage(), providers: [provider] });
 * await kilo.chat({ botId, userId, message: "When do you open?" });
 * expect(provider.requests[0]?.purpose).toBe("chat");
 * ```
 */
export function mockProvider(options: MockProviderOptions = {}): MockProvider {
  const name = options.name ?? "mock";
  const defaultModel = options.model ?? "mock-1";
  if (options.replies !== undefined && options.respond !== undefined) {
    throw new KiloError(
      "CONFIGURATION_INVALID",
      `mock provider '${name}': pass either replies or respond, not both`,
    );
  }
  const latencyMs = options.latencyMs ?? 0;
  if (!Number.isFinite(latencyMs) || latencyMs < 0) {
    throw new KiloError("CONFIGURATION_INVALID", `mock provider '${name}': latencyMs must be >= 0`);
  }
  const replies = options.replies ?? [];
  const requests: LlmRequest[] = [];
  const recordRequests = options.recordRequests ?? true;
  let calls = 0;
  let toolCallCount = 0;

  async function nextReply(request: LlmRequest, index: number): Promise<MockReply> {
    if (options.respond !== undefined) return options.respond(request, index);
    const reply = replies[index];
    if (reply === undefined) {
      throw new KiloError(
        "REPLAY_EXHAUSTED",
        `mock provider '${name}' has no reply scripted for call #${index + 1} ` +
          `(purpose: ${request.purpose ?? "unspecified"}); ${replies.length} ` +
          `${replies.length === 1 ? "reply was" : "replies were"} scripted`,
        { provider: name },
      );
    }
    return reply;
  }

  function failureOf(reply: MockFailure): Error {
    const { error } = reply;
    if (error instanceof Error) return error;
    return new KiloError(error.code, error.message, {
      provider: name,
      retryable: error.retryable ?? false,
      details: reply.usage === undefined ? undefined : { usage: reply.usage },
    });
  }

  function answer(request: LlmRequest, reply: string | MockAnswer): LlmResponse {
    const scripted: MockAnswer = typeof reply === "string" ? { text: reply } : reply;
    const content: ContentBlock[] = [];
    if (scripted.thinking !== undefined) {
      content.push({ type: "thinking", text: scripted.thinking, signature: "mock-signature" });
    }
    if (scripted.text !== undefined) content.push({ type: "text", text: scripted.text });
    for (const call of scripted.toolCalls ?? []) {
      if (call.id === undefined) toolCallCount += 1;
      content.push({
        type: "tool_call",
        id: call.id ?? `call_${toolCallCount}`,
        name: call.name,
        input: structuredClone(call.input),
      });
    }
    const outputChars = content.reduce((sum, block) => sum + blockChars(block), 0);
    const usage: LlmUsage = {
      inputTokens: estimateTokens(promptChars(request)),
      outputTokens: estimateTokens(outputChars),
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      reasoningTokens: estimateTokens(scripted.thinking?.length ?? 0),
      ...scripted.usage,
    };
    const hasToolCalls = (scripted.toolCalls?.length ?? 0) > 0;
    return {
      content,
      stopReason: scripted.stopReason ?? (hasToolCalls ? "tool_use" : "end_turn"),
      usage,
      model: scripted.model ?? request.model,
    };
  }

  async function complete(request: LlmRequest): Promise<LlmResponse> {
    const index = calls;
    calls += 1;
    if (recordRequests) requests.push(copyRequest(request));
    if (request.signal?.aborted === true) {
      throw new KiloError("ABORTED", `mock provider '${name}': call #${index + 1} was aborted`, {
        provider: name,
        cause: request.signal.reason,
      });
    }
    if (latencyMs > 0) {
      try {
        await sleep(latencyMs, request.signal);
      } catch (reason) {
        throw new KiloError("ABORTED", `mock provider '${name}': call #${index + 1} was aborted`, {
          provider: name,
          cause: reason,
        });
      }
    }
    const reply = await nextReply(request, index);
    if (isFailure(reply)) throw failureOf(reply);
    return answer(request, reply);
  }

  async function* stream(request: LlmRequest): AsyncGenerator<LlmStreamEvent, void, undefined> {
    const response = await complete(request);
    yield* responseEvents(response, 3);
  }

  const capabilities = { thinking: true, streaming: true, promptCaching: false, ...options.capabilities };
  const provider: MockProvider = {
    name,
    defaultModel,
    capabilities,
    requests,
    get calls() {
      return calls;
    },
    complete,
    reset() {
      requests.length = 0;
      calls = 0;
      toolCallCount = 0;
    },
  };
  if (capabilities.streaming) provider.stream = stream;
  return provider;
}
