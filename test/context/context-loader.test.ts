import { describe, expect, it } from "vitest";
import { memoryStorage } from "../../adapters/storage/memory/index.js";
import { createContextLoader, historyWindowStart } from "../../src/context/context-loader.js";
import { lexicalMemoryRetriever } from "../../src/memory/memory-service.js";
import type { MemoryRetriever } from "../../src/ports/memory.js";
import type { ContextRequirements } from "../../src/ports/skill-matcher.js";
import { makeBot, makeMemory, NOW } from "../fixtures.js";

const requirements = (overrides: Partial<ContextRequirements> = {}): ContextRequirements => ({
  historyDepth: 10,
  memoryQuery: "delivery on Friday",
  memoryLimit: 8,
  skillData: null,
  ...overrides,
});

async function setup(messages: number) {
  const storage = memoryStorage();
  await storage.users.upsert({ id: "user_1", name: null, metadata: {}, createdAt: NOW });
  await storage.bots.create(makeBot());
  await storage.conversations.create({
    id: "conv_1",
    botId: "bot_1",
    userId: "user_1",
    title: null,
    channel: "api",
    metadata: {},
    createdAt: NOW,
    updatedAt: NOW,
  });
  for (let n = 1; n <= messages; n += 1) {
    await storage.messages.append({
      id: `msg_${n}`,
      conversationId: "conv_1",
      botId: "bot_1",
      role: n % 2 === 1 ? "user" : "assistant",
      content: `message ${n}`,
      metadata: {},
      createdAt: NOW,
    });
  }
  return storage;
}

const input = (beforeSeq: number, overrides: Partial<ContextRequirements> = {}) => ({
  botId: "bot_1",
  userId: "user_1",
  conversationId: "conv_1",
  beforeSeq,
  requirements: requirements(overrides),
});

describe("historyWindowStart", () => {
  it("moves in whole blocks and never before the first message", () => {
    expect(historyWindowStart(15, 10, 20)).toBe(0);
    expect(historyWindowStart(45, 10, 20)).toBe(20);
    expect(historyWindowStart(61, 10, 20)).toBe(40);
    expect(historyWindowStart(45, 10, 1)).toBe(35);
  });
});

describe("createContextLoader", () => {
  it("gives a short-history turn and the next skill turn the same window start, so the prefix is reused", async () => {
    const storage = await setup(48);
    const loader = createContextLoader({ storage, retriever: lexicalMemoryRetriever(storage) });
    // seq 47: depth 6 alone would start at 40; the skill turn after it (depth 10, seq 49) at 20.
    const simple = await loader.load(input(47, { historyDepth: 6 }));
    const skill = await loader.load(input(49, { historyDepth: 10 }));
    expect(simple.history[0]?.seq).toBe(20);
    expect(skill.history[0]?.seq).toBe(20);
    expect(simple.history.at(-1)?.seq).toBe(46);
    expect(skill.history.map((m) => m.seq).slice(0, simple.history.length)).toEqual(
      simple.history.map((m) => m.seq),
    );
  });

  it("loads exactly the requested depth with historyBlock 1, and no history for depth 0", async () => {
    const storage = await setup(30);
    const loader = createContextLoader({
      storage,
      retriever: lexicalMemoryRetriever(storage),
      historyBlock: 1,
    });
    const context = await loader.load(input(31, { historyDepth: 6 }));
    expect(context.history.map((m) => m.seq)).toEqual([25, 26, 27, 28, 29, 30]);
    expect((await loader.load(input(31, { historyDepth: 0 }))).history).toEqual([]);
  });

  it("splits memories into standing and relevant when the retriever can recall", async () => {
    const storage = await setup(0);
    const memories = ["oven", "flour", "delivery", "cake", "rent", "staff", "supplier"].map((topic, n) =>
      makeMemory(`${topic} note`, `Note about the ${topic}.`, {
        id: `mem_${n}`,
        updatedAt: new Date(NOW.getTime() + n * 1000),
      }),
    );
    for (const memory of memories) await storage.memories.create(memory);
    const loader = createContextLoader({
      storage,
      retriever: lexicalMemoryRetriever(storage),
      standingMemories: 2,
    });
    const context = await loader.load(input(1));
    expect(context.standingMemories?.map((m) => m.key)).toEqual(["supplier note", "staff note"]);
    expect(context.memories.map((m) => m.key)).toEqual(["delivery note"]);
    const none = await loader.load(input(1, { memoryQuery: null }));
    expect(none.memories).toEqual([]);
    expect(none.standingMemories).toEqual([]);
  });

  it("treats every memory as relevant when the retriever has only retrieve", async () => {
    const storage = await setup(0);
    const memory = makeMemory("name", "The user's name is Ana.");
    const seen: number[] = [];
    const retriever: MemoryRetriever = {
      async retrieve({ limit }) {
        seen.push(limit);
        return [memory];
      },
    };
    const context = await createContextLoader({ storage, retriever }).load(input(1, { memoryLimit: 3 }));
    expect(seen).toEqual([3]);
    expect(context.memories).toEqual([memory]);
    expect(context.standingMemories).toEqual([]);
  });
});
