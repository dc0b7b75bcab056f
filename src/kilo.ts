import { EventEmitter } from "eventemitter3";
import { z } from "zod";
import { type CacheLoader, type CacheOptions, createCacheLoader } from "./cache/cache-loader.js";
import { createContextLoader } from "./context/context-loader.js";
import {
  type Bot,
  type CreateBotInput,
  CreateBotInputSchema,
  type UpdateBotInput,
  UpdateBotInputSchema,
} from "./domain/bot.js";
import { IdSchema, type Page, type PageOptions, PageOptionsSchema } from "./domain/common.js";
import type { Conversation, Message } from "./domain/conversation.js";
import type { Memory } from "./domain/memory.js";
import type { Proposal, ProposalStatus } from "./domain/proposal.js";
import { ProposalStatusSchema } from "./domain/proposal.js";
import { type Run, RunSchema } from "./domain/run.js";
import type { Skill, SkillRecord } from "./domain/skill.js";
import {
  type CreateToolInput,
  CreateToolInputSchema,
  type RedactedTool,
  redactTool,
  type Tool,
  type ToolApproval,
  ToolApprovalStatusSchema,
  type ToolCallAudit,
  ToolSchema,
  type UpdateToolInput,
  UpdateToolInputSchema,
} from "./domain/tool.js";
import type { UsageBreakdown, UsageRecord, UsageSummary, UsageTotals } from "./domain/usage.js";
import type { User } from "./domain/user.js";
import { KiloError, toKiloError } from "./errors.js";
import { type KiloEventEmitter, type KiloEvents, safeEmit } from "./events.js";
import { createLlmGateway, type GatewayRoutes } from "./gateway/llm-gateway.js";
import type { PriceTable } from "./gateway/pricing.js";
import type { TaskSettingsOverrides } from "./gateway/task-routing.js";
import { ruleMemoryExtractor } from "./memory/memory-extractor.js";
import { lexicalMemoryRetriever, MemoryService } from "./memory/memory-service.js";
import { createOrchestrator } from "./orchestrator/orchestrator.js";
import { createTurnMeter } from "./orchestrator/turn-meter.js";
import type { Cache } from "./ports/cache.js";
import type { Clock, IdGenerator } from "./ports/clock.js";
import type { ContextLoader } from "./ports/context-loader.js";
import type { CredentialVault } from "./ports/credential-vault.js";
import type { Learner } from "./ports/learner.js";
import type { LlmGateway } from "./ports/llm-gateway.js";
import type { LlmProvider } from "./ports/llm-provider.js";
import type { Logger } from "./ports/logger.js";
import type { MemoryExtractor, MemoryRetriever } from "./ports/memory.js";
import type { Orchestrator, TurnInput, TurnResult, TurnStreamEvent } from "./ports/orchestrator.js";
import type { PromptComposer } from "./ports/prompt-composer.js";
import type { ResponseProcessor } from "./ports/response-processor.js";
import type { SearchProvider } from "./ports/search-provider.js";
import type { SkillMatcher } from "./ports/skill-matcher.js";
import type { SkillProposer } from "./ports/skill-proposer.js";
import type { SkillVolume } from "./ports/skill-volume.js";
import type { SkillRecordFilter, Storage } from "./ports/storage.js";
import type { ToolProvider } from "./ports/tool-provider.js";
import { createPromptComposer } from "./prompt/prompt-composer.js";
import { createDocAnalyzer } from "./research/doc-analyzer.js";
import {
  type LearningOptions,
  LearningService,
  type LearningSession,
  type LearningStartResult,
} from "./research/learning-service.js";
import { createPageReader } from "./research/page-reader.js";
import { createResponseProcessor } from "./response/response-processor.js";
import {
  conversationIdFor,
  createRunService,
  type RunService,
  type RunSettings,
} from "./runs/run-service.js";
import type { WorkflowHandler, WorkflowToolRequest, WorkflowToolResult } from "./runs/workflow.js";
import { randomIds, systemClock } from "./runtime/defaults.js";
import { guardStorage } from "./runtime/guard-storage.js";
import { contextualLogger } from "./runtime/log-context.js";
import { silentLogger } from "./runtime/logger.js";
import { allPages } from "./runtime/pages.js";
import { parseInput } from "./runtime/validate.js";
import { skillReadTools } from "./skills/markdown/skill-read-tool.js";
import { ScopeAccess } from "./skills/scope-access.js";
import { createSkillApi, type KiloSkills } from "./skills/skill-api.js";
import { SkillDataService, skillDataTools } from "./skills/skill-data.js";
import { type EvolveInput, type EvolveResult, SkillEvolution } from "./skills/skill-evolution.js";
import { createSkillMatcher } from "./skills/skill-matcher.js";
import { createSkillPromotionApi } from "./skills/skill-promotions.js";
import { acceptProposal, createSkillProposer, dismissProposal } from "./skills/skill-proposer.js";
import { SkillService } from "./skills/skill-service.js";
import { createTeamApi, type KiloTeams, withoutTeam } from "./teams/team-service.js";
import { createApprovalDecider } from "./tools/approval-decider.js";
import { ApiCaller, type ApiCallOutcome, buildUrl, callApiTools, resolveCall } from "./tools/call-api.js";
import { aesGcmVault } from "./tools/credential-vault.js";
import { createHttpExecutor, type HttpExecutor, type HttpExecutorOptions } from "./tools/http-executor.js";
import { createTraceApi, type KiloTraces, type TraceOptions } from "./traces/trace-service.js";
import { createWorkspace, type WorkspaceOptions } from "./workspace/workspace.js";

/**
 * What a component factory receives: the parts every component may depend on.
 * The `gateway` here already counts usage toward the current turn.
 */
export interface KiloParts {
  storage: Storage;
  gateway: LlmGateway;
  clock: Clock;
  ids: IdGenerator;
  logger: Logger;
  /** Cache-first loading of bots and skill catalogs (L1 in-process, then the shared `cache`, then storage). */
  cache: CacheLoader;
  skills: SkillService;
  memory: MemoryService;
  records: SkillDataService;
}

/** A component given as an instance, or as a factory that receives the other parts. */
export type Component<T> = T | ((parts: KiloParts) => T);

