import { describe, expect, it } from "vitest";
import { memoryStorage } from "../../adapters/storage/memory/index.js";
import { lexicalMemoryRetriever, MemoryService } from "../../src/memory/memory-service.js";
import { sequentialIds } from "../../src/runtime/defaults.js";
import { makeBot, NOW } from "../fixtures.js";

const source = { kind: "conversation" as const, conversationId: "conv_1", messageId: "msg_1" };

async function setup() {
  const storage = memoryStorage();
  for (const userId of ["user_1", "user_2"])
    await storage.users.upsert({ id: userId, name: null, metadata: {}, createdAt: NOW });
  await storage.bots.create(makeBot({ id: "bot_1" }));
  await storage.bots.create(makeBot({ id: "bot_2" }));
  let tick = NOW.getTime();
  const service = new MemoryService({
    storage,
    ids: sequentialIds(),
    clock: {
      now: () => {
        tick += 1000;
        return new Date(tick);
      },
    },
  });
  return { storage, service, retriever: lexicalMemoryRetriever(storage) };
}

describe("MemoryService.remember", () => {
  it("replaces a fact with the same key and keeps the old value in history", async () => {
    const { service } = await setup();
    const [first] = await service.remember(
      "bot_1",
      "user_1",
      [{ key: "Bakery  Name", content: "Bakery is Sweet Crumb." }],
      source,
    );
    expect(first).toMatchObject({ updated: false, memory: { key: "bakery name" } });
    const [second] = await service.remember(
      "bot_1",
      "user_1",
      [{ key: "bakery name", content: "Bakery is Crumb & Co." }],
      source,
    );
    expect(second?.updated).toBe(true);
    expect(second?.memory.id).toBe(first?.memory.id);
    expect(second?.memory.history).toMatchObject([{ content: "Bakery is Sweet Crumb.", source }]);
    const page = await service.list("bot_1", "user_1");
    expect(page.items).toHaveLength(1);
  });

  it("repeating a known fact changes nothing", async () => {
    const { service } = await setup();
    await service.remember("bot_1", "user_1", [{ key: "name", content: "The user's name is Ana." }], source);
    const again = await service.remember(
      "bot_1",
      "user_1",
      [{ key: "name", content: "the user's name is ana." }],
      source,
    );
    expect(again).toEqual([]);
  });

  it("keeps each bot's and each user's memories apart", async () => {
    const { service } = await setup();
    await service.remember("bot_1", "user_1", [{ key: "name", content: "Ana" }], source);
    await service.remember("bot_2", "user_1", [{ key: "name", content: "Bea" }], source);
    await service.remember("bot_1", "user_2", [{ key: "name", content: "Cy" }], source);
    expect((await service.list("bot_1", "user_1")).items.map((m) => m.content)).toEqual(["Ana"]);
    expect((await service.list("bot_2", "user_1")).items.map((m) => m.content)).toEqual(["Bea"]);
  });
});

describe("lexicalMemoryRetriever", () => {
  it("ranks memories sharing words with the query first, then fills with the most recent", async () => {
    const { service, retriever } = await setup();
    await service.remember(
      "bot_1",
      "user_1",
      [
        { key: "bakery name", content: "The user's bakery is called Sweet Crumb." },
        { key: "dog name", content: "The user's dog is called Biscuit." },
        { key: "location", content: "The user lives in Porto." },
        { key: "favorite color", content: "The user's favorite color is teal." },
      ],
      source,
    );
    const found = await retriever.retrieve({
      botId: "bot_1",
      userId: "user_1",
      query: "What's my bakery called?",
      limit: 2,
    });
    expect(found.map((m) => m.key)).toEqual(["bakery name", "dog name"]);
    const none = await retriever.retrieve({ botId: "bot_1", userId: "user_1", query: "zzz", limit: 2 });
    expect(none.map((m) => m.key)).toEqual(["favorite color", "location"]);
    expect(await retriever.retrieve({ botId: "bot_1", userId: "user_1", query: "bakery", limit: 0 })).toEqual(
      [],
    );
  });

  it("gives no weight to a word most memories contain, so it cannot pull in every fact", async () => {
    const { service, retriever } = await setup();
    const facts = ["oven", "flour", "delivery", "cake", "rent", "staff"].map((topic, n) => ({
      key: `${topic} preference`,
      content: `The bakery's ${topic} preference number ${n} is to keep things simple.`,
    }));
    await service.remember("bot_1", "user_1", facts, source);
    const found = await retriever.retrieve({
      botId: "bot_1",
      userId: "user_1",
      query: "New delivery number 9 for the bakery",
      limit: 1,
    });
    expect(found.map((m) => m.key)).toEqual(["delivery preference"]);
    const recalled = await retriever.recall!({
      botId: "bot_1",
      userId: "user_1",
      query: "New delivery number 9 for the bakery",
      limit: 5,
      standingLimit: 0,
    });
    // "bakery", "preference" and "number" are in every fact: only "delivery" tells them apart.
    expect(recalled.relevant.map((m) => m.key)).toEqual(["delivery preference"]);
  });

  it("recall returns the most recent facts as standing and relevant ones apart, without filling", async () => {
    const { service, retriever } = await setup();
    await service.remember(
      "bot_1",
      "user_1",
      [
        { key: "bakery name", content: "The user's bakery is called Sweet Crumb." },
        { key: "dog name", content: "The user's dog is called Biscuit." },
        { key: "location", content: "The user lives in Porto." },
        { key: "favorite color", content: "The user's favorite color is teal." },
      ],
      source,
    );
    const recalled = await retriever.recall!({
      botId: "bot_1",
      userId: "user_1",
      query: "What's my bakery called? And the dog?",
      limit: 5,
      standingLimit: 2,
    });
    expect(recalled.standing.map((m) => m.key)).toEqual(["favorite color", "location"]);
    expect(recalled.relevant.map((m) => m.key)).toEqual(["dog name", "bakery name"]);
    const unrelated = await retriever.recall!({
      botId: "bot_1",
      userId: "user_1",
      query: "zzz",
      limit: 5,
      standingLimit: 1,
    });
    expect(unrelated).toEqual({
      standing: [expect.objectContaining({ key: "favorite color" })],
      relevant: [],
    });
    expect(
      await retriever.recall!({ botId: "bot_1", userId: "user_1", query: "dog", limit: 0, standingLimit: 0 }),
    ).toEqual({ standing: [], relevant: [] });
  });
});
