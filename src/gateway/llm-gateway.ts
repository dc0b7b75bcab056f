import { TASK_TYPES, type TaskType } from "../domain/skill.js";
import type { UsageRecord } from "../domain/usage.js";
import { KiloError } from "../errors.js";
import type { Clock, IdGenerator } from "../ports/clock.js";
import type {
  GatewayAttempt,
  GatewayRequest,
  GatewayResponse,
  GatewayStreamEvent,
  LlmGateway,
} from "../ports/llm-gateway.js";
import type { LlmProvider, LlmRequest, LlmResponse, LlmUsage } from "../ports/llm-provider.js";
import type { Logger } from "../ports/logger.js";
import type { UsageRepository } from "../ports/storage.js";
import { responseEvents } from "./content.js";
import { findPrice, mergePrices, type PriceTable, priceOf } from "./pricing.js";
import { resolveTaskSettings, type TaskSettings, type TaskSettingsOverrides } from "./task-routing.js";

/** One entry of a task type's route: a provider by name and, optionally, the model to ask it for. */
export interface GatewayRoute {
  provider: string;
  /** Defaults to the provider's `defaultModel`. */
  model?: string | undefined;
}

/** Routes per task type; each list is tried in order until one entry answers. */
export type GatewayRoutes = Partial<Record<TaskType, GatewayRoute[]>>;

/** What the gateway reports after each attempt that produced a usage record. */
export interface LlmCallEvent {
  usage: UsageRecord;
  /** 1-based number of the attempt within the gateway call (retries and fallbacks count). */
  attempt: number;
  /** True when the attempt went to a route entry other than the first. */
  fallback: boolean;
}

/** Where usage records go: a UsageRepository (`storage.usage`) or a function. */
export type UsageSink = UsageRepository | ((record: UsageRecord) => Promise<unknown>);

/** Options of {@link createLlmGateway}. */
export interface LlmGatewayOptions {
  /** The providers; their order is the default fallback order. Names must be unique. */
  providers: LlmProvider[];
  /**
   * Which providers (and models) serve each task type, in fallback order. A
   * task type left out tries every provider in order with its default model;
   * an empty list leaves the task type unconfigured.
   */
  routes?: GatewayRoutes | undefined;
  /** Thinking budgets and max tokens per task type, merged over `DEFAULT_TASK_SETTINGS`. */
  taskSettings?: TaskSettingsOverrides | undefined;
  /** Prices per model, merged over `DEFAULT_PRICES`. */
  prices?: PriceTable | undefined;
  /** Receives a UsageRecord for every successful attempt and every failed one that used tokens. */
  usage: UsageSink;
  clock: Clock;
  ids: IdGenerator;
  logger: Logger;
  /** Called after each usage record is written; the core emits the `llm-call` event from it. */
  onCall?: ((event: LlmCallEvent) => void) | undefined;
  /** Extra tries of the same route entry after a retryable error, before falling back. Default 1. */
  retries?: number | undefined;
  /** Wait before the first retry, doubled for each further one. Default 250 ms. */
  retryDelayMs?: number | undefined;
  /** Monotonic milliseconds used to measure latency. Default `performance.now`. */
  timer?: (() => number) | undefined;
}

interface ResolvedRoute {
  provider: LlmProvider;
  model: string;
}

/** What one gateway call has seen so far. */
interface CallState {
  request: GatewayRequest;
  settings: TaskSettings;
  startedAt: number;
  attempts: GatewayAttempt[];
  lastError: KiloError | undefined;
}

const EMPTY_USAGE: LlmUsage = {
  inputTokens: 0,
  outputTokens: 0,
  cacheReadTokens: 0,
  cacheWriteTokens: 0,
  reasoningTokens: 0,
};

function tokenCount(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? Math.round(value) : 0;
}

