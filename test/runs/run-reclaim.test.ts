import { expect, it } from "vitest";
import { memoryStorage } from "../../adapters/storage/memory/index.js";
import type { Storage } from "../../src/index.js";
import { event, setupRuns } from "./helpers.js";

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

// Regression: a process that stalled past the lease of a run it was executing claimed that run
// again from the shared queue (its own claim found the lease expired) and executed it a second
// time, concurrently with the first: the run started twice and its step under way was made
// twice by one process.
it("shared queue: a process whose own run's lease expired while it stalled re-claims the lease, not a second execution", async () => {
  const inner = memoryStorage();
  const reclaimed: string[] = [];
  const storage: Storage = {
    ...inner,
    capabilities: { ...inner.capabilities, crossProcess: true },
    runs: {
      ...inner.runs,
      claim: async (request) => {
        const claims = await inner.runs.claim!(request);
        for (const claim of claims) if (claim.reclaimed) reclaimed.push(claim.run.id);
        return claims;
      },
    },
  };
  // The stall, seen through the clock: time jumps past the lease (no heartbeat came in between).
  let offset = 0;
  const clock = { now: () => new Date(Date.now() + offset) };
  const invocations: string[] = [];
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const { kilo, bot } = await setupRuns({
    storage,
    kilo: {
      clock,
      runs: { leaseMs: 60_000, heartbeatIntervalMs: 30_000, pollIntervalMs: 5 },
      workflows: {
        "order.placed": async (_e, ctx) => {
          await ctx.step("charge", async ({ idempotencyKey }) => {
            invocations.push(idempotencyKey);
            await gate;
          });
          return {};
        },
      },
    },
  });
  const started: string[] = [];
  kilo.events.on("run-started", (e) => started.push(e.runId));
  const { run_id } = await kilo.runs.ingest(
    { ...event("shop:1", "order 7"), type: "order.placed" },
    { botId: bot.id },
  );
  await until(() => invocations.length === 1, "the step");
  offset = 120_000;
  await until(() => reclaimed.includes(run_id), "the process's own claim of the run");
  // Give a second execution (the bug) time to start and reach its step.
  await new Promise((resolve) => setTimeout(resolve, 50));
  release();
  const run = await kilo.runs.wait(run_id);
  await kilo.close();

  expect(run.status).toBe("succeeded");
  expect(started).toEqual([run_id]);
  expect(invocations).toEqual([`${run_id}:0`]);
  // The execution under way held the renewed lease: its outcome was stored, not discarded.
  expect((await storage.runs.get(run_id))?.status).toBe("succeeded");
});
