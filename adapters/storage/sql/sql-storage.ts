import { AsyncLocalStorage } from "node:async_hooks";
import {
  type CreateTableBuilder,
  type Dialect,
  type Expression,
  type ExpressionBuilder,
  type Insertable,
  type Kysely,
  type RawBuilder,
  type Selectable,
  type SqlBool,
  sql,
} from "kysely";
import type { Bot, Soul } from "../../../src/domain/bot.js";
import type { Page } from "../../../src/domain/common.js";
import type { Conversation, Message, NewMessage } from "../../../src/domain/conversation.js";
import type { Memory, MemoryRevision, MemorySource } from "../../../src/domain/memory.js";
import type { IntegrationPlan, Proposal, ProposalStatus } from "../../../src/domain/proposal.js";
import type { NewRun, Run, RunError, RunStatus } from "../../../src/domain/run.js";
import { ownerScope, type SkillOwner, scopeKey } from "../../../src/domain/scope.js";
import type {
  MarkdownSkillBody,
  Skill,
  SkillDataField,
  SkillRecord,
  SkillStatus,
  TaskType,
} from "../../../src/domain/skill.js";
import type {
  Tool,
  ToolApproval,
  ToolApprovalStatus,
  ToolAuth,
  ToolCallAudit,
  ToolCallStatus,
  ToolEndpoint,
  ToolHttpMethod,
} from "../../../src/domain/tool.js";
import type { Trace, TraceFeedback, TraceMatchPass, TraceToolCall } from "../../../src/domain/trace.js";
import type { UsageRecord } from "../../../src/domain/usage.js";
import type { User } from "../../../src/domain/user.js";
import { KiloError, type KiloErrorCode } from "../../../src/errors.js";
import type {
  BotRepository,
  ConversationRepository,
  MemoryRepository,
  MessageRepository,
  ProposalRepository,
  RunHandOff,
  RunRepository,
  RunTurnCommit,
  RunTurnCommitted,
  SkillRecordFilter,
  SkillRecordRepository,
  SkillRepository,
  Storage,
  StorageCapabilities,
  StoragePageOptions,
  StorageRepositories,
  ToolApprovalRepository,
  ToolAuditRepository,
  ToolRepository,
  TraceRepository,
  TurnCommit,
  UsageRepository,
  UserRepository,
} from "../../../src/ports/storage.js";
import { copyRecord as copy } from "../../../src/runtime/copy.js";
import { checkSchema, LATEST_SCHEMA_VERSION, runMigrations } from "./migrations.js";
import { runStepRow, sqlRunStepRepository, upsertRunStep } from "./run-step-repository.js";
import type {
  BotsTable,
  ConversationsTable,
  MemoriesTable,
  MessagesTable,
  ProposalsTable,
  RunStepsTable,
  RunsTable,
  SkillRecordsTable,
  SkillsTable,
  SqlNames,
  StoredBoolean,
  StoredTimestamp,
  Tables,
  ToolApprovalsTable,
  ToolCallAuditTable,
  ToolsTable,
  TracesTable,
  UsageRecordsTable,
  UsersTable,
} from "./schema.js";

import { sqlSkillPromotionRepository } from "./skill-promotion-repository.js";
import { sqlSkillVersionRepository } from "./skill-version-repository.js";
import { type CursorPosition, decodeCursor, encodeCursor, readScope, storableJson } from "./sql-access.js";
import { sqlTeamMemberRepository, sqlTeamRepository } from "./team-repository.js";

/**
 * The Storage port on kysely, shared by `kilo/storage/sqlite` and
 * `kilo/storage/postgres`. Everything that differs between the two databases
 * sits behind {@link SqlDialect} (`sqlite-dialect.ts`, `postgres-dialect.ts`).
 *
 * @module
 */

/** A column type as kysely's schema builder takes it (`"text"`, `"jsonb"`, ...). */
export type SqlDataType = Parameters<CreateTableBuilder<string, never>["addColumn"]>[1];

/** Column types the migrations use, per dialect. */
export interface SqlColumnTypes {
  text: SqlDataType;
  json: SqlDataType;
  timestamp: SqlDataType;
  boolean: SqlDataType;
  integer: SqlDataType;
  real: SqlDataType;
}

/** How a failed statement is reported. */
export interface SqlErrorClass {
  code: KiloErrorCode;
  retryable: boolean;
  /** The database could not be reached (the message then names the target). */
  connection: boolean;
}

/** What became of a message append. */
export type AppendOutcome =
  | { kind: "appended"; seq: number }
  | { kind: "no-conversation" }
  | { kind: "conflict" };

/** The writes of {@link SqlDialect.commitTurn}, already encoded. */
export interface TurnRows {
  message: Insertable<MessagesTable>;
  usage: Insertable<UsageRecordsTable>[];
  conversationUpdatedAt: StoredTimestamp;
  /** The turn's trace, when it has one. */
  trace?: Insertable<TracesTable> | undefined;
}

/** A run a turn ends, encoded: stored with the turn by {@link SqlStorage.commitRunTurn}. */
export interface RunRows {
  /** The run's `turn` step, inserted or replacing the step at its index. */
  step: Insertable<RunStepsTable>;
  /** The run's outcome columns. */
  outcome: Pick<
    Insertable<RunsTable>,
    "id" | "bot_id" | "status" | "output" | "error" | "started_at" | "finished_at"
  >;
  /** The lease the run must still be under; `null`: it must only be `running`. */
  owner: string | null;
  /**
   * Start the key's next run once the outcome is stored ({@link RunTurnCommit.handOff}): claimed
   * for the owner, or without a lease (`leaseExpiresAt` null) when there is none; only `runId` when set.
   */
  handOff?: { now: unknown; leaseExpiresAt: unknown; runId: string | null } | undefined;
}

/**
 * What differs between the SQL databases kilo runs on. Implemented by
 * `sqliteDialect` and `postgresDialect`; the repositories are written once
 * against this interface.
 */
export interface SqlDialect {
  /** Adapter name used in errors (`sqlite`, `postgres`). */
  readonly name: string;
  /** Column types for migrations. */
  readonly types: SqlColumnTypes;
  /** The statement that opens a transaction. */
  readonly begin: string;
  /**
   * `SELECT ... FOR UPDATE SKIP LOCKED` is available: run claims lock the rows
   * they take and skip those other claimers hold (Postgres). Without it a claim
   * relies on {@link begin} holding the database's write lock (SQLite).
   */
  readonly rowLocks: boolean;
  /** A kysely dialect that only compiles (for migration checksums). */
  compileOnly(): Dialect;
  /** Encodes a free-text value for a text column. */
  text(value: string): string;
  /** Decodes a text column written with {@link text}. */
  fromText(raw: string): string;
  /** Serializes a JSON value for a JSON column. */
  json(value: unknown): string;
  /** Parses a JSON column as the driver returned it. */
  fromJson(raw: unknown): unknown;
  timestamp(date: Date): StoredTimestamp;
  fromTimestamp(raw: unknown): Date;
  boolean(value: boolean): StoredBoolean;
  fromBoolean(raw: unknown): boolean;
  /**
   * True when the JSON object in `column` has `field` equal to `value`: strings
   * case-insensitively, numbers and booleans exactly (and of the same type).
   */
  jsonFieldEquals(
    column: Expression<unknown>,
    field: string,
    value: string | number | boolean | null,
  ): RawBuilder<SqlBool>;
  /** True when the JSON object in `column` has a string `field` containing `text`, case-insensitively. */
  jsonFieldContains(column: Expression<unknown>, field: string, text: string): RawBuilder<SqlBool>;
  /** Appends a message, assigning the conversation's next seq atomically. */
  appendMessage(
    db: Kysely<Tables>,
    names: SqlNames,
    row: Insertable<MessagesTable>,
    /** Also sets the conversation's `updated_at` to this, with the seq's bump (a turn's commit). */
    touch?: StoredTimestamp,
  ): Promise<AppendOutcome>;
  /** Stores a turn in one statement, when the database can; otherwise the storage uses a transaction. */
  commitTurn?(db: Kysely<Tables>, names: SqlNames, rows: TurnRows): Promise<AppendOutcome>;
  /**
   * {@link commitTurn} with a run's step and conditional outcome, in one
   * statement; `finishedSeq` is the run's seq when its outcome was stored;
   * `next`, with `run.handOff`, the row of the key's next run it claimed.
   */
  commitRunTurn?(
    db: Kysely<Tables>,
    names: SqlNames,
    rows: TurnRows & { run: RunRows },
  ): Promise<{ append: AppendOutcome; finishedSeq: number | null; next?: Selectable<RunsTable> | null }>;
  /**
   * Inserts a run and bumps its key's seq in one statement, when the database
   * can; returns the run's seq. With `claim`, the run is inserted `running`
   * with `claim.row`'s start and lease when its key has no queued or running
   * run (`started`). A clash (id, delivery id, or a concurrent create that
   * started a run of the key first) throws the driver's unique-violation
   * error, having stored nothing. Otherwise the storage uses a transaction.
   */
  createRun?(
    db: Kysely<Tables>,
    names: SqlNames,
    row: Insertable<RunsTable>,
    claim?: { row: Pick<Insertable<RunsTable>, "started_at" | "lease_owner" | "lease_expires_at"> },
  ): Promise<{ seq: number; started: boolean }>;
  /**
   * `runs.claim` in one statement, when the database can: the claimed rows as
   * stored, each with its status before the claim.
   */
  claimRuns?(
    db: Kysely<Tables>,
    names: SqlNames,
    request: { owner: string; now: StoredTimestamp; leaseExpiresAt: StoredTimestamp; limit: number },
  ): Promise<Array<Selectable<RunsTable> & { previous_status: string }>>;
  /**
   * `runSteps.save` in one statement, when the database can: inserts the
   * step, or replaces the one at its index, only when the step's bot has the
   * run; returns false (storing nothing) when it has not. Otherwise the
   * storage uses a transaction (a read, then the upsert).
   */
  saveRunStep?(db: Kysely<Tables>, names: SqlNames, row: Insertable<RunStepsTable>): Promise<boolean>;
  /** Called first inside the migration transaction: takes the lock that serializes migrations. */
  lockMigrations(db: Kysely<Tables>, names: SqlNames): Promise<void>;
  /** Creates the schema that holds the tables, when the install has one. */
  createSchema?(db: Kysely<Tables>, names: SqlNames): Promise<void>;
  /** Classifies a driver error; `null` for errors it does not know. */
  classify(error: unknown): SqlErrorClass | null;
  /** True when `error` says a table (or the schema) does not exist. */
  isMissingTable(error: unknown): boolean;
}

/** Options of {@link SqlStorage.migrate}. */
export interface MigrateOptions {
  /**
   * Stop after this schema version instead of the latest. Meant for tests and
   * staged upgrades; migrations never run backwards.
   */
  to?: number;
}

/** What {@link SqlStorage.migrate} did. */
export interface MigrationResult {
  /** Names of the migrations applied by this call, in order (empty when the schema was current). */
  applied: string[];
}

/**
 * A SQL-backed {@link Storage}: the port plus explicit lifecycle and migrations.
 */
export interface SqlStorage extends Storage {
  /**
   * Connects and prepares the schema. By default runs pending migrations;
   * with `migrate: false` only checks that the schema is current and throws
   * `CONFIGURATION_INVALID` when it is not. Runs once; every other method calls it.
   */
  init(): Promise<void>;
  /**
   * Applies pending migrations (forward only) under a migration lock and
   * returns their names. Safe to call from several processes at once.
   */
  migrate(options?: MigrateOptions): Promise<MigrationResult>;
  commitTurn(turn: TurnCommit): Promise<Message>;
  commitRunTurn(turn: RunTurnCommit): Promise<RunTurnCommitted>;
  /** Releases what the adapter opened; never a database, pool or kysely instance the host passed in. */
  close(): Promise<void>;
}

