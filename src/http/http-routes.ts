import { z } from "zod";
import { BotSchema, CreateBotInputSchema, UpdateBotInputSchema } from "../domain/bot.js";
import { IdSchema } from "../domain/common.js";
import { MemorySchema } from "../domain/memory.js";
import { ProposalSchema } from "../domain/proposal.js";
import { InboundEventSchema, type Run, RunErrorSchema, RunSchema, RunStatusSchema } from "../domain/run.js";
import { RunStepSchema } from "../domain/run-step.js";
import { SkillScopeSchema } from "../domain/scope.js";
import {
  CreateSkillInputSchema,
  SkillSchema,
  TaskTypeSchema,
  UpdateSkillInputSchema,
} from "../domain/skill.js";
import { type SkillPromotion, SkillPromotionStatusSchema } from "../domain/skill-promotion.js";
import type { SkillVersion } from "../domain/skill-version.js";
import {
  CreateToolInputSchema,
  RedactedToolSchema,
  ToolApprovalSchema,
  ToolApprovalStatusSchema,
  UpdateToolInputSchema,
} from "../domain/tool.js";
import { type Trace, TraceFeedbackInputSchema } from "../domain/trace.js";
import type { UsageBreakdown, UsageSummary } from "../domain/usage.js";
import { KILO_ERROR_CODES } from "../errors.js";
import type { ApprovalOutcome } from "../kilo.js";
import type { TurnResult } from "../ports/orchestrator.js";
import type { EvolveResult } from "../skills/skill-evolution.js";

// The one route table: the handler serves exactly these routes and the OpenAPI document describes exactly
// these. Request schemas are the ones the handler validates with; response schemas are typed against the
// values the routes return, so neither side can drift without a type error.

// --- request schemas ---

/** `POST /api/bots`: the bot is always the authenticated user's; `userId` may only repeat it. */
export const CreateBotBodySchema = CreateBotInputSchema.omit({ id: true, userId: true })
  .extend({ userId: IdSchema.optional() })
  .strict();

/** Bodies whose full validation happens in kilo; here only the server-assigned `id` is refused. */
export const WithoutIdSchema = z
  .record(z.string(), z.unknown())
  .refine((body) => !("id" in body), { message: "is assigned by the server", path: ["id"] });

export const ChatBodySchema = z
  .object({
    botId: IdSchema,
    message: z.string(),
    conversationId: IdSchema.optional(),
    /** `false` leaves skills out of this turn (LLMos-Lite's `include_skills`). */
    includeSkills: z.boolean().optional(),
    /** Most skills in this turn's catalog, matched and closest first (LLMos-Lite's `max_skills`). */
    maxSkills: z.number().int().min(0).max(1000).optional(),
  })
  .strict();

export const DecisionBodySchema = z
  .object({ botId: IdSchema.optional(), reason: z.string().max(1000).optional() })
  .strict();

const dateParam = z
  .string()
  .describe("An ISO 8601 date or date-time")
  .refine((value) => !Number.isNaN(Date.parse(value)), "must be an ISO 8601 date or date-time")
  .transform((value) => new Date(value));

export const UsageParamsSchema = z
  .object({ botId: IdSchema.optional(), from: dateParam.optional(), to: dateParam.optional() })
  .strict();

export const PageParamsSchema = z
  .object({
    limit: z.coerce.number().int().min(1).max(500).optional(),
    cursor: z.string().min(1).max(1000).optional(),
  })
  .strict();

export const LookupParamsSchema = z.object({ botId: IdSchema.optional() }).strict();

const pageLimit = z.coerce.number().int().min(1).max(500);
const pageCursor = z.string().min(1).max(1000);

/** `GET /api/skills/:skillId/history`: the bot lookup of {@link LookupParamsSchema}, and paging. */
export const HistoryParamsSchema = z
  .object({ botId: IdSchema.optional(), limit: pageLimit.optional(), cursor: pageCursor.optional() })
  .strict();

/** The `:version` of `GET /api/skills/:skillId/versions/:version`. */
export const VersionParamSchema = z.coerce.number().int().min(1).describe("A version number, from 1");

/** `POST /api/skills/:skillId/rollback`: the version to restore, and why. */
export const RollbackBodySchema = z
  .object({
    version: z.number().int().min(1).describe("The version whose content becomes the skill's again"),
    reason: z.string().max(2000).optional(),
  })
  .strict();

/** `POST /api/skills/:skillId/promotions`: the scope to promote to (a team or the system), and why. */
export const PromotionRequestBodySchema = z
  .object({
    to: SkillScopeSchema.describe('`{ kind: "team", id }` or `{ kind: "system" }`'),
    reason: z.string().trim().min(1).max(2000),
  })
  .strict();

