import type { Bot, UpdateBotInput } from "../domain/bot.js";
import { IdSchema } from "../domain/common.js";
import { InboundEventSchema } from "../domain/run.js";
import type { CreateSkillInput, Skill, UpdateSkillInput } from "../domain/skill.js";
import type { CreateToolInput, RedactedTool, UpdateToolInput } from "../domain/tool.js";
import { KiloError, toKiloError } from "../errors.js";
import type { Kilo, UsageQuery } from "../kilo.js";
import type { Logger } from "../ports/logger.js";
import type { TurnInput } from "../ports/orchestrator.js";
import { allPages } from "../runtime/pages.js";
import { parseInput } from "../runtime/validate.js";
import {
  empty,
  errorBody,
  errorResponse,
  HttpError,
  json,
  readBodyBytes,
  readJson,
} from "./http-response.js";
import {
  ChatBodySchema,
  CreateBotBodySchema,
  DecisionBodySchema,
  LookupParamsSchema,
  type OperationId,
  PageParamsSchema,
  ROUTES,
  type RouteSpec,
  runView,
  UsageParamsSchema,
  WithoutIdSchema,
} from "./http-routes.js";
import { type OpenApiDocument, type OpenApiOptions, openApiDocument } from "./openapi-document.js";

/** The user a request acts for, as the host's {@link HttpHandlerOptions.authenticate} hook found it. */
export interface HttpPrincipal {
  userId: string;
}

/** Options of {@link createHttpHandler}. */
export interface HttpHandlerOptions {
  /**
   * Finds the user a request acts for (a session cookie, a bearer token, an
   * API gateway header: auth belongs to the host). Return `null` to answer
   * 401 `UNAUTHENTICATED`. A thrown {@link KiloError} is answered as it is
   * (e.g. `FORBIDDEN` -> 403); anything else thrown counts as not
   * authenticated. Not called for `GET /healthz` and `GET /openapi.json`.
   */
  authenticate(request: Request): Promise<HttpPrincipal | null>;
  /** Path prefix the routes live under, e.g. `/kilo`. Default `""` (a host that strips its mount path needs none). */
  basePath?: string;
  /** Largest request body accepted, in bytes; a larger one gets 413 without being read to the end. Default 1 MiB. */
  maxBodyBytes?: number;
  /** Where server-side failures (5xx) are logged. Default: silent. */
  logger?: Logger;
  /**
   * The OpenAPI document served (without auth) at `GET /openapi.json`: its
   * options (title, servers, your `securitySchemes`), or `false` to answer 404
   * there instead. Default: served, with `basePath` as its server.
   */
  openApi?: Omit<OpenApiOptions, "basePath"> | false;
  /**
   * Webhook receivers mounted at `POST {basePath}/webhooks/<name>`, e.g.
   * `{ telegram: telegramChannel(...).webhookHandler() }`. They verify their
   * own secrets, so `authenticate` is not called for them; the body limit
   * still applies (a larger body is refused before the receiver sees it).
   * Names are 1–64 of `a-z 0-9 _ -`.
   */
  webhooks?: Record<string, WebhookReceiver>;
}

/** A Web-standard receiver of one webhook, as channels return them (`telegramChannel().webhookHandler()`). */
export type WebhookReceiver = (request: Request) => Promise<Response>;

const WEBHOOK_NAME = /^[a-z0-9_-]{1,64}$/;
const WEBHOOK_PATH = /^\/webhooks\/([^/]+)$/;

/** A Web-standard request handler, with the body limit it enforces (read by `toNodeHandler`). */
export interface HttpHandler {
  (request: Request): Promise<Response>;
  /** The largest request body the handler accepts, in bytes. */
  readonly maxBodyBytes: number;
}

/** The default body limit: 1 MiB. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

interface RouteContext {
  request: Request;
  url: URL;
  params: Record<string, string>;
  userId: string;
  body(): Promise<unknown>;
}

type RouteHandler = (context: RouteContext) => Promise<Response>;

interface Route {
  method: RouteSpec["method"];
  /** False for routes that need no authenticated user. */
  auth: boolean;
  pattern: RegExp;
  keys: string[];
  run: RouteHandler;
}

function compileRoute(spec: RouteSpec, run: RouteHandler): Route {
  const keys: string[] = [];
  const source = spec.path
    .split("/")
    .map((segment) => {
      if (!segment.startsWith(":")) return segment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      keys.push(segment.slice(1));
      return "([^/]+)";
    })
    .join("/");
  return { method: spec.method, auth: spec.auth ?? true, pattern: new RegExp(`^${source}/?$`), keys, run };
}

