import type { Skill } from "./skill.js";

/**
 * A skill's content: every field of a {@link Skill} but its identity and
 * timestamps (`id`, `botId`, `createdAt`, `updatedAt`). What a
 * {@link SkillVersion} keeps and a rollback restores.
 */
export type SkillSnapshot = Omit<Skill, "id" | "botId" | "createdAt" | "updatedAt">;

/**
 * One version of a skill: written by every change to it (create, update,
 * status change, import, rollback), numbered 1, 2, 3, ... per skill, and
 * never changed afterwards. Versions go with their skill (and their bot).
 */
export interface SkillVersion {
  id: string;
  skillId: string;
  botId: string;
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
  createdAt: Date;
}
