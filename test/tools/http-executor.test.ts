import { brotliCompressSync, gzipSync } from "node:zlib";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { KiloError } from "../../src/errors.js";
import type { LogFields, Logger } from "../../src/ports/logger.js";
import { pinnedLookup } from "../../src/tools/http-executor.js";
import { createHttpExecutor, type HttpExecutorOptions, type OutboundRequest } from "../../src/tools/index.js";
import { startHttpsServer, TEST_CA, type TestServer, tableResolver } from "./helpers/https-test-server.js";

const CANARY = "Bearer canary-7f3a9c";
const BOMB = gzipSync(Buffer.alloc(20 * 1024 * 1024));

let server: TestServer;
let untrusted: TestServer;

beforeAll(async () => {
  server = await startHttpsServer((req, res) => {
    const json = (status: number, value: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(value));
    };
    const redirect = (status: number, location: string) => {
      res.writeHead(status, { location });
      res.end();
    };
    const path = req.path.split("?")[0];
    switch (path) {
      case "/echo":
        return json(200, {
          method: req.method,
          path: req.path,
          host: req.host,
          headers: req.headers,
          body: req.body,
        });
      case "/auth-check":
        // The server asserts: credentials must not arrive here from another origin.
        if (req.host !== "api.test.kilo" && (req.headers.authorization || req.headers["x-api-key"])) {
          return json(400, { error: "credentials leaked across origins" });
        }
        return json(200, { host: req.host, headers: req.headers, method: req.method, body: req.body });
      case "/to-docs":
        return redirect(302, `${server.origin("docs.test.kilo")}/auth-check`);
      case "/to-api":
        return redirect(302, `${server.origin("api.test.kilo")}/auth-check`);
      case "/to-same":
        return redirect(301, "/auth-check");
      case "/to-307":
        return redirect(307, `${server.origin("docs.test.kilo")}/auth-check`);
      case "/to-303":
        return redirect(303, "/auth-check");
      case "/to-private-name":
        return redirect(302, `https://internal.test.kilo:${server.port}/echo`);
      case "/to-private-literal":
        return redirect(302, "https://10.0.0.1/echo");
      case "/to-metadata":
        return redirect(302, "https://[::ffff:169.254.169.254]/latest/meta-data/");
      case "/to-http":
        return redirect(302, `http://api.test.kilo:${server.port}/echo`);
      case "/to-userinfo":
        return redirect(302, `https://api.test.kilo@127.0.0.1:${server.port}/echo`);
      case "/loop":
        return redirect(302, "/loop");
      case "/big":
        res.writeHead(200, { "content-type": "text/plain" });
        for (let i = 0; i < 20; i++) res.write(Buffer.alloc(32 * 1024, "a"));
        return res.end();
      case "/big-declared":
        res.writeHead(200, { "content-type": "text/plain", "content-length": String(600 * 1024) });
        return res.end(Buffer.alloc(600 * 1024, "a"));
      case "/bomb":
        res.writeHead(200, { "content-type": "text/plain", "content-encoding": "gzip" });
        return res.end(BOMB);
      case "/gzip":
        res.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip" });
        return res.end(gzipSync(JSON.stringify({ ok: "gzip" })));
      case "/br":
        res.writeHead(200, { "content-type": "application/json", "content-encoding": "br" });
        return res.end(brotliCompressSync(JSON.stringify({ ok: "br" })));
      case "/corrupt-gzip":
        res.writeHead(200, { "content-encoding": "gzip" });
        return res.end("this is not gzip");
      case "/zstd":
        res.writeHead(200, { "content-encoding": "zstd" });
        return res.end("x");
      case "/trickle": {
        res.writeHead(200, { "content-type": "text/plain" });
        const timer = setInterval(() => res.write("."), 40);
        res.on("close", () => clearInterval(timer));
        return;
      }
      case "/hang":
        return; // never answers
      case "/error":
        res.writeHead(500, {
          "content-type": "application/json",
          "retry-after": "3",
          "x-internal": "secret",
        });
        return res.end(JSON.stringify({ error: "boom", echoed: req.headers.authorization ?? null }));
      case "/headers":
        res.writeHead(200, {
          "content-type": "text/plain; charset=utf-8",
          "set-cookie": "session=abc",
          "x-internal": "secret",
          "retry-after": "10",
          etag: '"v1"',
          "x-ratelimit-remaining": "42",
        });
        return res.end("héllo");
      default:
        return json(404, { error: "no route", path });
    }
  });
  untrusted = await startHttpsServer((_req, res) => res.end("should never be read"), { untrusted: true });
});

