import type { Bot } from "../domain/bot.js";
import type { Page } from "../domain/common.js";
import type { Conversation, Message, NewMessage } from "../domain/conversation.js";
import type { Memory } from "../domain/memory.js";
import type { Proposal, ProposalStatus } from "../domain/proposal.js";
import type { NewRun, Run } from "../domain/run.js";
import type { RunStep } from "../domain/run-step.js";
import type { SkillOwner, SkillScope } from "../domain/scope.js";
import type { Skill, SkillRecord } from "../domain/skill.js";
import type { SkillPromotion, SkillPromotionStatus } from "../domain/skill-promotion.js";
import type { SkillVersion } from "../domain/skill-version.js";
import type { Team, TeamMember } from "../domain/team.js";
import type { Tool, ToolApproval, ToolApprovalStatus, ToolCallAudit } from "../domain/tool.js";
import type { Trace, TraceFeedback } from "../domain/trace.js";
import type { UsageRecord } from "../domain/usage.js";
import type { User } from "../domain/user.js";

/**
 * Paging options as storage receives them: already validated by the core.
 * `cursor` is whatever the adapter returned as `nextCursor` for the previous page.
 */
export interface StoragePageOptions {
  limit: number;
  cursor?: string | null | undefined;
}

/** Users. */
export interface UserRepository {
  /** Inserts the user, or returns the existing one with that id unchanged. */
  upsert(user: User): Promise<User>;
  /** The user with this id, or `null` when none was stored. */
  get(userId: string): Promise<User | null>;
}

/**
 * Bots. Every bot belongs to one user, and may belong to one team
 * (`teamId`). A bot without a team reads back without `teamId` (or with
 * `null`); the core treats both alike.
 */
export interface BotRepository {
  /**
   * Inserts a bot. Throws `CONFLICT` when the id is taken, and `NOT_FOUND`
   * when `teamId` names a team that does not exist (adapters with `teams`).
   */
  create(bot: Bot): Promise<Bot>;
  /** The bot with this id, whoever owns it, or `null`; the core checks ownership. */
  get(botId: string): Promise<Bot | null>;
  /** The user's bots, oldest first. */
  listByUser(userId: string, page: StoragePageOptions): Promise<Page<Bot>>;
  /**
   * Replaces the stored bot with `bot` (same id). Returns `null` when it does
   * not exist; throws `NOT_FOUND` when `teamId` names a team that does not exist.
   */
  update(bot: Bot): Promise<Bot | null>;
  /**
   * Deletes the bot and everything that belongs to it: its own skills, skill
   * records (also those it kept under skills of shared scopes),
   * conversations, messages, memories, proposals, usage records, tools, tool
   * call audit entries, tool approvals, runs and their steps, skill versions.
   * Returns `false` when there was no such bot.
   */
  delete(botId: string): Promise<boolean>;
}

/**
 * Skills, each in one scope (`skill.scope`, see {@link SkillScope}): a bot's
 * own skills, a user's, a team's or the system's. Every method names the
 * scope (a {@link SkillOwner}: a bot id names that bot's own skills); a skill
 * of another scope is invisible through it. Skill ids are unique across
 * scopes; names are unique within a scope (case-insensitive) and may repeat
 * across scopes (the core resolves which one a bot sees).
 *
 * Adapters written before scopes store bot skills only. An adapter that
 * implements {@link listByScopes} declares that it stores skills of every
 * scope: it must then accept a {@link SkillScope} wherever a
 * {@link SkillOwner} is taken. Without it, `kilo.skills` refuses other
 * scopes with `CONFIGURATION_INVALID` and bots see only their own skills.
 *
 * @example
 * ```ts
 * const team = { kind: "team", id: "bakers" } as const;
 * await storage.skills.create({ ...skill, botId: null, scope: team });
 * const seen = await storage.skills.listByScopes!([{ kind: "system" }, team, { kind: "bot", id: botId }]);
 * ```
 */
export interface SkillRepository {
  /**
   * Inserts a skill in its scope. Throws `CONFLICT` when the id is taken or
   * the scope already has a skill of that name (case-insensitive), and
   * `NOT_FOUND` when the bot of a bot skill, or the team of a team skill, does
   * not exist. `botId` is the scope's bot for a bot skill and `null` otherwise.
   */
  create(skill: Skill): Promise<Skill>;
  /** The skill with this id in the owner's scope, or `null` (also when it lives in another scope). */
  get(owner: SkillOwner, skillId: string): Promise<Skill | null>;
  /** All the bot's own skills, oldest first. Bots have at most a few thousand skills, so this is not paged. */
  listByBot(botId: string): Promise<Skill[]>;
  /**
   * Optional (see above): every skill of these scopes in one round trip, in
   * the order the scopes are given, each scope's oldest first. Scopes
   * without skills contribute nothing.
   */
  listByScopes?(scopes: readonly SkillScope[]): Promise<Skill[]>;
  /**
   * Replaces the stored skill (same id and scope). Throws `CONFLICT` on a
   * name clash within the scope. Returns `null` when the scope has no such skill.
   */
  update(skill: Skill): Promise<Skill | null>;
  /**
   * Deletes the skill with its versions and its records (every bot's, for a
   * skill of a shared scope). Returns `false` when the scope had no such skill.
   */
  delete(owner: SkillOwner, skillId: string): Promise<boolean>;
}

