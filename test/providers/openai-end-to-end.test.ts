import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openaiProvider } from "../../adapters/providers/openai/index.js";
import { memoryStorage } from "../../adapters/storage/memory/index.js";
import { createKilo } from "../../src/index.js";
import { ORDER_TRACKER } from "../fixtures.js";
import {
  chunk,
  completion,
  type FakeOpenAIServer,
  startFakeOpenAIServer,
  usageChunk,
} from "./fake-openai-server.js";

let server: FakeOpenAIServer;

beforeAll(async () => {
  server = await startFakeOpenAIServer();
});

afterAll(async () => {
  await server.close();
});

describe("kilo on the OpenAI adapter, over the wire", () => {
  it("runs a bakery turn: the skill's create tool is called, the record stored, the cost priced", async () => {
    const usage = { prompt: 1_200, cached: 1_024, completion: 50 };
    const order = { customer: "Maria", item: "chocolate cake", pickup_day: "Saturday" };
    let createTool = "";
    server.reply((request) => {
      const last = request.body.messages?.at(-1);
      if (last?.role === "tool") {
        return { json: completion({ content: "Got it: chocolate cake for Maria on Saturday.", usage }) };
      }
      // The skill's create tool, whether it is per skill (`order_tracker_create`) or shared and names the skill.
      const create = request.body.tools
        ?.map(
          (tool) => tool.function as { name: string; parameters: { properties?: Record<string, unknown> } },
        )
        .find((tool) => tool.name.endsWith("_create"));
      if (create === undefined) return { json: completion({ content: "Unexpected call", usage }) };
      createTool = create.name;
      const input = create.parameters.properties?.skill ? { skill: "Order Tracker", data: order } : order;
      return {
        json: completion({ toolCalls: [{ id: "call_create", name: create.name, arguments: input }], usage }),
      };
    });
    const kilo = createKilo({
      storage: memoryStorage(),
      providers: [openaiProvider({ baseURL: server.baseURL, apiKey: "test-key" })],
    });
    const bot = await kilo.bots.create({ userId: "user_1", name: "Crumb" });
    const skill = await kilo.skills.create(bot.id, ORDER_TRACKER);

    const result = await kilo.chat({
      botId: bot.id,
      userId: "user_1",
      message: "New order: Maria, chocolate cake, Saturday",
    });

    expect(result.reply).toBe("Got it: chocolate cake for Maria on Saturday.");
    expect(result.toolCalls).toMatchObject([{ name: createTool, isError: false }]);
    const stored = await kilo.records.list(bot.id, skill.id);
    expect(stored.items.map((record) => record.data)).toEqual([order]);
    expect(server.requests).toHaveLength(2);
    // The follow-up carried the tool result as a `tool` message right after the assistant's tool call.
    expect(server.requests[1]!.body.messages!.slice(-2)).toMatchObject([
      { role: "assistant", tool_calls: [{ id: "call_create", function: { name: createTool } }] },
      { role: "tool", tool_call_id: "call_create" },
    ]);
    expect(server.requests.every((request) => request.headers.authorization === "Bearer test-key")).toBe(
      true,
    );

    // gpt-4.1-mini: $0.40 input, $0.10 cached input, $1.60 output per million tokens.
    const perCall = (176 * 0.4 + 1_024 * 0.1 + 50 * 1.6) / 1_000_000;
    const summary = await kilo.usage.summary({ userId: "user_1" });
    expect(summary).toMatchObject({
      calls: 2,
      promptTokens: 2 * 176,
      cacheReadTokens: 2 * 1_024,
      completionTokens: 2 * 50,
    });
    expect(summary.costUsd).toBeCloseTo(2 * perCall, 10);
    const breakdown = await kilo.usage.breakdown({ userId: "user_1" });
    expect(breakdown.byModel.map((entry) => entry.model)).toEqual(["gpt-4.1-mini-2025-04-14"]);
  });

  it("streams a turn through kilo.stream from SSE chunks", async () => {
    server.requests.length = 0;
    server.reply((request) =>
      request.body.stream === true
        ? {
            sse: [
              chunk({ role: "assistant", content: "" }),
              chunk({ content: "We open " }),
              chunk({ content: "at 7 every day." }),
              chunk({}, { finishReason: "stop" }),
              usageChunk({ prompt: 300, completion: 9 }),
            ],
          }
        : { json: completion({ content: "We open at 7 every day." }) },
    );
    const kilo = createKilo({
      storage: memoryStorage(),
      providers: [openaiProvider({ baseURL: server.baseURL, apiKey: "test-key" })],
    });
    const bot = await kilo.bots.create({ userId: "user_1", name: "Crumb" });

    const events = [];
    for await (const event of kilo.stream({
      botId: bot.id,
      userId: "user_1",
      message: "When do you open?",
    })) {
      events.push(event);
    }

    const text = events.flatMap((event) => (event.type === "text-delta" ? [event.text] : [])).join("");
    expect(text).toBe("We open at 7 every day.");
    expect(events.at(-1)).toMatchObject({ type: "result", result: { reply: "We open at 7 every day." } });
    expect(server.requests.map((request) => request.body.stream)).toContain(true);
    const summary = await kilo.usage.summary({ userId: "user_1" });
    expect(summary).toMatchObject({ promptTokens: 300, completionTokens: 9 });
  });
});
