import type { Run } from "../../../src/domain/run.js";
import { KiloError, toKiloError } from "../../../src/errors.js";
import type { Logger } from "../../../src/ports/logger.js";
import type {
  RunExecutor,
  RunExecutorContext,
  RunStepResult,
  RunStepWrapper,
  SubmittedRun,
} from "../../../src/ports/run-executor.js";

const ADAPTER = "dbos";
const PACKAGE = "@dbos-inc/dbos-sdk";
/** The DBOS workflow every run executes as (registered once per process). */
const WORKFLOW_NAME = "kilo.run";
const DEFAULT_APPLICATION_NAME = "kilo";
const DEFAULT_QUEUE_NAME = "kilo_runs";
const DEFAULT_POLLING_INTERVAL_MS = 20;
/** The longest delay Node timers (and DBOS's shutdown drain) take. */
const MAX_TIMEOUT_MS = 2_147_483_647;
/** DBOS workflow priorities run from 0 to this. */
const MAX_PRIORITY = 2_147_483_647;
/** How long a run whose outcome could not be stored (storage down) waits before it is executed again, at most. */
const MAX_RETRY_DELAY_MS = 60_000;

/** Options of {@link dbosExecutor}. */
export interface DbosExecutorOptions {
  /**
   * The Postgres database where DBOS keeps its workflows, step checkpoints and
   * queue (`postgres://user:pass@host:5432/kilo_dbos`); created and migrated
   * on first start. It may be on the same server as kilo's Postgres storage,
   * preferably as a database of its own. Every process of one deployment
   * uses the same one.
   */
  systemDatabaseUrl: string;
  /**
   * The version DBOS stamps on every run's workflow. An executor dequeues and
   * recovers only workflows of its own version, so keep it the same across
   * deploys (kilo's workflows replay by recorded step, and refuse a changed
   * workflow with `CONFLICT`): a version computed from the code, DBOS's
   * default, would strand the runs queued or under way at every deploy.
   * Change it only for a change that must not meet older runs, and keep an
   * executor of the old version running until its runs are done.
   */
  applicationVersion: string;
  /** DBOS application name: scopes workflows and queues in the system database. Default `"kilo"`. */
  applicationName?: string;
  /** The DBOS queue runs go through. Default `"kilo_runs"`. */
  queueName?: string;
  /**
   * How often each process polls the queue for runs it may start, in
   * milliseconds: the floor of the gap between a conversation's consecutive
   * runs, and of the wait before a new run starts. Default 20; from 1 to
   * 60 000. Each idle process makes one cheap query per interval.
   */
  pollingIntervalMs?: number;
  /**
   * This process's DBOS executor id: at launch, DBOS recovers the runs that
   * the executor of this id left unfinished, and only those. Give every
   * process of a deployment its own id, stable across its restarts (a pod
   * name, `host-1`); see {@link DbosExecutor.recover} for the runs of one
   * that never comes back. Default: DBOS's (`DBOS__VMID`, else `"local"`), right
   * for a single process.
   */
  executorId?: string;
  /**
   * How long `kilo.close()` waits for the runs executing in this process
   * before giving them up (they stay `running`, and are re-executed when this
   * executor id starts again or another takes them over), in milliseconds.
   * Default: as long as they take.
   */
  shutdownTimeoutMs?: number;
  /** Size of DBOS's connection pool to the system database. Default DBOS's (10). */
  systemDatabasePoolSize?: number;
}

/**
 * A run executor on DBOS Transact. See {@link dbosExecutor}.
 */
export interface DbosExecutor extends RunExecutor {
  /** `"dbos"`. */
  readonly name: "dbos";
  /** The DBOS queue runs go through (`queueName`, default `"kilo_runs"`). */
  readonly queueName: string;
  /** This process's DBOS executor id, once started (`kilo.runs.start()`); `undefined` before. */
  readonly executorId: string | undefined;
  /**
   * Takes over the runs that executors which will not come back (a process
   * scaled away, a lost host) left under way: their workflows of this
   * version, `PENDING` on this queue, go back to the queue (each to the head
   * of its conversation) and are executed by whichever process dequeues them,
   * replaying the steps they completed. Resolves with their run ids.
   *
   * Only for executors that are dead: a live executor would go on executing
   * its runs while they execute again elsewhere. Needs the executor started;
   * `VALIDATION_FAILED` for this process's own id or an empty list.
   *
   * @example
   * ```ts
   * // An admin endpoint, or a job run after a node is gone for good.
   * const { recovered } = await executor.recover(["worker-3"]);
   * ```
   */
  recover(executorIds: readonly string[]): Promise<{ recovered: string[] }>;
}