/** What an adapter hands to {@link createSqlStorage}. */
export interface SqlStorageConfig {
  dialect: SqlDialect;
  /** kysely bound to the install's tables (prefix plugin and schema applied). */
  db: Kysely<Tables>;
  /**
   * Optional: `db` over the same connections, handed to its callers first.
   * Turn commits (`commitTurn`, `commitRunTurn`) outside a transaction use it:
   * under load, a conversation's next run waits for the commit of the one before.
   */
  urgentDb?: Kysely<Tables> | undefined;
  names: SqlNames;
  capabilities: StorageCapabilities;
  /** Run pending migrations in `init()` (default true). */
  migrate: boolean;
  /** The database as named in errors, without secrets (`127.0.0.1:5432/app`, a file path). */
  target: string;
  /** Runs once before the first statement (pragmas, connectivity). */
  prepare?(db: Kysely<Tables>): Promise<void>;
  /** Releases what the adapter opened. */
  release(): Promise<void>;
}

/** Builds a {@link SqlStorage} from an adapter's dialect and connection. */
export function createSqlStorage(config: SqlStorageConfig): SqlStorage {
  const { dialect, db: root, names, target } = config;
  const adapter = dialect.name;
  const context = new AsyncLocalStorage<TransactionScope>();
  const errors = new ErrorMapper(dialect, target);
  const codec = new RowCodec(dialect);

  let preparing: Promise<void> | null = null;
  let starting: Promise<void> | null = null;
  let closed = false;

  const ensureOpen = () => {
    if (closed) {
      throw new KiloError("CLOSED", `${adapter} storage: used after close()`, { adapter });
    }
  };
  const prepare = (): Promise<void> => {
    ensureOpen();
    preparing ??= (async () => {
      try {
        await config.prepare?.(root);
      } catch (error) {
        throw errors.map(error, "connect");
      }
    })().catch((error: unknown) => {
      preparing = null;
      throw error;
    });
    return preparing;
  };
  const migrate = async (options: MigrateOptions = {}): Promise<MigrationResult> => {
    await prepare();
    try {
      const applied = await runMigrations({
        db: root,
        dialect,
        names,
        to: options.to ?? LATEST_SCHEMA_VERSION,
        transaction: (op) => withTransaction(dialect, root, op),
      });
      return { applied };
    } catch (error) {
      throw errors.map(error, "migrate");
    }
  };
  const init = (): Promise<void> => {
    ensureOpen();
    starting ??= (async () => {
      await prepare();
      try {
        const status = await checkSchema(root, dialect, names);
        if (status.current) return;
        if (!config.migrate) throw status.problem;
        await migrate();
      } catch (error) {
        throw errors.map(error, "init");
      }
    })().catch((error: unknown) => {
      starting = null;
      throw error;
    });
    return starting;
  };

  const ambient = (): TransactionScope | null => {
    const scope = context.getStore();
    return scope?.isOpen() ? scope : null;
  };

  /** The connections handed out first (`config.urgentDb`) for `db`, unless `db` is a transaction's. */
  const urgent = (db: Kysely<Tables>) => (db === root && config.urgentDb ? config.urgentDb : db);

  const outerAccess: Access = {
    async run(what, op) {
      await init();
      const scope = ambient();
      try {
        return await op(scope ? scope.db : root);
      } catch (error) {
        throw errors.map(error, what);
      }
    },
    async atomic(what, op) {
      await init();
      const scope = ambient();
      try {
        return scope ? await op(scope.db) : await withTransaction(dialect, root, op);
      } catch (error) {
        throw errors.map(error, what);
      }
    },
  };

  const scopedAccess = (scope: TransactionScope): Access => {
    const run = async <T>(what: string, op: (db: Kysely<Tables>) => Promise<T>): Promise<T> => {
      if (!scope.isOpen()) {
        throw new KiloError(
          "CLOSED",
          `${adapter} storage: this transaction has already finished; its repositories can no longer be used`,
          { adapter },
        );
      }
      try {
        return await op(scope.db);
      } catch (error) {
        throw errors.map(error, what);
      }
    };
    return { run, atomic: run };
  };

  const runInScope = <T>(scope: TransactionScope, fn: (tx: StorageRepositories) => Promise<T>): Promise<T> =>
    context.run(scope, () => fn(buildRepositories(scopedAccess(scope), codec, dialect, names)));

  const savepoint = async <T>(
    parent: TransactionScope,
    fn: (tx: StorageRepositories) => Promise<T>,
  ): Promise<T> => {
    const name = sql.id(parent.nextSavepointName());
    try {
      await sql`savepoint ${name}`.execute(parent.db);
    } catch (error) {
      throw errors.map(error, "transaction");
    }
    const scope = new TransactionScope(parent.db, parent);
    let result: T;
    try {
      result = await runInScope(scope, fn);
    } catch (error) {
      scope.close();
      await sql`rollback to savepoint ${name}`.execute(parent.db).catch(() => undefined);
      throw error;
    }
    scope.close();
    try {
      await sql`release savepoint ${name}`.execute(parent.db);
    } catch (error) {
      throw errors.map(error, "transaction");
    }
    return result;
  };

  const transaction = async <T>(fn: (tx: StorageRepositories) => Promise<T>): Promise<T> => {
    await init();
    // Inside a transaction of this storage, join it (as a savepoint) instead of
    // waiting for a second connection: on SQLite that connection is the one the
    // outer transaction holds, so waiting would never end.
    const parent = ambient();
    if (parent) return savepoint(parent, fn);
    let thrownByCallback = false;
    try {
      return await withTransaction(dialect, root, async (db) => {
        const scope = new TransactionScope(db, null);
        try {
          return await runInScope(scope, fn);
        } catch (error) {
          thrownByCallback = true;
          throw error;
        } finally {
          scope.close();
        }
      });
    } catch (error) {
      if (thrownByCallback) throw error;
      throw errors.map(error, "transaction");
    }
  };

  const repositories = buildRepositories(outerAccess, codec, dialect, names);

  const commitTurn = async (turn: TurnCommit): Promise<Message> => {
    const rows = turnRows(turn);
    if (dialect.commitTurn) {
      const outcome = await outerAccess.run("commitTurn", (db) =>
        dialect.commitTurn!(urgent(db), names, rows),
      );
      return appendedMessage(turn.message, outcome, adapter);
    }
    return outerAccess.atomic("commitTurn", (db) => writeTurn(db, turn, rows));
  };

  /** A turn's rows, encoded. */
  const turnRows = (turn: TurnCommit): TurnRows => ({
    message: codec.messageRow(turn.message, 0),
    usage: turn.usage.map((record) => codec.usageRow(record)),
    conversationUpdatedAt: dialect.timestamp(turn.conversationUpdatedAt),
    trace: turn.trace ? traceRow(codec, dialect, turn.trace) : undefined,
  });

  /** A turn's writes one by one, inside a transaction; returns the stored reply. */
  const writeTurn = async (db: Kysely<Tables>, turn: TurnCommit, rows: TurnRows): Promise<Message> => {
    // Throws on a missing conversation or a taken id, which rolls the whole turn back.
    // The append's bump also touches the conversation.
    const stored = appendedMessage(
      turn.message,
      await dialect.appendMessage(db, names, rows.message, rows.conversationUpdatedAt),
      adapter,
    );
    for (const row of rows.usage) await db.insertInto("usage_records").values(row).execute();
    if (rows.trace) await db.insertInto("traces").values(rows.trace).execute();
    return stored;
  };

  const commitRunTurn = async (turn: RunTurnCommit): Promise<RunTurnCommitted> => {
    const rows = turnRows(turn);
    const { id, bot_id, status, output, error, started_at, finished_at } = runRow(
      codec,
      dialect,
      turn.run,
      turn.run.seq,
    );
    // Runs executed without leases are handed on only to the run their queue names.
    const handOff =
      turn.handOff && (turn.owner !== null || turn.handOff.runId !== undefined) ? turn.handOff : undefined;
    const run: RunRows = {
      step: runStepRow(dialect, turn.step),
      outcome: { id, bot_id, status, output, error, started_at, finished_at },
      owner: turn.owner,
      ...(handOff
        ? {
            handOff: {
              now: dialect.timestamp(handOff.now),
              leaseExpiresAt: turn.owner === null ? null : dialect.timestamp(handOff.leaseExpiresAt),
              runId: handOff.runId ?? null,
            },
          }
        : {}),
    };
    const finished = (seq: number | null): Run | null => (seq === null ? null : { ...copy(turn.run), seq });
    if (dialect.commitRunTurn) {
      const committed = await outerAccess.run("commitRunTurn", (db) =>
        dialect.commitRunTurn!(urgent(db), names, { ...rows, run }),
      );
      return {
        message: appendedMessage(turn.message, committed.append, adapter),
        run: finished(committed.finishedSeq),
        ...(handOff ? { next: committed.next ? runOf(dialect, committed.next) : null } : {}),
      };
    }
    return outerAccess.atomic("commitRunTurn", async (db) => {
      const stored = await writeTurn(db, turn, rows);
      let update = db
        .updateTable("runs")
        .set({ status, output, error, started_at, finished_at, lease_owner: null, lease_expires_at: null })
        .where("id", "=", id)
        .where("bot_id", "=", bot_id)
        .where("status", "=", sql.lit("running"));
      if (turn.owner !== null) update = update.where("lease_owner", "=", turn.owner);
      const row = await update.returning("seq").executeTakeFirst();
      // The outcome's update matched the run by id and bot: its step needs no ownership read.
      const owned = row !== undefined && turn.step.runId === id && turn.step.botId === bot_id;
      await upsertRunStep(db, dialect, turn.step, owned);
      const ended = finished(row ? toNumber(row.seq) : null);
      if (!handOff) return { message: stored, run: ended };
      const next = ended ? await handOffRun(db, ended, turn.owner, handOff) : null;
      return { message: stored, run: ended, next };
    });
  };

  /**
   * Starts the key's next run once `finished` has ended (a hand-off, in the caller's transaction),
   * claimed for `owner` when there is one: its unfinished run with the smallest seq, when that one
   * is queued, is `handOff.runId` (when given) and is not reserved for another owner past `handOff.now`.
   */
  const handOffRun = async (
    db: Kysely<Tables>,
    finished: Run,
    owner: string | null,
    handOff: RunHandOff,
  ): Promise<Run | null> => {
    const at = dialect.timestamp(handOff.now);
    const leaseIsFree = (eb: ExpressionBuilder<Tables, "runs">) =>
      eb.or([
        eb("lease_owner", "is", null),
        ...(owner === null ? [] : [eb("lease_owner", "=", owner)]),
        eb("lease_expires_at", "<", at),
      ]);
    const columns = claimedColumns(
      at,
      owner,
      owner === null ? null : dialect.timestamp(handOff.leaseExpiresAt),
    );
    const key = dialect.text(finished.conversationKey);
    if (handOff.runId !== undefined && !dialect.rowLocks) {
      // The queue names the run: one statement starts it when no run of its key comes before it
      // (without row locks the transaction holds the whole database, so nothing moves meanwhile).
      const named = handOff.runId;
      const row = await db
        .updateTable("runs")
        .set(columns)
        .where("id", "=", named)
        .where("bot_id", "=", finished.botId)
        .where("conversation_key", "=", key)
        .where("status", "=", sql.lit("queued"))
        .where(leaseIsFree)
        .where((eb) =>
          eb.not(
            eb.exists(
              eb
                .selectFrom("runs")
                .select("id")
                .where("bot_id", "=", finished.botId)
                .where("conversation_key", "=", key)
                .where("status", "in", UNFINISHED)
                .where("seq", "<", eb.selectFrom("runs").select("seq").where("id", "=", named)),
            ),
          ),
        )
        .returningAll()
        .executeTakeFirst();
      return row ? runOf(dialect, row) : null;
    }
    let head = db
      .selectFrom("runs")
      .select(["id", "status"])
      .where("bot_id", "=", finished.botId)
      .where("conversation_key", "=", key)
      .where("status", "in", UNFINISHED)
      .orderBy("seq")
      .limit(1);
    if (dialect.rowLocks) head = head.forUpdate();
    const found = await head.executeTakeFirst();
    if (!found || dialect.fromText(found.status) !== "queued") return null;
    if (handOff.runId !== undefined && found.id !== handOff.runId) return null;
    const row = await db
      .updateTable("runs")
      .set(columns)
      .where("id", "=", found.id)
      .where("status", "=", sql.lit("queued"))
      .where(leaseIsFree)
      .returningAll()
      .executeTakeFirst();
    return row ? runOf(dialect, row) : null;
  };

  return {
    name: adapter,
    capabilities: { ...config.capabilities },
    ...repositories,
    init,
    migrate,
    transaction,
    commitTurn,
    commitRunTurn,
    async close() {
      if (closed) return;
      closed = true;
      // A start that is under way finishes (or fails) before its connection is released.
      await starting?.catch(() => undefined);
      await preparing?.catch(() => undefined);
      await config.release();
    },
  };
}

