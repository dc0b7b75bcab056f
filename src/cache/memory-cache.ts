import { LRUCache } from "lru-cache";
import { KiloError } from "../errors.js";
import type { Cache } from "../ports/cache.js";

/** Options of {@link memoryCache}. */
export interface MemoryCacheOptions {
  /** Most entries kept; setting one more evicts the least recently used. Default 1000. */
  maxEntries?: number;
  /** Expiry of entries set without a `ttlMs` of their own. Default: none (kept until evicted). */
  ttlMs?: number;
  /** Time source for expiry, in milliseconds. Default `performance.now`. Tests pass a fake clock. */
  now?: () => number;
}

/** An in-process {@link Cache}, with the extras the core's first tier uses. */
export interface MemoryCache extends Cache {
  /** Removes every entry. */
  clear(): void;
  /** Number of entries held (expired ones may count until read). */
  readonly size: number;
  /** Removes every entry; later calls fail with `CLOSED`. */
  close(): Promise<void>;
}

const NAME = "memory";

/**
 * An in-process LRU {@link Cache} on `lru-cache`, bounded by entry count,
 * with optional expiry per entry. Not shared (`capabilities.shared` is
 * false) and has no `subscribe`. kilo uses one as the first tier (L1) of
 * every instance; pass one as `createKilo({ cache })` only in tests.
 *
 * @example
 * ```ts
 * const cache = memoryCache({ maxEntries: 500, ttlMs: 60_000 });
 * await cache.set("greeting", "hello");
 * await cache.get("greeting"); // "hello"
 * ```
 */
export function memoryCache(options: MemoryCacheOptions = {}): MemoryCache {
  const max = options.maxEntries ?? 1000;
  if (!Number.isInteger(max) || max < 1) {
    throw new KiloError("CONFIGURATION_INVALID", "memoryCache `maxEntries` must be a positive integer", {
      adapter: NAME,
    });
  }
  const defaultTtl = positiveOrUndefined(options.ttlMs, "ttlMs");
  const lru = new LRUCache<string, string>({
    max,
    ...(defaultTtl === undefined ? {} : { ttl: defaultTtl }),
    // A fake clock must be read on every check, not cached for a millisecond.
    ...(options.now ? { perf: { now: options.now }, ttlResolution: 0 } : {}),
  });
  let closed = false;
  const ensureOpen = () => {
    if (closed)
      throw new KiloError("CLOSED", "Cache adapter 'memory' was used after close()", { adapter: NAME });
  };

  return {
    name: NAME,
    capabilities: { shared: false },
    async get(key) {
      ensureOpen();
      return lru.get(key) ?? null;
    },
    async set(key, value, ttlMs) {
      ensureOpen();
      const ttl = positiveOrUndefined(ttlMs, "ttlMs") ?? defaultTtl;
      lru.set(key, value, ttl === undefined ? {} : { ttl });
    },
    async delete(keys) {
      ensureOpen();
      for (const key of keys) lru.delete(key);
    },
    clear() {
      lru.clear();
    },
    get size() {
      return lru.size;
    },
    async close() {
      closed = true;
      lru.clear();
    },
  };
}

function positiveOrUndefined(value: number | undefined, option: string): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isFinite(value) || value <= 0) {
    throw new KiloError("CONFIGURATION_INVALID", `memoryCache \`${option}\` must be a positive number`, {
      adapter: NAME,
    });
  }
  return value;
}
