import { describe, expect, it } from "vitest";
import { KiloError, memoryCache } from "../../src/index.js";

function fakeClock(start = 1_000) {
  let now = start;
  return {
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

describe("memoryCache", () => {
  it("gets what was set, null on a miss, and nothing after delete", async () => {
    const cache = memoryCache();
    expect(cache.name).toBe("memory");
    expect(cache.capabilities).toEqual({ shared: false });
    expect(cache.subscribe).toBeUndefined();
    expect(await cache.get("a")).toBeNull();
    await cache.set("a", "1");
    await cache.set("b", "2");
    await cache.set("a", "3");
    expect(await cache.get("a")).toBe("3");
    await cache.delete(["a", "missing"]);
    await cache.delete([]);
    expect(await cache.get("a")).toBeNull();
    expect(await cache.get("b")).toBe("2");
  });

  it("is bounded by entries: the least recently used goes first", async () => {
    const cache = memoryCache({ maxEntries: 2 });
    await cache.set("a", "1");
    await cache.set("b", "2");
    expect(await cache.get("a")).toBe("1"); // a is now the most recent
    await cache.set("c", "3");
    expect(cache.size).toBe(2);
    expect(await cache.get("b")).toBeNull();
    expect(await cache.get("a")).toBe("1");
    expect(await cache.get("c")).toBe("3");
  });

  it("expires entries after their TTL, per entry or by default, on the given clock", async () => {
    const clock = fakeClock();
    const cache = memoryCache({ ttlMs: 1_000, now: clock.now });
    await cache.set("default", "d");
    await cache.set("short", "s", 100);
    await cache.set("long", "l", 5_000);
    clock.advance(100);
    expect(await cache.get("short")).toBe("s");
    clock.advance(1);
    expect(await cache.get("short")).toBeNull();
    expect(await cache.get("default")).toBe("d");
    clock.advance(900);
    expect(await cache.get("default")).toBeNull();
    expect(await cache.get("long")).toBe("l");
    clock.advance(4_000);
    expect(await cache.get("long")).toBeNull();
  });

  it("keeps entries without a TTL until evicted", async () => {
    const clock = fakeClock();
    const cache = memoryCache({ now: clock.now });
    await cache.set("forever", "x");
    clock.advance(365 * 24 * 3_600_000);
    expect(await cache.get("forever")).toBe("x");
  });

  it("clears, and refuses use after close with CLOSED", async () => {
    const cache = memoryCache();
    await cache.set("a", "1");
    cache.clear();
    expect(await cache.get("a")).toBeNull();
    await cache.close();
    const failure = await cache.get("a").catch((error: unknown) => error);
    expect(KiloError.is(failure, "CLOSED")).toBe(true);
    expect((failure as KiloError).adapter).toBe("memory");
  });

  it("rejects bad options and TTLs with CONFIGURATION_INVALID", async () => {
    for (const options of [
      { maxEntries: 0 },
      { maxEntries: 1.5 },
      { ttlMs: 0 },
      { ttlMs: -1 },
      { ttlMs: Number.NaN },
    ]) {
      expect(() => memoryCache(options)).toThrow(KiloError);
    }
    const cache = memoryCache();
    const failure = await cache.set("a", "1", -5).catch((error: unknown) => error);
    expect(KiloError.is(failure, "CONFIGURATION_INVALID")).toBe(true);
  });
});