/** Opens a transaction on one connection, runs `op` on it, commits, or rolls back and rethrows. */
export async function withTransaction<T>(
  dialect: SqlDialect,
  db: Kysely<Tables>,
  op: (db: Kysely<Tables>) => Promise<T>,
): Promise<T> {
  return db.connection().execute(async (connection) => {
    await sql.raw(dialect.begin).execute(connection);
    let result: T;
    try {
      result = await op(connection);
    } catch (error) {
      // A failed rollback (a dropped connection, say) must not hide why the transaction failed.
      await sql`rollback`.execute(connection).catch(() => undefined);
      throw error;
    }
    try {
      await sql`commit`.execute(connection);
    } catch (error) {
      await sql`rollback`.execute(connection).catch(() => undefined);
      throw error;
    }
    return result;
  });
}

// ---------------------------------------------------------------------------
// Transactions and errors

/** A transaction (no parent) or a savepoint inside one, all on the same connection. */
class TransactionScope {
  private open = true;
  private savepoints = 0;

  constructor(
    readonly db: Kysely<Tables>,
    private readonly parent: TransactionScope | null,
  ) {}

  isOpen(): boolean {
    return this.open && (this.parent?.isOpen() ?? true);
  }

  close(): void {
    this.open = false;
  }

  nextSavepointName(): string {
    if (this.parent) return this.parent.nextSavepointName();
    this.savepoints += 1;
    return `kilo_savepoint_${this.savepoints}`;
  }
}

class ErrorMapper {
  constructor(
    private readonly dialect: SqlDialect,
    private readonly target: string,
  ) {}

  map(error: unknown, what: string): KiloError {
    if (KiloError.is(error)) return error;
    const adapter = this.dialect.name;
    const reason = describe(error);
    const kind = this.dialect.classify(error);
    if (kind?.connection) {
      return new KiloError(
        kind.code,
        `${adapter} storage: cannot reach the database at ${this.target} (${what}): ${reason}`,
        { adapter, retryable: kind.retryable, cause: error },
      );
    }
    const code = kind?.code ?? "STORAGE_FAILED";
    const message =
      code === "CONFLICT"
        ? `${adapter} storage: ${what} clashed with an existing row: ${reason}`
        : code === "NOT_FOUND"
          ? `${adapter} storage: ${what} refers to a row that does not exist: ${reason}`
          : `${adapter} storage: ${what} failed: ${reason}`;
    return new KiloError(code, message, { adapter, retryable: kind?.retryable ?? false, cause: error });
  }
}

function describe(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return describe(error.errors[0]);
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    if (error.message) return error.message;
    if (typeof code === "string") return code;
    return error.name;
  }
  return String(error);
}

function storageError(adapter: string, code: KiloErrorCode, message: string): KiloError {
  return new KiloError(code, `${adapter} storage: ${message}`, { adapter });
}

function appendedMessage(message: NewMessage, outcome: AppendOutcome, adapter: string): Message {
  if (outcome.kind === "no-conversation") {
    throw storageError(
      adapter,
      "NOT_FOUND",
      `cannot append: bot ${message.botId} has no conversation ${message.conversationId}`,
    );
  }
  if (outcome.kind === "conflict") {
    throw storageError(adapter, "CONFLICT", `a message with id ${message.id} already exists`);
  }
  return { ...copy(message), seq: outcome.seq };
}

// ---------------------------------------------------------------------------
// Rows <-> domain objects

/** Encodes domain objects into rows and decodes rows back, through the dialect. */
class RowCodec {
  constructor(private readonly dialect: SqlDialect) {}

  private text(value: string): string {
    return this.dialect.text(value);
  }

  private nullableText(value: string | null): string | null {
    return value === null ? null : this.dialect.text(value);
  }

  private readText(raw: string): string {
    return this.dialect.fromText(raw);
  }

  private readNullableText(raw: string | null): string | null {
    return raw === null ? null : this.dialect.fromText(raw);
  }

  json(value: unknown): string {
    return storableJson(this.dialect, value);
  }

  private readJson<T>(raw: unknown): T {
    return this.dialect.fromJson(raw) as T;
  }

  private time(date: Date): StoredTimestamp {
    return this.dialect.timestamp(date);
  }

  private readTime(raw: unknown): Date {
    return this.dialect.fromTimestamp(raw);
  }

  userRow(user: User): Insertable<UsersTable> {
    return {
      id: user.id,
      name: this.nullableText(user.name),
      metadata: this.json(user.metadata),
      created_at: this.time(user.createdAt),
    };
  }

  user(row: Selectable<UsersTable>): User {
    return {
      id: row.id,
      name: this.readNullableText(row.name),
      metadata: this.readJson(row.metadata),
      createdAt: this.readTime(row.created_at),
    };
  }

  botRow(bot: Bot): Insertable<BotsTable> {
    return {
      id: bot.id,
      user_id: bot.userId,
      name: this.text(bot.name),
      soul: bot.soul === null ? null : this.json(bot.soul),
      personality: this.nullableText(bot.personality),
      context: this.nullableText(bot.context),
      metadata: this.json(bot.metadata),
      created_at: this.time(bot.createdAt),
      updated_at: this.time(bot.updatedAt),
      team_id: bot.teamId ?? null,
    };
  }

  bot(row: Selectable<BotsTable>): Bot {
    const bot: Bot = {
      id: row.id,
      userId: row.user_id,
      name: this.readText(row.name),
      soul: row.soul === null ? null : this.readJson<Soul>(row.soul),
      personality: this.readNullableText(row.personality),
      context: this.readNullableText(row.context),
      metadata: this.readJson(row.metadata),
      createdAt: this.readTime(row.created_at),
      updatedAt: this.readTime(row.updated_at),
    };
    // Absent, not null, on a bot in no team, so a bot written without a team reads back as written.
    if (row.team_id !== null && row.team_id !== undefined) bot.teamId = row.team_id;
    return bot;
  }

  skillRow(skill: Skill): Insertable<SkillsTable> {
    return {
      id: skill.id,
      bot_id: skill.scope.kind === "bot" ? skill.scope.id : null,
      scope: scopeKey(skill.scope),
      team_id: skill.scope.kind === "team" ? skill.scope.id : null,
      name: this.text(skill.name),
      name_folded: this.text(fold(skill.name)),
      description: this.text(skill.description),
      instructions: this.text(skill.instructions),
      triggers: this.json(skill.triggers),
      examples: this.json(skill.examples),
      data_fields: this.json(skill.dataFields),
      required_integrations: this.json(skill.requiredIntegrations),
      task_type: this.text(skill.taskType),
      status: this.text(skill.status),
      metadata: this.json(skill.metadata),
      created_at: this.time(skill.createdAt),
      updated_at: this.time(skill.updatedAt),
      markdown: skill.markdown === undefined ? null : this.json(skill.markdown),
    };
  }

  skill(row: Selectable<SkillsTable>): Skill {
    const skill: Skill = {
      id: row.id,
      botId: row.bot_id,
      scope: readScope(row.scope),
      name: this.readText(row.name),
      description: this.readText(row.description),
      instructions: this.readText(row.instructions),
      triggers: this.readJson<string[]>(row.triggers),
      examples: this.readJson<string[]>(row.examples),
      dataFields: this.readJson<SkillDataField[]>(row.data_fields),
      requiredIntegrations: this.readJson<string[]>(row.required_integrations),
      taskType: this.readText(row.task_type) as TaskType,
      status: this.readText(row.status) as SkillStatus,
      metadata: this.readJson(row.metadata),
      createdAt: this.readTime(row.created_at),
      updatedAt: this.readTime(row.updated_at),
    };
    // Absent, not undefined, on a structured skill, so it reads back exactly as written.
    if (row.markdown !== null && row.markdown !== undefined) {
      skill.markdown = this.readJson<MarkdownSkillBody>(row.markdown);
    }
    return skill;
  }

  recordRow(record: SkillRecord): Insertable<SkillRecordsTable> {
    return {
      id: record.id,
      bot_id: record.botId,
      skill_id: record.skillId,
      data: this.json(record.data),
      created_at: this.time(record.createdAt),
      updated_at: this.time(record.updatedAt),
    };
  }

  record(row: Selectable<SkillRecordsTable>): SkillRecord {
    return {
      id: row.id,
      botId: row.bot_id,
      skillId: row.skill_id,
      data: this.readJson(row.data),
      createdAt: this.readTime(row.created_at),
      updatedAt: this.readTime(row.updated_at),
    };
  }

  conversationRow(conversation: Conversation): Insertable<ConversationsTable> {
    return {
      id: conversation.id,
      bot_id: conversation.botId,
      user_id: conversation.userId,
      channel: this.text(conversation.channel),
      title: this.nullableText(conversation.title),
      metadata: this.json(conversation.metadata),
      created_at: this.time(conversation.createdAt),
      updated_at: this.time(conversation.updatedAt),
    };
  }

  conversation(row: Selectable<ConversationsTable>): Conversation {
    return {
      id: row.id,
      botId: row.bot_id,
      userId: row.user_id,
      channel: this.readText(row.channel),
      title: this.readNullableText(row.title),
      metadata: this.readJson(row.metadata),
      createdAt: this.readTime(row.created_at),
      updatedAt: this.readTime(row.updated_at),
    };
  }

  messageRow(message: NewMessage, seq: number): Insertable<MessagesTable> {
    return {
      id: message.id,
      bot_id: message.botId,
      conversation_id: message.conversationId,
      seq,
      role: this.text(message.role),
      content: this.text(message.content),
      metadata: this.json(message.metadata),
      created_at: this.time(message.createdAt),
    };
  }

  message(row: Selectable<MessagesTable>): Message {
    return {
      id: row.id,
      conversationId: row.conversation_id,
      botId: row.bot_id,
      role: this.readText(row.role) as Message["role"],
      content: this.readText(row.content),
      seq: toNumber(row.seq),
      metadata: this.readJson(row.metadata),
      createdAt: this.readTime(row.created_at),
    };
  }

