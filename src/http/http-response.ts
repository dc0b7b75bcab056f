import { KiloError, type KiloErrorCode } from "../errors.js";
import type { Logger } from "../ports/logger.js";

/**
 * Codes the HTTP layer adds to kilo's {@link KiloErrorCode}s for failures that
 * only exist over HTTP.
 */
export type HttpErrorCode = KiloErrorCode | "UNAUTHENTICATED" | "METHOD_NOT_ALLOWED" | "PAYLOAD_TOO_LARGE";

/** The body of every error response: a stable code and a message, never a stack trace. */
export interface HttpErrorBody {
  error: { code: HttpErrorCode; message: string };
}

/** A failure raised inside the HTTP layer itself (auth, routing, body limit). */
export class HttpError extends Error {
  readonly status: number;
  readonly code: HttpErrorCode;
  readonly headers: Record<string, string>;

  constructor(status: number, code: HttpErrorCode, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = "HttpError";
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

const JSON_HEADERS = { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" };

/** A JSON response. Dates become ISO strings. */
export function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { ...JSON_HEADERS, ...headers } });
}

/** An empty response (204 and the like). */
export function empty(status: number): Response {
  return new Response(null, { status, headers: { "cache-control": "no-store" } });
}

/** The error shape for `error`, and the status it maps to. Unknown errors become a bare INTERNAL. */
export function errorBody(error: unknown): {
  status: number;
  body: HttpErrorBody;
  headers: Record<string, string>;
} {
  if (error instanceof HttpError) {
    return {
      status: error.status,
      body: { error: { code: error.code, message: error.message } },
      headers: error.headers,
    };
  }
  if (KiloError.is(error)) {
    return { status: error.status, body: { error: error.toJSON() }, headers: {} };
  }
  return {
    status: 500,
    body: { error: { code: "INTERNAL", message: "Internal server error" } },
    headers: {},
  };
}

/** Turns anything thrown into an error response, logging server-side failures (with their cause) first. */
export function errorResponse(error: unknown, logger: Logger | undefined, context: Record<string, unknown>) {
  const { status, body, headers } = errorBody(error);
  if (status >= 500) logger?.error({ ...context, code: body.error.code, error }, "http request failed");
  return json(status, body, headers);
}

/**
 * Reads a JSON body of at most `maxBytes`, refusing a larger one with 413
 * as soon as its declared length or the bytes read so far pass the limit.
 * An empty body reads as `undefined`.
 */
/**
 * The request's body bytes, read up to `maxBytes`: a body declared or found
 * to be larger is refused with 413 as soon as that is known, without reading
 * the rest.
 */
export async function readBodyBytes(request: Request, maxBytes: number): Promise<Buffer> {
  const tooLarge = () =>
    new HttpError(413, "PAYLOAD_TOO_LARGE", `Request body is larger than the limit of ${maxBytes} bytes`, {
      connection: "close",
    });
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > maxBytes) throw tooLarge();
  if (!request.body) return Buffer.alloc(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

export async function readJson(request: Request, maxBytes: number): Promise<unknown> {
  const bytes = await readBodyBytes(request, maxBytes);
  if (bytes.length === 0) return undefined;
  const text = new TextDecoder().decode(bytes);
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new KiloError("VALIDATION_FAILED", "Request body is not valid JSON");
  }
}
