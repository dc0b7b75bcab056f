/**
 * A process for the workflow crash test (test/runs/workflow-crash.test.ts): a
 * kilo on a SQLite file with one workflow, `order.placed`, of two steps that
 * each append a line (`<step> <idempotency key>`) to a side-effect file.
 *
 * Configured through the environment:
 * - `KILO_WF_DB` (the SQLite file), `KILO_WF_EFFECTS` (the side-effect file),
 *   `KILO_WF_BOT` (the bot, already stored) — required;
 * - `KILO_WF_RUN`: resume mode: recover the previous process's runs and wait
 *   for this one; without it, ingest one `order.placed` event;
 * - `KILO_WF_HANG=1`: step `ship` hangs after its side effect, announced with
 *   `{"hanging":true}` on stdout (the parent then kills the process).
 *
 * Writes one JSON object per line to stdout: `{"run_id":...}` after ingesting,
 * `{"run":...}` when the run it waits for has settled.
 */
import { appendFileSync } from "node:fs";
import { sqliteStorage } from "../../adapters/storage/sqlite/index.js";
import { createKilo } from "../../src/index.js";
import { mockProvider } from "../../src/testing/index.js";

const env = process.env;
const effects = env.KILO_WF_EFFECTS!;
const say = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);

const kilo = createKilo({
  storage: sqliteStorage({ filename: env.KILO_WF_DB! }),
  providers: [mockProvider({ replies: [] })],
  workflows: {
    "order.placed": async (_event, ctx) => {
      const charge = await ctx.step("charge", ({ idempotencyKey }) => {
        appendFileSync(effects, `charge ${idempotencyKey}\n`);
        return { chargeId: `ch_${idempotencyKey}` };
      });
      const ship = await ctx.step("ship", async ({ idempotencyKey }) => {
        appendFileSync(effects, `ship ${idempotencyKey}\n`);
        if (env.KILO_WF_HANG === "1") {
          say({ hanging: true });
          await new Promise(() => undefined);
        }
        return { shipped: charge.chargeId };
      });
      return { charge, ship, pid: process.pid };
    },
  },
});

if (env.KILO_WF_RUN) {
  const run = await kilo.runs.wait(env.KILO_WF_RUN);
  say({ run });
  await kilo.close();
} else {
  const { run_id } = await kilo.runs.ingest(
    {
      schema_version: 1,
      type: "order.placed",
      conversation_key: "shop:1",
      user_key: "user_1",
      text: "order 1",
    },
    { botId: env.KILO_WF_BOT! },
  );
  say({ run_id });
}