/** A filter over a skill's records: every condition must hold. */
export interface SkillRecordFilter {
  /** Field equals value. Strings compare case-insensitively. */
  equals?: Record<string, string | number | boolean>;
  /** Field (a string) contains the text, case-insensitively. */
  contains?: Record<string, string>;
}

/** Paging options of {@link SkillRecordRepository.query}. */
export interface SkillRecordQueryOptions extends StoragePageOptions {
  /** Newest first (descending creation order) instead of oldest first. */
  newestFirst?: boolean | undefined;
}

/**
 * Stored data of skills. Every method names the bot and the skill: records
 * are kept per bot, also under a skill of a shared scope (each bot of a team
 * keeps its own orders under the team's Order Tracker).
 */
export interface SkillRecordRepository {
  /**
   * Inserts a record (already validated against the skill's fields by the
   * core, which also checks that the bot sees the skill). Throws `CONFLICT`
   * when the id is taken and `NOT_FOUND` when the bot or the skill does not
   * exist, or the skill is another bot's own skill.
   */
  create(record: SkillRecord): Promise<SkillRecord>;
  /** The record, or `null` when the bot's skill has no record with this id. */
  get(botId: string, skillId: string, recordId: string): Promise<SkillRecord | null>;
  /** Records matching the filter, oldest first (newest first with `newestFirst`). */
  query(
    botId: string,
    skillId: string,
    filter: SkillRecordFilter,
    page: SkillRecordQueryOptions,
  ): Promise<Page<SkillRecord>>;
  /** Replaces the stored record (same ids). Returns `null` when missing. */
  update(record: SkillRecord): Promise<SkillRecord | null>;
  /** Deletes the record. Returns `false` when the bot's skill had no such record. */
  delete(botId: string, skillId: string, recordId: string): Promise<boolean>;
}

/** Conversations. */
export interface ConversationRepository {
  /** Inserts a conversation. Throws `CONFLICT` when the id is taken and `NOT_FOUND` when the bot does not exist. */
  create(conversation: Conversation): Promise<Conversation>;
  /** The bot's conversation with this id, or `null` (also when it belongs to another bot). */
  get(botId: string, conversationId: string): Promise<Conversation | null>;
  /** The bot's conversations, most recently updated first. */
  listByBot(botId: string, page: StoragePageOptions): Promise<Page<Conversation>>;
  /** Sets `updatedAt` (and nothing else). */
  touch(botId: string, conversationId: string, at: Date): Promise<void>;
}

/** Messages of conversations. */
export interface MessageRepository {
  /**
   * Appends a message and assigns its `seq`: strictly greater than every
   * earlier message of the conversation, also under concurrent appends.
   * Throws `NOT_FOUND` when the bot has no conversation with that id.
   */
  append(message: NewMessage): Promise<Message>;
  /**
   * The last `limit` messages of the conversation in chronological order
   * (ascending `seq`). With `beforeSeq`, only messages with a smaller seq.
   */
  listRecent(
    botId: string,
    conversationId: string,
    options: { limit: number; beforeSeq?: number },
  ): Promise<Message[]>;
}

/** Facts remembered per bot and user. */
export interface MemoryRepository {
  /**
   * Inserts a memory. Throws `CONFLICT` when the id is taken and `NOT_FOUND` when the bot does
   * not exist; the core looks up `findByKey` first and updates instead of inserting a second fact.
   */
  create(memory: Memory): Promise<Memory>;
  /** The bot's memory with this id, or `null`. */
  get(botId: string, memoryId: string): Promise<Memory | null>;
  /** The memory with this key for this bot and user, if any (keys compare case-insensitively). */
  findByKey(botId: string, userId: string, key: string): Promise<Memory | null>;
  /** The bot's memories about the user, most recently updated first. */
  list(botId: string, userId: string, page: StoragePageOptions): Promise<Page<Memory>>;
  /** Replaces the stored memory (same id). Returns `null` when missing. */
  update(memory: Memory): Promise<Memory | null>;
  /** Forgets the memory, history included. Returns `false` when the bot had no such memory. */
  delete(botId: string, memoryId: string): Promise<boolean>;
}

/** A filter over usage records. `userId` is required: usage is always read per owner. */
export interface UsageFilter {
  userId: string;
  botId?: string | undefined;
  /** Inclusive lower bound on `createdAt`. */
  from?: Date | undefined;
  /** Exclusive upper bound on `createdAt`. */
  to?: Date | undefined;
}

/** LLM usage records. */
export interface UsageRepository {
  /** Appends one usage record (records are never changed). Throws `CONFLICT` when the id is taken. */
  record(usage: UsageRecord): Promise<UsageRecord>;
  /** Records matching the filter, oldest first. */
  list(filter: UsageFilter, page: StoragePageOptions): Promise<Page<UsageRecord>>;
}

/** Skill proposals. */
export interface ProposalRepository {
  /** Inserts a proposal. Throws `CONFLICT` when the id is taken and `NOT_FOUND` when the bot does not exist. */
  create(proposal: Proposal): Promise<Proposal>;
  /** The bot's proposal with this id, or `null`. */
  get(botId: string, proposalId: string): Promise<Proposal | null>;
  /** The bot's proposals, newest first, optionally only those with the given status. */
  listByBot(botId: string, options: { status?: ProposalStatus; limit: number }): Promise<Proposal[]>;
  /** Replaces the stored proposal (same id). Returns `null` when missing. */
  update(proposal: Proposal): Promise<Proposal | null>;
}