  memoryRow(memory: Memory): Insertable<MemoriesTable> {
    return {
      id: memory.id,
      bot_id: memory.botId,
      user_id: memory.userId,
      key: this.text(memory.key),
      key_folded: this.text(fold(memory.key)),
      content: this.text(memory.content),
      source: this.json(memory.source),
      // Dates inside JSON become ISO strings (toJSON); memory() turns them back into Dates.
      history: this.json(memory.history),
      created_at: this.time(memory.createdAt),
      updated_at: this.time(memory.updatedAt),
    };
  }

  memory(row: Selectable<MemoriesTable>): Memory {
    const history = this.readJson<Array<Omit<MemoryRevision, "replacedAt"> & { replacedAt: string }>>(
      row.history,
    );
    return {
      id: row.id,
      botId: row.bot_id,
      userId: row.user_id,
      key: this.readText(row.key),
      content: this.readText(row.content),
      source: this.readJson<MemorySource>(row.source),
      history: history.map((revision) => ({ ...revision, replacedAt: new Date(revision.replacedAt) })),
      createdAt: this.readTime(row.created_at),
      updatedAt: this.readTime(row.updated_at),
    };
  }

  usageRow(usage: UsageRecord): Insertable<UsageRecordsTable> {
    return {
      id: usage.id,
      bot_id: usage.botId,
      user_id: usage.userId,
      conversation_id: usage.conversationId,
      provider: this.text(usage.provider),
      model: this.text(usage.model),
      task_type: this.text(usage.taskType),
      purpose: this.text(usage.purpose),
      prompt_tokens: usage.promptTokens,
      completion_tokens: usage.completionTokens,
      cache_read_tokens: usage.cacheReadTokens,
      cache_write_tokens: usage.cacheWriteTokens,
      reasoning_tokens: usage.reasoningTokens,
      cost_usd: usage.costUsd,
      latency_ms: usage.latencyMs,
      success: this.dialect.boolean(usage.success),
      error_code: this.nullableText(usage.errorCode),
      created_at: this.time(usage.createdAt),
    };
  }

  usage(row: Selectable<UsageRecordsTable>): UsageRecord {
    return {
      id: row.id,
      botId: row.bot_id,
      userId: row.user_id,
      conversationId: row.conversation_id,
      provider: this.readText(row.provider),
      model: this.readText(row.model),
      taskType: this.readText(row.task_type) as TaskType,
      purpose: this.readText(row.purpose),
      promptTokens: toNumber(row.prompt_tokens),
      completionTokens: toNumber(row.completion_tokens),
      cacheReadTokens: toNumber(row.cache_read_tokens),
      cacheWriteTokens: toNumber(row.cache_write_tokens),
      reasoningTokens: toNumber(row.reasoning_tokens),
      costUsd: toNumber(row.cost_usd),
      latencyMs: toNumber(row.latency_ms),
      success: this.dialect.fromBoolean(row.success),
      errorCode: this.readNullableText(row.error_code),
      createdAt: this.readTime(row.created_at),
    };
  }

  proposalRow(proposal: Proposal): Insertable<ProposalsTable> {
    return {
      id: proposal.id,
      bot_id: proposal.botId,
      user_id: proposal.userId,
      conversation_id: proposal.conversationId,
      name: this.text(proposal.name),
      description: this.text(proposal.description),
      triggers: this.json(proposal.triggers),
      data_fields: this.json(proposal.dataFields),
      clarifying_questions: this.json(proposal.clarifyingQuestions),
      source_message: this.text(proposal.sourceMessage),
      status: this.text(proposal.status),
      skill_id: proposal.skillId,
      created_at: this.time(proposal.createdAt),
      resolved_at: proposal.resolvedAt === null ? null : this.time(proposal.resolvedAt),
      integration: proposal.integration === undefined ? null : this.json(proposal.integration),
    };
  }

  proposal(row: Selectable<ProposalsTable>): Proposal {
    const proposal: Proposal = {
      id: row.id,
      botId: row.bot_id,
      userId: row.user_id,
      conversationId: row.conversation_id,
      name: this.readText(row.name),
      description: this.readText(row.description),
      triggers: this.readJson<string[]>(row.triggers),
      dataFields: this.readJson<SkillDataField[]>(row.data_fields),
      clarifyingQuestions: this.readJson<string[]>(row.clarifying_questions),
      sourceMessage: this.readText(row.source_message),
      status: this.readText(row.status) as ProposalStatus,
      skillId: row.skill_id,
      createdAt: this.readTime(row.created_at),
      resolvedAt: row.resolved_at === null ? null : this.readTime(row.resolved_at),
    };
    // Absent, not undefined, on a plain skill proposal, so it reads back exactly as written.
    if (row.integration !== null && row.integration !== undefined) {
      proposal.integration = this.readJson<IntegrationPlan>(row.integration);
    }
    return proposal;
  }

  toolRow(tool: Tool): Insertable<ToolsTable> {
    return {
      id: tool.id,
      bot_id: tool.botId,
      name: this.text(tool.name),
      name_folded: this.text(fold(tool.name)),
      description: this.text(tool.description),
      base_url: this.text(tool.baseUrl),
      auth: this.json(tool.auth),
      credential: this.nullableText(tool.credential),
      endpoints: this.json(tool.endpoints),
      created_at: this.time(tool.createdAt),
      updated_at: this.time(tool.updatedAt),
    };
  }

  tool(row: Selectable<ToolsTable>): Tool {
    return {
      id: row.id,
      botId: row.bot_id,
      name: this.readText(row.name),
      description: this.readText(row.description),
      baseUrl: this.readText(row.base_url),
      auth: this.readJson<ToolAuth>(row.auth),
      credential: this.readNullableText(row.credential),
      endpoints: this.readJson<ToolEndpoint[]>(row.endpoints),
      createdAt: this.readTime(row.created_at),
      updatedAt: this.readTime(row.updated_at),
    };
  }

  auditRow(entry: ToolCallAudit): Insertable<ToolCallAuditTable> {
    return {
      id: entry.id,
      bot_id: entry.botId,
      user_id: entry.userId,
      conversation_id: entry.conversationId,
      tool_id: entry.toolId,
      tool_name: this.text(entry.toolName),
      endpoint: this.text(entry.endpoint),
      method: this.nullableText(entry.method),
      status: this.text(entry.status),
      http_status: entry.httpStatus,
      duration_ms: entry.durationMs,
      response_bytes: entry.responseBytes,
      error_code: this.nullableText(entry.errorCode),
      created_at: this.time(entry.createdAt),
    };
  }

  audit(row: Selectable<ToolCallAuditTable>): ToolCallAudit {
    return {
      id: row.id,
      botId: row.bot_id,
      userId: row.user_id,
      conversationId: row.conversation_id,
      toolId: row.tool_id,
      toolName: this.readText(row.tool_name),
      endpoint: this.readText(row.endpoint),
      method: this.readNullableText(row.method) as ToolHttpMethod | null,
      status: this.readText(row.status) as ToolCallStatus,
      httpStatus: row.http_status === null ? null : toNumber(row.http_status),
      durationMs: toNumber(row.duration_ms),
      responseBytes: toNumber(row.response_bytes),
      errorCode: this.readNullableText(row.error_code),
      createdAt: this.readTime(row.created_at),
    };
  }

  approvalRow(approval: ToolApproval): Insertable<ToolApprovalsTable> {
    return {
      id: approval.id,
      bot_id: approval.botId,
      user_id: approval.userId,
      conversation_id: approval.conversationId,
      tool_id: approval.toolId,
      tool_name: this.text(approval.toolName),
      endpoint: this.text(approval.endpoint),
      input: this.json(approval.input),
      tool_call_id: this.text(approval.toolCallId),
      run_id: approval.runId ?? null,
      status: this.text(approval.status),
      reason: this.nullableText(approval.reason),
      created_at: this.time(approval.createdAt),
      decided_at: approval.decidedAt === null ? null : this.time(approval.decidedAt),
    };
  }

  approval(row: Selectable<ToolApprovalsTable>): ToolApproval {
    return {
      id: row.id,
      botId: row.bot_id,
      userId: row.user_id,
      conversationId: row.conversation_id,
      toolId: row.tool_id,
      toolName: this.readText(row.tool_name),
      endpoint: this.readText(row.endpoint),
      input: this.readJson<Record<string, unknown>>(row.input),
      toolCallId: this.readText(row.tool_call_id),
      runId: row.run_id ?? null,
      status: this.readText(row.status) as ToolApprovalStatus,
      reason: this.readNullableText(row.reason),
      createdAt: this.readTime(row.created_at),
      decidedAt: row.decided_at === null ? null : this.readTime(row.decided_at),
    };
  }
}

/** Encodes a trace (outside the class above to keep its size in check). */
function traceRow(codec: RowCodec, dialect: SqlDialect, trace: Trace): Insertable<TracesTable> {
  const text = (value: string | null) => (value === null ? null : dialect.text(value));
  return {
    id: trace.id,
    bot_id: trace.botId,
    user_id: trace.userId,
    conversation_id: trace.conversationId,
    user_message_id: trace.userMessageId,
    reply_message_id: trace.replyMessageId,
    message: dialect.text(trace.message),
    skill_id: trace.skillId,
    skill_name: text(trace.skillName),
    match_pass: trace.matchPass,
    match_confidence: trace.matchConfidence,
    skills_injected: codec.json(trace.skillsInjected),
    tool_calls: codec.json(trace.toolCalls),
    outcome: trace.outcome,
    error_code: text(trace.errorCode),
    latency_ms: trace.latencyMs,
    model: text(trace.model),
    prompt_tokens: trace.promptTokens,
    completion_tokens: trace.completionTokens,
    cost_usd: trace.costUsd,
    feedback: trace.feedback === null ? null : codec.json(feedbackJson(trace.feedback)),
    created_at: dialect.timestamp(trace.createdAt),
  };
}

function feedbackJson(feedback: TraceFeedback): unknown {
  return { rating: feedback.rating, comment: feedback.comment, at: feedback.at.getTime() };
}

function traceOf(dialect: SqlDialect, row: Selectable<TracesTable>): Trace {
  const text = (value: string | null) => (value === null ? null : dialect.fromText(value));
  const feedback =
    row.feedback === null
      ? null
      : (dialect.fromJson(row.feedback) as {
          rating: "up" | "down";
          comment: string | null;
          at: number;
        } | null);
  return {
    id: row.id,
    botId: row.bot_id,
    userId: row.user_id,
    conversationId: row.conversation_id,
    userMessageId: row.user_message_id,
    replyMessageId: row.reply_message_id,
    message: dialect.fromText(row.message),
    skillId: row.skill_id,
    skillName: text(row.skill_name),
    matchPass: row.match_pass as TraceMatchPass | null,
    matchConfidence: row.match_confidence === null ? null : toNumber(row.match_confidence),
    skillsInjected: dialect.fromJson(row.skills_injected) as string[],
    toolCalls: dialect.fromJson(row.tool_calls) as TraceToolCall[],
    outcome: row.outcome as Trace["outcome"],
    errorCode: text(row.error_code),
    latencyMs: toNumber(row.latency_ms),
    model: text(row.model),
    promptTokens: toNumber(row.prompt_tokens),
    completionTokens: toNumber(row.completion_tokens),
    costUsd: toNumber(row.cost_usd),
    feedback: feedback
      ? { rating: feedback.rating, comment: feedback.comment, at: new Date(feedback.at) }
      : null,
    createdAt: dialect.fromTimestamp(row.created_at),
  };
}

