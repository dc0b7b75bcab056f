/**
 * The Clock port: where kilo reads the time. Tests pass a fixed or manual clock.
 *
 * @example
 * ```ts
 * let now = new Date("2026-01-01T00:00:00Z");
 * const clock: Clock = { now: () => now };
 * ```
 */
export interface Clock {
  /** The current time. Called for every timestamp kilo writes, so it should be cheap and never go backwards in production. */
  now(): Date;
}

/**
 * The IdGenerator port: makes ids for new records. The default returns
 * `<prefix>_<random uuid>`; tests can pass a counter for readable ids.
 */
export interface IdGenerator {
  /** A new unique id; `prefix` names the kind of record (`bot`, `skill`, `msg`, ...). */
  next(prefix: string): string;
}
