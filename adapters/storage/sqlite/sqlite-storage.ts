import {
  type DatabaseConnection,
  type Driver,
  Kysely,
  type SqliteDatabase,
  SqliteDialect,
  type SqliteDialectConfig,
  SqliteDriver,
  type SqliteStatement,
  sql,
} from "kysely";
import { KiloError } from "../../../src/errors.js";
import { checkTablePrefix, sqlNames, TablePrefixPlugin, type Tables } from "../sql/schema.js";
import { createSqlStorage, type SqlStorage } from "../sql/sql-storage.js";
import { sqliteDialect } from "../sql/sqlite-dialect.js";

const ADAPTER = "sqlite";

/** Options shared by every way of pointing {@link sqliteStorage} at a database. */
export interface SqliteStorageCommonOptions {
  /**
   * Prefix of kilo's table, index and constraint names (letters, digits and
   * `_`, at most 24 characters), so kilo can live in a database the host also
   * uses, or two kilo installs in one file. Default: none.
   */
  tablePrefix?: string;
  /**
   * Run pending migrations when the storage starts (default `true`). With
   * `false`, start only checks that the schema is current and fails with
   * `CONFIGURATION_INVALID` otherwise; run `storage.migrate()` from a deploy step.
   */
  migrate?: boolean;
}

/** kilo opens (and closes) the file itself. Needs the `better-sqlite3` package. */
export interface SqliteFileOptions extends SqliteStorageCommonOptions {
  /** Path of the database file (created when missing), or `":memory:"` for a private in-memory database. */
  filename: string;
  database?: never;
  kysely?: never;
}

/** kilo uses the host's better-sqlite3 `Database` and never closes it. */
export interface SqliteDatabaseOptions extends SqliteStorageCommonOptions {
  /** An open better-sqlite3 `Database` (or anything with its `prepare` and `close`). */
  database: SqliteDatabase;
  filename?: never;
  kysely?: never;
}

/** kilo runs its queries through the host's kysely instance (SQLite dialect) and never destroys it. */
export interface SqliteKyselyOptions<DB> extends SqliteStorageCommonOptions {
  kysely: Kysely<DB>;
  filename?: never;
  database?: never;
}

/** Options of {@link sqliteStorage}: exactly one of `filename`, `database` or `kysely`. */
export type SqliteStorageOptions<DB = unknown> =
  | SqliteFileOptions
  | SqliteDatabaseOptions
  | SqliteKyselyOptions<DB>;

/** The storage {@link sqliteStorage} returns: the Storage port plus `init`, `migrate` and `close`. */
export type SqliteStorage = SqlStorage;

/** The part of better-sqlite3's `Database` that kilo uses on a database it opened itself. */
interface OwnedDatabase extends SqliteDatabase {
  pragma(source: string): unknown;
}

type DatabaseConstructor = new (filename: string) => OwnedDatabase;

/**
 * A {@link SqlStorage} on SQLite through better-sqlite3: an embedded database
 * in one file, for single-process hosts, CLIs and demos. Passes the whole
 * storage conformance suite.
 *
 * Guarantees:
 * - Durable once a call resolves (when a file is used; WAL journal).
 * - One connection: statements run one at a time, so message seqs are strictly
 *   increasing in append order; transactions (`BEGIN IMMEDIATE`) hold the
 *   connection, and calls made outside an open transaction wait for it, served
 *   in the order they were made.
 * - Inside a transaction callback, calls on the storage itself join the
 *   transaction instead of waiting for it (they would wait forever); a nested
 *   `transaction()` is a savepoint.
 * - Not shared across processes (`crossProcess: false`): two processes may open
 *   one file, but ordering guarantees hold within one process only.
 * - Case-insensitive matching of skill-record fields uses SQLite's `lower()`,
 *   which folds ASCII only; skill names and memory keys are folded by kilo
 *   (full Unicode).
 *
 * `better-sqlite3` is loaded only when kilo opens a file itself; without it,
 * that first use fails with an error naming the package. On any database kilo
 * turns on `PRAGMA foreign_keys` (the schema relies on cascading deletes).
 *
 * Capabilities: `{ transactions: true, crossProcess: false, durable }`, where
 * `durable` is false for `":memory:"`.
 *
 * @example
 * ```ts
 * import { createKilo } from "kilo";
 * import { sqliteStorage } from "kilo/storage/sqlite";
 *
 * const kilo = createKilo({ storage: sqliteStorage({ filename: "kilo.db" }), providers: [myProvider] });
 * ```
 */