/** Encodes and decodes runs (outside the class above to keep its size in check). */
function runRow(codec: RowCodec, dialect: SqlDialect, run: NewRun, seq: number): Insertable<RunsTable> {
  const text = (value: string) => dialect.text(value);
  return {
    id: run.id,
    bot_id: run.botId,
    user_id: run.userId,
    conversation_key: text(run.conversationKey),
    conversation_id: run.conversationId,
    event_type: text(run.eventType),
    workflow: text(run.workflow),
    status: text(run.status),
    input: codec.json(run.input),
    output: run.output === null ? null : codec.json(run.output),
    error: run.error === null ? null : codec.json(run.error),
    delivery_id: run.deliveryId === null ? null : text(run.deliveryId),
    seq,
    created_at: dialect.timestamp(run.createdAt),
    started_at: run.startedAt === null ? null : dialect.timestamp(run.startedAt),
    finished_at: run.finishedAt === null ? null : dialect.timestamp(run.finishedAt),
  };
}

function runOf(dialect: SqlDialect, row: Selectable<RunsTable>): Run {
  const text = (raw: string) => dialect.fromText(raw);
  const time = (raw: unknown) => (raw === null ? null : dialect.fromTimestamp(raw));
  return {
    id: row.id,
    botId: row.bot_id,
    userId: row.user_id,
    conversationKey: text(row.conversation_key),
    conversationId: row.conversation_id,
    eventType: text(row.event_type),
    workflow: text(row.workflow),
    status: text(row.status) as RunStatus,
    input: dialect.fromJson(row.input) as Record<string, unknown>,
    output: row.output === null ? null : (dialect.fromJson(row.output) as Record<string, unknown>),
    error: row.error === null ? null : (dialect.fromJson(row.error) as RunError),
    deliveryId: row.delivery_id === null ? null : text(row.delivery_id),
    seq: toNumber(row.seq),
    createdAt: dialect.fromTimestamp(row.created_at),
    startedAt: time(row.started_at),
    finishedAt: time(row.finished_at),
    // Absent until the run is first requeued (and in a row read before migration 13).
    ...(row.resumes === undefined || toNumber(row.resumes) === 0 ? {} : { resumes: toNumber(row.resumes) }),
  };
}

/** The columns of a run that change after its create (`runs.update`, `runs.finish`): its outcome and times. */
function outcomeColumns(codec: RowCodec, dialect: SqlDialect, run: Run) {
  const { status, output, error, started_at, finished_at } = runRow(codec, dialect, run, run.seq);
  return { status, output, error, started_at, finished_at };
}

/** The columns of a run claimed at `at` (a claim or a hand-off): running under `owner`'s lease (none: no lease). */
function claimedColumns(at: StoredTimestamp, owner: string | null, leaseExpiresAt: StoredTimestamp | null) {
  return {
    status: sql.lit("running"),
    started_at: at,
    finished_at: null,
    output: null,
    error: null,
    lease_owner: owner,
    lease_expires_at: leaseExpiresAt,
  };
}

/** Statuses that hold a conversation key: a run of the key with a greater seq waits for these. */
const UNFINISHED = [sql.lit("queued"), sql.lit("running")];

