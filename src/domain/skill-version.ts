import type { SkillScope } from "./scope.js";
import type { Skill } from "./skill.js";

/**
 * A skill's content: every field of a {@link Skill} but its identity, place
 * and timestamps (`id`, `botId`, `scope`, `createdAt`, `updatedAt`). What a
 * {@link SkillVersion} keeps, a rollback restores and a promotion copies.
 */
export type SkillSnapshot = Omit<Skill, "id" | "botId" | "scope" | "createdAt" | "updatedAt">;

/**
 * Where a version's content came from when it was not written in the
 * skill's own scope: a version copied by a promotion (see
 * `SkillPromotion`), or the version a promotion wrote.
 */
export interface SkillVersionOrigin {
  /** The scope of the skill the content came from. */
  scope: SkillScope;
  /** The id of that skill. */
  skillId: string;
  /** The number of its version the content is. */
  version: number;
  /** The promotion request that carried it. */
  promotionId: string;
}

/**
 * One version of a skill: written by every change to it (create, update,
 * status change, import, rollback, promotion), numbered 1, 2, 3, ... per
 * skill, and never changed afterwards. Versions go with their skill (and
 * with the bot, team or scope it lives in).
 */
export interface SkillVersion {
  id: string;
  skillId: string;
  /** The bot of a bot's own skill; `null` for a skill of a shared scope. */
  botId: string | null;
  /** The scope of the skill (the same as the skill's). */
  scope: SkillScope;
  /** 1 for the version written when the skill was created, then one more per change. */
  version: number;
  /** The skill's full content after the change. */
  snapshot: SkillSnapshot;
  /** Who made the change: a user id, `"system"` or `"evolution"` (a draft from `kilo.evolve`). */
  author: string;
  /** Why, as the author gave it; `null` when none was given. */
  reason: string | null;
  /**
   * A unified text diff from the previous version's canonical text to this
   * one's (from empty text for version 1). The canonical text of a Markdown
   * skill is its SKILL.md; of a structured skill, its content as pretty JSON
   * with sorted keys.
   */
  diff: string;
  /**
   * Where the content came from, for versions a promotion copied or wrote;
   * `null` for changes made in the skill's own scope.
   */
  origin: SkillVersionOrigin | null;
  createdAt: Date;
}
