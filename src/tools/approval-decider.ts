import type { Bot } from "../domain/bot.js";
import type { Run } from "../domain/run.js";
import type { ToolApproval } from "../domain/tool.js";
import { KiloError } from "../errors.js";
import type { Clock } from "../ports/clock.js";
import type { ProposerInput } from "../ports/skill-proposer.js";
import type { Storage } from "../ports/storage.js";
import { canResumeRuns } from "../runs/workflow.js";
import { type ApiCaller, resolveCall } from "./call-api.js";

/** A decided approval: what became of its call, and the note that tells the model. */
export interface ApprovalDecision {
  approval: ToolApproval;
  /** What the call returned (as the model sees it); `null` when denied. */
  result: { content: string; isError: boolean } | null;
  /** What the model is told in the turn that continues the conversation. */
  note: string;
  /** `tool.endpoint`, as the continuation's message names it. */
  label: string;
  /**
   * The run whose turn asked for the approval (stored `succeeded` now if it
   * was `awaiting_approval` and has no approval pending any more), or `null`
   * for an approval asked outside a run. When `resumes`: the run its workflow
   * stopped in, `queued` again at the end of its key's lane (or, while its
   * execution was still storing the stop, as it stands: it is requeued then).
   */
  run: Run | null;
  /**
   * True for an approval a workflow's `ctx.tool` call stopped at: nothing was
   * sent here (`result` is `null`); the run resumes and its `ctx.tool` call
   * makes the decided call, so no turn continues the conversation.
   */
  resumes: boolean;
}

/**
 * Decides tool approvals, through `kilo.approvals.approve` / `deny` or by the
 * user's own answer in the conversation ("yes, go ahead").
 */
export interface ApprovalDecider {
  /**
   * Decides a pending approval, once: sends the call when approved (or records
   * the denial), and releases the run that asked for it when none of its
   * approvals is pending any more. `NOT_FOUND` when the bot has no such
   * approval, `CONFLICT` when it is decided already.
   */
  decide(
    bot: Bot,
    approvalId: string,
    decision: "approved" | "denied",
    reason: string | null,
  ): Promise<ApprovalDecision>;
  /**
   * A turn's message that says yes ("yes", "go ahead", ...) or no ("no",
   * "cancel", ...) while exactly one approval of its conversation is pending
   * decides that approval (see {@link answersApproval}: "ok" is not a yes here); returns the decision, or `null` when the message
   * decides nothing (not a yes or no, none pending, or several: ambiguous).
   */
  respond(input: ProposerInput): Promise<ApprovalDecision | null>;
}

/** What {@link createApprovalDecider} needs. */
export interface ApprovalDeciderOptions {
  storage: Storage;
  clock: Clock;
  caller: ApiCaller;
  /** Told of a run the decision sent back to the queue (`runs.requeue`), so it executes. */
  onRequeued?: ((run: Run) => void) | undefined;
}

/** Most pending approvals of a bot read to find those of one conversation. */
const PENDING_READ = 500;

/**
 * An explicit yes to a risky call. Narrower than a yes to a skill proposal: "ok" or "fine" often
 * only acknowledge that the call is waiting, so they approve nothing.
 */
const APPROVE =
  /^(?:yes|yeah|yep|yup|sure|go ahead|do it|please do|send it|approve[d]?|i approve|confirm(?:ed)?|absolutely|definitely)\b/i;
