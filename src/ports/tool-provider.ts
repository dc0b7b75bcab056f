import type { Bot } from "../domain/bot.js";
import type { Skill } from "../domain/skill.js";
import type { LlmToolDefinition, ToolCallBlock } from "./llm-provider.js";

/** Who and what a tool call is made for. */
export interface ToolContext {
  bot: Bot;
  userId: string;
  conversationId: string;
  matchedSkill: Skill | null;
  /** The bot's active skills (the same objects from turn to turn while they do not change). */
  skills: readonly Skill[];
  signal?: AbortSignal | undefined;
  /** The run the turn is part of (`kilo.chat` turns are runs too); absent for a turn made outside one. */
  runId?: string | undefined;
  /**
   * The turn's step in its run (`${runId}:${index}`): the same when a run
   * re-executed after a crash makes the turn again. Providers derive their
   * side-effecting calls' idempotency keys from it (`call_api` sends
   * `${idempotencyKey}:${n}` for the turn's n-th call).
   */
  idempotencyKey?: string | undefined;
}

/** The outcome of one tool call, fed back to the model. */
export interface ToolOutcome {
  /** Text (usually JSON) the model sees. */
  content: string;
  isError: boolean;
  /** Structured result for events and the chat result; never sent to the model. */
  data?: unknown;
}

/** The tools available for one turn. */
export interface ToolSet {
  definitions: LlmToolDefinition[];
  /** Facts the model should know this turn (e.g. a required integration is missing); shown in the turn's context. */
  notes?: string[] | undefined;
  /** Runs a call the model made. Called only with names from `definitions`. */
  execute(call: ToolCallBlock): Promise<ToolOutcome>;
}

/**
 * The ToolProvider port: contributes tools to a turn. Skill data tools are
 * one provider; registered external APIs (`call_api`) are another. A provider
 * returns only tools that fit the context (e.g. the matched skill's tools).
 */
export interface ToolProvider {
  readonly name: string;
  /** The tools this provider offers for one turn; an empty `definitions` list offers none. */
  tools(context: ToolContext): Promise<ToolSet> | ToolSet;
}
