import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { toNodeHandler } from "../../src/http/index.js";

const servers: Array<{ close(): void; closeAllConnections(): void }> = [];
afterEach(() => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    server.close();
  }
});

async function listen(listener: Parameters<typeof createServer>[1]): Promise<string> {
  const server = createServer(listener);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A handler that echoes what it was given. */
const echo = async (request: Request) =>
  new Response(
    JSON.stringify({
      method: request.method,
      url: new URL(request.url).pathname + new URL(request.url).search,
      body: request.body ? await request.text() : null,
      header: request.headers.get("x-test"),
    }),
    { status: 201, headers: { "content-type": "application/json", "set-cookie": "a=1" } },
  );

describe("toNodeHandler", () => {
  it("passes method, path, query, headers and body through, and status and headers back", async () => {
    const origin = await listen(toNodeHandler(echo));
    const response = await fetch(`${origin}/a/b?c=d`, {
      method: "POST",
      headers: { "x-test": "yes" },
      body: '{"x":1}',
    });
    expect(response.status).toBe(201);
    expect(response.headers.get("set-cookie")).toBe("a=1");
    expect(await response.json()).toEqual({
      method: "POST",
      url: "/a/b?c=d",
      body: '{"x":1}',
      header: "yes",
    });
  });

  it("uses a body an earlier middleware already parsed (express.json())", async () => {
    const handler = toNodeHandler(echo);
    const origin = await listen((request: IncomingMessage & { body?: unknown }, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        request.body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        handler(request, response);
      });
    });
    const response = await fetch(`${origin}/x`, { method: "POST", body: '{"parsed":true}' });
    expect(((await response.json()) as { body: string }).body).toBe('{"parsed":true}');
  });

  it("streams response bodies as they are written", async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const origin = await listen(
      toNodeHandler(async () => {
        const encoder = new TextEncoder();
        const body = new ReadableStream<Uint8Array>({
          async start(controller) {
            controller.enqueue(encoder.encode("event: one\ndata: {}\n\n"));
            await gate;
            controller.enqueue(encoder.encode("event: two\ndata: {}\n\n"));
            controller.close();
          },
        });
        return new Response(body, { headers: { "content-type": "text/event-stream" } });
      }),
    );
    const response = await fetch(`${origin}/stream`);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toContain("event: one");
    release();
    let rest = "";
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      rest += new TextDecoder().decode(value);
    }
    expect(rest).toContain("event: two");
  });

  it("answers 500 in the error shape when the handler throws", async () => {
    const origin = await listen(
      toNodeHandler(async () => {
        throw new Error("boom at /secret/path.ts:1:2");
      }),
    );
    const response = await fetch(`${origin}/`);
    expect(response.status).toBe(500);
    const text = await response.text();
    expect(JSON.parse(text)).toEqual({ error: { code: "INTERNAL", message: "Internal server error" } });
    expect(text).not.toContain("secret");
  });
});