/** Options of {@link createKilo}. */
export interface KiloOptions {
  /** Where kilo keeps its data: `memoryStorage()`, `sqliteStorage(...)`, `postgresStorage(...)` or your own adapter. */
  storage: Storage;
  /**
   * A shared cache (the second tier) in front of storage for bots, souls and
   * skill catalogs, e.g. `redisCache({ url })` from 'kilo/cache/redis'. Every
   * process of a deployment should use the same one: writes through any of
   * them are then seen by the next turn of all. An in-process LRU (the first
   * tier) is always on. `kilo.close()` closes it (the adapter releases only
   * what it opened). See `docs/cache.md`.
   */
  cache?: Cache;
  /** Size and lifetimes of the in-process tier and of entries in `cache`. */
  cacheOptions?: CacheOptions;
  /**
   * A skill volume, e.g. `gitVolume({ root, author })` from 'kilo/volumes/git': every change to a
   * Markdown skill is also written to it as one version (a git commit per change), and
   * `kilo.skills.volume` reads its history, rolls back through it and imports hand edits.
   * Storage stays the source of truth. `kilo.close()` closes it. See `docs/volumes-git.md`.
   */
  volume?: SkillVolume;
  /** LLM providers, in fallback order. Required unless you pass your own `gateway`. */
  providers?: LlmProvider[];
  /** Which provider and model serve each task type. Default: every provider in order, with its default model. */
  routes?: GatewayRoutes;
  /** Thinking budget and max tokens per task type, over the defaults. */
  taskSettings?: TaskSettingsOverrides;
  /** Prices per model (USD per million tokens), over the built-in table. */
  prices?: PriceTable;
  /** A pino-compatible logger. Default: silent. */
  logger?: Logger;
  clock?: Clock;
  ids?: IdGenerator;
  /** Most model calls in one turn's tool loop. Default 8. */
  maxToolSteps?: number;
  /** Extra stable rules added to every prompt (e.g. the host's policies). */
  contextRules?: string[];
  /**
   * A workspace directory (the my-kaiser workspace contract), or its options:
   * SYSTEM.md replaces the soul's text at the top of the system prompt,
   * APPEND_SYSTEM.md is appended after the rules, AGENTS.md adds context
   * rules. Changes are picked up without a restart; a file that cannot be
   * used is reported (an `error` event with code `WORKSPACE_INVALID`, naming
   * the file) and the bot keeps working. See docs/workspace.md.
   */
  workspace?: string | WorkspaceOptions;
  /**
   * Where tool credentials are encrypted. Default: AES-256-GCM with the key in
   * KILO_CREDENTIAL_KEY (read when a credential is first stored or used).
   */
  vault?: CredentialVault;
  /** The outbound HTTP executor behind `call_api`, or options for the default one. */
  executor?: HttpExecutor | HttpExecutorOptions;
  /** Tool providers added to the built-in skill data tools. */
  toolProviders?: ToolProvider[];
  /** Replace the LLM gateway (routing, fallback, pricing, usage). */
  gateway?: LlmGateway;
  /** Replace the skill matcher. Default: keyword index, then LLM classification. */
  matcher?: Component<SkillMatcher>;
  /** Replace the prompt composer. */
  composer?: Component<PromptComposer>;
  /** Replace the response processor. */
  responseProcessor?: Component<ResponseProcessor>;
  /** Replace the memory extractor. Default: rule-based (no extra LLM call); see `llmMemoryExtractor`. */
  memoryExtractor?: Component<MemoryExtractor>;
  /** Replace memory retrieval. */
  memoryRetriever?: Component<MemoryRetriever>;
  /** Replace the skill proposer. */
  proposer?: Component<SkillProposer>;
  /**
   * Web search for auto-learning ("Learn how to use Stripe"), e.g.
   * `braveSearch()` from 'kilo/search/brave'. Without it, learning requests
   * in chat are ordinary messages and `kilo.learning.start` fails with
   * `CONFIGURATION_INVALID`. See docs/learning.md.
   */
  search?: SearchProvider;
  /** Auto-learning limits: results, pages, page size and time caps, the doc analyzer. */
  learning?: LearningOptions;
  /** Replace auto-learning's hook in chat (called before the proposer). */
  learner?: Component<Learner>;
  /** Replace the context loader. */
  contextLoader?: Component<ContextLoader>;
  /** Replace the orchestrator. */
  orchestrator?: Component<Orchestrator>;
  /**
   * The runs executor behind `kilo.runs`: concurrency, whether raw events are stored, recovery,
   * or a host's own executor (`executor`, e.g. `dbosExecutor` from `kilo/durable/dbos`).
   */
  runs?: RunSettings;
  /** Trace retention: `{ retentionDays }`, applied by `kilo.traces.prune()`. See docs/traces-and-evolution.md. */
  traces?: TraceOptions;
  /**
   * Named workflows for `kilo.runs`: an event whose `type` is a name runs its
   * handler (steps recorded, replayed after a crash). One named `message`
   * replaces the built-in bot turn. More can be added with
   * `kilo.runs.register`. See docs/runs.md.
   */
  workflows?: Record<string, WorkflowHandler>;
}

/** Options of `kilo.usage.summary` and `kilo.usage.breakdown`. */
export interface UsageQuery {
  userId: string;
  botId?: string;
  from?: Date;
  to?: Date;
}

/** Options of `kilo.runs.list`. */
export interface RunListOptions {
  /** Most runs to return, 1–500 (default 50). */
  limit?: number;
  /** Only runs ingested after this `seq` (the next page after the last run seen). */
  afterSeq?: number;
}

const RunListOptionsSchema = z
  .object({
    limit: z.number().int().min(1).max(500).default(50),
    afterSeq: z.number().int().min(0).optional(),
  })
  .strict();

/** What deciding on an approval did. */
export interface ApprovalOutcome {
  approval: ToolApproval;
  /**
   * What the call returned (as the model saw it); `null` when denied, and when
   * a workflow's run resumes with the decision (its `ctx.tool` call sends it).
   */
  result: { content: string; isError: boolean } | null;
  /**
   * The turn that continued the conversation with the decision; `null` when
   * the approval was a workflow's `ctx.tool` call: its run resumes instead.
   */
  turn: TurnResult | null;
  /**
   * The run that asked for the approval (`null` for one asked outside a run):
   * for a workflow's `ctx.tool` call, the run sent back to the queue, to
   * `kilo.runs.wait` on for the workflow's outcome.
   */
  run: Run | null;
}

/** The components a kilo instance runs with, for hosts that want to call one directly. */
export interface KiloComponents {
  orchestrator: Orchestrator;
  matcher: SkillMatcher;
  composer: PromptComposer;
  gateway: LlmGateway;
  responseProcessor: ResponseProcessor;
  memoryExtractor: MemoryExtractor;
  memoryRetriever: MemoryRetriever;
  proposer: SkillProposer;
  learner: Learner;
  contextLoader: ContextLoader;
  toolProviders: ToolProvider[];
}

