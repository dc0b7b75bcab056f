import { describe, expect, it } from "vitest";
import {
  CreateToolInputSchema,
  RedactedToolSchema,
  redactTool,
  type Tool,
  ToolApprovalSchema,
  ToolAuthSchema,
  ToolBaseUrlSchema,
  ToolCallAuditSchema,
  ToolEndpointSchema,
  ToolNameSchema,
  ToolPathSchema,
  ToolSchema,
  toolPathPlaceholders,
  UpdateToolInputSchema,
} from "../../src/domain/index.js";

// The schemas the tool registry's records are validated with before they reach storage.

const when = new Date("2024-05-01T10:00:00.000Z");

const getCustomer = {
  name: "get_customer",
  method: "GET",
  path: "/v1/customers/{id}",
  parameters: [{ name: "id", in: "path", type: "string", required: true }],
} as const;

function tool(overrides: Partial<Tool> = {}): Tool {
  return {
    id: "tool-1",
    botId: "bot-1",
    name: "stripe",
    description: "Payments",
    baseUrl: "https://api.stripe.com",
    auth: { type: "bearer" },
    credential: "v1.k1.aXY.Y3Q.dGFn",
    endpoints: [ToolEndpointSchema.parse(getCustomer)],
    createdAt: when,
    updatedAt: when,
    ...overrides,
  };
}

const accepts = (schema: { safeParse(value: unknown): { success: boolean } }, value: unknown) =>
  schema.safeParse(value).success;

describe("ToolAuthSchema", () => {
  it("accepts every kind of auth", () => {
    for (const auth of [
      { type: "none" },
      { type: "api_key_header", header: "X-Api-Key" },
      { type: "bearer" },
      { type: "basic", username: "api" },
      { type: "basic", username: "" },
      { type: "api_key_query", param: "api_key" },
    ]) {
      expect(ToolAuthSchema.parse(auth)).toEqual(auth);
    }
  });

  it("refuses header and parameter names that could split or smuggle a request", () => {
    for (const auth of [
      { type: "api_key_header", header: "X-Api-Key\r\nX-Evil: 1" },
      { type: "api_key_header", header: "X-Api-Key\n" },
      { type: "api_key_header", header: "X Api Key" },
      { type: "api_key_header", header: "X-Api-Key:" },
      { type: "api_key_header", header: "" },
      { type: "api_key_header", header: "Host" },
      { type: "api_key_header", header: "transfer-encoding" },
      { type: "api_key_query", param: "key&admin=1" },
      { type: "api_key_query", param: "key=1" },
      { type: "api_key_query", param: "key\r\n" },
      { type: "api_key_query", param: "key#" },
      { type: "basic", username: "user:admin" },
      { type: "basic", username: "user\r\n" },
    ]) {
      expect(accepts(ToolAuthSchema, auth), JSON.stringify(auth)).toBe(false);
    }
  });

  it("refuses unknown types and extra keys (no place to hide a secret)", () => {
    expect(accepts(ToolAuthSchema, { type: "oauth" })).toBe(false);
    expect(accepts(ToolAuthSchema, { type: "bearer", token: "sk_live_x" })).toBe(false);
    expect(accepts(ToolAuthSchema, { type: "basic", username: "u", password: "p" })).toBe(false);
  });
});

describe("ToolPathSchema", () => {
  it("accepts path templates with placeholders", () => {
    for (const path of [
      "/",
      "/v1/customers",
      "/v1/customers/{id}/cards/{card_id}.json",
      "/a/b;v=1/c:d@e/%20",
    ]) {
      expect(accepts(ToolPathSchema, path), path).toBe(true);
    }
    expect(toolPathPlaceholders("/v1/customers/{id}/cards/{card_id}.json")).toEqual(["id", "card_id"]);
  });

  it("refuses paths that could leave the base URL or carry a query", () => {
    for (const path of [
      "v1/customers",
      "//evil.example/x",
      "/a//b",
      "/a/../b",
      "/a/./b",
      "/a/..",
      "/a/%2e%2e/b",
      "/a/%2F/b",
      "/a/%5c",
      "/a/%00",
      "/a/%zz",
      "/a?admin=1",
      "/a#frag",
      "/a b",
      "/a\\b",
      "/a\r\nHost: evil",
      "/a/{id",
      "/a/{}",
      "/a/{1d}",
      "/a/}",
      "/ünicode",
    ]) {
      expect(accepts(ToolPathSchema, path), JSON.stringify(path)).toBe(false);
    }
  });
});