/**
 * Tools (integrations) of a bot. Every method names the bot; a tool of another
 * bot is invisible. Stored as given: `credential` is the vault's ciphertext,
 * which the adapter keeps opaque (never decrypts, logs or indexes it).
 *
 * @example
 * ```ts
 * const stripe = await storage.tools.findByName(botId, "stripe");
 * ```
 */
export interface ToolRepository {
  /**
   * Inserts a tool. Throws `CONFLICT` when the id is taken or the bot already
   * has a tool of that name (compared case-insensitively), and `NOT_FOUND`
   * when the bot does not exist.
   */
  create(tool: Tool): Promise<Tool>;
  /** The bot's tool with this id, or `null`. */
  get(botId: string, toolId: string): Promise<Tool | null>;
  /** The bot's tool with this name, compared case-insensitively, or `null`. */
  findByName(botId: string, name: string): Promise<Tool | null>;
  /** All the bot's tools, oldest first. Bots have few tools, so this is not paged. */
  listByBot(botId: string): Promise<Tool[]>;
  /**
   * Replaces the stored tool (same id and bot) with `tool`, credential
   * included. Throws `CONFLICT` when the new name clashes with another tool of
   * the bot (changing the case of its own name does not). Returns `null` when
   * the bot has no such tool.
   */
  update(tool: Tool): Promise<Tool | null>;
  /**
   * Deletes the tool. Its audit entries and approvals stay (they record what
   * happened). Returns `false` when the bot had no such tool.
   */
  delete(botId: string, toolId: string): Promise<boolean>;
}

/**
 * The audit log of tool calls, per bot. Append-only: entries are never
 * changed, and go only with their bot.
 *
 * @example
 * ```ts
 * const first = await storage.toolAudit.list(botId, { limit: 50 });
 * const next = await storage.toolAudit.list(botId, { limit: 50, cursor: first.nextCursor });
 * ```
 */
export interface ToolAuditRepository {
  /** Appends an entry. Throws `CONFLICT` when the id is taken, `NOT_FOUND` when the bot does not exist. */
  record(entry: ToolCallAudit): Promise<ToolCallAudit>;
  /**
   * The bot's entries, newest first (descending `createdAt`), paged with
   * cursors: a walk stays complete while new calls are recorded.
   */
  list(botId: string, page: StoragePageOptions): Promise<Page<ToolCallAudit>>;
}

/** How an approval was decided; see {@link ToolApprovalRepository.decide}. */
export interface ToolApprovalDecision {
  status: Exclude<ToolApprovalStatus, "pending">;
  reason: string | null;
  decidedAt: Date;
}

/**
 * Approvals that risky tool calls wait for. Every method names the bot; an
 * approval of another bot is invisible (and cannot be decided through it).
 *
 * @example
 * ```ts
 * const decided = await storage.approvals.decide(botId, approvalId, {
 *   status: "approved",
 *   reason: null,
 *   decidedAt: new Date(),
 * });
 * ```
 */
export interface ToolApprovalRepository {
  /** Inserts an approval. Throws `CONFLICT` when the id is taken, `NOT_FOUND` when the bot does not exist. */
  create(approval: ToolApproval): Promise<ToolApproval>;
  /** The bot's approval with this id, or `null`. */
  get(botId: string, approvalId: string): Promise<ToolApproval | null>;
  /** The bot's approvals, newest first, optionally only those with the given status, at most `limit`. */
  listByBot(botId: string, options: { status?: ToolApprovalStatus; limit: number }): Promise<ToolApproval[]>;
  /** Replaces the stored approval (same id and bot). Returns `null` when missing. */
  update(approval: ToolApproval): Promise<ToolApproval | null>;
  /**
   * Decides a pending approval atomically: sets `status`, `reason` and
   * `decidedAt` only if it is still `pending`, so two racing decisions (two
   * approve clicks, approve against deny) cannot both win and a risky call is
   * never sent twice. Returns the decided approval; `null` when the bot has
   * no such approval; throws `CONFLICT` when it was already decided.
   */
  decide(botId: string, approvalId: string, decision: ToolApprovalDecision): Promise<ToolApproval | null>;
}

/**
 * Runs: one per ingested inbound event. Ids are global (`kilo.runs.get(runId)`
 * needs no bot), every other read names the bot, and runs go with their bot.
 * `seq` orders the runs of one (bot, conversation key) as they were ingested.
 *
 * @example
 * ```ts
 * const run = await storage.runs.create({ ...newRun, status: "queued" });
 * const again = await storage.runs.findByDelivery(run.botId, "telegram:90210");
 * ```
 */
