import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type PostgresStorage, postgresStorage } from "../../adapters/storage/postgres/index.js";
import { createKilo, type Kilo, KiloError, type Run } from "../../src/index.js";
import { mockProvider } from "../../src/testing/index.js";
import { event, queuedRun, USER } from "../runs/helpers.js";

// Worker processes (test/__fixtures__/runs-worker.ts, started with tsx) sharing one Postgres
// schema per test with an ingest-only kilo in this process. Never skipped: fails loudly when
// Postgres does not answer on 127.0.0.1:5432. Schemas are dropped afterwards.
const DATABASE_URL = process.env.KILO_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const RUN = randomBytes(4).toString("hex");
const schemas: string[] = [];
const kilos: Kilo[] = [];
const workers: Worker[] = [];
let admin: pg.Pool;

beforeAll(async () => {
  admin = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
  expect((await admin.query<{ ok: number }>("select 1 as ok")).rows[0]?.ok).toBe(1);
});

afterAll(async () => {
  for (const worker of workers) await worker.stop();
  for (const kilo of kilos) await kilo.close();
  for (const schema of schemas) await admin.query(`drop schema if exists "${schema}" cascade`);
  await admin.end();
});

/** A kilo that only ingests (concurrency 0): every run is executed by the workers. */
async function ingestOnly(label: string) {
  const schema = `kilo_test_${RUN}_${label}`;
  schemas.push(schema);
  const storage: PostgresStorage = postgresStorage({ connectionString: DATABASE_URL, schema, poolSize: 10 });
  const kilo = createKilo({
    storage,
    providers: [mockProvider({ replies: [] })],
    runs: { concurrency: 0 },
  });
  kilos.push(kilo);
  const bot = await kilo.bots.create({ userId: USER, name: "Runner" });
  return { schema, storage, kilo, bot };
}

interface Worker {
  pid: number;
  /** Ids of the runs this worker started, in order. */
  started: string[];
  ready: Promise<void>;
  /** Resolves once the worker is in a model call that hangs (`KILO_WORKER_HANG_TEXT`). */
  hangs(): Promise<void>;
  exited: Promise<unknown>;
  kill(signal: NodeJS.Signals): void;
  stop(): Promise<void>;
}

function spawnWorker(schema: string, name: string, extra: Record<string, string> = {}): Worker {
  const child: ChildProcessWithoutNullStreams = spawn(
    process.execPath,
    ["--import", "tsx", "test/__fixtures__/runs-worker.ts"],
    {
      env: {
        ...process.env,
        KILO_WORKER_DATABASE_URL: DATABASE_URL,
        KILO_WORKER_SCHEMA: schema,
        KILO_WORKER_NAME: name,
        ...extra,
      },
    },
  );
  child.stderr.pipe(process.stderr);
  const started: string[] = [];
  let hanging = 0;
  const listeners = new Set<() => void>();
  let buffered = "";
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split("\n");
    buffered = lines.pop() ?? "";
    for (const line of lines) {
      const message = JSON.parse(line) as { ready?: boolean; started?: string; hanging?: boolean };
      if (message.ready) markReady();
      if (message.started) started.push(message.started);
      if (message.hanging) hanging += 1;
      for (const listener of listeners) listener();
    }
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const died = exited.then(() => {
    throw new Error(`worker ${name} exited`);
  });
  died.catch(() => undefined);
  const worker: Worker = {
    pid: child.pid!,
    started,
    ready: Promise.race([ready, died]),
    hangs: () =>
      Promise.race([
        died,
        new Promise<void>((resolve) => {
          const check = () => {
            if (hanging === 0) return;
            listeners.delete(check);
            resolve();
          };
          listeners.add(check);
          check();
        }),
      ]),
    exited,
    kill: (signal) => child.kill(signal),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      await exited;
    },
  };
  workers.push(worker);
  return worker;
}

