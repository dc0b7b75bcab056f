import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { memoryStorage } from "../../adapters/storage/memory/index.js";
import { sqliteStorage } from "../../adapters/storage/sqlite/index.js";
import { createKilo, KiloError, type Storage, type WorkflowHandler } from "../../src/index.js";
import { mockProvider } from "../../src/testing/index.js";
import { captureLogger, event, type LogLine, queuedRun, setupRuns, USER, userText } from "./helpers.js";

const directory = mkdtempSync(join(tmpdir(), "kilo-workflows-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

async function codeOf(promise: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof promise === "function" ? promise() : promise);
  } catch (error) {
    return KiloError.is(error) ? error.code : String(error);
  }
  return "resolved";
}

describe("kilo.runs workflows: naming, override, unknown", () => {
  it("a workflow registered in createKilo runs for its event type; its return value is the run's output", async () => {
    const seen: Array<{ type: string; text: string; runId: string }> = [];
    const { kilo, bot, provider } = await setupRuns({
      kilo: {
        workflows: {
          "order.placed": (e, ctx) => {
            seen.push({ type: e.type, text: e.text, runId: ctx.runId });
            return { handled: e.text };
          },
          "order.count": () => 3,
        },
      },
    });
    const { run_id } = await kilo.runs.ingest(
      { ...event("shop:1", "order 7"), type: "order.placed" },
      { botId: bot.id },
    );
    const run = await kilo.runs.wait(run_id);
    expect(run).toMatchObject({
      status: "succeeded",
      workflow: "order.placed",
      output: { handled: "order 7" },
    });
    expect(seen).toEqual([{ type: "order.placed", text: "order 7", runId: run_id }]);
    // A value that is not a plain object is wrapped.
    const count = await kilo.runs.ingest({ ...event("shop:1", "n"), type: "order.count" }, { botId: bot.id });
    expect((await kilo.runs.wait(count.run_id)).output).toEqual({ value: 3 });
    // No model call: the host workflow made no turn.
    expect(provider.requests).toHaveLength(0);
    await kilo.close();
  });

  it("the built-in message workflow runs a bot turn for message and *.message types", async () => {
    const { kilo, bot } = await setupRuns();
    for (const type of ["message", "telegram.message"]) {
      const { run_id } = await kilo.runs.ingest({ ...event(`k:${type}`, "hi"), type }, { botId: bot.id });
      expect(await kilo.runs.wait(run_id)).toMatchObject({ status: "succeeded", output: { reply: "ok" } });
    }
    await kilo.close();
  });

  it("a registered `message` workflow overrides the built-in one, also for *.message; an exact name wins over it", async () => {
    const { kilo, bot, provider } = await setupRuns();
    kilo.runs.register("message", (e) => ({ mine: e.type }));
    kilo.runs.register("cli.message", (_e, ctx) => ctx.turn());
    const message = await kilo.runs.ingest(event("a", "hi"), { botId: bot.id });
    const telegram = await kilo.runs.ingest(
      { ...event("b", "hi"), type: "telegram.message" },
      { botId: bot.id },
    );
    const cli = await kilo.runs.ingest({ ...event("c", "hi"), type: "cli.message" }, { botId: bot.id });
    expect((await kilo.runs.wait(message.run_id)).output).toEqual({ mine: "message" });
    expect((await kilo.runs.wait(telegram.run_id)).output).toEqual({ mine: "telegram.message" });
    expect((await kilo.runs.wait(cli.run_id)).output).toMatchObject({ reply: "ok" });
    expect(provider.requests.length).toBeGreaterThan(0);
    await kilo.close();
  });

  it("an event no workflow handles is refused at ingest with VALIDATION_FAILED and nothing is stored", async () => {
    const storage = memoryStorage();
    const { kilo, bot } = await setupRuns({ storage });
    let caught: unknown;
    await kilo.runs
      .ingest({ ...event("x", "hi"), type: "order.placed" }, { botId: bot.id })
      .catch((error) => {
        caught = error;
      });
    expect(KiloError.is(caught, "VALIDATION_FAILED")).toBe(true);
    expect((caught as Error).message).toMatch(/no workflow handles type 'order\.placed'/);
    expect(await storage.runs.listByConversation(bot.id, "x", { limit: 10 })).toEqual([]);
    await kilo.close();
  });

  it("register refuses a second workflow of one name (CONFLICT) and invalid names or handlers (VALIDATION_FAILED)", async () => {
    const { kilo } = await setupRuns({ kilo: { workflows: { "a.b": () => ({}) } } });
    expect(await codeOf(() => kilo.runs.register("a.b", () => ({})))).toBe("CONFLICT");
    expect(await codeOf(() => kilo.runs.register("has space", () => ({})))).toBe("VALIDATION_FAILED");
    expect(await codeOf(() => kilo.runs.register("ok", "nope" as unknown as WorkflowHandler))).toBe(
      "VALIDATION_FAILED",
    );
    expect(() => setupRunsSync({ "bad name": () => ({}) })).toThrow(/Invalid workflow name/);
    await kilo.close();
  });

  it("a run whose workflow this process does not have fails with NOT_FOUND naming it", async () => {
    const storage = memoryStorage();
    const first = await setupRuns({ storage, kilo: { workflows: { "order.placed": () => ({}) } } });
    await first.kilo.runs.start();
    await storage.runs.create({
      ...queuedRun("run_ghost", first.bot.id, "g", "hi"),
      eventType: "order.placed",
      workflow: "order.placed",
    });
    // Another process (no such workflow) picks the run up after a restart.
    const second = createKilo({ storage, providers: [mockProvider({ replies: [] })] });
    const run = await second.runs.wait("run_ghost");
    expect(run.status).toBe("failed");
    expect(run.error).toEqual({
      code: "NOT_FOUND",
      message: expect.stringMatching(/No workflow 'order\.placed' is registered in this process/),
    });
    await second.close();
  });
});

