import { z } from "zod";
import { IdSchema } from "./common.js";

/*
 * The tool registry's records: an integration a bot may call (base URL, auth,
 * an endpoint catalog), the audit entry of every call, and the approval a
 * risky call waits for. The schemas only validate shape; the outbound HTTP
 * executor still checks every address at call time (DNS can change).
 */

/** Characters of an RFC 9110 token: what a header name may consist of. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** True when `value` has a C0 control character or DEL (CR, LF and NUL among them). */
function hasControlCharacter(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

/** Headers that frame or route the request; an API key in one of them would corrupt the request. */
const RESERVED_HEADERS: ReadonlySet<string> = new Set([
  "connection",
  "content-length",
  "host",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/** The name of the header that carries an API key, e.g. `X-Api-Key`. */
export const ToolHeaderNameSchema = z
  .string()
  .min(1)
  .max(100)
  .regex(TOKEN, "must be an HTTP header name: letters, digits and !#$%&'*+.^_`|~- only")
  .refine((name) => !RESERVED_HEADERS.has(name.toLowerCase()), {
    message: "must not be a header that frames or routes the request (Host, Content-Length, ...)",
  });

/** The name of the query parameter that carries an API key, e.g. `api_key`. */
export const ToolQueryParamNameSchema = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9_.~-]+$/, "must be letters, digits, '_', '.', '~' or '-' only");

/**
 * How a tool authenticates. The secret itself (key, token, password) is never
 * part of this: it lives encrypted in `Tool.credential`.
 *
 * - `none`: no credential is sent.
 * - `api_key_header`: the secret is sent in the header `header`.
 * - `bearer`: the secret is sent as `Authorization: Bearer <secret>`.
 * - `basic`: `Authorization: Basic base64(username:secret)`.
 * - `api_key_query`: the secret is sent as the query parameter `param`.
 */
export const ToolAuthSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("none") }).strict(),
  z.object({ type: z.literal("api_key_header"), header: ToolHeaderNameSchema }).strict(),
  z.object({ type: z.literal("bearer") }).strict(),
  z
    .object({
      type: z.literal("basic"),
      /** May be empty (APIs that take the key as the password); never contains ':' or control characters. */
      username: z
        .string()
        .max(256)
        .refine((name) => !name.includes(":") && !hasControlCharacter(name), {
          message: "must not contain ':' or control characters",
        }),
    })
    .strict(),
  z.object({ type: z.literal("api_key_query"), param: ToolQueryParamNameSchema }).strict(),
]);

/** How a tool authenticates; see {@link ToolAuthSchema}. */
export type ToolAuth = z.infer<typeof ToolAuthSchema>;

/** HTTP methods an endpoint may use. */
export const TOOL_HTTP_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"] as const;

/** An HTTP method an endpoint may use; see {@link TOOL_HTTP_METHODS}. */
export const ToolHttpMethodSchema = z.enum(TOOL_HTTP_METHODS);
/** An HTTP method an endpoint may use. */
export type ToolHttpMethod = z.infer<typeof ToolHttpMethodSchema>;

/** The name of an endpoint parameter: a path placeholder, a query key or a body field. */
const ParameterNameSchema = z
  .string()
  .min(1)
  .max(100)
  .regex(
    /^[A-Za-z_][A-Za-z0-9_.[\]-]*$/,
    "must start with a letter or '_' and contain only letters, digits, '_', '.', '-', '[' and ']'",
  );

/** One parameter of an endpoint, as the model fills it in. */
export const ToolParameterSchema = z
  .object({
    name: ParameterNameSchema,
    /** Where the value goes: a `{placeholder}` of the path, the query string, or the JSON body. */
    in: z.enum(["path", "query", "body"]),
    type: z.enum(["string", "number", "integer", "boolean"]),
    /** Path parameters must be required. */
    required: z.boolean().default(false),
    description: z.string().max(500).default(""),
  })
  .strict();

/** One parameter of an endpoint. */
export type ToolParameter = z.infer<typeof ToolParameterSchema>;

const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_.-]*)\}/g;

/**
 * The names of the `{placeholders}` of an endpoint path template, in order
 * (`"/v1/customers/{id}/cards/{card_id}"` gives `["id", "card_id"]`).
 */
export function toolPathPlaceholders(path: string): string[] {
  return Array.from(path.matchAll(PLACEHOLDER), (match) => match[1]!);
}