describe("ToolEndpointSchema", () => {
  it("fills defaults", () => {
    expect(ToolEndpointSchema.parse({ name: "list", method: "GET", path: "/items" })).toEqual({
      name: "list",
      method: "GET",
      path: "/items",
      description: "",
      parameters: [],
      risky: false,
    });
  });

  it("ties path placeholders to required path parameters", () => {
    const endpoint = (overrides: object) => ({ ...getCustomer, ...overrides });
    expect(accepts(ToolEndpointSchema, getCustomer)).toBe(true);
    expect(accepts(ToolEndpointSchema, endpoint({ parameters: [] }))).toBe(false);
    expect(
      accepts(ToolEndpointSchema, endpoint({ parameters: [{ name: "id", in: "query", type: "string" }] })),
    ).toBe(false);
    expect(
      accepts(ToolEndpointSchema, endpoint({ parameters: [{ name: "id", in: "path", type: "string" }] })),
    ).toBe(false);
    expect(
      accepts(
        ToolEndpointSchema,
        endpoint({
          path: "/v1/customers",
          parameters: [{ name: "id", in: "path", type: "string", required: true }],
        }),
      ),
    ).toBe(false);
  });

  it("refuses duplicate parameter names, body parameters on GET, bad names and methods", () => {
    const id = { name: "id", in: "path", type: "string", required: true };
    expect(accepts(ToolEndpointSchema, { ...getCustomer, parameters: [id, { ...id, in: "query" }] })).toBe(
      false,
    );
    expect(
      accepts(ToolEndpointSchema, {
        ...getCustomer,
        parameters: [id, { name: "filter", in: "body", type: "string" }],
      }),
    ).toBe(false);
    expect(accepts(ToolEndpointSchema, { ...getCustomer, name: "GetCustomer" })).toBe(false);
    expect(accepts(ToolEndpointSchema, { ...getCustomer, method: "TRACE" })).toBe(false);
    expect(accepts(ToolEndpointSchema, { ...getCustomer, method: "get" })).toBe(false);
    expect(accepts(ToolEndpointSchema, { ...getCustomer, url: "https://evil.example" })).toBe(false);
  });
});

describe("ToolBaseUrlSchema and ToolNameSchema", () => {
  it("accepts https URLs with a host and an optional path", () => {
    for (const url of [
      "https://api.stripe.com",
      "https://api.stripe.com/v1/",
      "https://api.example:8443/x",
    ]) {
      expect(accepts(ToolBaseUrlSchema, url), url).toBe(true);
    }
  });

  it("refuses other schemes, user information, queries, fragments and parser tricks", () => {
    for (const url of [
      "http://api.example",
      "ftp://api.example",
      "api.example",
      "https:api.example",
      "https:/api.example",
      "https:///api.example",
      "https:\\\\api.example",
      "https://user:pw@api.example",
      "https://api.example@evil.example",
      "https://api.example?key=1",
      "https://api.example/?",
      "https://api.example#x",
      "https://api.exa\nmple",
      "https://api.exa\tmple",
      " https://api.example",
      "https://",
    ]) {
      expect(accepts(ToolBaseUrlSchema, url), JSON.stringify(url)).toBe(false);
    }
  });

  it("takes lowercase integration names", () => {
    for (const name of ["stripe", "my_api-2", "2fa"]) expect(accepts(ToolNameSchema, name), name).toBe(true);
    for (const name of ["Stripe", "-x", "", "a b", "a.b", "x".repeat(65)]) {
      expect(accepts(ToolNameSchema, name), name).toBe(false);
    }
  });
});

describe("ToolSchema", () => {
  it("needs 1 to 100 endpoints with unique names", () => {
    expect(ToolSchema.parse(tool())).toEqual(tool());
    expect(accepts(ToolSchema, tool({ endpoints: [] }))).toBe(false);
    const endpoint = ToolEndpointSchema.parse(getCustomer);
    expect(accepts(ToolSchema, tool({ endpoints: [endpoint, endpoint] }))).toBe(false);
    const many = Array.from({ length: 101 }, (_, n) => ({ ...endpoint, name: `e${n}` }));
    expect(accepts(ToolSchema, tool({ endpoints: many }))).toBe(false);
    expect(accepts(ToolSchema, tool({ endpoints: many.slice(0, 100) }))).toBe(true);
  });
});

