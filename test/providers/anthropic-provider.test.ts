import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import Anthropic from "@anthropic-ai/sdk";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type AnthropicClient,
  type AnthropicProviderOptions,
  anthropicProvider,
} from "../../adapters/providers/anthropic/index.js";
import { memoryStorage } from "../../adapters/storage/memory/index.js";
import {
  type ContentBlock,
  createKilo,
  DEFAULT_PRICES,
  KiloError,
  type LlmRequest,
  type LlmStreamEvent,
  priceOf,
} from "../../src/index.js";
import { mockProvider } from "../../src/testing/index.js";
import { ORDER_TRACKER } from "../fixtures.js";
import {
  errorReply,
  type FakeAnthropicServer,
  jsonReply,
  type RecordedRequest,
  type SseEvent,
  sseReply,
  startFakeAnthropic,
  streamEvents,
  type WireBlock,
  wireMessage,
} from "./fake-anthropic-server.js";

let server: FakeAnthropicServer;

beforeAll(async () => {
  server = await startFakeAnthropic();
});

afterEach(() => {
  server.reset();
});

afterAll(async () => {
  await server.close();
});

function provider(options: AnthropicProviderOptions = {}) {
  return anthropicProvider({ baseURL: server.baseURL, apiKey: "test-key", ...options });
}

function request(overrides: Partial<LlmRequest> = {}): LlmRequest {
  return {
    model: "claude-sonnet-4-6",
    system: [{ text: "You are Crumb, a bakery assistant.", cacheable: true }],
    messages: [{ role: "user", content: [{ type: "text", text: "When do you open?" }] }],
    maxTokens: 1024,
    ...overrides,
  };
}

/** The API key a request carried: SDK 1.x sends `Authorization: Bearer`, older ones `x-api-key`. */
function keyOf(recorded: RecordedRequest): string | undefined {
  const header = recorded.headers["x-api-key"] ?? recorded.headers.authorization;
  return typeof header === "string" ? header.replace(/^Bearer /, "") : undefined;
}

function sent(index = 0): RecordedRequest {
  const recorded = server.requests[index];
  if (recorded === undefined) throw new Error(`the fake server got no request #${index}`);
  return recorded;
}

async function failureOf(promise: Promise<unknown>): Promise<KiloError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!KiloError.is(error)) throw new Error(`expected a KiloError, got ${String(error)}`);
  return error;
}

/** Collects stream events until the stream ends or throws. */
async function drain(
  stream: AsyncIterable<LlmStreamEvent>,
): Promise<{ events: LlmStreamEvent[]; error: unknown }> {
  const events: LlmStreamEvent[] = [];
  try {
    for await (const event of stream) events.push(event);
    return { events, error: undefined };
  } catch (error) {
    return { events, error };
  }
}

function streamOf(options: AnthropicProviderOptions = {}, overrides: Partial<LlmRequest> = {}) {
  const llm = provider(options);
  if (llm.stream === undefined) throw new Error("the provider cannot stream");
  return llm.stream(request(overrides));
}

const TOOLS = [
  {
    name: "get_hours",
    description: "Opening hours for a day",
    inputSchema: { type: "object", properties: { day: { type: "string" } }, required: ["day"] },
  },
  {
    name: "list_orders",
    description: "Orders due on a day",
    inputSchema: { type: "object", properties: { day: { type: "string" } } },
  },
];

