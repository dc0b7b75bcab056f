/**
 * Postgres storage: `import { postgresStorage } from "kilo/storage/postgres"`.
 * Needs `kysely`, and `pg` when kilo creates the connection pool itself.
 *
 * @module
 */
export type { MigrateOptions, MigrationResult, SqlStorage } from "../sql/sql-storage.js";
export type {
  PostgresConnectionOptions,
  PostgresKyselyOptions,
  PostgresPoolOptions,
  PostgresStorage,
  PostgresStorageCommonOptions,
  PostgresStorageOptions,
} from "./postgres-storage.js";
export { postgresStorage } from "./postgres-storage.js";
