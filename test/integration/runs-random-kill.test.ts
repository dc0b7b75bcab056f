import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type PostgresStorage, postgresStorage } from "../../adapters/storage/postgres/index.js";
import { storedBot } from "../runs/helpers.js";
import {
  bundleWorker,
  type EffectRow,
  type IngestRow,
  type InvocationRow,
  killRepeatedly,
  killsFromEnv,
  type LedgerRows,
  report,
  seedFromEnv,
  verify,
} from "../runs/random-kill-harness.js";

// The durability proof on Postgres (the shared queue, leases): a worker process ingesting and
// executing a workload of workflow runs is killed with SIGKILL at random moments, again and
// again; each new worker takes over the dead one's runs once their leases expire; then one
// finishes. See test/runs/random-kill-harness.ts for what is checked, and how to replay a seed.
// Never skipped: fails loudly when Postgres does not answer on 127.0.0.1:5432.
const DATABASE_URL = process.env.KILO_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const RUN = randomBytes(4).toString("hex");
const SCHEMA = `kilo_test_${RUN}_random_kill`;
const LEDGER = `kilo_test_${RUN}_random_kill_ledger`;
let admin: pg.Pool;
let storage: PostgresStorage | undefined;
let worker: Awaited<ReturnType<typeof bundleWorker>>;

beforeAll(async () => {
  admin = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
  expect((await admin.query<{ ok: number }>("select 1 as ok")).rows[0]?.ok).toBe(1);
  worker = await bundleWorker();
}, 300_000);

afterAll(async () => {
  worker?.dispose();
  await storage?.close();
  for (const schema of [SCHEMA, LEDGER]) await admin.query(`drop schema if exists "${schema}" cascade`);
  await admin.end();
});

async function readLedger(): Promise<LedgerRows> {
  const exists = await admin.query(
    `select 1 from pg_tables where schemaname = $1 and tablename = 'ingests'`,
    [LEDGER],
  );
  if (exists.rowCount === 0) return { invocations: [], effects: [], ingests: [] };
  const table = (name: string) => `"${LEDGER}"."${name}"`;
  const invocations = await admin.query<InvocationRow & { id: string }>(
    `select * from ${table("invocations")}`,
  );
  const effects = await admin.query<EffectRow & { invocation_id: string }>(
    `select * from ${table("effects")}`,
  );
  const ingests = await admin.query<IngestRow & { id: string }>(`select * from ${table("ingests")}`);
  return {
    invocations: invocations.rows.map((row) => ({ ...row, id: Number(row.id) })),
    effects: effects.rows.map((row) => ({ ...row, invocation_id: Number(row.invocation_id) })),
    ingests: ingests.rows.map((row) => ({ ...row, id: Number(row.id) })),
  };
}

describe("kilo.runs on Postgres: a worker killed with SIGKILL at random moments, many times", () => {
  it("loses no run, keeps each conversation's order, records every step once, repeats only interrupted side effects (same key)", async () => {
    storage = postgresStorage({ connectionString: DATABASE_URL, schema: SCHEMA, poolSize: 4 });
    const bot = await storedBot(storage, "bot_random_kill");
    await admin.query(`create schema if not exists "${LEDGER}"`);
    const options = {
      label: "postgres",
      seed: seedFromEnv(),
      kills: killsFromEnv(15),
      keys: 5,
      messages: 8,
      worker: worker.file,
      env: {
        KILO_RK_STORAGE: "postgres",
        KILO_RK_DB: DATABASE_URL,
        KILO_RK_SCHEMA: SCHEMA,
        KILO_RK_LEDGER: LEDGER,
        KILO_RK_LATENCY_MS: "10",
        // A dead worker's runs wait for their lease to expire: short, so fifteen deaths fit the test.
        // A live worker that stalls past it (a loaded machine) only re-claims its own runs' leases.
        KILO_RK_LEASE_MS: "400",
        KILO_RK_HEARTBEAT_MS: "50",
        KILO_RK_POLL_MS: "20",
      },
      storage,
      botId: bot.id,
      readLedger,
    };
    console.log(
      `random-kill postgres: seed=${options.seed} (replay with KILO_RANDOM_KILL_SEED=${options.seed})`,
    );
    const result = await killRepeatedly(options);
    const rows = await readLedger();
    report(options, result, rows);
    await verify(options, result, rows);
  }, 300_000);
});
