import { createHash } from "node:crypto";
import type { InboundEvent, Run } from "../domain/run.js";
import type { RunStep, RunStepKind } from "../domain/run-step.js";
import type { ToolCallStatus } from "../domain/tool.js";
import { KiloError, toKiloError } from "../errors.js";
import type { Clock } from "../ports/clock.js";
import type { LogFields, Logger } from "../ports/logger.js";
import type { Orchestrator, TurnObserver, TurnResult, TurnRunLink } from "../ports/orchestrator.js";
import type { RunStepResult, RunStepWrapper } from "../ports/run-executor.js";
import type { RunHandOff, RunStepRepository, Storage } from "../ports/storage.js";

/** The name of the built-in workflow that runs one bot turn; `*.message` event types fall back to it. */
export const MESSAGE_WORKFLOW = "message";

/** Workflow names: what event types may be (letters, digits, `_`, `-`, `.`, `:`), at most 50 characters. */
/** What a workflow name may be: an event type (1-50 letters, digits, `_`, `-`, `.`, `:`). */
export const WORKFLOW_NAME = /^[A-Za-z0-9_.:-]{1,50}$/;

/**
 * A bot turn as a workflow step returns it: the `TurnResult` as JSON, which
 * is what is recorded and what a replay returns, so the dates inside
 * `memories` and `proposal` are ISO strings.
 */
export type WorkflowTurnResult = Omit<TurnResult, "memories" | "proposal"> & {
  memories: Array<Record<string, unknown>>;
  proposal: Record<string, unknown> | null;
};

/** What `ctx.step`'s function receives. */
export interface WorkflowStepInfo {
  /**
   * `${runId}:${index}`: the same every time this step of this run is made
   * (after a crash too), so pass it to external APIs (an `Idempotency-Key`
   * header, a unique column) to make a retried side effect happen once.
   */
  idempotencyKey: string;
  /** The step's place in the run, from 0. */
  index: number;
  runId: string;
}

/** What `ctx.tool` returns: what became of the call (its step's recorded output). */
export interface WorkflowToolResult {
  /**
   * `succeeded`: the upstream answered (any HTTP status: see `httpStatus`);
   * `failed` or `blocked`: no usable answer, or refused before sending (SSRF
   * guard); `denied`: a risky endpoint the user refused, not sent;
   * `awaiting_approval`: a risky endpoint, not sent, waiting for the user's
   * approval (`approvalId`). A workflow sees `awaiting_approval` only on a
   * storage that cannot requeue runs (`RunRepository.requeue`); otherwise the
   * run stops at the call and `ctx.tool` returns once the approval is decided.
   */
  status: ToolCallStatus;
  /** The upstream's HTTP status, when it answered. */
  httpStatus: number | null;
  /**
   * The response body (parsed when JSON; cut at the caller's size limit), why
   * the call failed, or, when `denied`, the reason given (or `null`).
   */
  body: unknown;
  /** The approval a risky call waited for (or waits for), else `null`. */
  approvalId: string | null;
}

/** What a run's `ctx.tool` asks the host's tool caller for (kilo's registered API tools). */
export interface WorkflowToolRequest {
  run: Run;
  /** The registered tool's name and one of its endpoints. */
  tool: string;
  endpoint: string;
  params: Record<string, unknown>;
  /** The step's idempotency key: sent as the call's `Idempotency-Key` (any method but GET). */
  idempotencyKey: string;
  /**
   * Set when the run resumes after this step waited for an approval: the call
   * as that approval decided it (approved: sent now, under the approval's id
   * as `Idempotency-Key`; denied: not sent), or, while it is still pending,
   * `awaiting_approval` again.
   */
  approvalId?: string | undefined;
}

/** Options of {@link WorkflowContext.turn}. */
export interface WorkflowTurnOptions {
  /** The message the bot answers. Default: the event's `text`. */
  text?: string;
  /**
   * Another bot of the same user to run the turn: it continues its own
   * conversation for this conversation key. Default: the run's bot.
   */
  botId?: string;
}

/**
 * What a workflow handler runs its steps through. Every `turn`, `ask` and
 * `step` is a recorded step, numbered in call order: when a run is re-executed
 * after a crash, a step that already succeeded is not made again and its
 * recorded output is returned. A workflow must therefore make the same steps,
 * with the same names, in the same order, every time it executes for a run
 * (deterministic); a different step at a recorded index fails the run with
 * `CONFLICT` ("workflow ... is not deterministic"). Do side effects only
 * inside steps, and decide on step outputs, not on the clock or randomness.
 */
