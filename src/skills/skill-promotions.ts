import { z } from "zod";
import { type Actor, ActorSchema } from "../domain/actor.js";
import { IdSchema, type Page } from "../domain/common.js";
import { type SkillOwner, type SkillScope, SkillScopeSchema, scopeKey } from "../domain/scope.js";
import { CreateSkillInputSchema, type Skill } from "../domain/skill.js";
import {
  promotionAllowed,
  type SkillPromotion,
  type SkillPromotionStatus,
  SkillPromotionStatusSchema,
} from "../domain/skill-promotion.js";
import type { SkillVersion } from "../domain/skill-version.js";
import { KiloError } from "../errors.js";
import type { Clock, IdGenerator } from "../ports/clock.js";
import type { SkillPromotionRepository, Storage, StorageRepositories } from "../ports/storage.js";
import { allPages } from "../runtime/pages.js";
import { parseInput } from "../runtime/validate.js";
import { describeScope, type ScopeAccess } from "./scope-access.js";
import { type SkillService, storageOwner } from "./skill-service.js";
import { skillDiff, skillSnapshot, skillVersionDiff } from "./skill-versions.js";

/** What `kilo.skills.promotions.request` takes besides the skill. */
export interface SkillPromotionRequestInput {
  /** Where to promote the skill: a team (`{ kind: "team", id }`) or the system (`{ kind: "system" }`), wider than its scope. */
  to: SkillScope;
  /** Why it should be shared (1–2,000 characters); the reviewer reads it. */
  reason: string;
  /** Who asks: a user id. Default: the actor. One of the two is required; when both are given they must agree. */
  requestedBy?: string | undefined;
  /**
   * The user the request is made for: they must see the skill, and be a
   * member of the target team (`FORBIDDEN` otherwise).
   */
  actor?: Actor | undefined;
}

/** Filters and paging of `kilo.skills.promotions.list`. */
export interface SkillPromotionListOptions {
  status?: SkillPromotionStatus | undefined;
  /** Only requests to this scope (a team's review queue, or the system's). */
  to?: SkillScope | undefined;
  /** Only requests from this scope. */
  from?: SkillScope | undefined;
  /** Only requests to promote this skill. */
  skillId?: string | undefined;
  /** Most requests to return (1–500, default 50). */
  limit?: number | undefined;
  /** The `nextCursor` of the previous page. */
  cursor?: string | null | undefined;
}

/** What `kilo.skills.promotions.approve` takes. */
export interface SkillPromotionApproval {
  /** Who approves: a user id, or a name of the host's (`"system"`). Default: the actor. One of the two is required. */
  reviewer?: string | undefined;
  /** A note kept with the request (at most 2,000 characters). */
  note?: string | undefined;
  /**
   * The user the review is made for: for a team target they must be an
   * admin of the team; a system target is reviewed by the host only (no
   * actor), so any actor is `FORBIDDEN`.
   */
  actor?: Actor | undefined;
}

/** What `kilo.skills.promotions.reject` takes. */
export interface SkillPromotionRejection {
  /** Who rejects; see {@link SkillPromotionApproval.reviewer}. */
  reviewer?: string | undefined;
  /** Why (1–2,000 characters); the requester reads it. */
  reason: string;
  /** As for {@link SkillPromotionApproval.actor}. */
  actor?: Actor | undefined;
}

/** What approving a request did: the decided request and the skill written in the target scope. */
export interface ApprovedSkillPromotion {
  promotion: SkillPromotion;
  skill: Skill;
}

/**
 * Promotion requests (`kilo.skills.promotions`): a bot's, user's or team's
 * skill proposed for a team or the system, reviewed, then approved (the
 * target skill is written, with the source's history) or rejected. Fails
 * with `CONFIGURATION_INVALID` when the storage keeps no promotion requests.
 * See docs/skill-scopes.md.
 *
 * @example
 * ```ts
 * const request = await kilo.skills.promotions.request({ kind: "user", id: "alice" }, skill.id, {
 *   to: { kind: "team", id: "bakers" },
 *   reason: "Everyone takes orders",
 *   actor: { userId: "alice" },
 * });
 * console.log(request.diff);
 * const { skill: teamSkill } = await kilo.skills.promotions.approve(request.id, { actor: { userId: "bob" } });
 * ```
 */
