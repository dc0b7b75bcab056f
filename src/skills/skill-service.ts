import { z } from "zod";
import { type CacheLoader, createCacheLoader } from "../cache/cache-loader.js";
import { type Actor, ActorSchema } from "../domain/actor.js";
import type { Bot } from "../domain/bot.js";
import { IdSchema, type Page, type PageOptions, PageOptionsSchema } from "../domain/common.js";
import {
  botScopes,
  ownerScope,
  type SkillOwner,
  type SkillScope,
  SkillScopeSchema,
} from "../domain/scope.js";
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
import type { Logger } from "../ports/logger.js";
import type { SkillCatalog } from "../ports/skill-matcher.js";
import type { SkillVolume, SkillVolumeVersion } from "../ports/skill-volume.js";
import type { SkillVersionRepository, Storage, StorageRepositories } from "../ports/storage.js";
import { silentLogger } from "../runtime/logger.js";
import { parseInput } from "../runtime/validate.js";
import { type EffectiveSkill, resolveEffectiveSkills } from "./effective-skills.js";
import { parseSkillMarkdown, SKILL_MARKDOWN_MAX_CHARS } from "./markdown/skill-markdown-parser.js";
import type { SkillMarkdownWarning } from "./markdown/skill-markdown-rules.js";
import { suggestSkillName, validateSkillMarkdown } from "./markdown/skill-markdown-rules.js";
import { serializeSkillMarkdown } from "./markdown/skill-markdown-serializer.js";
import { describeScope, ScopeAccess } from "./scope-access.js";
import { skillSnapshot, skillVersionDiff } from "./skill-versions.js";
import { SkillVolumeLink, type SkillVolumeSyncReport } from "./skill-volume-link.js";

export { SKILL_MARKDOWN_MAX_CHARS };

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
 * writes (see {@link SkillVersion}), and the user the change is made for.
 * Accepted by `create`, `update`, `importMarkdown` and `rollback`.
 */
export interface SkillChangeOptions {
  /**
   * A user id, `"system"` or `"evolution"` (1–128 characters). Default: the
   * actor's user id; without an actor, the bot's owner for a bot skill, the
   * user for a user skill, and `"system"` for a team or system skill.
   */
  author?: string | undefined;
  /** Why the change was made (at most 2,000 characters). Default: none (`null`); a rollback says which version it restored. */
  reason?: string | undefined;
  /**
   * The user the change is made for. With it kilo checks the scope's rules
   * (their own user scope and their bots' skills, a team's only as its
   * admin, never the system's; `FORBIDDEN` otherwise). Without it the host
   * is trusted.
   */
  actor?: Actor | undefined;
}

/** Options of the reads of `kilo.skills` (`get`, `list`, `history`, ...) and of `delete`. */
export interface SkillAccessOptions {
  /**
   * The user the call is made for: a read needs a scope they see, a delete
   * one they may change (`FORBIDDEN` otherwise). Without it the host is trusted.
   */
  actor?: Actor | undefined;
}

const SkillChangeOptionsSchema = z
  .object({
    author: z.string().trim().min(1).max(128).optional(),
    reason: z.string().max(2000).optional(),
    actor: ActorSchema.optional(),
  })
  .strict();

const SkillAccessOptionsSchema = z.object({ actor: ActorSchema.optional() }).strict();

const VersionNumberSchema = z.number().int().min(1);

const VolumeHistoryOptionsSchema = z
  .object({ actor: ActorSchema.optional(), limit: z.number().int().min(1).max(1000).optional() })
  .strict();

/** A volume version: a git commit id (full or abbreviated hex). */
const CommitIdSchema = z.string().regex(/^[0-9a-f]{4,64}$/i, "must be a version (commit) id");

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
  /** Who may read and write which scope. Default: one over `storage` and `cache`. */
  access?: ScopeAccess;
  /**
   * A volume (the git volume, say) that gets one version per change to a
   * Markdown skill, and whose hand edits `syncVolume` imports. Default: none.
   */
  volume?: SkillVolume | undefined;
  /** Where volume failures are logged (a change is stored even when its volume write fails). */
  logger?: Logger | undefined;
}

/** Effective catalogs kept per bot (the matcher caches its index by the catalog's key). */
const MAX_MEMOIZED_CATALOGS = 1000;

