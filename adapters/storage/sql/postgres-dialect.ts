import {
  type Dialect,
  DummyDriver,
  type Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type RawBuilder,
  type Selectable,
  type SqlBool,
  sql,
} from "kysely";
import type { RunStepsTable, RunsTable, SqlNames, Tables, TracesTable, UsageRecordsTable } from "./schema.js";
import type { AppendOutcome, RunRows, SqlDialect, SqlErrorClass, TurnRows } from "./sql-storage.js";

/**
 * What is particular to Postgres (pg): `jsonb` and `timestamptz` columns,
 * message appends and turn commits as single statements (data-modifying CTEs,
 * one round trip), an advisory lock around migrations, SQLSTATE error codes,
 * and a reversible escape for NUL, which Postgres refuses in `text` and `jsonb`.
 *
 * NUL escape: `U+0000` is stored as `U+E000 U+E001` and `U+E000` (a private-use
 * character) as `U+E000 U+E000`, in text columns and in every JSON string and
 * key. The mapping is injective and leaves case alone, so equality and
 * case-insensitive comparison of encoded values match those of the originals.
 */
export const postgresDialect: SqlDialect = {
  name: "postgres",
  types: {
    text: "text",
    json: "jsonb",
    timestamp: "timestamptz",
    boolean: "boolean",
    integer: "integer",
    real: "double precision",
  },
  begin: "begin",
  rowLocks: true,

  compileOnly(): Dialect {
    return {
      createAdapter: () => new PostgresAdapter(),
      createDriver: () => new DummyDriver(),
      createIntrospector: (db) => new PostgresIntrospector(db),
      createQueryCompiler: () => new PostgresQueryCompiler(),
    };
  },

  text: encodeText,
  fromText: decodeText,
  json(value) {
    const text = JSON.stringify(value);
    if (text === undefined) throw new TypeError("the value has no JSON representation");
    // JSON.stringify writes NUL as \u0000; only then (or when the escape character itself
    // occurs) is the value walked and re-serialized.
    if (!text.includes("\\u0000") && !text.includes(ESCAPE)) return text;
    return JSON.stringify(mapStrings(value, encodeText));
  },
  fromJson(raw) {
    const value: unknown = typeof raw === "string" ? JSON.parse(raw) : raw;
    return hasEscape(value) ? mapStrings(value, decodeText) : value;
  },
  timestamp: (date) => date,
  fromTimestamp: (raw) => (raw instanceof Date ? raw : new Date(String(raw))),
  boolean: (value) => value,
  fromBoolean: (raw) => raw === true || raw === "t" || raw === "true",

  jsonFieldEquals(column, field, value) {
    const member = sql`${column} -> ${encodeText(field)}::text`;
    if (typeof value === "string") {
      return sql<SqlBool>`(jsonb_typeof(${member}) = 'string' and lower(${column} ->> ${encodeText(field)}::text) = lower(${encodeText(value)}::text))`;
    }
    if (typeof value === "number" && !Number.isFinite(value)) return sql<SqlBool>`false`;
    // jsonb equality compares numbers numerically (3 = 3.0) and never a number with a string.
    return sql<SqlBool>`(${member}) = ${JSON.stringify(value)}::jsonb`;
  },

  jsonFieldContains(column, field, text) {
    const key = encodeText(field);
    return sql<SqlBool>`(jsonb_typeof(${column} -> ${key}::text) = 'string' and strpos(lower(${column} ->> ${key}::text), lower(${encodeText(text)}::text)) > 0)`;
  },

  async appendMessage(db, names, row, touch) {
    // The counter bump takes the conversation's row lock, which orders concurrent appends
    // (also across processes); the insert reads the bumped value in the same statement.
    const result = await sql<{ bumped: unknown; seq: unknown }>`${PREPARED}
      with bumped as (
        update ${names.qualified("conversations")} set last_seq = last_seq + 1${
          touch === undefined ? sql`` : sql`, updated_at = ${touch}::timestamptz`
        }
        where bot_id = ${row.bot_id} and id = ${row.conversation_id}
        returning last_seq
      ), appended as (
        insert into ${names.qualified("messages")} (${messageColumns})
        select ${messageValues(row)} from bumped
        on conflict do nothing
        returning seq
      )
      select (select last_seq from bumped) as bumped, (select seq from appended) as seq
    `.execute(db);
    return outcome(result.rows[0]);
  },

  async commitTurn(db, names, rows) {
    return (await commitStatement(db, names, rows)).append;
  },

  commitRunTurn: (db, names, rows) => commitStatement(db, names, rows),

  async createRun(db, names, row, claim) {
    // One statement: the key's counter bump (its row lock orders concurrent creates of a key,
    // across processes too) and the insert that reads the bumped value. A clash rolls both back.
    // With a claim, the run starts `running` when nothing of its key is queued or running; two
    // creates racing on a free key both see it free, and the one-running index refuses the second.
    const runsTable = names.qualified("runs");
    const start = claim
      ? sql`not exists (
          select 1 from ${runsTable} as e
          where e.bot_id = ${row.bot_id}::text and e.conversation_key = ${row.conversation_key}::text
            and e.status in ('queued', 'running'))`
      : sql`false`;
    const result = await sql<{ seq: unknown; status: string }>`${PREPARED}
      with bumped as (
        insert into ${names.qualified("run_keys")} (bot_id, conversation_key, last_seq)
        values (${row.bot_id}, ${row.conversation_key}, 1)
        on conflict (bot_id, conversation_key) do update set last_seq = ${names.qualified("run_keys")}.last_seq + 1
        returning last_seq
      ), free as (
        select ${start} as start
      )
      insert into ${runsTable} (id, bot_id, user_id, conversation_key, conversation_id, event_type, workflow,
        status, input, output, error, delivery_id, seq, created_at, started_at, finished_at, lease_owner, lease_expires_at)
      select ${row.id}::text, ${row.bot_id}::text, ${row.user_id}::text, ${row.conversation_key}::text,
        ${row.conversation_id}::text, ${row.event_type}::text, ${row.workflow}::text,
        case when free.start then 'running' else ${row.status}::text end,
        ${row.input}::jsonb, ${row.output}::jsonb, ${row.error}::jsonb, ${row.delivery_id}::text, bumped.last_seq,
        ${row.created_at}::timestamptz,
        case when free.start then ${claim?.row.started_at ?? null}::timestamptz else ${row.started_at}::timestamptz end,
        ${row.finished_at}::timestamptz,
        case when free.start then ${claim?.row.lease_owner ?? null}::text else ${row.lease_owner ?? null}::text end,
        case when free.start then ${claim?.row.lease_expires_at ?? null}::timestamptz
          else ${row.lease_expires_at ?? null}::timestamptz end
      from bumped, free
      returning seq, status
    `.execute(db);
    const stored = result.rows[0]!;
    return { seq: Number(stored.seq), started: stored.status === "running" && row.status !== "running" };
  },

  async saveRunStep(db, names, row) {
    // One statement: the insert reads the run's owner itself, so another bot's run stores nothing.
    const result = await sql<{ run_id: string }>`${PREPARED}
      insert into ${names.qualified("run_steps")} (run_id, bot_id, step_index, name, kind, status, output, error,
        started_at, finished_at)
      select ${row.run_id}::text, ${row.bot_id}::text, ${row.step_index}::integer, ${row.name}::text,
        ${row.kind}::text, ${row.status}::text, ${row.output ?? null}::jsonb, ${row.error ?? null}::jsonb,
        ${row.started_at}::timestamptz, ${row.finished_at ?? null}::timestamptz
      where exists (
        select 1 from ${names.qualified("runs")} where id = ${row.run_id}::text and bot_id = ${row.bot_id}::text
      )
      on conflict (run_id, step_index) do update set name = excluded.name, kind = excluded.kind,
        status = excluded.status, output = excluded.output, error = excluded.error,
        started_at = excluded.started_at, finished_at = excluded.finished_at
      returning run_id
    `.execute(db);
    return result.rows.length > 0;
  },

  async claimRuns(db, names, { owner, now, leaseExpiresAt, limit }) {
    // One statement: pick the claimable heads, locking them and skipping rows another claimer
    // holds, and mark them running under the new lease. Nothing stays locked after it returns.
    const runsTable = names.qualified("runs");
    const result = await sql<Record<string, unknown>>`
      with picked as (
        select r.id, r.status from ${runsTable} as r
        where ((r.status = 'queued'
            and (r.lease_owner is null or r.lease_owner = ${owner}::text or r.lease_expires_at < ${now}::timestamptz))
          or (r.status = 'running' and (r.lease_expires_at is null or r.lease_expires_at < ${now}::timestamptz)))
          and not exists (
            select 1 from ${runsTable} as e
            where e.bot_id = r.bot_id and e.conversation_key = r.conversation_key
              and e.status in ('queued', 'running') and e.seq < r.seq
          )
        order by r.created_at, r.id
        limit ${limit}
        for update of r skip locked
      )
      update ${runsTable} as u
      set status = 'running', started_at = ${now}::timestamptz, finished_at = null, output = null, error = null,
        lease_owner = ${owner}::text, lease_expires_at = ${leaseExpiresAt}::timestamptz
      from picked where u.id = picked.id
      returning u.*, picked.status as previous_status
    `.execute(db);
    return result.rows as Array<Selectable<RunsTable> & { previous_status: string }>;
  },

  async lockMigrations(db, names) {
    // Held until the migration transaction ends; keyed by schema and prefix, so
    // installs side by side in one database migrate independently.
    await sql`select pg_advisory_xact_lock(${LOCK_NAMESPACE}::integer, hashtext(coalesce(${names.schema}::text, current_schema()) || ':' || ${names.prefix}::text))`.execute(
      db,
    );
  },

  async createSchema(db, names) {
    if (names.schema !== null) await sql`create schema if not exists ${sql.id(names.schema)}`.execute(db);
  },

  classify(error): SqlErrorClass | null {
    if (error instanceof AggregateError && error.errors.length > 0) return this.classify(error.errors[0]);
    if (typeof error !== "object" || error === null) return null;
    const code = (error as { code?: unknown }).code;
    const message = error instanceof Error ? error.message : "";
    if (typeof code === "string") {
      if (code === "23505") return { code: "CONFLICT", retryable: false, connection: false };
      if (code === "23503") return { code: "NOT_FOUND", retryable: false, connection: false };
      if (code === "40001" || code === "40P01" || code === "55P03") {
        return { code: "STORAGE_FAILED", retryable: true, connection: false };
      }
      if (code.startsWith("08") || RETRYABLE_CONNECTION_CODES.has(code)) {
        return { code: "STORAGE_FAILED", retryable: true, connection: true };
      }
      if (code.startsWith("28") || code === "3D000") {
        return { code: "STORAGE_FAILED", retryable: false, connection: true };
      }
    }
    if (CONNECTION_MESSAGES.test(message))
      return { code: "STORAGE_FAILED", retryable: true, connection: true };
    return null;
  },

  isMissingTable(error) {
    const code = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
    return code === "42P01" || code === "3F000";
  },
};

