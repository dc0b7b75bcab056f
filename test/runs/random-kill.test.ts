import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, it } from "vitest";
import { sqliteStorage } from "../../adapters/storage/sqlite/index.js";
import { storedBot } from "./helpers.js";
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
} from "./random-kill-harness.js";

// The durability proof on SQLite (a file): a worker process ingesting and executing a workload
// of workflow runs is killed with SIGKILL at random moments, again and again; then one finishes.
// See random-kill-harness.ts for what is checked, and how to replay a seed.
const directory = mkdtempSync(join(tmpdir(), "kilo-random-kill-"));
let worker: Awaited<ReturnType<typeof bundleWorker>>;

beforeAll(async () => {
  worker = await bundleWorker();
}, 300_000);

afterAll(() => {
  worker?.dispose();
  rmSync(directory, { recursive: true, force: true });
});

function readLedger(filename: string): () => Promise<LedgerRows> {
  return async () => {
    const db = new Database(filename, { readonly: true, fileMustExist: true });
    try {
      const tables = new Set(
        db
          .prepare<[], { name: string }>("select name from sqlite_master where type = 'table'")
          .all()
          .map((row) => row.name),
      );
      if (!tables.has("ingests")) return { invocations: [], effects: [], ingests: [] };
      return {
        invocations: db.prepare<[], InvocationRow>("select * from invocations").all(),
        effects: db.prepare<[], EffectRow>("select * from effects").all(),
        ingests: db
          .prepare<[], Omit<IngestRow, "duplicate"> & { duplicate: number }>("select * from ingests")
          .all()
          .map((row) => ({ ...row, duplicate: row.duplicate === 1 })),
      };
    } finally {
      db.close();
    }
  };
}

describe("kilo.runs on SQLite: a worker killed with SIGKILL at random moments, many times", () => {
  it("loses no run, keeps each conversation's order, records every step once, repeats only interrupted side effects (same key)", async () => {
    const filename = join(directory, "kilo.db");
    const ledger = join(directory, "ledger.db");
    const storage = sqliteStorage({ filename });
    const bot = await storedBot(storage, "bot_random_kill");
    // Created before the first worker, which may be killed while creating it otherwise.
    new Database(ledger).close();
    const options = {
      label: "sqlite",
      seed: seedFromEnv(),
      kills: killsFromEnv(16),
      keys: 5,
      messages: 10,
      worker: worker.file,
      env: {
        KILO_RK_STORAGE: "sqlite",
        KILO_RK_DB: filename,
        KILO_RK_LEDGER: ledger,
        KILO_RK_LATENCY_MS: "10",
      },
      storage,
      botId: bot.id,
      readLedger: readLedger(ledger),
    };
    console.log(
      `random-kill sqlite: seed=${options.seed} (replay with KILO_RANDOM_KILL_SEED=${options.seed})`,
    );
    try {
      const result = await killRepeatedly(options);
      const rows = await options.readLedger();
      report(options, result, rows);
      await verify(options, result, rows);
    } finally {
      await storage.close();
    }
  }, 300_000);
});