/**
 * Skill CRUD with validation in every scope (a bot's own skills, a user's, a
 * team's, the system's), plus the catalog the matcher reads: the bot's
 * effective set of active skills. Scope catalogs are read cache-first (see
 * {@link CacheLoader}), every write drops its scope's catalog in every
 * process, and a bot's catalog key changes whenever one of its scopes'
 * catalogs is reloaded, so matchers can cache their indexes by key.
 */
export class SkillService {
  private readonly cache: CacheLoader;
  private readonly access: ScopeAccess;
  private readonly catalogs = new Map<string, SkillCatalog>();
  private readonly link: SkillVolumeLink | null;

  constructor(private readonly deps: SkillServiceDependencies) {
    this.cache = deps.cache ?? createCacheLoader({ storage: deps.storage });
    this.access = deps.access ?? new ScopeAccess({ storage: deps.storage, cache: this.cache });
    this.link = deps.volume
      ? new SkillVolumeLink(
          deps.volume,
          {
            listScope: (scope) => this.listScope(scope),
            find: (scope, skillId) => this.find(scope, skillId),
            create: (scope, skill, change) => this.create(scope, skill, change),
            update: (scope, skillId, patch, change) => this.update(scope, skillId, patch, change),
            delete: (scope, skillId) => this.delete(scope, skillId),
          },
          deps.logger ?? silentLogger(),
        )
      : null;
  }

  /** Whether the storage keeps skills of every scope (its skills have `listByScopes`), not only bots'. */
  get scoped(): boolean {
    return typeof this.deps.storage.skills.listByScopes === "function";
  }

  /**
   * Validates and stores a skill in the owner's scope (and its version 1,
   * when the storage keeps versions), then drops the scope's cached catalog.
   * Throws `VALIDATION_FAILED`, `CONFLICT` when the scope has a skill of
   * that name, `NOT_FOUND` for an unknown bot or team, or `FORBIDDEN` when
   * the actor may not write the scope.
   */
  async create(owner: SkillOwner, input: CreateSkillInput, options: SkillChangeOptions = {}): Promise<Skill> {
    const parsed = parseInput(CreateSkillInputSchema, input, "skill");
    const change = parseInput(SkillChangeOptionsSchema, options, "skill change options");
    const scope = this.scopeOf(owner);
    await this.access.assertWrite(change.actor, scope);
    await this.assertNameFree(scope, parsed.name, null);
    const now = this.deps.clock.now();
    const skill = await this.save(scope, change, async (repositories) => {
      // A user scope names a user: record them, as creating a bot does.
      if (scope.kind === "user") {
        await repositories.users.upsert({ id: scope.id, name: null, metadata: {}, createdAt: now });
      }
      return repositories.skills.create({
        ...parsed,
        id: parsed.id ?? this.deps.ids.next("skill"),
        botId: scope.kind === "bot" ? scope.id : null,
        scope,
        createdAt: now,
        updatedAt: now,
      });
    });
    await this.invalidate(scope);
    await this.mirror(scope, skill!, null, change);
    return skill!;
  }

  /** The skill of the owner's scope, read from storage (not the cache). Throws `NOT_FOUND` or `FORBIDDEN`. */
  async get(owner: SkillOwner, skillId: string, options: SkillAccessOptions = {}): Promise<Skill> {
    const { actor } = parseInput(SkillAccessOptionsSchema, options, "skill options");
    const scope = this.scopeOf(owner);
    if (actor) await this.access.assertRead(actor, scope);
    return this.find(scope, skillId);
  }

  /** All the skills of the owner's scope, active or not, oldest first. Throws `NOT_FOUND` for an unknown bot or team. */
  async list(owner: SkillOwner, options: SkillAccessOptions = {}): Promise<Skill[]> {
    const { actor } = parseInput(SkillAccessOptionsSchema, options, "skill options");
    const scope = this.scopeOf(owner);
    await this.access.assertRead(actor, scope);
    return this.listScope(scope);
  }

