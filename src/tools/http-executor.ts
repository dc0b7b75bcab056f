/**
 * The outbound HTTP executor: the only way kilo sends a request to a registered API.
 *
 * Every hop is checked by the SSRF guard ({@link checkOutboundUrl}), and the connection goes to
 * the address the guard validated (DNS is asked once per hop, so a rebinding answer is never used).
 * Redirects are followed by hand and re-checked; credentials stay with their origin; responses are
 * capped before and after decompression; the whole exchange has one deadline.
 *
 * @module
 */

import type { IncomingHttpHeaders, IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { isIPv6, type LookupFunction } from "node:net";
import { Transform, type TransformCallback, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createBrotliDecompress, createGunzip, createInflate } from "node:zlib";
import { KiloError } from "../errors.js";
import type { Logger } from "../ports/logger.js";
import { silentLogger } from "../runtime/logger.js";
import {
  type CheckOutboundUrlOptions,
  createOutboundInspector,
  type HostResolver,
  type OutboundTarget,
} from "./url-guard.js";

/** A request for {@link HttpExecutor.request}. */
export interface OutboundRequest {
  /** The full `https:` URL, already built by the caller (path parameters encoded, query set). */
  url: string;
  /** HTTP method, e.g. `GET`; case-insensitive, sent upper-case. */
  method: string;
  /**
   * Request headers. A name or value containing CR, LF or NUL (or another control character) is
   * rejected with `VALIDATION_FAILED`, never trimmed. Headers the executor manages (`host`,
   * `content-length`, `transfer-encoding`, `connection`, `accept-encoding`, ...) are ignored.
   */
  headers?: Record<string, string>;
  /** Request body, sent as UTF-8 with a `content-length`. */
  body?: string;
  /** Aborts the whole exchange; the promise rejects with a KiloError `ABORTED`. */
  signal?: AbortSignal;
  /**
   * The origin (`https://host[:port]`) the credentials in this request belong to. Defaults to the
   * origin of `url`. Sensitive headers are sent only to this origin: from the first hop (the URL
   * itself or a redirect target) on another origin, they are dropped for the rest of the exchange.
   */
  credentialOrigin?: string;
  /**
   * Extra header names that carry credentials (e.g. `x-api-key`). `authorization`,
   * `proxy-authorization` and `cookie` are always treated as sensitive.
   */
  sensitiveHeaders?: readonly string[];
}

/** What came back. Upstream errors (status >= 400) are returned like any other response. */
export interface OutboundResponse {
  /** HTTP status of the final response. */
  status: number;
  /**
   * A safe subset of the response headers, lower-case names: `content-type`, `content-length`,
   * `content-language`, `retry-after`, `location`, `etag`, `last-modified`, `cache-control`, `date`,
   * `expires`, `link`, request ids and rate-limit headers. Never `set-cookie`.
   */
  headers: Record<string, string>;
  /** The body, decompressed and decoded as UTF-8. */
  body: string;
  /** Size of the decompressed body in bytes. */
  bytes: number;
  /**
   * The final URL (after redirects), without its fragment. It is the URL as built or as redirected
   * to, query included: a caller that puts credentials in the query must redact it before showing it.
   */
  url: string;
  /** How many redirects were followed. */
  redirects: number;
}

/** Options of {@link createHttpExecutor}. */
export interface HttpExecutorOptions {
  /** Resolves hostnames; see {@link CheckOutboundUrlOptions.resolve}. Defaults to the system resolver. */
  resolve?: HostResolver;
  /** Deadline for the whole exchange (DNS, connect, TLS, every redirect, the full body). Default 10 000 ms. */
  timeoutMs?: number;
  /** Response cap in bytes, checked while streaming and again after decompression. Default 512 KiB. */
  maxBytes?: number;
  /** Redirects followed at most before failing. Default 5. */
  maxRedirects?: number;
  /** `"follow"` (default) follows redirects, re-checking each hop; `"refuse"` fails on any redirect. */
  redirects?: "follow" | "refuse";
  /**
   * Extra CA certificates to trust (PEM), replacing the system store, as with `tls.connect`. Meant
   * for tests with a private CA. Certificate verification is always on.
   */
  ca?: string | Buffer | ReadonlyArray<string | Buffer>;
  /** **Test-only.** See {@link CheckOutboundUrlOptions.allowPrivateAddresses}; off by default. */
  allowPrivateAddresses?: readonly string[];
  /** Receives one `debug` line per exchange (origin, status, bytes, duration) and refusals at `warn`. */
  logger?: Logger;
}

/** Sends outbound HTTPS requests under kilo's SSRF policy. */
export interface HttpExecutor {
  /**
   * Sends `request`, following redirects as configured, and resolves with the final response.
   *
   * Rejects with a KiloError:
   * - `VALIDATION_FAILED`: malformed request (CR/LF/NUL in the URL or a header, bad method);
   * - `SSRF_BLOCKED`: the URL, or a redirect target, was refused by the guard (message has the reason);
   * - `TOOL_FAILED`: DNS, connection or TLS failure, timeout, response too large, undecodable body,
   *   too many redirects or a redirect refused by policy;
   * - `ABORTED`: `request.signal` fired.
   *
   * Messages name the origin and the cause, never request headers, the path or the query.
   */
  request(request: OutboundRequest): Promise<OutboundResponse>;
}

/**
 * Creates the outbound HTTP executor.
 *
 * @example
 * ```ts
 * const http = createHttpExecutor({ timeoutMs: 5_000 });
 * const response = await http.request({
 *   url: "https://api.example.com/v1/orders?limit=5",
 *   method: "GET",
 *   headers: { authorization: `Bearer ${token}` },
 * });
 * if (response.status >= 400) return `upstream said ${response.status}: ${response.body}`;
 * ```
 */
export function createHttpExecutor(options: HttpExecutorOptions = {}): HttpExecutor {
  const config: ExecutorConfig = {
    inspect: createOutboundInspector({
      ...(options.resolve === undefined ? {} : { resolve: options.resolve }),
      allowPrivateAddresses: options.allowPrivateAddresses ?? [],
    }),
    timeoutMs: positiveInteger(options.timeoutMs, 10_000, "timeoutMs"),
    maxBytes: positiveInteger(options.maxBytes, 512 * 1024, "maxBytes"),
    maxRedirects: nonNegativeInteger(options.maxRedirects, 5, "maxRedirects"),
    followRedirects: redirectPolicy(options.redirects),
    ca: options.ca === undefined ? undefined : ([] as Array<string | Buffer>).concat(options.ca),
    logger: options.logger ?? silentLogger(),
  };
  return { request: (request) => execute(config, request) };
}

/**
 * @internal A `lookup` for `https.request` that answers with the validated addresses only, so the
 * socket connects where the guard looked and DNS is not asked a second time.
 */
export function pinnedLookup(hostname: string, addresses: readonly string[]): LookupFunction {
  const entries = addresses.map((address) => ({ address, family: isIPv6(address) ? 6 : 4 }));
  return (asked, options, callback) => {
    const first = entries[0];
    if (asked !== hostname || first === undefined) {
      const error = Object.assign(new Error(`lookup for an unexpected host`), { code: "ENOTFOUND" });
      callback(error, "", 0);
      return;
    }
    if (options.all) callback(null, entries);
    else callback(null, first.address, first.family);
  };
}

interface ExecutorConfig {
  inspect: ReturnType<typeof createOutboundInspector>;
  timeoutMs: number;
  maxBytes: number;
  maxRedirects: number;
  followRedirects: boolean;
  ca: Array<string | Buffer> | undefined;
  logger: Logger;
}

interface Hop {
  target: OutboundTarget;
  method: string;
  headers: Map<string, [string, string]>;
  body: Buffer | undefined;
}

type HopResult =
  | { kind: "redirect"; status: number; location: string }
  | { kind: "final"; status: number; headers: IncomingHttpHeaders; body: Buffer };

const ALWAYS_SENSITIVE = ["authorization", "proxy-authorization", "cookie"];

// Set by the executor or meaningless for one request per connection; a caller cannot override them.
const MANAGED_HEADERS = new Set([
  "host",
  "content-length",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "upgrade",
  "te",
  "trailer",
  "proxy-connection",
  "expect",
  "accept-encoding",
]);

const BODY_HEADERS = ["content-type", "content-encoding", "content-language", "content-location"];

const SAFE_RESPONSE_HEADERS = new Set([
  "content-type",
  "content-length",
  "content-language",
  "retry-after",
  "location",
  "etag",
  "last-modified",
  "cache-control",
  "date",
  "expires",
  "link",
  "x-request-id",
  "request-id",
  "ratelimit-limit",
  "ratelimit-remaining",
  "ratelimit-reset",
  "x-ratelimit-limit",
  "x-ratelimit-remaining",
  "x-ratelimit-reset",
]);

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const TLS_ERROR =
  /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|ERR_OSSL_)|HOSTNAME_MISMATCH/;

