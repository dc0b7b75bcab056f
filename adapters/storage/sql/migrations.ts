import { createHash } from "node:crypto";
import { type CompiledQuery, type CreateTableBuilder, Kysely, sql } from "kysely";
import { KiloError } from "../../../src/errors.js";
import type { SqlNames, Tables } from "./schema.js";
import type { SqlColumnTypes, SqlDialect } from "./sql-storage.js";

/**
 * kilo's SQL schema as an ordered list of forward-only migrations, and the
 * runner that applies them. Applied versions are recorded in
 * `<prefix>kilo_migrations` with a checksum of the SQL each ran, so an edited
 * migration or a database written by a newer kilo is refused instead of
 * silently misread.
 *
 * @module
 */

/** What a migration builds its statements with. */
export interface MigrationContext {
  types: SqlColumnTypes;
  /** Prefixes an index or constraint name (and the name of a table a migration builds under a temporary name). */
  index(name: string): string;
  /** The dialect's name (`sqlite`, `postgres`), for the few changes the two databases make differently. */
  dialect: string;
}

/** One schema version. */
export interface Migration {
  version: number;
  /** Stable name, recorded in `kilo_migrations` and returned by `migrate()`. */
  name: string;
  /** The statements, in order. Built twice: to run, and (without prefix or schema) to checksum. */
  statements(db: Kysely<Tables>, context: MigrationContext): CompiledQuery[];
}

type Column = Parameters<CreateTableBuilder<string, never>["addColumn"]>[2];
const required: Column = (column) => column.notNull();

/**
 * Version 1: every table, with its keys, foreign keys and the indexes of the list paths.
 * Message seqs were assigned from max(seq) + 1.
 */