  /**
   * Applies `patch`, re-validates the merged skill, writes a new version
   * (when the storage keeps versions) and drops the scope's cached catalog.
   * Throws `NOT_FOUND`, `VALIDATION_FAILED`, `CONFLICT` (a name clash) or `FORBIDDEN`.
   */
  async update(
    owner: SkillOwner,
    skillId: string,
    patch: UpdateSkillInput,
    options: SkillChangeOptions = {},
  ): Promise<Skill> {
    const parsed = parseInput(UpdateSkillInputSchema, patch, "skill update");
    const change = parseInput(SkillChangeOptionsSchema, options, "skill change options");
    const scope = this.scopeOf(owner);
    if (change.actor) await this.access.assertWrite(change.actor, scope);
    const existing = await this.find(scope, skillId);
    if (parsed.name !== undefined) await this.assertNameFree(scope, parsed.name, skillId);
    const merged: Skill = { ...existing, ...definedOnly(parsed), updatedAt: this.deps.clock.now() };
    const problems = skillShapeProblems(merged);
    if (problems.length > 0) {
      throw new KiloError(
        "VALIDATION_FAILED",
        `Invalid skill update: ${problems.map((problem) => `${problem.path}: ${problem.message}`).join("; ")}`,
        { details: problems },
      );
    }
    const updated = await this.save(scope, change, (repositories) => repositories.skills.update(merged));
    if (!updated) throw notFound(scope, skillId);
    await this.invalidate(scope);
    await this.mirror(scope, updated, existing, change);
    return updated;
  }

  /**
   * The skill's versions, newest first, paged (`limit` 1–500, default 50).
   *
   * @throws KiloError `NOT_FOUND` for an unknown skill (or one of another
   *   scope); `FORBIDDEN` when the actor may not read the scope;
   *   `CONFIGURATION_INVALID` when the storage keeps no versions (it has no
   *   `skillVersions` repository).
   */
  async history(
    owner: SkillOwner,
    skillId: string,
    page: PageOptions = {},
    options: SkillAccessOptions = {},
  ): Promise<Page<SkillVersion>> {
    const pageOptions = parseInput(PageOptionsSchema, page, "page options");
    const { actor } = parseInput(SkillAccessOptionsSchema, options, "skill options");
    const scope = this.scopeOf(owner);
    const versions = this.versions();
    if (actor) await this.access.assertRead(actor, scope);
    await this.find(scope, skillId);
    return versions.list(storageOwner(scope), skillId, pageOptions);
  }

  /**
   * One version of the skill.
   *
   * @throws KiloError `NOT_FOUND` for an unknown skill or version;
   *   `FORBIDDEN`; `CONFIGURATION_INVALID` when the storage keeps no versions.
   */
  async version(
    owner: SkillOwner,
    skillId: string,
    version: number,
    options: SkillAccessOptions = {},
  ): Promise<SkillVersion> {
    const number = parseInput(VersionNumberSchema, version, "skill version number");
    const { actor } = parseInput(SkillAccessOptionsSchema, options, "skill options");
    const scope = this.scopeOf(owner);
    const versions = this.versions();
    if (actor) await this.access.assertRead(actor, scope);
    await this.find(scope, skillId);
    const found = await versions.get(storageOwner(scope), skillId, number);
    if (!found) {
      throw new KiloError(
        "NOT_FOUND",
        `Skill '${skillId}' of ${describeScope(scope)} has no version ${number}`,
      );
    }
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
   *   validates (another skill of the scope has taken its name, say);
   *   `FORBIDDEN`; `CONFIGURATION_INVALID` when the storage keeps no versions.
   */
  async rollback(
    owner: SkillOwner,
    skillId: string,
    version: number,
    options: SkillChangeOptions = {},
  ): Promise<Skill> {
    const change = parseInput(SkillChangeOptionsSchema, options, "skill change options");
    const scope = this.scopeOf(owner);
    if (change.actor) await this.access.assertWrite(change.actor, scope);
    const target = await this.version(scope, skillId, version);
    const existing = await this.find(scope, skillId);
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
      await this.assertNameFree(scope, checked.data.name, skillId);
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
      scope: existing.scope,
      createdAt: existing.createdAt,
      updatedAt: this.deps.clock.now(),
    };
    const reason = change.reason ?? `Rollback to version ${target.version}`;
    const updated = await this.save(scope, { ...change, reason }, (repositories) =>
      repositories.skills.update(restored),
    );
    if (!updated) throw notFound(scope, skillId);
    await this.invalidate(scope);
    await this.mirror(scope, updated, existing, { ...change, reason });
    return updated;
  }