// Providers are host code: counts are clamped so one odd value cannot make a usage record invalid.
function normalizeUsage(value: unknown): LlmUsage {
  if (typeof value !== "object" || value === null) return { ...EMPTY_USAGE };
  const usage = value as Record<string, unknown>;
  return {
    inputTokens: tokenCount(usage.inputTokens),
    outputTokens: tokenCount(usage.outputTokens),
    cacheReadTokens: tokenCount(usage.cacheReadTokens),
    cacheWriteTokens: tokenCount(usage.cacheWriteTokens),
    reasoningTokens: tokenCount(usage.reasoningTokens),
  };
}

/** Tokens a failed call still used, when the provider reported them as `details.usage`. */
function carriedUsage(error: KiloError): LlmUsage | null {
  const details = error.details;
  if (typeof details !== "object" || details === null || !("usage" in details)) return null;
  const usage = normalizeUsage((details as { usage: unknown }).usage);
  const total = usage.inputTokens + usage.outputTokens + usage.cacheReadTokens + usage.cacheWriteTokens;
  return total > 0 ? usage : null;
}

function asProviderError(error: unknown, provider: string): KiloError {
  if (KiloError.is(error)) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return new KiloError("PROVIDER_FAILED", `LLM provider '${provider}' failed: ${reason}`, {
    cause: error,
    provider,
  });
}

function describe(request: GatewayRequest): string {
  return `task type '${request.taskType}', purpose '${request.purpose}'`;
}

function abortedError(request: GatewayRequest, cause?: unknown): KiloError {
  return new KiloError("ABORTED", `LLM call aborted (${describe(request)})`, {
    cause: cause ?? request.signal?.reason,
  });
}

function throwIfAborted(request: GatewayRequest): void {
  if (request.signal?.aborted === true) throw abortedError(request);
}

// Resolves early when the signal aborts; the caller checks the signal afterwards.
function delay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (ms <= 0 || signal?.aborted === true) return Promise.resolve();
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clearTimeout(timeout);
      resolve();
    };
    const timeout = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** "a (m): CODE; b (m): CODE x2" — consecutive retries of one entry are folded. */
function summarizeAttempts(attempts: readonly GatewayAttempt[]): string {
  const parts: Array<{ label: string; count: number }> = [];
  for (const attempt of attempts) {
    const label = `${attempt.provider} (${attempt.model}): ${attempt.errorCode ?? "OK"}`;
    const last = parts.at(-1);
    if (last !== undefined && last.label === label) last.count += 1;
    else parts.push({ label, count: 1 });
  }
  return parts.map((part) => (part.count > 1 ? `${part.label} x${part.count}` : part.label)).join("; ");
}

const NEXT_STEP = {
  retry: "retrying",
  fallback: "falling back to the next provider",
  stop: "not falling back",
} as const;

function nextStep(willRetry: boolean, routeIndex: number, routeCount: number): keyof typeof NEXT_STEP {
  if (willRetry) return "retry";
  return routeIndex + 1 < routeCount ? "fallback" : "stop";
}

function validateProviders(providers: unknown): LlmProvider[] {
  if (!Array.isArray(providers)) {
    throw new KiloError("CONFIGURATION_INVALID", "providers must be an array of LLM providers");
  }
  const names = new Set<string>();
  providers.forEach((provider: Partial<LlmProvider> | null, index) => {
    const label = `providers[${index}]`;
    if (typeof provider !== "object" || provider === null) {
      throw new KiloError("CONFIGURATION_INVALID", `${label} is not an LLM provider object`);
    }
    if (typeof provider.name !== "string" || provider.name === "") {
      throw new KiloError("CONFIGURATION_INVALID", `${label} has no name`);
    }
    const named = `${label} ('${provider.name}')`;
    if (typeof provider.defaultModel !== "string" || provider.defaultModel === "") {
      throw new KiloError("CONFIGURATION_INVALID", `${named} has no defaultModel`, {
        provider: provider.name,
      });
    }
    if (typeof provider.complete !== "function") {
      throw new KiloError("CONFIGURATION_INVALID", `${named} has no complete() method`, {
        provider: provider.name,
      });
    }
    if (typeof provider.capabilities !== "object" || provider.capabilities === null) {
      throw new KiloError("CONFIGURATION_INVALID", `${named} has no capabilities`, {
        provider: provider.name,
      });
    }
    if (names.has(provider.name)) {
      throw new KiloError(
        "CONFIGURATION_INVALID",
        `Two LLM providers are named '${provider.name}'; provider names must be unique`,
        { provider: provider.name },
      );
    }
    names.add(provider.name);
  });
  return providers as LlmProvider[];
}

