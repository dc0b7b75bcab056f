import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { type CompiledQuery, Kysely, SqliteDialect } from "kysely";
import { afterAll, describe, expect, it, vi } from "vitest";
import { LATEST_SCHEMA_VERSION, MIGRATIONS } from "../../adapters/storage/sql/migrations.js";
import { sqliteStorage } from "../../adapters/storage/sqlite/index.js";
import type { Bot } from "../../src/domain/bot.js";
import type { Conversation, NewMessage } from "../../src/domain/conversation.js";
import type { Memory } from "../../src/domain/memory.js";
import type { Skill } from "../../src/domain/skill.js";
import type { Tool, ToolCallAudit } from "../../src/domain/tool.js";
import type { User } from "../../src/domain/user.js";
import { KiloError, type KiloErrorCode } from "../../src/errors.js";
import type { Storage } from "../../src/ports/storage.js";
import { runStorageConformance } from "../../src/testing/storage-conformance.js";

const directory = mkdtempSync(join(tmpdir(), "kilo-sqlite-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

runStorageConformance({
  name: "sqlite (:memory:)",
  createStorage: () => sqliteStorage({ filename: ":memory:" }),
});

// One file shared by every test (WAL journal, reopened per test), with prefixed tables.
const sharedFile = join(directory, "conformance.db");
runStorageConformance({
  name: "sqlite (file, tablePrefix)",
  createStorage: () => sqliteStorage({ filename: sharedFile, tablePrefix: "kilo_" }),
});

// ---------------------------------------------------------------------------
// Fixtures

let counter = 0;
const uid = (prefix: string) => `${prefix}-${++counter}`;
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

async function seed(storage: Storage): Promise<{ owner: Bot; thread: Conversation }> {
  const person = await storage.users.upsert(user());
  const owner = await storage.bots.create(bot(person.id));
  const thread = await storage.conversations.create(conversation(owner));
  return { owner, thread };
}

async function codeOf(promise: Promise<unknown>): Promise<KiloErrorCode | "resolved" | "not a KiloError"> {
  try {
    await promise;
    return "resolved";
  } catch (error) {
    return KiloError.is(error) ? error.code : "not a KiloError";
  }
}

async function failure(promise: Promise<unknown>): Promise<KiloError> {
  const error = await promise.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(KiloError.is(error), `expected a KiloError, got ${String(error)}`).toBe(true);
  return error as KiloError;
}

// ---------------------------------------------------------------------------

describe("sqliteStorage", () => {
  it("is named sqlite and declares in-process transactions, durable unless in memory", async () => {
    const memory = sqliteStorage({ filename: ":memory:" });
    const file = sqliteStorage({ filename: join(directory, "capabilities.db") });
    expect(memory.name).toBe("sqlite");
    expect(memory.capabilities).toEqual({ transactions: true, crossProcess: false, durable: false });
    expect(file.capabilities).toEqual({ transactions: true, crossProcess: false, durable: true });
    await memory.close();
    await file.close();
  });

  it("refuses options that name no database, several, or a malformed prefix", () => {
    const attempts: Array<() => unknown> = [
      () => sqliteStorage({} as never),
      () => sqliteStorage({ filename: ":memory:", database: new Database(":memory:") } as never),
      () => sqliteStorage({ filename: ":memory:", tablePrefix: "bad-prefix" }),
      () => sqliteStorage({ filename: ":memory:", tablePrefix: "x".repeat(40) }),
    ];
    for (const attempt of attempts) {
      expect(() => attempt()).toThrow(expect.objectContaining({ code: "CONFIGURATION_INVALID" }));
    }
  });

  it("keeps data across close and reopen of a file", async () => {
    const filename = join(directory, "durable.db");
    const first = sqliteStorage({ filename });
    const { owner, thread } = await seed(first);
    const hello = await first.messages.append(message(owner, thread.id, "remember me"));
    await first.close();

    const second = sqliteStorage({ filename });
    expect(await second.bots.get(owner.id)).toEqual(owner);
    expect(await second.messages.listRecent(owner.id, thread.id, { limit: 5 })).toEqual([hello]);
    const next = await second.messages.append(message(owner, thread.id, "and me"));
    expect(next.seq).toBeGreaterThan(hello.seq);
    expect(await second.migrate()).toEqual({ applied: [] });
    await second.close();
  });

  it("leaves a host's Database open on close()", async () => {
    const database = new Database(":memory:");
    const storage = sqliteStorage({ database });
    const { owner } = await seed(storage);
    await storage.close();
    expect(database.open).toBe(true);
    expect(database.prepare("select name from bots where id = ?").get(owner.id)).toEqual({ name: "Baker" });
    expect(await codeOf(storage.bots.get(owner.id))).toBe("CLOSED");
    database.close();
  });

  it("prepares each SQL text once and reuses the statement, also after schema changes", async () => {
    const database = new Database(":memory:");
    const texts: string[] = [];
    const prepare = database.prepare.bind(database);
    database.prepare = ((text: string) => {
      texts.push(text);
      return prepare(text);
    }) as typeof database.prepare;
    const storage = sqliteStorage({ database });
    const { owner } = await seed(storage);
    const before = texts.length;
    for (let n = 0; n < 5; n++) expect((await storage.bots.get(owner.id))?.name).toBe("Baker");
    const reads = texts.slice(before);
    expect(reads).toHaveLength(1);
    expect(reads[0]).toMatch(/^select/);
    // A cached statement still reads the table after the host changes its schema.
    database.exec("alter table bots add column host_note text");
    expect((await storage.bots.get(owner.id))?.name).toBe("Baker");
    expect(texts.slice(before)).toHaveLength(1);
    await storage.close();
    database.close();
  });

  it("reads integers from a host Database that returns bigints", async () => {
    const database = new Database(":memory:");
    database.defaultSafeIntegers(true);
    const storage = sqliteStorage({ database });
    const { owner, thread } = await seed(storage);
    const first = await storage.messages.append(message(owner, thread.id, "one"));
    const second = await storage.messages.append(message(owner, thread.id, "two"));
    expect([first.seq, second.seq]).toEqual([1, 2]);
    expect(await storage.messages.listRecent(owner.id, thread.id, { limit: 5 })).toEqual([first, second]);
    expect((await storage.bots.get(owner.id))?.createdAt).toEqual(when);
    await storage.close();
    database.close();
  });

  it("isolates two installs in one file by table prefix", async () => {
    const database = new Database(join(directory, "shared.db"));
    database.exec("create table host_orders (id integer primary key, note text)");
    const left = sqliteStorage({ database, tablePrefix: "left_" });
    const right = sqliteStorage({ database, tablePrefix: "right_" });
    const { owner } = await seed(left);
    expect(await right.bots.get(owner.id)).toBeNull();
    // The same ids can be used by both installs.
    await right.users.upsert(user({ id: owner.userId }));
    await right.bots.create({ ...owner, name: "Other" });
    expect((await left.bots.get(owner.id))?.name).toBe("Baker");
    expect((await right.bots.get(owner.id))?.name).toBe("Other");
    // Cascades stay inside an install.
    expect(await left.bots.delete(owner.id)).toBe(true);
    expect((await right.bots.get(owner.id))?.name).toBe("Other");
    const tables = database
      .prepare("select name from sqlite_master where type = 'table' order by name")
      .all()
      .map((row) => (row as { name: string }).name);
    expect(tables).toContain("host_orders");
    expect(tables).toContain("left_kilo_migrations");
    expect(tables).toContain("right_bots");
    expect(tables).not.toContain("bots");
    // The installs share the connection: a write of one waits for the other's transaction
    // instead of landing inside it (and being rolled back with it).
    let opened!: () => void;
    const isOpen = new Promise<void>((resolve) => {
      opened = resolve;
    });
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const outcome = left.transaction(async (tx) => {
      await tx.users.upsert(user());
      opened();
      await released;
      throw new Error("roll back the left install");
    });
    await isOpen;
    const visitor = user();
    const rightWrite = right.users.upsert(visitor);
    await new Promise((resolve) => setTimeout(resolve, 20));
    release();
    await expect(outcome).rejects.toThrow("roll back the left install");
    await rightWrite;
    expect(await right.users.get(visitor.id)).toEqual(visitor);
    await left.close();
    await right.close();
    database.close();
  });

  it("works through a host kysely instance, and every read uses an index", async () => {
    const database = new Database(":memory:");
    const queries: CompiledQuery[] = [];
    const kysely = new Kysely<unknown>({
      dialect: new SqliteDialect({ database }),
      log: (event) => {
        if (event.level === "query") queries.push(event.query);
      },
    });
    const storage = sqliteStorage({ kysely, tablePrefix: "k_" });
    const { owner, thread } = await seed(storage);
    const orders = await storage.skills.create(skill(owner.id));
    await storage.skillRecords.create({
      id: uid("record"),
      botId: owner.id,
      skillId: orders.id,
      data: { customer: "Grace" },
      createdAt: when,
      updatedAt: when,
    });
    await storage.messages.append(message(owner, thread.id, "hi"));
    await storage.memories.create(memory(owner, "bakery name"));
    await storage.tools.create(payTool(owner.id));
    for (const n of [1, 2]) await storage.toolAudit.record(auditEntry(owner, n));
    queries.length = 0;

    const cursorPage = { limit: 1 };
    await storage.bots.listByUser(owner.userId, cursorPage);
    await storage.skills.listByBot(owner.id);
    await storage.skillRecords.query(owner.id, orders.id, { equals: { customer: "grace" } }, { limit: 5 });
    await storage.skillRecords.query(owner.id, orders.id, {}, { limit: 5, newestFirst: true });
    await storage.conversations.listByBot(owner.id, cursorPage);
    await storage.messages.listRecent(owner.id, thread.id, { limit: 10, beforeSeq: 5 });
    await storage.memories.findByKey(owner.id, owner.userId, "Bakery Name");
    await storage.memories.list(owner.id, owner.userId, cursorPage);
    await storage.usage.list({ userId: owner.userId }, { limit: 5 });
    await storage.usage.list({ userId: owner.userId, botId: owner.id, from: when }, { limit: 5 });
    await storage.proposals.listByBot(owner.id, { limit: 5 });
    await storage.proposals.listByBot(owner.id, { status: "pending", limit: 5 });
    await storage.tools.listByBot(owner.id);
    await storage.tools.findByName(owner.id, "Pay");
    const audit = await storage.toolAudit.list(owner.id, cursorPage);
    await storage.toolAudit.list(owner.id, { limit: 1, cursor: audit.nextCursor });
    await storage.approvals.listByBot(owner.id, { limit: 5 });
    await storage.approvals.listByBot(owner.id, { status: "pending", limit: 5 });

    const selects = queries.filter((query) => query.sql.startsWith("select"));
    expect(selects.length).toBe(18);
    const findByKey = selects.find((query) => query.sql.includes("key_folded"))!;
    for (const query of selects) {
      const plan = database
        .prepare(`explain query plan ${query.sql}`)
        .all(...(query.parameters as unknown[]))
        .map((row) => (row as { detail: string }).detail);
      // `j` is json_each over one row's JSON, not a table.
      const scans = plan.filter((step) => /^SCAN (?!j\b)/.test(step));
      expect(scans, `${query.sql}\n${plan.join("\n")}`).toEqual([]);
      if (query === findByKey) expect(plan.join("\n")).toMatch(/k_memories_key_idx/);
    }
    await storage.close();
    await kysely.destroy();
  });

  it("lets calls on the storage inside a transaction callback join it instead of deadlocking", async () => {
    const storage = sqliteStorage({ filename: ":memory:" });
    const { owner, thread } = await seed(storage);
    const extra = bot(owner.userId);
    const inner = bot(owner.userId);
    await storage.transaction(async (tx) => {
      await tx.bots.create(extra);
      // The outer storage sees the transaction's writes and writes into it.
      expect(await storage.bots.get(extra.id)).toEqual(extra);
      await storage.messages.append(message(owner, thread.id, "inside"));
      // A nested transaction is a savepoint: its rollback undoes only its own writes.
      const undone = new Error("undo the inner one");
      await expect(
        storage.transaction(async (nested) => {
          await nested.bots.create(inner);
          throw undone;
        }),
      ).rejects.toBe(undone);
      expect(await tx.bots.get(inner.id)).toBeNull();
    });
    expect(await storage.bots.get(extra.id)).toEqual(extra);
    expect(
      (await storage.messages.listRecent(owner.id, thread.id, { limit: 5 })).map((m) => m.content),
    ).toEqual(["inside"]);
    await storage.close();
  });

  it("serves calls waiting for its one connection in the order they came, thousands at once", async () => {
    const storage = sqliteStorage({ filename: ":memory:" });
    const { owner, thread } = await seed(storage);
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const holding = storage.transaction(async (tx) => {
      const first = await tx.messages.append(message(owner, thread.id, "first, in the transaction"));
      await held;
      return first.seq;
    });
    // Made outside the transaction's callback: each waits for the connection.
    await Promise.resolve();
    let done = 0;
    const appends = Array.from({ length: 3000 }, (_, n) =>
      storage.messages.append(message(owner, thread.id, `waiting ${n}`)).then((stored) => {
        done += 1;
        return stored;
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(done).toBe(0);
    release();
    const firstSeq = await holding;
    const stored = await Promise.all(appends);
    // Seqs follow the order the calls were made in: each took its turn at the connection.
    const seqs = stored.map((m) => m.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(3000);
    expect(seqs[0]).toBeGreaterThan(firstSeq);
    await storage.close();
  });

  it("refuses the repositories of a finished transaction with CLOSED", async () => {
    const storage = sqliteStorage({ filename: ":memory:" });
    let leaked: Parameters<Parameters<Storage["transaction"]>[0]>[0] | null = null;
    await storage.transaction(async (tx) => {
      leaked = tx;
    });
    expect(await codeOf(leaked!.bots.get("any"))).toBe("CLOSED");
    await storage.close();
  });

  it("stores nothing of a turn whose reply id is taken", async () => {
    const storage = sqliteStorage({ filename: ":memory:" });
    const { owner, thread } = await seed(storage);
    const { seq: _seq, ...taken } = await storage.messages.append(message(owner, thread.id, "hi"));
    const record = {
      id: uid("usage"),
      botId: owner.id,
      userId: owner.userId,
      conversationId: thread.id,
      provider: "mock",
      model: "mock-large",
      taskType: "simple_qa" as const,
      purpose: "chat",
      promptTokens: 1,
      completionTokens: 1,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      reasoningTokens: 0,
      costUsd: 0,
      latencyMs: 1,
      success: true,
      errorCode: null,
      createdAt: when,
    };
    const turn = { message: taken, usage: [record], conversationUpdatedAt: new Date(0) };
    expect(await codeOf(storage.commitTurn(turn))).toBe("CONFLICT");
    expect((await storage.usage.list({ userId: owner.userId }, { limit: 5 })).items).toEqual([]);
    expect(await storage.conversations.get(owner.id, thread.id)).toEqual(thread);
    const next = await storage.commitTurn({ ...turn, message: message(owner, thread.id, "reply") });
    // The failed turn was rolled back whole, so it left no gap in the seqs.
    expect(next.seq).toBe(2);
    await storage.close();
  });

  it("maps a missing parent to NOT_FOUND", async () => {
    const storage = sqliteStorage({ filename: ":memory:" });
    expect(await codeOf(storage.skills.create(skill("no-such-bot")))).toBe("NOT_FOUND");
    expect(await codeOf(storage.conversations.create(conversation(bot("nobody"))))).toBe("NOT_FOUND");
    await storage.close();
  });

  it("round-trips a 1 MB hostile value and finds it by substring", async () => {
    const storage = sqliteStorage({ filename: ":memory:" });
    const { owner, thread } = await seed(storage);
    const unit = "kilo '\"\\; DROP TABLE bots; -- % _ \u0000 🎂 ";
    const big = unit.repeat(Math.ceil(1_000_000 / unit.length)).slice(0, 1_000_000);
    const stored = await storage.messages.append(message(owner, thread.id, big));
    expect((await storage.messages.listRecent(owner.id, thread.id, { limit: 1 }))[0]).toEqual(stored);
    const orders = await storage.skills.create(skill(owner.id));
    const record = await storage.skillRecords.create({
      id: uid("record"),
      botId: owner.id,
      skillId: orders.id,
      data: { big },
      createdAt: when,
      updatedAt: when,
    });
    const found = await storage.skillRecords.query(
      owner.id,
      orders.id,
      { contains: { big: big.slice(500_000, 500_100) } },
      { limit: 5 },
    );
    expect(found.items).toEqual([record]);
    await storage.close();
  });

  it("without better-sqlite3 installed, fails on first use (not on import) naming the package", async () => {
    vi.resetModules();
    vi.doMock("better-sqlite3", () => {
      throw new Error("Cannot find package 'better-sqlite3'");
    });
    try {
      const { sqliteStorage: fresh } = await import("../../adapters/storage/sqlite/index.js");
      const made = fresh({ filename: ":memory:" });
      const error = await failure(made.init());
      expect(error.code).toBe("CONFIGURATION_INVALID");
      expect(error.message).toContain("npm install better-sqlite3");
      await made.close();
    } finally {
      vi.doUnmock("better-sqlite3");
      vi.resetModules();
    }
  });

  describe("migrations", () => {
    it("with `migrate: false` on an empty database, fails clearly and creates nothing", async () => {
      const database = new Database(":memory:");
      const storage = sqliteStorage({ database, migrate: false });
      const error = await failure(storage.init());
      expect(error.code).toBe("CONFIGURATION_INVALID");
      expect(error.message).toMatch(/no kilo schema/);
      expect(error.message).toMatch(/migrate\(\)/);
      expect(await codeOf(storage.bots.get("x"))).toBe("CONFIGURATION_INVALID");
      expect(database.prepare("select count(*) as n from sqlite_master where type = 'table'").get()).toEqual({
        n: 0,
      });
      // migrate() is the way out.
      expect(await storage.migrate()).toEqual({ applied: MIGRATIONS.map((migration) => migration.name) });
      expect(MIGRATIONS.slice(0, 5).map((migration) => migration.name)).toEqual([
        "0001_initial_schema",
        "0002_seq_counter_and_memory_keys",
        "0003_tool_registry",
        "0004_runs",
        "0005_run_leases",
      ]);
      await storage.init();
      expect(await storage.bots.get("x")).toBeNull();
      await storage.close();
      database.close();
    });

    it("upgrades a database built at version 1 in place", async () => {
      const database = new Database(join(directory, "upgrade.db"));
      const old = sqliteStorage({ database, migrate: false });
      expect(await old.migrate({ to: 1 })).toEqual({ applied: ["0001_initial_schema"] });
      expect(await codeOf(old.init())).toBe("CONFIGURATION_INVALID");
      const columns = database
        .prepare("select name from pragma_table_info('conversations')")
        .all()
        .map((row) => (row as { name: string }).name);
      expect(columns).not.toContain("last_seq");

      // Rows as kilo at schema version 1 wrote them.
      const at = when.getTime();
      database.prepare("insert into users values ('u1', 'Ada', '{}', ?)").run(at);
      database
        .prepare(
          "insert into bots values ('b1', 'u1', 'Baker', null, null, null, '{\"tier\":\"pro\"}', ?, ?)",
        )
        .run(at, at);
      database
        .prepare("insert into conversations values ('c1', 'b1', 'u1', 'api', 'Cakes', '{}', ?, ?)")
        .run(at, at);
      const insertMessage = database.prepare(
        "insert into messages values (?, 'b1', 'c1', ?, 'user', ?, '{}', ?)",
      );
      for (const seq of [1, 2, 3]) insertMessage.run(`m${seq}`, seq, `message ${seq}`, at + seq);
      database
        .prepare(
          "insert into memories values ('mem1', 'b1', 'u1', 'Bakery Name', 'bakery name', 'Sweet Crumbs', ?, '[]', ?, ?)",
        )
        .run(JSON.stringify({ kind: "manual", conversationId: null, messageId: null }), at, at);

      const upgraded = sqliteStorage({ database });
      await upgraded.init();
      expect(database.prepare("select version, name from kilo_migrations order by version").all()).toEqual(
        MIGRATIONS.map(({ version, name }) => ({ version, name })),
      );
      expect(await upgraded.bots.get("b1")).toMatchObject({ name: "Baker", metadata: { tier: "pro" } });
      const history = await upgraded.messages.listRecent("b1", "c1", { limit: 10 });
      expect(history.map((m) => [m.seq, m.content])).toEqual([
        [1, "message 1"],
        [2, "message 2"],
        [3, "message 3"],
      ]);
      expect(history[2]?.createdAt).toEqual(new Date(at + 3));
      // The counter was backfilled, so appends continue after the old messages.
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
      const plan = database
        .prepare(
          "explain query plan select * from memories where bot_id = ? and user_id = ? and key_folded = ?",
        )
        .all("b1", "u1", "x")
        .map((row) => (row as { detail: string }).detail)
        .join("\n");
      expect(plan).toMatch(/memories_key_idx/);
      // The tool registry's tables arrived with migration 3 and belong to the old bots.
      const tool = await upgraded.tools.create(payTool("b1"));
      expect(await upgraded.tools.findByName("b1", tool.name)).toEqual(tool);
      expect(await upgraded.bots.delete("b1")).toBe(true);
      expect(await upgraded.tools.get("b1", tool.id)).toBeNull();
      await old.close();
      await upgraded.close();
      database.close();
    });

    it("refuses a database migrated by a newer kilo or with an altered migration", async () => {
      const database = new Database(":memory:");
      const storage = sqliteStorage({ database });
      await storage.init();
      await storage.close();

      database.prepare("update kilo_migrations set checksum = 'edited' where version = 1").run();
      const edited = await failure(sqliteStorage({ database }).init());
      expect(edited.code).toBe("CONFIGURATION_INVALID");
      expect(edited.message).toMatch(/0001_initial_schema.*checksum/);

      database.prepare("delete from kilo_migrations where version = 1").run();
      database.prepare("insert into kilo_migrations values (99, '0099_from_the_future', 'x', 0)").run();
      const newer = await failure(sqliteStorage({ database }).init());
      expect(newer.code).toBe("CONFIGURATION_INVALID");
      expect(newer.message).toMatch(/newer kilo/);
      database.close();
    });

    it("refuses a version to migrate to that does not exist", async () => {
      const storage = sqliteStorage({ filename: ":memory:", migrate: false });
      expect(await codeOf(storage.migrate({ to: 0 }))).toBe("CONFIGURATION_INVALID");
      expect(await codeOf(storage.migrate({ to: LATEST_SCHEMA_VERSION + 1 }))).toBe("CONFIGURATION_INVALID");
      await storage.close();
    });
  });
});

function memory(owner: Bot, key: string): Memory {
  return {
    id: uid("memory"),
    botId: owner.id,
    userId: owner.userId,
    key,
    content: "Sweet Crumbs",
    source: { kind: "manual", conversationId: null, messageId: null },
    history: [],
    createdAt: when,
    updatedAt: when,
  };
}

function payTool(botId: string): Tool {
  return {
    id: uid("tool"),
    botId,
    name: "pay",
    description: "",
    baseUrl: "https://api.pay.example",
    auth: { type: "bearer" },
    credential: "ciphertext",
    endpoints: [
      { name: "balance", method: "GET", path: "/balance", description: "", parameters: [], risky: false },
    ],
    createdAt: when,
    updatedAt: when,
  };
}

function auditEntry(owner: Bot, n: number): ToolCallAudit {
  return {
    id: uid("audit"),
    botId: owner.id,
    userId: owner.userId,
    conversationId: null,
    toolId: null,
    toolName: "pay",
    endpoint: "balance",
    method: "GET",
    status: "succeeded",
    httpStatus: 200,
    durationMs: 5,
    responseBytes: 10,
    errorCode: null,
    createdAt: new Date(when.getTime() + n),
  };
}