const notFound = (what: string, id: string) => new KiloError("NOT_FOUND", `No ${what} '${id}'`);

const EventBodySchema = InboundEventSchema;

function query(url: URL): Record<string, string> {
  return Object.fromEntries(url.searchParams);
}

/**
 * Conversation ids are unique across bots, so a turn naming another bot's
 * conversation fails with CONFLICT; it is reported as NOT_FOUND, like any
 * other id the user does not own.
 */
function hideForeignConversation(error: unknown, input: TurnInput): unknown {
  if (input.conversationId !== undefined && KiloError.is(error, "CONFLICT")) {
    return new KiloError("NOT_FOUND", `No conversation '${input.conversationId}'`);
  }
  return error;
}

function sseFrame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/**
 * Creates kilo's HTTP API as one Web-standard handler, `(Request) => Promise<Response>`,
 * mountable in anything that speaks Fetch (Hono, Next.js route handlers, Deno,
 * Bun) and, through `toNodeHandler`, in `node:http`, Express and Fastify.
 *
 * Routes (JSON in and out; see `docs/http.md`): `GET /healthz`; `GET /openapi.json`
 * (the OpenAPI 3.1 document of these routes, see {@link openApiDocument}); `POST /v1/events`
 * and `GET /v1/runs/:run_id`; the REST API over bots, skills, tools, chat
 * (also streamed as Server-Sent Events), approvals and usage under `/api`.
 * Every route but those two calls `authenticate` and touches only what the
 * authenticated user owns: another user's ids answer 404 (403 for another
 * user's `/api/users/:userId/...`). Errors answer `{ error: { code, message } }`.
 *
 * @example
 * ```ts
 * import { createServer } from "node:http";
 * import { createHttpHandler, toNodeHandler } from "kilo/http";
 *
 * const handler = createHttpHandler(kilo, {
 *   authenticate: async (request) => {
 *     const session = await sessions.find(request.headers.get("authorization"));
 *     return session ? { userId: session.userId } : null;
 *   },
 * });
 * createServer(toNodeHandler(handler)).listen(3000);
 * ```
 */
