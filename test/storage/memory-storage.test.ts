import { describe, expect, it } from "vitest";
import { memoryStorage } from "../../adapters/storage/memory/index.js";
import type { Bot } from "../../src/domain/bot.js";
import type { Skill } from "../../src/domain/skill.js";
import { KiloError, type KiloErrorCode } from "../../src/errors.js";
import type { Storage, StorageRepositories } from "../../src/ports/storage.js";
import { runStorageConformance } from "../../src/testing/storage-conformance.js";

runStorageConformance({ name: "memory", createStorage: () => memoryStorage() });

// The same suite with a real async gap before every call, so ordering and
// transaction guarantees cannot lean on calls completing synchronously.
runStorageConformance({
  name: "memory (latencyMs: 1)",
  createStorage: () => memoryStorage({ latencyMs: 1 }),
});

let counter = 0;
const uid = (prefix: string) => `${prefix}-${++counter}`;
const when = new Date("2024-05-01T10:00:00.000Z");

function bot(overrides: Partial<Bot> = {}): Bot {
  return {
    id: uid("bot"),
    userId: "user-1",
    name: "Baker",
    soul: null,
    personality: null,
    context: null,
    metadata: {},
    createdAt: when,
    updatedAt: when,
    ...overrides,
  };
}

function skill(botId: string, overrides: Partial<Skill> = {}): Skill {
  return {
    id: uid("skill"),
    botId,
    scope: { kind: "bot", id: botId },
    name: uid("Skill"),
    description: "",
    instructions: "",
    triggers: [],
    examples: [],
    dataFields: [],
    requiredIntegrations: [],
    taskType: "skill_execution",
    status: "active",
    metadata: {},
    createdAt: when,
    updatedAt: when,
    ...overrides,
  };
}

