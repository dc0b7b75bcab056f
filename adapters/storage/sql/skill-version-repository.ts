import type { Insertable, Selectable } from "kysely";
import { ownerScope, scopeKey } from "../../../src/domain/scope.js";
import type { SkillSnapshot, SkillVersion, SkillVersionOrigin } from "../../../src/domain/skill-version.js";
import { KiloError } from "../../../src/errors.js";
import type { SkillVersionRepository } from "../../../src/ports/storage.js";
import { copyRecord } from "../../../src/runtime/copy.js";
import type { SkillVersionsTable } from "./schema.js";
import { readScope, type SqlAccess, storableJson } from "./sql-access.js";
import type { SqlDialect } from "./sql-storage.js";

/** The `skill_versions` repository of the SQL adapters (migration 10), kept beside sql-storage.ts for size. */
export function sqlSkillVersionRepository(access: SqlAccess, dialect: SqlDialect): SkillVersionRepository {
  const adapter = dialect.name;
  const fail = (code: "NOT_FOUND" | "CONFLICT" | "VALIDATION_FAILED", message: string) =>
    new KiloError(code, `${adapter} storage: ${message}`, { adapter });
  const json = (value: unknown): string => storableJson(dialect, value, "a skill version's snapshot");
  const row = (version: SkillVersion): Insertable<SkillVersionsTable> => ({
    id: version.id,
    skill_id: version.skillId,
    bot_id: version.botId,
    scope: scopeKey(version.scope),
    version: version.version,
    snapshot: json(version.snapshot),
    author: dialect.text(version.author),
    reason: version.reason === null ? null : dialect.text(version.reason),
    diff: dialect.text(version.diff),
    origin: version.origin === null ? null : json(version.origin),
    created_at: dialect.timestamp(version.createdAt),
  });
  const versionOf = (stored: Selectable<SkillVersionsTable>): SkillVersion => ({
    id: stored.id,
    skillId: stored.skill_id,
    botId: stored.bot_id,
    scope: readScope(stored.scope),
    version: Number(stored.version),
    snapshot: dialect.fromJson(stored.snapshot) as SkillSnapshot,
    author: dialect.fromText(stored.author),
    reason: stored.reason === null ? null : dialect.fromText(stored.reason),
    diff: dialect.fromText(stored.diff),
    origin: stored.origin === null ? null : (dialect.fromJson(stored.origin) as SkillVersionOrigin),
    createdAt: dialect.fromTimestamp(stored.created_at),
  });
  // The cursor is the number of the last version handed out; the next page starts below it.
  const encodeCursor = (version: number) =>
    Buffer.from(JSON.stringify(["sv1", version])).toString("base64url");
  const decodeCursor = (cursor: string): number => {
    try {
      const parsed: unknown = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
      if (Array.isArray(parsed) && parsed[0] === "sv1" && Number.isInteger(parsed[1]))
        return parsed[1] as number;
    } catch {
      // Reported below as an invalid cursor.
    }
    throw fail("VALIDATION_FAILED", "invalid page cursor; pass the `nextCursor` of the previous page");
  };

  return {
    append: (version) =>
      access.atomic("skillVersions.append", async (db) => {
        // Tenancy: the skill must be the scope's (the foreign key alone would accept another scope's skill).
        const scope = scopeKey(version.scope);
        const owner = await db
          .selectFrom("skills")
          .select("id")
          .where("id", "=", version.skillId)
          .where("scope", "=", scope)
          .executeTakeFirst();
        if (!owner) {
          throw fail(
            "NOT_FOUND",
            `cannot store a skill version: the scope ${scope} has no skill ${version.skillId}`,
          );
        }
        // DO NOTHING rather than a unique violation, which on Postgres would abort the surrounding transaction.
        const result = await db
          .insertInto("skill_versions")
          .values(row(version))
          .onConflict((oc) => oc.doNothing())
          .executeTakeFirst();
        if ((result.numInsertedOrUpdatedRows ?? 0n) > 0n) return copyRecord(version);
        const taken = await db
          .selectFrom("skill_versions")
          .select("id")
          .where("id", "=", version.id)
          .executeTakeFirst();
        throw taken
          ? fail("CONFLICT", `a skill version with id ${version.id} already exists`)
          : fail("CONFLICT", `skill ${version.skillId} already has a version ${version.version}`);
      }),
    list: (owner, skillId, page) =>
      access.run("skillVersions.list", async (db) => {
        if (!Number.isInteger(page.limit) || page.limit < 1) {
          throw fail("VALIDATION_FAILED", `page limit must be a positive integer, got ${String(page.limit)}`);
        }
        let query = db
          .selectFrom("skill_versions")
          .selectAll()
          .where("scope", "=", scopeKey(ownerScope(owner)))
          .where("skill_id", "=", skillId);
        if (page.cursor) query = query.where("version", "<", decodeCursor(page.cursor));
        const rows = await query
          .orderBy("version", "desc")
          .limit(page.limit + 1)
          .execute();
        const items = rows.slice(0, page.limit).map(versionOf);
        const last = items[items.length - 1];
        return { items, nextCursor: rows.length > page.limit && last ? encodeCursor(last.version) : null };
      }),
    get: (owner, skillId, version) =>
      access.run("skillVersions.get", async (db) => {
        const found = await db
          .selectFrom("skill_versions")
          .selectAll()
          .where("scope", "=", scopeKey(ownerScope(owner)))
          .where("skill_id", "=", skillId)
          .where("version", "=", version)
          .executeTakeFirst();
        return found ? versionOf(found) : null;
      }),
  };
}