export interface RunRepository {
  /**
   * Inserts a run and assigns its `seq`: strictly greater than that of every
   * earlier run of the same bot and conversation key, also under concurrent
   * creates. Throws `CONFLICT` when the id is taken or the bot already has a
   * run with the same non-null `deliveryId`, and `NOT_FOUND` when the bot does
   * not exist.
   *
   * With `options.reserveFor` (adapters with {@link claim}): the queued run is
   * reserved for that worker until `until`: no other owner's `claim` takes it
   * before then (the worker whose caller waits on the run executes it, with
   * what cannot be stored: a stream observer, an abort signal). After `until`
   * anyone may claim it, as any queued run.
   *
   * With `options.claimFor` (adapters with {@link claim} should honour it):
   * when the run's conversation key has no `queued` or `running` run, the run
   * is stored `running` at once, `startedAt: claimFor.now`, under the lease
   * (`owner`, `leaseExpiresAt`), as if `claim` had just taken it: the
   * creating worker executes it without a claim's round trip. Otherwise it is
   * stored as asked (`queued`, reserved when `reserveFor` says so). The
   * returned run's `status` says which. Concurrent creates of one key never
   * leave two of its runs `running`.
   */
  create(run: NewRun, options?: RunCreateOptions): Promise<Run>;
  /** The run with this id, or `null`. */
  get(runId: string): Promise<Run | null>;
  /** The bot's run ingested with this delivery id (idempotency key), or `null`. */
  findByDelivery(botId: string, deliveryId: string): Promise<Run | null>;
  /**
   * The bot's runs of one conversation key in ingest order (ascending `seq`),
   * at most `limit`; with `afterSeq`, only runs with a greater seq.
   */
  listByConversation(
    botId: string,
    conversationKey: string,
    options: { limit: number; afterSeq?: number | undefined },
  ): Promise<Run[]>;
  /**
   * Optional: the bot's runs of every conversation key, newest first
   * (descending `createdAt`, then id), paged with cursors: what a run list
   * shows before it is filtered by conversation. Without it `kilo.runs.recent`
   * fails with `CONFIGURATION_INVALID`.
   */
  listByBot?(botId: string, page: StoragePageOptions): Promise<Page<Run>>;
  /**
   * Stores the outcome of `run` on the stored run (same id and bot): its
   * `status`, `output`, `error`, `startedAt` and `finishedAt`. The fields set
   * at create (the event, its key, ids and `createdAt`), `seq` and `resumes`
   * are kept as stored. Returns the run as stored, or `null` when the bot has
   * no such run.
   */
  update(run: Run): Promise<Run | null>;
  /**
   * Runs of every bot that are `queued` or `running`, oldest first
   * (ascending `createdAt`, then id), paged with cursors: what an executor
   * resumes after a restart.
   */
  listUnfinished(page: StoragePageOptions): Promise<Page<Run>>;
  /**
   * Optional: the runs with these ids that exist, in any order (ids without a
   * run are left out), in one round trip. `kilo.runs.wait` on shared storage
   * re-reads every run this process waits for with one call per poll; without
   * it the core calls `get` once per run.
   */
  getMany?(runIds: readonly string[]): Promise<Run[]>;
  /**
   * Optional: retention (`kilo.runs.prune`). Deletes the runs, of every bot,
   * that are `succeeded` or `failed` and finished before `before`, with their
   * steps; returns how many runs. Never touches `queued`, `running` or
   * `awaiting_approval` runs. A conversation key's later runs keep their `seq`.
   */
  deleteFinishedBefore?(before: Date): Promise<number>;
  /**
   * Optional: sends a run that is `awaiting_approval` back to the queue, at
   * the end of its key's lane, once the approval its workflow stopped at
   * (`ctx.tool`) is decided. In one write, only while the run is
   * `awaiting_approval`: `status` becomes `queued`, `seq` a new one greater
   * than every seq its key has had (as `create` assigns), `resumes` one more
   * than before (absent counts as 0), `output`, `error` and `finishedAt`
   * `null` and any lease or reservation cleared; `startedAt` and the run's
   * recorded steps are kept (the run replays them when it executes again).
   * Returns the run as stored, or `null`, writing nothing, when the bot has no
   * such run or it is not `awaiting_approval` (another call requeued it first).
   *
   * Without it, a workflow's `ctx.tool` call that needs an approval does not
   * stop the workflow: it returns `awaiting_approval` and the decision
   * continues the conversation with a bot turn instead.
   *
   * @example
   * ```ts
   * const run = await storage.runs.requeue?.(botId, runId); // queued, seq at the lane's end, or null
   * ```
   */
  requeue?(botId: string, runId: string): Promise<Run | null>;