const initialSchema: Migration = {
  version: 1,
  name: "0001_initial_schema",
  statements(db, { types, index }) {
    const { text, json, timestamp, boolean, integer, real } = types;
    const schema = db.schema;
    return [
      schema
        .createTable("users")
        .addColumn("id", text, (column) => column.primaryKey())
        .addColumn("name", text)
        .addColumn("metadata", json, required)
        .addColumn("created_at", timestamp, required)
        .compile(),

      schema
        .createTable("bots")
        .addColumn("id", text, (column) => column.primaryKey())
        .addColumn("user_id", text, required)
        .addColumn("name", text, required)
        .addColumn("soul", json)
        .addColumn("personality", text)
        .addColumn("context", text)
        .addColumn("metadata", json, required)
        .addColumn("created_at", timestamp, required)
        .addColumn("updated_at", timestamp, required)
        .compile(),
      schema
        .createIndex(index("bots_user_idx"))
        .on("bots")
        .columns(["user_id", "created_at", "id"])
        .compile(),

      schema
        .createTable("skills")
        .addColumn("id", text, (column) => column.primaryKey())
        .addColumn("bot_id", text, required)
        .addColumn("name", text, required)
        .addColumn("name_folded", text, required)
        .addColumn("description", text, required)
        .addColumn("instructions", text, required)
        .addColumn("triggers", json, required)
        .addColumn("examples", json, required)
        .addColumn("data_fields", json, required)
        .addColumn("required_integrations", json, required)
        .addColumn("task_type", text, required)
        .addColumn("status", text, required)
        .addColumn("metadata", json, required)
        .addColumn("created_at", timestamp, required)
        .addColumn("updated_at", timestamp, required)
        .addForeignKeyConstraint(index("skills_bot_fk"), ["bot_id"], "bots", ["id"], (fk) =>
          fk.onDelete("cascade"),
        )
        // The target of skill_records' (bot_id, skill_id) key: a record can only sit under its own bot's skill.
        .addUniqueConstraint(index("skills_bot_id_key"), ["bot_id", "id"])
        .addUniqueConstraint(index("skills_bot_name_key"), ["bot_id", "name_folded"])
        .compile(),
      schema
        .createIndex(index("skills_bot_idx"))
        .on("skills")
        .columns(["bot_id", "created_at", "id"])
        .compile(),

      schema
        .createTable("skill_records")
        .addColumn("id", text, (column) => column.primaryKey())
        .addColumn("bot_id", text, required)
        .addColumn("skill_id", text, required)
        .addColumn("data", json, required)
        .addColumn("created_at", timestamp, required)
        .addColumn("updated_at", timestamp, required)
        .addForeignKeyConstraint(
          index("skill_records_skill_fk"),
          ["bot_id", "skill_id"],
          "skills",
          ["bot_id", "id"],
          (fk) => fk.onDelete("cascade"),
        )
        .compile(),
      schema
        .createIndex(index("skill_records_skill_idx"))
        .on("skill_records")
        .columns(["bot_id", "skill_id", "created_at", "id"])
        .compile(),

      schema
        .createTable("conversations")
        .addColumn("id", text, (column) => column.primaryKey())
        .addColumn("bot_id", text, required)
        .addColumn("user_id", text, required)
        .addColumn("channel", text, required)
        .addColumn("title", text)
        .addColumn("metadata", json, required)
        .addColumn("created_at", timestamp, required)
        .addColumn("updated_at", timestamp, required)
        .addForeignKeyConstraint(index("conversations_bot_fk"), ["bot_id"], "bots", ["id"], (fk) =>
          fk.onDelete("cascade"),
        )
        .addUniqueConstraint(index("conversations_bot_id_key"), ["bot_id", "id"])
        .compile(),
      schema
        .createIndex(index("conversations_bot_idx"))
        .on("conversations")
        .columns(["bot_id", "updated_at", "id"])
        .compile(),

      schema
        .createTable("messages")
        .addColumn("id", text, (column) => column.primaryKey())
        .addColumn("bot_id", text, required)
        .addColumn("conversation_id", text, required)
        .addColumn("seq", integer, required)
        .addColumn("role", text, required)
        .addColumn("content", text, required)
        .addColumn("metadata", json, required)
        .addColumn("created_at", timestamp, required)
        .addForeignKeyConstraint(
          index("messages_conversation_fk"),
          ["bot_id", "conversation_id"],
          "conversations",
          ["bot_id", "id"],
          (fk) => fk.onDelete("cascade"),
        )
        // Also the index of listRecent and of the cascade from conversations.
        .addUniqueConstraint(index("messages_seq_key"), ["bot_id", "conversation_id", "seq"])
        .compile(),

      schema
        .createTable("memories")
        .addColumn("id", text, (column) => column.primaryKey())
        .addColumn("bot_id", text, required)
        .addColumn("user_id", text, required)
        .addColumn("key", text, required)
        .addColumn("key_folded", text, required)
        .addColumn("content", text, required)
        .addColumn("source", json, required)
        .addColumn("history", json, required)
        .addColumn("created_at", timestamp, required)
        .addColumn("updated_at", timestamp, required)
        .addForeignKeyConstraint(index("memories_bot_fk"), ["bot_id"], "bots", ["id"], (fk) =>
          fk.onDelete("cascade"),
        )
        .compile(),
      schema
        .createIndex(index("memories_owner_idx"))
        .on("memories")
        .columns(["bot_id", "user_id", "updated_at", "id"])
        .compile(),

      // No foreign key to bots: the gateway may record calls for bots that are not stored.
      // bots.delete removes a bot's records itself.
      schema
        .createTable("usage_records")
        .addColumn("id", text, (column) => column.primaryKey())
        .addColumn("bot_id", text)
        .addColumn("user_id", text)
        .addColumn("conversation_id", text)
        .addColumn("provider", text, required)
        .addColumn("model", text, required)
        .addColumn("task_type", text, required)
        .addColumn("purpose", text, required)
        .addColumn("prompt_tokens", integer, required)
        .addColumn("completion_tokens", integer, required)
        .addColumn("cache_read_tokens", integer, required)
        .addColumn("cache_write_tokens", integer, required)
        .addColumn("reasoning_tokens", integer, required)
        .addColumn("cost_usd", real, required)
        .addColumn("latency_ms", real, required)
        .addColumn("success", boolean, required)
        .addColumn("error_code", text)
        .addColumn("created_at", timestamp, required)
        .compile(),
      schema
        .createIndex(index("usage_user_idx"))
        .on("usage_records")
        .columns(["user_id", "created_at", "id"])
        .compile(),
      schema
        .createIndex(index("usage_bot_idx"))
        .on("usage_records")
        .columns(["bot_id", "user_id", "created_at", "id"])
        .compile(),

      schema
        .createTable("proposals")
        .addColumn("id", text, (column) => column.primaryKey())
        .addColumn("bot_id", text, required)
        .addColumn("user_id", text, required)
        .addColumn("conversation_id", text)
        .addColumn("name", text, required)
        .addColumn("description", text, required)
        .addColumn("triggers", json, required)
        .addColumn("data_fields", json, required)
        .addColumn("clarifying_questions", json, required)
        .addColumn("source_message", text, required)
        .addColumn("status", text, required)
        .addColumn("skill_id", text)
        .addColumn("created_at", timestamp, required)
        .addColumn("resolved_at", timestamp)
        .addForeignKeyConstraint(index("proposals_bot_fk"), ["bot_id"], "bots", ["id"], (fk) =>
          fk.onDelete("cascade"),
        )
        .compile(),
      schema
        .createIndex(index("proposals_bot_idx"))
        .on("proposals")
        .columns(["bot_id", "created_at", "id"])
        .compile(),
      schema
        .createIndex(index("proposals_status_idx"))
        .on("proposals")
        .columns(["bot_id", "status", "created_at", "id"])
        .compile(),
    ];
  },
};

/**
 * Version 2: a per-conversation `last_seq` counter, bumped in the same statement
 * that inserts a message (max(seq) + 1 raced under concurrent appends on
 * Postgres), backfilled from the stored messages; and the index of
 * `memories.findByKey`, which runs on every turn.
 */
const seqCounterAndMemoryKeys: Migration = {
  version: 2,
  name: "0002_seq_counter_and_memory_keys",
  statements(db, { types, index }) {
    return [
      db.schema
        .alterTable("conversations")
        .addColumn("last_seq", types.integer, (column) => column.notNull().defaultTo(0))
        .compile(),
      db
        .updateTable("conversations")
        .set((eb) => ({
          last_seq: eb
            .selectFrom("messages")
            .select(sql<number>`coalesce(max(${sql.ref("messages.seq")}), 0)`.as("last_seq"))
            .whereRef("messages.bot_id", "=", "conversations.bot_id")
            .whereRef("messages.conversation_id", "=", "conversations.id"),
        }))
        .compile(),
      db.schema
        .createIndex(index("memories_key_idx"))
        .on("memories")
        // updated_at too: findByKey takes the most recently updated match straight from the index.
        .columns(["bot_id", "user_id", "key_folded", "updated_at", "id"])
        .compile(),
    ];
  },
};

