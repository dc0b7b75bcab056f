import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { memoryStorage } from "../../adapters/storage/memory/index.js";
import { sqliteStorage } from "../../adapters/storage/sqlite/index.js";
import { createKilo, type RunSettings } from "../../src/index.js";
import type { Storage } from "../../src/ports/storage.js";
import { mockProvider } from "../../src/testing/index.js";
import { event, queuedRun, setupRuns, USER, userText } from "./helpers.js";
import { runBehaviourSuite } from "./run-behaviour.js";

const directory = mkdtempSync(join(tmpdir(), "kilo-runs-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

// The behaviour every executor shares (test/runs/run-behaviour.ts), on the built-in executors:
// the in-process keyed queue on memory and SQLite.
runBehaviourSuite({
  label: "built-in",
  storage: () => memoryStorage(),
  reopenable(name) {
    const filename = join(directory, `${name}.db`);
    return { first: sqliteStorage({ filename }), reopen: () => sqliteStorage({ filename }) };
  },
  options: (options) => options,
  ordering: [
    { label: "memory storage", storage: () => memoryStorage(), keys: 50, perKey: 5 },
    {
      label: "SQLite (file) storage",
      storage: () => sqliteStorage({ filename: join(directory, "ordering.db") }),
      keys: 50,
      perKey: 5,
    },
  ],
});

/** A memory storage that declares itself shared, so two kilos on it behave like two processes on Postgres. */
function sharedMemory(): Storage {
  const storage = memoryStorage();
  return { ...storage, capabilities: { ...storage.capabilities, crossProcess: true } };
}

describe("kilo.runs: the shared queue (storage with crossProcess and runs.claim)", () => {
  it("validates the lease, heartbeat and poll settings, and allows concurrency 0 only on shared storage", () => {
    const provider = mockProvider({ replies: [] });
    const make = (storage: Storage, runs: RunSettings) => () =>
      createKilo({ storage, providers: [provider], runs });
    const invalid = [
      { leaseMs: 99 },
      { leaseMs: 1.5 },
      { leaseMs: 1_000, heartbeatIntervalMs: 501 },
      { heartbeatIntervalMs: 9 },
      { pollIntervalMs: 0 },
      { pollIntervalMs: 60_001 },
      { concurrency: -1 },
    ];
    for (const runs of invalid) {
      expect(make(sharedMemory(), runs), JSON.stringify(runs)).toThrow(/runs\.\w+ must be an integer/);
    }
    expect(make(memoryStorage(), { concurrency: 0 })).toThrow(/runs\.concurrency must be an integer from 1/);
    expect(make(sharedMemory(), { concurrency: 0, leaseMs: 1_000, heartbeatIntervalMs: 500 })).not.toThrow();
    // A lease shorter than the default heartbeat's double gets a heartbeat of half the lease.
    expect(make(sharedMemory(), { leaseMs: 5_000 })).not.toThrow();
  });

  it("two kilos on one shared store split the runs, keep each key's order, and wait across them", async () => {
    const storage = sharedMemory();
    const ingester = await setupRuns({ storage, kilo: { runs: { concurrency: 0 } } });
    const workers = [
      await setupRuns({ storage, latencyMs: 3, kilo: { runs: { concurrency: 2, pollIntervalMs: 5 } } }),
      await setupRuns({ storage, latencyMs: 3, kilo: { runs: { concurrency: 2, pollIntervalMs: 5 } } }),
    ];
    for (const worker of workers) await worker.kilo.runs.start();
    const botId = ingester.bot.id;
    const ids = new Map<string, string[]>();
    for (let n = 0; n < 4; n++) {
      for (let k = 0; k < 6; k++) {
        const key = `key-${k}`;
        const { run_id } = await ingester.kilo.runs.ingest(event(key, `${key} message ${n}`), { botId });
        ids.set(key, [...(ids.get(key) ?? []), run_id]);
      }
    }
    // The ingesting kilo executes nothing, yet its wait sees the runs the others finish.
    const finished = await Promise.all([...ids.values()].flat().map((id) => ingester.kilo.runs.wait(id)));
    expect(finished.map((run) => run.status)).toEqual(Array(24).fill("succeeded"));
    expect(ingester.spans.size).toBe(0);
    expect(workers.map((worker) => worker.spans.size).every((count) => count > 0)).toBe(true);
    expect(workers[0]!.spans.size + workers[1]!.spans.size).toBe(24);
    for (const [key, runIds] of ids) {
      const stored = await storage.runs.listByConversation(botId, key, { limit: 10 });
      expect(stored.map((run) => run.id)).toEqual(runIds);
      for (let n = 1; n < stored.length; n++) {
        expect(stored[n]!.startedAt!.getTime()).toBeGreaterThanOrEqual(stored[n - 1]!.finishedAt!.getTime());
      }
    }
    for (const { kilo } of [ingester, ...workers]) await kilo.close();
  });

  it("a closed kilo claims nothing more; another one picks up what is left", async () => {
    const storage = sharedMemory();
    const first = await setupRuns({ storage, latencyMs: 2, kilo: { runs: { pollIntervalMs: 5 } } });
    const a = await first.kilo.runs.ingest(event("chat:1", "one"), { botId: first.bot.id });
    await first.kilo.runs.wait(a.run_id);
    await first.kilo.close();
    await expect(first.kilo.runs.start()).rejects.toThrow(/close/);
    // Ingested through the store directly, as another process would.
    const queued = await storage.runs.create({
      ...(await storage.runs.get(a.run_id))!,
      id: "run_left_behind",
      status: "queued",
      output: null,
      startedAt: null,
      finishedAt: null,
    });
    const second = await setupRuns({ storage, latencyMs: 2, kilo: { runs: { pollIntervalMs: 5 } } });
    await second.kilo.runs.start();
    const done = await second.kilo.runs.wait(queued.id);
    expect(done.status).toBe("succeeded");
    expect(second.spans.has(queued.id)).toBe(true);
    await second.kilo.close();
  });
});

describe("kilo.runs: a conversation keeps its slot for its next run", () => {
  /** The keys of the runs in the order they started. */
  const startOrder = (spans: Map<string, { key: string; start: number }>) =>
    [...spans.values()].sort((a, b) => a.start - b.start).map((span) => span.key);

  it("the keyed queue runs a key's queued runs back to back, up to 16, then lets the next key in", async () => {
    const { kilo, bot, spans } = await setupRuns({ latencyMs: 50, kilo: { runs: { concurrency: 1 } } });
    const first = await kilo.runs.ingest(event("a", "a 1"), { botId: bot.id });
    // While a's first run holds the only slot: 17 more of a, then one of b.
    const rest = await Promise.all([
      ...Array.from({ length: 17 }, (_, n) => kilo.runs.ingest(event("a", `a ${n + 2}`), { botId: bot.id })),
      kilo.runs.ingest(event("b", "b 1"), { botId: bot.id }),
    ]);
    for (const { run_id } of [first, ...rest]) await kilo.runs.wait(run_id);
    expect(startOrder(spans)).toEqual([...Array(16).fill("a"), "b", "a", "a"]);
    await kilo.close();
  });

  it("the shared queue hands a key's next run on in the finishing run's commit, without a claim", async () => {
    const storage = sharedMemory();
    const claimed: string[] = [];
    const claim = storage.runs.claim!.bind(storage.runs);
    storage.runs.claim = async (request) => {
      const claims = await claim(request);
      claimed.push(...claims.map((one) => one.run.id));
      return claims;
    };
    const { kilo, bot, spans } = await setupRuns({
      storage,
      latencyMs: 30,
      kilo: { runs: { concurrency: 1, pollIntervalMs: 60_000 } },
    });
    const first = await kilo.runs.ingest(event("a", "a 1"), { botId: bot.id });
    const a2 = await kilo.runs.ingest(event("a", "a 2"), { botId: bot.id });
    const a3 = await kilo.runs.ingest(event("a", "a 3"), { botId: bot.id });
    const b1 = await kilo.runs.ingest(event("b", "b 1"), { botId: bot.id });
    const runs = [];
    for (const { run_id } of [first, a2, a3, b1]) runs.push(await kilo.runs.wait(run_id));
    expect(runs.map((run) => run.status)).toEqual(Array(4).fill("succeeded"));
    expect(startOrder(spans)).toEqual(["a", "a", "a", "b"]);
    // a's later runs were handed on; b's run, the next key, was claimed.
    expect(claimed).not.toContain(a2.run_id);
    expect(claimed).not.toContain(a3.run_id);
    expect(claimed).toContain(b1.run_id);
    for (let n = 1; n < 3; n++) {
      expect(runs[n]!.startedAt!.getTime()).toBeGreaterThanOrEqual(runs[n - 1]!.finishedAt!.getTime());
    }
    await kilo.close();
  });
});

/** `storage` with its `runs.get` calls counted. */
function countingReads(storage: Storage): { counted: Storage; reads: { count: number } } {
  const reads = { count: 0 };
  const counted: Storage = {
    ...storage,
    runs: {
      ...storage.runs,
      get: (runId) => {
        reads.count += 1;
        return storage.runs.get(runId);
      },
    },
  };
  return { counted, reads };
}

describe("kilo.runs: reads it can skip", () => {
  it("waiting for a run this process finished reads nothing, and returns a copy", async () => {
    const storage = memoryStorage();
    const { counted, reads } = countingReads(storage);
    const { kilo, bot } = await setupRuns({ storage: counted, latencyMs: 20 });
    const { run_id } = await kilo.runs.ingest(event("k", "hello"), { botId: bot.id });
    // Ingested here and still under way: the wait waits for this process to finish it, unread.
    expect(await kilo.runs.wait(run_id)).toMatchObject({ id: run_id, status: "succeeded" });
    expect(reads.count).toBe(0);
    const first = await kilo.runs.wait(run_id);
    expect(first).toMatchObject({ id: run_id, status: "succeeded", output: { reply: "ok" } });
    expect(reads.count).toBe(0);
    first.output = { changed: true };
    expect((await kilo.runs.wait(run_id)).output).toMatchObject({ reply: "ok" });
    // A run this process did not finish is read.
    const other = await storage.runs.create(queuedRun("run_elsewhere", bot.id, "k2", "hi"));
    await storage.runs.update({ ...other, status: "failed", error: { code: "INTERNAL", message: "x" } });
    expect((await kilo.runs.wait("run_elsewhere")).status).toBe("failed");
    expect(reads.count).toBe(1);
    await kilo.close();
  });
});

describe("kilo.runs: waits it need not poll", () => {
  it("waiting for runs queued in this process reads nothing, however many are queued and however long they wait", async () => {
    const storage = memoryStorage();
    const { counted, reads } = countingReads(storage);
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const kilo = createKilo({
      storage: counted,
      providers: [
        mockProvider({
          async respond(request) {
            if (userText(request).includes("hold")) await held;
            return "ok";
          },
        }),
      ],
      runs: { concurrency: 1 },
    });
    const bot = await kilo.bots.create({ userId: USER, name: "Runner" });
    await kilo.runs.ingest(event("first", "hold"), { botId: bot.id });
    // The only slot is held: these queue behind it, more of them than a process keeps of the
    // runs it finished (1,000), and the oldest are waited for.
    const queued = [];
    for (let n = 0; n < 1_010; n++)
      queued.push(await kilo.runs.ingest(event(`k${n}`, "hi"), { botId: bot.id }));
    const waits = Promise.all(queued.slice(0, 3).map(({ run_id }) => kilo.runs.wait(run_id)));
    // Longer than a wait re-reads a run this process does not hold (every second): no read.
    await new Promise((resolve) => setTimeout(resolve, 1_300));
    expect(reads.count).toBe(0);
    release();
    expect((await waits).map((run) => [run.id, run.status])).toEqual(
      queued.slice(0, 3).map(({ run_id }) => [run_id, "succeeded"]),
    );
    expect(reads.count).toBe(0);
    await kilo.close();
  });
});

describe("kilo.runs: writes it can skip", () => {
  it("a run whose key and a slot are free is created running, the next of its key starts in its commit: no write marks them started", async () => {
    const storage = memoryStorage();
    const writes: string[] = [];
    const counted: Storage = {
      ...storage,
      runs: {
        ...storage.runs,
        create: (run, createOptions) => {
          writes.push(`create ${run.status}`);
          return storage.runs.create(run, createOptions);
        },
        update: (run) => {
          writes.push(`update ${run.status}`);
          return storage.runs.update(run);
        },
      },
    };
    const { kilo, bot } = await setupRuns({
      storage: counted,
      latencyMs: 40,
      kilo: { runs: { concurrency: 1 } },
    });
    const first = await kilo.runs.ingest(event("a", "one"), { botId: bot.id });
    expect(await kilo.runs.get(first.run_id)).toMatchObject({
      status: "running",
      startedAt: expect.any(Date),
    });
    // The only slot is taken: the next runs, of this key and another, are created queued.
    const second = await kilo.runs.ingest(event("a", "two"), { botId: bot.id });
    const other = await kilo.runs.ingest(event("b", "three"), { botId: bot.id });
    const done = [];
    for (const { run_id } of [first, second, other]) done.push(await kilo.runs.wait(run_id));
    expect(done.map((run) => [run.seq, run.status])).toEqual([
      [1, "succeeded"],
      [2, "succeeded"],
      [1, "succeeded"],
    ]);
    // Each turn's commit stored its run's outcome; the first's also started the next run of its
    // key (a hand-off): only the other key's run, which waited for the slot, was marked started.
    expect(writes).toEqual(["create running", "create queued", "create queued", "update running"]);
    expect(done[0]!.finishedAt!.getTime()).toBeGreaterThanOrEqual(done[0]!.startedAt!.getTime());
    expect(done[1]!.startedAt!.getTime()).toBeGreaterThanOrEqual(done[0]!.finishedAt!.getTime());
    await kilo.close();
  });
});

describe("kilo.runs: a key left running by an earlier process (SQLite, recover off)", () => {
  it("still ingests: the new run is created queued when it cannot be created running", async () => {
    const storage = sqliteStorage({ filename: join(directory, "stale-running.db") });
    const { kilo, bot } = await setupRuns({ storage, kilo: { runs: { recover: false } } });
    // What a killed process leaves: its run of the key still `running` (one per key on SQL).
    const stale = { ...queuedRun("run_stale", bot.id, "k", "hi"), status: "running" as const };
    await storage.runs.create(stale);
    // The clash a second running run of the key meets, as SQLite reports it.
    await expect(storage.runs.create({ ...stale, id: "run_second" })).rejects.toThrow(
      "another run of conversation key k is running",
    );
    const { run_id } = await kilo.runs.ingest(event("k", "hello"), { botId: bot.id });
    // Queued behind the stale run, which holds the key until a process that recovers re-runs it.
    expect(await kilo.runs.get(run_id)).toMatchObject({ seq: 2, status: "queued" });
    await kilo.close();
  });
});

describe("kilo.runs.prune: retention", () => {
  it("deletes finished runs older than the retention or the cutoff, keeps the rest, and says so when it cannot", async () => {
    const bad = [0, -1, 40_000, Number.NaN];
    for (const retentionDays of bad) {
      expect(
        () =>
          createKilo({
            storage: memoryStorage(),
            providers: [mockProvider({ replies: [] })],
            runs: { retentionDays },
          }),
        String(retentionDays),
      ).toThrow(/runs\.retentionDays must be a number of days/);
    }
    const storage = memoryStorage();
    const { kilo, bot } = await setupRuns({ storage, kilo: { runs: { retentionDays: 30 } } });
    const { run_id: done } = await kilo.runs.ingest(event("k", "hello"), { botId: bot.id });
    await kilo.runs.wait(done);
    const waiting = await storage.runs.create({
      ...queuedRun("run_waiting", bot.id, "k2", "refund"),
      status: "awaiting_approval",
      finishedAt: new Date(Date.now() - 40 * 86_400_000),
    });
    // Finished just now: inside the 30 days.
    expect(await kilo.runs.prune()).toEqual({ deleted: 0 });
    expect(await kilo.runs.prune({ olderThan: new Date(Date.now() + 60_000) })).toEqual({ deleted: 1 });
    await expect(kilo.runs.get(done)).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect(await storage.runSteps!.listByRun(bot.id, done)).toEqual([]);
    expect((await kilo.runs.get(waiting.id)).status).toBe("awaiting_approval");
    await expect(kilo.runs.prune({ olderThan: "yesterday" } as never)).rejects.toMatchObject({
      code: "VALIDATION_FAILED",
    });
    await kilo.close();

    // Without a retention, prune() deletes nothing; a storage that cannot delete runs is named.
    const plain = memoryStorage();
    const without = await setupRuns({
      storage: { ...plain, runs: { ...plain.runs, deleteFinishedBefore: undefined } },
    });
    expect(await without.kilo.runs.prune()).toEqual({ deleted: 0 });
    await expect(without.kilo.runs.prune({ olderThan: new Date() })).rejects.toMatchObject({
      code: "CONFIGURATION_INVALID",
      message: expect.stringContaining("runs.deleteFinishedBefore"),
    });
    await without.kilo.close();
  });
});

describe("kilo.runs: ingest order within a process", () => {
  it("overlapping ingests of one key get their seq in call order, however long their checks take", async () => {
    const inner = memoryStorage();
    let checks = 0;
    const storage: Storage = {
      ...inner,
      runs: {
        ...inner.runs,
        // The first delivery check is slow: without ordering, the second ingest would store first.
        findByDelivery: async (botId, deliveryId) => {
          if (checks++ === 0) await new Promise((resolve) => setTimeout(resolve, 30));
          return inner.runs.findByDelivery(botId, deliveryId);
        },
      },
    };
    const { kilo, bot } = await setupRuns({ storage });
    const [first, second, elsewhere] = await Promise.all([
      kilo.runs.ingest(event("k", "first", { delivery_id: "d1" }), { botId: bot.id }),
      kilo.runs.ingest(event("k", "second", { delivery_id: "d2" }), { botId: bot.id }),
      kilo.runs.ingest(event("other", "meanwhile", { delivery_id: "d3" }), { botId: bot.id }),
    ]);
    const stored = await inner.runs.listByConversation(bot.id, "k", { limit: 5 });
    expect(stored.map((run) => run.id)).toEqual([first.run_id, second.run_id]);
    // Another key does not wait for this one's slow check.
    const other = await inner.runs.get(elsewhere.run_id);
    expect(other!.createdAt.getTime()).toBeLessThan(stored[0]!.createdAt.getTime());
    await kilo.runs.wait(second.run_id);
    await kilo.close();
  });
});