async function execute(config: ExecutorConfig, request: OutboundRequest): Promise<OutboundResponse> {
  const prepared = prepare(request);
  const started = Date.now();
  let origin = safeOrigin(prepared.url);

  if (request.signal?.aborted) throw aborted();
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, config.timeoutMs);
  const onAbort = () => controller.abort();
  request.signal?.addEventListener("abort", onAbort, { once: true });

  try {
    let url = prepared.url;
    let method = prepared.method;
    let body = prepared.body;
    const headers = prepared.headers;
    let redirects = 0;

    for (;;) {
      origin = safeOrigin(url);
      const inspection = await untilAborted(config.inspect(url), controller.signal);
      if (!inspection.allowed) {
        if (inspection.failure === "unresolved") {
          throw new KiloError("TOOL_FAILED", `Could not reach ${origin}: ${inspection.reason}`, {
            retryable: true,
          });
        }
        config.logger.warn({ origin, reason: inspection.reason, redirects }, "outbound request refused");
        throw new KiloError("SSRF_BLOCKED", `Outbound request refused: ${inspection.reason}`);
      }

      // Once dropped, credentials stay dropped, even if a later hop comes back to their origin.
      if (inspection.target.url.origin !== prepared.credentialOrigin) {
        for (const name of prepared.sensitive) headers.delete(name);
      }
      const hop: Hop = { target: inspection.target, method, headers, body };
      const result = await send(config, hop, controller.signal);

      if (result.kind === "final") {
        const response: OutboundResponse = {
          status: result.status,
          headers: safeHeaders(result.headers),
          body: result.body.toString("utf8"),
          bytes: result.body.length,
          url: withoutFragment(inspection.target.url),
          redirects,
        };
        config.logger.debug(
          {
            origin,
            status: response.status,
            bytes: response.bytes,
            redirects,
            durationMs: Date.now() - started,
          },
          "outbound request completed",
        );
        return response;
      }

      if (!config.followRedirects) {
        throw new KiloError(
          "TOOL_FAILED",
          `${origin} answered with a ${result.status} redirect, and redirects are refused by policy`,
        );
      }
      if (redirects >= config.maxRedirects) {
        throw new KiloError("TOOL_FAILED", `Too many redirects (more than ${config.maxRedirects})`);
      }
      let next: URL;
      try {
        next = new URL(result.location, inspection.target.url);
      } catch {
        throw new KiloError("TOOL_FAILED", `${origin} answered with a malformed redirect location`);
      }
      redirects += 1;

      if (result.status === 303 || ((result.status === 301 || result.status === 302) && method === "POST")) {
        if (method !== "HEAD") method = "GET";
        body = undefined;
        for (const name of BODY_HEADERS) headers.delete(name);
      }
      next.hash = "";
      url = next.href;
    }
  } catch (error) {
    throw failure(error, {
      origin,
      timedOut,
      timeoutMs: config.timeoutMs,
      aborted: controller.signal.aborted,
    });
  } finally {
    clearTimeout(timer);
    request.signal?.removeEventListener("abort", onAbort);
  }
}