/**
 * Version 3: the tool registry. `tools` (unique folded name per bot, the
 * vault's ciphertext in `credential`), the append-only `tool_call_audit`, and
 * `tool_approvals`; all three go with their bot. Audit entries and approvals
 * keep no foreign key to their tool: they outlive it as a record of what happened.
 */
const toolRegistry: Migration = {
  version: 3,
  name: "0003_tool_registry",
  statements(db, { types, index }) {
    const { text, json, timestamp, integer, real } = types;
    const schema = db.schema;
    return [
      schema
        .createTable("tools")
        .addColumn("id", text, (column) => column.primaryKey())
        .addColumn("bot_id", text, required)
        .addColumn("name", text, required)
        .addColumn("name_folded", text, required)
        .addColumn("description", text, required)
        .addColumn("base_url", text, required)
        .addColumn("auth", json, required)
        .addColumn("credential", text)
        .addColumn("endpoints", json, required)
        .addColumn("created_at", timestamp, required)
        .addColumn("updated_at", timestamp, required)
        .addForeignKeyConstraint(index("tools_bot_fk"), ["bot_id"], "bots", ["id"], (fk) =>
          fk.onDelete("cascade"),
        )
        // Also the index of findByName.
        .addUniqueConstraint(index("tools_bot_name_key"), ["bot_id", "name_folded"])
        .compile(),
      schema
        .createIndex(index("tools_bot_idx"))
        .on("tools")
        .columns(["bot_id", "created_at", "id"])
        .compile(),

      schema
        .createTable("tool_call_audit")
        .addColumn("id", text, (column) => column.primaryKey())
        .addColumn("bot_id", text, required)
        .addColumn("user_id", text, required)
        .addColumn("conversation_id", text)
        .addColumn("tool_id", text)
        .addColumn("tool_name", text, required)
        .addColumn("endpoint", text, required)
        .addColumn("method", text)
        .addColumn("status", text, required)
        .addColumn("http_status", integer)
        .addColumn("duration_ms", real, required)
        .addColumn("response_bytes", integer, required)
        .addColumn("error_code", text)
        .addColumn("created_at", timestamp, required)
        .addForeignKeyConstraint(index("tool_call_audit_bot_fk"), ["bot_id"], "bots", ["id"], (fk) =>
          fk.onDelete("cascade"),
        )
        .compile(),
      schema
        .createIndex(index("tool_call_audit_bot_idx"))
        .on("tool_call_audit")
        .columns(["bot_id", "created_at", "id"])
        .compile(),

      schema
        .createTable("tool_approvals")
        .addColumn("id", text, (column) => column.primaryKey())
        .addColumn("bot_id", text, required)
        .addColumn("user_id", text, required)
        .addColumn("conversation_id", text, required)
        .addColumn("tool_id", text, required)
        .addColumn("tool_name", text, required)
        .addColumn("endpoint", text, required)
        .addColumn("input", json, required)
        .addColumn("tool_call_id", text, required)
        .addColumn("status", text, required)
        .addColumn("reason", text)
        .addColumn("created_at", timestamp, required)
        .addColumn("decided_at", timestamp)
        .addForeignKeyConstraint(index("tool_approvals_bot_fk"), ["bot_id"], "bots", ["id"], (fk) =>
          fk.onDelete("cascade"),
        )
        .compile(),
      schema
        .createIndex(index("tool_approvals_bot_idx"))
        .on("tool_approvals")
        .columns(["bot_id", "created_at", "id"])
        .compile(),
      schema
        .createIndex(index("tool_approvals_status_idx"))
        .on("tool_approvals")
        .columns(["bot_id", "status", "created_at", "id"])
        .compile(),
    ];
  },
};

/**
 * Version 4: runs, one per ingested inbound event, and `run_keys`, the seq
 * counter per (bot, conversation key) that `runs.create` bumps in the same
 * transaction as its insert (as `conversations.last_seq` does for messages).
 * A delivery id (idempotency key) is unique per bot; both tables go with their bot.
 */
const runs: Migration = {
  version: 4,
  name: "0004_runs",
  statements(db, { types, index }) {
    const { text, json, timestamp, integer } = types;
    const schema = db.schema;
    return [
      schema
        .createTable("runs")
        .addColumn("id", text, (column) => column.primaryKey())
        .addColumn("bot_id", text, required)
        .addColumn("user_id", text, required)
        .addColumn("conversation_key", text, required)
        .addColumn("conversation_id", text)
        .addColumn("event_type", text, required)
        .addColumn("workflow", text, required)
        .addColumn("status", text, required)
        .addColumn("input", json, required)
        .addColumn("output", json)
        .addColumn("error", json)
        .addColumn("delivery_id", text)
        .addColumn("seq", integer, required)
        .addColumn("created_at", timestamp, required)
        .addColumn("started_at", timestamp)
        .addColumn("finished_at", timestamp)
        .addForeignKeyConstraint(index("runs_bot_fk"), ["bot_id"], "bots", ["id"], (fk) =>
          fk.onDelete("cascade"),
        )
        // Also the index of listByConversation.
        .addUniqueConstraint(index("runs_conversation_seq_key"), ["bot_id", "conversation_key", "seq"])
        .compile(),
      schema
        .createIndex(index("runs_delivery_key"))
        .on("runs")
        .columns(["bot_id", "delivery_id"])
        .unique()
        .where(sql.ref("delivery_id"), "is not", null)
        .compile(),
      schema
        .createIndex(index("runs_status_idx"))
        .on("runs")
        .columns(["status", "created_at", "id"])
        .compile(),
      schema.createIndex(index("runs_bot_idx")).on("runs").columns(["bot_id", "created_at"]).compile(),

      schema
        .createTable("run_keys")
        .addColumn("bot_id", text, required)
        .addColumn("conversation_key", text, required)
        .addColumn("last_seq", integer, required)
        .addPrimaryKeyConstraint(index("run_keys_pkey"), ["bot_id", "conversation_key"])
        .addForeignKeyConstraint(index("run_keys_bot_fk"), ["bot_id"], "bots", ["id"], (fk) =>
          fk.onDelete("cascade"),
        )
        .compile(),
    ];
  },
};

