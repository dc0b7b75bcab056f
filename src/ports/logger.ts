/** Structured fields attached to a log line (correlation ids, durations, ...). */
export type LogFields = Record<string, unknown>;

/**
 * The Logger port, a subset of pino's API: `logger.info({ botId }, "message")`.
 * A pino logger can be passed as is.
 *
 * kilo never logs secrets, prompts or message text at `info` or above.
 *
 * @example
 * ```ts
 * import pino from "pino";
 * const kilo = createKilo({ storage, providers, logger: pino() });
 * ```
 */
export interface Logger {
  /** Detail for diagnosing a problem (matcher scores, cache hits); off in production by default. */
  debug(fields: LogFields, message?: string): void;
  /** Normal operation worth keeping (a turn completed, a migration ran). */
  info(fields: LogFields, message?: string): void;
  /** Something degraded but handled (a provider fell back, a retry). */
  warn(fields: LogFields, message?: string): void;
  /** A failure the host should look at; `fields.error` carries the error's message when there is one. */
  error(fields: LogFields, message?: string): void;
  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger;
}

/** Log levels in order of severity. */
export const LOG_LEVELS = ["debug", "info", "warn", "error", "silent"] as const;
/** A log level. */
export type LogLevel = (typeof LOG_LEVELS)[number];