afterAll(async () => {
  await server.close();
  await untrusted.close();
});

beforeEach(() => {
  server.requests.length = 0;
});

function testResolver(extra: Record<string, readonly string[] | ((call: number) => readonly string[])> = {}) {
  return tableResolver({
    "api.test.kilo": ["127.0.0.1"],
    "docs.test.kilo": ["127.0.0.1"],
    "redirect.test.kilo": ["127.0.0.1"],
    "internal.test.kilo": ["10.0.0.5"],
    "wrong-name.test.kilo": ["127.0.0.1"],
    ...extra,
  });
}

function executor(options: HttpExecutorOptions = {}) {
  const dns = testResolver();
  return {
    dns,
    http: createHttpExecutor({
      resolve: dns.resolve,
      ca: TEST_CA,
      allowPrivateAddresses: ["127.0.0.1"],
      ...options,
    }),
  };
}

const api = (path: string) => `${server.origin("api.test.kilo")}${path}`;

async function failureOf(promise: Promise<unknown>): Promise<KiloError> {
  const error = await promise.then(
    () => new Error("expected a rejection"),
    (caught: unknown) => caught,
  );
  if (!KiloError.is(error)) throw error;
  return error;
}

function recordingLogger(): Logger & {
  lines: Array<{ level: string; fields: LogFields; message?: string }>;
} {
  const lines: Array<{ level: string; fields: LogFields; message?: string }> = [];
  const log =
    (level: string) =>
    (fields: LogFields, message?: string): void => {
      lines.push({ level, fields, ...(message === undefined ? {} : { message }) });
    };
  const logger = {
    lines,
    debug: log("debug"),
    info: log("info"),
    warn: log("warn"),
    error: log("error"),
    child: () => logger,
  };
  return logger;
}

