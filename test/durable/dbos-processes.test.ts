import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { dbosExecutor } from "../../adapters/durable/dbos/index.js";
import { createKilo, type Run } from "../../src/index.js";
import { mockProvider } from "../../src/testing/index.js";
import { event, storedBot } from "../runs/helpers.js";
import { DATABASE_URL, dbosTestDatabases } from "./helpers.js";

// Child processes (test/__fixtures__/dbos-worker.ts, run with tsx) executing runs on the DBOS
// executor: two sharing the work, and real crashes, a worker killed with SIGKILL inside a workflow's
// second step whose run another process then finishes. kilo's storage is a Postgres schema,
// DBOS's system database one per file.
const databases = dbosTestDatabases("crash");
const directory = mkdtempSync(join(tmpdir(), "kilo-dbos-crash-"));
const children: ChildProcessWithoutNullStreams[] = [];
afterAll(async () => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  rmSync(directory, { recursive: true, force: true });
  await databases.cleanup();
}, 300_000);

interface Worker {
  /** Resolves with the first stdout line (parsed) that has `key`. */
  line<T>(key: string): Promise<T>;
  send(text: string): void;
  /** Closes its stdin: it closes kilo and exits. */
  stop(): void;
  kill(): void;
  exited: Promise<NodeJS.Signals | number | null>;
}

function start(env: Record<string, string>): Worker {
  const child = spawn(process.execPath, ["--import", "tsx", "test/__fixtures__/dbos-worker.ts"], {
    env: { ...process.env, NODE_NO_WARNINGS: "1", ...env },
  });
  children.push(child);
  child.stderr.pipe(process.stderr);
  const lines: Array<Record<string, unknown>> = [];
  const listeners = new Set<() => void>();
  let buffered = "";
  child.stdout.on("data", (chunk: Buffer) => {
    buffered += chunk.toString("utf8");
    let newline = buffered.indexOf("\n");
    while (newline >= 0) {
      const text = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      lines.push(JSON.parse(text) as Record<string, unknown>);
      newline = buffered.indexOf("\n");
    }
    for (const listener of listeners) listener();
  });
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
    child.on("exit", (code, signal) => resolve(signal ?? code)),
  );
  return {
    line<T>(key: string) {
      return new Promise<T>((resolve, reject) => {
        const check = () => {
          const found = lines.find((line) => key in line);
          if (!found) return false;
          listeners.delete(check);
          resolve(found[key] as T);
          return true;
        };
        if (check()) return;
        listeners.add(check);
        void exited.then((how) => {
          if (!check()) reject(new Error(`worker exited (${String(how)}) before writing '${key}'`));
        });
      });
    },
    send: (text) => child.stdin.write(`${text}\n`),
    stop: () => child.stdin.end(),
    kill: () => child.kill("SIGKILL"),
    exited,
  };
}

/** A stored bot and the environment every worker of one test shares. */
async function scenario(name: string) {
  const schema = databases.schema();
  const storage = databases.storage(schema);
  const bot = await storedBot(storage, `bot_${name}`);
  const effects = join(directory, `${name}.log`);
  const env = {
    KILO_DBOS_DATABASE_URL: DATABASE_URL,
    KILO_DBOS_SCHEMA: schema,
    KILO_DBOS_SYSTEM_URL: databases.systemDatabaseUrl,
    KILO_DBOS_APP: `kilo_${name}`,
    KILO_DBOS_EFFECTS: effects,
    KILO_DBOS_BOT: bot.id,
  };
  return { storage, bot, env, effects: () => readFileSync(effects, "utf8") };
}

/** Starts a worker that ingests "order 1", which hangs inside step 2; kills it there. */
async function crashInStepTwo(env: Record<string, string>, executorId: string) {
  const first = start({
    ...env,
    KILO_DBOS_EXECUTOR_ID: executorId,
    KILO_DBOS_INGEST: "order 1",
    KILO_DBOS_HANG: "order 1",
  });
  const runId = await first.line<string>("run_id");
  expect(await first.line<string>("hanging")).toBe(runId);
  first.kill();
  expect(await first.exited).toBe("SIGKILL");
  return runId;
}