/** An explicit no to a risky call. */
const DENY = /^(?:no|nope|nah|don'?t|do not|cancel|deny|denied|stop|never ?mind|not now)\b/i;

/** Whether the message approves a waiting call ("yes, go ahead"), denies it ("no, cancel"), or neither. */
export function answersApproval(message: string): "approved" | "denied" | null {
  const text = message.trim();
  if (APPROVE.test(text)) return "approved";
  return DENY.test(text) ? "denied" : null;
}

/**
 * True for an approval a workflow's `ctx.tool` call asked for: its tool call id
 * is the step's idempotency key, `${runId}:${index}` (a model's tool call ids
 * never take that form).
 */
export function isStepApproval(approval: Pick<ToolApproval, "runId" | "toolCallId">): boolean {
  const { runId, toolCallId } = approval;
  return (
    runId !== null && toolCallId.startsWith(`${runId}:`) && /^\d+$/.test(toolCallId.slice(runId.length + 1))
  );
}

/** Creates the approval decider over the storage and the API caller. */
export function createApprovalDecider({
  storage,
  clock,
  caller,
  onRequeued,
}: ApprovalDeciderOptions): ApprovalDecider {
  // Workflows stop at a ctx.tool approval only where their runs can be requeued (see executeWorkflow).
  const canResume = canResumeRuns(storage);
  const pendingOf = (botId: string) =>
    storage.approvals.listByBot(botId, { status: "pending", limit: PENDING_READ });

  /** The run that asked; stored `succeeded` when it waited and none of its approvals is pending. */
  async function release(botId: string, approval: ToolApproval): Promise<Run | null> {
    if (!approval.runId) return null;
    const run = await storage.runs.get(approval.runId);
    if (!run || run.botId !== botId) return null;
    if (run.status !== "awaiting_approval") return run;
    if ((await pendingOf(botId)).some((other) => other.runId === run.id)) return run;
    return (await storage.runs.update({ ...run, status: "succeeded" })) ?? run;
  }

  /**
   * Decides an approval a workflow's `ctx.tool` call stopped at and sends its run back to the
   * queue, in one transaction: a crash between the two cannot leave the run waiting for a decision
   * already made. A run not yet stopped (its execution is storing it `awaiting_approval` now) is
   * requeued by that execution once stored, as it sees the approval decided.
   */
  async function decideStep(
    bot: Bot,
    pending: ToolApproval & { runId: string },
    decided: { status: "approved" | "denied"; reason: string | null; decidedAt: Date },
  ): Promise<ApprovalDecision> {
    const { approval, requeued } = await storage.transaction(async (tx) => {
      const approval = await tx.approvals.decide(bot.id, pending.id, decided);
      return { approval, requeued: approval ? await tx.runs.requeue!(bot.id, pending.runId) : null };
    });
    if (!approval) throw new KiloError("NOT_FOUND", `Bot '${bot.id}' has no approval '${pending.id}'`);
    let run = requeued;
    if (run) onRequeued?.(run);
    else {
      const current = await storage.runs.get(pending.runId);
      run = current?.botId === bot.id ? current : null;
    }
    const label = `${approval.toolName}.${approval.endpoint}`;
    const note =
      decided.status === "approved"
        ? `The user approved ${label}; the workflow that asked sends it as it continues.`
        : `The user denied ${label}${decided.reason ? ` (${decided.reason})` : ""}; it was not sent.`;
    return { approval, result: null, note, label, run, resumes: true };
  }

  async function decide(
    bot: Bot,
    approvalId: string,
    decision: "approved" | "denied",
    reason: string | null,
  ): Promise<ApprovalDecision> {
    const pending = await storage.approvals.get(bot.id, approvalId);
    if (!pending) throw new KiloError("NOT_FOUND", `Bot '${bot.id}' has no approval '${approvalId}'`);
    const decided = { status: decision, reason, decidedAt: clock.now() };
    if (canResume && pending.runId !== null && isStepApproval(pending)) {
      return decideStep(bot, { ...pending, runId: pending.runId }, decided);
    }
    // decide() changes it only while pending, so two clicks cannot send a risky call twice.
    const approval = await storage.approvals.decide(bot.id, pending.id, decided);
    if (!approval) throw new KiloError("NOT_FOUND", `Bot '${bot.id}' has no approval '${approvalId}'`);
    const label = `${approval.toolName}.${approval.endpoint}`;
    const context = { bot, userId: approval.userId, conversationId: approval.conversationId };
    let result: ApprovalDecision["result"] = null;
    let note: string;
    if (decision === "approved") {
      const tool = await storage.tools.get(bot.id, approval.toolId);
      let outcome: { content: string; isError: boolean };
      try {
        if (!tool)
          throw new KiloError("NOT_FOUND", `Bot '${bot.id}' has no tool '${approval.toolId}' any more`);
        // Decided once (above), so sent once; the approval's id keys it upstream too.
        outcome = await caller.send(
          context,
          resolveCall([tool], { tool: tool.name, endpoint: approval.endpoint, params: approval.input }),
          { idempotencyKey: approval.id },
        );
      } catch (error) {
        outcome = { content: error instanceof Error ? error.message : String(error), isError: true };
      }
      result = { content: outcome.content, isError: outcome.isError };
      note = `The user approved ${label}; it was sent and returned: ${outcome.content}`;
    } else {
      await caller.denied(context, approval);
      note = `The user denied ${label}${reason ? ` (${reason})` : ""}; it was not sent.`;
    }
    return { approval, result, note, label, run: await release(bot.id, approval), resumes: false };
  }

  return {
    decide,
    async respond(input) {
      const answer = answersApproval(input.message);
      if (!answer) return null;
      const mine = (await pendingOf(input.bot.id)).filter(
        (approval) => approval.conversationId === input.conversationId && approval.userId === input.userId,
      );
      if (mine.length !== 1) return null;
      try {
        return await decide(input.bot, mine[0]!.id, answer, answer === "denied" ? "said no" : null);
      } catch (error) {
        // Decided meanwhile (a click in the studio): the message is an ordinary one then.
        if (KiloError.is(error, "CONFLICT") || KiloError.is(error, "NOT_FOUND")) return null;
        throw error;
      }
    },
  };
}