export function createHttpHandler(kilo: Kilo, options: HttpHandlerOptions): HttpHandler {
  if (!options || typeof options.authenticate !== "function") {
    throw new KiloError(
      "CONFIGURATION_INVALID",
      "createHttpHandler needs `authenticate(request)`, returning `{ userId }` or null: auth belongs to the host",
    );
  }
  const basePath = (options.basePath ?? "").replace(/\/+$/, "");
  if (basePath !== "" && !basePath.startsWith("/")) {
    throw new KiloError("CONFIGURATION_INVALID", `basePath must start with '/', got '${options.basePath}'`);
  }
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  if (!Number.isInteger(maxBodyBytes) || maxBodyBytes < 1) {
    throw new KiloError("CONFIGURATION_INVALID", "maxBodyBytes must be a positive integer");
  }
  const logger = options.logger;
  const openApi = options.openApi;
  let openApiCache: OpenApiDocument | null = null;
  const document =
    openApi === false ? null : () => (openApiCache ??= openApiDocument({ ...openApi, basePath }));

  /** The bot, if `userId` owns it; otherwise NOT_FOUND, exactly as for a bot that does not exist. */
  async function ownBot(userId: string, botId: string): Promise<Bot> {
    const id = parseInput(IdSchema, botId, "bot id");
    const bot = await kilo.bots.get(id).catch((error: unknown) => {
      if (KiloError.is(error, "NOT_FOUND")) return null;
      throw error;
    });
    if (!bot || bot.userId !== userId) throw notFound("bot", id);
    return bot;
  }

  const allBots = (userId: string): Promise<Bot[]> =>
    allPages((cursor) => kilo.bots.listByUser(userId, { limit: 500, cursor }));

  /**
   * Finds the owner's bot holding a skill or tool: the `?botId=` given (one
   * read), or else a search through the user's bots. An id found in two of
   * the user's bots needs `?botId=`.
   */
  async function locate<T extends Skill | RedactedTool>(
    context: RouteContext,
    what: "skill" | "tool",
    id: string,
    list: (botId: string) => Promise<T[]>,
  ): Promise<{ bot: Bot; item: T }> {
    const itemId = parseInput(IdSchema, id, `${what} id`);
    const params = parseInput(LookupParamsSchema, query(context.url), "query");
    const bots = params.botId ? [await ownBot(context.userId, params.botId)] : await allBots(context.userId);
    const found: Array<{ bot: Bot; item: T }> = [];
    for (const bot of bots) {
      const item = (await list(bot.id)).find((candidate) => candidate.id === itemId);
      if (item) found.push({ bot, item });
    }
    const [first] = found;
    if (!first) throw notFound(what, itemId);
    if (found.length > 1) {
      throw new KiloError(
        "VALIDATION_FAILED",
        `More than one of your bots has a ${what} '${itemId}'; name the bot with ?botId=`,
      );
    }
    return first;
  }

  function ownUserPath(context: RouteContext): string {
    const userId = parseInput(IdSchema, context.params.userId, "user id");
    if (userId !== context.userId) {
      throw new KiloError("FORBIDDEN", "You may read only your own user's resources");
    }
    return userId;
  }

  async function usageQuery(context: RouteContext): Promise<UsageQuery> {
    const userId = ownUserPath(context);
    const params = parseInput(UsageParamsSchema, query(context.url), "usage query");
    if (params.botId) await ownBot(userId, params.botId);
    return { userId, botId: params.botId, from: params.from, to: params.to };
  }

  async function turnInput(context: RouteContext): Promise<TurnInput> {
    const body = parseInput(ChatBodySchema, await context.body(), "chat request");
    const bot = await ownBot(context.userId, body.botId);
    // Over HTTP a conversation is continued, never created with a client-chosen id: an unknown id and
    // another bot's id then both answer 404, so ids cannot be probed.
    if (body.conversationId !== undefined)
      await kilo.conversations.messages(bot.id, body.conversationId, { limit: 1 });
    return {
      botId: bot.id,
      userId: context.userId,
      message: body.message,
      conversationId: body.conversationId,
      skills:
        body.includeSkills === undefined && body.maxSkills === undefined
          ? undefined
          : { include: body.includeSkills, max: body.maxSkills },
      channel: "http",
      signal: context.request.signal,
    };
  }

  async function decide(context: RouteContext, decision: "approve" | "deny"): Promise<Response> {
    const approvalId = parseInput(IdSchema, context.params.approvalId, "approval id");
    const body = parseInput(DecisionBodySchema, (await context.body()) ?? {}, "approval decision");
    const params = parseInput(LookupParamsSchema, query(context.url), "query");
    const botId = body.botId ?? params.botId;
    if (!botId)
      throw new KiloError("VALIDATION_FAILED", "Name the approval's bot: `botId` in the body or query");
    const bot = await ownBot(context.userId, botId);
    const outcome =
      decision === "approve"
        ? await kilo.approvals.approve(bot.id, approvalId)
        : await kilo.approvals.deny(bot.id, approvalId, body.reason);
    return json(200, outcome);
  }

  function streamTurn(input: TurnInput): Response {
    const encoder = new TextEncoder();
    let iterator: AsyncIterator<unknown> | null = null;
    const body = new ReadableStream<Uint8Array>({
      async start(controller) {
        // A comment first, so proxies and clients see the stream open before the model answers.
        controller.enqueue(encoder.encode(": stream open\n\n"));
        iterator = kilo.stream({ ...input, signal: undefined })[Symbol.asyncIterator]();
      },
      async pull(controller) {
        try {
          const next = await (iterator as AsyncIterator<{ type: string }>).next();
          if (next.done) {
            controller.close();
            return;
          }
          controller.enqueue(encoder.encode(sseFrame(next.value.type, next.value)));
        } catch (thrown) {
          const error = hideForeignConversation(thrown, input);
          const { body: errorShape, status } = errorBody(error);
          if (status >= 500) logger?.error({ code: errorShape.error.code, error }, "streamed chat failed");
          controller.enqueue(encoder.encode(sseFrame("error", errorShape)));
          controller.close();
        }
      },
      async cancel() {
        // The turn goes on and its reply is stored; only the listening stops.
        await iterator?.return?.();
      },
    });
    return new Response(body, {
      status: 200,
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-store",
        "x-accel-buffering": "no",
      },
    });
  }

  // Bodies cast to kilo's input types below are validated by kilo's own zod schemas (400 on failure).
  const operations: Record<OperationId, RouteHandler> = {
    getHealth: async () => json(200, { status: "ok" }),
    getOpenApiDocument: async () => {
      if (!document) throw new KiloError("NOT_FOUND", "No such route");
      return json(200, document());
    },

    // my-kaiser HTTP API v1
    ingestEvent: async (context) => {
      const raw = await context.body();
      const withDelivery =
        raw &&
        typeof raw === "object" &&
        !("delivery_id" in raw) &&
        context.request.headers.has("idempotency-key")
          ? { ...raw, delivery_id: context.request.headers.get("idempotency-key") }
          : raw;
      const event = parseInput(EventBodySchema, withDelivery, "inbound event");
      if (event.user_key !== context.userId) {
        throw new KiloError("FORBIDDEN", "user_key must be the authenticated user");
      }
      let botId = event.bot_id;
      if (botId === undefined) {
        const bots = await allBots(context.userId);
        const [only] = bots;
        if (!only || bots.length > 1) {
          throw new KiloError(
            "VALIDATION_FAILED",
            `Invalid inbound event: bot_id is required (you have ${bots.length} bots)`,
          );
        }
        botId = only.id;
      }
      const bot = await ownBot(context.userId, botId);
      const { run_id, duplicate } = await kilo.runs.ingest(event, { botId: bot.id });
      return json(202, { run_id, duplicate });
    },
    getRun: async (context) => {
      const runId = parseInput(IdSchema, context.params.run_id, "run id");
      const run = await kilo.runs.get(runId).catch((error: unknown) => {
        if (KiloError.is(error, "NOT_FOUND")) return null;
        throw error;
      });
      if (!run || run.userId !== context.userId) throw notFound("run", runId);
      return json(200, runView(run));
    },

    // Bots
    listBots: async (context) => {
      const userId = ownUserPath(context);
      const page = parseInput(PageParamsSchema, query(context.url), "page options");
      return json(200, await kilo.bots.listByUser(userId, page));
    },
    createBot: async (context) => {
      const body = parseInput(CreateBotBodySchema, await context.body(), "bot");
      if (body.userId !== undefined && body.userId !== context.userId) {
        throw new KiloError("FORBIDDEN", "You may create bots only for yourself");
      }
      return json(201, await kilo.bots.create({ ...body, userId: context.userId }));
    },
    getBot: async (context) => json(200, await ownBot(context.userId, context.params.botId ?? "")),
    updateBot: async (context) => {
      const bot = await ownBot(context.userId, context.params.botId ?? "");
      return json(200, await kilo.bots.update(bot.id, (await context.body()) as UpdateBotInput));
    },
    deleteBot: async (context) => {
      const bot = await ownBot(context.userId, context.params.botId ?? "");
      await kilo.bots.delete(bot.id);
      return empty(204);
    },

    // Skills
    listSkills: async (context) => {
      const bot = await ownBot(context.userId, context.params.botId ?? "");
      return json(200, { items: await kilo.skills.list(bot.id) });
    },
    createSkill: async (context) => {
      const bot = await ownBot(context.userId, context.params.botId ?? "");
      const body = parseInput(WithoutIdSchema, await context.body(), "skill");
      return json(201, await kilo.skills.create(bot.id, body as CreateSkillInput));
    },
    updateSkill: async (context) => {
      const { bot, item } = await locate(context, "skill", context.params.skillId ?? "", (id) =>
        kilo.skills.list(id),
      );
      return json(200, await kilo.skills.update(bot.id, item.id, (await context.body()) as UpdateSkillInput));
    },
    deleteSkill: async (context) => {
      const { bot, item } = await locate(context, "skill", context.params.skillId ?? "", (id) =>
        kilo.skills.list(id),
      );
      await kilo.skills.delete(bot.id, item.id);
      return empty(204);
    },

    // Tools (always redacted)
    listTools: async (context) => {
      const bot = await ownBot(context.userId, context.params.botId ?? "");
      return json(200, { items: await kilo.tools.list(bot.id) });
    },
    createTool: async (context) => {
      const bot = await ownBot(context.userId, context.params.botId ?? "");
      const body = parseInput(WithoutIdSchema, await context.body(), "tool");
      return json(201, await kilo.tools.create(bot.id, body as CreateToolInput));
    },
    getTool: async (context) => {
      const { item } = await locate(context, "tool", context.params.toolId ?? "", (id) =>
        kilo.tools.list(id),
      );
      return json(200, item);
    },
    updateTool: async (context) => {
      const { bot, item } = await locate(context, "tool", context.params.toolId ?? "", (id) =>
        kilo.tools.list(id),
      );
      return json(200, await kilo.tools.update(bot.id, item.id, (await context.body()) as UpdateToolInput));
    },
    deleteTool: async (context) => {
      const { bot, item } = await locate(context, "tool", context.params.toolId ?? "", (id) =>
        kilo.tools.list(id),
      );
      await kilo.tools.delete(bot.id, item.id);
      return empty(204);
    },

    // Chat
    chat: async (context) => {
      const input = await turnInput(context);
      try {
        return json(200, await kilo.chat(input));
      } catch (error) {
        throw hideForeignConversation(error, input);
      }
    },
    chatStream: async (context) => streamTurn(await turnInput(context)),

    // Approvals
    approveToolCall: (context) => decide(context, "approve"),
    denyToolCall: (context) => decide(context, "deny"),

    // Usage
    getUsage: async (context) => json(200, await kilo.usage.summary(await usageQuery(context))),
    getUsageBreakdown: async (context) => json(200, await kilo.usage.breakdown(await usageQuery(context))),
  };
  const routes = (ROUTES as readonly RouteSpec[]).map((spec) =>
    compileRoute(spec, operations[spec.operationId as OperationId]),
  );

  async function authenticate(request: Request): Promise<string> {
    let principal: HttpPrincipal | null;
    try {
      principal = await options.authenticate(request);
    } catch (error) {
      if (KiloError.is(error) || error instanceof HttpError) throw error;
      logger?.warn({ error }, "authenticate threw; answering 401");
      principal = null;
    }
    if (!principal) throw new HttpError(401, "UNAUTHENTICATED", "Authentication required");
    const userId = IdSchema.safeParse(principal.userId);
    if (!userId.success) {
      throw new KiloError("CONFIGURATION_INVALID", "authenticate returned a userId that is not a valid id");
    }
    return userId.data;
  }

  const webhooks = new Map(Object.entries(options.webhooks ?? {}));
  for (const name of webhooks.keys()) {
    if (!WEBHOOK_NAME.test(name)) {
      throw new KiloError(
        "CONFIGURATION_INVALID",
        `webhooks: '${name}' is not a valid webhook name (1-64 of a-z, 0-9, '_' and '-')`,
      );
    }
  }

  /** A mounted webhook's answer, or `null` when the path is not a webhook's. */
  async function webhook(request: Request, path: string): Promise<Response | null> {
    const name = WEBHOOK_PATH.exec(path)?.[1];
    const receiver = name === undefined ? undefined : webhooks.get(name);
    if (!receiver) return null;
    if (request.method !== "POST") {
      throw new HttpError(405, "METHOD_NOT_ALLOWED", "Use POST on this route", { allow: "POST" });
    }
    // The receiver gets the body already read within the limit, so it cannot be made to buffer more.
    const body = await readBodyBytes(request, maxBodyBytes);
    try {
      return await receiver(new Request(request.url, { method: "POST", headers: request.headers, body }));
    } catch (error) {
      throw toKiloError(error, "HOST_CALLBACK_FAILED", `The '${name}' webhook receiver threw`);
    }
  }

  const handler = async (request: Request): Promise<Response> => {
    let url: URL;
    try {
      url = new URL(request.url);
    } catch {
      return errorResponse(new KiloError("VALIDATION_FAILED", "Malformed request URL"), logger, {});
    }
    const context = { method: request.method, path: url.pathname };
    try {
      if (basePath !== "" && url.pathname !== basePath && !url.pathname.startsWith(`${basePath}/`)) {
        throw new KiloError("NOT_FOUND", "No such route");
      }
      const path = url.pathname.slice(basePath.length) || "/";
      const hooked = webhooks.size > 0 ? await webhook(request, path) : null;
      if (hooked) return hooked;
      let matched: { route: Route; match: RegExpExecArray } | null = null;
      const allowed = new Set<string>();
      for (const candidate of routes) {
        const match = candidate.pattern.exec(path);
        if (!match) continue;
        allowed.add(candidate.method);
        if (candidate.method === request.method && !matched) matched = { route: candidate, match };
      }
      if (!matched) {
        if (allowed.size > 0) {
          throw new HttpError(405, "METHOD_NOT_ALLOWED", `Use ${[...allowed].join(", ")} on this route`, {
            allow: [...allowed].join(", "),
          });
        }
        throw new KiloError("NOT_FOUND", "No such route");
      }
      const { route: found, match } = matched;
      const params: Record<string, string> = {};
      found.keys.forEach((key, index) => {
        try {
          params[key] = decodeURIComponent(match[index + 1] ?? "");
        } catch {
          throw new KiloError("VALIDATION_FAILED", `Malformed ${key} in the path`);
        }
      });
      const userId = found.auth ? await authenticate(request) : "";
      let bodyRead: Promise<unknown> | null = null;
      return await found.run({
        request,
        url,
        params,
        userId,
        body: () => {
          bodyRead ??= readJson(request, maxBodyBytes);
          return bodyRead;
        },
      });
    } catch (error) {
      return errorResponse(error, logger, context);
    }
  };
  return Object.assign(handler, { maxBodyBytes });
}
