import { expect } from "vitest";
import type { Bot } from "../domain/bot.js";
import type { Trace } from "../domain/trace.js";
import { KiloError } from "../errors.js";
import type { Storage, StorageCapabilities, StorageRepositories, TraceRepository } from "../ports/storage.js";

/**
 * The `traces` group of the storage conformance suite, registered by
 * `runStorageConformance` when the adapter has a `traces` repository (kept
 * in its own module for size).
 *
 * @module
 */

type TraceTestBody = (storage: Storage) => Promise<void>;
type RegisterTraceTest = (
  title: string,
  body: TraceTestBody,
  options?: { requires?: keyof StorageCapabilities },
) => void;

/** How the suite registers a group of tests (its `group` helper). */
export type TraceTestGroup = (name: string, register: (test: RegisterTraceTest) => void) => void;

const RUN = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
let counter = 0;
const uid = (prefix: string) => `${prefix}-${RUN}-t${++counter}`;
const BASE_TIME = Date.UTC(2024, 0, 1, 12, 0, 0);
const at = (seconds: number) => new Date(BASE_TIME + seconds * 1000);

async function seedBot(storage: StorageRepositories): Promise<Bot> {
  const userId = uid("user");
  await storage.users.upsert({ id: userId, name: null, metadata: {}, createdAt: at(0) });
  return storage.bots.create({
    id: uid("bot"),
    userId,
    name: "Tracer",
    soul: null,
    personality: null,
    context: null,
    metadata: {},
    createdAt: at(0),
    updatedAt: at(0),
  });
}

function makeTrace(bot: Bot, overrides: Partial<Trace> = {}): Trace {
  return {
    id: uid("trace"),
    botId: bot.id,
    userId: bot.userId,
    conversationId: uid("conv"),
    userMessageId: uid("msg"),
    replyMessageId: uid("msg"),
    message: "Send the weekly report to Ana",
    skillId: null,
    skillName: null,
    matchPass: "llm",
    matchConfidence: 0.42,
    skillsInjected: [],
    toolCalls: [
      { name: "call_api", ok: true },
      { name: "record_query", ok: false },
    ],
    outcome: "ok",
    errorCode: null,
    latencyMs: 12.5,
    model: "mock-1",
    promptTokens: 120,
    completionTokens: 8,
    costUsd: 0.00042,
    feedback: null,
    createdAt: at(10),
    ...overrides,
  };
}

function traces(storage: Storage): TraceRepository {
  if (!storage.traces) throw new Error("trace conformance: the adapter has no traces repository");
  return storage.traces;
}

/** Registers the `traces` group; `commitTurn` tests only when the adapter has `commitTurn`. */
export function registerTraceTests(group: TraceTestGroup, hasCommitTurn: boolean): void {
  group("traces", (test) => {
    test("creates and reads a trace with every field, tool calls and hostile text included", async (s) => {
      const bot = await seedBot(s);
      const trace = makeTrace(bot, {
        message: "héllo \u0000 '; drop table traces; -- 🍰",
        skillName: "Ünïcode skill",
        skillsInjected: ["Ünïcode skill"],
        errorCode: null,
      });
      expect(await traces(s).create(trace)).toEqual(trace);
      expect(await traces(s).get(bot.id, trace.id)).toEqual(trace);
      const other = await seedBot(s);
      expect(await traces(s).get(other.id, trace.id)).toBeNull();
    });

    test("refuses a taken id with CONFLICT and a missing bot", async (s) => {
      const bot = await seedBot(s);
      const trace = makeTrace(bot);
      await traces(s).create(trace);
      const error = await traces(s)
        .create(trace)
        .catch((caught: unknown) => caught);
      expect(KiloError.is(error, "CONFLICT")).toBe(true);
      await expect(traces(s).create(makeTrace({ ...bot, id: uid("bot-missing") }))).rejects.toThrow();
    });

    test("lists by bot and by user, oldest first, within [from, to), paged with cursors", async (s) => {
      const bot = await seedBot(s);
      const stranger = uid("user");
      const made = [];
      for (let i = 0; i < 7; i++) {
        made.push(
          await traces(s).create(
            makeTrace(bot, { createdAt: at(100 + i), userId: i % 3 === 2 ? stranger : bot.userId }),
          ),
        );
      }
      const walk = async (filter: Parameters<TraceRepository["list"]>[0]) => {
        const seen: string[] = [];
        let cursor: string | null = null;
        do {
          const page = await traces(s).list(filter, { limit: 2, cursor });
          seen.push(...page.items.map((item) => item.id));
          cursor = page.nextCursor;
        } while (cursor);
        return seen;
      };
      expect(await walk({ botId: bot.id })).toEqual(made.map((trace) => trace.id));
      expect(await walk({ botId: bot.id, userId: bot.userId })).toEqual(
        made.filter((trace) => trace.userId === bot.userId).map((trace) => trace.id),
      );
      expect(await walk({ botId: bot.id, from: at(102), to: at(105) })).toEqual(
        made.slice(2, 5).map((trace) => trace.id),
      );
      const other = await seedBot(s);
      expect((await traces(s).list({ botId: other.id }, { limit: 10 })).items).toEqual([]);
    });

    test("sets feedback on the bot's trace only", async (s) => {
      const bot = await seedBot(s);
      const trace = await traces(s).create(makeTrace(bot));
      const feedback = { rating: "down" as const, comment: "wrong total", at: at(50) };
      expect(await traces(s).setFeedback(bot.id, trace.id, feedback)).toEqual({ ...trace, feedback });
      expect((await traces(s).get(bot.id, trace.id))?.feedback).toEqual(feedback);
      const other = await seedBot(s);
      expect(await traces(s).setFeedback(other.id, trace.id, { ...feedback, rating: "up" })).toBeNull();
      expect(await traces(s).setFeedback(bot.id, uid("none"), feedback)).toBeNull();
    });

    test("deleteOlderThan removes only traces created before the cutoff, and traces go with their bot", async (s) => {
      const bot = await seedBot(s);
      const old = await traces(s).create(makeTrace(bot, { createdAt: new Date(Date.UTC(1990, 0, 1)) }));
      const kept = await traces(s).create(makeTrace(bot, { createdAt: at(10) }));
      expect(await traces(s).deleteOlderThan(new Date(Date.UTC(1990, 0, 2)))).toBeGreaterThanOrEqual(1);
      expect(await traces(s).get(bot.id, old.id)).toBeNull();
      expect(await traces(s).get(bot.id, kept.id)).toEqual(kept);
      await s.bots.delete(bot.id);
      expect(await traces(s).get(bot.id, kept.id)).toBeNull();
    });

    if (!hasCommitTurn) return;
    test("commitTurn stores the turn's trace with the reply", async (s) => {
      const bot = await seedBot(s);
      const conversationId = uid("conv");
      await s.conversations.create({
        id: conversationId,
        botId: bot.id,
        userId: bot.userId,
        channel: "api",
        title: null,
        metadata: {},
        createdAt: at(1),
        updatedAt: at(1),
      });
      const replyId = uid("msg");
      const trace = makeTrace(bot, { conversationId, replyMessageId: replyId, feedback: null });
      await s.commitTurn!({
        message: {
          id: replyId,
          conversationId,
          botId: bot.id,
          role: "assistant",
          content: "done",
          metadata: {},
          createdAt: at(9),
        },
        usage: [],
        conversationUpdatedAt: at(9),
        trace,
      });
      expect(await traces(s).get(bot.id, trace.id)).toEqual(trace);
    });
  });
}
