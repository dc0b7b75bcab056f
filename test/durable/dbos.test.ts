import { afterAll, describe, expect, it } from "vitest";
import { dbosExecutor } from "../../adapters/durable/dbos/index.js";
import { createKilo, KiloError } from "../../src/index.js";
import { mockProvider } from "../../src/testing/index.js";
import { event, setupRuns } from "../runs/helpers.js";
import { runBehaviourSuite } from "../runs/run-behaviour.js";
import { dbosTestDatabases } from "./helpers.js";

// kilo's runs on the DBOS executor, on the real Postgres (127.0.0.1:5432; never skipped): kilo's
// storage in a schema per test, DBOS's system database one per file. Both are dropped afterwards.
const databases = dbosTestDatabases("runs");
const { systemDatabaseUrl } = databases;
afterAll(() => databases.cleanup(), 30_000);

const executor = () => dbosExecutor({ systemDatabaseUrl, applicationVersion: "test" });

// The behaviour every executor shares (test/runs/run-behaviour.ts). A DBOS hand-off goes through
// the system database and a queue poll (20 ms), so the timing tests stretch by `scale`.
runBehaviourSuite({
  label: "DBOS on Postgres",
  storage: () => databases.storage(),
  reopenable() {
    const schema = databases.schema();
    return { first: databases.storage(schema), reopen: () => databases.storage(schema) };
  },
  options: (options) => ({ ...options, runs: { ...options.runs, executor: executor() } }),
  startFirst: true,
  scale: 5,
  ordering: [{ label: "Postgres", storage: () => databases.storage(), keys: 50, perKey: 5 }],
});

async function codeOf(run: () => unknown): Promise<string> {
  try {
    await run();
    return "resolved";
  } catch (error) {
    return KiloError.is(error) ? `${error.code}: ${error.message}` : String(error);
  }
}

describe("dbosExecutor: options and the process-wide DBOS", () => {
  it("refuses missing or malformed options with CONFIGURATION_INVALID naming the option", async () => {
    const make = (options: Record<string, unknown>) => () =>
      dbosExecutor({ systemDatabaseUrl, applicationVersion: "test", ...options } as never);
    expect(await codeOf(make({ systemDatabaseUrl: "" }))).toMatch(
      /^CONFIGURATION_INVALID: .*systemDatabaseUrl/,
    );
    expect(await codeOf(make({ applicationVersion: undefined }))).toMatch(
      /^CONFIGURATION_INVALID: .*applicationVersion is required/,
    );
    expect(await codeOf(make({ pollingIntervalMs: 0 }))).toMatch(
      /pollingIntervalMs must be an integer from 1/,
    );
    expect(await codeOf(make({ queueName: "has space" }))).toMatch(/queueName must be/);
    expect(await codeOf(make({ shutdownTimeoutMs: -1 }))).toMatch(/shutdownTimeoutMs must be an integer/);
  });

  it("one executor per process: a second is refused until the kilo using the first is closed", async () => {
    const first = executor();
    expect(await codeOf(executor)).toMatch(
      /^CONFIGURATION_INVALID: dbosExecutor: a DBOS executor already exists in this process/,
    );
    const { kilo, bot } = await setupRuns({
      storage: databases.storage(),
      kilo: { runs: { executor: first } },
    });
    const { run_id } = await kilo.runs.ingest(event("chat:1", "hi"), { botId: bot.id });
    expect((await kilo.runs.wait(run_id)).status).toBe("succeeded");
    expect(first.executorId).toBe("local");
    expect(await codeOf(executor)).toMatch(/already exists/);
    await kilo.close();
    // Closed: its runs API refuses, and a new executor may be created (and launches DBOS again).
    expect(await codeOf(() => kilo.runs.start())).toMatch(/^CLOSED/);
    const second = await setupRuns({
      storage: databases.storage(),
      kilo: { runs: { executor: executor() } },
    });
    const again = await second.kilo.runs.ingest(event("chat:1", "hi"), { botId: second.bot.id });
    expect((await second.kilo.runs.wait(again.run_id)).status).toBe("succeeded");
    await second.kilo.close();
  });

  it("an executor never started is released by kilo.close(), and cannot serve two kilos", async () => {
    const unused = createKilo({
      storage: databases.storage(),
      providers: [mockProvider({ replies: [] })],
      runs: { executor: executor() },
    });
    await unused.close();
    const shared = executor();
    const a = await setupRuns({ storage: databases.storage(), kilo: { runs: { executor: shared } } });
    const b = createKilo({
      storage: databases.storage(),
      providers: [mockProvider({ replies: [] })],
      runs: { executor: shared },
    });
    await a.kilo.runs.start();
    expect(await codeOf(() => b.runs.start())).toMatch(/serves another kilo/);
    await b.close();
    await a.kilo.close();
  });

  it("ingest-only (concurrency 0): runs wait in the DBOS queue for an executing process", async () => {
    const schema = databases.schema();
    const ingester = await setupRuns({
      storage: databases.storage(schema),
      kilo: { runs: { concurrency: 0, executor: executor() } },
    });
    await ingester.kilo.runs.start();
    const { run_id } = await ingester.kilo.runs.ingest(event("chat:1", "hi"), { botId: ingester.bot.id });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await ingester.kilo.runs.get(run_id)).status).toBe("queued");
    expect(ingester.spans.size).toBe(0);
    await ingester.kilo.close();
    // A process that executes picks it up from the queue (it is in DBOS already: nothing resubmitted).
    const worker = await setupRuns({
      storage: databases.storage(schema),
      kilo: { runs: { executor: executor(), recover: false } },
    });
    await worker.kilo.runs.start();
    expect((await worker.kilo.runs.wait(run_id)).status).toBe("succeeded");
    expect(worker.spans.has(run_id)).toBe(true);
    await worker.kilo.close();
  });
});

