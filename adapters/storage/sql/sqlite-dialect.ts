import {
  type Dialect,
  DummyDriver,
  type Expression,
  type RawBuilder,
  type SqlBool,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  sql,
} from "kysely";
import type { SqlDialect, SqlErrorClass } from "./sql-storage.js";

/**
 * What is particular to SQLite (better-sqlite3): timestamps as integer epoch
 * milliseconds (exact, and ordered as numbers), JSON as TEXT searched through
 * `json_each` (field names are bound as values, never spliced into a JSON
 * path), booleans as 0/1, `BEGIN IMMEDIATE` so a transaction holds the write
 * lock from its start, and SQLite's extended error codes.
 */
export const sqliteDialect: SqlDialect = {
  name: "sqlite",
  types: {
    text: "text",
    json: "text",
    timestamp: "integer",
    boolean: "integer",
    integer: "integer",
    real: "real",
  },
  begin: "begin immediate",
  rowLocks: false,

  compileOnly(): Dialect {
    return {
      createAdapter: () => new SqliteAdapter(),
      createDriver: () => new DummyDriver(),
      createIntrospector: (db) => new SqliteIntrospector(db),
      createQueryCompiler: () => new SqliteQueryCompiler(),
    };
  },

  // SQLite stores any string as it is, NUL included.
  text: (value) => value,
  fromText: (raw) => raw,
  json: (value) => {
    const text = JSON.stringify(value);
    if (text === undefined) throw new TypeError("the value has no JSON representation");
    return text;
  },
  fromJson: (raw) => (typeof raw === "string" ? JSON.parse(raw) : raw),
  timestamp: (date) => date.getTime(),
  fromTimestamp: (raw) => new Date(Number(raw)),
  boolean: (value) => (value ? 1 : 0),
  fromBoolean: (raw) => raw === 1 || raw === 1n || raw === true,

  jsonFieldEquals(column, field, value) {
    const match =
      typeof value === "string"
        ? sql`j.type = 'text' and lower(j.value) = lower(${value})`
        : typeof value === "number"
          ? sql`j.type in ('integer', 'real') and j.value = ${value}`
          : typeof value === "boolean"
            ? sql`j.type = ${value ? "true" : "false"}`
            : sql`j.type = 'null'`;
    return member(column, field, match);
  },

  jsonFieldContains(column, field, text) {
    return member(column, field, sql`j.type = 'text' and instr(lower(j.value), lower(${text})) > 0`);
  },

  async appendMessage(db, _names, row, touch) {
    // Two statements without a transaction of their own: SQLite runs one statement at a
    // time, so the counter bump alone orders concurrent appends. A failed insert leaves
    // a gap in the seqs, which the port allows.
    const bumped = await db
      .updateTable("conversations")
      .set({ last_seq: sql<number>`last_seq + 1`, ...(touch === undefined ? {} : { updated_at: touch }) })
      .where("bot_id", "=", row.bot_id)
      .where("id", "=", row.conversation_id)
      .returning("last_seq")
      .executeTakeFirst();
    if (!bumped) return { kind: "no-conversation" };
    const seq = Number(bumped.last_seq);
    const result = await db
      .insertInto("messages")
      .values({ ...row, seq })
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst();
    return (result.numInsertedOrUpdatedRows ?? 0n) > 0n ? { kind: "appended", seq } : { kind: "conflict" };
  },

  async lockMigrations() {
    // `begin immediate` already holds the database's write lock.
  },

  classify(error): SqlErrorClass | null {
    const code = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
    if (typeof code !== "string") return null;
    if (code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY") {
      return { code: "CONFLICT", retryable: false, connection: false };
    }
    if (code === "SQLITE_CONSTRAINT_FOREIGNKEY")
      return { code: "NOT_FOUND", retryable: false, connection: false };
    if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED")) {
      return { code: "STORAGE_FAILED", retryable: true, connection: false };
    }
    if (code.startsWith("SQLITE_CANTOPEN") || code === "SQLITE_NOTADB" || code === "SQLITE_PERM") {
      return { code: "STORAGE_FAILED", retryable: false, connection: true };
    }
    return null;
  },

  isMissingTable(error) {
    return error instanceof Error && /no such table/i.test(error.message);
  },
};

/** True when the JSON object in `column` has a member `field` for which `match` holds (on `j`). */
function member(column: Expression<unknown>, field: string, match: RawBuilder<unknown>): RawBuilder<SqlBool> {
  return sql<SqlBool>`exists (select 1 from json_each(${column}) as j where j.key = ${field} and ${match})`;
}