/** A kilo instance. */
export interface Kilo {
  /** Handles one user message and returns the bot's reply. The user's message is stored before the model is called. */
  chat(input: TurnInput): Promise<TurnResult>;
  /**
   * Durable, ordered processing of normalized inbound events (`InboundEvent`
   * v1): `ingest` stores a queued run and returns its `run_id` at once; runs of
   * one conversation key execute one at a time in ingest order. `start`
   * begins executing without ingesting (a worker process on shared storage);
   * `register` adds a named workflow; `list` reads one conversation key's runs.
   */
  runs: Pick<RunService, "ingest" | "get" | "steps" | "wait" | "start" | "register" | "prune"> & {
    /**
     * The bot's runs of one conversation key, in ingest order (oldest first), at most
     * `limit` (default 50, up to 500); with `afterSeq`, only those ingested after that `seq`.
     * Fails with `NOT_FOUND` when there is no such bot.
     */
    list(botId: string, conversationKey: string, options?: RunListOptions): Promise<Run[]>;
    /**
     * The bot's runs of every conversation key, newest first, paged (`limit` 1–500, default 50;
     * `cursor` from the previous page). Fails with `NOT_FOUND` when there is no such bot, and
     * `CONFIGURATION_INVALID` when the storage cannot list a bot's runs (`runs.listByBot`).
     */
    recent(botId: string, page?: PageOptions): Promise<Page<Run>>;
  };
  /**
   * The same turn as `chat`, streamed: yields reply text as the model writes
   * it (whole words, secrets redacted), thinking deltas and a thinking
   * summary, tool calls and their results, and finally `{ type: "result" }`
   * with what `chat` would return. The same progress goes out as
   * `turn-progress` events. Stopping the iteration early does not stop the
   * turn: its reply is still stored.
   *
   * @example
   * ```ts
   * for await (const event of kilo.stream({ botId, userId, message: "Plan my week" })) {
   *   if (event.type === "text-delta") process.stdout.write(event.text);
   *   if (event.type === "result") console.log("\ncost:", event.result.usage.costUsd);
   * }
   * ```
   */
  stream(input: TurnInput): AsyncIterable<TurnStreamEvent>;
  users: {
    /** Creates the user, or returns the existing one. */
    upsert(input: { id: string; name?: string | null; metadata?: Record<string, unknown> }): Promise<User>;
    /** The user with this id. Fails with `NOT_FOUND` when kilo has never seen the user. */
    get(userId: string): Promise<User>;
  };
  bots: {
    /**
     * Creates a bot (and its user, if new). With `teamId`, the bot joins that team (and sees its
     * skills); its owner must be a member (`FORBIDDEN` otherwise, `NOT_FOUND` for no such team).
     */
    create(input: CreateBotInput): Promise<Bot>;
    /** The bot with this id (read cache-first). Fails with `NOT_FOUND`. */
    get(botId: string): Promise<Bot>;
    /** One page of the user's bots, oldest first (50 by default); pass `nextCursor` back for the next page. */
    listByUser(userId: string, page?: PageOptions): Promise<Page<Bot>>;
    /**
     * Applies the fields given in `patch` (omitted fields stay as they are) and drops the bot
     * from every process's cache. `teamId` moves the bot to a team its owner is a member of
     * (`FORBIDDEN` otherwise), `null` takes it out of its team. Fails with `NOT_FOUND` or
     * `VALIDATION_FAILED`.
     */
    update(botId: string, patch: UpdateBotInput): Promise<Bot>;
    /** Deletes the bot and all of its data. */
    delete(botId: string): Promise<void>;
  };
  /**
   * Skills in every scope (a bot's own, its owner's, a team's, the system's), what a bot sees
   * (`effective`), their history and their promotion. A bot id names the bot's own skills, as
   * before scopes existed. See docs/skill-scopes.md.
   */
  skills: KiloSkills;
  /** Teams and their members: a team shares its skills with the bots in it. See docs/skill-scopes.md. */
  teams: KiloTeams;
  /** A skill's stored data. */
  records: {
    /** Validates `data` against the skill's data fields and stores it. Fails with `VALIDATION_FAILED` or `NOT_FOUND`. */
    create(botId: string, skillId: string, data: Record<string, unknown>): Promise<SkillRecord>;
    /**
     * One page of the skill's records matching `filter`, oldest first: `equals` compares a field
     * (strings case-insensitively), `contains` finds text in a string field.
     */
    list(
      botId: string,
      skillId: string,
      filter?: SkillRecordFilter,
      page?: PageOptions,
    ): Promise<Page<SkillRecord>>;
    /** Merges `changes` into the record's data and re-validates the result. Fails with `NOT_FOUND` or `VALIDATION_FAILED`. */
    update(
      botId: string,
      skillId: string,
      recordId: string,
      changes: Record<string, unknown>,
    ): Promise<SkillRecord>;
    /** Deletes the record. Fails with `NOT_FOUND`. */
    delete(botId: string, skillId: string, recordId: string): Promise<void>;
  };
  conversations: {
    /** The bot's conversations, most recently active first. */
    list(botId: string, page?: PageOptions): Promise<Page<Conversation>>;
    /** The last `limit` messages (default 50) in order; with `beforeSeq`, those before it. */
    messages(
      botId: string,
      conversationId: string,
      options?: { limit?: number; beforeSeq?: number },
    ): Promise<Message[]>;
  };
  /** External APIs a bot may call (`call_api`). Every read is redacted: credentials never come back. */
  tools: {
    /** Registers a tool; `secret` is encrypted with the vault and never stored in plaintext. */
    create(botId: string, input: CreateToolInput): Promise<RedactedTool>;
    /** The bot's tool, redacted (whether a credential is set, never its value). Fails with `NOT_FOUND`. */
    get(botId: string, toolId: string): Promise<RedactedTool>;
    /** All the bot's tools, redacted, oldest first. */
    list(botId: string): Promise<RedactedTool[]>;
    /** Changes a tool; `secret` replaces the credential, `null` clears it. */
    update(botId: string, toolId: string, patch: UpdateToolInput): Promise<RedactedTool>;
    /** Removes the tool and its credential; its audit entries and approvals stay. Fails with `NOT_FOUND`. */
    delete(botId: string, toolId: string): Promise<void>;
    /** The bot's tool calls, newest first (never credentials or request headers). */
    audit(botId: string, page?: PageOptions): Promise<Page<ToolCallAudit>>;
    /** Re-encrypts the bot's credentials under the vault's active key. */
    rotateCredentials(botId: string): Promise<{ rotated: number }>;
  };
  /** Calls of risky endpoints waiting for the user's decision; nothing is sent before approval. */
  approvals: {
    /** The bot's approvals, newest first, optionally only those with `status` (at most `limit`, default 50). */
    list(
      botId: string,
      options?: { status?: ToolApproval["status"]; limit?: number },
    ): Promise<ToolApproval[]>;
    /** Sends the call, then continues the conversation with its result. */
    approve(botId: string, approvalId: string): Promise<ApprovalOutcome>;
    /** Records the refusal, then continues the conversation: the model explains that nothing was sent. */
    deny(botId: string, approvalId: string, reason?: string): Promise<ApprovalOutcome>;
  };
  /** What bots remember about their users. */
  memories: {
    /** One page of what the bot remembers about the user, most recently updated first. */
    list(botId: string, userId: string, page?: PageOptions): Promise<Page<Memory>>;
    /** Forgets the memory, its earlier values included. Fails with `NOT_FOUND`. */
    delete(botId: string, memoryId: string): Promise<void>;
  };
  proposals: {
    /** The bot's skill proposals, newest first, optionally only those with `status` (at most `limit`, default 50). */
    list(botId: string, options?: { status?: ProposalStatus; limit?: number }): Promise<Proposal[]>;
    /** Creates the proposed skill. */
    accept(botId: string, proposalId: string): Promise<{ proposal: Proposal; skill: Skill | null }>;
    /** Declines the proposal; similar skills are not offered again for a while. */
    dismiss(botId: string, proposalId: string): Promise<Proposal>;
  };
  /**
   * Auto-learning (needs `search`): research an API's documentation, propose
   * a tool and skills, create them once approved and given the credential.
   * Progress goes out as `learning-progress` events. See docs/learning.md.
   */
  learning: {
    /**
     * Researches `topic` (search, read, analyse) and stores an integration
     * proposal; a vague topic returns a clarifying question instead. Fails with
     * `RESEARCH_FAILED` (nothing found or readable, the analysis did not
     * validate), `CONFLICT` (the tool exists) or the search provider's error.
     */
    start(input: {
      botId: string;
      userId: string;
      topic: string;
      signal?: AbortSignal;
    }): Promise<LearningStartResult>;
    /** A session (an integration proposal) by id. */
    get(botId: string, sessionId: string): Promise<LearningSession>;
    /** The bot's sessions, newest first. */
    list(botId: string, options?: { limit?: number }): Promise<LearningSession[]>;
    /**
     * Approves a proposed session: a tool without auth is created at once
     * with its skills; otherwise the session waits for `setCredential`.
     * Fails with `VALIDATION_FAILED` (a skill no longer passes validation) or
     * `CONFLICT`, creating nothing.
     */
    approve(botId: string, sessionId: string): Promise<LearningSession>;
    /** Declines a proposed session; nothing is created. */
    decline(botId: string, sessionId: string): Promise<LearningSession>;
    /**
     * Supplies the credential of an approved session: the tool is registered
     * with it (encrypted by the vault) and the skills are created. Credentials
     * go through here, never through chat (chat is stored).
     */
    setCredential(botId: string, sessionId: string, secret: string): Promise<LearningSession>;
  };
  /** What chat turns did (one trace per turn), thumbs up/down feedback, and retention. See docs/traces-and-evolution.md. */
  traces: KiloTraces;
  /**
   * Analyses the user's traces, detects repeated requests no skill serves,
   * drafts a Markdown skill per pattern with the LLM (task type
   * `skill_generation`), validates it and stores it as a draft (active with
   * `autoApply`). Progress goes out as `evolve-progress` events. Call it on
   * demand or on a schedule the host sets.
   */
  evolve(input: EvolveInput): Promise<EvolveResult>;
  /** LLM spend, read from the usage records the gateway writes for every call. */
  usage: {
    /** Totals (calls, tokens, cost in USD) of the user's calls, optionally for one bot and a `[from, to)` window. */
    summary(query: UsageQuery): Promise<UsageSummary>;
    /** The same totals split by model, by bot and by UTC day, the most expensive first. */
    breakdown(query: UsageQuery): Promise<UsageBreakdown>;
  };
  /** Typed events: `message-received`, `skill-matched`, `llm-call`, `memory-extracted`, `proposal-created`, `reply-sent`, `learning-progress`, `run-queued`, `run-started`, `run-completed`, `error`. */
  events: KiloEventEmitter;
  /** Registers a handler for errors raised in turns and in event listeners. Returns an unsubscribe function. */
  onError(handler: KiloEvents["error"]): () => void;
  components: KiloComponents;
  /**
   * Brings the storage schema up to date and returns the migrations applied.
   * SQL adapters migrate on first use by default; call this from a deploy step
   * when you turned that off.
   */
  migrate(): Promise<{ applied: string[] }>;
  /**
   * Releases what kilo opened: its cache (and the `cache` adapter's own
   * connections) and the storage adapter's own resources. Later calls fail
   * with `CLOSED`.
   */
  close(): Promise<void>;
}