describe("createHttpExecutor: round trips", () => {
  it("GETs over TLS with SNI and Host set to the hostname", async () => {
    const { http, dns } = executor();
    const response = await http.request({
      url: api("/echo?q=1#frag"),
      method: "get",
      headers: { "X-Trace": "t1" },
    });
    expect(response.status).toBe(200);
    expect(response.url).toBe(api("/echo?q=1"));
    expect(response.redirects).toBe(0);
    const echoed = JSON.parse(response.body);
    expect(echoed).toMatchObject({ method: "GET", path: "/echo?q=1", host: "api.test.kilo" });
    expect(echoed.headers["x-trace"]).toBe("t1");
    expect(echoed.headers["accept-encoding"]).toBe("gzip, deflate, br");
    expect(server.requests[0]).toMatchObject({ servername: "api.test.kilo", localAddress: "127.0.0.1" });
    expect(dns.calls).toEqual(["api.test.kilo"]);
  });

  it("POSTs a body with its content-length", async () => {
    const { http } = executor();
    const body = JSON.stringify({ name: "Zoë" });
    const response = await http.request({
      url: api("/echo"),
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    const echoed = JSON.parse(response.body);
    expect(echoed).toMatchObject({ method: "POST", body });
    expect(echoed.headers["content-length"]).toBe(String(Buffer.byteLength(body)));
    expect(response.bytes).toBe(Buffer.byteLength(response.body));
  });

  it("reaches an allowlisted IP literal (no DNS, certificate checked against the IP)", async () => {
    const { http, dns } = executor();
    const response = await http.request({ url: `${server.origin("127.0.0.1")}/echo`, method: "GET" });
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body).host).toBe("127.0.0.1");
    expect(dns.calls).toEqual([]);
  });

  it("ignores headers the executor manages (Host, Content-Length, Accept-Encoding, ...)", async () => {
    const { http } = executor();
    const response = await http.request({
      url: api("/echo"),
      method: "POST",
      headers: {
        Host: "evil.example",
        "Content-Length": "999",
        "Accept-Encoding": "zstd",
        Connection: "upgrade",
      },
      body: "hi",
    });
    const echoed = JSON.parse(response.body);
    expect(echoed.host).toBe("api.test.kilo");
    expect(echoed.headers["content-length"]).toBe("2");
    expect(echoed.headers["accept-encoding"]).toBe("gzip, deflate, br");
    expect(echoed.body).toBe("hi");
  });

  it("returns only a safe subset of response headers", async () => {
    const { http } = executor();
    const response = await http.request({ url: api("/headers"), method: "GET" });
    expect(response.headers).toEqual({
      "content-type": "text/plain; charset=utf-8",
      "retry-after": "10",
      etag: '"v1"',
      "x-ratelimit-remaining": "42",
      date: expect.any(String),
    });
    expect(response.body).toBe("héllo");
  });

  it("decodes gzip and brotli bodies", async () => {
    const { http } = executor();
    expect(JSON.parse((await http.request({ url: api("/gzip"), method: "GET" })).body)).toEqual({
      ok: "gzip",
    });
    expect(JSON.parse((await http.request({ url: api("/br"), method: "GET" })).body)).toEqual({ ok: "br" });
  });

  it("fails cleanly on an undecodable or unsupported encoding", async () => {
    const { http } = executor();
    const corrupt = await failureOf(http.request({ url: api("/corrupt-gzip"), method: "GET" }));
    expect(corrupt.code).toBe("TOOL_FAILED");
    expect(corrupt.message).toMatch(/decode/);
    const zstd = await failureOf(http.request({ url: api("/zstd"), method: "GET" }));
    expect(zstd).toMatchObject({
      code: "TOOL_FAILED",
      message: expect.stringMatching(/unsupported content-encoding/),
    });
  });

  it("returns upstream errors with their body instead of throwing", async () => {
    const { http } = executor();
    const response = await http.request({
      url: api("/error"),
      method: "GET",
      headers: { authorization: CANARY },
    });
    expect(response.status).toBe(500);
    expect(response.headers).toEqual({
      "content-type": "application/json",
      "retry-after": "3",
      date: expect.any(String),
    });
    expect(JSON.parse(response.body)).toMatchObject({ error: "boom" });
  });

  it("logs origin, status and size at debug, never headers or the query", async () => {
    const logger = recordingLogger();
    const { http } = executor({ logger });
    await http.request({
      url: api("/echo?api_key=canary-q"),
      method: "GET",
      headers: { authorization: CANARY },
    });
    expect(logger.lines).toEqual([
      {
        level: "debug",
        fields: expect.objectContaining({
          origin: server.origin("api.test.kilo"),
          status: 200,
          redirects: 0,
        }),
        message: "outbound request completed",
      },
    ]);
    expect(JSON.stringify(logger.lines)).not.toMatch(/canary/);
  });
});

