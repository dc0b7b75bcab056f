import type { Tool, ToolApproval, ToolCallAudit, ToolEndpoint } from "../domain/tool.js";
import { KiloError } from "../errors.js";
import type { Clock, IdGenerator } from "../ports/clock.js";
import type { CredentialVault } from "../ports/credential-vault.js";
import type { LlmToolDefinition, ToolCallBlock } from "../ports/llm-provider.js";
import type { Logger } from "../ports/logger.js";
import type { Storage } from "../ports/storage.js";
import type { ToolContext, ToolOutcome, ToolProvider, ToolSet } from "../ports/tool-provider.js";
import type { HttpExecutor } from "./http-executor.js";

/** What the call_api tool needs. */
export interface CallApiDependencies {
  storage: Storage;
  vault: CredentialVault;
  executor: HttpExecutor;
  clock: Clock;
  ids: IdGenerator;
  logger: Logger;
  /** Most characters of an upstream body shown to the model. Default 8,000. */
  maxResultChars?: number;
  /** How long a bot's tool list is kept in this process (0 disables). Default 5 s. */
  registryTtlMs?: number;
}

/** One call the model asked for, resolved against the registry. */
export interface ResolvedCall {
  tool: Tool;
  endpoint: ToolEndpoint;
  params: Record<string, unknown>;
}

/** Who a call was made for, as the audit log records it. */
export type AuditContext = Pick<ToolContext, "bot" | "userId" | "conversationId">;

/** Where a call_api call ended. */
export interface ApiCallOutcome extends ToolOutcome {
  audit: ToolCallAudit;
  approval: ToolApproval | null;
}

const CONTROL = /[\r\n\0]/;

/** The call_api tool's definition: one tool whose description is the bot's endpoint catalog. */
export function callApiDefinition(tools: readonly Tool[]): LlmToolDefinition | null {
  if (tools.length === 0) return null;
  const lines: string[] = [];
  for (const tool of tools) {
    for (const endpoint of tool.endpoints) {
      const params = endpoint.parameters
        .map(
          (p) =>
            `${p.name}${p.required ? "*" : ""} ${p.type} (${p.in})${p.description ? `: ${p.description}` : ""}`,
        )
        .join("; ");
      lines.push(
        `- ${tool.name}.${endpoint.name}: ${endpoint.method} ${endpoint.path}${endpoint.description ? ` — ${endpoint.description}` : ""}` +
          `${params ? ` [params: ${params}]` : ""}${endpoint.risky ? " [needs the user's approval]" : ""}`,
      );
    }
  }
  return {
    name: "call_api",
    description:
      "Call one of the user's registered external APIs. Only these endpoints exist (* = required):\n" +
      lines.join("\n") +
      "\nCredentials are added by the system; never ask for or include them.",
    inputSchema: {
      type: "object",
      properties: {
        tool: { type: "string", enum: tools.map((tool) => tool.name), description: "The integration" },
        endpoint: { type: "string", description: "The endpoint name, as listed" },
        params: { type: "object", description: "The endpoint's parameters", additionalProperties: true },
      },
      required: ["tool", "endpoint"],
      additionalProperties: false,
    },
  };
}

function fail(message: string): never {
  throw new KiloError("VALIDATION_FAILED", message);
}

/** Checks a call against the registry: a registered endpoint of a registered tool, with valid parameters. */
export function resolveCall(tools: readonly Tool[], input: Record<string, unknown>): ResolvedCall {
  const toolName = typeof input.tool === "string" ? input.tool.toLowerCase() : "";
  const tool = tools.find((candidate) => candidate.name.toLowerCase() === toolName);
  if (!tool)
    fail(
      `'${String(input.tool)}' is not a registered integration. Registered: ${tools.map((t) => t.name).join(", ")}`,
    );
  const endpoint = tool.endpoints.find((candidate) => candidate.name === input.endpoint);
  if (!endpoint) {
    fail(
      `'${String(input.endpoint)}' is not an endpoint of ${tool.name}. Endpoints: ${tool.endpoints.map((e) => e.name).join(", ")}`,
    );
  }
  const raw = input.params ?? {};
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) fail("params must be an object");
  const params = raw as Record<string, unknown>;
  const known = new Map(endpoint.parameters.map((parameter) => [parameter.name, parameter]));
  for (const name of Object.keys(params)) {
    if (!known.has(name)) fail(`${tool.name}.${endpoint.name} has no parameter '${name}'`);
  }
  for (const parameter of endpoint.parameters) {
    const value = params[parameter.name];
    if (value === undefined || value === null) {
      if (parameter.required) fail(`${tool.name}.${endpoint.name} needs '${parameter.name}'`);
      continue;
    }
    const ok =
      parameter.type === "string"
        ? typeof value === "string"
        : parameter.type === "boolean"
          ? typeof value === "boolean"
          : parameter.type === "integer"
            ? Number.isInteger(value)
            : typeof value === "number" && Number.isFinite(value);
    if (!ok) fail(`'${parameter.name}' must be a ${parameter.type}`);
    if (typeof value === "string" && CONTROL.test(value))
      fail(`'${parameter.name}' contains a line break or NUL`);
  }
  return { tool, endpoint, params };
}

