import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { memoryStorage } from "../../adapters/storage/memory/index.js";
import { sqliteStorage } from "../../adapters/storage/sqlite/index.js";
import { conversationIdFor, createKilo, KiloError, type Run, type RunSettings } from "../../src/index.js";
import type { Storage } from "../../src/ports/storage.js";
import { mockProvider } from "../../src/testing/index.js";
import { captureLogger, event, type LogLine, overlaps, queuedRun, setupRuns, USER } from "./helpers.js";

const directory = mkdtempSync(join(tmpdir(), "kilo-runs-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "resolved";
  } catch (error) {
    return KiloError.is(error) ? error.code : String(error);
  }
}

describe("kilo.runs: ingest, get, wait", () => {
  it("ingest returns a run_id at once; get shows queued, then running, then succeeded with output", async () => {
    const { kilo, bot } = await setupRuns({ latencyMs: 60 });
    const before = performance.now();
    const { run_id, duplicate } = await kilo.runs.ingest(event("chat:1", "ping"), { botId: bot.id });
    expect(performance.now() - before).toBeLessThan(60);
    expect(duplicate).toBe(false);
    const queuedOrRunning = await kilo.runs.get(run_id);
    expect(["queued", "running"]).toContain(queuedOrRunning.status);
    expect(queuedOrRunning.output).toBeNull();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect((await kilo.runs.get(run_id)).status).toBe("running");
    const done = await kilo.runs.wait(run_id);
    expect(done).toMatchObject({
      id: run_id,
      botId: bot.id,
      userId: USER,
      conversationKey: "chat:1",
      conversationId: conversationIdFor(bot.id, "chat:1"),
      eventType: "message",
      workflow: "message",
      status: "succeeded",
      error: null,
      deliveryId: null,
      seq: 1,
    });
    expect(done.output?.reply).toBe("ok");
    expect(done.output?.conversationId).toBe(done.conversationId);
    expect(done.startedAt).toBeInstanceOf(Date);
    expect(done.finishedAt!.getTime()).toBeGreaterThanOrEqual(done.startedAt!.getTime());
    await kilo.close();
  });

  it("the same conversation key continues the same conversation", async () => {
    const { kilo, bot } = await setupRuns();
    const first = await kilo.runs.ingest(event("chat:7", "one"), { botId: bot.id });
    const second = await kilo.runs.ingest(event("chat:7", "two", { bot_id: bot.id }));
    const a = await kilo.runs.wait(first.run_id);
    const b = await kilo.runs.wait(second.run_id);
    expect(b.conversationId).toBe(a.conversationId);
    expect(b.seq).toBe(2);
    const messages = await kilo.conversations.messages(bot.id, a.conversationId!);
    expect(messages.map((m) => m.content)).toEqual(["one", "ok", "two", "ok"]);
    await kilo.close();
  });

  it("wait with timeoutMs returns the run as it stands", async () => {
    const { kilo, bot } = await setupRuns({ latencyMs: 200 });
    const { run_id } = await kilo.runs.ingest(event("chat:1", "slow"), { botId: bot.id });
    const early = await kilo.runs.wait(run_id, { timeoutMs: 20 });
    expect(["queued", "running"]).toContain(early.status);
    expect((await kilo.runs.wait(run_id)).status).toBe("succeeded");
    await kilo.close();
  });

  it("get and wait of an unknown run fail with NOT_FOUND", async () => {
    const { kilo } = await setupRuns();
    expect(await codeOf(kilo.runs.get("run_missing"))).toBe("NOT_FOUND");
    expect(await codeOf(kilo.runs.wait("run_missing"))).toBe("NOT_FOUND");
    expect(await codeOf(kilo.runs.get("bad id!"))).toBe("VALIDATION_FAILED");
    await kilo.close();
  });
});