describe("CreateToolInputSchema and UpdateToolInputSchema", () => {
  const input = { name: "stripe", baseUrl: "https://api.stripe.com", endpoints: [getCustomer] };

  it("fills defaults and takes a plaintext secret", () => {
    const parsed = CreateToolInputSchema.parse({ ...input, auth: { type: "bearer" }, secret: "sk_test_123" });
    expect(parsed).toMatchObject({ description: "", auth: { type: "bearer" }, secret: "sk_test_123" });
    expect(CreateToolInputSchema.parse(input).auth).toEqual({ type: "none" });
  });

  it("refuses a ciphertext passed in directly, a secret without auth, and unknown keys", () => {
    expect(accepts(CreateToolInputSchema, { ...input, auth: { type: "bearer" }, credential: "x" })).toBe(
      false,
    );
    expect(accepts(CreateToolInputSchema, { ...input, secret: "sk_test_123" })).toBe(false);
    expect(accepts(CreateToolInputSchema, { ...input, botId: "bot-2" })).toBe(false);
  });

  it("refuses secrets with control characters without echoing them", () => {
    const secret = "sk_live_CANARY\r\nX-Evil: 1";
    const result = CreateToolInputSchema.safeParse({ ...input, auth: { type: "bearer" }, secret });
    expect(result.success).toBe(false);
    expect(JSON.stringify(result.error?.issues)).not.toContain("CANARY");
    expect(result.error?.message).not.toContain("CANARY");
    expect(accepts(CreateToolInputSchema, { ...input, auth: { type: "bearer" }, secret: "" })).toBe(false);
  });

  it("takes partial updates; `secret: null` clears", () => {
    expect(UpdateToolInputSchema.parse({})).toEqual({});
    expect(UpdateToolInputSchema.parse({ secret: null })).toEqual({ secret: null });
    expect(UpdateToolInputSchema.parse({ auth: { type: "none" }, secret: null })).toEqual({
      auth: { type: "none" },
      secret: null,
    });
    expect(accepts(UpdateToolInputSchema, { auth: { type: "none" }, secret: "sk" })).toBe(false);
    expect(accepts(UpdateToolInputSchema, { credential: "x" })).toBe(false);
    expect(accepts(UpdateToolInputSchema, { endpoints: [] })).toBe(false);
  });
});

describe("redactTool", () => {
  it("replaces the credential with whether one is configured, and copies the rest", () => {
    const stored = tool();
    const redacted = redactTool(stored);
    expect(redacted.credential).toEqual({ configured: true });
    expect(JSON.stringify(redacted)).not.toContain(stored.credential!);
    expect(RedactedToolSchema.parse(redacted)).toEqual(redacted);
    expect({ ...redacted, credential: stored.credential }).toEqual(stored);
    redacted.endpoints[0]!.parameters.length = 0;
    redacted.createdAt.setTime(0);
    expect(stored).toEqual(tool());
    expect(redactTool(tool({ credential: null })).credential).toEqual({ configured: false });
  });
});

describe("ToolCallAuditSchema and ToolApprovalSchema", () => {
  it("accept the records the executor and the approval gate write", () => {
    const audit = {
      id: "audit-1",
      botId: "bot-1",
      userId: "user-1",
      conversationId: null,
      toolId: null,
      toolName: "stripe",
      endpoint: "not_registered",
      method: null,
      status: "blocked",
      httpStatus: null,
      durationMs: 0,
      responseBytes: 0,
      errorCode: "SSRF_BLOCKED",
      createdAt: when,
    };
    expect(ToolCallAuditSchema.parse(audit)).toEqual(audit);
    expect(accepts(ToolCallAuditSchema, { ...audit, status: "ok" })).toBe(false);
    expect(accepts(ToolCallAuditSchema, { ...audit, httpStatus: 42 })).toBe(false);
    const approval = {
      id: "approval-1",
      botId: "bot-1",
      userId: "user-1",
      conversationId: "conversation-1",
      toolId: "tool-1",
      toolName: "stripe",
      endpoint: "create_refund",
      input: { charge: "ch_1", amount: 500 },
      toolCallId: "toolu_01",
      runId: "run-1",
      status: "pending",
      reason: null,
      createdAt: when,
      decidedAt: null,
    };
    expect(ToolApprovalSchema.parse(approval)).toEqual(approval);
    expect(accepts(ToolApprovalSchema, { ...approval, status: "awaiting" })).toBe(false);
  });
});
