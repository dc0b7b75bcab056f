import {
  type ColumnType,
  IdentifierNode,
  type KyselyPlugin,
  OperationNodeTransformer,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  type QueryId,
  type QueryResult,
  type RawBuilder,
  type RootOperationNode,
  sql,
  type TableNode,
  type UnknownRow,
} from "kysely";

/**
 * Table types of kilo's SQL schema, shared by the SQLite and Postgres adapters,
 * and the naming rules (table prefix, Postgres schema) that place them in a
 * host's database.
 *
 * Column values are typed as they cross the driver. Where the dialects differ
 * (timestamps are `timestamptz` on Postgres and integer milliseconds on SQLite,
 * JSON is `jsonb` or TEXT, booleans are `boolean` or 0/1) the selected type is
 * `unknown` and the dialect decodes it.
 *
 * @module
 */

/** A timestamp as written: a `Date` (Postgres) or epoch milliseconds (SQLite). */
export type StoredTimestamp = Date | number;
/** A boolean as written: `boolean` (Postgres) or 0/1 (SQLite). */
export type StoredBoolean = boolean | number;

type Timestamp = ColumnType<unknown, StoredTimestamp, StoredTimestamp>;
type NullableTimestamp = ColumnType<unknown, StoredTimestamp | null, StoredTimestamp | null>;
/** JSON is always written as JSON text; Postgres reads it back parsed, SQLite as text. */
type Json = ColumnType<unknown, string, string>;
type NullableJson = ColumnType<unknown, string | null, string | null>;
/** Integers read back as numbers, or bigints from a host database with safe integers turned on. */
type Integer = ColumnType<unknown, number, number>;
type Real = ColumnType<unknown, number, number>;
type Bool = ColumnType<unknown, StoredBoolean, StoredBoolean>;

/** Row of `users`. */
export interface UsersTable {
  id: string;
  name: string | null;
  metadata: Json;
  created_at: Timestamp;
}

/** Row of `bots`. */
export interface BotsTable {
  id: string;
  user_id: string;
  name: string;
  soul: NullableJson;
  personality: string | null;
  context: string | null;
  metadata: Json;
  created_at: Timestamp;
  updated_at: Timestamp;
  /** The team the bot is in (migration 11); `null` when none. */
  team_id: ColumnType<string | null, string | null | undefined, string | null>;
}

/**
 * Row of `skills`. `scope` (migration 11) is the skill's scope key (`system`,
 * `team:<id>`, `user:<id>`, `bot:<id>`); `name_folded` is the lower-cased
 * name that the unique (scope, name) key uses. `bot_id` is set for a bot's
 * own skill and `team_id` for a team's, so they go with their bot or team.
 */
export interface SkillsTable {
  id: string;
  bot_id: string | null;
  scope: string;
  team_id: string | null;
  name: string;
  name_folded: string;
  description: string;
  instructions: string;
  triggers: Json;
  examples: Json;
  data_fields: Json;
  required_integrations: Json;
  task_type: string;
  status: string;
  metadata: Json;
  created_at: Timestamp;
  updated_at: Timestamp;
  /** A Markdown skill's body and front-matter fields (migration 6); `null` for a structured skill. */
  markdown: NullableJson;
}

/** Row of `skill_records`. */
export interface SkillRecordsTable {
  id: string;
  bot_id: string;
  skill_id: string;
  data: Json;
  created_at: Timestamp;
  updated_at: Timestamp;
}

/** Row of `conversations`. `last_seq` (migration 2) is the seq of the newest message. */
export interface ConversationsTable {
  id: string;
  bot_id: string;
  user_id: string;
  channel: string;
  title: string | null;
  metadata: Json;
  created_at: Timestamp;
  updated_at: Timestamp;
  last_seq: ColumnType<unknown, number | undefined, number>;
}

/** Row of `messages`. */
export interface MessagesTable {
  id: string;
  bot_id: string;
  conversation_id: string;
  seq: Integer;
  role: string;
  content: string;
  metadata: Json;
  created_at: Timestamp;
}

