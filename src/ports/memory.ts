import type { Bot } from "../domain/bot.js";
import type { Memory } from "../domain/memory.js";

/** A fact found in a turn: `key` names what it is about, `content` states it. */
export interface ExtractedFact {
  key: string;
  content: string;
}

/** Input of {@link MemoryExtractor.extract}. */
export interface ExtractInput {
  bot: Bot;
  userId: string;
  conversationId: string;
  userMessage: string;
  reply: string;
  signal?: AbortSignal | undefined;
}

/**
 * The MemoryExtractor port: finds facts worth remembering in a turn. It only
 * finds them; the core stores them, replacing an older fact with the same key
 * and keeping the older value in the memory's history.
 */
export interface MemoryExtractor {
  /** The facts the turn states about the user; an empty array when there is nothing worth keeping. */
  extract(input: ExtractInput): Promise<ExtractedFact[]>;
}

/** Input of {@link MemoryRetriever.retrieve}. */
export interface RetrieveInput {
  botId: string;
  userId: string;
  query: string;
  limit: number;
}

/** Input of {@link MemoryRetriever.recall}. */
export interface RecallInput extends RetrieveInput {
  /** How many standing memories to return (the most recently updated ones). */
  standingLimit: number;
}

/** What {@link MemoryRetriever.recall} returns. */
export interface RecalledMemories {
  /**
   * The user's most recently updated memories, at most `standingLimit`. They
   * are the same from turn to turn until a memory is written, so the
   * composer puts them in the cacheable part of the prompt.
   */
  standing: Memory[];
  /** Memories relevant to the query, at most `limit`, none of them in `standing`. */
  relevant: Memory[];
}

/**
 * The MemoryRetriever port: picks the memories relevant to a turn.
 *
 * `retrieve` is required. `recall` is optional: a retriever that has it
 * splits memories into standing ones (stable across turns, cacheable) and
 * relevant ones (per message); without it, every retrieved memory is
 * treated as relevant to this turn only.
 *
 * @example
 * ```ts
 * const retriever: MemoryRetriever = {
 *   async retrieve({ botId, userId, limit }) {
 *     return (await storage.memories.list(botId, userId, { limit })).items;
 *   },
 * };
 * ```
 */
export interface MemoryRetriever {
  /** Up to `limit` memories for the query, most useful first. */
  retrieve(input: RetrieveInput): Promise<Memory[]>;
  /** Standing and relevant memories in one pass; see {@link RecalledMemories}. */
  recall?(input: RecallInput): Promise<RecalledMemories>;
}
