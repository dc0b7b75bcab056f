import type { Page, PageOptions } from "../domain/common.js";
import { IdSchema } from "../domain/common.js";
import type { SkillOwner } from "../domain/scope.js";
import type { CreateSkillInput, Skill, UpdateSkillInput } from "../domain/skill.js";
import type { SkillVersion } from "../domain/skill-version.js";
import type { SkillVolumeVersion } from "../ports/skill-volume.js";
import { parseInput } from "../runtime/validate.js";
import type { EffectiveSkill } from "./effective-skills.js";
import type { KiloSkillPromotions } from "./skill-promotions.js";
import type {
  ImportedSkillMarkdown,
  SkillAccessOptions,
  SkillChangeOptions,
  SkillMarkdownSource,
  SkillService,
} from "./skill-service.js";
import type { SkillVolumeSyncReport } from "./skill-volume-link.js";

/**
 * `kilo.skills`: skills in every scope, what a bot sees, their history and
 * their promotion. Every method names an owner (a {@link SkillOwner}): a bot
 * id names that bot's own skills, as before scopes existed, and
 * `{ kind: "system" }`, `{ kind: "team", id }` or `{ kind: "user", id }`
 * names a shared scope. Calls made for a user take `options.actor`; see
 * docs/skill-scopes.md for who may do what.
 *
 * @example
 * ```ts
 * await kilo.skills.create(bot.id, ORDERS); // the bot's own skill
 * await kilo.skills.create({ kind: "team", id: "bakers" }, PRICING, { actor: { userId: "alice" } });
 * for (const { skill, shadows } of await kilo.skills.effective(bot.id)) {
 *   console.log(skill.name, skill.scope.kind, shadows.length);
 * }
 * ```
 */
export interface KiloSkills {
  /**
   * Validates and stores a new skill in the owner's scope; the matcher sees it on the next turn of
   * every bot that sees the scope. Writes the skill's version 1 (`options`: its author, default the
   * actor, else the bot's owner or the user, else `"system"`; its reason; the actor). Fails with
   * `VALIDATION_FAILED`, `CONFLICT` (the scope has a skill of that name), `NOT_FOUND` (no such bot
   * or team) or `FORBIDDEN` (the actor may not write the scope).
   */
  create(owner: SkillOwner, input: CreateSkillInput, options?: SkillChangeOptions): Promise<Skill>;
  /** The scope's skill with this id. Fails with `NOT_FOUND` (also for a skill of another scope) or `FORBIDDEN`. */
  get(owner: SkillOwner, skillId: string, options?: SkillAccessOptions): Promise<Skill>;
  /** All the scope's skills, active or not, oldest first (not paged). Fails with `NOT_FOUND` or `FORBIDDEN`. */
  list(owner: SkillOwner, options?: SkillAccessOptions): Promise<Skill[]>;
  /**
   * What the bot sees: the active skills of the system, its team, its owner and its own, one per
   * name (bot over user over team over system), each with `skill.scope` saying where it came from
   * and `shadows` listing the wider skills of the same name it hides. The set the matcher and the
   * prompt use. Fails with `NOT_FOUND` (also for another user's bot, with an actor).
   */
  effective(botId: string, options?: SkillAccessOptions): Promise<EffectiveSkill[]>;
  /**
   * Applies `patch`, re-validates the whole skill and writes a new version (`options`:
   * its author, reason and actor). Fails with `NOT_FOUND`, `VALIDATION_FAILED`, `CONFLICT` or `FORBIDDEN`.
   */
  update(
    owner: SkillOwner,
    skillId: string,
    patch: UpdateSkillInput,
    options?: SkillChangeOptions,
  ): Promise<Skill>;
  /**
   * Deletes the skill, its versions and its stored records (every bot's, for a shared skill).
   * Fails with `NOT_FOUND` or `FORBIDDEN`.
   */
  delete(owner: SkillOwner, skillId: string, options?: SkillAccessOptions): Promise<void>;
  /**
   * Creates a Markdown skill from a SKILL.md (text, or `{ file, text }` to
   * name the file in warnings and check `name` against its folder). Loading
   * is lenient: a file breaking the Agent Skills standard is imported, with
   * one `{ file, rule, message }` warning per broken rule. Fails with
   * `VALIDATION_FAILED` (naming the file) only when the file cannot be read,
   * and as `create` does.
   */
  importMarkdown(
    owner: SkillOwner,
    source: SkillMarkdownSource,
    options?: SkillChangeOptions,
  ): Promise<ImportedSkillMarkdown>;
  /**
   * A Markdown skill as a SKILL.md that strict Agent Skills validators
   * accept (LLMos-Lite's category and keywords under `metadata`). Fails with
   * `VALIDATION_FAILED` for a structured skill or one that breaks the
   * standard, listing the rules.
   */
  exportMarkdown(owner: SkillOwner, skillId: string, options?: SkillAccessOptions): Promise<string>;
  /**
   * The skill's versions, newest first, paged: one per change (create, update, status
   * change, import, rollback, promotion) with its author, time, reason, content, a unified diff
   * and, for versions a promotion carried, their `origin`. Fails with `NOT_FOUND`, `FORBIDDEN`,
   * or `CONFIGURATION_INVALID` when the storage keeps no versions.
   *
   * @example
   * ```ts
   * const { items } = await kilo.skills.history(bot.id, skill.id, { limit: 10 });
   * console.log(items[0]?.version, items[0]?.author, items[0]?.diff);
   * ```
   */
  history(
    owner: SkillOwner,
    skillId: string,
    page?: PageOptions,
    options?: SkillAccessOptions,
  ): Promise<Page<SkillVersion>>;
  /** One version of the skill. Fails with `NOT_FOUND` (unknown skill or version), `FORBIDDEN` or `CONFIGURATION_INVALID`. */
  version(
    owner: SkillOwner,
    skillId: string,
    version: number,
    options?: SkillAccessOptions,
  ): Promise<SkillVersion>;
  /**
   * Restores a version's content as a new version (history is never rewritten) and returns
   * the skill. Fails with `NOT_FOUND` (unknown skill or version), `VALIDATION_FAILED`
   * (the old content no longer validates, e.g. its name is now taken; nothing changes),
   * `FORBIDDEN` or `CONFIGURATION_INVALID`.
   */
  rollback(owner: SkillOwner, skillId: string, version: number, options?: SkillChangeOptions): Promise<Skill>;
  /** Reviewable requests to promote a skill to a team or the system; see {@link KiloSkillPromotions}. */
  promotions: KiloSkillPromotions;
  /**
   * The skill volume (`createKilo({ volume })`, e.g. the git volume): history and rollback read
   * from it, and hand edits imported from it. Every method fails with `CONFIGURATION_INVALID`
   * when no volume is configured. See docs/volumes-git.md.
   */
  volume: KiloSkillVolume;
}