interface PreparedRequest {
  url: string;
  method: string;
  headers: Map<string, [string, string]>;
  body: Buffer | undefined;
  credentialOrigin: string;
  sensitive: Set<string>;
}

function prepare(request: OutboundRequest): PreparedRequest {
  if (typeof request !== "object" || request === null) invalid("the request must be an object");
  const { url, method } = request;
  if (typeof url !== "string") invalid("url must be a string");
  if (/[\r\n\0]/.test(url)) invalid("the URL contains CR, LF or NUL");
  if (typeof method !== "string" || !TOKEN.test(method)) invalid("method must be an HTTP token such as GET");
  if (request.body !== undefined && typeof request.body !== "string") invalid("body must be a string");

  const headers = new Map<string, [string, string]>();
  for (const [name, value] of Object.entries(request.headers ?? {})) {
    if (/[\r\n\0]/.test(name)) invalid("a header name contains CR, LF or NUL");
    if (!TOKEN.test(name)) invalid("a header name is not a valid HTTP token");
    if (typeof value !== "string") invalid(`header "${name}" must be a string`);
    if (/[\r\n\0]/.test(value)) invalid(`header "${name}" contains CR, LF or NUL`);
    if (hasControlCharacter(value)) invalid(`header "${name}" contains a control character`);
    const key = name.toLowerCase();
    if (headers.has(key)) invalid(`header "${name}" is given twice`);
    if (!MANAGED_HEADERS.has(key)) headers.set(key, [name, value]);
  }

  let credentialOrigin: string;
  try {
    credentialOrigin = new URL(request.credentialOrigin ?? url).origin;
  } catch {
    invalid(
      request.credentialOrigin === undefined ? "the URL is malformed" : "credentialOrigin is malformed",
    );
  }
  const sensitive = new Set(ALWAYS_SENSITIVE);
  for (const name of request.sensitiveHeaders ?? []) {
    if (typeof name !== "string") invalid("sensitiveHeaders must be strings");
    sensitive.add(name.toLowerCase());
  }

  return {
    url,
    method: method.toUpperCase(),
    headers,
    body: request.body === undefined ? undefined : Buffer.from(request.body, "utf8"),
    credentialOrigin,
    sensitive,
  };
}