describe("anthropicProvider: complete", () => {
  it("sends the prompt in Anthropic's wire format and maps a plain text answer", async () => {
    server.enqueue(
      jsonReply(
        wireMessage([{ type: "text", text: "We open at 7." }], {
          model: "claude-sonnet-4-6-20260101",
          usage: { input_tokens: 30, output_tokens: 8 },
        }),
      ),
    );
    const llm = provider();
    expect(llm).toMatchObject({
      name: "anthropic",
      defaultModel: "claude-sonnet-4-6",
      capabilities: { thinking: true, streaming: true, promptCaching: true },
    });
    const response = await llm.complete(
      request({
        temperature: 0.2,
        providerOptions: { anthropic: { top_k: 5, metadata: { user_id: "user_1" } }, openai: { seed: 1 } },
      }),
    );

    expect(response).toEqual({
      content: [{ type: "text", text: "We open at 7." }],
      stopReason: "end_turn",
      usage: {
        inputTokens: 30,
        outputTokens: 8,
        cacheReadTokens: 0,
        cacheWriteTokens: 0,
        reasoningTokens: 0,
      },
      model: "claude-sonnet-4-6-20260101",
    });
    const { method, path, headers, body } = sent();
    expect(method).toBe("POST");
    expect(path).toBe("/v1/messages");
    expect(keyOf(sent())).toBe("test-key");
    expect(headers["anthropic-version"]).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(body).toEqual({
      model: "claude-sonnet-4-6",
      max_tokens: 1024,
      system: [
        { type: "text", text: "You are Crumb, a bakery assistant.", cache_control: { type: "ephemeral" } },
      ],
      messages: [{ role: "user", content: [{ type: "text", text: "When do you open?" }] }],
      temperature: 0.2,
      top_k: 5,
      metadata: { user_id: "user_1" },
    });
    // The SDK must not retry on its own: the gateway does.
    expect(server.requests).toHaveLength(1);
  });

  it("sets cache breakpoints on the last two cacheable system blocks and the last tool, unless turned off", async () => {
    const answer = () => jsonReply(wireMessage([{ type: "text", text: "ok" }]));
    server.enqueue(answer(), answer());
    const system = [
      { text: "host preamble", cacheable: true },
      { text: "soul and rules", cacheable: true },
      { text: "standing memories", cacheable: true },
      { text: "Current time: Saturday" },
      { text: "" },
    ];
    await provider().complete(request({ system, tools: TOOLS }));
    const cached = sent(0).body;
    expect(cached.system).toEqual([
      { type: "text", text: "host preamble" },
      { type: "text", text: "soul and rules", cache_control: { type: "ephemeral" } },
      { type: "text", text: "standing memories", cache_control: { type: "ephemeral" } },
      { type: "text", text: "Current time: Saturday" },
    ]);
    expect(cached.tools).toEqual([
      { name: "get_hours", description: "Opening hours for a day", input_schema: TOOLS[0]?.inputSchema },
      {
        name: "list_orders",
        description: "Orders due on a day",
        input_schema: TOOLS[1]?.inputSchema,
        cache_control: { type: "ephemeral" },
      },
    ]);

    const uncached = provider({ cacheControl: false });
    expect(uncached.capabilities.promptCaching).toBe(false);
    await uncached.complete(request({ system, tools: TOOLS }));
    expect(JSON.stringify(sent(1).body)).not.toContain("cache_control");

    // With history too, the request stays within the API's four breakpoints.
    server.enqueue(answer());
    const history: LlmRequest["messages"] = [
      { role: "user", content: [{ type: "text", text: "hi" }] },
      { role: "assistant", content: [{ type: "text", text: "hello" }] },
      { role: "user", content: [{ type: "text", text: "When do you open?" }] },
    ];
    await provider().complete(request({ system, tools: TOOLS, messages: history }));
    expect(JSON.stringify(sent(2).body).match(/cache_control/g)).toHaveLength(4);
  });

  it("maps a tool call and sends the tool result back on the next turn", async () => {
    server.enqueue(
      jsonReply(
        wireMessage([
          { type: "text", text: "Let me check." },
          { type: "tool_use", id: "toolu_01", name: "get_hours", input: { day: "monday" } },
        ]),
      ),
      jsonReply(wireMessage([{ type: "text", text: "We open at 7 on Mondays." }])),
    );
    const llm = provider();
    const first = await llm.complete(request({ tools: TOOLS }));
    expect(first.stopReason).toBe("tool_use");
    expect(first.content).toEqual([
      { type: "text", text: "Let me check." },
      { type: "tool_call", id: "toolu_01", name: "get_hours", input: { day: "monday" } },
    ]);

    const second = await llm.complete(
      request({
        tools: TOOLS,
        messages: [
          ...request().messages,
          { role: "assistant", content: first.content },
          {
            role: "user",
            // Out of the API's order on purpose: tool results must lead the user turn.
            content: [
              { type: "text", text: "(one tool failed)" },
              { type: "tool_result", toolCallId: "toolu_01", content: '{"opens":"07:00"}', isError: true },
            ],
          },
        ],
      }),
    );
    expect(second.content).toEqual([{ type: "text", text: "We open at 7 on Mondays." }]);
    expect(sent(1).body.messages.slice(1)).toEqual([
      {
        role: "assistant",
        content: [
          { type: "text", text: "Let me check." },
          // The end of the conversation so far is a cache breakpoint, so the next call reads it from the cache.
          {
            type: "tool_use",
            id: "toolu_01",
            name: "get_hours",
            input: { day: "monday" },
            cache_control: { type: "ephemeral" },
          },
        ],
      },
      {
        role: "user",
        content: [
          { type: "tool_result", tool_use_id: "toolu_01", content: '{"opens":"07:00"}', is_error: true },
          { type: "text", text: "(one tool failed)" },
        ],
      },
    ]);
  });

  it("asks for extended thinking and sends thinking blocks back unchanged, signatures included", async () => {
    const signature = "EqQBCkYIBxgCKkB+sig/with+base64==";
    server.enqueue(
      jsonReply(
        wireMessage([
          { type: "thinking", thinking: "The user wants Monday hours; use the tool.", signature },
          { type: "redacted_thinking", data: "EmwKAhgBEgy3va3pzix/LafPsn4a" },
          { type: "tool_use", id: "toolu_02", name: "get_hours", input: { day: "monday" } },
        ]),
      ),
      jsonReply(wireMessage([{ type: "text", text: "7 am." }])),
    );
    const llm = provider();
    const thinking = { budgetTokens: 2000 };
    const first = await llm.complete(request({ tools: TOOLS, thinking, maxTokens: 4096, temperature: 0.7 }));

    expect(sent(0).body.thinking).toEqual({ type: "enabled", budget_tokens: 2000 });
    expect(sent(0).body).not.toHaveProperty("temperature");
    expect(first.warnings).toEqual([expect.stringContaining("temperature is ignored")]);
    expect(first.content).toEqual([
      { type: "thinking", text: "The user wants Monday hours; use the tool.", signature },
      { type: "thinking", text: "EmwKAhgBEgy3va3pzix/LafPsn4a", redacted: true },
      { type: "tool_call", id: "toolu_02", name: "get_hours", input: { day: "monday" } },
    ]);

    await llm.complete(
      request({
        tools: TOOLS,
        thinking,
        maxTokens: 4096,
        messages: [
          ...request().messages,
          { role: "assistant", content: first.content },
          {
            role: "user",
            content: [{ type: "tool_result", toolCallId: "toolu_02", content: "07:00-18:00" }],
          },
        ],
      }),
    );
    expect(sent(1).body.messages[1]).toEqual({
      role: "assistant",
      content: [
        { type: "thinking", thinking: "The user wants Monday hours; use the tool.", signature },
        { type: "redacted_thinking", data: "EmwKAhgBEgy3va3pzix/LafPsn4a" },
        {
          type: "tool_use",
          id: "toolu_02",
          name: "get_hours",
          input: { day: "monday" },
          cache_control: { type: "ephemeral" },
        },
      ],
    });
    expect(sent(1).body.messages[2]).toEqual({
      role: "user",
      content: [{ type: "tool_result", tool_use_id: "toolu_02", content: "07:00-18:00" }],
    });
  });

  it("drops thinking without a signature (another provider's) with a warning", async () => {
    server.enqueue(jsonReply(wireMessage([{ type: "text", text: "ok" }])));
    const response = await provider().complete(
      request({
        messages: [
          { role: "user", content: [{ type: "text", text: "hi" }] },
          {
            role: "assistant",
            content: [
              { type: "thinking", text: "unsigned reasoning" },
              { type: "text", text: "hello" },
            ],
          },
          { role: "user", content: [{ type: "text", text: "again" }] },
        ],
      }),
    );
    expect(sent().body.messages[1]).toEqual({
      role: "assistant",
      content: [{ type: "text", text: "hello", cache_control: { type: "ephemeral" } }],
    });
    expect(response.warnings).toEqual([expect.stringContaining("without a signature")]);
  });

  it("maps parallel tool calls and sends every result back in one user turn", async () => {
    server.enqueue(
      jsonReply(
        wireMessage([
          { type: "tool_use", id: "toolu_a", name: "get_hours", input: { day: "friday" } },
          { type: "tool_use", id: "toolu_b", name: "list_orders", input: { day: "friday" } },
        ]),
      ),
      jsonReply(wireMessage([{ type: "text", text: "Open 7-18, two orders." }])),
    );
    const llm = provider();
    const first = await llm.complete(request({ tools: TOOLS }));
    const calls = first.content.filter((block) => block.type === "tool_call");
    expect(calls.map((call) => call.id)).toEqual(["toolu_a", "toolu_b"]);

    const results: ContentBlock[] = calls.map((call) => ({
      type: "tool_result",
      toolCallId: call.id,
      content: `result of ${call.name}`,
    }));
    await llm.complete(
      request({
        tools: TOOLS,
        messages: [
          ...request().messages,
          { role: "assistant", content: first.content },
          { role: "user", content: results },
        ],
      }),
    );
    expect(sent(1).body.messages[2]?.content).toEqual([
      { type: "tool_result", tool_use_id: "toolu_a", content: "result of get_hours" },
      { type: "tool_result", tool_use_id: "toolu_b", content: "result of list_orders" },
    ]);
  });

  it("maps cache read and write tokens and reported thinking tokens", async () => {
    const message = wireMessage([{ type: "text", text: "cached" }], {
      usage: {
        input_tokens: 12,
        output_tokens: 340,
        cache_read_input_tokens: 2048,
        cache_creation_input_tokens: 512,
      },
    });
    server.enqueue({
      kind: "json",
      body: { ...message, usage: { ...message.usage, output_tokens_details: { thinking_tokens: 300 } } },
    });
    const response = await provider().complete(request());
    expect(response.usage).toEqual({
      inputTokens: 12,
      outputTokens: 340,
      cacheReadTokens: 2048,
      cacheWriteTokens: 512,
      reasoningTokens: 300,
    });
  });

  it("maps every stop reason", async () => {
    const cases: Array<[string | null, string]> = [
      ["max_tokens", "max_tokens"],
      ["stop_sequence", "stop_sequence"],
      ["refusal", "refusal"],
      ["pause_turn", "other"],
      [null, "other"],
    ];
    for (const [wire] of cases) {
      server.enqueue(jsonReply(wireMessage([{ type: "text", text: "…" }], { stopReason: wire })));
    }
    const llm = provider();
    for (const [, expected] of cases) {
      expect((await llm.complete(request())).stopReason).toBe(expected);
    }
  });

  it("uses a host's own SDK client as it is", async () => {
    server.enqueue(jsonReply(wireMessage([{ type: "text", text: "hi" }])));
    const client: AnthropicClient = new Anthropic({
      apiKey: "host-key",
      baseURL: server.baseURL,
      maxRetries: 0,
    });
    const response = await anthropicProvider({ client, name: "claude" }).complete(request());
    expect(response.content).toEqual([{ type: "text", text: "hi" }]);
    expect(keyOf(sent())).toBe("host-key");
  });

  it("merges providerOptions under its own name too", async () => {
    server.enqueue(jsonReply(wireMessage([{ type: "text", text: "hi" }])));
    await provider({ name: "claude-backup" }).complete(
      request({ providerOptions: { anthropic: { top_k: 3 }, "claude-backup": { top_k: 7, stream: true } } }),
    );
    expect(sent().body.top_k).toBe(7);
    expect(sent().body).not.toHaveProperty("stream");
  });
});

