import { AsyncLocalStorage } from "node:async_hooks";
import type {
  GatewayRequest,
  GatewayResponse,
  GatewayStreamEvent,
  LlmGateway,
} from "../ports/llm-gateway.js";
import type { TurnUsage } from "../ports/orchestrator.js";

/** Sums the LLM usage of every gateway call made while a turn runs, wherever in the pipeline it is made. */
export interface TurnMeter {
  /** Runs `fn` with a fresh usage tally and returns both. */
  run<T>(fn: () => Promise<T>): Promise<{ value: T; usage: TurnUsage }>;
  /** Wraps a gateway so its calls count toward the current turn's tally. */
  wrap(gateway: LlmGateway): LlmGateway;
}

const emptyUsage = (): TurnUsage => ({
  calls: 0,
  promptTokens: 0,
  completionTokens: 0,
  cacheReadTokens: 0,
  cacheWriteTokens: 0,
  costUsd: 0,
});

function add(usage: TurnUsage | undefined, response: GatewayResponse): void {
  if (!usage) return;
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
  const current = new AsyncLocalStorage<TurnUsage>();
  return {
    async run(fn) {
      const usage = emptyUsage();
      const value = await current.run(usage, fn);
      return { value, usage };
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
  };
}