/** Why `path` is not an acceptable path template, or `null` when it is. */
function pathProblem(path: string): string | null {
  if (!path.startsWith("/")) return "must start with '/'";
  if (!/^[A-Za-z0-9\-._~!$&'()*+,;=:@%/{}]*$/.test(path)) {
    return "may contain only URL path characters and {placeholders} (no '?', '#', spaces, backslashes or control characters; percent-encode the rest)";
  }
  if (/%(?![0-9A-Fa-f]{2})/.test(path)) return "has a '%' that does not start a percent-encoded byte";
  if (/%(2e|2f|5c|00)/i.test(path)) return "must not percent-encode '.', '/', '\\' or NUL";
  if (path.includes("//")) return "must not contain empty segments ('//')";
  if (path.split("/").some((segment) => segment === "." || segment === "..")) {
    return "must not contain '.' or '..' segments";
  }
  if (/[{}]/.test(path.replace(PLACEHOLDER, ""))) {
    return "has a '{' or '}' that is not part of a {placeholder} (a placeholder is a parameter name in braces)";
  }
  return null;
}

/** A path template: starts with `/`, placeholders like `{id}`, no query or fragment. */
export const ToolPathSchema = z
  .string()
  .min(1)
  .max(2000)
  .superRefine((path, ctx) => {
    const problem = pathProblem(path);
    if (problem !== null) ctx.addIssue({ code: "custom", message: `path template ${problem}` });
  });

/**
 * One callable endpoint of a tool. Only registered endpoints can be called.
 *
 * Every `{placeholder}` of `path` needs a parameter with `in: "path"` of the
 * same name, and every path parameter must appear in `path` and be required.
 * Parameter names are unique within the endpoint, and GET endpoints take no
 * body parameters.
 */
export const ToolEndpointSchema = z
  .object({
    /** snake_case, unique within the tool; what the model names in `call_api`. */
    name: z
      .string()
      .min(1)
      .max(64)
      .regex(
        /^[a-z][a-z0-9_]*$/,
        "must be snake_case: lowercase letters, digits and '_', starting with a letter",
      ),
    method: ToolHttpMethodSchema,
    /** Appended to the tool's `baseUrl`, e.g. `/v1/customers/{id}`. */
    path: ToolPathSchema,
    /** What the endpoint does; shown to the model. */
    description: z.string().max(1000).default(""),
    parameters: z.array(ToolParameterSchema).max(50).default([]),
    /**
     * Payments, deletion, account changes: a call waits for the user's
     * approval before anything is sent.
     */
    risky: z.boolean().default(false),
  })
  .strict()
  .superRefine((endpoint, ctx) => {
    const seen = new Set<string>();
    endpoint.parameters.forEach((parameter, index) => {
      if (seen.has(parameter.name)) {
        ctx.addIssue({
          code: "custom",
          message: `parameter names must be unique; "${parameter.name}" appears twice`,
          path: ["parameters", index, "name"],
        });
      }
      seen.add(parameter.name);
    });
    const placeholders = new Set(toolPathPlaceholders(endpoint.path));
    const pathParameters = new Set(endpoint.parameters.filter((p) => p.in === "path").map((p) => p.name));
    for (const placeholder of placeholders) {
      if (!pathParameters.has(placeholder)) {
        ctx.addIssue({
          code: "custom",
          message: `the path placeholder {${placeholder}} has no parameter with in: "path"`,
          path: ["path"],
        });
      }
    }
    endpoint.parameters.forEach((parameter, index) => {
      if (parameter.in === "path" && !placeholders.has(parameter.name)) {
        ctx.addIssue({
          code: "custom",
          message: `the path parameter "${parameter.name}" does not appear in the path as {${parameter.name}}`,
          path: ["parameters", index, "in"],
        });
      }
      if (parameter.in === "path" && !parameter.required) {
        ctx.addIssue({
          code: "custom",
          message: "path parameters must be required (set required: true)",
          path: ["parameters", index, "required"],
        });
      }
      if (parameter.in === "body" && endpoint.method === "GET") {
        ctx.addIssue({
          code: "custom",
          message: 'GET endpoints take no body parameters; use in: "query"',
          path: ["parameters", index, "in"],
        });
      }
    });
  });

/** One callable endpoint of a tool. */
export type ToolEndpoint = z.infer<typeof ToolEndpointSchema>;

/** A tool's endpoint catalog: 1–100 endpoints with unique names. */
const EndpointsSchema = z
  .array(ToolEndpointSchema)
  .min(1, "a tool needs at least one endpoint")
  .max(100)
  .superRefine((endpoints, ctx) => {
    const seen = new Set<string>();
    endpoints.forEach((endpoint, index) => {
      if (seen.has(endpoint.name)) {
        ctx.addIssue({
          code: "custom",
          message: `endpoint names must be unique within the tool; "${endpoint.name}" appears twice`,
          path: [index, "name"],
        });
      }
      seen.add(endpoint.name);
    });
  });

/** An integration name such as `stripe`: lowercase letters, digits, '-' and '_'. Unique per bot. */
export const ToolNameSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(
    /^[a-z0-9][a-z0-9_-]*$/,
    "must be lowercase letters, digits, '-' and '_', starting with a letter or digit",
  );

/** Why `url` is not an acceptable base URL, or `null` when it is. */
function baseUrlProblem(url: string): string | null {
  // The URL parser quietly drops tabs and newlines and reads '\' as '/': refuse them before parsing.
  if (hasControlCharacter(url) || /\s|\\/.test(url))
    return "must not contain spaces, backslashes or control characters";
  if (!/^https:\/\/[^/]/i.test(url)) return "must start with https:// followed by a host";
  if (url.includes("?") || url.includes("#")) return "must not have a query string or a fragment";
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "is not a valid URL";
  }
  if (parsed.protocol !== "https:") return "must use https";
  if (parsed.username !== "" || parsed.password !== "" || url.slice(8).split("/")[0]!.includes("@")) {
    return "must not contain user information ('user:password@'); put credentials in the tool's secret";
  }
  if (parsed.hostname === "") return "must name a host";
  return null;
}

