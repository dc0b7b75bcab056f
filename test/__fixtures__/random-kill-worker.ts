/**
 * A worker process for the random-kill durability tests (test/runs/random-kill.test.ts on
 * SQLite, test/integration/runs-random-kill.test.ts on Postgres; the parent side is
 * test/runs/random-kill-harness.ts). The parent kills it with SIGKILL at random moments and
 * starts it again, many times.
 *
 * Every life does the same thing: it ingests the whole workload (`KILO_RK_KEYS` conversations
 * × `KILO_RK_MESSAGES` messages; message n of a conversation only once n - 1 is stored, each
 * with a delivery id, so a message a previous life ingested comes back as a duplicate), then
 * waits for every run. Runs are of the workflow `work.item`: a side-effecting step `reserve`,
 * a model turn (mock provider, `KILO_RK_LATENCY_MS` per call), a side-effecting step `deliver`.
 *
 * Side effects go to a ledger outside kilo's storage (a SQLite file of its own, or a Postgres
 * schema of its own) that records every invocation (`invocations`, in order), the effect once
 * per idempotency key (`effects`, as an API that dedupes by key would), and every ingest call
 * that returned (`ingests`). A step returns its invocation's id, so the recorded step names the
 * invocation whose result it kept.
 *
 * Configured through the environment:
 * - `KILO_RK_STORAGE`: `sqlite` (`KILO_RK_DB` is the file, `KILO_RK_LEDGER` the ledger file) or
 *   `postgres` (`KILO_RK_DB` is the URL, `KILO_RK_SCHEMA` kilo's schema, `KILO_RK_LEDGER` the
 *   ledger's schema);
 * - `KILO_RK_BOT` (the bot, already stored), `KILO_RK_KEYS`, `KILO_RK_MESSAGES`, `KILO_RK_LIFE`,
 *   `KILO_RK_SEED` (the step and ingest pauses), `KILO_RK_LATENCY_MS`;
 * - Postgres: `KILO_RK_LEASE_MS`, `KILO_RK_HEARTBEAT_MS`, `KILO_RK_POLL_MS`.
 *
 * Writes one JSON object per line to stdout: `{"ready":true,"pid":...}` once kilo is built,
 * `{"progress":...}` as the work advances (run started, effect invoked, effect done, model
 * call, run completed, message ingested), `{"log":...}` for each warning kilo logs, and
 * `{"done":true,"statuses":{...}}` when every run has settled. Exits when its stdin closes, so
 * it never outlives its parent.
 */
import Database from "better-sqlite3";
import pg from "pg";
import { postgresStorage } from "../../adapters/storage/postgres/index.js";
import { sqliteStorage } from "../../adapters/storage/sqlite/index.js";
import { createKilo, jsonLogger, type WorkflowStepInfo } from "../../src/index.js";
import { mockProvider } from "../../src/testing/index.js";

const env = process.env;
const say = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const required = (name: string): string => {
  const value = env[name];
  if (value === undefined || value === "") throw new Error(`random-kill-worker: ${name} is required`);
  return value;
};
const optionalNumber = (name: string): number | undefined =>
  env[name] === undefined || env[name] === "" ? undefined : Number(env[name]);

const life = Number(required("KILO_RK_LIFE"));
const botId = required("KILO_RK_BOT");
const keyCount = Number(required("KILO_RK_KEYS"));
const messageCount = Number(required("KILO_RK_MESSAGES"));
const latencyMs = optionalNumber("KILO_RK_LATENCY_MS") ?? 5;

/** mulberry32: the pauses inside steps and between ingests, reproducible per seed and life. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
const random = prng(Number(required("KILO_RK_SEED")) * 1_000 + life);

interface Invocation {
  key: string;
  runId: string;
  step: string;
  conversationKey: string;
  message: number;
}

/** The external system the steps write to. */
interface Ledger {
  /** Records one invocation of a step's side effect; returns its id (increasing). */
  invoke(invocation: Invocation): Promise<number>;
  /** Performs the effect once per idempotency key (a repeat with the same key changes nothing). */
  effect(invocation: Invocation, invocationId: number): Promise<void>;
  ingested(conversationKey: string, message: number, runId: string, duplicate: boolean): Promise<void>;
  close(): Promise<void>;
}

