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