/** The tool's base URL: `https://`, no user information, no query string or fragment. */
export const ToolBaseUrlSchema = z
  .string()
  .min(1)
  .max(2000)
  .superRefine((url, ctx) => {
    const problem = baseUrlProblem(url);
    if (problem !== null) ctx.addIssue({ code: "custom", message: `base URL ${problem}` });
  });

/**
 * A plaintext secret as a host hands it over (API key, token, password).
 * Control characters (CR, LF, NUL, ...) are refused, since the secret goes
 * into a header or a URL. Zod issues about it never echo the value.
 */
export const ToolSecretSchema = z
  .string()
  .min(1, "must not be empty")
  .max(8192)
  .refine((secret) => !hasControlCharacter(secret), {
    message: "must not contain control characters (CR, LF, NUL, ...)",
  });

/**
 * An integration a bot can call: where it lives, how it authenticates and the
 * endpoints the model may use.
 *
 * `credential` is the vault's ciphertext of the secret (bound to the tool's
 * id), or `null` when none is configured. It is never plaintext, and never
 * leaves kilo: every read a host sees goes through {@link redactTool}.
 */
export const ToolSchema = z.object({
  id: IdSchema,
  botId: IdSchema,
  name: ToolNameSchema,
  /** What the integration is for; shown to the model. */
  description: z.string().max(2000),
  baseUrl: ToolBaseUrlSchema,
  auth: ToolAuthSchema,
  /** Ciphertext produced by the credential vault, or `null`. */
  credential: z.string().min(1).max(16_384).nullable(),
  endpoints: EndpointsSchema,
  createdAt: z.date(),
  updatedAt: z.date(),
});

/** An integration a bot can call, as stored (credential encrypted). */
export type Tool = z.infer<typeof ToolSchema>;

/** A tool as hosts see it: the credential replaced by whether one is configured. */
export const RedactedToolSchema = ToolSchema.extend({
  credential: z.object({ configured: z.boolean() }).strict(),
});

/** A tool as hosts see it; see {@link redactTool}. */
export type RedactedTool = z.infer<typeof RedactedToolSchema>;

/**
 * The tool as every read returns it to a host: a deep copy with `credential`
 * replaced by `{ configured }`, so the ciphertext never leaves kilo.
 *
 * @example
 * ```ts
 * redactTool(tool).credential; // { configured: true }
 * ```
 */
export function redactTool(tool: Tool): RedactedTool {
  const { credential, ...rest } = tool;
  return { ...structuredClone(rest), credential: { configured: credential !== null } };
}

const NO_SECRET_WITHOUT_AUTH = {
  message: 'a tool with auth type "none" takes no secret',
  path: ["secret"],
};

/**
 * Input of `kilo.tools.create`. Takes the plaintext `secret`, which the core
 * encrypts with the vault (it is never stored as given). A tool whose auth
 * needs a secret may be created without one and given it later.
 */
export const CreateToolInputSchema = z
  .object({
    id: IdSchema.optional(),
    name: ToolNameSchema,
    description: z.string().max(2000).default(""),
    baseUrl: ToolBaseUrlSchema,
    auth: ToolAuthSchema.default({ type: "none" }),
    secret: ToolSecretSchema.optional(),
    endpoints: EndpointsSchema,
  })
  .strict()
  .refine((input) => input.auth.type !== "none" || input.secret === undefined, NO_SECRET_WITHOUT_AUTH);

