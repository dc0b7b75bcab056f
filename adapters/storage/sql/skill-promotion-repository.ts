import type { Insertable, Selectable } from "kysely";
import type { Page } from "../../../src/domain/common.js";
import { scopeKey } from "../../../src/domain/scope.js";
import type { SkillPromotion, SkillPromotionStatus } from "../../../src/domain/skill-promotion.js";
import type { SkillSnapshot } from "../../../src/domain/skill-version.js";
import { KiloError } from "../../../src/errors.js";
import type { SkillPromotionRepository } from "../../../src/ports/storage.js";
import { copyRecord } from "../../../src/runtime/copy.js";
import type { SkillPromotionsTable } from "./schema.js";
import { decodeCursor, encodeCursor, readScope, type SqlAccess, storableJson } from "./sql-access.js";
import type { SqlDialect } from "./sql-storage.js";

/** The `skill_promotions` repository of the SQL adapters (migration 11), kept beside sql-storage.ts for size. */
export function sqlSkillPromotionRepository(
  access: SqlAccess,
  dialect: SqlDialect,
): SkillPromotionRepository {
  const adapter = dialect.name;
  const fail = (code: "CONFLICT" | "VALIDATION_FAILED", message: string) =>
    new KiloError(code, `${adapter} storage: ${message}`, { adapter });
  const nullableText = (value: string | null) => (value === null ? null : dialect.text(value));
  const readNullableText = (value: string | null) => (value === null ? null : dialect.fromText(value));
  const nullableNumber = (raw: unknown) => (raw === null || raw === undefined ? null : Number(raw));
  const row = (promotion: SkillPromotion): Insertable<SkillPromotionsTable> => ({
    id: promotion.id,
    skill_id: promotion.skillId,
    skill_name: dialect.text(promotion.skillName),
    from_scope: scopeKey(promotion.from),
    to_scope: scopeKey(promotion.to),
    source_version: promotion.sourceVersion,
    snapshot: storableJson(dialect, promotion.snapshot, "a promotion's snapshot"),
    target_skill_id: promotion.targetSkillId,
    target_version: promotion.targetVersion,
    diff: dialect.text(promotion.diff),
    reason: dialect.text(promotion.reason),
    requested_by: dialect.text(promotion.requestedBy),
    status: promotion.status,
    reviewer: nullableText(promotion.reviewer),
    review_note: nullableText(promotion.reviewNote),
    result_skill_id: promotion.resultSkillId,
    created_at: dialect.timestamp(promotion.createdAt),
    decided_at: promotion.decidedAt === null ? null : dialect.timestamp(promotion.decidedAt),
  });
  const promotionOf = (stored: Selectable<SkillPromotionsTable>): SkillPromotion => ({
    id: stored.id,
    skillId: stored.skill_id,
    skillName: dialect.fromText(stored.skill_name),
    from: readScope(stored.from_scope),
    to: readScope(stored.to_scope),
    sourceVersion: nullableNumber(stored.source_version),
    snapshot: dialect.fromJson(stored.snapshot) as SkillSnapshot,
    targetSkillId: stored.target_skill_id,
    targetVersion: nullableNumber(stored.target_version),
    diff: dialect.fromText(stored.diff),
    reason: dialect.fromText(stored.reason),
    requestedBy: dialect.fromText(stored.requested_by),
    status: stored.status as SkillPromotionStatus,
    reviewer: readNullableText(stored.reviewer),
    reviewNote: readNullableText(stored.review_note),
    resultSkillId: stored.result_skill_id,
    createdAt: dialect.fromTimestamp(stored.created_at),
    decidedAt:
      stored.decided_at === null || stored.decided_at === undefined
        ? null
        : dialect.fromTimestamp(stored.decided_at),
  });

  return {
    create: (promotion) =>
      access.run("skillPromotions.create", async (db) => {
        const result = await db
          .insertInto("skill_promotions")
          .values(row(promotion))
          .onConflict((oc) => oc.doNothing())
          .executeTakeFirst();
        if ((result.numInsertedOrUpdatedRows ?? 0n) === 0n) {
          throw fail("CONFLICT", `a skill promotion with id ${promotion.id} already exists`);
        }
        return copyRecord(promotion);
      }),
    get: (promotionId) =>
      access.run("skillPromotions.get", async (db) => {
        const found = await db
          .selectFrom("skill_promotions")
          .selectAll()
          .where("id", "=", promotionId)
          .executeTakeFirst();
        return found ? promotionOf(found) : null;
      }),
    list: (filter, page) =>
      access.run("skillPromotions.list", async (db): Promise<Page<SkillPromotion>> => {
        if (!Number.isInteger(page.limit) || page.limit < 1) {
          throw fail("VALIDATION_FAILED", `page limit must be a positive integer, got ${String(page.limit)}`);
        }
        let query = db.selectFrom("skill_promotions").selectAll();
        if (filter.status !== undefined) query = query.where("status", "=", filter.status);
        if (filter.to !== undefined) query = query.where("to_scope", "=", scopeKey(filter.to));
        if (filter.from !== undefined) query = query.where("from_scope", "=", scopeKey(filter.from));
        if (filter.skillId !== undefined) query = query.where("skill_id", "=", filter.skillId);
        if (page.cursor) {
          const before = decodeCursor(page.cursor, "p1", adapter);
          const at = dialect.timestamp(new Date(before.at));
          query = query.where((eb) => eb(eb.refTuple("created_at", "id"), "<", eb.tuple(at, before.id)));
        }
        const rows = await query
          .orderBy("created_at", "desc")
          .orderBy("id", "desc")
          .limit(page.limit + 1)
          .execute();
        const items = rows.slice(0, page.limit).map(promotionOf);
        const last = items[items.length - 1];
        return {
          items,
          nextCursor:
            rows.length > page.limit && last
              ? encodeCursor({ at: last.createdAt.getTime(), id: last.id }, "p1")
              : null,
        };
      }),
    decide: (promotionId, decision) =>
      access.run("skillPromotions.decide", async (db) => {
        // The status condition makes the transition atomic: under concurrent reviews
        // the row lock (Postgres) or the single writer (SQLite) lets exactly one match.
        const updated = await db
          .updateTable("skill_promotions")
          .set({
            status: decision.status,
            reviewer: dialect.text(decision.reviewer),
            review_note: nullableText(decision.reviewNote),
            result_skill_id: decision.resultSkillId,
            decided_at: dialect.timestamp(decision.decidedAt),
          })
          .where("id", "=", promotionId)
          .where("status", "=", "pending")
          .returningAll()
          .executeTakeFirst();
        if (updated) return promotionOf(updated);
        const existing = await db
          .selectFrom("skill_promotions")
          .select("status")
          .where("id", "=", promotionId)
          .executeTakeFirst();
        if (!existing) return null;
        throw fail("CONFLICT", `skill promotion ${promotionId} was already ${existing.status}`);
      }),
  };
}