export function sqliteStorage<DB = unknown>(options: SqliteStorageOptions<DB>): SqliteStorage {
  const given = ["filename", "database", "kysely"].filter(
    (key) => (options as unknown as Record<string, unknown>)[key] !== undefined,
  );
  if (given.length !== 1) {
    throw configurationError(
      `pass exactly one of \`filename\`, \`database\` or \`kysely\` (got ${given.length === 0 ? "none" : given.join(", ")})`,
    );
  }
  const prefix = checkPrefix(options.tablePrefix);
  const plugin = prefix === "" ? null : new TablePrefixPlugin(prefix);
  const withPrefix = (db: Kysely<Tables>) => (plugin ? db.withPlugin(plugin) : db);

  let base: Kysely<Tables>;
  let owned = false;
  let target: string;
  let durable = true;
  if (options.filename !== undefined) {
    const filename = options.filename;
    if (typeof filename !== "string" || filename === "")
      throw configurationError("`filename` must be a non-empty path");
    owned = true;
    target = filename;
    durable = filename !== ":memory:";
    base = new Kysely<Tables>({
      dialect: new QueuedSqliteDialect({
        database: async () => reusingStatements(await openDatabase(filename)),
      }),
    });
  } else if (options.database !== undefined) {
    const database = options.database;
    if (typeof database.prepare !== "function")
      throw configurationError("`database` must be a better-sqlite3 Database");
    const described = database as SqliteDatabase & { name?: unknown; memory?: unknown };
    target = typeof described.name === "string" ? described.name : "the host's better-sqlite3 database";
    durable = described.memory !== true;
    base = kyselyFor(database);
  } else {
    target = "the host's kysely instance";
    base = options.kysely as unknown as Kysely<Tables>;
  }

  return createSqlStorage({
    dialect: sqliteDialect,
    db: withPrefix(base),
    names: sqlNames(prefix, null),
    capabilities: { transactions: true, crossProcess: false, durable },
    migrate: options.migrate !== false,
    target,
    async prepare(db) {
      await sql`pragma foreign_keys = on`.execute(db);
      const { rows } = await sql<{ foreign_keys: unknown }>`pragma foreign_keys`.execute(db);
      if (Number(rows[0]?.foreign_keys) !== 1) {
        throw configurationError(
          "could not turn on `PRAGMA foreign_keys` (is a transaction open on the connection?); kilo's schema relies on it",
        );
      }
    },
    async release() {
      // A database or kysely instance the host passed in stays open: the host owns it.
      if (owned) await base.destroy();
    },
  });
}

/**
 * One kysely per host Database, shared by every storage on it (installs with
 * different prefixes, say). kysely serializes a connection's use with a lock that
 * lives in its driver; two drivers on one connection would let one install's
 * statements run inside the other's open transaction.
 */
const kyselyByDatabase = new WeakMap<SqliteDatabase, Kysely<Tables>>();

function kyselyFor(database: SqliteDatabase): Kysely<Tables> {
  let kysely = kyselyByDatabase.get(database);
  if (!kysely) {
    kysely = new Kysely<Tables>({
      dialect: new QueuedSqliteDialect({ database: reusingStatements(database) }),
    });
    kyselyByDatabase.set(database, kysely);
  }
  return kysely;
}

