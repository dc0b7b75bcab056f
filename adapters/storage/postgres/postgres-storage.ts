import { Kysely, PostgresDialect, type PostgresPool, type PostgresPoolClient } from "kysely";
import { KiloError } from "../../../src/errors.js";
import { postgresDialect } from "../sql/postgres-dialect.js";
import { checkTablePrefix, sqlNames, TablePrefixPlugin, type Tables } from "../sql/schema.js";
import { createSqlStorage, type SqlStorage } from "../sql/sql-storage.js";

const ADAPTER = "postgres";

/** Options shared by every way of pointing {@link postgresStorage} at a database. */
export interface PostgresStorageCommonOptions {
  /**
   * Postgres schema that holds kilo's tables; kilo creates it when missing.
   * Default: the connection's current schema (usually `public`).
   */
  schema?: string;
  /**
   * Prefix of kilo's table, index and constraint names (letters, digits and
   * `_`, at most 24 characters). Default: none.
   */
  tablePrefix?: string;
  /**
   * Run pending migrations when the storage starts (default `true`). With
   * `false`, start only checks that the schema is current and fails with
   * `CONFIGURATION_INVALID` otherwise; run `storage.migrate()` from a deploy step.
   */
  migrate?: boolean;
}

/** kilo creates (and ends) its own pool. Needs the `pg` package. */
export interface PostgresConnectionOptions extends PostgresStorageCommonOptions {
  /** `postgres://user:password@host:port/database`. The password never appears in kilo's errors. */
  connectionString: string;
  /** Most connections kilo's pool opens (default 10). */
  poolSize?: number;
  pool?: never;
  kysely?: never;
}

/**
 * kilo uses the host's pg `Pool` and never ends it. Give the pool an `error`
 * listener (pg emits one when an idle connection dies; unheard, it crashes the process).
 */
export interface PostgresPoolOptions extends PostgresStorageCommonOptions {
  /** A pg `Pool` (or anything with its `connect` and `end`). */
  pool: PostgresPool;
  connectionString?: never;
  poolSize?: never;
  kysely?: never;
}

/** kilo runs its queries through the host's kysely instance (Postgres dialect) and never destroys it. */
export interface PostgresKyselyOptions<DB> extends PostgresStorageCommonOptions {
  kysely: Kysely<DB>;
  connectionString?: never;
  poolSize?: never;
  pool?: never;
}

/** Options of {@link postgresStorage}: exactly one of `connectionString`, `pool` or `kysely`. */
export type PostgresStorageOptions<DB = unknown> =
  | PostgresConnectionOptions
  | PostgresPoolOptions
  | PostgresKyselyOptions<DB>;

/** The storage {@link postgresStorage} returns: the Storage port plus `init`, `migrate` and `close`. */
export type PostgresStorage = SqlStorage;

/** The part of pg's `Pool` that kilo uses on a pool it created itself. */
interface OwnedPool extends PostgresPool {
  on(event: "error", listener: (error: Error) => void): unknown;
}

type PoolConstructor = new (config: { connectionString: string; max: number }) => OwnedPool;

/**
 * A {@link SqlStorage} on Postgres through pg: for servers, and for several
 * processes sharing one database. Passes the whole storage conformance suite.
 *
 * Guarantees:
 * - Durable once a call resolves; shared by every process using the database
 *   (`crossProcess: true`).
 * - Message seqs are assigned under the conversation's row lock in the insert's
 *   own statement: strictly increasing per conversation across processes.
 * - `commitTurn` is one statement (one round trip), all or nothing.
 * - Transactions run on one pooled connection at READ COMMITTED. Inside a
 *   transaction callback, calls on the storage itself join the transaction; a
 *   nested `transaction()` is a savepoint. A foreign-key error inside a
 *   transaction aborts it (Postgres's rule); CONFLICTs on create do not.
 * - Migrations run under an advisory lock keyed by schema and prefix, so
 *   processes starting together apply each migration once.
 * - An unreachable database gives one `STORAGE_FAILED` error (retryable) naming
 *   host, port and database, never the password. A dropped connection fails the
 *   call in flight with `STORAGE_FAILED`; the next call gets a new connection.
 * - Postgres cannot store NUL: it is escaped transparently in text and JSON.
 *
 * `pg` is loaded only when kilo creates the pool itself; without it, that first
 * use fails with an error naming the package.
 *
 * Capabilities: `{ transactions: true, crossProcess: true, durable: true }`.
 *
 * @example
 * ```ts
 * import { createKilo } from "kilo";
 * import { postgresStorage } from "kilo/storage/postgres";
 *
 * const storage = postgresStorage({ connectionString: process.env.DATABASE_URL!, schema: "kilo" });
 * const kilo = createKilo({ storage, providers: [myProvider] });
 * ```
 */
