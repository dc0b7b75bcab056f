import { createHash } from "node:crypto";
import { Kysely, PostgresDialect, type PostgresPool, type PostgresPoolClient } from "kysely";
import { KiloError } from "../../../src/errors.js";
import { PREPARED_MARK, postgresDialect } from "../sql/postgres-dialect.js";
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
  /**
   * Run kilo's hot statements (a turn's commit, a message append, a run's
   * create and step) as named prepared statements, planned once per
   * connection (default `true`; with `connectionString`, or a `pool` whose
   * `options.max` kilo can read). Set `false` behind a pooler that does not
   * keep prepared statements across transactions (PgBouncer before 1.21 in
   * transaction mode).
   */
  preparedStatements?: boolean;
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
  const prepared = options.preparedStatements !== false;

  let base: Kysely<Tables>;
  // The same pool with its connections handed to commits first (see `prioritized`); none when
  // kilo does not know the pool's size (a host's kysely, or a pool without `options.max`).
  let urgentBase: Kysely<Tables> | undefined;
  let owned = false;
  let target: string;
  /** kysely on each side of a prioritized pool. */
  const onPool = (lanes: () => Promise<PrioritizedPool>): [Kysely<Tables>, Kysely<Tables>] => [
    new Kysely<Tables>({ dialect: new PostgresDialect({ pool: async () => (await lanes()).normal }) }),
    new Kysely<Tables>({ dialect: new PostgresDialect({ pool: async () => (await lanes()).first }) }),
  ];
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
    let lanes: Promise<PrioritizedPool> | null = null;
    [base, urgentBase] = onPool(() => {
      lanes ??= createPool(connectionString, poolSize).then((pool) =>
        prioritized(guardClients(pool), { size: poolSize, owned: true, prepared }),
      );
      return lanes;
    });
  } else if (options.pool !== undefined) {
    const { pool } = options;
    if (typeof pool.connect !== "function") throw configurationError("`pool` must be a pg Pool");
    target = describePool(pool);
    const max = (pool as { options?: { max?: unknown } }).options?.max;
    if (typeof max === "number" && Number.isInteger(max) && max >= 1) {
      const lanes = Promise.resolve(prioritized(guardClients(pool), { size: max, owned: false, prepared }));
      [base, urgentBase] = onPool(() => lanes);
    } else {
      base = new Kysely<Tables>({ dialect: new PostgresDialect({ pool: guardClients(pool) }) });
    }
  } else {
    target = "the host's kysely instance";
    base = options.kysely as unknown as Kysely<Tables>;
  }

  const bind = (kysely: Kysely<Tables>) => {
    let bound = prefix === "" ? kysely : kysely.withPlugin(new TablePrefixPlugin(prefix));
    if (schema !== null) bound = bound.withSchema(schema);
    return bound;
  };

  return createSqlStorage({
    dialect: postgresDialect,
    db: bind(base),
    ...(urgentBase ? { urgentDb: bind(urgentBase) } : {}),
    names: sqlNames(prefix, schema),
    capabilities: { transactions: true, crossProcess: true, durable: true },
    migrate: options.migrate !== false,
    target,
    async release() {
      // A pool or kysely instance the host passed in stays open: the host owns it.
      if (owned) await Promise.all([base.destroy(), urgentBase?.destroy()]);
    },
  });
}

/** Names of prepared statements by their text (the few the dialect marks, in their shapes). */
const statementNames = new Map<string, string>();

/** A prepared statement's name: the same text always gets the same name, on every connection. */
function statementName(text: string): string {
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `kilo_${createHash("sha256").update(text).digest("hex").slice(0, 24)}`;
    // The marked shapes are few per schema; the bound only guards against a leak.
    if (statementNames.size >= 1_000) statementNames.clear();
    statementNames.set(text, name);
  }
  return name;
}

/** One pool as two: connections go to `first`'s callers before `normal`'s. */
interface PrioritizedPool {
  normal: PostgresPool;
  first: PostgresPool;
}

/**
 * Hands out at most `size` of the pool's connections at once, to waiting
 * `first` callers before `normal` ones. kilo's commits go first: under load
 * the commit that ends a run is what its conversation's next run waits for,
 * so it should not queue behind the reads of runs that are only starting.
 * `owned`: `end` ends the pool (once, from either side); otherwise it is the
 * host's. `prepared`: statements the dialect marks run as named prepared statements.
 */
function prioritized(
  pool: PostgresPool,
  { size, owned, prepared }: { size: number; owned: boolean; prepared: boolean },
): PrioritizedPool {
  let held = 0;
  const waiting: Array<Array<() => void>> = [[], []];
  const handOn = () => {
    const next = waiting[0]!.shift() ?? waiting[1]!.shift();
    if (next) next();
    else held--;
  };
  let ending: Promise<void> | null = null;
  const side = (level: 0 | 1): PostgresPool => ({
    async connect(): Promise<PostgresPoolClient> {
      if (held < size) held++;
      else await new Promise<void>((resolve) => waiting[level]!.push(resolve));
      let client: PostgresPoolClient;
      try {
        client = await pool.connect();
      } catch (error) {
        handOn();
        throw error;
      }
      let released = false;
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      return {
        // A statement marked by the dialect runs as a named prepared statement: pg parses it once
        // per connection, and Postgres plans it once (or keeps a generic plan) instead of each time.
        query: ((text: unknown, values?: readonly unknown[]) =>
          prepared && typeof text === "string" && text.startsWith(PREPARED_MARK)
            ? query({ name: statementName(text), text, values })
            : query(text, values)) as PostgresPoolClient["query"],
        release() {
          if (released) return;
          released = true;
          client.release();
          handOn();
        },
      };
    },
    end: () => {
      if (!owned) return Promise.resolve();
      ending ??= pool.end();
      return ending;
    },
  });
  return { normal: side(1), first: side(0) };
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
