import { randomBytes, randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { redisCache } from "../../adapters/cache/redis/index.js";
import { postgresStorage } from "../../adapters/storage/postgres/index.js";
import { type Cache, createKilo, jsonLogger, type Kilo, type LlmRequest } from "../../src/index.js";
import { mockProvider, type PurposeScript, scriptByPurpose } from "../../src/testing/index.js";
import { countingStorage } from "../cache/helpers.js";
import { ORDER_TRACKER } from "../fixtures.js";
import { classify, USER } from "../kilo/helpers.js";

// Two kilo instances standing for two processes: each has its own L1, its own Redis
// connections and its own Postgres pool; they share one Redis (under a random prefix) and one
// Postgres schema (dropped afterwards). Never skipped: fails loudly when either server is down.
const URL = "redis://127.0.0.1:6379";
const DATABASE_URL = process.env.KILO_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const SCHEMA = `kilo_test_${randomBytes(4).toString("hex")}_cache`;
const PREFIX = `kilo-test-${randomUUID().slice(0, 8)}:`;
const CHANNEL = `${PREFIX}invalidations`;
let admin: Redis;
let database: pg.Pool;
const kilos: Kilo[] = [];

beforeAll(async () => {
  admin = new Redis(URL, { maxRetriesPerRequest: 1 });
  expect(await admin.ping()).toBe("PONG");
  database = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
  expect((await database.query<{ ok: number }>("select 1 as ok")).rows[0]?.ok).toBe(1);
});

afterAll(async () => {
  for (const kilo of kilos) await kilo.close();
  await database.query(`drop schema if exists "${SCHEMA}" cascade`);
  await database.end();
  const keys = await admin.keys(`${PREFIX}*`);
  if (keys.length > 0) await admin.del(...keys);
  await admin.quit();
});

function instance(
  script: PurposeScript,
  name: string,
  options: { redis?: boolean; unsyncedTtlMs?: number } = {},
) {
  const provider = mockProvider({ respond: scriptByPurpose(script), model: "claude-sonnet-4-5" });
  const storage = postgresStorage({ connectionString: DATABASE_URL, schema: SCHEMA, poolSize: 2 });
  const counting = countingStorage(storage);
  const cache = redisCache({ url: URL, keyPrefix: PREFIX });
  // Counts the Redis round trips the instance makes (reads and writes of entries).
  const redisCalls: string[] = [];
  const counted: Cache = {
    ...cache,
    name: cache.name,
    capabilities: cache.capabilities,
    get: (key) => {
      redisCalls.push(`get ${key}`);
      return cache.get(key);
    },
    set: (key, value, ttlMs) => {
      redisCalls.push(`set ${key}`);
      return cache.set(key, value, ttlMs);
    },
  };
  const kilo = createKilo({
    storage: counting.storage,
    providers: [provider],
    ...(options.redis === false ? {} : { cache: counted }),
    cacheOptions: { unsyncedTtlMs: options.unsyncedTtlMs },
    logger: jsonLogger({ level: "warn", base: { instance: name } }),
  });
  kilos.push(kilo);
  return { kilo, provider, counting, cache, redisCalls };
}

const systemText = (request: LlmRequest | undefined) =>
  (request?.system ?? []).map((block) => block.text).join("\n");
const lastChat = (requests: LlmRequest[]) => requests.filter((request) => request.purpose === "chat").at(-1);

/**
 * Waits until `cache` (one instance's cache) delivers a message whose keys
 * satisfy `match` to its listeners; the instance's own L1 listener, on the
 * same subscription, has then dropped those keys. Messages already on their
 * way when this is called are drained first (Redis delivers in order), so
 * an earlier write's invalidation cannot be mistaken for the awaited one.
 */
async function delivered(
  cache: Cache,
  match: (keys: string[]) => boolean,
): Promise<{ heard: Promise<void> }> {
  const barrier = `sync/${randomUUID()}`;
  let drained: () => void = () => undefined;
  let heard: () => void = () => undefined;
  const drainedPromise = new Promise<void>((resolve) => {
    drained = resolve;
  });
  const heardPromise = new Promise<void>((resolve) => {
    heard = resolve;
  });
  let ready = false;
  const stop = await (cache.subscribe as NonNullable<Cache["subscribe"]>)((keys) => {
    if (keys.includes(barrier)) {
      ready = true;
      drained();
    } else if (ready && match(keys)) {
      heard();
    }
  });
  await admin.publish(CHANNEL, JSON.stringify({ v: 1, keys: [barrier] }));
  await withTimeout(drainedPromise, "the barrier message");
  return { heard: withTimeout(heardPromise, "the invalidation").finally(() => stop()) };
}

const only = (key: string) => (keys: string[]) => keys.length === 1 && keys[0] === key;

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 2_000);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function until(condition: () => Promise<boolean> | boolean, what: string): Promise<void> {
  const deadline = Date.now() + 3_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("two kilo instances sharing storage and Redis", () => {
  it("see each other's writes on their next turn, and make warm turns without storage reads", async () => {
    const a = instance({ classify: [classify(null)], chat: ["A1", "A2"] }, "a");
    const b = instance(
      { classify: [classify(null), classify(null), classify(null)], chat: ["B1", "B2", "B3", "B4"] },
      "b",
    );
    // Both invalidation subscriptions are live before anyone writes.
    await until(
      async () => Number(((await admin.pubsub("NUMSUB", CHANNEL)) as [string, number])[1]) === 2,
      "subscriptions",
    );

    const bot = await a.kilo.bots.create({
      userId: USER,
      name: "Crumb",
      soul: { valuesAndPrinciples: ["Freshness first"] },
    });
    // Invalidations arrive in order: once B heard of the skill, it has heard of the bot's creation too.
    const created = await delivered(b.cache, only(`skills/${bot.id}`));
    const skill = await a.kilo.skills.create(bot.id, ORDER_TRACKER);
    await created.heard;

    // B's first turn: cold L1. It reads L2 (which A filled) or storage.
    const first = await b.kilo.chat({ botId: bot.id, userId: USER, message: "hello there" });
    expect(systemText(lastChat(b.provider.requests))).toContain("Freshness first");

    // B's second turn is warm: no bot or skill reads from storage, and no Redis round trip either.
    b.counting.reset();
    b.redisCalls.length = 0;
    await b.kilo.chat({
      botId: bot.id,
      userId: USER,
      conversationId: first.conversationId,
      message: "hi again",
    });
    expect(b.counting.count("bots.get")).toBe(0);
    expect(b.counting.count("skills.listByBot")).toBe(0);
    expect(b.redisCalls).toEqual([]);

    // A changes the soul and the skill's triggers.
    const botDropped = await delivered(b.cache, only(`bot/${bot.id}`));
    const skillsDropped = await delivered(b.cache, only(`skills/${bot.id}`));
    await a.kilo.bots.update(bot.id, { soul: { valuesAndPrinciples: ["Butter is life"] } });
    await a.kilo.skills.update(bot.id, skill.id, { triggers: ["croissant"] });
    // Pub/sub delivery is asynchronous; once B's process has heard of the writes...
    await botDropped.heard;
    await skillsDropped.heard;

    // ...B's very next turn runs with the new soul and matches the new trigger.
    b.counting.reset();
    b.redisCalls.length = 0;
    const next = await b.kilo.chat({
      botId: bot.id,
      userId: USER,
      conversationId: first.conversationId,
      message: "how many croissant are left?",
    });
    const prompt = systemText(lastChat(b.provider.requests));
    expect(prompt).toContain("Butter is life");
    expect(prompt).not.toContain("Freshness first");
    expect(next.skill).toEqual({ id: skill.id, name: "Order Tracker" });
    expect(next.match.pass).toBe("fast");
    expect(b.counting.count("bots.get")).toBe(1);
    expect(b.counting.count("skills.listByBot")).toBe(1);
    expect(b.redisCalls.sort()).toEqual([
      `get bot/${bot.id}`,
      `get gen/bot/${bot.id}`,
      `get gen/skills/${bot.id}`,
      `get skills/${bot.id}`,
      `set bot/${bot.id}`,
      `set skills/${bot.id}`,
    ]);

    // And warm again afterwards.
    b.counting.reset();
    await b.kilo.chat({
      botId: bot.id,
      userId: USER,
      conversationId: first.conversationId,
      message: "thanks!",
    });
    expect(b.counting.count("bots.get")).toBe(0);
    expect(b.counting.count("skills.listByBot")).toBe(0);

    // The other way round: B deletes the skill, A stops matching it.
    await a.kilo.chat({ botId: bot.id, userId: USER, message: "croissant count?" }); // warms A
    const aDropped = await delivered(a.cache, only(`skills/${bot.id}`));
    await b.kilo.skills.delete(bot.id, skill.id);
    await aDropped.heard;
    const afterDelete = await a.kilo.chat({ botId: bot.id, userId: USER, message: "croissant count?" });
    expect(afterDelete.skill).toBeNull();
  });

  it("fill Redis with what one instance loaded, so the other's cold turn skips storage", async () => {
    const a = instance({ classify: [classify(null)], chat: ["A1"] }, "c");
    const b = instance({ classify: [classify(null)], chat: ["B1"] }, "d");
    const bot = await a.kilo.bots.create({ userId: USER, name: "Crumb" });
    await a.kilo.skills.create(bot.id, ORDER_TRACKER);
    await a.kilo.chat({ botId: bot.id, userId: USER, message: "hello there" });
    expect(await admin.exists(`${PREFIX}bot/${bot.id}`, `${PREFIX}skills/${bot.id}`)).toBe(2);

    b.counting.reset();
    await b.kilo.chat({ botId: bot.id, userId: USER, message: "hello there" });
    expect(b.counting.count("bots.get")).toBe(0);
    expect(b.counting.count("skills.listByBot")).toBe(0);
  });

  it("without a shared cache, see each other's writes once unsyncedTtlMs has passed", async () => {
    const a = instance({}, "e", { redis: false });
    const b = instance({ chat: ["B1", "B2", "B3"] }, "f", { redis: false, unsyncedTtlMs: 1_000 });
    const bot = await a.kilo.bots.create({
      userId: USER,
      name: "Crumb",
      soul: { valuesAndPrinciples: ["Old"] },
    });
    await b.kilo.chat({ botId: bot.id, userId: USER, message: "hello there" });
    await a.kilo.bots.update(bot.id, { soul: { valuesAndPrinciples: ["New"] } });

    // B cannot hear of A's write: its L1 copy is served until it expires...
    b.counting.reset();
    await b.kilo.chat({ botId: bot.id, userId: USER, message: "hello there" });
    expect(b.counting.count("bots.get")).toBe(0);
    expect(systemText(lastChat(b.provider.requests))).toContain("Old");

    // ...and no longer.
    await new Promise((resolve) => setTimeout(resolve, 1_050));
    await b.kilo.chat({ botId: bot.id, userId: USER, message: "hello there" });
    expect(b.counting.count("bots.get")).toBe(1);
    expect(systemText(lastChat(b.provider.requests))).toContain("New");
  });
});
