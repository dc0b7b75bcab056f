import type { Bot, UpdateBotInput } from "../domain/bot.js";
import { IdSchema } from "../domain/common.js";
import { InboundEventSchema } from "../domain/run.js";
import type { SkillOwner, SkillScope } from "../domain/scope.js";
import type { CreateSkillInput, Skill, UpdateSkillInput } from "../domain/skill.js";
import type { SkillPromotion } from "../domain/skill-promotion.js";
import type { CreateToolInput, RedactedTool, UpdateToolInput } from "../domain/tool.js";
import type { Trace } from "../domain/trace.js";
import { KiloError, toKiloError } from "../errors.js";
import type { EvolveProgressEvent } from "../events.js";
import type { Kilo, UsageQuery } from "../kilo.js";
import type { Logger } from "../ports/logger.js";
import type { TurnInput } from "../ports/orchestrator.js";
import { allPages } from "../runtime/pages.js";
import { parseInput } from "../runtime/validate.js";
import type { EvolveInput } from "../skills/skill-evolution.js";
import { createStudioServer, STUDIO_PATH, type StudioOptions } from "../studio/studio-handler.js";
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
  ApprovalListParamsSchema,
  ChatBodySchema,
  CreateBotBodySchema,
  DecisionBodySchema,
  EvolveBodySchema,
  HistoryParamsSchema,
  LookupParamsSchema,
  type OperationId,
  PageParamsSchema,
  PromotionApproveBodySchema,
  PromotionListParamsSchema,
  PromotionRejectBodySchema,
  PromotionRequestBodySchema,
  ReviewBodySchema,
  ROUTES,
  RollbackBodySchema,
  type RouteSpec,
  RunListParamsSchema,
  runView,
  TraceParamsSchema,
  UsageParamsSchema,
  VersionParamSchema,
  WithoutIdSchema,
} from "./http-routes.js";
import { type OpenApiDocument, type OpenApiOptions, openApiDocument } from "./openapi-document.js";