/** First key of the two-key advisory lock: "kilo" in ASCII. */
const LOCK_NAMESPACE = 0x6b696c6f;

/** Server shutting down or refusing connections, and Node's network errors. */
const RETRYABLE_CONNECTION_CODES: ReadonlySet<string> = new Set([
  "57P01",
  "57P02",
  "57P03",
  "53300",
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
]);

/** What pg says when a client's connection is gone (these errors carry no code). */
const CONNECTION_MESSAGES =
  /connection terminated|not queryable|timeout exceeded when trying to connect|client was closed|connection ended|connection is closed/i;

const MESSAGE_COLUMNS = [
  "id",
  "bot_id",
  "conversation_id",
  "seq",
  "role",
  "content",
  "metadata",
  "created_at",
] as const;

const messageColumns = sql.join(MESSAGE_COLUMNS.map((column) => sql.id(column)));

const USAGE_COLUMNS: ReadonlyArray<keyof UsageRecordsTable> = [
  "id",
  "bot_id",
  "user_id",
  "conversation_id",
  "provider",
  "model",
  "task_type",
  "purpose",
  "prompt_tokens",
  "completion_tokens",
  "cache_read_tokens",
  "cache_write_tokens",
  "reasoning_tokens",
  "cost_usd",
  "latency_ms",
  "success",
  "error_code",
  "created_at",
];

