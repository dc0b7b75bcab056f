import type { Page, PageOptions } from "../domain/common.js";
import { PageOptionsSchema } from "../domain/common.js";
import type { Memory, MemorySource } from "../domain/memory.js";
import { KiloError } from "../errors.js";
import type { Clock, IdGenerator } from "../ports/clock.js";
import type { ExtractedFact, MemoryRetriever, RetrieveInput } from "../ports/memory.js";
import type { Storage } from "../ports/storage.js";
import { parseInput } from "../runtime/validate.js";
import { isStopword, tokenize } from "../skills/keyword-index.js";

/** Dependencies of {@link MemoryService}. */
export interface MemoryServiceDependencies {
  storage: Storage;
  clock: Clock;
  ids: IdGenerator;
}

/** A memory written by {@link MemoryService.remember}, and whether it replaced an older value. */
export interface RememberedFact {
  memory: Memory;
  updated: boolean;
}

/** Normalises a fact key so "Bakery  Name" and "bakery name" are one fact. */
export function normalizeMemoryKey(key: string): string {
  return key.trim().toLowerCase().replace(/\s+/g, " ").slice(0, 200);
}

/**
 * Stores facts per bot and user. A fact whose key is already known replaces
 * the old content, which moves to the memory's history; repeating a known
 * fact changes nothing.
 */
export class MemoryService {
  constructor(private readonly deps: MemoryServiceDependencies) {}

  async remember(
    botId: string,
    userId: string,
    facts: ExtractedFact[],
    source: MemorySource,
  ): Promise<RememberedFact[]> {
    const written: RememberedFact[] = [];
    for (const fact of facts) {
      const key = normalizeMemoryKey(fact.key);
      const content = fact.content.trim().slice(0, 2000);
      if (!key || !content) continue;
      const now = this.deps.clock.now();
      const existing = await this.deps.storage.memories.findByKey(botId, userId, key);
      if (existing) {
        if (existing.content.toLowerCase() === content.toLowerCase()) continue;
        const updated = await this.deps.storage.memories.update({
          ...existing,
          content,
          source,
          history: [
            ...existing.history,
            { content: existing.content, source: existing.source, replacedAt: now },
          ],
          updatedAt: now,
        });
        if (updated) written.push({ memory: updated, updated: true });
        continue;
      }
      const memory = await this.deps.storage.memories.create({
        id: this.deps.ids.next("mem"),
        botId,
        userId,
        key,
        content,
        source,
        history: [],
        createdAt: now,
        updatedAt: now,
      });
      written.push({ memory, updated: false });
    }
    return written;
  }

  list(botId: string, userId: string, page: PageOptions = {}): Promise<Page<Memory>> {
    return this.deps.storage.memories.list(
      botId,
      userId,
      parseInput(PageOptionsSchema, page, "page options"),
    );
  }

  async delete(botId: string, memoryId: string): Promise<void> {
    const deleted = await this.deps.storage.memories.delete(botId, memoryId);
    if (!deleted) throw new KiloError("NOT_FOUND", `Bot '${botId}' has no memory '${memoryId}'`);
  }
}

function terms(text: string): Set<string> {
  return new Set(tokenize(text).filter((token) => !isStopword(token)));
}

/** Options of {@link lexicalMemoryRetriever}. */
export interface LexicalMemoryRetrieverOptions {
  /** How many of the most recent memories are scored. Default 500. */
  scanLimit?: number;
}

/**
 * The default retriever: scores the most recently updated memories by word
 * overlap with the query (key words count double), then fills the remaining
 * slots with the most recent facts, which tend to matter to every turn.
 */
export function lexicalMemoryRetriever(
  storage: Storage,
  options: LexicalMemoryRetrieverOptions = {},
): MemoryRetriever {
  const scanLimit = options.scanLimit ?? 500;
  return {
    async retrieve(input: RetrieveInput): Promise<Memory[]> {
      if (input.limit <= 0) return [];
      const candidates: Memory[] = [];
      let cursor: string | null = null;
      do {
        const page: Page<Memory> = await storage.memories.list(input.botId, input.userId, {
          limit: Math.min(500, scanLimit - candidates.length),
          cursor,
        });
        candidates.push(...page.items);
        cursor = page.nextCursor;
      } while (cursor && candidates.length < scanLimit);
      const query = terms(input.query);
      const scored = candidates.map((memory, recency) => {
        let score = 0;
        for (const term of terms(memory.key)) if (query.has(term)) score += 2;
        for (const term of terms(memory.content)) if (query.has(term)) score += 1;
        return { memory, score, recency };
      });
      const relevant = scored
        .filter((entry) => entry.score > 0)
        .sort((a, b) => b.score - a.score || a.recency - b.recency)
        .slice(0, input.limit)
        .map((entry) => entry.memory);
      const chosen = new Set(relevant.map((memory) => memory.id));
      for (const memory of candidates) {
        if (relevant.length >= input.limit) break;
        if (!chosen.has(memory.id)) relevant.push(memory);
      }
      return relevant;
    },
  };
}
