import type { Run } from "../domain/run.js";
import type { RunStepKind } from "../domain/run-step.js";
import type { KiloErrorCode } from "../errors.js";
import type { Logger } from "./logger.js";

/** A run handed to a {@link RunExecutor}, with the lane that orders it. */
export interface SubmittedRun {
  /** The run as stored: `queued`, or `running` when a previous executor left it unfinished. */
  run: Run;
  /**
   * The run's lane: its bot and conversation key, as one string. Runs of one
   * lane must execute one at a time, in the order they were submitted (which
   * is their `seq` order); runs of different lanes may run concurrently.
   */
  lane: string;
  /**
   * `true` when the run is handed over again: at start (the unfinished runs in
   * storage, when `runs.recover` is on) or when its event's `delivery_id` is
   * ingested again. The executor may hold it already and must then do nothing,
   * except pick it up again if it had lost it. `false` for a run just ingested.
   */
  resubmitted: boolean;
}

/** A recorded workflow step about to be made, as a {@link RunStepWrapper} sees it. */
export interface RunStepCall {
  /** The run the step belongs to. */
  runId: string;
  /** The run's bot. */
  botId: string;
  /** The step's place in the run, from 0: the same every time the run executes (workflows are deterministic). */
  index: number;
  /** `ctx.step`'s name, `turn`, or `ask:<botId>`. */
  name: string;
  /** `turn`, `ask` or `step`. */
  kind: RunStepKind;
}

/**
 * What a step came to, as JSON: what a {@link RunStepWrapper} may persist and
 * return instead of making the step again. A failed step's error is kept as
 * its code and message; kilo throws it again as a `KiloError`.
 */
export type RunStepResult =
  | { ok: true; output: unknown }
  | { ok: false; error: { code: KiloErrorCode; message: string } };

/**
 * Wraps each recorded step of a run an executor executes: `make` replays the
 * step from kilo's own record (`storage.runSteps`) when it already succeeded,
 * or makes it and records it; it never throws for a failing step (the result
 * says so). A wrapper may checkpoint the result in its own engine (DBOS makes
 * every step a `DBOS.runStep`) and, when the run is re-executed, return the
 * checkpointed result without calling `make`. It must return what `make`
 * returned (or returned before), and be called once per step, in order.
 */
export type RunStepWrapper = (
  call: RunStepCall,
  make: () => Promise<RunStepResult>,
) => Promise<RunStepResult>;

/** Options of {@link RunExecutorContext.execute}. */
export interface RunExecuteOptions {
  /** Wraps each recorded step of the run's workflow; see {@link RunStepWrapper}. */
  wrapStep?: RunStepWrapper;
  /**
   * Aborted when the executor gives the run up (it is shutting down and will
   * not finish it): the outcome is then not stored, the run stays `running`
   * for whoever re-executes it, and `execute` resolves with `null`.
   */
  signal?: AbortSignal;
}

/** What the run service gives a {@link RunExecutor} when it starts it. */
export interface RunExecutorContext {
  /**
   * Most runs to execute at once in this process (`createKilo({ runs: { concurrency } })`,
   * default 64). `0`: this process only ingests; other processes execute.
   */
  readonly concurrency: number;
  /** The runs logger (lines carry `component: "runs"` and `executor`). */
  readonly logger: Logger;
  /**
   * Executes a stored run to its end, here and now: marks it `running`
   * (emitting `run-started`), runs its workflow (the host's or the built-in
   * turn, steps recorded in `storage.runSteps` and replayed when the run is
   * re-executed), and stores the outcome, `succeeded` or `failed` (emitting
   * `run-completed`, waking `kilo.runs.wait`). A failing workflow is not an
   * error here: it is stored as a `failed` run.
   *
   * Resolves with the run as stored, or `null` when there was nothing to do
   * (no such run, or it is already `succeeded`, `failed` or
   * `awaiting_approval`) or the run was given up through `options.signal`.
   * Throws `STORAGE_FAILED` when storage failed around the run (it stays
   * unfinished: the executor should execute it again later), and `CLOSED`
   * once the kilo is closed and its executor stopped.
   */
  execute(runId: string, options?: RunExecuteOptions): Promise<Run | null>;
}

/**
 * The RunExecutor port: decides when and where the runs of `kilo.runs`
 * execute, in place of kilo's built-in executors (the in-process keyed queue,
 * and the shared queue on Postgres). Pass one as
 * `createKilo({ runs: { executor } })`.
 *
 * The run service keeps everything else: `ingest` validates the event,
 * dedupes its `delivery_id`, stores the run as `queued` and only then hands it
 * to {@link submit}; `get`, `steps`, `wait` and `list` read kilo's storage.
 * The executor makes each submitted run execute exactly once to its end,
 * somewhere, by calling {@link RunExecutorContext.execute} (in this process
 * or in another one that shares the storage and the executor's backend), and
 * keeps the order of a lane. `wait` is woken at once when a run finishes in
 * this process, and otherwise re-reads storage every `runs.pollIntervalMs`.
 *
 * An executor belongs to one kilo: `start` is called once, on first use of
 * `kilo.runs`, and `close` once, by `kilo.close()`.
 *
 * @example
 * ```ts
 * // A minimal in-process executor (no ordering or durability: a sketch).
 * function naiveExecutor(): RunExecutor {
 *   let context: RunExecutorContext;
 *   const running = new Set<Promise<unknown>>();
 *   return {
 *     name: "naive",
 *     async start(given) { context = given; },
 *     async submit(runs) {
 *       for (const { run } of runs) {
 *         const done = context.execute(run.id).catch(() => undefined);
 *         running.add(done);
 *         void done.finally(() => running.delete(done));
 *       }
 *     },
 *     async close() { await Promise.all(running); },
 *   };
 * }
 * const kilo = createKilo({ storage, providers, runs: { executor: naiveExecutor() } });
 * ```
 */
export interface RunExecutor {
  /** Names the executor in logs and errors (`dbos`, ...). */
  readonly name: string;
  /**
   * Starts the executor with the run service's context, before any
   * {@link submit}: connect, recover runs of its own that a previous process
   * left, begin taking runs. A rejection fails the call that started
   * `kilo.runs` (the next call tries again).
   */
  start(context: RunExecutorContext): Promise<void>;
  /**
   * Takes runs to execute, durably: once this resolves, each run will execute
   * even if this process dies. Idempotent by run id: a run submitted again
   * (see {@link SubmittedRun.resubmitted}) is not executed twice. Runs of one
   * lane come in `seq` order. A rejection fails the `ingest` that submitted the
   * run (the run stays `queued` in storage and is submitted again at the next
   * start, or when its `delivery_id` is ingested again).
   */
  submit(runs: readonly SubmittedRun[]): Promise<void>;
  /**
   * Stops taking runs and waits for the runs executing in this process to
   * finish (or gives them up through their `signal`); runs not started stay
   * with the executor's backend for other processes or the next start.
   * Called by `kilo.close()`, also when the executor was never started.
   */
  close(): Promise<void>;
}