/** `GET /api/promotions`: which requests (default: pending), paged. */
export const PromotionListParamsSchema = z
  .object({
    status: SkillPromotionStatusSchema.optional(),
    limit: pageLimit.optional(),
  })
  .strict();

/** `POST /api/promotions/:promotionId/approve`: an optional note for the requester. */
export const PromotionApproveBodySchema = z.object({ note: z.string().max(2000).optional() }).strict();

/** `POST /api/promotions/:promotionId/reject`: why (required: the requester reads it). */
export const PromotionRejectBodySchema = z.object({ reason: z.string().trim().min(1).max(2000) }).strict();

/** `POST /api/skills/:skillId/approve` and `/reject`: why, recorded in the version the decision writes. */
export const ReviewBodySchema = z.object({ reason: z.string().max(2000).optional() }).strict();

/** `POST /api/bots/:botId/evolve`: `kilo.evolve`'s options; the user is the authenticated one. */
export const EvolveBodySchema = z
  .object({
    autoApply: z.boolean().optional(),
    minOccurrences: z.number().int().min(2).max(10_000).optional(),
    minSuccessRate: z.number().min(0).max(1).optional(),
    since: dateParam.optional(),
  })
  .strict();

/** `GET /api/bots/:botId/traces`: whose traces, the `[from, to)` window, and paging. */
export const TraceParamsSchema = z
  .object({
    userId: IdSchema.optional(),
    from: dateParam.optional(),
    to: dateParam.optional(),
    limit: pageLimit.optional(),
    cursor: pageCursor.optional(),
  })
  .strict();

/** `GET /api/bots/:botId/runs`: the conversation key (required) and paging by `seq`. */
export const RunListParamsSchema = z
  .object({
    conversationKey: z
      .string()
      .min(1)
      .max(256)
      .optional()
      .describe("Only this conversation key's runs, in ingest order; without it, every key's, newest first"),
    limit: pageLimit.optional(),
    afterSeq: z.coerce
      .number()
      .int()
      .min(0)
      .optional()
      .describe("With `conversationKey`: only runs ingested after this `seq`"),
    cursor: pageCursor
      .optional()
      .describe("Without `conversationKey`: the `nextCursor` of the previous page"),
  })
  .strict();

/** `GET /api/bots/:botId/approvals`: only those with `status`, at most `limit`. */
export const ApprovalListParamsSchema = z
  .object({ status: ToolApprovalStatusSchema.optional(), limit: pageLimit.optional() })
  .strict();

/**
 * The create input kilo validates a body with, minus the server-assigned `id`
 * (the route refuses one). Only for the document: refinements that JSON Schema
 * cannot express are still checked by kilo.
 */
function documentedCreateBody(schema: typeof CreateSkillInputSchema | typeof CreateToolInputSchema) {
  return z.object(schema.shape).omit({ id: true }).strict();
}

// --- response schemas ---

const UsageTotalsShape = {
  calls: z.number().int(),
  promptTokens: z.number().int(),
  completionTokens: z.number().int(),
  cacheReadTokens: z.number().int(),
  cacheWriteTokens: z.number().int(),
  reasoningTokens: z.number().int(),
  costUsd: z.number(),
};

const UsageSummarySchema: z.ZodType<UsageSummary> = z.object({
  ...UsageTotalsShape,
  userId: IdSchema,
  botId: IdSchema.nullable(),
  from: z.date().nullable(),
  to: z.date().nullable(),
});

const UsageBreakdownSchema: z.ZodType<UsageBreakdown> = z.object({
  byModel: z.array(z.object({ ...UsageTotalsShape, model: z.string() })),
  byBot: z.array(z.object({ ...UsageTotalsShape, botId: IdSchema.nullable() })),
  byDay: z.array(z.object({ ...UsageTotalsShape, day: z.string().describe("A UTC day, YYYY-MM-DD") })),
});

const SkillRefSchema = SkillSchema.pick({ id: true, name: true });

const TurnResultSchema: z.ZodType<TurnResult> = z.object({
  reply: z.string(),
  conversationId: IdSchema,
  userMessageId: IdSchema,
  replyMessageId: IdSchema,
  skill: SkillRefSchema.nullable(),
  match: z.object({
    pass: z.enum(["fast", "llm", "none"]),
    confidence: z.number(),
    reason: z.string(),
    taskType: TaskTypeSchema,
  }),
  toolCalls: z.array(
    z.object({
      name: z.string(),
      input: z.record(z.string(), z.unknown()),
      isError: z.boolean(),
      result: z.unknown(),
    }),
  ),
  memories: z.array(MemorySchema),
  proposal: ProposalSchema.nullable(),
  createdSkill: SkillRefSchema.nullable(),
  thinking: z.string().nullable(),
  usage: z.object({
    calls: z.number().int(),
    promptTokens: z.number().int(),
    completionTokens: z.number().int(),
    cacheReadTokens: z.number().int(),
    cacheWriteTokens: z.number().int(),
    costUsd: z.number(),
  }),
  skillsUsed: z.array(z.string()),
  traceId: z.string().nullable(),
});

