/**
 * The behaviour of `kilo.runs` that every executor must have, as one suite:
 * test/runs/runs.test.ts and test/runs/workflows.test.ts run it on the
 * built-in executors, test/durable/dbos.test.ts on the DBOS executor (on the
 * real Postgres). Each test is the same for every executor; a target only
 * says how to make a storage and a kilo, and how much slower its hand-offs
 * are (`scale`).
 */
import { afterEach, describe, expect, it } from "vitest";
import {
  conversationIdFor,
  createKilo,
  type Kilo,
  KiloError,
  type KiloOptions,
  type Run,
  type Storage,
} from "../../src/index.js";
import { mockProvider, scriptByPurpose } from "../../src/testing/index.js";
import { botWithRiskyShop, quietMatcher } from "../fixtures.js";
import {
  captureLogger,
  event,
  type LogLine,
  overlaps,
  queuedRun,
  setupRuns,
  USER,
  userText,
} from "./helpers.js";

/** What the suite runs on. */
export interface RunBehaviourTarget {
  /** Names the executor in the tests' titles. */
  label: string;
  /** A fresh, empty storage. */
  storage(): Storage;
  /**
   * Two storages on one store, as two processes in turn would open it: what a
   * previous process leaves behind in `first` (then closed), a new process
   * finds in `reopen()`.
   */
  reopenable(name: string): { first: Storage; reopen(): Storage };
  /** The kilo options to run with: `options` plus the executor's (`runs.executor`). */
  options(options: Partial<KiloOptions>): Partial<KiloOptions>;
  /**
   * Start `kilo.runs` before a test measures ingest (an executor that
   * launches an engine on first use). Default false.
   */
  startFirst?: boolean;
  /**
   * How much slower than the in-process queue a queued run starts here (1
   * for the built-in executors; a polling engine's hand-off is slower): the
   * timing tests stretch their model latency and pauses by it.
   */
  scale?: number;
  /** The many-conversations test: how many keys × messages, on which storages. */
  ordering: Array<{ label: string; storage(): Storage; keys: number; perKey: number; timeoutMs?: number }>;
}

async function codeOf(promise: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof promise === "function" ? promise() : promise);
    return "resolved";
  } catch (error) {
    return KiloError.is(error) ? error.code : String(error);
  }
}