// --- the subset of @dbos-inc/dbos-sdk this adapter uses ---

interface DbosWorkflowHandle {
  readonly workflowID: string;
}

interface DbosWorkflowStatus {
  readonly workflowID: string;
  readonly status: string;
}

interface DbosQueueOptions {
  partitionConcurrency?: number;
  workerConcurrency?: number;
  minPollingIntervalMs?: number;
  onConflict?: "always_update" | "never_update" | "update_if_latest_version";
  applicationName?: string;
}

interface DbosLogger {
  info(entry: unknown): void;
  debug(entry: unknown): void;
  warn(entry: unknown): void;
  error(entry: unknown): void;
}

type RunWorkflow = (runId: string) => Promise<string>;

interface DbosStatic {
  setConfig(config: Record<string, unknown>): void;
  launch(): Promise<void>;
  shutdown(options?: { workflowCompletionTimeoutMS?: number }): Promise<void>;
  isInitialized(): boolean;
  readonly executorID: string;
  registerWorkflow(fn: RunWorkflow, config: { name: string }): RunWorkflow;
  registerQueue(name: string, options: DbosQueueOptions): Promise<unknown>;
  startWorkflow(
    fn: RunWorkflow,
    params: {
      workflowID: string;
      queueName: string;
      enqueueOptions: { queuePartitionKey: string; priority: number };
    },
  ): (runId: string) => Promise<DbosWorkflowHandle>;
  runStep<R>(fn: () => Promise<R>, config: { name: string }): Promise<R>;
  sleepms(durationMS: number): Promise<void>;
  listWorkflows(input: {
    workflowIDs?: string[];
    status?: string;
    executorId?: string[];
    queueName?: string;
    applicationVersion?: string;
    loadInput?: boolean;
    loadOutput?: boolean;
  }): Promise<DbosWorkflowStatus[]>;
  resumeWorkflows(workflowIDs: string[], options: { queueName: string }): Promise<unknown>;
  rewindWorkflow(
    workflowID: string,
    options: { queueName: string; queuePartitionKey: string },
  ): Promise<unknown>;
}

interface DbosClient {
  registerQueue(name: string, options: DbosQueueOptions): Promise<unknown>;
  destroy(): Promise<void>;
}

interface DbosModule {
  DBOS: DbosStatic;
  DBOSClient: {
    create(options: {
      systemDatabaseUrl: string;
      applicationName?: string;
      logger?: DbosLogger;
    }): Promise<DbosClient>;
  };
}

function isDbosModule(value: unknown): value is DbosModule {
  if (value === null || typeof value !== "object") return false;
  const candidate = value as Partial<DbosModule>;
  return typeof candidate.DBOS?.launch === "function" && typeof candidate.DBOSClient?.create === "function";
}

/** @dbos-inc/dbos-sdk, loaded on first start: it is an optional peer dependency. */
async function loadDbos(): Promise<DbosModule> {
  let loaded: Record<string, unknown>;
  try {
    loaded = (await import(PACKAGE)) as Record<string, unknown>;
  } catch (error) {
    throw new KiloError(
      "CONFIGURATION_INVALID",
      `dbosExecutor needs the '${PACKAGE}' package, an optional peer dependency of kilo: npm install ${PACKAGE}`,
      { adapter: ADAPTER, cause: error },
    );
  }
  // ESM gives the named exports; some CJS interop layers only `default`.
  const candidate = isDbosModule(loaded) ? loaded : loaded.default;
  if (!isDbosModule(candidate)) {
    throw new KiloError(
      "CONFIGURATION_INVALID",
      `The installed '${PACKAGE}' package lacks DBOS or DBOSClient; kilo needs version 5`,
      { adapter: ADAPTER },
    );
  }
  return candidate;
}

// --- one DBOS per process ---

/** What the registered workflow runs through: the started executor's. */
interface Binding {
  context: RunExecutorContext;
  dbos: DbosStatic;
  wrapStep: RunStepWrapper;
  /** Aborted when the executor gives up the runs still executing (shutdown timeout). */
  abandon: AbortController;
  /** Set when `close` began: a failed run is not retried here any more. */
  closing: boolean;
}