/** The URL and body of a resolved call. Path parameters cannot leave their segment. */
export function buildUrl(call: ResolvedCall): { url: URL; body: string | undefined } {
  const base = new URL(call.tool.baseUrl);
  const path = call.endpoint.path.replace(/\{([A-Za-z0-9_]+)\}/g, (_, name: string) => {
    const value = String(call.params[name] ?? "");
    // encodeURIComponent keeps "." and "..", which URL parsing would resolve into a parent path.
    if (value === "" || value === "." || value === "..")
      fail(`path parameter '${name}' cannot be '${value}'`);
    return encodeURIComponent(value);
  });
  const url = new URL(base.toString());
  url.pathname = `${base.pathname.replace(/\/+$/, "")}${path}`;
  const body: Record<string, unknown> = {};
  for (const parameter of call.endpoint.parameters) {
    const value = call.params[parameter.name];
    if (value === undefined || value === null) continue;
    if (parameter.in === "query") url.searchParams.set(parameter.name, String(value));
    if (parameter.in === "body") body[parameter.name] = value;
  }
  return { url, body: Object.keys(body).length > 0 ? JSON.stringify(body) : undefined };
}

/** Every form a secret could come back in: plain, base64 (standard and URL-safe), URL-encoded, hex. */
export function secretForms(secret: string): string[] {
  const forms = new Set<string>([secret]);
  const bytes = Buffer.from(secret, "utf8");
  forms.add(bytes.toString("base64"));
  forms.add(bytes.toString("base64").replace(/=+$/, ""));
  forms.add(bytes.toString("base64url"));
  forms.add(encodeURIComponent(secret));
  forms.add(bytes.toString("hex"));
  forms.add(bytes.toString("hex").toUpperCase());
  return [...forms].filter((form) => form.length >= 4).sort((a, b) => b.length - a.length);
}

/** Replaces every form of every secret in `text`. */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets)
    for (const form of secretForms(secret)) out = out.split(form).join("[credential removed]");
  return out;
}

/**
 * Runs resolved calls: decrypts the credential at call time (and nowhere
 * else), adds it to the request, sends it through the SSRF-safe executor,
 * scrubs every form of the secret from what comes back, and audits the call.
 */
export class ApiCaller {
  private readonly maxChars: number;

  constructor(private readonly deps: CallApiDependencies) {
    this.maxChars = deps.maxResultChars ?? 8_000;
  }

  /** Pauses a risky call: stores a pending approval and tells the model nothing was sent. */
  async requestApproval(
    context: ToolContext,
    call: ToolCallBlock,
    resolved: ResolvedCall,
  ): Promise<ApiCallOutcome> {
    const now = this.deps.clock.now();
    const approval = await this.deps.storage.approvals.create({
      id: this.deps.ids.next("appr"),
      botId: context.bot.id,
      userId: context.userId,
      conversationId: context.conversationId,
      toolId: resolved.tool.id,
      toolName: resolved.tool.name,
      endpoint: resolved.endpoint.name,
      input: resolved.params,
      toolCallId: call.id,
      runId: context.runId ?? null,
      status: "pending",
      reason: null,
      createdAt: now,
      decidedAt: null,
    });
    const audit = await this.audit(context, resolved, {
      status: "awaiting_approval",
      httpStatus: null,
      started: now.getTime(),
      bytes: 0,
      errorCode: null,
    });
    return {
      content: JSON.stringify({
        status: "awaiting_approval",
        approvalId: approval.id,
        note: `Not sent. ${resolved.tool.name}.${resolved.endpoint.name} needs the user's approval first; tell the user it is waiting for their approval.`,
      }),
      isError: false,
      data: { approvalId: approval.id, status: "awaiting_approval" },
      audit,
      approval,
    };
  }