function resolveRoutes(
  providers: readonly LlmProvider[],
  routes: GatewayRoutes,
): Map<TaskType, ResolvedRoute[]> {
  const byName = new Map(providers.map((provider) => [provider.name, provider]));
  const known = [...byName.keys()].map((name) => `'${name}'`).join(", ") || "none";
  for (const key of Object.keys(routes)) {
    if (!(TASK_TYPES as readonly string[]).includes(key)) {
      throw new KiloError(
        "CONFIGURATION_INVALID",
        `routes names unknown task type '${key}'; expected one of ${TASK_TYPES.join(", ")}`,
      );
    }
  }
  const resolved = new Map<TaskType, ResolvedRoute[]>();
  for (const taskType of TASK_TYPES) {
    const entries = routes[taskType];
    if (entries === undefined) {
      resolved.set(
        taskType,
        providers.map((provider) => ({ provider, model: provider.defaultModel })),
      );
      continue;
    }
    if (!Array.isArray(entries)) {
      throw new KiloError("CONFIGURATION_INVALID", `routes.${taskType} must be an array of routes`);
    }
    resolved.set(
      taskType,
      entries.map((entry: GatewayRoute, index) => {
        const provider = byName.get(entry?.provider);
        if (provider === undefined) {
          throw new KiloError(
            "CONFIGURATION_INVALID",
            `routes.${taskType}[${index}] names unknown provider '${String(entry?.provider)}'; ` +
              `configured providers: ${known}`,
            { provider: String(entry?.provider) },
          );
        }
        if (entry.model !== undefined && (typeof entry.model !== "string" || entry.model === "")) {
          throw new KiloError(
            "CONFIGURATION_INVALID",
            `routes.${taskType}[${index}].model must be a non-empty string`,
            { provider: provider.name },
          );
        }
        return { provider, model: entry.model ?? provider.defaultModel };
      }),
    );
  }
  return resolved;
}

function nonNegativeInteger(value: number | undefined, fallback: number, option: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 0) {
    throw new KiloError("CONFIGURATION_INVALID", `${option} must be a non-negative integer, got ${value}`);
  }
  return value;
}

/**
 * Creates the default {@link LlmGateway}: routes each call by task type,
 * applies the task type's thinking budget and max tokens, retries retryable
 * failures, falls back along the route, prices the call and records usage.
 *
 * - Thinking is sent only when the task type has a budget, the request does
 *   not say `thinking: false`, the provider has the `thinking` capability
 *   (others silently go without), and the budget is below the call's max
 *   tokens (a smaller `maxTokens` override turns thinking off for that call).
 * - Any provider failure falls back to the next route entry; retryable ones
 *   are first retried `retries` times. When every entry fails the gateway
 *   throws `PROVIDER_FAILED` naming each provider and its error code. An
 *   aborted signal throws `ABORTED` at once, without fallback.
 * - A usage record is written for each success and for each failure that
 *   reported usage (`KiloError.details.usage`). A usage sink that throws is
 *   logged at `error` and does not fail the call: the answer was already paid for.
 * - `stream()` streams from providers that have `stream` and the `streaming`
 *   capability; for others it calls `complete` and yields the text as one
 *   delta, then the tool calls. It falls back only while nothing has been
 *   yielded; a failure after the first event throws `PROVIDER_FAILED`. Its
 *   `done` event carries the full {@link GatewayResponse}.
 *
 * @throws KiloError `CONFIGURATION_INVALID` for duplicate provider names,
 *   routes naming unknown providers or task types, or bad settings.
 *
 * @example
 * ```ts
 * const gateway = createLlmGateway({
 *   providers: [anthropicProvider(), openaiProvider()],
 *   routes: { simple_qa: [{ provider: "anthropic", model: "claude-haiku-4-5" }, { provider: "openai" }] },
 *   usage: storage.usage,
 *   clock, ids, logger,
 * });
 * const response = await gateway.complete({ taskType: "simple_qa", purpose: "chat", system: [], messages });
 * ```
 */
