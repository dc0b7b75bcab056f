import { createHash, randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { z } from "zod";
import type { Bot } from "../domain/bot.js";
import { IdSchema } from "../domain/common.js";
import { TurnInputSchema } from "../domain/conversation.js";
import {
  type InboundEvent,
  type InboundEventInput,
  InboundEventSchema,
  type NewRun,
  type Run,
  RunSchema,
  TERMINAL_RUN_STATUSES,
} from "../domain/run.js";
import type { RunStep } from "../domain/run-step.js";
import { KiloError, type KiloErrorCode, toKiloError } from "../errors.js";
import type { KiloEvents } from "../events.js";
import type { Clock, IdGenerator } from "../ports/clock.js";
import type { Logger } from "../ports/logger.js";
import type { Orchestrator, TurnInput, TurnObserver, TurnResult } from "../ports/orchestrator.js";
import type {
  RunExecuteOptions,
  RunExecutor,
  RunExecutorContext,
  RunStepWrapper,
} from "../ports/run-executor.js";
import type { RunClaim, RunHandOff, Storage } from "../ports/storage.js";
import { copyRecord } from "../runtime/copy.js";
import { withLogFields } from "../runtime/log-context.js";
import { allPages } from "../runtime/pages.js";
import { parseInput } from "../runtime/validate.js";
import {
  canResumeRuns,
  createWorkflowRegistry,
  executeWorkflow,
  type InlineTurn,
  MESSAGE_WORKFLOW,
  type StoredTurnOptions,
  type WorkflowHandler,
  type WorkflowOutcome,
  type WorkflowToolRequest,
  type WorkflowToolResult,
  type WorkflowTurnResult,
} from "./workflow.js";

/**
 * Most runs executing at once in one process, by default. Every chat turn is
 * a run, and a run mostly waits on its model: this is how many turns one
 * process answers at once.
 */
export const DEFAULT_RUN_CONCURRENCY = 64;

/** How many of the runs it finished last a process keeps, so that waiting for one needs no read. */
const FINISHED_RUNS_KEPT = 1_000;
/**
 * How often `wait` re-reads a run on storage that is not shared and that this process's
 * keyed queue does not hold (it wakes the waits of the runs it holds when they settle).
 */
const WAIT_POLL_MS = 1_000;
/** The longest delay `setTimeout` takes. */
const MAX_TIMER_MS = 2_147_483_647;
/**
 * Runs of one conversation key a slot executes in a row while more of them are
 * queued (a burst), before the key goes to the back of the line: a
 * conversation's next message runs at once, and no key holds a slot for long.
 */
const LANE_BURST = 16;

/** How long a claim pass that failed (storage down) waits before the next. */
const CLAIM_RETRY_MS = 1_000;
const DEFAULT_LEASE_MS = 30_000;
const DEFAULT_HEARTBEAT_INTERVAL_MS = 10_000;
const DEFAULT_POLL_INTERVAL_MS = 50;

/** Settings of the runs executor a host may pass to `createKilo({ runs })`. */
export interface RunSettings {
  /**
   * Most runs executing at once in this process (runs of one conversation key
   * always run one at a time). Every chat turn is a run, so this caps the
   * turns one process answers at once. Default 64. On shared storage (or with an
   * `executor`) `0` is allowed: the process then only ingests, and other
   * processes execute its runs.
   */
  concurrency?: number;
  /**
   * Store each event's `raw` payload with its run. Default `false`: `raw` may
   * hold PII or secrets (a whole Telegram update), so it is dropped at ingest.
   */
  storeRawEvents?: boolean;
  /**
   * Retention, in days, applied by {@link RunService.prune}: finished runs
   * older than this are deleted when it is called (kilo runs no timer).
   * Default: none (runs are kept). Every chat turn is a run, with its turn as
   * output, so long-lived hosts should set it. Keep it longer than any channel
   * redelivers an event: a deleted run's `delivery_id` no longer dedupes.
   */
  retentionDays?: number;
  /**
   * Resume the `queued` and `running` runs a previous process left behind, on
   * first use. Default: `true` when the storage is not shared between
   * processes (`capabilities.crossProcess` false), `false` otherwise (another
   * live process may own them). See {@link RunService.resume} for the policy.
   * Ignored on shared storage, where expired leases are reclaimed instead.
   * With an `executor`: hand the unfinished runs in storage to it again on
   * first use (default `true`); it ignores those it holds already, so this
   * only recovers runs whose hand-off was lost (a process that died between
   * storing a run and submitting it).
   */
  recover?: boolean;
  /**
   * A run executor to use instead of the built-in ones (the in-process keyed
   * queue, the shared queue on Postgres), such as `dbosExecutor` from
   * `kilo/durable/dbos`. kilo still validates, dedupes and stores every run,
   * then submits it to the executor, which decides when and where it
   * executes. `leaseMs` and `heartbeatIntervalMs` do not apply; `concurrency`
   * (`0` allowed: ingest only) is handed to the executor, and `wait` re-reads
   * runs finished elsewhere every `pollIntervalMs`. See {@link RunExecutor}.
   */
  executor?: RunExecutor;
  /**
   * Shared storage only: how long a claimed run stays this process's before
   * another process may reclaim it, unless a heartbeat extends it, in
   * milliseconds. Default 30 000; at least 100. Longer means a dead worker's
   * runs wait longer; shorter means a stalled event loop can lose its runs.
   */
  leaseMs?: number;
  /**
   * Shared storage only: how often the leases of the runs under way are
   * extended, in milliseconds. Default 10 000; at least 10 and at most half of
   * `leaseMs`, so one missed heartbeat does not lose a lease.
   */
  heartbeatIntervalMs?: number;
  /**
   * Shared storage only: how often an idle process looks for runs that other
   * processes ingested, in milliseconds. Default 50; from 1 to 60 000. Runs this
   * process ingests or unblocks (by finishing the run before them) are claimed
   * at once, without waiting for the poll. Also how often `wait` re-reads the
   * runs it waits for that other processes execute (all in one query).
   */
  pollIntervalMs?: number;
}

/** What {@link createRunService} needs. */
export interface RunServiceOptions extends RunSettings {
  storage: Storage;
  orchestrator: Orchestrator;
  clock: Clock;
  ids: IdGenerator;
  logger: Logger;
  /** Publishes `run-queued`, `run-started`, `run-completed` and a failed run's `error`; must not throw. */
  emit: <E extends keyof KiloEvents>(name: E, payload: Parameters<KiloEvents[E]>[0]) => void;
  /** Host workflows by name (`createKilo({ workflows })`); see {@link RunService.register}. */
  workflows?: Record<string, WorkflowHandler> | undefined;
  /** Workflows that register or override by name, read before each use (the workspace's `workflows/`). */
  overlayWorkflows?: (() => Promise<ReadonlyMap<string, WorkflowHandler>>) | undefined;
  /** Sends workflows' `ctx.tool` calls (kilo: its registered API tools); without it `ctx.tool` fails. */
  callTool?: ((request: WorkflowToolRequest) => Promise<WorkflowToolResult>) | undefined;
  /** Reads a bot for {@link RunService.turn} and {@link RunService.ingest} (cache-first in kilo). Default: `storage.bots.get`. */
  loadBot?: ((botId: string) => Promise<Bot | null>) | undefined;
}

/** Options of {@link RunService.ingest}. */
export interface IngestOptions {
  /** The bot the event is for. Default: the event's `bot_id`. One of them is required. */
  botId?: string;
}

/** What {@link RunService.ingest} returns. */
export interface IngestResult {
  run_id: string;
  /** True when the event's `delivery_id` was already ingested: the existing run is returned and nothing starts. */
  duplicate: boolean;
}

/** Options of {@link RunService.turn}. */
export interface TurnRunOptions {
  /**
   * The conversation key whose lane the turn's run joins (after the runs it
   * has queued). Default: the conversation's id. kilo uses it to run an
   * approval's continuation in the lane of the run that asked for it.
   */
  conversationKey?: string | undefined;
}

/** Options of {@link RunService.prune}. */
export interface PruneOptions {
  /** Delete the runs finished before this time instead of before the retention. */
  olderThan?: Date;
}

/** Options of {@link RunService.wait}. */
export interface WaitOptions {
  /** Give up after this many milliseconds and return the run as it stands. Default: wait as long as it takes. */
  timeoutMs?: number;
}

/**
 * Runs: durable, ordered processing of normalized inbound events.
 *
 * Guarantees (of both executors below):
 * - `ingest` validates the event and stores its run as `queued` before it
 *   returns; an invalid event is rejected with `VALIDATION_FAILED` and nothing is stored.
 * - Runs of one (bot, conversation key) execute strictly one at a time, in
 *   ingest order (`seq`); runs of different keys run concurrently, up to
 *   `concurrency` at once. A key whose run ends with more of its runs queued
 *   keeps its slot for the next one (no claim or wait in between), up to
 *   `LANE_BURST` (16) runs in a row; then keys take turns for the slots. A
 *   run that ends in a turn's commit starts that next run in the same commit
 *   (`RunTurnCommit.handOff`; in-process, the queue names the run).
 * - A failed run is stored as `failed` with its error's code and message; it
 *   never stops the queue.
 *
 * Two executors, chosen by the storage:
 * - **In-process keyed queue** (memory, SQLite: `capabilities.crossProcess`
 *   false). The process that ingests a run executes it; after a restart,
 *   {@link RunService.resume} picks up what the previous process left.
 * - **Shared queue** (Postgres: `crossProcess` true, and the adapter has
 *   `runs.claim`, `runs.extendLeases` and `runs.finish`). The runs table is the
 *   queue: `ingest` stores the run and wakes this process's claimer; every
 *   started process claims runs (`concurrency` at most) in short transactions,
 *   only the oldest unfinished run of a conversation key at a time, each under
 *   a lease (`leaseMs`) that a heartbeat extends (`heartbeatIntervalMs`) while
 *   the run executes outside any transaction. The outcome is stored only if
 *   the lease is still this process's. A run that ends in its turn's commit
 *   (the built-in `message` workflow) hands its key on in that commit: the
 *   key's next queued run is claimed for this process in the same statement
 *   (`RunTurnCommit.handOff`), within the same burst limit. Idle processes
 *   poll every `pollIntervalMs`; a process claims at once when it ingests or
 *   finishes a run without a hand-off. Runs of one key therefore never
 *   overlap, across processes too.
 *
 * A host may pass its own executor instead (`runs.executor`, a
 * {@link RunExecutor} such as `dbosExecutor` from `kilo/durable/dbos`): `ingest`
 * then submits each stored run to it, and it executes them through the run
 * service (same workflows, steps, events and outcomes), ordering and recovery
 * being its own.
 *
 * Recovery policy (both executors): a run found `running` whose executor died
 * (a process that restarted, or on shared storage a lease that expired: the
 * worker was killed, lost its database connection, or stalled longer than the
 * lease) is re-executed, by whichever process claims it next, before any
 * later run of its key. Its workflow's steps (`ctx.turn`, `ctx.ask`,
 * `ctx.step`) that succeeded before the crash are recorded (`storage.runSteps`)
 * and not made again: their recorded output is returned. Known limitations: a
 * step interrupted before its result was recorded is made again (a turn then
 * stores the user's message, and a reply it had stored, a second time; host
 * steps get the same idempotency key `${runId}:${index}` to dedupe); a tool call inside a turn is
 * not a step of its own (a re-made turn calls again, but each call that changes something carries
 * the `Idempotency-Key` `${runId}:${index}:${n}` for the turn's n-th call, so an upstream that
 * honours it applies it once); and a worker that stalls past its lease while its
 * steps still complete has its outcome refused (the reclaiming worker's
 * stands), though what its steps stored stays.
 *
 * @example
 * ```ts
 * const { run_id } = await kilo.runs.ingest(
 *   { schema_version: 1, type: "telegram.message", conversation_key: "tg:42", user_key: "u1", text: "hi" },
 *   { botId },
 * );
 * const run = await kilo.runs.wait(run_id, { timeoutMs: 30_000 });
 * if (run.status === "succeeded") reply(run.output?.reply);
 * ```
 */
export interface RunService {
  /** Validates and stores the event's run, queues it, and returns its id at once. */
  ingest(event: InboundEventInput, options?: IngestOptions): Promise<IngestResult>;
  /**
   * `kilo.chat` and `kilo.stream`: one message as a run of the `message`
   * workflow, waited for. The run's conversation key is the conversation's id
   * (a new conversation's id when `input.conversationId` is absent), so turns
   * of one conversation run in order with its other runs; the turn's options
   * (channel, context, skills) are stored with the run. The run executes in
   * this process when it can (always on memory and SQLite; on shared storage
   * when this process claims it, which it does at once unless its slots are
   * full), and then `observer` streams it and the result is the turn's own;
   * executed elsewhere, the result is read back from the run's output.
   * Validation errors and a missing bot are thrown before anything is stored;
   * a failed turn throws its error (also recorded on the failed run).
   */
  turn(input: TurnInput, observer?: TurnObserver, options?: TurnRunOptions): Promise<TurnResult>;
  /** The run; `NOT_FOUND` when there is none. */
  get(runId: string): Promise<Run>;
  /**
   * Retention: deletes the runs, of every bot, that `succeeded` or `failed`
   * and finished before `olderThan`, or before the retention
   * (`runs.retentionDays`) when it is not given, with their steps; returns how
   * many. Without either it deletes nothing. Queued, running and
   * `awaiting_approval` runs are never deleted. `CONFIGURATION_INVALID` when
   * the storage cannot delete runs (`runs.deleteFinishedBefore`).
   *
   * @example
   * ```ts
   * const kilo = createKilo({ storage, providers, runs: { retentionDays: 30 } });
   * setInterval(() => kilo.runs.prune().catch(report), 24 * 60 * 60 * 1000); // kilo runs no timer
   * ```
   */
  prune(options?: PruneOptions): Promise<{ deleted: number }>;
  /**
   * The run's recorded workflow steps in order (`ctx.turn`, `ctx.ask`,
   * `ctx.step`, and the built-in message workflow's turn): name, kind,
   * status, output or error, and times. `NOT_FOUND` when there is no run;
   * empty when the storage records no steps.
   */
  steps(runId: string): Promise<RunStep[]>;
  /**
   * Registers a host workflow: events whose `type` is `name` run it. A host
   * workflow named `message` overrides the built-in one (for `message` and
   * every `*.message` type without a workflow of its own). `CONFLICT` when a
   * host workflow of that name is registered already; `VALIDATION_FAILED`
   * for a name that is not a valid event type. Register before ingesting:
   * `ingest` refuses an event no workflow handles, and a run whose workflow is
   * missing in the process executing it fails with `NOT_FOUND`.
   */
  register(name: string, handler: WorkflowHandler): void;
  /**
   * Resolves with the run once it is `succeeded`, `failed` or
   * `awaiting_approval`, or, with `timeoutMs`, when that time is up (the run as it stands).
   */
  wait(runId: string, options?: WaitOptions): Promise<Run>;
  /**
   * Queues the `queued` and `running` runs a previous process left behind (once;
   * later calls return the first call's result). Called on first use when
   * `recover` is on.
   *
   * Policy: a run found `running` is re-run from the start (see the recovery
   * policy above). On shared storage there is nothing to resume: this starts
   * the claimer, which reclaims runs whose lease expired, and returns
   * `{ resumed: 0 }`. With a host executor this starts it and submits every
   * unfinished run in storage to it again (it ignores those it holds), and
   * returns how many were submitted.
   */
  resume(): Promise<{ resumed: number }>;
  /**
   * Executes a run that an approval decision sent back to the queue
   * (`storage.runs.requeue`, which stored it `queued` at the end of its key's
   * lane): kilo's approval decider calls it. Nothing to do once closed (the
   * run stays queued in storage for the next process).
   */
  requeued(run: Run): void;
  /**
   * Starts executing runs without ingesting one: what a worker process that
   * only executes calls. On shared storage this starts claiming runs from the
   * shared queue; otherwise it resumes a previous process's runs (when
   * `recover` is on). `ingest`, `get` and `wait` start it too. Throws `CLOSED`
   * after `close()`.
   */
  start(): Promise<void>;
  /**
   * Resolves when this process has nothing queued or running (on shared
   * storage: executes nothing and its last claim found nothing to claim; with
   * a host executor: executes nothing, whatever the executor still holds).
   */
  idle(): Promise<void>;
  /**
   * Starts no more runs and waits for those under way; queued runs stay queued
   * in storage (on shared storage, for other processes to claim).
   */
  close(): Promise<void>;
}

/**
 * The conversation a (bot, conversation key) maps to: a deterministic id, so
 * the same key always continues the same conversation, in every process.
 */
export function conversationIdFor(botId: string, conversationKey: string): string {
  const digest = createHash("sha256")
    .update(JSON.stringify([botId, conversationKey]))
    .digest("hex");
  return `conv_${digest.slice(0, 32)}`;
}

const IngestOptionsSchema = z.object({ botId: IdSchema.optional() }).strict();
const TurnRunOptionsSchema = z
  .object({ conversationKey: RunSchema.shape.conversationKey.optional() })
  .strict();
const PruneOptionsSchema = z.object({ olderThan: z.date().optional() }).strict();
const RetentionDaysSchema = z.number().positive().max(36_500).optional();
const DAY_MS = 86_400_000;
const WaitOptionsSchema = z.object({ timeoutMs: z.number().int().min(0).optional() }).strict();

/**
 * A run in the keyed queue, with what its log lines name it by; `stored`: the run as stored, when
 * this process has it already (created here, or handed on: no read needed); `started` when it is
 * stored `running` already (created so, or handed on by the commit of the run before it): nothing
 * left to write before it executes.
 */
type LoggedRun = Pick<Run, "id" | "workflow" | "conversationKey"> & { stored?: Run; started?: boolean };

const isTerminal = (run: Run) => TERMINAL_RUN_STATUSES.includes(run.status);
const isSettled = (run: Run) => isTerminal(run) || run.status === "awaiting_approval";
const laneOf = (run: Pick<Run, "botId" | "conversationKey">) =>
  JSON.stringify([run.botId, run.conversationKey]);

const ISO_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

/** A date field (`...At`) of a stored object back as a date. */
function reviveDates(value: Record<string, unknown>): Record<string, unknown> {
  const revived: Record<string, unknown> = { ...value };
  for (const [key, field] of Object.entries(value)) {
    if (key.endsWith("At") && typeof field === "string" && ISO_DATE.test(field))
      revived[key] = new Date(field);
  }
  return revived;
}

/** A turn result read back from a run's output (JSON): its memories' and proposal's dates as dates. */
function reviveTurn(output: Record<string, unknown>): TurnResult {
  const turn = output as unknown as WorkflowTurnResult;
  return {
    ...turn,
    memories: turn.memories.map(reviveDates),
    proposal: turn.proposal ? reviveDates(turn.proposal) : null,
  } as unknown as TurnResult;
}

/** Reads an integer setting, or throws `CONFIGURATION_INVALID` naming it and its range. */
function integerSetting(name: string, value: number | undefined, fallback: number, min: number, max: number) {
  const chosen = value ?? fallback;
  if (!Number.isInteger(chosen) || chosen < min || chosen > max) {
    throw new KiloError(
      "CONFIGURATION_INVALID",
      `runs.${name} must be an integer from ${min} to ${max}, got ${String(chosen)}`,
    );
  }
  return chosen;
}

/** Runs `fn` after the calls chained before it on `key` have settled; `tails` keeps each key's last. */
function chained<T>(tails: Map<string, Promise<unknown>>, key: string, fn: () => Promise<T>): Promise<T> {
  const current = (tails.get(key) ?? Promise.resolve()).then(fn);
  const tail = current.catch(() => undefined);
  tails.set(key, tail);
  void tail.then(() => {
    if (tails.get(key) === tail) tails.delete(key);
  });
  return current;
}

/**
 * Creates the run service: the shared queue when the storage is shared between
 * processes and can claim runs, the in-process keyed queue otherwise.
 */
export function createRunService(options: RunServiceOptions): RunService {
  const { storage, orchestrator, clock, ids, emit } = options;
  const logger = options.logger.child({ component: "runs" });
  const canClaim = Boolean(storage.runs.claim && storage.runs.extendLeases && storage.runs.finish);
  // A workflow stops at a ctx.tool approval, and resumes once it is decided, where runs can be requeued.
  const canRequeue = canResumeRuns(storage);
  // A host's executor replaces both built-in ones.
  const executor = options.executor;
  const shared = !executor && storage.capabilities.crossProcess && canClaim;
  const concurrency = integerSetting(
    "concurrency",
    options.concurrency,
    DEFAULT_RUN_CONCURRENCY,
    shared || executor ? 0 : 1,
    10_000,
  );
  const leaseMs = integerSetting("leaseMs", options.leaseMs, DEFAULT_LEASE_MS, 100, 86_400_000);
  const heartbeatMs = integerSetting(
    "heartbeatIntervalMs",
    options.heartbeatIntervalMs,
    Math.min(DEFAULT_HEARTBEAT_INTERVAL_MS, Math.floor(leaseMs / 2)),
    10,
    Math.floor(leaseMs / 2),
  );
  const pollMs = integerSetting(
    "pollIntervalMs",
    options.pollIntervalMs,
    DEFAULT_POLL_INTERVAL_MS,
    1,
    60_000,
  );
  const storeRaw = options.storeRawEvents ?? false;
  const retention = RetentionDaysSchema.safeParse(options.retentionDays);
  if (!retention.success) {
    throw new KiloError(
      "CONFIGURATION_INVALID",
      `runs.retentionDays must be a number of days above 0 and at most 36500, got ${String(options.retentionDays)}`,
    );
  }
  const retentionDays = retention.data;
  const recover = executor
    ? (options.recover ?? true)
    : !shared && (options.recover ?? !storage.capabilities.crossProcess);
  const workflows = createWorkflowRegistry(options.workflows);
  if (!storage.runSteps) {
    logger.warn(
      { adapter: storage.name },
      "the storage has no runSteps repository: workflow steps are not recorded, and a run re-executed after a crash makes them all again",
    );
  }
  if (storage.capabilities.crossProcess && !canClaim && !executor) {
    logger.warn(
      { adapter: storage.name },
      "the storage is shared between processes but cannot claim runs (runs.claim, extendLeases, finish): " +
        "runs execute in the process that ingested them, and runs of one conversation ingested by two processes may overlap",
    );
  }

  // The keyed queue: runs per lane (bot + conversation key), lanes ready for a slot, lanes executing.
  // A queued run keeps its log fields, so a run whose read fails is still logged with them.
  const lanes = new Map<string, LoggedRun[]>();
  const ready: string[] = [];
  const readySet = new Set<string>();
  const busy = new Set<string>();
  const waiters = new Map<string, Set<(run?: Run) => void>>();
  const loadBot = options.loadBot ?? ((botId: string) => storage.bots.get(botId));
  /** Runs executing in this process now: waits for them need no polling (this process wakes them). */
  const runningHere = new Set<string>();
  /** Runs whose caller waits in this process (`turn`): what their own turn is handed. */
  const inline = new Map<string, InlineTurn>();
  let idleWaiters: Array<() => void> = [];
  let closed = false;
  let resuming: Promise<{ resumed: number }> | null = null;

  /**
   * The runs this process finished most recently, as stored: a `wait` that
   * starts after its run finished here needs no read. Only terminal runs,
   * which never change again.
   */
  const finishedHere = new Map<string, Run>();

  /**
   * Runs this process stored and has not seen settle: a `wait` for one of them
   * starts waiting without a read. Where another process or a host executor
   * settles runs, only the most recent `FINISHED_RUNS_KEPT` (an entry gone
   * stale, its run settled elsewhere, costs that wait nothing but the watcher's
   * next sweep). Otherwise every one: each is in this process's keyed queue,
   * which wakes its waits when it settles, so they need neither a read nor a
   * poll; and each leaves the set then, so it holds no more than the queue does.
   */
  const unsettledHere = new Set<string>();
  /** Whether runs stored here may settle without this process seeing it. */
  const settledElsewhere = shared || executor !== undefined;

  /** Remembers a run stored here and not yet settled (where runs settle elsewhere, the most recent `FINISHED_RUNS_KEPT`). */
  const markUnsettled = (runId: string) => {
    unsettledHere.add(runId);
    if (settledElsewhere && unsettledHere.size > FINISHED_RUNS_KEPT)
      unsettledHere.delete(unsettledHere.values().next().value!);
  };

  /** Wakes the waits of a run; `run`, when given, is the run as stored (saves each wait a read). */
  const notify = (runId: string, run?: Run) => {
    unsettledHere.delete(runId);
    if (run && isTerminal(run)) {
      finishedHere.delete(runId);
      finishedHere.set(runId, run);
      if (finishedHere.size > FINISHED_RUNS_KEPT) finishedHere.delete(finishedHere.keys().next().value!);
    }
    const set = waiters.get(runId);
    if (!set) return;
    waiters.delete(runId);
    for (const wake of set) wake(run && copyRecord(run));
  };

  /** Runs a host executor is executing in this process, through `context.execute`. */
  let executing = 0;

  const isIdle = () =>
    executor ? executing === 0 : shared ? claimer.isIdle() : busy.size === 0 && ready.length === 0;

  const checkIdle = () => {
    if (!isIdle()) return;
    const wake = idleWaiters;
    idleWaiters = [];
    for (const resolve of wake) resolve();
  };

  const enqueue = (run: Run, fresh = false) => {
    const lane = laneOf(run);
    const queued: LoggedRun = {
      id: run.id,
      workflow: run.workflow,
      conversationKey: run.conversationKey,
      ...(fresh ? { stored: run } : {}),
    };
    const queue = lanes.get(lane);
    if (queue) queue.push(queued);
    else lanes.set(lane, [queued]);
    if (!busy.has(lane) && !readySet.has(lane)) {
      ready.push(lane);
      readySet.add(lane);
    }
    pump();
  };

  const pump = () => {
    while (!closed && busy.size < concurrency && ready.length > 0) {
      const lane = ready.shift()!;
      readySet.delete(lane);
      const queued = lanes.get(lane)?.shift();
      if (queued === undefined) {
        lanes.delete(lane);
        continue;
      }
      busy.add(lane);
      drain(lane, queued, 1);
    }
  };

  /**
   * Executes a lane's runs in its slot: the lane keeps the slot for its next
   * run (no wait between a conversation's messages) up to `LANE_BURST` runs
   * in a row, then goes to the back of the line: keys take turns between bursts.
   */
  const drain = (lane: string, queued: LoggedRun, burst: number) => {
    const handOff = burst < LANE_BURST ? () => laneHandOff(lane) : undefined;
    void execute(queued, handOff).then((handed) => {
      const queue = lanes.get(lane);
      // The commit started the lane's next run (under way now, even when closing): it goes on in this slot.
      if (handed && queue?.[0]?.id === handed.id) {
        const head = queue.shift()!;
        drain(lane, { ...head, stored: { ...handed, startedAt: clock.now() }, started: true }, burst + 1);
        return;
      }
      const next = !closed && burst < LANE_BURST ? queue?.shift() : undefined;
      if (next) drain(lane, next, burst + 1);
      else freeLane(lane);
    });
  };

  /**
   * The hand-off a lane's finishing run commits with: its next queued run starts in the same
   * write, saving the write that would start it. Only that run, and only while not closing.
   */
  const laneHandOff = (lane: string): RunHandOff | undefined => {
    const head = lanes.get(lane)?.[0];
    if (closed || head === undefined) return undefined;
    const now = clock.now();
    return { now, leaseExpiresAt: now, runId: head.id };
  };

  /** Gives a lane's slot back: the lane waits for its next turn if it has queued runs. */
  const freeLane = (lane: string) => {
    busy.delete(lane);
    if ((lanes.get(lane)?.length ?? 0) > 0) {
      ready.push(lane);
      readySet.add(lane);
    } else {
      lanes.delete(lane);
    }
    pump();
    checkIdle();
  };

  /**
   * The keyed queue's slot for a run about to be created, when its lane has
   * nothing queued or executing and a slot is free: the run is then created
   * `running` and executes at once, saving the write that marks it started.
   * Pair with {@link startStored}.
   */
  const takeLane = (lane: string): boolean => {
    if (executor || shared || closed || busy.size >= concurrency) return false;
    if (busy.has(lane) || readySet.has(lane) || lanes.has(lane)) return false;
    busy.add(lane);
    return true;
  };

  /** After {@link takeLane}: executes the run created `running` in the slot, or frees it (`null`: not created). */
  const startStored = (lane: string, run: Run | null) => {
    if (run === null) freeLane(lane);
    else
      drain(
        lane,
        {
          id: run.id,
          workflow: run.workflow,
          conversationKey: run.conversationKey,
          stored: run,
          started: true,
        },
        1,
      );
  };

  const runEvent = (run: Run) => ({
    runId: run.id,
    botId: run.botId,
    userId: run.userId,
    conversationKey: run.conversationKey,
    conversationId: run.conversationId,
    workflow: run.workflow,
    seq: run.seq,
  });

  const logFields = (run: LoggedRun) => ({
    run_id: run.id,
    workflow: run.workflow,
    conversation_key: run.conversationKey,
  });

  /**
   * Whether a run about to execute has never executed (so has no recorded steps to read): `queued`
   * and never sent back to the queue by an approval decision.
   */
  const isFresh = (run: Run) => run.status === "queued" && !run.resumes;

  /**
   * A run just stored `awaiting_approval` because its workflow stopped at a `ctx.tool` approval:
   * when that approval was decided while the run was still executing (the decision found it not yet
   * stopped), the decision could not requeue it, so this does.
   */
  async function requeueIfDecided(run: Run, approvalId: string, log: Logger): Promise<void> {
    const approval = await storage.approvals.get(run.botId, approvalId);
    if (!approval || approval.status === "pending") return;
    const requeued = await storage.runs.requeue!(run.botId, run.id);
    if (requeued) {
      log.info({ approval_id: approvalId, seq: requeued.seq }, "approval decided meanwhile: run requeued");
      requeue(requeued);
    }
  }

  /**
   * Executes a run that an approval decision sent back to the queue
   * (`storage.runs.requeue`): in this process's keyed queue, through the host
   * executor, or at the shared queue's next claim (in any process).
   */
  function requeue(run: Run): void {
    if (closed) return;
    emit("run-queued", runEvent(run));
    logger.info(
      {
        run_id: run.id,
        workflow: run.workflow,
        conversation_key: run.conversationKey,
        seq: run.seq,
        resumes: run.resumes,
      },
      "run requeued",
    );
    markUnsettled(run.id);
    if (executor) {
      void started()
        .then(() => submit(executor, [run], true))
        .catch((error: unknown) =>
          logger.error(
            { run_id: run.id, error: toKiloError(error, "INTERNAL", "Cannot submit the run") },
            "requeued run not submitted: it runs when its executor resumes unfinished runs",
          ),
        );
    } else if (shared) claimer.poke();
    else enqueue(run);
  }

  /**
   * Runs the workflow of a run that is `running`; returns it `succeeded`, `awaiting_approval`
   * (a turn of it asked for a tool call's approval) or `failed`, and
   * `committed` when its turn stored that outcome already (under `owner`'s lease). Never throws.
   */
  async function perform(
    run: Run,
    log: Logger,
    how: {
      owner: string | null;
      fresh: boolean;
      wrapStep?: RunStepWrapper | undefined;
      handOff?: (() => RunHandOff | undefined) | undefined;
    },
  ): Promise<{ outcome: Run; committed?: WorkflowOutcome["committed"]; suspendedOn?: string }> {
    try {
      const handler = workflows.resolve(run.workflow, await options.overlayWorkflows?.());
      if (!handler) {
        throw new KiloError(
          "NOT_FOUND",
          `No workflow '${run.workflow}' is registered in this process (createKilo({ workflows }) or kilo.runs.register)`,
        );
      }
      const inlineTurn = inline.get(run.id);
      const { output, committed, awaitingApproval, suspendedOn } = await withLogFields(logFields(run), () =>
        executeWorkflow({
          run,
          handler,
          orchestrator,
          steps: storage.runSteps,
          clock,
          log,
          conversationIdFor,
          wrapStep: how.wrapStep,
          inline: inlineTurn,
          fresh: how.fresh,
          commitWithTurn: { owner: how.owner, handOff: how.handOff },
          callTool: options.callTool,
          suspendOnApproval: canRequeue,
        }),
      );
      const status = awaitingApproval ? "awaiting_approval" : "succeeded";
      const outcome: Run = { ...run, status, output, finishedAt: clock.now() };
      if (suspendedOn !== undefined) return { outcome, suspendedOn };
      return committed ? { outcome: committed.run ?? outcome, committed } : { outcome };
    } catch (error) {
      const failure = toKiloError(error, "INTERNAL", "The run's workflow failed");
      log.warn({ code: failure.code }, "run failed");
      // A throw in host code (a workflow or its step) also goes to the `error` event, with its run.
      if (failure.code === "HOST_CALLBACK_FAILED") {
        emit("error", {
          error: failure,
          context: { runId: run.id, workflow: run.workflow, conversationKey: run.conversationKey },
        });
      }
      return {
        outcome: {
          ...run,
          status: "failed",
          error: { code: failure.code, message: failure.message },
          finishedAt: clock.now(),
        },
      };
    }
  }

  function announceStart(run: Run, log: Logger, resumed: boolean): void {
    emit("run-started", runEvent(run));
    log.info({ seq: run.seq, resumed }, "run started");
  }

  function completed(run: Run, startedAt: Date, log: Logger): void {
    emit("run-completed", {
      ...runEvent(run),
      status: run.status,
      error: run.error,
      durationMs: (run.finishedAt ?? startedAt).getTime() - startedAt.getTime(),
    });
    log.info({ status: run.status }, "run completed");
  }

  function unrecorded(run: Run, log: Logger, error: unknown): void {
    const wrapped = toKiloError(error, "STORAGE_FAILED", "Cannot record the run");
    log.error({ error: wrapped }, "run not recorded");
    emit("error", { error: wrapped, context: { runId: run.id, conversationKey: run.conversationKey } });
  }

  /**
   * Executes one run of the keyed queue to its end; returns the lane's next run when the run's
   * commit started it (`handOff`). Never throws: a failure is recorded on the run (or logged when
   * storage fails).
   */
  async function execute(queued: LoggedRun, handOff?: () => RunHandOff | undefined): Promise<Run | null> {
    const runId = queued.id;
    let run: Run | null;
    try {
      run = queued.stored ?? (await storage.runs.get(runId));
    } catch (error) {
      logger.error(
        { ...logFields(queued), error: toKiloError(error, "STORAGE_FAILED", "Cannot read run") },
        "run lost",
      );
      notify(runId);
      return null;
    }
    // Gone with its bot, or finished by someone else.
    if (!run || isSettled(run)) {
      notify(runId);
      return null;
    }
    const log = logger.child(logFields(run));
    const startedAt = queued.started ? (run.startedAt ?? clock.now()) : clock.now();
    let current: Run = { ...run, status: "running", startedAt, finishedAt: null, output: null, error: null };
    let settled: Run | undefined;
    let handed: Run | null = null;
    try {
      // A run created `running` (its lane was free) or handed on is stored as started already.
      if (!queued.started) current = (await storage.runs.update(current)) ?? current;
      announceStart(current, log, !queued.started && run.status === "running");
      runningHere.add(runId);
      const { outcome, committed, suspendedOn } = await perform(current, log, {
        owner: null,
        // Started already: it was queued just before (created, or handed on), never executed
        // unless an approval decision sent it back to the queue.
        fresh: queued.started === true ? !run.resumes : isFresh(run),
        handOff,
      });
      current = outcome;
      handed = committed?.next ?? null;
      settled = committed
        ? (committed.run ?? undefined)
        : ((await storage.runs.update(current)) ?? undefined);
      completed(current, startedAt, log);
      if (settled && suspendedOn !== undefined) await requeueIfDecided(settled, suspendedOn, log);
    } catch (error) {
      // Storage failed around the run: it stays unfinished in storage and is resumed on restart.
      unrecorded(run, log, error);
    } finally {
      runningHere.delete(runId);
      notify(runId, settled);
    }
    return handed;
  }

  const claimer = createClaimer();
  const watcher = createWatcher();

  /** Set once a host executor's `close` has returned: `context.execute` then refuses. */
  let executorClosed = false;
  let executorStarting: Promise<void> | null = null;

  /**
   * A host executor's `context.execute`: one run to its end, as the keyed queue's `execute` does,
   * except that a storage failure is thrown (the executor retries) and an abandoned run is not stored.
   */
  async function executeForExecutor(
    runId: string,
    executeOptions: RunExecuteOptions = {},
  ): Promise<Run | null> {
    if (executorClosed) throw new KiloError("CLOSED", "kilo.runs was used after close()");
    executing++;
    let run: Run | null = null;
    let settled: Run | undefined;
    try {
      run = await storage.runs.get(runId);
      // Gone with its bot, or finished already (a re-delivered or recovered hand-off).
      if (!run || isSettled(run)) {
        settled = run ?? undefined;
        return null;
      }
      const log = logger.child(logFields(run));
      const startedAt = clock.now();
      let current: Run = {
        ...run,
        status: "running",
        startedAt,
        finishedAt: null,
        output: null,
        error: null,
      };
      current = (await storage.runs.update(current)) ?? current;
      announceStart(current, log, run.status === "running");
      runningHere.add(runId);
      const { outcome, committed, suspendedOn } = await perform(current, log, {
        owner: null,
        fresh: isFresh(run),
        wrapStep: executeOptions.wrapStep,
      });
      current = outcome;
      if (executeOptions.signal?.aborted && !committed) {
        log.warn({ executor: executor?.name }, "run abandoned by its executor: it stays running");
        return null;
      }
      settled = committed
        ? (committed.run ?? undefined)
        : ((await storage.runs.update(current)) ?? undefined);
      if (settled) completed(current, startedAt, log);
      if (settled && suspendedOn !== undefined) await requeueIfDecided(settled, suspendedOn, log);
      return settled ?? null;
    } catch (error) {
      const wrapped = toKiloError(error, "STORAGE_FAILED", "Cannot record the run");
      if (run) unrecorded(run, logger.child(logFields(run)), wrapped);
      else logger.error({ run_id: runId, error: wrapped }, "run lost");
      throw wrapped;
    } finally {
      executing--;
      runningHere.delete(runId);
      notify(runId, settled);
      checkIdle();
    }
  }

  const executorContext: RunExecutorContext = {
    concurrency,
    logger: logger.child({ executor: executor?.name }),
    execute: executeForExecutor,
  };

  /** Starts the host executor (once; a failed start is tried again by the next call). */
  function startExecutor(runExecutor: RunExecutor): Promise<void> {
    executorStarting ??= runExecutor.start(executorContext).catch((error: unknown) => {
      executorStarting = null;
      throw toKiloError(error, "INTERNAL", `The run executor '${runExecutor.name}' did not start`, {
        adapter: runExecutor.name,
      });
    });
    return executorStarting;
  }

  /**
   * The last ingest (or chat turn's store) under way per lane in this process, which the next one
   * of the lane waits for: calls made in order get their `seq` in that order even when they
   * overlap, and a host executor is handed a lane's runs in seq order.
   */
  const ingestTails = new Map<string, Promise<unknown>>();

  /** Hands runs to the host executor, each lane's in seq order. */
  async function submit(runExecutor: RunExecutor, runs: Run[], resubmitted: boolean): Promise<void> {
    try {
      await runExecutor.submit(runs.map((run) => ({ run, lane: laneOf(run), resubmitted })));
    } catch (error) {
      throw toKiloError(error, "INTERNAL", `The run executor '${runExecutor.name}' did not take the runs`, {
        adapter: runExecutor.name,
      });
    }
  }

  /**
   * Shared storage: every `pollIntervalMs` while someone waits, re-reads every
   * run this process waits for (one `runs.getMany` call per 500) and wakes the
   * waits of those that settled (or vanished, so `wait` reports NOT_FOUND).
   */
  function createWatcher() {
    let timer: ReturnType<typeof setTimeout> | null = null;
    const read = async (runIds: string[]): Promise<Run[]> => {
      if (storage.runs.getMany) return storage.runs.getMany(runIds);
      const runs = await Promise.all(runIds.map((runId) => storage.runs.get(runId)));
      return runs.filter((run): run is Run => run !== null);
    };
    async function sweep(): Promise<void> {
      try {
        const ids = [...waiters.keys()].filter((runId) => !runningHere.has(runId));
        for (let start = 0; start < ids.length; start += 500) {
          const chunk = ids.slice(start, start + 500);
          const found = new Map((await read(chunk)).map((run) => [run.id, run]));
          for (const runId of chunk) {
            const run = found.get(runId);
            if (!run || isSettled(run)) notify(runId, run);
          }
        }
      } catch (error) {
        logger.warn({ error: toKiloError(error, "STORAGE_FAILED", "Cannot read runs") }, "wait poll failed");
      } finally {
        timer = null;
        watch();
      }
    }
    function watch(): void {
      if (timer || waiters.size === 0) return;
      timer = setTimeout(() => void sweep(), pollMs);
    }
    return { watch };
  }

  /**
   * The shared queue's worker: claims runs (at most `concurrency` under way),
   * executes each outside any transaction, keeps their leases alive, and
   * stores each outcome only while it still holds the lease.
   */
  function createClaimer() {
    const owner = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    /**
     * Runs under way here, by id: whether a heartbeat missed their lease once (`missed`: a run
     * that just stored its outcome has no lease either, so one miss proves nothing), and whether
     * it was then reported lost.
     */
    const active = new Map<string, { missed: boolean; lost: boolean; log: Logger }>();
    let running = false;
    /** Slots held for runs being created `running` here (`claimFor`), not yet in `active`. */
    let starting = 0;
    let claiming = false;
    let again = false;
    let lastClaimEmpty = false;
    let pollTimer: ReturnType<typeof setTimeout> | null = null;
    let heartbeatTimer: ReturnType<typeof setInterval> | null = null;

    const full = () => active.size + starting >= concurrency;

    const schedule = (delayMs: number) => {
      if (closed || pollTimer || full()) return;
      pollTimer = setTimeout(() => {
        pollTimer = null;
        poke();
      }, delayMs);
    };

    /** Claims now (or right after the claim under way), if a slot is free. */
    const poke = () => {
      if (!running || closed || concurrency === 0) return;
      if (claiming) {
        again = true;
        return;
      }
      if (full()) return;
      if (pollTimer) clearTimeout(pollTimer);
      pollTimer = null;
      claiming = true;
      void claimPass();
    };

    async function claimPass(): Promise<void> {
      let delay = pollMs;
      try {
        const now = clock.now();
        const claims = await storage.runs.claim!({
          owner,
          now,
          leaseExpiresAt: new Date(now.getTime() + leaseMs),
          limit: concurrency - active.size - starting,
        });
        lastClaimEmpty = claims.length === 0;
        for (const claim of claims) {
          // A run this process still executes, whose lease expired while it stalled: the claim
          // renewed the lease for it, so the execution under way goes on (not a second one).
          const mine = active.get(claim.run.id);
          if (mine) {
            mine.missed = false;
            mine.lost = false;
          } else void executeClaimed(claim);
        }
      } catch (error) {
        lastClaimEmpty = false;
        delay = Math.max(pollMs, CLAIM_RETRY_MS);
        logger.warn({ error: toKiloError(error, "STORAGE_FAILED", "Cannot claim runs") }, "claim failed");
      } finally {
        claiming = false;
        // A nudge that came during the claim claims again at once, unless storage is failing.
        const nudged = again && delay === pollMs;
        again = false;
        if (nudged) {
          poke();
        } else {
          schedule(delay);
        }
        checkIdle();
      }
    }

    async function heartbeat(): Promise<void> {
      if (active.size === 0) return;
      const ids = [...active.keys()];
      try {
        const held = new Set(
          await storage.runs.extendLeases!(owner, ids, new Date(clock.now().getTime() + leaseMs)),
        );
        for (const id of ids) {
          const state = active.get(id);
          if (!state || state.lost) continue;
          if (held.has(id)) {
            state.missed = false;
            continue;
          }
          // Reported on the second miss in a row: after the first, the run may simply have
          // stored its outcome (clearing its lease) and not yet left `active`.
          if (!state.missed) {
            state.missed = true;
            continue;
          }
          state.lost = true;
          state.log.warn({ owner }, "run lease lost: another process may be running it");
        }
      } catch (error) {
        logger.warn(
          { error: toKiloError(error, "STORAGE_FAILED", "Cannot extend run leases") },
          "heartbeat failed",
        );
      }
    }

    /** `burst`: the runs of its key this slot has executed in a row, this one included (hand-offs). */
    async function executeClaimed(claim: RunClaim, burst = 1): Promise<void> {
      // Started now, once the claim has returned (the claim stored the time it was asked for):
      // so a run's stored start is never before the stored finish of the run before it.
      const startedAt = clock.now();
      const run: Run = { ...claim.run, startedAt };
      const log = logger.child(logFields(run));
      active.set(run.id, { missed: false, lost: false, log });
      heartbeatTimer ??= setInterval(() => void heartbeat(), heartbeatMs);
      let stored: Run | null = null;
      let next: Run | null = null;
      try {
        announceStart(run, log, claim.reclaimed);
        runningHere.add(run.id);
        const { outcome, committed, suspendedOn } = await perform(run, log, {
          owner,
          fresh: !claim.reclaimed && !run.resumes,
          handOff: burst < LANE_BURST ? handOffLease : undefined,
        });
        stored = committed ? committed.run : await storage.runs.finish!(outcome, owner);
        next = committed?.next ?? null;
        if (!stored) {
          log.warn({ owner, status: outcome.status }, "run outcome discarded: its lease was lost");
        } else {
          completed(stored, startedAt, log);
          if (suspendedOn !== undefined) await requeueIfDecided(stored, suspendedOn, log);
        }
      } catch (error) {
        // The run stays `running` under a lease nobody extends: another process (or this one)
        // reclaims it once the lease expires.
        unrecorded(run, log, error);
      } finally {
        active.delete(run.id);
        runningHere.delete(run.id);
        if (active.size === 0 && heartbeatTimer) {
          clearInterval(heartbeatTimer);
          heartbeatTimer = null;
        }
        notify(run.id, stored ?? undefined);
        // The commit handed the conversation's next run on to this process: it takes this slot.
        // Otherwise the conversation may still have a next run: claim it (or another) at once.
        if (next) void executeClaimed({ run: next, reclaimed: false }, burst + 1);
        else poke();
        checkIdle();
      }
    }

    /** The lease a finishing run's commit claims its key's next run with, while this process claims. */
    function handOffLease(): RunHandOff | undefined {
      if (!running || closed || concurrency === 0) return undefined;
      const now = clock.now();
      return { now, leaseExpiresAt: new Date(now.getTime() + leaseMs) };
    }

    return {
      owner,
      poke,
      /**
       * A lease for a run this process is about to create, when it has a free slot and is
       * claiming: the run is then created `running` under it if its key is free (`claimFor`),
       * saving the claim. Pair with {@link settleStart}.
       */
      startLease(): { owner: string; now: Date; leaseExpiresAt: Date } | undefined {
        if (!running || closed || full()) return undefined;
        starting++;
        const now = clock.now();
        return { owner, now, leaseExpiresAt: new Date(now.getTime() + leaseMs) };
      },
      /** Frees the slot of {@link startLease}, executing the run when it was created `running`. */
      settleStart(run: Run | null): void {
        starting--;
        if (run?.status === "running") void executeClaimed({ run, reclaimed: false });
        else poke();
      },
      /** Starts claiming (once). */
      start() {
        if (running || closed) return;
        running = true;
        if (concurrency === 0)
          logger.info({ owner }, "shared queue: ingesting only, other processes execute");
        else
          logger.info(
            { owner, concurrency, leaseMs, heartbeatMs, pollMs },
            "claiming runs from the shared queue",
          );
        poke();
      },
      isIdle: () =>
        active.size === 0 && !claiming && (closed || lastClaimEmpty || !running || concurrency === 0),
      /** Claims nothing more; the runs under way finish (close waits through `idle`). */
      stop() {
        if (pollTimer) clearTimeout(pollTimer);
        pollTimer = null;
      },
    };
  }

  const loadUnfinished = (): Promise<Run[]> =>
    allPages((cursor) => storage.runs.listUnfinished({ limit: 500, cursor }));

  function resume(): Promise<{ resumed: number }> {
    if (executor) return resumeWithExecutor(executor);
    if (shared) {
      claimer.start();
      return Promise.resolve({ resumed: 0 });
    }
    resuming ??= (async () => {
      const unfinished = await loadUnfinished();
      const byLane = new Map<string, Run[]>();
      for (const run of unfinished) {
        const lane = laneOf(run);
        const list = byLane.get(lane);
        if (list) list.push(run);
        else byLane.set(lane, [run]);
      }
      for (const runs of byLane.values()) {
        runs.sort((a, b) => a.seq - b.seq);
        for (const run of runs) {
          markUnsettled(run.id);
          enqueue(run);
        }
      }
      if (unfinished.length > 0) logger.info({ resumed: unfinished.length }, "resuming unfinished runs");
      return { resumed: unfinished.length };
    })().catch((error: unknown) => {
      resuming = null;
      throw error;
    });
    return resuming;
  }

  /** Starts the host executor and hands it the unfinished runs in storage again (once). */
  function resumeWithExecutor(runExecutor: RunExecutor): Promise<{ resumed: number }> {
    resuming ??= (async () => {
      await startExecutor(runExecutor);
      const unfinished = await loadUnfinished();
      // Each lane's runs in seq order (the executor keeps a lane in submission order).
      unfinished.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || a.seq - b.seq);
      const byLane = new Map<string, Run[]>();
      for (const run of unfinished) {
        const lane = laneOf(run);
        const list = byLane.get(lane);
        if (list) list.push(run);
        else byLane.set(lane, [run]);
      }
      const ordered = [...byLane.values()].flatMap((runs) => runs.sort((a, b) => a.seq - b.seq));
      if (ordered.length > 0) {
        await submit(runExecutor, ordered, true);
        logger.info(
          { resumed: ordered.length, executor: runExecutor.name },
          "unfinished runs handed to the executor",
        );
      }
      return { resumed: ordered.length };
    })().catch((error: unknown) => {
      resuming = null;
      throw error;
    });
    return resuming;
  }

  /** Starts the executor on first use: the claimer on shared storage, recovery otherwise. */
  const begin = async () => {
    if (closed) return;
    if (executor) {
      if (recover) await resumeWithExecutor(executor);
      else await startExecutor(executor);
      return;
    }
    if (shared) claimer.start();
    else if (recover) await resume();
  };

  const started = async () => {
    if (closed) throw new KiloError("CLOSED", "kilo.runs was used after close()");
    await begin();
  };

  async function read(runId: string): Promise<Run> {
    const run = await storage.runs.get(parseInput(IdSchema, runId, "run id"));
    if (!run) throw new KiloError("NOT_FOUND", `No run '${runId}'`);
    return run;
  }

  /** What {@link storeRun} stores: a new run, before its id, status, outcome and times. */
  type RunToStore = Pick<
    Run,
    "botId" | "userId" | "conversationKey" | "conversationId" | "eventType" | "input" | "deliveryId"
  >;

  /**
   * Stores a queued run and hands it to the executor (the keyed queue, the
   * claimer, or the host's executor). `beforeQueue` sees the stored run first.
   * With a host executor a lane's runs store and submit one at a time, so it
   * gets them in seq order.
   */
  function storeRun(fields: RunToStore, beforeQueue?: (run: Run) => void): Promise<IngestResult> {
    const store = async (): Promise<IngestResult> => {
      let run: Run;
      // On the shared queue a run whose caller waits here is reserved for this process's
      // claims for a lease's time, so the caller's stream and signal reach it.
      const reserve = beforeQueue !== undefined && shared && concurrency > 0;
      // With a free slot here, the run starts at once when its key is free: no claim needed.
      const claimFor = shared ? claimer.startLease() : undefined;
      // Likewise on the keyed queue: its lane free and a slot free, the run is created `running`.
      const lane = laneOf(fields);
      let startHere = takeLane(lane);
      try {
        const createdAt = claimFor?.now ?? clock.now();
        const made: NewRun = {
          ...fields,
          id: ids.next("run"),
          workflow: fields.eventType,
          status: startHere ? "running" : "queued",
          output: null,
          error: null,
          createdAt,
          startedAt: startHere ? createdAt : null,
          finishedAt: null,
        };
        const createOptions = {
          ...(reserve
            ? { reserveFor: { owner: claimer.owner, until: new Date(createdAt.getTime() + leaseMs) } }
            : {}),
          ...(claimFor ? { claimFor } : {}),
        };
        try {
          run = await storage.runs.create(made, createOptions);
        } catch (error) {
          // A run of the key that an earlier process left `running` (SQL allows one per key): queued then.
          if (!startHere || !KiloError.is(error, "CONFLICT")) throw error;
          startHere = false;
          startStored(lane, null);
          run = await storage.runs.create({ ...made, status: "queued", startedAt: null }, createOptions);
        }
      } catch (error) {
        if (claimFor) claimer.settleStart(null);
        if (startHere) startStored(lane, null);
        // Two deliveries of one event raced: the loser returns the winner's run.
        if (fields.deliveryId !== null && KiloError.is(error, "CONFLICT")) {
          const duplicate = await existing(fields.botId, fields.deliveryId);
          if (duplicate) return duplicate;
        }
        throw error;
      }
      emit("run-queued", runEvent(run));
      logger.info(
        { run_id: run.id, workflow: run.workflow, conversation_key: run.conversationKey, seq: run.seq },
        "run queued",
      );
      beforeQueue?.(run);
      if (!isSettled(run)) {
        markUnsettled(run.id);
      }
      if (executor) await submit(executor, [run], false);
      else if (claimFor) claimer.settleStart(run);
      else if (shared) claimer.poke();
      else if (startHere) startStored(lane, run);
      else enqueue(run, true);
      return { run_id: run.id, duplicate: false };
    };
    return store();
  }

  /**
   * Resolves with the run once it is settled (`succeeded`, `failed`,
   * `awaiting_approval`) or at `deadline` (a `Date.now()` time) as it stands.
   * `known`: the run as this process has it (saves the first read).
   */
  async function settle(runId: string, deadline: number, known?: Run): Promise<Run> {
    const kept = finishedHere.get(runId);
    let current = known ?? (kept && copyRecord(kept));
    // A run stored here and not yet settled: wait first, read only when woken without it.
    let unread = current === undefined && unsettledHere.has(runId);
    for (;;) {
      const left = deadline - Date.now();
      if (!unread || left <= 0) {
        const run = current ?? (await read(runId));
        if (isSettled(run) || deadline - Date.now() <= 0) return run;
      }
      unread = false;
      current = await new Promise<Run | undefined>((resolve) => {
        let set = waiters.get(runId);
        if (!set) {
          set = new Set();
          waiters.set(runId, set);
        }
        const wake = (settled?: Run) => {
          clearTimeout(timer);
          waiters.get(runId)?.delete(wake);
          resolve(settled);
        };
        // On shared storage (or with a host executor) another process may finish the run: the
        // watcher re-reads all waited runs together and wakes this one when it settles.
        // Otherwise only this process can: its keyed queue wakes the runs it holds; others
        // (stored before this process started, say) are re-read now and then.
        const delay = settledElsewhere || unsettledHere.has(runId) ? left : Math.min(WAIT_POLL_MS, left);
        // Timers cap at about 24.8 days; a longer (or no) deadline is re-checked then.
        const timer = setTimeout(wake, Math.min(delay, MAX_TIMER_MS));
        set.add(wake);
        if (settledElsewhere) watcher.watch();
      });
    }
  }

  async function existing(botId: string, deliveryId: string): Promise<IngestResult | null> {
    const found = await storage.runs.findByDelivery(botId, deliveryId);
    // A redelivery also retries a hand-off that failed (the executor ignores a run it holds).
    if (found && executor && !isSettled(found)) await submit(executor, [found], true);
    return found ? { run_id: found.id, duplicate: true } : null;
  }

  /** The rest of `ingest`, after its synchronous checks, in its lane's call order. */
  async function ingestInLane(event: InboundEvent, botId: string): Promise<IngestResult> {
    if (!workflows.resolve(event.type, await options.overlayWorkflows?.())) {
      throw new KiloError(
        "VALIDATION_FAILED",
        `Invalid inbound event: no workflow handles type '${event.type}'; register one with createKilo({ workflows }) or kilo.runs.register`,
      );
    }
    await started();
    const deliveryId = event.delivery_id ?? null;
    if (deliveryId !== null) {
      const duplicate = await existing(botId, deliveryId);
      if (duplicate) return duplicate;
    }
    const bot = await loadBot(botId);
    // Another user's bot is reported as missing, as in a turn, so ids cannot be probed.
    if (!bot || bot.userId !== event.user_key) {
      throw new KiloError("NOT_FOUND", `User '${event.user_key}' has no bot '${botId}'`);
    }
    const { raw, ...withoutRaw } = event;
    const stored = storeRaw && raw !== undefined ? { ...withoutRaw, raw } : withoutRaw;
    return storeRun({
      botId,
      userId: event.user_key,
      conversationKey: event.conversation_key,
      conversationId: conversationIdFor(botId, event.conversation_key),
      eventType: event.type,
      input: stored as Record<string, unknown>,
      deliveryId,
    });
  }

  return {
    async ingest(input, ingestOptions = {}) {
      const event = parseInput(InboundEventSchema, input, "inbound event");
      const parsedOptions = parseInput(IngestOptionsSchema, ingestOptions, "ingest options");
      const botId = parsedOptions.botId ?? event.bot_id;
      if (botId === undefined) {
        throw new KiloError(
          "VALIDATION_FAILED",
          "Invalid inbound event: name its bot with `ingest(event, { botId })` or the event's `bot_id`",
        );
      }
      if (event.bot_id !== undefined && event.bot_id !== botId) {
        throw new KiloError(
          "VALIDATION_FAILED",
          `Invalid inbound event: bot_id '${event.bot_id}' differs from the botId option '${botId}'`,
        );
      }
      return chained(ingestTails, laneOf({ botId, conversationKey: event.conversation_key }), () =>
        ingestInLane(event, botId),
      );
    },

    async turn(raw, observer, turnRunOptions = {}) {
      const input = parseInput(TurnInputSchema, raw, "chat input");
      const lane = parseInput(TurnRunOptionsSchema, turnRunOptions, "turn run options").conversationKey;
      await started();
      const bot = await loadBot(input.botId);
      // Another user's bot is reported as missing, so ids cannot be probed.
      if (!bot || bot.userId !== input.userId) {
        throw new KiloError("NOT_FOUND", `User '${input.userId}' has no bot '${input.botId}'`);
      }
      const conversationId = input.conversationId ?? ids.next("conv");
      const turnOptions: StoredTurnOptions = {
        channel: input.channel,
        ...(input.context ? { context: input.context } : {}),
        ...(input.skills ? { skills: input.skills } : {}),
      };
      const caller: InlineTurn = { observer, signal: input.signal };
      let settled: Promise<Run> | undefined;
      const conversationKey = lane ?? conversationId;
      const { run_id: runId } = await chained(ingestTails, laneOf({ botId: bot.id, conversationKey }), () =>
        storeRun(
          {
            botId: bot.id,
            userId: input.userId,
            conversationKey,
            conversationId,
            eventType: MESSAGE_WORKFLOW,
            input: {
              schema_version: 1,
              type: MESSAGE_WORKFLOW,
              conversation_key: conversationKey,
              user_key: input.userId,
              text: input.message,
              turn: turnOptions,
            },
            deliveryId: null,
          },
          // Before the run is queued: it may finish before this call resumes.
          (run) => {
            inline.set(run.id, caller);
            settled = settle(run.id, Number.POSITIVE_INFINITY, run);
          },
        ),
      );
      let run: Run;
      try {
        run = await settled!;
      } finally {
        inline.delete(runId);
      }
      if (caller.error !== undefined) throw caller.error;
      if (run.status === "failed") {
        throw new KiloError(
          (run.error?.code ?? "INTERNAL") as KiloErrorCode,
          run.error?.message ?? "The run failed",
        );
      }
      if (caller.result) return caller.result;
      // Executed elsewhere (another process claimed it): the output is the turn as JSON.
      if (run.output && typeof run.output.reply === "string") return reviveTurn(run.output);
      throw new KiloError(
        "CONFLICT",
        `The '${run.workflow}' workflow of run ${run.id} made no turn in its conversation, so there is no reply to return; ` +
          "use kilo.runs.ingest for workflows that do not answer the message",
      );
    },

    async get(runId) {
      await begin();
      return read(runId);
    },

    async prune(pruneOptions = {}) {
      const { olderThan } = parseInput(PruneOptionsSchema, pruneOptions, "prune options");
      const cutoff =
        olderThan ??
        (retentionDays === undefined ? null : new Date(clock.now().getTime() - retentionDays * DAY_MS));
      if (cutoff === null) return { deleted: 0 };
      if (!storage.runs.deleteFinishedBefore) {
        throw new KiloError(
          "CONFIGURATION_INVALID",
          `Storage adapter '${storage.name}' cannot delete runs (runs.deleteFinishedBefore), so kilo.runs.prune cannot apply a retention`,
        );
      }
      const deleted = await storage.runs.deleteFinishedBefore(cutoff);
      if (deleted > 0) logger.info({ deleted, before: cutoff.toISOString() }, "runs pruned");
      return { deleted };
    },

    async steps(runId) {
      await begin();
      const run = await read(runId);
      return (await storage.runSteps?.listByRun(run.botId, run.id)) ?? [];
    },

    async wait(runId, waitOptions = {}) {
      const { timeoutMs } = parseInput(WaitOptionsSchema, waitOptions, "wait options");
      await begin();
      return settle(runId, timeoutMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + timeoutMs);
    },

    resume,
    requeued: requeue,

    register: (name, handler) => workflows.register(name, handler),

    start: started,

    async idle() {
      await begin();
      if (isIdle()) return;
      await new Promise<void>((resolve) => idleWaiters.push(resolve));
    },

    async close() {
      closed = true;
      if (executor) {
        // The executor stops taking runs and waits for (or gives up) those executing here.
        try {
          await executorStarting?.catch(() => undefined);
          await executor.close();
        } catch (error) {
          throw toKiloError(error, "INTERNAL", `The run executor '${executor.name}' did not close cleanly`, {
            adapter: executor.name,
          });
        } finally {
          executorClosed = true;
        }
        if (isIdle()) return;
        await new Promise<void>((resolve) => idleWaiters.push(resolve));
        return;
      }
      // Nothing new starts once closed, so the runs under way are the last to finish.
      if (shared) claimer.stop();
      ready.length = 0;
      readySet.clear();
      if (isIdle()) return;
      await new Promise<void>((resolve) => idleWaiters.push(resolve));
    },
  };
}
