import type { Message } from "../domain/conversation.js";
import type { ContextLoader, LoadContextInput, TurnContext } from "../ports/context-loader.js";
import type { MemoryRetriever, RecalledMemories } from "../ports/memory.js";
import type { Storage } from "../ports/storage.js";

/** Dependencies and settings of {@link createContextLoader}. */
export interface ContextLoaderDependencies {
  storage: Storage;
  retriever: MemoryRetriever;
  /**
   * History is loaded from a start that moves in steps of this many messages
   * (default 20), not one message per turn: consecutive prompts then share
   * their history as a byte-identical prefix, which provider prompt caches
   * reuse. A turn gets between `historyDepth` and `historyDepth + historyBlock - 1`
   * earlier messages. `1` loads exactly `historyDepth`.
   */
  historyBlock?: number;
  /**
   * Turns asking for at most this many history messages share one window
   * start. Without it, a short-history turn (`simple_qa`, 6 messages) between
   * skill turns (10) can start its window a block later, and the next skill
   * turn a block earlier again: each move rewrites the history and misses the
   * provider's cache. Default 12, the deepest default task depth; ignored when
   * `historyBlock` is 1.
   */
  historyAnchorDepth?: number;
  /**
   * How many standing memories (the user's most recently updated facts) every
   * turn gets, beside the memories relevant to its message. They change only
   * when a memory is written, so the composer keeps them in the cacheable
   * part of the prompt. Default 5; `0` turns them off. Used when the
   * retriever has `recall`; otherwise every memory is per-turn.
   */
  standingMemories?: number;
}

/** The first seq of the history window: `depth` back from the current message, rounded down to a block boundary. */
export function historyWindowStart(beforeSeq: number, depth: number, block: number): number {
  const start = beforeSeq - depth;
  return Math.max(0, Math.floor(start / block) * block);
}

/**
 * The default context loader: loads exactly what the requirements ask for,
 * in parallel, and nothing when a requirement is empty.
 */
export function createContextLoader(deps: ContextLoaderDependencies): ContextLoader {
  const block = Math.max(1, Math.floor(deps.historyBlock ?? 20));
  const anchorDepth = block > 1 ? Math.max(0, Math.floor(deps.historyAnchorDepth ?? 12)) : 0;
  const standingLimit = Math.max(0, Math.floor(deps.standingMemories ?? 5));
  const { retriever } = deps;

  async function memories(input: LoadContextInput): Promise<RecalledMemories> {
    const { memoryQuery, memoryLimit } = input.requirements;
    if (memoryQuery === null || memoryLimit <= 0) return { standing: [], relevant: [] };
    const query = { botId: input.botId, userId: input.userId, query: memoryQuery, limit: memoryLimit };
    if (retriever.recall) return retriever.recall({ ...query, standingLimit });
    return { standing: [], relevant: await retriever.retrieve(query) };
  }

  async function history(input: LoadContextInput): Promise<Message[]> {
    const depth = input.requirements.historyDepth;
    if (depth <= 0) return [];
    const from = historyWindowStart(input.beforeSeq, Math.max(depth, anchorDepth), block);
    const messages = await deps.storage.messages.listRecent(input.botId, input.conversationId, {
      limit: Math.max(depth, input.beforeSeq - from),
      beforeSeq: input.beforeSeq,
    });
    return messages.filter((message) => message.seq >= from);
  }

  return {
    async load(input: LoadContextInput): Promise<TurnContext> {
      const { requirements } = input;
      const [messages, recalled, skillRecords] = await Promise.all([
        history(input),
        memories(input),
        requirements.skillData
          ? deps.storage.skillRecords
              .query(input.botId, requirements.skillData.skillId, requirements.skillData.filter, {
                limit: requirements.skillData.limit,
                newestFirst: true,
              })
              .then((page) => page.items)
          : [],
      ]);
      return {
        history: messages,
        memories: recalled.relevant,
        standingMemories: recalled.standing,
        skillRecords,
      };
    },
  };
}
