import { describe, expect, it } from "vitest";
import { memoryStorage } from "../../adapters/storage/memory/index.js";
import { createKilo, type Run, type Storage } from "../../src/index.js";
import { mockProvider } from "../../src/testing/index.js";
import { captureLogger, event, type LogLine, queuedRun, setupRuns, USER } from "./helpers.js";

// "Every log line of a run carries run_id, the workflow name and conversation_key": the run
// service's own lines, the lines of the components a run calls (orchestrator, gateway), a host
// workflow's ctx.log and ctx.logger, on both executors, after a restart, and for a run ingested
// from inside another run. Lines about the process rather than a run are named here.
const PROCESS_LINES = new Set([
  "resuming unfinished runs",
  "claiming runs from the shared queue",
  "shared queue: ingesting only, other processes execute",
]);

interface Expected {
  id: string;
  workflow: string;
  key: string;
}

/** Every line is a process line (without run fields) or names one of `runs` with that run's workflow and key. */
function expectRunFields(lines: LogLine[], runs: Expected[]): void {
  const byId = new Map(runs.map((run) => [run.id, run]));
  for (const line of lines) {
    const shown = `'${line.message}' ${JSON.stringify(line.fields)}`;
    if (PROCESS_LINES.has(line.message ?? "")) {
      expect(line.fields.run_id, shown).toBeUndefined();
      continue;
    }
    const run = byId.get(line.fields.run_id as string);
    expect(run, `a line of no run: ${shown}`).toBeDefined();
    expect(line.fields, shown).toMatchObject({ workflow: run!.workflow, conversation_key: run!.key });
  }
}

/** The messages of the lines naming the run, in order. */
const messagesOf = (lines: LogLine[], runId: string) =>
  lines.filter((line) => line.fields.run_id === runId).map((line) => line.message);

const count = (messages: Array<string | undefined>, message: string) =>
  messages.filter((candidate) => candidate === message).length;

