import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { redisCache } from "../../adapters/cache/redis/index.js";
import { type Cache, KiloError } from "../../src/index.js";

// Never skipped: these tests fail loudly when Redis does not answer on 127.0.0.1:6379.
const URL = "redis://127.0.0.1:6379";
const PREFIX = `kilo-test-${randomUUID().slice(0, 8)}:`;
let admin: Redis;
const opened: Cache[] = [];
let scope = 0;

/** A fresh key prefix (under this file's prefix) per test, so tests never see each other's keys or messages. */
function nextPrefix(): string {
  scope += 1;
  return `${PREFIX}${scope}:`;
}

function cache(options: Parameters<typeof redisCache>[0]): Cache {
  const made = redisCache(options);
  opened.push(made);
  return made;
}

/** Resolves with the first keys the listener receives (or rejects after 2 s). */
function nextMessage(target: Cache, onReset?: () => void): Promise<{ keys: Promise<string[]> }> {
  let received: (keys: string[]) => void = () => undefined;
  const keys = new Promise<string[]>((resolve, reject) => {
    received = resolve;
    setTimeout(() => reject(new Error("no invalidation message within 2 s")), 2_000).unref();
  });
  return (target.subscribe as NonNullable<Cache["subscribe"]>)((message) => received(message), onReset).then(
    () => ({ keys }),
  );
}

