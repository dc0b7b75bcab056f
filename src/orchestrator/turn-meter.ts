import { AsyncLocalStorage } from "node:async_hooks";
import type { UsageRecord } from "../domain/usage.js";
import type {
  GatewayRequest,
  GatewayResponse,
  GatewayStreamEvent,
  LlmGateway,
} from "../ports/llm-gateway.js";
import type { TurnUsage } from "../ports/orchestrator.js";

/** What a turn's LLM calls added up to, and the usage records waiting to be stored with the turn. */
export interface TurnTally {
  usage: TurnUsage;
  /** Usage records held back so they are stored together with the reply (one write on SQL storage). */
  records: UsageRecord[];
}

/**
 * Follows one turn's LLM calls wherever in the pipeline they are made: sums
 * their cost and holds their usage records until the turn is stored.
 */
export interface TurnMeter {
  /** Runs `fn` with a fresh tally; when `fn` throws, `onError` gets the tally before the error goes on. */
  run<T>(
    fn: () => Promise<T>,
    onError?: (tally: TurnTally) => Promise<void>,
  ): Promise<{ value: T; tally: TurnTally }>;
  /** Wraps a gateway so its calls count toward the current turn's tally. */
  wrap(gateway: LlmGateway): LlmGateway;
  /**
   * Takes a usage record for the current turn. Returns `false` outside a turn,
   * where the caller stores the record itself.
   */
  hold(record: UsageRecord): boolean;
}

const emptyUsage = (): TurnUsage => ({
  calls: 0,
  promptTokens: 0,
  completionTokens: 0,
  cacheReadTokens: 0,
  cacheWriteTokens: 0,
  costUsd: 0,
});

function add(tally: TurnTally | undefined, response: GatewayResponse): void {
  if (!tally) return;
  const usage = tally.usage;
  usage.calls += 1;
  usage.promptTokens +=
    response.usage.inputTokens + response.usage.cacheReadTokens + response.usage.cacheWriteTokens;
  usage.completionTokens += response.usage.outputTokens;
  usage.cacheReadTokens += response.usage.cacheReadTokens;
  usage.cacheWriteTokens += response.usage.cacheWriteTokens;
  usage.costUsd += response.costUsd;
}

/**
 * A TurnMeter on AsyncLocalStorage: the matcher, proposer and extractor are
 * built once with the wrapped gateway, and each call still lands in the tally
 * of the turn that made it, also when turns run concurrently.
 */
export function createTurnMeter(): TurnMeter {
  const current = new AsyncLocalStorage<TurnTally>();
  return {
    async run(fn, onError) {
      const tally: TurnTally = { usage: emptyUsage(), records: [] };
      try {
        const value = await current.run(tally, fn);
        return { value, tally };
      } catch (error) {
        await onError?.(tally);
        throw error;
      }
    },
    wrap(gateway) {
      return {
        async complete(request: GatewayRequest) {
          const response = await gateway.complete(request);
          add(current.getStore(), response);
          return response;
        },
        async *stream(request: GatewayRequest): AsyncIterable<GatewayStreamEvent> {
          for await (const event of gateway.stream(request)) {
            if (event.type === "done") add(current.getStore(), event.response);
            yield event;
          }
        },
      };
    },
    hold(record) {
      const tally = current.getStore();
      if (!tally) return false;
      tally.records.push(record);
      return true;
    },
  };
}