/**
 * `kilo.skills.volume`: the skill volume's side of a scope. Every change to a
 * Markdown skill is written to the volume as one version; these methods read
 * its history, roll back through it, and import what people changed on it.
 *
 * @example
 * ```ts
 * const report = await kilo.skills.volume.sync({ kind: "team", id: "bakers" });
 * console.log(report.applied.map((action) => `${action.kind} ${action.name} by ${action.author}`));
 * const [latest, previous] = await kilo.skills.volume.history(bot.id, skill.id);
 * await kilo.skills.volume.rollback(bot.id, skill.id, previous!.id, { reason: "Back to the old steps" });
 * ```
 */
export interface KiloSkillVolume {
  /**
   * Imports the scope's changes made outside kilo (edited, added or deleted SKILL.md folders,
   * hand commits) as skill versions authored by their commits' authors; what cannot be imported
   * is reported and tried again next time. Fails with `FORBIDDEN` when the actor may not write the scope.
   */
  sync(owner: SkillOwner, options?: SkillAccessOptions): Promise<SkillVolumeSyncReport>;
  /**
   * The skill's versions on the volume (newest first, each with its SKILL.md diff), hand commits
   * included. Fails with `VALIDATION_FAILED` for a skill the volume does not keep (a structured
   * skill, or a name that is not a folder name), `NOT_FOUND` or `FORBIDDEN`.
   */
  history(
    owner: SkillOwner,
    skillId: string,
    options?: SkillAccessOptions & { limit?: number | undefined },
  ): Promise<SkillVolumeVersion[]>;
  /**
   * Restores the skill as it was at a volume version (a commit id from `history`) as a new
   * version on the volume, imports it as a new skill version, and returns the skill.
   */
  rollback(owner: SkillOwner, skillId: string, version: string, options?: SkillChangeOptions): Promise<Skill>;
}

/**
 * Creates `kilo.skills` over the skill service and the promotion requests.
 *
 * @example
 * ```ts
 * const api = createSkillApi(skills, promotions);
 * await api.list({ kind: "system" });
 * ```
 */
export function createSkillApi(skills: SkillService, promotions: KiloSkillPromotions): KiloSkills {
  const skillId = (value: string) => parseInput(IdSchema, value, "skill id");
  return {
    create: (owner, input, options) => skills.create(owner, input, options),
    get: (owner, id, options) => skills.get(owner, skillId(id), options),
    list: (owner, options) => skills.list(owner, options),
    effective: (botId, options) => skills.effective(parseInput(IdSchema, botId, "bot id"), options),
    update: (owner, id, patch, options) => skills.update(owner, skillId(id), patch, options),
    delete: (owner, id, options) => skills.delete(owner, skillId(id), options),
    importMarkdown: (owner, source, options) => skills.importMarkdown(owner, source, options),
    exportMarkdown: (owner, id, options) => skills.exportMarkdown(owner, skillId(id), options),
    history: (owner, id, page, options) => skills.history(owner, skillId(id), page, options),
    version: (owner, id, version, options) => skills.version(owner, skillId(id), version, options),
    rollback: (owner, id, version, options) => skills.rollback(owner, skillId(id), version, options),
    promotions,
    volume: {
      sync: (owner, options) => skills.syncVolume(owner, options),
      history: (owner, id, options) => skills.volumeHistory(owner, skillId(id), options),
      rollback: (owner, id, version, options) => skills.volumeRollback(owner, skillId(id), version, options),
    },
  };
}