/** createKilo with workflows and nothing else, to check that bad ones throw at once. */
function setupRunsSync(workflows: Record<string, WorkflowHandler>) {
  return createKilo({ storage: memoryStorage(), providers: [mockProvider({ replies: [] })], workflows });
}

describe("kilo.runs workflows: recorded steps", () => {
  it("records turn, ask and step in order with their outputs; steps get runId:index keys; logs carry the run", async () => {
    const lines: LogLine[] = [];
    const storage = memoryStorage();
    const keys: string[] = [];
    const { kilo, bot } = await setupRuns({
      storage,
      kilo: {
        logger: captureLogger(lines),
        workflows: {
          "order.placed": async (e, ctx) => {
            const charge = await ctx.step("charge", ({ idempotencyKey }) => {
              keys.push(idempotencyKey);
              return { chargeId: "ch_1", amount: 5 };
            });
            const turn = await ctx.turn({ text: `paid ${charge.chargeId}` });
            const helper = await ctx.ask(ctx.botId, "summarize");
            const nothing = await ctx.step("notify", ({ idempotencyKey }) => {
              keys.push(idempotencyKey);
            });
            ctx.log("order done", { order: e.text });
            return { charge, reply: turn.reply, helper: helper.reply, nothing };
          },
        },
      },
    });
    const { run_id } = await kilo.runs.ingest(
      { ...event("shop:1", "order 7"), type: "order.placed" },
      { botId: bot.id },
    );
    const run = await kilo.runs.wait(run_id);
    expect(run.output).toEqual({
      charge: { chargeId: "ch_1", amount: 5 },
      reply: "ok",
      helper: "ok",
      nothing: null,
    });
    expect(keys).toEqual([`${run_id}:0`, `${run_id}:3`]);
    const steps = await storage.runSteps!.listByRun(bot.id, run_id);
    expect(steps.map(({ index, name, kind, status }) => ({ index, name, kind, status }))).toEqual([
      { index: 0, name: "charge", kind: "step", status: "succeeded" },
      { index: 1, name: "turn", kind: "turn", status: "succeeded" },
      { index: 2, name: `ask:${bot.id}`, kind: "ask", status: "succeeded" },
      { index: 3, name: "notify", kind: "step", status: "succeeded" },
    ]);
    expect(steps[0]!.output).toEqual({ chargeId: "ch_1", amount: 5 });
    expect(steps[1]!.output).toMatchObject({ reply: "ok" });
    expect(steps.every((step) => step.finishedAt !== null && step.error === null)).toBe(true);
    // The turn continued the run's conversation; the ask used a conversation of its own.
    expect((steps[1]!.output as { conversationId: string }).conversationId).toBe(run.conversationId);
    expect((steps[2]!.output as { conversationId: string }).conversationId).not.toBe(run.conversationId);
    const logged = lines.find((line) => line.message === "order done");
    expect(logged?.fields).toMatchObject({
      run_id,
      workflow: "order.placed",
      conversation_key: "shop:1",
      order: "order 7",
    });
    await kilo.close();
  });

  it("a throwing step is recorded failed and fails the run with HOST_CALLBACK_FAILED, also sent to the error event", async () => {
    const storage = memoryStorage();
    const { kilo, bot } = await setupRuns({
      storage,
      kilo: {
        workflows: {
          flaky: async (_e, ctx) => {
            await ctx.step("boom", () => {
              throw new Error("card declined");
            });
          },
        },
      },
    });
    const errors: string[] = [];
    kilo.events.on("error", (e) => errors.push(`${e.error.code} ${String(e.context.workflow)}`));
    const { run_id } = await kilo.runs.ingest({ ...event("f", "x"), type: "flaky" }, { botId: bot.id });
    const run = await kilo.runs.wait(run_id);
    expect(run.status).toBe("failed");
    expect(run.error?.code).toBe("HOST_CALLBACK_FAILED");
    expect(run.error?.message).toMatch(/Workflow 'flaky' step 'boom' failed: card declined/);
    expect(errors).toEqual(["HOST_CALLBACK_FAILED flaky"]);
    const [step] = await storage.runSteps!.listByRun(bot.id, run_id);
    expect(step).toMatchObject({ name: "boom", status: "failed", error: { code: "HOST_CALLBACK_FAILED" } });
    await kilo.close();
  });
});

