import type { Bot } from "../domain/bot.js";
import type { Message } from "../domain/conversation.js";
import type { Memory } from "../domain/memory.js";
import type { Skill, SkillRecord } from "../domain/skill.js";
import type { LlmMessage, LlmToolDefinition, SystemBlock } from "./llm-provider.js";

/** Everything the composer may put in a prompt. */
export interface ComposeInput {
  bot: Bot;
  /** The bot's active skills (for the catalog). */
  skills: Skill[];
  /** The skill handling this turn, if any. */
  matchedSkill: Skill | null;
  tools: LlmToolDefinition[];
  /** Memories relevant to this turn's message (volatile). */
  memories: Memory[];
  /** Standing memories, the same from turn to turn until one is written (rendered in a cacheable block). */
  standingMemories?: Memory[] | undefined;
  skillRecords: SkillRecord[];
  /** Earlier messages, oldest first (not including the current one). */
  history: Message[];
  userMessage: string;
  /** Where the message came from (`api`, `cli`, `telegram`, ...); the default composer names it unless it is `api`. */
  channel: string;
  now: Date;
  /** Facts for this turn only (tool notes, results of approved calls); rendered with the volatile context. */
  notes?: string[] | undefined;
  /** Extra rules from the host (workspace AGENTS.md, ...), stable across turns. */
  contextRules?: string[] | undefined;
  /** Replaces the soul's rendered text at the top of the system prompt (workspace SYSTEM.md). */
  systemPrompt?: string | null | undefined;
  /** Appended to the system prompt after the rules (workspace APPEND_SYSTEM.md). */
  appendSystemPrompt?: string | null | undefined;
}

/** A prompt ready for the gateway. */
export interface ComposedPrompt {
  /** Stable blocks first; the last stable block is marked `cacheable`. */
  system: SystemBlock[];
  messages: LlmMessage[];
  tools: LlmToolDefinition[];
}

/**
 * The PromptComposer port: pure functions from data to a prompt. Stable
 * content first (soul, behavioural rules, context rules, skill catalog, tool
 * definitions), volatile content last (memories, skill data, history, the
 * user message), so provider prompt caches hit.
 */
export interface PromptComposer {
  /** Builds the system blocks, messages and tool list for one call; same input, same prompt. */
  compose(input: ComposeInput): ComposedPrompt;
}
