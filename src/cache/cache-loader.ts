import type { Bot } from "../domain/bot.js";
import { type SkillScope, sameScope, scopeKey } from "../domain/scope.js";
import type { Skill } from "../domain/skill.js";
import { KiloError, toKiloError } from "../errors.js";
import type { Cache } from "../ports/cache.js";
import type { Logger } from "../ports/logger.js";
import type { SkillCatalog } from "../ports/skill-matcher.js";
import type { Storage } from "../ports/storage.js";
import { silentLogger } from "../runtime/logger.js";
import { botCodec, type CacheCodec, type CachedCatalog, catalogCodec } from "./cache-codec.js";
import { type MemoryCache, memoryCache } from "./memory-cache.js";

/** Sizing and lifetimes of kilo's cache (`createKilo({ cacheOptions })`). */
export interface CacheOptions {
  /** Most entries in this process's L1 (one per bot and one per skill catalog). Default 1000. */
  maxEntries?: number;
  /**
   * How long an L1 entry lives when this process hears of every write: a
   * single process (storage not `crossProcess`), or a shared cache whose
   * invalidation broadcast is live. A safety net for writes that bypass kilo
   * and for lost broadcasts. Default 60 s; `0` turns L1 off.
   */
  ttlMs?: number;
  /**
   * How long an L1 entry lives when other processes may write without this
   * one hearing of it: cross-process storage and no shared cache with
   * `subscribe`, or before the subscription is live. This bounds how stale a
   * bot or skill catalog can be after another process changed it.
   * Default 5 s; `0` turns L1 off in that case (every turn reads storage or L2).
   */
  unsyncedTtlMs?: number;
  /** Expiry of entries in the shared cache (L2). Default 1 hour. */
  sharedTtlMs?: number;
  /** A call to the shared cache that takes longer counts as failed. Default 1000 ms. */
  sharedTimeoutMs?: number;
}

/** Options of {@link createCacheLoader}. */
export interface CacheLoaderOptions extends CacheOptions {
  /** Where values come from on a miss. */
  storage: Storage;
  /** The shared second tier (L2), e.g. `redisCache(...)`. Default: none (L1 only). */
  cache?: Cache | undefined;
  /** Receives a warning when the shared cache fails or holds a malformed entry. Default: silent. */
  logger?: Logger | undefined;
  /** Time source in milliseconds for L1 expiry and the L2 retry delay. Default `performance.now`. */
  now?: (() => number) | undefined;
}

/**
 * The core's cache-first loader of bots and skill catalogs: an in-process
 * LRU (L1) in front of an optional shared cache (L2) in front of storage.
 * Reads go L1, then L2, then storage (filling both). Writes made through kilo
 * call the `invalidate*` methods, which drop the entries from both tiers and
 * make a shared cache tell the other processes, whose L1s drop them too.
 * Failures of the shared cache are logged and read through to storage; they
 * never fail the caller.
 */
export interface CacheLoader {
  /** The bot (with its soul), or `null` when storage has none. Misses are not cached. */
  bot(botId: string): Promise<Bot | null>;
  /**
   * The bot's own active skills. `key` changes whenever the list is reloaded
   * from storage, which every skill write through kilo causes in every
   * process, so matchers may cache an index per key.
   */
  catalog(botId: string): Promise<SkillCatalog>;
  /**
   * The active skills of each scope, in the order given (a bot scope's is
   * its {@link catalog}). Each catalog's `key` changes whenever it is
   * reloaded. Scopes missing from both cache tiers are read from storage
   * with one call (`skills.listByScopes`), so a bot's four scopes cost at
   * most one round trip. Adapters without `listByScopes` have bot skills only.
   */
  scopeCatalogs(scopes: readonly SkillScope[]): Promise<SkillCatalog[]>;
  /** Drops the cached bot (and, with `skills: true`, its catalog) everywhere. */
  invalidateBot(botId: string, options?: { skills?: boolean }): Promise<void>;
  /** Drops the bot's cached skill catalog everywhere. */
  invalidateSkills(botId: string): Promise<void>;
  /** Drops a scope's cached skill catalog everywhere (after any write to the scope's skills). */
  invalidateScope(scope: SkillScope): Promise<void>;
  /** Stops listening for invalidations and closes L1 and the shared cache. Later reads fail with `CLOSED`. */
  close(): Promise<void>;
}

const RETRY_AFTER_MS = 5_000;
// A generation key must outlive every entry tagged before it was written; see docs/decisions/0005.
const GENERATION_MARGIN_MS = 10 * 60_000;