describe("anthropicProvider: stream", () => {
  it("yields text deltas and a done event with the whole response and usage", async () => {
    const message = wireMessage([{ type: "text", text: "Fresh croissants every morning." }], {
      model: "claude-sonnet-4-6-20260101",
      usage: {
        input_tokens: 40,
        output_tokens: 9,
        cache_read_input_tokens: 1500,
        cache_creation_input_tokens: 0,
      },
    });
    server.enqueue(sseReply(message, 6));
    const { events, error } = await drain(streamOf());
    expect(error).toBeUndefined();
    const deltas = events.filter((event) => event.type === "text-delta");
    expect(deltas.length).toBeGreaterThan(3);
    expect(deltas.map((event) => event.text).join("")).toBe("Fresh croissants every morning.");
    expect(events.at(-1)).toEqual({
      type: "done",
      response: {
        content: [{ type: "text", text: "Fresh croissants every morning." }],
        stopReason: "end_turn",
        // Input and cache counts from message_start, output from message_delta.
        usage: {
          inputTokens: 40,
          outputTokens: 9,
          cacheReadTokens: 1500,
          cacheWriteTokens: 0,
          reasoningTokens: 0,
        },
        model: "claude-sonnet-4-6-20260101",
      },
    });
    expect(sent().body.stream).toBe(true);
  });

  it("assembles thinking, its signature and tool-call JSON from deltas", async () => {
    const signature = "Sig+streamed/base64==";
    const message = wireMessage([
      { type: "thinking", thinking: "Two lookups are needed.", signature },
      { type: "tool_use", id: "toolu_s1", name: "get_hours", input: { day: "saturday" } },
      { type: "tool_use", id: "toolu_s2", name: "list_orders", input: { day: "saturday", status: ["open"] } },
    ]);
    server.enqueue(sseReply(message, 5));
    const { events, error } = await drain(
      streamOf({}, { tools: TOOLS, thinking: { budgetTokens: 1024 }, maxTokens: 2048 }),
    );
    expect(error).toBeUndefined();
    expect(
      events
        .filter((event) => event.type === "thinking-delta")
        .map((event) => event.text)
        .join(""),
    ).toBe("Two lookups are needed.");
    const toolCalls = events.filter((event) => event.type === "tool-call").map((event) => event.call);
    expect(toolCalls).toEqual([
      { type: "tool_call", id: "toolu_s1", name: "get_hours", input: { day: "saturday" } },
      {
        type: "tool_call",
        id: "toolu_s2",
        name: "list_orders",
        input: { day: "saturday", status: ["open"] },
      },
    ]);
    // Each tool call is yielded once its JSON is complete, before the next block starts.
    const kinds = events.map((event) => event.type);
    expect(kinds.indexOf("tool-call")).toBeLessThan(kinds.lastIndexOf("tool-call"));
    const done = events.at(-1);
    expect(done?.type === "done" && done.response.content).toEqual([
      { type: "thinking", text: "Two lookups are needed.", signature },
      ...toolCalls,
    ]);
    expect(done?.type === "done" && done.response.stopReason).toBe("tool_use");
    expect(sent().body.thinking).toEqual({ type: "enabled", budget_tokens: 1024 });
  });

  it("fails retryably after yielding the deltas when the connection drops mid-stream", async () => {
    const message = wireMessage([{ type: "text", text: "This answer is cut short somewhere." }], {
      usage: { input_tokens: 77, output_tokens: 30 },
    });
    const events = streamEvents(message, 4);
    const cut = events.findIndex((event) => event.event === "content_block_delta") + 3;
    server.enqueue({ kind: "sse", events: events.slice(0, cut), end: "destroy" });
    const { events: yielded, error } = await drain(streamOf());
    expect(yielded.map((event) => event.type)).toEqual(["text-delta", "text-delta", "text-delta"]);
    expect(KiloError.is(error, "PROVIDER_FAILED")).toBe(true);
    const failure = error as KiloError;
    expect(failure.retryable).toBe(true);
    expect(failure.provider).toBe("anthropic");
    expect(failure.message).toContain("before message_stop");
    // The tokens the cut-off call consumed travel with the error, so the gateway records them.
    expect(failure.details).toMatchObject({ usage: { inputTokens: 77, outputTokens: 1 } });
  });

  it("fails retryably when the stream ends cleanly but without message_stop", async () => {
    const events = streamEvents(wireMessage([{ type: "text", text: "half" }]));
    server.enqueue({ kind: "sse", events: events.slice(0, -2) });
    const { events: yielded, error } = await drain(streamOf());
    expect(yielded.some((event) => event.type === "text-delta")).toBe(true);
    expect(KiloError.is(error, "PROVIDER_FAILED")).toBe(true);
    expect((error as KiloError).retryable).toBe(true);
    expect((error as KiloError).message).toContain("message_stop");
  });

  it("maps an error event mid-stream", async () => {
    const events = streamEvents(wireMessage([{ type: "text", text: "Overloaded soon" }]));
    const errorEvent: SseEvent = {
      event: "error",
      data: { type: "error", error: { type: "overloaded_error", message: "Overloaded" } },
    };
    server.enqueue({ kind: "sse", events: [...events.slice(0, 5), errorEvent] });
    const { events: yielded, error } = await drain(streamOf());
    expect(yielded.length).toBeGreaterThan(0);
    expect(KiloError.is(error, "PROVIDER_FAILED")).toBe(true);
    const failure = error as KiloError;
    expect(failure.retryable).toBe(true);
    expect(failure.details).toMatchObject({
      status: 529,
      type: "overloaded_error",
      usage: { inputTokens: 25 },
    });
    expect(failure.message).toContain("Overloaded");
  });

  it("stops with ABORTED when the signal aborts mid-stream", async () => {
    const events = streamEvents(wireMessage([{ type: "text", text: "a long answer that never ends" }]));
    server.enqueue({ kind: "sse", events: events.slice(0, 5), end: "hang" });
    const controller = new AbortController();
    const yielded: LlmStreamEvent[] = [];
    let error: unknown;
    try {
      for await (const event of streamOf({}, { signal: controller.signal })) {
        yielded.push(event);
        controller.abort();
      }
    } catch (caught) {
      error = caught;
    }
    // Nothing is yielded after the abort, even events the SDK had already buffered.
    expect(yielded).toHaveLength(1);
    expect(KiloError.is(error, "ABORTED")).toBe(true);
  });

  it("times out a stream that stalls between events", async () => {
    const events = streamEvents(wireMessage([{ type: "text", text: "stalls" }]));
    server.enqueue({ kind: "sse", events: events.slice(0, 3), end: "hang" });
    const started = Date.now();
    const { error } = await drain(streamOf({ timeoutMs: 150 }));
    expect(Date.now() - started).toBeLessThan(2000);
    expect(KiloError.is(error, "PROVIDER_FAILED")).toBe(true);
    expect((error as KiloError).retryable).toBe(true);
    expect((error as KiloError).message).toContain("timed out");
  });

  it("maps an HTTP error before the stream starts", async () => {
    server.enqueue(errorReply(529, "overloaded_error", "Overloaded"));
    const { events, error } = await drain(streamOf());
    expect(events).toEqual([]);
    expect(KiloError.is(error, "PROVIDER_FAILED")).toBe(true);
    expect((error as KiloError).retryable).toBe(true);
    // Nothing was consumed, so no usage rides along.
    expect((error as KiloError).details).not.toHaveProperty("usage");
  });
});