function sqliteLedger(filename: string): Ledger {
  const db = new Database(filename);
  db.pragma("journal_mode = WAL");
  db.pragma("busy_timeout = 5000");
  db.exec(`
    create table if not exists invocations (id integer primary key autoincrement, idempotency_key text not null,
      run_id text not null, step text not null, conversation_key text not null, message integer not null,
      pid integer not null, life integer not null);
    create table if not exists effects (idempotency_key text primary key, run_id text not null, step text not null,
      conversation_key text not null, message integer not null, pid integer not null, life integer not null,
      invocation_id integer not null);
    create table if not exists ingests (id integer primary key autoincrement, conversation_key text not null,
      message integer not null, run_id text not null, duplicate integer not null, pid integer not null,
      life integer not null);
  `);
  const invoke = db.prepare(
    "insert into invocations (idempotency_key, run_id, step, conversation_key, message, pid, life) values (?, ?, ?, ?, ?, ?, ?)",
  );
  const effect = db.prepare(
    "insert into effects (idempotency_key, run_id, step, conversation_key, message, pid, life, invocation_id) values (?, ?, ?, ?, ?, ?, ?, ?) on conflict do nothing",
  );
  const ingest = db.prepare(
    "insert into ingests (conversation_key, message, run_id, duplicate, pid, life) values (?, ?, ?, ?, ?, ?)",
  );
  return {
    async invoke(i) {
      const result = invoke.run(i.key, i.runId, i.step, i.conversationKey, i.message, process.pid, life);
      return Number(result.lastInsertRowid);
    },
    async effect(i, invocationId) {
      effect.run(i.key, i.runId, i.step, i.conversationKey, i.message, process.pid, life, invocationId);
    },
    async ingested(conversationKey, message, runId, duplicate) {
      ingest.run(conversationKey, message, runId, duplicate ? 1 : 0, process.pid, life);
    },
    async close() {
      db.close();
    },
  };
}

async function postgresLedger(url: string, schema: string): Promise<Ledger> {
  const pool = new pg.Pool({ connectionString: url, max: 3 });
  const table = (name: string) => `"${schema}"."${name}"`;
  await pool.query(`create schema if not exists "${schema}"`);
  await pool.query(`
    create table if not exists ${table("invocations")} (id bigserial primary key, idempotency_key text not null,
      run_id text not null, step text not null, conversation_key text not null, message integer not null,
      pid integer not null, life integer not null);
    create table if not exists ${table("effects")} (idempotency_key text primary key, run_id text not null,
      step text not null, conversation_key text not null, message integer not null, pid integer not null,
      life integer not null, invocation_id bigint not null);
    create table if not exists ${table("ingests")} (id bigserial primary key, conversation_key text not null,
      message integer not null, run_id text not null, duplicate boolean not null, pid integer not null,
      life integer not null);
  `);
  return {
    async invoke(i) {
      const { rows } = await pool.query<{ id: string }>(
        `insert into ${table("invocations")} (idempotency_key, run_id, step, conversation_key, message, pid, life)
         values ($1, $2, $3, $4, $5, $6, $7) returning id`,
        [i.key, i.runId, i.step, i.conversationKey, i.message, process.pid, life],
      );
      return Number(rows[0]!.id);
    },
    async effect(i, invocationId) {
      await pool.query(
        `insert into ${table("effects")} (idempotency_key, run_id, step, conversation_key, message, pid, life, invocation_id)
         values ($1, $2, $3, $4, $5, $6, $7, $8) on conflict do nothing`,
        [i.key, i.runId, i.step, i.conversationKey, i.message, process.pid, life, invocationId],
      );
    },
    async ingested(conversationKey, message, runId, duplicate) {
      await pool.query(
        `insert into ${table("ingests")} (conversation_key, message, run_id, duplicate, pid, life)
         values ($1, $2, $3, $4, $5, $6)`,
        [conversationKey, message, runId, duplicate, process.pid, life],
      );
    },
    close: () => pool.end(),
  };
}

const onPostgres = required("KILO_RK_STORAGE") === "postgres";
const ledger = onPostgres
  ? await postgresLedger(required("KILO_RK_DB"), required("KILO_RK_LEDGER"))
  : sqliteLedger(required("KILO_RK_LEDGER"));
