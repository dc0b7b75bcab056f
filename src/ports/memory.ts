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
  extract(input: ExtractInput): Promise<ExtractedFact[]>;
}

/** Input of {@link MemoryRetriever.retrieve}. */
export interface RetrieveInput {
  botId: string;
  userId: string;
  query: string;
  limit: number;
}

/**
 * The MemoryRetriever port: picks the memories relevant to a turn.
 */
export interface MemoryRetriever {
  retrieve(input: RetrieveInput): Promise<Memory[]>;
}
