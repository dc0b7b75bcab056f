import type { Clock, IdGenerator } from "../ports/clock.js";

/** The wall clock. */
export const systemClock: Clock = { now: () => new Date() };

/** Ids of the form `<prefix>_<uuid without dashes>`. */
export const randomIds: IdGenerator = {
  next: (prefix) => `${prefix}_${globalThis.crypto.randomUUID().replaceAll("-", "")}`,
};

/** Ids of the form `<prefix>_<n>`, counting per prefix: readable ids for tests and demos. */
export function sequentialIds(): IdGenerator {
  const counters = new Map<string, number>();
  return {
    next(prefix) {
      const n = (counters.get(prefix) ?? 0) + 1;
      counters.set(prefix, n);
      return `${prefix}_${n}`;
    },
  };
}