describe("createHttpExecutor: SSRF", () => {
  it("refuses private targets unless allowlisted, before any connection", async () => {
    const dns = testResolver();
    const http = createHttpExecutor({ resolve: dns.resolve, ca: TEST_CA });
    const error = await failureOf(
      http.request({ url: api("/echo"), method: "GET", headers: { authorization: CANARY } }),
    );
    expect(error.code).toBe("SSRF_BLOCKED");
    expect(error.message).toMatch(/"api\.test\.kilo" resolves to 127\.0\.0\.1, which is loopback/);
    expect(JSON.stringify({ message: error.message, json: error.toJSON() })).not.toContain("canary");
    expect(server.requests).toEqual([]);
  });

  it("refuses http:// and userinfo URLs with SSRF_BLOCKED", async () => {
    const { http } = executor();
    for (const url of [
      `http://api.test.kilo:${server.port}/echo`,
      `https://user@api.test.kilo:${server.port}/echo`,
    ]) {
      expect((await failureOf(http.request({ url, method: "GET" }))).code).toBe("SSRF_BLOCKED");
    }
    expect(server.requests).toEqual([]);
  });

  it("turns a DNS failure into a retryable TOOL_FAILED, not an SSRF refusal", async () => {
    const { http } = executor();
    const error = await failureOf(http.request({ url: "https://nowhere.test.kilo/", method: "GET" }));
    expect(error).toMatchObject({
      code: "TOOL_FAILED",
      retryable: true,
      message: expect.stringMatching(/ENOTFOUND/),
    });
  });

  it("connects to the validated address only: one lookup per hop, no rebinding window", async () => {
    // The first answer is validated (127.0.0.1, allowlisted); any later answer points elsewhere.
    // A second lookup at connect time would go to 127.0.0.2, where nothing listens.
    const dns = testResolver({ "api.test.kilo": (call) => (call === 1 ? ["127.0.0.1"] : ["127.0.0.2"]) });
    const http = createHttpExecutor({
      resolve: dns.resolve,
      ca: TEST_CA,
      allowPrivateAddresses: ["127.0.0.1"],
    });
    const response = await http.request({ url: api("/echo"), method: "GET" });
    expect(response.status).toBe(200);
    expect(dns.calls).toEqual(["api.test.kilo"]);
    expect(server.requests.map((request) => request.localAddress)).toEqual(["127.0.0.1"]);

    // The next exchange asks DNS again and judges the new answer.
    const error = await failureOf(http.request({ url: api("/echo"), method: "GET" }));
    expect(error).toMatchObject({ code: "SSRF_BLOCKED", message: expect.stringMatching(/127\.0\.0\.2/) });
    expect(dns.calls).toEqual(["api.test.kilo", "api.test.kilo"]);
    expect(server.requests).toHaveLength(1);
  });

  it("asks DNS once per redirect hop", async () => {
    const { http, dns } = executor();
    await http.request({ url: api("/to-docs"), method: "GET" });
    expect(dns.calls).toEqual(["api.test.kilo", "docs.test.kilo"]);
    expect(
      server.requests.map((request) => [request.host, request.servername, request.localAddress]),
    ).toEqual([
      ["api.test.kilo", "api.test.kilo", "127.0.0.1"],
      ["docs.test.kilo", "docs.test.kilo", "127.0.0.1"],
    ]);
  });

  it("pins the socket's lookup to the validated addresses", () => {
    const lookup = pinnedLookup("api.example.com", ["93.184.216.34", "2606:4700:4700::1111"]);
    const answers: unknown[] = [];
    lookup("api.example.com", { all: true }, (error, address) => answers.push([error, address]));
    lookup("api.example.com", { family: 6 }, (error, address, family) =>
      answers.push([error, address, family]),
    );
    lookup("rebound.example.com", {}, (error) =>
      answers.push(KiloError.is(error) ? "kilo" : (error as Error).message),
    );
    expect(answers).toEqual([
      [
        null,
        [
          { address: "93.184.216.34", family: 4 },
          { address: "2606:4700:4700::1111", family: 6 },
        ],
      ],
      [null, "93.184.216.34", 4],
      "lookup for an unexpected host",
    ]);
  });

  it.each([
    ["/to-private-name", /"internal\.test\.kilo" resolves to 10\.0\.0\.5, which is private/],
    ["/to-private-literal", /10\.0\.0\.1 is private/],
    ["/to-metadata", /cloud metadata/],
    ["/to-http", /only https/],
    ["/to-userinfo", /userinfo/],
  ])("re-validates redirect hops: %s is refused", async (path, reason) => {
    const { http } = executor();
    const error = await failureOf(
      http.request({ url: api(path), method: "GET", headers: { authorization: CANARY } }),
    );
    expect(error.code).toBe("SSRF_BLOCKED");
    expect(error.message).toMatch(reason);
    expect(error.message).not.toContain("canary");
    expect(server.requests).toHaveLength(1);
  });
});