/** Input of `kilo.tools.create`. */
export type CreateToolInput = z.input<typeof CreateToolInputSchema>;

/**
 * Input of `kilo.tools.update`: every field optional. `secret` replaces the
 * stored credential with a new plaintext secret (encrypted by the core);
 * `null` clears it.
 */
export const UpdateToolInputSchema = z
  .object({
    name: ToolNameSchema,
    description: z.string().max(2000),
    baseUrl: ToolBaseUrlSchema,
    auth: ToolAuthSchema,
    secret: ToolSecretSchema.nullable(),
    endpoints: EndpointsSchema,
  })
  .partial()
  .strict()
  .refine((patch) => patch.auth?.type !== "none" || typeof patch.secret !== "string", NO_SECRET_WITHOUT_AUTH);

/** Input of `kilo.tools.update`. */
export type UpdateToolInput = z.input<typeof UpdateToolInputSchema>;

/**
 * What became of a tool call:
 * - `succeeded`: the upstream answered (any HTTP status; see `httpStatus`).
 * - `failed`: no usable answer (timeout, too large, connection error).
 * - `blocked`: refused before sending (SSRF guard, unregistered endpoint, bad parameters).
 * - `denied`: the user denied the approval.
 * - `awaiting_approval`: a risky call now waits for the user.
 */
export const ToolCallStatusSchema = z.enum(["succeeded", "failed", "blocked", "denied", "awaiting_approval"]);
/** What became of a tool call; see {@link ToolCallStatusSchema}. */
export type ToolCallStatus = z.infer<typeof ToolCallStatusSchema>;

/**
 * The audit entry of one tool call. Holds no credential, no request header
 * and no request or response body: only who called what, when, and how it went.
 */
export const ToolCallAuditSchema = z.object({
  id: IdSchema,
  botId: IdSchema,
  userId: IdSchema,
  conversationId: IdSchema.nullable(),
  /** The tool called, or `null` when the call named no tool the bot has. */
  toolId: IdSchema.nullable(),
  /** The tool's name as called. */
  toolName: z.string().max(200),
  /** The endpoint's name as called (it may not be registered when the call was blocked). */
  endpoint: z.string().max(200),
  /** The endpoint's method, or `null` when the call named no registered endpoint. */
  method: ToolHttpMethodSchema.nullable(),
  status: ToolCallStatusSchema,
  /** The upstream's HTTP status (of the last hop), or `null` when no response arrived. */
  httpStatus: z.number().int().min(100).max(599).nullable(),
  durationMs: z.number().nonnegative(),
  /** Bytes of the response body received (after decompression). */
  responseBytes: z.number().int().nonnegative(),
  /** A kilo error code (`SSRF_BLOCKED`, `TOOL_FAILED`, ...) when the call did not succeed. */
  errorCode: z.string().max(100).nullable(),
  createdAt: z.date(),
});

/** The audit entry of one tool call. */
export type ToolCallAudit = z.infer<typeof ToolCallAuditSchema>;

/** State of a tool approval. */
export const ToolApprovalStatusSchema = z.enum(["pending", "approved", "denied"]);
/** State of a tool approval. */
export type ToolApprovalStatus = z.infer<typeof ToolApprovalStatusSchema>;

/**
 * A risky tool call waiting for (or decided by) the user. Nothing is sent
 * upstream before the approval is `approved`; the decision is kept.
 */
export const ToolApprovalSchema = z.object({
  id: IdSchema,
  botId: IdSchema,
  userId: IdSchema,
  conversationId: IdSchema,
  toolId: IdSchema,
  toolName: z.string().max(200),
  endpoint: z.string().max(200),
  /** The call's parameters as the model gave them (never a credential). */
  input: z.record(z.string(), z.unknown()),
  /** The model's id for the tool call, to answer it once decided. */
  toolCallId: z.string().min(1).max(200),
  /**
   * The run whose turn asked for it (that run is `awaiting_approval` until
   * its approvals are decided), or `null` for a turn made outside a run.
   */
  runId: IdSchema.nullable(),
  status: ToolApprovalStatusSchema,
  /** Why the user decided as they did, when they said. */
  reason: z.string().max(1000).nullable(),
  createdAt: z.date(),
  decidedAt: z.date().nullable(),
});

/** A risky tool call waiting for (or decided by) the user. */
export type ToolApproval = z.infer<typeof ToolApprovalSchema>;
