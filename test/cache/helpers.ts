import { KiloError } from "../../src/errors.js";
import type { Cache, CacheInvalidationListener } from "../../src/ports/cache.js";
import { STORAGE_REPOSITORY_NAMES, type Storage, type StorageRepositories } from "../../src/ports/storage.js";

const REPOSITORIES = new Set<keyof StorageRepositories>(STORAGE_REPOSITORY_NAMES);

/** A storage whose repository calls are counted by `repository.method`. */
export interface CountingStorage {
  storage: Storage;
  /** Calls made since the last `reset()`. */
  calls: string[];
  count(call: string): number;
  reset(): void;
}

/** Wraps a storage in a proxy that records every repository call made outside transactions. */
export function countingStorage(
  inner: Storage,
  overrides: Partial<Pick<Storage, "capabilities">> = {},
): CountingStorage {
  const calls: string[] = [];
  const repositories = new Map<string, unknown>();
  const wrap = (name: string, repository: object) =>
    new Proxy(repository, {
      get(target, method) {
        const value = Reflect.get(target, method);
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          calls.push(`${name}.${String(method)}`);
          return value.apply(target, args);
        };
      },
    });
  const storage = new Proxy(inner, {
    get(target, property) {
      if (property === "capabilities" && overrides.capabilities) return overrides.capabilities;
      const value = Reflect.get(target, property);
      if (typeof property === "string" && REPOSITORIES.has(property as keyof StorageRepositories)) {
        if (!repositories.has(property)) repositories.set(property, wrap(property, value as object));
        return repositories.get(property);
      }
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return {
    storage,
    calls,
    count: (call) => calls.filter((made) => made === call).length,
    reset: () => {
      calls.length = 0;
    },
  };
}

/** What several {@link fakeSharedCache} instances share: the entries and the subscribers ("one Redis"). */
export interface FakeRedis {
  entries: Map<string, string>;
  subscribers: Set<{ listener: CacheInvalidationListener; onReset: (() => void) | undefined }>;
  /** While true, every call of every instance fails (Redis is down). */
  down: boolean;
  /** Keys deleted, in order, across instances. */
  deleted: string[][];
}

export function fakeRedis(): FakeRedis {
  return { entries: new Map(), subscribers: new Set(), down: false, deleted: [] };
}

/**
 * A shared cache over a {@link FakeRedis}: what Redis would do, minus the
 * network. Deletes reach every subscriber synchronously (TTLs are ignored).
 */
export function fakeSharedCache(redis: FakeRedis, options: { subscribe?: boolean } = {}): Cache {
  const check = () => {
    if (redis.down) throw new KiloError("CACHE_FAILED", "fake redis is down", { adapter: "fake-redis" });
  };
  const cache: Cache = {
    name: "fake-redis",
    capabilities: { shared: true },
    async get(key) {
      check();
      return redis.entries.get(key) ?? null;
    },
    async set(key, value) {
      check();
      redis.entries.set(key, value);
    },
    async delete(keys) {
      check();
      for (const key of keys) redis.entries.delete(key);
      redis.deleted.push(keys);
      for (const subscriber of [...redis.subscribers]) subscriber.listener(keys);
    },
  };
  if (options.subscribe !== false) {
    cache.subscribe = async (listener, onReset) => {
      check();
      const subscriber = { listener, onReset };
      redis.subscribers.add(subscriber);
      return () => {
        redis.subscribers.delete(subscriber);
      };
    };
  }
  return cache;
}

/** Resolves after pending promise callbacks and one macrotask (a background subscription settles). */
export const settle = () => new Promise((resolve) => setTimeout(resolve, 0));