export interface WorkflowContext {
  readonly runId: string;
  /** The workflow's name (the event type that selected it). */
  readonly workflow: string;
  readonly botId: string;
  readonly userId: string;
  readonly conversationKey: string;
  /** A bot turn in the run's conversation (what the built-in `message` workflow does), as a step named `turn`. */
  turn(options?: WorkflowTurnOptions): Promise<WorkflowTurnResult>;
  /**
   * Asks another bot of the same user, as a sub-agent, in a conversation of
   * its own keyed by this run (asking it again in this run continues it); a
   * step named `ask:<botId>`.
   */
  ask(botId: string, text: string): Promise<WorkflowTurnResult>;
  /**
   * Calls an endpoint of the bot's registered API tools (`kilo.tools`) as a
   * step named `tool:<tool>.<endpoint>`: with its encrypted credential,
   * through the SSRF-safe executor, audited, and carrying the step's
   * idempotency key as `Idempotency-Key` (any method but GET). A risky
   * endpoint is not sent: it asks for the user's approval and the workflow
   * stops there: the run ends `awaiting_approval` (its output
   * `{ approvalId }`), releasing its conversation key. The decision
   * (`kilo.approvals.approve` / `deny`, or the user's "yes" / "no") sends the
   * run back to the end of its key's lane; it executes again, replays the
   * steps before, and `ctx.tool` returns the decided call: `succeeded` (or
   * `failed`) with the response, or `denied`. (On a storage without
   * `runs.requeue` it returns `awaiting_approval` at once instead, and the
   * decision continues the conversation with a turn.) An unknown tool,
   * endpoint or bad parameters fail the step with `VALIDATION_FAILED`.
   */
  tool(tool: string, endpoint: string, params?: Record<string, unknown>): Promise<WorkflowToolResult>;
  /**
   * Runs host code with side effects as a named step and returns what `fn`
   * returns, as JSON (`undefined` becomes `null`). `fn` gets the step's
   * idempotency key. A throw fails the step (and, unless caught, the run).
   */
  step<T>(name: string, fn: (step: WorkflowStepInfo) => T | Promise<T>): Promise<T>;
  /** Logs an info line carrying `run_id`, `workflow` and `conversation_key` (and `fields`). */
  log(message: string, fields?: LogFields): void;
  /** The run's logger, for other levels; its lines carry the same fields. */
  readonly logger: Logger;
}

/**
 * A named workflow: handles the runs of the event types that name it. What it
 * returns becomes the run's `output` (a plain object as is; any other value
 * as `{ value }`).
 *
 * @example
 * ```ts
 * const kilo = createKilo({
 *   storage, providers,
 *   workflows: {
 *     "order.placed": async (event, ctx) => {
 *       const charge = await ctx.step("charge", ({ idempotencyKey }) =>
 *         payments.charge({ amount: 5, idempotencyKey }),
 *       );
 *       const turn = await ctx.turn({ text: `Tell the user their order ${charge.id} is paid` });
 *       return { chargeId: charge.id, reply: turn.reply };
 *     },
 *   },
 * });
 * ```
 */
export type WorkflowHandler = (event: InboundEvent, ctx: WorkflowContext) => unknown;

/** Host workflows by name, and how an event type finds its workflow. */
export interface WorkflowRegistry {
  /** Registers a host workflow; `CONFLICT` when a host workflow of that name exists, `VALIDATION_FAILED` for a bad name. */
  register(name: string, handler: WorkflowHandler): void;
  /**
   * The workflow for an event type: a host workflow of that name; for
   * `message` and `*.message`, else the host's `message` workflow, else the
   * built-in one; otherwise `null`. `overlay` (the workspace's `workflows/`)
   * comes first: it registers or overrides workflows by name.
   */
  resolve(eventType: string, overlay?: ReadonlyMap<string, WorkflowHandler>): WorkflowHandler | null;
}

const builtInMessage: WorkflowHandler = (_event, ctx) => ctx.turn();

/** True for the built-in `message` workflow: one turn, whose result is the run's output. */
export const isBuiltInMessageWorkflow = (handler: WorkflowHandler): boolean => handler === builtInMessage;

