import { createHash } from "node:crypto";
import { z } from "zod";
import { IdSchema } from "../domain/common.js";
import {
  type InboundEventInput,
  InboundEventSchema,
  type Run,
  TERMINAL_RUN_STATUSES,
} from "../domain/run.js";
import { KiloError, toKiloError } from "../errors.js";
import type { KiloEvents } from "../events.js";
import type { Clock, IdGenerator } from "../ports/clock.js";
import type { Logger } from "../ports/logger.js";
import type { Orchestrator } from "../ports/orchestrator.js";
import type { Storage } from "../ports/storage.js";
import { withLogFields } from "../runtime/log-context.js";
import { parseInput } from "../runtime/validate.js";

/** Most runs executing at once in one process, by default. */
export const DEFAULT_RUN_CONCURRENCY = 8;

/** How often `wait` re-reads a run, in case another process finishes it. */
const WAIT_POLL_MS = 1_000;

/** Settings of the runs executor a host may pass to `createKilo({ runs })`. */
export interface RunSettings {
  /** Most runs executing at once in this process (runs of one conversation key always run one at a time). Default 8. */
  concurrency?: number;
  /**
   * Store each event's `raw` payload with its run. Default `false`: `raw` may
   * hold PII or secrets (a whole Telegram update), so it is dropped at ingest.
   */
  storeRawEvents?: boolean;
  /**
   * Resume the `queued` and `running` runs a previous process left behind, on
   * first use. Default: `true` when the storage is not shared between
   * processes (`capabilities.crossProcess` false), `false` otherwise (another
   * live process may own them). See {@link RunService.resume} for the policy.
   */
  recover?: boolean;
}

/** What {@link createRunService} needs. */
export interface RunServiceOptions extends RunSettings {
  storage: Storage;
  orchestrator: Orchestrator;
  clock: Clock;
  ids: IdGenerator;
  logger: Logger;
  emit: <E extends keyof KiloEvents>(name: E, payload: Parameters<KiloEvents[E]>[0]) => void;
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

/** Options of {@link RunService.wait}. */
export interface WaitOptions {
  /** Give up after this many milliseconds and return the run as it stands. Default: wait as long as it takes. */
  timeoutMs?: number;
}

/**
 * Runs: durable, ordered processing of normalized inbound events.
 *
 * Guarantees of the built-in in-process executor:
 * - `ingest` validates the event and stores its run as `queued` before it
 *   returns; an invalid event is rejected with `VALIDATION_FAILED` and nothing is stored.
 * - Runs of one (bot, conversation key) execute strictly one at a time, in
 *   ingest order (`seq`); runs of different keys run concurrently, up to
 *   `concurrency` at once, keys taking turns.
 * - A failed run is stored as `failed` with its error's code and message; it
 *   never stops the queue.
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
  /** The run; `NOT_FOUND` when there is none. */
  get(runId: string): Promise<Run>;
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
   * Policy: a run found `running` is re-run from the start, since a turn
   * stores the user's message first and a half-done turn leaves nothing else
   * behind. Known limitation until steps are recorded: a tool call with side
   * effects that completed before the crash is made again.
   */
  resume(): Promise<{ resumed: number }>;
  /** Resolves when this process has nothing queued or running. */
  idle(): Promise<void>;
  /** Starts no more runs and waits for those under way; queued runs stay queued in storage. */
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
const WaitOptionsSchema = z.object({ timeoutMs: z.number().int().min(0).optional() }).strict();

const isTerminal = (run: Run) => TERMINAL_RUN_STATUSES.includes(run.status);
const isSettled = (run: Run) => isTerminal(run) || run.status === "awaiting_approval";
const laneOf = (run: Pick<Run, "botId" | "conversationKey">) =>
  JSON.stringify([run.botId, run.conversationKey]);

/** Creates the run service with its in-process keyed queue. */
export function createRunService(options: RunServiceOptions): RunService {
  const { storage, orchestrator, clock, ids, emit } = options;
  const logger = options.logger.child({ component: "runs" });
  const concurrency = options.concurrency ?? DEFAULT_RUN_CONCURRENCY;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 10_000) {
    throw new KiloError(
      "CONFIGURATION_INVALID",
      `runs.concurrency must be an integer from 1 to 10000, got ${String(concurrency)}`,
    );
  }
  const storeRaw = options.storeRawEvents ?? false;
  const recover = options.recover ?? !storage.capabilities.crossProcess;