  /**
   * Optional, with {@link extendLeases} and {@link finish}: the runs table as a
   * queue that several processes share. The core uses these three when the
   * adapter has all of them and declares `capabilities.crossProcess`;
   * otherwise it runs its in-process keyed queue over `update`. Adapters
   * that are not shared (memory, SQLite) may implement them too; the
   * conformance suite checks them wherever they exist.
   *
   * Atomically claims up to `limit` runs for `owner` and returns them, oldest
   * first (ascending `createdAt`, then id). A run can be claimed only when it
   * is the *head* of its (bot, conversation key): no run of that key with a
   * smaller `seq` is `queued` or `running`. A head is claimable when it is
   * `queued` (and not reserved for another owner until after `now`, see
   * {@link create}), or `running` under a lease that expired before `now` (or under no
   * lease: a run left `running` by an executor without leases). So at most one
   * run per key is claimed by one call, and runs of a key are claimed strictly
   * in `seq` order; `awaiting_approval`, `succeeded` and `failed` runs do not
   * hold their key.
   *
   * A claimed run is stored as `running` with `startedAt: now`, `finishedAt`,
   * `output` and `error` null, and the lease (`owner`, `leaseExpiresAt`); the
   * claim is returned with `reclaimed: true` when the run was taken over from
   * an expired lease. Concurrent claims, from this process or any other
   * sharing the store, never return the same run while its lease holds, and
   * never leave two runs of one key `running` (SQL adapters enforce the
   * latter with a partial unique index, not only with the claim's own
   * condition). Returns an empty array when nothing is claimable.
   *
   * A claim is short: adapters must not hold a transaction or lock beyond the
   * call. The worker executes the run outside any transaction, keeps the lease
   * alive with {@link extendLeases}, and stores the outcome with {@link finish}.
   *
   * @example
   * ```ts
   * const now = new Date();
   * const claims = await storage.runs.claim!({
   *   owner: "worker-7f3a",
   *   now,
   *   leaseExpiresAt: new Date(now.getTime() + 30_000),
   *   limit: 8,
   * });
   * for (const { run, reclaimed } of claims) execute(run, reclaimed);
   * ```
   */
  claim?(request: RunClaimRequest): Promise<RunClaim[]>;
  /**
   * Optional (see {@link claim}): the heartbeat. Sets the lease expiry of each
   * of `runIds` that is still `running` under `owner`'s lease to `expiresAt`
   * (also when the lease has expired but nobody has reclaimed the run yet),
   * and returns the ids whose lease `owner` still holds. An id missing from
   * the result was lost: another worker reclaimed the run, or it is no longer
   * running; its outcome will be refused by {@link finish}.
   */
  extendLeases?(owner: string, runIds: readonly string[], expiresAt: Date): Promise<string[]>;
  /**
   * Optional (see {@link claim}): stores the outcome of a claimed run, only if
   * it is still `running` under `owner`'s lease (a conditional update, so a
   * worker that lost its lease cannot overwrite the run another worker now
   * executes). Writes the same fields as `update` (the outcome), typically
   * `status` (`succeeded`, `failed` or `awaiting_approval`), `output`, `error`
   * and `finishedAt`, and clears the lease. Returns the stored run, or `null`
   * when the lease was lost (the outcome is then discarded) or the bot has no
   * such run.
   */
  finish?(run: Run, owner: string): Promise<Run | null>;
}

/** Options of {@link RunRepository.create}. */
export interface RunCreateOptions {
  /** Reserve the queued run for one worker's claims until `until`. */
  reserveFor?: { owner: string; until: Date } | undefined;
  /** Store the run `running` under this worker's lease when its key is free (see {@link RunRepository.create}). */
  claimFor?: { owner: string; now: Date; leaseExpiresAt: Date } | undefined;
}

/** What {@link RunRepository.claim} is asked for. */
export interface RunClaimRequest {
  /** Who claims: an id unique to one executor (one per process), stored as the lease owner. */
  owner: string;
  /** The claimer's current time: a lease expiring before it has expired, and claimed runs start at it. */
  now: Date;
  /** When the leases of the claimed runs expire unless extended. Later than `now`. */
  leaseExpiresAt: Date;
  /** Claim at most this many runs (a positive integer). */
  limit: number;
}

/** A run handed to a worker by {@link RunRepository.claim}. */
export interface RunClaim {
  /** The run as stored by the claim: `running`, started at the claim's `now`. */
  run: Run;
  /** True when the run was taken over from an expired lease (its previous worker died or stalled), false when it was `queued`. */
  reclaimed: boolean;
}

/**
 * The recorded steps of runs (`ctx.turn`, `ctx.ask`, `ctx.step` in a
 * workflow): what lets a run re-executed after a crash skip the steps that
 * already succeeded. One row per (run, index); steps go with their run (and
 * so with their bot). Every method names the bot: a step of another bot's run
 * is invisible and cannot be written.
 *
 * Optional on {@link StorageRepositories} so third-party adapters written
 * before it keep working: without it the core runs workflows unrecorded (a
 * run re-executed after a crash makes every step again) and logs a warning.
 * kilo's memory, SQLite and Postgres adapters all have it.
 *
 * @example
 * ```ts
 * await storage.runSteps?.save({
 *   runId, botId, index: 0, name: "charge", kind: "step", status: "running",
 *   output: null, error: null, startedAt: new Date(), finishedAt: null,
 * });
 * const steps = await storage.runSteps?.listByRun(botId, runId); // ascending index
 * ```
 */
export interface RunStepRepository {
  /**
   * Inserts the step, or replaces the stored step at the same `runId` and
   * `index` with it (a step re-made after a crash). Returns the stored step.
   * Throws `NOT_FOUND` when the bot has no run `runId`.
   */
  save(step: RunStep): Promise<RunStep>;
  /** The steps of the bot's run, ascending `index`; empty when there are none (or no such run). */
  listByRun(botId: string, runId: string): Promise<RunStep[]>;
}

/**
 * The versions of skills (see {@link SkillVersion}): append-only, numbered
 * per skill, read newest first. Every method names the skill's scope (a bot
 * id names the bot's own skills): a version of a skill in another scope is
 * invisible and cannot be written. Versions go with their skill
 * (`skills.delete`), with their bot (`bots.delete`) and with their team
 * (`teams.delete`). Adapters whose skills have `listByScopes` keep versions
 * of skills in every scope.
 *
 * Optional on {@link StorageRepositories} so third-party adapters written
 * before it keep working: without it skills work as before and keep no
 * history (`kilo.skills.history` fails with `CONFIGURATION_INVALID`).
 * kilo's memory, SQLite and Postgres adapters all have it.
 *
 * @example
 * ```ts
 * const page = await storage.skillVersions!.list(botId, skillId, { limit: 20 });
 * const first = await storage.skillVersions!.get(botId, skillId, 1);
 * ```
 */