const usageColumns = sql.join(USAGE_COLUMNS.map((column) => sql.id(column)));

const TRACE_COLUMNS: ReadonlyArray<keyof TracesTable> = [
  "id",
  "bot_id",
  "user_id",
  "conversation_id",
  "user_message_id",
  "reply_message_id",
  "message",
  "skill_id",
  "skill_name",
  "match_pass",
  "match_confidence",
  "skills_injected",
  "tool_calls",
  "outcome",
  "error_code",
  "latency_ms",
  "model",
  "prompt_tokens",
  "completion_tokens",
  "cost_usd",
  "feedback",
  "created_at",
];

/**
 * Opens the statements worth preparing once per connection: the hot ones of a
 * turn and a run, whose text is fixed per shape and whose result columns are
 * named (so a migration by another process never changes a prepared
 * statement's result type). The storage's pool runs them as named prepared
 * statements (`postgres-storage.ts`), saving Postgres the planning on every
 * execution; elsewhere the comment is only a comment.
 */
export const PREPARED_MARK = "/* kilo:prepared */";
const PREPARED = sql.raw(PREPARED_MARK);

const traceColumns = sql.join(TRACE_COLUMNS.map((column) => sql.id(column)));

/**
 * A turn as one statement: nothing of it is stored unless all of it is. The
 * usage rows travel as one JSON parameter, typed by the table's own row type;
 * the trace, and a run's step and outcome, ride as more CTEs (no extra round
 * trip). The run's outcome is conditional (still running, under the owner's
 * lease): `finished` is null when it was refused.
 */
