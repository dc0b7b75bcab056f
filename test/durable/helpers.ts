import { randomBytes } from "node:crypto";
import pg from "pg";
import { postgresStorage } from "../../adapters/storage/postgres/index.js";
import type { Storage } from "../../src/index.js";

/** The test Postgres (trust auth); kilo's schemas go in its database, DBOS's system databases beside it. */
export const DATABASE_URL = process.env.KILO_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** The URL of another database on the test server. */
export function databaseUrl(database: string): string {
  const url = new URL(DATABASE_URL);
  url.pathname = `/${database}`;
  return url.toString();
}

/**
 * Per test file: a DBOS system database name (created by DBOS on first launch)
 * and Postgres schemas for kilo's storage, all dropped by `cleanup`.
 */
export function dbosTestDatabases(label: string) {
  const tag = `${label}_${randomBytes(4).toString("hex")}`;
  const systemDatabase = `kilo_dbos_${tag}`;
  const schemas: string[] = [];
  let count = 0;
  const schema = () => {
    const name = `kilo_${tag}_${++count}`;
    schemas.push(name);
    return name;
  };
  return {
    systemDatabaseUrl: databaseUrl(systemDatabase),
    /** A new schema name, dropped by `cleanup`. */
    schema,
    /** A Postgres storage on `name` (a new schema when not given). */
    storage(name = schema()): Storage {
      return postgresStorage({ connectionString: DATABASE_URL, schema: name, poolSize: 10 });
    },
    /** Queries DBOS's system database. */
    async system<T extends pg.QueryResultRow>(sql: string, values: unknown[] = []): Promise<T[]> {
      const client = new pg.Client({ connectionString: databaseUrl(systemDatabase) });
      await client.connect();
      try {
        return (await client.query<T>(sql, values)).rows;
      } finally {
        await client.end();
      }
    },
    async cleanup(): Promise<void> {
      const admin = new pg.Client({ connectionString: DATABASE_URL });
      await admin.connect();
      try {
        for (const schema of schemas) await admin.query(`drop schema if exists "${schema}" cascade`);
        await admin.query(`drop database if exists "${systemDatabase}" with (force)`);
      } finally {
        await admin.end();
      }
    },
  };
}
