import { LRUCache } from "lru-cache";
import type { Page, PageOptions } from "../domain/common.js";
import { PageOptionsSchema } from "../domain/common.js";
import type { Memory, MemorySource } from "../domain/memory.js";
import { KiloError } from "../errors.js";
import type { Clock, IdGenerator } from "../ports/clock.js";
import type {
  ExtractedFact,
  MemoryRetriever,
  RecalledMemories,
  RecallInput,
  RetrieveInput,
} from "../ports/memory.js";
import type { Storage } from "../ports/storage.js";
import { allPages } from "../runtime/pages.js";
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

  /**
   * Writes each fact under its normalised key: a new key is created, a known key with new content
   * is updated (the old value goes to `history`), a repeat is skipped. Returns only what was written.
   */
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

  /** One page of the bot's memories about the user, most recently updated first. */
  list(botId: string, userId: string, page: PageOptions = {}): Promise<Page<Memory>> {
    return this.deps.storage.memories.list(
      botId,
      userId,
      parseInput(PageOptionsSchema, page, "page options"),
    );
  }

  /** Forgets the memory. Throws `NOT_FOUND` when the bot has no such memory. */
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
  /** How many memories' tokenized words are kept between turns. Default 20,000. */
  termCacheSize?: number;
}

/**
 * The default retriever: scores the most recently updated memories by word
 * overlap with the query (key words count double). `retrieve` fills the
 * remaining slots with the most recent facts, which tend to matter to every
 * turn; `recall` returns those recent facts apart, as standing memories.
 */
export function lexicalMemoryRetriever(
  storage: Storage,
  options: LexicalMemoryRetrieverOptions = {},
): MemoryRetriever {
  const scanLimit = options.scanLimit ?? 500;
  // Tokenizing a few hundred memories costs more than the rest of a turn; a memory's words
  // change only when it is updated, so they are kept per (id, updatedAt).
  const termCache = new LRUCache<string, { key: Set<string>; content: Set<string> }>({
    max: options.termCacheSize ?? 20_000,
  });
  const termsOfMemory = (memory: Memory) => {
    const cacheKey = `${memory.id}:${memory.updatedAt.getTime()}`;
    let found = termCache.get(cacheKey);
    if (!found) {
      found = { key: terms(memory.key), content: terms(memory.content) };
      termCache.set(cacheKey, found);
    }
    return found;
  };

  const candidatesFor = (input: RetrieveInput): Promise<Memory[]> =>
    allPages(
      (cursor) =>
        storage.memories.list(input.botId, input.userId, { limit: Math.min(500, scanLimit), cursor }),
      scanLimit,
    );

  /**
   * Candidates that share words with the query, best first (ties: most recent
   * first). A shared word weighs by how rare it is among the candidates
   * (inverse document frequency), and a word most of them contain ("bakery"
   * in a bakery's memories) weighs nothing, so it cannot drag in every fact.
   */
  function rank(candidates: readonly Memory[], queryText: string, limit: number, skip: ReadonlySet<string>) {
    const query = terms(queryText);
    const termsOf = candidates.map(termsOfMemory);
    const frequency = new Map<string, number>();
    for (const term of query) {
      let found = 0;
      for (const { key, content } of termsOf) if (key.has(term) || content.has(term)) found += 1;
      if (found > 0) frequency.set(term, found);
    }
    const weight = (term: string) => {
      const found = frequency.get(term) ?? 0;
      return found === 0 || found * 2 > candidates.length ? 0 : Math.log(candidates.length / found) + 1;
    };
    return candidates
      .map((memory, recency) => {
        let score = 0;
        if (!skip.has(memory.id)) {
          const { key, content } = termsOf[recency]!;
          for (const term of query) {
            if (key.has(term)) score += 2 * weight(term);
            if (content.has(term)) score += weight(term);
          }
        }
        return { memory, score, recency };
      })
      .filter((entry) => entry.score > 0)
      .sort((a, b) => b.score - a.score || a.recency - b.recency)
      .slice(0, limit)
      .map((entry) => entry.memory);
  }

  return {
    async retrieve(input: RetrieveInput): Promise<Memory[]> {
      if (input.limit <= 0) return [];
      const candidates = await candidatesFor(input);
      const relevant = rank(candidates, input.query, input.limit, new Set());
      const chosen = new Set(relevant.map((memory) => memory.id));
      for (const memory of candidates) {
        if (relevant.length >= input.limit) break;
        if (!chosen.has(memory.id)) relevant.push(memory);
      }
      return relevant;
    },

    async recall(input: RecallInput): Promise<RecalledMemories> {
      if (input.limit <= 0 && input.standingLimit <= 0) return { standing: [], relevant: [] };
      const candidates = await candidatesFor(input);
      // Storage lists the most recently updated first: those are the standing facts.
      const standing = candidates.slice(0, Math.max(0, input.standingLimit));
      const skip = new Set(standing.map((memory) => memory.id));
      return { standing, relevant: rank(candidates, input.query, Math.max(0, input.limit), skip) };
    },
  };
}
