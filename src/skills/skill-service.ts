import { type CacheLoader, createCacheLoader } from "../cache/cache-loader.js";
import {
  type CreateSkillInput,
  CreateSkillInputSchema,
  type Skill,
  type UpdateSkillInput,
  UpdateSkillInputSchema,
} from "../domain/skill.js";
import { KiloError } from "../errors.js";
import type { Clock, IdGenerator } from "../ports/clock.js";
import type { SkillCatalog } from "../ports/skill-matcher.js";
import type { Storage } from "../ports/storage.js";
import { parseInput } from "../runtime/validate.js";

/** Dependencies of {@link SkillService}. */
export interface SkillServiceDependencies {
  storage: Storage;
  clock: Clock;
  ids: IdGenerator;
  /** The cache-first loader the catalog is read through. Default: an in-process one of its own. */
  cache?: CacheLoader;
}

/**
 * Skill CRUD with validation, plus the per-bot catalog of active skills the
 * matcher reads. The catalog is read cache-first (see {@link CacheLoader}),
 * every write drops it in every process, and its key changes whenever it is
 * reloaded, so matchers can cache their indexes by key.
 */
export class SkillService {
  private readonly cache: CacheLoader;

  constructor(private readonly deps: SkillServiceDependencies) {
    this.cache = deps.cache ?? createCacheLoader({ storage: deps.storage });
  }

  async create(botId: string, input: CreateSkillInput): Promise<Skill> {
    const parsed = parseInput(CreateSkillInputSchema, input, "skill");
    await this.assertNameFree(botId, parsed.name, null);
    const now = this.deps.clock.now();
    const skill = await this.deps.storage.skills.create({
      ...parsed,
      id: parsed.id ?? this.deps.ids.next("skill"),
      botId,
      createdAt: now,
      updatedAt: now,
    });
    await this.invalidate(botId);
    return skill;
  }

  async get(botId: string, skillId: string): Promise<Skill> {
    const skill = await this.deps.storage.skills.get(botId, skillId);
    if (!skill) throw new KiloError("NOT_FOUND", `Bot '${botId}' has no skill '${skillId}'`);
    return skill;
  }

  list(botId: string): Promise<Skill[]> {
    return this.deps.storage.skills.listByBot(botId);
  }

  async update(botId: string, skillId: string, patch: UpdateSkillInput): Promise<Skill> {
    const parsed = parseInput(UpdateSkillInputSchema, patch, "skill update");
    const existing = await this.get(botId, skillId);
    if (parsed.name !== undefined) await this.assertNameFree(botId, parsed.name, skillId);
    const updated = await this.deps.storage.skills.update({
      ...existing,
      ...definedOnly(parsed),
      updatedAt: this.deps.clock.now(),
    });
    if (!updated) throw new KiloError("NOT_FOUND", `Bot '${botId}' has no skill '${skillId}'`);
    await this.invalidate(botId);
    return updated;
  }

  async delete(botId: string, skillId: string): Promise<void> {
    const deleted = await this.deps.storage.skills.delete(botId, skillId);
    if (!deleted) throw new KiloError("NOT_FOUND", `Bot '${botId}' has no skill '${skillId}'`);
    await this.invalidate(botId);
  }

  /** The bot's active skills, cache-first; reloaded after any skill write (in any process sharing the cache). */
  catalog(botId: string): Promise<SkillCatalog> {
    return this.cache.catalog(botId);
  }

  /** Drops the cached catalog of a bot in every tier and process (after any write to its skills). */
  invalidate(botId: string): Promise<void> {
    return this.cache.invalidateSkills(botId);
  }

  private async assertNameFree(botId: string, name: string, exceptId: string | null): Promise<void> {
    const wanted = name.trim().toLowerCase();
    const clash = (await this.deps.storage.skills.listByBot(botId)).find(
      (skill) => skill.name.trim().toLowerCase() === wanted && skill.id !== exceptId,
    );
    if (clash) {
      throw new KiloError(
        "CONFLICT",
        `Bot '${botId}' already has a skill named '${clash.name}' (${clash.id})`,
      );
    }
  }
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