/**
 * Version 5: the runs table as a queue shared by processes. A lease per run
 * (`lease_owner`, `lease_expires_at`) that the executing worker extends while
 * it runs; a partial unique index allowing at most one `running` run per
 * (bot, conversation key); and a partial index over the unfinished runs of a
 * key, which the claim reads to find each key's head. Before the unique
 * index is built, all but the oldest `running` run of a key (left by
 * processes that shared the database before leases existed) go back to
 * `queued`, to be re-run from the start as the recovery policy does.
 */
const runLeases: Migration = {
  version: 5,
  name: "0005_run_leases",
  statements(db, { types, index }) {
    const schema = db.schema;
    return [
      schema.alterTable("runs").addColumn("lease_owner", types.text).compile(),
      schema.alterTable("runs").addColumn("lease_expires_at", types.timestamp).compile(),
      db
        .updateTable("runs")
        .set({ status: "queued", started_at: null })
        .where("status", "=", "running")
        .where((eb) =>
          eb.exists(
            eb
              .selectFrom("runs as earlier")
              .select("earlier.id")
              .whereRef("earlier.bot_id", "=", "runs.bot_id")
              .whereRef("earlier.conversation_key", "=", "runs.conversation_key")
              .where("earlier.status", "=", "running")
              .whereRef("earlier.seq", "<", "runs.seq"),
          ),
        )
        .compile(),
      schema
        .createIndex(index("runs_running_key"))
        .on("runs")
        .columns(["bot_id", "conversation_key"])
        .unique()
        .where(sql.ref("status"), "=", sql.lit("running"))
        .compile(),
      schema
        .createIndex(index("runs_unfinished_idx"))
        .on("runs")
        .columns(["bot_id", "conversation_key", "seq"])
        .where(sql.ref("status"), "in", sql`('queued', 'running')`)
        .compile(),
    ];
  },
};

/**
 * Version 6: Markdown skills. `skills.markdown` holds a Markdown skill's body
 * and front-matter fields as JSON; `null` (every existing row) is a
 * structured skill.
 */
const markdownSkills: Migration = {
  version: 6,
  name: "0006_markdown_skills",
  statements(db, { types }) {
    return [db.schema.alterTable("skills").addColumn("markdown", types.json).compile()];
  },
};

/**
 * Version 7: integration proposals (auto-learning). `proposals.integration`
 * holds the proposed tool, skills and their stage as JSON; `null` (every
 * existing row) is a plain skill proposal.
 */
const proposalIntegrations: Migration = {
  version: 7,
  name: "0007_proposal_integrations",
  statements(db, { types }) {
    return [db.schema.alterTable("proposals").addColumn("integration", types.json).compile()];
  },
};

/**
 * Version 8: `traces`, one row per chat turn (what it matched, injected,
 * called, how it ended, its latency, model, tokens and the user's feedback),
 * going with their bot. Indexed for listing by bot and by (bot, user) in time
 * order, and by time alone for retention.
 */
const traces: Migration = {
  version: 8,
  name: "0008_traces",
  statements(db, { types, index }) {
    const { text, json, timestamp, integer, real } = types;
    const schema = db.schema;
    return [
      schema
        .createTable("traces")
        .addColumn("id", text, (column) => column.primaryKey())
        .addColumn("bot_id", text, required)
        .addColumn("user_id", text, required)
        .addColumn("conversation_id", text)
        .addColumn("user_message_id", text)
        .addColumn("reply_message_id", text)
        .addColumn("message", text, required)
        .addColumn("skill_id", text)
        .addColumn("skill_name", text)
        .addColumn("match_pass", text)
        .addColumn("match_confidence", real)
        .addColumn("skills_injected", json, required)
        .addColumn("tool_calls", json, required)
        .addColumn("outcome", text, required)
        .addColumn("error_code", text)
        .addColumn("latency_ms", real, required)
        .addColumn("model", text)
        .addColumn("prompt_tokens", integer, required)
        .addColumn("completion_tokens", integer, required)
        .addColumn("cost_usd", real, required)
        .addColumn("feedback", json)
        .addColumn("created_at", timestamp, required)
        .addForeignKeyConstraint(index("traces_bot_fk"), ["bot_id"], "bots", ["id"], (fk) =>
          fk.onDelete("cascade"),
        )
        .compile(),
      schema
        .createIndex(index("traces_bot_idx"))
        .on("traces")
        .columns(["bot_id", "created_at", "id"])
        .compile(),
      schema
        .createIndex(index("traces_user_idx"))
        .on("traces")
        .columns(["bot_id", "user_id", "created_at", "id"])
        .compile(),
      schema.createIndex(index("traces_created_idx")).on("traces").columns(["created_at"]).compile(),
    ];
  },
};

