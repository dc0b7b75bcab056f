import { z } from "zod";
import { type CacheLoader, createCacheLoader } from "../cache/cache-loader.js";
import { type Page, type PageOptions, PageOptionsSchema } from "../domain/common.js";
import {
  type CreateSkillInput,
  CreateSkillInputSchema,
  type Skill,
  skillShapeProblems,
  type UpdateSkillInput,
  UpdateSkillInputSchema,
} from "../domain/skill.js";
import type { SkillVersion } from "../domain/skill-version.js";
import { KiloError } from "../errors.js";
import type { Clock, IdGenerator } from "../ports/clock.js";
import type { SkillCatalog } from "../ports/skill-matcher.js";
import type { SkillVersionRepository, Storage, StorageRepositories } from "../ports/storage.js";
import { parseInput } from "../runtime/validate.js";
import { parseSkillMarkdown } from "./markdown/skill-markdown-parser.js";
import type { SkillMarkdownWarning } from "./markdown/skill-markdown-rules.js";
import { suggestSkillName, validateSkillMarkdown } from "./markdown/skill-markdown-rules.js";
import { serializeSkillMarkdown } from "./markdown/skill-markdown-serializer.js";
import { skillSnapshot, skillVersionDiff } from "./skill-versions.js";

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

/**
 * Who makes a change to a skill and why, recorded in the version the change
 * writes (see {@link SkillVersion}). Accepted by `create`, `update`,
 * `importMarkdown` and `rollback`.
 */
export interface SkillChangeOptions {
  /** A user id, `"system"` or `"evolution"` (1–128 characters). Default: the id of the bot's owner. */
  author?: string | undefined;
  /** Why the change was made (at most 2,000 characters). Default: none (`null`); a rollback says which version it restored. */
  reason?: string | undefined;
}

const SkillChangeOptionsSchema = z
  .object({
    author: z.string().trim().min(1).max(128).optional(),
    reason: z.string().max(2000).optional(),
  })
  .strict();

const VersionNumberSchema = z.number().int().min(1);

