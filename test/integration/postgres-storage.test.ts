import { randomBytes } from "node:crypto";
import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  type PostgresStorage,
  type PostgresStorageOptions,
  postgresStorage,
} from "../../adapters/storage/postgres/index.js";
import { LATEST_SCHEMA_VERSION, MIGRATIONS } from "../../adapters/storage/sql/migrations.js";
import type { Bot } from "../../src/domain/bot.js";
import type { Conversation, NewMessage } from "../../src/domain/conversation.js";
import type { Skill } from "../../src/domain/skill.js";
import type { Tool } from "../../src/domain/tool.js";
import type { UsageRecord } from "../../src/domain/usage.js";
import type { User } from "../../src/domain/user.js";
import { KiloError, type KiloErrorCode } from "../../src/errors.js";
import type { Storage } from "../../src/ports/storage.js";
import { runStorageConformance } from "../../src/testing/storage-conformance.js";

// Never skipped: these tests fail loudly when Postgres does not answer on 127.0.0.1:5432.
const DATABASE_URL = process.env.KILO_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const RUN = randomBytes(4).toString("hex");
const schemas: string[] = [];
const opened: PostgresStorage[] = [];
const pools: pg.Pool[] = [];

/** A schema name unique to this run; dropped (with everything in it) after the file. */
function schemaName(label: string): string {
  const name = `kilo_test_${RUN}_${label}`;
  schemas.push(name);
  return name;
}

function newPool(max = 10): pg.Pool {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max });
  // An idle connection that dies is reported here (the dropped-connection test kills one).
  pool.on("error", () => undefined);
  pools.push(pool);
  return pool;
}

function storage(options: PostgresStorageOptions): PostgresStorage {
  const made = postgresStorage(options);
  opened.push(made);
  return made;
}

let admin: pg.Pool;

beforeAll(async () => {
  admin = newPool(2);
  const { rows } = await admin.query<{ ok: number }>("select 1 as ok");
  expect(rows[0]?.ok).toBe(1);
});

afterAll(async () => {
  for (const made of opened) await made.close().catch(() => undefined);
  for (const schema of schemas) await admin.query(`drop schema if exists "${schema}" cascade`);
  for (const pool of pools) await pool.end().catch(() => undefined);
});

// ---------------------------------------------------------------------------
// Conformance: one schema for the file (tables prefixed, so schema and prefix are both
// exercised), emptied before every test. DELETE, not TRUNCATE:
// on tables this small it takes ~0.5 ms where TRUNCATE takes ~20 ms, once per test.

const conformanceSchema = schemaName("conformance");
const conformancePool = newPool(10);
// Children first; bots cascade to everything but usage records (tools, tool audit and
// approvals included).
const EMPTY_TABLES = ["usage_records", "bots", "users"]
  .map((table) => `delete from "${conformanceSchema}"."k_${table}"`)
  .join("; ");

runStorageConformance({
  name: "postgres",
  async createStorage() {
    try {
      await conformancePool.query(EMPTY_TABLES);
    } catch (error) {
      // The first storage of the file creates the schema.
      const code = (error as { code?: string }).code;
      if (code !== "42P01" && code !== "3F000") throw error;
    }
    return postgresStorage({ pool: conformancePool, schema: conformanceSchema, tablePrefix: "k_" });
  },
});

// ---------------------------------------------------------------------------
// Fixtures

let counter = 0;
const uid = (prefix: string) => `${prefix}-${RUN}-${++counter}`;
const when = new Date("2024-05-01T10:00:00.123Z");

function user(overrides: Partial<User> = {}): User {
  return { id: uid("user"), name: "Ada", metadata: {}, createdAt: when, ...overrides };
}

function bot(userId: string, overrides: Partial<Bot> = {}): Bot {
  return {
    id: uid("bot"),
    userId,
    name: "Baker",
    soul: null,
    personality: null,
    context: null,
    metadata: {},
    createdAt: when,
    updatedAt: when,
    ...overrides,
  };
}