export interface KiloSkillPromotions {
  /**
   * Asks for the skill to be promoted. The request pins the skill's content
   * as it is now and the diff against the target's skill of the same name
   * (or against nothing). Fails with `VALIDATION_FAILED` (a target that is
   * not a wider team or the system), `NOT_FOUND`, `FORBIDDEN`, or
   * `CONFLICT` when a request for the same skill and target is pending.
   */
  request(owner: SkillOwner, skillId: string, input: SkillPromotionRequestInput): Promise<SkillPromotion>;
  /** One page of requests, newest first, optionally filtered by status, target, source or skill. */
  list(options?: SkillPromotionListOptions): Promise<Page<SkillPromotion>>;
  /** One request. Fails with `NOT_FOUND`. */
  get(promotionId: string): Promise<SkillPromotion>;
  /**
   * Approves a pending request and, in the same transaction, creates or
   * updates the skill in the target scope with the pinned content and
   * carries its history. Fails with `NOT_FOUND` (the request, or the source
   * skill was deleted since), `FORBIDDEN`, or `CONFLICT` (already decided,
   * or the target's skill changed since the request: reject it and request
   * again).
   */
  approve(promotionId: string, input: SkillPromotionApproval): Promise<ApprovedSkillPromotion>;
  /** Rejects a pending request with a reason; nothing else changes. Fails with `NOT_FOUND`, `FORBIDDEN` or `CONFLICT`. */
  reject(promotionId: string, input: SkillPromotionRejection): Promise<SkillPromotion>;
}

/** Dependencies of {@link createSkillPromotionApi}. */
export interface SkillPromotionDependencies {
  storage: Storage;
  clock: Clock;
  ids: IdGenerator;
  skills: SkillService;
  access: ScopeAccess;
}

const text = z.string().trim().min(1).max(2000);

const RequestSchema = z
  .object({
    to: SkillScopeSchema,
    reason: text,
    requestedBy: z.string().trim().min(1).max(128).optional(),
    actor: ActorSchema.optional(),
  })
  .strict();

const ListSchema = z
  .object({
    status: SkillPromotionStatusSchema.optional(),
    to: SkillScopeSchema.optional(),
    from: SkillScopeSchema.optional(),
    skillId: IdSchema.optional(),
    limit: z.number().int().min(1).max(500).default(50),
    cursor: z.string().nullish(),
  })
  .strict();

const ApproveSchema = z
  .object({
    reviewer: z.string().trim().min(1).max(128).optional(),
    note: z.string().max(2000).optional(),
    actor: ActorSchema.optional(),
  })
  .strict();

const RejectSchema = z
  .object({
    reviewer: z.string().trim().min(1).max(128).optional(),
    reason: text,
    actor: ActorSchema.optional(),
  })
  .strict();

/**
 * Creates `kilo.skills.promotions` (see {@link KiloSkillPromotions}).
 *
 * How approval carries history: when the target scope has no skill of that
 * name, the new skill's history starts with copies of the source's versions
 * (up to the one the request pinned: same numbers, authors, reasons, diffs
 * and times, `origin` naming where each was first written), followed by one
 * version for the promotion itself (author: the reviewer). When the target
 * has the skill already, its own history goes on with one version: the
 * promoted content, its diff against the previous version, and `origin`
 * naming the source's pinned version (the source's versions are not spliced
 * in: a history lists states the skill had).
 */