type SkillChange = z.output<typeof SkillChangeOptionsSchema>;

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
   * Validates and stores a skill for the bot (and its version 1, when the
   * storage keeps versions), then drops the bot's cached catalog.
   * Throws `VALIDATION_FAILED`, or `CONFLICT` when the bot has a skill of that name.
   */
  async create(botId: string, input: CreateSkillInput, options: SkillChangeOptions = {}): Promise<Skill> {
    const parsed = parseInput(CreateSkillInputSchema, input, "skill");
    const change = parseInput(SkillChangeOptionsSchema, options, "skill change options");
    await this.assertNameFree(botId, parsed.name, null);
    const now = this.deps.clock.now();
    const skill = await this.save(botId, change, (repositories) =>
      repositories.skills.create({
        ...parsed,
        id: parsed.id ?? this.deps.ids.next("skill"),
        botId,
        createdAt: now,
        updatedAt: now,
      }),
    );
    await this.invalidate(botId);
    return skill!;
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
   * Applies `patch`, re-validates the merged skill, writes a new version
   * (when the storage keeps versions) and drops the cached catalog.
   * Throws `NOT_FOUND`, `VALIDATION_FAILED` or `CONFLICT` (a name clash).
   */
  async update(
    botId: string,
    skillId: string,
    patch: UpdateSkillInput,
    options: SkillChangeOptions = {},
  ): Promise<Skill> {
    const parsed = parseInput(UpdateSkillInputSchema, patch, "skill update");
    const change = parseInput(SkillChangeOptionsSchema, options, "skill change options");
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
    const updated = await this.save(botId, change, (repositories) => repositories.skills.update(merged));
    if (!updated) throw new KiloError("NOT_FOUND", `Bot '${botId}' has no skill '${skillId}'`);
    await this.invalidate(botId);
    return updated;
  }

  /**
   * The skill's versions, newest first, paged (`limit` 1–500, default 50).
   *
   * @throws KiloError `NOT_FOUND` for an unknown skill (or another bot's);
   *   `CONFIGURATION_INVALID` when the storage keeps no versions (it has no
   *   `skillVersions` repository).
   */
  async history(botId: string, skillId: string, page: PageOptions = {}): Promise<Page<SkillVersion>> {
    const options = parseInput(PageOptionsSchema, page, "page options");
    const versions = this.versions();
    await this.get(botId, skillId);
    return versions.list(botId, skillId, options);
  }

  /**
   * One version of the skill.
   *
   * @throws KiloError `NOT_FOUND` for an unknown skill or version;
   *   `CONFIGURATION_INVALID` when the storage keeps no versions.
   */
  async version(botId: string, skillId: string, version: number): Promise<SkillVersion> {
    const number = parseInput(VersionNumberSchema, version, "skill version number");
    const versions = this.versions();
    await this.get(botId, skillId);
    const found = await versions.get(botId, skillId, number);
    if (!found)
      throw new KiloError("NOT_FOUND", `Skill '${skillId}' of bot '${botId}' has no version ${number}`);
    return found;
  }

  /**
   * Restores the content of one of the skill's versions as a new version
   * (history is never rewritten: rolling back from version 3 to 1 writes
   * version 4, equal in content to version 1). The restored skill is
   * validated like an update; the reason defaults to "Rollback to version N".
   *
   * @throws KiloError `NOT_FOUND` for an unknown skill or version;
   *   `VALIDATION_FAILED`, changing nothing, when the old content no longer
   *   validates (another skill of the bot has taken its name, say);
   *   `CONFIGURATION_INVALID` when the storage keeps no versions.
   */
  async rollback(
    botId: string,
    skillId: string,
    version: number,
    options: SkillChangeOptions = {},
  ): Promise<Skill> {
    const change = parseInput(SkillChangeOptionsSchema, options, "skill change options");
    const target = await this.version(botId, skillId, version);
    const existing = await this.get(botId, skillId);
    const checked = CreateSkillInputSchema.safeParse(target.snapshot);
    if (!checked.success) {
      throw new KiloError(
        "VALIDATION_FAILED",
        `Version ${target.version} of skill '${skillId}' no longer validates: ${checked.error.issues
          .map((issue) => `${issue.path.join(".")}: ${issue.message}`)
          .join("; ")}`,
        { details: checked.error.issues },
      );
    }
    try {
      await this.assertNameFree(botId, checked.data.name, skillId);
    } catch (error) {
      if (!KiloError.is(error, "CONFLICT")) throw error;
      throw new KiloError(
        "VALIDATION_FAILED",
        `Cannot roll skill '${skillId}' back to version ${target.version}: ${error.message}`,
        { cause: error, details: [{ path: "name", message: error.message }] },
      );
    }
    const { id: _id, ...content } = checked.data;
    const restored: Skill = {
      ...content,
      id: existing.id,
      botId: existing.botId,
      createdAt: existing.createdAt,
      updatedAt: this.deps.clock.now(),
    };
    const reason = change.reason ?? `Rollback to version ${target.version}`;
    const updated = await this.save(botId, { ...change, reason }, (repositories) =>
      repositories.skills.update(restored),
    );
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
  async importMarkdown(
    botId: string,
    source: SkillMarkdownSource,
    options: SkillChangeOptions = {},
  ): Promise<ImportedSkillMarkdown> {
    const parsed = parseInput(SkillMarkdownSourceSchema, source, "SKILL.md source");
    const { file, text } = typeof parsed === "string" ? { file: undefined, text: parsed } : parsed;
    const { skill, warnings } = parseSkillMarkdown(text, { file });
    return { skill: await this.create(botId, skill, options), warnings };
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

  /** The storage's versions, or `CONFIGURATION_INVALID` when it keeps none. */
  private versions(): SkillVersionRepository {
    const versions = this.deps.storage.skillVersions;
    if (!versions) {
      throw new KiloError(
        "CONFIGURATION_INVALID",
        `Storage adapter '${this.deps.storage.name}' keeps no skill versions (it has no \`skillVersions\` repository), so skills have no history`,
      );
    }
    return versions;
  }

  /**
   * Writes a skill through `write` and, when the storage keeps versions,
   * appends the version it makes in the same transaction (so a failed
   * append leaves the skill unchanged, and two racing changes cannot both
   * take one version number). Returns what `write` returned.
   */
  private async save(
    botId: string,
    change: SkillChange,
    write: (repositories: StorageRepositories) => Promise<Skill | null>,
  ): Promise<Skill | null> {
    const storage = this.deps.storage;
    if (!storage.skillVersions) return write(storage);
    const author = change.author ?? (await storage.bots.get(botId))?.userId ?? "system";
    return storage.transaction(async (tx) => {
      const skill = await write(tx);
      if (!skill || !tx.skillVersions) return skill;
      const [latest] = (await tx.skillVersions.list(botId, skill.id, { limit: 1 })).items;
      const next = { version: (latest?.version ?? 0) + 1, snapshot: skillSnapshot(skill) };
      await tx.skillVersions.append({
        id: this.deps.ids.next("skillver"),
        skillId: skill.id,
        botId,
        version: next.version,
        snapshot: next.snapshot,
        author,
        reason: change.reason ?? null,
        diff: skillVersionDiff(latest ?? null, next),
        createdAt: skill.updatedAt,
      });
      return skill;
    });
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
