import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { braveSearch } from "../../adapters/search/brave/index.js";
import { kiloFailure } from "../fixtures.js";

interface Seen {
  path: string;
  query: URLSearchParams;
  token: string | undefined;
}

let server: Server;
let baseURL: string;
const seen: Seen[] = [];
let reply: { status: number; body: unknown } = { status: 200, body: {} };

// Brave's real answer shape for GET /res/v1/web/search (trimmed to the fields kilo reads, plus a few it ignores).
const BRAVE_ANSWER = {
  type: "search",
  query: { original: "Acme API documentation", more_results_available: true },
  mixed: { type: "mixed", main: [{ type: "web", index: 0, all: false }] },
  web: {
    type: "search",
    family_friendly: true,
    results: [
      {
        type: "search_result",
        title: "<strong>Acme</strong> API Reference",
        url: "https://docs.acme.example/api",
        description: "The <strong>Acme</strong> REST API &amp; its endpoints.",
        is_source_local: false,
        profile: { name: "Acme", url: "https://docs.acme.example" },
      },
      { type: "search_result", title: "No url", description: "dropped" },
      { type: "search_result", title: "FTP", url: "ftp://files.acme.example", description: "dropped" },
      {
        type: "search_result",
        title: "Acme quickstart",
        url: "https://acme.example/quickstart",
        description: "Get started",
      },
    ],
  },
};

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    seen.push({
      path: url.pathname,
      query: url.searchParams,
      token: req.headers["x-subscription-token"] as string | undefined,
    });
    res.writeHead(reply.status, { "content-type": "application/json" });
    res.end(typeof reply.body === "string" ? reply.body : JSON.stringify(reply.body));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/res/v1`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

afterEach(() => {
  seen.length = 0;
  delete process.env.BRAVE_SEARCH_API_KEY;
});

describe("braveSearch", () => {
  it("speaks Brave's wire format: query, count and token in, plain-text results out", async () => {
    reply = { status: 200, body: BRAVE_ANSWER };
    const search = braveSearch({ apiKey: "brave-test-key", baseURL });
    const results = await search.search("Acme API documentation", { count: 3 });
    expect(seen).toHaveLength(1);
    expect(seen[0]?.path).toBe("/res/v1/web/search");
    expect(seen[0]?.query.get("q")).toBe("Acme API documentation");
    expect(seen[0]?.query.get("count")).toBe("3");
    expect(seen[0]?.token).toBe("brave-test-key");
    expect(results).toEqual([
      {
        title: "Acme API Reference",
        url: "https://docs.acme.example/api",
        snippet: "The Acme REST API & its endpoints.",
      },
      { title: "Acme quickstart", url: "https://acme.example/quickstart", snippet: "Get started" },
    ]);
    expect(search.name).toBe("brave");
  });

  it("reads BRAVE_SEARCH_API_KEY at call time, and names both the option and the variable when it is missing", async () => {
    reply = { status: 200, body: { type: "search" } };
    const search = braveSearch({ baseURL });
    const missing = await kiloFailure(search.search("acme"));
    expect(missing.code).toBe("CONFIGURATION_INVALID");
    expect(missing.message).toContain("`apiKey`");
    expect(missing.message).toContain("BRAVE_SEARCH_API_KEY");
    expect(seen).toHaveLength(0);
    process.env.BRAVE_SEARCH_API_KEY = "from-env";
    expect(await search.search("acme")).toEqual([]);
    expect(seen[0]?.token).toBe("from-env");
  });

  it("maps Brave's errors: a refused key is PROVIDER_REJECTED, a rate limit or 5xx PROVIDER_FAILED (retryable)", async () => {
    const search = braveSearch({ apiKey: "wrong-key", baseURL });
    reply = {
      status: 422,
      body: {
        type: "ErrorResponse",
        error: {
          code: "SUBSCRIPTION_TOKEN_INVALID",
          detail: "The provided subscription token is invalid.",
          status: 422,
        },
      },
    };
    const rejected = await kiloFailure(search.search("acme"));
    expect(rejected).toMatchObject({ code: "PROVIDER_REJECTED", provider: "brave", retryable: false });
    expect(rejected.message).toContain("subscription token is invalid");
    expect(rejected.message).not.toContain("wrong-key");
    reply = {
      status: 429,
      body: { type: "ErrorResponse", error: { code: "RATE_LIMITED", detail: "Too many requests" } },
    };
    expect(await kiloFailure(search.search("acme"))).toMatchObject({
      code: "PROVIDER_FAILED",
      retryable: true,
    });
    reply = { status: 502, body: "<html>bad gateway</html>" };
    expect(await kiloFailure(search.search("acme"))).toMatchObject({
      code: "PROVIDER_FAILED",
      retryable: true,
    });
  });

  it("uses an injected fetch, and reports an unreachable API as PROVIDER_FAILED", async () => {
    const urls: string[] = [];
    const search = braveSearch({
      apiKey: "k",
      fetch: async (url) => {
        urls.push(url);
        throw new Error("connect ECONNREFUSED");
      },
    });
    const error = await kiloFailure(search.search("acme docs"));
    expect(error).toMatchObject({ code: "PROVIDER_FAILED", retryable: true });
    expect(urls[0]).toBe("https://api.search.brave.com/res/v1/web/search?q=acme+docs&count=5");
  });

  it("aborts through the signal", async () => {
    reply = { status: 200, body: BRAVE_ANSWER };
    const controller = new AbortController();
    controller.abort();
    expect(
      (await kiloFailure(braveSearch({ apiKey: "k", baseURL }).search("acme", { signal: controller.signal })))
        .code,
    ).toBe("ABORTED");
  });
});
