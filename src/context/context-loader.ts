import type { Message } from "../domain/conversation.js";
import type { ContextLoader, LoadContextInput, TurnContext } from "../ports/context-loader.js";
import type { MemoryRetriever } from "../ports/memory.js";
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

  async function history(input: LoadContextInput): Promise<Message[]> {
    const depth = input.requirements.historyDepth;
    if (depth <= 0) return [];
    const from = historyWindowStart(input.beforeSeq, depth, block);
    const messages = await deps.storage.messages.listRecent(input.botId, input.conversationId, {
      limit: Math.max(depth, input.beforeSeq - from),
      beforeSeq: input.beforeSeq,
    });
    return messages.filter((message) => message.seq >= from);
  }

  return {
    async load(input: LoadContextInput): Promise<TurnContext> {
      const { requirements } = input;
      const [messages, memories, skillRecords] = await Promise.all([
        history(input),
        requirements.memoryQuery !== null && requirements.memoryLimit > 0
          ? deps.retriever.retrieve({
              botId: input.botId,
              userId: input.userId,
              query: requirements.memoryQuery,
              limit: requirements.memoryLimit,
            })
          : [],
        requirements.skillData
          ? deps.storage.skillRecords
              .query(input.botId, requirements.skillData.skillId, requirements.skillData.filter, {
                limit: requirements.skillData.limit,
                newestFirst: true,
              })
              .then((page) => page.items)
          : [],
      ]);
      return { history: messages, memories, skillRecords };
    },
  };
}