const SkillVersionSchema: z.ZodType<SkillVersion> = z.object({
  id: IdSchema,
  skillId: IdSchema,
  botId: IdSchema.nullable(),
  scope: SkillScopeSchema,
  version: z.number().int(),
  snapshot: SkillSchema.omit({ id: true, botId: true, scope: true, createdAt: true, updatedAt: true }),
  author: z.string(),
  reason: z.string().nullable(),
  diff: z.string().describe("A unified diff from the previous version's canonical text"),
  origin: z
    .object({
      scope: SkillScopeSchema,
      skillId: IdSchema,
      version: z.number().int(),
      promotionId: IdSchema,
    })
    .nullable(),
  createdAt: z.date(),
});

const SkillPromotionSchema: z.ZodType<SkillPromotion> = z.object({
  id: IdSchema,
  skillId: IdSchema,
  skillName: z.string(),
  from: SkillScopeSchema,
  to: SkillScopeSchema,
  sourceVersion: z.number().int().nullable(),
  snapshot: SkillSchema.omit({ id: true, botId: true, scope: true, createdAt: true, updatedAt: true }),
  targetSkillId: IdSchema.nullable(),
  targetVersion: z.number().int().nullable(),
  diff: z
    .string()
    .describe(
      "A unified diff from the target scope's skill of that name (or nothing) to the promoted content",
    ),
  reason: z.string(),
  requestedBy: z.string(),
  status: SkillPromotionStatusSchema,
  reviewer: z.string().nullable(),
  reviewNote: z.string().nullable(),
  resultSkillId: IdSchema.nullable(),
  createdAt: z.date(),
  decidedAt: z.date().nullable(),
});

const TraceSchema: z.ZodType<Trace> = z.object({
  id: IdSchema,
  botId: IdSchema,
  userId: IdSchema,
  conversationId: IdSchema.nullable(),
  userMessageId: IdSchema.nullable(),
  replyMessageId: IdSchema.nullable(),
  message: z.string(),
  skillId: IdSchema.nullable(),
  skillName: z.string().nullable(),
  matchPass: z.enum(["fast", "llm", "none"]).nullable(),
  matchConfidence: z.number().nullable(),
  skillsInjected: z.array(z.string()),
  toolCalls: z.array(z.object({ name: z.string(), ok: z.boolean() })),
  outcome: z.enum(["ok", "error"]),
  errorCode: z.string().nullable(),
  latencyMs: z.number(),
  model: z.string().nullable(),
  promptTokens: z.number().int(),
  completionTokens: z.number().int(),
  costUsd: z.number(),
  feedback: z
    .object({ rating: z.enum(["up", "down"]), comment: z.string().nullable(), at: z.date() })
    .nullable(),
  createdAt: z.date(),
});

const EvolveResultSchema: z.ZodType<EvolveResult> = z.object({
  tracesAnalyzed: z.number().int(),
  patternsDetected: z.number().int(),
  skillsCreated: z.number().int(),
  skills: z.array(SkillSchema),
  patterns: z.array(
    z.object({
      signature: z.string(),
      occurrences: z.number().int(),
      successRate: z.number(),
      outcome: z.enum(["created", "served", "duplicate", "low-success", "invalid"]),
      reason: z.string(),
      skillId: IdSchema.nullable(),
    }),
  ),
});

const ApprovalOutcomeSchema: z.ZodType<ApprovalOutcome> = z.object({
  approval: ToolApprovalSchema,
  result: z.object({ content: z.string(), isError: z.boolean() }).nullable(),
  turn: TurnResultSchema.nullable(),
  run: RunSchema.nullable(),
});

/** `GET /v1/runs/:run_id`: a run in the my-kaiser v1 shape. */
export const RunViewSchema = z.object({
  run_id: IdSchema,
  status: RunStatusSchema,
  output: z.record(z.string(), z.unknown()).nullable(),
  error: RunErrorSchema.nullable(),
  bot_id: IdSchema,
  conversation_key: z.string(),
  conversation_id: IdSchema.nullable(),
  workflow: z.string(),
  created_at: z.date(),
  started_at: z.date().nullable(),
  finished_at: z.date().nullable(),
});