async function commitStatement(
  db: Kysely<Tables>,
  names: SqlNames,
  { message, usage, conversationUpdatedAt, trace, run }: TurnRows & { run?: RunRows | undefined },
): Promise<{ append: AppendOutcome; finishedSeq: number | null }> {
  const usageTable = names.qualified("usage_records");
  const tracesTable = names.qualified("traces");
  const runsTable = names.qualified("runs");
  const stepsTable = names.qualified("run_steps");
  // JSON columns go in as JSON values, not as the JSON text the row holds.
  const traced = trace
    ? sql`, traced as (
        insert into ${tracesTable} (${traceColumns})
        select ${traceColumns} from jsonb_populate_record(null::${tracesTable}, ${JSON.stringify(jsonColumns(trace, ["skills_injected", "tool_calls", "feedback"]))}::jsonb)
        where exists (select 1 from appended)
        returning id
      )`
    : sql``;
  const ran = run
    ? sql`, stepped as (
        insert into ${stepsTable} (${stepColumns})
        select ${stepColumns} from jsonb_populate_record(null::${stepsTable}, ${JSON.stringify(jsonColumns(run.step, ["output", "error"]))}::jsonb)
        where exists (select 1 from appended)
          and exists (select 1 from ${runsTable} where id = ${run.step.run_id} and bot_id = ${run.step.bot_id})
        on conflict (run_id, step_index) do update set ${stepUpdates}
        returning step_index
      ), finished as (
        update ${runsTable}
        set status = ${run.outcome.status}::text, output = ${run.outcome.output}::jsonb,
          error = ${run.outcome.error}::jsonb, started_at = ${run.outcome.started_at}::timestamptz,
          finished_at = ${run.outcome.finished_at}::timestamptz, lease_owner = null, lease_expires_at = null
        where id = ${run.outcome.id} and bot_id = ${run.outcome.bot_id} and status = 'running'
          and ${run.owner === null ? sql`true` : sql`lease_owner = ${run.owner}::text`}
          and exists (select 1 from appended)
        returning id, bot_id, conversation_key, seq
      )${run.handOff ? handOffCte(runsTable, run.owner, run.handOff) : sql``}`
    : sql``;
  const result = await sql<{ bumped: unknown; seq: unknown; finished?: unknown }>`${PREPARED}
      with bumped as (
        update ${names.qualified("conversations")}
        set last_seq = last_seq + 1, updated_at = ${conversationUpdatedAt}::timestamptz
        where bot_id = ${message.bot_id} and id = ${message.conversation_id}
        returning last_seq
      ), appended as (
        insert into ${names.qualified("messages")} (${messageColumns})
        select ${messageValues(message)} from bumped
        returning seq
      ), recorded as (
        insert into ${usageTable} (${usageColumns})
        select ${usageColumns} from jsonb_populate_recordset(null::${usageTable}, ${JSON.stringify(usage)}::jsonb)
        where exists (select 1 from appended)
        returning id
      )${traced}${ran}
      select (select last_seq from bumped) as bumped, (select seq from appended) as seq,
        (select count(*) from recorded) as recorded${trace ? sql`, (select count(*) from traced) as traced` : sql``}${
          run
            ? sql`, (select count(*) from stepped) as stepped, (select seq from finished) as finished${
                run.handOff ? sql`, (select row_to_json(handed) from handed) as next` : sql``
              }`
            : sql``
        }
    `.execute(db);
  const row = result.rows[0];
  const finished = row?.finished;
  const next = (row as { next?: Selectable<RunsTable> | null } | undefined)?.next;
  return {
    append: outcome(row),
    finishedSeq: finished === null || finished === undefined ? null : Number(finished),
    ...(run?.handOff ? { next: next ?? null } : {}),
  };
}

