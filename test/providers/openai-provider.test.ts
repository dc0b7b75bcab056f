import OpenAI from "openai";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import {
  isOpenAIReasoningModel,
  type OpenAIClient,
  type OpenAIProviderOptions,
  openaiProvider,
} from "../../adapters/providers/openai/index.js";
import { KiloError, type LlmRequest, type LlmStreamEvent } from "../../src/index.js";
import {
  chunk,
  completion,
  errorBody,
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

afterEach(() => {
  server.requests.length = 0;
  vi.unstubAllEnvs();
});

function provider(options: OpenAIProviderOptions = {}) {
  return openaiProvider({ baseURL: server.baseURL, apiKey: "test-key", ...options });
}

const ORDER_TOOL = {
  name: "order_create",
  description: "Stores an order.",
  inputSchema: {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    type: "object",
    properties: { customer: { type: "string" }, item: { type: "string" } },
    required: ["customer", "item"],
  },
};

function request(overrides: Partial<LlmRequest> = {}): LlmRequest {
  return {
    model: "gpt-4.1-mini",
    system: [{ text: "You are Crumb, a bakery assistant.", cacheable: true }, { text: "Be brief." }],
    messages: [{ role: "user", content: [{ type: "text", text: "When do you open?" }] }],
    maxTokens: 512,
    ...overrides,
  };
}

async function failure(promise: Promise<unknown>): Promise<KiloError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!KiloError.is(error)) throw new Error(`expected a KiloError, got ${String(error)}`);
  return error;
}

async function collect(events: AsyncIterable<LlmStreamEvent>) {
  const seen: LlmStreamEvent[] = [];
  try {
    for await (const event of events) seen.push(event);
  } catch (error) {
    return { seen, error };
  }
  return { seen, error: undefined };
}