export interface SkillVersionRepository {
  /**
   * Inserts a version. Throws `CONFLICT` when the id is taken or the skill
   * already has a version with this number (two racing changes: the loser
   * fails instead of forking the history), and `NOT_FOUND` when the
   * version's scope (`version.scope`) has no skill `skillId`.
   */
  append(version: SkillVersion): Promise<SkillVersion>;
  /**
   * The skill's versions, newest first (descending `version`), paged with
   * cursors: a walk stays complete while new versions are appended. Empty
   * when there are none (or no such skill of the bot). Throws
   * `VALIDATION_FAILED` for a cursor it did not hand out.
   */
  list(owner: SkillOwner, skillId: string, page: StoragePageOptions): Promise<Page<SkillVersion>>;
  /** The skill's version with this number, or `null`. */
  get(owner: SkillOwner, skillId: string, version: number): Promise<SkillVersion | null>;
}

/**
 * Teams: groups of users sharing skills (the `team` scope). Deleting a team
 * deletes its memberships, its skills (with their versions and records) and
 * takes its bots out of it (`teamId` becomes `null`).
 *
 * Optional on {@link StorageRepositories}, with {@link TeamMemberRepository}:
 * without them `kilo.teams` fails with `CONFIGURATION_INVALID` and no bot is
 * in a team. kilo's memory, SQLite and Postgres adapters have both.
 *
 * @example
 * ```ts
 * await storage.teams!.create({ id: "bakers", name: "Bakers", metadata: {}, createdAt: now, updatedAt: now });
 * const page = await storage.teams!.list({ limit: 50 });
 * ```
 */
export interface TeamRepository {
  /** Inserts a team. Throws `CONFLICT` when the id is taken. */
  create(team: Team): Promise<Team>;
  /** The team with this id, or `null`. */
  get(teamId: string): Promise<Team | null>;
  /** Every team, oldest first (ascending `createdAt`, then id), paged with cursors. */
  list(page: StoragePageOptions): Promise<Page<Team>>;
  /** Replaces the stored team (same id). Returns `null` when it does not exist. */
  update(team: Team): Promise<Team | null>;
  /** Deletes the team and what goes with it (see above). Returns `false` when there was no such team. */
  delete(teamId: string): Promise<boolean>;
}

/**
 * Who is in which team, with which role: one row per (team, user). Rows go
 * with their team. Teams have at most a few thousand members and users a
 * few teams, so lists are not paged.
 *
 * @example
 * ```ts
 * await storage.teamMembers!.save({ teamId: "bakers", userId: "alice", role: "admin", createdAt: now, updatedAt: now });
 * const alice = await storage.teamMembers!.get("bakers", "alice"); // role "admin"
 * ```
 */
export interface TeamMemberRepository {
  /**
   * Inserts the membership, or replaces the stored one of the same (team,
   * user) (a role change keeps the stored `createdAt`). Returns the stored
   * membership. Throws `NOT_FOUND` when the team does not exist.
   */
  save(member: TeamMember): Promise<TeamMember>;
  /** The user's membership of the team, or `null`. */
  get(teamId: string, userId: string): Promise<TeamMember | null>;
  /** The team's members, oldest membership first. */
  listByTeam(teamId: string): Promise<TeamMember[]>;
  /** The user's memberships, oldest first. */
  listByUser(userId: string): Promise<TeamMember[]>;
  /** Removes the membership. Returns `false` when the user was not a member. */
  delete(teamId: string, userId: string): Promise<boolean>;
}

/** A filter over promotion requests: every condition given must hold. */
export interface SkillPromotionFilter {
  status?: SkillPromotionStatus | undefined;
  /** Requests to this scope. */
  to?: SkillScope | undefined;
  /** Requests from this scope. */
  from?: SkillScope | undefined;
  /** Requests to promote this skill. */
  skillId?: string | undefined;
}

/** How a promotion request was decided; see {@link SkillPromotionRepository.decide}. */
export interface SkillPromotionDecision {
  status: Exclude<SkillPromotionStatus, "pending">;
  reviewer: string;
  reviewNote: string | null;
  resultSkillId: string | null;
  decidedAt: Date;
}

/**
 * Promotion requests (see {@link SkillPromotion}). Requests are kept as the
 * record of who promoted what: they do not go with their skill or scope.
 *
 * Optional on {@link StorageRepositories}: without it
 * `kilo.skills.promotions` fails with `CONFIGURATION_INVALID`. kilo's
 * memory, SQLite and Postgres adapters have it.
 *
 * @example
 * ```ts
 * const pending = await storage.skillPromotions!.list(
 *   { status: "pending", to: { kind: "team", id: "bakers" } },
 *   { limit: 20 },
 * );
 * ```
 */
export interface SkillPromotionRepository {
  /** Inserts a request. Throws `CONFLICT` when the id is taken. */
  create(promotion: SkillPromotion): Promise<SkillPromotion>;
  /** The request with this id, or `null`. */
  get(promotionId: string): Promise<SkillPromotion | null>;
  /**
   * Requests matching the filter, newest first (descending `createdAt`, then
   * id), paged with cursors. Throws `VALIDATION_FAILED` for a cursor it did not hand out.
   */
  list(filter: SkillPromotionFilter, page: StoragePageOptions): Promise<Page<SkillPromotion>>;
  /**
   * Decides a pending request atomically: sets `status`, `reviewer`,
   * `reviewNote`, `resultSkillId` and `decidedAt` only while it is still
   * `pending`, so two racing reviews cannot both win. Returns the decided
   * request; `null` when there is no such request; throws `CONFLICT` when it
   * was already decided.
   */
  decide(promotionId: string, decision: SkillPromotionDecision): Promise<SkillPromotion | null>;
}