function send(config: ExecutorConfig, hop: Hop, signal: AbortSignal): Promise<HopResult> {
  const { target } = hop;
  const headers: Record<string, string> = {};
  for (const [name, value] of hop.headers.values()) headers[name] = value;
  const hostHeader = target.hostname.includes(":") ? `[${target.hostname}]` : target.hostname;
  headers.Host = target.port === 443 ? hostHeader : `${hostHeader}:${target.port}`;
  headers["Accept-Encoding"] = "gzip, deflate, br";
  if (hop.body !== undefined) headers["Content-Length"] = String(hop.body.length);

  return new Promise<HopResult>((resolve, reject) => {
    const req = httpsRequest(
      {
        host: target.hostname,
        port: target.port,
        path: `${target.url.pathname}${target.url.search}`,
        method: hop.method,
        headers,
        // A literal needs no lookup and must not be sent as SNI; a name is pinned to what was checked.
        ...(target.literal
          ? {}
          : { servername: target.hostname, lookup: pinnedLookup(target.hostname, target.addresses) }),
        ca: config.ca,
        rejectUnauthorized: true,
        agent: false,
        signal,
      },
      (res) => {
        const status = res.statusCode ?? 0;
        const location = res.headers.location;
        if (REDIRECT_STATUSES.has(status) && typeof location === "string" && location !== "") {
          res.destroy();
          resolve({ kind: "redirect", status, location });
          return;
        }
        readBody(res, config.maxBytes, signal).then(
          (body) => resolve({ kind: "final", status, headers: res.headers, body }),
          reject,
        );
      },
    );
    req.on("error", reject);
    req.end(hop.body);
  });
}

async function readBody(res: IncomingMessage, maxBytes: number, signal: AbortSignal): Promise<Buffer> {
  const declared = Number(res.headers["content-length"]);
  if (Number.isFinite(declared) && declared > maxBytes) {
    res.destroy();
    throw tooLarge(maxBytes);
  }
  const chunks: Buffer[] = [];
  let undecodable = false;
  try {
    const decoders = decodersFor(res.headers["content-encoding"]);
    for (const decoder of decoders) decoder.once("error", () => (undecodable = true));
    const limits = decoders.length > 0 ? [byteLimit(maxBytes)] : [];
    await pipeline([res, byteLimit(maxBytes), ...decoders, ...limits, collect(chunks)], { signal });
  } catch (error) {
    res.destroy();
    if (undecodable && !KiloError.is(error) && !signal.aborted) {
      throw new KiloError("TOOL_FAILED", "Could not decode the response body", { cause: error });
    }
    throw error;
  }
  return Buffer.concat(chunks);
}