/**
 * The turn options `kilo.chat` keeps with its run (`input.turn`): what the
 * run's own turn uses, in whichever process executes it.
 */
export interface StoredTurnOptions {
  channel?: string | undefined;
  context?: string[] | undefined;
  skills?: { include?: boolean | undefined; max?: number | undefined } | undefined;
}

/**
 * What the caller waiting on a run in this process (`kilo.chat`, `kilo.stream`)
 * hands to the run's own turn, and gets back from it: the parts of a turn
 * that cannot be stored.
 */
export interface InlineTurn {
  /** Streams the run's own turn. */
  observer?: TurnObserver | undefined;
  signal?: AbortSignal | undefined;
  /** The run's own turn's result as made (its dates are dates), once made. */
  result?: TurnResult | undefined;
  /** What the run's own turn threw, when it failed. */
  error?: unknown;
}

/** Creates the registry with the host's workflows (`createKilo({ workflows })`). */
export function createWorkflowRegistry(initial: Record<string, WorkflowHandler> = {}): WorkflowRegistry {
  const registered = new Map<string, WorkflowHandler>();
  const registry: WorkflowRegistry = {
    register(name, handler) {
      if (typeof name !== "string" || !WORKFLOW_NAME.test(name)) {
        throw new KiloError(
          "VALIDATION_FAILED",
          `Invalid workflow name '${String(name)}': use 1 to 50 letters, digits, '_', '-', '.' or ':' (as event types)`,
        );
      }
      if (typeof handler !== "function") {
        throw new KiloError("VALIDATION_FAILED", `Workflow '${name}' must be a function (event, ctx) => ...`);
      }
      if (registered.has(name))
        throw new KiloError("CONFLICT", `A workflow named '${name}' is already registered`);
      registered.set(name, handler);
    },
    resolve(eventType, overlay) {
      const own = overlay?.get(eventType) ?? registered.get(eventType);
      if (own) return own;
      if (eventType === MESSAGE_WORKFLOW || eventType.endsWith(`.${MESSAGE_WORKFLOW}`)) {
        return overlay?.get(MESSAGE_WORKFLOW) ?? registered.get(MESSAGE_WORKFLOW) ?? builtInMessage;
      }
      return null;
    },
  };
  for (const [name, handler] of Object.entries(initial)) registry.register(name, handler);
  return registry;
}

/** The conversation a sub-agent asked with `ctx.ask` uses: one per (bot, run). */
export function askConversationIdFor(botId: string, runId: string): string {
  const digest = createHash("sha256")
    .update(JSON.stringify([botId, "ask", runId]))
    .digest("hex");
  return `conv_${digest.slice(0, 32)}`;
}

/** What {@link executeWorkflow} needs. */
export interface WorkflowExecution {
  run: Run;
  handler: WorkflowHandler;
  orchestrator: Orchestrator;
  /** Where steps are recorded; without it steps run unrecorded (and are made again on re-execution). */
  steps: RunStepRepository | undefined;
  clock: Clock;
  /** The run's logger (carrying run_id, workflow, conversation_key). */
  log: Logger;
  /** The conversation of a (bot, conversation key). */
  conversationIdFor(botId: string, conversationKey: string): string;
  /** Wraps each step (replay or make, and record): a run executor's checkpoint, e.g. a DBOS step. */
  wrapStep?: RunStepWrapper | undefined;
  /** The caller waiting on the run in this process, when there is one. */
  inline?: InlineTurn | undefined;
  /** Sends `ctx.tool` calls (kilo's registered API tools); without it `ctx.tool` fails with `CONFIGURATION_INVALID`. */
  callTool?: ((request: WorkflowToolRequest) => Promise<WorkflowToolResult>) | undefined;
  /** The run was `queued` until now (never executed): it has no recorded steps, so none are read. */
  fresh?: boolean | undefined;
  /**
   * A `ctx.tool` call waiting for an approval stops the workflow (the run is
   * requeued once it is decided: the storage has `runs.requeue`) instead of
   * returning `awaiting_approval` to it.
   */
  suspendOnApproval?: boolean | undefined;
  /**
   * The built-in `message` workflow's turn stores the run's outcome with its
   * own commit, when the orchestrator and the storage can (`commitRunTurn`),
   * under this lease owner (`null`: no lease). Absent: never. `handOff`,
   * asked right before that commit: the lease to claim the key's next run
   * with in the same commit ({@link RunTurnCommit.handOff}), or `undefined`
   * for none (the worker is closing, or has no lease).
   */
  commitWithTurn?: { owner: string | null; handOff?: (() => RunHandOff | undefined) | undefined } | undefined;
}