describe("createHttpExecutor: redirects", () => {
  it("drops credentials when a redirect leaves the credential origin", async () => {
    const { http } = executor();
    const response = await http.request({
      url: api("/to-docs"),
      method: "GET",
      headers: { Authorization: CANARY, "X-Api-Key": "key-canary", Cookie: "s=1", "X-Trace": "t1" },
      sensitiveHeaders: ["X-Api-Key"],
    });
    expect(response.status).toBe(200);
    expect(response.redirects).toBe(1);
    expect(response.url).toBe(`${server.origin("docs.test.kilo")}/auth-check`);
    const seen = server.requests[1]!;
    expect(seen.host).toBe("docs.test.kilo");
    expect(seen.headers.authorization).toBeUndefined();
    expect(seen.headers["x-api-key"]).toBeUndefined();
    expect(seen.headers.cookie).toBeUndefined();
    expect(seen.headers["x-trace"]).toBe("t1");
  });

  it("drops credentials on a 307 across origins too, keeping method and body", async () => {
    const { http } = executor();
    const response = await http.request({
      url: api("/to-307"),
      method: "POST",
      headers: { authorization: CANARY, "content-type": "text/plain" },
      body: "payload",
    });
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body)).toMatchObject({ method: "POST", body: "payload" });
    expect(server.requests[1]!.headers.authorization).toBeUndefined();
  });

  it("keeps credentials on a same-origin redirect", async () => {
    const { http } = executor();
    const response = await http.request({
      url: api("/to-same"),
      method: "GET",
      headers: { authorization: CANARY },
    });
    expect(response.status).toBe(200);
    expect(server.requests[1]!.headers.authorization).toBe(CANARY);
  });

  it("keeps dropped credentials dropped when a later hop returns to their origin", async () => {
    const { http } = executor();
    const bounce = `${server.origin("docs.test.kilo")}/to-api`;
    const response = await http.request({
      url: bounce,
      method: "GET",
      headers: { authorization: CANARY },
      credentialOrigin: server.origin("api.test.kilo"),
    });
    expect(response.status).toBe(200);
    expect(server.requests.map((request) => [request.host, request.headers.authorization])).toEqual([
      ["docs.test.kilo", undefined],
      ["api.test.kilo", undefined],
    ]);
  });

  it("sends credentials only to credentialOrigin: another host or port on the same address is another origin", async () => {
    const { http } = executor();
    await http.request({
      url: api("/echo"),
      method: "GET",
      headers: { authorization: CANARY },
      credentialOrigin: `https://api.test.kilo:${server.port + 1}`,
    });
    await http.request({
      url: api("/echo"),
      method: "GET",
      headers: { authorization: CANARY },
      credentialOrigin: server.origin("redirect.test.kilo"),
    });
    expect(server.requests.map((request) => request.headers.authorization)).toEqual([undefined, undefined]);
  });

  it("turns a 303 into a GET without a body", async () => {
    const { http } = executor();
    const response = await http.request({
      url: api("/to-303"),
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"a":1}',
    });
    const echoed = JSON.parse(response.body);
    expect(echoed).toMatchObject({ method: "GET", body: "" });
    expect(echoed.headers["content-type"]).toBeUndefined();
    expect(echoed.headers["content-length"]).toBeUndefined();
  });

  it("stops after maxRedirects", async () => {
    const { http } = executor();
    const error = await failureOf(http.request({ url: api("/loop"), method: "GET" }));
    expect(error).toMatchObject({
      code: "TOOL_FAILED",
      message: expect.stringMatching(/Too many redirects \(more than 5\)/),
    });
    expect(server.requests).toHaveLength(6);

    const strict = executor({ maxRedirects: 1 }).http;
    server.requests.length = 0;
    expect((await failureOf(strict.request({ url: api("/loop"), method: "GET" }))).code).toBe("TOOL_FAILED");
    expect(server.requests).toHaveLength(2);
  });

  it("refuses redirects when the policy says so", async () => {
    const { http } = executor({ redirects: "refuse" });
    const error = await failureOf(
      http.request({ url: api("/to-same"), method: "GET", headers: { authorization: CANARY } }),
    );
    expect(error).toMatchObject({ code: "TOOL_FAILED", message: expect.stringMatching(/refused by policy/) });
    expect(server.requests).toHaveLength(1);
  });
});

