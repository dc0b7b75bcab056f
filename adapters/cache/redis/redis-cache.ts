import { KiloError, toKiloError } from "../../../src/errors.js";
import type { Cache, CacheInvalidationListener } from "../../../src/ports/cache.js";
import type { Logger } from "../../../src/ports/logger.js";
import { silentLogger } from "../../../src/runtime/logger.js";

const ADAPTER = "redis";

/** Connection settings kilo passes to the subscription connection it duplicates from a client. */
export interface RedisSubscriberOptions {
  autoResubscribe?: boolean;
  maxRetriesPerRequest?: number | null;
  enableOfflineQueue?: boolean;
}

/** The subset of an ioredis connection used for the invalidation subscription. */
export interface RedisSubscriber {
  /** Subscribes to the invalidation channel (`<keyPrefix>invalidations`). */
  subscribe(channel: string): Promise<unknown>;
  /** Receives each published invalidation message (JSON listing the keys to drop). */
  on(event: "message", listener: (channel: string, message: string) => void): unknown;
  /** `close`: the connection dropped, local caches may be stale; `ready`: it is back, and the adapter resubscribes. */
  on(event: "ready" | "close", listener: () => void): unknown;
  /** Connection errors; the adapter logs them at debug and keeps going. */
  on(event: "error", listener: (error: Error) => void): unknown;
  /** Closes the subscription connection at once; called from the cache's `close()`. */
  disconnect(): void;
}

/**
 * The subset of an ioredis client (`new Redis(...)` from `ioredis`) that
 * the adapter uses. Any object with these members works.
 */
export interface RedisClient {
  /** The connection state as ioredis reports it; `close()` quits gracefully only when it is `"ready"`. */
  readonly status: string;
  /** The string stored at the (already prefixed) key, or `null` when absent or expired. */
  get(key: string): Promise<string | null>;
  /** Stores a value without expiry. */
  set(key: string, value: string): Promise<unknown>;
  /** Stores a value that expires after `milliseconds` (`SET key value PX ms`). */
  set(key: string, value: string, mode: "PX", milliseconds: number): Promise<unknown>;
  /** Deletes the keys; resolves with how many existed. */
  del(...keys: string[]): Promise<number>;
  /** Broadcasts an invalidation message to every process subscribed to `channel`. */
  publish(channel: string, message: string): Promise<number>;
  /** A new connection with the same settings; the adapter subscribes on it and closes it on `close()`. */
  duplicate(override?: RedisSubscriberOptions): RedisSubscriber;
  /** Closes the connection after pending replies; used only on a client kilo created from `url`. */
  quit(): Promise<unknown>;
  /** Closes the connection at once; the fallback when `quit` fails or the client is not ready. */
  disconnect(): void;
  /** Connection errors of a client kilo created; logged at debug so they never crash the process. */
  on(event: "error", listener: (error: Error) => void): unknown;
}

/** Options of {@link redisCache}: give `url` or `client`. */
export interface RedisCacheOptions {
  /**
   * Connection URL, e.g. `redis://:password@127.0.0.1:6379/0`. kilo then
   * creates (on first use), owns and closes the client, loading `ioredis`
   * lazily. Default: the `REDIS_URL` environment variable, read on first use.
   */
  url?: string;
  /**
   * The host's own ioredis client. kilo never quits it; it duplicates it
   * once for the invalidation subscription and closes that duplicate on
   * `close()`.
   */
  client?: RedisClient;
  /**
   * Prefix of every key and of the invalidation channel (`<prefix>invalidations`).
   * Processes that share bots must use the same prefix; different prefixes
   * keep deployments on one Redis apart. Default `"kilo:"`.
   */
  keyPrefix?: string;
  /** Receives connection errors (debug) and malformed invalidation messages (warn). Default: silent. */
  logger?: Logger;
}

type RedisConstructor = new (url: string, options: Record<string, unknown>) => RedisClient;

async function loadIoredis(): Promise<RedisConstructor> {
  let loaded: Record<string, unknown>;
  try {
    loaded = (await import("ioredis")) as unknown as Record<string, unknown>;
  } catch (error) {
    throw new KiloError(
      "CONFIGURATION_INVALID",
      "redisCache({ url }) needs the 'ioredis' package, an optional peer dependency of kilo: npm install ioredis",
      { adapter: ADAPTER, cause: error },
    );
  }
  // ESM gives the named export; some CJS interop layers only `default` (itself the module or the class).
  const fallback = loaded.default as Record<string, unknown> | undefined;
  const RedisClass = loaded.Redis ?? fallback?.Redis ?? fallback;
  if (typeof RedisClass !== "function") {
    throw new KiloError(
      "CONFIGURATION_INVALID",
      "The installed 'ioredis' package exports no Redis client class",
      {
        adapter: ADAPTER,
      },
    );
  }
  return RedisClass as RedisConstructor;
}

