/**
 * Database round trips and per-turn overhead of a chat turn on memory,
 * SQLite and Postgres, side by side. Round trips are counted where they
 * happen: queries sent by the pg client, statements prepared by
 * better-sqlite3, repository calls on the memory adapter.
 *
 *   npx tsx bench/round-trips.ts [--quick]
 */
import { randomUUID } from "node:crypto";
import Database from "better-sqlite3";
import pg from "pg";
import { memoryStorage } from "../adapters/storage/memory/index.js";
import { postgresStorage } from "../adapters/storage/postgres/index.js";
import { sqliteStorage } from "../adapters/storage/sqlite/index.js";
import { createKilo, type LlmProvider, type Storage } from "../src/index.js";
import { STORAGE_REPOSITORY_NAMES } from "../src/ports/storage.js";
import { isMain, percentile, saveResult, summarize } from "./support.js";

/** Round trips and overhead measured on one storage adapter. */
export interface RoundTripRow {
  storage: string;
  /**
   * Round trips of one warm turn on an existing conversation, by kind of turn;
   * `chatRun`: those of the chat turn that keep its run (store it, the claims
   * around it), counted on Postgres only (elsewhere 0: not told apart).
   */
  roundTrips: { chat: number; skillWithData: number; chatRun: number };
  medianMs: number;
  p99Ms: number;
  turns: number;
}

const DATABASE_URL = process.env.KILO_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** A provider that answers at once: a data skill's turn calls one tool, then answers. */
function instantProvider(): LlmProvider {
  const usage = {
    inputTokens: 100,
    outputTokens: 5,
    cacheReadTokens: 0,
    cacheWriteTokens: 0,
    reasoningTokens: 0,
  };
  return {
    name: "instant",
    defaultModel: "instant-1",
    capabilities: { thinking: false, streaming: false, promptCaching: false },
    async complete(request) {
      if (request.purpose === "classify") {
        const text = JSON.stringify({ skill: null, confidence: 0.9, actionable: false, reason: "chat" });
        return { content: [{ type: "text", text }], stopReason: "end_turn", usage, model: request.model };
      }
      const last = request.messages.at(-1)?.content.at(-1);
      // Only questions about orders use the data tool (the record_* tools are offered on every turn).
      const wantsTool = last?.type === "text" && /orders/i.test(last.text);
      if (wantsTool) {
        return {
          content: [{ type: "tool_call", id: "t1", name: "record_query", input: { skill: "Order Tracker" } }],
          stopReason: "tool_use",
          usage,
          model: request.model,
        };
      }
      return {
        content: [{ type: "text", text: "Noted!" }],
        stopReason: "end_turn",
        usage,
        model: request.model,
      };
    },
  };
}

interface Counted {
  storage: Storage;
  count(): number;
  /** The round trips among `count()` that keep runs (Postgres: storing one, claims). */
  countRun(): number;
  dispose(): Promise<void>;
}

function countingMemory(): Counted {
  const inner = memoryStorage();
  let calls = 0;
  const wrap = <T extends object>(target: T): T =>
    new Proxy(target, {
      get(object, property, receiver) {
        const value = Reflect.get(object, property, receiver);
        if (typeof value === "function") {
          return (...args: unknown[]) => {
            calls += 1;
            return value.apply(object, args);
          };
        }
        return value;
      },
    });
  const storage = { ...inner } as Storage;
  for (const key of STORAGE_REPOSITORY_NAMES) {
    const repository = inner[key];
    if (repository) (storage as unknown as Record<string, object>)[key] = wrap(repository);
  }
  if (inner.commitTurn) {
    storage.commitTurn = (turn) => {
      calls += 1;
      return inner.commitTurn!(turn);
    };
  }
  return { storage, count: () => calls, countRun: () => 0, dispose: async () => {} };
}

