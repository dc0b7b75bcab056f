import { expect } from "vitest";
import type { Bot } from "../domain/bot.js";
import type { NewRun, Run } from "../domain/run.js";
import { KiloError, type KiloErrorCode } from "../errors.js";
import type { Storage, StorageCapabilities, StorageRepositories } from "../ports/storage.js";

/**
 * The `runs` group of the storage conformance suite, registered by
 * `runStorageConformance` (kept in its own module for size).
 *
 * @module
 */

type RunTestBody = (storage: Storage) => Promise<void>;
type RegisterRunTest = (
  title: string,
  body: RunTestBody,
  options?: { requires?: keyof StorageCapabilities },
) => void;

/** How the suite registers a group of tests (its `group` helper). */
export type RunTestGroup = (name: string, register: (test: RegisterRunTest) => void) => void;

const RUN = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
let counter = 0;

function uid(prefix: string): string {
  counter += 1;
  return `${prefix}-${RUN}-r${counter}`;
}

const BASE_TIME = Date.UTC(2024, 0, 1, 12, 0, 0);
const at = (seconds: number) => new Date(BASE_TIME + seconds * 1000);

async function seedBot(storage: StorageRepositories): Promise<Bot> {
  const userId = uid("user");
  await storage.users.upsert({ id: userId, name: null, metadata: {}, createdAt: at(0) });
  const bot: Bot = {
    id: uid("bot"),
    userId,
    name: "Runner",
    soul: null,
    personality: null,
    context: null,
    metadata: {},
    createdAt: at(0),
    updatedAt: at(0),
  };
  return storage.bots.create(bot);
}

function makeRun(bot: Bot, overrides: Partial<NewRun> = {}): NewRun {
  const conversationKey = overrides.conversationKey ?? "chat:42";
  return {
    id: uid("run"),
    botId: bot.id,
    userId: bot.userId,
    conversationKey,
    conversationId: uid("conv"),
    eventType: "telegram.message",
    workflow: "telegram.message",
    status: "queued",
    input: {
      schema_version: 1,
      type: "telegram.message",
      conversation_key: conversationKey,
      user_key: bot.userId,
      text: "hello ✓ \u{1F382}",
    },
    output: null,
    error: null,
    deliveryId: null,
    createdAt: at(1),
    startedAt: null,
    finishedAt: null,
    ...overrides,
  };
}

async function expectKiloError(promise: Promise<unknown>, code: KiloErrorCode): Promise<void> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  const seen = KiloError.is(caught) ? caught.code : String(caught);
  expect(KiloError.is(caught, code), `expected a KiloError ${code}, got ${seen}`).toBe(true);
}

/** Every unfinished run of the given bots, walking all pages of `listUnfinished`. */
async function unfinishedOf(s: Storage, botIds: string[], limit = 2): Promise<Run[]> {
  const mine: Run[] = [];
  let cursor: string | null = null;
  for (let pages = 0; ; pages++) {
    expect(pages, "listUnfinished did not end").toBeLessThan(100_000);
    const page: Awaited<ReturnType<Storage["runs"]["listUnfinished"]>> = await s.runs.listUnfinished({
      limit,
      cursor,
    });
    expect(page.items.length).toBeLessThanOrEqual(limit);
    mine.push(...page.items.filter((run) => botIds.includes(run.botId)));
    if (page.nextCursor === null) return mine;
    cursor = page.nextCursor;
  }
}

