import { describe, expect, it } from "vitest";
import { KiloError, type TurnStreamEvent } from "../../src/index.js";
import { bakeryBot, classify, setup, USER } from "./helpers.js";

async function collect(stream: AsyncIterable<TurnStreamEvent>): Promise<TurnStreamEvent[]> {
  const events: TurnStreamEvent[] = [];
  for await (const event of stream) events.push(event);
  return events;
}

const texts = (events: TurnStreamEvent[]) =>
  events.flatMap((event) => (event.type === "text-delta" ? [event.text] : []));

describe("kilo.stream", () => {
  it("yields the reply in whole words, then the result, and mirrors progress as events", async () => {
    const reply = "Good morning! The ovens are warm and today's orders are ready for you.";
    const { kilo } = setup({ classify: [classify(null)], chat: [reply] });
    const { bot } = await bakeryBot(kilo);
    const progress: string[] = [];
    kilo.events.on("turn-progress", (event) => progress.push(event.event.type));
    const events = await collect(kilo.stream({ botId: bot.id, userId: USER, message: "good morning" }));
    const deltas = texts(events);
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.join("")).toBe(reply);
    for (const delta of deltas.slice(0, -1)) expect(delta).toMatch(/\s$/);
    const last = events.at(-1);
    expect(last?.type).toBe("result");
    expect(last?.type === "result" && last.result.reply).toBe(reply);
    expect(progress).toEqual(events.slice(0, -1).map((event) => event.type));
  });

  it("never streams a credential, even when it arrives split across deltas", async () => {
    const secret = "sk-ant-api03-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    const { kilo } = setup({
      classify: [classify(null)],
      chat: [`Sure, the key is ${secret} and that is all.`],
    });
    const { bot } = await bakeryBot(kilo);
    const events = await collect(kilo.stream({ botId: bot.id, userId: USER, message: "what's the key?" }));
    const streamed = texts(events).join("");
    expect(streamed).not.toContain("sk-ant");
    expect(streamed).toContain("[redacted]");
    const result = events.at(-1);
    expect(result?.type === "result" && result.result.reply).toBe(
      "Sure, the key is [redacted] and that is all.",
    );
  });

  it("reports tool calls and their results while the turn runs", async () => {
    const { kilo } = setup({
      chat: [
        {
          toolCalls: [
            {
              name: "record_create",
              input: { skill: "Order Tracker", data: { customer: "Maria", item: "cake", pickup_day: "Sat" } },
            },
          ],
        },
        "Stored Maria's cake.",
      ],
    });
    const { bot } = await bakeryBot(kilo);
    const events = await collect(
      kilo.stream({ botId: bot.id, userId: USER, message: "New order: Maria, cake, Sat" }),
    );
    const kinds = events.map((event) => event.type);
    expect(kinds.slice(0, 2)).toEqual(["tool-call", "tool-result"]);
    expect(new Set(kinds.slice(2, -1))).toEqual(new Set(["text-delta"]));
    expect(kinds.at(-1)).toBe("result");
    expect(texts(events).join("")).toBe("Stored Maria's cake.");
    expect(events[0]).toMatchObject({
      type: "tool-call",
      name: "record_create",
      input: { skill: "Order Tracker", data: { customer: "Maria" } },
    });
    expect(events[1]).toMatchObject({ type: "tool-result", name: "record_create", isError: false });
  });

  it("streams thinking, then its summary", async () => {
    const { kilo } = setup(
      { chat: [{ text: "Here is the plan.", thinking: "First list the orders, then the oven slots." }] },
      {
        matcher: {
          async match() {
            return {
              skill: null,
              confidence: 1,
              pass: "none" as const,
              reason: "test",
              actionable: false,
              taskType: "complex_reasoning" as const,
              candidates: [],
              context: { historyDepth: 0, memoryQuery: null, memoryLimit: 0, skillData: null },
            };
          },
        },
      },
    );
    const { bot } = await bakeryBot(kilo);
    const events = await collect(kilo.stream({ botId: bot.id, userId: USER, message: "plan tomorrow" }));
    const kinds = events.map((event) => event.type);
    expect(kinds.indexOf("thinking-delta")).toBeLessThan(kinds.indexOf("text-delta"));
    expect(events.find((event) => event.type === "thinking")).toEqual({
      type: "thinking",
      summary: "First list the orders, then the oven slots.",
    });
  });

  it("sends a proposal, which is not a model stream, as one piece", async () => {
    const draft = JSON.stringify({
      name: "Inventory Tracker",
      description: "Tracks stock.",
      triggers: ["inventory"],
    });
    const { kilo } = setup({ classify: [classify(null, true)], "propose-skill": [draft] });
    const { bot } = await bakeryBot(kilo);
    const events = await collect(
      kilo.stream({ botId: bot.id, userId: USER, message: "Can you track my inventory?" }),
    );
    expect(events.map((event) => event.type)).toEqual(["text-delta", "result"]);
    expect(texts(events)[0]).toContain("Inventory Tracker");
  });

  it("throws the turn's typed error from the iterator and keeps the user's message", async () => {
    const { kilo } = setup({
      classify: [classify(null)],
      chat: [{ error: { code: "PROVIDER_REJECTED", message: "bad request", retryable: false } }],
    });
    const { bot } = await bakeryBot(kilo);
    const failure = await collect(
      kilo.stream({ botId: bot.id, userId: USER, conversationId: "conv_stream", message: "hello" }),
    ).catch((e: unknown) => e);
    expect(KiloError.is(failure)).toBe(true);
    expect((await kilo.conversations.messages(bot.id, "conv_stream")).map((m) => m.content)).toEqual([
      "hello",
    ]);
  });
});