describe("openaiProvider: requests and responses", () => {
  it("answers plain text and sends the system prompt, messages and key on the wire", async () => {
    server.reply([{ json: completion({ content: "We open at 7.", usage: { prompt: 120, completion: 6 } }) }]);
    const openai = provider();
    expect(openai).toMatchObject({
      name: "openai",
      defaultModel: "gpt-4.1-mini",
      capabilities: { thinking: false, streaming: true, promptCaching: true },
    });

    const response = await openai.complete(request({ temperature: 0.2 }));

    expect(response).toEqual({
      content: [{ type: "text", text: "We open at 7." }],
      stopReason: "end_turn",
      usage: {
        inputTokens: 120,
        outputTokens: 6,
        cacheReadTokens: 0,
        cacheWriteTokens: 0,
        reasoningTokens: 0,
      },
      model: "gpt-4.1-mini-2025-04-14",
    });
    const sent = server.requests[0]!;
    expect(sent.path).toBe("/v1/chat/completions");
    expect(sent.headers.authorization).toBe("Bearer test-key");
    expect(sent.body).toEqual({
      model: "gpt-4.1-mini",
      messages: [
        { role: "system", content: "You are Crumb, a bakery assistant.\n\nBe brief." },
        { role: "user", content: "When do you open?" },
      ],
      max_completion_tokens: 512,
      temperature: 0.2,
    });
  });

  it("maps a tool call, then sends the tool result back as a tool message", async () => {
    server.reply([
      {
        json: completion({
          content: "Let me store that.",
          toolCalls: [
            { id: "call_abc", name: "order_create", arguments: { customer: "Maria", item: "cake" } },
          ],
        }),
      },
      { json: completion({ content: "Stored Maria's cake." }) },
    ]);
    const openai = provider();
    const first = await openai.complete(request({ tools: [ORDER_TOOL] }));
    expect(first.stopReason).toBe("tool_use");
    expect(first.content).toEqual([
      { type: "text", text: "Let me store that." },
      { type: "tool_call", id: "call_abc", name: "order_create", input: { customer: "Maria", item: "cake" } },
    ]);
    expect(server.requests[0]!.body.tools).toEqual([
      {
        type: "function",
        function: {
          name: "order_create",
          description: "Stores an order.",
          parameters: {
            type: "object",
            properties: { customer: { type: "string" }, item: { type: "string" } },
            required: ["customer", "item"],
          },
        },
      },
    ]);
    expect(server.requests[0]!.body).not.toHaveProperty("parallel_tool_calls");

    const second = await openai.complete(
      request({
        tools: [ORDER_TOOL],
        messages: [
          ...request().messages,
          { role: "assistant", content: first.content },
          {
            role: "user",
            content: [{ type: "tool_result", toolCallId: "call_abc", content: '{"id":"rec_1"}' }],
          },
        ],
      }),
    );
    expect(second.content).toEqual([{ type: "text", text: "Stored Maria's cake." }]);
    expect(server.requests[1]!.body.messages!.slice(1)).toEqual([
      { role: "user", content: "When do you open?" },
      {
        role: "assistant",
        content: "Let me store that.",
        tool_calls: [
          {
            id: "call_abc",
            type: "function",
            function: { name: "order_create", arguments: '{"customer":"Maria","item":"cake"}' },
          },
        ],
      },
      { role: "tool", tool_call_id: "call_abc", content: '{"id":"rec_1"}' },
    ]);
  });

  it("maps parallel tool calls and sends both results, errors marked", async () => {
    server.reply([
      {
        json: completion({
          toolCalls: [
            { id: "call_1", name: "order_create", arguments: { customer: "Ana", item: "tart" } },
            { id: "call_2", name: "order_create", arguments: { customer: "Tom", item: "bread" } },
          ],
        }),
      },
      { json: completion({ content: "Both stored." }) },
    ]);
    const openai = provider();
    const first = await openai.complete(request({ tools: [ORDER_TOOL] }));
    expect(first.content.map((block) => block.type === "tool_call" && block.id)).toEqual([
      "call_1",
      "call_2",
    ]);
    await openai.complete(
      request({
        messages: [
          ...request().messages,
          { role: "assistant", content: first.content },
          {
            role: "user",
            content: [
              { type: "tool_result", toolCallId: "call_1", content: "ok" },
              { type: "tool_result", toolCallId: "call_2", content: "item is required", isError: true },
              { type: "text", text: "Thanks!" },
            ],
          },
        ],
      }),
    );
    expect(server.requests[1]!.body.messages!.slice(2)).toEqual([
      expect.objectContaining({ role: "assistant", content: null }),
      { role: "tool", tool_call_id: "call_1", content: "ok" },
      { role: "tool", tool_call_id: "call_2", content: "Error: item is required" },
      { role: "user", content: "Thanks!" },
    ]);
  });

  it("reports cached prompt tokens as cache reads and reasoning tokens separately", async () => {
    server.reply([
      {
        json: completion({
          content: "Hi",
          usage: { prompt: 2_000, cached: 1_536, completion: 300, reasoning: 256 },
        }),
      },
    ]);
    const response = await provider().complete(request());
    expect(response.usage).toEqual({
      inputTokens: 464,
      cacheReadTokens: 1_536,
      cacheWriteTokens: 0,
      outputTokens: 300,
      reasoningTokens: 256,
    });
  });

  it("sends reasoning models a developer message and reasoning_effort, and no temperature", async () => {
    server.reply(() => ({ json: completion({ content: "Done.", model: "o4-mini-2025-04-16" }) }));
    const openai = provider();
    const response = await openai.complete(
      request({ model: "o4-mini", thinking: { budgetTokens: 8_000 }, temperature: 0.7 }),
    );
    const body = server.requests[0]!.body;
    expect(body.reasoning_effort).toBe("medium");
    expect(body).not.toHaveProperty("temperature");
    expect(body.messages![0]).toMatchObject({ role: "developer" });
    expect(response.warnings).toEqual([expect.stringMatching(/temperature was ignored/)]);

    await openai.complete(request({ model: "gpt-5", thinking: { budgetTokens: 2_000 } }));
    await openai.complete(request({ model: "o3", thinking: { budgetTokens: 32_000 } }));
    expect(server.requests.slice(1).map((sent) => sent.body.reasoning_effort)).toEqual(["low", "high"]);

    const plain = await openai.complete(request({ thinking: { budgetTokens: 8_000 } }));
    expect(server.requests[3]!.body).not.toHaveProperty("reasoning_effort");
    expect(plain.warnings).toEqual([
      expect.stringMatching(/thinking budget was ignored.*not a reasoning model/),
    ]);
  });

  it("recognizes reasoning models by family, and takes a custom test", async () => {
    expect(
      ["o1", "o3-mini", "o4-mini-2025-04-16", "gpt-5", "gpt-5.1", "gpt-5-mini", "openai/o3"].map(
        isOpenAIReasoningModel,
      ),
    ).toEqual([true, true, true, true, true, true, true]);
    expect(
      ["gpt-4.1-mini", "gpt-4o", "gpt-5-chat-latest", "llama3.1", "omni"].map(isOpenAIReasoningModel),
    ).toEqual([false, false, false, false, false]);
    server.reply(() => ({ json: completion({ content: "ok" }) }));
    await provider({ reasoningModels: (model) => model.startsWith("deepseek-r1") }).complete(
      request({ model: "deepseek-r1:8b", thinking: { budgetTokens: 1_000 } }),
    );
    expect(server.requests[0]!.body).toMatchObject({ reasoning_effort: "low" });
  });

  it("drops thinking blocks with a warning and merges providerOptions.openai", async () => {
    server.reply([{ json: completion({ content: "ok" }) }]);
    const response = await provider().complete(
      request({
        messages: [
          { role: "user", content: [{ type: "text", text: "Hi" }] },
          {
            role: "assistant",
            content: [
              { type: "thinking", text: "The user greets me.", signature: "sig" },
              { type: "text", text: "Hello!" },
            ],
          },
          {
            role: "user",
            content: [
              { type: "text", text: "Context" },
              { type: "text", text: "Opening hours?" },
            ],
          },
        ],
        providerOptions: { openai: { user: "user_1", seed: 7 }, anthropic: { ignored: true } },
      }),
    );
    expect(response.warnings).toEqual([expect.stringMatching(/dropped 1 thinking block/)]);
    const body = server.requests[0]!.body;
    expect(body.messages!.slice(1)).toEqual([
      { role: "user", content: "Hi" },
      { role: "assistant", content: "Hello!" },
      { role: "user", content: "Context\n\nOpening hours?" },
    ]);
    expect(body).toMatchObject({ user: "user_1", seed: 7 });
    expect(body).not.toHaveProperty("ignored");
  });

  it("maps finish reasons and refusals", async () => {
    server.reply([
      { json: completion({ content: "Cut", finishReason: "length" }) },
      { json: completion({ content: null, refusal: "I can't help with that.", finishReason: "stop" }) },
      { json: completion({ content: "", finishReason: "content_filter" }) },
      { json: completion({ content: "?", finishReason: "something_new" }) },
    ]);
    const openai = provider();
    const results = [];
    for (let index = 0; index < 4; index++) results.push(await openai.complete(request()));
    expect(results.map((result) => result.stopReason)).toEqual(["max_tokens", "refusal", "refusal", "other"]);
    expect(results[1]!.content).toEqual([{ type: "text", text: "I can't help with that." }]);
    expect(results[2]!.content).toEqual([]);
  });

  it("works against an OpenAI-compatible server (Ollama layout) with a local model and a placeholder key", async () => {
    server.reply([
      {
        json: completion({
          model: "llama3.1",
          toolCalls: [{ id: "", name: "order_create", arguments: '{"customer":"Ana","item":"bun"}' }],
          finishReason: "stop",
          usage: { prompt: 40, completion: 12 },
        }),
      },
    ]);
    const ollama = openaiProvider({
      name: "ollama",
      baseURL: `${server.url}/v1`,
      apiKey: "none",
      defaultModel: "llama3.1",
    });
    const response = await ollama.complete(
      request({
        model: ollama.defaultModel,
        tools: [ORDER_TOOL],
        providerOptions: { ollama: { keep_alive: "5m" } },
      }),
    );
    expect(ollama.name).toBe("ollama");
    expect(response).toMatchObject({
      model: "llama3.1",
      stopReason: "tool_use",
      content: [
        { type: "tool_call", id: "call_0", name: "order_create", input: { customer: "Ana", item: "bun" } },
      ],
    });
    expect(server.requests[0]).toMatchObject({
      path: "/v1/chat/completions",
      headers: { authorization: "Bearer none" },
      body: { model: "llama3.1", keep_alive: "5m", messages: [{ role: "system" }, { role: "user" }] },
    });
  });

  it("reads OPENAI_API_KEY and OPENAI_BASE_URL at call time, not at creation", async () => {
    vi.stubEnv("OPENAI_API_KEY", "");
    vi.stubEnv("OPENAI_BASE_URL", "");
    const openai = openaiProvider();
    vi.stubEnv("OPENAI_API_KEY", "env-key");
    vi.stubEnv("OPENAI_BASE_URL", `${server.url}/api/v1`);
    server.reply([{ json: completion({ content: "ok" }) }]);
    await openai.complete(request());
    expect(server.requests[0]).toMatchObject({
      path: "/api/v1/chat/completions",
      headers: { authorization: "Bearer env-key" },
    });
  });

  it("uses a host's own SDK client as given", async () => {
    const client: OpenAIClient = new OpenAI({ apiKey: "host-key", baseURL: server.baseURL, maxRetries: 0 });
    server.reply([{ json: completion({ content: "ok" }) }]);
    const response = await openaiProvider({ client }).complete(request());
    expect(response.content).toEqual([{ type: "text", text: "ok" }]);
    expect(server.requests[0]!.headers.authorization).toBe("Bearer host-key");
  });

  it("rejects bad options at creation", () => {
    expect(() => openaiProvider({ timeoutMs: 0 })).toThrow(/timeoutMs/);
    expect(() => openaiProvider({ name: "" })).toThrow(/name/);
    expect(() => openaiProvider({ client: {} as OpenAIClient })).toThrow(/client/);
  });
});