const storage = onPostgres
  ? postgresStorage({
      connectionString: required("KILO_RK_DB"),
      schema: required("KILO_RK_SCHEMA"),
      poolSize: 6,
    })
  : sqliteStorage({ filename: required("KILO_RK_DB") });

/** The message number in an event's text (`<key> #<n>`). */
const messageOf = (text: unknown) => Number(String(text).split("#").pop());

/** A step's side effect: recorded as invoked, a pause (where a kill leaves it half done), then performed. */
async function sideEffect(step: string, info: WorkflowStepInfo, conversationKey: string, message: number) {
  const invocation: Invocation = {
    key: info.idempotencyKey,
    runId: info.runId,
    step,
    conversationKey,
    message,
  };
  const id = await ledger.invoke(invocation);
  say({ progress: "invoked", key: info.idempotencyKey });
  await sleep(Math.floor(random() * 4));
  await ledger.effect(invocation, id);
  say({ progress: "effect", key: info.idempotencyKey });
  return { key: info.idempotencyKey, invocation: id, pid: process.pid };
}

const kilo = createKilo({
  storage,
  providers: [
    mockProvider({
      async respond(request) {
        say({ progress: "model" });
        await sleep(latencyMs);
        // The message answered: the last text block of the last user message (after the context).
        const last = request.messages.findLast((message) => message.role === "user")?.content;
        const blocks = typeof last === "string" ? [{ type: "text", text: last }] : (last ?? []);
        const texts = blocks.flatMap((block) => ("text" in block && block.text ? [block.text] : []));
        return `re: ${texts.at(-1) ?? ""}`;
      },
    }),
  ],
  prices: { "mock-1": { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 } },
  // Warnings and errors go to the parent on stdout, so it can report them.
  logger: jsonLogger({
    level: "warn",
    base: { pid: process.pid, life },
    write: (line) => say({ log: JSON.parse(line) }),
  }),
  runs: onPostgres
    ? {
        leaseMs: optionalNumber("KILO_RK_LEASE_MS"),
        heartbeatIntervalMs: optionalNumber("KILO_RK_HEARTBEAT_MS"),
        pollIntervalMs: optionalNumber("KILO_RK_POLL_MS"),
      }
    : {},
  workflows: {
    "work.item": async (event, ctx) => {
      const message = messageOf(event.text);
      const reserve = await ctx.step("reserve", (info) =>
        sideEffect("reserve", info, ctx.conversationKey, message),
      );
      const turn = await ctx.turn();
      const deliver = await ctx.step("deliver", (info) =>
        sideEffect("deliver", info, ctx.conversationKey, message),
      );
      return { reserve, reply: turn.reply, deliver };
    },
  },
});
kilo.events.on("run-started", (event) => say({ progress: "started", run: event.runId }));
kilo.events.on("run-completed", (event) => say({ progress: "completed", run: event.runId }));

process.stdin.on("close", () => process.exit(0));
process.stdin.resume();
say({ ready: true, pid: process.pid });

await kilo.runs.start();
const keys = Array.from({ length: keyCount }, (_, k) => `conversation-${k}`);
const runIds = (
  await Promise.all(
    keys.map(async (conversationKey) => {
      const ids: string[] = [];
      for (let n = 0; n < messageCount; n++) {
        const { run_id, duplicate } = await kilo.runs.ingest(
          {
            schema_version: 1,
            type: "work.item",
            conversation_key: conversationKey,
            user_key: "user_1",
            text: `${conversationKey} #${n}`,
            delivery_id: `${conversationKey}/${n}`,
          },
          { botId },
        );
        await ledger.ingested(conversationKey, n, run_id, duplicate);
        ids.push(run_id);
        if (!duplicate) {
          say({ progress: "ingested", run: run_id });
          await sleep(Math.floor(random() * 8));
        }
      }
      return ids;
    }),
  )
).flat();
const statuses: Record<string, number> = {};
for (const runId of runIds) {
  const run = await kilo.runs.wait(runId);
  statuses[run.status] = (statuses[run.status] ?? 0) + 1;
}
await kilo.close();
await ledger.close();
say({ done: true, statuses });
process.exit(0);