/**
 * DBOS Transact is a process-wide singleton (static config, registry and
 * launch), so this state is too, kept on `globalThis` so that two copies of
 * kilo (ESM and CJS) agree.
 */
interface ProcessState {
  /** The executor that owns DBOS in this process: created and not yet closed. */
  owner: object | null;
  /** kilo's workflow as DBOS registered it; DBOS refuses registrations after launch, so it is registered once. */
  workflow: RunWorkflow | null;
  binding: Binding | null;
}

const STATE = Symbol.for("kilo.durable.dbos");
const slots = globalThis as Record<symbol, ProcessState | undefined>;
slots[STATE] ??= { owner: null, workflow: null, binding: null };
const state: ProcessState = slots[STATE];

/**
 * The body of every run's DBOS workflow: executes the run through the run
 * service, each recorded step a DBOS step. Code here outside the steps runs
 * again when DBOS recovers the workflow; the run service makes that safe
 * (a finished run is skipped, recorded steps are replayed).
 */
async function runWorkflow(runId: string): Promise<string> {
  const binding = state.binding;
  if (!binding) throw new KiloError("CLOSED", "No kilo DBOS executor is started in this process");
  for (let attempt = 0; ; attempt++) {
    try {
      const run = await binding.context.execute(runId, {
        wrapStep: binding.wrapStep,
        signal: binding.abandon.signal,
      });
      // Given up at shutdown: the workflow must stay PENDING (holding its conversation) for DBOS to
      // recover it when this executor id launches again, so it never settles here.
      if (run === null && binding.abandon.signal.aborted) return await new Promise<never>(() => undefined);
      return run?.status ?? "skipped";
    } catch (error) {
      // Storage failed around the run: it stays unfinished; try again after a (durable) pause.
      // Closing, the workflow fails instead, and the next start sends it back to the queue.
      if (binding.closing || KiloError.is(error, "CLOSED")) throw error;
      await binding.dbos.sleepms(Math.min(MAX_RETRY_DELAY_MS, 1_000 * 2 ** Math.min(attempt, 6)));
    }
  }
}

/** How many times a launch is tried: processes started together on a fresh system database race in DBOS's migrations. */
const LAUNCH_ATTEMPTS = 5;

/** `DBOS.launch()`, tried again (after a short, jittered pause) when it fails. */
async function launchDbos(dbos: DbosStatic, logger: Logger): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await dbos.launch();
      return;
    } catch (error) {
      if (attempt >= LAUNCH_ATTEMPTS) throw error;
      logger.warn(
        { attempt, error: error instanceof Error ? error.message : String(error) },
        "DBOS launch failed; trying again",
      );
      await dbos.shutdown().catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 100 * attempt + Math.random() * 200));
    }
  }
}

/** DBOS's log lines into kilo's logger; DBOS's `info` (launch banners, queue listings) at `debug`. */
function dbosLogger(logger: Logger): DbosLogger {
  const line = (entry: unknown) =>
    entry instanceof Error ? entry.message : typeof entry === "string" ? entry : JSON.stringify(entry);
  return {
    debug: (entry) => logger.debug({ source: ADAPTER }, line(entry)),
    info: (entry) => logger.debug({ source: ADAPTER }, line(entry)),
    warn: (entry) => logger.warn({ source: ADAPTER }, line(entry)),
    error: (entry) => logger.error({ source: ADAPTER, error: line(entry) }, "DBOS error"),
  };
}

function configurationError(message: string): KiloError {
  return new KiloError("CONFIGURATION_INVALID", `dbosExecutor: ${message}`, { adapter: ADAPTER });
}

function checkName(name: string, value: unknown): string {
  if (typeof value !== "string" || !/^[A-Za-z0-9_.:-]{1,100}$/.test(value)) {
    throw configurationError(`${name} must be 1 to 100 letters, digits, '_', '.', ':' or '-'`);
  }
  return value;
}

