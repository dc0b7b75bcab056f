/**
 * The parent side of the random-kill durability tests (test/runs/random-kill.test.ts on SQLite,
 * test/integration/runs-random-kill.test.ts on Postgres): starts the worker
 * (test/__fixtures__/random-kill-worker.ts), kills it with SIGKILL at moments drawn from a
 * seeded PRNG, starts it again, many times, lets a last worker finish, then checks what storage
 * and the worker's external ledger hold.
 *
 * Reproducing a failure: the seed is printed first (`random-kill <storage>: seed=...`); run again
 * with `KILO_RANDOM_KILL_SEED=<seed>` (and `KILO_RANDOM_KILLS=<n>` for more or fewer kills). The
 * seed fixes the kill schedule (which progress event, how long after it) and the workers' pauses;
 * where exactly a kill lands still depends on the machine's timing.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "tsup";
import { expect } from "vitest";
import { conversationIdFor, type Run } from "../../src/index.js";
import type { Storage } from "../../src/ports/storage.js";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** One invocation of a step's side effect, as the ledger recorded it. */
export interface InvocationRow {
  id: number;
  idempotency_key: string;
  run_id: string;
  step: string;
  conversation_key: string;
  message: number;
  pid: number;
  life: number;
}

/** A side effect performed (once per idempotency key). */
export interface EffectRow {
  idempotency_key: string;
  run_id: string;
  step: string;
  conversation_key: string;
  message: number;
  pid: number;
  life: number;
  invocation_id: number;
}

/** An `ingest` call that returned. */
export interface IngestRow {
  id: number;
  conversation_key: string;
  message: number;
  run_id: string;
  duplicate: boolean;
  pid: number;
  life: number;
}

export interface LedgerRows {
  invocations: InvocationRow[];
  effects: EffectRow[];
  ingests: IngestRow[];
}

/** mulberry32: a small seeded PRNG, so a kill schedule can be replayed. */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** The seed from `KILO_RANDOM_KILL_SEED`, or a fresh one. */
export const seedFromEnv = (): number =>
  process.env.KILO_RANDOM_KILL_SEED
    ? Number(process.env.KILO_RANDOM_KILL_SEED)
    : randomBytes(4).readUInt32BE();

/** The number of kills from `KILO_RANDOM_KILLS`, or `fallback`. */
export const killsFromEnv = (fallback: number): number =>
  process.env.KILO_RANDOM_KILLS ? Number(process.env.KILO_RANDOM_KILLS) : fallback;

/**
 * Bundles the worker with its sources (dependencies external) into a directory of its own under
 * node_modules/.cache, so each start costs a plain `node` start (about 0.4 s) instead of tsx
 * compiling kilo's sources again (about 1.4 s): the test kills and restarts it twenty times.
 */
export async function bundleWorker(): Promise<{ file: string; dispose(): void }> {
  const manifest = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as {
    dependencies?: Record<string, string>;
    peerDependencies?: Record<string, string>;
    devDependencies?: Record<string, string>;
  };
  const outDir = join(
    repoRoot,
    "node_modules",
    ".cache",
    `kilo-random-kill-${randomBytes(4).toString("hex")}`,
  );
  await build({
    config: false,
    entry: { "random-kill-worker": join(repoRoot, "test/__fixtures__/random-kill-worker.ts") },
    format: ["esm"],
    target: "node20",
    outDir,
    external: [
      ...Object.keys(manifest.dependencies ?? {}),
      ...Object.keys(manifest.peerDependencies ?? {}),
      ...Object.keys(manifest.devDependencies ?? {}),
    ],
    treeshake: true,
    splitting: false,
    sourcemap: false,
    dts: false,
    clean: true,
    silent: true,
  });
  return {
    file: join(outDir, "random-kill-worker.js"),
    dispose: () => rmSync(outDir, { recursive: true, force: true }),
  };
}

interface WorkerProcess {
  pid: number;
  ready: Promise<void>;
  /** Resolves true once the worker has reported `count` progress events, false if it finished or died first. */
  progress(count: number): Promise<boolean>;
  /** Progress events reported so far. */
  seen(): number;
  /** The `done` line's statuses once the worker finished its work; `null` if it died first. */
  done: Promise<Record<string, number> | null>;
  exited: Promise<NodeJS.Signals | number | null>;
  kill(): void;
}

