import { KiloError } from "../errors.js";
import type { LlmUsage } from "../ports/llm-provider.js";

/** What a provider adapter knows about a failed call. */
export interface ProviderFailure {
  /** The provider's name (`anthropic`, `openai`, ...). */
  provider: string;
  /** HTTP status, when the provider answered. */
  status?: number | undefined;
  /** The provider's own error type or code (`overloaded_error`, `rate_limit_exceeded`, ...). */
  type?: string | undefined;
  /** The provider's message, without request headers or credentials. */
  message: string;
  /** True when the request never got an answer (connection refused or reset, DNS, timeout). */
  unreachable?: boolean | undefined;
  /** True when the call timed out. */
  timeout?: boolean | undefined;
  /** Seconds the provider asked to wait (`retry-after`). */
  retryAfterSeconds?: number | undefined;
  /** Tokens the failed call consumed, when the provider reported them. */
  usage?: LlmUsage | undefined;
  cause?: unknown;
}

/**
 * Maps a provider failure to the KiloError the gateway understands, with a
 * message that says which provider failed and what to do:
 *
 * - 429 / rate limits, 529 / overloaded, 5xx, timeouts, unreachable hosts and
 *   malformed or truncated responses: `PROVIDER_FAILED`, `retryable: true`
 *   (the gateway retries and then falls back to the next provider);
 * - 400, 401, 403, 404, 413, 422: `PROVIDER_REJECTED`, not retryable (the
 *   same request would fail again).
 *
 * `details.usage` carries consumed tokens so the gateway still records them.
 */
export function providerError(failure: ProviderFailure): KiloError {
  const { provider, status } = failure;
  const details = {
    status: status ?? null,
    type: failure.type ?? null,
    retryAfterSeconds: failure.retryAfterSeconds ?? null,
    ...(failure.usage ? { usage: failure.usage } : {}),
  };
  const common = { provider, cause: failure.cause, details };
  const what = failure.type ? `${failure.type}: ${failure.message}` : failure.message;
  if (failure.timeout) {
    return new KiloError(
      "PROVIDER_FAILED",
      `${provider} timed out (${what}); kilo retries, then falls back to the next provider`,
      {
        ...common,
        retryable: true,
        status: 504,
      },
    );
  }
  if (failure.unreachable || status === undefined) {
    return new KiloError(
      "PROVIDER_FAILED",
      `${provider} could not be reached (${what}); check the network or baseURL`,
      {
        ...common,
        retryable: true,
        status: 502,
      },
    );
  }
  if (status === 429) {
    const wait =
      failure.retryAfterSeconds === undefined ? "" : ` (retry after ${failure.retryAfterSeconds}s)`;
    return new KiloError("PROVIDER_FAILED", `${provider} rate-limited the request${wait}: ${what}`, {
      ...common,
      retryable: true,
      status: 429,
    });
  }
  if (status === 529 || status >= 500) {
    return new KiloError(
      "PROVIDER_FAILED",
      `${provider} is unavailable or overloaded (HTTP ${status}): ${what}`,
      {
        ...common,
        retryable: true,
        status: 502,
      },
    );
  }
  if (status === 401 || status === 403) {
    return new KiloError(
      "PROVIDER_REJECTED",
      `${provider} refused the credentials (HTTP ${status}): ${what}. Check the API key option or environment variable.`,
      { ...common, retryable: false, status: 502 },
    );
  }
  return new KiloError("PROVIDER_REJECTED", `${provider} rejected the request (HTTP ${status}): ${what}`, {
    ...common,
    retryable: false,
    status: 502,
  });
}

/** A response the provider sent that kilo cannot read (truncated stream, missing fields): retryable. */
export function malformedResponse(provider: string, problem: string, cause?: unknown): KiloError {
  return new KiloError("PROVIDER_FAILED", `${provider} sent a malformed response: ${problem}`, {
    provider,
    cause,
    retryable: true,
    status: 502,
  });
}
