import type { ContextLoader, LoadContextInput, TurnContext } from "../ports/context-loader.js";
import type { MemoryRetriever } from "../ports/memory.js";
import type { Storage } from "../ports/storage.js";

/** Dependencies of {@link createContextLoader}. */
export interface ContextLoaderDependencies {
  storage: Storage;
  retriever: MemoryRetriever;
}

/**
 * The default context loader: loads exactly what the requirements ask for,
 * in parallel, and nothing when a requirement is empty.
 */
export function createContextLoader(deps: ContextLoaderDependencies): ContextLoader {
  return {
    async load(input: LoadContextInput): Promise<TurnContext> {
      const { requirements } = input;
      const [history, memories, skillRecords] = await Promise.all([
        requirements.historyDepth > 0
          ? deps.storage.messages.listRecent(input.botId, input.conversationId, {
              limit: requirements.historyDepth,
              beforeSeq: input.beforeSeq,
            })
          : [],
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
                limit: 500,
              })
              .then((page) => page.items.reverse().slice(0, requirements.skillData!.limit))
          : [],
      ]);
      return { history, memories, skillRecords };
    },
  };
}