/** Row of `memories`. `key_folded` is the lower-cased key that `findByKey` matches. */
export interface MemoriesTable {
  id: string;
  bot_id: string;
  user_id: string;
  key: string;
  key_folded: string;
  content: string;
  source: Json;
  history: Json;
  created_at: Timestamp;
  updated_at: Timestamp;
}

/** Row of `usage_records`. */
export interface UsageRecordsTable {
  id: string;
  bot_id: string | null;
  user_id: string | null;
  conversation_id: string | null;
  provider: string;
  model: string;
  task_type: string;
  purpose: string;
  prompt_tokens: Integer;
  completion_tokens: Integer;
  cache_read_tokens: Integer;
  cache_write_tokens: Integer;
  reasoning_tokens: Integer;
  cost_usd: Real;
  latency_ms: Real;
  success: Bool;
  error_code: string | null;
  created_at: Timestamp;
}

/** Row of `proposals`. */
export interface ProposalsTable {
  id: string;
  bot_id: string;
  user_id: string;
  conversation_id: string | null;
  name: string;
  description: string;
  triggers: Json;
  data_fields: Json;
  clarifying_questions: Json;
  source_message: string;
  status: string;
  skill_id: string | null;
  created_at: Timestamp;
  resolved_at: NullableTimestamp;
  /** Migration 7: an integration proposal's plan; `null` on a plain skill proposal. */
  integration: NullableJson;
}

/**
 * Row of `tools` (migration 3). `name_folded` is the lower-cased name that the
 * unique (bot_id, name) key and `findByName` use; `credential` is the vault's
 * ciphertext, stored opaque.
 */
export interface ToolsTable {
  id: string;
  bot_id: string;
  name: string;
  name_folded: string;
  description: string;
  base_url: string;
  auth: Json;
  credential: string | null;
  endpoints: Json;
  created_at: Timestamp;
  updated_at: Timestamp;
}

/** Row of `tool_call_audit` (migration 3). */
export interface ToolCallAuditTable {
  id: string;
  bot_id: string;
  user_id: string;
  conversation_id: string | null;
  tool_id: string | null;
  tool_name: string;
  endpoint: string;
  method: string | null;
  status: string;
  http_status: ColumnType<unknown, number | null, number | null>;
  duration_ms: Real;
  response_bytes: Integer;
  error_code: string | null;
  created_at: Timestamp;
}

/** Row of `tool_approvals` (migration 3). */
export interface ToolApprovalsTable {
  id: string;
  bot_id: string;
  user_id: string;
  conversation_id: string;
  tool_id: string;
  tool_name: string;
  endpoint: string;
  input: Json;
  tool_call_id: string;
  /** The run whose turn asked for the approval (migration 12); `null` outside a run. */
  run_id: string | null;
  status: string;
  reason: string | null;
  created_at: Timestamp;
  decided_at: NullableTimestamp;
}

/** Row of `runs` (migration 4). `seq` orders the runs of one (bot_id, conversation_key). */
export interface RunsTable {
  id: string;
  bot_id: string;
  user_id: string;
  conversation_key: string;
  conversation_id: string | null;
  event_type: string;
  workflow: string;
  status: string;
  input: Json;
  output: NullableJson;
  error: NullableJson;
  delivery_id: string | null;
  seq: Integer;
  created_at: Timestamp;
  started_at: NullableTimestamp;
  finished_at: NullableTimestamp;
  /** The worker holding the run's lease while it is `running` (migration 5); `null` otherwise. */
  lease_owner: ColumnType<string | null, string | null | undefined, string | null>;
  /** When that lease expires unless extended (migration 5). */
  lease_expires_at: ColumnType<unknown, StoredTimestamp | null | undefined, StoredTimestamp | null>;
  /** How many times the run was requeued after an approval decision (migration 13). */
  resumes: ColumnType<unknown, number | undefined, number>;
}

