import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { memoryStorage } from "../../adapters/storage/memory/index.js";
import { createHttpHandler, type HttpHandlerOptions, toNodeHandler } from "../../src/http/index.js";
import { createKilo, type Kilo } from "../../src/index.js";
import { mockProvider, type PurposeScript, scriptByPurpose } from "../../src/testing/index.js";

export const ALICE = "alice";
export const MALLORY = "mallory";

/** A classifier reply: what the matcher's LLM pass answers. */
export const classify = (skill: string | null) =>
  JSON.stringify({ skill, confidence: 0.9, actionable: false, reason: "scripted" });

export interface TestApi {
  kilo: Kilo;
  origin: string;
  provider: ReturnType<typeof mockProvider>;
  /** Calls the API as `user` (no `x-user` header when `user` is null). */
  call(
    method: string,
    path: string,
    options?: { user?: string | null; body?: unknown; headers?: Record<string, string> },
  ): Promise<Response>;
  close(): Promise<void>;
}

/**
 * A real node:http server on 127.0.0.1, port 0, serving kilo's handler over
 * memory storage and a scripted mock provider. The test's auth hook trusts an
 * `x-user` header.
 */
export async function startApi(
  script: PurposeScript = {},
  options: Partial<HttpHandlerOptions> = {},
): Promise<TestApi> {
  const provider = mockProvider({ respond: scriptByPurpose(script), model: "claude-sonnet-4-5" });
  const kilo = createKilo({ storage: memoryStorage(), providers: [provider] });
  const handler = createHttpHandler(kilo, {
    authenticate: async (request) => {
      const user = request.headers.get("x-user");
      return user ? { userId: user } : null;
    },
    ...options,
  });
  const server: Server = createServer(toNodeHandler(handler));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    kilo,
    origin,
    provider,
    call(method, path, { user = ALICE, body, headers = {} } = {}) {
      return fetch(`${origin}${path}`, {
        method,
        headers: {
          ...(user ? { "x-user": user } : {}),
          ...(body === undefined ? {} : { "content-type": "application/json" }),
          ...headers,
        },
        body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
      });
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await kilo.close();
    },
  };
}

/** Reads a Server-Sent Events body into `{ event, data }` frames. */
export async function readSse(response: Response): Promise<Array<{ event: string; data: unknown }>> {
  const text = await response.text();
  return text
    .split("\n\n")
    .filter((frame) => frame.trim() !== "" && !frame.startsWith(":"))
    .map((frame) => {
      const lines = frame.split("\n");
      const event = lines.find((line) => line.startsWith("event: "))?.slice(7) ?? "message";
      const data = lines
        .filter((line) => line.startsWith("data: "))
        .map((line) => line.slice(6))
        .join("\n");
      return { event, data: JSON.parse(data) as unknown };
    });
}

export const ORDER_TRACKER = {
  name: "Order Tracker",
  description: "Records customer orders and answers questions about them.",
  instructions: "Store each new order. Answer from stored orders only.",
  triggers: ["new order", "order", "orders", "pickup"],
  dataFields: [
    { name: "customer", type: "string", required: true, description: "Who ordered" },
    { name: "item", type: "string", required: true, description: "What they ordered" },
  ],
};

export const WEATHER_TOOL = {
  name: "weather",
  description: "Weather lookups",
  baseUrl: "https://api.weather.example",
  endpoints: [
    {
      name: "forecast",
      method: "GET",
      path: "/forecast",
      description: "Tomorrow's forecast",
      parameters: [],
      risky: false,
    },
  ],
};

/**
 * An in-process handler over a fresh kilo (memory storage, a mock model that says "ok"), whose auth
 * hook trusts an `x-user` header; `close()` closes that kilo (call it after each test).
 */
export function inProcessHandler(options: Partial<HttpHandlerOptions> = {}) {
  const kilo = createKilo({ storage: memoryStorage(), providers: [mockProvider({ respond: () => "ok" })] });
  const handler = createHttpHandler(kilo, {
    authenticate: async (request) => {
      const user = request.headers.get("x-user");
      return user ? { userId: user } : null;
    },
    ...options,
  });
  return { kilo, handler, close: () => kilo.close() };
}