/** A run in the my-kaiser v1 shape, as `GET /v1/runs/:run_id` and `kilo status --json` show it. */
export type RunView = z.output<typeof RunViewSchema>;

/** The my-kaiser v1 view of a run: snake_case, with what a client needs next. */
export function runView(run: Run): RunView {
  return {
    run_id: run.id,
    status: run.status,
    output: run.output,
    error: run.error,
    bot_id: run.botId,
    conversation_key: run.conversationKey,
    conversation_id: run.conversationId,
    workflow: run.workflow,
    created_at: run.createdAt,
    started_at: run.startedAt,
    finished_at: run.finishedAt,
  };
}

/** The error codes an HTTP error body may carry. */
export const HTTP_ERROR_CODES = [
  ...KILO_ERROR_CODES,
  "UNAUTHENTICATED",
  "METHOD_NOT_ALLOWED",
  "PAYLOAD_TOO_LARGE",
] as const;

export const ErrorBodySchema = z.object({
  error: z.object({ code: z.enum(HTTP_ERROR_CODES), message: z.string() }),
});

/**
 * Named schemas: the document lists them under `components.schemas` and refers
 * to them by name. `io` says whether the schema describes what a client sends
 * (defaults optional) or what it receives.
 */
export const NAMED_SCHEMAS = {
  Error: { schema: ErrorBodySchema, io: "output" },
  InboundEvent: { schema: InboundEventSchema, io: "input" },
  EventAccepted: {
    schema: z.object({
      run_id: IdSchema,
      duplicate: z.boolean().describe("True when the delivery id was already ingested: nothing new started"),
    }),
    io: "output",
  },
  Run: { schema: RunViewSchema, io: "output" },
  Bot: { schema: BotSchema, io: "output" },
  BotPage: {
    schema: z.object({ items: z.array(BotSchema), nextCursor: z.string().nullable() }),
    io: "output",
  },
  CreateBot: { schema: CreateBotBodySchema, io: "input" },
  UpdateBot: { schema: UpdateBotInputSchema, io: "input" },
  Skill: { schema: SkillSchema, io: "output" },
  SkillList: { schema: z.object({ items: z.array(SkillSchema) }), io: "output" },
  CreateSkill: { schema: documentedCreateBody(CreateSkillInputSchema), io: "input" },
  UpdateSkill: { schema: UpdateSkillInputSchema, io: "input" },
  Tool: { schema: RedactedToolSchema, io: "output" },
  ToolList: { schema: z.object({ items: z.array(RedactedToolSchema) }), io: "output" },
  CreateTool: { schema: documentedCreateBody(CreateToolInputSchema), io: "input" },
  UpdateTool: { schema: UpdateToolInputSchema, io: "input" },
  ChatRequest: { schema: ChatBodySchema, io: "input" },
  TurnResult: { schema: TurnResultSchema, io: "output" },
  ApprovalDecision: { schema: DecisionBodySchema, io: "input" },
  ApprovalOutcome: { schema: ApprovalOutcomeSchema, io: "output" },
  UsageSummary: { schema: UsageSummarySchema, io: "output" },
  UsageBreakdown: { schema: UsageBreakdownSchema, io: "output" },
  Principal: { schema: z.object({ userId: IdSchema }), io: "output" },
  ApprovalList: { schema: z.object({ items: z.array(ToolApprovalSchema) }), io: "output" },
  SkillVersion: { schema: SkillVersionSchema, io: "output" },
  SkillVersionPage: {
    schema: z.object({ items: z.array(SkillVersionSchema), nextCursor: z.string().nullable() }),
    io: "output",
  },
  Rollback: { schema: RollbackBodySchema, io: "input" },
  PromotionRequest: { schema: PromotionRequestBodySchema, io: "input" },
  PromotionApprove: { schema: PromotionApproveBodySchema, io: "input" },
  PromotionReject: { schema: PromotionRejectBodySchema, io: "input" },
  SkillPromotion: { schema: SkillPromotionSchema, io: "output" },
  SkillPromotionPage: {
    schema: z.object({ items: z.array(SkillPromotionSchema), nextCursor: z.string().nullable() }),
    io: "output",
  },
  ApprovedPromotion: {
    schema: z.object({ promotion: SkillPromotionSchema, skill: SkillSchema }),
    io: "output",
  },
  Review: { schema: ReviewBodySchema, io: "input" },
  EvolveRequest: { schema: EvolveBodySchema, io: "input" },
  EvolveResult: { schema: EvolveResultSchema, io: "output" },
  Trace: { schema: TraceSchema, io: "output" },
  TracePage: {
    schema: z.object({ items: z.array(TraceSchema), nextCursor: z.string().nullable() }),
    io: "output",
  },
  TraceFeedback: { schema: TraceFeedbackInputSchema, io: "input" },
  RunList: {
    schema: z.object({
      items: z.array(RunSchema),
      nextCursor: z
        .string()
        .nullable()
        .describe("The next page (every conversation's runs only); `null` at the end"),
    }),
    io: "output",
  },
  RunStepList: { schema: z.object({ items: z.array(RunStepSchema) }), io: "output" },
} as const satisfies Record<string, { schema: z.ZodType; io: "input" | "output" }>;

