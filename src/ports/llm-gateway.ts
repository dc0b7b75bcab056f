import type { TaskType } from "../domain/skill.js";
import type {
  LlmMessage,
  LlmResponse,
  LlmStreamEvent,
  LlmToolDefinition,
  SystemBlock,
} from "./llm-provider.js";

/** One call through the gateway. */
export interface GatewayRequest {
  taskType: TaskType;
  /** What the call is for (`chat`, `classify`, `propose-skill`, `extract-memory`, ...). */
  purpose: string;
  system: SystemBlock[];
  messages: LlmMessage[];
  tools?: LlmToolDefinition[] | undefined;
  /** Overrides the task type's max tokens. */
  maxTokens?: number | undefined;
  /** `false` turns thinking off for this call even when the task type has a budget. */
  thinking?: boolean | undefined;
  /** Provider-specific settings, keyed by provider name; each provider reads its own. */
  providerOptions?: Record<string, Record<string, unknown>> | undefined;
  /** Attribution for usage records. */
  botId?: string | null | undefined;
  userId?: string | null | undefined;
  conversationId?: string | null | undefined;
  signal?: AbortSignal | undefined;
}

/** One provider attempt of a gateway call. */
export interface GatewayAttempt {
  provider: string;
  model: string;
  ok: boolean;
  errorCode: string | null;
  latencyMs: number;
}

/** The response, with what the gateway adds. */
export interface GatewayResponse extends LlmResponse {
  provider: string;
  taskType: TaskType;
  costUsd: number;
  latencyMs: number;
  /** Every provider tried, in order; the last one answered. */
  attempts: GatewayAttempt[];
}

/** A streamed event; the final `done` event carries the priced {@link GatewayResponse}. */
export type GatewayStreamEvent =
  | Exclude<LlmStreamEvent, { type: "done" }>
  | { type: "done"; response: GatewayResponse };

/**
 * The LlmGateway port: routes a call to a provider and model by task type,
 * applies the task type's thinking budget, falls back to the next provider on
 * failure, prices the call and records a UsageRecord for every successful
 * attempt and for every failed attempt that reported token usage.
 */
export interface LlmGateway {
  /**
   * Runs one call to completion, trying providers in order until one answers. When all fail it
   * rejects with `PROVIDER_FAILED` naming each provider; an aborted `signal` rejects with `ABORTED` at once.
   */
  complete(request: GatewayRequest): Promise<GatewayResponse>;
  /** Streams one call. Falls back to `complete` for providers that cannot stream. */
  stream(request: GatewayRequest): AsyncIterable<GatewayStreamEvent>;
}