describe("kilo.runs: validation and idempotency", () => {
  const storedRuns = async (storage: Storage, botId: string, key: string) =>
    storage.runs.listByConversation(botId, key, { limit: 100 });

  it("rejects invalid events with VALIDATION_FAILED and stores nothing", async () => {
    const storage = memoryStorage();
    const { kilo, bot } = await setupRuns({ storage });
    const wrongVersion = await kilo.runs
      .ingest({ ...event("chat:1", "hi"), schema_version: 2 } as never, { botId: bot.id })
      .catch((error: unknown) => error);
    expect(KiloError.is(wrongVersion, "VALIDATION_FAILED")).toBe(true);
    expect((wrongVersion as KiloError).message).toMatch(/schema_version.*supported versions: 1/);
    const { text: _text, ...noText } = event("chat:1", "hi");
    expect(await codeOf(kilo.runs.ingest(noText as never, { botId: bot.id }))).toBe("VALIDATION_FAILED");
    expect(await codeOf(kilo.runs.ingest(event("chat:1", "   "), { botId: bot.id }))).toBe(
      "VALIDATION_FAILED",
    );
    expect(await codeOf(kilo.runs.ingest({ ...event("", "hi") }, { botId: bot.id }))).toBe(
      "VALIDATION_FAILED",
    );
    // No bot named anywhere; two that disagree.
    expect(await codeOf(kilo.runs.ingest(event("chat:1", "hi")))).toBe("VALIDATION_FAILED");
    expect(
      await codeOf(kilo.runs.ingest(event("chat:1", "hi", { bot_id: "bot_other" }), { botId: bot.id })),
    ).toBe("VALIDATION_FAILED");
    // Unknown bot, or a bot of another user: NOT_FOUND.
    expect(await codeOf(kilo.runs.ingest(event("chat:1", "hi"), { botId: "bot_nope" }))).toBe("NOT_FOUND");
    expect(
      await codeOf(kilo.runs.ingest({ ...event("chat:1", "hi"), user_key: "mallory" }, { botId: bot.id })),
    ).toBe("NOT_FOUND");
    expect(await storedRuns(storage, bot.id, "chat:1")).toEqual([]);
    expect(await storedRuns(storage, bot.id, "")).toEqual([]);
    await kilo.close();
  });

  it("an already-ingested delivery id returns the existing run and starts nothing", async () => {
    const storage = memoryStorage();
    const { kilo, bot, provider } = await setupRuns({ storage });
    const first = await kilo.runs.ingest(event("chat:1", "hello", { delivery_id: 90210 }), { botId: bot.id });
    const again = await kilo.runs.ingest(event("chat:1", "hello", { delivery_id: "90210" }), {
      botId: bot.id,
    });
    expect(again).toEqual({ run_id: first.run_id, duplicate: true });
    await kilo.runs.wait(first.run_id);
    const calls = provider.calls;
    const late = await kilo.runs.ingest(event("chat:1", "hello", { delivery_id: 90210 }), { botId: bot.id });
    expect(late.run_id).toBe(first.run_id);
    // Racing duplicates: exactly one run.
    const raced = await Promise.all(
      Array.from({ length: 5 }, () =>
        kilo.runs.ingest(event("chat:1", "race", { delivery_id: "k-1" }), { botId: bot.id }),
      ),
    );
    expect(new Set(raced.map((r) => r.run_id)).size).toBe(1);
    expect(raced.filter((r) => !r.duplicate)).toHaveLength(1);
    await kilo.runs.wait(raced[0]!.run_id);
    const runs = await storedRuns(storage, bot.id, "chat:1");
    expect(runs.map((r) => r.deliveryId)).toEqual(["90210", "k-1"]);
    expect(provider.calls).toBeGreaterThan(calls);
    await kilo.close();
  });

  it("stores raw only when the host opts in", async () => {
    const raw = { update_id: 1, message: { chat: { id: 42 }, text: "hi" } };
    const off = await setupRuns();
    const a = await off.kilo.runs.ingest(event("chat:1", "hi", { raw }), { botId: off.bot.id });
    expect((await off.kilo.runs.get(a.run_id)).input).not.toHaveProperty("raw");
    expect((await off.kilo.runs.get(a.run_id)).input.text).toBe("hi");
    await off.kilo.close();
    const on = await setupRuns({ kilo: { runs: { storeRawEvents: true } } });
    const b = await on.kilo.runs.ingest(event("chat:1", "hi", { raw }), { botId: on.bot.id });
    expect((await on.kilo.runs.get(b.run_id)).input.raw).toEqual(raw);
    await on.kilo.close();
  });
});

