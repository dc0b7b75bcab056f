import { z } from "zod";
import { SCOPE_RANK, type SkillScope } from "./scope.js";
import type { SkillSnapshot } from "./skill-version.js";

/** Where a promotion request is: waiting for review, approved (the skill was written) or rejected. */
export const SKILL_PROMOTION_STATUSES = ["pending", "approved", "rejected"] as const;

/** The state of a promotion request; see {@link SKILL_PROMOTION_STATUSES}. */
export const SkillPromotionStatusSchema = z.enum(SKILL_PROMOTION_STATUSES);
/** The state of a promotion request. */
export type SkillPromotionStatus = z.infer<typeof SkillPromotionStatusSchema>;

/**
 * A reviewable request to copy a skill into a wider, shared scope: a bot's
 * or user's skill to a team or to the system, or a team's skill to the
 * system. It pins the content to promote (the skill as it was when the
 * request was made) and the diff against the skill of the same name already
 * in the target scope (or against nothing), so the reviewer approves exactly
 * what they read. Approving writes the target skill and carries the source's
 * history (see docs/skill-scopes.md).
 */
export interface SkillPromotion {
  id: string;
  /** The skill to promote. */
  skillId: string;
  /** Its name when the request was made (the name it gets in the target scope). */
  skillName: string;
  /** The scope the skill lives in. */
  from: SkillScope;
  /** The scope to promote it to: a team or the system. */
  to: SkillScope;
  /** The skill's latest version when the request was made; `null` when the storage keeps no versions. */
  sourceVersion: number | null;
  /** The content to promote: the skill as it was when the request was made. */
  snapshot: SkillSnapshot;
  /** The skill of the same name in the target scope when the request was made; `null` when there was none. */
  targetSkillId: string | null;
  /** That skill's latest version when the request was made; `null` when there was no such skill or no versions. */
  targetVersion: number | null;
  /**
   * A unified diff from the target skill's canonical text (empty when there
   * is none) to the promoted content's; see `SkillVersion.diff`.
   */
  diff: string;
  /** Why the requester wants it promoted. */
  reason: string;
  /** The user (or `"system"`) who asked. */
  requestedBy: string;
  status: SkillPromotionStatus;
  /** Who approved or rejected it; `null` while pending. */
  reviewer: string | null;
  /** The reviewer's note on approval, or the reason for a rejection; `null` when none was given. */
  reviewNote: string | null;
  /** The skill the approval created or updated in the target scope; `null` until approved. */
  resultSkillId: string | null;
  createdAt: Date;
  /** When it was approved or rejected; `null` while pending. */
  decidedAt: Date | null;
}

/**
 * Whether a skill in `from` may be promoted to `to`: the target is a team or
 * the system, and wider than the source (bot or user to team or system, team
 * to system). A team's skill never moves to another team.
 */
export function promotionAllowed(from: SkillScope, to: SkillScope): boolean {
  return (to.kind === "team" || to.kind === "system") && SCOPE_RANK[to.kind] < SCOPE_RANK[from.kind];
}
