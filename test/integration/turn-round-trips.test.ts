import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { postgresStorage } from "../../adapters/storage/postgres/index.js";
import { createKilo } from "../../src/index.js";
import { mockProvider, scriptByPurpose } from "../../src/testing/index.js";
import { ORDER_TRACKER } from "../fixtures.js";

const DATABASE_URL = process.env.KILO_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const schema = `kilo_rt_${randomUUID().slice(0, 8)}`;
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
const sent: string[] = [];
pool.on("connect", (client) => {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    const first = args[0];
    sent.push(typeof first === "string" ? first : String((first as { text?: string })?.text ?? ""));
    return query(...args);
  };
});

afterAll(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

const classify = JSON.stringify({ skill: null, confidence: 0.9, actionable: false, reason: "small talk" });

describe("database round trips of a chat turn on Postgres", () => {
  it("costs 5 statements on a warm cache: the run starts as it is stored, its outcome and step ride on the turn's commit", async () => {
    const provider = mockProvider({
      respond: scriptByPurpose({
        classify: [classify, classify, classify],
        chat: ["Hi!", "Sure.", "Bye!"],
      }),
    });
    // No idle polling during the test: every claim seen is one the turn made.
    const kilo = createKilo({
      storage: postgresStorage({ pool, schema }),
      providers: [provider],
      runs: { pollIntervalMs: 60_000 },
    });
    const bot = await kilo.bots.create({ userId: "rt-user", name: "Counter" });
    await kilo.skills.create(bot.id, ORDER_TRACKER);
    const first = await kilo.chat({ botId: bot.id, userId: "rt-user", message: "hello there" });
    await kilo.chat({
      botId: bot.id,
      userId: "rt-user",
      conversationId: first.conversationId,
      message: "thanks a lot",
    });

    sent.length = 0;
    const warm = await kilo.chat({
      botId: bot.id,
      userId: "rt-user",
      conversationId: first.conversationId,
      message: "good night",
    });
    expect(warm.reply).toBe("Bye!");
    // Store the run, started at once under this process's lease as its conversation is free (no
    // claim), append the user's message, read history and memories, commit reply + usage + touch +
    // trace + the run's step and outcome (one statement), with no claim in between. Around it,
    // only the claims a worker makes when a run ends (for its conversation's next run).
    const turn = sent.filter((text) => !/with picked as/.test(text));
    expect(turn, turn.join("\n---\n")).toHaveLength(5);
    // (The previous turn's end-of-run claim may come first.)
    const stored = sent.findIndex((text) => /insert into \S+"runs"/.test(text));
    expect(sent.slice(stored, stored + 5)).toEqual(turn);
    expect(sent.length).toBeLessThanOrEqual(7);
    expect(turn.filter((text) => /^\s*select/i.test(text))).toHaveLength(2);
    expect(turn[0]).toMatch(/insert into \S+"runs"/);
    expect(turn.at(-1)).toMatch(/update \S+"runs"/);
    const [run] = await kilo.runs.list(bot.id, first.conversationId, { afterSeq: 2 });
    expect(run).toMatchObject({ status: "succeeded", output: { reply: "Bye!" } });
    expect(await kilo.runs.steps(run!.id)).toMatchObject([{ name: "turn", status: "succeeded" }]);
    await kilo.close();
  });
});

describe("database round trips of a workflow step on Postgres", () => {
  it("saves a step in one statement, and refuses another bot's run in that statement too", async () => {
    const kilo = createKilo({
      storage: postgresStorage({ pool, schema }),
      providers: [mockProvider({ replies: [] })],
      workflows: { "order.placed": async (_event, ctx) => ctx.step("charge", () => ({ charged: true })) },
    });
    const bot = await kilo.bots.create({ userId: "rt-user", name: "Stepper" });
    const other = await kilo.bots.create({ userId: "rt-user", name: "Other" });
    const { run_id } = await kilo.runs.ingest(
      {
        schema_version: 1,
        type: "order.placed",
        conversation_key: "order:1",
        user_key: "rt-user",
        text: "o",
      },
      { botId: bot.id },
    );
    await kilo.runs.wait(run_id);
    const storage = postgresStorage({ pool, schema });
    const step = {
      runId: run_id,
      botId: bot.id,
      index: 1,
      name: "notify",
      kind: "step" as const,
      status: "succeeded" as const,
      output: { sent: 1 },
      error: null,
      startedAt: new Date(),
      finishedAt: new Date(),
    };
    await storage.runSteps!.listByRun(bot.id, run_id); // warm: the schema check comes first
    sent.length = 0;
    await storage.runSteps!.save(step);
    expect(sent.filter((text) => !/with picked as/.test(text))).toHaveLength(1);
    sent.length = 0;
    await expect(storage.runSteps!.save({ ...step, botId: other.id })).rejects.toMatchObject({
      code: "NOT_FOUND",
    });
    expect(sent.filter((text) => !/with picked as/.test(text))).toHaveLength(1);
    expect((await kilo.runs.steps(run_id)).map((s) => [s.index, s.name, s.status])).toEqual([
      [0, "charge", "succeeded"],
      [1, "notify", "succeeded"],
    ]);
    await storage.close();
    await kilo.close();
  });
});