/** What {@link executeWorkflow} returns. */
export interface WorkflowOutcome {
  /** What the workflow returned, as the run's output. */
  output: Record<string, unknown>;
  /**
   * Set when the run's turn stored the run's outcome with its commit: the run
   * as stored, or `null` when the outcome was refused (the lease was lost);
   * `next`, the key's next run when the commit handed it on to this worker
   * (claimed, `running`).
   */
  committed?: { run: Run | null; next?: Run | null | undefined } | undefined;
  /**
   * A turn made in this execution (`ctx.turn`, `ctx.ask`) asked for a tool
   * call's approval: the run ends `awaiting_approval`, releasing its key,
   * until its approvals are decided. (A turn replayed from an earlier
   * execution does not count: its approvals may be decided already.)
   */
  awaitingApproval: boolean;
  /**
   * Set when the workflow stopped at a `ctx.tool` call waiting for this
   * approval (see {@link WorkflowExecution.suspendOnApproval}); `output` is then
   * `{ approvalId }`.
   */
  suspendedOn?: string | undefined;
}

/**
 * True when a turn (as made, or as recorded) left a tool call waiting for the
 * user's approval: its run then ends `awaiting_approval`.
 */
export function turnAwaitsApproval(turn: Pick<TurnResult, "toolCalls"> | null | undefined): boolean {
  return (turn?.toolCalls ?? []).some((call) => {
    const result = call.result as { status?: unknown } | null | undefined;
    return typeof result === "object" && result !== null && result.status === "awaiting_approval";
  });
}

/**
 * Whether a workflow's `ctx.tool` approval stops its run and the decision
 * resumes it: the storage can requeue runs and records their steps. The run
 * service and the approval decider both decide by this, so they agree.
 */
export function canResumeRuns(storage: Pick<Storage, "runs" | "runSteps">): boolean {
  return Boolean(storage.runs.requeue && storage.runSteps);
}

/** The approval a recorded `ctx.tool` output waits for, or `null`. */
export function awaitedApproval(output: unknown): string | null {
  if (typeof output !== "object" || output === null) return null;
  const { status, approvalId } = output as { status?: unknown; approvalId?: unknown };
  return status === "awaiting_approval" && typeof approvalId === "string" ? approvalId : null;
}

/** A value as stored: JSON, `undefined` as `null`. */
function asJson(value: unknown): unknown {
  if (value === undefined) return null;
  return JSON.parse(JSON.stringify(value)) as unknown;
}

/**
 * Executes a run's workflow: replays the steps recorded by earlier executions
 * of the run (by index and name), makes and records the rest, and returns
 * the run's output. Throws what the workflow throws (host errors wrapped as
 * `HOST_CALLBACK_FAILED` naming the workflow).
 */
