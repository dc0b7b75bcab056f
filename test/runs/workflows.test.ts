import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { memoryStorage } from "../../adapters/storage/memory/index.js";
import { createKilo, KiloError, type WorkflowHandler } from "../../src/index.js";
import { mockProvider } from "../../src/testing/index.js";
import { event, queuedRun, setupRuns } from "./helpers.js";

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
});
