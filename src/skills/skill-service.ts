import { z } from "zod";
import { type CacheLoader, createCacheLoader } from "../cache/cache-loader.js";
import {
  type CreateSkillInput,
  CreateSkillInputSchema,
  type Skill,
  skillShapeProblems,
  type UpdateSkillInput,
  UpdateSkillInputSchema,
} from "../domain/skill.js";
import { KiloError } from "../errors.js";
import type { Clock, IdGenerator } from "../ports/clock.js";
import type { SkillCatalog } from "../ports/skill-matcher.js";
import type { Storage } from "../ports/storage.js";
import { parseInput } from "../runtime/validate.js";
import { parseSkillMarkdown } from "./markdown/skill-markdown-parser.js";
import type { SkillMarkdownWarning } from "./markdown/skill-markdown-rules.js";
import { suggestSkillName, validateSkillMarkdown } from "./markdown/skill-markdown-rules.js";
import { serializeSkillMarkdown } from "./markdown/skill-markdown-serializer.js";

/** Most characters of a SKILL.md that `importMarkdown` reads. */
export const SKILL_MARKDOWN_MAX_CHARS = 1_000_000;

/** A SKILL.md to import: its text, or its text and the path it was read from (for messages and the name rules). */
export type SkillMarkdownSource = string | { file: string; text: string };

const SkillMarkdownSourceSchema = z.union([
  z.string().max(SKILL_MARKDOWN_MAX_CHARS),
  z
    .object({
      file: z.string().trim().min(1).max(1000),
      text: z.string().max(SKILL_MARKDOWN_MAX_CHARS),
    })
    .strict(),
]);

/** What `importMarkdown` returns: the created skill and the rules its file breaks. */
export interface ImportedSkillMarkdown {
  skill: Skill;
  /** One per rule of the Agent Skills standard the file breaks; empty for a valid file. */
  warnings: SkillMarkdownWarning[];
}

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

  /**
   * Validates and stores a skill for the bot, then drops the bot's cached catalog.
   * Throws `VALIDATION_FAILED`, or `CONFLICT` when the bot has a skill of that name.
   */
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

  /** The bot's skill, read from storage (not the cache). Throws `NOT_FOUND`. */
  async get(botId: string, skillId: string): Promise<Skill> {
    const skill = await this.deps.storage.skills.get(botId, skillId);
    if (!skill) throw new KiloError("NOT_FOUND", `Bot '${botId}' has no skill '${skillId}'`);
    return skill;
  }

  /** All the bot's skills, active or not, oldest first. */
  list(botId: string): Promise<Skill[]> {
    return this.deps.storage.skills.listByBot(botId);
  }

  /**
   * Applies `patch`, re-validates the merged skill and drops the cached catalog.
   * Throws `NOT_FOUND`, `VALIDATION_FAILED` or `CONFLICT` (a name clash).
   */
  async update(botId: string, skillId: string, patch: UpdateSkillInput): Promise<Skill> {
    const parsed = parseInput(UpdateSkillInputSchema, patch, "skill update");
    const existing = await this.get(botId, skillId);
    if (parsed.name !== undefined) await this.assertNameFree(botId, parsed.name, skillId);
    const merged: Skill = { ...existing, ...definedOnly(parsed), updatedAt: this.deps.clock.now() };
    const problems = skillShapeProblems(merged);
    if (problems.length > 0) {
      throw new KiloError(
        "VALIDATION_FAILED",
        `Invalid skill update: ${problems.map((problem) => `${problem.path}: ${problem.message}`).join("; ")}`,
        { details: problems },
      );
    }
    const updated = await this.deps.storage.skills.update(merged);
    if (!updated) throw new KiloError("NOT_FOUND", `Bot '${botId}' has no skill '${skillId}'`);
    await this.invalidate(botId);
    return updated;
  }

  /** Deletes the skill with its records and drops the cached catalog. Throws `NOT_FOUND`. */
  async delete(botId: string, skillId: string): Promise<void> {
    const deleted = await this.deps.storage.skills.delete(botId, skillId);
    if (!deleted) throw new KiloError("NOT_FOUND", `Bot '${botId}' has no skill '${skillId}'`);
    await this.invalidate(botId);
  }

  /**
   * Creates a Markdown skill from a SKILL.md, read leniently (see
   * `parseSkillMarkdown`): a file breaking the Agent Skills standard is
   * imported with one warning per broken rule.
   *
   * @throws KiloError `VALIDATION_FAILED` (naming the file) when the file
   *   cannot be read, `CONFLICT` when the bot has a skill of that name.
   */
  async importMarkdown(botId: string, source: SkillMarkdownSource): Promise<ImportedSkillMarkdown> {
    const parsed = parseInput(SkillMarkdownSourceSchema, source, "SKILL.md source");
    const { file, text } = typeof parsed === "string" ? { file: undefined, text: parsed } : parsed;
    const { skill, warnings } = parseSkillMarkdown(text, { file });
    return { skill: await this.create(botId, skill), warnings };
  }

  /**
   * The skill as a SKILL.md that passes `validateSkillMarkdown` (LLMos-Lite's
   * category and keywords under `metadata`).
   *
   * @throws KiloError `NOT_FOUND` for an unknown skill; `VALIDATION_FAILED`
   *   for a structured skill, or a Markdown skill breaking the standard
   *   (a name like "Python Testing", a description over 1,024 characters),
   *   listing every rule broken.
   */
  async exportMarkdown(botId: string, skillId: string): Promise<string> {
    const skill = await this.get(botId, skillId);
    if (skill.markdown === undefined) {
      throw new KiloError(
        "VALIDATION_FAILED",
        `Skill '${skill.name}' (${skill.id}) is a structured skill; only Markdown skills export as SKILL.md`,
      );
    }
    const text = serializeSkillMarkdown({ ...skill, markdown: skill.markdown });
    const problems = validateSkillMarkdown(text, { file: "SKILL.md" });
    if (problems.length > 0) {
      const suggested = suggestSkillName(skill.name);
      const rename =
        problems.some((problem) => problem.rule.startsWith("name-")) && suggested !== null
          ? ` (rename the skill, e.g. to '${suggested}')`
          : "";
      throw new KiloError(
        "VALIDATION_FAILED",
        `Skill '${skill.name}' (${skill.id}) cannot be exported as a valid SKILL.md: ` +
          problems.map((problem) => `${problem.rule}: ${problem.message}`).join("; ") +
          rename,
        { details: problems },
      );
    }
    return text;
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