function conversation(owner: Bot): Conversation {
  return {
    id: uid("conversation"),
    botId: owner.id,
    userId: owner.userId,
    channel: "api",
    title: null,
    metadata: {},
    createdAt: when,
    updatedAt: when,
  };
}

function message(owner: Bot, conversationId: string, content: string): NewMessage {
  return {
    id: uid("message"),
    conversationId,
    botId: owner.id,
    role: "user",
    content,
    metadata: {},
    createdAt: when,
  };
}

function skill(botId: string, overrides: Partial<Skill> = {}): Skill {
  return {
    id: uid("skill"),
    botId,
    scope: { kind: "bot", id: botId },
    name: uid("Skill"),
    description: "",
    instructions: "",
    triggers: [],
    examples: [],
    dataFields: [],
    requiredIntegrations: [],
    taskType: "skill_execution",
    status: "active",
    metadata: {},
    createdAt: when,
    updatedAt: when,
    ...overrides,
  };
}

function usage(owner: Bot, overrides: Partial<UsageRecord> = {}): UsageRecord {
  return {
    id: uid("usage"),
    botId: owner.id,
    userId: owner.userId,
    conversationId: null,
    provider: "mock",
    model: "mock-large",
    taskType: "simple_qa",
    purpose: "chat",
    promptTokens: 10,
    completionTokens: 5,
    cacheReadTokens: 0,
    cacheWriteTokens: 0,
    reasoningTokens: 0,
    costUsd: 0.0001,
    latencyMs: 12.5,
    success: true,
    errorCode: null,
    createdAt: when,
    ...overrides,
  };
}

async function seed(target: Storage): Promise<{ owner: Bot; thread: Conversation }> {
  const person = await target.users.upsert(user());
  const owner = await target.bots.create(bot(person.id));
  const thread = await target.conversations.create(conversation(owner));
  return { owner, thread };
}

async function failure(promise: Promise<unknown>): Promise<KiloError> {
  const error = await promise.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(KiloError.is(error), `expected a KiloError, got ${String(error)}`).toBe(true);
  return error as KiloError;
}

async function codeOf(promise: Promise<unknown>): Promise<KiloErrorCode | "resolved"> {
  try {
    await promise;
    return "resolved";
  } catch (error) {
    return KiloError.is(error) ? error.code : "INTERNAL";
  }
}

async function tablesIn(schema: string): Promise<string[]> {
  const { rows } = await admin.query<{ table_name: string }>(
    "select table_name from information_schema.tables where table_schema = $1 order by table_name",
    [schema],
  );
  return rows.map((row) => row.table_name);
}

// ---------------------------------------------------------------------------

