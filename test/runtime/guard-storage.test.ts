import { describe, expect, it } from "vitest";
import { memoryStorage } from "../../adapters/storage/memory/index.js";
import { KiloError } from "../../src/index.js";
import type { Storage } from "../../src/ports/storage.js";
import { guardStorage } from "../../src/runtime/guard-storage.js";

function flaky(): Storage & { inits: number } {
  const inner = memoryStorage();
  const storage = Object.assign(Object.create(null), inner, {
    name: "flaky",
    inits: 0,
    async init() {
      storage.inits += 1;
    },
    bots: { ...inner.bots, get: async () => Promise.reject(new Error("socket hang up")) },
  });
  return storage;
}

describe("guardStorage", () => {
  it("runs init once, even under concurrent first use", async () => {
    const storage = flaky();
    const guarded = guardStorage(storage);
    await Promise.all([guarded.users.get("a"), guarded.users.get("b"), guarded.users.get("c")]);
    expect(storage.inits).toBe(1);
  });

  it("wraps adapter errors as STORAGE_FAILED naming the adapter and the method", async () => {
    const guarded = guardStorage(flaky());
    const error = await guarded.bots.get("bot_1").catch((e: unknown) => e);
    expect(KiloError.is(error, "STORAGE_FAILED")).toBe(true);
    expect((error as KiloError).adapter).toBe("flaky");
    expect((error as KiloError).message).toBe("Storage adapter 'flaky' failed in bots.get: socket hang up");
  });

  it("passes the adapter's own KiloErrors through", async () => {
    const guarded = guardStorage(memoryStorage());
    const user = { id: "u", name: null, metadata: {}, createdAt: new Date() };
    await guarded.users.upsert(user);
    const bot = {
      id: "b",
      userId: "u",
      name: "B",
      soul: null,
      personality: null,
      context: null,
      metadata: {},
      createdAt: new Date(),
      updatedAt: new Date(),
    };
    await guarded.bots.create(bot);
    const error = await guarded.bots.create(bot).catch((e: unknown) => e);
    expect(KiloError.is(error, "CONFLICT")).toBe(true);
  });

  it("rethrows a transaction callback's own error unchanged", async () => {
    const guarded = guardStorage(memoryStorage());
    const mine = new Error("host logic failed");
    await expect(guarded.transaction(async () => Promise.reject(mine))).rejects.toBe(mine);
  });

  it("runs migrate without init, so a host can migrate a schema that init refuses", async () => {
    const inner = memoryStorage();
    let migrated = false;
    const storage: Storage = {
      ...inner,
      name: "strict",
      async init() {
        if (!migrated) throw new Error("schema is at version 1; run migrate()");
      },
      async migrate() {
        migrated = true;
        return { applied: ["0002_indexes"] };
      },
    };
    const guarded = guardStorage(storage);
    const refused = await guarded.users.get("u").catch((e: unknown) => e);
    expect(KiloError.is(refused, "STORAGE_FAILED")).toBe(true);
    expect((refused as KiloError).message).toContain("run migrate()");
    expect(await guarded.migrate()).toEqual({ applied: ["0002_indexes"] });
    expect(await guarded.users.get("u")).toBeNull();
    expect(await guardStorage(memoryStorage()).migrate()).toEqual({ applied: [] });
  });

  it("refuses use after close", async () => {
    const guarded = guardStorage(memoryStorage());
    await guarded.close();
    const error = await guarded.users.get("u").catch((e: unknown) => e);
    expect(KiloError.is(error, "CLOSED")).toBe(true);
  });
});