/** Row of `run_keys` (migration 4): the last seq handed out per (bot_id, conversation_key). */
export interface RunKeysTable {
  bot_id: string;
  conversation_key: string;
  last_seq: Integer;
}

/** Row of `run_steps` (migration 9): one recorded workflow step, keyed by (run_id, step_index). */
export interface RunStepsTable {
  run_id: string;
  bot_id: string;
  step_index: Integer;
  name: string;
  kind: string;
  status: string;
  /** `{ "value": <the step's output> }`, or `null` until it succeeded. */
  output: NullableJson;
  error: NullableJson;
  started_at: Timestamp;
  finished_at: NullableTimestamp;
}

/** Row of `traces` (migration 8): one chat turn's trace. */
export interface TracesTable {
  id: string;
  bot_id: string;
  user_id: string;
  conversation_id: string | null;
  user_message_id: string | null;
  reply_message_id: string | null;
  message: string;
  skill_id: string | null;
  skill_name: string | null;
  match_pass: string | null;
  match_confidence: ColumnType<unknown, number | null, number | null>;
  skills_injected: Json;
  tool_calls: Json;
  outcome: string;
  error_code: string | null;
  latency_ms: Real;
  model: string | null;
  prompt_tokens: Integer;
  completion_tokens: Integer;
  cost_usd: Real;
  feedback: NullableJson;
  created_at: Timestamp;
}

/**
 * Row of `skill_versions` (migration 10): one version of a skill, unique per
 * (skill_id, version). `scope` and `origin` came with migration 11.
 */
export interface SkillVersionsTable {
  id: string;
  skill_id: string;
  bot_id: string | null;
  scope: string;
  version: Integer;
  /** The skill's content after the change (a `SkillSnapshot`). */
  snapshot: Json;
  author: string;
  reason: string | null;
  diff: string;
  /** Where a promoted version's content came from (a `SkillVersionOrigin`); `null` otherwise. */
  origin: NullableJson;
  created_at: Timestamp;
}

/** Row of `teams` (migration 11). */
export interface TeamsTable {
  id: string;
  name: string;
  metadata: Json;
  created_at: Timestamp;
  updated_at: Timestamp;
}

/** Row of `team_members` (migration 11): one per (team_id, user_id). */
export interface TeamMembersTable {
  team_id: string;
  user_id: string;
  role: string;
  created_at: Timestamp;
  updated_at: Timestamp;
}

/** Row of `skill_promotions` (migration 11): one promotion request. Scopes are stored as scope keys. */
export interface SkillPromotionsTable {
  id: string;
  skill_id: string;
  skill_name: string;
  from_scope: string;
  to_scope: string;
  source_version: ColumnType<unknown, number | null, number | null>;
  /** The content to promote (a `SkillSnapshot`). */
  snapshot: Json;
  target_skill_id: string | null;
  target_version: ColumnType<unknown, number | null, number | null>;
  diff: string;
  reason: string;
  requested_by: string;
  status: string;
  reviewer: string | null;
  review_note: string | null;
  result_skill_id: string | null;
  created_at: Timestamp;
  decided_at: NullableTimestamp;
}

/** Row of `kilo_migrations`: one per applied schema version. */
export interface MigrationsTable {
  version: Integer;
  name: string;
  checksum: string;
  applied_at: Timestamp;
}

/** kilo's tables, by their unprefixed names. */
export interface Tables {
  users: UsersTable;
  bots: BotsTable;
  skills: SkillsTable;
  skill_records: SkillRecordsTable;
  conversations: ConversationsTable;
  messages: MessagesTable;
  memories: MemoriesTable;
  usage_records: UsageRecordsTable;
  proposals: ProposalsTable;
  tools: ToolsTable;
  tool_call_audit: ToolCallAuditTable;
  tool_approvals: ToolApprovalsTable;
  runs: RunsTable;
  run_keys: RunKeysTable;
  traces: TracesTable;
  run_steps: RunStepsTable;
  skill_versions: SkillVersionsTable;
  teams: TeamsTable;
  team_members: TeamMembersTable;
  skill_promotions: SkillPromotionsTable;
  kilo_migrations: MigrationsTable;
}