/** A filter over traces: the bot's, optionally one user's, optionally within a time range. */
export interface TraceFilter {
  botId: string;
  userId?: string | undefined;
  /** Inclusive lower bound on `createdAt`. */
  from?: Date | undefined;
  /** Exclusive upper bound on `createdAt`. */
  to?: Date | undefined;
}

/**
 * Traces of chat turns (see {@link Trace}). Every read names the bot; a trace
 * of another bot is invisible. Traces go with their bot. The core writes a
 * turn's trace through {@link Storage.commitTurn} when the adapter has it
 * (no extra round trip), and through `create` otherwise and for failed turns.
 *
 * @example
 * ```ts
 * const page = await storage.traces!.list({ botId, userId, from: weekAgo }, { limit: 100 });
 * await storage.traces!.setFeedback(botId, page.items[0]!.id, { rating: "up", comment: null, at: new Date() });
 * const removed = await storage.traces!.deleteOlderThan(new Date(Date.now() - 30 * 86_400_000));
 * ```
 */
export interface TraceRepository {
  /** Inserts a trace. Throws `CONFLICT` when the id is taken, `NOT_FOUND` when the bot does not exist. */
  create(trace: Trace): Promise<Trace>;
  /** The bot's trace with this id, or `null`. */
  get(botId: string, traceId: string): Promise<Trace | null>;
  /**
   * Traces matching the filter, oldest first (ascending `createdAt`, then id),
   * paged with cursors: a walk stays complete while new traces are written.
   */
  list(filter: TraceFilter, page: StoragePageOptions): Promise<Page<Trace>>;
  /** Replaces the trace's feedback. Returns the updated trace, or `null` when the bot has no such trace. */
  setFeedback(botId: string, traceId: string, feedback: TraceFeedback): Promise<Trace | null>;
  /** Deletes every trace (of every bot) created before `before`; returns how many. Retention calls it. */
  deleteOlderThan(before: Date): Promise<number>;
}

/** The repositories, as seen inside and outside a transaction. */
export interface StorageRepositories {
  users: UserRepository;
  bots: BotRepository;
  skills: SkillRepository;
  skillRecords: SkillRecordRepository;
  conversations: ConversationRepository;
  messages: MessageRepository;
  memories: MemoryRepository;
  usage: UsageRepository;
  proposals: ProposalRepository;
  tools: ToolRepository;
  toolAudit: ToolAuditRepository;
  approvals: ToolApprovalRepository;
  runs: RunRepository;
  /** Optional: recorded workflow steps (see {@link RunStepRepository}). */
  runSteps?: RunStepRepository;
  /** Optional: traces of chat turns (see {@link TraceRepository}); without it turns leave no trace. */
  traces?: TraceRepository;
  /** Optional: versions of skills (see {@link SkillVersionRepository}); without it skills keep no history. */
  skillVersions?: SkillVersionRepository;
  /** Optional, with `teamMembers`: teams (see {@link TeamRepository}); without them there are no teams. */
  teams?: TeamRepository;
  /** Optional, with `teams`: team memberships (see {@link TeamMemberRepository}). */
  teamMembers?: TeamMemberRepository;
  /** Optional: promotion requests (see {@link SkillPromotionRepository}); without it skills cannot be promoted. */
  skillPromotions?: SkillPromotionRepository;
}

/** The writes that end a turn, made atomically by {@link Storage.commitTurn}. */
export interface TurnCommit {
  /** The bot's reply. */
  message: NewMessage;
  /** Usage records of the turn's LLM calls. */
  usage: UsageRecord[];
  /** The conversation's new `updatedAt` (what `conversations.touch` would set). */
  conversationUpdatedAt: Date;
  /** The turn's trace, stored with the rest (adapters with a `traces` repository must store it). */
  trace?: Trace | undefined;
}

/** A turn that ends a run, stored atomically by {@link Storage.commitRunTurn}. */
export interface RunTurnCommit extends TurnCommit {
  /** The run as it ends: `succeeded`, with the turn's result as its output and `finishedAt`. */
  run: Run;
  /** The run's step that the turn was, `succeeded` (inserted, or replacing the step at its index). */
  step: RunStep;
  /**
   * The worker that must still hold the run's lease (shared queue), or `null`
   * for runs executed without leases (the in-process queue, a host executor):
   * the run's outcome is stored only while the run is `running` (under this
   * lease); the turn and its step are stored either way.
   */
  owner: string | null;
  /**
   * Hand the run's conversation key on to the same worker. When the run's
   * outcome is stored, the key's next run (its queued run with the smallest
   * `seq`, unless it is reserved for another owner until after `handOff.now`)
   * is started in the same atomic step and returned as
   * {@link RunTurnCommitted.next}: the worker goes on with the conversation
   * without a claim or a start write of its own, and the next run starts as
   * this one ends.
   * - With an `owner`, the run is claimed for it, as {@link RunRepository.claim}
   *   would claim it (under a lease until `handOff.leaseExpiresAt`).
   * - Without one (`owner: null`, the in-process queue), only with
   *   `handOff.runId`: that run is started, without a lease, when it is the key's next run.
   * With `handOff.runId`, no other run is handed on. Adapters with
   * {@link RunRepository.claim} should honour it; others may ignore it and
   * return no `next`: the worker then claims or starts the next run as usual.
   */
  handOff?: RunHandOff | undefined;
}