describe("kilo.runs: ordering and concurrency", () => {
  it("two messages of one conversation key run sequentially, in ingest order", async () => {
    const { kilo, bot, spans } = await setupRuns({ latencyMs: 40 });
    const first = await kilo.runs.ingest(event("chat:1", "first"), { botId: bot.id });
    const second = await kilo.runs.ingest(event("chat:1", "second"), { botId: bot.id });
    await kilo.runs.wait(second.run_id);
    const a = spans.get(first.run_id)!;
    const b = spans.get(second.run_id)!;
    expect(a.end).toBeGreaterThan(0);
    expect(overlaps(a, b)).toBe(false);
    expect(b.start).toBeGreaterThanOrEqual(a.end);
    expect((await kilo.runs.get(first.run_id)).finishedAt!.getTime()).toBeLessThanOrEqual(
      (await kilo.runs.get(second.run_id)).startedAt!.getTime(),
    );
    await kilo.close();
  });

  it("different conversation keys run concurrently", async () => {
    const { kilo, bot, spans } = await setupRuns({ latencyMs: 60 });
    const a = await kilo.runs.ingest(event("chat:a", "hi"), { botId: bot.id });
    const b = await kilo.runs.ingest(event("chat:b", "hi"), { botId: bot.id });
    await Promise.all([kilo.runs.wait(a.run_id), kilo.runs.wait(b.run_id)]);
    expect(overlaps(spans.get(a.run_id)!, spans.get(b.run_id)!)).toBe(true);
    await kilo.close();
  });

  it("respects the global concurrency limit", async () => {
    const { kilo, bot, spans } = await setupRuns({ latencyMs: 20, kilo: { runs: { concurrency: 2 } } });
    const ids = [];
    for (let n = 0; n < 6; n++)
      ids.push((await kilo.runs.ingest(event(`k${n}`, "hi"), { botId: bot.id })).run_id);
    await Promise.all(ids.map((id) => kilo.runs.wait(id)));
    const all = [...spans.values()];
    for (const span of all) {
      const concurrent = all.filter((other) => other.start <= span.start && other.end > span.start);
      expect(concurrent.length).toBeLessThanOrEqual(2);
    }
    await kilo.close();
  });

  it("a failing run is recorded as failed and the next run of its key still runs", async () => {
    const { kilo, bot } = await setupRuns({ latencyMs: 5 });
    const bad = await kilo.runs.ingest(event("chat:1", "please FAIL"), { botId: bot.id });
    const good = await kilo.runs.ingest(event("chat:1", "fine"), { botId: bot.id });
    const completed: string[] = [];
    kilo.events.on("run-completed", (e) => completed.push(`${e.runId}:${e.status}`));
    const failed = await kilo.runs.wait(bad.run_id);
    expect(failed.status).toBe("failed");
    expect(failed.output).toBeNull();
    expect(failed.error?.code).toMatch(/^[A-Z_]+$/);
    expect(failed.error?.message).toMatch(/PROVIDER_FAILED|scripted failure/);
    expect(failed.finishedAt).toBeInstanceOf(Date);
    const next = await kilo.runs.wait(good.run_id);
    expect(next.status).toBe("succeeded");
    expect(completed).toEqual([`${bad.run_id}:failed`, `${good.run_id}:succeeded`]);
    await kilo.close();
  });

  it("emits run-queued, run-started, run-completed; a run's log lines carry run_id, workflow, conversation_key", async () => {
    const lines: LogLine[] = [];
    const { kilo, bot } = await setupRuns({ kilo: { logger: captureLogger(lines) } });
    const seen: string[] = [];
    kilo.events.on("run-queued", (e) => seen.push(`queued:${e.seq}`));
    kilo.events.on("run-started", (e) => seen.push(`started:${e.seq}`));
    kilo.events.on("run-completed", (e) => seen.push(`completed:${e.status}`));
    const { run_id } = await kilo.runs.ingest(event("chat:9", "hello"), { botId: bot.id });
    await kilo.runs.wait(run_id);
    expect(seen).toEqual(["queued:1", "started:1", "completed:succeeded"]);
    const runLines = lines.filter((line) => line.fields.run_id !== undefined);
    expect(runLines.map((line) => line.message)).toEqual(
      expect.arrayContaining(["run queued", "run started", "run completed"]),
    );
    for (const line of runLines) {
      expect(line.fields).toMatchObject({ run_id, workflow: "message", conversation_key: "chat:9" });
    }
    await kilo.close();
  });
});

