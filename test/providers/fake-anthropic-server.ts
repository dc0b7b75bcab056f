import { createServer, type IncomingHttpHeaders, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** A content block of the Messages API wire format, as the fake server sends or receives it. */
export type WireBlock = { type: string; [key: string]: unknown };

/** A request body as the fake server received it. */
export interface WireRequestBody {
  model: string;
  max_tokens: number;
  messages: Array<{ role: string; content: WireBlock[] }>;
  system?: WireBlock[];
  tools?: Array<{ name: string; description?: string; input_schema: unknown; cache_control?: unknown }>;
  thinking?: { type: string; budget_tokens?: number };
  temperature?: number;
  stream?: boolean;
  [key: string]: unknown;
}

/** One request the fake server received. */
export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: WireRequestBody;
}

/** One server-sent event. */
export interface SseEvent {
  event: string;
  data: unknown;
}

/** What the fake server answers to one request. */
export type FakeReply =
  | { kind: "json"; body: unknown; status?: number; headers?: Record<string, string> }
  | { kind: "raw"; body: string; status?: number; contentType?: string }
  | {
      kind: "sse";
      events: SseEvent[];
      /** After the events: end the response (default), destroy the socket, or leave it open. */
      end?: "close" | "destroy" | "hang";
      /** Pause between events, in milliseconds. */
      delayMs?: number;
    }
  /** Never answers. */
  | { kind: "hang" };

/** A reply, or a function computing one from the request. */
export type FakeResponder = FakeReply | ((request: RecordedRequest) => FakeReply);

/** Usage counts of a wire message. */
export interface WireUsage {
  input_tokens: number;
  output_tokens: number;
  cache_read_input_tokens?: number | null;
  cache_creation_input_tokens?: number | null;
}

/** A response message of the Messages API. */
export interface WireMessage {
  id: string;
  type: "message";
  role: "assistant";
  model: string;
  content: WireBlock[];
  stop_reason: string | null;
  stop_sequence: string | null;
  usage: WireUsage;
}

/** A local HTTP server speaking the Anthropic Messages API wire format. */
export interface FakeAnthropicServer {
  /** Pass as the SDK's / provider's `baseURL`. */
  readonly baseURL: string;
  /** Every request received, in order. */
  readonly requests: RecordedRequest[];
  /** Queues replies, used one per request in order. */
  enqueue(...replies: FakeResponder[]): void;
  /** The reply used when the queue is empty. */
  fallback(responder: FakeResponder): void;
  /** Forgets requests, queued replies and the fallback. */
  reset(): void;
  close(): Promise<void>;
}

let messageCounter = 0;

/** A wire message with the given content; `stop_reason` defaults to `tool_use` when a tool is called. */
export function wireMessage(
  content: WireBlock[],
  options: { model?: string; stopReason?: string | null; usage?: Partial<WireUsage> } = {},
): WireMessage {
  messageCounter += 1;
  const calls = content.some((block) => block.type === "tool_use");
  return {
    id: `msg_fake_${messageCounter}`,
    type: "message",
    role: "assistant",
    model: options.model ?? "claude-sonnet-4-6",
    content,
    stop_reason: options.stopReason === undefined ? (calls ? "tool_use" : "end_turn") : options.stopReason,
    stop_sequence: null,
    usage: {
      input_tokens: 25,
      output_tokens: 12,
      cache_read_input_tokens: 0,
      cache_creation_input_tokens: 0,
      ...options.usage,
    },
  };
}

/** A JSON reply with a message. */
export function jsonReply(message: WireMessage): FakeReply {
  return { kind: "json", body: message };
}

/** An API error reply: `{ type: "error", error: { type, message } }`. */
export function errorReply(
  status: number,
  type: string,
  message: string,
  headers: Record<string, string> = {},
): FakeReply {
  return {
    kind: "json",
    status,
    headers: { "request-id": "req_fake", ...headers },
    body: { type: "error", error: { type, message }, request_id: "req_fake" },
  };
}

function chunks(text: string, size: number): string[] {
  const parts: string[] = [];
  for (let start = 0; start < text.length; start += size) parts.push(text.slice(start, start + size));
  return parts;
}

/**
 * The SSE events the API sends for `message`: message_start, a ping, each
 * block's start / deltas (text, thinking, signature, input JSON split into
 * `chunkSize` pieces) / stop, message_delta with the stop reason and final
 * output tokens, message_stop.
 */
