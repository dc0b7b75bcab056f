import { AsyncLocalStorage } from "node:async_hooks";
import type { LogFields, Logger } from "../ports/logger.js";

const context = new AsyncLocalStorage<LogFields>();

/**
 * Runs `fn` with `fields` added to every line logged, inside it, through a
 * {@link contextualLogger}: how every log line of a run carries its `run_id`,
 * `workflow` and `conversation_key` without threading them through each component.
 */
export function withLogFields<T>(fields: LogFields, fn: () => T): T {
  return context.run({ ...context.getStore(), ...fields }, fn);
}

/**
 * Wraps `logger` so each line also carries the fields of the enclosing {@link withLogFields}.
 * Fields given explicitly, to a line or to a `child`, win over the enclosing ones.
 */
export function contextualLogger(logger: Logger): Logger {
  return contextual(logger, {});
}

/** `own`: the fields of the `child` calls that made this logger, which the enclosing fields must not override. */
function contextual(logger: Logger, own: LogFields): Logger {
  const merged = (fields: LogFields): LogFields => {
    const ambient = context.getStore();
    // A run started inside another run's context (a workflow ingesting an event) logs with a
    // child naming it: the enclosing run's fields must not replace the child's.
    return ambient ? { ...ambient, ...own, ...fields } : fields;
  };
  return {
    debug: (fields, message) => logger.debug(merged(fields), message),
    info: (fields, message) => logger.info(merged(fields), message),
    warn: (fields, message) => logger.warn(merged(fields), message),
    error: (fields, message) => logger.error(merged(fields), message),
    child: (fields) => contextual(logger.child(fields), { ...own, ...fields }),
  };
}
