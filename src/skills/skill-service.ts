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
}

/**
 * Skill CRUD with validation, plus the per-bot catalog of active skills the
 * matcher reads. The catalog is cached and its key changes on every write,
 * so matchers can cache their indexes by key.
 */
export class SkillService {
  private readonly catalogs = new Map<string, SkillCatalog>();
  private readonly versions = new Map<string, number>();
  private readonly nonce = globalThis.crypto.randomUUID().slice(0, 8);

  constructor(private readonly deps: SkillServiceDependencies) {}

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
    this.invalidate(botId);
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
    this.invalidate(botId);
    return updated;
  }

  async delete(botId: string, skillId: string): Promise<void> {
    const deleted = await this.deps.storage.skills.delete(botId, skillId);
    if (!deleted) throw new KiloError("NOT_FOUND", `Bot '${botId}' has no skill '${skillId}'`);
    this.invalidate(botId);
  }

  /** The bot's active skills, cached until the next skill write. */
  async catalog(botId: string): Promise<SkillCatalog> {
    const cached = this.catalogs.get(botId);
    if (cached) return cached;
    const version = this.versions.get(botId) ?? 0;
    const skills = (await this.deps.storage.skills.listByBot(botId)).filter(
      (skill) => skill.status === "active",
    );
    const catalog = { key: `${botId}:${this.nonce}:${version}`, skills };
    // A write that raced this load bumped the version: don't cache a stale list.
    if ((this.versions.get(botId) ?? 0) === version) this.catalogs.set(botId, catalog);
    return catalog;
  }

  /** Drops the cached catalog of a bot (after any write to its skills). */
  invalidate(botId: string): void {
    this.catalogs.delete(botId);
    this.versions.set(botId, (this.versions.get(botId) ?? 0) + 1);
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
