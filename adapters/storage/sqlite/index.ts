/**
 * SQLite storage: `import { sqliteStorage } from "kilo/storage/sqlite"`.
 * Needs `kysely`, and `better-sqlite3` when kilo opens the database file itself.
 *
 * @module
 */
export type { MigrateOptions, MigrationResult, SqlStorage } from "../sql/sql-storage.js";
export type {
  SqliteDatabaseOptions,
  SqliteFileOptions,
  SqliteKyselyOptions,
  SqliteStorage,
  SqliteStorageCommonOptions,
  SqliteStorageOptions,
} from "./sqlite-storage.js";
export { sqliteStorage } from "./sqlite-storage.js";