/** kysely's SQLite dialect, with a driver that hands its one connection out in turn ({@link QueuedSqliteDriver}). */
class QueuedSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;

  constructor(config: SqliteDialectConfig) {
    super(config);
    this.#config = config;
  }

  override createDriver(): Driver {
    return new QueuedSqliteDriver(this.#config);
  }
}

/**
 * kysely's SQLite driver, with the callers waiting for its one connection
 * queued first in, first out. kysely's own lock wakes every waiter at each
 * release and all but one wait again: with hundreds of calls waiting (a burst
 * of ingests, 64 runs under way) that was quadratic work, and the runs bench
 * on SQLite spent more CPU per run under load than alone because of it. Here
 * one waiter at a time reaches kysely's lock, which it then finds free.
 */
class QueuedSqliteDriver extends SqliteDriver {
  /** Callers waiting for the connection, oldest first, from `#head` on. */
  #waiting: Array<() => void> = [];
  #head = 0;
  #held = false;

  override async acquireConnection(): Promise<DatabaseConnection> {
    if (this.#held) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#held = true;
    return super.acquireConnection();
  }

  override async releaseConnection(): Promise<void> {
    await super.releaseConnection();
    if (this.#head === this.#waiting.length) {
      this.#held = false;
      return;
    }
    // The connection passes straight to the oldest waiter (still held).
    const next = this.#waiting[this.#head]!;
    this.#head += 1;
    if (this.#head === this.#waiting.length) {
      this.#waiting = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#waiting.length) {
      this.#waiting = this.#waiting.slice(this.#head);
      this.#head = 0;
    }
    next();
  }
}

/** Most prepared statements kept per database; the least recently used go first. */
const STATEMENT_CACHE_SIZE = 256;

/**
 * The database as kysely's SQLite driver sees it, with each SQL text prepared
 * once: the driver prepares every query it runs, and preparing the same SQL
 * again was 12% of the CPU of the runs bench on SQLite (its profile; parse and
 * plan of ~17 statements per run). kilo's statements are few fixed texts. A
 * statement is used by one query at a time (the driver runs one query at a
 * time on its one connection), and SQLite prepares it again by itself after a
 * schema change.
 */
function reusingStatements(database: SqliteDatabase): SqliteDatabase {
  const statements = new Map<string, SqliteStatement>();
  return {
    close: () => database.close(),
    prepare(text) {
      let statement = statements.get(text);
      if (statement !== undefined) {
        // Most recently used last, so the oldest entry is the least recently used.
        statements.delete(text);
      } else {
        statement = database.prepare(text);
        if (statements.size >= STATEMENT_CACHE_SIZE) statements.delete(statements.keys().next().value!);
      }
      statements.set(text, statement);
      return statement;
    },
  };
}

function configurationError(message: string, cause?: unknown): KiloError {
  return new KiloError("CONFIGURATION_INVALID", `sqliteStorage: ${message}`, { adapter: ADAPTER, cause });
}

function checkPrefix(prefix: string | undefined): string {
  return checkTablePrefix(prefix, (message) => configurationError(message));
}

async function openDatabase(filename: string): Promise<OwnedDatabase> {
  const Database = await loadBetterSqlite3();
  const database = new Database(filename);
  if (filename !== ":memory:") database.pragma("journal_mode = WAL");
  return database;
}

async function loadBetterSqlite3(): Promise<DatabaseConstructor> {
  let loaded: unknown;
  try {
    loaded = await import("better-sqlite3");
  } catch (cause) {
    throw configurationError(
      "opening a database file needs the optional package `better-sqlite3`: run `npm install better-sqlite3` " +
        "(or pass your own `database` or `kysely`)",
      cause,
    );
  }
  const module = loaded as { default?: unknown };
  const Database = (typeof module.default === "function" ? module.default : loaded) as DatabaseConstructor;
  return Database;
}
