import { describe, expect, it } from "vitest";
import { KiloError } from "../../src/errors.js";
import type { LlmRequest, LlmStreamEvent } from "../../src/ports/llm-provider.js";
import { mockProvider } from "../../src/testing/index.js";

function request(text: string, extra: Partial<LlmRequest> = {}): LlmRequest {
  return {
    model: "mock-1",
    system: [{ text: "12345678" }],
    messages: [{ role: "user", content: [{ type: "text", text }] }],
    maxTokens: 1000,
    purpose: "chat",
    ...extra,
  };
}

async function collect(events: AsyncIterable<LlmStreamEvent>): Promise<LlmStreamEvent[]> {
  const out: LlmStreamEvent[] = [];
  for await (const event of events) out.push(event);
  return out;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

describe("mockProvider", () => {
  it("with recordRequests: false keeps no copies of the requests, and still answers and counts them", async () => {
    const quiet = mockProvider({ replies: ["one", "two"], recordRequests: false });
    const recording = mockProvider({ replies: ["one"] });
    expect((await quiet.complete(request("hi"))).content).toEqual([{ type: "text", text: "one" }]);
    const streamed = await collect(quiet.stream!(request("again")));
    expect(streamed.map((event) => (event.type === "text-delta" ? event.text : "")).join("")).toBe("two");
    await recording.complete(request("hi"));
    expect(quiet.requests).toEqual([]);
    expect(quiet.calls).toBe(2);
    expect(recording.requests.map((sent) => sent.messages)).toEqual([request("hi").messages]);
  });

  it("answers scripted replies in order, with tool calls and thinking", async () => {
    const provider = mockProvider({
      replies: [
        "plain text",
        {
          thinking: "They want the hours.",
          text: "Checking.",
          toolCalls: [
            { name: "get_hours", input: { day: "mon" } },
            { name: "get_menu", input: {} },
          ],
        },
        {
          toolCalls: [
            { name: "get_hours", input: {}, id: "custom" },
            { name: "x", input: {} },
          ],
        },
      ],
    });

    const first = await provider.complete(request("hi"));
    const second = await provider.complete(request("when?"));
    const third = await provider.complete(request("again"));

    expect(provider.name).toBe("mock");
    expect(provider.defaultModel).toBe("mock-1");
    expect(first).toMatchObject({
      content: [{ type: "text", text: "plain text" }],
      stopReason: "end_turn",
      model: "mock-1",
    });
    expect(second.content).toEqual([
      { type: "thinking", text: "They want the hours.", signature: "mock-signature" },
      { type: "text", text: "Checking." },
      { type: "tool_call", id: "call_1", name: "get_hours", input: { day: "mon" } },
      { type: "tool_call", id: "call_2", name: "get_menu", input: {} },
    ]);
    expect(second.stopReason).toBe("tool_use");
    expect(third.content.map((block) => (block.type === "tool_call" ? block.id : null))).toEqual([
      "custom",
      "call_3",
    ]);
  });

  it("estimates usage deterministically and lets a reply override it", async () => {
    const provider = mockProvider({
      replies: ["12345678", { text: "x", thinking: "1234", usage: { inputTokens: 7, cacheReadTokens: 3 } }],
    });

    // system 8 chars + message 4 chars = 12 chars -> 3 tokens; output 8 chars -> 2 tokens
    expect((await provider.complete(request("abcd"))).usage).toEqual({
      inputTokens: 3,
      outputTokens: 2,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      reasoningTokens: 0,
    });
    expect((await provider.complete(request("abcd"))).usage).toEqual({
      inputTokens: 7,
      outputTokens: 2,
      cacheReadTokens: 3,
      cacheWriteTokens: 0,
      reasoningTokens: 1,
    });
  });

  it("computes replies with respond()", async () => {
    const provider = mockProvider({
      name: "echo",
      model: "echo-2",
      respond: (received, index) => {
        const last = received.messages.at(-1)?.content[0];
        return `#${index} ${last?.type === "text" ? last.text : ""}`;
      },
    });

    expect((await provider.complete(request("one"))).content).toEqual([{ type: "text", text: "#0 one" }]);
    expect((await provider.complete(request("two"))).content).toEqual([{ type: "text", text: "#1 two" }]);
    expect(provider.calls).toBe(2);
    expect(() => mockProvider({ replies: [], respond: () => "x" })).toThrowError(/either replies or respond/);
  });

  it("records deep copies of requests without the signal", async () => {
    const provider = mockProvider({ replies: ["a"] });
    const sent = request("hello", { signal: new AbortController().signal, thinking: { budgetTokens: 1024 } });

    await provider.complete(sent);
    (sent.messages[0]?.content[0] as { text: string }).text = "mutated";

    expect(provider.requests).toHaveLength(1);
    expect(provider.requests[0]).not.toHaveProperty("signal");
    expect(provider.requests[0]?.messages[0]?.content[0]).toEqual({ type: "text", text: "hello" });
    expect(provider.requests[0]?.thinking).toEqual({ budgetTokens: 1024 });
  });

  it("simulates failures from KiloErrors, Errors and plain objects", async () => {
    const rejected = new KiloError("PROVIDER_REJECTED", "bad key");
    const provider = mockProvider({
      name: "flaky",
      replies: [
        { error: rejected },
        { error: new TypeError("fetch failed") },
        {
          error: { code: "PROVIDER_FAILED", message: "overloaded", retryable: true },
          usage: { inputTokens: 5 },
        },
      ],
    });

    expect(await rejection(provider.complete(request("a")))).toBe(rejected);
    expect(await rejection(provider.complete(request("b")))).toBeInstanceOf(TypeError);
    const third = await rejection(provider.complete(request("c")));
    expect(KiloError.is(third, "PROVIDER_FAILED")).toBe(true);
    expect(third).toMatchObject({
      retryable: true,
      provider: "flaky",
      details: { usage: { inputTokens: 5 } },
    });
  });

  it("throws REPLAY_EXHAUSTED with a clear message when the script runs out", async () => {
    const provider = mockProvider({ replies: ["only"] });
    await provider.complete(request("a"));

    const error = await rejection(provider.complete(request("b", { purpose: "classify" })));

    expect(KiloError.is(error, "REPLAY_EXHAUSTED")).toBe(true);
    expect((error as KiloError).message).toContain(
      "mock provider 'mock' has no reply scripted for call #2 (purpose: classify)",
    );
  });

  it("simulates latency and fails with ABORTED when aborted meanwhile", async () => {
    const provider = mockProvider({ latencyMs: 30, replies: ["a", "b"] });
    const started = performance.now();
    await provider.complete(request("a"));
    expect(performance.now() - started).toBeGreaterThanOrEqual(25);

    const controller = new AbortController();
    const pending = provider.complete(request("b", { signal: controller.signal }));
    controller.abort();
    expect(KiloError.is(await rejection(pending), "ABORTED")).toBe(true);
  });

  it("streams text in a few deltas, then done", async () => {
    const provider = mockProvider({
      replies: [
        { thinking: "hmm", text: "The bakery opens at seven.", toolCalls: [{ name: "t", input: {} }] },
      ],
    });

    const events = await collect(provider.stream!(request("when?")));

    expect(events[0]).toEqual({ type: "thinking-delta", text: "hmm" });
    const text = events.filter((event) => event.type === "text-delta").map((event) => event.text);
    expect(text.length).toBe(3);
    expect(text.join("")).toBe("The bakery opens at seven.");
    expect(events.at(-2)).toMatchObject({ type: "tool-call", call: { id: "call_1", name: "t" } });
    expect(events.at(-1)?.type).toBe("done");
    expect(provider.calls).toBe(1);
  });

  it("applies capability overrides and reset()", async () => {
    const provider = mockProvider({
      capabilities: { thinking: false },
      replies: [{ toolCalls: [{ name: "t", input: {} }] }],
    });
    expect(provider.capabilities).toEqual({ thinking: false, streaming: true, promptCaching: false });

    const first = await provider.complete(request("a"));
    provider.reset();
    expect(provider.calls).toBe(0);
    expect(provider.requests).toEqual([]);
    const again = await provider.complete(request("a"));
    expect(again).toEqual(first);
  });
});
