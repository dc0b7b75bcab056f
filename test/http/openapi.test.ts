import { validate } from "@readme/openapi-parser";
import { afterEach, describe, expect, it } from "vitest";
import { ROUTES } from "../../src/http/http-routes.js";
import { type HttpHandlerOptions, type OpenApiDocument, openApiDocument } from "../../src/http/index.js";
import { inProcessHandler } from "./helpers.js";

const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"] as const;

let close: (() => Promise<void>) | null = null;
afterEach(async () => {
  await close?.();
  close = null;
});

function handlerWith(options: Partial<HttpHandlerOptions> = {}) {
  const made = inProcessHandler(options);
  close = made.close;
  return made.handler;
}

/** Every (METHOD, /path/{param}) the document describes. */
function documentedOperations(document: OpenApiDocument): string[] {
  return Object.entries(document.paths).flatMap(([path, item]) =>
    Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`),
  );
}

/** A concrete URL path for an OpenAPI path template. */
const concrete = (path: string) => path.replace(/\{[^}]+\}/g, "x1");

type Operation = {
  parameters?: Array<{ name: string; in: string; required: boolean }>;
  requestBody?: { content: Record<string, { schema: { $ref: string } }> };
  responses: Record<string, { content?: Record<string, { schema: Record<string, unknown> }> }>;
};
const operation = (document: OpenApiDocument, path: string, method: string) =>
  document.paths[path]?.[method] as Operation;

describe("OpenAPI document", () => {
  it("is a valid OpenAPI 3.1 document", async () => {
    const document = openApiDocument({ securitySchemes: { bearer: { type: "http", scheme: "bearer" } } });
    expect(document.openapi).toBe("3.1.0");
    const result = await validate(structuredClone(document) as never);
    if (!result.valid) throw new Error(JSON.stringify(result.errors, null, 2));
    expect(result.valid).toBe(true);
    expect(result.warnings).toEqual([]);
  });

  it("describes exactly the routes of the route table", () => {
    const fromTable = ROUTES.map((route) => `${route.method} ${route.path.replace(/:(\w+)/g, "{$1}")}`);
    expect(documentedOperations(openApiDocument()).sort()).toEqual([...fromTable].sort());
    expect(new Set(ROUTES.map((route) => route.operationId)).size).toBe(ROUTES.length);
  });

  it("matches what the handler serves: every documented operation is routed, every other method answers 405", async () => {
    const handler = handlerWith();
    const document = openApiDocument();
    for (const [path, item] of Object.entries(document.paths)) {
      const documented = Object.keys(item).map((method) => method.toUpperCase());
      for (const method of METHODS) {
        const response = await handler(
          new Request(`http://kilo.test${concrete(path)}`, {
            method,
            headers: { "x-user": "alice", "content-type": "application/json" },
            body: method === "GET" || method === "DELETE" ? undefined : "{}",
          }),
        );
        const body = response.headers.get("content-type")?.includes("json")
          ? ((await response.json()) as { error?: { code: string; message: string } })
          : null;
        if (documented.includes(method)) {
          expect(response.status, `${method} ${path}`).not.toBe(405);
          expect(body?.error?.message ?? "", `${method} ${path}`).not.toBe("No such route");
        } else {
          expect(response.status, `${method} ${path}`).toBe(405);
          expect(response.headers.get("allow")?.split(", ").sort()).toEqual([...documented].sort());
        }
      }
    }
  });

  it("is served without auth at GET /openapi.json, with the handler's basePath as its server", async () => {
    const handler = handlerWith({ basePath: "/kilo", openApi: { title: "Bakery API", version: "2.1.0" } });
    const response = await handler(new Request("http://kilo.test/kilo/openapi.json"));
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("application/json");
    const served = (await response.json()) as OpenApiDocument;
    expect(served.info).toEqual({ title: "Bakery API", version: "2.1.0" });
    expect(served.servers).toEqual([{ url: "/kilo" }]);
    expect(served).toEqual(
      openApiDocument({ basePath: "/kilo", title: "Bakery API", version: "2.1.0" }) as unknown,
    );
  });

  it("answers 404 at /openapi.json when the host turns it off", async () => {
    const handler = handlerWith({ openApi: false });
    const response = await handler(new Request("http://kilo.test/openapi.json"));
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ error: { code: "NOT_FOUND", message: "No such route" } });
  });

  it("takes request bodies and parameters from the handler's zod schemas", () => {
    const document = openApiDocument();
    const event = document.components.schemas.InboundEvent as {
      required: string[];
      properties: Record<string, Record<string, unknown>>;
    };
    expect(event.required.sort()).toEqual(["conversation_key", "schema_version", "text", "type", "user_key"]);
    expect(event.properties.schema_version).toMatchObject({ const: 1 });
    expect(event.properties.user_key).toMatchObject({ maxLength: 128, pattern: "^[A-Za-z0-9_.:-]+$" });

    const ingest = operation(document, "/v1/events", "post");
    expect(ingest.requestBody?.content["application/json"]?.schema).toEqual({
      $ref: "#/components/schemas/InboundEvent",
    });
    const createSkill = document.components.schemas.CreateSkill as {
      properties: Record<string, unknown>;
      required: string[];
    };
    expect(createSkill.properties).not.toHaveProperty("id");
    expect(createSkill.required).toEqual(["name"]);

    const listBots = operation(document, "/api/users/{userId}/bots", "get");
    expect(
      listBots.parameters?.map((parameter) => [parameter.name, parameter.in, parameter.required]),
    ).toEqual([
      ["userId", "path", true],
      ["limit", "query", false],
      ["cursor", "query", false],
    ]);
  });

  it("gives every error response the one error shape, and dates as date-time strings", () => {
    const document = openApiDocument();
    expect(document.components.schemas.Error).toMatchObject({
      properties: {
        error: { properties: { code: { enum: expect.arrayContaining(["NOT_FOUND", "UNAUTHENTICATED"]) } } },
      },
    });
    for (const [path, item] of Object.entries(document.paths)) {
      for (const [method, value] of Object.entries(item)) {
        const { responses } = value as Operation;
        const errorStatuses = Object.keys(responses).filter((status) => !/^2/.test(status));
        expect(errorStatuses, `${method} ${path}`).toContain("default");
        for (const status of errorStatuses) {
          expect(responses[status]?.content?.["application/json"]?.schema).toEqual({
            $ref: "#/components/schemas/Error",
          });
        }
        if (path !== "/healthz" && path !== "/openapi.json") expect(responses).toHaveProperty("401");
      }
    }
    const getBot = operation(document, "/api/bots/{botId}", "get");
    expect(Object.keys(getBot.responses).sort()).toEqual(["200", "400", "401", "404", "default"]);
    expect(document.components.schemas.Bot).toMatchObject({
      properties: { createdAt: { type: "string", format: "date-time" } },
    });
  });

  it("describes the chat stream as text/event-stream", () => {
    const stream = operation(openApiDocument(), "/api/chat/stream", "post");
    expect(Object.keys(stream.responses["200"]?.content ?? {})).toEqual(["text/event-stream"]);
  });

  it("marks the open routes as needing no security when the host names its schemes", () => {
    const document = openApiDocument({ securitySchemes: { bearer: { type: "http", scheme: "bearer" } } });
    expect(document.security).toEqual([{ bearer: [] }]);
    expect(document.paths["/healthz"]?.get).toMatchObject({ security: [] });
    expect(document.paths["/api/bots"]?.post).not.toHaveProperty("security");
  });
});