/** A memory storage that declares itself shared: kilo then uses the shared queue (claims, leases). */
function sharedMemory(): Storage {
  const storage = memoryStorage();
  return { ...storage, capabilities: { ...storage.capabilities, crossProcess: true } };
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("kilo.runs: every log line of a run carries run_id, workflow and conversation_key", () => {
  it("the built-in message workflow: the run service's lines, the turn's, and a failed run's", async () => {
    const lines: LogLine[] = [];
    const { kilo, bot } = await setupRuns({ kilo: { logger: captureLogger(lines) } });
    lines.length = 0;
    const ok = await kilo.runs.ingest(event("chat:9", "hello"), { botId: bot.id });
    const bad = await kilo.runs.ingest(event("chat:9", "please FAIL"), { botId: bot.id });
    await kilo.runs.wait(ok.run_id);
    expect((await kilo.runs.wait(bad.run_id)).status).toBe("failed");
    await kilo.close();

    expectRunFields(lines, [
      { id: ok.run_id, workflow: "message", key: "chat:9" },
      { id: bad.run_id, workflow: "message", key: "chat:9" },
    ]);
    const good = messagesOf(lines, ok.run_id);
    for (const message of ["run queued", "run started", "turn completed", "run completed"]) {
      expect(count(good, message), message).toBe(1);
    }
    const failed = messagesOf(lines, bad.run_id);
    for (const message of ["run queued", "run started", "run failed", "run completed"]) {
      expect(count(failed, message), message).toBe(1);
    }
  });

  it("a host workflow: ctx.log, ctx.logger at every level and its children, its turn, and the run service's lines", async () => {
    const lines: LogLine[] = [];
    const { kilo, bot } = await setupRuns({
      kilo: {
        logger: captureLogger(lines),
        workflows: {
          "order.placed": async (e, ctx) => {
            const charge = await ctx.step("charge", () => ({ chargeId: "ch_1" }));
            ctx.log("charged", { chargeId: charge.chargeId });
            ctx.logger.debug({}, "debug line");
            ctx.logger.warn({ order: e.text }, "warn line");
            ctx.logger.child({ part: "shipping" }).error({}, "child line");
            await ctx.turn({ text: "tell the user" });
            if (e.text === "explode") throw new Error("boom");
            return { ok: true };
          },
        },
      },
    });
    lines.length = 0;
    const ok = await kilo.runs.ingest(
      { ...event("shop:1", "order 7"), type: "order.placed" },
      { botId: bot.id },
    );
    const bad = await kilo.runs.ingest(
      { ...event("shop:2", "explode"), type: "order.placed" },
      { botId: bot.id },
    );
    await kilo.runs.wait(ok.run_id);
    expect((await kilo.runs.wait(bad.run_id)).status).toBe("failed");
    await kilo.close();

    expectRunFields(lines, [
      { id: ok.run_id, workflow: "order.placed", key: "shop:1" },
      { id: bad.run_id, workflow: "order.placed", key: "shop:2" },
    ]);
    const good = messagesOf(lines, ok.run_id);
    for (const message of [
      "run queued",
      "run started",
      "charged",
      "debug line",
      "warn line",
      "child line",
      "turn completed",
      "run completed",
    ]) {
      expect(count(good, message), message).toBe(1);
    }
    expect(lines.find((line) => line.message === "child line")?.fields.part).toBe("shipping");
    expect(count(messagesOf(lines, bad.run_id), "run failed")).toBe(1);
  });

  for (const executor of ["in-process queue", "shared queue"] as const) {
    it(`${executor}: a run ingested from inside another run's workflow logs with its own fields, not its parent's`, async () => {
      const lines: LogLine[] = [];
      let child = "";
      const { kilo, bot } = await setupRuns({
        ...(executor === "shared queue" ? { storage: sharedMemory() } : {}),
        kilo: {
          logger: captureLogger(lines),
          ...(executor === "shared queue" ? { runs: { pollIntervalMs: 5 } } : {}),
          workflows: {
            "order.placed": async (_e, ctx) => {
              const notify = await ctx.step("notify", () =>
                kilo.runs.ingest(event("notify:1", "your order is paid"), { botId: ctx.botId }),
              );
              child = notify.run_id;
              return {};
            },
          },
        },
      });
      lines.length = 0;
      const parent = await kilo.runs.ingest(
        { ...event("shop:1", "order 7"), type: "order.placed" },
        { botId: bot.id },
      );
      await kilo.runs.wait(parent.run_id);
      await until(() => child !== "", "the child run");
      expect((await kilo.runs.wait(child)).status).toBe("succeeded");
      await kilo.close();

      expectRunFields(lines, [
        { id: parent.run_id, workflow: "order.placed", key: "shop:1" },
        { id: child, workflow: "message", key: "notify:1" },
      ]);
      for (const runId of [parent.run_id, child]) {
        const messages = messagesOf(lines, runId);
        for (const message of ["run queued", "run started", "run completed"]) {
          expect(count(messages, message), `${runId === child ? "child" : "parent"}: ${message}`).toBe(1);
        }
      }
      expect(count(messagesOf(lines, child), "turn completed")).toBe(1);
    });
  }

  it("a run resumed after a restart: the replay's lines carry the run", async () => {
    const storage = memoryStorage();
    // What a previous process left: the user, the bot, a run `running` with its first step recorded.
    await storage.users.upsert({ id: USER, name: null, metadata: {}, createdAt: new Date() });
    const bot = await storage.bots.create({
      id: "bot_resume",
      userId: USER,
      name: "Runner",
      soul: null,
      personality: null,
      context: null,
      metadata: {},
      createdAt: new Date(),
      updatedAt: new Date(),
    });
    const created = await storage.runs.create({
      ...queuedRun("run_resume", bot.id, "shop:1", "order 7"),
      eventType: "order.placed",
      workflow: "order.placed",
    });
    const run: Run = { ...created, status: "running", startedAt: new Date() };
    await storage.runs.update(run);
    await storage.runSteps!.save({
      runId: run.id,
      botId: bot.id,
      index: 0,
      name: "charge",
      kind: "step",
      status: "succeeded",
      output: { chargeId: "ch_1" },
      error: null,
      startedAt: new Date(),
      finishedAt: new Date(),
    });

    const lines: LogLine[] = [];
    const kilo = createKilo({
      storage,
      providers: [mockProvider({ replies: [] })],
      logger: captureLogger(lines),
      workflows: {
        "order.placed": async (_e, ctx) => {
          const charge = await ctx.step("charge", () => ({ chargeId: "never" }));
          await ctx.step("ship", () => ({ shipped: true }));
          ctx.log("resumed order done");
          return charge;
        },
      },
    });
    expect((await kilo.runs.wait(run.id)).output).toEqual({ chargeId: "ch_1" });
    await kilo.close();

    expect(lines.map((line) => line.message)).toContain("resuming unfinished runs");
    expectRunFields(lines, [{ id: run.id, workflow: "order.placed", key: "shop:1" }]);
    const messages = messagesOf(lines, run.id);
    for (const message of [
      "run started",
      "replaying recorded steps",
      "step replayed",
      "resumed order done",
      "run completed",
    ]) {
      expect(count(messages, message), message).toBe(1);
    }
    expect(lines.find((line) => line.message === "run started")?.fields.resumed).toBe(true);
  });

  it("the shared queue: a claimed run's lines, its lost lease and its discarded outcome", async () => {
    const storage = sharedMemory();
    const lines: LogLine[] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let entered = false;
    const { kilo, bot } = await setupRuns({
      storage,
      kilo: {
        logger: captureLogger(lines),
        runs: { leaseMs: 200, heartbeatIntervalMs: 20, pollIntervalMs: 5 },
        workflows: {
          "order.placed": async (_e, ctx) => {
            await ctx.step("wait", async () => {
              entered = true;
              await gate;
            });
            return {};
          },
        },
      },
    });
    lines.length = 0;
    const { run_id } = await kilo.runs.ingest(
      { ...event("shop:1", "order 7"), type: "order.placed" },
      { botId: bot.id },
    );
    await until(() => entered, "the step");
    // Another process takes the run over, as if this one had stalled past its lease.
    const later = Date.now() + 3_600_000;
    const taken = await storage.runs.claim!({
      owner: "another-process",
      now: new Date(later),
      leaseExpiresAt: new Date(later + 3_600_000),
      limit: 10,
    });
    expect(taken.map((claim) => claim.run.id)).toEqual([run_id]);
    await until(() => lines.some((line) => line.message?.startsWith("run lease lost")), "the lost lease");
    release();
    await until(() => lines.some((line) => line.message?.startsWith("run outcome discarded")), "the discard");
    await kilo.close();

    expectRunFields(lines, [{ id: run_id, workflow: "order.placed", key: "shop:1" }]);
    const messages = messagesOf(lines, run_id);
    for (const message of [
      "run queued",
      "run started",
      "run lease lost: another process may be running it",
      "run outcome discarded: its lease was lost",
    ]) {
      expect(count(messages, message), message).toBe(1);
    }
  });

  it("the shared queue: a heartbeat between a run's stored outcome and its end reports no lost lease", async () => {
    const inner = sharedMemory();
    let afterCommit: (() => Promise<void>) | null = null;
    let beat: () => void = () => undefined;
    const storage: Storage = {
      ...inner,
      runs: {
        ...inner.runs,
        extendLeases: async (owner, ids, expiresAt) => {
          const held = await inner.runs.extendLeases!(owner, ids, expiresAt);
          beat();
          return held;
        },
      },
      // The run's outcome is stored (its lease cleared); then exactly one heartbeat runs
      // before the executor moves on: what a heartbeat racing the end of a run sees.
      commitRunTurn: async (turn) => {
        const committed = await inner.commitRunTurn!(turn);
        await afterCommit?.();
        return committed;
      },
    };
    afterCommit = () =>
      new Promise<void>((resolve) => {
        beat = () => {
          beat = () => undefined;
          resolve();
        };
      });
    const lines: LogLine[] = [];
    const { kilo, bot } = await setupRuns({
      storage,
      kilo: {
        logger: captureLogger(lines),
        runs: { leaseMs: 200, heartbeatIntervalMs: 20, pollIntervalMs: 5 },
      },
    });
    const { run_id } = await kilo.runs.ingest(event("chat:1", "hello"), { botId: bot.id });
    expect((await kilo.runs.wait(run_id)).status).toBe("succeeded");
    await kilo.close();
    expect(messagesOf(lines, run_id)).not.toContain("run lease lost: another process may be running it");
    expect(count(messagesOf(lines, run_id), "run completed")).toBe(1);
  });

  it("a run the executor cannot read ('run lost') is still named with its workflow and conversation key", async () => {
    const inner = memoryStorage();
    let failures = 0;
    const storage: Storage = {
      ...inner,
      runs: {
        ...inner.runs,
        get: async (runId) => {
          // The executor's read of the run fails once (storage down for a moment).
          if (failures === 0) {
            failures += 1;
            throw new Error("connection reset");
          }
          return inner.runs.get(runId);
        },
      },
    };
    const lines: LogLine[] = [];
    const { kilo, bot } = await setupRuns({ storage, kilo: { logger: captureLogger(lines) } });
    lines.length = 0;
    // A run a previous process left queued: resuming it reads it first (a run this process
    // has just stored is executed as it has it, without that read).
    const run_id = "run_left_queued";
    await inner.runs.create(queuedRun(run_id, bot.id, "chat:3", "hello"));
    await kilo.runs.start();
    await until(() => lines.some((line) => line.message === "run lost"), "the lost run");
    await kilo.close();

    expectRunFields(lines, [{ id: run_id, workflow: "message", key: "chat:3" }]);
    expect(messagesOf(lines, run_id)).toEqual(["run lost"]);
  });
});