export function streamEvents(message: WireMessage, chunkSize = 4): SseEvent[] {
  const events: SseEvent[] = [
    {
      event: "message_start",
      data: {
        type: "message_start",
        message: {
          ...message,
          content: [],
          stop_reason: null,
          usage: { ...message.usage, output_tokens: 1 },
        },
      },
    },
    { event: "ping", data: { type: "ping" } },
  ];
  message.content.forEach((block, index) => {
    const delta = (payload: Record<string, unknown>): SseEvent => ({
      event: "content_block_delta",
      data: { type: "content_block_delta", index, delta: payload },
    });
    let start: WireBlock = block;
    const deltas: SseEvent[] = [];
    if (block.type === "text") {
      start = { type: "text", text: "" };
      for (const part of chunks(String(block.text), chunkSize))
        deltas.push(delta({ type: "text_delta", text: part }));
    } else if (block.type === "thinking") {
      start = { type: "thinking", thinking: "", signature: "" };
      for (const part of chunks(String(block.thinking), chunkSize)) {
        deltas.push(delta({ type: "thinking_delta", thinking: part }));
      }
      deltas.push(delta({ type: "signature_delta", signature: block.signature }));
    } else if (block.type === "tool_use") {
      start = { ...block, input: {} };
      for (const part of chunks(JSON.stringify(block.input), chunkSize)) {
        deltas.push(delta({ type: "input_json_delta", partial_json: part }));
      }
    }
    events.push({
      event: "content_block_start",
      data: { type: "content_block_start", index, content_block: start },
    });
    events.push(...deltas);
    events.push({ event: "content_block_stop", data: { type: "content_block_stop", index } });
  });
  events.push(
    {
      event: "message_delta",
      data: {
        type: "message_delta",
        delta: { stop_reason: message.stop_reason, stop_sequence: null },
        usage: { output_tokens: message.usage.output_tokens },
      },
    },
    { event: "message_stop", data: { type: "message_stop" } },
  );
  return events;
}

/** An SSE reply streaming `message`. */
export function sseReply(message: WireMessage, chunkSize = 4): FakeReply {
  return { kind: "sse", events: streamEvents(message, chunkSize) };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function send(reply: FakeReply, response: ServerResponse): Promise<void> {
  switch (reply.kind) {
    case "hang":
      return;
    case "json":
      response.writeHead(reply.status ?? 200, { "content-type": "application/json", ...reply.headers });
      response.end(JSON.stringify(reply.body));
      return;
    case "raw":
      response.writeHead(reply.status ?? 200, { "content-type": reply.contentType ?? "application/json" });
      response.end(reply.body);
      return;
    case "sse": {
      response.writeHead(200, {
        "content-type": "text/event-stream",
        "cache-control": "no-cache",
        "request-id": "req_fake",
      });
      for (const event of reply.events) {
        if (response.destroyed) return;
        response.write(`event: ${event.event}\ndata: ${JSON.stringify(event.data)}\n\n`);
        if (reply.delayMs !== undefined) await sleep(reply.delayMs);
      }
      const end = reply.end ?? "close";
      if (end === "close") response.end();
      if (end === "destroy") {
        // Let the written events reach the client before the connection drops.
        await sleep(20);
        response.socket?.destroy();
      }
      return;
    }
  }
}

/** Starts a fake Messages API on 127.0.0.1 (a free port). */
export async function startFakeAnthropic(): Promise<FakeAnthropicServer> {
  const requests: RecordedRequest[] = [];
  let queue: FakeResponder[] = [];
  let fallback: FakeResponder | undefined;

  const server = createServer((request, response) => {
    const parts: Buffer[] = [];
    request.on("data", (part: Buffer) => parts.push(part));
    request.on("end", () => {
      const text = Buffer.concat(parts).toString("utf8");
      let body: WireRequestBody;
      try {
        body = JSON.parse(text) as WireRequestBody;
      } catch {
        void send(
          errorReply(400, "invalid_request_error", "the fake server got a body that is not JSON"),
          response,
        );
        return;
      }
      const recorded: RecordedRequest = {
        method: request.method ?? "",
        path: request.url ?? "",
        headers: request.headers,
        body,
      };
      requests.push(recorded);
      if (recorded.method !== "POST" || !recorded.path.startsWith("/v1/messages")) {
        void send(
          errorReply(404, "not_found_error", `no route ${recorded.method} ${recorded.path}`),
          response,
        );
        return;
      }
      // Like the API: no credentials, no answer (SDK 1.x sends `Authorization: Bearer`, older ones `x-api-key`).
      if (request.headers["x-api-key"] === undefined && request.headers.authorization === undefined) {
        void send(errorReply(401, "authentication_error", "x-api-key header is required"), response);
        return;
      }
      const responder = queue.shift() ?? fallback;
      if (responder === undefined) {
        void send(errorReply(500, "api_error", "the fake server has no scripted reply left"), response);
        return;
      }
      void send(typeof responder === "function" ? responder(recorded) : responder, response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    baseURL: `http://127.0.0.1:${port}`,
    requests,
    enqueue(...replies) {
      queue.push(...replies);
    },
    fallback(responder) {
      fallback = responder;
    },
    reset() {
      requests.length = 0;
      queue = [];
      fallback = undefined;
    },
    close() {
      server.closeAllConnections();
      return new Promise<void>((resolve, reject) =>
        server.close((error) => (error ? reject(error) : resolve())),
      );
    },
  };
}
