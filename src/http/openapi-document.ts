import { z } from "zod";
import type { UnrepresentableHandler } from "zod/v4/core";
import { IdSchema } from "../domain/common.js";
import { KiloError } from "../errors.js";
import { NAMED_SCHEMAS, ROUTES, type RouteSpec, type SchemaName } from "./http-routes.js";

/** A JSON Schema (draft 2020-12, as OpenAPI 3.1 uses it). */
export type JsonSchema = Record<string, unknown>;

/** The parts of an OpenAPI 3.1 document kilo writes; see {@link openApiDocument}. */
export interface OpenApiDocument {
  openapi: "3.1.0";
  info: { title: string; version: string; description?: string };
  servers?: Array<{ url: string; description?: string }>;
  tags: Array<{ name: string }>;
  /** Paths in OpenAPI form (`/api/bots/{botId}`), each with its operations by lower-case method. */
  paths: Record<string, Record<string, unknown>>;
  components: { schemas: Record<string, JsonSchema>; securitySchemes?: Record<string, unknown> };
  security?: Array<Record<string, string[]>>;
}

/** Options of {@link openApiDocument}. */
export interface OpenApiOptions {
  /** `info.title`. Default `"kilo HTTP API"`. */
  title?: string;
  /** `info.version`: the version of your deployment of the API. Default `"1.0.0"`. */
  version?: string;
  /** `info.description`. */
  description?: string;
  /**
   * Where the API is served. Default: `[{ url: basePath }]` when the handler
   * has a `basePath`, else none (the document's own origin).
   */
  servers?: Array<{ url: string; description?: string }>;
  /**
   * Security schemes of your `authenticate` hook (auth belongs to the host, so
   * kilo cannot know them), as OpenAPI Security Scheme Objects by name. Every
   * authenticated operation then requires one of them.
   *
   * @example
   * ```ts
   * { bearer: { type: "http", scheme: "bearer" } }
   * ```
   */
  securitySchemes?: Record<string, Record<string, unknown>>;
  /** The path prefix the routes live under (the handler's `basePath`, which passes it on); sets the default `servers`. */
  basePath?: string;
}

const SCHEMA_REF = "#/components/schemas/";
const ref = (name: SchemaName) => ({ $ref: `${SCHEMA_REF}${name}` });

/** Dates travel as ISO 8601 strings; anything else JSON cannot carry is a bug in a schema. */
const unrepresentable: UnrepresentableHandler = (context) =>
  context.zodSchema._zod.def.type === "date" ? { type: "string", format: "date-time" } : "throw";

function toJsonSchema(schema: z.ZodType, io: "input" | "output"): JsonSchema {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io, unrepresentable }) as JsonSchema;
  return rest;
}

/** Every named schema as a component; two passes, since what a client sends and receives differ (defaults). */
function componentSchemas(): Record<string, JsonSchema> {
  const schemas: Record<string, JsonSchema> = {};
  for (const io of ["input", "output"] as const) {
    const registry = z.registry<{ id: string }>();
    for (const [name, entry] of Object.entries(NAMED_SCHEMAS)) {
      if (entry.io === io) registry.add(entry.schema, { id: name });
    }
    const converted = z.toJSONSchema(registry, { io, unrepresentable, uri: (id) => `${SCHEMA_REF}${id}` });
    for (const [name, schema] of Object.entries(converted.schemas as Record<string, unknown>)) {
      const { $schema: _dialect, $id: _id, ...rest } = schema as JsonSchema;
      schemas[name] = rest;
    }
  }
  return schemas;
}

const errorResponse = (description: string) => ({
  description,
  content: { "application/json": { schema: ref("Error") } },
});

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: "`VALIDATION_FAILED`: the body, query or a path id does not match its schema",
  401: "`UNAUTHENTICATED`: the host's `authenticate` found no user",
  403: "`FORBIDDEN`: the user may not touch this",
  404: "`NOT_FOUND`: no such thing, or not the user's (the same answer, so ids cannot be probed)",
  409: "`CONFLICT`: the write clashes with existing data",
  413: "`PAYLOAD_TOO_LARGE`: the body is over the handler's `maxBodyBytes`",
};

function pathParameters(path: string): string[] {
  return path
    .split("/")
    .filter((segment) => segment.startsWith(":"))
    .map((segment) => segment.slice(1));
}

/** `/api/bots/:botId` -> `/api/bots/{botId}`. */
export function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z0-9_]+)/g, "{$1}");
}

