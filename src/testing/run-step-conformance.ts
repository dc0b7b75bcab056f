import { expect } from "vitest";
import type { Bot } from "../domain/bot.js";
import type { Run } from "../domain/run.js";
import type { RunStep } from "../domain/run-step.js";
import { KiloError } from "../errors.js";
import type { RunStepRepository, Storage, StorageRepositories } from "../ports/storage.js";
import type { RunTestGroup } from "./run-conformance.js";

/**
 * The `runSteps` group of the storage conformance suite, registered by
 * `runStorageConformance` for adapters that have `storage.runSteps`.
 *
 * @module
 */

const RUN = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
let counter = 0;
const uid = (prefix: string) => `${prefix}-${RUN}-s${++counter}`;
const at = (seconds: number) => new Date(Date.UTC(2024, 0, 1, 12, 0, seconds));

async function seedRun(s: StorageRepositories): Promise<{ bot: Bot; run: Run }> {
  const userId = uid("user");
  await s.users.upsert({ id: userId, name: null, metadata: {}, createdAt: at(0) });
  const bot = await s.bots.create({
    id: uid("bot"),
    userId,
    name: "Stepper",
    soul: null,
    personality: null,
    context: null,
    metadata: {},
    createdAt: at(0),
    updatedAt: at(0),
  });
  const run = await s.runs.create({
    id: uid("run"),
    botId: bot.id,
    userId,
    conversationKey: "chat:1",
    conversationId: null,
    eventType: "order.placed",
    workflow: "order.placed",
    status: "running",
    input: {
      schema_version: 1,
      type: "order.placed",
      conversation_key: "chat:1",
      user_key: userId,
      text: "x",
    },
    output: null,
    error: null,
    deliveryId: null,
    createdAt: at(1),
    startedAt: at(1),
    finishedAt: null,
  });
  return { bot, run };
}

function step(run: Run, index: number, overrides: Partial<RunStep> = {}): RunStep {
  return {
    runId: run.id,
    botId: run.botId,
    index,
    name: `step ${index} ✓ \u{1F382}`,
    kind: "step",
    status: "running",
    output: null,
    error: null,
    startedAt: at(10 + index),
    finishedAt: null,
    ...overrides,
  };
}

const stepsOf = (s: Storage): RunStepRepository => s.runSteps!;

/** Registers the `runSteps` group: save/replace by (run, index), order, JSON outputs, tenancy, cascade. */
export function registerRunStepTests(group: RunTestGroup): void {
  group("runSteps", (test) => {
    test("save inserts, listByRun returns the run's steps by ascending index with every field", async (s) => {
      const { run } = await seedRun(s);
      const second = step(run, 1, {
        kind: "turn",
        status: "succeeded",
        output: { reply: "hi", nested: [1, "two", null, { ok: true }] },
        finishedAt: at(20),
      });
      const first = step(run, 0, {
        kind: "ask",
        name: "ask:bot_2",
        status: "failed",
        error: { code: "X", message: "no" },
        finishedAt: at(15),
      });
      expect(await stepsOf(s).save(second)).toEqual(second);
      expect(await stepsOf(s).save(first)).toEqual(first);
      expect(await stepsOf(s).listByRun(run.botId, run.id)).toEqual([first, second]);
    });

    test("save at an index already recorded replaces that step", async (s) => {
      const { run } = await seedRun(s);
      await stepsOf(s).save(step(run, 0));
      const done = step(run, 0, { status: "succeeded", output: "charged", finishedAt: at(30) });
      await stepsOf(s).save(done);
      expect(await stepsOf(s).listByRun(run.botId, run.id)).toEqual([done]);
    });

    test("outputs of every JSON type round-trip", async (s) => {
      const { run } = await seedRun(s);
      const outputs: unknown[] = ["text", 42, 1.5, true, false, [1, [2]], { a: { b: "c" } }, null];
      for (const [index, output] of outputs.entries()) {
        await stepsOf(s).save(step(run, index, { status: "succeeded", output, finishedAt: at(40) }));
      }
      const listed = await stepsOf(s).listByRun(run.botId, run.id);
      expect(listed.map((found) => found.output)).toEqual(outputs);
    });

    test("a step of a missing run, or of another bot's run, is refused with NOT_FOUND and invisible", async (s) => {
      const { run } = await seedRun(s);
      const { bot: other } = await seedRun(s);
      for (const bad of [step(run, 0, { runId: uid("missing") }), step(run, 0, { botId: other.id })]) {
        let caught: unknown;
        await stepsOf(s)
          .save(bad)
          .catch((error: unknown) => {
            caught = error;
          });
        expect(KiloError.is(caught, "NOT_FOUND"), String(caught)).toBe(true);
      }
      await stepsOf(s).save(step(run, 0));
      expect(await stepsOf(s).listByRun(other.id, run.id)).toEqual([]);
      expect(await stepsOf(s).listByRun(run.botId, uid("missing"))).toEqual([]);
    });

    test("steps go with their bot", async (s) => {
      const { bot, run } = await seedRun(s);
      await stepsOf(s).save(step(run, 0));
      expect(await s.bots.delete(bot.id)).toBe(true);
      expect(await stepsOf(s).listByRun(bot.id, run.id)).toEqual([]);
    });

    test("returned steps are copies", async (s) => {
      const { run } = await seedRun(s);
      const saved = await stepsOf(s).save(step(run, 0, { status: "succeeded", output: { n: 1 } }));
      (saved.output as { n: number }).n = 2;
      const [listed] = await stepsOf(s).listByRun(run.botId, run.id);
      expect(listed?.output).toEqual({ n: 1 });
      (listed!.output as { n: number }).n = 3;
      expect((await stepsOf(s).listByRun(run.botId, run.id))[0]?.output).toEqual({ n: 1 });
    });
  });
}