/** The name of a schema in {@link NAMED_SCHEMAS}. */
export type SchemaName = keyof typeof NAMED_SCHEMAS;

// --- routes ---

/** One route of the HTTP API: what the handler serves and the document describes. */
export interface RouteSpec {
  /** Unique; names the handler's implementation and the document's `operationId`. */
  operationId: string;
  method: "GET" | "POST" | "PATCH" | "DELETE";
  /** With `:name` path parameters: ids, unless {@link RouteSpec.params} says otherwise. */
  path: string;
  /** Path parameters that are not ids, with the schema that parses them (the document shows it). */
  params?: Record<string, z.ZodType>;
  tag: string;
  summary: string;
  description?: string;
  /** False for routes that need no authenticated user. Default true. */
  auth?: boolean;
  query?: z.ZodObject;
  body?: { schema: SchemaName; required: boolean };
  response:
    | { status: 200 | 201 | 202; schema: SchemaName | "any"; description: string }
    | { status: 204; description: string }
    | { status: 200; stream: true; description: string };
  /** Error statuses this route answers beyond those implied by auth, parameters and body. */
  errors?: readonly number[];
}

const LOOKUP_NOTE =
  "`?botId=` reads that bot and the shared scopes it sees only; without it the user's bots, the user's own scope, their teams' and the system's are searched. Writes to a team's skill need its admin; the system's skills are read-only (403).";