/**
 * Version 9: `run_steps`, the recorded steps of runs' workflows (`ctx.turn`,
 * `ctx.ask`, `ctx.step`), one row per (run, index), going with their run. A
 * run re-executed after a crash returns a `succeeded` step's output instead
 * of making the step again. (Version 8 is the traces migration.)
 */
const runSteps: Migration = {
  version: 9,
  name: "0009_run_steps",
  statements(db, { types, index }) {
    const { text, json, timestamp, integer } = types;
    return [
      db.schema
        .createTable("run_steps")
        .addColumn("run_id", text, required)
        .addColumn("bot_id", text, required)
        .addColumn("step_index", integer, required)
        .addColumn("name", text, required)
        .addColumn("kind", text, required)
        .addColumn("status", text, required)
        .addColumn("output", json)
        .addColumn("error", json)
        .addColumn("started_at", timestamp, required)
        .addColumn("finished_at", timestamp)
        .addPrimaryKeyConstraint(index("run_steps_pkey"), ["run_id", "step_index"])
        .addForeignKeyConstraint(index("run_steps_run_fk"), ["run_id"], "runs", ["id"], (fk) =>
          fk.onDelete("cascade"),
        )
        .compile(),
    ];
  },
};

/**
 * Version 10: `skill_versions`, one row per change to a skill (its content
 * after the change, author, reason and a unified diff), numbered per skill
 * (unique (skill_id, version), so two racing changes cannot both write the
 * same number) and going with their skill.
 */
const skillVersions: Migration = {
  version: 10,
  name: "0010_skill_versions",
  statements(db, { types, index }) {
    const { text, json, timestamp, integer } = types;
    return [
      db.schema
        .createTable("skill_versions")
        .addColumn("id", text, (column) => column.primaryKey())
        .addColumn("skill_id", text, required)
        .addColumn("bot_id", text, required)
        .addColumn("version", integer, required)
        .addColumn("snapshot", json, required)
        .addColumn("author", text, required)
        .addColumn("reason", text)
        .addColumn("diff", text, required)
        .addColumn("created_at", timestamp, required)
        .addUniqueConstraint(index("skill_versions_skill_version_key"), ["skill_id", "version"])
        .addForeignKeyConstraint(index("skill_versions_skill_fk"), ["skill_id"], "skills", ["id"], (fk) =>
          fk.onDelete("cascade"),
        )
        .compile(),
    ];
  },
};

/**
 * Version 11: skill scopes, teams and promotion requests.
 *
 * - `teams` and `team_members` (one row per team and user, going with the team);
 *   `bots.team_id` (set to null when the team is deleted).
 * - `skills.scope` (the scope key: `bot:<id>` for every existing skill),
 *   `skills.team_id` (a team skill goes with its team), `skills.bot_id`
 *   nullable, names unique per scope instead of per bot.
 * - `skill_records` keep their bot and reference the skill by id alone: a bot
 *   keeps records under a shared skill too.
 * - `skill_versions.scope` and `skill_versions.origin`, `bot_id` nullable.
 * - `skill_promotions`, the promotion requests.
 *
 * Postgres alters the tables in place. SQLite cannot drop a NOT NULL or a
 * constraint, so it rebuilds `skills`, `skill_records` and `skill_versions`
 * (new tables, rows copied, old ones dropped children first so no cascade
 * fires, new ones renamed; SQLite rewrites the foreign keys on rename).
 */