interface Subscription {
  listener: CacheInvalidationListener;
  onReset: (() => void) | undefined;
}

/**
 * A shared {@link Cache} on Redis (ioredis): kilo's second tier for bots,
 * souls and skill catalogs across processes. Capabilities `{ shared: true }`.
 *
 * Keys are stored as `<keyPrefix><key>`. `delete` removes the keys and
 * publishes them on the channel `<keyPrefix>invalidations`; `subscribe`
 * listens on that channel on a connection of its own (a duplicate of the
 * client), and calls `onReset` when that connection dropped and came back,
 * since messages sent in between are lost.
 *
 * A client kilo creates from `url` fails commands fast while Redis is
 * unreachable (one retry), so a turn falls back to storage quickly. Errors
 * are `KiloError`s with `adapter: "redis"` (`CACHE_FAILED`, or
 * `CONFIGURATION_INVALID` when `ioredis` is not installed or no URL is set).
 *
 * @example
 * ```ts
 * import { createKilo } from "kilo";
 * import { redisCache } from "kilo/cache/redis";
 *
 * const kilo = createKilo({ storage, providers, cache: redisCache({ url: "redis://127.0.0.1:6379" }) });
 * // or with the host's client, which kilo will not close:
 * const kilo2 = createKilo({ storage, providers, cache: redisCache({ client: new Redis(), keyPrefix: "bakery:" }) });
 * ```
 */