/** Warnings and errors the workers logged (their `{"log":...}` lines). */
export type WorkerLog = Record<string, unknown> & { level: string; msg?: string };

function startWorker(file: string, env: Record<string, string>, logs: WorkerLog[]): WorkerProcess {
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [file], {
    env: { ...process.env, ...env },
  });
  child.stderr.pipe(process.stderr);
  let progress = 0;
  let finished: Record<string, number> | null = null;
  let over = false;
  const listeners = new Set<() => void>();
  const changed = () => {
    for (const listener of [...listeners]) listener();
  };
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });
  let buffered = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split("\n");
    buffered = lines.pop() ?? "";
    for (const line of lines) {
      const message = JSON.parse(line) as {
        ready?: boolean;
        progress?: string;
        log?: WorkerLog;
        done?: boolean;
        statuses?: Record<string, number>;
      };
      if (message.ready) markReady();
      if (message.progress) progress += 1;
      if (message.log) logs.push(message.log);
      if (message.done) finished = message.statuses ?? {};
    }
    changed();
  });
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
    child.once("exit", (code, signal) => {
      over = true;
      resolve(signal ?? code);
      changed();
    }),
  );
  const died = exited.then((how) => {
    throw new Error(`random-kill worker ${child.pid} exited (${String(how)}) before it was ready`);
  });
  died.catch(() => undefined);
  return {
    pid: child.pid!,
    ready: Promise.race([ready, died]),
    progress: (count) =>
      new Promise<boolean>((resolve) => {
        const check = () => {
          if (progress >= count) resolve(true);
          else if (finished || over) resolve(false);
          else return;
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      }),
    seen: () => progress,
    done: exited.then(() => finished),
    exited,
    kill: () => child.kill("SIGKILL"),
  };
}

/** What the parent saw of one worker's life. */
export interface Life {
  life: number;
  pid: number;
  /** `ready`: killed `delayMs` after the worker was ready; `progress`: `delayMs` after its `target`-th progress event. */
  mode: "ready" | "progress";
  target: number;
  delayMs: number;
  /** Progress events it reported. */
  progressed: number;
  /**
   * How it ended: killed, or finished all the work before the kill came. `stalled`: killed
   * without reaching its target (no progress for `stallMs`); the kills stop there, and the last
   * worker has to finish the work.
   */
  outcome: "killed" | "finished" | "stalled";
  /** From spawn to exit. */
  ms: number;
  /** After the kill: runs left `running`, steps left `running`, effects invoked but not performed. */
  runningRuns: number;
  runningSteps: number;
  halfDoneEffects: number;
}

export interface RandomKillOptions {
  /** `sqlite` or `postgres`, for the printed lines. */
  label: string;
  seed: number;
  kills: number;
  keys: number;
  messages: number;
  /** The bundled worker. */
  worker: string;
  /** The worker's storage and ledger settings (`KILO_RK_STORAGE`, `KILO_RK_DB`, ...). */
  env: Record<string, string>;
  /** The parent's view of kilo's storage (the same database). */
  storage: Storage;
  botId: string;
  readLedger(): Promise<LedgerRows>;
  /** The most progress events a life may see before its kill (default 24). */
  maxProgress?: number;
  /** How long the last worker may take to finish, in ms (default 60 000). */
  finishTimeoutMs?: number;
  /** How long a life may wait for its target progress event before it is killed anyway (default 10 000). */
  stallMs?: number;
}

