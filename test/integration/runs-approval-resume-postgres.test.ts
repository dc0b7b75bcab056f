import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { postgresStorage } from "../../adapters/storage/postgres/index.js";
import { createKilo, jsonLogger, type Kilo, type WorkflowHandler } from "../../src/index.js";
import { mockProvider, scriptByPurpose } from "../../src/testing/index.js";
import { botWithRiskyShop, quietMatcher } from "../fixtures.js";
import { event, USER } from "../runs/helpers.js";

// Two kilos sharing one Postgres schema, as two processes would: the runs table is their queue.
// Never skipped: fails loudly when Postgres does not answer on 127.0.0.1:5432.
const DATABASE_URL = process.env.KILO_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const schema = `kilo_resume_${randomUUID().slice(0, 8)}`;
const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
const kilos: Kilo[] = [];

afterAll(async () => {
  for (const kilo of kilos) await kilo.close();
  await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await admin.end();
});

/** Every warning or error either kilo's runs logged. */
const problems: string[] = [];

function processOn(workflows: Record<string, WorkflowHandler>, chat: string[]): Kilo {
  const kilo = createKilo({
    logger: jsonLogger({
      level: "warn",
      write: (line) => {
        if ((JSON.parse(line) as { component?: unknown }).component === "runs") problems.push(line);
      },
    }),
    storage: postgresStorage({ connectionString: DATABASE_URL, schema, poolSize: 4 }),
    providers: [mockProvider({ respond: scriptByPurpose({ chat, classify: [] }) })],
    matcher: quietMatcher,
    workflows,
    runs: { pollIntervalMs: 20 },
  });
  kilos.push(kilo);
  return kilo;
}

describe("a workflow stopped at a ctx.tool approval, on the shared Postgres queue", () => {
  it("is requeued by a decision made in another process and resumes in whichever process claims it, once, after its key's later runs", async () => {
    const charged: string[] = [];
    const workflows: Record<string, WorkflowHandler> = {
      "refund.requested": async (_event, ctx) => {
        const charge = await ctx.step("charge", () => {
          charged.push(ctx.runId);
          return charged.length;
        });
        const refund = await ctx.tool("shop", "refund", { amount: 450 });
        return { charge, refund: refund.status, body: refund.body };
      },
    };
    const first = processOn(workflows, ["Hello."]);
    const second = processOn(workflows, []);
    const bot = await botWithRiskyShop(first, USER);
    await second.runs.start();

    const { run_id } = await first.runs.ingest(
      { ...event("order:1", "Refund order 1"), type: "refund.requested" },
      { botId: bot.id },
    );
    expect(await first.runs.wait(run_id)).toMatchObject({ status: "awaiting_approval", seq: 1 });
    const { run_id: hello } = await first.runs.ingest(event("order:1", "hello"), { botId: bot.id });
    expect(await first.runs.wait(hello)).toMatchObject({ status: "succeeded", seq: 2 });

    const [approval] = await second.approvals.list(bot.id, { status: "pending" });
    expect(approval).toMatchObject({ runId: run_id });
    const outcome = await second.approvals.deny(bot.id, approval!.id, "not today");
    expect(outcome).toMatchObject({ turn: null, run: { id: run_id, status: "queued", seq: 3, resumes: 1 } });

    const done = await first.runs.wait(run_id, { timeoutMs: 20_000 });
    expect(done).toMatchObject({
      status: "succeeded",
      seq: 3,
      resumes: 1,
      output: { charge: 1, refund: "denied", body: "not today" },
    });
    expect(charged).toEqual([run_id]);
    const steps = await second.runs.steps(run_id);
    expect(steps.map((step) => [step.index, step.name, step.status])).toEqual([
      [0, "charge", "succeeded"],
      [1, "tool:shop.refund", "succeeded"],
    ]);
    expect(steps[1]!.output).toEqual({
      status: "denied",
      httpStatus: null,
      body: "not today",
      approvalId: approval!.id,
    });
    // A second decision changes nothing.
    await expect(first.approvals.approve(bot.id, approval!.id)).rejects.toMatchObject({ code: "CONFLICT" });
    expect((await first.runs.get(run_id)).seq).toBe(3);
    // The runs logged nothing wrong on the way (an outcome reported discarded, a failed requeue, ...).
    expect(problems).toEqual([]);
  });
});
