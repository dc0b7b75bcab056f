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
  debug(fields: LogFields, message?: string): void;
  info(fields: LogFields, message?: string): void;
  warn(fields: LogFields, message?: string): void;
  error(fields: LogFields, message?: string): void;
  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger;
}

/** Log levels in order of severity. */
export const LOG_LEVELS = ["debug", "info", "warn", "error", "silent"] as const;
/** A log level. */
export type LogLevel = (typeof LOG_LEVELS)[number];