/** Registers the `runs` group: CRUD, seq order, idempotency keys, tenancy, cascade, copies. */
export function registerRunTests(group: RunTestGroup): void {
  group("runs", (test) => {
    test("create assigns seq 1, 2, 3 per conversation key and get round-trips every field", async (s) => {
      const bot = await seedBot(s);
      const first = makeRun(bot, { deliveryId: "update:1", createdAt: at(5) });
      const created = await s.runs.create(first);
      expect(created).toEqual({ ...first, seq: 1 });
      const stored = await s.runs.get(first.id);
      expect(stored).toEqual({ ...first, seq: 1 });
      expect(stored?.createdAt).toBeInstanceOf(Date);
      expect((await s.runs.create(makeRun(bot))).seq).toBe(2);
      expect((await s.runs.create(makeRun(bot, { conversationKey: "chat:43" }))).seq).toBe(1);
      expect((await s.runs.create(makeRun(bot))).seq).toBe(3);
    });

    test("get returns null for an unknown run", async (s) => {
      expect(await s.runs.get(uid("missing"))).toBeNull();
    });

    test("update replaces the run, keeps its seq, and round-trips output, error and times", async (s) => {
      const bot = await seedBot(s);
      const created = await s.runs.create(makeRun(bot));
      const succeeded: Run = {
        ...created,
        status: "succeeded",
        output: { reply: "hi", usage: { calls: 1, costUsd: 0.25 }, toolCalls: [] },
        startedAt: at(2),
        finishedAt: at(3),
      };
      expect(await s.runs.update({ ...succeeded, seq: 99 })).toEqual(succeeded);
      expect(await s.runs.get(created.id)).toEqual(succeeded);
      const failed: Run = {
        ...succeeded,
        status: "failed",
        output: null,
        error: { code: "PROVIDER_FAILED", message: "the model is down" },
      };
      await s.runs.update(failed);
      expect(await s.runs.get(created.id)).toEqual(failed);
    });

    test("update returns null for a missing run or another bot's run", async (s) => {
      const bot = await seedBot(s);
      const other = await seedBot(s);
      expect(await s.runs.update({ ...makeRun(bot), seq: 1 })).toBeNull();
      const created = await s.runs.create(makeRun(bot));
      expect(await s.runs.update({ ...created, botId: other.id, status: "failed" })).toBeNull();
      expect(await s.runs.get(created.id)).toEqual(created);
    });

    test("create throws CONFLICT on a taken id", async (s) => {
      const bot = await seedBot(s);
      const run = makeRun(bot);
      await s.runs.create(run);
      await expectKiloError(s.runs.create({ ...run, conversationKey: "other" }), "CONFLICT");
      expect(await s.runs.listByConversation(bot.id, "other", { limit: 10 })).toEqual([]);
    });

    test("a delivery id is unique per bot, and findByDelivery finds its run", async (s) => {
      const bot = await seedBot(s);
      const other = await seedBot(s);
      const run = await s.runs.create(makeRun(bot, { deliveryId: "update:7" }));
      await expectKiloError(s.runs.create(makeRun(bot, { deliveryId: "update:7" })), "CONFLICT");
      expect(await s.runs.listByConversation(bot.id, run.conversationKey, { limit: 10 })).toEqual([run]);
      expect(await s.runs.findByDelivery(bot.id, "update:7")).toEqual(run);
      expect(await s.runs.findByDelivery(bot.id, "update:8")).toBeNull();
      // Another bot may use the same delivery id; runs without one never clash.
      const theirs = await s.runs.create(makeRun(other, { deliveryId: "update:7" }));
      expect(await s.runs.findByDelivery(other.id, "update:7")).toEqual(theirs);
      await s.runs.create(makeRun(bot));
      await s.runs.create(makeRun(bot));
    });

    test("create for a bot that does not exist throws NOT_FOUND", async (s) => {
      const bot = await seedBot(s);
      const run = makeRun({ ...bot, id: uid("no-such-bot") });
      await expectKiloError(s.runs.create(run), "NOT_FOUND");
      expect(await s.runs.get(run.id)).toBeNull();
    });

    test("listByConversation returns ingest order, with limit and afterSeq", async (s) => {
      const bot = await seedBot(s);
      const made: Run[] = [];
      // Creation times run backwards: the order is the seq, not the clock.
      for (let n = 0; n < 5; n++) made.push(await s.runs.create(makeRun(bot, { createdAt: at(100 - n) })));
      await s.runs.create(makeRun(bot, { conversationKey: "elsewhere" }));
      const all = await s.runs.listByConversation(bot.id, "chat:42", { limit: 10 });
      expect(all.map((run) => run.id)).toEqual(made.map((run) => run.id));
      expect(all.map((run) => run.seq)).toEqual([1, 2, 3, 4, 5]);
      const two = await s.runs.listByConversation(bot.id, "chat:42", { limit: 2 });
      expect(two.map((run) => run.seq)).toEqual([1, 2]);
      const later = await s.runs.listByConversation(bot.id, "chat:42", { limit: 2, afterSeq: 2 });
      expect(later.map((run) => run.seq)).toEqual([3, 4]);
    });

    test("concurrent creates of one key get distinct, gap-free seqs", async (s) => {
      const bot = await seedBot(s);
      const created = await Promise.all(Array.from({ length: 20 }, () => s.runs.create(makeRun(bot))));
      expect(created.map((run) => run.seq).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 20 }, (_, n) => n + 1),
      );
      const listed = await s.runs.listByConversation(bot.id, "chat:42", { limit: 50 });
      expect(listed.map((run) => run.seq)).toEqual(Array.from({ length: 20 }, (_, n) => n + 1));
    });

    test("runs of one key are separate per bot (tenancy)", async (s) => {
      const mine = await seedBot(s);
      const theirs = await seedBot(s);
      const a = await s.runs.create(makeRun(mine, { deliveryId: "d1" }));
      const b = await s.runs.create(makeRun(theirs, { deliveryId: "d2" }));
      expect(a.seq).toBe(1);
      expect(b.seq).toBe(1);
      expect(await s.runs.listByConversation(mine.id, "chat:42", { limit: 10 })).toEqual([a]);
      expect(await s.runs.listByConversation(theirs.id, "chat:42", { limit: 10 })).toEqual([b]);
      expect(await s.runs.findByDelivery(mine.id, "d2")).toBeNull();
    });

    test("listUnfinished pages through queued and running runs, oldest first", async (s) => {
      const bot = await seedBot(s);
      const statuses = ["queued", "succeeded", "running", "failed", "queued", "awaiting_approval"] as const;
      const made: Run[] = [];
      for (const [n, status] of statuses.entries()) {
        const created = await s.runs.create(makeRun(bot, { createdAt: at(10 + n) }));
        made.push((await s.runs.update({ ...created, status }))!);
      }
      const unfinished = await unfinishedOf(s, [bot.id]);
      expect(unfinished.map((run) => run.id)).toEqual([made[0]!.id, made[2]!.id, made[4]!.id]);
      await s.runs.update({ ...made[0]!, status: "succeeded" });
      const after = await unfinishedOf(s, [bot.id], 50);
      expect(after.map((run) => run.id)).toEqual([made[2]!.id, made[4]!.id]);
    });

    test("bots.delete removes the bot's runs and leaves other bots' alone", async (s) => {
      const doomed = await seedBot(s);
      const kept = await seedBot(s);
      const gone = await s.runs.create(makeRun(doomed, { deliveryId: "x" }));
      const stays = await s.runs.create(makeRun(kept, { deliveryId: "x" }));
      expect(await s.bots.delete(doomed.id)).toBe(true);
      expect(await s.runs.get(gone.id)).toBeNull();
      expect(await s.runs.findByDelivery(doomed.id, "x")).toBeNull();
      expect(await s.runs.listByConversation(doomed.id, "chat:42", { limit: 10 })).toEqual([]);
      expect(await unfinishedOf(s, [doomed.id], 100)).toEqual([]);
      expect(await s.runs.get(stays.id)).toEqual(stays);
      // A bot re-created with the same id starts its seqs again.
      await s.bots.create(doomed);
      expect((await s.runs.create(makeRun(doomed))).seq).toBe(1);
    });

    test("returned runs are copies", async (s) => {
      const bot = await seedBot(s);
      const created = await s.runs.create(makeRun(bot));
      created.input.text = "changed";
      created.status = "failed";
      const read = await s.runs.get(created.id);
      expect(read?.status).toBe("queued");
      expect(read?.input.text).toBe("hello ✓ \u{1F382}");
      (read!.input as Record<string, unknown>).text = "again";
      expect((await s.runs.get(created.id))?.input.text).toBe("hello ✓ \u{1F382}");
    });

    test(
      "a failed create inside a rolled-back transaction leaves nothing behind",
      async (s) => {
        const bot = await seedBot(s);
        const run = makeRun(bot);
        await expect(
          s.transaction(async (tx) => {
            await tx.runs.create(run);
            throw new Error("roll back");
          }),
        ).rejects.toThrow("roll back");
        expect(await s.runs.get(run.id)).toBeNull();
        expect((await s.runs.create(makeRun(bot))).seq).toBe(1);
      },
      { requires: "transactions" },
    );
  });
}