  /**
   * Sends a call now. Upstream errors come back as the model's tool error, never with request
   * headers. A call that changes something (any method but GET) carries `idempotencyKey`, when
   * given, as its `Idempotency-Key` header, so an upstream that honours it applies a call that a
   * re-executed run sends again only once.
   */
  async send(
    context: Pick<ToolContext, "bot" | "userId" | "conversationId" | "signal">,
    resolved: ResolvedCall,
    options: { idempotencyKey?: string | undefined } = {},
  ): Promise<ApiCallOutcome> {
    const started = this.deps.clock.now().getTime();
    const { url, body } = buildUrl(resolved);
    const headers: Record<string, string> = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (options.idempotencyKey && resolved.endpoint.method !== "GET")
      headers["idempotency-key"] = options.idempotencyKey;
    const secrets: string[] = [];
    const sensitive: string[] = [];
    const { tool } = resolved;
    try {
      if (tool.auth.type !== "none") {
        if (!tool.credential)
          fail(`${tool.name} has no credential set; add it through the API (never in chat)`);
        const secret = await this.deps.vault.decrypt(tool.credential, { toolId: tool.id });
        secrets.push(secret);
        switch (tool.auth.type) {
          case "bearer":
            headers.authorization = `Bearer ${secret}`;
            sensitive.push("authorization");
            break;
          case "basic": {
            const pair = `${tool.auth.username}:${secret}`;
            secrets.push(pair);
            headers.authorization = `Basic ${Buffer.from(pair).toString("base64")}`;
            sensitive.push("authorization");
            break;
          }
          case "api_key_header":
            headers[tool.auth.header.toLowerCase()] = secret;
            sensitive.push(tool.auth.header.toLowerCase());
            break;
          case "api_key_query":
            url.searchParams.set(tool.auth.param, secret);
            break;
        }
      }
      const response = await this.deps.executor.request({
        url: url.toString(),
        method: resolved.endpoint.method,
        headers,
        body,
        signal: context.signal,
        credentialOrigin: url.origin,
        sensitiveHeaders: sensitive,
      });
      const text = scrub(response.body, secrets);
      const shown =
        text.length > this.maxChars
          ? `${text.slice(0, this.maxChars)}… (${text.length - this.maxChars} more characters)`
          : text;
      const ok = response.status < 400;
      const audit = await this.audit(context, resolved, {
        status: "succeeded",
        httpStatus: response.status,
        started,
        bytes: response.bytes,
        errorCode: ok ? null : `HTTP_${response.status}`,
      });
      return {
        content: JSON.stringify({ status: response.status, body: shown }),
        isError: !ok,
        data: { status: response.status, bytes: response.bytes },
        audit,
        approval: null,
      };
    } catch (error) {
      const code = KiloError.is(error) ? error.code : "TOOL_FAILED";
      const message = scrub(error instanceof Error ? error.message : String(error), secrets);
      const audit = await this.audit(context, resolved, {
        status: code === "SSRF_BLOCKED" ? "blocked" : "failed",
        httpStatus: null,
        started,
        bytes: 0,
        errorCode: code,
      });
      this.deps.logger.warn(
        { botId: context.bot.id, tool: tool.name, endpoint: resolved.endpoint.name, code },
        "call_api failed",
      );
      return {
        content: `The call failed (${code}): ${message}`,
        isError: true,
        data: { code },
        audit,
        approval: null,
      };
    }
  }

  /** Records the user's refusal of a pending call (nothing was sent). */
  denied(context: AuditContext, approval: ToolApproval): Promise<ToolCallAudit> {
    return this.record(context, {
      toolId: approval.toolId,
      toolName: approval.toolName,
      endpoint: approval.endpoint,
      method: null,
      status: "denied",
    });
  }

  /** Records a call that was refused before anything was resolved (unknown tool or endpoint, bad parameters). */
  refused(context: AuditContext, input: Record<string, unknown>): Promise<ToolCallAudit> {
    return this.record(context, {
      toolId: null,
      toolName: String(input.tool ?? "").slice(0, 100),
      endpoint: String(input.endpoint ?? "").slice(0, 100),
      method: null,
      status: "blocked",
      errorCode: "VALIDATION_FAILED",
    });
  }