function countingSqlite(): Counted {
  const database = new Database(":memory:");
  let statements = 0;
  const prepare = database.prepare.bind(database);
  // Executions, not prepares: kilo's SQLite storage prepares each SQL text once and reuses it.
  database.prepare = ((source: string) => {
    const statement = prepare(source);
    const counted =
      <A extends unknown[], R>(run: (...args: A) => R) =>
      (...args: A): R => {
        statements += 1;
        return run(...args);
      };
    return Object.assign(Object.create(statement) as typeof statement, {
      all: counted(statement.all.bind(statement)),
      run: counted(statement.run.bind(statement)),
      iterate: counted(statement.iterate.bind(statement)),
    });
  }) as typeof database.prepare;
  const storage = sqliteStorage({ database });
  return {
    storage,
    count: () => statements,
    countRun: () => 0,
    dispose: async () => {
      await storage.close?.();
      database.close();
    },
  };
}

async function countingPostgres(): Promise<Counted> {
  const schema = `kilo_bench_${randomUUID().slice(0, 8)}`;
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
  let queries = 0;
  let runQueries = 0;
  pool.on("connect", (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      queries += 1;
      const first = args[0] as string | { text?: string } | undefined;
      const text = typeof first === "string" ? first : (first?.text ?? "");
      if (/insert into \S*"runs"|with picked as/.test(text)) runQueries += 1;
      return query(...args);
    };
  });
  const storage = postgresStorage({ pool, schema });
  return {
    storage,
    count: () => queries,
    countRun: () => runQueries,
    dispose: async () => {
      await storage.close?.();
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await pool.end();
    },
  };
}

async function measure(name: string, counted: Counted, turns: number): Promise<RoundTripRow> {
  const kilo = createKilo({ storage: counted.storage, providers: [instantProvider()] });
  const bot = await kilo.bots.create({ userId: "bench-user", name: "Bench" });
  await kilo.skills.create(bot.id, {
    name: "Order Tracker",
    triggers: ["new order", "orders"],
    dataFields: [{ name: "customer", type: "string" }],
  });
  // Two warm-up turns fill the caches and the conversation.
  let conversationId = (
    await kilo.chat({ botId: bot.id, userId: "bench-user", message: "Thanks, that's all" })
  ).conversationId;
  await kilo.chat({ botId: bot.id, userId: "bench-user", conversationId, message: "What orders do I have?" });

  const roundTrips = async (message: string) => {
    const before = counted.count();
    const beforeRun = counted.countRun();
    await kilo.chat({ botId: bot.id, userId: "bench-user", conversationId, message });
    return { all: counted.count() - before, run: counted.countRun() - beforeRun };
  };
  const chatTurn = await roundTrips("Thanks, that's all");
  const chat = chatTurn.all;
  const chatRun = chatTurn.run;
  const skillWithData = (await roundTrips("What orders do I have?")).all;

  const durations: number[] = [];
  for (let turn = 0; turn < turns; turn += 1) {
    if (turn % 20 === 0) {
      conversationId = (await kilo.chat({ botId: bot.id, userId: "bench-user", message: "hi" }))
        .conversationId;
    }
    const started = performance.now();
    await kilo.chat({
      botId: bot.id,
      userId: "bench-user",
      conversationId,
      message: turn % 2 ? "What orders do I have?" : "Thanks!",
    });
    durations.push(performance.now() - started);
  }
  await kilo.close();
  await counted.dispose();
  return {
    storage: name,
    roundTrips: { chat, skillWithData, chatRun },
    medianMs: summarize(durations).median,
    p99Ms: percentile(durations, 0.99),
    turns,
  };
}

/** Runs the round-trip bench on every storage adapter. */
export async function benchRoundTrips(options: { quick?: boolean } = {}): Promise<RoundTripRow[]> {
  const turns = options.quick ? 300 : 2_000;
  return [
    await measure("memory", countingMemory(), turns),
    await measure("sqlite (:memory:)", countingSqlite(), turns),
    await measure("postgres", await countingPostgres(), turns),
  ];
}

if (isMain(import.meta.url)) {
  const rows = await benchRoundTrips({ quick: process.argv.includes("--quick") });
  console.table(
    rows.map((row) => ({
      storage: row.storage,
      "round trips (chat)": row.roundTrips.chat,
      "of which its run": row.roundTrips.chatRun,
      "round trips (data skill)": row.roundTrips.skillWithData,
      "median ms": row.medianMs.toFixed(3),
      "p99 ms": row.p99Ms.toFixed(3),
    })),
  );
  await saveResult("round-trips", rows);
}
