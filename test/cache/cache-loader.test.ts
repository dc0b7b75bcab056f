import { afterEach, describe, expect, it, vi } from "vitest";
import { memoryStorage } from "../../adapters/storage/memory/index.js";
import {
  type Bot,
  type Cache,
  createCacheLoader,
  createSkillMatcher,
  jsonLogger,
  KiloError,
  type LlmRequest,
  type Proposal,
  type Skill,
  type SkillMatcher,
  type Storage,
} from "../../src/index.js";
import { makeBot, makeSkill, NOW, ORDER_TRACKER } from "../fixtures.js";
import { classify, setup, USER } from "../kilo/helpers.js";
import { countingStorage, fakeRedis, fakeSharedCache, settle } from "./helpers.js";

const CROSS_PROCESS = { transactions: true, crossProcess: true, durable: true };

function fakeClock() {
  let now = 10_000;
  return {
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

function warnings() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = jsonLogger({ level: "warn", write: (line) => lines.push(JSON.parse(line)) });
  return { logger, lines };
}

/** Memory storage holding one bot (with a soul and millisecond timestamps) and one skill. */
async function seeded() {
  const inner = memoryStorage();
  const bot = makeBot({
    soulInput: { valuesAndPrinciples: ["Freshness first"] },
    metadata: { note: "2026-01-01T00:00:00.000Z", nested: { at: "2026-02-02T00:00:00.000Z" } },
    createdAt: new Date("2026-11-21T10:00:00.123Z"),
    updatedAt: new Date("2026-11-21T10:00:01.987Z"),
  });
  await inner.users.upsert({ id: bot.userId, name: null, metadata: {}, createdAt: NOW });
  await inner.bots.create(bot);
  const skill: Skill = {
    ...makeSkill({ ...ORDER_TRACKER, id: "skill_orders" }),
    createdAt: new Date("2026-11-21T09:00:00.001Z"),
  };
  await inner.skills.create(skill);
  await inner.skills.create(makeSkill({ name: "Drafty", id: "skill_draft", status: "draft" }));
  return { inner, bot, skill };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("createCacheLoader: reading", () => {
  it("reads L1, then the shared L2, then storage, filling both", async () => {
    const { inner, bot } = await seeded();
    const counting = countingStorage(inner);
    const redis = fakeRedis();
    const first = createCacheLoader({ storage: counting.storage, cache: fakeSharedCache(redis) });

    expect(await first.bot(bot.id)).toEqual(bot);
    expect(counting.count("bots.get")).toBe(1);
    expect(redis.entries.has("bot/bot_1")).toBe(true);
    expect(await first.bot(bot.id)).toEqual(bot);
    expect(counting.count("bots.get")).toBe(1);

    // Another process: empty L1, same L2.
    const second = createCacheLoader({ storage: counting.storage, cache: fakeSharedCache(redis) });
    expect(await second.bot(bot.id)).toEqual(bot);
    expect(counting.count("bots.get")).toBe(1);

    expect(await first.bot("missing")).toBeNull();
    expect(await first.bot("missing")).toBeNull();
    expect(counting.count("bots.get")).toBe(3); // misses are not cached
  });

  it("revives Dates exactly from L1 and from L2, and leaves date-like strings alone", async () => {
    const { inner, bot, skill } = await seeded();
    const redis = fakeRedis();
    const loader = createCacheLoader({ storage: inner, cache: fakeSharedCache(redis) });
    const fromStorage = await loader.bot(bot.id);
    const fromL1 = await loader.bot(bot.id);
    const fromL2 = await createCacheLoader({ storage: inner, cache: fakeSharedCache(redis) }).bot(bot.id);
    for (const copy of [fromStorage, fromL1, fromL2]) {
      expect(copy).toEqual(bot);
      expect(copy?.createdAt).toBeInstanceOf(Date);
      expect(copy?.createdAt.getTime()).toBe(bot.createdAt.getTime());
      expect(copy?.updatedAt.toISOString()).toBe("2026-11-21T10:00:01.987Z");
      expect(copy?.metadata).toEqual({
        note: "2026-01-01T00:00:00.000Z",
        nested: { at: "2026-02-02T00:00:00.000Z" },
      });
    }
    const catalogs = [
      await loader.catalog(bot.id),
      await loader.catalog(bot.id),
      await createCacheLoader({ storage: inner, cache: fakeSharedCache(redis) }).catalog(bot.id),
    ];
    for (const catalog of catalogs) {
      expect(catalog.skills).toEqual([skill]); // the draft skill is not in the catalog
      expect(catalog.skills[0]?.createdAt.toISOString()).toBe("2026-11-21T09:00:00.001Z");
    }
  });

  it("returns copies: mutating a returned bot does not change the cache", async () => {
    const { inner, bot } = await seeded();
    const loader = createCacheLoader({ storage: inner });
    const copy = (await loader.bot(bot.id)) as Bot;
    copy.name = "Mutated";
    copy.createdAt.setFullYear(1999);
    expect(await loader.bot(bot.id)).toEqual(bot);
  });

  it("treats a malformed or invalid shared entry as a miss, logs it, and replaces it", async () => {
    const { inner, bot } = await seeded();
    const redis = fakeRedis();
    const counting = countingStorage(inner);
    await createCacheLoader({ storage: inner, cache: fakeSharedCache(redis) }).bot(bot.id);
    const good = redis.entries.get("bot/bot_1") as string;
    const envelope = JSON.parse(good) as { v: number; generation: null; value: Record<string, unknown> };
    const corrupt = [
      "{not json",
      "null",
      JSON.stringify({ ...envelope, v: 2 }),
      JSON.stringify({ ...envelope, value: { ...envelope.value, name: "" } }),
      JSON.stringify({ ...envelope, value: { ...envelope.value, createdAt: "yesterday" } }),
      JSON.stringify({ ...envelope, value: { ...envelope.value, soul: "be nice" } }),
      JSON.stringify({ ...envelope, value: { ...envelope.value, userId: undefined } }),
    ];
    for (const text of corrupt) {
      redis.entries.set("bot/bot_1", text);
      const { logger, lines } = warnings();
      const loader = createCacheLoader({ storage: counting.storage, cache: fakeSharedCache(redis), logger });
      counting.reset();
      expect(await loader.bot(bot.id)).toEqual(bot);
      expect(counting.count("bots.get")).toBe(1);
      expect(lines.map((line) => line.msg)).toEqual(["malformed shared cache entry; treated as a miss"]);
      expect(JSON.parse(redis.entries.get("bot/bot_1") as string)).toEqual(JSON.parse(good));
    }
  });

  it("ignores an L2 entry filled under an older generation (a write raced the load)", async () => {
    const { inner, bot } = await seeded();
    const redis = fakeRedis();
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    // A slow reader: it reads the old bot, then stalls before filling the caches.
    const slow: Storage = Object.assign(Object.create(inner) as Storage, {
      bots: {
        ...inner.bots,
        get: async (id: string) => {
          const value = await inner.bots.get(id);
          await gate;
          return value;
        },
      },
    });
    const reader = createCacheLoader({ storage: slow, cache: fakeSharedCache(redis) });
    const writer = createCacheLoader({ storage: inner, cache: fakeSharedCache(redis) });
    await settle();

    const stale = reader.bot(bot.id);
    await settle();
    await inner.bots.update({ ...bot, name: "Renamed" });
    await writer.invalidateBot(bot.id);
    release();
    expect((await stale)?.name).toBe("Crumb"); // what it read before the write
    expect(redis.entries.has("bot/bot_1")).toBe(true); // ...and wrote to L2, under the old generation

    const third = createCacheLoader({ storage: inner, cache: fakeSharedCache(redis) });
    expect((await third.bot(bot.id))?.name).toBe("Renamed");
    expect((await reader.bot(bot.id))?.name).toBe("Renamed"); // its L1 was not filled with the stale bot
  });
});

describe("createCacheLoader: shared cache failures", () => {
  it("falls through to storage when the shared cache fails, warning once per outage", async () => {
    const { inner, bot } = await seeded();
    const redis = fakeRedis();
    const clock = fakeClock();
    const counting = countingStorage(inner);
    const { logger, lines } = warnings();
    const loader = createCacheLoader({
      storage: counting.storage,
      cache: fakeSharedCache(redis),
      logger,
      now: clock.now,
      ttlMs: 0,
      unsyncedTtlMs: 0,
    });
    redis.down = true;
    expect(await loader.bot(bot.id)).toEqual(bot);
    expect((await loader.catalog(bot.id)).skills).toHaveLength(1);
    expect(await loader.bot(bot.id)).toEqual(bot);
    expect(counting.count("bots.get")).toBe(2);
    const failures = () => lines.filter((line) => line.msg === "shared cache failed; reading from storage");
    expect(failures()).toHaveLength(1);
    expect(failures()[0]).toMatchObject({ adapter: "fake-redis", error: { code: "CACHE_FAILED" } });

    redis.down = false;
    clock.advance(5_000);
    expect(await loader.bot(bot.id)).toEqual(bot); // retried: fills L2 again
    expect(redis.entries.has("bot/bot_1")).toBe(true);
    expect(failures()).toHaveLength(1);
  });

  it("gives up on a shared cache that does not answer within sharedTimeoutMs", async () => {
    const { inner, bot } = await seeded();
    const hanging: Cache = {
      name: "hanging",
      capabilities: { shared: true },
      get: () => new Promise<string | null>(() => undefined),
      set: () => new Promise<void>(() => undefined),
      delete: () => new Promise<void>(() => undefined),
    };
    const { logger, lines } = warnings();
    const loader = createCacheLoader({ storage: inner, cache: hanging, logger, sharedTimeoutMs: 20 });
    const started = performance.now();
    expect(await loader.bot(bot.id)).toEqual(bot);
    await loader.invalidateBot(bot.id);
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(lines[0]?.error).toMatchObject({ code: "CACHE_FAILED" });
  });

  it("does not use L2 again until the invalidations it failed to send are delivered", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const { inner, bot } = await seeded();
    const redis = fakeRedis();
    const clock = fakeClock();
    const other = createCacheLoader({ storage: inner, cache: fakeSharedCache(redis) });
    const loader = createCacheLoader({ storage: inner, cache: fakeSharedCache(redis), now: clock.now });
    await vi.advanceTimersByTimeAsync(0);
    await other.bot(bot.id); // L2 holds the bot

    redis.down = true;
    await inner.bots.update({ ...bot, name: "Renamed" });
    await loader.invalidateBot(bot.id); // cannot reach L2: the write's invalidation is pending
    redis.down = false;
    expect(redis.deleted).toEqual([]);

    // No traffic needed: a timer retries after the outage window.
    clock.advance(5_000);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(redis.deleted).toEqual([["bot/bot_1"]]);
    expect((await other.bot(bot.id))?.name).toBe("Renamed");
    expect((await loader.bot(bot.id))?.name).toBe("Renamed");
  });
});

describe("createCacheLoader: invalidation and L1 lifetime", () => {
  it("drops L1 entries another process invalidates, and all of them on a reset", async () => {
    const { inner, bot } = await seeded();
    const redis = fakeRedis();
    const counting = countingStorage(inner);
    const a = createCacheLoader({ storage: counting.storage, cache: fakeSharedCache(redis) });
    const b = createCacheLoader({ storage: counting.storage, cache: fakeSharedCache(redis) });
    await settle();
    await b.bot(bot.id);
    await b.catalog(bot.id);
    counting.reset();

    await inner.bots.update({ ...bot, name: "Renamed" });
    await a.invalidateBot(bot.id);
    expect((await b.bot(bot.id))?.name).toBe("Renamed");
    expect(counting.count("bots.get")).toBe(1);
    await b.catalog(bot.id);
    expect(counting.count("skills.listByBot")).toBe(0); // only the bot was invalidated

    for (const subscriber of redis.subscribers) subscriber.onReset?.();
    redis.entries.clear();
    counting.reset();
    await b.bot(bot.id);
    await b.catalog(bot.id);
    expect(counting.calls).toEqual(["bots.get", "skills.listByBot"]);
  });

  it("retries a failed subscription in the background", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const { inner } = await seeded();
    const redis = fakeRedis();
    redis.down = true;
    const loader = createCacheLoader({ storage: inner, cache: fakeSharedCache(redis) });
    await vi.advanceTimersByTimeAsync(0);
    expect(redis.subscribers.size).toBe(0);
    redis.down = false;
    await vi.advanceTimersByTimeAsync(5_000);
    expect(redis.subscribers.size).toBe(1);
    await loader.close();
    expect(redis.subscribers.size).toBe(0);
  });

  it("keeps L1 entries briefly (unsyncedTtlMs) when other processes may write unheard", async () => {
    const { inner, bot } = await seeded();
    const cases: Array<{ storage: "cross" | "local"; cache?: "subscribing" | "silent"; ttl: number }> = [
      { storage: "local", ttl: 60_000 },
      { storage: "cross", ttl: 5_000 },
      { storage: "local", cache: "silent", ttl: 5_000 },
      { storage: "cross", cache: "silent", ttl: 5_000 },
      { storage: "cross", cache: "subscribing", ttl: 60_000 },
    ];
    for (const setting of cases) {
      const clock = fakeClock();
      const counting = countingStorage(
        inner,
        setting.storage === "cross" ? { capabilities: CROSS_PROCESS } : {},
      );
      const cache = setting.cache
        ? fakeSharedCache(fakeRedis(), { subscribe: setting.cache === "subscribing" })
        : undefined;
      // L2 is down, so what is measured is L1 alone.
      const loader = createCacheLoader({
        storage: counting.storage,
        cache,
        now: clock.now,
        sharedTimeoutMs: 10,
      });
      await settle();
      if (cache) {
        cache.get = async () => {
          throw new Error("down");
        };
      }
      await loader.bot(bot.id);
      clock.advance(setting.ttl - 1);
      await loader.bot(bot.id);
      expect(counting.count("bots.get"), JSON.stringify(setting)).toBe(1);
      clock.advance(2);
      await loader.bot(bot.id);
      expect(counting.count("bots.get"), JSON.stringify(setting)).toBe(2);
    }
  });

  it("turns L1 off with ttlMs 0 or unsyncedTtlMs 0", async () => {
    const { inner, bot } = await seeded();
    const local = countingStorage(inner);
    const off = createCacheLoader({ storage: local.storage, ttlMs: 0 });
    const cross = countingStorage(inner, { capabilities: CROSS_PROCESS });
    const unsyncedOff = createCacheLoader({ storage: cross.storage, unsyncedTtlMs: 0 });
    for (let i = 0; i < 3; i++) {
      await off.bot(bot.id);
      await unsyncedOff.bot(bot.id);
    }
    expect(local.count("bots.get")).toBe(3);
    expect(cross.count("bots.get")).toBe(3);
    expect(() => createCacheLoader({ storage: inner, ttlMs: -1 })).toThrow(KiloError);
    expect(() => createCacheLoader({ storage: inner, sharedTimeoutMs: 0 })).toThrow(KiloError);
  });

  it("changes the catalog key when the skills change, in every process, and only then", async () => {
    const { inner, bot } = await seeded();
    const redis = fakeRedis();
    const a = createCacheLoader({ storage: inner, cache: fakeSharedCache(redis) });
    const b = createCacheLoader({ storage: inner, cache: fakeSharedCache(redis) });
    await settle();
    const before = (await a.catalog(bot.id)).key;
    expect(before.startsWith(`${bot.id}:`)).toBe(true);
    expect((await a.catalog(bot.id)).key).toBe(before);
    expect((await b.catalog(bot.id)).key).toBe(before); // read from L2: same version token

    await inner.skills.create(makeSkill({ name: "Stock", id: "skill_stock", triggers: ["flour"] }));
    await a.invalidateSkills(bot.id);
    const afterA = await a.catalog(bot.id);
    const afterB = await b.catalog(bot.id);
    expect(afterA.key).not.toBe(before);
    expect(afterB.key).toBe(afterA.key);
    expect(afterB.skills.map((skill) => skill.name)).toEqual(["Order Tracker", "Stock"]);
  });

  it("closes: later reads fail with CLOSED, the subscription ends and the shared cache is closed", async () => {
    const { inner, bot } = await seeded();
    const redis = fakeRedis();
    const cache = fakeSharedCache(redis);
    const closeShared = vi.fn(async () => undefined);
    cache.close = closeShared;
    const loader = createCacheLoader({ storage: inner, cache });
    await settle();
    expect(redis.subscribers.size).toBe(1);
    await loader.close();
    await loader.close();
    expect(redis.subscribers.size).toBe(0);
    expect(closeShared).toHaveBeenCalledTimes(1);
    const failure = await loader.bot(bot.id).catch((error: unknown) => error);
    expect(KiloError.is(failure, "CLOSED")).toBe(true);
  });
});