const UsageQuerySchema = z.object({
  userId: IdSchema,
  botId: IdSchema.optional(),
  from: z.date().optional(),
  to: z.date().optional(),
});

const LearningStartSchema = z.object({
  botId: IdSchema,
  userId: IdSchema,
  topic: z.string().trim().min(2).max(200),
  signal: z.instanceof(AbortSignal).optional(),
});

const UpsertUserSchema = z.object({
  id: IdSchema,
  name: z.string().max(200).nullish(),
  metadata: z.record(z.string(), z.unknown()).optional(),
});

function resolve<T>(component: Component<T> | undefined, parts: KiloParts, fallback: () => T): T {
  if (component === undefined) return fallback();
  return typeof component === "function" ? (component as (parts: KiloParts) => T)(parts) : component;
}

const emptyTotals = (): UsageTotals => ({
  calls: 0,
  promptTokens: 0,
  completionTokens: 0,
  cacheReadTokens: 0,
  cacheWriteTokens: 0,
  reasoningTokens: 0,
  costUsd: 0,
});

function addUsage(totals: UsageTotals, record: UsageRecord): void {
  totals.calls += 1;
  totals.promptTokens += record.promptTokens;
  totals.completionTokens += record.completionTokens;
  totals.cacheReadTokens += record.cacheReadTokens;
  totals.cacheWriteTokens += record.cacheWriteTokens;
  totals.reasoningTokens += record.reasoningTokens;
  totals.costUsd += record.costUsd;
}

/**
 * A call's outcome as a workflow's `ctx.tool` returns it. An answer's content is `{ status, body }`
 * with the body as text (cut at the size limit); a failure's is its message. A JSON body comes
 * back parsed, other text as it came.
 */
function toolResult(outcome: ApiCallOutcome, approvalId: string | null): WorkflowToolResult {
  let body: unknown = outcome.content;
  if (outcome.audit.status === "succeeded") {
    body = parseJsonOr((parseJsonOr(outcome.content) as { body?: unknown } | null)?.body ?? null);
  }
  return {
    status: outcome.audit.status,
    httpStatus: outcome.audit.httpStatus,
    body: outcome.approval ? null : body,
    approvalId,
  };
}