function checkInteger(name: string, value: number | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw configurationError(`${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

const STATUS_CHUNK = 500;

/**
 * The DBOS workflow id of a run's current attempt: the run id, and once an
 * approval decision sent the run back to the queue (`run.resumes`), the run id
 * and that count: the earlier attempt's workflow has ended (DBOS would return
 * its result for the same id), and the new one replays kilo's recorded steps.
 */
export function workflowIdOf(run: Pick<Run, "id" | "resumes">): string {
  return run.resumes ? `${run.id}:resume:${run.resumes}` : run.id;
}

/**
 * A run executor on DBOS Transact, for hosts that prefer a durable workflow
 * engine to kilo's built-in queues: each run is a DBOS workflow (its id is
 * the run id, so a run submitted twice executes once), each recorded step of
 * its workflow (`ctx.turn`, `ctx.ask`, `ctx.step`, the built-in message turn)
 * a DBOS step, and runs go through one DBOS queue partitioned by conversation
 * (bot and conversation key) with a concurrency of 1 per partition: a
 * conversation's runs execute one at a time in `seq` order, across every
 * process sharing the system database, and different conversations
 * concurrently (`runs.concurrency` per process).
 *
 * DBOS is a process-wide singleton: one executor per process
 * (`CONFIGURATION_INVALID` for a second one until the first one's kilo is
 * closed), and it owns DBOS's lifecycle: it registers kilo's workflow and
 * launches DBOS on the first use of `kilo.runs`, and shuts DBOS down on
 * `kilo.close()`. `@dbos-inc/dbos-sdk` (an optional peer dependency, version
 * 5) is loaded then; without it that first use fails with
 * `CONFIGURATION_INVALID`.
 *
 * Recovery: at launch DBOS re-executes the runs its executor id left under
 * way, and only those (see `executorId`); {@link DbosExecutor.recover} takes
 * over a dead executor's. See docs/durable-dbos.md.
 *
 * @example
 * ```ts
 * import { createKilo } from "kilo";
 * import { dbosExecutor } from "kilo/durable/dbos";
 * import { postgresStorage } from "kilo/storage/postgres";
 *
 * const kilo = createKilo({
 *   storage: postgresStorage({ connectionString: process.env.DATABASE_URL! }),
 *   providers,
 *   runs: {
 *     executor: dbosExecutor({
 *       systemDatabaseUrl: process.env.DBOS_DATABASE_URL!,
 *       applicationVersion: "1",
 *       executorId: process.env.POD_NAME,
 *     }),
 *   },
 * });
 * await kilo.runs.start();
 * ```
 */
export function dbosExecutor(options: DbosExecutorOptions): DbosExecutor {
  if (typeof options !== "object" || options === null) throw configurationError("options are required");
  if (typeof options.systemDatabaseUrl !== "string" || options.systemDatabaseUrl === "") {
    throw configurationError("systemDatabaseUrl is required (a postgres:// URL for DBOS's system database)");
  }
  if (typeof options.applicationVersion !== "string" || options.applicationVersion === "") {
    throw configurationError(
      "applicationVersion is required: a label that stays the same across deploys, such as '1' (see docs/durable-dbos.md)",
    );
  }
  const settings = {
    systemDatabaseUrl: options.systemDatabaseUrl,
    applicationVersion: options.applicationVersion,
    applicationName: checkName("applicationName", options.applicationName ?? DEFAULT_APPLICATION_NAME),
    queueName: checkName("queueName", options.queueName ?? DEFAULT_QUEUE_NAME),
    pollingIntervalMs:
      checkInteger("pollingIntervalMs", options.pollingIntervalMs, 1, 60_000) ?? DEFAULT_POLLING_INTERVAL_MS,
  };
  const configuredExecutorId =
    options.executorId === undefined ? undefined : checkName("executorId", options.executorId);
  const shutdownTimeoutMs = checkInteger("shutdownTimeoutMs", options.shutdownTimeoutMs, 0, MAX_TIMEOUT_MS);
  const poolSize = checkInteger("systemDatabasePoolSize", options.systemDatabasePoolSize, 2, 1_000);

  const self = {};
  if (state.owner !== null) {
    throw configurationError(
      "a DBOS executor already exists in this process. DBOS Transact is a process-wide singleton: " +
        "use one executor per process, and close the kilo that uses it (kilo.close()) before creating another",
    );
  }
  state.owner = self;

  let binding: Binding | null = null;
  let starting: Promise<void> | null = null;
  let closed = false;
  let executorId: string | undefined;

  const failure = (error: unknown, message: string) =>
    toKiloError(error, "STORAGE_FAILED", `DBOS: ${message}`, { adapter: ADAPTER });

  function started(): Binding {
    if (closed)
      throw new KiloError("CLOSED", "The DBOS executor was used after close()", { adapter: ADAPTER });
    if (!binding) {
      throw new KiloError(
        "CONFIGURATION_INVALID",
        "The DBOS executor is not started: call kilo.runs.start()",
        {
          adapter: ADAPTER,
        },
      );
    }
    return binding;
  }

  const queueOptions = (concurrency: number): DbosQueueOptions => ({
    partitionConcurrency: 1,
    minPollingIntervalMs: settings.pollingIntervalMs,
    ...(concurrency > 0 ? { workerConcurrency: concurrency } : {}),
    // An ingest-only process (concurrency 0) does not rewrite the queue that the workers configured.
    onConflict: concurrency > 0 ? "always_update" : "never_update",
  });

  async function launch(context: RunExecutorContext): Promise<void> {
    const { DBOS, DBOSClient } = await loadDbos();
    if (closed)
      throw new KiloError("CLOSED", "The DBOS executor was closed while starting", { adapter: ADAPTER });
    if (DBOS.isInitialized()) {
      throw configurationError(
        "DBOS is already launched in this process; the DBOS executor launches (and shuts down) DBOS itself, so use it in a process that does not launch DBOS otherwise",
      );
    }
    const logger = context.logger;
    state.workflow ??= DBOS.registerWorkflow(runWorkflow, { name: WORKFLOW_NAME });
    const queue = { ...queueOptions(context.concurrency), applicationName: settings.applicationName };
    // Registered before launch when the system database exists, so that launch finds the queue as
    // configured now; on a fresh database after a first launch (which creates the database), and
    // DBOS is then launched again to dispatch it from the start rather than a second later.
    let registered = false;
    try {
      const client = await DBOSClient.create({
        systemDatabaseUrl: settings.systemDatabaseUrl,
        applicationName: settings.applicationName,
        logger: dbosLogger(logger),
      });
      try {
        await client.registerQueue(settings.queueName, queue);
        registered = true;
      } finally {
        await client.destroy();
      }
    } catch (error) {
      logger.debug(
        { error: String(error) },
        "DBOS queue not registered before launch (new system database?)",
      );
    }
    const wrapStep: RunStepWrapper = (call, make) =>
      DBOS.runStep<RunStepResult>(make, { name: `kilo.${call.kind}:${call.name}` });
    binding = { context, dbos: DBOS, wrapStep, abandon: new AbortController(), closing: false };
    state.binding = binding;
    try {
      DBOS.setConfig({
        name: settings.applicationName,
        systemDatabaseUrl: settings.systemDatabaseUrl,
        applicationVersion: settings.applicationVersion,
        logger: dbosLogger(logger),
        ...(configuredExecutorId === undefined ? {} : { executorID: configuredExecutorId }),
        ...(poolSize === undefined ? {} : { systemDatabasePoolSize: poolSize }),
        // An ingest-only process dequeues nothing.
        ...(context.concurrency === 0 ? { listenQueues: [] } : {}),
      });
      await launchDbos(DBOS, logger);
      if (!registered) {
        await DBOS.registerQueue(settings.queueName, queue);
        await DBOS.shutdown();
        await launchDbos(DBOS, logger);
      }
    } catch (error) {
      binding = null;
      state.binding = null;
      await DBOS.shutdown().catch(() => undefined);
      throw failure(error, `cannot launch on ${redact(settings.systemDatabaseUrl)}`);
    }
    executorId = DBOS.executorID;
    logger.info(
      {
        executor_id: executorId,
        application_version: settings.applicationVersion,
        queue: settings.queueName,
        concurrency: context.concurrency,
        polling_interval_ms: settings.pollingIntervalMs,
      },
      "DBOS executor launched",
    );
  }

  /** DBOS's status of each workflow (run) id it knows. */
  async function statuses(dbos: DbosStatic, runIds: string[]): Promise<Map<string, string>> {
    const found = new Map<string, string>();
    for (let start = 0; start < runIds.length; start += STATUS_CHUNK) {
      const chunk = runIds.slice(start, start + STATUS_CHUNK);
      for (const workflow of await dbos.listWorkflows({
        workflowIDs: chunk,
        loadInput: false,
        loadOutput: false,
      })) {
        found.set(workflow.workflowID, workflow.status);
      }
    }
    return found;
  }

  const executor: DbosExecutor = {
    name: ADAPTER,
    queueName: settings.queueName,
    get executorId() {
      return executorId;
    },

    start(context) {
      if (closed) {
        return Promise.reject(
          new KiloError("CLOSED", "The DBOS executor was used after close()", { adapter: ADAPTER }),
        );
      }
      if (binding && binding.context !== context) {
        return Promise.reject(
          configurationError("this executor already serves another kilo: create one per kilo"),
        );
      }
      starting ??= launch(context).catch((error: unknown) => {
        starting = null;
        throw error;
      });
      return starting;
    },

    async submit(runs: readonly SubmittedRun[]) {
      const { dbos } = started();
      const workflow = state.workflow!;
      try {
        const again = runs
          .filter((submitted) => submitted.resubmitted)
          .map((submitted) => workflowIdOf(submitted.run));
        const known = again.length > 0 ? await statuses(dbos, again) : new Map<string, string>();
        for (const { run, lane } of runs) {
          const workflowID = workflowIdOf(run);
          const status = known.get(workflowID);
          if (status === undefined) {
            // The workflow id is the run's attempt: DBOS returns the existing workflow for one enqueued before.
            // Priority is the run's seq: the head of a conversation is its oldest run, however late it came.
            await dbos.startWorkflow(workflow, {
              workflowID,
              queueName: settings.queueName,
              enqueueOptions: { queuePartitionKey: lane, priority: Math.min(run.seq, MAX_PRIORITY) },
            })(run.id);
          } else if (status === "ERROR") {
            // The workflow gave up (storage failed while it closed): run it again from kilo's recorded steps.
            await dbos.rewindWorkflow(workflowID, { queueName: settings.queueName, queuePartitionKey: lane });
          }
        }
      } catch (error) {
        throw failure(
          error,
          `cannot enqueue ${runs.length === 1 ? `run ${runs[0]!.run.id}` : `${runs.length} runs`}`,
        );
      }
    },

    async recover(executorIds) {
      const { dbos } = started();
      if (!Array.isArray(executorIds) || executorIds.length === 0) {
        throw new KiloError("VALIDATION_FAILED", "recover needs the ids of the dead executors", {
          adapter: ADAPTER,
        });
      }
      const ids = executorIds.map((id) => checkName("executorIds[]", id));
      if (executorId !== undefined && ids.includes(executorId)) {
        throw new KiloError(
          "VALIDATION_FAILED",
          `'${executorId}' is this process's own executor id: its runs are under way here (DBOS recovers them at launch)`,
          { adapter: ADAPTER },
        );
      }
      try {
        const pending = await dbos.listWorkflows({
          status: "PENDING",
          executorId: ids,
          queueName: settings.queueName,
          applicationVersion: settings.applicationVersion,
          loadInput: false,
          loadOutput: false,
        });
        const recovered = pending.map((workflow) => workflow.workflowID);
        // Back to the queue, keeping each run's partition (conversation) and priority (seq).
        if (recovered.length > 0) await dbos.resumeWorkflows(recovered, { queueName: settings.queueName });
        started().context.logger.info(
          { executor_ids: ids, recovered: recovered.length },
          "runs of dead executors sent back to the queue",
        );
        return { recovered };
      } catch (error) {
        throw failure(error, `cannot recover the runs of ${ids.join(", ")}`);
      }
    },

    async close() {
      if (closed) return;
      closed = true;
      try {
        await starting?.catch(() => undefined);
        const current = binding;
        if (!current) return;
        current.closing = true;
        // Runs still executing when the timeout is up are given up (not stored) before DBOS disconnects.
        const timer =
          shutdownTimeoutMs === undefined
            ? undefined
            : setTimeout(() => current.abandon.abort(), shutdownTimeoutMs);
        try {
          await current.dbos.shutdown({
            workflowCompletionTimeoutMS:
              shutdownTimeoutMs === undefined
                ? MAX_TIMEOUT_MS
                : Math.min(MAX_TIMEOUT_MS, shutdownTimeoutMs + 1_000),
          });
        } finally {
          clearTimeout(timer);
          current.abandon.abort();
        }
      } catch (error) {
        throw failure(error, "shutdown failed");
      } finally {
        binding = null;
        if (state.owner === self) {
          state.owner = null;
          state.binding = null;
        }
      }
    },
  };
  return executor;
}

/** The URL without its password, for messages. */
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "the system database";
  }
}