describe("anthropicProvider: failures", () => {
  it("maps 429 to a retryable PROVIDER_FAILED with the retry-after seconds", async () => {
    server.enqueue(
      errorReply(429, "rate_limit_error", "Number of request tokens has exceeded your rate limit.", {
        "retry-after": "7",
      }),
    );
    const failure = await failureOf(provider().complete(request()));
    expect(failure.code).toBe("PROVIDER_FAILED");
    expect(failure.retryable).toBe(true);
    expect(failure.status).toBe(429);
    expect(failure.provider).toBe("anthropic");
    expect(failure.details).toMatchObject({ status: 429, type: "rate_limit_error", retryAfterSeconds: 7 });
    expect(failure.message).toContain("retry after 7s");
    expect(server.requests).toHaveLength(1);
  });

  it("maps 529 overloaded_error and 500 to retryable failures", async () => {
    server.enqueue(
      errorReply(529, "overloaded_error", "Overloaded"),
      errorReply(500, "api_error", "Internal server error"),
    );
    const overloaded = await failureOf(provider().complete(request()));
    expect(overloaded).toMatchObject({ code: "PROVIDER_FAILED", retryable: true });
    expect(overloaded.details).toMatchObject({ status: 529, type: "overloaded_error" });
    const internal = await failureOf(provider().complete(request()));
    expect(internal).toMatchObject({ code: "PROVIDER_FAILED", retryable: true });
    expect(internal.details).toMatchObject({ status: 500, type: "api_error" });
    expect(server.requests).toHaveLength(2);
  });

  it("maps 401 to PROVIDER_REJECTED with a hint, never echoing the key", async () => {
    // A vendor that echoes the key back still does not get it into kilo's error.
    server.enqueue(errorReply(401, "authentication_error", "invalid x-api-key: sk-ant-secret-123"));
    const failure = await failureOf(provider({ apiKey: "sk-ant-secret-123" }).complete(request()));
    expect(failure.code).toBe("PROVIDER_REJECTED");
    expect(failure.retryable).toBe(false);
    expect(failure.message).toContain("ANTHROPIC_API_KEY");
    expect(failure.message).not.toContain("sk-ant-secret-123");
    expect(JSON.stringify(failure.details)).not.toContain("sk-ant-secret-123");
  });

  it("maps 400 invalid_request_error to PROVIDER_REJECTED", async () => {
    server.enqueue(errorReply(400, "invalid_request_error", "max_tokens: must be at least 1"));
    const failure = await failureOf(provider().complete(request()));
    expect(failure).toMatchObject({ code: "PROVIDER_REJECTED", retryable: false });
    expect(failure.message).toContain("max_tokens: must be at least 1");
    expect(failure.details).toMatchObject({ status: 400, type: "invalid_request_error" });
  });

  it("times out a server that never answers", async () => {
    server.enqueue({ kind: "hang" });
    const started = Date.now();
    const failure = await failureOf(provider({ timeoutMs: 150 }).complete(request()));
    expect(Date.now() - started).toBeLessThan(2000);
    expect(failure).toMatchObject({ code: "PROVIDER_FAILED", retryable: true, status: 504 });
    expect(failure.message).toContain("timed out");
  });

  it("maps a malformed JSON body and a body that is not a message to retryable failures", async () => {
    server.enqueue(
      { kind: "raw", body: '{"id":"msg_1","content":[{"type":"te' },
      { kind: "json", body: { ok: true } },
    );
    const broken = await failureOf(provider().complete(request()));
    expect(broken).toMatchObject({ code: "PROVIDER_FAILED", retryable: true });
    expect(broken.message).toContain("malformed");
    const shapeless = await failureOf(provider().complete(request()));
    expect(shapeless).toMatchObject({ code: "PROVIDER_FAILED", retryable: true });
    expect(shapeless.message).toContain("content array");
  });

  it("maps an unreachable server to a retryable failure", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const failure = await failureOf(provider({ baseURL: `http://127.0.0.1:${port}` }).complete(request()));
    expect(failure).toMatchObject({ code: "PROVIDER_FAILED", retryable: true });
    expect(failure.message).toContain("could not be reached");
  });

  it("stops with ABORTED when the signal aborts, before or during the call", async () => {
    server.enqueue({ kind: "hang" });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const during = await failureOf(provider().complete(request({ signal: controller.signal })));
    expect(during.code).toBe("ABORTED");
    const before = await failureOf(provider().complete(request({ signal: AbortSignal.abort() })));
    expect(before.code).toBe("ABORTED");
  });

  it("reads the API key at call time and fails on first use without one", async () => {
    const saved = process.env.ANTHROPIC_API_KEY;
    delete process.env.ANTHROPIC_API_KEY;
    try {
      const llm = anthropicProvider({ baseURL: server.baseURL });
      const missing = await failureOf(llm.complete(request()));
      expect(missing.code).toBe("CONFIGURATION_INVALID");
      expect(missing.message).toContain("apiKey");
      expect(missing.message).toContain("ANTHROPIC_API_KEY");
      const streamed = await drain(streamOf({ apiKey: undefined }));
      expect(KiloError.is(streamed.error, "CONFIGURATION_INVALID")).toBe(true);
      expect(server.requests).toHaveLength(0);

      process.env.ANTHROPIC_API_KEY = "sk-ant-from-env";
      server.enqueue(jsonReply(wireMessage([{ type: "text", text: "hi" }])));
      await llm.complete(request());
      expect(keyOf(sent())).toBe("sk-ant-from-env");
      server.enqueue(errorReply(401, "authentication_error", "invalid x-api-key"));
      const refused = await failureOf(llm.complete(request()));
      expect(refused.message).not.toContain("sk-ant-from-env");
    } finally {
      if (saved === undefined) delete process.env.ANTHROPIC_API_KEY;
      else process.env.ANTHROPIC_API_KEY = saved;
    }
  });

  it("rejects bad options at construction", () => {
    expect(() => anthropicProvider({ timeoutMs: 0 })).toThrow(/timeoutMs/);
    expect(() => anthropicProvider({ client: {} as AnthropicClient })).toThrow(/client/);
  });
});

