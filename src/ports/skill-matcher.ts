import type { Bot } from "../domain/bot.js";
import type { Message } from "../domain/conversation.js";
import type { Skill, TaskType } from "../domain/skill.js";
import type { SkillRecordFilter } from "./storage.js";

/**
 * The skills a matcher chooses from. `key` changes whenever any skill of
 * the set changes, so a matcher may cache an index per key.
 */
export interface SkillCatalog {
  key: string;
  /** Active skills only. */
  skills: Skill[];
}

/** What the orchestrator should load for this turn, and nothing more. */
export interface ContextRequirements {
  /** How many recent messages of the conversation to include (0–200). */
  historyDepth: number;
  /** Text to retrieve relevant memories with; `null` loads none. */
  memoryQuery: string | null;
  /** How many memories to retrieve at most. */
  memoryLimit: number;
  /** Which of the matched skill's records to load; `null` loads none. */
  skillData: { skillId: string; filter: SkillRecordFilter; limit: number } | null;
}

/** One skill the matcher considered, with its score. */
export interface MatchCandidate {
  skillId: string;
  name: string;
  score: number;
}

/** The matcher's decision for one message, with the reasons for it. */
export interface SkillMatch {
  /** The skill that handles the turn, or `null` for general conversation. */
  skill: Skill | null;
  /** 0–1: how sure the deciding pass was. */
  confidence: number;
  /** Which pass decided: the keyword `fast` path, the `llm` classifier, or `none` (no skills). */
  pass: "fast" | "llm" | "none";
  /** Human-readable reason for the decision, kept in traces and events. */
  reason: string;
  /** True when the message asks the bot to do something (a candidate for a skill proposal). */
  actionable: boolean;
  /** How the gateway should treat the turn. */
  taskType: TaskType;
  context: ContextRequirements;
  /** The best fast-path candidates, best first. */
  candidates: MatchCandidate[];
}

/** Input of {@link SkillMatcher.match}. */
export interface MatchInput {
  message: string;
  catalog: SkillCatalog;
  bot: Bot;
  userId: string;
  conversationId: string | null;
  /** Recent messages, oldest first, when the caller has them. */
  history?: Message[] | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * The SkillMatcher port: decides which skill (if any) handles a message and
 * what context the turn needs.
 *
 * The default (`createSkillMatcher`) is two-pass: a keyword index over each
 * skill's triggers and examples decides when it is confident; otherwise an
 * LLM classifies the message (task type `simple_qa`, purpose `classify`).
 *
 * @example
 * ```ts
 * const alwaysChat: SkillMatcher = {
 *   async match() {
 *     return { skill: null, confidence: 1, pass: "none", reason: "chat only", actionable: false,
 *       taskType: "simple_qa", candidates: [],
 *       context: { historyDepth: 10, memoryQuery: null, memoryLimit: 0, skillData: null } };
 *   },
 * };
 * ```
 */
export interface SkillMatcher {
  /**
   * Picks the skill for `input.message` from `input.catalog` (or none), with the task type and
   * the context the turn should load. A failed classifier call rejects with a `KiloError`
   * (`PROVIDER_FAILED`, or `ABORTED` when `input.signal` fired).
   */
  match(input: MatchInput): Promise<SkillMatch>;
}