  private audit(
    context: AuditContext,
    resolved: ResolvedCall,
    outcome: {
      status: ToolCallAudit["status"];
      httpStatus: number | null;
      started: number;
      bytes: number;
      errorCode: string | null;
    },
  ): Promise<ToolCallAudit> {
    return this.record(context, {
      toolId: resolved.tool.id,
      toolName: resolved.tool.name,
      endpoint: resolved.endpoint.name,
      method: resolved.endpoint.method,
      status: outcome.status,
      httpStatus: outcome.httpStatus,
      durationMs: Math.max(0, this.deps.clock.now().getTime() - outcome.started),
      responseBytes: outcome.bytes,
      errorCode: outcome.errorCode,
    });
  }

  private record(
    context: AuditContext,
    entry: Pick<ToolCallAudit, "toolId" | "toolName" | "endpoint" | "method" | "status"> &
      Partial<Pick<ToolCallAudit, "httpStatus" | "durationMs" | "responseBytes" | "errorCode">>,
  ): Promise<ToolCallAudit> {
    return this.deps.storage.toolAudit.record({
      httpStatus: null,
      durationMs: 0,
      responseBytes: 0,
      errorCode: null,
      ...entry,
      id: this.deps.ids.next("audit"),
      botId: context.bot.id,
      userId: context.userId,
      conversationId: context.conversationId,
      createdAt: this.deps.clock.now(),
    });
  }
}

/**
 * The ToolProvider for registered external APIs: one `call_api` tool listing
 * the bot's endpoints. Risky endpoints pause for the user's approval; nothing
 * is sent before it. A matched skill whose required integration is missing
 * gets a note telling the model to say so.
 */
export function callApiTools(
  deps: CallApiDependencies,
  caller = new ApiCaller(deps),
): ToolProvider & {
  /** Drops the bot's cached tool list (kept `registryTtlMs`, 5 s by default) so the next turn reads storage. */
  invalidate(botId: string): void;
} {
  const ttl = deps.registryTtlMs ?? 5_000;
  const registry = new Map<string, { at: number; tools: Tool[]; definition: LlmToolDefinition | null }>();
  async function load(botId: string) {
    const now = deps.clock.now().getTime();
    const cached = registry.get(botId);
    if (cached && now - cached.at < ttl) return cached;
    const tools = await deps.storage.tools.listByBot(botId);
    const entry = { at: now, tools, definition: callApiDefinition(tools) };
    if (ttl > 0) registry.set(botId, entry);
    return entry;
  }
  return {
    name: "call-api",
    invalidate: (botId) => registry.delete(botId),
    async tools(context: ToolContext): Promise<ToolSet> {
      const { tools, definition } = await load(context.bot.id);
      const missing = (context.matchedSkill?.requiredIntegrations ?? []).filter(
        (name) => !tools.some((tool) => tool.name.toLowerCase() === name.toLowerCase()),
      );
      const notes =
        missing.length > 0
          ? [
              `The skill ${context.matchedSkill?.name} needs the ${missing.join(", ")} integration, which is not set up. ` +
                "Tell the user it has to be registered (with its credential, through the app, never in chat) before this can work.",
            ]
          : [];
      // The turn's calls in the order the model made them: with the turn's step key, what makes each
      // call's idempotency key the same when a re-executed run makes the turn again.
      let calls = 0;
      return {
        definitions: definition ? [definition] : [],
        notes,
        async execute(call: ToolCallBlock): Promise<ToolOutcome> {
          const ordinal = calls++;
          let resolved: ResolvedCall;
          try {
            resolved = resolveCall(tools, call.input);
            // Path parameters are checked here too, so a bad one is refused (and audited) before anything is sent.
            buildUrl(resolved);
          } catch (error) {
            await caller.refused(context, call.input);
            return { content: error instanceof Error ? error.message : String(error), isError: true };
          }
          return resolved.endpoint.risky
            ? caller.requestApproval(context, call, resolved)
            : caller.send(context, resolved, {
                idempotencyKey: context.idempotencyKey && `${context.idempotencyKey}:${ordinal}`,
              });
        },
      };
    },
  };
}
