import type { IncomingMessage, ServerResponse } from "node:http";
import { DEFAULT_MAX_BODY_BYTES } from "./http-handler.js";

/** A Web-standard handler, such as the one {@link createHttpHandler} returns. */
export type WebHandler = ((request: Request) => Promise<Response>) & { readonly maxBodyBytes?: number };

/** Options of {@link toNodeHandler}. */
export interface NodeHandlerOptions {
  /**
   * Most request body bytes passed on to the handler; reading stops once the
   * limit is passed, and the handler (seeing too many bytes) answers 413.
   * Default: the handler's own `maxBodyBytes`, else 1 MiB.
   */
  maxBodyBytes?: number;
}

/** A `node:http` request listener; Express and Connect accept it as middleware too. */
export type NodeHandler = (
  request: IncomingMessage,
  response: ServerResponse,
  next?: (error?: unknown) => void,
) => void;

const BODYLESS = new Set(["GET", "HEAD", "OPTIONS"]);

function requestUrl(request: IncomingMessage): string {
  const path = request.url ?? "/";
  try {
    return new URL(path, `http://${request.headers.host ?? "localhost"}`).href;
  } catch {
    // A malformed Host header must not make the path unreachable.
    return new URL(path, "http://localhost").href;
  }
}

function requestHeaders(request: IncomingMessage): Headers {
  const headers = new Headers();
  const raw = request.rawHeaders;
  for (let index = 0; index + 1 < raw.length; index += 2) {
    const name = raw[index] as string;
    // HTTP/2 pseudo-headers (":path") are not valid Fetch header names.
    if (!name.startsWith(":")) headers.append(name, raw[index + 1] as string);
  }
  return headers;
}

/**
 * The request body as a Web stream that stops at `limit + 1` bytes: enough
 * for the handler to see that it is too large, without reading the rest.
 */
function requestBody(request: IncomingMessage, limit: number): ReadableStream<Uint8Array> {
  let size = 0;
  let closed = false;
  return new ReadableStream<Uint8Array>({
    start(controller) {
      const close = () => {
        if (closed) return;
        closed = true;
        controller.close();
      };
      request.on("data", (chunk: Buffer) => {
        if (closed) return;
        size += chunk.byteLength;
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        if (size > limit) {
          request.pause();
          close();
        } else if ((controller.desiredSize ?? 1) <= 0) {
          request.pause();
        }
      });
      request.on("end", close);
      request.on("error", (error) => {
        if (closed) return;
        closed = true;
        controller.error(error);
      });
      request.pause();
    },
    pull() {
      if (!closed) request.resume();
    },
    cancel() {
      closed = true;
      request.pause();
    },
  });
}

/** A body an earlier middleware (Express's `express.json()`, ...) already read and parsed. */
function preParsedBody(request: IncomingMessage): string | Uint8Array | undefined {
  const parsed = (request as IncomingMessage & { body?: unknown }).body;
  if (parsed === undefined || !request.readableEnded) return undefined;
  if (typeof parsed === "string" || parsed instanceof Uint8Array) return parsed;
  return JSON.stringify(parsed);
}

async function writeResponse(
  response: Response,
  target: ServerResponse,
  bodyPending: boolean,
): Promise<void> {
  target.statusCode = response.status;
  for (const [name, value] of response.headers) {
    if (name !== "set-cookie") target.setHeader(name, value);
  }
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) target.setHeader("set-cookie", cookies);
  // An unread request body is never drained: close the connection after this response instead.
  if (bodyPending) target.setHeader("connection", "close");
  if (!response.body) {
    target.end();
    return;
  }
  target.flushHeaders();
  const reader = response.body.getReader();
  const stop = () => {
    reader.cancel().catch(() => undefined);
  };
  target.on("close", stop);
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      if (target.destroyed) return;
      if (!target.write(value)) {
        await new Promise<void>((resolve) => {
          target.once("drain", resolve);
          target.once("close", resolve);
        });
      }
    }
    target.end();
  } finally {
    target.off("close", stop);
  }
}

/**
 * Adapts a Web-standard handler to `node:http`, and so to Express, Connect
 * and Fastify raw routes. Request bodies are streamed to the handler (up to
 * the body limit, never further), response bodies are streamed back (so
 * Server-Sent Events arrive as they are written), and a client that hangs
 * up aborts the request's `signal` and stops the response stream.
 *
 * The handler sees the path as node gives it (`request.url`): Express strips
 * its mount path, so `app.use("/kilo", toNodeHandler(handler))` needs no `basePath`.
 *
 * @example
 * ```ts
 * import { createServer } from "node:http";
 * import { createHttpHandler, toNodeHandler } from "kilo/http";
 *
 * createServer(toNodeHandler(createHttpHandler(kilo, { authenticate }))).listen(3000);
 * ```
 */
export function toNodeHandler(handler: WebHandler, options: NodeHandlerOptions = {}): NodeHandler {
  const limit = options.maxBodyBytes ?? handler.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  return (request, response, next) => {
    const controller = new AbortController();
    response.on("close", () => {
      if (!response.writableFinished) controller.abort();
    });
    const method = request.method ?? "GET";
    const preParsed = BODYLESS.has(method) ? undefined : preParsedBody(request);
    const init: RequestInit & { duplex?: "half" } = {
      method,
      headers: requestHeaders(request),
      signal: controller.signal,
    };
    if (preParsed !== undefined) {
      init.body = preParsed;
      init.headers = new Headers(init.headers);
      (init.headers as Headers).delete("content-length");
    } else if (!BODYLESS.has(method)) {
      init.body = requestBody(request, limit);
      init.duplex = "half";
    }
    const serve = async () => {
      const webResponse = await handler(new Request(requestUrl(request), init));
      await writeResponse(webResponse, response, !request.readableEnded && !BODYLESS.has(method));
    };
    serve().catch((error: unknown) => {
      if (next) {
        next(error);
        return;
      }
      if (response.headersSent) {
        response.destroy();
        return;
      }
      response.statusCode = 500;
      response.setHeader("content-type", "application/json; charset=utf-8");
      response.end(JSON.stringify({ error: { code: "INTERNAL", message: "Internal server error" } }));
    });
  };
}
