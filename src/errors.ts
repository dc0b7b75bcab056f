/**
 * The one error type kilo throws at its public seams.
 *
 * Every error carries a stable, UPPER_SNAKE {@link KiloErrorCode} that host
 * code can switch on, a message a developer can act on, the original `cause`
 * when there is one, and optional data fields.
 *
 * @module
 */

/** Stable error codes. New codes may be added; existing ones never change meaning. */
export const KILO_ERROR_CODES = [
  /** Input did not match its schema; nothing was changed. */
  "VALIDATION_FAILED",
  /** The thing named does not exist, or is not visible to the caller (tenancy). */
  "NOT_FOUND",
  /** The caller may not touch the thing named. */
  "FORBIDDEN",
  /** A write clashed with existing data (duplicate name, stale version, unique key). */
  "CONFLICT",
  /** An outbound URL was refused by the SSRF guard. */
  "SSRF_BLOCKED",
  /** Every configured LLM provider failed for this call. */
  "PROVIDER_FAILED",
  /** A provider was reached but refused the request (auth, bad request). */
  "PROVIDER_REJECTED",
  /** No provider is configured for the task type asked for. */
  "PROVIDER_NOT_CONFIGURED",
  /** A storage adapter failed. */
  "STORAGE_FAILED",
  /** A cache adapter failed (the core treats this as a cache miss; hosts see it only when calling the cache directly). */
  "CACHE_FAILED",
  /** A tool call failed or was refused. */
  "TOOL_FAILED",
  /** The tool loop hit its step limit before the model gave a final answer. */
  "TOOL_LOOP_LIMIT",
  /** The kilo instance (or an adapter) was used after `close()`. */
  "CLOSED",
  /** An option passed to a factory is missing or malformed. */
  "CONFIGURATION_INVALID",
  /** The operation was aborted through its AbortSignal. */
  "ABORTED",
  /** A chat channel (Telegram, ...) could not be reached. */
  "CHANNEL_FAILED",
  /** A chat channel was reached but refused the request (bad token, blocked by the user, rate limited). */
  "CHANNEL_REJECTED",
  /** A host-supplied callback (hook, workflow, listener) threw. */
  "HOST_CALLBACK_FAILED",
  /** A workspace file (SYSTEM.md, APPEND_SYSTEM.md, AGENTS.md, a skill in skills/) could not be used; the message names the file. */
  "WORKSPACE_INVALID",
  /**
   * Auto-learning could not research an integration: no search results, no
   * readable documentation, or the model's analysis did not validate. Nothing was created.
   */
  "RESEARCH_FAILED",
  /** A replay file has no recorded reply for the request made. */
  "REPLAY_EXHAUSTED",
  /** Something kilo did not expect; a bug report is welcome. */
  "INTERNAL",
] as const;

/** A stable error code; see {@link KILO_ERROR_CODES}. */
export type KiloErrorCode = (typeof KILO_ERROR_CODES)[number];

/** Optional data carried by a {@link KiloError}. */
export interface KiloErrorOptions {
  /** The underlying error, kept for logs; never shown to end users. */
  cause?: unknown;
  /** HTTP status that fits this error, when the error crosses HTTP. */
  status?: number;
  /** Whether retrying the same call may succeed. */
  retryable?: boolean;
  /** The LLM provider involved, by name. */
  provider?: string;
  /** The adapter involved, by name (e.g. `memory`, `postgres`). */
  adapter?: string;
  /** Machine-readable details, e.g. the zod issues of a failed validation. */
  details?: unknown;
}

const MARKER = Symbol.for("kilo.error");

const DEFAULT_STATUS: Partial<Record<KiloErrorCode, number>> = {
  VALIDATION_FAILED: 400,
  NOT_FOUND: 404,
  FORBIDDEN: 403,
  CONFLICT: 409,
  SSRF_BLOCKED: 403,
  PROVIDER_FAILED: 502,
  PROVIDER_REJECTED: 502,
  PROVIDER_NOT_CONFIGURED: 500,
  STORAGE_FAILED: 503,
  CACHE_FAILED: 503,
  TOOL_FAILED: 502,
  TOOL_LOOP_LIMIT: 500,
  RESEARCH_FAILED: 502,
  CLOSED: 503,
  CONFIGURATION_INVALID: 500,
  ABORTED: 499,
  CHANNEL_FAILED: 502,
  CHANNEL_REJECTED: 502,
  HOST_CALLBACK_FAILED: 500,
  REPLAY_EXHAUSTED: 500,
  INTERNAL: 500,
};

/**
 * kilo's error. Check with {@link KiloError.is} rather than `instanceof`, so
 * two copies of the package (ESM and CJS, or two versions) still agree.
 *
 * @example
 * ```ts
 * try {
 *   await kilo.bots.get("missing");
 * } catch (error) {
 *   if (KiloError.is(error, "NOT_FOUND")) return res.status(404).end();
 *   throw error;
 * }
 * ```
 */
export class KiloError extends Error {
  /** Stable error code. */
  readonly code: KiloErrorCode;
  /** HTTP status that fits this error. */
  readonly status: number;
  /** Whether retrying the same call may succeed. */
  readonly retryable: boolean;
  /** The LLM provider involved, if any. */
  readonly provider: string | undefined;
  /** The adapter involved, if any. */
  readonly adapter: string | undefined;
  /** Machine-readable details. */
  readonly details: unknown;
  /** @internal */
  readonly [MARKER] = true;

  constructor(code: KiloErrorCode, message: string, options: KiloErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "KiloError";
    this.code = code;
    this.status = options.status ?? DEFAULT_STATUS[code] ?? 500;
    this.retryable = options.retryable ?? false;
    this.provider = options.provider;
    this.adapter = options.adapter;
    this.details = options.details;
  }

  /** True when `value` is a KiloError (from any copy of kilo), optionally with the given code. */
  static is(value: unknown, code?: KiloErrorCode): value is KiloError {
    if (typeof value !== "object" || value === null) return false;
    if ((value as Record<symbol, unknown>)[MARKER] !== true) return false;
    return code === undefined || (value as KiloError).code === code;
  }

  /** A plain object safe to send to an end user: code and message, nothing else. */
  toJSON(): { code: KiloErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/**
 * Wraps anything thrown by an adapter into a KiloError naming the adapter.
 * A KiloError passes through unchanged.
 */
export function toKiloError(
  error: unknown,
  code: KiloErrorCode,
  message: string,
  options: Omit<KiloErrorOptions, "cause"> = {},
): KiloError {
  if (KiloError.is(error)) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return new KiloError(code, `${message}: ${reason}`, { ...options, cause: error });
}