describe("createHttpExecutor: request validation", () => {
  it.each<[string, Partial<OutboundRequest>]>([
    ["CR/LF in a header value", { headers: { "X-Trace": "a\r\nX-Injected: 1" } }],
    ["LF alone in a header value", { headers: { "X-Trace": "a\nb" } }],
    ["NUL in a header value", { headers: { "X-Trace": "a\u0000b" } }],
    ["CR/LF in a header name", { headers: { "X-Trace\r\nX-Injected": "1" } }],
    ["a header name that is not a token", { headers: { "X Trace": "1" } }],
    ["another control character in a value", { headers: { "X-Trace": "a\u0007b" } }],
    ["CR/LF in the URL", { url: "https://api.test.kilo/echo\r\nX-Injected: 1" }],
    ["NUL in the URL", { url: "https://api.test.kilo/echo\u0000" }],
    ["a method that is not a token", { method: "GET /x" }],
    ["a duplicate header", { headers: { "x-trace": "1", "X-Trace": "2" } }],
  ])("rejects %s with VALIDATION_FAILED", async (_label, patch) => {
    const { http, dns } = executor();
    const error = await failureOf(http.request({ url: api("/echo"), method: "GET", ...patch }));
    expect(error.code).toBe("VALIDATION_FAILED");
    expect(error.message).not.toMatch(/Injected/);
    expect(dns.calls).toEqual([]);
    expect(server.requests).toEqual([]);
  });

  it("rejects invalid options with CONFIGURATION_INVALID", () => {
    for (const options of [
      { timeoutMs: 0 },
      { maxBytes: -1 },
      { maxRedirects: 1.5 },
      { redirects: "sometimes" as "follow" },
      { allowPrivateAddresses: ["not-an-ip"] },
    ]) {
      expect(() => createHttpExecutor(options)).toThrow(
        expect.objectContaining({ code: "CONFIGURATION_INVALID" }),
      );
    }
  });
});