/** The start of a run handed on by a commit ({@link RunTurnCommit.handOff}). */
export interface RunHandOff {
  /** The worker's current time: the run starts at it, and a reservation expiring before it has expired. */
  now: Date;
  /** When the run's lease expires unless extended. Later than `now`. Ignored without an owner (no lease). */
  leaseExpiresAt: Date;
  /**
   * The run the worker expects next (the in-process queue knows it): handed on
   * only when it is the key's next run; absent, whichever run is the key's next.
   * Required to hand on without an owner.
   */
  runId?: string | undefined;
}

/** What {@link Storage.commitRunTurn} stored. */
export interface RunTurnCommitted {
  /** The stored reply. */
  message: Message;
  /** The run as stored, or `null` when its outcome was refused (not running, or the lease is another's). */
  run: Run | null;
  /**
   * With {@link RunTurnCommit.handOff}: the key's next run, started
   * (`running`, at `handOff.now`; claimed for the owner when there is one), or
   * `null` when none could be handed on (or the outcome was refused). Absent
   * when the adapter did not hand off: the worker then claims or starts the next run as usual.
   */
  next?: Run | null | undefined;
}

/** The names of every repository in {@link StorageRepositories} (optional ones included: check they exist), for code that wraps them all. */
export const STORAGE_REPOSITORY_NAMES = [
  "users",
  "bots",
  "skills",
  "skillRecords",
  "conversations",
  "messages",
  "memories",
  "usage",
  "proposals",
  "tools",
  "toolAudit",
  "approvals",
  "runs",
  "runSteps",
  "traces",
  "skillVersions",
  "teams",
  "teamMembers",
  "skillPromotions",
] as const satisfies readonly (keyof StorageRepositories)[];

/** What a storage adapter can do; the core and the conformance suite read these. */
export interface StorageCapabilities {
  /** Transactions roll back every write made inside them when the callback throws. */
  transactions: boolean;
  /** Data is shared between processes (locks and ordering hold across processes). */
  crossProcess: boolean;
  /** Data survives a restart of the process. */
  durable: boolean;
}

/**
 * The Storage port: where kilo keeps every record.
 *
 * Adapters are plain repositories: the core generates ids and timestamps,
 * validates input and checks ownership before calling them. An adapter must:
 *
 * - enforce tenancy: a method that names a bot never returns or changes
 *   another bot's data;
 * - return copies: mutating a returned object never changes stored data;
 * - throw `KiloError` with code `CONFLICT` on unique-key clashes and
 *   `STORAGE_FAILED` when the backing store fails (the core wraps anything
 *   else it throws as `STORAGE_FAILED` naming the adapter);
 * - roll back every write of a `transaction` whose callback throws, and
 *   rethrow that error.
 *
 * `kilo/testing` exports `runStorageConformance`, which checks all of this.
 *
 * @example
 * ```ts
 * import { createKilo } from "kilo";
 * import { memoryStorage } from "kilo/storage/memory";
 *
 * const kilo = createKilo({ storage: memoryStorage(), providers: [myProvider] });
 * ```
 */
export interface Storage extends StorageRepositories {
  /** Adapter name, used in error messages (`memory`, `sqlite`, `postgres`). */
  readonly name: string;
  readonly capabilities: StorageCapabilities;
  /** Prepares the store (connections, migrations). Called once by the core before first use. */
  init?(): Promise<void>;
  /**
   * Runs `fn` with repositories bound to one transaction. Writes made through
   * `tx` are committed when `fn` resolves and rolled back when it throws.
   */
  transaction<T>(fn: (tx: StorageRepositories) => Promise<T>): Promise<T>;
  /**
   * Optional: stores the end of a turn (the reply, the turn's usage records
   * and the conversation's `updatedAt`) atomically, in as few round trips as
   * the backend allows (one statement on Postgres). Returns the stored reply.
   * With `turn.trace`, the trace is stored in the same step (an adapter
   * that has a `traces` repository must store it). Without `commitTurn` the
   * core calls `messages.append`, `usage.record`, `conversations.touch` and
   * `traces.create` one by one.
   */
  commitTurn?(turn: TurnCommit): Promise<Message>;
  /**
   * Optional: {@link commitTurn} for a turn that ends a run (the built-in
   * `message` workflow's only step): the turn's writes, the run's `turn` step
   * and the run's outcome in one atomic step (one statement on Postgres), so
   * a run costs no write of its own after its turn. The outcome is
   * conditional (see {@link RunTurnCommit.owner}); the rest is not. Without it
   * the core commits the turn, then saves the step and the outcome itself.
   */
  commitRunTurn?(turn: RunTurnCommit): Promise<RunTurnCommitted>;
  /**
   * Optional: brings the backing schema up to date (forward-only migrations)
   * and returns the versions it applied. Adapters that migrate on `init` by
   * default still expose this for hosts that migrate from a deploy step.
   */
  migrate?(): Promise<{ applied: string[] }>;
  /** Releases what the adapter opened (and nothing the host owns). */
  close?(): Promise<void>;
}