const skillScopes: Migration = {
  version: 11,
  name: "0011_skill_scopes_and_teams",
  statements(db, context) {
    const { text, json, timestamp, integer } = context.types;
    const { index } = context;
    const schema = db.schema;
    const common = [
      schema
        .createTable("teams")
        .addColumn("id", text, (column) => column.primaryKey())
        .addColumn("name", text, required)
        .addColumn("metadata", json, required)
        .addColumn("created_at", timestamp, required)
        .addColumn("updated_at", timestamp, required)
        .compile(),
      schema.createIndex(index("teams_created_idx")).on("teams").columns(["created_at", "id"]).compile(),
      schema
        .createTable("team_members")
        .addColumn("team_id", text, required)
        .addColumn("user_id", text, required)
        .addColumn("role", text, required)
        .addColumn("created_at", timestamp, required)
        .addColumn("updated_at", timestamp, required)
        .addPrimaryKeyConstraint(index("team_members_pkey"), ["team_id", "user_id"])
        .addForeignKeyConstraint(index("team_members_team_fk"), ["team_id"], "teams", ["id"], (fk) =>
          fk.onDelete("cascade"),
        )
        .compile(),
      schema
        .createIndex(index("team_members_user_idx"))
        .on("team_members")
        .columns(["user_id", "created_at"])
        .compile(),
      // SQLite adds a column with a foreign key only as a column constraint (and only with a null default).
      schema
        .alterTable("bots")
        .addColumn("team_id", text, (column) => column.references("teams.id").onDelete("set null"))
        .compile(),
      schema.createIndex(index("bots_team_idx")).on("bots").column("team_id").compile(),
      schema
        .createTable("skill_promotions")
        .addColumn("id", text, (column) => column.primaryKey())
        .addColumn("skill_id", text, required)
        .addColumn("skill_name", text, required)
        .addColumn("from_scope", text, required)
        .addColumn("to_scope", text, required)
        .addColumn("source_version", integer)
        .addColumn("snapshot", json, required)
        .addColumn("target_skill_id", text)
        .addColumn("target_version", integer)
        .addColumn("diff", text, required)
        .addColumn("reason", text, required)
        .addColumn("requested_by", text, required)
        .addColumn("status", text, required)
        .addColumn("reviewer", text)
        .addColumn("review_note", text)
        .addColumn("result_skill_id", text)
        .addColumn("created_at", timestamp, required)
        .addColumn("decided_at", timestamp)
        .compile(),
      schema
        .createIndex(index("skill_promotions_created_idx"))
        .on("skill_promotions")
        .columns(["created_at", "id"])
        .compile(),
      schema
        .createIndex(index("skill_promotions_target_idx"))
        .on("skill_promotions")
        .columns(["to_scope", "status", "created_at", "id"])
        .compile(),
      schema
        .createIndex(index("skill_promotions_skill_idx"))
        .on("skill_promotions")
        .columns(["skill_id", "status"])
        .compile(),
    ];
    const indexes = [
      schema
        .createIndex(index("skills_scope_idx"))
        .on("skills")
        .columns(["scope", "created_at", "id"])
        .compile(),
      schema.createIndex(index("skills_team_idx")).on("skills").column("team_id").compile(),
      schema
        .createIndex(index("skill_records_skill_only_idx"))
        .on("skill_records")
        .column("skill_id")
        .compile(),
    ];
    const botScope = sql<string>`${sql.lit("bot:")} || ${sql.ref("bot_id")}`;
    if (context.dialect !== "sqlite") {
      return [
        ...common,
        schema.alterTable("skills").addColumn("scope", text).compile(),
        schema.alterTable("skills").addColumn("team_id", text).compile(),
        db.updateTable("skills").set({ scope: botScope }).compile(),
        schema
          .alterTable("skills")
          .alterColumn("scope", (column) => column.setNotNull())
          .alterColumn("bot_id", (column) => column.dropNotNull())
          .compile(),
        schema.alterTable("skill_records").dropConstraint(index("skill_records_skill_fk")).compile(),
        schema.alterTable("skills").dropConstraint(index("skills_bot_id_key")).compile(),
        schema.alterTable("skills").dropConstraint(index("skills_bot_name_key")).compile(),
        schema
          .alterTable("skills")
          .addUniqueConstraint(index("skills_scope_name_key"), ["scope", "name_folded"])
          .compile(),
        schema
          .alterTable("skills")
          .addForeignKeyConstraint(index("skills_team_fk"), ["team_id"], "teams", ["id"], (fk) =>
            fk.onDelete("cascade"),
          )
          .compile(),
        schema
          .alterTable("skill_records")
          .addForeignKeyConstraint(index("skill_records_skill_fk"), ["skill_id"], "skills", ["id"], (fk) =>
            fk.onDelete("cascade"),
          )
          .compile(),
        schema
          .alterTable("skill_records")
          .addForeignKeyConstraint(index("skill_records_bot_fk"), ["bot_id"], "bots", ["id"], (fk) =>
            fk.onDelete("cascade"),
          )
          .compile(),
        schema.alterTable("skill_versions").addColumn("scope", text).compile(),
        schema.alterTable("skill_versions").addColumn("origin", json).compile(),
        db.updateTable("skill_versions").set({ scope: botScope }).compile(),
        schema
          .alterTable("skill_versions")
          .alterColumn("scope", (column) => column.setNotNull())
          .alterColumn("bot_id", (column) => column.dropNotNull())
          .compile(),
        ...indexes,
      ];
    }
    // SQLite: the temporary tables are not kilo tables, so the prefix plugin leaves them alone; name them with it.
    const loose = db as unknown as Kysely<Record<string, Record<string, unknown>>>;
    const skills = index("skills_next");
    const records = index("skill_records_next");
    const versions = index("skill_versions_next");
    const skillColumns = [
      "id",
      "bot_id",
      "name",
      "name_folded",
      "description",
      "instructions",
      "triggers",
      "examples",
      "data_fields",
      "required_integrations",
      "task_type",
      "status",
      "metadata",
      "created_at",
      "updated_at",
      "markdown",
    ] as const;
    const versionColumns = [
      "id",
      "skill_id",
      "bot_id",
      "version",
      "snapshot",
      "author",
      "reason",
      "diff",
      "created_at",
    ] as const;
    return [
      ...common,
      schema
        .createTable(skills)
        .addColumn("id", text, (column) => column.primaryKey())
        .addColumn("bot_id", text)
        .addColumn("scope", text, required)
        .addColumn("team_id", text)
        .addColumn("name", text, required)
        .addColumn("name_folded", text, required)
        .addColumn("description", text, required)
        .addColumn("instructions", text, required)
        .addColumn("triggers", json, required)
        .addColumn("examples", json, required)
        .addColumn("data_fields", json, required)
        .addColumn("required_integrations", json, required)
        .addColumn("task_type", text, required)
        .addColumn("status", text, required)
        .addColumn("metadata", json, required)
        .addColumn("created_at", timestamp, required)
        .addColumn("updated_at", timestamp, required)
        .addColumn("markdown", json)
        .addForeignKeyConstraint(index("skills_bot_fk"), ["bot_id"], "bots", ["id"], (fk) =>
          fk.onDelete("cascade"),
        )
        .addForeignKeyConstraint(index("skills_team_fk"), ["team_id"], "teams", ["id"], (fk) =>
          fk.onDelete("cascade"),
        )
        .addUniqueConstraint(index("skills_scope_name_key"), ["scope", "name_folded"])
        .compile(),
      loose
        .insertInto(skills)
        .columns([...skillColumns, "scope"])
        .expression(db.selectFrom("skills").select([...skillColumns, botScope.as("scope")]))
        .compile(),
      schema
        .createTable(records)
        .addColumn("id", text, (column) => column.primaryKey())
        .addColumn("bot_id", text, required)
        .addColumn("skill_id", text, required)
        .addColumn("data", json, required)
        .addColumn("created_at", timestamp, required)
        .addColumn("updated_at", timestamp, required)
        .addForeignKeyConstraint(index("skill_records_skill_fk"), ["skill_id"], skills, ["id"], (fk) =>
          fk.onDelete("cascade"),
        )
        .addForeignKeyConstraint(index("skill_records_bot_fk"), ["bot_id"], "bots", ["id"], (fk) =>
          fk.onDelete("cascade"),
        )
        .compile(),
      loose
        .insertInto(records)
        .columns(["id", "bot_id", "skill_id", "data", "created_at", "updated_at"])
        .expression(
          db
            .selectFrom("skill_records")
            .select(["id", "bot_id", "skill_id", "data", "created_at", "updated_at"]),
        )
        .compile(),
      schema
        .createTable(versions)
        .addColumn("id", text, (column) => column.primaryKey())
        .addColumn("skill_id", text, required)
        .addColumn("bot_id", text)
        .addColumn("scope", text, required)
        .addColumn("version", integer, required)
        .addColumn("snapshot", json, required)
        .addColumn("author", text, required)
        .addColumn("reason", text)
        .addColumn("diff", text, required)
        .addColumn("origin", json)
        .addColumn("created_at", timestamp, required)
        .addUniqueConstraint(index("skill_versions_skill_version_key"), ["skill_id", "version"])
        .addForeignKeyConstraint(index("skill_versions_skill_fk"), ["skill_id"], skills, ["id"], (fk) =>
          fk.onDelete("cascade"),
        )
        .compile(),
      loose
        .insertInto(versions)
        .columns([...versionColumns, "scope"])
        .expression(db.selectFrom("skill_versions").select([...versionColumns, botScope.as("scope")]))
        .compile(),
      // Children first: dropping `skills` while they still referenced it would cascade into them.
      schema.dropTable("skill_records").compile(),
      schema.dropTable("skill_versions").compile(),
      schema.dropTable("skills").compile(),
      schema.alterTable(skills).renameTo("skills").compile(),
      schema.alterTable(records).renameTo("skill_records").compile(),
      schema.alterTable(versions).renameTo("skill_versions").compile(),
      schema
        .createIndex(index("skills_bot_idx"))
        .on("skills")
        .columns(["bot_id", "created_at", "id"])
        .compile(),
      schema
        .createIndex(index("skill_records_skill_idx"))
        .on("skill_records")
        .columns(["bot_id", "skill_id", "created_at", "id"])
        .compile(),
      ...indexes,
    ];
  },
};