/** A run left `running` by a dead process, with the steps it recorded, on `storage`. */
async function crashedRun(storage: Storage, botId: string, steps: Array<{ name: string; output: unknown }>) {
  const created = await storage.runs.create({
    ...queuedRun("run_crashed", botId, "shop:9", "order 9"),
    eventType: "order.placed",
    workflow: "order.placed",
  });
  await storage.runs.update({ ...created, status: "running", startedAt: new Date() });
  for (const [index, step] of steps.entries()) {
    await storage.runSteps!.save({
      runId: created.id,
      botId,
      index,
      name: step.name,
      kind: "step",
      status: "succeeded",
      output: step.output,
      error: null,
      startedAt: new Date(),
      finishedAt: new Date(),
    });
  }
}

describe("kilo.runs workflows: re-execution after a restart", () => {
  it("a run interrupted inside step 2 resumes without making step 1 again; step 2 keeps its idempotency key", async () => {
    const storage = memoryStorage();
    const made: string[] = [];
    let hang = true;
    const workflows: Record<string, WorkflowHandler> = {
      "order.placed": async (_e, ctx) => {
        const charge = await ctx.step("charge", ({ idempotencyKey }) => {
          made.push(`charge ${idempotencyKey}`);
          return { chargeId: `ch_${made.length}` };
        });
        const ship = await ctx.step("ship", async ({ idempotencyKey }) => {
          made.push(`ship ${idempotencyKey}`);
          // The first process never gets past this: it "dies" here.
          if (hang) await new Promise(() => undefined);
          return { shipped: charge.chargeId };
        });
        return { charge, ship };
      },
    };
    const first = await setupRuns({ storage, kilo: { workflows } });
    const { run_id } = await first.kilo.runs.ingest(
      { ...event("shop:1", "order"), type: "order.placed" },
      { botId: first.bot.id },
    );
    while (made.length < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    expect((await storage.runs.get(run_id))?.status).toBe("running");
    const midway = await storage.runSteps!.listByRun(first.bot.id, run_id);
    expect(midway.map((step) => [step.name, step.status])).toEqual([
      ["charge", "succeeded"],
      ["ship", "running"],
    ]);

    // A new process on the same store resumes the run (the first one is abandoned, as if killed).
    hang = false;
    const second = createKilo({ storage, providers: [mockProvider({ replies: [] })], workflows });
    const run = await second.runs.wait(run_id);
    expect(run.status).toBe("succeeded");
    expect(run.output).toEqual({ charge: { chargeId: "ch_1" }, ship: { shipped: "ch_1" } });
    expect(made).toEqual([`charge ${run_id}:0`, `ship ${run_id}:1`, `ship ${run_id}:1`]);
    const steps = await storage.runSteps!.listByRun(first.bot.id, run_id);
    expect(steps.map((step) => [step.name, step.status])).toEqual([
      ["charge", "succeeded"],
      ["ship", "succeeded"],
    ]);
    await second.close();
  });

  it("a workflow that makes a different step at a recorded index fails the run: not deterministic", async () => {
    const filename = join(directory, "determinism.db");
    const storage = sqliteStorage({ filename });
    const setup = await setupRuns({
      storage,
      kilo: { runs: { recover: false }, workflows: { "order.placed": () => ({}) } },
    });
    await crashedRun(storage, setup.bot.id, [{ name: "charge", output: { chargeId: "ch_1" } }]);
    await setup.kilo.close();
    const made: string[] = [];
    const changed = createKilo({
      storage: sqliteStorage({ filename }),
      providers: [mockProvider({ replies: [] })],
      workflows: {
        "order.placed": async (_e, ctx) => {
          await ctx.step("refund", () => made.push("refund"));
        },
      },
    });
    const run = await changed.runs.wait("run_crashed");
    expect(run.status).toBe("failed");
    expect(run.error?.code).toBe("CONFLICT");
    expect(run.error?.message).toMatch(
      /Workflow 'order\.placed' is not deterministic: step 0 .*'charge'.*'refund'/,
    );
    expect(made).toEqual([]);
    await changed.close();
  });

  it("a turn recorded before the crash is replayed, not asked of the model again", async () => {
    const storage = memoryStorage();
    const setup = await setupRuns({ storage, kilo: { runs: { recover: false } } });
    const created = await storage.runs.create(queuedRun("run_turned", setup.bot.id, "t", "hello"));
    await storage.runs.update({ ...created, status: "running", startedAt: new Date() });
    await storage.runSteps!.save({
      runId: created.id,
      botId: setup.bot.id,
      index: 0,
      name: "turn",
      kind: "turn",
      status: "succeeded",
      output: { reply: "recorded reply" },
      error: null,
      startedAt: new Date(),
      finishedAt: new Date(),
    });
    const provider = mockProvider({ respond: (request) => `fresh ${userText(request)}` });
    const resumed = createKilo({ storage, providers: [provider] });
    const run = await resumed.runs.wait("run_turned");
    expect(run).toMatchObject({ status: "succeeded", output: { reply: "recorded reply" } });
    expect(provider.requests).toHaveLength(0);
    expect(USER).toBe(created.userId);
    await resumed.close();
  });
});