/** Claim order: oldest first, then by id. */
function order(a: Run, b: Run): number {
  const byTime = a.createdAt.getTime() - b.createdAt.getTime();
  return byTime !== 0 ? byTime : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Case folding for names and keys, done in JavaScript so both databases fold Unicode alike. */
function fold(value: string): string {
  return value.toLowerCase();
}

function toNumber(raw: unknown): number {
  return typeof raw === "number" ? raw : Number(raw);
}

// ---------------------------------------------------------------------------
// Paging: keyset cursors over (sort column, id)

const CURSOR_TAG = "s1";

function checkLimit(limit: number, adapter: string): void {
  if (!Number.isInteger(limit) || limit < 1) {
    throw storageError(
      adapter,
      "VALIDATION_FAILED",
      `page limit must be a positive integer, got ${String(limit)}`,
    );
  }
}

/** Cuts one extra row off a `limit + 1` fetch and turns the last kept row into the next cursor. */
function toPage<T extends { id: string }>(items: T[], limit: number, sortKey: (item: T) => Date): Page<T> {
  if (items.length <= limit) return { items, nextCursor: null };
  const kept = items.slice(0, limit);
  const last = kept[kept.length - 1]!;
  return { items: kept, nextCursor: encodeCursor({ at: sortKey(last).getTime(), id: last.id }, CURSOR_TAG) };
}

// ---------------------------------------------------------------------------
// Repositories

interface Access {
  /** Runs statements on the current connection (the ambient transaction's, when there is one). */
  run<T>(what: string, op: (db: Kysely<Tables>) => Promise<T>): Promise<T>;
  /** Runs statements atomically: inside the current transaction, or in a new one. */
  atomic<T>(what: string, op: (db: Kysely<Tables>) => Promise<T>): Promise<T>;
}

function buildRepositories(
  access: Access,
  codec: RowCodec,
  dialect: SqlDialect,
  names: SqlNames,
): StorageRepositories {
  const adapter = dialect.name;
  const conflict = (message: string) => storageError(adapter, "CONFLICT", message);
  const inserted = (result: { numInsertedOrUpdatedRows?: bigint | undefined }) =>
    (result.numInsertedOrUpdatedRows ?? 0n) > 0n;
  const reservation = (reserve: { owner: string; until: Date } | undefined) =>
    reserve ? { lease_owner: reserve.owner, lease_expires_at: dialect.timestamp(reserve.until) } : {};
  /** The columns of a run created `running` under a claim's lease. */
  const claimRow = (claim: { owner: string; now: Date; leaseExpiresAt: Date }) => ({
    started_at: dialect.timestamp(claim.now),
    lease_owner: claim.owner,
    lease_expires_at: dialect.timestamp(claim.leaseExpiresAt),
  });
  const startedRun = (run: NewRun, seq: number, claim: { now: Date }): Run => ({
    ...copy(run),
    seq,
    status: "running",
    startedAt: new Date(claim.now),
    finishedAt: null,
  });
  /** The `CONFLICT` of a refused run insert: its id is taken, or else its delivery id. */
  const runClash = async (db: Kysely<Tables>, run: NewRun) => {
    const taken = await db.selectFrom("runs").select("id").where("id", "=", run.id).executeTakeFirst();
    if (taken) return conflict(`a run with id ${run.id} already exists`);
    if (run.deliveryId !== null)
      return conflict(`the bot already has a run with delivery id ${run.deliveryId}`);
    // The only other unique rule a new run can break: one running run per conversation key.
    return conflict(`another run of conversation key ${run.conversationKey} is running`);
  };
  const changed = (result: { numUpdatedRows?: bigint; numDeletedRows?: bigint }) =>
    (result.numUpdatedRows ?? result.numDeletedRows ?? 0n) > 0n;
  const after = (position: CursorPosition) => ({
    at: dialect.timestamp(new Date(position.at)),
    id: position.id,
  });
  const cursorOf = (page: StoragePageOptions) => {
    checkLimit(page.limit, adapter);
    return page.cursor ? after(decodeCursor(page.cursor, CURSOR_TAG, adapter)) : null;
  };

  const users: UserRepository = {
    upsert: (user) =>
      access.run("users.upsert", async (db) => {
        const result = await db
          .insertInto("users")
          .values(codec.userRow(user))
          .onConflict((oc) => oc.column("id").doNothing())
          .executeTakeFirst();
        if (inserted(result)) return copy(user);
        const existing = await db
          .selectFrom("users")
          .selectAll()
          .where("id", "=", user.id)
          .executeTakeFirst();
        if (!existing)
          throw storageError(adapter, "STORAGE_FAILED", `user ${user.id} vanished during upsert`);
        return codec.user(existing);
      }),
    get: (userId) =>
      access.run("users.get", async (db) => {
        const row = await db.selectFrom("users").selectAll().where("id", "=", userId).executeTakeFirst();
        return row ? codec.user(row) : null;
      }),
  };

  const bots: BotRepository = {
    create: (bot) =>
      access.run("bots.create", async (db) => {
        const result = await db
          .insertInto("bots")
          .values(codec.botRow(bot))
          .onConflict((oc) => oc.doNothing())
          .executeTakeFirst();
        if (!inserted(result)) throw conflict(`a bot with id ${bot.id} already exists`);
        return copy(bot);
      }),
    get: (botId) =>
      access.run("bots.get", async (db) => {
        const row = await db.selectFrom("bots").selectAll().where("id", "=", botId).executeTakeFirst();
        return row ? codec.bot(row) : null;
      }),
    listByUser: (userId, page) =>
      access.run("bots.listByUser", async (db) => {
        const cursor = cursorOf(page);
        let query = db.selectFrom("bots").selectAll().where("user_id", "=", userId);
        if (cursor) {
          query = query.where((eb) =>
            eb(eb.refTuple("created_at", "id"), ">", eb.tuple(cursor.at, cursor.id)),
          );
        }
        const rows = await query
          .orderBy("created_at")
          .orderBy("id")
          .limit(page.limit + 1)
          .execute();
        return toPage(
          rows.map((row) => codec.bot(row)),
          page.limit,
          (bot) => bot.createdAt,
        );
      }),
    update: (bot) =>
      access.run("bots.update", async (db) => {
        const { id: _id, ...columns } = codec.botRow(bot);
        const result = await db.updateTable("bots").set(columns).where("id", "=", bot.id).executeTakeFirst();
        return changed(result) ? copy(bot) : null;
      }),
    delete: (botId) =>
      // Usage records keep no foreign key (the gateway may record calls of bots that are
      // not stored), so they are deleted here; everything else (tools, tool audit and
      // approvals included) cascades from the bot.
      access.atomic("bots.delete", async (db) => {
        const result = await db.deleteFrom("bots").where("id", "=", botId).executeTakeFirst();
        if (!changed(result)) return false;
        await db.deleteFrom("usage_records").where("bot_id", "=", botId).execute();
        return true;
      }),
  };

  const scopeOf = (owner: SkillOwner) => scopeKey(ownerScope(owner));
  const skillsOf = async (db: Kysely<Tables>, scopes: readonly string[]) =>
    scopes.length === 0
      ? []
      : (
          await db
            .selectFrom("skills")
            .selectAll()
            .where("scope", "in", [...scopes])
            .orderBy("created_at")
            .orderBy("id")
            .execute()
        ).map((row) => codec.skill(row));

  const skills: SkillRepository = {
    create: (skill) =>
      access.run("skills.create", async (db) => {
        const result = await db
          .insertInto("skills")
          .values(codec.skillRow(skill))
          .onConflict((oc) => oc.doNothing())
          .executeTakeFirst();
        if (inserted(result)) return copy(skill);
        const taken = await db
          .selectFrom("skills")
          .select("id")
          .where("id", "=", skill.id)
          .executeTakeFirst();
        throw taken
          ? conflict(`a skill with id ${skill.id} already exists`)
          : conflict(`the scope ${scopeKey(skill.scope)} already has a skill named "${skill.name}"`);
      }),
    get: (owner, skillId) =>
      access.run("skills.get", async (db) => {
        const row = await db
          .selectFrom("skills")
          .selectAll()
          .where("scope", "=", scopeOf(owner))
          .where("id", "=", skillId)
          .executeTakeFirst();
        return row ? codec.skill(row) : null;
      }),
    listByBot: (botId) => access.run("skills.listByBot", (db) => skillsOf(db, [scopeOf(botId)])),
    listByScopes: (scopes) =>
      access.run("skills.listByScopes", async (db) => {
        const keys = scopes.map(scopeKey);
        const found = await skillsOf(db, keys);
        // In the order the scopes were given; each scope's oldest first.
        return keys.flatMap((key) => found.filter((skill) => scopeKey(skill.scope) === key));
      }),
    update: (skill) =>
      access.run("skills.update", async (db) => {
        const { id: _id, bot_id: _botId, scope, team_id: _teamId, ...columns } = codec.skillRow(skill);
        // Checked in the statement so that a clash does not raise an error, which on
        // Postgres would abort the surrounding transaction; the unique index still
        // settles races between two renames.
        const result = await db
          .updateTable("skills")
          .set(columns)
          .where("id", "=", skill.id)
          .where("scope", "=", scope)
          // A bot skill's `botId` must agree with its scope.
          .where((eb) => (skill.botId === null ? eb("bot_id", "is", null) : eb("bot_id", "=", skill.botId)))
          .where(({ not, exists, selectFrom }) =>
            not(
              exists(
                selectFrom("skills as other")
                  .select("other.id")
                  .where("other.scope", "=", scope)
                  .where("other.name_folded", "=", columns.name_folded)
                  .where("other.id", "<>", skill.id),
              ),
            ),
          )
          .executeTakeFirst();
        if (changed(result)) return copy(skill);
        const exists = await db
          .selectFrom("skills")
          .select("id")
          .where("id", "=", skill.id)
          .where("scope", "=", scope)
          .where((eb) => (skill.botId === null ? eb("bot_id", "is", null) : eb("bot_id", "=", skill.botId)))
          .executeTakeFirst();
        if (exists) throw conflict(`the scope ${scope} already has a skill named "${skill.name}"`);
        return null;
      }),
    delete: (owner, skillId) =>
      // Records (every bot's) and versions cascade from the skill.
      access.run("skills.delete", async (db) => {
        const result = await db
          .deleteFrom("skills")
          .where("scope", "=", scopeOf(owner))
          .where("id", "=", skillId)
          .executeTakeFirst();
        return changed(result);
      }),
  };

  const recordCondition = (filter: SkillRecordFilter): Array<RawBuilder<SqlBool>> => {
    const data = sql.ref("r.data");
    const conditions: Array<RawBuilder<SqlBool>> = [];
    for (const [field, value] of Object.entries(filter.equals ?? {})) {
      conditions.push(dialect.jsonFieldEquals(data, field, value));
    }
    for (const [field, text] of Object.entries(filter.contains ?? {})) {
      conditions.push(dialect.jsonFieldContains(data, field, text));
    }
    return conditions;
  };

  const skillRecords: SkillRecordRepository = {
    create: (record) =>
      access.run("skillRecords.create", async (db) => {
        const row = codec.recordRow(record);
        // One statement: the row goes in only under a skill the bot may keep records of (its own,
        // or one of a shared scope); the foreign keys settle a skill or bot deleted meanwhile.
        const result = await db
          .insertInto("skill_records")
          .columns(["id", "bot_id", "skill_id", "data", "created_at", "updated_at"])
          .expression((eb) =>
            eb
              .selectFrom("skills as s")
              .select([
                eb.val(row.id).as("id"),
                eb.val(row.bot_id).as("bot_id"),
                "s.id as skill_id",
                eb.val(row.data).as("data"),
                eb.val(row.created_at).as("created_at"),
                eb.val(row.updated_at).as("updated_at"),
              ])
              .where("s.id", "=", record.skillId)
              .where((w) => w.or([w("s.bot_id", "is", null), w("s.bot_id", "=", record.botId)])),
          )
          .onConflict((oc) => oc.doNothing())
          .executeTakeFirst();
        if (inserted(result)) return copy(record);
        const taken = await db
          .selectFrom("skill_records")
          .select("id")
          .where("id", "=", record.id)
          .executeTakeFirst();
        if (taken) throw conflict(`a skill record with id ${record.id} already exists`);
        throw storageError(
          adapter,
          "NOT_FOUND",
          `cannot store a skill record: the bot has no skill ${record.skillId}`,
        );
      }),
    get: (botId, skillId, recordId) =>
      access.run("skillRecords.get", async (db) => {
        const row = await db
          .selectFrom("skill_records")
          .selectAll()
          .where("bot_id", "=", botId)
          .where("skill_id", "=", skillId)
          .where("id", "=", recordId)
          .executeTakeFirst();
        return row ? codec.record(row) : null;
      }),
    query: (botId, skillId, filter, page) =>
      access.run("skillRecords.query", async (db) => {
        const cursor = cursorOf(page);
        const newestFirst = page.newestFirst === true;
        const direction = newestFirst ? "desc" : "asc";
        let query = db
          .selectFrom("skill_records as r")
          .selectAll("r")
          .where("r.bot_id", "=", botId)
          .where("r.skill_id", "=", skillId);
        for (const condition of recordCondition(filter)) query = query.where(condition);
        if (cursor) {
          query = query.where((eb) =>
            eb(eb.refTuple("r.created_at", "r.id"), newestFirst ? "<" : ">", eb.tuple(cursor.at, cursor.id)),
          );
        }
        const rows = await query
          .orderBy("r.created_at", direction)
          .orderBy("r.id", direction)
          .limit(page.limit + 1)
          .execute();
        return toPage(
          rows.map((row) => codec.record(row)),
          page.limit,
          (record) => record.createdAt,
        );
      }),
    update: (record) =>
      access.run("skillRecords.update", async (db) => {
        const row = codec.recordRow(record);
        const result = await db
          .updateTable("skill_records")
          .set({ data: row.data, created_at: row.created_at, updated_at: row.updated_at })
          .where("bot_id", "=", record.botId)
          .where("skill_id", "=", record.skillId)
          .where("id", "=", record.id)
          .executeTakeFirst();
        return changed(result) ? copy(record) : null;
      }),
    delete: (botId, skillId, recordId) =>
      access.run("skillRecords.delete", async (db) => {
        const result = await db
          .deleteFrom("skill_records")
          .where("bot_id", "=", botId)
          .where("skill_id", "=", skillId)
          .where("id", "=", recordId)
          .executeTakeFirst();
        return changed(result);
      }),
  };

  const conversations: ConversationRepository = {
    create: (conversation) =>
      access.run("conversations.create", async (db) => {
        const result = await db
          .insertInto("conversations")
          .values(codec.conversationRow(conversation))
          .onConflict((oc) => oc.doNothing())
          .executeTakeFirst();
        if (!inserted(result)) throw conflict(`a conversation with id ${conversation.id} already exists`);
        return copy(conversation);
      }),
    get: (botId, conversationId) =>
      access.run("conversations.get", async (db) => {
        const row = await db
          .selectFrom("conversations")
          .selectAll()
          .where("bot_id", "=", botId)
          .where("id", "=", conversationId)
          .executeTakeFirst();
        return row ? codec.conversation(row) : null;
      }),
    listByBot: (botId, page) =>
      access.run("conversations.listByBot", async (db) => {
        const cursor = cursorOf(page);
        let query = db.selectFrom("conversations").selectAll().where("bot_id", "=", botId);
        if (cursor) {
          query = query.where((eb) =>
            eb(eb.refTuple("updated_at", "id"), "<", eb.tuple(cursor.at, cursor.id)),
          );
        }
        const rows = await query
          .orderBy("updated_at", "desc")
          .orderBy("id", "desc")
          .limit(page.limit + 1)
          .execute();
        return toPage(
          rows.map((row) => codec.conversation(row)),
          page.limit,
          (conversation) => conversation.updatedAt,
        );
      }),
    touch: (botId, conversationId, at) =>
      access.run("conversations.touch", async (db) => {
        await db
          .updateTable("conversations")
          .set({ updated_at: dialect.timestamp(at) })
          .where("bot_id", "=", botId)
          .where("id", "=", conversationId)
          .execute();
      }),
  };

  const messages: MessageRepository = {
    append: (message) =>
      access
        .run("messages.append", (db) => dialect.appendMessage(db, names, codec.messageRow(message, 0)))
        .then((outcome) => appendedMessage(message, outcome, adapter)),
    listRecent: (botId, conversationId, { limit, beforeSeq }) =>
      access.run("messages.listRecent", async (db) => {
        checkLimit(limit, adapter);
        let query = db
          .selectFrom("messages")
          .selectAll()
          .where("bot_id", "=", botId)
          .where("conversation_id", "=", conversationId);
        if (beforeSeq !== undefined) query = query.where("seq", "<", beforeSeq);
        const rows = await query.orderBy("seq", "desc").limit(limit).execute();
        return rows.reverse().map((row) => codec.message(row));
      }),
  };

  const memories: MemoryRepository = {
    create: (memory) =>
      access.run("memories.create", async (db) => {
        const result = await db
          .insertInto("memories")
          .values(codec.memoryRow(memory))
          .onConflict((oc) => oc.doNothing())
          .executeTakeFirst();
        if (!inserted(result)) throw conflict(`a memory with id ${memory.id} already exists`);
        return copy(memory);
      }),
    get: (botId, memoryId) =>
      access.run("memories.get", async (db) => {
        const row = await db
          .selectFrom("memories")
          .selectAll()
          .where("bot_id", "=", botId)
          .where("id", "=", memoryId)
          .executeTakeFirst();
        return row ? codec.memory(row) : null;
      }),
    findByKey: (botId, userId, key) =>
      access.run("memories.findByKey", async (db) => {
        const row = await db
          .selectFrom("memories")
          .selectAll()
          .where("bot_id", "=", botId)
          .where("user_id", "=", userId)
          .where("key_folded", "=", dialect.text(fold(key)))
          .orderBy("updated_at", "desc")
          .orderBy("id", "desc")
          .limit(1)
          .executeTakeFirst();
        return row ? codec.memory(row) : null;
      }),
    list: (botId, userId, page) =>
      access.run("memories.list", async (db) => {
        const cursor = cursorOf(page);
        let query = db
          .selectFrom("memories")
          .selectAll()
          .where("bot_id", "=", botId)
          .where("user_id", "=", userId);
        if (cursor) {
          query = query.where((eb) =>
            eb(eb.refTuple("updated_at", "id"), "<", eb.tuple(cursor.at, cursor.id)),
          );
        }
        const rows = await query
          .orderBy("updated_at", "desc")
          .orderBy("id", "desc")
          .limit(page.limit + 1)
          .execute();
        return toPage(
          rows.map((row) => codec.memory(row)),
          page.limit,
          (memory) => memory.updatedAt,
        );
      }),
    update: (memory) =>
      access.run("memories.update", async (db) => {
        const { id: _id, bot_id: _botId, ...columns } = codec.memoryRow(memory);
        const result = await db
          .updateTable("memories")
          .set(columns)
          .where("bot_id", "=", memory.botId)
          .where("id", "=", memory.id)
          .executeTakeFirst();
        return changed(result) ? copy(memory) : null;
      }),
    delete: (botId, memoryId) =>
      access.run("memories.delete", async (db) => {
        const result = await db
          .deleteFrom("memories")
          .where("bot_id", "=", botId)
          .where("id", "=", memoryId)
          .executeTakeFirst();
        return changed(result);
      }),
  };

  const usage: UsageRepository = {
    record: (record) =>
      access.run("usage.record", async (db) => {
        const result = await db
          .insertInto("usage_records")
          .values(codec.usageRow(record))
          .onConflict((oc) => oc.doNothing())
          .executeTakeFirst();
        if (!inserted(result)) throw conflict(`a usage record with id ${record.id} already exists`);
        return copy(record);
      }),
    list: ({ userId, botId, from, to }, page) =>
      access.run("usage.list", async (db) => {
        const cursor = cursorOf(page);
        let query = db.selectFrom("usage_records").selectAll().where("user_id", "=", userId);
        if (botId !== undefined && botId !== null) query = query.where("bot_id", "=", botId);
        if (from) query = query.where("created_at", ">=", dialect.timestamp(from));
        if (to) query = query.where("created_at", "<", dialect.timestamp(to));
        if (cursor) {
          query = query.where((eb) =>
            eb(eb.refTuple("created_at", "id"), ">", eb.tuple(cursor.at, cursor.id)),
          );
        }
        const rows = await query
          .orderBy("created_at")
          .orderBy("id")
          .limit(page.limit + 1)
          .execute();
        return toPage(
          rows.map((row) => codec.usage(row)),
          page.limit,
          (record) => record.createdAt,
        );
      }),
  };

  const proposals: ProposalRepository = {
    create: (proposal) =>
      access.run("proposals.create", async (db) => {
        const result = await db
          .insertInto("proposals")
          .values(codec.proposalRow(proposal))
          .onConflict((oc) => oc.doNothing())
          .executeTakeFirst();
        if (!inserted(result)) throw conflict(`a proposal with id ${proposal.id} already exists`);
        return copy(proposal);
      }),
    get: (botId, proposalId) =>
      access.run("proposals.get", async (db) => {
        const row = await db
          .selectFrom("proposals")
          .selectAll()
          .where("bot_id", "=", botId)
          .where("id", "=", proposalId)
          .executeTakeFirst();
        return row ? codec.proposal(row) : null;
      }),
    listByBot: (botId, { status, limit }) =>
      access.run("proposals.listByBot", async (db) => {
        checkLimit(limit, adapter);
        let query = db.selectFrom("proposals").selectAll().where("bot_id", "=", botId);
        if (status !== undefined) query = query.where("status", "=", dialect.text(status));
        const rows = await query.orderBy("created_at", "desc").orderBy("id", "desc").limit(limit).execute();
        return rows.map((row) => codec.proposal(row));
      }),
    update: (proposal) =>
      access.run("proposals.update", async (db) => {
        const { id: _id, bot_id: _botId, ...columns } = codec.proposalRow(proposal);
        const result = await db
          .updateTable("proposals")
          .set(columns)
          .where("bot_id", "=", proposal.botId)
          .where("id", "=", proposal.id)
          .executeTakeFirst();
        return changed(result) ? copy(proposal) : null;
      }),
  };

  const tools: ToolRepository = {
    create: (tool) =>
      access.run("tools.create", async (db) => {
        const result = await db
          .insertInto("tools")
          .values(codec.toolRow(tool))
          .onConflict((oc) => oc.doNothing())
          .executeTakeFirst();
        if (inserted(result)) return copy(tool);
        const taken = await db.selectFrom("tools").select("id").where("id", "=", tool.id).executeTakeFirst();
        throw taken
          ? conflict(`a tool with id ${tool.id} already exists`)
          : conflict(`the bot already has a tool named "${tool.name}"`);
      }),
    get: (botId, toolId) =>
      access.run("tools.get", async (db) => {
        const row = await db
          .selectFrom("tools")
          .selectAll()
          .where("bot_id", "=", botId)
          .where("id", "=", toolId)
          .executeTakeFirst();
        return row ? codec.tool(row) : null;
      }),
    findByName: (botId, name) =>
      access.run("tools.findByName", async (db) => {
        const row = await db
          .selectFrom("tools")
          .selectAll()
          .where("bot_id", "=", botId)
          .where("name_folded", "=", dialect.text(fold(name)))
          .executeTakeFirst();
        return row ? codec.tool(row) : null;
      }),
    listByBot: (botId) =>
      access.run("tools.listByBot", async (db) => {
        const rows = await db
          .selectFrom("tools")
          .selectAll()
          .where("bot_id", "=", botId)
          .orderBy("created_at")
          .orderBy("id")
          .execute();
        return rows.map((row) => codec.tool(row));
      }),
    update: (tool) =>
      access.run("tools.update", async (db) => {
        const { id: _id, bot_id: _botId, ...columns } = codec.toolRow(tool);
        // As for skills: the clash is checked in the statement, so it does not abort a
        // surrounding Postgres transaction; the unique key settles racing renames.
        const result = await db
          .updateTable("tools")
          .set(columns)
          .where("id", "=", tool.id)
          .where("bot_id", "=", tool.botId)
          .where(({ not, exists, selectFrom }) =>
            not(
              exists(
                selectFrom("tools as other")
                  .select("other.id")
                  .where("other.bot_id", "=", tool.botId)
                  .where("other.name_folded", "=", columns.name_folded)
                  .where("other.id", "<>", tool.id),
              ),
            ),
          )
          .executeTakeFirst();
        if (changed(result)) return copy(tool);
        const exists = await db
          .selectFrom("tools")
          .select("id")
          .where("id", "=", tool.id)
          .where("bot_id", "=", tool.botId)
          .executeTakeFirst();
        if (exists) throw conflict(`the bot already has a tool named "${tool.name}"`);
        return null;
      }),
    delete: (botId, toolId) =>
      access.run("tools.delete", async (db) => {
        const result = await db
          .deleteFrom("tools")
          .where("bot_id", "=", botId)
          .where("id", "=", toolId)
          .executeTakeFirst();
        return changed(result);
      }),
  };

  const toolAudit: ToolAuditRepository = {
    record: (entry) =>
      access.run("toolAudit.record", async (db) => {
        const result = await db
          .insertInto("tool_call_audit")
          .values(codec.auditRow(entry))
          .onConflict((oc) => oc.doNothing())
          .executeTakeFirst();
        if (!inserted(result)) throw conflict(`a tool call audit entry with id ${entry.id} already exists`);
        return copy(entry);
      }),
    list: (botId, page) =>
      access.run("toolAudit.list", async (db) => {
        const cursor = cursorOf(page);
        let query = db.selectFrom("tool_call_audit").selectAll().where("bot_id", "=", botId);
        if (cursor) {
          query = query.where((eb) =>
            eb(eb.refTuple("created_at", "id"), "<", eb.tuple(cursor.at, cursor.id)),
          );
        }
        const rows = await query
          .orderBy("created_at", "desc")
          .orderBy("id", "desc")
          .limit(page.limit + 1)
          .execute();
        return toPage(
          rows.map((row) => codec.audit(row)),
          page.limit,
          (entry) => entry.createdAt,
        );
      }),
  };

  const approvals: ToolApprovalRepository = {
    create: (approval) =>
      access.run("approvals.create", async (db) => {
        const result = await db
          .insertInto("tool_approvals")
          .values(codec.approvalRow(approval))
          .onConflict((oc) => oc.doNothing())
          .executeTakeFirst();
        if (!inserted(result)) throw conflict(`a tool approval with id ${approval.id} already exists`);
        return copy(approval);
      }),
    get: (botId, approvalId) =>
      access.run("approvals.get", async (db) => {
        const row = await db
          .selectFrom("tool_approvals")
          .selectAll()
          .where("bot_id", "=", botId)
          .where("id", "=", approvalId)
          .executeTakeFirst();
        return row ? codec.approval(row) : null;
      }),
    listByBot: (botId, { status, limit }) =>
      access.run("approvals.listByBot", async (db) => {
        checkLimit(limit, adapter);
        let query = db.selectFrom("tool_approvals").selectAll().where("bot_id", "=", botId);
        if (status !== undefined) query = query.where("status", "=", dialect.text(status));
        const rows = await query.orderBy("created_at", "desc").orderBy("id", "desc").limit(limit).execute();
        return rows.map((row) => codec.approval(row));
      }),
    update: (approval) =>
      access.run("approvals.update", async (db) => {
        const { id: _id, bot_id: _botId, ...columns } = codec.approvalRow(approval);
        const result = await db
          .updateTable("tool_approvals")
          .set(columns)
          .where("bot_id", "=", approval.botId)
          .where("id", "=", approval.id)
          .executeTakeFirst();
        return changed(result) ? copy(approval) : null;
      }),
    decide: (botId, approvalId, decision) =>
      access.run("approvals.decide", async (db) => {
        // The status condition makes the transition atomic: under concurrent decisions
        // the row lock (Postgres) or the single writer (SQLite) lets exactly one match.
        const row = await db
          .updateTable("tool_approvals")
          .set({
            status: dialect.text(decision.status),
            reason: decision.reason === null ? null : dialect.text(decision.reason),
            decided_at: dialect.timestamp(decision.decidedAt),
          })
          .where("bot_id", "=", botId)
          .where("id", "=", approvalId)
          .where("status", "=", dialect.text("pending"))
          .returningAll()
          .executeTakeFirst();
        if (row) return codec.approval(row);
        const existing = await db
          .selectFrom("tool_approvals")
          .select("status")
          .where("bot_id", "=", botId)
          .where("id", "=", approvalId)
          .executeTakeFirst();
        if (!existing) return null;
        throw conflict(`tool approval ${approvalId} was already ${dialect.fromText(existing.status)}`);
      }),
  };

  const runs: RunRepository = {
    create: (run, options = {}) =>
      dialect.createRun
        ? access.run("runs.create", async (db) => {
            const row = { ...runRow(codec, dialect, run, 0), ...reservation(options.reserveFor) };
            const claim = options.claimFor;
            try {
              if (claim) {
                try {
                  const made = await dialect.createRun!(db, names, row, { row: claimRow(claim) });
                  return made.started ? startedRun(run, made.seq, claim) : { ...copy(run), seq: made.seq };
                } catch (error) {
                  // Another create of the key started its run first (the one-running index), or a
                  // real clash: created queued, the first fails no more and the second again.
                  if (dialect.classify(error)?.code !== "CONFLICT") throw error;
                }
              }
              const made = await dialect.createRun!(db, names, row);
              return { ...copy(run), seq: made.seq };
            } catch (error) {
              if (dialect.classify(error)?.code !== "CONFLICT") throw error;
              throw await runClash(db, run);
            }
          })
        : access.atomic("runs.create", async (db) => {
            const bumped = await db
              .insertInto("run_keys")
              .values({ bot_id: run.botId, conversation_key: dialect.text(run.conversationKey), last_seq: 1 })
              .onConflict((oc) =>
                oc.columns(["bot_id", "conversation_key"]).doUpdateSet({
                  last_seq: sql<number>`${sql.ref("run_keys.last_seq")} + 1`,
                }),
              )
              .returning("last_seq")
              .executeTakeFirstOrThrow();
            const seq = toNumber(bumped.last_seq);
            const claim = options.claimFor;
            const start =
              claim !== undefined &&
              (await db
                .selectFrom("runs")
                .select("id")
                .where("bot_id", "=", run.botId)
                .where("conversation_key", "=", dialect.text(run.conversationKey))
                .where("status", "in", [dialect.text("queued"), dialect.text("running")])
                .limit(1)
                .executeTakeFirst()) === undefined;
            const values = {
              ...runRow(codec, dialect, run, seq),
              ...reservation(options.reserveFor),
              ...(start ? { status: dialect.text("running"), ...claimRow(claim) } : {}),
            };
            const result = await db
              .insertInto("runs")
              .values(values)
              .onConflict((oc) => oc.doNothing())
              .executeTakeFirst();
            if (inserted(result)) return start ? startedRun(run, seq, claim) : { ...copy(run), seq };
            throw await runClash(db, run);
          }),
    get: (runId) =>
      access.run("runs.get", async (db) => {
        const row = await db.selectFrom("runs").selectAll().where("id", "=", runId).executeTakeFirst();
        return row ? runOf(dialect, row) : null;
      }),
    findByDelivery: (botId, deliveryId) =>
      access.run("runs.findByDelivery", async (db) => {
        const row = await db
          .selectFrom("runs")
          .selectAll()
          .where("bot_id", "=", botId)
          .where("delivery_id", "=", dialect.text(deliveryId))
          .executeTakeFirst();
        return row ? runOf(dialect, row) : null;
      }),
    listByConversation: (botId, conversationKey, { limit, afterSeq }) =>
      access.run("runs.listByConversation", async (db) => {
        checkLimit(limit, adapter);
        let query = db
          .selectFrom("runs")
          .selectAll()
          .where("bot_id", "=", botId)
          .where("conversation_key", "=", dialect.text(conversationKey));
        if (afterSeq !== undefined) query = query.where("seq", ">", afterSeq);
        const rows = await query.orderBy("seq").limit(limit).execute();
        return rows.map((row) => runOf(dialect, row));
      }),
    deleteFinishedBefore: (before) =>
      access.run("runs.deleteFinishedBefore", async (db) => {
        // Steps go with their run (foreign key on delete cascade).
        const result = await db
          .deleteFrom("runs")
          .where("status", "in", [dialect.text("succeeded"), dialect.text("failed")])
          .where("finished_at", "<", dialect.timestamp(before))
          .executeTakeFirst();
        return Number(result.numDeletedRows ?? 0n);
      }),
    listByBot: (botId, page) =>
      access.run("runs.listByBot", async (db) => {
        const cursor = cursorOf(page);
        let query = db.selectFrom("runs").selectAll().where("bot_id", "=", botId);
        if (cursor) {
          query = query.where((eb) =>
            eb(eb.refTuple("created_at", "id"), "<", eb.tuple(cursor.at, cursor.id)),
          );
        }
        const rows = await query
          .orderBy("created_at", "desc")
          .orderBy("id", "desc")
          .limit(page.limit + 1)
          .execute();
        return toPage(
          rows.map((row) => runOf(dialect, row)),
          page.limit,
          (run) => run.createdAt,
        );
      }),
    update: (run) =>
      access.run("runs.update", async (db) => {
        // Only the outcome: writing the fields set at create would rewrite every index entry of the
        // run and check its foreign keys again (the costliest statement of a SQLite run, 144 us).
        const row = await db
          .updateTable("runs")
          .set(outcomeColumns(codec, dialect, run))
          .where("id", "=", run.id)
          .where("bot_id", "=", run.botId)
          .returningAll()
          .executeTakeFirst();
        return row ? runOf(dialect, row) : null;
      }),
    requeue: (botId, runId) =>
      access.atomic("runs.requeue", async (db) => {
        const awaiting = dialect.text("awaiting_approval");
        const found = await db
          .selectFrom("runs")
          .select(["conversation_key", "seq"])
          .where("id", "=", runId)
          .where("bot_id", "=", botId)
          .where("status", "=", awaiting)
          .executeTakeFirst();
        if (!found) return null;
        // The key's next seq, as runs.create takes it: the run goes to the end of its lane.
        const bumped = await db
          .insertInto("run_keys")
          .values({
            bot_id: botId,
            conversation_key: found.conversation_key,
            last_seq: toNumber(found.seq) + 1,
          })
          .onConflict((oc) =>
            oc.columns(["bot_id", "conversation_key"]).doUpdateSet({
              last_seq: sql<number>`${sql.ref("run_keys.last_seq")} + 1`,
            }),
          )
          .returning("last_seq")
          .executeTakeFirstOrThrow();
        // Conditional again: a concurrent requeue that committed first leaves nothing to do here.
        const row = await db
          .updateTable("runs")
          .set({
            status: dialect.text("queued"),
            seq: toNumber(bumped.last_seq),
            resumes: sql<number>`${sql.ref("resumes")} + 1`,
            output: null,
            error: null,
            finished_at: null,
            lease_owner: null,
            lease_expires_at: null,
          })
          .where("id", "=", runId)
          .where("bot_id", "=", botId)
          .where("status", "=", awaiting)
          .returningAll()
          .executeTakeFirst();
        return row ? runOf(dialect, row) : null;
      }),
    getMany: (runIds) =>
      access.run("runs.getMany", async (db) => {
        if (runIds.length === 0) return [];
        const rows = await db
          .selectFrom("runs")
          .selectAll()
          .where("id", "in", [...runIds])
          .execute();
        return rows.map((row) => runOf(dialect, row));
      }),
    claim: ({ owner, now, leaseExpiresAt, limit }) =>
      dialect.claimRuns
        ? access.run("runs.claim", async (db) => {
            checkLimit(limit, adapter);
            const rows = await dialect.claimRuns!(db, names, {
              owner,
              now: dialect.timestamp(now),
              leaseExpiresAt: dialect.timestamp(leaseExpiresAt),
              limit,
            });
            return rows
              .map(({ previous_status, ...row }) => ({
                run: runOf(dialect, row as Selectable<RunsTable>),
                reclaimed: dialect.fromText(previous_status) === "running",
              }))
              .sort((a, b) => order(a.run, b.run));
          })
        : // One short transaction: pick the claimable heads (locking them on Postgres, skipping rows
          // another claimer holds), then mark them running under the new lease. Nothing stays locked
          // after it returns.
          access.atomic("runs.claim", async (db) => {
            checkLimit(limit, adapter);
            const at = dialect.timestamp(now);
            let candidates = db
              .selectFrom("runs as r")
              .select(["r.id", "r.status"])
              .where((eb) =>
                eb.or([
                  eb.and([
                    eb("r.status", "=", sql.lit("queued")),
                    // Not reserved for another owner (see runs.create's reserveFor).
                    eb.or([
                      eb("r.lease_owner", "is", null),
                      eb("r.lease_owner", "=", owner),
                      eb("r.lease_expires_at", "<", at),
                    ]),
                  ]),
                  eb.and([
                    eb("r.status", "=", sql.lit("running")),
                    eb.or([eb("r.lease_expires_at", "is", null), eb("r.lease_expires_at", "<", at)]),
                  ]),
                ]),
              )
              .where(({ not, exists, selectFrom }) =>
                not(
                  exists(
                    selectFrom("runs as e")
                      .select("e.id")
                      .whereRef("e.bot_id", "=", "r.bot_id")
                      .whereRef("e.conversation_key", "=", "r.conversation_key")
                      .where("e.status", "in", UNFINISHED)
                      .whereRef("e.seq", "<", "r.seq"),
                  ),
                ),
              )
              .orderBy("r.created_at")
              .orderBy("r.id")
              .limit(limit);
            // Raw, so the table prefix plugin leaves the alias alone.
            if (dialect.rowLocks)
              candidates = candidates.modifyEnd(sql`for update of ${sql.id("r")} skip locked`);
            const picked = await candidates.execute();
            if (picked.length === 0) return [];
            const rows = await db
              .updateTable("runs")
              .set(claimedColumns(at, owner, dialect.timestamp(leaseExpiresAt)))
              .where(
                "id",
                "in",
                picked.map((row) => row.id),
              )
              .returningAll()
              .execute();
            const previous = new Map(picked.map((row) => [row.id, dialect.fromText(row.status)]));
            return rows
              .map((row) => ({ run: runOf(dialect, row), reclaimed: previous.get(row.id) === "running" }))
              .sort((a, b) => order(a.run, b.run));
          }),
    extendLeases: (owner, runIds, expiresAt) =>
      access.run("runs.extendLeases", async (db) => {
        if (runIds.length === 0) return [];
        const rows = await db
          .updateTable("runs")
          .set({ lease_expires_at: dialect.timestamp(expiresAt) })
          .where("id", "in", [...runIds])
          .where("lease_owner", "=", owner)
          .where("status", "=", sql.lit("running"))
          .returning("id")
          .execute();
        return rows.map((row) => row.id);
      }),
    finish: (run, owner) =>
      access.run("runs.finish", async (db) => {
        // The lease condition is the fence: a worker whose run was reclaimed matches no row.
        const row = await db
          .updateTable("runs")
          .set({ ...outcomeColumns(codec, dialect, run), lease_owner: null, lease_expires_at: null })
          .where("id", "=", run.id)
          .where("bot_id", "=", run.botId)
          .where("lease_owner", "=", owner)
          .where("status", "=", sql.lit("running"))
          .returningAll()
          .executeTakeFirst();
        return row ? runOf(dialect, row) : null;
      }),
    listUnfinished: (page) =>
      access.run("runs.listUnfinished", async (db) => {
        const cursor = cursorOf(page);
        let query = db
          .selectFrom("runs")
          .selectAll()
          .where("status", "in", [dialect.text("queued"), dialect.text("running")]);
        if (cursor) {
          query = query.where((eb) =>
            eb(eb.refTuple("created_at", "id"), ">", eb.tuple(cursor.at, cursor.id)),
          );
        }
        const rows = await query
          .orderBy("created_at")
          .orderBy("id")
          .limit(page.limit + 1)
          .execute();
        return toPage(
          rows.map((row) => runOf(dialect, row)),
          page.limit,
          (run) => run.createdAt,
        );
      }),
  };

  const readTrace = async (db: Kysely<Tables>, botId: string, traceId: string) => {
    const row = await db
      .selectFrom("traces")
      .selectAll()
      .where("bot_id", "=", botId)
      .where("id", "=", traceId)
      .executeTakeFirst();
    return row ? traceOf(dialect, row) : null;
  };
  const traces: TraceRepository = {
    create: (trace) =>
      access.run("traces.create", async (db) => {
        const result = await db
          .insertInto("traces")
          .values(traceRow(codec, dialect, trace))
          .onConflict((oc) => oc.doNothing())
          .executeTakeFirst();
        if (!inserted(result)) throw conflict(`a trace with id ${trace.id} already exists`);
        return copy(trace);
      }),
    get: (botId, traceId) => access.run("traces.get", (db) => readTrace(db, botId, traceId)),
    list: ({ botId, userId, from, to }, page) =>
      access.run("traces.list", async (db) => {
        const cursor = cursorOf(page);
        let query = db.selectFrom("traces").selectAll().where("bot_id", "=", botId);
        if (userId !== undefined) query = query.where("user_id", "=", userId);
        if (from) query = query.where("created_at", ">=", dialect.timestamp(from));
        if (to) query = query.where("created_at", "<", dialect.timestamp(to));
        if (cursor) {
          query = query.where((eb) =>
            eb(eb.refTuple("created_at", "id"), ">", eb.tuple(cursor.at, cursor.id)),
          );
        }
        const rows = await query
          .orderBy("created_at")
          .orderBy("id")
          .limit(page.limit + 1)
          .execute();
        return toPage(
          rows.map((row) => traceOf(dialect, row)),
          page.limit,
          (trace) => trace.createdAt,
        );
      }),
    setFeedback: (botId, traceId, feedback) =>
      access.atomic("traces.setFeedback", async (db) => {
        const result = await db
          .updateTable("traces")
          .set({ feedback: codec.json(feedbackJson(feedback)) })
          .where("bot_id", "=", botId)
          .where("id", "=", traceId)
          .executeTakeFirst();
        return changed(result) ? readTrace(db, botId, traceId) : null;
      }),
    deleteOlderThan: (before) =>
      access.run("traces.deleteOlderThan", async (db) => {
        const result = await db
          .deleteFrom("traces")
          .where("created_at", "<", dialect.timestamp(before))
          .executeTakeFirst();
        return Number(result.numDeletedRows ?? 0n);
      }),
  };

  return {
    traces,
    users,
    bots,
    skills,
    skillRecords,
    conversations,
    messages,
    memories,
    usage,
    proposals,
    tools,
    toolAudit,
    approvals,
    runs,
    runSteps: sqlRunStepRepository(access, dialect, names),
    skillVersions: sqlSkillVersionRepository(access, dialect),
    teams: sqlTeamRepository(access, dialect),
    teamMembers: sqlTeamMemberRepository(access, dialect),
    skillPromotions: sqlSkillPromotionRepository(access, dialect),
  };
}
