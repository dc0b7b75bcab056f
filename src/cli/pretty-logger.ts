import type { Logger, LogLevel } from "../ports/logger.js";
import { jsonLogger } from "../runtime/logger.js";

/** Options of {@link prettyLogger}. */
export interface PrettyLoggerOptions {
  /** Lowest level written. Default `info`. */
  level?: LogLevel;
  /** Where lines go (one call per line, without the newline). */
  write: (line: string) => void;
}

function formatValue(value: unknown): string {
  if (typeof value === "string") return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (typeof value === "object" && value !== null && "message" in value) {
    // An Error, as the JSON logger serialised it: `{ name, message, code? }`.
    const { code, message } = value as { code?: unknown; message: unknown };
    return JSON.stringify(code === undefined ? message : `${String(code)}: ${String(message)}`);
  }
  return JSON.stringify(value);
}

/**
 * A logger for people reading a terminal: `12:30:01.042 INFO  run started run_id=run_1 seq=3`.
 * The CLI uses it for `KILO_LOG_FORMAT=pretty`. Lines are the JSON logger's, laid out for reading.
 */
export function prettyLogger(options: PrettyLoggerOptions): Logger {
  return jsonLogger({
    level: options.level ?? "info",
    write(line) {
      const { time, level, msg, ...fields } = JSON.parse(line) as Record<string, unknown>;
      const pairs = Object.entries(fields).map(([key, value]) => `${key}=${formatValue(value)}`);
      const clock = typeof time === "string" ? time.slice(11, 23) : "";
      options.write([clock, String(level).toUpperCase().padEnd(5), msg ?? "", ...pairs].join(" "));
    },
  });
}
