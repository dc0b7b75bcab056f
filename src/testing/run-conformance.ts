import { expect } from "vitest";
import type { Bot } from "../domain/bot.js";
import type { NewRun, Run } from "../domain/run.js";
import { KiloError, type KiloErrorCode } from "../errors.js";
import type {
  RunClaim,
  RunClaimRequest,
  RunRepository,
  Storage,
  StorageCapabilities,
  StorageRepositories,
} from "../ports/storage.js";

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

    test("update stores the outcome only: the fields set at create are kept, and the run as stored is returned", async (s) => {
      const bot = await seedBot(s);
      const created = await s.runs.create(makeRun(bot, { deliveryId: "update:keep" }));
      const outcome = {
        status: "succeeded" as const,
        output: { ok: true },
        startedAt: at(4),
        finishedAt: at(5),
      };
      const changed = await s.runs.update({
        ...created,
        ...outcome,
        conversationKey: "chat:elsewhere",
        eventType: "other.event",
        workflow: "other.event",
        input: { text: "rewritten" },
        deliveryId: "update:changed",
        createdAt: at(9),
      });
      const expected: Run = { ...created, ...outcome };
      expect(changed).toEqual(expected);
      expect(await s.runs.get(created.id)).toEqual(expected);
      expect((await s.runs.findByDelivery(bot.id, "update:keep"))?.id).toBe(created.id);
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

const FOREVER = new Date(Date.UTC(9999, 0, 1));

/** A claim request at `now` (a time from {@link at}) with a lease of `leaseSeconds`. */
function claimAt(owner: string, now: Date, limit = 100, leaseSeconds = 30): RunClaimRequest {
  return { owner, now, leaseExpiresAt: new Date(now.getTime() + leaseSeconds * 1000), limit };
}

type QueueRepository = Required<Pick<RunRepository, "claim" | "extendLeases" | "finish">>;

/** The claim methods, which this group requires. */
function queueOf(s: Storage): QueueRepository {
  const { claim, extendLeases, finish } = s.runs;
  if (!claim || !extendLeases || !finish)
    throw new Error("the adapter lacks runs.claim, extendLeases or finish");
  return {
    claim: claim.bind(s.runs),
    extendLeases: extendLeases.bind(s.runs),
    finish: finish.bind(s.runs),
  };
}

/**
 * Takes every run that earlier tests left claimable (on a store that is not emptied between
 * tests) under a lease that never expires, so a test's claims see only its own runs.
 */
async function drainOthers(q: QueueRepository): Promise<void> {
  for (let rounds = 0; rounds < 1_000; rounds++) {
    const taken = await q.claim({ owner: uid("drain"), now: FOREVER, leaseExpiresAt: FOREVER, limit: 1_000 });
    if (taken.length === 0) return;
  }
  throw new Error("runs.claim kept returning runs");
}

/** Claims as `owner` and returns only the runs of `bot`. */
async function claimOwn(q: QueueRepository, bot: Bot, request: RunClaimRequest): Promise<RunClaim[]> {
  const claims = await q.claim(request);
  const foreign = claims.filter((claim) => claim.run.botId !== bot.id);
  expect(foreign, "claim returned runs of another test").toEqual([]);
  return claims;
}

const succeededAt = (run: Run, seconds: number): Run => ({
  ...run,
  status: "succeeded",
  output: { reply: "done" },
  finishedAt: at(seconds),
});

/**
 * Registers the `runs queue` group for adapters with `runs.claim`, `runs.extendLeases` and
 * `runs.finish`: claim order, one running run per key under concurrent claimers, lease expiry
 * and reclaim, and the lease fence on `finish`.
 */
export function registerRunQueueTests(group: RunTestGroup): void {
  group("runs queue", (test) => {
    test("claim takes the head of each conversation key, oldest first, and marks it running", async (s) => {
      const q = queueOf(s);
      await drainOthers(q);
      const bot = await seedBot(s);
      const a1 = await s.runs.create(makeRun(bot, { conversationKey: "a", createdAt: at(20) }));
      await s.runs.create(makeRun(bot, { conversationKey: "a", createdAt: at(10) }));
      const b1 = await s.runs.create(makeRun(bot, { conversationKey: "b", createdAt: at(15) }));
      const c1 = await s.runs.create(makeRun(bot, { conversationKey: "c", createdAt: at(30) }));
      const claims = await claimOwn(q, bot, claimAt("w1", at(100), 2));
      // At most one per key, by creation time; "a"'s second run is older but not its key's head.
      expect(claims.map((claim) => claim.run.id)).toEqual([b1.id, a1.id]);
      expect(claims.every((claim) => !claim.reclaimed)).toBe(true);
      const expected: Run = { ...b1, status: "running", startedAt: at(100), finishedAt: null };
      expect(claims[0]!.run).toEqual(expected);
      expect(await s.runs.get(b1.id)).toEqual(expected);
      const rest = await claimOwn(q, bot, claimAt("w2", at(101)));
      expect(rest.map((claim) => claim.run.id)).toEqual([c1.id]);
      // Every head is running under a live lease: nothing is left to claim.
      expect(await claimOwn(q, bot, claimAt("w3", at(102)))).toEqual([]);
    });

    test("a key's next run is claimable once its head finishes, in seq order", async (s) => {
      const q = queueOf(s);
      await drainOthers(q);
      const bot = await seedBot(s);
      const made: Run[] = [];
      for (let n = 0; n < 4; n++) made.push(await s.runs.create(makeRun(bot, { createdAt: at(10 - n) })));
      const order: string[] = [];
      const outcomes = ["succeeded", "failed", "awaiting_approval", "succeeded"] as const;
      for (const [n, status] of outcomes.entries()) {
        const [claim, ...others] = await claimOwn(q, bot, claimAt("w", at(100 + n)));
        expect(others).toEqual([]);
        order.push(claim!.run.id);
        // Claimed but not finished: the key stays held.
        expect(await claimOwn(q, bot, claimAt("other", at(100 + n)))).toEqual([]);
        const finished = await q.finish({ ...claim!.run, status, finishedAt: at(100 + n) }, "w");
        expect(finished?.status).toBe(status);
      }
      expect(order).toEqual(made.map((run) => run.id));
      expect(await claimOwn(q, bot, claimAt("w", at(200)))).toEqual([]);
    });

    test("concurrent claimers never share a run nor run two runs of one key", async (s) => {
      const q = queueOf(s);
      await drainOthers(q);
      const bot = await seedBot(s);
      const keys = ["k1", "k2", "k3", "k4", "k5", "k6"];
      const perKey = 4;
      for (let n = 0; n < perKey; n++) {
        for (const key of keys) await s.runs.create(makeRun(bot, { conversationKey: key, createdAt: at(n) }));
      }
      const executed = new Map<string, number[]>();
      const seen = new Set<string>();
      for (let round = 0; round < 100 && seen.size < keys.length * perKey; round++) {
        const now = at(1_000 + round);
        const claims = (
          await Promise.all(
            Array.from({ length: 8 }, (_, worker) => claimOwn(q, bot, claimAt(`w${worker}`, now, 2))),
          )
        ).flat();
        const keysThisRound = claims.map((claim) => claim.run.conversationKey);
        expect(new Set(keysThisRound).size, "two runs of one key claimed at once").toBe(keysThisRound.length);
        for (const { run } of claims) {
          expect(seen.has(run.id), `run ${run.id} claimed twice`).toBe(false);
          seen.add(run.id);
          executed.set(run.conversationKey, [...(executed.get(run.conversationKey) ?? []), run.seq]);
          const running = (
            await s.runs.listByConversation(bot.id, run.conversationKey, { limit: 50 })
          ).filter((stored) => stored.status === "running");
          expect(running.map((stored) => stored.id)).toEqual([run.id]);
        }
        // Each worker finishes what it claimed (the owner is in the stored lease, not the run).
        await Promise.all(
          claims.map(async ({ run }) => {
            for (let worker = 0; worker < 8; worker++) {
              if (await q.finish(succeededAt(run, 1_000 + round), `w${worker}`)) return;
            }
            throw new Error(`no claimer could finish run ${run.id}`);
          }),
        );
      }
      expect(seen.size).toBe(keys.length * perKey);
      for (const key of keys) expect(executed.get(key)).toEqual([1, 2, 3, 4]);
    });

    test("an expired lease is reclaimed; the worker that lost it can neither extend nor finish", async (s) => {
      const q = queueOf(s);
      await drainOthers(q);
      const bot = await seedBot(s);
      const run = await s.runs.create(makeRun(bot));
      const next = await s.runs.create(makeRun(bot));
      const [first] = await claimOwn(q, bot, claimAt("dead", at(100), 10, 30));
      expect(first?.run.id).toBe(run.id);
      // Before expiry nobody else gets it (nor the run queued behind it).
      expect(await claimOwn(q, bot, claimAt("live", at(129)))).toEqual([]);
      const [taken, ...others] = await claimOwn(q, bot, claimAt("live", at(131), 10, 30));
      expect(others).toEqual([]);
      expect(taken).toEqual({
        run: { ...run, status: "running", startedAt: at(131), finishedAt: null },
        reclaimed: true,
      });
      // The first worker comes back: its heartbeat and its outcome are refused.
      expect(await q.extendLeases("dead", [run.id], at(200))).toEqual([]);
      expect(await q.finish(succeededAt(first!.run, 140), "dead")).toBeNull();
      expect((await s.runs.get(run.id))?.status).toBe("running");
      // The new holder's lease is untouched by the refused extension: it expires at 161.
      expect(await claimOwn(q, bot, claimAt("third", at(160)))).toEqual([]);
      const done = await q.finish(succeededAt(taken!.run, 150), "live");
      expect(done).toEqual(succeededAt(taken!.run, 150));
      expect(await s.runs.get(run.id)).toEqual(done);
      // Finished: no lease left to extend or finish again.
      expect(await q.extendLeases("live", [run.id], at(300))).toEqual([]);
      expect(await q.finish(succeededAt(taken!.run, 151), "live")).toBeNull();
      const [after] = await claimOwn(q, bot, claimAt("live", at(151)));
      expect(after?.run.id).toBe(next.id);
      expect(after?.reclaimed).toBe(false);
    });

    test("extendLeases keeps a lease alive past its first expiry and reports only leases held", async (s) => {
      const q = queueOf(s);
      await drainOthers(q);
      const bot = await seedBot(s);
      const a = await s.runs.create(makeRun(bot, { conversationKey: "a" }));
      const b = await s.runs.create(makeRun(bot, { conversationKey: "b" }));
      const queued = await s.runs.create(makeRun(bot, { conversationKey: "c" }));
      await claimOwn(q, bot, claimAt("w", at(100), 2, 30));
      const held = await q.extendLeases("w", [a.id, b.id, queued.id, uid("missing")], at(160));
      expect([...held].sort()).toEqual([a.id, b.id].sort());
      expect(await q.extendLeases("someone-else", [a.id], at(500))).toEqual([]);
      expect(await q.extendLeases("w", [], at(500))).toEqual([]);
      // Past the first expiry (130), the extended leases (160) still hold; "c" is claimable.
      const later = await claimOwn(q, bot, claimAt("x", at(150)));
      expect(later.map((claim) => claim.run.id)).toEqual([queued.id]);
      const reclaimed = await claimOwn(q, bot, claimAt("x", at(161)));
      expect(reclaimed.map((claim) => claim.reclaimed)).toEqual([true, true]);
    });

    test("finish refuses a run that was never claimed, another bot's run, and a missing run", async (s) => {
      const q = queueOf(s);
      await drainOthers(q);
      const bot = await seedBot(s);
      const other = await seedBot(s);
      const queued = await s.runs.create(makeRun(bot));
      expect(await q.finish(succeededAt(queued, 5), "w")).toBeNull();
      expect(await s.runs.get(queued.id)).toEqual(queued);
      const [claim] = await claimOwn(q, bot, claimAt("w", at(10)));
      expect(await q.finish({ ...succeededAt(claim!.run, 11), botId: other.id }, "w")).toBeNull();
      expect(await q.finish({ ...succeededAt(claim!.run, 11), id: uid("missing") }, "w")).toBeNull();
      expect((await s.runs.get(queued.id))?.status).toBe("running");
    });

    test("a run left running without a lease is reclaimed", async (s) => {
      const q = queueOf(s);
      await drainOthers(q);
      const bot = await seedBot(s);
      const created = await s.runs.create(makeRun(bot));
      // What an executor without leases leaves behind when it dies mid-run.
      await s.runs.update({ ...created, status: "running", startedAt: at(2) });
      const [claim] = await claimOwn(q, bot, claimAt("w", at(3)));
      expect(claim).toEqual({
        run: { ...created, status: "running", startedAt: at(3) },
        reclaimed: true,
      });
    });

    test("a queued run reserved for an owner is claimed only by that owner until the reservation ends", async (s) => {
      const q = queueOf(s);
      await drainOthers(q);
      const bot = await seedBot(s);
      const reserved = await s.runs.create(makeRun(bot, { conversationKey: "k:reserved" }), {
        reserveFor: { owner: "waiter", until: at(100) },
      });
      expect(reserved.status).toBe("queued");
      const free = await s.runs.create(makeRun(bot, { conversationKey: "k:free" }));
      // Another owner takes only the unreserved run before the reservation ends. (Leases here
      // are long enough that no claimed run is reclaimed within the test.)
      expect(
        (await claimOwn(q, bot, claimAt("other", at(50), 100, 1_000))).map((claim) => claim.run.id),
      ).toEqual([free.id]);
      const [mine, ...more] = await claimOwn(q, bot, claimAt("waiter", at(60), 100, 1_000));
      expect(more).toEqual([]);
      expect(mine).toEqual({ run: { ...reserved, status: "running", startedAt: at(60) }, reclaimed: false });
      // Once a reservation ends, anyone may claim the run.
      const late = await s.runs.create(makeRun(bot, { conversationKey: "k:late" }), {
        reserveFor: { owner: "gone", until: at(100) },
      });
      expect(await claimOwn(q, bot, claimAt("other", at(99)))).toEqual([]);
      expect((await claimOwn(q, bot, claimAt("other", at(101)))).map((claim) => claim.run.id)).toEqual([
        late.id,
      ]);
    });

    test("create with claimFor starts the run under the lease when its key is free, and queues it otherwise", async (s) => {
      const q = queueOf(s);
      await drainOthers(q);
      const bot = await seedBot(s);
      const claimFor = { owner: "creator", now: at(10), leaseExpiresAt: at(40) };
      const started = await s.runs.create(makeRun(bot, { conversationKey: "k:claimed" }), { claimFor });
      expect(started).toMatchObject({ status: "running", startedAt: at(10), finishedAt: null, seq: 1 });
      expect(await s.runs.get(started.id)).toEqual(started);
      // Its key is busy now: the next run waits, and the lease keeps other claimers off the first.
      const next = await s.runs.create(makeRun(bot, { conversationKey: "k:claimed" }), { claimFor });
      expect(next).toMatchObject({ status: "queued", seq: 2, startedAt: null });
      expect(await claimOwn(q, bot, claimAt("other", at(20)))).toEqual([]);
      expect(await q.extendLeases("creator", [started.id], at(50))).toEqual([started.id]);
      expect(await q.finish(succeededAt(started, 30), "creator")).toMatchObject({ status: "succeeded" });
      expect((await claimOwn(q, bot, claimAt("other", at(31)))).map((claim) => claim.run.id)).toEqual([
        next.id,
      ]);
      // A key with a queued run is not free either, whoever may claim it.
      await s.runs.create(makeRun(bot, { conversationKey: "k:waiting" }));
      expect((await s.runs.create(makeRun(bot, { conversationKey: "k:waiting" }), { claimFor })).status).toBe(
        "queued",
      );
      // Concurrent creates on a free key start one run, at most.
      const raced = await Promise.all(
        Array.from({ length: 8 }, () =>
          s.runs.create(makeRun(bot, { conversationKey: "k:race" }), { claimFor }),
        ),
      );
      expect(raced.filter((run) => run.status === "running")).toHaveLength(1);
      expect(new Set(raced.map((run) => run.seq)).size).toBe(8);
      const stored = await s.runs.listByConversation(bot.id, "k:race", { limit: 10 });
      expect(stored.filter((run) => run.status === "running")).toHaveLength(1);
    });

    test("claim with a limit below 1 throws VALIDATION_FAILED", async (s) => {
      const q = queueOf(s);
      await expectKiloError(q.claim(claimAt("w", at(1), 0)), "VALIDATION_FAILED");
    });
  });
}

/** Registers the `runs getMany` group, for adapters with the optional `runs.getMany`. */
export function registerRunBatchReadTests(group: RunTestGroup): void {
  group("runs getMany", (test) => {
    test("getMany returns the existing runs among the ids, as get would", async (s) => {
      const getMany = s.runs.getMany!.bind(s.runs);
      const bot = await seedBot(s);
      const a = await s.runs.create(makeRun(bot, { deliveryId: "d1" }));
      const b = await s.runs.create(makeRun(bot, { conversationKey: "other" }));
      const done = (await s.runs.update({ ...b, status: "failed", error: { code: "X", message: "no" } }))!;
      const found = await getMany([b.id, uid("missing"), a.id]);
      expect([...found].sort((x, y) => (x.id < y.id ? -1 : 1))).toEqual(
        [a, done].sort((x, y) => (x.id < y.id ? -1 : 1)),
      );
      expect(await getMany([])).toEqual([]);
      found[0]!.input.text = "changed";
      expect(await s.runs.get(found[0]!.id)).toEqual(found[0]!.id === a.id ? a : done);
    });
  });
}

/** Registers the `runs listByBot` group, for adapters with the optional `runs.listByBot`. */
export function registerRunListByBotTests(group: RunTestGroup): void {
  group("runs listByBot", (test) => {
    test("listByBot returns the bot's runs of every key, newest first, paged", async (s) => {
      const listByBot = s.runs.listByBot!.bind(s.runs);
      const bot = await seedBot(s);
      const other = await seedBot(s);
      const made: Run[] = [];
      for (let n = 0; n < 5; n++) {
        made.push(await s.runs.create(makeRun(bot, { conversationKey: `k${n % 2}`, createdAt: at(10 + n) })));
      }
      await s.runs.create(makeRun(other, { createdAt: at(50) }));
      const seen: string[] = [];
      let cursor: string | null = null;
      for (let pages = 0; pages < 10; pages++) {
        const page: Awaited<ReturnType<NonNullable<Storage["runs"]["listByBot"]>>> = await listByBot(bot.id, {
          limit: 2,
          cursor,
        });
        expect(page.items.length).toBeLessThanOrEqual(2);
        seen.push(...page.items.map((run) => run.id));
        if (page.nextCursor === null) break;
        cursor = page.nextCursor;
      }
      expect(seen).toEqual(made.map((run) => run.id).reverse());
      expect((await listByBot(other.id, { limit: 10, cursor: null })).items).toHaveLength(1);
    });
  });
}

/** Registers the `runs retention` group: `runs.deleteFinishedBefore` (optional). */
export function registerRunRetentionTests(group: RunTestGroup, hasSteps: boolean): void {
  group("runs retention", (test) => {
    test("deleteFinishedBefore deletes the finished runs of every bot that ended before the cutoff, with their steps, and nothing else", async (s) => {
      const bot = await seedBot(s);
      const other = await seedBot(s);
      const run = (of: Bot, key: string, status: Run["status"], finished: number | null) =>
        s.runs.create(
          makeRun(of, {
            conversationKey: key,
            status,
            startedAt: status === "queued" ? null : at(50),
            finishedAt: finished === null ? null : at(finished),
          }),
        );
      const oldDone = await run(bot, "a", "succeeded", 100);
      const oldFailed = await run(bot, "a", "failed", 150);
      const recent = await run(bot, "a", "succeeded", 300);
      const waiting = await run(bot, "b", "awaiting_approval", 100);
      const queued = await run(bot, "b", "queued", null);
      const running = await run(bot, "c", "running", null);
      const othersOld = await run(other, "a", "succeeded", 120);
      if (hasSteps) {
        await s.runSteps!.save({
          runId: oldDone.id,
          botId: bot.id,
          index: 0,
          name: "turn",
          kind: "turn",
          status: "succeeded",
          output: { reply: "hi" },
          error: null,
          startedAt: at(50),
          finishedAt: at(100),
        });
      }
      // Other tests' runs on a shared store may go too: count at least ours.
      expect(await s.runs.deleteFinishedBefore!(at(200))).toBeGreaterThanOrEqual(3);
      for (const gone of [oldDone, oldFailed, othersOld]) expect(await s.runs.get(gone.id)).toBeNull();
      for (const kept of [recent, waiting, queued, running]) expect(await s.runs.get(kept.id)).toEqual(kept);
      if (hasSteps) expect(await s.runSteps!.listByRun(bot.id, oldDone.id)).toEqual([]);
      // A key's next run still gets the next seq.
      expect((await s.runs.create(makeRun(bot, { conversationKey: "a" }))).seq).toBe(4);
      expect(await s.runs.deleteFinishedBefore!(at(200))).toBe(0);
    });
  });
}

/**
 * Registers the `runs requeue` group, for adapters with the optional
 * `runs.requeue`: an `awaiting_approval` run goes back to the queue at the end
 * of its key's lane, keeping its steps; anything else is left alone.
 */
export function registerRunRequeueTests(group: RunTestGroup, hasSteps: boolean, hasQueue: boolean): void {
  group("runs requeue", (test) => {
    test("requeue sends an awaiting_approval run to the end of its key's lane, once", async (s) => {
      const requeue = s.runs.requeue!.bind(s.runs);
      const bot = await seedBot(s);
      const waiting = await s.runs.create(
        makeRun(bot, {
          status: "awaiting_approval",
          output: { approvalId: "appr_1" },
          startedAt: at(10),
          finishedAt: at(20),
        }),
      );
      const later = await s.runs.create(makeRun(bot, { createdAt: at(30) }));
      const elsewhere = await s.runs.create(makeRun(bot, { conversationKey: "chat:other" }));
      if (hasSteps) {
        await s.runSteps!.save({
          runId: waiting.id,
          botId: bot.id,
          index: 0,
          name: "tool:shop.refund",
          kind: "tool",
          status: "succeeded",
          output: { status: "awaiting_approval", approvalId: "appr_1" },
          error: null,
          startedAt: at(10),
          finishedAt: at(20),
        });
      }
      const requeued = await requeue(bot.id, waiting.id);
      const expected: Run = {
        ...waiting,
        status: "queued",
        seq: later.seq + 1,
        resumes: 1,
        output: null,
        error: null,
        finishedAt: null,
      };
      expect(requeued).toEqual(expected);
      expect(await s.runs.get(waiting.id)).toEqual(expected);
      // Once: a second decision finds it queued and changes nothing.
      expect(await requeue(bot.id, waiting.id)).toBeNull();
      expect(await s.runs.get(waiting.id)).toEqual(expected);
      if (hasSteps) expect(await s.runSteps!.listByRun(bot.id, waiting.id)).toHaveLength(1);
      // The key's next run comes after it; other keys are untouched.
      expect((await s.runs.create(makeRun(bot))).seq).toBe(later.seq + 2);
      expect(await s.runs.get(elsewhere.id)).toEqual(elsewhere);
      // update keeps resumes as stored, as it keeps seq.
      const done = await s.runs.update({
        ...expected,
        status: "succeeded",
        output: { ok: true },
        resumes: 0,
      });
      expect(done).toMatchObject({ seq: expected.seq });
      expect((await s.runs.get(waiting.id))?.resumes).toBe(1);
    });

    test("requeue counts resumes and refuses other statuses, another bot's run and a missing run", async (s) => {
      const requeue = s.runs.requeue!.bind(s.runs);
      const bot = await seedBot(s);
      const other = await seedBot(s);
      const run = await s.runs.create(makeRun(bot, { status: "awaiting_approval", finishedAt: at(5) }));
      const first = await requeue(bot.id, run.id);
      expect(first).toMatchObject({ status: "queued", resumes: 1 });
      await s.runs.update({ ...first!, status: "awaiting_approval", finishedAt: at(9) });
      const second = await requeue(bot.id, run.id);
      expect(second).toMatchObject({ status: "queued", resumes: 2, seq: first!.seq + 1 });
      expect(await requeue(other.id, run.id)).toBeNull();
      expect(await requeue(bot.id, uid("missing"))).toBeNull();
      for (const status of ["queued", "running", "succeeded", "failed"] as const) {
        const kept = await s.runs.create(makeRun(bot, { conversationKey: `k-${status}`, status }));
        expect(await requeue(bot.id, kept.id)).toBeNull();
        expect(await s.runs.get(kept.id)).toEqual(kept);
      }
    });

    if (hasQueue) {
      test("a requeued run is claimed after the runs its key queued meanwhile, and reserved for nobody", async (s) => {
        const q = queueOf(s);
        await drainOthers(q);
        const bot = await seedBot(s);
        const created = await s.runs.create(makeRun(bot, { createdAt: at(10) }));
        const [claimed] = await claimOwn(q, bot, claimAt("w1", at(100)));
        expect(claimed?.run.id).toBe(created.id);
        const waiting = await q.finish(
          { ...claimed!.run, status: "awaiting_approval", finishedAt: at(101) },
          "w1",
        );
        expect(waiting?.status).toBe("awaiting_approval");
        const meanwhile = await s.runs.create(makeRun(bot, { createdAt: at(102) }));
        const requeued = await s.runs.requeue!(bot.id, created.id);
        expect(requeued?.seq).toBeGreaterThan(meanwhile.seq);
        // The run created meanwhile is the head, though the requeued run is older.
        const next = await claimOwn(q, bot, claimAt("w2", at(103)));
        expect(next.map((claim) => claim.run.id)).toEqual([meanwhile.id]);
        await q.finish(succeededAt(next[0]!.run, 104), "w2");
        const resumed = await claimOwn(q, bot, claimAt("w3", at(105)));
        expect(resumed.map((claim) => [claim.run.id, claim.run.resumes, claim.reclaimed])).toEqual([
          [created.id, 1, false],
        ]);
      });
    }
  });
}