/** A table name without its prefix. */
export type TableName = keyof Tables;

/** Every table, parents before children. */
export const TABLE_NAMES: readonly TableName[] = [
  "users",
  "teams",
  "team_members",
  "bots",
  "skills",
  "skill_records",
  "conversations",
  "messages",
  "memories",
  "usage_records",
  "proposals",
  "tools",
  "tool_call_audit",
  "tool_approvals",
  "runs",
  "run_keys",
  "traces",
  "run_steps",
  "skill_versions",
  "skill_promotions",
  "kilo_migrations",
];

const KNOWN_TABLES: ReadonlySet<string> = new Set(TABLE_NAMES);

/** Where kilo's tables live: an optional Postgres schema and a table prefix. */
export interface SqlNames {
  /** Prefix of every table, index and constraint name (may be empty). */
  readonly prefix: string;
  /** Postgres schema holding the tables, or `null` for the connection's default. */
  readonly schema: string | null;
  /** The table's name with the prefix. */
  table(name: TableName): string;
  /** An index or constraint name with the prefix. */
  index(name: string): string;
  /** The table as a quoted (schema-qualified) identifier, for raw SQL. */
  qualified(name: TableName): RawBuilder<unknown>;
}

/** Longest prefix accepted: index names stay within Postgres's 63-byte identifier limit. */
export const MAX_TABLE_PREFIX_LENGTH = 24;

/**
 * Checks a host's `tablePrefix` option: letters, digits and '_', not starting with a digit, at most
 * {@link MAX_TABLE_PREFIX_LENGTH} characters. `fail` builds the adapter's own configuration error.
 */
export function checkTablePrefix(prefix: string | undefined, fail: (message: string) => Error): string {
  if (prefix === undefined || prefix === "") return "";
  if (
    typeof prefix !== "string" ||
    prefix.length > MAX_TABLE_PREFIX_LENGTH ||
    !/^[A-Za-z_][A-Za-z0-9_]*$/.test(prefix)
  ) {
    throw fail(
      `\`tablePrefix\` must be letters, digits and '_' (not starting with a digit), at most ${MAX_TABLE_PREFIX_LENGTH} characters`,
    );
  }
  return prefix;
}

/** Builds the naming rules of one kilo install. `prefix` and `schema` must already be validated. */
export function sqlNames(prefix: string, schema: string | null): SqlNames {
  return {
    prefix,
    schema,
    table: (name) => `${prefix}${name}`,
    index: (name) => `${prefix}${name}`,
    qualified: (name) => (schema === null ? sql.id(`${prefix}${name}`) : sql.id(schema, `${prefix}${name}`)),
  };
}

/**
 * A kysely plugin that adds the table prefix to kilo's table names in every
 * query built through the query builder, so queries are written with the
 * plain names. Names that are not kilo tables (aliases, CTEs, the host's
 * tables) are left alone.
 */
export class TablePrefixPlugin implements KyselyPlugin {
  private readonly transformer: TablePrefixTransformer;

  constructor(prefix: string) {
    this.transformer = new TablePrefixTransformer(prefix);
  }

  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    return this.transformer.transformNode(args.node, args.queryId);
  }

  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return args.result;
  }
}

class TablePrefixTransformer extends OperationNodeTransformer {
  constructor(private readonly prefix: string) {
    super();
  }

  protected override transformTable(node: TableNode, queryId?: QueryId): TableNode {
    const transformed = super.transformTable(node, queryId);
    const name = transformed.table.identifier.name;
    if (!KNOWN_TABLES.has(name)) return transformed;
    return {
      ...transformed,
      table: { ...transformed.table, identifier: IdentifierNode.create(`${this.prefix}${name}`) },
    };
  }
}