  /**
   * Deletes the skill with its versions and records (every bot's, for a
   * shared skill) and drops the scope's cached catalog. Throws `NOT_FOUND` or `FORBIDDEN`.
   */
  async delete(owner: SkillOwner, skillId: string, options: SkillAccessOptions = {}): Promise<void> {
    const { actor } = parseInput(SkillAccessOptionsSchema, options, "skill options");
    const scope = this.scopeOf(owner);
    if (actor) await this.access.assertWrite(actor, scope);
    const existing = this.link ? await this.deps.storage.skills.get(storageOwner(scope), skillId) : null;
    const deleted = await this.deps.storage.skills.delete(storageOwner(scope), skillId);
    if (!deleted) throw notFound(scope, skillId);
    await this.invalidate(scope);
    if (this.link && existing) {
      const author = actor?.userId ?? (await this.defaultAuthor(scope));
      await this.link.removed(scope, existing, {
        author: { name: author },
        reason: `Delete ${existing.name}`,
      });
    }
  }

  /**
   * Imports what people changed on the volume by hand for one scope (edited,
   * added or deleted SKILL.md folders, hand commits): each change becomes a
   * skill version authored by its commit's author. Changes that cannot be
   * imported (a SKILL.md that does not parse, a name clash) are reported and
   * tried again on the next sync. Throws `CONFIGURATION_INVALID` without a
   * volume, `FORBIDDEN` when the actor may not write the scope.
   */
  async syncVolume(owner: SkillOwner, options: SkillAccessOptions = {}): Promise<SkillVolumeSyncReport> {
    const { actor } = parseInput(SkillAccessOptionsSchema, options, "skill options");
    const scope = this.scopeOf(owner);
    if (actor) await this.access.assertWrite(actor, scope);
    return this.volumeLink().sync(scope);
  }

  /**
   * The skill's history as the volume keeps it (git commits, newest first,
   * each with its SKILL.md diff), hand commits included. Throws
   * `CONFIGURATION_INVALID` without a volume, `VALIDATION_FAILED` for a skill
   * the volume does not keep (structured skills), `NOT_FOUND`, `FORBIDDEN`.
   */
  async volumeHistory(
    owner: SkillOwner,
    skillId: string,
    options: SkillAccessOptions & { limit?: number | undefined } = {},
  ): Promise<SkillVolumeVersion[]> {
    const { actor, limit } = parseInput(VolumeHistoryOptionsSchema, options, "volume history options");
    const scope = this.scopeOf(owner);
    if (actor) await this.access.assertRead(actor, scope);
    return this.volumeLink().history(scope, skillId, limit);
  }

  /**
   * Rolls the skill back to a volume version (a commit id from
   * {@link volumeHistory}): the volume writes the old folder as a new
   * version, and storage imports it as a new skill version. Returns the
   * skill as stored afterwards.
   */
  async volumeRollback(
    owner: SkillOwner,
    skillId: string,
    version: string,
    options: SkillChangeOptions = {},
  ): Promise<Skill> {
    const change = parseInput(SkillChangeOptionsSchema, options, "skill change options");
    const scope = this.scopeOf(owner);
    if (change.actor) await this.access.assertWrite(change.actor, scope);
    const author = change.author ?? change.actor?.userId ?? (await this.defaultAuthor(scope));
    return this.volumeLink().rollback(scope, skillId, parseInput(CommitIdSchema, version, "volume version"), {
      author: { name: author },
      ...(change.reason === undefined ? {} : { reason: change.reason }),
    });
  }

  private volumeLink(): SkillVolumeLink {
    if (!this.link) {
      throw new KiloError(
        "CONFIGURATION_INVALID",
        "No skill volume is configured: pass createKilo({ volume }) (e.g. gitVolume from kilo/volumes/git)",
      );
    }
    return this.link;
  }

  /**
   * Mirrors a change stored outside this service's writes (an approved
   * promotion) to the volume, when there is one; a no-op otherwise.
   */
  mirrorChange(scope: SkillScope, skill: Skill, change: { author: string; reason?: string | undefined }) {
    return this.mirror(scope, skill, null, change);
  }

  /** Mirrors a stored change to the volume, when there is one. */
  private async mirror(scope: SkillScope, skill: Skill, previous: Skill | null, change: SkillChange) {
    if (!this.link) return;
    const author = change.author ?? change.actor?.userId ?? (await this.defaultAuthor(scope));
    await this.link.saved(scope, skill, previous, {
      author: { name: author },
      ...(change.reason === undefined ? {} : { reason: change.reason }),
    });
  }