  // The keyed queue: run ids per lane (bot + conversation key), lanes ready for a slot, lanes executing.
  const lanes = new Map<string, string[]>();
  const ready: string[] = [];
  const readySet = new Set<string>();
  const busy = new Set<string>();
  const waiters = new Map<string, Set<() => void>>();
  let idleWaiters: Array<() => void> = [];
  let closed = false;
  let resuming: Promise<{ resumed: number }> | null = null;

  const notify = (runId: string) => {
    const set = waiters.get(runId);
    if (!set) return;
    waiters.delete(runId);
    for (const wake of set) wake();
  };

  const checkIdle = () => {
    if (busy.size > 0 || ready.length > 0) return;
    const wake = idleWaiters;
    idleWaiters = [];
    for (const resolve of wake) resolve();
  };

  const enqueue = (run: Run) => {
    const lane = laneOf(run);
    const queue = lanes.get(lane);
    if (queue) queue.push(run.id);
    else lanes.set(lane, [run.id]);
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
      const runId = lanes.get(lane)?.shift();
      if (runId === undefined) {
        lanes.delete(lane);
        continue;
      }
      busy.add(lane);
      void execute(runId).finally(() => {
        busy.delete(lane);
        // The lane goes to the back of the line: keys take turns for the slots.
        if ((lanes.get(lane)?.length ?? 0) > 0) {
          ready.push(lane);
          readySet.add(lane);
        } else {
          lanes.delete(lane);
        }
        pump();
        checkIdle();
      });
    }
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

  /** Executes one run to its end. Never throws: a failure is recorded on the run (or logged when storage fails). */
  async function execute(runId: string): Promise<void> {
    let run: Run | null;
    try {
      run = await storage.runs.get(runId);
    } catch (error) {
      logger.error(
        { run_id: runId, error: toKiloError(error, "STORAGE_FAILED", "Cannot read run") },
        "run lost",
      );
      notify(runId);
      return;
    }
    // Gone with its bot, or finished by someone else.
    if (!run || isSettled(run)) {
      notify(runId);
      return;
    }
    const fields = { run_id: run.id, workflow: run.workflow, conversation_key: run.conversationKey };
    const log = logger.child(fields);
    const startedAt = clock.now();
    let current: Run = { ...run, status: "running", startedAt, finishedAt: null, output: null, error: null };
    try {
      current = (await storage.runs.update(current)) ?? current;
      emit("run-started", runEvent(current));
      log.info({ seq: current.seq, resumed: run.status === "running" }, "run started");
      const text = typeof current.input.text === "string" ? current.input.text : "";
      try {
        const result = await withLogFields(fields, () =>
          orchestrator.handle({
            botId: current.botId,
            userId: current.userId,
            conversationId: current.conversationId ?? undefined,
            message: text,
            channel: current.eventType,
          }),
        );
        current = {
          ...current,
          status: "succeeded",
          output: JSON.parse(JSON.stringify(result)) as Record<string, unknown>,
          finishedAt: clock.now(),
        };
      } catch (error) {
        const failure = toKiloError(error, "INTERNAL", "The run's workflow failed");
        current = {
          ...current,
          status: "failed",
          error: { code: failure.code, message: failure.message },
          finishedAt: clock.now(),
        };
        log.warn({ code: failure.code }, "run failed");
      }
      current = (await storage.runs.update(current)) ?? current;
      emit("run-completed", {
        ...runEvent(current),
        status: current.status,
        error: current.error,
        durationMs: (current.finishedAt ?? startedAt).getTime() - startedAt.getTime(),
      });
      log.info({ status: current.status }, "run completed");
    } catch (error) {
      // Storage failed around the run: it stays unfinished in storage and is resumed on restart.
      const wrapped = toKiloError(error, "STORAGE_FAILED", "Cannot record the run");
      log.error({ error: wrapped }, "run not recorded");
      emit("error", { error: wrapped, context: { runId: run.id, conversationKey: run.conversationKey } });
    } finally {
      notify(runId);
    }
  }