export function postgresStorage<DB = unknown>(options: PostgresStorageOptions<DB>): PostgresStorage {
  const given = ["connectionString", "pool", "kysely"].filter(
    (key) => (options as unknown as Record<string, unknown>)[key] !== undefined,
  );
  if (given.length !== 1) {
    throw configurationError(
      `pass exactly one of \`connectionString\`, \`pool\` or \`kysely\` (got ${given.length === 0 ? "none" : given.join(", ")})`,
    );
  }
  const prefix = checkPrefix(options.tablePrefix);
  const schema = checkSchemaName(options.schema);

  let base: Kysely<Tables>;
  let owned = false;
  let target: string;
  if (options.connectionString !== undefined) {
    const { connectionString } = options;
    if (typeof connectionString !== "string" || connectionString === "") {
      throw configurationError("`connectionString` must be a non-empty string");
    }
    const poolSize = options.poolSize ?? 10;
    if (!Number.isInteger(poolSize) || poolSize < 1)
      throw configurationError("`poolSize` must be an integer >= 1");
    owned = true;
    target = describeConnectionString(connectionString);
    base = new Kysely<Tables>({
      dialect: new PostgresDialect({
        pool: async () => guardClients(await createPool(connectionString, poolSize)),
      }),
    });
  } else if (options.pool !== undefined) {
    const { pool } = options;
    if (typeof pool.connect !== "function") throw configurationError("`pool` must be a pg Pool");
    target = describePool(pool);
    base = new Kysely<Tables>({ dialect: new PostgresDialect({ pool: guardClients(pool) }) });
  } else {
    target = "the host's kysely instance";
    base = options.kysely as unknown as Kysely<Tables>;
  }

  let db = prefix === "" ? base : base.withPlugin(new TablePrefixPlugin(prefix));
  if (schema !== null) db = db.withSchema(schema);

  return createSqlStorage({
    dialect: postgresDialect,
    db,
    names: sqlNames(prefix, schema),
    capabilities: { transactions: true, crossProcess: true, durable: true },
    migrate: options.migrate !== false,
    target,
    async release() {
      // A pool or kysely instance the host passed in stays open: the host owns it.
      if (owned) await base.destroy();
    },
  });
}

function configurationError(message: string, cause?: unknown): KiloError {
  return new KiloError("CONFIGURATION_INVALID", `postgresStorage: ${message}`, { adapter: ADAPTER, cause });
}

function checkPrefix(prefix: string | undefined): string {
  return checkTablePrefix(prefix, (message) => configurationError(message));
}

function checkSchemaName(schema: string | undefined): string | null {
  if (schema === undefined) return null;
  if (typeof schema !== "string" || schema === "" || schema.length > 63 || schema.includes("\u0000")) {
    throw configurationError("`schema` must be a non-empty name of at most 63 characters");
  }
  return schema;
}

/** `host:port/database` of a connection string, without user or password. */
function describeConnectionString(connectionString: string): string {
  try {
    const url = new URL(connectionString);
    const host = url.hostname || url.searchParams.get("host") || "localhost";
    const database = decodeURIComponent(url.pathname.replace(/^\//, ""));
    return `${host}:${url.port || "5432"}/${database || "(default database)"}`;
  } catch {
    return "the database of `connectionString`";
  }
}

function describePool(pool: PostgresPool): string {
  const options = (pool as { options?: Record<string, unknown> }).options;
  if (typeof options?.connectionString === "string")
    return describeConnectionString(options.connectionString);
  if (typeof options?.host === "string" || typeof options?.database === "string") {
    const host = typeof options.host === "string" ? options.host : "localhost";
    const port = typeof options.port === "number" || typeof options.port === "string" ? options.port : 5432;
    const database = typeof options.database === "string" ? options.database : "(default database)";
    return `${host}:${port}/${database}`;
  }
  return "the host's pg pool";
}

async function createPool(connectionString: string, max: number): Promise<OwnedPool> {
  let loaded: unknown;
  try {
    loaded = await import("pg");
  } catch (cause) {
    throw configurationError(
      "`connectionString` needs the optional package `pg`: run `npm install pg` (or pass your own `pool` or `kysely`)",
      cause,
    );
  }
  const module = loaded as { Pool?: unknown; default?: { Pool?: unknown } };
  const Pool = (module.Pool ?? module.default?.Pool) as PoolConstructor;
  const pool = new Pool({ connectionString, max });
  // pg reports a connection that died while idle in the pool here, after removing it;
  // the next query opens a new one, so there is nothing left to do.
  pool.on("error", () => undefined);
  return pool;
}

/** Clients that already have kilo's listener: one host pool may serve several storages. */
const guardedClients = new WeakSet<object>();

/**
 * Hands kysely the pool's clients with an `error` listener attached. pg emits
 * `error` on a checked-out client whose backend went away between queries; with
 * no listener that event would crash the process. The next query on that client
 * fails (reported as STORAGE_FAILED) and pg drops the client when it is released.
 */
function guardClients(pool: PostgresPool): PostgresPool {
  return {
    async connect(): Promise<PostgresPoolClient> {
      const client = await pool.connect();
      const emitter = client as PostgresPoolClient & {
        on?: (event: "error", listener: () => void) => unknown;
      };
      if (!guardedClients.has(client) && typeof emitter.on === "function") {
        guardedClients.add(client);
        emitter.on("error", () => undefined);
      }
      return client;
    },
    end: () => pool.end(),
  };
}