/**
 * Version 12: `tool_approvals.run_id`, the run whose turn asked for the
 * approval (that run stays `awaiting_approval` until its approvals are
 * decided, and the decision's continuation runs in its conversation key's
 * lane). Nullable, without a foreign key: approvals asked before this
 * version, or outside a run, have none, and an approval outlives its run.
 */
const approvalRuns: Migration = {
  version: 12,
  name: "0012_approval_runs",
  statements(db, { types }) {
    return [db.schema.alterTable("tool_approvals").addColumn("run_id", types.text).compile()];
  },
};

/**
 * Version 13: `runs.resumes`, how many times a run went back to the queue
 * after a decision on the approval its workflow stopped at (`ctx.tool`):
 * a resumed run replays its recorded steps, and a durable executor tells
 * its attempts apart by it. 0 for every run written before this version.
 */
const runResumes: Migration = {
  version: 13,
  name: "0013_run_resumes",
  statements(db, { types }) {
    return [
      db.schema
        .alterTable("runs")
        .addColumn("resumes", types.integer, (column) => column.notNull().defaultTo(0))
        .compile(),
    ];
  },
};

/** Every migration, in order. */
export const MIGRATIONS: readonly Migration[] = [
  initialSchema,
  seqCounterAndMemoryKeys,
  toolRegistry,
  runs,
  runLeases,
  markdownSkills,
  proposalIntegrations,
  traces,
  runSteps,
  skillVersions,
  skillScopes,
  approvalRuns,
  runResumes,
];

/** The schema version this kilo reads and writes. */
export const LATEST_SCHEMA_VERSION: number = MIGRATIONS[MIGRATIONS.length - 1]!.version;

interface AppliedMigration {
  version: number;
  name: string;
  checksum: string;
}

/** The state of a database's schema, as {@link checkSchema} found it. */
export interface SchemaStatus {
  /** Every migration is applied and unchanged. */
  current: boolean;
  /** Why the schema is not current, as the error `init()` throws with `migrate: false`. */
  problem: KiloError;
}

function configurationError(dialect: SqlDialect, message: string): KiloError {
  return new KiloError("CONFIGURATION_INVALID", `${dialect.name} storage: ${message}`, {
    adapter: dialect.name,
  });
}

const checksumCache = new WeakMap<SqlDialect, Map<number, string>>();