export function createLlmGateway(options: LlmGatewayOptions): LlmGateway {
  const providers = validateProviders(options.providers);
  const routes = resolveRoutes(providers, options.routes ?? {});
  const settingsByTask = resolveTaskSettings(options.taskSettings);
  const prices = mergePrices(options.prices);
  const retries = nonNegativeInteger(options.retries, 1, "retries");
  const retryDelayMs = nonNegativeInteger(options.retryDelayMs, 250, "retryDelayMs");
  const timer = options.timer ?? (() => performance.now());
  const { clock, ids, logger } = options;
  const sink = options.usage;
  const writeUsage: (record: UsageRecord) => Promise<unknown> =
    typeof sink === "function" ? sink : (record) => sink.record(record);
  const unpricedModels = new Set<string>();

  function routesFor(request: GatewayRequest): ResolvedRoute[] {
    if (!(TASK_TYPES as readonly string[]).includes(request.taskType)) {
      throw new KiloError(
        "VALIDATION_FAILED",
        `Unknown task type '${String(request.taskType)}'; expected one of ${TASK_TYPES.join(", ")}`,
      );
    }
    const found = routes.get(request.taskType) ?? [];
    if (found.length === 0) {
      throw new KiloError(
        "PROVIDER_NOT_CONFIGURED",
        `No LLM provider is configured for task type '${request.taskType}'. ` +
          "Pass providers (and, optionally, routes) when creating kilo.",
      );
    }
    return found;
  }

  function startCall(request: GatewayRequest): CallState {
    return {
      request,
      settings: settingsByTask[request.taskType],
      startedAt: timer(),
      attempts: [],
      lastError: undefined,
    };
  }

  function buildRequest(route: ResolvedRoute, state: CallState): LlmRequest {
    const { request, settings } = state;
    const maxTokens = request.maxTokens ?? settings.maxTokens;
    const llmRequest: LlmRequest = {
      model: route.model,
      system: request.system,
      messages: request.messages,
      maxTokens,
      purpose: request.purpose,
    };
    if (request.tools !== undefined) llmRequest.tools = request.tools;
    if (request.providerOptions !== undefined) llmRequest.providerOptions = request.providerOptions;
    const budget = settings.thinkingBudget;
    if (
      budget !== null &&
      request.thinking !== false &&
      (route.provider.capabilities.thinking || route.provider.capabilities.reasoning === true) &&
      budget < maxTokens
    ) {
      llmRequest.thinking = { budgetTokens: budget };
    }
    if (request.signal !== undefined) llmRequest.signal = request.signal;
    return llmRequest;
  }

  function elapsed(since: number): number {
    return Math.max(0, timer() - since);
  }

  function costOf(usage: LlmUsage, answeredModel: string, requestedModel: string, provider: string): number {
    // The answering model is usually a dated snapshot of the requested one; either may be the one priced.
    const model = findPrice(answeredModel, prices) !== undefined ? answeredModel : requestedModel;
    if (findPrice(model, prices) === undefined) {
      if (!unpricedModels.has(model)) {
        unpricedModels.add(model);
        logger.warn(
          { provider, model },
          "No price is known for this model; its calls are recorded at cost 0. Pass `prices` to set one.",
        );
      }
      return 0;
    }
    return priceOf(usage, model, prices);
  }

  async function record(
    state: CallState,
    fields: Pick<UsageRecord, "provider" | "model" | "costUsd" | "latencyMs" | "success" | "errorCode">,
    usage: LlmUsage,
    fallback: boolean,
  ): Promise<UsageRecord> {
    const { request } = state;
    const usageRecord: UsageRecord = {
      id: ids.next("usage"),
      botId: request.botId ?? null,
      userId: request.userId ?? null,
      conversationId: request.conversationId ?? null,
      taskType: request.taskType,
      purpose: request.purpose,
      promptTokens: usage.inputTokens,
      completionTokens: usage.outputTokens,
      cacheReadTokens: usage.cacheReadTokens,
      cacheWriteTokens: usage.cacheWriteTokens,
      reasoningTokens: usage.reasoningTokens,
      createdAt: clock.now(),
      ...fields,
    };
    try {
      await writeUsage(usageRecord);
    } catch (error) {
      logger.error(
        {
          provider: fields.provider,
          model: fields.model,
          code: KiloError.is(error) ? error.code : "STORAGE_FAILED",
          error: error instanceof Error ? error.message : String(error),
        },
        "Could not record LLM usage",
      );
    }
    if (options.onCall !== undefined) {
      try {
        options.onCall({ usage: usageRecord, attempt: state.attempts.length, fallback });
      } catch (error) {
        logger.error(
          { error: error instanceof Error ? error.message : String(error) },
          "The gateway's onCall callback threw",
        );
      }
    }
    return usageRecord;
  }

  async function succeed(
    route: ResolvedRoute,
    routeIndex: number,
    state: CallState,
    llmRequest: LlmRequest,
    response: LlmResponse,
    latencyMs: number,
  ): Promise<GatewayResponse> {
    const provider = route.provider.name;
    state.attempts.push({ provider, model: llmRequest.model, ok: true, errorCode: null, latencyMs });
    const usage = normalizeUsage(response.usage);
    const answeredModel = typeof response.model === "string" && response.model !== "" ? response.model : "";
    const model = answeredModel || llmRequest.model;
    const costUsd = costOf(usage, model, llmRequest.model, provider);
    await record(
      state,
      { provider, model, costUsd, latencyMs, success: true, errorCode: null },
      usage,
      routeIndex > 0,
    );
    return {
      ...response,
      model,
      usage,
      provider,
      taskType: state.request.taskType,
      costUsd,
      latencyMs: elapsed(state.startedAt),
      attempts: [...state.attempts],
    };
  }

  async function fail(
    route: ResolvedRoute,
    routeIndex: number,
    state: CallState,
    llmRequest: LlmRequest,
    failure: KiloError,
    latencyMs: number,
    next: "retry" | "fallback" | "stop",
  ): Promise<void> {
    const provider = route.provider.name;
    const { request } = state;
    state.attempts.push({ provider, model: llmRequest.model, ok: false, errorCode: failure.code, latencyMs });
    state.lastError = failure;
    // The error message is the provider's description of the failure; prompts and replies never reach it.
    logger.warn(
      {
        provider,
        model: llmRequest.model,
        code: failure.code,
        status: failure.status,
        retryable: failure.retryable,
        taskType: request.taskType,
        purpose: request.purpose,
        attempt: state.attempts.length,
        error: failure.message,
      },
      `LLM call failed; ${NEXT_STEP[next]}`,
    );
    const usage = carriedUsage(failure);
    if (usage !== null) {
      const costUsd = costOf(usage, llmRequest.model, llmRequest.model, provider);
      await record(
        state,
        { provider, model: llmRequest.model, costUsd, latencyMs, success: false, errorCode: failure.code },
        usage,
        routeIndex > 0,
      );
    }
  }

  function allFailed(state: CallState): KiloError {
    const last = state.lastError;
    return new KiloError(
      "PROVIDER_FAILED",
      `Every LLM provider failed (${describe(state.request)}): ${summarizeAttempts(state.attempts)}`,
      {
        cause: last,
        retryable: last?.retryable ?? false,
        provider: last?.provider ?? state.attempts.at(-1)?.provider,
        details: { attempts: state.attempts },
      },
    );
  }

  /** Tries one route entry (with retries) through `complete`; `undefined` when it failed. */
  async function completeRoute(
    route: ResolvedRoute,
    routeIndex: number,
    routeCount: number,
    state: CallState,
  ): Promise<GatewayResponse | undefined> {
    for (let retry = 0; ; retry++) {
      throwIfAborted(state.request);
      const llmRequest = buildRequest(route, state);
      const started = timer();
      let response: LlmResponse;
      try {
        response = await route.provider.complete(llmRequest);
      } catch (error) {
        const latencyMs = elapsed(started);
        if (state.request.signal?.aborted === true) throw abortedError(state.request, error);
        const failure = asProviderError(error, route.provider.name);
        const willRetry = failure.retryable && retry < retries;
        await fail(
          route,
          routeIndex,
          state,
          llmRequest,
          failure,
          latencyMs,
          nextStep(willRetry, routeIndex, routeCount),
        );
        if (!willRetry) return undefined;
        await delay(retryDelayMs * 2 ** retry, state.request.signal);
        continue;
      }
      return succeed(route, routeIndex, state, llmRequest, response, elapsed(started));
    }
  }

  async function complete(request: GatewayRequest): Promise<GatewayResponse> {
    const candidates = routesFor(request);
    const state = startCall(request);
    for (const [index, route] of candidates.entries()) {
      const response = await completeRoute(route, index, candidates.length, state);
      if (response !== undefined) return response;
    }
    throw allFailed(state);
  }

  async function* stream(request: GatewayRequest): AsyncGenerator<GatewayStreamEvent, void, undefined> {
    const candidates = routesFor(request);
    const state = startCall(request);
    for (const [index, route] of candidates.entries()) {
      const streamOf = route.provider.capabilities.streaming
        ? route.provider.stream?.bind(route.provider)
        : undefined;
      if (streamOf === undefined) {
        const response = await completeRoute(route, index, candidates.length, state);
        if (response === undefined) continue;
        yield* responseEvents(response) as GatewayStreamEvent[];
        return;
      }
      for (let retry = 0; ; retry++) {
        throwIfAborted(request);
        const llmRequest = buildRequest(route, state);
        const started = timer();
        let yielded = false;
        let final: LlmResponse | undefined;
        try {
          for await (const event of streamOf(llmRequest)) {
            if (event.type === "done") {
              final = event.response;
              break;
            }
            yielded = true;
            yield event;
          }
          if (final === undefined) {
            throw new KiloError(
              "PROVIDER_FAILED",
              `LLM provider '${route.provider.name}' ended its stream without a done event`,
              { provider: route.provider.name, retryable: true },
            );
          }
        } catch (error) {
          const latencyMs = elapsed(started);
          if (request.signal?.aborted === true) throw abortedError(request, error);
          const failure = asProviderError(error, route.provider.name);
          if (yielded) {
            // Output already reached the caller; another provider's answer would be spliced onto it.
            await fail(route, index, state, llmRequest, failure, latencyMs, "stop");
            throw new KiloError(
              "PROVIDER_FAILED",
              `LLM provider '${route.provider.name}' failed mid-stream after output was sent ` +
                `(${describe(request)}): ${failure.code}`,
              {
                cause: failure,
                retryable: failure.retryable,
                provider: route.provider.name,
                details: { attempts: state.attempts },
              },
            );
          }
          const willRetry = failure.retryable && retry < retries;
          const next = nextStep(willRetry, index, candidates.length);
          await fail(route, index, state, llmRequest, failure, latencyMs, next);
          if (!willRetry) break;
          await delay(retryDelayMs * 2 ** retry, request.signal);
          continue;
        }
        const response = await succeed(route, index, state, llmRequest, final, elapsed(started));
        yield { type: "done", response };
        return;
      }
    }
    throw allFailed(state);
  }

  return { complete, stream };
}