/** Registers the shared behaviour tests of `kilo.runs` for one executor. */
export function runBehaviourSuite(target: RunBehaviourTarget): void {
  const scale = target.scale ?? 1;
  const open: Kilo[] = [];

  /** setupRuns on the target's storage and executor; the kilo is closed after the test if the test did not. */
  async function setup(options: Parameters<typeof setupRuns>[0] = {}) {
    const made = await setupRuns({
      ...options,
      storage: options.storage ?? target.storage(),
      kilo: target.options(options.kilo ?? {}),
    });
    open.push(made.kilo);
    if (target.startFirst) await made.kilo.runs.start();
    return made;
  }

  /** createKilo on the target's executor, closed after the test if the test did not. */
  function create(options: KiloOptions): Kilo {
    const kilo = createKilo({ ...options, ...target.options(options) } as KiloOptions);
    open.push(kilo);
    return kilo;
  }

  /** Closes `kilo` (once): the executor of the next test may need this one's gone. */
  const close = async (kilo: Kilo) => {
    open.splice(open.indexOf(kilo), 1);
    await kilo.close();
  };

  afterEach(async () => {
    // A test that failed midway left its kilo open.
    for (const kilo of open.splice(0)) await kilo.close().catch(() => undefined);
  });

  describe(`kilo.runs (${target.label}): ingest, get, wait`, () => {
    it("ingest returns a run_id at once; get shows queued, then running, then succeeded with output", async () => {
      const { kilo, bot } = await setup({ latencyMs: 60 * scale });
      const before = performance.now();
      const { run_id, duplicate } = await kilo.runs.ingest(event("chat:1", "ping"), { botId: bot.id });
      expect(performance.now() - before).toBeLessThan(60 * scale);
      expect(duplicate).toBe(false);
      const queuedOrRunning = await kilo.runs.get(run_id);
      expect(["queued", "running"]).toContain(queuedOrRunning.status);
      expect(queuedOrRunning.output).toBeNull();
      await new Promise((resolve) => setTimeout(resolve, 20 * scale));
      expect((await kilo.runs.get(run_id)).status).toBe("running");
      const done = await kilo.runs.wait(run_id);
      expect(done).toMatchObject({
        id: run_id,
        botId: bot.id,
        userId: USER,
        conversationKey: "chat:1",
        conversationId: conversationIdFor(bot.id, "chat:1"),
        eventType: "message",
        workflow: "message",
        status: "succeeded",
        error: null,
        deliveryId: null,
        seq: 1,
      });
      expect(done.output?.reply).toBe("ok");
      expect(done.output?.conversationId).toBe(done.conversationId);
      expect(done.startedAt).toBeInstanceOf(Date);
      expect(done.finishedAt!.getTime()).toBeGreaterThanOrEqual(done.startedAt!.getTime());
      await close(kilo);
    });

    it("the same conversation key continues the same conversation", async () => {
      const { kilo, bot } = await setup();
      const first = await kilo.runs.ingest(event("chat:7", "one"), { botId: bot.id });
      const second = await kilo.runs.ingest(event("chat:7", "two", { bot_id: bot.id }));
      const a = await kilo.runs.wait(first.run_id);
      const b = await kilo.runs.wait(second.run_id);
      expect(b.conversationId).toBe(a.conversationId);
      expect(b.seq).toBe(2);
      const messages = await kilo.conversations.messages(bot.id, a.conversationId!);
      expect(messages.map((m) => m.content)).toEqual(["one", "ok", "two", "ok"]);
      await close(kilo);
    });

    it("wait with timeoutMs returns the run as it stands", async () => {
      const { kilo, bot } = await setup({ latencyMs: 200 * scale });
      const { run_id } = await kilo.runs.ingest(event("chat:1", "slow"), { botId: bot.id });
      const early = await kilo.runs.wait(run_id, { timeoutMs: 20 });
      expect(["queued", "running"]).toContain(early.status);
      expect((await kilo.runs.wait(run_id)).status).toBe("succeeded");
      await close(kilo);
    });

    it("get and wait of an unknown run fail with NOT_FOUND", async () => {
      const { kilo } = await setup();
      expect(await codeOf(kilo.runs.get("run_missing"))).toBe("NOT_FOUND");
      expect(await codeOf(kilo.runs.wait("run_missing"))).toBe("NOT_FOUND");
      expect(await codeOf(kilo.runs.get("bad id!"))).toBe("VALIDATION_FAILED");
      await close(kilo);
    });
  });

  describe(`kilo.runs (${target.label}): validation and idempotency`, () => {
    const storedRuns = async (storage: Storage, botId: string, key: string) =>
      storage.runs.listByConversation(botId, key, { limit: 100 });

    it("rejects invalid events with VALIDATION_FAILED and stores nothing", async () => {
      const storage = target.storage();
      const { kilo, bot } = await setup({ storage });
      const wrongVersion = await kilo.runs
        .ingest({ ...event("chat:1", "hi"), schema_version: 2 } as never, { botId: bot.id })
        .catch((error: unknown) => error);
      expect(KiloError.is(wrongVersion, "VALIDATION_FAILED")).toBe(true);
      expect((wrongVersion as KiloError).message).toMatch(/schema_version.*supported versions: 1/);
      const { text: _text, ...noText } = event("chat:1", "hi");
      expect(await codeOf(kilo.runs.ingest(noText as never, { botId: bot.id }))).toBe("VALIDATION_FAILED");
      expect(await codeOf(kilo.runs.ingest(event("chat:1", "   "), { botId: bot.id }))).toBe(
        "VALIDATION_FAILED",
      );
      expect(await codeOf(kilo.runs.ingest({ ...event("", "hi") }, { botId: bot.id }))).toBe(
        "VALIDATION_FAILED",
      );
      // No bot named anywhere; two that disagree.
      expect(await codeOf(kilo.runs.ingest(event("chat:1", "hi")))).toBe("VALIDATION_FAILED");
      expect(
        await codeOf(kilo.runs.ingest(event("chat:1", "hi", { bot_id: "bot_other" }), { botId: bot.id })),
      ).toBe("VALIDATION_FAILED");
      // Unknown bot, or a bot of another user: NOT_FOUND.
      expect(await codeOf(kilo.runs.ingest(event("chat:1", "hi"), { botId: "bot_nope" }))).toBe("NOT_FOUND");
      expect(
        await codeOf(kilo.runs.ingest({ ...event("chat:1", "hi"), user_key: "mallory" }, { botId: bot.id })),
      ).toBe("NOT_FOUND");
      expect(await storedRuns(storage, bot.id, "chat:1")).toEqual([]);
      expect(await storedRuns(storage, bot.id, "")).toEqual([]);
      await close(kilo);
    });

    it("an already-ingested delivery id returns the existing run and starts nothing", async () => {
      const storage = target.storage();
      const { kilo, bot, provider } = await setup({ storage });
      const first = await kilo.runs.ingest(event("chat:1", "hello", { delivery_id: 90210 }), {
        botId: bot.id,
      });
      const again = await kilo.runs.ingest(event("chat:1", "hello", { delivery_id: "90210" }), {
        botId: bot.id,
      });
      expect(again).toEqual({ run_id: first.run_id, duplicate: true });
      await kilo.runs.wait(first.run_id);
      const calls = provider.calls;
      const late = await kilo.runs.ingest(event("chat:1", "hello", { delivery_id: 90210 }), {
        botId: bot.id,
      });
      expect(late.run_id).toBe(first.run_id);
      // Racing duplicates: exactly one run.
      const raced = await Promise.all(
        Array.from({ length: 5 }, () =>
          kilo.runs.ingest(event("chat:1", "race", { delivery_id: "k-1" }), { botId: bot.id }),
        ),
      );
      expect(new Set(raced.map((r) => r.run_id)).size).toBe(1);
      expect(raced.filter((r) => !r.duplicate)).toHaveLength(1);
      await kilo.runs.wait(raced[0]!.run_id);
      const runs = await storedRuns(storage, bot.id, "chat:1");
      expect(runs.map((r) => r.deliveryId)).toEqual(["90210", "k-1"]);
      expect(provider.calls).toBeGreaterThan(calls);
      await close(kilo);
    });

    it("stores raw only when the host opts in", async () => {
      const raw = { update_id: 1, message: { chat: { id: 42 }, text: "hi" } };
      const off = await setup();
      const a = await off.kilo.runs.ingest(event("chat:1", "hi", { raw }), { botId: off.bot.id });
      expect((await off.kilo.runs.get(a.run_id)).input).not.toHaveProperty("raw");
      expect((await off.kilo.runs.get(a.run_id)).input.text).toBe("hi");
      await close(off.kilo);
      const on = await setup({ kilo: { runs: { storeRawEvents: true } } });
      const b = await on.kilo.runs.ingest(event("chat:1", "hi", { raw }), { botId: on.bot.id });
      expect((await on.kilo.runs.get(b.run_id)).input.raw).toEqual(raw);
      await close(on.kilo);
    });
  });

  describe(`kilo.runs (${target.label}): ordering and concurrency`, () => {
    it("two messages of one conversation key run sequentially, in ingest order", async () => {
      const { kilo, bot, spans } = await setup({ latencyMs: 40 });
      const first = await kilo.runs.ingest(event("chat:1", "first"), { botId: bot.id });
      const second = await kilo.runs.ingest(event("chat:1", "second"), { botId: bot.id });
      await kilo.runs.wait(second.run_id);
      const a = spans.get(first.run_id)!;
      const b = spans.get(second.run_id)!;
      expect(a.end).toBeGreaterThan(0);
      expect(overlaps(a, b)).toBe(false);
      expect(b.start).toBeGreaterThanOrEqual(a.end);
      expect((await kilo.runs.get(first.run_id)).finishedAt!.getTime()).toBeLessThanOrEqual(
        (await kilo.runs.get(second.run_id)).startedAt!.getTime(),
      );
      await close(kilo);
    });

    it("different conversation keys run concurrently", async () => {
      const { kilo, bot, spans } = await setup({ latencyMs: 60 * scale });
      const a = await kilo.runs.ingest(event("chat:a", "hi"), { botId: bot.id });
      const b = await kilo.runs.ingest(event("chat:b", "hi"), { botId: bot.id });
      await Promise.all([kilo.runs.wait(a.run_id), kilo.runs.wait(b.run_id)]);
      expect(overlaps(spans.get(a.run_id)!, spans.get(b.run_id)!)).toBe(true);
      await close(kilo);
    });

    it("respects the global concurrency limit", async () => {
      const { kilo, bot, spans } = await setup({ latencyMs: 20, kilo: { runs: { concurrency: 2 } } });
      const ids = [];
      for (let n = 0; n < 6; n++)
        ids.push((await kilo.runs.ingest(event(`k${n}`, "hi"), { botId: bot.id })).run_id);
      await Promise.all(ids.map((id) => kilo.runs.wait(id)));
      const all = [...spans.values()];
      expect(all).toHaveLength(6);
      for (const span of all) {
        const concurrent = all.filter((other) => other.start <= span.start && other.end > span.start);
        expect(concurrent.length).toBeLessThanOrEqual(2);
      }
      await close(kilo);
    });

    it("a failing run is recorded as failed and the next run of its key still runs", async () => {
      const { kilo, bot } = await setup({ latencyMs: 5 });
      const bad = await kilo.runs.ingest(event("chat:1", "please FAIL"), { botId: bot.id });
      const good = await kilo.runs.ingest(event("chat:1", "fine"), { botId: bot.id });
      const completed: string[] = [];
      kilo.events.on("run-completed", (e) => completed.push(`${e.runId}:${e.status}`));
      const failed = await kilo.runs.wait(bad.run_id);
      expect(failed.status).toBe("failed");
      expect(failed.output).toBeNull();
      expect(failed.error?.code).toMatch(/^[A-Z_]+$/);
      expect(failed.error?.message).toMatch(/PROVIDER_FAILED|scripted failure/);
      expect(failed.finishedAt).toBeInstanceOf(Date);
      const next = await kilo.runs.wait(good.run_id);
      expect(next.status).toBe("succeeded");
      expect(completed).toEqual([`${bad.run_id}:failed`, `${good.run_id}:succeeded`]);
      await close(kilo);
    });

    it("emits run-queued, run-started, run-completed; a run's log lines carry run_id, workflow, conversation_key", async () => {
      const lines: LogLine[] = [];
      const { kilo, bot } = await setup({ kilo: { logger: captureLogger(lines) } });
      const seen: string[] = [];
      kilo.events.on("run-queued", (e) => seen.push(`queued:${e.seq}`));
      kilo.events.on("run-started", (e) => seen.push(`started:${e.seq}`));
      kilo.events.on("run-completed", (e) => seen.push(`completed:${e.status}`));
      const { run_id } = await kilo.runs.ingest(event("chat:9", "hello"), { botId: bot.id });
      await kilo.runs.wait(run_id);
      expect(seen).toEqual(["queued:1", "started:1", "completed:succeeded"]);
      const runLines = lines.filter((line) => line.fields.run_id !== undefined);
      expect(runLines.map((line) => line.message)).toEqual(
        expect.arrayContaining(["run queued", "run started", "run completed"]),
      );
      for (const line of runLines) {
        expect(line.fields).toMatchObject({ run_id, workflow: "message", conversation_key: "chat:9" });
      }
      await close(kilo);
    });
  });

  /** Ingests `keys` × `perKey` messages interleaved, waits for all, and checks order, completeness, no overlap. */
  async function ordering(storage: Storage, keys: number, perKey: number) {
    const { kilo, bot, spans } = await setup({ storage, latencyMs: 2 });
    const ingested = new Map<string, string[]>();
    const pending: Promise<{ key: string; run_id: string }>[] = [];
    for (let n = 0; n < perKey; n++) {
      for (let k = 0; k < keys; k++) {
        const key = `key-${k}`;
        pending.push(
          kilo.runs
            .ingest(event(key, `${key} message ${n}`, { delivery_id: `${key}/${n}` }), { botId: bot.id })
            .then((result) => ({ key, run_id: result.run_id })),
        );
      }
    }
    // Ingests of one key are issued in order; each resolves once its run is stored.
    for (const { key, run_id } of await Promise.all(pending)) {
      const list = ingested.get(key) ?? [];
      list.push(run_id);
      ingested.set(key, list);
    }
    const finished: Run[] = await Promise.all(
      [...ingested.values()].flat().map((id) => kilo.runs.wait(id, { timeoutMs: 60_000 })),
    );
    expect(finished).toHaveLength(keys * perKey);
    expect(finished.every((run) => run.status === "succeeded")).toBe(true);
    for (const [key, runIds] of ingested) {
      const stored = await storage.runs.listByConversation(bot.id, key, { limit: 100 });
      // Nothing lost or duplicated; seq is ingest order.
      expect(stored.map((run) => run.id)).toEqual(runIds);
      expect(stored.map((run) => run.seq)).toEqual(Array.from({ length: perKey }, (_, n) => n + 1));
      const keySpans = runIds.map((id) => spans.get(id)!);
      for (let n = 1; n < keySpans.length; n++) {
        expect(
          keySpans[n]!.start,
          `${key}: run ${n + 1} started before run ${n} ended`,
        ).toBeGreaterThanOrEqual(keySpans[n - 1]!.end);
      }
      // The conversation holds the messages in ingest order.
      const conversationId = stored[0]!.conversationId!;
      const messages = await kilo.conversations.messages(bot.id, conversationId, { limit: 500 });
      expect(messages.filter((m) => m.role === "user").map((m) => m.content)).toEqual(
        Array.from({ length: perKey }, (_, n) => `${key} message ${n}`),
      );
    }
    await close(kilo);
  }

  describe(`kilo.runs (${target.label}): many conversations`, () => {
    for (const { label, storage, keys, perKey, timeoutMs } of target.ordering) {
      it(
        `${keys} keys × ${perKey} messages on ${label}: all terminal, order kept per key, nothing lost or duplicated`,
        async () => {
          await ordering(storage(), keys, perKey);
        },
        timeoutMs ?? 60_000,
      );
    }
  });

  describe(`kilo.runs (${target.label}): approvals`, () => {
    /** A kilo whose model answers `chat` in order, and a bot with a risky endpoint (never sent: these tests deny). */
    async function approvalSetup(
      chat: Parameters<typeof scriptByPurpose>[0]["chat"],
      kilo: Partial<KiloOptions> = {},
    ) {
      const provider = mockProvider({ respond: scriptByPurpose({ chat, classify: [] }) });
      const made = create({
        storage: target.storage(),
        providers: [provider],
        matcher: quietMatcher,
        ...kilo,
      });
      if (target.startFirst) await made.runs.start();
      return { kilo: made, bot: await botWithRiskyShop(made, USER), provider };
    }
    const refundCall = {
      toolCalls: [{ name: "call_api", input: { tool: "shop", endpoint: "refund", params: { amount: 450 } } }],
    };

    it("a turn that asks for approval ends its run awaiting_approval, the key's next message runs, and the decision continues in the run's lane", async () => {
      const { kilo, bot } = await approvalSetup([
        refundCall,
        "The refund waits for your approval.",
        "Anything else?",
        "Understood: nothing was refunded.",
      ]);
      const { run_id: asking } = await kilo.runs.ingest(event("tg:42", "Refund Maria 4.50"), {
        botId: bot.id,
      });
      const waiting = await kilo.runs.wait(asking);
      expect(waiting).toMatchObject({ status: "awaiting_approval", error: null });
      expect(waiting.output).toMatchObject({ reply: "The refund waits for your approval." });
      const [approval] = await kilo.approvals.list(bot.id, { status: "pending" });
      expect(approval).toMatchObject({ runId: asking, conversationId: conversationIdFor(bot.id, "tg:42") });

      // The waiting run does not hold its key: the next message runs meanwhile.
      const { run_id: next } = await kilo.runs.ingest(event("tg:42", "hello"), { botId: bot.id });
      expect(await kilo.runs.wait(next)).toMatchObject({
        status: "succeeded",
        output: { reply: "Anything else?" },
      });
      expect((await kilo.runs.get(asking)).status).toBe("awaiting_approval");

      const outcome = await kilo.approvals.deny(bot.id, approval!.id, "not now");
      expect(outcome.turn?.reply).toBe("Understood: nothing was refunded.");
      // The continuation is the lane's third run; the run that asked is done, its output kept.
      const lane = await kilo.runs.list(bot.id, "tg:42");
      expect(lane.map((run) => [run.seq, run.status])).toEqual([
        [1, "succeeded"],
        [2, "succeeded"],
        [3, "succeeded"],
      ]);
      expect(lane[0]).toMatchObject({ id: asking, output: { reply: "The refund waits for your approval." } });
      expect(lane[2]!.output).toMatchObject({
        reply: "Understood: nothing was refunded.",
        conversationId: conversationIdFor(bot.id, "tg:42"),
      });
      const messages = await kilo.conversations.messages(bot.id, conversationIdFor(bot.id, "tg:42"));
      expect(messages.filter((m) => m.role === "user").map((m) => m.content)).toEqual([
        "Refund Maria 4.50",
        "hello",
        "Denied: shop.refund",
      ]);
    });

    it("the key's next message may be the answer itself: a 'no' denies the pending approval and releases the run", async () => {
      const { kilo, bot } = await approvalSetup([
        refundCall,
        "It waits for your approval.",
        "Fine, nothing was refunded.",
      ]);
      const { run_id: asking } = await kilo.runs.ingest(event("tg:7", "Refund Maria 4.50"), {
        botId: bot.id,
      });
      expect((await kilo.runs.wait(asking)).status).toBe("awaiting_approval");
      const { run_id: answer } = await kilo.runs.ingest(event("tg:7", "No, cancel that"), { botId: bot.id });
      expect(await kilo.runs.wait(answer)).toMatchObject({
        status: "succeeded",
        output: { reply: "Fine, nothing was refunded." },
      });
      const [approval] = await kilo.approvals.list(bot.id);
      expect(approval).toMatchObject({ runId: asking, status: "denied" });
      expect((await kilo.runs.get(asking)).status).toBe("succeeded");
      expect((await kilo.runs.list(bot.id, "tg:7")).map((run) => run.seq)).toEqual([1, 2]);
    });

    it("kilo.chat returns the turn that asked; a host workflow's run waits for the approvals its turns asked for", async () => {
      const { kilo, bot } = await approvalSetup(
        [refundCall, "Waiting for you.", refundCall, "Also waiting.", "Noted.", "Noted too."],
        {
          workflows: {
            "refund.requested": async (_event, ctx) => {
              const turn = await ctx.turn();
              const after = await ctx.step("after", () => ({ ok: true }));
              return { reply: turn.reply, after };
            },
          },
        },
      );
      const turn = await kilo.chat({ botId: bot.id, userId: USER, message: "Refund 4.50" });
      expect(turn.reply).toBe("Waiting for you.");
      const [chatRun] = await kilo.runs.list(bot.id, turn.conversationId);
      expect(chatRun).toMatchObject({ status: "awaiting_approval" });

      const { run_id: hosted } = await kilo.runs.ingest(
        { ...event("order:7", "Refund order 7"), type: "refund.requested" },
        { botId: bot.id },
      );
      const run = await kilo.runs.wait(hosted);
      expect(run).toMatchObject({
        status: "awaiting_approval",
        output: { reply: "Also waiting.", after: { ok: true } },
      });
      const pending = await kilo.approvals.list(bot.id, { status: "pending" });
      expect(pending.map((approval) => approval.runId).sort()).toEqual([chatRun!.id, hosted].sort());

      for (const approval of pending) await kilo.approvals.deny(bot.id, approval.id);
      expect((await kilo.runs.get(chatRun!.id)).status).toBe("succeeded");
      expect((await kilo.runs.get(hosted)).status).toBe("succeeded");
      expect((await kilo.runs.list(bot.id, "order:7")).map((r) => r.workflow)).toEqual([
        "refund.requested",
        "message",
      ]);
    });

    it("a host workflow stopped at a ctx.tool approval releases its key, and the decision resumes it at the end of its lane, replaying its steps", async () => {
      let charged = 0;
      const { kilo, bot } = await approvalSetup(["Hello."], {
        workflows: {
          "refund.requested": async (_event, ctx) => {
            const charge = await ctx.step("charge", () => ++charged);
            const refund = await ctx.tool("shop", "refund", { amount: 450 });
            return { charge, refund: refund.status, body: refund.body };
          },
        },
      });
      const { run_id } = await kilo.runs.ingest(
        { ...event("order:9", "Refund order 9"), type: "refund.requested" },
        { botId: bot.id },
      );
      expect(await kilo.runs.wait(run_id)).toMatchObject({ status: "awaiting_approval", seq: 1 });
      const [approval] = await kilo.approvals.list(bot.id, { status: "pending" });
      expect(approval).toMatchObject({ runId: run_id, endpoint: "refund" });
      expect((await kilo.runs.get(run_id)).output).toEqual({ approvalId: approval!.id });

      // The stopped run does not hold its key.
      const { run_id: next } = await kilo.runs.ingest(event("order:9", "hello"), { botId: bot.id });
      expect(await kilo.runs.wait(next)).toMatchObject({
        status: "succeeded",
        seq: 2,
        output: { reply: "Hello." },
      });

      const outcome = await kilo.approvals.deny(bot.id, approval!.id, "not today");
      expect(outcome.turn).toBeNull();
      expect(outcome.run).toMatchObject({ id: run_id, status: "queued", seq: 3, resumes: 1 });
      expect(await kilo.runs.wait(run_id)).toMatchObject({
        status: "succeeded",
        seq: 3,
        resumes: 1,
        output: { charge: 1, refund: "denied", body: "not today" },
      });
      // The step before the stop was replayed, not made again.
      expect(charged).toBe(1);
      expect(
        (await kilo.runs.list(bot.id, "order:9")).map((run) => [run.seq, run.workflow, run.status]),
      ).toEqual([
        [2, "message", "succeeded"],
        [3, "refund.requested", "succeeded"],
      ]);
    });

    it("a decision that lands while the key's next message executes resumes the stopped run right after it, replaying its steps", async () => {
      let charged = 0;
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      let answering!: () => void;
      const answered = new Promise<void>((resolve) => {
        answering = resolve;
      });
      const { kilo, bot } = await approvalSetup([], {
        providers: [
          mockProvider({
            respond: async () => {
              answering();
              await gate;
              return "Hello.";
            },
          }),
        ],
        workflows: {
          "refund.requested": async (_event, ctx) => {
            const charge = await ctx.step("charge", () => ++charged);
            const refund = await ctx.tool("shop", "refund", { amount: 450 });
            return { charge, refund: refund.status };
          },
        },
      });
      const { run_id } = await kilo.runs.ingest(
        { ...event("order:7", "Refund order 7"), type: "refund.requested" },
        { botId: bot.id },
      );
      expect(await kilo.runs.wait(run_id)).toMatchObject({ status: "awaiting_approval" });
      const [approval] = await kilo.approvals.list(bot.id, { status: "pending" });
      const { run_id: next } = await kilo.runs.ingest(event("order:7", "hello"), { botId: bot.id });
      await answered;
      // The key's next message is under way: the resumed run queues behind it.
      const outcome = await kilo.approvals.deny(bot.id, approval!.id, "not today");
      expect(outcome.run).toMatchObject({ id: run_id, status: "queued", seq: 3, resumes: 1 });
      release();
      const [message, resumed] = [await kilo.runs.wait(next), await kilo.runs.wait(run_id)];
      expect(message).toMatchObject({ status: "succeeded", seq: 2 });
      expect(resumed).toMatchObject({
        status: "succeeded",
        resumes: 1,
        output: { charge: 1, refund: "denied" },
      });
      expect(resumed.startedAt!.getTime()).toBeGreaterThanOrEqual(message.finishedAt!.getTime());
      // The step before the stop was replayed, not made again.
      expect(charged).toBe(1);
    });
  });

  describe(`kilo.runs (${target.label}): recovery after a restart`, () => {
    it("resumes queued and running runs of a previous process in order (running ones re-run from the start)", async () => {
      // A previous process stored runs and died: one mid-run, two queued behind it, one queued elsewhere.
      const { first: before, reopen } = target.reopenable("recovery");
      await before.users.upsert({ id: USER, name: null, metadata: {}, createdAt: new Date() });
      const bot = await before.bots.create({
        id: "bot_recover",
        userId: USER,
        name: "Runner",
        soul: null,
        personality: null,
        context: null,
        metadata: {},
        createdAt: new Date(),
        updatedAt: new Date(),
      });
      const base = (id: string, key: string, text: string) => queuedRun(id, bot.id, key, text);
      const crashed = await before.runs.create(base("run_a1", "a", "first"));
      await before.runs.update({ ...crashed, status: "running", startedAt: new Date() });
      await before.runs.create(base("run_a2", "a", "second"));
      await before.runs.create(base("run_a3", "a", "third"));
      await before.runs.create(base("run_b1", "b", "other"));
      await before.close?.();

      const { kilo, spans } = await setup({ storage: reopen(), latencyMs: 5 });
      const results = await Promise.all(
        ["run_a1", "run_a2", "run_a3", "run_b1"].map((id) => kilo.runs.wait(id)),
      );
      expect(results.map((run) => run.status)).toEqual(["succeeded", "succeeded", "succeeded", "succeeded"]);
      const [a1, a2, a3] = ["run_a1", "run_a2", "run_a3"].map((id) => spans.get(id)!);
      expect(a2!.start).toBeGreaterThanOrEqual(a1!.end);
      expect(a3!.start).toBeGreaterThanOrEqual(a2!.end);
      const messages = await kilo.conversations.messages(bot.id, conversationIdFor(bot.id, "a"));
      expect(messages.filter((m) => m.role === "user").map((m) => m.content)).toEqual([
        "first",
        "second",
        "third",
      ]);
      await close(kilo);
    });
  });

  describe(`kilo.runs workflows (${target.label}): naming, override, unknown`, () => {
    it("a workflow registered in createKilo runs for its event type; its return value is the run's output", async () => {
      const seen: Array<{ type: string; text: string; runId: string }> = [];
      const { kilo, bot, provider } = await setup({
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
      const count = await kilo.runs.ingest(
        { ...event("shop:1", "n"), type: "order.count" },
        { botId: bot.id },
      );
      expect((await kilo.runs.wait(count.run_id)).output).toEqual({ value: 3 });
      // No model call: the host workflow made no turn.
      expect(provider.requests).toHaveLength(0);
      await close(kilo);
    });

    it("the built-in message workflow runs a bot turn for message and *.message types", async () => {
      const { kilo, bot } = await setup();
      for (const type of ["message", "telegram.message"]) {
        const { run_id } = await kilo.runs.ingest({ ...event(`k:${type}`, "hi"), type }, { botId: bot.id });
        expect(await kilo.runs.wait(run_id)).toMatchObject({ status: "succeeded", output: { reply: "ok" } });
      }
      await close(kilo);
    });

    it("a registered `message` workflow overrides the built-in one, also for *.message; an exact name wins over it", async () => {
      const { kilo, bot, provider } = await setup();
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
      await close(kilo);
    });

    it("an event no workflow handles is refused at ingest with VALIDATION_FAILED and nothing is stored", async () => {
      const storage = target.storage();
      const { kilo, bot } = await setup({ storage });
      let caught: unknown;
      await kilo.runs
        .ingest({ ...event("x", "hi"), type: "order.placed" }, { botId: bot.id })
        .catch((error) => {
          caught = error;
        });
      expect(KiloError.is(caught, "VALIDATION_FAILED")).toBe(true);
      expect((caught as Error).message).toMatch(/no workflow handles type 'order\.placed'/);
      expect(await storage.runs.listByConversation(bot.id, "x", { limit: 10 })).toEqual([]);
      await close(kilo);
    });
  });

  describe(`kilo.runs workflows (${target.label}): recorded steps`, () => {
    it("records turn, ask and step in order with their outputs; steps get runId:index keys; logs carry the run", async () => {
      const lines: LogLine[] = [];
      const storage = target.storage();
      const keys: string[] = [];
      const { kilo, bot } = await setup({
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
      await close(kilo);
    });

    it("a throwing step is recorded failed and fails the run with HOST_CALLBACK_FAILED, also sent to the error event", async () => {
      const storage = target.storage();
      const { kilo, bot } = await setup({
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
      await close(kilo);
    });
  });

  /** A run left `running` by a dead process, with the steps it recorded, on `storage`. */
  async function crashedRun(
    storage: Storage,
    botId: string,
    steps: Array<{ name: string; output: unknown }>,
  ) {
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

  describe(`kilo.runs workflows (${target.label}): re-execution after a restart`, () => {
    it("a workflow that makes a different step at a recorded index fails the run: not deterministic", async () => {
      const { first: before, reopen } = target.reopenable("determinism");
      const setupKilo = await setup({
        storage: before,
        kilo: { runs: { recover: false }, workflows: { "order.placed": () => ({}) } },
      });
      await crashedRun(before, setupKilo.bot.id, [{ name: "charge", output: { chargeId: "ch_1" } }]);
      await close(setupKilo.kilo);
      const made: string[] = [];
      const changed = create({
        storage: reopen(),
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
      await close(changed);
    });

    it("a turn recorded before the crash is replayed, not asked of the model again", async () => {
      const { first: before, reopen } = target.reopenable("turned");
      const setupKilo = await setup({ storage: before, kilo: { runs: { recover: false } } });
      const created = await before.runs.create(queuedRun("run_turned", setupKilo.bot.id, "t", "hello"));
      await before.runs.update({ ...created, status: "running", startedAt: new Date() });
      await before.runSteps!.save({
        runId: created.id,
        botId: setupKilo.bot.id,
        index: 0,
        name: "turn",
        kind: "turn",
        status: "succeeded",
        output: { reply: "recorded reply" },
        error: null,
        startedAt: new Date(),
        finishedAt: new Date(),
      });
      await close(setupKilo.kilo);
      const provider = mockProvider({ respond: (request) => `fresh ${userText(request)}` });
      const resumed = create({ storage: reopen(), providers: [provider] });
      const run = await resumed.runs.wait("run_turned");
      expect(run).toMatchObject({ status: "succeeded", output: { reply: "recorded reply" } });
      expect(provider.requests).toHaveLength(0);
      expect(USER).toBe(created.userId);
      await close(resumed);
    });
  });
}
