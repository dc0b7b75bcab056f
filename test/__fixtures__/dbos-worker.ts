/**
 * A process for the DBOS process tests (test/durable/dbos-processes.test.ts): a kilo
 * on a Postgres schema whose runs execute on a DBOS executor, with one
 * workflow, `order.placed`, of two steps that each append a line
 * (`<step> <idempotency key>`) to a side-effect file.
 *
 * Configured through the environment:
 * - `KILO_DBOS_DATABASE_URL`, `KILO_DBOS_SCHEMA` (kilo's storage),
 *   `KILO_DBOS_SYSTEM_URL`, `KILO_DBOS_APP` (DBOS's system database and
 *   application name), `KILO_DBOS_EXECUTOR_ID`, `KILO_DBOS_EFFECTS` (the
 *   side-effect file), `KILO_DBOS_BOT` (the bot, already stored) — required;
 * - `KILO_DBOS_INGEST=<text>`: ingest one `order.placed` event with that text
 *   on conversation `shop:1`, and report its run id;
 * - `KILO_DBOS_HANG=<text>`: step `ship` of an order with that text hangs after
 *   its side effect, announced with `{"hanging":...}` (the parent then kills
 *   the process);
 * - `KILO_DBOS_TAKE_OVER=<executor id>`: after `{"ready":...}`, wait for a line
 *   `recover` on stdin, then take over that dead executor's runs and report them;
 * - `KILO_DBOS_WAIT=<run ids, comma-separated>`: wait for those runs (and the
 *   one this process ingested), report them, close kilo and exit;
 * - otherwise it keeps executing runs until SIGTERM or until its stdin closes.
 *
 * Writes one JSON object per line to stdout: `{"ready":<executor id>}` once
 * started, `{"started":<run id>}` as each run starts, `{"run_id":...}` after
 * ingesting, `{"hanging":<run id>}`, `{"recovered":[...]}`, `{"runs":[...]}`.
 * A bot turn's reply is `ok from <executor id>`.
 */
import { appendFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { dbosExecutor } from "../../adapters/durable/dbos/index.js";
import { postgresStorage } from "../../adapters/storage/postgres/index.js";
import { createKilo, jsonLogger } from "../../src/index.js";
import { mockProvider } from "../../src/testing/index.js";

const env = process.env;
const effects = env.KILO_DBOS_EFFECTS!;
const say = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);

const executor = dbosExecutor({
  systemDatabaseUrl: env.KILO_DBOS_SYSTEM_URL!,
  applicationVersion: `${env.KILO_DBOS_APP!}-1`,
  applicationName: env.KILO_DBOS_APP!,
  queueName: `${env.KILO_DBOS_APP!}_runs`,
  executorId: env.KILO_DBOS_EXECUTOR_ID!,
  pollingIntervalMs: 10,
});

const kilo = createKilo({
  storage: postgresStorage({
    connectionString: env.KILO_DBOS_DATABASE_URL!,
    schema: env.KILO_DBOS_SCHEMA!,
    poolSize: 4,
  }),
  providers: [mockProvider({ latencyMs: 5, respond: () => `ok from ${env.KILO_DBOS_EXECUTOR_ID}` })],
  prices: { "mock-1": { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 } },
  logger: jsonLogger({ level: "warn", base: { executor: env.KILO_DBOS_EXECUTOR_ID } }),
  runs: { executor },
  workflows: {
    "order.placed": async (event, ctx) => {
      const charge = await ctx.step("charge", ({ idempotencyKey }) => {
        appendFileSync(effects, `charge ${idempotencyKey}\n`);
        return { chargeId: `ch_${idempotencyKey}` };
      });
      const ship = await ctx.step("ship", async ({ idempotencyKey }) => {
        appendFileSync(effects, `ship ${idempotencyKey}\n`);
        if (env.KILO_DBOS_HANG !== undefined && event.text === env.KILO_DBOS_HANG) {
          say({ hanging: ctx.runId });
          await new Promise(() => undefined);
        }
        return { shipped: charge.chargeId };
      });
      return { charge, ship, pid: process.pid };
    },
  },
});

kilo.events.on("run-started", (event) => say({ started: event.runId }));
await kilo.runs.start();
say({ ready: executor.executorId });

let ingested: string | undefined;
if (env.KILO_DBOS_INGEST) {
  const { run_id } = await kilo.runs.ingest(
    {
      schema_version: 1,
      type: "order.placed",
      conversation_key: "shop:1",
      user_key: "user_1",
      text: env.KILO_DBOS_INGEST,
    },
    { botId: env.KILO_DBOS_BOT! },
  );
  ingested = run_id;
  say({ run_id });
}

if (env.KILO_DBOS_TAKE_OVER) {
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (line.trim() !== "recover") continue;
    say(await executor.recover([env.KILO_DBOS_TAKE_OVER]));
    break;
  }
}

if (env.KILO_DBOS_WAIT) {
  const runs = [];
  const waited = [...env.KILO_DBOS_WAIT.split(","), ...(ingested ? [ingested] : [])];
  for (const runId of waited) runs.push(await kilo.runs.wait(runId));
  say({ runs });
  await kilo.close();
  process.exit(0);
}

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await kilo.close();
  process.exit(0);
}
process.on("SIGTERM", () => void stop());
if (!env.KILO_DBOS_TAKE_OVER) {
  process.stdin.on("close", () => void stop());
  process.stdin.resume();
}
