import type { Memory } from "../domain/memory.js";
import type { Proposal } from "../domain/proposal.js";
import type { Run } from "../domain/run.js";
import type { RunStep } from "../domain/run-step.js";
import type { Skill } from "../domain/skill.js";
import type { SkillMatch } from "./skill-matcher.js";
import type { RunHandOff } from "./storage.js";

/** One inbound message for a bot. */
export interface TurnInput {
  botId: string;
  userId: string;
  /** Continue this conversation; a new one is started when absent. */
  conversationId?: string | undefined;
  message: string;
  /** Facts for this turn only, shown to the model with the turn's context (e.g. the result of an approved call). */
  context?: string[] | undefined;
  /** Where the message came from (`api`, `cli`, `telegram`, ...). Default `api`. */
  channel?: string | undefined;
  /**
   * Skill injection for this turn (LLMos-Lite's `include_skills` and
   * `max_skills`). `include: false` (or `max: 0`) leaves skills out: no
   * matching, no catalog, no skill tools, no proposal. `max` caps the catalog
   * at that many skills: the matched one first, then the matcher's closest
   * candidates. Either makes the catalog differ from the bot's usual one, so
   * that turn does not reuse the cached system prompt. Default: every active
   * skill in the catalog, as usual.
   */
  skills?: { include?: boolean | undefined; max?: number | undefined } | undefined;
  signal?: AbortSignal | undefined;
}

/** A tool call made during a turn. */
export interface TurnToolCall {
  name: string;
  input: Record<string, unknown>;
  isError: boolean;
  /** Structured result (never credentials). */
  result: unknown;
}

/** Cost and tokens of a turn, summed over its LLM calls. */
export interface TurnUsage {
  calls: number;
  /** Prompt tokens read neither from nor into the cache (as in UsageRecord). */
  promptTokens: number;
  completionTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  costUsd: number;
}

/** The outcome of one turn. */
export interface TurnResult {
  reply: string;
  conversationId: string;
  userMessageId: string;
  replyMessageId: string;
  /** The skill that handled the turn, and how it was chosen. */
  skill: Pick<Skill, "id" | "name"> | null;
  match: Pick<SkillMatch, "pass" | "confidence" | "reason" | "taskType">;
  toolCalls: TurnToolCall[];
  /** Memories written or updated by this turn. */
  memories: Memory[];
  /** A skill proposal offered (or answered) in this turn. */
  proposal: Proposal | null;
  /** A skill created in this turn (an accepted proposal). */
  createdSkill: Pick<Skill, "id" | "name"> | null;
  /** A short summary of the model's thinking, when it thought. */
  thinking: string | null;
  usage: TurnUsage;
  /** Names of the skills whose instructions went into the prompt (LLMos-Lite's `skills_used`). */
  skillsUsed: string[];
  /** The turn's trace (`kilo.traces.get`, `kilo.traces.feedback`); `null` when the storage keeps no traces. */
  traceId: string | null;
}

/** What a streamed turn yields, in order of arrival. */
export type TurnStreamEvent =
  /** Reply text as the model writes it (secrets already redacted; whole words only). */
  | { type: "text-delta"; text: string }
  /** The model's reasoning as it thinks (providers with extended thinking). */
  | { type: "thinking-delta"; text: string }
  /** The model called a tool; `tool-result` follows when it has run. */
  | { type: "tool-call"; name: string; input: Record<string, unknown> }
  | { type: "tool-result"; name: string; isError: boolean }
  /** A short summary of the model's thinking, once it is done thinking. */
  | { type: "thinking"; summary: string }
  /** The finished turn, as `kilo.chat` returns it: always the last event. */
  | { type: "result"; result: TurnResult };

/** Receives a turn's progress while it runs. */
export interface TurnObserver {
  /**
   * Called synchronously for each progress event, in order, while the turn runs; the final
   * result is not sent here but returned by the turn. It should not throw or block.
   */
  onEvent(event: Exclude<TurnStreamEvent, { type: "result" }>): void;
}

/**
 * A run that one turn finishes: the built-in `message` workflow, whose only
 * step is the turn. An orchestrator that supports it stores the run's outcome
 * and its step with the turn's own commit (`Storage.commitRunTurn`), so a run
 * costs no writes of its own after the turn; one that ignores it leaves both
 * to the run service (which then records them itself).
 */
export interface TurnRunLink {
  /**
   * The rows to store with the turn, given its result: the run as it ends
   * (`succeeded`, the result as its output) and its `turn` step. Called once,
   * right before the commit.
   */
  finish(result: TurnResult): {
    run: Run;
    step: RunStep;
    owner: string | null;
    handOff?: RunHandOff | undefined;
  };
  /**
   * Called after the commit with the run as stored, or `null` when its outcome
   * was refused (the run is no longer this worker's: its lease was lost), and
   * with the key's next run when the commit handed it on
   * ({@link RunTurnCommitted.next}). Not called when the orchestrator did not
   * store the run.
   */
  stored(run: Run | null, next?: Run | null): void;
}

/** What else a turn may be given besides its input. */
export interface TurnOptions {
  /** The run this turn finishes, stored with the turn's commit when the storage can. */
  run?: TurnRunLink | undefined;
  /**
   * The id of the run whose workflow makes this turn (any `ctx.turn` or
   * `ctx.ask`): approvals the turn asks for name it, so the run can wait for
   * them and its key's lane gets the decision's continuation.
   */
  runId?: string | undefined;
  /** The turn's step key in its run (`${runId}:${index}`), handed to tool providers (`ToolContext.idempotencyKey`). */
  idempotencyKey?: string | undefined;
}

/**
 * The Orchestrator port: coordinates one turn and holds no business logic.
 * match skill -> load context -> compose -> call the LLM (tool loop) ->
 * process the response -> extract memory -> persist.
 */
export interface Orchestrator {
  /**
   * Runs one turn. With an `observer`, the model's answer is streamed: the
   * observer gets text and thinking deltas and tool progress as they happen.
   * With `options.run`, the turn ends a run and may store its outcome with
   * the turn (see {@link TurnRunLink}); orchestrators may ignore it.
   */
  handle(input: TurnInput, observer?: TurnObserver, options?: TurnOptions): Promise<TurnResult>;
}
