/** What a cache adapter can do; the core reads these. */
export interface CacheCapabilities {
  /**
   * Entries are shared between processes (Redis, Memcached, ...): what one
   * process sets, another can get, and a `delete` in one process is seen by
   * all of them. An in-process cache (`memoryCache`) is not shared.
   */
  shared: boolean;
}

/**
 * Called by {@link Cache.subscribe} with the keys another writer deleted,
 * exactly as they were passed to {@link Cache.delete} (without any prefix the
 * adapter adds). Must not throw; runs on the adapter's event loop turn.
 */
export type CacheInvalidationListener = (keys: string[]) => void;

/**
 * The Cache port: a string key-value store with optional expiry, which kilo
 * puts in front of storage to load bots, souls and skill catalogs without a
 * database round trip (see `docs/cache.md`).
 *
 * kilo always runs an in-process LRU (`memoryCache`) as its first tier (L1).
 * A cache passed as `createKilo({ cache })` is the second tier (L2), usually
 * shared between processes (`redisCache` from `kilo/cache/redis`).
 *
 * The port is deliberately thin. Values are opaque strings: the core
 * serializes them (JSON with Dates revived), validates what it reads from a
 * shared cache with the domain's zod schemas, and treats anything malformed as
 * a miss. Keys are short ASCII strings made by the core (`bot/<id>`,
 * `skills/<id>`, `gen/...`); an adapter may prefix them (e.g. `kilo:`) but
 * must hand them back unprefixed to subscribers.
 *
 * Semantics an adapter must keep:
 *
 * - `get` returns the value last `set` for the key, or `null` when there is
 *   none, it was deleted, or it expired. It never returns an expired value.
 * - `set` overwrites. With `ttlMs` (a positive number of milliseconds) the
 *   entry expires after that long; without it, it lives until deleted or
 *   evicted. An adapter may evict any entry at any time (a cache, not a
 *   store): the core treats every `get` as possibly missing.
 * - `delete` removes every key given (missing keys are fine; an empty list
 *   does nothing). On a `shared` cache that implements `subscribe`, it also
 *   broadcasts the keys to every subscriber in every process (this one
 *   included) after they are removed, so that those processes drop their own
 *   L1 copies. Delivery is at most once and asynchronous; see `subscribe`.
 * - `subscribe` (optional, shared caches) registers a listener for the keys
 *   deleted through any instance of the cache that uses the same namespace.
 *   It resolves once the subscription is live (messages sent after that are
 *   delivered) and returns a function that removes the listener. When the
 *   adapter may have missed messages (its subscription connection dropped, a
 *   message could not be decoded), it calls `onReset` instead, and the core
 *   drops its whole L1. Without `subscribe`, the core assumes it hears of no
 *   one else's writes and keeps L1 entries only briefly (`unsyncedTtlMs`).
 * - `close` (optional) releases what the adapter opened: connections it
 *   created, its subscription connection; never a client the host passed in.
 *   After `close` every method throws `KiloError` with code `CLOSED`.
 *
 * Errors: throw `KiloError` naming the adapter (`adapter: "redis"`). The
 * core never lets a cache failure fail a turn: it logs a warning, falls
 * through to storage, and stops asking the cache for a few seconds. Methods
 * should fail fast when the backend is unreachable rather than queue; the
 * core also gives up on any call after `sharedTimeoutMs` (default 1 s).
 *
 * @example
 * ```ts
 * // A cache that remembers nothing: every read goes to storage.
 * const noCache: Cache = {
 *   name: "none",
 *   capabilities: { shared: false },
 *   async get() { return null; },
 *   async set() {},
 *   async delete() {},
 * };
 *
 * // The usual setup: Redis shared by every process of the deployment.
 * import { redisCache } from "kilo/cache/redis";
 * const kilo = createKilo({ storage, providers, cache: redisCache({ url: process.env.REDIS_URL }) });
 * ```
 */
export interface Cache {
  /** Adapter name, used in errors and log lines (`memory`, `redis`). */
  readonly name: string;
  readonly capabilities: CacheCapabilities;
  /** The value stored under `key`, or `null` on a miss. */
  get(key: string): Promise<string | null>;
  /** Stores `value` under `key`, expiring after `ttlMs` milliseconds when given. */
  set(key: string, value: string, ttlMs?: number): Promise<void>;
  /** Removes the keys (and, on a shared cache with `subscribe`, tells every subscriber). */
  delete(keys: string[]): Promise<void>;
  /**
   * Optional, for shared caches: listens for keys deleted by any process.
   * Resolves when the subscription is live, with a function that removes
   * the listener. `onReset` is called when messages may have been missed.
   */
  subscribe?(listener: CacheInvalidationListener, onReset?: () => void): Promise<() => void | Promise<void>>;
  /** Releases what the adapter opened (and nothing the host owns). */
  close?(): Promise<void>;
}
