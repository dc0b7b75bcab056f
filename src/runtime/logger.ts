import type { LogFields, Logger, LogLevel } from "../ports/logger.js";

const SEVERITY: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/** A logger that drops everything: the default, so an embedded kilo stays quiet. */
export function silentLogger(): Logger {
  const logger: Logger = {
    debug() {},
    info() {},
    warn() {},
    error() {},
    child: () => logger,
  };
  return logger;
}

/** Options of {@link jsonLogger}. */
export interface JsonLoggerOptions {
  /** Lowest level written. Default `info`. */
  level?: LogLevel;
  /** Where lines go. Default: `process.stderr`. */
  write?: (line: string) => void;
  /** Fields added to every line. */
  base?: LogFields;
}

/**
 * A small structured logger writing one JSON object per line (`time`,
 * `level`, `msg` and the fields), for hosts that do not bring pino.
 */
export function jsonLogger(options: JsonLoggerOptions = {}): Logger {
  const threshold = SEVERITY[options.level ?? "info"];
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const build = (base: LogFields): Logger => {
    const emit = (level: Exclude<LogLevel, "silent">, fields: LogFields, message?: string) => {
      if (SEVERITY[level] < threshold) return;
      write(
        JSON.stringify({ time: new Date().toISOString(), level, msg: message, ...base, ...fields }, replacer),
      );
    };
    return {
      debug: (fields, message) => emit("debug", fields, message),
      info: (fields, message) => emit("info", fields, message),
      warn: (fields, message) => emit("warn", fields, message),
      error: (fields, message) => emit("error", fields, message),
      child: (fields) => build({ ...base, ...fields }),
    };
  };
  return build(options.base ?? {});
}

// Errors serialise to `{}` by default; keep what helps a developer (never a stack to end users: logs are for operators).
function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return { name: value.name, message: value.message, ...(code === undefined ? {} : { code }) };
  }
  return value;
}