export const ROUTES = [
  {
    operationId: "getHealth",
    method: "GET",
    path: "/healthz",
    tag: "health",
    summary: "Liveness check",
    auth: false,
    response: { status: 200, schema: "any", description: 'The process is up: `{ status: "ok" }`' },
  },
  {
    operationId: "getOpenApiDocument",
    method: "GET",
    path: "/openapi.json",
    tag: "health",
    summary: "This OpenAPI document",
    auth: false,
    response: { status: 200, schema: "any", description: "The OpenAPI 3.1 document of this API" },
    errors: [404],
  },
  {
    operationId: "ingestEvent",
    method: "POST",
    path: "/v1/events",
    tag: "runs",
    summary: "Ingest a normalized event (InboundEvent v1) as a queued run",
    description:
      "`user_key` must be the authenticated user. Without `bot_id` the user's only bot is used. An `Idempotency-Key` header fills a missing `delivery_id`; a repeated delivery id returns the existing run with `duplicate: true`.",
    body: { schema: "InboundEvent", required: true },
    response: { status: 202, schema: "EventAccepted", description: "The run is stored and queued" },
    errors: [403, 404],
  },
  {
    operationId: "getRun",
    method: "GET",
    path: "/v1/runs/:run_id",
    tag: "runs",
    summary: "A run's status and, once it succeeded, its output",
    response: { status: 200, schema: "Run", description: "The run" },
  },
  {
    operationId: "listBots",
    method: "GET",
    path: "/api/users/:userId/bots",
    tag: "bots",
    summary: "List the user's bots",
    query: PageParamsSchema,
    response: { status: 200, schema: "BotPage", description: "A page of bots" },
    errors: [403],
  },
  {
    operationId: "createBot",
    method: "POST",
    path: "/api/bots",
    tag: "bots",
    summary: "Create a bot for the authenticated user",
    body: { schema: "CreateBot", required: true },
    response: { status: 201, schema: "Bot", description: "The bot" },
    errors: [403, 409],
  },
  {
    operationId: "getBot",
    method: "GET",
    path: "/api/bots/:botId",
    tag: "bots",
    summary: "Read a bot",
    response: { status: 200, schema: "Bot", description: "The bot" },
  },
  {
    operationId: "updateBot",
    method: "PATCH",
    path: "/api/bots/:botId",
    tag: "bots",
    summary: "Change a bot",
    body: { schema: "UpdateBot", required: true },
    response: { status: 200, schema: "Bot", description: "The changed bot" },
  },
  {
    operationId: "deleteBot",
    method: "DELETE",
    path: "/api/bots/:botId",
    tag: "bots",
    summary: "Delete a bot and all of its data",
    response: { status: 204, description: "Deleted" },
  },
  {
    operationId: "listSkills",
    method: "GET",
    path: "/api/bots/:botId/skills",
    tag: "skills",
    summary: "List a bot's skills",
    response: { status: 200, schema: "SkillList", description: "The skills" },
  },
  {
    operationId: "createSkill",
    method: "POST",
    path: "/api/bots/:botId/skills",
    tag: "skills",
    summary: "Create a skill",
    body: { schema: "CreateSkill", required: true },
    response: { status: 201, schema: "Skill", description: "The skill" },
    errors: [409],
  },
  {
    operationId: "updateSkill",
    method: "PATCH",
    path: "/api/skills/:skillId",
    tag: "skills",
    summary: "Change a skill",
    description: LOOKUP_NOTE,
    query: LookupParamsSchema,
    body: { schema: "UpdateSkill", required: true },
    response: { status: 200, schema: "Skill", description: "The changed skill" },
    errors: [409],
  },
  {
    operationId: "deleteSkill",
    method: "DELETE",
    path: "/api/skills/:skillId",
    tag: "skills",
    summary: "Delete a skill",
    description: LOOKUP_NOTE,
    query: LookupParamsSchema,
    response: { status: 204, description: "Deleted" },
  },
  {
    operationId: "listTools",
    method: "GET",
    path: "/api/bots/:botId/tools",
    tag: "tools",
    summary: "List a bot's tools (credentials redacted)",
    response: { status: 200, schema: "ToolList", description: "The tools" },
  },
  {
    operationId: "createTool",
    method: "POST",
    path: "/api/bots/:botId/tools",
    tag: "tools",
    summary: "Register a tool; `secret` is encrypted and never returned",
    body: { schema: "CreateTool", required: true },
    response: { status: 201, schema: "Tool", description: "The tool, redacted" },
    errors: [409],
  },
  {
    operationId: "getTool",
    method: "GET",
    path: "/api/tools/:toolId",
    tag: "tools",
    summary: "Read a tool (credential redacted)",
    description: LOOKUP_NOTE,
    query: LookupParamsSchema,
    response: { status: 200, schema: "Tool", description: "The tool, redacted" },
  },
  {
    operationId: "updateTool",
    method: "PATCH",
    path: "/api/tools/:toolId",
    tag: "tools",
    summary: "Change a tool; `secret` replaces the credential, `null` clears it",
    description: LOOKUP_NOTE,
    query: LookupParamsSchema,
    body: { schema: "UpdateTool", required: true },
    response: { status: 200, schema: "Tool", description: "The changed tool, redacted" },
    errors: [409],
  },
  {
    operationId: "deleteTool",
    method: "DELETE",
    path: "/api/tools/:toolId",
    tag: "tools",
    summary: "Delete a tool",
    description: LOOKUP_NOTE,
    query: LookupParamsSchema,
    response: { status: 204, description: "Deleted" },
  },
  {
    operationId: "chat",
    method: "POST",
    path: "/api/chat",
    tag: "chat",
    summary: "Send a message and wait for the bot's reply",
    body: { schema: "ChatRequest", required: true },
    response: { status: 200, schema: "TurnResult", description: "The finished turn" },
    errors: [404],
  },
  {
    operationId: "chatStream",
    method: "POST",
    path: "/api/chat/stream",
    tag: "chat",
    summary: "Send a message and stream the turn as Server-Sent Events",
    description:
      "Validation and ownership failures answer JSON errors before the stream opens. Each frame is `event: <type>` and `data: <JSON>`; types: `text-delta`, `thinking-delta`, `thinking`, `tool-call`, `tool-result`, finally `result` (data `{ type, result: TurnResult }`), or `error` (data: the error body) when the turn fails after the stream opened.",
    body: { schema: "ChatRequest", required: true },
    response: { status: 200, stream: true, description: "A stream of turn events" },
    errors: [404],
  },
  {
    operationId: "approveToolCall",
    method: "POST",
    path: "/api/approvals/:approvalId/approve",
    tag: "approvals",
    summary: "Approve a pending tool call: it is sent and the conversation continues",
    description: "Name the approval's bot with `botId` in the body or the query.",
    query: LookupParamsSchema,
    body: { schema: "ApprovalDecision", required: false },
    response: { status: 200, schema: "ApprovalOutcome", description: "The decision and the turn it led to" },
    errors: [409],
  },
  {
    operationId: "denyToolCall",
    method: "POST",
    path: "/api/approvals/:approvalId/deny",
    tag: "approvals",
    summary: "Deny a pending tool call: nothing is sent and the conversation continues",
    description: "Name the approval's bot with `botId` in the body or the query.",
    query: LookupParamsSchema,
    body: { schema: "ApprovalDecision", required: false },
    response: { status: 200, schema: "ApprovalOutcome", description: "The decision and the turn it led to" },
    errors: [409],
  },
  {
    operationId: "getUsage",
    method: "GET",
    path: "/api/users/:userId/usage",
    tag: "usage",
    summary: "The user's usage totals, optionally for one bot and a period",
    query: UsageParamsSchema,
    response: { status: 200, schema: "UsageSummary", description: "Usage totals" },
    errors: [403],
  },
  {
    operationId: "getUsageBreakdown",
    method: "GET",
    path: "/api/users/:userId/usage/breakdown",
    tag: "usage",
    summary: "The user's usage by model, bot and UTC day",
    query: UsageParamsSchema,
    response: { status: 200, schema: "UsageBreakdown", description: "Usage broken down" },
    errors: [403],
  },
  {
    operationId: "getPrincipal",
    method: "GET",
    path: "/api/me",
    tag: "users",
    summary: "The authenticated user",
    response: { status: 200, schema: "Principal", description: "Who the request acts for" },
  },
  {
    operationId: "listApprovals",
    method: "GET",
    path: "/api/bots/:botId/approvals",
    tag: "approvals",
    summary: "A bot's tool-call approvals, newest first (`?status=pending` for those waiting)",
    query: ApprovalListParamsSchema,
    response: { status: 200, schema: "ApprovalList", description: "The approvals" },
  },
  {
    operationId: "getSkillHistory",
    method: "GET",
    path: "/api/skills/:skillId/history",
    tag: "skills",
    summary: "A skill's versions, newest first, each with its author, reason and diff",
    description: LOOKUP_NOTE,
    query: HistoryParamsSchema,
    response: { status: 200, schema: "SkillVersionPage", description: "A page of versions" },
  },
  {
    operationId: "getSkillVersion",
    method: "GET",
    path: "/api/skills/:skillId/versions/:version",
    tag: "skills",
    summary: "One version of a skill",
    description: LOOKUP_NOTE,
    params: { version: VersionParamSchema },
    query: LookupParamsSchema,
    response: { status: 200, schema: "SkillVersion", description: "The version" },
  },
  {
    operationId: "rollbackSkill",
    method: "POST",
    path: "/api/skills/:skillId/rollback",
    tag: "skills",
    summary: "Restore a version's content as a new version (history is never rewritten)",
    description: `${LOOKUP_NOTE} A version whose content no longer validates (its name is taken now, say) answers 400 and changes nothing.`,
    query: LookupParamsSchema,
    body: { schema: "Rollback", required: true },
    response: { status: 200, schema: "Skill", description: "The skill, as restored" },
  },
  {
    operationId: "listSkillDrafts",
    method: "GET",
    path: "/api/bots/:botId/drafts",
    tag: "evolution",
    summary: "A bot's draft skills, waiting for review",
    description:
      "Drafts from `kilo.evolve` carry their evidence in `metadata.evolution`: the pattern's signature, keywords, occurrences, success rate, trace ids, and `replay` (how many of the pattern's requests matched before and would match with the draft).",
    response: { status: 200, schema: "SkillList", description: "The drafts, oldest first" },
  },
  {
    operationId: "approveSkillDraft",
    method: "POST",
    path: "/api/skills/:skillId/approve",
    tag: "evolution",
    summary: "Approve a draft skill: it becomes active",
    description: `${LOOKUP_NOTE} A skill that is not a draft answers 409.`,
    query: LookupParamsSchema,
    body: { schema: "Review", required: false },
    response: { status: 200, schema: "Skill", description: "The skill, now active" },
    errors: [409],
  },
  {
    operationId: "rejectSkillDraft",
    method: "POST",
    path: "/api/skills/:skillId/reject",
    tag: "evolution",
    summary: "Reject a draft skill: it is disabled (kept, so evolution does not draft it again)",
    description: `${LOOKUP_NOTE} A skill that is not a draft answers 409.`,
    query: LookupParamsSchema,
    body: { schema: "Review", required: false },
    response: { status: 200, schema: "Skill", description: "The skill, now disabled" },
    errors: [409],
  },
  {
    operationId: "requestSkillPromotion",
    method: "POST",
    path: "/api/skills/:skillId/promotions",
    tag: "skills",
    summary: "Ask to promote a skill to a team or the system, for review",
    description: `${LOOKUP_NOTE} A bot's or the user's skill may go to a team the user belongs to or to the system; a team's skill to the system. The request pins the content and its diff against the target's skill of that name.`,
    query: LookupParamsSchema,
    body: { schema: "PromotionRequest", required: true },
    response: { status: 201, schema: "SkillPromotion", description: "The pending request" },
    errors: [403],
  },
  {
    operationId: "listSkillPromotions",
    method: "GET",
    path: "/api/promotions",
    tag: "skills",
    summary: "Promotion requests the user may review (to teams they administer)",
    description:
      "Default `status=pending`. Requests to the system scope are reviewed by the host (`kilo.skills.promotions` without an actor), not over HTTP.",
    query: PromotionListParamsSchema,
    response: { status: 200, schema: "SkillPromotionPage", description: "The requests, oldest first" },
  },
  {
    operationId: "approveSkillPromotion",
    method: "POST",
    path: "/api/promotions/:promotionId/approve",
    tag: "skills",
    summary: "Approve a promotion request: the skill is written to the target scope with its history",
    description:
      "Only an admin of the target team (403 otherwise). 409 when the request was decided already, or the target's skill changed since the request (its diff is out of date).",
    body: { schema: "PromotionApprove", required: false },
    response: { status: 200, schema: "ApprovedPromotion", description: "The request and the skill written" },
    errors: [403, 409],
  },
  {
    operationId: "rejectSkillPromotion",
    method: "POST",
    path: "/api/promotions/:promotionId/reject",
    tag: "skills",
    summary: "Reject a promotion request, saying why",
    description:
      "Only an admin of the target team (403 otherwise); 409 when the request was decided already.",
    body: { schema: "PromotionReject", required: true },
    response: { status: 200, schema: "SkillPromotion", description: "The rejected request" },
    errors: [403, 409],
  },
  {
    operationId: "evolve",
    method: "POST",
    path: "/api/bots/:botId/evolve",
    tag: "evolution",
    summary: "Run evolution over the authenticated user's traces with the bot",
    description:
      "Detects repeated requests no skill serves and drafts a Markdown skill for each (active with `autoApply`).",
    body: { schema: "EvolveRequest", required: false },
    response: { status: 200, schema: "EvolveResult", description: "What evolution found and drafted" },
  },
  {
    operationId: "evolveStream",
    method: "POST",
    path: "/api/bots/:botId/evolve/stream",
    tag: "evolution",
    summary: "Run evolution and stream its progress as Server-Sent Events",
    description:
      "Frames: `progress` (data: an `evolve-progress` event: `stage`, `message`, and totals or the pattern), then `result` (data `{ type, result: EvolveResult }`), or `error` (data: the error body).",
    body: { schema: "EvolveRequest", required: false },
    response: { status: 200, stream: true, description: "A stream of progress events and the result" },
  },
  {
    operationId: "listTraces",
    method: "GET",
    path: "/api/bots/:botId/traces",
    tag: "traces",
    summary: "A bot's traces (one per chat turn), oldest first, paged",
    query: TraceParamsSchema,
    response: { status: 200, schema: "TracePage", description: "A page of traces" },
  },
  {
    operationId: "getTrace",
    method: "GET",
    path: "/api/traces/:traceId",
    tag: "traces",
    summary: "One trace",
    description: LOOKUP_NOTE,
    query: LookupParamsSchema,
    response: { status: 200, schema: "Trace", description: "The trace" },
  },
  {
    operationId: "setTraceFeedback",
    method: "POST",
    path: "/api/traces/:traceId/feedback",
    tag: "traces",
    summary: "Rate a turn up or down (replacing earlier feedback); evolution reads it",
    description: LOOKUP_NOTE,
    query: LookupParamsSchema,
    body: { schema: "TraceFeedback", required: true },
    response: { status: 200, schema: "Trace", description: "The trace with its feedback" },
  },
  {
    operationId: "listRuns",
    method: "GET",
    path: "/api/bots/:botId/runs",
    tag: "runs",
    summary: "A bot's runs: every conversation's, newest first, or one conversation key's, in ingest order",
    query: RunListParamsSchema,
    response: { status: 200, schema: "RunList", description: "The runs" },
  },
  {
    operationId: "listRunSteps",
    method: "GET",
    path: "/api/runs/:runId/steps",
    tag: "runs",
    summary: "A run's recorded workflow steps, in order",
    response: { status: 200, schema: "RunStepList", description: "The steps" },
  },
] as const satisfies readonly RouteSpec[];

/** The operation id of a route in {@link ROUTES}. */
export type OperationId = (typeof ROUTES)[number]["operationId"];