/** What a read returns, or nothing when the storage does not keep that kind of data (`CONFIGURATION_INVALID`). */
async function unsupportedAsEmpty<T>(read: Promise<T[]>): Promise<T[]> {
  try {
    return await read;
  } catch (error) {
    if (KiloError.is(error, "CONFIGURATION_INVALID")) return [];
    throw error;
  }
}

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
  /**
   * Serves kilo studio, the browser app over this API (chat, skills and their
   * history, evolution review, runs and traces, usage), at
   * `GET {basePath}/studio/`: `true`, or its options. Off by default. The page
   * and its assets go through `authenticate` like the API (a request without
   * credentials gets the API's 401, or what `studio.unauthenticated` answers),
   * and carry a strict Content-Security-Policy. The page calls the API from
   * the browser, so `authenticate` must accept what the browser sends by
   * itself: a session cookie, or HTTP auth it prompted for. See `docs/studio.md`.
   */
  studio?: boolean | StudioOptions;
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
    lookup: { botId?: string | undefined } = parseInput(LookupParamsSchema, query(context.url), "query"),
  ): Promise<{ bot: Bot; item: T }> {
    const itemId = parseInput(IdSchema, id, `${what} id`);
    const bots = lookup.botId ? [await ownBot(context.userId, lookup.botId)] : await allBots(context.userId);
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

  /**
   * The scopes whose skills a user sees, most specific first: with a bot, that
   * bot's own, its owner's (the user), its team's and the system's; without
   * one, all the user's bots', the user's own, their teams' and the system's.
   */
  async function visibleOwners(
    userId: string,
    bot: Bot | null,
  ): Promise<Array<{ owner: SkillOwner; bot: Bot | null }>> {
    const bots = bot ? [bot] : await allBots(userId);
    const teams = bot
      ? bot.teamId
        ? [bot.teamId]
        : []
      : (await unsupportedAsEmpty(kilo.teams.listByUser(userId))).map((member) => member.teamId);
    return [
      ...bots.map((each) => ({ owner: each.id as SkillOwner, bot: each })),
      { owner: { kind: "user", id: userId }, bot },
      ...teams.map((id) => ({ owner: { kind: "team", id } as SkillOwner, bot })),
      { owner: { kind: "system" }, bot },
    ];
  }

  /** Every skill a user (or one bot of theirs) sees, in any status, each carrying its `scope`. */
  async function visibleSkills(
    userId: string,
    bot: Bot | null,
  ): Promise<Array<{ owner: SkillOwner; bot: Bot | null; skill: Skill }>> {
    const found: Array<{ owner: SkillOwner; bot: Bot | null; skill: Skill }> = [];
    for (const { owner, bot: holder } of await visibleOwners(userId, bot)) {
      // A storage adapter that keeps bot skills only has no shared scopes to read.
      for (const skill of await unsupportedAsEmpty(kilo.skills.list(owner)))
        found.push({ owner, bot: holder, skill });
    }
    return found;
  }

  /**
   * Finds a skill the user sees by id, in any scope (`?botId=` narrows the
   * search to that bot's scopes). Writes go through with the user as actor,
   * so kilo's scope rules apply (the system's skills are read-only, a team's
   * need its admin).
   */
  async function locateSkill(
    context: RouteContext,
    lookup: { botId?: string | undefined } = parseInput(LookupParamsSchema, query(context.url), "query"),
  ): Promise<{ owner: SkillOwner; item: Skill }> {
    const skillId = parseInput(IdSchema, context.params.skillId, "skill id");
    const bot = lookup.botId ? await ownBot(context.userId, lookup.botId) : null;
    const match = (await visibleSkills(context.userId, bot)).find(({ skill }) => skill.id === skillId);
    if (!match) throw notFound("skill", skillId);
    return { owner: match.owner, item: match.skill };
  }

  const actorOf = (context: RouteContext) => ({ actor: { userId: context.userId } });

  /** The trace, from the `?botId=` given or else the first of the user's bots that has it. */
  async function locateTrace(context: RouteContext): Promise<{ bot: Bot; trace: Trace }> {
    const traceId = parseInput(IdSchema, context.params.traceId, "trace id");
    const params = parseInput(LookupParamsSchema, query(context.url), "query");
    const bots = params.botId ? [await ownBot(context.userId, params.botId)] : await allBots(context.userId);
    for (const bot of bots) {
      const trace = await kilo.traces.get(bot.id, traceId).catch((error: unknown) => {
        if (KiloError.is(error, "NOT_FOUND")) return null;
        throw error;
      });
      if (trace) return { bot, trace };
    }
    throw notFound("trace", traceId);
  }

  /** Approves (active) or rejects (disabled) a draft skill, recording who and why in its new version. */
  async function review(context: RouteContext, status: "active" | "disabled"): Promise<Response> {
    const { owner, item } = await locateSkill(context);
    const body = parseInput(ReviewBodySchema, (await context.body()) ?? {}, "review");
    if (item.status !== "draft") {
      throw new KiloError("CONFLICT", `Skill '${item.name}' is not a draft (it is ${item.status})`);
    }
    const reason = body.reason ?? (status === "active" ? "Draft approved" : "Draft rejected");
    return json(200, await kilo.skills.update(owner, item.id, { status }, { ...actorOf(context), reason }));
  }

  async function evolveInput(context: RouteContext): Promise<EvolveInput> {
    const bot = await ownBot(context.userId, context.params.botId ?? "");
    const body = parseInput(EvolveBodySchema, (await context.body()) ?? {}, "evolve request");
    return { ...body, botId: bot.id, userId: context.userId };
  }

  /**
   * Runs evolution and streams its `evolve-progress` events (those of this bot
   * and user) and then its result. A client that disconnects stops listening,
   * not the evolution: its drafts are still stored.
   */
  function streamEvolve(input: EvolveInput): Response {
    const encoder = new TextEncoder();
    let closed = false;
    let stop = () => {};
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        const send = (event: string, data: unknown) => {
          if (!closed) controller.enqueue(encoder.encode(sseFrame(event, data)));
        };
        controller.enqueue(encoder.encode(": stream open\n\n"));
        const listener = (event: EvolveProgressEvent) => {
          if (event.botId === input.botId && event.userId === input.userId) send("progress", event);
        };
        kilo.events.on("evolve-progress", listener);
        stop = () => kilo.events.off("evolve-progress", listener);
        kilo
          .evolve(input)
          .then(
            (result) => send("result", { type: "result", result }),
            (error: unknown) => {
              const { body: errorShape, status } = errorBody(error);
              if (status >= 500)
                logger?.error({ code: errorShape.error.code, error }, "streamed evolve failed");
              send("error", errorShape);
            },
          )
          .finally(() => {
            stop();
            if (!closed) controller.close();
            closed = true;
          });
      },
      cancel() {
        closed = true;
        stop();
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
      return json(200, { items: (await visibleSkills(context.userId, bot)).map(({ skill }) => skill) });
    },
    createSkill: async (context) => {
      const bot = await ownBot(context.userId, context.params.botId ?? "");
      const body = parseInput(WithoutIdSchema, await context.body(), "skill");
      return json(201, await kilo.skills.create(bot.id, body as CreateSkillInput));
    },
    updateSkill: async (context) => {
      const { owner, item } = await locateSkill(context);
      const patch = (await context.body()) as UpdateSkillInput;
      return json(200, await kilo.skills.update(owner, item.id, patch, actorOf(context)));
    },
    deleteSkill: async (context) => {
      const { owner, item } = await locateSkill(context);
      await kilo.skills.delete(owner, item.id, actorOf(context));
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

    // Studio and review
    getPrincipal: async (context) => json(200, { userId: context.userId }),
    listApprovals: async (context) => {
      const bot = await ownBot(context.userId, context.params.botId ?? "");
      const params = parseInput(ApprovalListParamsSchema, query(context.url), "approval list query");
      return json(200, { items: await kilo.approvals.list(bot.id, params) });
    },
    getSkillHistory: async (context) => {
      const { botId, ...page } = parseInput(HistoryParamsSchema, query(context.url), "query");
      const { owner, item } = await locateSkill(context, { botId });
      return json(200, await kilo.skills.history(owner, item.id, page, actorOf(context)));
    },
    getSkillVersion: async (context) => {
      const version = parseInput(VersionParamSchema, context.params.version, "version");
      const { owner, item } = await locateSkill(context);
      return json(200, await kilo.skills.version(owner, item.id, version, actorOf(context)));
    },
    rollbackSkill: async (context) => {
      const { owner, item } = await locateSkill(context);
      const body = parseInput(RollbackBodySchema, await context.body(), "rollback");
      return json(
        200,
        await kilo.skills.rollback(owner, item.id, body.version, {
          ...actorOf(context),
          reason: body.reason,
        }),
      );
    },
    listSkillDrafts: async (context) => {
      const bot = await ownBot(context.userId, context.params.botId ?? "");
      const skills = (await visibleSkills(context.userId, bot)).map(({ skill }) => skill);
      return json(200, { items: skills.filter((skill) => skill.status === "draft") });
    },
    approveSkillDraft: (context) => review(context, "active"),
    rejectSkillDraft: (context) => review(context, "disabled"),
    requestSkillPromotion: async (context) => {
      const { owner, item } = await locateSkill(context);
      const body = parseInput(PromotionRequestBodySchema, await context.body(), "promotion request");
      return json(
        201,
        await kilo.skills.promotions.request(owner, item.id, { ...body, ...actorOf(context) }),
      );
    },
    listSkillPromotions: async (context) => {
      const params = parseInput(PromotionListParamsSchema, query(context.url), "promotion list query");
      const administered = (await unsupportedAsEmpty(kilo.teams.listByUser(context.userId))).filter(
        (member) => member.role === "admin",
      );
      const items: SkillPromotion[] = [];
      for (const member of administered) {
        const to: SkillScope = { kind: "team", id: member.teamId };
        const status = params.status ?? "pending";
        items.push(
          ...(await allPages((cursor) => kilo.skills.promotions.list({ status, to, limit: 500, cursor }))),
        );
      }
      items.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
      return json(200, { items: items.slice(0, params.limit ?? 500), nextCursor: null });
    },
    approveSkillPromotion: async (context) => {
      const id = parseInput(IdSchema, context.params.promotionId, "promotion id");
      const body = parseInput(PromotionApproveBodySchema, (await context.body()) ?? {}, "approval");
      return json(200, await kilo.skills.promotions.approve(id, { ...body, ...actorOf(context) }));
    },
    rejectSkillPromotion: async (context) => {
      const id = parseInput(IdSchema, context.params.promotionId, "promotion id");
      const body = parseInput(PromotionRejectBodySchema, await context.body(), "rejection");
      return json(200, await kilo.skills.promotions.reject(id, { ...body, ...actorOf(context) }));
    },
    evolve: async (context) => json(200, await kilo.evolve(await evolveInput(context))),
    evolveStream: async (context) => streamEvolve(await evolveInput(context)),
    listTraces: async (context) => {
      const bot = await ownBot(context.userId, context.params.botId ?? "");
      const params = parseInput(TraceParamsSchema, query(context.url), "trace query");
      return json(200, await kilo.traces.list({ ...params, botId: bot.id }));
    },
    getTrace: async (context) => json(200, (await locateTrace(context)).trace),
    setTraceFeedback: async (context) => {
      const { bot, trace } = await locateTrace(context);
      return json(
        200,
        await kilo.traces.feedback(
          bot.id,
          trace.id,
          (await context.body()) as Parameters<Kilo["traces"]["feedback"]>[2],
        ),
      );
    },
    listRuns: async (context) => {
      const bot = await ownBot(context.userId, context.params.botId ?? "");
      const { conversationKey, limit, afterSeq, cursor } = parseInput(
        RunListParamsSchema,
        query(context.url),
        "run query",
      );
      if (conversationKey === undefined) {
        if (afterSeq !== undefined) {
          throw new KiloError(
            "VALIDATION_FAILED",
            "afterSeq pages one conversation's runs: give conversationKey too",
          );
        }
        return json(200, await kilo.runs.recent(bot.id, { limit, cursor }));
      }
      if (cursor !== undefined) {
        throw new KiloError(
          "VALIDATION_FAILED",
          "one conversation's runs are paged with afterSeq, not cursor",
        );
      }
      const items = await kilo.runs.list(bot.id, conversationKey, { limit, afterSeq });
      return json(200, { items, nextCursor: null });
    },
    listRunSteps: async (context) => {
      const runId = parseInput(IdSchema, context.params.runId, "run id");
      const run = await kilo.runs.get(runId).catch((error: unknown) => {
        if (KiloError.is(error, "NOT_FOUND")) return null;
        throw error;
      });
      // The bot's owner sees its runs, whoever sent them (a Telegram user, say).
      const bot = run
        ? await ownBot(context.userId, run.botId).catch((error: unknown) => {
            if (KiloError.is(error, "NOT_FOUND")) return null;
            throw error;
          })
        : null;
      if (!run || !bot) throw notFound("run", runId);
      return json(200, { items: await kilo.runs.steps(run.id) });
    },
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

  const studio =
    options.studio === undefined || options.studio === false
      ? null
      : createStudioServer(
          options.studio === true ? {} : options.studio,
          ROUTES.map((route) => route.operationId),
        );

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
      if (studio && (path === STUDIO_PATH || path.startsWith(`${STUDIO_PATH}/`))) {
        return await studio.serve(request, path.slice(STUDIO_PATH.length), () => authenticate(request));
      }
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