/**
 * The hand-off CTE of a run's commit: once `finished` stored the outcome, the
 * key's next run (its other unfinished run with the smallest seq; the
 * statement's snapshot still sees the finishing run `running`) is started,
 * claimed for `owner` (none: no lease), when it is queued, is `handOff.runId`
 * (when set) and is not reserved for another owner. Reading `finished` orders
 * the two updates, so the key never has two running runs.
 */
function handOffCte(
  runsTable: RawBuilder<unknown>,
  owner: string | null,
  handOff: { now: unknown; leaseExpiresAt: unknown; runId: string | null },
): RawBuilder<unknown> {
  return sql`, handed as (
        update ${runsTable} as n
        set status = 'running', started_at = ${handOff.now}::timestamptz, finished_at = null, output = null,
          error = null, lease_owner = ${owner}::text, lease_expires_at = ${handOff.leaseExpiresAt}::timestamptz
        from finished as f
        where n.id = (
            select h.id from ${runsTable} as h
            where h.bot_id = f.bot_id and h.conversation_key = f.conversation_key
              and h.status in ('queued', 'running') and h.id <> f.id
            order by h.seq limit 1
          )
          and n.status = 'queued'${handOff.runId === null ? sql`` : sql` and n.id = ${handOff.runId}::text`}
          and (n.lease_owner is null or n.lease_owner = ${owner}::text
            or n.lease_expires_at < ${handOff.now}::timestamptz)
        returning n.*
      )`;
}

