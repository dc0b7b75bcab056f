import type { Insertable, Selectable } from "kysely";
import type { Page } from "../../../src/domain/common.js";
import type { Team, TeamMember, TeamRole } from "../../../src/domain/team.js";
import { KiloError } from "../../../src/errors.js";
import type { TeamMemberRepository, TeamRepository } from "../../../src/ports/storage.js";
import { copyRecord } from "../../../src/runtime/copy.js";
import type { TeamMembersTable, TeamsTable } from "./schema.js";
import { decodeCursor, encodeCursor, type SqlAccess, storableJson } from "./sql-access.js";
import type { SqlDialect } from "./sql-storage.js";

/**
 * The `teams` and `team_members` repositories of the SQL adapters (migration
 * 11), kept beside sql-storage.ts for size.
 *
 * @module
 */

const changed = (result: { numUpdatedRows?: bigint; numDeletedRows?: bigint }) =>
  (result.numUpdatedRows ?? result.numDeletedRows ?? 0n) > 0n;

/** The `teams` repository. Deleting a team cascades to its members and skills and sets its bots' `team_id` to null. */
export function sqlTeamRepository(access: SqlAccess, dialect: SqlDialect): TeamRepository {
  const adapter = dialect.name;
  const fail = (code: "CONFLICT" | "VALIDATION_FAILED", message: string) =>
    new KiloError(code, `${adapter} storage: ${message}`, { adapter });
  const row = (team: Team): Insertable<TeamsTable> => ({
    id: team.id,
    name: dialect.text(team.name),
    metadata: storableJson(dialect, team.metadata, "a team's metadata"),
    created_at: dialect.timestamp(team.createdAt),
    updated_at: dialect.timestamp(team.updatedAt),
  });
  const teamOf = (stored: Selectable<TeamsTable>): Team => ({
    id: stored.id,
    name: dialect.fromText(stored.name),
    metadata: dialect.fromJson(stored.metadata) as Team["metadata"],
    createdAt: dialect.fromTimestamp(stored.created_at),
    updatedAt: dialect.fromTimestamp(stored.updated_at),
  });

  return {
    create: (team) =>
      access.run("teams.create", async (db) => {
        const result = await db
          .insertInto("teams")
          .values(row(team))
          .onConflict((oc) => oc.doNothing())
          .executeTakeFirst();
        if ((result.numInsertedOrUpdatedRows ?? 0n) === 0n)
          throw fail("CONFLICT", `a team with id ${team.id} already exists`);
        return copyRecord(team);
      }),
    get: (teamId) =>
      access.run("teams.get", async (db) => {
        const found = await db.selectFrom("teams").selectAll().where("id", "=", teamId).executeTakeFirst();
        return found ? teamOf(found) : null;
      }),
    list: (page) =>
      access.run("teams.list", async (db): Promise<Page<Team>> => {
        if (!Number.isInteger(page.limit) || page.limit < 1) {
          throw fail("VALIDATION_FAILED", `page limit must be a positive integer, got ${String(page.limit)}`);
        }
        let query = db.selectFrom("teams").selectAll();
        if (page.cursor) {
          const after = decodeCursor(page.cursor, "t1", adapter);
          const at = dialect.timestamp(new Date(after.at));
          query = query.where((eb) => eb(eb.refTuple("created_at", "id"), ">", eb.tuple(at, after.id)));
        }
        const rows = await query
          .orderBy("created_at")
          .orderBy("id")
          .limit(page.limit + 1)
          .execute();
        const items = rows.slice(0, page.limit).map(teamOf);
        const last = items[items.length - 1];
        return {
          items,
          nextCursor:
            rows.length > page.limit && last
              ? encodeCursor({ at: last.createdAt.getTime(), id: last.id }, "t1")
              : null,
        };
      }),
    update: (team) =>
      access.run("teams.update", async (db) => {
        const { id: _id, ...columns } = row(team);
        const result = await db
          .updateTable("teams")
          .set(columns)
          .where("id", "=", team.id)
          .executeTakeFirst();
        return changed(result) ? copyRecord(team) : null;
      }),
    delete: (teamId) =>
      access.run("teams.delete", async (db) => {
        const result = await db.deleteFrom("teams").where("id", "=", teamId).executeTakeFirst();
        return changed(result);
      }),
  };
}

/** The `team_members` repository: one row per (team, user), upserted by `save`. */
export function sqlTeamMemberRepository(access: SqlAccess, dialect: SqlDialect): TeamMemberRepository {
  const memberOf = (stored: Selectable<TeamMembersTable>): TeamMember => ({
    teamId: stored.team_id,
    userId: stored.user_id,
    role: stored.role as TeamRole,
    createdAt: dialect.fromTimestamp(stored.created_at),
    updatedAt: dialect.fromTimestamp(stored.updated_at),
  });

  return {
    save: (member) =>
      access.run("teamMembers.save", async (db) => {
        const values: Insertable<TeamMembersTable> = {
          team_id: member.teamId,
          user_id: member.userId,
          role: member.role,
          created_at: dialect.timestamp(member.createdAt),
          updated_at: dialect.timestamp(member.updatedAt),
        };
        // A missing team fails the foreign key: NOT_FOUND.
        const stored = await db
          .insertInto("team_members")
          .values(values)
          .onConflict((oc) =>
            oc
              .columns(["team_id", "user_id"])
              .doUpdateSet({ role: values.role, updated_at: values.updated_at }),
          )
          .returningAll()
          .executeTakeFirstOrThrow();
        return memberOf(stored);
      }),
    get: (teamId, userId) =>
      access.run("teamMembers.get", async (db) => {
        const found = await db
          .selectFrom("team_members")
          .selectAll()
          .where("team_id", "=", teamId)
          .where("user_id", "=", userId)
          .executeTakeFirst();
        return found ? memberOf(found) : null;
      }),
    listByTeam: (teamId) =>
      access.run("teamMembers.listByTeam", async (db) =>
        (
          await db
            .selectFrom("team_members")
            .selectAll()
            .where("team_id", "=", teamId)
            .orderBy("created_at")
            .orderBy("user_id")
            .execute()
        ).map(memberOf),
      ),
    listByUser: (userId) =>
      access.run("teamMembers.listByUser", async (db) =>
        (
          await db
            .selectFrom("team_members")
            .selectAll()
            .where("user_id", "=", userId)
            .orderBy("created_at")
            .orderBy("team_id")
            .execute()
        ).map(memberOf),
      ),
    delete: (teamId, userId) =>
      access.run("teamMembers.delete", async (db) =>
        changed(
          await db
            .deleteFrom("team_members")
            .where("team_id", "=", teamId)
            .where("user_id", "=", userId)
            .executeTakeFirst(),
        ),
      ),
  };
}