async function codeOf(promise: Promise<unknown>): Promise<KiloErrorCode | "resolved" | "not a KiloError"> {
  try {
    await promise;
    return "resolved";
  } catch (error) {
    return KiloError.is(error) ? error.code : "not a KiloError";
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

describe("memoryStorage", () => {
  it("is named memory and declares in-process, non-durable transactions", () => {
    const storage = memoryStorage();
    expect(storage.name).toBe("memory");
    expect(storage.capabilities).toEqual({ transactions: true, crossProcess: false, durable: false });
  });

  it("refuses a negative latency with CONFIGURATION_INVALID", () => {
    let code: string | undefined;
    try {
      memoryStorage({ latencyMs: -1 });
    } catch (error) {
      code = KiloError.is(error) ? error.code : "other";
    }
    expect(code).toBe("CONFIGURATION_INVALID");
  });

  it("keeps separate instances separate", async () => {
    const first = memoryStorage();
    const second = memoryStorage();
    const stored = bot();
    await first.bots.create(stored);
    expect(await second.bots.get(stored.id)).toBeNull();
    expect(await second.bots.create(stored)).toEqual(stored);
  });

  it("names itself on the errors it throws", async () => {
    const storage = memoryStorage();
    const stored = bot();
    await storage.bots.create(stored);
    const error = await storage.bots.create(stored).catch((caught: unknown) => caught);
    expect(KiloError.is(error, "CONFLICT")).toBe(true);
    expect((error as KiloError).adapter).toBe("memory");
  });

  it("refuses rows whose parent is missing with NOT_FOUND", async () => {
    const storage = memoryStorage();
    expect(await codeOf(storage.skills.create(skill("no-such-bot")))).toBe("NOT_FOUND");
    const owner = bot();
    await storage.bots.create(owner);
    const record = {
      id: uid("r"),
      botId: owner.id,
      skillId: "no-such-skill",
      data: {},
      createdAt: when,
      updatedAt: when,
    };
    expect(await codeOf(storage.skillRecords.create(record))).toBe("NOT_FOUND");
    const message = {
      id: uid("m"),
      botId: owner.id,
      conversationId: "no-such-conversation",
      role: "user" as const,
      content: "hi",
      metadata: {},
      createdAt: when,
    };
    expect(await codeOf(storage.messages.append(message))).toBe("NOT_FOUND");
    expect(await storage.skills.listByBot("no-such-bot")).toEqual([]);
  });

  it("refuses values it cannot copy with VALIDATION_FAILED and stores nothing", async () => {
    const storage = memoryStorage();
    const broken = bot({ metadata: { callback: () => "not data" } });
    expect(await codeOf(storage.bots.create(broken))).toBe("VALIDATION_FAILED");
    expect(await storage.bots.get(broken.id)).toBeNull();
  });

  it("refuses a cursor it did not issue with VALIDATION_FAILED", async () => {
    const storage = memoryStorage();
    expect(await codeOf(storage.bots.listByUser("user-1", { limit: 5, cursor: "not-a-cursor" }))).toBe(
      "VALIDATION_FAILED",
    );
    const forged = Buffer.from(JSON.stringify(["m1", "x", 1])).toString("base64url");
    expect(await codeOf(storage.bots.listByUser("user-1", { limit: 5, cursor: forged }))).toBe(
      "VALIDATION_FAILED",
    );
  });

  it("returns Dates that are copies of the stored ones", async () => {
    const storage = memoryStorage();
    const stored = bot();
    await storage.bots.create(stored);
    const fetched = await storage.bots.get(stored.id);
    expect(fetched?.createdAt).toBeInstanceOf(Date);
    expect(fetched?.createdAt).not.toBe(stored.createdAt);
    fetched?.createdAt.setUTCFullYear(1999);
    expect((await storage.bots.get(stored.id))?.createdAt).toEqual(when);
  });

  describe("transactions", () => {
    it("lets the callback use the outer storage: its reads see the transaction and its writes join it", async () => {
      const storage = memoryStorage();
      const joined = bot();
      const failure = new Error("roll back");
      const outcome = storage.transaction(async (tx) => {
        await storage.bots.create(joined);
        expect(await tx.bots.get(joined.id)).toEqual(joined);
        expect(await storage.bots.get(joined.id)).toEqual(joined);
        throw failure;
      });
      await expect(outcome).rejects.toBe(failure);
      expect(await storage.bots.get(joined.id)).toBeNull();
    });

    it("treats a nested transaction as a savepoint", async () => {
      const storage = memoryStorage();
      const [before, inner, after] = [bot(), bot(), bot()];
      const failure = new Error("inner failed");
      await storage.transaction(async (tx) => {
        await tx.bots.create(before);
        const nested = storage.transaction(async (innerTx) => {
          await innerTx.bots.create(inner);
          await tx.bots.update({ ...before, name: "changed inside the savepoint" });
          throw failure;
        });
        await expect(nested).rejects.toBe(failure);
        expect(await tx.bots.get(inner.id)).toBeNull();
        await tx.bots.create(after);
      });
      expect(await storage.bots.get(before.id)).toEqual(before);
      expect(await storage.bots.get(inner.id)).toBeNull();
      expect(await storage.bots.get(after.id)).toEqual(after);
    });

    it("commits a nested transaction's writes with the outer one, and rolls them back with it", async () => {
      const storage = memoryStorage();
      const [committed, rolledBack] = [bot(), bot()];
      await storage.transaction(async () => {
        await storage.transaction(async (innerTx) => {
          await innerTx.bots.create(committed);
        });
      });
      expect(await storage.bots.get(committed.id)).toEqual(committed);
      const failure = new Error("outer failed");
      const outcome = storage.transaction(async () => {
        await storage.transaction(async (innerTx) => {
          await innerTx.bots.create(rolledBack);
        });
        throw failure;
      });
      await expect(outcome).rejects.toBe(failure);
      expect(await storage.bots.get(rolledBack.id)).toBeNull();
    });

    it("closes the repositories of a finished transaction", async () => {
      const storage = memoryStorage();
      let leaked: StorageRepositories | undefined;
      await storage.transaction(async (tx) => {
        leaked = tx;
      });
      expect(await codeOf(leaked!.bots.get("any"))).toBe("CLOSED");
      expect(await codeOf(leaked!.bots.create(bot()))).toBe("CLOSED");
    });

    it("makes outside writes wait for an open transaction, then applies them in order", async () => {
      const storage = memoryStorage();
      const owner = bot();
      await storage.bots.create(owner);
      const release = deferred();
      const opened = deferred();
      const outcome = storage.transaction(async (tx) => {
        await tx.bots.update({ ...owner, name: "inside" });
        opened.resolve();
        await release.promise;
      });
      await opened.promise;
      const first = storage.bots.update({ ...owner, name: "outside 1" });
      const second = storage.bots.update({ ...owner, name: "outside 2" });
      // Reads do not wait, and see the transaction's uncommitted write.
      expect((await storage.bots.get(owner.id))?.name).toBe("inside");
      release.resolve();
      await Promise.all([outcome, first, second]);
      expect((await storage.bots.get(owner.id))?.name).toBe("outside 2");
    });

    it("runs transactions one at a time", async () => {
      const storage = memoryStorage();
      const events: string[] = [];
      const run = (name: string) =>
        storage.transaction(async (tx) => {
          events.push(`${name} start`);
          await tx.bots.create(bot());
          await new Promise((resolve) => setTimeout(resolve, 5));
          events.push(`${name} end`);
        });
      await Promise.all([run("a"), run("b"), run("c")]);
      expect(events).toEqual(["a start", "a end", "b start", "b end", "c start", "c end"]);
    });
  });

  it("keeps per-conversation seqs strictly increasing with latency and interleaved transactions", async () => {
    const storage: Storage = memoryStorage({ latencyMs: 2 });
    const owner = bot();
    await storage.bots.create(owner);
    const conversation = {
      id: uid("c"),
      botId: owner.id,
      userId: owner.userId,
      channel: "api",
      title: null,
      metadata: {},
      createdAt: when,
      updatedAt: when,
    };
    await storage.conversations.create(conversation);
    const message = (content: string) => ({
      id: uid("m"),
      botId: owner.id,
      conversationId: conversation.id,
      role: "user" as const,
      content,
      metadata: {},
      createdAt: when,
    });
    await Promise.all([
      ...Array.from({ length: 15 }, (_, n) => storage.messages.append(message(`plain ${n}`))),
      storage.transaction(async (tx) => {
        await tx.messages.append(message("tx 1"));
        await tx.messages.append(message("tx 2"));
      }),
      storage
        .transaction(async (tx) => {
          await tx.messages.append(message("rolled back"));
          throw new Error("no");
        })
        .catch(() => undefined),
    ]);
    const listed = await storage.messages.listRecent(owner.id, conversation.id, { limit: 100 });
    expect(listed).toHaveLength(17);
    expect(listed.map((m) => m.content)).not.toContain("rolled back");
    for (let n = 1; n < listed.length; n++) expect(listed[n]!.seq).toBeGreaterThan(listed[n - 1]!.seq);
  });
});