function decodersFor(header: string | undefined): Transform[] {
  const codings = (header ?? "")
    .split(",")
    .map((coding) => coding.trim().toLowerCase())
    .filter((coding) => coding !== "" && coding !== "identity");
  if (codings.length > 2) throw new KiloError("TOOL_FAILED", "The response is encoded more than twice");
  // Codings are listed in the order they were applied, so they are undone in reverse.
  return codings.reverse().map((coding) => {
    if (coding === "gzip" || coding === "x-gzip") return createGunzip();
    if (coding === "deflate") return createInflate();
    if (coding === "br") return createBrotliDecompress();
    throw new KiloError(
      "TOOL_FAILED",
      `The response uses an unsupported content-encoding (${coding.slice(0, 40)})`,
    );
  });
}

function byteLimit(maxBytes: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      seen += chunk.length;
      if (seen > maxBytes) callback(tooLarge(maxBytes));
      else callback(null, chunk);
    },
  });
}

function collect(chunks: Buffer[]): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void) {
      chunks.push(chunk);
      callback();
    },
  });
}

function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new Error("aborted"));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error("aborted"));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

function failure(
  error: unknown,
  context: { origin: string; timedOut: boolean; timeoutMs: number; aborted: boolean },
): KiloError {
  if (context.timedOut) {
    return new KiloError("TOOL_FAILED", `${context.origin} did not complete within ${context.timeoutMs} ms`, {
      retryable: true,
      cause: error,
    });
  }
  if (context.aborted) return aborted(error);
  if (KiloError.is(error)) return error;
  const code = (error as { code?: unknown } | null)?.code;
  const label = typeof code === "string" ? code : "network error";
  if (TLS_ERROR.test(label)) {
    return new KiloError("TOOL_FAILED", `TLS verification failed for ${context.origin} (${label})`, {
      cause: error,
    });
  }
  if (label === "ERR_STREAM_PREMATURE_CLOSE" || label === "ECONNRESET") {
    return new KiloError("TOOL_FAILED", `${context.origin} closed the connection early (${label})`, {
      retryable: true,
      cause: error,
    });
  }
  return new KiloError("TOOL_FAILED", `Could not reach ${context.origin} (${label})`, {
    retryable: true,
    cause: error,
  });
}

/** C0 controls other than tab, and DEL: Node refuses them in header values anyway, with a less clear error. */
function hasControlCharacter(text: string): boolean {
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if ((code < 0x20 && code !== 0x09) || code === 0x7f) return true;
  }
  return false;
}

function aborted(cause?: unknown): KiloError {
  return new KiloError("ABORTED", "The outbound request was aborted", cause === undefined ? {} : { cause });
}

function tooLarge(maxBytes: number): KiloError {
  return new KiloError("TOOL_FAILED", `The response is too large (more than ${maxBytes} bytes)`);
}

function invalid(message: string): never {
  throw new KiloError("VALIDATION_FAILED", `Invalid outbound request: ${message}`);
}

function safeOrigin(url: string): string {
  try {
    const origin = new URL(url).origin;
    return origin === "null" ? "the target" : origin;
  } catch {
    return "the target";
  }
}

function withoutFragment(url: URL): string {
  const copy = new URL(url.href);
  copy.hash = "";
  return copy.href;
}

function safeHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const safe: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || !SAFE_RESPONSE_HEADERS.has(name)) continue;
    safe[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return safe;
}

function positiveInteger(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value <= 0) {
    throw new KiloError("CONFIGURATION_INVALID", `${name} must be a positive integer`);
  }
  return value;
}

function nonNegativeInteger(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 0) {
    throw new KiloError("CONFIGURATION_INVALID", `${name} must be a non-negative integer`);
  }
  return value;
}

function redirectPolicy(value: HttpExecutorOptions["redirects"]): boolean {
  if (value === undefined || value === "follow") return true;
  if (value === "refuse") return false;
  throw new KiloError("CONFIGURATION_INVALID", `redirects must be "follow" or "refuse"`);
}