describe("anthropicProvider inside kilo", () => {
  const USAGE = {
    input_tokens: 1000,
    output_tokens: 100,
    cache_read_input_tokens: 500,
    cache_creation_input_tokens: 200,
  };

  function lastUserBlocks(recorded: RecordedRequest): WireBlock[] {
    return recorded.body.messages.at(-1)?.content ?? [];
  }

  const ORDER = { customer: "Maria", item: "chocolate cake", pickup_day: "Saturday" };

  // The skill's create tool: the shared `record_create` (naming the skill) or a per-skill `order_tracker_create`.
  function createCall(
    recorded: RecordedRequest,
  ): { name: string; input: Record<string, unknown> } | undefined {
    const names = new Set(recorded.body.tools?.map((tool) => tool.name));
    if (names.has("record_create"))
      return { name: "record_create", input: { skill: "Order Tracker", data: ORDER } };
    if (names.has("order_tracker_create")) return { name: "order_tracker_create", input: ORDER };
    return undefined;
  }

  it("runs a bakery turn: tool call, stored record, final answer, priced usage", async () => {
    const model = "claude-haiku-4-5-20251001";
    server.fallback((recorded) => {
      const answered = lastUserBlocks(recorded).some((block) => block.type === "tool_result");
      const call = createCall(recorded);
      if (call !== undefined && !answered) {
        const block = { type: "tool_use", id: "toolu_bakery", ...call };
        return jsonReply(wireMessage([block], { model, usage: USAGE }));
      }
      const text = answered ? "Got it: chocolate cake for Maria on Saturday." : "Noted.";
      return jsonReply(wireMessage([{ type: "text", text }], { model, usage: USAGE }));
    });
    const kilo = createKilo({
      storage: memoryStorage(),
      providers: [
        anthropicProvider({ baseURL: server.baseURL, apiKey: "test-key", defaultModel: "claude-haiku-4-5" }),
      ],
    });
    const bot = await kilo.bots.create({ userId: "user_1", name: "Crumb" });
    const skill = await kilo.skills.create(bot.id, ORDER_TRACKER);

    const result = await kilo.chat({
      botId: bot.id,
      userId: "user_1",
      message: "New order: Maria, chocolate cake, Saturday",
    });

    expect(result.reply).toBe("Got it: chocolate cake for Maria on Saturday.");
    const stored = await kilo.records.list(bot.id, skill.id);
    expect(stored.items.map((record) => record.data)).toEqual([ORDER]);
    const chat = server.requests.filter((recorded) => createCall(recorded) !== undefined);
    expect(chat).toHaveLength(2);
    expect(chat[0]?.body.model).toBe("claude-haiku-4-5");
    expect(chat[0]?.body.system?.some((block) => block.cache_control !== undefined)).toBe(true);
    expect(chat[0]?.body.tools?.at(-1)?.cache_control).toEqual({ type: "ephemeral" });
    expect(lastUserBlocks(chat[1] as RecordedRequest)[0]).toMatchObject({
      type: "tool_result",
      tool_use_id: "toolu_bakery",
    });

    const calls = server.requests.length;
    const summary = await kilo.usage.summary({ userId: "user_1" });
    const perCall = priceOf(
      {
        inputTokens: 1000,
        outputTokens: 100,
        cacheReadTokens: 500,
        cacheWriteTokens: 200,
        reasoningTokens: 0,
      },
      "claude-haiku-4-5-20251001",
    );
    // Haiku 4.5: $1 in, $5 out, $1.25 cache write, $0.10 cache read per million tokens.
    expect(DEFAULT_PRICES["claude-haiku-4-5"]).toEqual({
      input: 1,
      output: 5,
      cacheWrite: 1.25,
      cacheRead: 0.1,
    });
    expect(perCall).toBeCloseTo(0.0018, 10);
    expect(summary).toMatchObject({
      calls,
      promptTokens: 1000 * calls,
      completionTokens: 100 * calls,
      cacheReadTokens: 500 * calls,
      cacheWriteTokens: 200 * calls,
    });
    expect(summary.costUsd).toBeCloseTo(perCall * calls, 10);
    await kilo.close();
  });

  it("falls back to the next provider when Anthropic stays overloaded", async () => {
    server.fallback(errorReply(529, "overloaded_error", "Overloaded"));
    const backup = mockProvider({ name: "backup", respond: () => "Answer from the backup provider." });
    const kilo = createKilo({
      storage: memoryStorage(),
      providers: [anthropicProvider({ baseURL: server.baseURL, apiKey: "test-key" }), backup],
    });
    const bot = await kilo.bots.create({ userId: "user_1", name: "Crumb" });
    const result = await kilo.chat({ botId: bot.id, userId: "user_1", message: "Hello there" });
    expect(result.reply).toBe("Answer from the backup provider.");
    expect(server.requests.length).toBeGreaterThanOrEqual(2);
    await kilo.close();
  });
});