function checksums(dialect: SqlDialect): Map<number, string> {
  const cached = checksumCache.get(dialect);
  if (cached) return cached;
  // Compiled without prefix or schema, so one migration has one checksum in every install of a dialect.
  const plain = new Kysely<Tables>({ dialect: dialect.compileOnly() });
  const context: MigrationContext = { types: dialect.types, index: (name) => name, dialect: dialect.name };
  const sums = new Map<number, string>();
  for (const migration of MIGRATIONS) {
    const hash = createHash("sha256");
    for (const statement of migration.statements(plain, context)) {
      hash.update(statement.sql);
      hash.update(JSON.stringify(statement.parameters));
      hash.update("\n");
    }
    sums.set(migration.version, hash.digest("hex"));
  }
  checksumCache.set(dialect, sums);
  return sums;
}

async function readApplied(db: Kysely<Tables>, dialect: SqlDialect): Promise<AppliedMigration[] | null> {
  try {
    const rows = await db
      .selectFrom("kilo_migrations")
      .select(["version", "name", "checksum"])
      .orderBy("version")
      .execute();
    return rows.map((row) => ({ version: Number(row.version), name: row.name, checksum: row.checksum }));
  } catch (error) {
    if (dialect.isMissingTable(error)) return null;
    throw error;
  }
}

/** Refuses a database that a newer kilo migrated, or whose applied migrations differ from this kilo's. */
function verifyApplied(applied: AppliedMigration[], dialect: SqlDialect, sums: Map<number, string>): void {
  for (const row of applied) {
    const known = MIGRATIONS.find((migration) => migration.version === row.version);
    if (!known) {
      throw configurationError(
        dialect,
        `the database has schema version ${row.version} (${row.name}), which this version of kilo does not know ` +
          `(it knows up to ${LATEST_SCHEMA_VERSION}); it was migrated by a newer kilo. Upgrade kilo.`,
      );
    }
    if (sums.get(row.version) !== row.checksum) {
      throw configurationError(
        dialect,
        `migration ${row.name} was applied with different SQL than this version of kilo has ` +
          `(checksum mismatch); the schema may have been altered by hand or by a modified kilo`,
      );
    }
  }
}

/** Reads the applied migrations and says whether the schema is current. Runs no DDL and takes no lock. */
export async function checkSchema(
  db: Kysely<Tables>,
  dialect: SqlDialect,
  names: SqlNames,
): Promise<SchemaStatus> {
  const applied = await readApplied(db, dialect);
  const where = names.schema === null ? "" : ` in schema "${names.schema}"`;
  const table = `${names.table("kilo_migrations")}${where}`;
  const howToMigrate =
    "run `await storage.migrate()` (or `kilo.migrate()`) from your deploy step, or leave `migrate` at its default (true)";
  if (applied === null) {
    return {
      current: false,
      problem: configurationError(
        dialect,
        `the database has no kilo schema (no ${table} table) and \`migrate: false\` was set; ${howToMigrate}`,
      ),
    };
  }
  verifyApplied(applied, dialect, checksums(dialect));
  const version = applied.reduce((highest, row) => Math.max(highest, row.version), 0);
  return {
    current: version === LATEST_SCHEMA_VERSION && applied.length === MIGRATIONS.length,
    problem: configurationError(
      dialect,
      `the database schema is at version ${version}, this kilo needs version ${LATEST_SCHEMA_VERSION}; ${howToMigrate}`,
    ),
  };
}

/** What {@link runMigrations} needs. */
export interface MigrationRun {
  db: Kysely<Tables>;
  dialect: SqlDialect;
  names: SqlNames;
  /** Apply migrations up to this version. */
  to: number;
  /** Runs `op` in one transaction on one connection. */
  transaction<T>(op: (db: Kysely<Tables>) => Promise<T>): Promise<T>;
}

/**
 * Applies the pending migrations up to `to` in one transaction that first takes
 * the dialect's migration lock, so two processes starting at once apply each
 * migration once. Returns the names applied.
 */
export async function runMigrations(run: MigrationRun): Promise<string[]> {
  const { dialect, names, to } = run;
  if (!Number.isInteger(to) || to < 1 || to > LATEST_SCHEMA_VERSION) {
    throw configurationError(
      dialect,
      `migrate({ to }) must be a schema version from 1 to ${LATEST_SCHEMA_VERSION}`,
    );
  }
  const sums = checksums(dialect);
  const context: MigrationContext = { types: dialect.types, index: names.index, dialect: dialect.name };
  return run.transaction(async (db) => {
    await dialect.lockMigrations(db, names);
    await dialect.createSchema?.(db, names);
    await db.schema
      .createTable("kilo_migrations")
      .ifNotExists()
      .addColumn("version", dialect.types.integer, (column) => column.primaryKey())
      .addColumn("name", dialect.types.text, required)
      .addColumn("checksum", dialect.types.text, required)
      .addColumn("applied_at", dialect.types.timestamp, required)
      .execute();
    const applied = (await readApplied(db, dialect)) ?? [];
    verifyApplied(applied, dialect, sums);
    const done = new Set(applied.map((row) => row.version));
    const appliedNow: string[] = [];
    for (const migration of MIGRATIONS) {
      if (migration.version > to || done.has(migration.version)) continue;
      for (const statement of migration.statements(db, context)) await db.executeQuery(statement);
      await db
        .insertInto("kilo_migrations")
        .values({
          version: migration.version,
          name: migration.name,
          checksum: sums.get(migration.version)!,
          applied_at: dialect.timestamp(new Date()),
        })
        .execute();
      appliedNow.push(migration.name);
    }
    return appliedNow;
  });
}
