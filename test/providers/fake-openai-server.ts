import { createServer, type IncomingHttpHeaders, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** A request the fake server received. */
export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body (an empty object when the body was not JSON). */
  body: Record<string, unknown> & {
    model?: string;
    messages?: Array<Record<string, unknown>>;
    tools?: Array<Record<string, unknown>>;
  };
}

/** How the fake server answers one request. */
export type FakeReply =
  /** A JSON body (a chat completion, or an `{ error }` body with a 4xx/5xx status). */
  | { json: unknown; status?: number; headers?: Record<string, string> }
  /** A raw body, e.g. malformed JSON. */
  | { raw: string; status?: number; contentType?: string }
  /**
   * Server-sent events: each chunk as `data: <json>`, then `data: [DONE]` unless `done: false`.
   * `cutAfter` destroys the socket after that many chunks, without ending the response.
   * `hangAfter` sends that many chunks and then nothing more.
   */
  | { sse: unknown[]; done?: boolean; cutAfter?: number; hangAfter?: number }
  /** Never answers. */
  | { hang: true };

export type FakeHandler = (request: RecordedRequest, index: number) => FakeReply;

/** A local HTTP server that speaks OpenAI's Chat Completions wire format. */
export interface FakeOpenAIServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** `http://127.0.0.1:<port>/v1`, what the SDK takes as `baseURL`. */
  readonly baseURL: string;
  /** Every request received, in order. */
  readonly requests: RecordedRequest[];
  /** Sets the replies: a list used in order, or a function of the request. */
  reply(replies: FakeReply[] | FakeHandler): void;
  close(): Promise<void>;
}

function send(response: ServerResponse, reply: FakeReply): void {
  if ("hang" in reply) return;
  if ("json" in reply) {
    response.writeHead(reply.status ?? 200, { "content-type": "application/json", ...reply.headers });
    response.end(JSON.stringify(reply.json));
    return;
  }
  if ("raw" in reply) {
    response.writeHead(reply.status ?? 200, { "content-type": reply.contentType ?? "application/json" });
    response.end(reply.raw);
    return;
  }
  response.writeHead(200, {
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    connection: "keep-alive",
  });
  const limit = reply.cutAfter ?? reply.hangAfter ?? reply.sse.length;
  for (const chunk of reply.sse.slice(0, limit)) response.write(`data: ${JSON.stringify(chunk)}\n\n`);
  if (reply.cutAfter !== undefined) {
    // Let the chunks reach the client before the connection drops mid-response.
    setTimeout(() => response.socket?.destroy(), 30);
    return;
  }
  if (reply.hangAfter !== undefined) return;
  if (reply.done !== false) response.write("data: [DONE]\n\n");
  response.end();
}

/** Starts the fake server on 127.0.0.1 with a free port. It answers POST `<any prefix>/chat/completions`. */
export async function startFakeOpenAIServer(): Promise<FakeOpenAIServer> {
  const requests: RecordedRequest[] = [];
  let handler: FakeHandler = () => ({ json: { error: { message: "no reply scripted" } }, status: 500 });
  const server = createServer((incoming, response) => {
    const chunks: Buffer[] = [];
    incoming.on("data", (chunk: Buffer) => chunks.push(chunk));
    incoming.on("end", () => {
      const path = incoming.url ?? "/";
      let body: RecordedRequest["body"] = {};
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        body = {};
      }
      const recorded: RecordedRequest = {
        method: incoming.method ?? "",
        path,
        headers: incoming.headers,
        body,
      };
      if (incoming.method !== "POST" || !path.endsWith("/chat/completions")) {
        send(response, { json: { error: { message: `no route ${path}`, type: "not_found" } }, status: 404 });
        return;
      }
      const index = requests.length;
      requests.push(recorded);
      send(response, handler(recorded, index));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    baseURL: `${url}/v1`,
    requests,
    reply(replies) {
      if (typeof replies === "function") handler = replies;
      else {
        handler = (_request, index) =>
          replies[index] ?? {
            json: { error: { message: `no reply scripted for request ${index}` } },
            status: 500,
          };
      }
    },
    close() {
      server.closeAllConnections();
      return new Promise((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
}

/** Usage as OpenAI reports it. */
export interface WireUsage {
  prompt?: number;
  completion?: number;
  cached?: number;
  reasoning?: number;
}

export function wireUsage(usage: WireUsage = {}) {
  return {
    prompt_tokens: usage.prompt ?? 10,
    completion_tokens: usage.completion ?? 5,
    total_tokens: (usage.prompt ?? 10) + (usage.completion ?? 5),
    prompt_tokens_details: { cached_tokens: usage.cached ?? 0, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: usage.reasoning ?? 0, audio_tokens: 0 },
  };
}

export interface WireToolCall {
  id: string;
  name: string;
  arguments: string | Record<string, unknown>;
}

/** A `chat.completion` body. */
export function completion(
  options: {
    content?: string | null;
    toolCalls?: WireToolCall[];
    finishReason?: string;
    usage?: WireUsage;
    model?: string;
    refusal?: string | null;
  } = {},
) {
  const toolCalls = options.toolCalls ?? [];
  return {
    id: "chatcmpl-test",
    object: "chat.completion",
    created: 1_760_000_000,
    model: options.model ?? "gpt-4.1-mini-2025-04-14",
    choices: [
      {
        index: 0,
        message: {
          role: "assistant",
          content: options.content === undefined ? null : options.content,
          refusal: options.refusal ?? null,
          ...(toolCalls.length > 0
            ? {
                tool_calls: toolCalls.map((call) => ({
                  id: call.id,
                  type: "function",
                  function: {
                    name: call.name,
                    arguments:
                      typeof call.arguments === "string" ? call.arguments : JSON.stringify(call.arguments),
                  },
                })),
              }
            : {}),
        },
        logprobs: null,
        finish_reason: options.finishReason ?? (toolCalls.length > 0 ? "tool_calls" : "stop"),
      },
    ],
    usage: wireUsage(options.usage),
    service_tier: "default",
    system_fingerprint: "fp_test",
  };
}

/** A `chat.completion.chunk` with one choice. */
export function chunk(
  delta: Record<string, unknown>,
  options: { finishReason?: string | null; model?: string } = {},
) {
  return {
    id: "chatcmpl-test",
    object: "chat.completion.chunk",
    created: 1_760_000_000,
    model: options.model ?? "gpt-4.1-mini-2025-04-14",
    choices: [{ index: 0, delta, logprobs: null, finish_reason: options.finishReason ?? null }],
  };
}

/** The final usage chunk OpenAI sends with `stream_options.include_usage`: no choices. */
export function usageChunk(usage: WireUsage = {}, model = "gpt-4.1-mini-2025-04-14") {
  return {
    id: "chatcmpl-test",
    object: "chat.completion.chunk",
    created: 1_760_000_000,
    model,
    choices: [],
    usage: wireUsage(usage),
  };
}

/** An OpenAI error body. */
export function errorBody(message: string, type: string, code: string | null = null) {
  return { error: { message, type, param: null, code } };
}