describe("postgresStorage", () => {
  it("is named postgres and declares durable, cross-process transactions", () => {
    const made = postgresStorage({ connectionString: DATABASE_URL });
    expect(made.name).toBe("postgres");
    expect(made.capabilities).toEqual({ transactions: true, crossProcess: true, durable: true });
  });

  it("works on a pool of its own from a connection string, and close() ends it", async () => {
    const made = postgresStorage({
      connectionString: DATABASE_URL,
      schema: schemaName("own_pool"),
      poolSize: 2,
    });
    const { owner } = await seed(made);
    expect(await made.bots.get(owner.id)).toEqual(owner);
    await made.close();
    expect(await codeOf(made.bots.get(owner.id))).toBe("CLOSED");
  });

  it("leaves a host's pool open on close()", async () => {
    const pool = newPool(2);
    const made = postgresStorage({ pool, schema: schemaName("host_pool") });
    await seed(made);
    await made.close();
    const { rows } = await pool.query<{ ok: number }>("select 1 as ok");
    expect(rows[0]?.ok).toBe(1);
  });

  it("isolates installs in two schemas, and by prefix within one schema", async () => {
    const left = schemaName("left");
    const right = schemaName("right");
    const pool = newPool(4);
    const a = storage({ pool, schema: left });
    const b = storage({
      kysely: new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) }),
      schema: right,
    });
    const c = storage({ pool, schema: left, tablePrefix: "c_" });
    const { owner } = await seed(a);
    expect(await b.bots.get(owner.id)).toBeNull();
    expect(await c.bots.get(owner.id)).toBeNull();
    for (const other of [b, c]) {
      await other.users.upsert(user({ id: owner.userId }));
      await other.bots.create({ ...owner, name: "Twin" });
    }
    expect(await a.bots.delete(owner.id)).toBe(true);
    expect((await b.bots.get(owner.id))?.name).toBe("Twin");
    expect((await c.bots.get(owner.id))?.name).toBe("Twin");
    expect(await tablesIn(left)).toEqual(
      expect.arrayContaining(["bots", "c_bots", "kilo_migrations", "c_kilo_migrations"]),
    );
    expect(await tablesIn(right)).toContain("bots");
    expect(await tablesIn(right)).not.toContain("c_bots");
  });

  it("stores a reply with commitTurn in one statement, and appends in one", async () => {
    const queries: string[] = [];
    const kysely = new Kysely<unknown>({
      dialect: new PostgresDialect({ pool: newPool(2) }),
      log: (event) => {
        if (event.level === "query") queries.push(event.query.sql);
      },
    });
    const made = storage({ kysely, schema: schemaName("round_trips") });
    const { owner, thread } = await seed(made);
    queries.length = 0;
    await made.messages.append(message(owner, thread.id, "hi"));
    expect(queries).toHaveLength(1);
    queries.length = 0;
    const reply = await made.commitTurn({
      message: { ...message(owner, thread.id, "hello"), role: "assistant" },
      usage: [usage(owner), usage(owner, { success: false, errorCode: "PROVIDER_FAILED", costUsd: 0 })],
      conversationUpdatedAt: new Date("2024-05-01T10:00:09.001Z"),
    });
    expect(queries).toHaveLength(1);
    expect(reply.seq).toBe(2);
    expect((await made.conversations.get(owner.id, thread.id))?.updatedAt).toEqual(
      new Date("2024-05-01T10:00:09.001Z"),
    );
    expect((await made.usage.list({ userId: owner.userId }, { limit: 5 })).items).toHaveLength(2);
  });

  it("hands its pool's connections to turn commits before other statements", async () => {
    const pool = newPool(1);
    const made = storage({ pool, schema: schemaName("commits_first") });
    const { owner, thread } = await seed(made);
    const order: string[] = [];
    let entered!: () => void;
    let leave!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const held = new Promise<void>((resolve) => (leave = resolve));
    // The transaction holds the only connection; a read, then a commit, queue behind it.
    const transaction = made.transaction(async (tx) => {
      await tx.bots.get(owner.id);
      entered();
      await held;
    });
    await inside;
    const read = made.bots.get(owner.id).then(() => order.push("read"));
    const commit = made
      .commitTurn({
        message: { ...message(owner, thread.id, "hello"), role: "assistant" },
        usage: [],
        conversationUpdatedAt: new Date("2024-05-01T10:00:09.001Z"),
      })
      .then(() => order.push("commit"));
    // Long enough for both to reach the pool's queue.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(order).toEqual([]);
    leave();
    await Promise.all([transaction, read, commit]);
    expect(order).toEqual(["commit", "read"]);
  });

  it("runs a turn's commit as a named prepared statement, unless told not to", async () => {
    const prepared = async (preparedStatements?: boolean) => {
      const pool = newPool(1);
      const made = storage({
        pool,
        schema: schemaName("prepared"),
        ...(preparedStatements === undefined ? {} : { preparedStatements }),
      });
      const { owner, thread } = await seed(made);
      for (const text of ["one", "two"]) {
        await made.commitTurn({
          message: { ...message(owner, thread.id, text), role: "assistant" },
          usage: [usage(owner)],
          conversationUpdatedAt: new Date("2024-05-01T10:00:09.001Z"),
        });
      }
      expect(
        (await made.messages.listRecent(owner.id, thread.id, { limit: 5 })).map((m) => m.content),
      ).toEqual(["one", "two"]);
      // The pool's only connection is the one the storage used.
      const { rows } = await pool.query<{ name: string }>(
        "select name from pg_prepared_statements where name like 'kilo_%'",
      );
      return rows.length;
    };
    expect(await prepared()).toBeGreaterThan(0);
    expect(await prepared(false)).toBe(0);
  });

  it("orders appends from two processes on one conversation", async () => {
    const schema = schemaName("two_processes");
    const first = storage({ pool: newPool(5), schema });
    const second = storage({ pool: newPool(5), schema });
    const { owner, thread } = await seed(first);
    const appends = Array.from({ length: 40 }, (_, n) =>
      (n % 2 === 0 ? first : second).messages.append(message(owner, thread.id, `m${n}`)),
    );
    const appended = await Promise.all(appends);
    expect(new Set(appended.map((m) => m.seq)).size).toBe(40);
    const listed = await second.messages.listRecent(owner.id, thread.id, { limit: 100 });
    expect(listed.map((m) => m.seq)).toEqual([...appended.map((m) => m.seq)].sort((x, y) => x - y));
  });

  it("lets calls on the storage inside a transaction join it instead of waiting on its locks", async () => {
    const made = storage({ pool: newPool(3), schema: schemaName("join") });
    const { owner, thread } = await seed(made);
    await made.transaction(async (tx) => {
      await tx.messages.append(message(owner, thread.id, "inside"));
      // The transaction holds the conversation's row lock; a second connection would wait for it forever.
      await made.messages.append(message(owner, thread.id, "outer, joined"));
    });
    const listed = await made.messages.listRecent(owner.id, thread.id, { limit: 5 });
    expect(listed.map((m) => m.content)).toEqual(["inside", "outer, joined"]);
  });

  it("without pg installed, fails on first use (not on import) naming the package", async () => {
    vi.resetModules();
    vi.doMock("pg", () => {
      throw new Error("Cannot find package 'pg'");
    });
    try {
      const { postgresStorage: fresh } = await import("../../adapters/storage/postgres/index.js");
      const made = fresh({ connectionString: DATABASE_URL });
      const error = await failure(made.init());
      expect(error.code).toBe("CONFIGURATION_INVALID");
      expect(error.message).toContain("npm install pg");
      await made.close();
    } finally {
      vi.doUnmock("pg");
      vi.resetModules();
    }
  });

  describe("errors", () => {
    it("reports an unreachable database once, naming host:port/database but not the password", async () => {
      const made = postgresStorage({ connectionString: "postgres://kilo:s3cret-pw@127.0.0.1:1/test" });
      const error = await failure(made.init());
      expect(error.code).toBe("STORAGE_FAILED");
      expect(error.retryable).toBe(true);
      expect(error.adapter).toBe("postgres");
      expect(error.message).toContain("127.0.0.1:1/test");
      expect(error.message).not.toContain("s3cret-pw");
      expect(JSON.stringify(error.toJSON())).not.toContain("s3cret-pw");
      const again = await failure(made.bots.get("any"));
      expect(again.code).toBe("STORAGE_FAILED");
      expect(again.message).not.toContain("s3cret-pw");
      await made.close();
    });

    it("maps unique violations to CONFLICT and missing parents to NOT_FOUND", async () => {
      const made = storage({ pool: newPool(4), schema: schemaName("constraints") });
      const { owner, thread } = await seed(made);
      // A taken message id fails the whole turn (a unique violation inside the statement).
      const first = await made.messages.append(message(owner, thread.id, "hi"));
      const { seq: _seq, ...taken } = first;
      const turnUsage = usage(owner);
      const conflict = await failure(
        made.commitTurn({ message: taken, usage: [turnUsage], conversationUpdatedAt: new Date(0) }),
      );
      expect(conflict.code).toBe("CONFLICT");
      expect((await made.usage.list({ userId: owner.userId }, { limit: 5 })).items).toEqual([]);
      expect((await made.conversations.get(owner.id, thread.id))?.updatedAt).toEqual(when);
      // Renames racing for one name: the unique index lets exactly one through.
      const skills = await Promise.all(Array.from({ length: 6 }, () => made.skills.create(skill(owner.id))));
      const outcomes = await Promise.allSettled(
        skills.map((s) => made.skills.update({ ...s, name: "Same" })),
      );
      expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(1);
      for (const outcome of outcomes) {
        if (outcome.status === "rejected") expect(KiloError.is(outcome.reason, "CONFLICT")).toBe(true);
      }
      expect(await codeOf(made.skills.create(skill("no-such-bot")))).toBe("NOT_FOUND");
    });

    it("reports a connection dropped mid-transaction as STORAGE_FAILED, and the next call works", async () => {
      const pool = newPool(1);
      const made = storage({ pool, schema: schemaName("dropped") });
      const { owner } = await seed(made);
      const { rows } = await pool.query<{ pid: number }>("select pg_backend_pid() as pid");
      const pid = rows[0]!.pid;
      const error = await failure(
        made.transaction(async (tx) => {
          await tx.bots.get(owner.id);
          await admin.query("select pg_terminate_backend($1)", [pid]);
          await tx.bots.create(bot(owner.userId));
        }),
      );
      expect(error.code).toBe("STORAGE_FAILED");
      expect(error.retryable).toBe(true);
      expect(await made.bots.get(owner.id)).toEqual(owner);
      const { rows: after } = await pool.query<{ pid: number }>("select pg_backend_pid() as pid");
      expect(after[0]!.pid).not.toBe(pid);
    });
  });

  describe("migrations", () => {
    it("upgrades a schema built at version 1 in place", async () => {
      const schema = schemaName("upgrade");
      const pool = newPool(2);
      const old = storage({ pool, schema, migrate: false });
      expect(await old.migrate({ to: 1 })).toEqual({ applied: ["0001_initial_schema"] });
      const notCurrent = await failure(old.init());
      expect(notCurrent.code).toBe("CONFIGURATION_INVALID");
      expect(notCurrent.message).toMatch(new RegExp(`version 1.*version ${LATEST_SCHEMA_VERSION}`));

      // Rows as kilo at schema version 1 wrote them.
      const q = (table: string) => `"${schema}"."${table}"`;
      await pool.query(`insert into ${q("users")} values ('u1', 'Ada', '{}', $1)`, [when]);
      await pool.query(
        `insert into ${q("bots")} values ('b1', 'u1', 'Baker', null, null, null, '{"tier":"pro"}', $1, $1)`,
        [when],
      );
      await pool.query(
        `insert into ${q("conversations")} values ('c1', 'b1', 'u1', 'api', 'Cakes', '{}', $1, $1)`,
        [when],
      );
      for (const seq of [1, 2, 3]) {
        await pool.query(`insert into ${q("messages")} values ($1, 'b1', 'c1', $2, 'user', $3, '{}', $4)`, [
          `m${seq}`,
          seq,
          `message ${seq}`,
          when,
        ]);
      }
      await pool.query(
        `insert into ${q("memories")} values ('mem1', 'b1', 'u1', 'Bakery Name', 'bakery name', 'Sweet Crumbs', '{"kind":"manual","conversationId":null,"messageId":null}', '[]', $1, $1)`,
        [when],
      );

      const upgraded = storage({ pool, schema });
      await upgraded.init();
      const { rows } = await pool.query(`select version, name from ${q("kilo_migrations")} order by version`);
      expect(rows).toEqual(MIGRATIONS.map(({ version, name }) => ({ version, name })));
      expect(await upgraded.bots.get("b1")).toMatchObject({ name: "Baker", metadata: { tier: "pro" } });
      const history = await upgraded.messages.listRecent("b1", "c1", { limit: 10 });
      expect(history.map((m) => [m.seq, m.content])).toEqual([
        [1, "message 1"],
        [2, "message 2"],
        [3, "message 3"],
      ]);
      const next = await upgraded.messages.append({
        id: "m4",
        conversationId: "c1",
        botId: "b1",
        role: "assistant",
        content: "message 4",
        metadata: {},
        createdAt: when,
      });
      expect(next.seq).toBe(4);
      expect((await upgraded.memories.findByKey("b1", "u1", "BAKERY NAME"))?.content).toBe("Sweet Crumbs");
      // The tool registry's tables arrived with migration 3 and belong to the old bots.
      const tool = await upgraded.tools.create(payTool("b1"));
      expect(await upgraded.tools.findByName("b1", "PAY")).toEqual(tool);
      expect(await upgraded.bots.delete("b1")).toBe(true);
      expect(await upgraded.tools.get("b1", tool.id)).toBeNull();
    });

    it("applies each migration once when two processes migrate at the same time", async () => {
      const schema = schemaName("race");
      const first = storage({ pool: newPool(2), schema, migrate: false });
      const second = storage({ pool: newPool(2), schema, migrate: false });
      const results = await Promise.all([first.migrate(), second.migrate()]);
      const counts = results.map((result) => result.applied.length).sort();
      expect(counts).toEqual([0, MIGRATIONS.length]);
      const { rows } = await admin.query(`select count(*)::int as n from "${schema}"."kilo_migrations"`);
      expect(rows[0]).toEqual({ n: MIGRATIONS.length });
      await first.init();
      await second.init();
      const { owner } = await seed(first);
      expect(await second.bots.get(owner.id)).toEqual(owner);
    });

    it("with `migrate: false` on an empty schema, fails clearly and creates nothing", async () => {
      const schema = schemaName("unmigrated");
      const made = storage({ pool: newPool(1), schema, migrate: false });
      const error = await failure(made.init());
      expect(error.code).toBe("CONFIGURATION_INVALID");
      expect(error.message).toMatch(/no kilo schema/);
      expect(await tablesIn(schema)).toEqual([]);
    });
  });

  it("round-trips a 1 MB hostile value with NUL bytes and finds it by substring", async () => {
    const made = storage({ pool: newPool(2), schema: schemaName("big") });
    const { owner, thread } = await seed(made);
    const unit = "kilo '\"\\; DROP TABLE bots; -- % _ \u0000 \uE000 \uE001 🎂 ";
    const big = unit.repeat(Math.ceil(1_000_000 / unit.length)).slice(0, 1_000_000);
    const stored = await made.messages.append(message(owner, thread.id, big));
    expect((await made.messages.listRecent(owner.id, thread.id, { limit: 1 }))[0]).toEqual(stored);
    const orders = await made.skills.create(skill(owner.id));
    const record = await made.skillRecords.create({
      id: uid("record"),
      botId: owner.id,
      skillId: orders.id,
      data: { big, "key\u0000\uE000": `value\u0000` },
      createdAt: when,
      updatedAt: when,
    });
    expect(await made.skillRecords.get(owner.id, orders.id, record.id)).toEqual(record);
    const found = await made.skillRecords.query(
      owner.id,
      orders.id,
      { contains: { big: big.slice(500_000, 500_100) }, equals: { "key\u0000\uE000": `VALUE\u0000` } },
      { limit: 5 },
    );
    expect(found.items).toEqual([record]);
  });
});

function payTool(botId: string): Tool {
  return {
    id: uid("tool"),
    botId,
    name: "pay",
    description: "",
    baseUrl: "https://api.pay.example",
    auth: { type: "api_key_header", header: "X-Api-Key" },
    credential: "ciphertext",
    endpoints: [
      { name: "balance", method: "GET", path: "/balance", description: "", parameters: [], risky: false },
    ],
    createdAt: when,
    updatedAt: when,
  };
}