describe("createHttpExecutor: caps and deadlines", () => {
  it("caps a plain body while streaming", async () => {
    const { http } = executor();
    const error = await failureOf(http.request({ url: api("/big"), method: "GET" }));
    expect(error).toMatchObject({
      code: "TOOL_FAILED",
      message: expect.stringMatching(/too large \(more than 524288 bytes\)/),
    });
  });

  it("refuses a declared content-length over the cap up front", async () => {
    const { http } = executor();
    const error = await failureOf(http.request({ url: api("/big-declared"), method: "GET" }));
    expect(error.message).toMatch(/too large/);
  });

  it("caps the decompressed size of a gzip bomb", async () => {
    expect(BOMB.length).toBeLessThan(64 * 1024);
    const { http } = executor();
    const started = Date.now();
    const error = await failureOf(http.request({ url: api("/bomb"), method: "GET" }));
    expect(error).toMatchObject({ code: "TOOL_FAILED", message: expect.stringMatching(/too large/) });
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it("honours a smaller maxBytes", async () => {
    const { http } = executor({ maxBytes: 5 });
    expect((await failureOf(http.request({ url: api("/headers"), method: "GET" }))).message).toMatch(
      /more than 5 bytes/,
    );
    expect((await executor({ maxBytes: 6 }).http.request({ url: api("/headers"), method: "GET" })).body).toBe(
      "héllo",
    );
  });

  it("enforces one deadline for the whole exchange, trickling bodies included", async () => {
    const { http } = executor({ timeoutMs: 300 });
    const started = Date.now();
    const error = await failureOf(http.request({ url: api("/trickle"), method: "GET" }));
    const elapsed = Date.now() - started;
    expect(error).toMatchObject({ code: "TOOL_FAILED", retryable: true });
    expect(error.message).toMatch(/did not complete within 300 ms/);
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(1_500);
  });

  it("times out a server that never answers", async () => {
    const { http } = executor({ timeoutMs: 200 });
    const error = await failureOf(http.request({ url: api("/hang"), method: "GET" }));
    expect(error.message).toMatch(/did not complete within 200 ms/);
  });

  it("counts a slow resolver against the deadline", async () => {
    const http = createHttpExecutor({
      resolve: () => new Promise(() => {}),
      timeoutMs: 100,
      ca: TEST_CA,
    });
    expect((await failureOf(http.request({ url: api("/echo"), method: "GET" }))).message).toMatch(
      /within 100 ms/,
    );
  });

  it("aborts through the caller's signal", async () => {
    const { http } = executor();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const started = Date.now();
    const error = await failureOf(
      http.request({ url: api("/trickle"), method: "GET", signal: controller.signal }),
    );
    expect(error.code).toBe("ABORTED");
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("does not start when the signal is already aborted", async () => {
    const { http, dns } = executor();
    const error = await failureOf(
      http.request({ url: api("/echo"), method: "GET", signal: AbortSignal.abort() }),
    );
    expect(error.code).toBe("ABORTED");
    expect(dns.calls).toEqual([]);
  });
});

describe("createHttpExecutor: TLS", () => {
  it("fails with TOOL_FAILED when the certificate is not signed by the trusted CA", async () => {
    const { http } = executor();
    const error = await failureOf(
      http.request({
        url: `https://api.test.kilo:${untrusted.port}/`,
        method: "GET",
        headers: { authorization: CANARY },
      }),
    );
    expect(error.code).toBe("TOOL_FAILED");
    expect(error.message).toMatch(/TLS verification failed for https:\/\/api\.test\.kilo:\d+ \(/);
    expect(error.message).not.toContain("canary");
  });

  it("checks the certificate against the hostname even though the address is pinned", async () => {
    const { http } = executor();
    const error = await failureOf(
      http.request({ url: `https://wrong-name.test.kilo:${server.port}/echo`, method: "GET" }),
    );
    expect(error).toMatchObject({
      code: "TOOL_FAILED",
      message: expect.stringMatching(/ERR_TLS_CERT_ALTNAME_INVALID/),
    });
    expect(server.requests).toEqual([]);
  });

  it("fails without the test CA (the system store does not trust it)", async () => {
    const dns = testResolver();
    const http = createHttpExecutor({ resolve: dns.resolve, allowPrivateAddresses: ["127.0.0.1"] });
    expect((await failureOf(http.request({ url: api("/echo"), method: "GET" }))).message).toMatch(
      /TLS verification failed/,
    );
  });

  it("reports a refused connection as a retryable TOOL_FAILED", async () => {
    const closed = await startHttpsServer(() => {});
    const port = closed.port;
    await closed.close();
    const { http } = executor();
    const error = await failureOf(http.request({ url: `https://api.test.kilo:${port}/`, method: "GET" }));
    expect(error).toMatchObject({
      code: "TOOL_FAILED",
      retryable: true,
      message: expect.stringMatching(/ECONNREFUSED/),
    });
  });
});