function systemText(request: LlmRequest | undefined): string {
  return (request?.system ?? []).map((block) => block.text).join("\n");
}

/** A kilo on counted memory storage with a fake shared cache, recording the catalog key of every match. */
async function cachedKilo(script: Parameters<typeof setup>[0], redis = fakeRedis()) {
  const counting = countingStorage(memoryStorage());
  const catalogKeys: string[] = [];
  const { kilo, provider } = setup(script, {
    storage: counting.storage,
    cache: fakeSharedCache(redis),
    matcher: (parts): SkillMatcher => {
      const inner = createSkillMatcher({ gateway: parts.gateway });
      return {
        match(input) {
          catalogKeys.push(input.catalog.key);
          return inner.match(input);
        },
      };
    },
  });
  await settle();
  const bot = await kilo.bots.create({
    userId: USER,
    name: "Crumb",
    soul: { valuesAndPrinciples: ["Freshness first"] },
  });
  const skill = await kilo.skills.create(bot.id, ORDER_TRACKER);
  return { kilo, provider, counting, redis, bot, skill, catalogKeys };
}

describe("kilo with the cache", () => {
  it("makes a warm turn without reading the bot or the skill list from storage", async () => {
    const { counting, bot } = await cachedKilo({});
    // A fresh instance (a restarted process) on the same storage: its first turn is cold.
    const { kilo } = setup(
      { classify: [classify(null), classify(null)], chat: ["a", "b"] },
      { storage: counting.storage },
    );
    counting.reset();
    const first = await kilo.chat({ botId: bot.id, userId: USER, message: "hello there" });
    expect(counting.count("bots.get")).toBe(1);
    // The bot's scopes (system, its owner's, its own) are read in one call.
    expect(counting.count("skills.listByScopes")).toBe(1);

    counting.reset();
    await kilo.chat({
      botId: bot.id,
      userId: USER,
      conversationId: first.conversationId,
      message: "and again",
    });
    expect(counting.count("bots.get")).toBe(0);
    expect(counting.count("skills.listByScopes")).toBe(0);
    expect(await kilo.bots.get(bot.id)).toMatchObject({ id: bot.id, name: "Crumb" });
    expect(counting.count("bots.get")).toBe(0);
  });

  it("invalidates on every write: bot update and delete, skill create, update and delete", async () => {
    const { kilo, provider, counting, redis, bot, skill, catalogKeys } = await cachedKilo({
      classify: [classify(null), classify(null), classify(null), classify(null)],
      chat: ["1", "2", "3", "4", "5", "6"],
    });
    const turn = (message: string) => kilo.chat({ botId: bot.id, userId: USER, message });
    expect(redis.deleted).toEqual([[`bot/${bot.id}`, `skills/${bot.id}`], [`skills/${bot.id}`]]);

    await turn("hello there");
    expect(systemText(provider.requests.at(-1))).toContain("Freshness first");

    redis.deleted.length = 0;
    await kilo.bots.update(bot.id, { soul: { valuesAndPrinciples: ["Butter is life"] } });
    expect(redis.deleted).toEqual([[`bot/${bot.id}`]]);
    await turn("hello again");
    expect(systemText(provider.requests.at(-1))).toContain("Butter is life");
    expect(systemText(provider.requests.at(-1))).not.toContain("Freshness first");

    const keys = () => catalogKeys.slice(-2);
    redis.deleted.length = 0;
    await kilo.skills.update(bot.id, skill.id, { triggers: ["croissant"] });
    expect(redis.deleted).toEqual([[`skills/${bot.id}`]]);
    const matched = await turn("how many croissant today?");
    expect(matched.skill?.id).toBe(skill.id);
    expect(matched.match.pass).toBe("fast");
    expect(keys()[0]).not.toBe(keys()[1]);

    redis.deleted.length = 0;
    const stock = await kilo.skills.create(bot.id, { name: "Stock", triggers: ["flour"] });
    expect(redis.deleted).toEqual([[`skills/${bot.id}`]]);
    expect((await turn("flour left?")).skill?.id).toBe(stock.id);
    expect(keys()[0]).not.toBe(keys()[1]);

    redis.deleted.length = 0;
    await kilo.skills.delete(bot.id, stock.id);
    expect(redis.deleted).toEqual([[`skills/${bot.id}`]]);
    expect((await turn("flour left?")).skill).toBeNull();
    expect(keys()[0]).not.toBe(keys()[1]);

    redis.deleted.length = 0;
    counting.reset();
    await kilo.bots.delete(bot.id);
    expect(redis.deleted).toEqual([[`bot/${bot.id}`, `skills/${bot.id}`]]);
    const gone = await kilo.bots.get(bot.id).catch((error: unknown) => error);
    expect(KiloError.is(gone, "NOT_FOUND")).toBe(true);
    const refused = await turn("hello?").catch((error: unknown) => error);
    expect(KiloError.is(refused, "NOT_FOUND")).toBe(true);
  });

  it("invalidates the catalog when a proposal is accepted, through the API or by a 'yes' in chat", async () => {
    const { kilo, counting, redis, bot } = await cachedKilo({ classify: [classify(null)], chat: ["ok"] });
    const proposal = (id: string, name: string, conversationId: string | null): Proposal => ({
      id,
      botId: bot.id,
      userId: USER,
      conversationId,
      name,
      description: `Tracks ${name.toLowerCase()}`,
      triggers: [name.toLowerCase()],
      dataFields: [],
      clarifyingQuestions: [],
      sourceMessage: "track things",
      status: "pending",
      skillId: null,
      createdAt: NOW,
      resolvedAt: null,
    });
    await counting.storage.proposals.create(proposal("prop_api", "Deliveries", null));
    await kilo.chat({ botId: bot.id, userId: USER, conversationId: "conv_p", message: "hello there" });

    redis.deleted.length = 0;
    const accepted = await kilo.proposals.accept(bot.id, "prop_api");
    expect(accepted.skill?.name).toBe("Deliveries");
    expect(redis.deleted).toEqual([[`skills/${bot.id}`]]);

    await counting.storage.proposals.create(proposal("prop_chat", "Allergies", "conv_p"));
    redis.deleted.length = 0;
    const yes = await kilo.chat({ botId: bot.id, userId: USER, conversationId: "conv_p", message: "yes" });
    expect(yes.createdSkill?.name).toBe("Allergies");
    expect(redis.deleted).toEqual([[`skills/${bot.id}`]]);
  });

  it("never fails a turn or a write because the shared cache is down", async () => {
    const redis = fakeRedis();
    const { lines, logger } = warnings();
    const { kilo, bot, skill } = await (async () => {
      const counting = countingStorage(memoryStorage());
      const made = setup(
        { classify: [classify(null)], chat: ["fine"] },
        {
          storage: counting.storage,
          cache: fakeSharedCache(redis),
          logger,
        },
      );
      redis.down = true;
      const created = await made.kilo.bots.create({ userId: USER, name: "Crumb" });
      const createdSkill = await made.kilo.skills.create(created.id, ORDER_TRACKER);
      return { kilo: made.kilo, bot: created, skill: createdSkill };
    })();
    expect((await kilo.chat({ botId: bot.id, userId: USER, message: "hello there" })).reply).toBe("fine");
    await kilo.skills.update(bot.id, skill.id, { triggers: ["cake"] });
    await kilo.bots.update(bot.id, { name: "Crumb II" });
    expect((await kilo.bots.get(bot.id)).name).toBe("Crumb II");
    expect(lines.some((line) => line.msg === "shared cache failed; reading from storage")).toBe(true);
  });

  it("closes the shared cache with kilo, and refuses reads afterwards", async () => {
    const redis = fakeRedis();
    const cache = fakeSharedCache(redis);
    const closeShared = vi.fn(async () => undefined);
    cache.close = closeShared;
    const { kilo } = setup({}, { cache });
    const bot = await kilo.bots.create({ userId: USER, name: "Crumb" });
    await kilo.bots.get(bot.id);
    await kilo.close();
    expect(closeShared).toHaveBeenCalledTimes(1);
    const failure = await kilo.bots.get(bot.id).catch((error: unknown) => error);
    expect(KiloError.is(failure, "CLOSED")).toBe(true);
  });
});