/** Waits until the bot has no queued or running run (the workers are done). */
async function settled(schema: string, botId: string): Promise<void> {
  const deadline = Date.now() + 50_000;
  for (;;) {
    const { rows } = await admin.query<{ n: number }>(
      `select count(*)::int as n from "${schema}"."runs" where bot_id = $1 and status in ('queued', 'running')`,
      [botId],
    );
    if (rows[0]?.n === 0) return;
    if (Date.now() > deadline) throw new Error(`${rows[0]?.n} runs still unfinished`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const time = (date: Date | null) => date?.getTime() ?? Number.NaN;

describe("runs on Postgres shared by several processes", () => {
  it("two worker processes, 200 conversations × 5 messages: no overlap, order kept, all terminal, nothing lost or duplicated", async () => {
    const { schema, storage, kilo, bot } = await ingestOnly("proof");
    const pair = [spawnWorker(schema, "worker-a"), spawnWorker(schema, "worker-b")];
    await Promise.all(pair.map((worker) => worker.ready));

    const keys = Array.from({ length: 200 }, (_, n) => `conversation-${n}`);
    const ingested = new Map<string, string[]>(keys.map((key) => [key, []]));
    // Message n of every conversation is ingested once message n - 1 is stored: ingest order is seq order.
    for (let n = 0; n < 5; n++) {
      const results = await Promise.all(
        keys.map((key) => kilo.runs.ingest(event(key, `${key} message ${n}`), { botId: bot.id })),
      );
      for (const [index, result] of results.entries()) ingested.get(keys[index]!)!.push(result.run_id);
    }
    await settled(schema, bot.id);

    const executedBy = new Map<string, number>();
    for (const key of keys) {
      const runs: Run[] = await storage.runs.listByConversation(bot.id, key, { limit: 10 });
      // Nothing lost, nothing duplicated, seq is ingest order, every run terminal and succeeded.
      expect(runs.map((run) => run.id)).toEqual(ingested.get(key));
      expect(runs.map((run) => run.seq)).toEqual([1, 2, 3, 4, 5]);
      expect(runs.map((run) => run.status)).toEqual(Array(5).fill("succeeded"));
      for (let n = 1; n < runs.length; n++) {
        // Each run started only after the one before it finished: no overlap, execution in seq order.
        expect(
          time(runs[n]!.startedAt),
          `${key}: run ${n + 1} started before run ${n} finished`,
        ).toBeGreaterThanOrEqual(time(runs[n - 1]!.finishedAt));
      }
      for (const run of runs) {
        expect(time(run.finishedAt)).toBeGreaterThanOrEqual(time(run.startedAt));
        const worker = String(run.output?.reply);
        executedBy.set(worker, (executedBy.get(worker) ?? 0) + 1);
      }
      // Each message was handled once: the conversation holds every message once, in order.
      const messages = await kilo.conversations.messages(bot.id, runs[0]!.conversationId!, { limit: 50 });
      expect(messages.filter((m) => m.role === "user").map((m) => m.content)).toEqual(
        Array.from({ length: 5 }, (_, n) => `${key} message ${n}`),
      );
      expect(messages.filter((m) => m.role === "assistant")).toHaveLength(5);
    }
    // Both processes executed runs, and every run was started exactly once.
    expect([...executedBy.keys()].sort()).toEqual(["worker-a", "worker-b"]);
    expect(executedBy.get("worker-a")! + executedBy.get("worker-b")!).toBe(1_000);
    const starts = pair.flatMap((worker) => worker.started);
    expect(starts).toHaveLength(1_000);
    expect(new Set(starts).size).toBe(1_000);
    await Promise.all(pair.map((worker) => worker.stop()));
  }, 300_000);

  it("reclaims the run of a worker killed with SIGKILL once its lease expires, and keeps the conversation's order", async () => {
    const { schema, kilo, bot } = await ingestOnly("sigkill");
    const lease = { KILO_WORKER_LEASE_MS: "1000", KILO_WORKER_HEARTBEAT_MS: "100" };
    const doomed = spawnWorker(schema, "doomed", { ...lease, KILO_WORKER_HANG_TEXT: "HANG" });
    await doomed.ready;
    const first = await kilo.runs.ingest(event("chat:1", "HANG on this one"), { botId: bot.id });
    const second = await kilo.runs.ingest(event("chat:1", "and then this"), { botId: bot.id });
    // Killed in the middle of the model call: the turn has stored the user's message by then.
    await doomed.hangs();
    expect(doomed.started).toEqual([first.run_id]);

    const leaseOf = async (runId: string) =>
      (
        await admin.query<{ status: string; lease_owner: string | null; lease_expires_at: Date | null }>(
          `select status, lease_owner, lease_expires_at from "${schema}"."runs" where id = $1`,
          [runId],
        )
      ).rows[0]!;
    const held = await leaseOf(first.run_id);
    expect(held.status).toBe("running");
    expect(held.lease_owner).toContain(`:${doomed.pid}:`);
    expect((await kilo.runs.get(second.run_id)).status).toBe("queued");

    doomed.kill("SIGKILL");
    await doomed.exited;
    // The lease as the dead worker left it: its last heartbeat's.
    const orphaned = await leaseOf(first.run_id);
    expect(orphaned.status).toBe("running");
    expect(orphaned.lease_owner).toBe(held.lease_owner);

    const rescuer = spawnWorker(schema, "rescuer", lease);
    await rescuer.ready;
    const redone = await kilo.runs.wait(first.run_id, { timeoutMs: 20_000 });
    expect(redone.status).toBe("succeeded");
    expect(redone.output?.reply).toBe("rescuer");
    // Taken over only after the lease had expired.
    expect(time(redone.startedAt)).toBeGreaterThan(time(orphaned.lease_expires_at));
    expect(await leaseOf(first.run_id)).toMatchObject({ lease_owner: null, lease_expires_at: null });

    const next = await kilo.runs.wait(second.run_id, { timeoutMs: 20_000 });
    expect(next.status).toBe("succeeded");
    expect(next.output?.reply).toBe("rescuer");
    expect(time(next.startedAt)).toBeGreaterThanOrEqual(time(redone.finishedAt));
    expect(rescuer.started).toEqual([first.run_id, second.run_id]);
    // One reply per run, both from the process that took over. The run was re-run from the start,
    // so the user's message the killed worker had stored is there twice (the documented policy,
    // until steps are recorded).
    const messages = await kilo.conversations.messages(bot.id, redone.conversationId!);
    expect(messages.map((m) => `${m.role}: ${m.content}`)).toEqual([
      "user: HANG on this one",
      "user: HANG on this one",
      "assistant: rescuer",
      "user: and then this",
      "assistant: rescuer",
    ]);
    await rescuer.stop();
  }, 300_000);

  it("refuses a second running run of one conversation (partial unique index)", async () => {
    const { storage, bot } = await ingestOnly("unique");
    const a = await storage.runs.create(queuedRun(`run_${RUN}_a`, bot.id, "chat:1", "hi"));
    const b = await storage.runs.create(queuedRun(`run_${RUN}_b`, bot.id, "chat:1", "hi"));
    await storage.runs.update({ ...a, status: "running" });
    let caught: unknown;
    await storage.runs.update({ ...b, status: "running" }).catch((error: unknown) => {
      caught = error;
    });
    expect(KiloError.is(caught, "CONFLICT")).toBe(true);
    expect((await storage.runs.get(b.id))?.status).toBe("queued");
    // Another conversation key is not held.
    const c = await storage.runs.create(queuedRun(`run_${RUN}_c`, bot.id, "chat:2", "hi"));
    expect((await storage.runs.update({ ...c, status: "running" }))?.status).toBe("running");
  });
});