async function until(condition: () => Promise<boolean> | boolean, what: string): Promise<void> {
  const deadline = Date.now() + 3_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const subscribers = async (channel: string) =>
  Number(((await admin.pubsub("NUMSUB", channel)) as [string, number])[1]);

beforeAll(async () => {
  admin = new Redis(URL, { maxRetriesPerRequest: 1 });
  expect(await admin.ping()).toBe("PONG");
});

afterAll(async () => {
  for (const made of opened) await made.close?.();
  const keys = await admin.keys(`${PREFIX}*`);
  if (keys.length > 0) await admin.del(...keys);
  expect(await admin.keys(`${PREFIX}*`)).toEqual([]);
  await admin.quit();
});

describe("redisCache", () => {
  it("gets, sets and deletes string values under its key prefix", async () => {
    const keyPrefix = nextPrefix();
    const redis = cache({ url: URL, keyPrefix });
    expect(redis.name).toBe("redis");
    expect(redis.capabilities).toEqual({ shared: true });
    expect(await redis.get("bot/b1")).toBeNull();
    await redis.set("bot/b1", '{"name":"Crumb ☕ \\u0000"}');
    await redis.set("skills/b1", "two");
    expect(await admin.get(`${keyPrefix}bot/b1`)).toBe('{"name":"Crumb ☕ \\u0000"}');
    expect(await redis.get("bot/b1")).toBe('{"name":"Crumb ☕ \\u0000"}');
    await redis.delete(["bot/b1", "missing"]);
    await redis.delete([]);
    expect(await redis.get("bot/b1")).toBeNull();
    expect(await redis.get("skills/b1")).toBe("two");
    expect(await admin.ttl(`${keyPrefix}skills/b1`)).toBe(-1); // no TTL given: no expiry
  });

  it("expires values after ttlMs", async () => {
    const keyPrefix = nextPrefix();
    const redis = cache({ url: URL, keyPrefix });
    await redis.set("short", "x", 80);
    await redis.set("long", "y", 60_000);
    const ttl = await admin.pttl(`${keyPrefix}short`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(80);
    await until(async () => (await redis.get("short")) === null, "the short entry to expire");
    expect(await redis.get("long")).toBe("y");
    const failure = await redis.set("bad", "x", 0).catch((error: unknown) => error);
    expect(KiloError.is(failure, "VALIDATION_FAILED")).toBe(true);
  });

  it("broadcasts deleted keys to subscribers of every instance with the same prefix, and only those", async () => {
    const keyPrefix = nextPrefix();
    const writer = cache({ url: URL, keyPrefix });
    const reader = cache({ url: URL, keyPrefix });
    const stranger = cache({ url: URL, keyPrefix: nextPrefix() });
    const heardByReader = await nextMessage(reader);
    const heardByWriter = await nextMessage(writer);
    const strangerHeard: string[][] = [];
    await stranger.subscribe?.((keys) => strangerHeard.push(keys));

    await writer.set("bot/b1", "old");
    await writer.delete(["bot/b1", "skills/b1"]);
    expect(await heardByReader.keys).toEqual(["bot/b1", "skills/b1"]);
    expect(await heardByWriter.keys).toEqual(["bot/b1", "skills/b1"]);
    // The keys are gone before anyone hears of them.
    expect(await reader.get("bot/b1")).toBeNull();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(strangerHeard).toEqual([]);
  });

  it("stops delivering to a listener that unsubscribed", async () => {
    const keyPrefix = nextPrefix();
    const redis = cache({ url: URL, keyPrefix });
    const heard: string[][] = [];
    const stop = await redis.subscribe?.((keys) => heard.push(keys));
    const still = await nextMessage(redis);
    await stop?.();
    await redis.delete(["a"]);
    expect(await still.keys).toEqual(["a"]);
    expect(heard).toEqual([]);
  });

  it("resets subscribers on a malformed message and when the subscription connection drops", async () => {
    const keyPrefix = nextPrefix();
    const name = `kilo-test-${randomUUID().slice(0, 8)}`;
    const host = new Redis(URL, { connectionName: name });
    const redis = cache({ client: host, keyPrefix });
    let resets = 0;
    const heard: string[][] = [];
    await redis.subscribe?.(
      (keys) => heard.push(keys),
      () => {
        resets += 1;
      },
    );
    await admin.publish(`${keyPrefix}invalidations`, "not json");
    await until(() => resets === 1, "a reset after a malformed message");

    // Kill only the subscription connection (the duplicate carries the host client's name).
    const clients = String(await admin.call("CLIENT", "LIST", "TYPE", "pubsub"));
    const ids = clients
      .split("\n")
      .filter((line) => line.includes(` name=${name} `))
      .map((line) => /id=(\d+)/.exec(line)?.[1]);
    expect(ids).toHaveLength(1);
    await admin.client("KILL", "ID", ids[0] as string);
    // One reset when it drops, one when it is subscribed again.
    await until(() => resets === 3, "resets after the connection dropped and came back");
    await redis.delete(["after-reconnect"]);
    await until(() => heard.length === 1, "delivery after resubscribing");
    expect(heard).toEqual([["after-reconnect"]]);
    await redis.close?.();
    await host.quit();
  });

  it("never quits the host's client; closes the subscription connection it duplicated", async () => {
    const keyPrefix = nextPrefix();
    const host = new Redis(URL);
    const redis = redisCache({ client: host, keyPrefix });
    await redis.set("k", "v");
    await redis.subscribe?.(() => undefined);
    const channel = `${keyPrefix}invalidations`;
    expect(await subscribers(channel)).toBe(1);
    await redis.close?.();
    await redis.close?.();
    expect(host.status).toBe("ready");
    expect(await host.ping()).toBe("PONG");
    expect(await host.get(`${keyPrefix}k`)).toBe("v");
    await until(async () => (await subscribers(channel)) === 0, "the subscription connection to close");
    const failure = await redis.get("k").catch((error: unknown) => error);
    expect(KiloError.is(failure, "CLOSED")).toBe(true);
    expect((failure as KiloError).adapter).toBe("redis");
    await host.quit();
  });

  it("closes the client and subscription it created from a URL", async () => {
    const keyPrefix = nextPrefix();
    const redis = redisCache({ url: URL, keyPrefix });
    await redis.subscribe?.(() => undefined);
    await redis.set("k", "v");
    const channel = `${keyPrefix}invalidations`;
    expect(await subscribers(channel)).toBe(1);
    await redis.close?.();
    await until(async () => (await subscribers(channel)) === 0, "the subscription connection to close");
    const failure = await redis.subscribe?.(() => undefined).catch((error: unknown) => error);
    expect(KiloError.is(failure, "CLOSED")).toBe(true);
  });

  it("reports failures as KiloErrors naming the adapter, fast when Redis is unreachable", async () => {
    const unreachable = cache({ url: "redis://127.0.0.1:1", keyPrefix: nextPrefix() });
    const started = Date.now();
    const failure = await unreachable.get("k").catch((error: unknown) => error);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(KiloError.is(failure, "CACHE_FAILED")).toBe(true);
    expect(failure).toMatchObject({ adapter: "redis", retryable: true });
    expect((failure as KiloError).message).toMatch(/^Cache adapter 'redis' failed in get/);
  });

  it("refuses bad options, and names the option and variable when no URL is set", async () => {
    expect(() => redisCache({ url: URL, client: new Redis(URL, { lazyConnect: true }) })).toThrow(/not both/);
    expect(() => redisCache({ client: {} as never })).toThrow(KiloError);
    const saved = process.env.REDIS_URL;
    delete process.env.REDIS_URL;
    try {
      const failure = await redisCache()
        .get("k")
        .catch((error: unknown) => error);
      expect(KiloError.is(failure, "CONFIGURATION_INVALID")).toBe(true);
      expect((failure as KiloError).message).toContain("REDIS_URL");
    } finally {
      if (saved !== undefined) process.env.REDIS_URL = saved;
    }
  });

  it("asks for the ioredis package when it is not installed", async () => {
    vi.resetModules();
    vi.doMock("ioredis", () => {
      throw Object.assign(new Error("Cannot find package 'ioredis'"), { code: "ERR_MODULE_NOT_FOUND" });
    });
    try {
      const fresh = await import("../../adapters/cache/redis/index.js");
      const failure = await fresh
        .redisCache({ url: URL })
        .get("k")
        .catch((error: unknown) => error);
      expect(KiloError.is(failure, "CONFIGURATION_INVALID")).toBe(true);
      expect((failure as KiloError).message).toContain("npm install ioredis");
      expect((failure as KiloError).adapter).toBe("redis");
    } finally {
      vi.doUnmock("ioredis");
      vi.resetModules();
    }
  });
});