export function redisCache(options: RedisCacheOptions = {}): Cache {
  if (options.url !== undefined && options.client !== undefined) {
    throw new KiloError("CONFIGURATION_INVALID", "redisCache takes `url` or `client`, not both", {
      adapter: ADAPTER,
    });
  }
  if (options.client !== undefined && typeof options.client?.get !== "function") {
    throw new KiloError("CONFIGURATION_INVALID", "redisCache `client` must be an ioredis client", {
      adapter: ADAPTER,
    });
  }
  const prefix = options.keyPrefix ?? "kilo:";
  if (typeof prefix !== "string") {
    throw new KiloError("CONFIGURATION_INVALID", "redisCache `keyPrefix` must be a string", {
      adapter: ADAPTER,
    });
  }
  const channel = `${prefix}invalidations`;
  const logger = options.logger ?? silentLogger();
  const subscriptions = new Set<Subscription>();
  let closed = false;
  let owned: Promise<RedisClient> | null = null;
  let subscriber: RedisSubscriber | null = null;
  let subscribing: Promise<void> | null = null;

  const ensureOpen = () => {
    if (closed)
      throw new KiloError("CLOSED", "Cache adapter 'redis' was used after close()", { adapter: ADAPTER });
  };

  function connect(): Promise<RedisClient> {
    if (options.client) return Promise.resolve(options.client);
    owned ??= (async () => {
      const url = options.url ?? process.env.REDIS_URL;
      if (!url) {
        throw new KiloError(
          "CONFIGURATION_INVALID",
          "redisCache needs `url` (or the REDIS_URL environment variable) or the host's ioredis `client`",
          { adapter: ADAPTER },
        );
      }
      const Redis = await loadIoredis();
      // Fail commands fast while Redis is unreachable: the core then reads storage instead of waiting.
      const client = new Redis(url, { maxRetriesPerRequest: 1, connectTimeout: 2_000 });
      client.on("error", (error) =>
        logger.debug({ adapter: ADAPTER, error: error.message }, "redis connection error"),
      );
      return client;
    })();
    const attempt = owned;
    attempt.catch(() => {
      if (owned === attempt) owned = null;
    });
    return attempt;
  }

  async function run<T>(operation: string, fn: (client: RedisClient) => Promise<T>): Promise<T> {
    ensureOpen();
    try {
      return await fn(await connect());
    } catch (error) {
      throw toKiloError(error, "CACHE_FAILED", `Cache adapter 'redis' failed in ${operation}`, {
        adapter: ADAPTER,
        retryable: true,
      });
    }
  }

  function notify(deliver: (subscription: Subscription) => void): void {
    for (const subscription of [...subscriptions]) {
      try {
        deliver(subscription);
      } catch (error) {
        // One failing listener must not keep the invalidation from the others.
        logger.warn({ adapter: ADAPTER, error }, "cache invalidation listener threw");
      }
    }
  }

  function receive(message: string): void {
    let keys: string[] | null = null;
    try {
      const parsed = JSON.parse(message) as { v?: unknown; keys?: unknown };
      if (
        parsed?.v === 1 &&
        Array.isArray(parsed.keys) &&
        parsed.keys.every((key) => typeof key === "string")
      ) {
        keys = parsed.keys as string[];
      }
    } catch {
      keys = null;
    }
    if (keys) {
      const received = keys;
      notify((subscription) => subscription.listener(received));
      return;
    }
    // Whatever was meant to be invalidated is unknown: drop everything rather than serve it.
    logger.warn({ adapter: ADAPTER, channel }, "malformed cache invalidation message; resetting subscribers");
    notify((subscription) => subscription.onReset?.());
  }

  function ensureSubscribed(): Promise<void> {
    subscribing ??= (async () => {
      const client = await connect();
      ensureOpen();
      // Resubscription is done by hand so that subscribers are reset only once it is live again.
      const connection = client.duplicate({
        autoResubscribe: false,
        maxRetriesPerRequest: null,
        enableOfflineQueue: true,
      });
      subscriber = connection;
      let live = false;
      let lost = false;
      connection.on("error", (error) =>
        logger.debug({ adapter: ADAPTER, error: error.message }, "redis subscription connection error"),
      );
      connection.on("message", (from, message) => {
        if (from === channel) receive(message);
      });
      connection.on("close", () => {
        if (!live || closed) return;
        live = false;
        lost = true;
        notify((subscription) => subscription.onReset?.());
      });
      connection.on("ready", () => {
        if (!lost || closed) return;
        connection.subscribe(channel).then(
          () => {
            if (closed) return;
            lost = false;
            live = true;
            notify((subscription) => subscription.onReset?.());
          },
          (error: unknown) => logger.warn({ adapter: ADAPTER, error }, "redis resubscription failed"),
        );
      });
      try {
        await connection.subscribe(channel);
      } catch (error) {
        connection.disconnect();
        if (subscriber === connection) subscriber = null;
        throw error;
      }
      live = true;
    })();
    const attempt = subscribing;
    attempt.catch(() => {
      if (subscribing === attempt) subscribing = null;
    });
    return attempt;
  }

  return {
    name: ADAPTER,
    capabilities: { shared: true },
    get: (key) => run("get", (client) => client.get(prefix + key)),
    async set(key, value, ttlMs) {
      if (ttlMs !== undefined && !(Number.isFinite(ttlMs) && ttlMs > 0)) {
        throw new KiloError(
          "VALIDATION_FAILED",
          `redisCache set: ttlMs must be a positive number, got ${ttlMs}`,
          {
            adapter: ADAPTER,
          },
        );
      }
      await run("set", (client) =>
        ttlMs === undefined
          ? client.set(prefix + key, value)
          : client.set(prefix + key, value, "PX", Math.max(1, Math.ceil(ttlMs))),
      );
    },
    async delete(keys) {
      if (keys.length === 0) return;
      await run("delete", async (client) => {
        // Sent back to back on one connection: the keys are gone before anyone hears of them.
        await Promise.all([
          client.del(...keys.map((key) => prefix + key)),
          client.publish(channel, JSON.stringify({ v: 1, keys })),
        ]);
      });
    },
    async subscribe(listener, onReset) {
      ensureOpen();
      const subscription: Subscription = { listener, onReset };
      subscriptions.add(subscription);
      try {
        await ensureSubscribed();
      } catch (error) {
        subscriptions.delete(subscription);
        throw toKiloError(error, "CACHE_FAILED", "Cache adapter 'redis' failed to subscribe", {
          adapter: ADAPTER,
          retryable: true,
        });
      }
      return () => {
        subscriptions.delete(subscription);
      };
    },
    async close() {
      if (closed) return;
      closed = true;
      subscriptions.clear();
      subscriber?.disconnect();
      subscriber = null;
      const client = owned ? await owned.catch(() => null) : null;
      if (!client) return;
      if (client.status === "ready") {
        await client.quit().catch(() => client.disconnect());
      } else {
        client.disconnect();
      }
    },
  };
}