const botKey = (botId: string) => `bot/${botId}`;
const skillsKey = (botId: string) => `skills/${botId}`;
// Another prefix than bots': a bot id may contain ':' and look like a scope key.
const catalogKey = (scope: SkillScope) =>
  scope.kind === "bot" ? skillsKey(scope.id) : `scope-skills/${scopeKey(scope)}`;
const generationKey = (key: string) => `gen/${key}`;

interface SharedRead<T> {
  /** The generation token current in L2 when the read began (`null`: none yet). */
  generation: string | null;
  hit: { value: T; text: string } | null;
}

/**
 * Creates the two-tier cache-first loader kilo uses for bots and skill
 * catalogs (see {@link CacheLoader} and `docs/cache.md`).
 *
 * @example
 * ```ts
 * const loader = createCacheLoader({ storage, cache: redisCache({ url }), logger });
 * const bot = await loader.bot("bot_1");
 * await loader.invalidateBot("bot_1");
 * ```
 */
export function createCacheLoader(options: CacheLoaderOptions): CacheLoader {
  const { storage } = options;
  const shared = options.cache;
  const logger = options.logger ?? silentLogger();
  const now = options.now ?? (() => performance.now());
  const ttlMs = nonNegative(options.ttlMs, 60_000, "ttlMs");
  const unsyncedTtlMs = nonNegative(options.unsyncedTtlMs, 5_000, "unsyncedTtlMs");
  const sharedTtlMs = positive(options.sharedTtlMs, 3_600_000, "sharedTtlMs");
  const timeoutMs = positive(options.sharedTimeoutMs, 1_000, "sharedTimeoutMs");
  const local: MemoryCache = memoryCache({ maxEntries: options.maxEntries ?? 1000, now });

  // Every invalidation (local or heard from another process) bumps this; a load that
  // began before one must not fill L1, or it could store what the write replaced.
  let invalidations = 0;
  let closed = false;
  // Until the invalidation broadcast is live, writes by other processes go unheard.
  let synced = !storage.capabilities.crossProcess && !shared?.capabilities.shared;
  let unsubscribe: (() => void | Promise<void>) | null = null;
  // Keys whose L2 invalidation failed: L2 is not read or filled until they are flushed.
  const pending = new Set<string>();
  let unavailableUntil = Number.NEGATIVE_INFINITY;
  let retryTimer: ReturnType<typeof setTimeout> | null = null;

  const ensureOpen = () => {
    if (closed) throw new KiloError("CLOSED", "This kilo instance's cache was used after close()");
  };

  // L1 fails only once closed (CLOSED), when there is nothing left to drop or fill.
  const dropLocal = (keys: string[]) => {
    invalidations += 1;
    for (const key of keys) revived.delete(key);
    void local.delete(keys).catch(() => undefined);
  };
  const resetLocal = () => {
    invalidations += 1;
    revived.clear();
    local.clear();
  };

  // The value last revived from each L1 text: a warm turn then gets the same objects back instead of
  // parsing them again, and per-object caches downstream (derived tool schemas) keep hitting.
  // Values are shared between callers: the core never mutates what the cache returns.
  const revived = new Map<string, { text: string; value: unknown }>();
  const maxRevived = options.maxEntries ?? 1000;
  function revive<T>(key: string, text: string, codec: CacheCodec<T>): T {
    const memo = revived.get(key);
    if (memo && memo.text === text) return memo.value as T;
    const value = codec.revive(text);
    revived.delete(key);
    revived.set(key, { text, value });
    if (revived.size > maxRevived) revived.delete(revived.keys().next().value as string);
    return value;
  }

  let subscribeTimer: ReturnType<typeof setTimeout> | null = null;
  function startSubscription(attempt: number): void {
    if (!shared?.subscribe || closed) return;
    const adapter = shared.name;
    Promise.resolve()
      .then(() => shared.subscribe?.(dropLocal, resetLocal))
      .then(
        async (stop) => {
          if (!stop) return;
          if (closed) {
            try {
              await stop();
            } catch (error) {
              logger.warn({ adapter, error }, "shared cache failed to unsubscribe");
            }
            return;
          }
          unsubscribe = stop;
          synced = true;
          // Entries filled before the broadcast was live may have missed an invalidation.
          resetLocal();
        },
        (error: unknown) => {
          if (attempt === 0) {
            logger.warn(
              {
                adapter,
                error: toKiloError(error, "CACHE_FAILED", `Cache adapter '${adapter}' failed to subscribe`),
              },
              "cache invalidation broadcast unavailable; L1 entries expire after unsyncedTtlMs until it is",
            );
          }
          if (closed) return;
          subscribeTimer = setTimeout(() => {
            subscribeTimer = null;
            startSubscription(attempt + 1);
          }, RETRY_AFTER_MS);
          subscribeTimer.unref?.();
        },
      );
  }
  startSubscription(0);

  const localTtl = () => (synced ? ttlMs : unsyncedTtlMs);

  function fillLocal(key: string, text: string, epoch: number): void {
    const ttl = localTtl();
    if (ttl === 0 || epoch !== invalidations || closed) return;
    void local.set(key, text, ttl).catch(() => undefined);
  }

  async function call<T>(operation: string, fn: (cache: Cache) => Promise<T>): Promise<T> {
    const cache = shared as Cache;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new KiloError(
              "CACHE_FAILED",
              `Cache adapter '${cache.name}' did not answer ${operation} within ${timeoutMs} ms`,
              {
                adapter: cache.name,
                retryable: true,
              },
            ),
          ),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([fn(cache), timeout]);
    } catch (error) {
      throw toKiloError(error, "CACHE_FAILED", `Cache adapter '${cache.name}' failed in ${operation}`, {
        adapter: cache.name,
        retryable: true,
      });
    } finally {
      clearTimeout(timer);
    }
  }

  function sharedUsable(): boolean {
    return shared !== undefined && !closed && now() >= unavailableUntil;
  }

  function failed(operation: string, error: unknown): void {
    // One warning per outage, not one per call.
    if (now() >= unavailableUntil) {
      logger.warn(
        { adapter: shared?.name, operation, error, retryInMs: RETRY_AFTER_MS },
        "shared cache failed; reading from storage",
      );
    }
    unavailableUntil = now() + RETRY_AFTER_MS;
    scheduleFlush();
  }

  function scheduleFlush(): void {
    if (pending.size === 0 || retryTimer !== null || closed) return;
    // Other processes may read the stale L2 entries until they are deleted: retry without waiting for traffic.
    retryTimer = setTimeout(() => {
      retryTimer = null;
      void flushPending();
    }, RETRY_AFTER_MS);
    retryTimer.unref?.();
  }

  async function flushPending(): Promise<boolean> {
    if (pending.size === 0) return true;
    if (!sharedUsable()) {
      scheduleFlush();
      return false;
    }
    const keys = [...pending];
    const generation = globalThis.crypto.randomUUID();
    try {
      // New generations first: an entry a slower reader writes later is tagged with the old one and ignored.
      await Promise.all(
        keys.map((key) =>
          call("set", (cache) =>
            cache.set(generationKey(key), generation, sharedTtlMs + GENERATION_MARGIN_MS),
          ),
        ),
      );
      await call("delete", (cache) => cache.delete(keys));
      for (const key of keys) pending.delete(key);
      return true;
    } catch (error) {
      failed("delete", error);
      return false;
    }
  }

  async function readShared<T>(key: string, codec: CacheCodec<T>): Promise<SharedRead<T> | null> {
    if (!sharedUsable()) return null;
    if (pending.size > 0 && !(await flushPending())) return null;
    try {
      const [generation, text] = await Promise.all([
        call("get", (cache) => cache.get(generationKey(key))),
        call("get", (cache) => cache.get(key)),
      ]);
      if (text === null) return { generation, hit: null };
      const entry = codec.decode(text);
      if (!entry) {
        logger.warn({ adapter: shared?.name, key }, "malformed shared cache entry; treated as a miss");
        return { generation, hit: null };
      }
      // Loaded before the last invalidation (a write raced the load that filled it): stale.
      if (entry.generation !== generation) return { generation, hit: null };
      return { generation, hit: { value: entry.value, text } };
    } catch (error) {
      failed("get", error);
      return null;
    }
  }

  /**
   * Reads each key L1 first, then L2, then storage: `fetch` gets the keys
   * missing from both tiers at once and returns their values in that order
   * (`null` for none; misses are not cached).
   */
  async function loadMany<T>(
    keys: readonly string[],
    codec: CacheCodec<T>,
    fetch: (missing: string[]) => Promise<Array<T | null>>,
  ): Promise<Array<T | null>> {
    ensureOpen();
    const epoch = invalidations;
    const values: Array<T | null> = keys.map(() => null);
    const missing: number[] = [];
    for (const [index, key] of keys.entries()) {
      const cached = await local.get(key).catch(() => null);
      if (cached !== null) values[index] = revive(key, cached, codec);
      else missing.push(index);
    }
    if (missing.length === 0) return values;

    const remotes = await Promise.all(missing.map((index) => readShared(keys[index]!, codec)));
    const unresolved: Array<{ index: number; remote: SharedRead<T> | null }> = [];
    missing.forEach((index, position) => {
      const remote = remotes[position] ?? null;
      if (remote?.hit) {
        fillLocal(keys[index]!, remote.hit.text, epoch);
        values[index] = remote.hit.value;
      } else {
        unresolved.push({ index, remote });
      }
    });
    if (unresolved.length === 0) return values;

    const fetched = await fetch(unresolved.map(({ index }) => keys[index]!));
    // An in-process second tier hears of other processes' writes no better than L1 does.
    const remoteTtl = shared?.capabilities.shared ? sharedTtlMs : localTtl();
    await Promise.all(
      unresolved.map(async ({ index, remote }, position) => {
        const value = fetched[position] ?? null;
        if (value === null) return;
        values[index] = value;
        const key = keys[index]!;
        const text = codec.encode(value, remote?.generation ?? null);
        fillLocal(key, text, epoch);
        if (remote && pending.size === 0 && remoteTtl > 0) {
          await call("set", (cache) => cache.set(key, text, remoteTtl)).catch((error: unknown) =>
            failed("set", error),
          );
        }
      }),
    );
    return values;
  }

  async function load<T>(
    key: string,
    codec: CacheCodec<T>,
    fetch: () => Promise<T | null>,
  ): Promise<T | null> {
    const [value] = await loadMany([key], codec, async () => [await fetch()]);
    return value ?? null;
  }

  /** The active skills of the scopes, one storage call for all of them. */
  async function activeSkills(scopes: readonly SkillScope[]): Promise<Skill[]> {
    let skills: Skill[];
    if (storage.skills.listByScopes && scopes.some((scope) => scope.kind !== "bot")) {
      skills = await storage.skills.listByScopes(scopes);
    } else {
      // A bot's own skills, or an adapter written before scopes (it keeps bot skills only).
      skills = [];
      for (const scope of scopes) {
        if (scope.kind === "bot") skills.push(...(await storage.skills.listByBot(scope.id)));
      }
    }
    return skills.filter((skill) => skill.status === "active");
  }

  async function scopeCatalogs(scopes: readonly SkillScope[]): Promise<SkillCatalog[]> {
    const keys = scopes.map(catalogKey);
    const loaded = await loadMany<CachedCatalog>(keys, catalogCodec, async (missing) => {
      const wanted = scopes.filter((scope) => missing.includes(catalogKey(scope)));
      const skills = await activeSkills(wanted);
      return wanted.map((scope) => ({
        version: globalThis.crypto.randomUUID(),
        skills: skills.filter((skill) =>
          // Skills stored before scopes existed carry no scope: they are their bot's.
          skill.scope ? sameScope(skill.scope, scope) : scope.kind === "bot" && skill.botId === scope.id,
        ),
      }));
    });
    return loaded.map((cached, index) => {
      const scope = scopes[index]!;
      const version = (cached as CachedCatalog).version;
      return {
        key: `${scope.kind === "bot" ? scope.id : scopeKey(scope)}:${version}`,
        skills: (cached as CachedCatalog).skills,
      };
    });
  }

  async function invalidate(keys: string[]): Promise<void> {
    dropLocal(keys);
    if (!shared || closed) return;
    for (const key of keys) pending.add(key);
    await flushPending();
  }

  return {
    bot: (botId) => load(botKey(botId), botCodec, () => storage.bots.get(botId)),
    catalog: async (botId) => (await scopeCatalogs([{ kind: "bot", id: botId }]))[0]!,
    scopeCatalogs,
    invalidateBot: (botId, invalidateOptions = {}) =>
      invalidate(invalidateOptions.skills ? [botKey(botId), skillsKey(botId)] : [botKey(botId)]),
    invalidateSkills: (botId) => invalidate([skillsKey(botId)]),
    invalidateScope: (scope) => invalidate([catalogKey(scope)]),
    async close() {
      if (closed) return;
      closed = true;
      if (retryTimer !== null) clearTimeout(retryTimer);
      if (subscribeTimer !== null) clearTimeout(subscribeTimer);
      if (pending.size > 0) {
        logger.warn(
          { adapter: shared?.name, keys: pending.size },
          "closing with shared cache invalidations unsent",
        );
      }
      await local.close();
      const stop = unsubscribe as (() => void | Promise<void>) | null;
      try {
        if (stop) await stop();
      } catch (error) {
        logger.warn({ adapter: shared?.name, error }, "shared cache failed to unsubscribe");
      }
      try {
        await shared?.close?.();
      } catch (error) {
        logger.warn({ adapter: shared?.name, error }, "shared cache failed to close");
      }
    },
  };
}

function nonNegative(value: number | undefined, fallback: number, option: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) {
    throw new KiloError("CONFIGURATION_INVALID", `cacheOptions.${option} must be a number >= 0`);
  }
  return value;
}

function positive(value: number | undefined, fallback: number, option: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) {
    throw new KiloError("CONFIGURATION_INVALID", `cacheOptions.${option} must be a positive number`);
  }
  return value;
}