/** Ingests `keys` × `perKey` messages interleaved, waits for all, and checks order, completeness, no overlap. */
async function ordering(storage: Storage, keys: number, perKey: number) {
  const { kilo, bot, spans } = await setupRuns({ storage, latencyMs: 2 });
  const ingested = new Map<string, string[]>();
  const pending: Promise<{ key: string; run_id: string }>[] = [];
  for (let n = 0; n < perKey; n++) {
    for (let k = 0; k < keys; k++) {
      const key = `key-${k}`;
      pending.push(
        kilo.runs
          .ingest(event(key, `${key} message ${n}`, { delivery_id: `${key}/${n}` }), { botId: bot.id })
          .then((result) => ({ key, run_id: result.run_id })),
      );
    }
  }
  // Ingests of one key are issued in order; each resolves once its run is stored.
  for (const { key, run_id } of await Promise.all(pending)) {
    const list = ingested.get(key) ?? [];
    list.push(run_id);
    ingested.set(key, list);
  }
  const finished: Run[] = await Promise.all(
    [...ingested.values()].flat().map((id) => kilo.runs.wait(id, { timeoutMs: 60_000 })),
  );
  expect(finished).toHaveLength(keys * perKey);
  expect(finished.every((run) => run.status === "succeeded")).toBe(true);
  for (const [key, runIds] of ingested) {
    const stored = await storage.runs.listByConversation(bot.id, key, { limit: 100 });
    // Nothing lost or duplicated; seq is ingest order.
    expect(stored.map((run) => run.id)).toEqual(runIds);
    expect(stored.map((run) => run.seq)).toEqual(Array.from({ length: perKey }, (_, n) => n + 1));
    const keySpans = runIds.map((id) => spans.get(id)!);
    for (let n = 1; n < keySpans.length; n++) {
      expect(keySpans[n]!.start, `${key}: run ${n + 1} started before run ${n} ended`).toBeGreaterThanOrEqual(
        keySpans[n - 1]!.end,
      );
    }
    // The conversation holds the messages in ingest order.
    const conversationId = stored[0]!.conversationId!;
    const messages = await kilo.conversations.messages(bot.id, conversationId, { limit: 500 });
    expect(messages.filter((m) => m.role === "user").map((m) => m.content)).toEqual(
      Array.from({ length: perKey }, (_, n) => `${key} message ${n}`),
    );
  }
  await kilo.close();
}

describe("kilo.runs: many conversations", () => {
  it("50 keys × 5 messages on memory storage: all terminal, order kept per key, nothing lost or duplicated", async () => {
    await ordering(memoryStorage(), 50, 5);
  }, 60_000);

  it("50 keys × 5 messages on SQLite (file) storage", async () => {
    await ordering(sqliteStorage({ filename: join(directory, "ordering.db") }), 50, 5);
  }, 60_000);
});

describe("kilo.runs: recovery after a restart", () => {
  it("resumes queued and running runs of a previous process in order (running ones re-run from the start)", async () => {
    const filename = join(directory, "recovery.db");
    // A previous process stored runs and died: one mid-run, two queued behind it, one queued elsewhere.
    const before = sqliteStorage({ filename });
    await before.users.upsert({ id: USER, name: null, metadata: {}, createdAt: new Date() });
    const bot = await before.bots.create({
      id: "bot_recover",
      userId: USER,
      name: "Runner",
      soul: null,
      personality: null,
      context: null,
      metadata: {},
      createdAt: new Date(),
      updatedAt: new Date(),
    });
    const base = (id: string, key: string, text: string) => queuedRun(id, bot.id, key, text);
    const crashed = await before.runs.create(base("run_a1", "a", "first"));
    await before.runs.update({ ...crashed, status: "running", startedAt: new Date() });
    await before.runs.create(base("run_a2", "a", "second"));
    await before.runs.create(base("run_a3", "a", "third"));
    await before.runs.create(base("run_b1", "b", "other"));
    await before.close();

    const { kilo, spans } = await setupRuns({ storage: sqliteStorage({ filename }), latencyMs: 5 });
    const results = await Promise.all(
      ["run_a1", "run_a2", "run_a3", "run_b1"].map((id) => kilo.runs.wait(id)),
    );
    expect(results.map((run) => run.status)).toEqual(["succeeded", "succeeded", "succeeded", "succeeded"]);
    const [a1, a2, a3] = ["run_a1", "run_a2", "run_a3"].map((id) => spans.get(id)!);
    expect(a2!.start).toBeGreaterThanOrEqual(a1!.end);
    expect(a3!.start).toBeGreaterThanOrEqual(a2!.end);
    const messages = await kilo.conversations.messages(bot.id, conversationIdFor(bot.id, "a"));
    expect(messages.filter((m) => m.role === "user").map((m) => m.content)).toEqual([
      "first",
      "second",
      "third",
    ]);
    await kilo.close();
  });
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