export function createSkillPromotionApi(deps: SkillPromotionDependencies): KiloSkillPromotions {
  const { storage, clock, ids, skills, access } = deps;

  const repository = (repositories: StorageRepositories = storage): SkillPromotionRepository => {
    const found = repositories.skillPromotions;
    if (!found) {
      throw new KiloError(
        "CONFIGURATION_INVALID",
        `Storage adapter '${storage.name}' keeps no promotion requests (it has no \`skillPromotions\` repository)`,
      );
    }
    return found;
  };

  const getPromotion = async (promotionId: string): Promise<SkillPromotion> => {
    const promotion = await repository().get(parseInput(IdSchema, promotionId, "promotion id"));
    if (!promotion) throw new KiloError("NOT_FOUND", `No promotion request '${promotionId}'`);
    return promotion;
  };

  /** The one name for who acts: `given`, else the actor's id; when both are given they must agree. */
  const who = (given: string | undefined, actor: Actor | undefined, role: string): string => {
    if (given !== undefined && actor && given !== actor.userId) {
      throw new KiloError(
        "VALIDATION_FAILED",
        `Invalid promotion ${role}: '${given}' is not the actor ('${actor.userId}'); give one of them, or the same`,
      );
    }
    const name = given ?? actor?.userId;
    if (name === undefined) {
      throw new KiloError("VALIDATION_FAILED", `Invalid promotion input: give the ${role} (or an actor)`);
    }
    return name;
  };

  /** A reviewer with an actor: a team's admin for a team target; nobody for the system (the host reviews it). */
  const assertReviewer = async (actor: Actor | undefined, promotion: SkillPromotion): Promise<void> => {
    if (!actor) return;
    if (promotion.to.kind === "team") {
      await access.assertTeamAdmin(actor, promotion.to.id);
      return;
    }
    throw new KiloError(
      "FORBIDDEN",
      `User '${actor.userId}' cannot review a promotion to the system scope: the host reviews those (a call that names no actor)`,
    );
  };

  /** The skill of this name in the scope (case-insensitive), if any. */
  const namedIn = async (repositories: StorageRepositories, scope: SkillScope, name: string) => {
    const wanted = name.trim().toLowerCase();
    const listed = await repositories.skills.listByScopes!([scope]);
    return listed.find((skill) => skill.name.trim().toLowerCase() === wanted) ?? null;
  };

  const latestVersion = async (
    repositories: StorageRepositories,
    skill: Skill,
  ): Promise<SkillVersion | null> => {
    const versions = repositories.skillVersions;
    if (!versions) return null;
    return (await versions.list(storageOwner(skill.scope), skill.id, { limit: 1 })).items[0] ?? null;
  };

  const assertPending = (promotion: SkillPromotion) => {
    if (promotion.status !== "pending") {
      throw new KiloError("CONFLICT", `Promotion request '${promotion.id}' was already ${promotion.status}`);
    }
  };

  return {
    async request(owner, skillId, input) {
      const parsed = parseInput(RequestSchema, input, "promotion request");
      const promotions = repository();
      if (!skills.scoped) {
        throw new KiloError(
          "CONFIGURATION_INVALID",
          `Storage adapter '${storage.name}' keeps bot skills only (its skills have no \`listByScopes\`), so there is no scope to promote to`,
        );
      }
      const source = await skills.get(owner, parseInput(IdSchema, skillId, "skill id"), {
        actor: parsed.actor,
      });
      const from = source.scope;
      if (!promotionAllowed(from, parsed.to)) {
        throw new KiloError(
          "VALIDATION_FAILED",
          `Invalid promotion request: a skill of ${describeScope(from)} cannot be promoted to ${describeScope(parsed.to)}; ` +
            "promote a bot's or user's skill to a team or the system, or a team's skill to the system",
        );
      }
      if (parsed.to.kind === "team") {
        await access.assertRead(undefined, parsed.to);
        if (parsed.actor) {
          await access.assertTeamMember(
            parsed.actor.userId,
            parsed.to.id,
            `ask for a promotion to team '${parsed.to.id}'`,
          );
        }
      }
      const requestedBy = who(parsed.requestedBy, parsed.actor, "requester");
      const pending = await promotions.list(
        { status: "pending", skillId: source.id, to: parsed.to },
        { limit: 1 },
      );
      if (pending.items.length > 0) {
        throw new KiloError(
          "CONFLICT",
          `Skill '${source.id}' already has a pending promotion request to ${describeScope(parsed.to)} ('${pending.items[0]!.id}')`,
        );
      }
      const target = await namedIn(storage, parsed.to, source.name);
      const [sourceLatest, targetLatest] = await Promise.all([
        latestVersion(storage, source),
        target ? latestVersion(storage, target) : null,
      ]);
      const snapshot = skillSnapshot(source);
      const label = (scope: SkillScope, version: SkillVersion | null) =>
        version ? `${scopeKey(scope)} version ${version.version}` : scopeKey(scope);
      return promotions.create({
        id: ids.next("promo"),
        skillId: source.id,
        skillName: source.name,
        from,
        to: parsed.to,
        sourceVersion: sourceLatest?.version ?? null,
        snapshot,
        targetSkillId: target?.id ?? null,
        targetVersion: targetLatest?.version ?? null,
        diff: skillDiff(
          target ? { label: label(parsed.to, targetLatest), snapshot: skillSnapshot(target) } : null,
          { label: label(from, sourceLatest), snapshot },
        ),
        reason: parsed.reason,
        requestedBy,
        status: "pending",
        reviewer: null,
        reviewNote: null,
        resultSkillId: null,
        createdAt: clock.now(),
        decidedAt: null,
      });
    },

    async list(options = {}) {
      const { limit, cursor, ...filter } = parseInput(ListSchema, options, "promotion list options");
      return repository().list(filter, { limit, cursor });
    },

    get: getPromotion,

    async approve(promotionId, input) {
      const parsed = parseInput(ApproveSchema, input, "promotion approval");
      const promotion = await getPromotion(promotionId);
      assertPending(promotion);
      await assertReviewer(parsed.actor, promotion);
      const reviewer = who(parsed.reviewer, parsed.actor, "reviewer");
      const content = CreateSkillInputSchema.safeParse(promotion.snapshot);
      if (!content.success) {
        throw new KiloError(
          "VALIDATION_FAILED",
          `The content of promotion request '${promotion.id}' no longer validates`,
          {
            details: content.error.issues,
          },
        );
      }
      const { id: _id, ...body } = content.data;
      const { from, to } = promotion;
      const now = clock.now();
      const origin = (version: number) => ({
        scope: from,
        skillId: promotion.skillId,
        version,
        promotionId: promotion.id,
      });
      const reason = `Promoted from ${scopeKey(from)} (request ${promotion.id}): ${promotion.reason}`;

      const approved = await storage.transaction(async (tx) => {
        const source = await tx.skills.get(storageOwner(from), promotion.skillId);
        if (!source) {
          throw new KiloError(
            "NOT_FOUND",
            `Skill '${promotion.skillId}' of ${describeScope(from)} was deleted after promotion request '${promotion.id}'; reject the request`,
          );
        }
        // The reviewer approved a diff against the target as it was: refuse if it has changed since.
        const target = await namedIn(tx, to, promotion.skillName);
        const targetLatest = target ? await latestVersion(tx, target) : null;
        if (
          (target?.id ?? null) !== promotion.targetSkillId ||
          (targetLatest?.version ?? null) !== promotion.targetVersion
        ) {
          throw new KiloError(
            "CONFLICT",
            `The skill '${promotion.skillName}' of ${describeScope(to)} changed after promotion request '${promotion.id}', so its diff is out of date; reject it and request again`,
          );
        }
        const resultSkillId = target?.id ?? ids.next("skill");
        const decided = await repository(tx).decide(promotion.id, {
          status: "approved",
          reviewer,
          reviewNote: parsed.note ?? null,
          resultSkillId,
          decidedAt: now,
        });
        if (!decided) throw new KiloError("NOT_FOUND", `No promotion request '${promotion.id}'`);
        const written: Skill = {
          ...body,
          id: resultSkillId,
          botId: null,
          scope: to,
          createdAt: target?.createdAt ?? now,
          updatedAt: now,
        };
        const skill = target ? await tx.skills.update(written) : await tx.skills.create(written);
        if (!skill) throw new KiloError("NOT_FOUND", `${describeScope(to)} has no skill '${resultSkillId}'`);
        const versions = tx.skillVersions;
        if (versions) {
          let previous: SkillVersion | null = targetLatest;
          if (!target && promotion.sourceVersion !== null) {
            // A new skill starts with the source's history, as it was when the request was made.
            const carried = (
              await allPages((cursor) => versions.list(storageOwner(from), source.id, { limit: 500, cursor }))
            )
              .filter((version) => version.version <= promotion.sourceVersion!)
              .reverse();
            for (const version of carried) {
              previous = await versions.append({
                ...version,
                id: ids.next("skillver"),
                skillId: skill.id,
                botId: null,
                scope: to,
                origin: version.origin ?? origin(version.version),
              });
            }
          }
          const next = { version: (previous?.version ?? 0) + 1, snapshot: skillSnapshot(skill) };
          await versions.append({
            id: ids.next("skillver"),
            skillId: skill.id,
            botId: null,
            scope: to,
            version: next.version,
            snapshot: next.snapshot,
            author: reviewer,
            reason,
            diff: skillVersionDiff(previous, next),
            origin: promotion.sourceVersion === null ? null : origin(promotion.sourceVersion),
            createdAt: now,
          });
        }
        return { promotion: decided, skill };
      });
      await skills.invalidate(to);
      await skills.mirrorChange(to, approved.skill, { author: reviewer, reason });
      return approved;
    },

    async reject(promotionId, input) {
      const parsed = parseInput(RejectSchema, input, "promotion rejection");
      const promotion = await getPromotion(promotionId);
      assertPending(promotion);
      await assertReviewer(parsed.actor, promotion);
      const reviewer = who(parsed.reviewer, parsed.actor, "reviewer");
      const decided = await repository().decide(promotion.id, {
        status: "rejected",
        reviewer,
        reviewNote: parsed.reason,
        resultSkillId: null,
        decidedAt: clock.now(),
      });
      if (!decided) throw new KiloError("NOT_FOUND", `No promotion request '${promotionId}'`);
      return decided;
    },
  };
}