export async function executeWorkflow(execution: WorkflowExecution): Promise<WorkflowOutcome> {
  const { run, handler, orchestrator, steps, clock, log, inline } = execution;
  let committed: WorkflowOutcome["committed"];
  let awaitingApproval = false;
  const recorded = new Map<number, RunStep>();
  const previous = steps && !execution.fresh ? await steps.listByRun(run.botId, run.id) : [];
  for (const step of previous) recorded.set(step.index, step);
  if (recorded.size > 0) log.info({ steps: recorded.size }, "replaying recorded steps");
  let next = 0;
  // Set when a ctx.tool call stops the workflow for an approval: nothing more is made after it.
  let suspendedOn: string | undefined;
  let suspend!: () => void;
  const suspended = new Promise<void>((resolve) => {
    suspend = resolve;
  });
  const never = <T>() => new Promise<T>(() => undefined);

  async function record<T>(
    name: string,
    kind: RunStepKind,
    make: (info: WorkflowStepInfo, link?: TurnRunLink, previous?: RunStep) => Promise<T> | T,
    options: { fused?: boolean; redo?: (output: unknown) => boolean } = {},
  ) {
    const fused = options.fused ?? false;
    if (suspendedOn !== undefined) return never<T>();
    const index = next++;
    const previous = recorded.get(index);
    if (previous && (previous.name !== name || previous.kind !== kind)) {
      throw new KiloError(
        "CONFLICT",
        `Workflow '${run.workflow}' is not deterministic: step ${index} of run ${run.id} was '${previous.name}' ` +
          `(${previous.kind}) when the run first executed, and is '${name}' (${kind}) now`,
      );
    }
    // The failure as thrown here, with its cause; a wrapper's replayed failure has only code and message.
    let failure: KiloError | undefined;
    const makeStep = async (): Promise<RunStepResult> => {
      if (previous?.status === "succeeded" && !options.redo?.(previous.output)) {
        log.debug({ step: name, index }, "step replayed");
        return { ok: true, output: previous.output };
      }
      const base = { runId: run.id, botId: run.botId, index, name, kind, startedAt: clock.now() };
      // A fused turn (the built-in workflow's only step) stores its step and the run's outcome with
      // its own commit: no write before it, none after.
      let stored = false;
      const link: TurnRunLink | undefined = fused
        ? {
            finish: (result) => {
              const output = asJson(result) as Record<string, unknown>;
              const finishedAt = clock.now();
              const status = turnAwaitsApproval(result) ? "awaiting_approval" : "succeeded";
              const handOff = execution.commitWithTurn!.handOff?.();
              return {
                run: { ...run, status, output, error: null, finishedAt },
                step: { ...base, status: "succeeded", output, error: null, finishedAt },
                owner: execution.commitWithTurn!.owner,
                ...(handOff ? { handOff } : {}),
              };
            },
            stored: (storedRun, next) => {
              stored = true;
              committed = next === undefined ? { run: storedRun } : { run: storedRun, next };
            },
          }
        : undefined;
      if (!fused)
        await steps?.save({ ...base, status: "running", output: null, error: null, finishedAt: null });
      let output: unknown;
      try {
        const info = { idempotencyKey: `${run.id}:${index}`, index, runId: run.id };
        output = asJson(await (link ? make(info, link) : make(info, undefined, previous)));
      } catch (error) {
        failure = toKiloError(
          error,
          "HOST_CALLBACK_FAILED",
          `Workflow '${run.workflow}' step '${name}' failed`,
        );
        try {
          await steps?.save({
            ...base,
            status: "failed",
            output: null,
            error: { code: failure.code, message: failure.message },
            finishedAt: clock.now(),
          });
        } catch (storageError) {
          log.warn({ step: name, index, error: storageError }, "cannot record the step's failure");
        }
        return { ok: false, error: { code: failure.code, message: failure.message } };
      }
      if (!stored) {
        await steps?.save({ ...base, status: "succeeded", output, error: null, finishedAt: clock.now() });
      }
      return { ok: true, output };
    };
    const result = execution.wrapStep
      ? await execution.wrapStep({ runId: run.id, botId: run.botId, index, name, kind }, makeStep)
      : await makeStep();
    if (!result.ok) throw failure ?? new KiloError(result.error.code, result.error.message);
    return result.output as T;
  }

  const options = (run.input.turn ?? {}) as StoredTurnOptions;
  const turnIn =
    (botId: string, conversationId: string, text: string, own: boolean) =>
    async (info: WorkflowStepInfo, link?: TurnRunLink) => {
      // The run's own turn gets the stored turn options and what its waiting caller hands over.
      const input = {
        botId,
        userId: run.userId,
        conversationId,
        message: text,
        channel: (own ? options.channel : undefined) ?? run.eventType,
        ...(own && options.context ? { context: options.context } : {}),
        ...(own && options.skills ? { skills: options.skills } : {}),
        ...(own && inline?.signal ? { signal: inline.signal } : {}),
      };
      const turnOptions = {
        runId: run.id,
        idempotencyKey: info.idempotencyKey,
        ...(link ? { run: link } : {}),
      };
      if (!own || !inline) return noteApprovals(await orchestrator.handle(input, undefined, turnOptions));
      try {
        const result = await orchestrator.handle(input, inline.observer, turnOptions);
        inline.result = result;
        return noteApprovals(result);
      } catch (error) {
        inline.error = error;
        throw error;
      }
    };
  function noteApprovals(result: TurnResult): TurnResult {
    if (turnAwaitsApproval(result)) awaitingApproval = true;
    return result;
  }
  const eventText = typeof run.input.text === "string" ? run.input.text : "";
  let ownTurnMade = false;

  const ctx: WorkflowContext = {
    runId: run.id,
    workflow: run.workflow,
    botId: run.botId,
    userId: run.userId,
    conversationKey: run.conversationKey,
    turn(turnOptions = {}) {
      const botId = turnOptions.botId ?? run.botId;
      const conversationId =
        botId === run.botId && run.conversationId
          ? run.conversationId
          : execution.conversationIdFor(botId, run.conversationKey);
      // The run's own turn: its bot, in its conversation, answering the event's text.
      const own = botId === run.botId && turnOptions.text === undefined && !ownTurnMade;
      if (own) ownTurnMade = true;
      const fused =
        own &&
        execution.commitWithTurn !== undefined &&
        execution.wrapStep === undefined &&
        isBuiltInMessageWorkflow(handler);
      return record("turn", "turn", turnIn(botId, conversationId, turnOptions.text ?? eventText, own), {
        fused,
      }) as Promise<WorkflowTurnResult>;
    },
    ask(botId, text) {
      return record(
        `ask:${botId}`,
        "ask",
        turnIn(botId, askConversationIdFor(botId, run.id), text, false),
      ) as Promise<WorkflowTurnResult>;
    },
    tool(tool, endpoint, params = {}) {
      const callTool = execution.callTool;
      if (!callTool) {
        return Promise.reject(
          new KiloError("CONFIGURATION_INVALID", "ctx.tool needs kilo's registered API tools (kilo.tools)"),
        );
      }
      if (
        typeof tool !== "string" ||
        typeof endpoint !== "string" ||
        tool.length === 0 ||
        endpoint.length === 0 ||
        tool.length + endpoint.length > 190 ||
        params === null ||
        typeof params !== "object" ||
        Array.isArray(params)
      ) {
        return Promise.reject(
          new KiloError(
            "VALIDATION_FAILED",
            "ctx.tool needs a tool name, an endpoint name and a params object (names of 190 characters at most together)",
          ),
        );
      }
      const suspends = execution.suspendOnApproval === true;
      const call = record(
        `tool:${tool}.${endpoint}`,
        "tool",
        async (info, _link, previous) => {
          // A step that waited for an approval is made again once the run resumes: as decided.
          const waited = previous ? awaitedApproval(previous.output) : null;
          return callTool({
            run,
            tool,
            endpoint,
            params,
            idempotencyKey: info.idempotencyKey,
            ...(waited ? { approvalId: waited } : {}),
          });
        },
        // Replayed as recorded unless it waits for an approval and the run may have resumed.
        suspends ? { redo: (output) => awaitedApproval(output) !== null } : {},
      ) as Promise<WorkflowToolResult>;
      return call.then((result) => {
        const waiting = awaitedApproval(result);
        if (waiting === null) return result;
        awaitingApproval = true;
        if (!suspends) return result;
        // The workflow stops here: this call never returns in this execution (a try/catch in the
        // workflow cannot swallow the stop), and the run ends awaiting the decision.
        suspendedOn ??= waiting;
        suspend();
        return never<WorkflowToolResult>();
      });
    },
    step(name, fn) {
      if (typeof name !== "string" || name.length === 0 || name.length > 200) {
        return Promise.reject(
          new KiloError("VALIDATION_FAILED", "ctx.step needs a name of 1 to 200 characters"),
        );
      }
      return record(name, "step", fn);
    },
    log: (message, fields = {}) => log.info(fields, message),
    logger: log,
  };

  let result: unknown;
  try {
    const handled = Promise.resolve(handler(run.input as InboundEvent, ctx));
    result = await Promise.race([handled, suspended]);
    if (suspendedOn !== undefined) {
      // The handler's promise stays pending; a rejection it may still see is not the run's.
      handled.catch(() => undefined);
      log.info({ approval_id: suspendedOn }, "workflow stopped for an approval");
      return { output: { approvalId: suspendedOn }, committed, awaitingApproval: true, suspendedOn };
    }
  } catch (error) {
    throw toKiloError(error, "HOST_CALLBACK_FAILED", `Workflow '${run.workflow}' failed`);
  }
  // A fused turn stored the run's output already (the built-in workflow returns its turn as is).
  const output = committed?.run ? committed.run.output : asJson(result);
  return {
    output:
      output !== null && typeof output === "object" && !Array.isArray(output)
        ? (output as Record<string, unknown>)
        : { value: output },
    committed,
    awaitingApproval,
  };
}
