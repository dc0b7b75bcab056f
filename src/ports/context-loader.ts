import type { Message } from "../domain/conversation.js";
import type { Memory } from "../domain/memory.js";
import type { SkillRecord } from "../domain/skill.js";
import type { ContextRequirements } from "./skill-matcher.js";

/** Input of {@link ContextLoader.load}. */
export interface LoadContextInput {
  botId: string;
  userId: string;
  conversationId: string;
  /** Seq of the current user message: history is what came before it. */
  beforeSeq: number;
  requirements: ContextRequirements;
}

/** The context loaded for a turn. */
export interface TurnContext {
  history: Message[];
  /** Memories relevant to this turn's message. */
  memories: Memory[];
  /**
   * The user's standing memories (most recently updated), stable between
   * memory writes; none when the retriever cannot tell them apart.
   */
  standingMemories?: Memory[] | undefined;
  skillRecords: SkillRecord[];
}

/**
 * The ContextLoader port: loads exactly what the matcher's
 * ContextRequirements ask for (history depth, memories, skill data).
 */
export interface ContextLoader {
  /**
   * Loads the history before `input.beforeSeq`, the memories and the skill records that
   * `input.requirements` ask for; anything not asked for comes back empty.
   */
  load(input: LoadContextInput): Promise<TurnContext>;
}
