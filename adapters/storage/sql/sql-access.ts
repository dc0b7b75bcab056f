import type { Kysely } from "kysely";
import { parseScopeKey, type SkillScope } from "../../../src/domain/scope.js";
import { KiloError } from "../../../src/errors.js";
import type { Tables } from "./schema.js";
import type { SqlDialect } from "./sql-storage.js";

/** How a repository kept beside sql-storage.ts reaches the database: the SQL storage's statement runners. */
export interface SqlAccess {
  /** Runs statements on the current connection (the ambient transaction's, when there is one). */
  run<T>(what: string, op: (db: Kysely<Tables>) => Promise<T>): Promise<T>;
  /** Runs statements atomically: inside the current transaction, or in a new one. */
  atomic<T>(what: string, op: (db: Kysely<Tables>) => Promise<T>): Promise<T>;
}

/**
 * `value` as the dialect stores JSON; a value JSON cannot hold (cycles,
 * bigints) is `VALIDATION_FAILED` naming `what`, not a driver error.
 */
export function storableJson(dialect: SqlDialect, value: unknown, what = "value"): string {
  try {
    return dialect.json(value);
  } catch (cause) {
    throw new KiloError(
      "VALIDATION_FAILED",
      `${dialect.name} storage: ${what} cannot be stored as JSON (cycles, bigints or similar inside it)`,
      { adapter: dialect.name, cause },
    );
  }
}

/** A stored scope key back as a scope (written by `scopeKey`, so it always parses). */
export function readScope(key: string): SkillScope {
  const scope = parseScopeKey(key);
  if (!scope)
    throw new KiloError("STORAGE_FAILED", `a stored skill scope is not a scope key: ${JSON.stringify(key)}`);
  return scope;
}

/** A keyset position: the sort column's value (epoch milliseconds) and the row id breaking ties. */
export interface CursorPosition {
  at: number;
  id: string;
}

/**
 * A page cursor for a keyset position. `tag` names the listing, so a cursor
 * of one listing is refused by another instead of reading the wrong rows.
 */
export function encodeCursor(position: CursorPosition, tag: string): string {
  return Buffer.from(JSON.stringify([tag, position.at, position.id])).toString("base64url");
}

/** The position a cursor of {@link encodeCursor} holds; `VALIDATION_FAILED` for anything else. */
export function decodeCursor(cursor: string, tag: string, adapter: string): CursorPosition {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    if (
      Array.isArray(parsed) &&
      parsed.length === 3 &&
      parsed[0] === tag &&
      Number.isFinite(parsed[1]) &&
      typeof parsed[2] === "string"
    ) {
      return { at: parsed[1], id: parsed[2] };
    }
  } catch {
    // Reported below as an invalid cursor.
  }
  throw new KiloError(
    "VALIDATION_FAILED",
    `${adapter} storage: invalid page cursor; pass the \`nextCursor\` of the previous page`,
    { adapter },
  );
}