describe("dbosExecutor: runs are DBOS workflows, steps are DBOS steps", () => {
  it("a run's workflow id is its run id, on the queue partitioned by conversation, at the run's seq; each recorded step is a DBOS step", async () => {
    const storage = databases.storage();
    const { kilo, bot } = await setupRuns({
      storage,
      kilo: {
        runs: { executor: executor() },
        workflows: {
          "order.placed": async (_e, ctx) => {
            const charge = await ctx.step("charge", () => ({ chargeId: "ch_1" }));
            const turn = await ctx.turn({ text: `paid ${charge.chargeId}` });
            return { charge, reply: turn.reply };
          },
        },
      },
    });
    const first = await kilo.runs.ingest(
      { ...event("shop:1", "one"), type: "order.placed" },
      { botId: bot.id },
    );
    const second = await kilo.runs.ingest(
      { ...event("shop:1", "two"), type: "order.placed" },
      { botId: bot.id },
    );
    for (const { run_id } of [first, second]) expect((await kilo.runs.wait(run_id)).status).toBe("succeeded");
    const workflows = await databases.system<{
      workflow_uuid: string;
      name: string;
      status: string;
      queue_name: string;
      queue_partition_key: string;
      priority: number;
      application_version: string;
    }>(
      `select workflow_uuid, name, status, queue_name, queue_partition_key, priority, application_version
         from dbos.workflow_status where workflow_uuid = any($1) order by priority`,
      [[first.run_id, second.run_id]],
    );
    const lane = JSON.stringify([bot.id, "shop:1"]);
    expect(workflows).toEqual([
      {
        workflow_uuid: first.run_id,
        name: "kilo.run",
        status: "SUCCESS",
        queue_name: "kilo_runs",
        queue_partition_key: lane,
        priority: 1,
        application_version: "test",
      },
      expect.objectContaining({ workflow_uuid: second.run_id, queue_partition_key: lane, priority: 2 }),
    ]);
    const steps = await databases.system<{ function_id: number; function_name: string }>(
      `select function_id, function_name from dbos.operation_outputs where workflow_uuid = $1 order by function_id`,
      [first.run_id],
    );
    expect(steps.map((step) => step.function_name)).toEqual(["kilo.step:charge", "kilo.turn:turn"]);
    // kilo's own record of the steps agrees.
    const recorded = await storage.runSteps!.listByRun(bot.id, first.run_id);
    expect(recorded.map((step) => `${step.index}:${step.name}:${step.status}`)).toEqual([
      "0:charge:succeeded",
      "1:turn:succeeded",
    ]);
    await kilo.close();
  });
});