describe("dbosExecutor: two worker processes sharing one system database", () => {
  it("split 20 conversations × 5 messages ingested elsewhere: each conversation's runs one at a time, in order", async () => {
    const { storage, bot, env } = await scenario("pair");
    // One after the other: the first creates and migrates the system database (DBOS's migrations
    // race when processes start together on a fresh one; the executor retries its launch then).
    const workers: Worker[] = [];
    for (const id of ["worker-a", "worker-b"]) {
      const worker = start({ ...env, KILO_DBOS_EXECUTOR_ID: id });
      await worker.line("ready");
      workers.push(worker);
    }
    // This process only ingests (concurrency 0): the workers dequeue every run.
    const ingester = createKilo({
      storage,
      providers: [mockProvider({ replies: [] })],
      runs: {
        concurrency: 0,
        executor: dbosExecutor({
          systemDatabaseUrl: env.KILO_DBOS_SYSTEM_URL,
          applicationName: env.KILO_DBOS_APP,
          queueName: `${env.KILO_DBOS_APP}_runs`,
          applicationVersion: `${env.KILO_DBOS_APP}-1`,
          executorId: "ingester",
        }),
      },
    });
    const ids = new Map<string, string[]>();
    await Promise.all(
      Array.from({ length: 20 }, async (_, k) => {
        const key = `key-${k}`;
        for (let n = 0; n < 5; n++) {
          const { run_id } = await ingester.runs.ingest(event(key, `${key} message ${n}`), { botId: bot.id });
          ids.set(key, [...(ids.get(key) ?? []), run_id]);
        }
      }),
    );
    const finished = await Promise.all([...ids.values()].flat().map((id) => ingester.runs.wait(id)));
    expect(finished.map((run) => run.status)).toEqual(Array(100).fill("succeeded"));
    const replies = new Set(finished.map((run) => run.output?.reply));
    expect(replies).toEqual(new Set(["ok from worker-a", "ok from worker-b"]));
    for (const [key, runIds] of ids) {
      const stored = await storage.runs.listByConversation(bot.id, key, { limit: 10 });
      expect(stored.map((run) => run.id)).toEqual(runIds);
      for (let n = 1; n < stored.length; n++) {
        expect(stored[n]!.startedAt!.getTime()).toBeGreaterThanOrEqual(stored[n - 1]!.finishedAt!.getTime());
      }
      const messages = await ingester.conversations.messages(bot.id, stored[0]!.conversationId!);
      expect(messages.filter((m) => m.role === "user").map((m) => m.content)).toEqual(
        Array.from({ length: 5 }, (_, n) => `${key} message ${n}`),
      );
    }
    await ingester.close();
    for (const worker of workers) worker.stop();
    for (const worker of workers) expect(await worker.exited).toBe(0);
  }, 300_000);
});

describe("dbosExecutor: a process killed with SIGKILL inside step 2", () => {
  it("restarted with the same executor id, DBOS recovers the run: step 1 is not made again, step 2 is retried with its idempotency key", async () => {
    const { storage, bot, env, effects } = await scenario("restart");
    const runId = await crashInStepTwo(env, "worker-1");
    expect(effects()).toBe(`charge ${runId}:0\nship ${runId}:1\n`);
    expect((await storage.runs.get(runId))?.status).toBe("running");

    const second = start({ ...env, KILO_DBOS_EXECUTOR_ID: "worker-1", KILO_DBOS_WAIT: runId });
    const [run] = await second.line<Array<Run & { output: { pid: number } }>>("runs");
    expect(await second.exited).toBe(0);
    expect(run!.status).toBe("succeeded");
    expect(run!.output).toMatchObject({
      charge: { chargeId: `ch_${runId}:0` },
      ship: { shipped: `ch_${runId}:0` },
    });
    // Step 1's side effect happened once; step 2's twice, both times with the same key.
    expect(effects()).toBe(`charge ${runId}:0\nship ${runId}:1\nship ${runId}:1\n`);
    const steps = await storage.runSteps!.listByRun(bot.id, runId);
    expect(steps.map((step) => [step.index, step.name, step.status])).toEqual([
      [0, "charge", "succeeded"],
      [1, "ship", "succeeded"],
    ]);
    // DBOS checkpointed each step once: the recovered execution replayed step 1 from its checkpoint.
    const checkpoints = await databases.system<{ function_name: string }>(
      "select function_name from dbos.operation_outputs where workflow_uuid = $1 order by function_id",
      [runId],
    );
    expect(checkpoints.map((step) => step.function_name)).toEqual(["kilo.step:charge", "kilo.step:ship"]);
    await storage.close?.();
  }, 300_000);

  it("another executor does not recover it on its own; recover(deadIds) takes it over, and the conversation's next run waits behind it", async () => {
    const { storage, env, effects } = await scenario("takeover");
    const runId = await crashInStepTwo(env, "worker-dead");

    // A live process with another executor id ingests the conversation's next message.
    const live = start({
      ...env,
      KILO_DBOS_EXECUTOR_ID: "worker-live",
      KILO_DBOS_INGEST: "order 2",
      KILO_DBOS_TAKE_OVER: "worker-dead",
      KILO_DBOS_WAIT: runId,
    });
    expect(await live.line<string>("ready")).toBe("worker-live");
    const nextId = await live.line<string>("run_id");
    // DBOS recovers only its own executor's runs: the dead one's run stays put, and holds its
    // conversation, so the next message waits (it would otherwise overtake it).
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect((await storage.runs.get(runId))?.status).toBe("running");
    expect((await storage.runs.get(nextId))?.status).toBe("queued");

    live.send("recover");
    expect(await live.line<string[]>("recovered")).toEqual([runId]);
    const runs = await live.line<Run[]>("runs");
    expect(await live.exited).toBe(0);
    expect(runs.map((run) => [run.id, run.status])).toEqual([
      [runId, "succeeded"],
      [nextId, "succeeded"],
    ]);
    expect(new Date(runs[1]!.startedAt!).getTime()).toBeGreaterThanOrEqual(
      new Date(runs[0]!.finishedAt!).getTime(),
    );
    expect(effects()).toBe(
      `charge ${runId}:0\nship ${runId}:1\nship ${runId}:1\ncharge ${nextId}:0\nship ${nextId}:1\n`,
    );
    await storage.close?.();
  }, 300_000);
});