  /**
   * Creates a Markdown skill from a SKILL.md, read leniently (see
   * `parseSkillMarkdown`): a file breaking the Agent Skills standard is
   * imported with one warning per broken rule.
   *
   * @throws KiloError `VALIDATION_FAILED` (naming the file) when the file
   *   cannot be read, `CONFLICT` when the scope has a skill of that name,
   *   `FORBIDDEN` when the actor may not write the scope.
   */
  async importMarkdown(
    owner: SkillOwner,
    source: SkillMarkdownSource,
    options: SkillChangeOptions = {},
  ): Promise<ImportedSkillMarkdown> {
    const parsed = parseInput(SkillMarkdownSourceSchema, source, "SKILL.md source");
    const { file, text } = typeof parsed === "string" ? { file: undefined, text: parsed } : parsed;
    const { skill, warnings } = parseSkillMarkdown(text, { file });
    return { skill: await this.create(owner, skill, options), warnings };
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
  async exportMarkdown(
    owner: SkillOwner,
    skillId: string,
    options: SkillAccessOptions = {},
  ): Promise<string> {
    const skill = await this.get(owner, skillId, options);
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

  /**
   * What the bot sees, read from storage: the active skills of the system,
   * its team, its owner and its own, one per name (the most specific scope
   * wins), each with the skills it shadows. The same set, in the same order,
   * as the catalog the matcher reads. Throws `NOT_FOUND` for an unknown bot
   * (or another user's, with an actor).
   */
  async effective(botId: string, options: SkillAccessOptions = {}): Promise<EffectiveSkill[]> {
    const { actor } = parseInput(SkillAccessOptionsSchema, options, "skill options");
    const bot = await this.access.bot(botId, actor);
    const skills = this.scoped
      ? await this.deps.storage.skills.listByScopes!(botScopes(bot))
      : await this.deps.storage.skills.listByBot(bot.id);
    return resolveEffectiveSkills(skills.map(withScope).filter((skill) => skill.status === "active"));
  }

  /**
   * A skill the bot sees, by id, in any status: its own, its owner's, its
   * team's or the system's (what `kilo.records` works on). Throws `NOT_FOUND`.
   */
  async visible(botId: string, skillId: string): Promise<Skill> {
    const own = await this.deps.storage.skills.get(botId, skillId);
    if (own) return withScope(own);
    const bot = this.scoped ? await this.cache.bot(botId) : null;
    if (bot) {
      const shared = botScopes(bot).filter((scope) => scope.kind !== "bot");
      const found = (await this.deps.storage.skills.listByScopes!(shared)).find(
        (skill) => skill.id === skillId,
      );
      if (found) return found;
    }
    throw new KiloError("NOT_FOUND", `Bot '${botId}' has no skill '${skillId}'`);
  }

  /**
   * The bot's effective catalog, cache-first: the active skills of its
   * scopes, one per name (see {@link effective}). Its key changes whenever
   * a skill of any of the bot's scopes is written (in any process sharing
   * the cache) or the bot moves to another team.
   */
  async catalog(bot: Bot | string): Promise<SkillCatalog> {
    const botId = typeof bot === "string" ? bot : bot.id;
    if (!this.scoped) return this.cache.catalog(botId);
    const resolved = typeof bot === "string" ? await this.cache.bot(bot) : bot;
    if (!resolved) return this.cache.catalog(botId);
    const catalogs = await this.cache.scopeCatalogs(botScopes(resolved));
    const key = catalogs.map((catalog) => catalog.key).join("|");
    const memo = this.catalogs.get(botId);
    if (memo?.key === key) return memo;
    // The same object for the same key: downstream caches (tool definitions) are keyed by it.
    const catalog: SkillCatalog = {
      key,
      skills: resolveEffectiveSkills(catalogs.flatMap((entry) => entry.skills)).map(({ skill }) => skill),
    };
    this.catalogs.delete(botId);
    this.catalogs.set(botId, catalog);
    if (this.catalogs.size > MAX_MEMOIZED_CATALOGS) this.catalogs.delete(this.catalogs.keys().next().value!);
    return catalog;
  }

  /** Drops the cached catalog of the owner's scope in every tier and process (after any write to its skills). */
  invalidate(owner: SkillOwner): Promise<void> {
    return this.cache.invalidateScope(ownerScope(owner));
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

  /** The validated scope an owner names; `CONFIGURATION_INVALID` for a shared scope the storage cannot keep. */
  private scopeOf(owner: SkillOwner): SkillScope {
    const scope: SkillScope =
      typeof owner === "string"
        ? { kind: "bot", id: parseInput(IdSchema, owner, "bot id") }
        : parseInput(SkillScopeSchema, owner, "skill scope");
    if (scope.kind !== "bot" && !this.scoped) {
      throw new KiloError(
        "CONFIGURATION_INVALID",
        `Storage adapter '${this.deps.storage.name}' keeps bot skills only (its skills have no \`listByScopes\`), so it cannot keep skills of ${describeScope(scope)}`,
      );
    }
    return scope;
  }

  private async find(scope: SkillScope, skillId: string): Promise<Skill> {
    const skill = await this.deps.storage.skills.get(storageOwner(scope), skillId);
    if (!skill) throw notFound(scope, skillId);
    return withScope(skill);
  }

  private async listScope(scope: SkillScope): Promise<Skill[]> {
    const skills =
      scope.kind === "bot"
        ? await this.deps.storage.skills.listByBot(scope.id)
        : await this.deps.storage.skills.listByScopes!([scope]);
    return skills.map(withScope);
  }

  /**
   * Writes a skill through `write` and, when the storage keeps versions,
   * appends the version it makes in the same transaction (so a failed
   * append leaves the skill unchanged, and two racing changes cannot both
   * take one version number). Returns what `write` returned.
   */
  private async save(
    scope: SkillScope,
    change: SkillChange,
    write: (repositories: StorageRepositories) => Promise<Skill | null>,
  ): Promise<Skill | null> {
    const storage = this.deps.storage;
    if (!storage.skillVersions) return write(storage);
    const author = change.author ?? change.actor?.userId ?? (await this.defaultAuthor(scope));
    return storage.transaction(async (tx) => {
      const skill = await write(tx);
      if (!skill || !tx.skillVersions) return skill;
      const [latest] = (await tx.skillVersions.list(storageOwner(scope), skill.id, { limit: 1 })).items;
      const next = { version: (latest?.version ?? 0) + 1, snapshot: skillSnapshot(skill) };
      await tx.skillVersions.append({
        id: this.deps.ids.next("skillver"),
        skillId: skill.id,
        botId: skill.botId,
        scope,
        version: next.version,
        snapshot: next.snapshot,
        author,
        reason: change.reason ?? null,
        diff: skillVersionDiff(latest ?? null, next),
        origin: null,
        createdAt: skill.updatedAt,
      });
      return skill;
    });
  }

  /** Who changed a skill when the caller named nobody: the bot's owner, the user, or `"system"`. */
  private async defaultAuthor(scope: SkillScope): Promise<string> {
    if (scope.kind === "bot") return (await this.deps.storage.bots.get(scope.id))?.userId ?? "system";
    return scope.kind === "user" ? scope.id : "system";
  }

  private async assertNameFree(scope: SkillScope, name: string, exceptId: string | null): Promise<void> {
    const wanted = name.trim().toLowerCase();
    const clash = (await this.listScope(scope)).find(
      (skill) => skill.name.trim().toLowerCase() === wanted && skill.id !== exceptId,
    );
    if (clash) {
      const holder = scope.kind === "bot" ? `Bot '${scope.id}'` : capitalized(describeScope(scope));
      throw new KiloError("CONFLICT", `${holder} already has a skill named '${clash.name}' (${clash.id})`);
    }
  }
}

/** What storage calls name for a scope: a bot's id (what adapters written before scopes take), or the scope. */
export function storageOwner(scope: SkillScope): SkillOwner {
  return scope.kind === "bot" ? scope.id : scope;
}

/** The skill with its scope; adapters written before scopes return bot skills without one. */
function withScope(skill: Skill): Skill {
  if (skill.scope) return skill;
  return { ...skill, scope: { kind: "bot", id: skill.botId ?? "" } };
}

function notFound(scope: SkillScope, skillId: string): KiloError {
  const holder = scope.kind === "bot" ? `Bot '${scope.id}'` : capitalized(describeScope(scope));
  return new KiloError("NOT_FOUND", `${holder} has no skill '${skillId}'`);
}

function capitalized(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