/** `text` parsed as JSON, or `text` itself when it is not a string of JSON. */
function parseJsonOr(text: unknown): unknown {
  if (typeof text !== "string") return text;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/**
 * Creates a kilo instance: every component on the architecture diagram with
 * a default, each replaceable through `options`.
 *
 * @example
 * ```ts
 * import { createKilo } from "kilo";
 * import { memoryStorage } from "kilo/storage/memory";
 * import { mockProvider } from "kilo/testing";
 *
 * const kilo = createKilo({ storage: memoryStorage(), providers: [mockProvider({ replies: ["Hi!"] })] });
 * const bot = await kilo.bots.create({ userId: "u1", name: "Crumb" });
 * const { reply } = await kilo.chat({ botId: bot.id, userId: "u1", message: "Hello" });
 * ```
 */
export function createKilo(options: KiloOptions): Kilo {
  if (!options || typeof options !== "object" || !options.storage) {
    throw new KiloError(
      "CONFIGURATION_INVALID",
      "createKilo needs `storage`, e.g. `memoryStorage()` from 'kilo/storage/memory'",
    );
  }
  if (!options.gateway && (!options.providers || options.providers.length === 0)) {
    throw new KiloError(
      "CONFIGURATION_INVALID",
      "createKilo needs at least one LLM provider in `providers` (or your own `gateway`); for tests use `mockProvider()` from 'kilo/testing'",
    );
  }
  const storage = guardStorage(options.storage);
  const clock = options.clock ?? systemClock;
  const ids = options.ids ?? randomIds;
  // Contextual: lines logged inside a run also carry its run_id, workflow and conversation_key.
  const logger = contextualLogger(options.logger ?? silentLogger());
  const events: KiloEventEmitter = new EventEmitter<KiloEvents>();
  const emit = <E extends keyof KiloEvents>(name: E, payload: Parameters<KiloEvents[E]>[0]) =>
    safeEmit(events, name, payload, (error, failed) => {
      const wrapped = toKiloError(error, "HOST_CALLBACK_FAILED", `A '${failed}' event listener threw`);
      logger.error({ event: failed, error: wrapped }, "event listener failed");
      if (failed !== "error")
        safeEmit(events, "error", { error: wrapped, context: { event: failed } }, () => undefined);
    });

  const meter = createTurnMeter();
  const baseGateway =
    options.gateway ??
    createLlmGateway({
      providers: options.providers ?? [],
      routes: options.routes,
      taskSettings: options.taskSettings,
      prices: options.prices,
      // Inside a turn, usage is stored with the reply (one write); elsewhere at once.
      usage: async (record) => {
        if (!meter.hold(record)) await storage.usage.record(record);
      },
      clock,
      ids,
      logger,
      onCall: (event) => emit("llm-call", event),
    });
  const gateway = meter.wrap(baseGateway);
  const cache = createCacheLoader({ ...options.cacheOptions, storage, cache: options.cache, logger });
  const scopeAccess = new ScopeAccess({ storage, cache });
  const skills = new SkillService({
    storage,
    clock,
    ids,
    cache,
    access: scopeAccess,
    volume: options.volume,
    logger,
  });
  const memory = new MemoryService({ storage, clock, ids });
  const records = new SkillDataService({ storage, clock, ids });
  const parts: KiloParts = { storage, gateway, clock, ids, logger, cache, skills, memory, records };

  const matcher = resolve(options.matcher, parts, () => createSkillMatcher({ gateway }));
  const composer = resolve(options.composer, parts, () => createPromptComposer());
  const responseProcessor = resolve(options.responseProcessor, parts, () => createResponseProcessor());
  const memoryExtractor = resolve(options.memoryExtractor, parts, () => ruleMemoryExtractor());
  const memoryRetriever = resolve(options.memoryRetriever, parts, () => lexicalMemoryRetriever(storage));
  const proposer = resolve(options.proposer, parts, () =>
    createSkillProposer({ gateway, storage, skills, clock, ids, logger }),
  );
  const contextLoader = resolve(options.contextLoader, parts, () =>
    createContextLoader({ storage, retriever: memoryRetriever }),
  );
  const vault = options.vault ?? aesGcmVault();
  const executor =
    options.executor && "request" in options.executor
      ? options.executor
      : createHttpExecutor({ logger, ...(options.executor as HttpExecutorOptions | undefined) });
  const apiDeps = {
    storage,
    vault,
    executor,
    clock,
    ids,
    logger,
    // Another process may register tools; without a shared cache that is heard only after this long.
    registryTtlMs: storage.capabilities.crossProcess ? 5_000 : 60_000,
  };
  const caller = new ApiCaller(apiDeps);
  // A run requeued by a decision executes through the run service (created below, with the
  // orchestrator that decides approvals in turns).
  const approvalDecider = createApprovalDecider({
    storage,
    clock,
    caller,
    onRequeued: (run) => runs.requeued(run),
  });
  const apiTools = callApiTools(apiDeps, caller);
  const toolProviders = [
    skillDataTools(records),
    skillReadTools(),
    apiTools,
    ...(options.toolProviders ?? []),
  ];
  const contextRules = [...(options.contextRules ?? [])];
  const learningOptions = options.learning ?? {};
  // Pages are read with their own caps, under the same SSRF policy (and test allowlist) as call_api.
  const readerExecutor =
    learningOptions.executor && "request" in learningOptions.executor
      ? learningOptions.executor
      : !learningOptions.executor && options.executor && "request" in options.executor
        ? options.executor
        : createHttpExecutor({
            logger,
            ...(options.executor as HttpExecutorOptions | undefined),
            maxBytes: 1024 * 1024,
            timeoutMs: 10_000,
            ...(learningOptions.executor as HttpExecutorOptions | undefined),
          });
  const learning = new LearningService({
    ...learningOptions,
    storage,
    clock,
    ids,
    logger,
    emit,
    skills,
    search: options.search,
    reader: createPageReader({ executor: readerExecutor, maxChars: learningOptions.maxPageChars }),
    analyzer: learningOptions.analyzer ?? createDocAnalyzer({ gateway }),
    createTool: (botId, input) => kilo.tools.create(botId, input),
    deleteTool: (botId, toolId) => kilo.tools.delete(botId, toolId),
  });
  const learner = resolve(options.learner, parts, () => learning);
  const workspace =
    options.workspace === undefined
      ? undefined
      : createWorkspace(
          typeof options.workspace === "string" ? { dir: options.workspace } : options.workspace,
          {
            logger,
            onProblem: (error, problem) => emit("error", { error, context: { workspaceFile: problem.path } }),
          },
        );
  const orchestrator = resolve(options.orchestrator, parts, () =>
    createOrchestrator({
      storage,
      clock,
      ids,
      logger,
      emit,
      meter,
      cache,
      skills,
      matcher,
      contextLoader,
      composer,
      gateway,
      toolProviders,
      responseProcessor,
      memoryExtractor,
      memory,
      proposer,
      learner,
      approvals: approvalDecider,
      maxToolSteps: options.maxToolSteps ?? 8,
      contextRules: () => contextRules,
      workspace: workspace && (() => workspace.prompt()),
    }),
  );

  // --- runs ---
  // Every turn is a run: `chat` and `stream` store a `message` run and wait for it.
  /** A workflow's `ctx.tool`: one call of the bot's registered API tools, as a turn's call_api makes it. */
  async function workflowTool(request: WorkflowToolRequest): Promise<WorkflowToolResult> {
    const { run } = request;
    const bot = await cache.bot(run.botId);
    if (!bot) throw new KiloError("NOT_FOUND", `There is no bot '${run.botId}'`);
    if (request.approvalId !== undefined) return decidedWorkflowTool(bot, request.approvalId);
    const input = { tool: request.tool, endpoint: request.endpoint, params: request.params };
    const resolved = resolveCall(await storage.tools.listByBot(bot.id), input);
    // Path parameters are checked before anything is sent, as for the model's calls.
    buildUrl(resolved);
    const context = {
      bot,
      userId: run.userId,
      conversationId: run.conversationId ?? conversationIdFor(bot.id, run.conversationKey),
      matchedSkill: null,
      skills: [],
      runId: run.id,
      idempotencyKey: request.idempotencyKey,
    };
    const outcome = resolved.endpoint.risky
      ? await caller.requestApproval(
          context,
          { type: "tool_call", id: request.idempotencyKey, name: "call_api", input },
          resolved,
        )
      : await caller.send(context, resolved, { idempotencyKey: request.idempotencyKey });
    return toolResult(outcome, outcome.approval?.id ?? null);
  }

  /**
   * A workflow's `ctx.tool` call that waited for an approval, made again as the run resumes: sent
   * now when approved (once decided, under the approval's id as the Idempotency-Key, as a turn's
   * approved call is), recorded as refused when denied, still waiting while pending.
   */
  async function decidedWorkflowTool(bot: Bot, approvalId: string): Promise<WorkflowToolResult> {
    const approval = await storage.approvals.get(bot.id, approvalId);
    if (!approval) throw new KiloError("NOT_FOUND", `Bot '${bot.id}' has no approval '${approvalId}'`);
    const waiting = { httpStatus: null, approvalId: approval.id };
    if (approval.status === "pending") return { status: "awaiting_approval", body: null, ...waiting };
    const context = { bot, userId: approval.userId, conversationId: approval.conversationId };
    if (approval.status === "denied") {
      await caller.denied(context, approval);
      return { status: "denied", body: approval.reason, ...waiting };
    }
    const tool = await storage.tools.get(bot.id, approval.toolId);
    if (!tool) {
      const message = `Bot '${bot.id}' has no tool '${approval.toolId}' any more`;
      return { status: "failed", body: message, ...waiting };
    }
    const resolved = resolveCall([tool], {
      tool: tool.name,
      endpoint: approval.endpoint,
      params: approval.input,
    });
    return toolResult(await caller.send(context, resolved, { idempotencyKey: approval.id }), approval.id);
  }

  const runs = createRunService({
    callTool: workflowTool,
    loadBot: (botId) => cache.bot(botId),
    storage,
    orchestrator,
    clock,
    ids,
    logger,
    emit,
    workflows: options.workflows,
    overlayWorkflows: workspace && (() => workspace.workflows()),
    ...options.runs,
  });
  // --- end runs ---

  async function getBot(botId: string): Promise<Bot> {
    const bot = await cache.bot(parseInput(IdSchema, botId, "bot id"));
    if (!bot) throw new KiloError("NOT_FOUND", `No bot '${botId}'`);
    return bot;
  }

  async function getProposal(botId: string, proposalId: string): Promise<Proposal> {
    const proposal = await storage.proposals.get(botId, parseInput(IdSchema, proposalId, "proposal id"));
    if (!proposal) throw new KiloError("NOT_FOUND", `Bot '${botId}' has no proposal '${proposalId}'`);
    return proposal;
  }

  async function usageRecords(query: UsageQuery): Promise<UsageRecord[]> {
    const filter = parseInput(UsageQuerySchema, query, "usage query");
    return allPages((cursor) => storage.usage.list(filter, { limit: 500, cursor }));
  }

  async function getTool(botId: string, toolId: string): Promise<Tool> {
    const tool = await storage.tools.get(botId, parseInput(IdSchema, toolId, "tool id"));
    if (!tool) throw new KiloError("NOT_FOUND", `Bot '${botId}' has no tool '${toolId}'`);
    return tool;
  }

  async function decideApproval(
    botId: string,
    approvalId: string,
    decision: "approved" | "denied",
    reason: string | null,
  ): Promise<ApprovalOutcome> {
    const bot = await getBot(botId);
    const decided = await approvalDecider.decide(
      bot,
      parseInput(IdSchema, approvalId, "approval id"),
      decision,
      reason,
    );
    const { approval } = decided;
    // A workflow stopped at this call resumes with the decision: its own run goes on, no turn.
    if (decided.resumes) return { approval, result: null, turn: null, run: decided.run };
    // The continuation is a run in the lane of the run that asked (its conversation key), after
    // whatever that lane has queued meanwhile; an approval asked outside a run uses the
    // conversation's own lane.
    const turn = await runs.turn(
      {
        botId: bot.id,
        userId: approval.userId,
        conversationId: approval.conversationId,
        message: `${decision === "approved" ? "Approved" : "Denied"}: ${decided.label}`,
        channel: "approval",
        context: [decided.note],
      },
      undefined,
      decided.run ? { conversationKey: decided.run.conversationKey } : {},
    );
    return { approval, result: decided.result, turn, run: decided.run };
  }

  const traceApi = createTraceApi(storage, clock, options.traces);
  const evolution = new SkillEvolution({
    storage,
    skills,
    gateway,
    matcher,
    composer,
    clock,
    logger,
    emit: (event) => emit("evolve-progress", event),
    loadBot: (botId) => cache.bot(botId),
  });

  const kilo: Kilo = {
    traces: traceApi,
    evolve: (input) => evolution.evolve(input),
    chat: (input) => runs.turn(input),
    runs: {
      ingest: runs.ingest,
      get: runs.get,
      steps: runs.steps,
      wait: runs.wait,
      start: runs.start,
      register: runs.register,
      prune: runs.prune,
      async list(botId, conversationKey, listOptions = {}) {
        const { limit, afterSeq } = parseInput(RunListOptionsSchema, listOptions, "run list options");
        const key = parseInput(RunSchema.shape.conversationKey, conversationKey, "conversation key");
        return storage.runs.listByConversation((await getBot(botId)).id, key, { limit, afterSeq });
      },
      async recent(botId, page = {}) {
        const { limit, cursor } = parseInput(PageOptionsSchema, page, "page options");
        const bot = await getBot(botId);
        if (!storage.runs.listByBot) {
          throw new KiloError(
            "CONFIGURATION_INVALID",
            `Storage adapter '${storage.name}' cannot list a bot's runs (it has no runs.listByBot); list them by conversation key`,
          );
        }
        return storage.runs.listByBot(bot.id, { limit, cursor: cursor ?? null });
      },
    },
    stream: (input) => streamTurn(runs, input),
    users: {
      async upsert(input) {
        const parsed = parseInput(UpsertUserSchema, input, "user");
        return storage.users.upsert({
          id: parsed.id,
          name: parsed.name ?? null,
          metadata: parsed.metadata ?? {},
          createdAt: clock.now(),
        });
      },
      async get(userId) {
        const user = await storage.users.get(parseInput(IdSchema, userId, "user id"));
        if (!user) throw new KiloError("NOT_FOUND", `No user '${userId}'`);
        return user;
      },
    },
    bots: {
      async create(input) {
        const parsed = parseInput(CreateBotInputSchema, input, "bot");
        // A bot joins only a team its owner is a member of: the team's skills are the members'.
        if (parsed.teamId)
          await scopeAccess.assertTeamMember(parsed.userId, parsed.teamId, "put a bot in the team");
        const now = clock.now();
        const bot = await storage.transaction(async (tx) => {
          await tx.users.upsert({ id: parsed.userId, name: null, metadata: {}, createdAt: now });
          return tx.bots.create({
            id: parsed.id ?? ids.next("bot"),
            userId: parsed.userId,
            name: parsed.name,
            soul: parsed.soul ?? null,
            personality: parsed.personality ?? null,
            context: parsed.context ?? null,
            metadata: parsed.metadata ?? {},
            ...(parsed.teamId ? { teamId: parsed.teamId } : {}),
            createdAt: now,
            updatedAt: now,
          });
        });
        // A host may reuse the id of a bot deleted behind kilo's back.
        await cache.invalidateBot(bot.id, { skills: true });
        return bot;
      },
      get: getBot,
      listByUser: (userId, page = {}) =>
        storage.bots.listByUser(
          parseInput(IdSchema, userId, "user id"),
          parseInput(PageOptionsSchema, page, "page options"),
        ),
      async update(botId, patch) {
        const parsed = parseInput(UpdateBotInputSchema, patch, "bot update");
        // The base of an update is read from storage: a cached copy may miss another process's change.
        const bot = await storage.bots.get(parseInput(IdSchema, botId, "bot id"));
        if (!bot) throw new KiloError("NOT_FOUND", `No bot '${botId}'`);
        const changes = Object.fromEntries(Object.entries(parsed).filter(([, value]) => value !== undefined));
        if (parsed.teamId)
          await scopeAccess.assertTeamMember(bot.userId, parsed.teamId, "put a bot in the team");
        const merged: Bot = { ...bot, ...changes, updatedAt: clock.now() };
        // Out of its team, a bot has no `teamId` (as a bot created without one).
        const updated = await storage.bots.update(merged.teamId === null ? withoutTeam(merged) : merged);
        await cache.invalidateBot(bot.id);
        if (!updated) throw new KiloError("NOT_FOUND", `No bot '${botId}'`);
        return updated;
      },
      async delete(botId) {
        const deleted = await storage.bots.delete(parseInput(IdSchema, botId, "bot id"));
        await cache.invalidateBot(botId, { skills: true });
        if (!deleted) throw new KiloError("NOT_FOUND", `No bot '${botId}'`);
      },
    },
    skills: createSkillApi(
      skills,
      createSkillPromotionApi({ storage, clock, ids, skills, access: scopeAccess }),
    ),
    teams: createTeamApi({ storage, clock, ids, cache, access: scopeAccess }),
    records: {
      create: async (botId, skillId, data) =>
        records.create(await skills.visible(botId, skillId), data, botId),
      async list(botId, skillId, filter = {}, page = {}) {
        const skill = await skills.visible(botId, skillId);
        return storage.skillRecords.query(
          botId,
          skill.id,
          parseInput(RecordFilterSchema, filter, "record filter"),
          parseInput(PageOptionsSchema, page, "page options"),
        );
      },
      update: async (botId, skillId, recordId, changes) =>
        records.update(
          await skills.visible(botId, skillId),
          parseInput(IdSchema, recordId, "record id"),
          changes,
          botId,
        ),
      delete: async (botId, skillId, recordId) =>
        records.delete(
          await skills.visible(botId, skillId),
          parseInput(IdSchema, recordId, "record id"),
          botId,
        ),
    },
    conversations: {
      list: async (botId, page = {}) =>
        storage.conversations.listByBot(
          (await getBot(botId)).id,
          parseInput(PageOptionsSchema, page, "page options"),
        ),
      async messages(botId, conversationId, messageOptions = {}) {
        const parsed = parseInput(
          z.object({
            limit: z.number().int().min(1).max(500).default(50),
            beforeSeq: z.number().int().min(0).optional(),
          }),
          messageOptions,
          "message list options",
        );
        const conversation = await storage.conversations.get(
          botId,
          parseInput(IdSchema, conversationId, "conversation id"),
        );
        if (!conversation)
          throw new KiloError("NOT_FOUND", `Bot '${botId}' has no conversation '${conversationId}'`);
        return storage.messages.listRecent(botId, conversation.id, parsed);
      },
    },
    tools: {
      async create(botId, input) {
        const parsed = parseInput(CreateToolInputSchema, input, "tool");
        const bot = await getBot(botId);
        const id = parsed.id ?? ids.next("tool");
        const now = clock.now();
        const credential =
          parsed.secret === undefined ? null : await vault.encrypt(parsed.secret, { toolId: id });
        const { secret: _secret, ...fields } = parsed;
        const tool = await storage.tools.create({
          ...fields,
          id,
          botId: bot.id,
          credential,
          createdAt: now,
          updatedAt: now,
        });
        apiTools.invalidate(bot.id);
        return redactTool(tool);
      },
      get: async (botId, toolId) => redactTool(await getTool(botId, toolId)),
      list: async (botId) => (await storage.tools.listByBot((await getBot(botId)).id)).map(redactTool),
      async update(botId, toolId, patch) {
        const parsed = parseInput(UpdateToolInputSchema, patch, "tool update");
        const existing = await getTool(botId, toolId);
        const { secret, ...fields } = parsed;
        // Switching to auth "none" drops the stored secret: it would never be used again.
        const credential =
          fields.auth?.type === "none"
            ? null
            : secret === undefined
              ? existing.credential
              : secret === null
                ? null
                : await vault.encrypt(secret, { toolId: existing.id });
        const changes = Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined));
        const updated = await storage.tools.update(
          ToolSchema.parse({ ...existing, ...changes, credential, updatedAt: clock.now() }),
        );
        if (!updated) throw new KiloError("NOT_FOUND", `Bot '${botId}' has no tool '${toolId}'`);
        apiTools.invalidate(existing.botId);
        return redactTool(updated);
      },
      async delete(botId, toolId) {
        const deleted = await storage.tools.delete(botId, parseInput(IdSchema, toolId, "tool id"));
        apiTools.invalidate(botId);
        if (!deleted) throw new KiloError("NOT_FOUND", `Bot '${botId}' has no tool '${toolId}'`);
      },
      audit: async (botId, page = {}) =>
        storage.toolAudit.list((await getBot(botId)).id, parseInput(PageOptionsSchema, page, "page options")),
      async rotateCredentials(botId) {
        let rotated = 0;
        for (const tool of await storage.tools.listByBot((await getBot(botId)).id)) {
          if (!tool.credential) continue;
          if (vault.needsRotation && !vault.needsRotation(tool.credential)) continue;
          const context = { toolId: tool.id };
          const credential = vault.reencrypt
            ? await vault.reencrypt(tool.credential, context)
            : await vault.encrypt(await vault.decrypt(tool.credential, context), context);
          await storage.tools.update({ ...tool, credential, updatedAt: clock.now() });
          rotated += 1;
        }
        apiTools.invalidate(botId);
        return { rotated };
      },
    },
    approvals: {
      async list(botId, listOptions = {}) {
        const parsed = parseInput(
          z.object({
            status: ToolApprovalStatusSchema.optional(),
            limit: z.number().int().min(1).max(500).default(50),
          }),
          listOptions,
          "approval list options",
        );
        return storage.approvals.listByBot((await getBot(botId)).id, parsed);
      },
      approve: (botId, approvalId) => decideApproval(botId, approvalId, "approved", null),
      deny: (botId, approvalId, reason) =>
        decideApproval(
          botId,
          approvalId,
          "denied",
          reason === undefined ? null : parseInput(z.string().max(1000), reason, "reason"),
        ),
    },
    memories: {
      list: (botId, userId, page) =>
        memory.list(parseInput(IdSchema, botId, "bot id"), parseInput(IdSchema, userId, "user id"), page),
      delete: (botId, memoryId) => memory.delete(botId, parseInput(IdSchema, memoryId, "memory id")),
    },
    proposals: {
      async list(botId, listOptions = {}) {
        const parsed = parseInput(
          z.object({
            status: ProposalStatusSchema.optional(),
            limit: z.number().int().min(1).max(500).default(50),
          }),
          listOptions,
          "proposal list options",
        );
        return storage.proposals.listByBot((await getBot(botId)).id, parsed);
      },
      async accept(botId, proposalId) {
        const outcome = await acceptProposal(
          { storage, skills, clock },
          botId,
          await getProposal(botId, proposalId),
        );
        return { proposal: outcome.proposal, skill: outcome.skill };
      },
      async dismiss(botId, proposalId) {
        return (await dismissProposal({ storage, skills, clock }, await getProposal(botId, proposalId)))
          .proposal;
      },
    },
    learning: {
      async start(input) {
        const parsed = parseInput(LearningStartSchema, input, "learning start");
        const bot = await getBot(parsed.botId);
        if (bot.userId !== parsed.userId)
          throw new KiloError("NOT_FOUND", `User '${parsed.userId}' has no bot '${parsed.botId}'`);
        return learning.start(bot, parsed.userId, parsed.topic, parsed.signal);
      },
      get: async (botId, sessionId) =>
        learning.get((await getBot(botId)).id, parseInput(IdSchema, sessionId, "learning session id")),
      async list(botId, listOptions = {}) {
        const { limit } = parseInput(
          z.object({ limit: z.number().int().min(1).max(100).default(20) }),
          listOptions,
          "learning list options",
        );
        return learning.list((await getBot(botId)).id, limit);
      },
      approve: async (botId, sessionId) =>
        (await learning.approve(await getBot(botId), parseInput(IdSchema, sessionId, "learning session id")))
          .session,
      decline: async (botId, sessionId) =>
        (
          await learning.decline(
            (
              await getBot(botId)
            ).id,
            parseInput(IdSchema, sessionId, "learning session id"),
          )
        ).session,
      setCredential: async (botId, sessionId, secret) =>
        learning.setCredential(
          await getBot(botId),
          parseInput(IdSchema, sessionId, "learning session id"),
          secret,
        ),
    },
    usage: {
      async summary(query) {
        const totals = emptyTotals();
        for (const record of await usageRecords(query)) addUsage(totals, record);
        return {
          ...totals,
          userId: query.userId,
          botId: query.botId ?? null,
          from: query.from ?? null,
          to: query.to ?? null,
        };
      },
      async breakdown(query) {
        const byModel = new Map<string, UsageTotals>();
        const byBot = new Map<string | null, UsageTotals>();
        const byDay = new Map<string, UsageTotals>();
        const bucket = <K>(map: Map<K, UsageTotals>, key: K) => {
          let totals = map.get(key);
          if (!totals) {
            totals = emptyTotals();
            map.set(key, totals);
          }
          return totals;
        };
        for (const record of await usageRecords(query)) {
          addUsage(bucket(byModel, record.model), record);
          addUsage(bucket(byBot, record.botId), record);
          addUsage(bucket(byDay, record.createdAt.toISOString().slice(0, 10)), record);
        }
        return {
          byModel: [...byModel]
            .map(([model, totals]) => ({ model, ...totals }))
            .sort((a, b) => b.costUsd - a.costUsd),
          byBot: [...byBot]
            .map(([botId, totals]) => ({ botId, ...totals }))
            .sort((a, b) => b.costUsd - a.costUsd),
          byDay: [...byDay]
            .map(([day, totals]) => ({ day, ...totals }))
            .sort((a, b) => a.day.localeCompare(b.day)),
        };
      },
    },
    events,
    onError(handler) {
      events.on("error", handler);
      return () => events.off("error", handler);
    },
    components: {
      orchestrator,
      matcher,
      composer,
      gateway: baseGateway,
      responseProcessor,
      memoryExtractor,
      memoryRetriever,
      proposer,
      learner,
      contextLoader,
      toolProviders,
    },
    migrate: () => storage.migrate(),
    async close() {
      try {
        await runs.close();
        await cache.close();
        await options.volume?.close?.();
      } finally {
        await storage.close();
      }
    },
  };
  return kilo;
}

async function* streamTurn(runs: RunService, input: TurnInput): AsyncGenerator<TurnStreamEvent> {
  const queue: TurnStreamEvent[] = [];
  let wake: (() => void) | null = null;
  let finished = false;
  let failure: { error: unknown } | null = null;
  const push = (event: TurnStreamEvent) => {
    queue.push(event);
    wake?.();
  };
  runs
    .turn(input, { onEvent: push })
    .then(
      (result) => push({ type: "result", result }),
      (error: unknown) => {
        failure = { error };
      },
    )
    .finally(() => {
      finished = true;
      wake?.();
    });
  while (true) {
    const next = queue.shift();
    if (next) {
      yield next;
      continue;
    }
    if (finished) {
      if (failure) throw (failure as { error: unknown }).error;
      return;
    }
    await new Promise<void>((resolve) => {
      wake = () => {
        wake = null;
        resolve();
      };
    });
  }
}

const RecordFilterSchema = z
  .object({
    equals: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
    contains: z.record(z.string(), z.string()).optional(),
  })
  .strict();