export interface RandomKillResult {
  lives: Life[];
  /**
   * The output of every step found `succeeded` after a kill, by `${runId}:${index}`, as first
   * seen: a step recorded as finished must keep that output (it was not made again).
   */
  recorded: Map<string, string>;
  killedPids: Set<number>;
  finalPid: number;
  finalMs: number;
  totalMs: number;
  logs: WorkerLog[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Kills and restarts the worker `kills` times at random moments, then lets one finish. */
export async function killRepeatedly(options: RandomKillOptions): Promise<RandomKillResult> {
  const random = prng(options.seed);
  const maxProgress = options.maxProgress ?? 24;
  const logs: WorkerLog[] = [];
  const lives: Life[] = [];
  const killedPids = new Set<number>();
  const recorded = new Map<string, string>();
  const began = performance.now();
  const env = (life: number) => ({
    ...options.env,
    KILO_RK_BOT: options.botId,
    KILO_RK_KEYS: String(options.keys),
    KILO_RK_MESSAGES: String(options.messages),
    KILO_RK_SEED: String(options.seed),
    KILO_RK_LIFE: String(life),
  });

  for (let life = 1; life <= options.kills; life++) {
    const mode = random() < 0.2 ? "ready" : "progress";
    const target = mode === "ready" ? 0 : 1 + Math.floor(random() * maxProgress);
    const delayMs = Math.floor(random() * (mode === "ready" ? 150 : 15));
    const spawned = performance.now();
    const worker = startWorker(options.worker, env(life), logs);
    await worker.ready;
    let stall: ReturnType<typeof setTimeout> | undefined;
    const reached = await Promise.race([
      worker.progress(target),
      new Promise<"stalled">((resolve) => {
        stall = setTimeout(() => resolve("stalled"), options.stallMs ?? 10_000);
      }),
    ]);
    clearTimeout(stall);
    if (reached === true) await sleep(delayMs);
    worker.kill();
    const how = await worker.exited;
    const finished = (await worker.done) !== null;
    // A worker that dies by itself (an uncaught error at start, in recovery) would crash-loop.
    if (!finished && how !== "SIGKILL")
      throw new Error(`worker of life ${life} exited by itself (${String(how)})`);
    const outcome = finished ? "finished" : reached === "stalled" ? "stalled" : "killed";
    if (outcome !== "finished") killedPids.add(worker.pid);
    lives.push({
      life,
      pid: worker.pid,
      mode,
      target,
      delayMs,
      progressed: worker.seen(),
      outcome,
      ms: Math.round(performance.now() - spawned),
      ...(await leftovers(options, recorded)),
    });
    if (outcome !== "killed") break;
  }

  const finalStart = performance.now();
  const last = startWorker(options.worker, env(options.kills + 1), logs);
  await last.ready;
  const finishMs = options.finishTimeoutMs ?? 60_000;
  const timeout = setTimeout(() => last.kill(), finishMs);
  const statuses = await last.done;
  clearTimeout(timeout);
  expect(await last.exited, `the last worker finishes the work within ${finishMs} ms`).toBe(0);
  expect(statuses).toEqual({ succeeded: options.keys * options.messages });
  const finalMs = Math.round(performance.now() - finalStart);
  return {
    lives,
    recorded,
    killedPids,
    finalPid: last.pid,
    finalMs,
    totalMs: Math.round(performance.now() - began),
    logs,
  };
}

/**
 * What a killed worker left behind: unfinished runs and steps, effects invoked but not
 * performed. Notes the output of every step recorded as succeeded so far in `recorded`.
 */
async function leftovers(options: RandomKillOptions, recorded: Map<string, string>) {
  const unfinished = (await options.storage.runs.listUnfinished({ limit: 500 })).items;
  const running = unfinished.filter((run) => run.status === "running");
  let runningSteps = 0;
  for (let k = 0; k < options.keys; k++) {
    const runs = await options.storage.runs.listByConversation(options.botId, `conversation-${k}`, {
      limit: options.messages + 10,
    });
    for (const run of runs) {
      for (const step of await options.storage.runSteps!.listByRun(options.botId, run.id)) {
        if (step.status === "running" && run.status === "running") runningSteps += 1;
        const key = `${run.id}:${step.index}`;
        if (step.status === "succeeded" && !recorded.has(key)) recorded.set(key, JSON.stringify(step.output));
      }
    }
  }
  const ledger = await options.readLedger();
  const performed = new Set(ledger.effects.map((effect) => effect.idempotency_key));
  const halfDone = new Set(
    ledger.invocations.map((row) => row.idempotency_key).filter((key) => !performed.has(key)),
  );
  return { runningRuns: running.length, runningSteps, halfDoneEffects: halfDone.size };
}

/** Prints the seed and what the lives did, one line each, and a summary. */
export function report(options: RandomKillOptions, result: RandomKillResult, rows: LedgerRows): void {
  const repeated = new Map<string, number>();
  for (const row of rows.invocations)
    repeated.set(row.idempotency_key, (repeated.get(row.idempotency_key) ?? 0) + 1);
  const summary = {
    seed: options.seed,
    keys: options.keys,
    messages: options.messages,
    lives: result.lives.length + 1,
    kills: result.killedPids.size,
    killedWithRunsRunning: result.lives.filter((life) => life.runningRuns > 0).length,
    killedWithStepsRunning: result.lives.filter((life) => life.runningSteps > 0).length,
    killedWithHalfDoneEffects: result.lives.filter((life) => life.halfDoneEffects > 0).length,
    invocations: rows.invocations.length,
    repeatedEffects: [...repeated.values()].filter((count) => count > 1).length,
    meanLifeMs: Math.round(
      result.lives.reduce((sum, life) => sum + life.ms, 0) / Math.max(1, result.lives.length),
    ),
    finalMs: result.finalMs,
    totalMs: result.totalMs,
    warnings: countBy(result.logs.map((line) => `${line.level}: ${line.msg ?? ""}`)),
  };
  console.log(`random-kill ${options.label}: ${JSON.stringify(summary)}`);
  for (const life of result.lives) console.log(`random-kill ${options.label}:   ${JSON.stringify(life)}`);
}

function countBy(values: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}

const range = (length: number) => Array.from({ length }, (_, n) => n);

/** The ordered list without runs of equal neighbours (a message stored again by a re-made turn). */
const collapse = (values: string[]) =>
  values.filter((value, index) => index === 0 || values[index - 1] !== value);

interface StepOutput {
  key: string;
  invocation: number;
  pid: number;
}

/**
 * Checks the end state against the issue's promises:
 * - every ingested run is there once (one run per delivery id, none extra), `succeeded`, and
 *   nothing is left queued or running;
 * - per conversation, runs executed in ingest order: seq follows the messages, each run started
 *   after the one before finished, and the ledger's invocations (in the order the ledger
 *   assigned) and the conversation's messages follow the messages' order;
 * - every run recorded its three steps once each, succeeded, and its output is theirs;
 * - each side effect was performed once per idempotency key (`${runId}:${index}`), one key per
 *   step of a run; an effect was invoked again only after the process invoking it was killed
 *   (never twice by one process), and always with the same key; the step's recorded result is
 *   the last invocation's (nothing was re-invoked after the step was recorded as finished); a
 *   recorded turn is the last turn made for its run (never made again once recorded); and every
 *   step seen recorded as succeeded after a kill still has the output it had then.
 */
export async function verify(options: RandomKillOptions, result: RandomKillResult, rows: LedgerRows) {
  const { storage, botId, keys, messages } = options;
  const conversationKeys = range(keys).map((k) => `conversation-${k}`);
  const runs: Run[] = [];
  const byDelivery = new Map<string, Run>();

  expect((await storage.runs.listUnfinished({ limit: 10 })).items, "runs left queued or running").toEqual([]);

  for (const key of conversationKeys) {
    const stored = await storage.runs.listByConversation(botId, key, { limit: messages + 10 });
    // Nothing lost, nothing ingested twice, seq in ingest order.
    expect(stored.map((run) => run.deliveryId)).toEqual(range(messages).map((n) => `${key}/${n}`));
    expect(stored.map((run) => run.seq)).toEqual(range(messages).map((n) => n + 1));
    expect(stored.map((run) => run.input.text)).toEqual(range(messages).map((n) => `${key} #${n}`));
    expect(stored.map((run) => run.status)).toEqual(range(messages).map(() => "succeeded"));
    for (let n = 1; n < stored.length; n++) {
      expect(
        stored[n]!.startedAt!.getTime(),
        `${key}: run ${n} started before run ${n - 1} finished`,
      ).toBeGreaterThanOrEqual(stored[n - 1]!.finishedAt!.getTime());
    }
    for (const run of stored) byDelivery.set(run.deliveryId!, run);
    runs.push(...stored);
  }

  // Every ingest that returned names the one run of its delivery id.
  for (const row of rows.ingests) {
    expect(row.run_id, `ingest of ${row.conversation_key}/${row.message}`).toBe(
      byDelivery.get(`${row.conversation_key}/${row.message}`)?.id,
    );
  }
  const created = countBy(rows.ingests.filter((row) => !row.duplicate).map((row) => row.run_id));
  expect(Object.values(created).filter((count) => count > 1)).toEqual([]);

  const invocationsByKey = new Map<string, InvocationRow[]>();
  for (const row of [...rows.invocations].sort((a, b) => a.id - b.id)) {
    const list = invocationsByKey.get(row.idempotency_key) ?? [];
    list.push(row);
    invocationsByKey.set(row.idempotency_key, list);
  }
  const effects = new Map(rows.effects.map((row) => [row.idempotency_key, row]));
  const expectedKeys: string[] = [];

  for (const run of runs) {
    const steps = await storage.runSteps!.listByRun(botId, run.id);
    // A step recorded as finished before a kill was replayed, not made again: same output.
    for (const step of steps) {
      const before = result.recorded.get(`${run.id}:${step.index}`);
      if (before !== undefined) {
        expect(JSON.stringify(step.output), `${run.id}:${step.index} made again after it was recorded`).toBe(
          before,
        );
      }
    }
    expect(steps.map((step) => [step.index, step.name, step.kind, step.status])).toEqual([
      [0, "reserve", "step", "succeeded"],
      [1, "turn", "turn", "succeeded"],
      [2, "deliver", "step", "succeeded"],
    ]);
    const turn = steps[1]!.output as { reply: string; userMessageId: string; replyMessageId: string };
    expect(run.output).toEqual({ reserve: steps[0]!.output, reply: turn.reply, deliver: steps[2]!.output });
    expect(turn.reply).toBe(`re: ${run.input.text as string}`);

    for (const [index, name] of [
      [0, "reserve"],
      [2, "deliver"],
    ] as const) {
      const key = `${run.id}:${index}`;
      expectedKeys.push(key);
      const recorded = steps[index]!.output as StepOutput;
      expect(recorded.key).toBe(key);
      const invocations = invocationsByKey.get(key) ?? [];
      expect(invocations.length, `invocations of ${key}`).toBeGreaterThan(0);
      expect(invocations.every((row) => row.run_id === run.id && row.step === name)).toBe(true);
      // The result recorded is the last invocation's: no invocation came after the step's record.
      expect(recorded.invocation, `${key}: invoked again after it was recorded`).toBe(invocations.at(-1)!.id);
      // Made again only because the process making it was killed, never twice by one process.
      expect(new Set(invocations.map((row) => row.pid)).size, `${key}: invoked twice by one process`).toBe(
        invocations.length,
      );
      for (const row of invocations.slice(0, -1)) {
        expect(result.killedPids.has(row.pid), `${key}: repeated after pid ${row.pid}, not killed`).toBe(
          true,
        );
      }
      // Performed once, for this run's step.
      expect(effects.get(key), `effect ${key}`).toMatchObject({ run_id: run.id, step: name });
    }
  }
  // One key per side-effecting step of a run: no strays, no effect without its run.
  expect([...invocationsByKey.keys()].sort()).toEqual([...expectedKeys].sort());
  expect([...effects.keys()].sort()).toEqual([...expectedKeys].sort());

  for (const key of conversationKeys) {
    // The ledger's order (ids it assigned as invocations arrived): message by message, and
    // within a message every `reserve` before any `deliver`.
    const positions = rows.invocations
      .filter((row) => row.conversation_key === key)
      .sort((a, b) => a.id - b.id)
      .map((row) => row.message * 2 + (row.step === "deliver" ? 1 : 0));
    for (let i = 1; i < positions.length; i++) {
      expect(positions[i]!, `${key}: side effects out of order`).toBeGreaterThanOrEqual(positions[i - 1]!);
    }

    // The conversation: messages in order; a turn cut short by a kill may have stored its
    // message (and reply) once more, next to the first copy.
    const conversation = await storage.messages.listRecent(botId, conversationIdFor(botId, key), {
      limit: 1_000,
    });
    const texts = range(messages).map((n) => `${key} #${n}`);
    const users = conversation.filter((message) => message.role === "user");
    const replies = conversation.filter((message) => message.role === "assistant");
    expect(collapse(users.map((message) => message.content))).toEqual(texts);
    expect(collapse(replies.map((message) => message.content))).toEqual(texts.map((text) => `re: ${text}`));
    // A turn recorded as finished was not made again: its messages are the last of their text.
    for (const run of runs.filter((candidate) => candidate.conversationKey === key)) {
      const steps = await storage.runSteps!.listByRun(botId, run.id);
      const turn = steps[1]!.output as { userMessageId: string; replyMessageId: string };
      const text = run.input.text as string;
      expect(turn.userMessageId).toBe(users.filter((message) => message.content === text).at(-1)?.id);
      expect(turn.replyMessageId).toBe(
        replies.filter((message) => message.content === `re: ${text}`).at(-1)?.id,
      );
    }
  }

  // No worker logged an error (a run not recorded, storage failing).
  expect(result.logs.filter((line) => line.level === "error")).toEqual([]);
}