  async function loadUnfinished(): Promise<Run[]> {
    const found: Run[] = [];
    let cursor: string | null = null;
    do {
      const page: Awaited<ReturnType<Storage["runs"]["listUnfinished"]>> = await storage.runs.listUnfinished({
        limit: 500,
        cursor,
      });
      found.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    return found;
  }

  function resume(): Promise<{ resumed: number }> {
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
        for (const run of runs) enqueue(run);
      }
      if (unfinished.length > 0) logger.info({ resumed: unfinished.length }, "resuming unfinished runs");
      return { resumed: unfinished.length };
    })().catch((error: unknown) => {
      resuming = null;
      throw error;
    });
    return resuming;
  }

  const started = async () => {
    if (closed) throw new KiloError("CLOSED", "kilo.runs was used after close()");
    if (recover) await resume();
  };

  async function read(runId: string): Promise<Run> {
    const run = await storage.runs.get(parseInput(IdSchema, runId, "run id"));
    if (!run) throw new KiloError("NOT_FOUND", `No run '${runId}'`);
    return run;
  }

  async function existing(botId: string, deliveryId: string): Promise<IngestResult | null> {
    const found = await storage.runs.findByDelivery(botId, deliveryId);
    return found ? { run_id: found.id, duplicate: true } : null;
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
      await started();
      const deliveryId = event.delivery_id ?? null;
      if (deliveryId !== null) {
        const duplicate = await existing(botId, deliveryId);
        if (duplicate) return duplicate;
      }
      const bot = await storage.bots.get(botId);
      // Another user's bot is reported as missing, as in a turn, so ids cannot be probed.
      if (!bot || bot.userId !== event.user_key) {
        throw new KiloError("NOT_FOUND", `User '${event.user_key}' has no bot '${botId}'`);
      }
      const { raw, ...withoutRaw } = event;
      const stored = storeRaw && raw !== undefined ? { ...withoutRaw, raw } : withoutRaw;
      let run: Run;
      try {
        run = await storage.runs.create({
          id: ids.next("run"),
          botId,
          userId: event.user_key,
          conversationKey: event.conversation_key,
          conversationId: conversationIdFor(botId, event.conversation_key),
          eventType: event.type,
          workflow: event.type,
          status: "queued",
          input: stored as Record<string, unknown>,
          output: null,
          error: null,
          deliveryId,
          createdAt: clock.now(),
          startedAt: null,
          finishedAt: null,
        });
      } catch (error) {
        // Two deliveries of one event raced: the loser returns the winner's run.
        if (deliveryId !== null && KiloError.is(error, "CONFLICT")) {
          const duplicate = await existing(botId, deliveryId);
          if (duplicate) return duplicate;
        }
        throw error;
      }
      emit("run-queued", runEvent(run));
      logger.info(
        { run_id: run.id, workflow: run.workflow, conversation_key: run.conversationKey, seq: run.seq },
        "run queued",
      );
      enqueue(run);
      return { run_id: run.id, duplicate: false };
    },

    async get(runId) {
      if (recover && !closed) await resume();
      return read(runId);
    },

    async wait(runId, waitOptions = {}) {
      const { timeoutMs } = parseInput(WaitOptionsSchema, waitOptions, "wait options");
      if (recover && !closed) await resume();
      const deadline = timeoutMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + timeoutMs;
      for (;;) {
        const run = await read(runId);
        const left = deadline - Date.now();
        if (isSettled(run) || left <= 0) return run;
        await new Promise<void>((resolve) => {
          let set = waiters.get(runId);
          if (!set) {
            set = new Set();
            waiters.set(runId, set);
          }
          const wake = () => {
            clearTimeout(timer);
            waiters.get(runId)?.delete(wake);
            resolve();
          };
          const timer = setTimeout(wake, Math.min(WAIT_POLL_MS, left));
          set.add(wake);
        });
      }
    },

    resume,

    async idle() {
      if (recover && !closed) await resume();
      if (busy.size === 0 && ready.length === 0) return;
      await new Promise<void>((resolve) => idleWaiters.push(resolve));
    },

    async close() {
      closed = true;
      if (busy.size === 0) return;
      // Nothing new starts once closed, so the lanes under way are the last to finish.
      ready.length = 0;
      readySet.clear();
      await new Promise<void>((resolve) => idleWaiters.push(resolve));
    },
  };
}