const STEP_COLUMNS: ReadonlyArray<keyof RunStepsTable> = [
  "run_id",
  "bot_id",
  "step_index",
  "name",
  "kind",
  "status",
  "output",
  "error",
  "started_at",
  "finished_at",
];

const stepColumns = sql.join(STEP_COLUMNS.map((column) => sql.id(column)));
const stepUpdates = sql.join(
  STEP_COLUMNS.filter((column) => column !== "run_id" && column !== "step_index").map(
    (column) => sql`${sql.id(column)} = excluded.${sql.id(column)}`,
  ),
);

/** A row as one JSON object for `jsonb_populate_record`, its JSON-text columns as JSON values. */
function jsonColumns(row: object, columns: readonly string[]): Record<string, unknown> {
  const values: Record<string, unknown> = { ...row };
  for (const column of columns) {
    const raw = values[column];
    if (typeof raw === "string") values[column] = JSON.parse(raw) as unknown;
  }
  return values;
}

interface MessageValues {
  id: string;
  bot_id: string;
  conversation_id: string;
  role: string;
  content: string;
  metadata: string;
  created_at: unknown;
}

/** The select list inserting a message whose seq comes from the `bumped` CTE. */
function messageValues(row: MessageValues): RawBuilder<unknown> {
  return sql.join([
    sql`${row.id}::text`,
    sql`${row.bot_id}::text`,
    sql`${row.conversation_id}::text`,
    sql`bumped.last_seq`,
    sql`${row.role}::text`,
    sql`${row.content}::text`,
    sql`${row.metadata}::jsonb`,
    sql`${row.created_at}::timestamptz`,
  ]);
}

function outcome(row: { bumped: unknown; seq: unknown } | undefined): AppendOutcome {
  if (!row || row.bumped === null || row.bumped === undefined) return { kind: "no-conversation" };
  if (row.seq === null || row.seq === undefined) return { kind: "conflict" };
  return { kind: "appended", seq: Number(row.seq) };
}

// ---------------------------------------------------------------------------
// NUL escape

const NUL = "\u0000";
const ESCAPE = "\uE000";
const ESCAPED_NUL = "\uE001";

function encodeText(value: string): string {
  if (!value.includes(NUL) && !value.includes(ESCAPE)) return value;
  return value
    .split(ESCAPE)
    .map((part) => part.split(NUL).join(ESCAPE + ESCAPED_NUL))
    .join(ESCAPE + ESCAPE);
}

function decodeText(value: string): string {
  if (!value.includes(ESCAPE)) return value;
  let decoded = "";
  for (let i = 0; i < value.length; i++) {
    const char = value[i]!;
    const next = value[i + 1];
    if (char === ESCAPE && (next === ESCAPE || next === ESCAPED_NUL)) {
      decoded += next === ESCAPE ? ESCAPE : NUL;
      i += 1;
    } else {
      decoded += char;
    }
  }
  return decoded;
}

function hasEscape(value: unknown): boolean {
  if (typeof value === "string") return value.includes(ESCAPE);
  if (Array.isArray(value)) return value.some(hasEscape);
  if (isPlainObject(value)) {
    for (const [key, member] of Object.entries(value))
      if (key.includes(ESCAPE) || hasEscape(member)) return true;
  }
  return false;
}

/** Copies a JSON value, passing every string and object key through `map`. */
function mapStrings(value: unknown, map: (text: string) => string): unknown {
  if (typeof value === "string") return map(value);
  if (Array.isArray(value)) return value.map((item) => mapStrings(item, map));
  if (isPlainObject(value)) {
    const copy: Record<string, unknown> = {};
    for (const [key, member] of Object.entries(value)) {
      // defineProperty, so a key named "__proto__" stays an own property.
      Object.defineProperty(copy, map(key), {
        value: mapStrings(member, map),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return copy;
  }
  return value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !(value instanceof Date) && !Array.isArray(value);
}