describe("openaiProvider: streaming", () => {
  it("streams text deltas and assembles tool call arguments split across chunks", async () => {
    server.reply([
      {
        sse: [
          chunk({ role: "assistant", content: "" }),
          chunk({ content: "Storing " }),
          chunk({ content: "both." }),
          chunk({
            tool_calls: [
              { index: 0, id: "call_1", type: "function", function: { name: "order_create", arguments: "" } },
            ],
          }),
          chunk({ tool_calls: [{ index: 0, function: { arguments: '{"customer":' } }] }),
          chunk({
            tool_calls: [
              {
                index: 1,
                id: "call_2",
                type: "function",
                function: { name: "order_create", arguments: '{"cus' },
              },
            ],
          }),
          chunk({ tool_calls: [{ index: 0, function: { arguments: '"Ana","item":"tart"}' } }] }),
          chunk({ tool_calls: [{ index: 1, function: { arguments: 'tomer":"Tom","item":"rye"}' } }] }),
          chunk({}, { finishReason: "tool_calls" }),
          usageChunk({ prompt: 900, cached: 768, completion: 40 }),
        ],
      },
    ]);
    const { seen, error } = await collect(provider().stream!(request({ tools: [ORDER_TOOL] })));
    expect(error).toBeUndefined();
    expect(seen.slice(0, 4)).toEqual([
      { type: "text-delta", text: "Storing " },
      { type: "text-delta", text: "both." },
      {
        type: "tool-call",
        call: {
          type: "tool_call",
          id: "call_1",
          name: "order_create",
          input: { customer: "Ana", item: "tart" },
        },
      },
      {
        type: "tool-call",
        call: {
          type: "tool_call",
          id: "call_2",
          name: "order_create",
          input: { customer: "Tom", item: "rye" },
        },
      },
    ]);
    expect(seen[4]).toEqual({
      type: "done",
      response: {
        content: [
          { type: "text", text: "Storing both." },
          { type: "tool_call", id: "call_1", name: "order_create", input: { customer: "Ana", item: "tart" } },
          { type: "tool_call", id: "call_2", name: "order_create", input: { customer: "Tom", item: "rye" } },
        ],
        stopReason: "tool_use",
        usage: {
          inputTokens: 132,
          cacheReadTokens: 768,
          cacheWriteTokens: 0,
          outputTokens: 40,
          reasoningTokens: 0,
        },
        model: "gpt-4.1-mini-2025-04-14",
      },
    });
    expect(server.requests[0]!.body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
  });

  it("throws a retryable error after the deltas when the stream is cut off mid-response", async () => {
    server.reply([
      {
        sse: [chunk({ content: "We open " }), chunk({ content: "at" }), chunk({ content: " 7." })],
        cutAfter: 2,
      },
    ]);
    const { seen, error } = await collect(provider().stream!(request()));
    expect(seen).toEqual([
      { type: "text-delta", text: "We open " },
      { type: "text-delta", text: "at" },
    ]);
    expect(KiloError.is(error, "PROVIDER_FAILED")).toBe(true);
    expect((error as KiloError).retryable).toBe(true);
    expect((error as KiloError).provider).toBe("openai");
  });

  it("throws a retryable error when the stream ends without a finish reason", async () => {
    server.reply([{ sse: [chunk({ content: "Half an answ" })], done: false }]);
    const { seen, error } = await collect(provider().stream!(request()));
    expect(seen).toEqual([{ type: "text-delta", text: "Half an answ" }]);
    expect(KiloError.is(error, "PROVIDER_FAILED")).toBe(true);
    expect((error as KiloError).retryable).toBe(true);
    expect((error as KiloError).message).toMatch(/finish_reason/);
  });

  it("times out a stream that stops sending chunks", async () => {
    server.reply([{ sse: [chunk({ content: "Hmm" })], hangAfter: 1 }]);
    const { seen, error } = await collect(provider({ timeoutMs: 200 }).stream!(request()));
    expect(seen).toEqual([{ type: "text-delta", text: "Hmm" }]);
    expect(KiloError.is(error, "PROVIDER_FAILED")).toBe(true);
    expect((error as KiloError).message).toMatch(/timed out/);
    expect((error as KiloError).retryable).toBe(true);
  });

  it("aborts a stream through the AbortSignal", async () => {
    server.reply([{ sse: [chunk({ content: "Let me think" })], hangAfter: 1 }]);
    const controller = new AbortController();
    const seen: LlmStreamEvent[] = [];
    const error = await (async () => {
      try {
        for await (const event of provider().stream!(request({ signal: controller.signal }))) {
          seen.push(event);
          controller.abort();
        }
      } catch (caught) {
        return caught;
      }
    })();
    expect(seen).toHaveLength(1);
    expect(KiloError.is(error, "ABORTED")).toBe(true);
  });

  it("maps an HTTP error before the stream starts", async () => {
    server.reply([{ json: errorBody("Rate limit reached", "requests", "rate_limit_exceeded"), status: 429 }]);
    const { seen, error } = await collect(provider().stream!(request()));
    expect(seen).toEqual([]);
    expect(error).toMatchObject({ code: "PROVIDER_FAILED", retryable: true, status: 429 });
  });
});

describe("openaiProvider: failures", () => {
  it("maps 429 with retry-after to a retryable PROVIDER_FAILED carrying the seconds", async () => {
    server.reply([
      {
        json: errorBody("Rate limit reached for gpt-4.1-mini", "requests", "rate_limit_exceeded"),
        status: 429,
        headers: { "retry-after": "7" },
      },
    ]);
    const error = await failure(provider().complete(request()));
    expect(error).toMatchObject({
      code: "PROVIDER_FAILED",
      retryable: true,
      provider: "openai",
      status: 429,
    });
    expect(error.details).toMatchObject({ status: 429, type: "rate_limit_exceeded", retryAfterSeconds: 7 });
    expect(error.message).toMatch(/retry after 7s/);
    expect(server.requests).toHaveLength(1);
  });

  it.each([500, 503])("maps HTTP %i to a retryable PROVIDER_FAILED", async (status) => {
    server.reply([{ json: errorBody("The server had an error", "server_error"), status }]);
    const error = await failure(provider().complete(request()));
    expect(error).toMatchObject({ code: "PROVIDER_FAILED", retryable: true });
    expect(error.details).toMatchObject({ status });
    expect(server.requests).toHaveLength(1);
  });

  it("maps 401 to PROVIDER_REJECTED with the OPENAI_API_KEY hint, without echoing the key", async () => {
    server.reply([
      {
        json: errorBody(
          "Incorrect API key provided: sk-proj-secret123. You can find your API key at https://platform.openai.com/account/api-keys.",
          "invalid_request_error",
          "invalid_api_key",
        ),
        status: 401,
      },
    ]);
    const error = await failure(provider({ apiKey: "sk-proj-secret123" }).complete(request()));
    expect(error).toMatchObject({ code: "PROVIDER_REJECTED", retryable: false });
    expect(error.message).toMatch(/OPENAI_API_KEY/);
    expect(error.message).not.toMatch(/secret123/);
  });

  it("maps 400 to PROVIDER_REJECTED", async () => {
    server.reply([
      { json: errorBody("Invalid value for 'max_completion_tokens'", "invalid_request_error"), status: 400 },
    ]);
    const error = await failure(provider().complete(request()));
    expect(error).toMatchObject({ code: "PROVIDER_REJECTED", retryable: false });
    expect(error.message).toMatch(/HTTP 400.*max_completion_tokens/);
  });

  it("times out a server that never answers", async () => {
    server.reply([{ hang: true }]);
    const started = Date.now();
    const error = await failure(provider({ timeoutMs: 150 }).complete(request()));
    expect(error).toMatchObject({ code: "PROVIDER_FAILED", retryable: true });
    expect(error.message).toMatch(/timed out/);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(server.requests).toHaveLength(1);
  });

  it("reports an unreachable server as retryable", async () => {
    const gone = await startFakeOpenAIServer();
    await gone.close();
    const error = await failure(openaiProvider({ baseURL: gone.baseURL, apiKey: "k" }).complete(request()));
    expect(error).toMatchObject({ code: "PROVIDER_FAILED", retryable: true });
    expect(error.message).toMatch(/could not be reached/);
  });

  it("maps a malformed JSON body and unparseable tool arguments to a retryable PROVIDER_FAILED", async () => {
    server.reply([
      { raw: '{"id":"chatcmpl-1","choices":[{"message":' },
      { json: { id: "chatcmpl-2", object: "chat.completion", choices: [] } },
      {
        json: completion({ toolCalls: [{ id: "call_1", name: "order_create", arguments: '{"customer":' }] }),
      },
    ]);
    const openai = provider();
    for (const problem of [/malformed/, /no choices/, /not valid JSON/]) {
      const error = await failure(openai.complete(request()));
      expect(error).toMatchObject({ code: "PROVIDER_FAILED", retryable: true });
      expect(error.message).toMatch(problem);
    }
  });

  it("aborts a call through the AbortSignal", async () => {
    server.reply([{ hang: true }]);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const error = await failure(provider().complete(request({ signal: controller.signal })));
    expect(error.code).toBe("ABORTED");
  });

  it("fails with CONFIGURATION_INVALID on first use when no API key is set", async () => {
    vi.stubEnv("OPENAI_API_KEY", "");
    const openai = openaiProvider({ baseURL: server.baseURL });
    const error = await failure(openai.complete(request()));
    expect(error.code).toBe("CONFIGURATION_INVALID");
    expect(error.message).toMatch(/`apiKey`.*OPENAI_API_KEY/);
    expect(error.message).not.toMatch(/sk-|Bearer/);
    const streamed = await collect(openai.stream!(request()));
    expect(KiloError.is(streamed.error, "CONFIGURATION_INVALID")).toBe(true);
    expect(server.requests).toHaveLength(0);
  });
});