function parameters(spec: RouteSpec): unknown[] {
  const idSchema = toJsonSchema(IdSchema, "input");
  const inPath = pathParameters(spec.path).map((name) => {
    const own = spec.params?.[name];
    return { name, in: "path", required: true, schema: own ? toJsonSchema(own, "input") : idSchema };
  });
  if (!spec.query) return inPath;
  const query = toJsonSchema(spec.query, "input") as {
    properties?: Record<string, JsonSchema>;
    required?: string[];
  };
  const inQuery = Object.entries(query.properties ?? {}).map(([name, schema]) => {
    const { description, ...rest } = schema;
    return {
      name,
      in: "query",
      required: query.required?.includes(name) ?? false,
      ...(typeof description === "string" ? { description } : {}),
      schema: rest,
    };
  });
  return [...inPath, ...inQuery];
}

function successResponse(response: RouteSpec["response"]): Record<string, unknown> {
  if (response.status === 204) return { description: response.description };
  if ("stream" in response) {
    return {
      description: response.description,
      content: { "text/event-stream": { schema: { type: "string" } } },
    };
  }
  const schema = response.schema === "any" ? { type: "object" } : ref(response.schema);
  return { description: response.description, content: { "application/json": { schema } } };
}

function operation(spec: RouteSpec, secured: boolean): Record<string, unknown> {
  const auth = spec.auth ?? true;
  const statuses = new Set<number>(spec.errors ?? []);
  if (auth) statuses.add(401);
  if (spec.body || spec.query || pathParameters(spec.path).length > 0) statuses.add(400);
  if (pathParameters(spec.path).length > 0) statuses.add(404);
  if (spec.body) statuses.add(413);
  const responses: Record<string, unknown> = {
    [String(spec.response.status)]: successResponse(spec.response),
  };
  for (const status of [...statuses].sort()) {
    responses[String(status)] = errorResponse(ERROR_DESCRIPTIONS[status] ?? "An error");
  }
  responses.default = errorResponse("Any other failure, e.g. 5xx `STORAGE_FAILED` or `INTERNAL`");
  const params = parameters(spec);
  return {
    operationId: spec.operationId,
    tags: [spec.tag],
    summary: spec.summary,
    ...(spec.description ? { description: spec.description } : {}),
    ...(params.length > 0 ? { parameters: params } : {}),
    ...(spec.body
      ? {
          requestBody: {
            required: spec.body.required,
            content: { "application/json": { schema: ref(spec.body.schema) } },
          },
        }
      : {}),
    responses,
    ...(!auth && secured ? { security: [] } : {}),
  };
}

/**
 * The OpenAPI 3.1 document of kilo's HTTP API (the routes of
 * `createHttpHandler`), generated from the zod schemas the handler validates
 * requests with and the schemas of what it answers. The handler serves it at
 * `GET /openapi.json`; call this to write it to a file or feed a client generator.
 *
 * Every error response has the one error shape `{ error: { code, message } }`
 * (component `Error`); `POST /api/chat/stream` answers `text/event-stream`.
 *
 * @example
 * ```ts
 * import { writeFile } from "node:fs/promises";
 * import { openApiDocument } from "kilo/http";
 *
 * const document = openApiDocument({ servers: [{ url: "https://api.example.com/kilo" }] });
 * await writeFile("openapi.json", JSON.stringify(document, null, 2));
 * ```
 */
export function openApiDocument(options: OpenApiOptions = {}): OpenApiDocument {
  const basePath = (options.basePath ?? "").replace(/\/+$/, "");
  const servers = options.servers ?? (basePath === "" ? undefined : [{ url: basePath }]);
  const securitySchemes = options.securitySchemes;
  const secured = securitySchemes !== undefined && Object.keys(securitySchemes).length > 0;
  const paths: OpenApiDocument["paths"] = {};
  for (const spec of ROUTES as readonly RouteSpec[]) {
    const path = openApiPath(spec.path);
    const item = paths[path] ?? {};
    paths[path] = item;
    const method = spec.method.toLowerCase();
    if (item[method]) throw new KiloError("INTERNAL", `Route ${spec.method} ${spec.path} is declared twice`);
    item[method] = operation(spec, secured);
  }
  const tags = [...new Set(ROUTES.map((spec) => spec.tag))].map((name) => ({ name }));
  return {
    openapi: "3.1.0",
    info: {
      title: options.title ?? "kilo HTTP API",
      version: options.version ?? "1.0.0",
      ...(options.description ? { description: options.description } : {}),
    },
    ...(servers ? { servers } : {}),
    tags,
    paths,
    components: {
      schemas: componentSchemas(),
      ...(secured ? { securitySchemes } : {}),
    },
    ...(secured ? { security: Object.keys(securitySchemes).map((name) => ({ [name]: [] })) } : {}),
  };
}
