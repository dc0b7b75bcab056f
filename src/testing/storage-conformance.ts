import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Bot, Soul } from "../domain/bot.js";
import type { Page } from "../domain/common.js";
import type { Conversation, Message, NewMessage } from "../domain/conversation.js";
import type { Memory } from "../domain/memory.js";
import type { Proposal } from "../domain/proposal.js";
import type { Run } from "../domain/run.js";
import type { RunStep } from "../domain/run-step.js";
import type { Skill, SkillRecord } from "../domain/skill.js";
import type { Tool, ToolApproval, ToolCallAudit, ToolEndpoint } from "../domain/tool.js";
import type { UsageRecord } from "../domain/usage.js";
import type { User } from "../domain/user.js";
import { KiloError, type KiloErrorCode } from "../errors.js";
import type { Storage, StorageCapabilities, StorageRepositories } from "../ports/storage.js";
import {
  registerRunBatchReadTests,
  registerRunListByBotTests,
  registerRunQueueTests,
  registerRunRequeueTests,
  registerRunRetentionTests,
  registerRunTests,
} from "./run-conformance.js";
import { registerRunStepTests } from "./run-step-conformance.js";
import {
  registerScopedSkillTests,
  registerSkillPromotionTests,
  registerTeamTests,
} from "./scope-conformance.js";
import { registerSkillVersionTests } from "./skill-version-conformance.js";
import { registerTraceTests } from "./trace-conformance.js";

/** Tests of the conformance suite to skip, and why. */
export interface StorageConformanceSkip {
  /** Why the adapter cannot pass these tests; printed in the skipped test's name. */
  reason: string;
  /**
   * Tests to skip: a test's title (`"NUL bytes round-trip unchanged"`), its
   * group and title (`"hostile strings > NUL bytes round-trip unchanged"`), or
   * a whole group (`"transactions"`). A name that matches nothing fails the suite.
   */
  tests: string[];
}

/** Options of {@link runStorageConformance}. */
export interface StorageConformanceOptions {
  /** Adapter name, shown in the suite's title. */
  name: string;
  /**
   * Creates a storage for one test. The suite calls `init()` on it when present.
   * It may return a fresh store or a shared one: every test uses fresh ids, so
   * leftovers from earlier tests do not matter. Also called once while tests
   * are collected, to read `capabilities`.
   */
  createStorage: () => Promise<Storage> | Storage;
  /** Disposes of a storage after its test. Defaults to calling its `close()`, when present. */
  destroyStorage?: (storage: Storage) => Promise<void> | void;
  /** Tests the adapter cannot pass, with the reason. */
  skip?: StorageConformanceSkip[];
}

/**
 * Registers vitest tests that check a {@link Storage} adapter against the
 * Storage port: CRUD of every repository (the tool registry's tools, audit
 * log and approvals, runs, and, where the adapter has them, skills of
 * shared scopes, teams and promotion requests included), tenancy, message ordering,
 * transactions, concurrency, pagination, cascading deletes, copies, CONFLICT
 * errors and hostile strings. Call it at the top level of a test file.
 *
 * Tests that need a capability the adapter does not declare (read from
 * `storage.capabilities`) are skipped with the reason in their name; any
 * other skip must be listed in `skip` with a reason.
 *
 * @example
 * ```ts
 * import { runStorageConformance } from "kilo/testing";
 * import { myStorage } from "../src/my-storage.js";
 *
 * runStorageConformance({
 *   name: "my-storage",
 *   createStorage: () => myStorage({ url: process.env.MY_URL }),
 *   destroyStorage: (storage) => storage.close?.(),
 *   skip: [{ reason: "the backend cannot store NUL bytes", tests: ["NUL bytes round-trip unchanged"] }],
 * });
 * ```
 */
export function runStorageConformance(options: StorageConformanceOptions): void {
  describe(`storage conformance: ${options.name}`, async () => {
    const dispose = async (storage: Storage) => {
      if (options.destroyStorage) await options.destroyStorage(storage);
      else await storage.close?.();
    };
    const probe = await options.createStorage();
    const capabilities: StorageCapabilities = { ...probe.capabilities };
    const hasCommitTurn = typeof probe.commitTurn === "function";
    const hasRunsGetMany = typeof probe.runs.getMany === "function";
    const hasTraces = probe.traces !== undefined;
    const hasRunSteps = probe.runSteps !== undefined;
    const hasSkillVersions = probe.skillVersions !== undefined;
    const hasScopedSkills = typeof probe.skills.listByScopes === "function";
    const teamRepositories = [probe.teams, probe.teamMembers].filter(
      (repository) => repository !== undefined,
    );
    const hasSkillPromotions = probe.skillPromotions !== undefined;
    const queueMethods = [probe.runs.claim, probe.runs.extendLeases, probe.runs.finish];
    const queueMethodCount = queueMethods.filter((method) => typeof method === "function").length;
    await dispose(probe);

    let current: Storage | null = null;
    beforeEach(async () => {
      current = await options.createStorage();
      await current.init?.();
    });
    afterEach(async () => {
      if (current) await dispose(current);
      current = null;
    });
    const storage = (): Storage => {
      if (!current) throw new Error("storage conformance: no storage for this test");
      return current;
    };

    const skips = new SkipList(options.skip ?? []);
    const group = (name: string, register: (test: RegisterTest) => void) => {
      describe(name, () => {
        register((title, body, testOptions = {}) => {
          const reason = skips.reasonFor(name, title);
          if (reason !== null) {
            it.skip(`${title} [skipped: ${reason}]`, () => {});
            return;
          }
          const required = testOptions.requires;
          if (required && !capabilities[required]) {
            it.skip(`${title} [skipped: the adapter does not declare capabilities.${required}]`, () => {});
            return;
          }
          it(title, () => body(storage()));
        });
      });
    };

    registerUserTests(group);
    registerBotTests(group);
    registerSkillTests(group);
    registerSkillRecordTests(group);
    registerConversationTests(group);
    registerMessageTests(group);
    registerMemoryTests(group);
    registerUsageTests(group);
    registerProposalTests(group);
    registerToolTests(group);
    registerToolAuditTests(group);
    registerToolApprovalTests(group);
    registerRunTests(group);
    registerTenancyTests(group);
    registerPaginationTests(group);
    registerCascadeTests(group);
    registerCopyTests(group);
    registerConflictTests(group);
    registerTransactionTests(group);
    registerConcurrencyTests(group);
    registerHostileStringTests(group);
    // commitTurn is optional: the core falls back to single writes, so only adapters that have it are checked.
    if (hasCommitTurn) registerCommitTurnTests(group);
    if (typeof probe.commitRunTurn === "function") {
      registerCommitRunTurnTests(group, typeof probe.runs.claim === "function");
    }
    // The shared runs queue is optional too, but all or nothing: the core uses it only whole.
    it("implements runs.claim, runs.extendLeases and runs.finish together or not at all", () => {
      expect([0, queueMethods.length]).toContain(queueMethodCount);
    });
    if (queueMethodCount === queueMethods.length) registerRunQueueTests(group);
    if (hasRunsGetMany) registerRunBatchReadTests(group);
    if (typeof probe.runs.listByBot === "function") registerRunListByBotTests(group);
    if (typeof probe.runs.deleteFinishedBefore === "function") registerRunRetentionTests(group, hasRunSteps);
    if (typeof probe.runs.requeue === "function") {
      registerRunRequeueTests(group, hasRunSteps, queueMethodCount === queueMethods.length);
    }
    // Traces are optional: without them turns leave none, so only adapters that have them are checked.
    if (hasTraces) registerTraceTests(group, hasCommitTurn);
    // runSteps is optional: without it the core runs workflows unrecorded.
    if (hasRunSteps) registerRunStepTests(group);
    // skillVersions is optional: without it skills keep no history.
    if (hasSkillVersions) registerSkillVersionTests(group);
    // Skills of shared scopes, teams and promotion requests are optional: without them bots have their own skills only.
    it("implements teams and teamMembers together or not at all", () => {
      expect([0, 2]).toContain(teamRepositories.length);
    });
    if (hasScopedSkills) registerScopedSkillTests(group, teamRepositories.length === 2, hasSkillVersions);
    if (hasScopedSkills && teamRepositories.length === 2) registerTeamTests(group);
    if (hasSkillPromotions) registerSkillPromotionTests(group);

    // Runs after every group has registered its tests, so `unused()` is complete by then.
    it("lists only tests of this suite in `skip`", () => {
      expect(skips.unused(), "these `skip` entries match no test; check their spelling").toEqual([]);
    });
  });
}

// ---------------------------------------------------------------------------
// Registration plumbing

type TestBody = (storage: Storage) => Promise<void>;
type RegisterTest = (
  title: string,
  body: TestBody,
  options?: { requires?: keyof StorageCapabilities },
) => void;
type Group = (name: string, register: (test: RegisterTest) => void) => void;

class SkipList {
  private readonly used = new Set<string>();

  constructor(private readonly entries: StorageConformanceSkip[]) {}

  reasonFor(group: string, title: string): string | null {
    for (const entry of this.entries) {
      for (const name of entry.tests) {
        if (name === title || name === group || name === `${group} > ${title}`) {
          this.used.add(name);
          return entry.reason;
        }
      }
    }
    return null;
  }

  unused(): string[] {
    return this.entries.flatMap((entry) => entry.tests).filter((name) => !this.used.has(name));
  }
}

// ---------------------------------------------------------------------------
// Fixtures

const RUN = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
let counter = 0;

/** A fresh id, unique across tests and runs, so a shared store never clashes. */
function uid(prefix: string): string {
  counter += 1;
  return `${prefix}-${RUN}-${counter}`;
}

const BASE_TIME = Date.UTC(2024, 0, 1, 12, 0, 0);

/** A fixed point in time, `seconds` after the suite's base time. */
function at(seconds: number): Date {
  return new Date(BASE_TIME + seconds * 1000);
}

function makeSoul(): Soul {
  return {
    personalityTraits: { tone: "warm", energy: "calm", traits: ["patient", "curious"] },
    valuesAndPrinciples: ["honesty", "kindness"],
    communicationStyle: {
      verbosity: "balanced",
      formality: "casual",
      formatting: "markdown",
      maxReplyLength: 800,
    },
    behavioralRules: { always: ["greet by name"], never: ["invent prices"] },
    decisionFramework: { ambiguity: "ask one question", escalation: "hand over to the owner" },
  };
}

function makeUser(overrides: Partial<User> = {}): User {
  return { id: uid("user"), name: "Ada", metadata: { plan: "free" }, createdAt: at(0), ...overrides };
}

function makeBot(overrides: Partial<Bot> = {}): Bot {
  return {
    id: uid("bot"),
    userId: uid("user"),
    name: "Baker",
    soul: makeSoul(),
    personality: "cheerful",
    context: "runs a bakery",
    metadata: { tier: "pro", nested: { flags: [1, 2, 3], on: true } },
    createdAt: at(0),
    updatedAt: at(0),
    ...overrides,
  };
}

function makeSkill(botId: string, overrides: Partial<Skill> = {}): Skill {
  return {
    id: uid("skill"),
    botId,
    scope: { kind: "bot", id: botId },
    name: `Orders ${uid("n")}`,
    description: "Tracks cake orders",
    instructions: "Record each order with the customer's name.",
    triggers: ["new order", "orders"],
    examples: ["I need a cake for Friday"],
    dataFields: [
      { name: "customer", type: "string", description: "who ordered", required: true },
      { name: "size", type: "enum", description: "", required: false, options: ["small", "large"] },
    ],
    requiredIntegrations: [],
    taskType: "skill_execution",
    status: "active",
    metadata: { source: "test" },
    createdAt: at(0),
    updatedAt: at(0),
    ...overrides,
  };
}

function makeRecord(
  botId: string,
  skillId: string,
  data: Record<string, unknown> = {},
  overrides: Partial<SkillRecord> = {},
): SkillRecord {
  return { id: uid("record"), botId, skillId, data, createdAt: at(0), updatedAt: at(0), ...overrides };
}

function makeConversation(
  botId: string,
  userId: string,
  overrides: Partial<Conversation> = {},
): Conversation {
  return {
    id: uid("conversation"),
    botId,
    userId,
    channel: "api",
    title: "Cake talk",
    metadata: { locale: "en" },
    createdAt: at(0),
    updatedAt: at(0),
    ...overrides,
  };
}

function makeMessage(botId: string, conversationId: string, overrides: Partial<NewMessage> = {}): NewMessage {
  return {
    id: uid("message"),
    conversationId,
    botId,
    role: "user",
    content: "hello",
    metadata: {},
    createdAt: at(0),
    ...overrides,
  };
}

function makeMemory(botId: string, userId: string, overrides: Partial<Memory> = {}): Memory {
  return {
    id: uid("memory"),
    botId,
    userId,
    key: "bakery name",
    content: "Sweet Crumbs",
    source: { kind: "conversation", conversationId: null, messageId: null },
    history: [
      {
        content: "Crumbs",
        source: { kind: "manual", conversationId: null, messageId: null },
        replacedAt: at(-60),
      },
    ],
    createdAt: at(0),
    updatedAt: at(0),
    ...overrides,
  };
}

function makeUsage(
  userId: string | null,
  botId: string | null,
  overrides: Partial<UsageRecord> = {},
): UsageRecord {
  return {
    id: uid("usage"),
    botId,
    userId,
    conversationId: null,
    provider: "mock",
    model: "mock-large",
    taskType: "simple_qa",
    purpose: "chat",
    promptTokens: 120,
    completionTokens: 40,
    cacheReadTokens: 100,
    cacheWriteTokens: 0,
    reasoningTokens: 8,
    costUsd: 0.0125,
    latencyMs: 310,
    success: true,
    errorCode: null,
    createdAt: at(0),
    ...overrides,
  };
}

function makeProposal(botId: string, userId: string, overrides: Partial<Proposal> = {}): Proposal {
  return {
    id: uid("proposal"),
    botId,
    userId,
    conversationId: null,
    name: "Inventory",
    description: "Keep track of flour and sugar",
    triggers: ["stock", "inventory"],
    dataFields: [{ name: "item", type: "string", description: "", required: true }],
    clarifyingQuestions: ["Which items do you track?"],
    sourceMessage: "how much flour do I have?",
    status: "pending",
    skillId: null,
    createdAt: at(0),
    resolvedAt: null,
    ...overrides,
  };
}

function makeEndpoints(): ToolEndpoint[] {
  return [
    {
      name: "get_customer",
      method: "GET",
      path: "/customers/{id}",
      description: "Fetch one customer",
      parameters: [
        { name: "id", in: "path", type: "string", required: true, description: "the customer's id" },
        { name: "expand", in: "query", type: "boolean", required: false, description: "" },
      ],
      risky: false,
    },
    {
      name: "create_refund",
      method: "POST",
      path: "/refunds",
      description: "Refund a charge",
      parameters: [
        { name: "charge", in: "body", type: "string", required: true, description: "" },
        { name: "amount", in: "body", type: "integer", required: false, description: "in cents" },
      ],
      risky: true,
    },
  ];
}

function makeTool(botId: string, overrides: Partial<Tool> = {}): Tool {
  return {
    id: uid("tool"),
    botId,
    name: `pay-${uid("n")}`,
    description: "Payments and refunds",
    baseUrl: "https://api.payments.example/v1",
    auth: { type: "bearer" },
    // What the vault would have produced: opaque to storage.
    credential: "v1.key-1.bm90LWEtcmVhbC1pdg.Y2lwaGVydGV4dA.dGFn",
    endpoints: makeEndpoints(),
    createdAt: at(0),
    updatedAt: at(0),
    ...overrides,
  };
}

function makeAudit(botId: string, userId: string, overrides: Partial<ToolCallAudit> = {}): ToolCallAudit {
  return {
    id: uid("audit"),
    botId,
    userId,
    conversationId: null,
    toolId: uid("tool"),
    toolName: "payments",
    endpoint: "get_customer",
    method: "GET",
    status: "succeeded",
    httpStatus: 200,
    durationMs: 182.5,
    responseBytes: 2048,
    errorCode: null,
    createdAt: at(0),
    ...overrides,
  };
}

function makeApproval(
  botId: string,
  userId: string,
  conversationId: string,
  overrides: Partial<ToolApproval> = {},
): ToolApproval {
  return {
    id: uid("approval"),
    botId,
    userId,
    conversationId,
    toolId: uid("tool"),
    toolName: "payments",
    endpoint: "create_refund",
    input: { charge: "ch_123", amount: 500, notify: true, meta: { note: null, tags: ["a", "b"] } },
    toolCallId: uid("call"),
    runId: uid("run"),
    status: "pending",
    reason: null,
    createdAt: at(0),
    decidedAt: null,
    ...overrides,
  };
}

/** Stores a user and a bot of theirs. */
async function seedBot(storage: StorageRepositories, overrides: Partial<Bot> = {}): Promise<Bot> {
  const user = makeUser({ id: overrides.userId ?? uid("user") });
  await storage.users.upsert(user);
  const bot = makeBot({ ...overrides, userId: user.id });
  await storage.bots.create(bot);
  return bot;
}

/** One bot with one of everything it can own. */
interface World {
  bot: Bot;
  skill: Skill;
  record: SkillRecord;
  conversation: Conversation;
  messages: Message[];
  memory: Memory;
  usage: UsageRecord;
  proposal: Proposal;
  tool: Tool;
  audit: ToolCallAudit;
  approval: ToolApproval;
}

async function seedWorld(storage: StorageRepositories, userId?: string): Promise<World> {
  const bot = await seedBot(storage, userId === undefined ? {} : { userId });
  const skill = makeSkill(bot.id);
  await storage.skills.create(skill);
  const record = makeRecord(bot.id, skill.id, { customer: "Grace", size: "large", tiers: 3 });
  await storage.skillRecords.create(record);
  const conversation = makeConversation(bot.id, bot.userId);
  await storage.conversations.create(conversation);
  const messages: Message[] = [];
  for (const content of ["first", "second", "third"]) {
    messages.push(await storage.messages.append(makeMessage(bot.id, conversation.id, { content })));
  }
  const memory = makeMemory(bot.id, bot.userId, { key: "favourite cake" });
  await storage.memories.create(memory);
  const usage = makeUsage(bot.userId, bot.id, { conversationId: conversation.id });
  await storage.usage.record(usage);
  const proposal = makeProposal(bot.id, bot.userId, { conversationId: conversation.id });
  await storage.proposals.create(proposal);
  const tool = makeTool(bot.id);
  await storage.tools.create(tool);
  const audit = makeAudit(bot.id, bot.userId, {
    conversationId: conversation.id,
    toolId: tool.id,
    toolName: tool.name,
  });
  await storage.toolAudit.record(audit);
  const approval = makeApproval(bot.id, bot.userId, conversation.id, {
    toolId: tool.id,
    toolName: tool.name,
  });
  await storage.approvals.create(approval);
  return { bot, skill, record, conversation, messages, memory, usage, proposal, tool, audit, approval };
}

/** Walks every page of a listing, checking the limit and that the walk ends. */
async function walk<T>(limit: number, fetch: (cursor: string | null) => Promise<Page<T>>): Promise<T[][]> {
  const pages: T[][] = [];
  let cursor: string | null = null;
  for (;;) {
    expect(pages.length, "pagination did not end after 1000 pages").toBeLessThan(1000);
    const page: Page<T> = await fetch(cursor);
    expect(page.items.length, "a page holds more items than the limit").toBeLessThanOrEqual(limit);
    pages.push(page.items);
    if (page.nextCursor === null) return pages;
    expect(typeof page.nextCursor).toBe("string");
    cursor = page.nextCursor;
  }
}

function ids(items: Array<{ id: string }>): string[] {
  return items.map((item) => item.id);
}

/** Awaits `promise`, expecting it to reject; returns what it rejected with. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  let settled = false;
  try {
    await promise;
    settled = true;
  } catch (error) {
    return error;
  }
  expect(settled, "expected the call to throw, but it resolved").toBe(false);
  return undefined;
}

async function expectKiloError(promise: Promise<unknown>, code: KiloErrorCode): Promise<KiloError> {
  const error = await rejection(promise);
  const seen = KiloError.is(error) ? error.code : String(error);
  expect(KiloError.is(error, code), `expected a KiloError ${code}, got ${seen}`).toBe(true);
  return error as KiloError;
}

function shuffled<T>(items: readonly T[]): T[] {
  // Deterministic, so a failure reproduces.
  const result = [...items];
  let seed = 7;
  for (let i = result.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    const j = seed % (i + 1);
    [result[i], result[j]] = [result[j]!, result[i]!];
  }
  return result;
}

/** A promise with its resolve function, to hold a transaction open. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

// ---------------------------------------------------------------------------
// CRUD per repository

function registerUserTests(group: Group): void {
  group("users", (test) => {
    test("upsert stores a new user and get returns it", async (s) => {
      const user = makeUser();
      expect(await s.users.upsert(user)).toEqual(user);
      expect(await s.users.get(user.id)).toEqual(user);
    });

    test("upsert of an existing id returns the stored user unchanged", async (s) => {
      const user = makeUser({ name: "Original" });
      await s.users.upsert(user);
      const again = await s.users.upsert({ ...user, name: "Changed", metadata: { plan: "pro" } });
      expect(again).toEqual(user);
      expect(await s.users.get(user.id)).toEqual(user);
    });

    test("get returns null for an unknown user", async (s) => {
      expect(await s.users.get(uid("missing"))).toBeNull();
    });
  });
}

function registerBotTests(group: Group): void {
  group("bots", (test) => {
    test("create returns the bot and get round-trips every field", async (s) => {
      const user = makeUser();
      await s.users.upsert(user);
      const bot = makeBot({ userId: user.id, createdAt: at(10), updatedAt: at(20) });
      expect(await s.bots.create(bot)).toEqual(bot);
      const stored = await s.bots.get(bot.id);
      expect(stored).toEqual(bot);
      expect(stored?.createdAt).toBeInstanceOf(Date);
      expect(stored?.updatedAt).toBeInstanceOf(Date);
    });

    test("a bot without a soul round-trips with null layers", async (s) => {
      const bot = await seedBot(s, { soul: null, personality: null, context: null, metadata: {} });
      expect(await s.bots.get(bot.id)).toEqual(bot);
    });

    test("get returns null for an unknown bot", async (s) => {
      expect(await s.bots.get(uid("missing"))).toBeNull();
    });

    test("update replaces the stored bot", async (s) => {
      const bot = await seedBot(s);
      const changed: Bot = {
        ...bot,
        name: "Chef",
        soul: null,
        metadata: { tier: "free" },
        updatedAt: at(99),
      };
      expect(await s.bots.update(changed)).toEqual(changed);
      expect(await s.bots.get(bot.id)).toEqual(changed);
    });

    test("update returns null when the bot does not exist", async (s) => {
      const bot = makeBot();
      expect(await s.bots.update(bot)).toBeNull();
      expect(await s.bots.get(bot.id)).toBeNull();
    });

    test("delete removes the bot and returns true, then false", async (s) => {
      const bot = await seedBot(s);
      expect(await s.bots.delete(bot.id)).toBe(true);
      expect(await s.bots.get(bot.id)).toBeNull();
      expect(await s.bots.delete(bot.id)).toBe(false);
    });

    test("listByUser returns only that user's bots, oldest first", async (s) => {
      const user = makeUser();
      await s.users.upsert(user);
      const bots = [3, 1, 2].map((n) => makeBot({ userId: user.id, name: `bot ${n}`, createdAt: at(n) }));
      for (const bot of bots) await s.bots.create(bot);
      await seedBot(s);
      const page = await s.bots.listByUser(user.id, { limit: 10 });
      expect(page.items.map((bot) => bot.name)).toEqual(["bot 1", "bot 2", "bot 3"]);
      expect(page.nextCursor).toBeNull();
      expect(await s.bots.listByUser(uid("nobody"), { limit: 10 })).toEqual({ items: [], nextCursor: null });
    });
  });
}

function registerSkillTests(group: Group): void {
  group("skills", (test) => {
    test("create returns the skill and get round-trips every field", async (s) => {
      const bot = await seedBot(s);
      const skill = makeSkill(bot.id, { createdAt: at(5), updatedAt: at(6) });
      expect(await s.skills.create(skill)).toEqual(skill);
      expect(await s.skills.get(bot.id, skill.id)).toEqual(skill);
    });

    test("get returns null for an unknown skill", async (s) => {
      const bot = await seedBot(s);
      expect(await s.skills.get(bot.id, uid("missing"))).toBeNull();
    });

    test("listByBot returns the bot's skills oldest first", async (s) => {
      const bot = await seedBot(s);
      const skills = [2, 0, 1].map((n) => makeSkill(bot.id, { name: `skill ${n}`, createdAt: at(n) }));
      for (const skill of skills) await s.skills.create(skill);
      const listed = await s.skills.listByBot(bot.id);
      expect(listed.map((skill) => skill.name)).toEqual(["skill 0", "skill 1", "skill 2"]);
      expect(listed[0]).toEqual(skills[1]);
    });

    test("update replaces the stored skill", async (s) => {
      const bot = await seedBot(s);
      const skill = makeSkill(bot.id);
      await s.skills.create(skill);
      const changed: Skill = {
        ...skill,
        name: "Renamed",
        triggers: ["cake"],
        dataFields: [],
        status: "disabled",
        updatedAt: at(50),
      };
      expect(await s.skills.update(changed)).toEqual(changed);
      expect(await s.skills.get(bot.id, skill.id)).toEqual(changed);
    });

    test("update returns null when the skill does not exist", async (s) => {
      const bot = await seedBot(s);
      expect(await s.skills.update(makeSkill(bot.id))).toBeNull();
    });

    test("delete removes the skill and returns true, then false", async (s) => {
      const bot = await seedBot(s);
      const skill = makeSkill(bot.id);
      await s.skills.create(skill);
      expect(await s.skills.delete(bot.id, skill.id)).toBe(true);
      expect(await s.skills.get(bot.id, skill.id)).toBeNull();
      expect(await s.skills.listByBot(bot.id)).toEqual([]);
      expect(await s.skills.delete(bot.id, skill.id)).toBe(false);
    });

    test("a deleted skill's name can be used again", async (s) => {
      const bot = await seedBot(s);
      const skill = makeSkill(bot.id, { name: "Orders" });
      await s.skills.create(skill);
      await s.skills.delete(bot.id, skill.id);
      const again = makeSkill(bot.id, { name: "orders" });
      expect(await s.skills.create(again)).toEqual(again);
    });

    test("a Markdown skill round-trips its body and front-matter fields", async (s) => {
      const bot = await seedBot(s);
      const skill = makeMarkdownSkill(bot.id);
      expect(await s.skills.create(skill)).toEqual(skill);
      expect(await s.skills.get(bot.id, skill.id)).toEqual(skill);
      expect(await s.skills.listByBot(bot.id)).toEqual([skill]);
    });

    test("a structured skill reads back without a Markdown body", async (s) => {
      const bot = await seedBot(s);
      const skill = makeSkill(bot.id);
      await s.skills.create(skill);
      expect((await s.skills.get(bot.id, skill.id))?.markdown).toBeUndefined();
    });

    test("update replaces a Markdown skill's body and fields", async (s) => {
      const bot = await seedBot(s);
      const skill = makeMarkdownSkill(bot.id);
      await s.skills.create(skill);
      const changed: Skill = {
        ...skill,
        triggers: ["pytest"],
        markdown: {
          body: "# Testing\n\nNew body.\n",
          license: null,
          compatibility: "Python 3.10+",
          allowedTools: [],
          metadata: {},
          category: null,
          resources: [],
        },
        updatedAt: at(50),
      };
      expect(await s.skills.update(changed)).toEqual(changed);
      expect(await s.skills.get(bot.id, skill.id)).toEqual(changed);
    });
  });
}

function makeMarkdownSkill(botId: string): Skill {
  return makeSkill(botId, {
    name: `python-testing-${uid("n").toLowerCase()}`,
    description: "How to write effective Python tests:\nfixtures, \"parametrize\" and 'marks'.",
    instructions: "",
    triggers: ["python", "testing", "pytest"],
    examples: [],
    dataFields: [],
    metadata: {},
    markdown: {
      body: "\n# Skill: Python Testing\n\n1. Write `test_` functions — one thing each ✓\n\n```py\nassert 1 == 1\n```\n",
      license: "Apache-2.0",
      compatibility: null,
      allowedTools: ["Bash(pytest:*)", "Read"],
      metadata: { author: "alice", version: "1.0" },
      category: "coding",
      resources: [
        { path: "references/fixtures.md", content: "# Fixtures\n" },
        { path: "scripts/run_tests.py" },
      ],
    },
  });
}

function registerSkillRecordTests(group: Group): void {
  group("skill records", (test) => {
    const seedSkill = async (s: Storage) => {
      const bot = await seedBot(s);
      const skill = makeSkill(bot.id);
      await s.skills.create(skill);
      return { bot, skill };
    };

    test("create returns the record and get round-trips its data", async (s) => {
      const { bot, skill } = await seedSkill(s);
      const record = makeRecord(bot.id, skill.id, {
        customer: "Grace",
        tiers: 3,
        paid: false,
        price: 42.5,
        note: null,
        toppings: ["cherry", "cream"],
        address: { city: "Lyon", zip: "69001" },
      });
      expect(await s.skillRecords.create(record)).toEqual(record);
      expect(await s.skillRecords.get(bot.id, skill.id, record.id)).toEqual(record);
    });

    test("get returns null for an unknown record", async (s) => {
      const { bot, skill } = await seedSkill(s);
      expect(await s.skillRecords.get(bot.id, skill.id, uid("missing"))).toBeNull();
    });

    test("query without conditions returns the skill's records oldest first", async (s) => {
      const { bot, skill } = await seedSkill(s);
      const other = makeSkill(bot.id);
      await s.skills.create(other);
      for (const n of [2, 0, 1]) {
        await s.skillRecords.create(makeRecord(bot.id, skill.id, { n }, { createdAt: at(n) }));
      }
      await s.skillRecords.create(makeRecord(bot.id, other.id, { n: 99 }));
      const page = await s.skillRecords.query(bot.id, skill.id, {}, { limit: 10 });
      expect(page.items.map((record) => record.data.n)).toEqual([0, 1, 2]);
      expect(page.nextCursor).toBeNull();
    });

    test("query with `newestFirst` returns the newest records first and pages through all of them", async (s) => {
      const { bot, skill } = await seedSkill(s);
      for (const n of [3, 0, 4, 1, 2]) {
        await s.skillRecords.create(
          makeRecord(bot.id, skill.id, { n, even: n % 2 === 0 }, { createdAt: at(n) }),
        );
      }
      const first = await s.skillRecords.query(bot.id, skill.id, {}, { limit: 2, newestFirst: true });
      expect(first.items.map((record) => record.data.n)).toEqual([4, 3]);
      const second = await s.skillRecords.query(
        bot.id,
        skill.id,
        {},
        { limit: 2, newestFirst: true, cursor: first.nextCursor },
      );
      expect(second.items.map((record) => record.data.n)).toEqual([2, 1]);
      const third = await s.skillRecords.query(
        bot.id,
        skill.id,
        {},
        { limit: 2, newestFirst: true, cursor: second.nextCursor },
      );
      expect(third.items.map((record) => record.data.n)).toEqual([0]);
      expect(third.nextCursor).toBeNull();
      const even = await s.skillRecords.query(
        bot.id,
        skill.id,
        { equals: { even: true } },
        { limit: 10, newestFirst: true },
      );
      expect(even.items.map((record) => record.data.n)).toEqual([4, 2, 0]);
    });

    test("query `equals` compares strings case-insensitively", async (s) => {
      const { bot, skill } = await seedSkill(s);
      const grace = makeRecord(bot.id, skill.id, { customer: "Grace Hopper" });
      await s.skillRecords.create(grace);
      await s.skillRecords.create(makeRecord(bot.id, skill.id, { customer: "Grace" }));
      await s.skillRecords.create(makeRecord(bot.id, skill.id, { other: "grace hopper" }));
      const page = await s.skillRecords.query(
        bot.id,
        skill.id,
        { equals: { customer: "GRACE hopper" } },
        { limit: 10 },
      );
      expect(ids(page.items)).toEqual([grace.id]);
    });

    test("query `equals` matches numbers and booleans exactly", async (s) => {
      const { bot, skill } = await seedSkill(s);
      const match = makeRecord(bot.id, skill.id, { tiers: 3, paid: true }, { createdAt: at(1) });
      await s.skillRecords.create(match);
      await s.skillRecords.create(
        makeRecord(bot.id, skill.id, { tiers: 3, paid: false }, { createdAt: at(2) }),
      );
      await s.skillRecords.create(
        makeRecord(bot.id, skill.id, { tiers: 30, paid: true }, { createdAt: at(3) }),
      );
      const both = await s.skillRecords.query(
        bot.id,
        skill.id,
        { equals: { tiers: 3, paid: true } },
        { limit: 10 },
      );
      expect(ids(both.items)).toEqual([match.id]);
      const unpaid = await s.skillRecords.query(bot.id, skill.id, { equals: { paid: false } }, { limit: 10 });
      expect(unpaid.items).toHaveLength(1);
      expect(unpaid.items[0]?.data).toEqual({ tiers: 3, paid: false });
    });

    test("query `contains` matches substrings case-insensitively", async (s) => {
      const { bot, skill } = await seedSkill(s);
      const a = makeRecord(bot.id, skill.id, { note: "Chocolate CAKE with cherries" }, { createdAt: at(1) });
      const b = makeRecord(bot.id, skill.id, { note: "a small cake" }, { createdAt: at(2) });
      await s.skillRecords.create(a);
      await s.skillRecords.create(b);
      await s.skillRecords.create(makeRecord(bot.id, skill.id, { note: "bread" }, { createdAt: at(3) }));
      await s.skillRecords.create(makeRecord(bot.id, skill.id, { title: "cake" }, { createdAt: at(4) }));
      const page = await s.skillRecords.query(
        bot.id,
        skill.id,
        { contains: { note: "Cake" } },
        { limit: 10 },
      );
      expect(ids(page.items)).toEqual([a.id, b.id]);
    });

    test("query requires every condition to hold", async (s) => {
      const { bot, skill } = await seedSkill(s);
      const match = makeRecord(bot.id, skill.id, { customer: "Grace", note: "lemon tart", tiers: 2 });
      await s.skillRecords.create(match);
      await s.skillRecords.create(
        makeRecord(bot.id, skill.id, { customer: "Grace", note: "apple pie", tiers: 2 }),
      );
      await s.skillRecords.create(
        makeRecord(bot.id, skill.id, { customer: "Alan", note: "lemon tart", tiers: 2 }),
      );
      await s.skillRecords.create(
        makeRecord(bot.id, skill.id, { customer: "grace", note: "Lemon tart", tiers: 1 }),
      );
      const page = await s.skillRecords.query(
        bot.id,
        skill.id,
        { equals: { customer: "grace", tiers: 2 }, contains: { note: "LEMON" } },
        { limit: 10 },
      );
      expect(ids(page.items)).toEqual([match.id]);
    });

    test("update replaces the stored record", async (s) => {
      const { bot, skill } = await seedSkill(s);
      const record = makeRecord(bot.id, skill.id, { customer: "Grace", tiers: 1 });
      await s.skillRecords.create(record);
      const changed: SkillRecord = { ...record, data: { customer: "Grace", tiers: 4 }, updatedAt: at(40) };
      expect(await s.skillRecords.update(changed)).toEqual(changed);
      expect(await s.skillRecords.get(bot.id, skill.id, record.id)).toEqual(changed);
      const found = await s.skillRecords.query(bot.id, skill.id, { equals: { tiers: 4 } }, { limit: 10 });
      expect(ids(found.items)).toEqual([record.id]);
    });

    test("update returns null when the record does not exist", async (s) => {
      const { bot, skill } = await seedSkill(s);
      expect(await s.skillRecords.update(makeRecord(bot.id, skill.id))).toBeNull();
    });

    test("delete removes the record and returns true, then false", async (s) => {
      const { bot, skill } = await seedSkill(s);
      const record = makeRecord(bot.id, skill.id, { customer: "Grace" });
      await s.skillRecords.create(record);
      expect(await s.skillRecords.delete(bot.id, skill.id, record.id)).toBe(true);
      expect(await s.skillRecords.get(bot.id, skill.id, record.id)).toBeNull();
      expect((await s.skillRecords.query(bot.id, skill.id, {}, { limit: 10 })).items).toEqual([]);
      expect(await s.skillRecords.delete(bot.id, skill.id, record.id)).toBe(false);
    });

    test("a record is only visible under its own skill", async (s) => {
      const { bot, skill } = await seedSkill(s);
      const other = makeSkill(bot.id);
      await s.skills.create(other);
      const record = makeRecord(bot.id, skill.id, { customer: "Grace" });
      await s.skillRecords.create(record);
      expect(await s.skillRecords.get(bot.id, other.id, record.id)).toBeNull();
      expect(await s.skillRecords.update({ ...record, skillId: other.id })).toBeNull();
      expect(await s.skillRecords.delete(bot.id, other.id, record.id)).toBe(false);
      expect(await s.skillRecords.get(bot.id, skill.id, record.id)).toEqual(record);
    });
  });
}

function registerConversationTests(group: Group): void {
  group("conversations", (test) => {
    test("create returns the conversation and get round-trips every field", async (s) => {
      const bot = await seedBot(s);
      const conversation = makeConversation(bot.id, bot.userId, { createdAt: at(3), updatedAt: at(4) });
      expect(await s.conversations.create(conversation)).toEqual(conversation);
      expect(await s.conversations.get(bot.id, conversation.id)).toEqual(conversation);
      const untitled = makeConversation(bot.id, bot.userId, {
        title: null,
        channel: "telegram",
        metadata: {},
      });
      await s.conversations.create(untitled);
      expect(await s.conversations.get(bot.id, untitled.id)).toEqual(untitled);
    });

    test("get returns null for an unknown conversation", async (s) => {
      const bot = await seedBot(s);
      expect(await s.conversations.get(bot.id, uid("missing"))).toBeNull();
    });

    test("listByBot returns the most recently updated first", async (s) => {
      const bot = await seedBot(s);
      const conversations = [1, 3, 2].map((n) =>
        makeConversation(bot.id, bot.userId, { title: `c${n}`, createdAt: at(0), updatedAt: at(n) }),
      );
      for (const conversation of conversations) await s.conversations.create(conversation);
      const page = await s.conversations.listByBot(bot.id, { limit: 10 });
      expect(page.items.map((c) => c.title)).toEqual(["c3", "c2", "c1"]);
      expect(page.nextCursor).toBeNull();
    });

    test("touch sets updatedAt and nothing else, moving the conversation to the front", async (s) => {
      const bot = await seedBot(s);
      const old = makeConversation(bot.id, bot.userId, { title: "old", updatedAt: at(1) });
      const recent = makeConversation(bot.id, bot.userId, { title: "recent", updatedAt: at(2) });
      await s.conversations.create(old);
      await s.conversations.create(recent);
      await s.conversations.touch(bot.id, old.id, at(10));
      expect(await s.conversations.get(bot.id, old.id)).toEqual({ ...old, updatedAt: at(10) });
      const page = await s.conversations.listByBot(bot.id, { limit: 10 });
      expect(page.items.map((c) => c.title)).toEqual(["old", "recent"]);
    });
  });
}

function registerCommitTurnTests(group: Group): void {
  group("commitTurn", (test) => {
    test("stores the reply, the usage records and the conversation's updatedAt together", async (s) => {
      const bot = await seedBot(s);
      const conversation = makeConversation(bot.id, bot.userId, { updatedAt: at(1) });
      await s.conversations.create(conversation);
      const first = await s.messages.append(makeMessage(bot.id, conversation.id, { content: "hi" }));
      const reply = makeMessage(bot.id, conversation.id, {
        role: "assistant",
        content: "hello",
        createdAt: at(9),
      });
      const usage = [
        makeUsage(bot.userId, bot.id, { conversationId: conversation.id }),
        makeUsage(bot.userId, bot.id, { conversationId: conversation.id }),
      ];
      const stored = await s.commitTurn!({ message: reply, usage, conversationUpdatedAt: at(9) });
      expect(stored).toEqual({ ...reply, seq: stored.seq });
      expect(stored.seq).toBeGreaterThan(first.seq);
      expect(await s.messages.listRecent(bot.id, conversation.id, { limit: 5 })).toEqual([first, stored]);
      const recorded = await s.usage.list({ userId: bot.userId, botId: bot.id }, { limit: 10 });
      expect(ids(recorded.items).sort()).toEqual(ids(usage).sort());
      expect((await s.conversations.get(bot.id, conversation.id))?.updatedAt).toEqual(at(9));
    });

    test("stores nothing when the conversation is not the bot's", async (s) => {
      const bot = await seedBot(s);
      const other = await seedBot(s);
      const conversation = makeConversation(other.id, other.userId);
      await s.conversations.create(conversation);
      const usage = makeUsage(bot.userId, bot.id);
      await expect(
        s.commitTurn!({
          message: makeMessage(bot.id, conversation.id),
          usage: [usage],
          conversationUpdatedAt: at(3),
        }),
      ).rejects.toThrow();
      expect((await s.usage.list({ userId: bot.userId }, { limit: 10 })).items).toEqual([]);
      expect(await s.messages.listRecent(other.id, conversation.id, { limit: 10 })).toEqual([]);
    });
  });
}

function registerCommitRunTurnTests(group: Group, hasClaim: boolean): void {
  group("commitRunTurn", (test) => {
    const seed = async (s: Storage, status: "running" | "queued" = "running") => {
      const bot = await seedBot(s);
      const conversation = makeConversation(bot.id, bot.userId);
      await s.conversations.create(conversation);
      const run = await s.runs.create({
        id: uid("run"),
        botId: bot.id,
        userId: bot.userId,
        conversationKey: conversation.id,
        conversationId: conversation.id,
        eventType: "message",
        workflow: "message",
        status,
        input: { schema_version: 1, type: "message", text: "hi" },
        output: null,
        error: null,
        deliveryId: null,
        createdAt: at(1),
        startedAt: status === "running" ? at(2) : null,
        finishedAt: null,
      });
      const reply = makeMessage(bot.id, conversation.id, {
        role: "assistant",
        content: "hello",
        createdAt: at(9),
      });
      const outcome: Run = { ...run, status: "succeeded", output: { reply: "hello" }, finishedAt: at(9) };
      const step: RunStep = {
        runId: run.id,
        botId: bot.id,
        index: 0,
        name: "turn",
        kind: "turn",
        status: "succeeded",
        output: { reply: "hello" },
        error: null,
        startedAt: at(2),
        finishedAt: at(9),
      };
      return { bot, conversation, run, reply, outcome, step };
    };

    test("stores the reply, the run's step and the run's outcome together", async (s) => {
      const { bot, conversation, run, reply, outcome, step } = await seed(s);
      const usage = [makeUsage(bot.userId, bot.id, { conversationId: conversation.id })];
      const committed = await s.commitRunTurn!({
        message: reply,
        usage,
        conversationUpdatedAt: at(9),
        run: outcome,
        step,
        owner: null,
      });
      expect(committed.message).toEqual({ ...reply, seq: committed.message.seq });
      expect(committed.run).toEqual({ ...outcome, seq: run.seq });
      expect(await s.runs.get(run.id)).toEqual({ ...outcome, seq: run.seq });
      expect(await s.runSteps!.listByRun(bot.id, run.id)).toEqual([step]);
      expect(await s.messages.listRecent(bot.id, conversation.id, { limit: 5 })).toEqual([committed.message]);
      expect((await s.usage.list({ userId: bot.userId, botId: bot.id }, { limit: 10 })).items).toHaveLength(
        1,
      );
    });

    test("refuses the outcome of a run that is not running, and still stores the turn and its step", async (s) => {
      const { bot, conversation, run, reply, outcome, step } = await seed(s, "queued");
      const committed = await s.commitRunTurn!({
        message: reply,
        usage: [],
        conversationUpdatedAt: at(9),
        run: outcome,
        step,
        owner: null,
      });
      expect(committed.run).toBeNull();
      expect(await s.runs.get(run.id)).toEqual(run);
      expect(await s.runSteps!.listByRun(bot.id, run.id)).toEqual([step]);
      expect(await s.messages.listRecent(bot.id, conversation.id, { limit: 5 })).toHaveLength(1);
    });

    test("stores nothing when the conversation is not the bot's", async (s) => {
      const { bot, run, outcome, step } = await seed(s);
      const other = await seedBot(s);
      const foreign = makeConversation(other.id, other.userId);
      await s.conversations.create(foreign);
      await expect(
        s.commitRunTurn!({
          message: makeMessage(bot.id, foreign.id),
          usage: [],
          conversationUpdatedAt: at(9),
          run: outcome,
          step,
          owner: null,
        }),
      ).rejects.toThrow();
      expect(await s.runs.get(run.id)).toEqual(run);
      expect(await s.runSteps!.listByRun(bot.id, run.id)).toEqual([]);
    });

    if (!hasClaim) return;
    test("stores the outcome only under the owner's lease", async (s) => {
      const { bot, run, reply, outcome, step } = await seed(s, "queued");
      const claims = await s.runs.claim!({
        owner: "holder",
        now: at(3),
        leaseExpiresAt: at(60),
        limit: 1_000,
      });
      const mine = claims.find((claim) => claim.run.id === run.id);
      expect(mine).toBeDefined();
      const refused = await s.commitRunTurn!({
        message: reply,
        usage: [],
        conversationUpdatedAt: at(9),
        run: { ...outcome, startedAt: at(3) },
        step,
        owner: "someone-else",
      });
      expect(refused.run).toBeNull();
      expect((await s.runs.get(run.id))?.status).toBe("running");
      const second = makeMessage(bot.id, run.conversationId!, { role: "assistant", createdAt: at(10) });
      const stored = await s.commitRunTurn!({
        message: second,
        usage: [],
        conversationUpdatedAt: at(10),
        run: { ...outcome, startedAt: at(3) },
        step,
        owner: "holder",
      });
      expect(stored.run).toEqual({ ...outcome, startedAt: at(3), seq: run.seq });
      // Finished: its lease is gone, so nobody can extend it.
      expect(await s.runs.extendLeases!("holder", [run.id], at(100))).toEqual([]);
    });

    test("an outcome awaiting_approval is stored as such and releases the key: its next run is claimable", async (s) => {
      const { run, reply, outcome, step } = await seed(s, "queued");
      const next = await s.runs.create({ ...run, id: uid("run"), createdAt: at(2) });
      const claim = async (now: number) =>
        (await s.runs.claim!({ owner: "holder", now: at(now), leaseExpiresAt: at(60), limit: 1_000 }))
          .map((claimed) => claimed.run.id)
          .filter((id) => id === run.id || id === next.id);
      expect(await claim(3)).toEqual([run.id]);
      const waiting: Run = { ...outcome, status: "awaiting_approval", startedAt: at(3) };
      const stored = await s.commitRunTurn!({
        message: reply,
        usage: [],
        conversationUpdatedAt: at(9),
        run: waiting,
        step,
        owner: "holder",
      });
      expect(stored.run).toEqual({ ...waiting, seq: run.seq });
      expect(await claim(10)).toEqual([next.id]);
      expect((await s.runs.get(run.id))?.status).toBe("awaiting_approval");
    });

    /** Commits a seeded run's turn as `owner` (started at `startedAt`), handing off at `now`. */
    const commitHandingOff = (
      s: Storage,
      seeded: Awaited<ReturnType<typeof seed>>,
      owner: string | null,
      now: number,
      startedAt?: Date,
    ) =>
      s.commitRunTurn!({
        message: seeded.reply,
        usage: [],
        conversationUpdatedAt: at(9),
        run: startedAt === undefined ? seeded.outcome : { ...seeded.outcome, startedAt },
        step: seeded.step,
        owner,
        handOff: { now: at(now), leaseExpiresAt: at(now + 60) },
      });

    /** A claimed run of a key with two more queued behind it, and a queued run of another key. */
    const seedHandOff = async (s: Storage, reserveFor?: { owner: string; until: Date }) => {
      const seeded = await seed(s, "queued");
      const { run } = seeded;
      const next = await s.runs.create(
        { ...run, id: uid("run"), createdAt: at(2) },
        reserveFor ? { reserveFor } : {},
      );
      const third = await s.runs.create({ ...run, id: uid("run"), createdAt: at(2) });
      const claims = await s.runs.claim!({
        owner: "holder",
        now: at(3),
        leaseExpiresAt: at(60),
        limit: 1_000,
      });
      expect(claims.map((claimed) => claimed.run.id)).toContain(run.id);
      // Another key's run, queued after the claim: the hand-off leaves it to any claimer.
      const otherKey = await s.runs.create({
        ...run,
        id: uid("run"),
        conversationKey: `${run.conversationKey}-other`,
        createdAt: at(2),
      });
      const commit = (owner: string | null, now: number) => commitHandingOff(s, seeded, owner, now, at(3));
      return { ...seeded, next, third, otherKey, commit };
    };

    test("with handOff, claims the key's next run for the owner in the same step", async (s) => {
      const { run, outcome, next, third, otherKey, commit } = await seedHandOff(s);
      const committed = await commit("holder", 10);
      expect(committed.run).toEqual({ ...outcome, startedAt: at(3), seq: run.seq });
      const handed: Run = { ...next, status: "running", startedAt: at(10) };
      expect(committed.next).toEqual(handed);
      expect(await s.runs.get(next.id)).toEqual(handed);
      // Under the owner's lease: the owner extends it, nobody else claims it, the runs behind wait.
      expect(await s.runs.extendLeases!("holder", [next.id], at(80))).toEqual([next.id]);
      const others = await s.runs.claim!({
        owner: "other",
        now: at(11),
        leaseExpiresAt: at(70),
        limit: 1_000,
      });
      expect(others.map((claimed) => claimed.run.id)).not.toContain(next.id);
      expect(others.map((claimed) => claimed.run.id)).not.toContain(third.id);
      expect((await s.runs.get(third.id))?.status).toBe("queued");
      expect(others.map((claimed) => claimed.run.id)).toContain(otherKey.id);
    });

    test("with handOff, hands nothing on when the outcome is refused, without a lease, or nothing is queued", async (s) => {
      const { next, commit } = await seedHandOff(s);
      const refused = await commit("someone-else", 10);
      expect(refused.run).toBeNull();
      expect(refused.next ?? null).toBeNull();
      expect(await s.runs.get(next.id)).toEqual(next);
      // Runs executed without leases are not handed on.
      const unleased = await seed(s);
      const alone = await commitHandingOff(s, unleased, null, 10);
      expect(alone.run).toEqual({ ...unleased.outcome, seq: unleased.run.seq });
      expect(alone.next ?? null).toBeNull();
      // The key's last run: nothing to hand on.
      const last = await seed(s, "queued");
      await s.runs.claim!({ owner: "holder", now: at(3), leaseExpiresAt: at(60), limit: 1_000 });
      const ended = await commitHandingOff(s, last, "holder", 10, at(3));
      expect(ended.run?.status).toBe("succeeded");
      expect(ended.next).toBeNull();
    });

    test("with handOff naming the key's next run and no owner, starts it without a lease; naming another run starts nothing", async (s) => {
      /** A run the in-process queue started itself (no lease), with two more of its key queued behind it. */
      const seedLane = async () => {
        const seeded = await seed(s, "queued");
        const next = await s.runs.create({ ...seeded.run, id: uid("run"), createdAt: at(2) });
        const third = await s.runs.create({ ...seeded.run, id: uid("run"), createdAt: at(2) });
        await s.runs.update({ ...seeded.run, status: "running", startedAt: at(3) });
        const commit = (runId: string) =>
          s.commitRunTurn!({
            message: seeded.reply,
            usage: [],
            conversationUpdatedAt: at(9),
            run: { ...seeded.outcome, startedAt: at(3) },
            step: seeded.step,
            owner: null,
            handOff: { now: at(10), leaseExpiresAt: at(10), runId },
          });
        return { ...seeded, next, third, commit };
      };
      const lane = await seedLane();
      const committed = await lane.commit(lane.next.id);
      expect(committed.run).toEqual({ ...lane.outcome, startedAt: at(3), seq: lane.run.seq });
      const handed: Run = { ...lane.next, status: "running", startedAt: at(10) };
      expect(committed.next).toEqual(handed);
      expect(await s.runs.get(lane.next.id)).toEqual(handed);
      // No lease: no worker holds it.
      expect(await s.runs.extendLeases!("holder", [lane.next.id], at(80))).toEqual([]);
      expect((await s.runs.get(lane.third.id))?.status).toBe("queued");

      // The queue expects a run that is not the key's next: nothing is handed on.
      const other = await seedLane();
      const skipped = await other.commit(other.third.id);
      expect(skipped.run?.status).toBe("succeeded");
      expect(skipped.next ?? null).toBeNull();
      expect(await s.runs.get(other.next.id)).toEqual(other.next);
      expect(await s.runs.get(other.third.id)).toEqual(other.third);
    });

    test("with handOff, leaves a next run reserved for another owner to it until the reservation ends", async (s) => {
      const reserved = await seedHandOff(s, { owner: "waiter", until: at(20) });
      const committed = await reserved.commit("holder", 10);
      expect(committed.run?.status).toBe("succeeded");
      expect(committed.next).toBeNull();
      expect((await s.runs.get(reserved.next.id))?.status).toBe("queued");
      const claims = await s.runs.claim!({
        owner: "waiter",
        now: at(11),
        leaseExpiresAt: at(70),
        limit: 1_000,
      });
      expect(claims.map((claimed) => claimed.run.id)).toContain(reserved.next.id);

      const expired = await seedHandOff(s, { owner: "waiter", until: at(20) });
      const late = await expired.commit("holder", 30);
      expect(late.next).toEqual({ ...expired.next, status: "running", startedAt: at(30) });
    });
  });
}

function registerMessageTests(group: Group): void {
  group("messages", (test) => {
    const seedConversation = async (s: Storage) => {
      const bot = await seedBot(s);
      const conversation = makeConversation(bot.id, bot.userId);
      await s.conversations.create(conversation);
      return { bot, conversation };
    };

    test("append to a conversation the bot does not have throws NOT_FOUND", async (s) => {
      const { conversation } = await seedConversation(s);
      const other = await seedBot(s);
      for (const [botId, conversationId] of [
        [other.id, conversation.id],
        [other.id, uid("missing")],
      ] as const) {
        const failure = await s.messages.append(makeMessage(botId, conversationId)).catch((e: unknown) => e);
        expect(KiloError.is(failure, "NOT_FOUND"), String(failure)).toBe(true);
      }
    });

    test("append returns the message with a seq and round-trips every field", async (s) => {
      const { bot, conversation } = await seedConversation(s);
      const message = makeMessage(bot.id, conversation.id, {
        role: "assistant",
        content: "Your cake is ready.",
        metadata: { skill: "orders", usage: { promptTokens: 10 }, toolCalls: [{ name: "call_api" }] },
        createdAt: at(7),
      });
      const appended = await s.messages.append(message);
      expect(Number.isInteger(appended.seq)).toBe(true);
      expect(appended.seq).toBeGreaterThanOrEqual(0);
      expect(appended).toEqual({ ...message, seq: appended.seq });
      expect(await s.messages.listRecent(bot.id, conversation.id, { limit: 10 })).toEqual([appended]);
    });

    test("append assigns strictly increasing seqs and listRecent returns the last N in ascending order", async (s) => {
      const { bot, conversation } = await seedConversation(s);
      const appended: Message[] = [];
      for (let n = 0; n < 8; n++) {
        appended.push(await s.messages.append(makeMessage(bot.id, conversation.id, { content: `m${n}` })));
      }
      for (let n = 1; n < appended.length; n++)
        expect(appended[n]!.seq).toBeGreaterThan(appended[n - 1]!.seq);
      const recent = await s.messages.listRecent(bot.id, conversation.id, { limit: 3 });
      expect(recent.map((m) => m.content)).toEqual(["m5", "m6", "m7"]);
      expect(recent).toEqual(appended.slice(5));
    });

    test("listRecent with beforeSeq returns only earlier messages", async (s) => {
      const { bot, conversation } = await seedConversation(s);
      const appended: Message[] = [];
      for (let n = 0; n < 6; n++) {
        appended.push(await s.messages.append(makeMessage(bot.id, conversation.id, { content: `m${n}` })));
      }
      const before = appended[4]!.seq;
      const page = await s.messages.listRecent(bot.id, conversation.id, { limit: 2, beforeSeq: before });
      expect(page.map((m) => m.content)).toEqual(["m2", "m3"]);
      const all = await s.messages.listRecent(bot.id, conversation.id, { limit: 50, beforeSeq: before });
      expect(all.map((m) => m.content)).toEqual(["m0", "m1", "m2", "m3"]);
      const none = await s.messages.listRecent(bot.id, conversation.id, {
        limit: 5,
        beforeSeq: appended[0]!.seq,
      });
      expect(none).toEqual([]);
    });

    test("listRecent with a limit above the count returns every message", async (s) => {
      const { bot, conversation } = await seedConversation(s);
      for (const content of ["a", "b", "c"]) {
        await s.messages.append(makeMessage(bot.id, conversation.id, { content }));
      }
      const all = await s.messages.listRecent(bot.id, conversation.id, { limit: 500 });
      expect(all.map((m) => m.content)).toEqual(["a", "b", "c"]);
      expect(await s.messages.listRecent(bot.id, uid("missing"), { limit: 5 })).toEqual([]);
    });

    test("50 concurrent appends to one conversation get 50 distinct, strictly increasing seqs", async (s) => {
      const { bot, conversation } = await seedConversation(s);
      const messages = Array.from({ length: 50 }, (_, n) =>
        makeMessage(bot.id, conversation.id, { content: `m${n}` }),
      );
      const appended = await Promise.all(messages.map((message) => s.messages.append(message)));
      expect(new Set(appended.map((m) => m.seq)).size).toBe(50);
      const listed = await s.messages.listRecent(bot.id, conversation.id, { limit: 100 });
      expect(listed).toHaveLength(50);
      for (let n = 1; n < listed.length; n++) expect(listed[n]!.seq).toBeGreaterThan(listed[n - 1]!.seq);
      expect(new Set(ids(listed))).toEqual(new Set(ids(messages)));
      const seqById = new Map(appended.map((m) => [m.id, m.seq]));
      for (const message of listed) expect(message.seq).toBe(seqById.get(message.id));
    });

    test("concurrent appends to two conversations keep each conversation's order", async (s) => {
      const { bot, conversation: first } = await seedConversation(s);
      const second = makeConversation(bot.id, bot.userId);
      await s.conversations.create(second);
      const appends: Array<Promise<Message>> = [];
      for (let n = 0; n < 20; n++) {
        appends.push(s.messages.append(makeMessage(bot.id, first.id, { content: `a${n}` })));
        appends.push(s.messages.append(makeMessage(bot.id, second.id, { content: `b${n}` })));
      }
      await Promise.all(appends);
      for (const [conversation, prefix] of [
        [first, "a"],
        [second, "b"],
      ] as const) {
        const listed = await s.messages.listRecent(bot.id, conversation.id, { limit: 100 });
        expect(listed).toHaveLength(20);
        expect(listed.every((m) => m.content.startsWith(prefix))).toBe(true);
        for (let n = 1; n < listed.length; n++) expect(listed[n]!.seq).toBeGreaterThan(listed[n - 1]!.seq);
      }
    });
  });
}

function registerMemoryTests(group: Group): void {
  group("memories", (test) => {
    test("create returns the memory and get round-trips every field", async (s) => {
      const bot = await seedBot(s);
      const memory = makeMemory(bot.id, bot.userId, { createdAt: at(1), updatedAt: at(2) });
      expect(await s.memories.create(memory)).toEqual(memory);
      const stored = await s.memories.get(bot.id, memory.id);
      expect(stored).toEqual(memory);
      expect(stored?.history[0]?.replacedAt).toBeInstanceOf(Date);
    });

    test("get returns null for an unknown memory", async (s) => {
      const bot = await seedBot(s);
      expect(await s.memories.get(bot.id, uid("missing"))).toBeNull();
    });

    test("findByKey compares keys case-insensitively and is scoped to the user", async (s) => {
      const bot = await seedBot(s);
      const memory = makeMemory(bot.id, bot.userId, { key: "Bakery Name" });
      await s.memories.create(memory);
      expect(await s.memories.findByKey(bot.id, bot.userId, "bakery name")).toEqual(memory);
      expect(await s.memories.findByKey(bot.id, bot.userId, "BAKERY NAME")).toEqual(memory);
      expect(await s.memories.findByKey(bot.id, bot.userId, "bakery")).toBeNull();
      const stranger = makeUser();
      await s.users.upsert(stranger);
      expect(await s.memories.findByKey(bot.id, stranger.id, "bakery name")).toBeNull();
    });

    test("list returns the bot's memories about the user, most recently updated first", async (s) => {
      const bot = await seedBot(s);
      const stranger = makeUser();
      await s.users.upsert(stranger);
      for (const n of [2, 3, 1]) {
        await s.memories.create(makeMemory(bot.id, bot.userId, { key: `k${n}`, updatedAt: at(n) }));
      }
      await s.memories.create(makeMemory(bot.id, stranger.id, { key: "theirs" }));
      const page = await s.memories.list(bot.id, bot.userId, { limit: 10 });
      expect(page.items.map((m) => m.key)).toEqual(["k3", "k2", "k1"]);
      expect(page.nextCursor).toBeNull();
    });

    test("update replaces the memory and moves it to the front of the list", async (s) => {
      const bot = await seedBot(s);
      const older = makeMemory(bot.id, bot.userId, { key: "older", updatedAt: at(1) });
      const newer = makeMemory(bot.id, bot.userId, { key: "newer", updatedAt: at(2) });
      await s.memories.create(older);
      await s.memories.create(newer);
      const changed: Memory = {
        ...older,
        content: "Sweeter Crumbs",
        history: [...older.history, { content: older.content, source: older.source, replacedAt: at(5) }],
        updatedAt: at(5),
      };
      expect(await s.memories.update(changed)).toEqual(changed);
      expect(await s.memories.get(bot.id, older.id)).toEqual(changed);
      const page = await s.memories.list(bot.id, bot.userId, { limit: 10 });
      expect(page.items.map((m) => m.key)).toEqual(["older", "newer"]);
    });

    test("update returns null when the memory does not exist", async (s) => {
      const bot = await seedBot(s);
      expect(await s.memories.update(makeMemory(bot.id, bot.userId))).toBeNull();
    });

    test("delete removes the memory and returns true, then false", async (s) => {
      const bot = await seedBot(s);
      const memory = makeMemory(bot.id, bot.userId);
      await s.memories.create(memory);
      expect(await s.memories.delete(bot.id, memory.id)).toBe(true);
      expect(await s.memories.get(bot.id, memory.id)).toBeNull();
      expect(await s.memories.findByKey(bot.id, bot.userId, memory.key)).toBeNull();
      expect(await s.memories.delete(bot.id, memory.id)).toBe(false);
    });
  });
}

function registerUsageTests(group: Group): void {
  group("usage", (test) => {
    test("record returns the record and list round-trips every field", async (s) => {
      const bot = await seedBot(s);
      const usage = makeUsage(bot.userId, bot.id, {
        success: false,
        errorCode: "PROVIDER_FAILED",
        taskType: "complex_reasoning",
      });
      expect(await s.usage.record(usage)).toEqual(usage);
      const page = await s.usage.list({ userId: bot.userId }, { limit: 10 });
      expect(page).toEqual({ items: [usage], nextCursor: null });
    });

    test("list returns the user's records oldest first", async (s) => {
      const bot = await seedBot(s);
      for (const n of [3, 1, 2])
        await s.usage.record(makeUsage(bot.userId, bot.id, { purpose: `p${n}`, createdAt: at(n) }));
      const stranger = await seedBot(s);
      await s.usage.record(makeUsage(stranger.userId, stranger.id));
      const page = await s.usage.list({ userId: bot.userId }, { limit: 10 });
      expect(page.items.map((u) => u.purpose)).toEqual(["p1", "p2", "p3"]);
    });

    test("list filters by bot", async (s) => {
      const bot = await seedBot(s);
      const sibling = await seedBot(s, { userId: bot.userId });
      const mine = makeUsage(bot.userId, bot.id, { createdAt: at(1) });
      await s.usage.record(mine);
      await s.usage.record(makeUsage(bot.userId, sibling.id, { createdAt: at(2) }));
      await s.usage.record(makeUsage(bot.userId, null, { createdAt: at(3) }));
      expect((await s.usage.list({ userId: bot.userId, botId: bot.id }, { limit: 10 })).items).toEqual([
        mine,
      ]);
      expect((await s.usage.list({ userId: bot.userId }, { limit: 10 })).items).toHaveLength(3);
    });

    test("list filters by time: `from` inclusive, `to` exclusive", async (s) => {
      const bot = await seedBot(s);
      for (const n of [1, 2, 3, 4, 5]) {
        await s.usage.record(makeUsage(bot.userId, bot.id, { purpose: `p${n}`, createdAt: at(n) }));
      }
      const purposes = async (from?: Date, to?: Date) =>
        (await s.usage.list({ userId: bot.userId, from, to }, { limit: 10 })).items.map((u) => u.purpose);
      expect(await purposes(at(2), at(4))).toEqual(["p2", "p3"]);
      expect(await purposes(at(4))).toEqual(["p4", "p5"]);
      expect(await purposes(undefined, at(2))).toEqual(["p1"]);
      expect(await purposes(at(3), at(3))).toEqual([]);
    });
  });
}

function registerProposalTests(group: Group): void {
  group("proposals", (test) => {
    test("create returns the proposal and get round-trips every field", async (s) => {
      const bot = await seedBot(s);
      const proposal = makeProposal(bot.id, bot.userId, { createdAt: at(9) });
      expect(await s.proposals.create(proposal)).toEqual(proposal);
      expect(await s.proposals.get(bot.id, proposal.id)).toEqual(proposal);
    });

    test("get returns null for an unknown proposal", async (s) => {
      const bot = await seedBot(s);
      expect(await s.proposals.get(bot.id, uid("missing"))).toBeNull();
    });

    test("listByBot returns newest first, filtered by status, up to the limit", async (s) => {
      const bot = await seedBot(s);
      const statuses = ["pending", "dismissed", "pending", "accepted", "pending"] as const;
      for (const [n, status] of statuses.entries()) {
        await s.proposals.create(
          makeProposal(bot.id, bot.userId, { name: `p${n}`, status, createdAt: at(n) }),
        );
      }
      const all = await s.proposals.listByBot(bot.id, { limit: 10 });
      expect(all.map((p) => p.name)).toEqual(["p4", "p3", "p2", "p1", "p0"]);
      const pending = await s.proposals.listByBot(bot.id, { status: "pending", limit: 10 });
      expect(pending.map((p) => p.name)).toEqual(["p4", "p2", "p0"]);
      const two = await s.proposals.listByBot(bot.id, { status: "pending", limit: 2 });
      expect(two.map((p) => p.name)).toEqual(["p4", "p2"]);
    });

    test("update replaces the stored proposal", async (s) => {
      const bot = await seedBot(s);
      const proposal = makeProposal(bot.id, bot.userId);
      await s.proposals.create(proposal);
      const skill = makeSkill(bot.id);
      await s.skills.create(skill);
      const accepted: Proposal = { ...proposal, status: "accepted", skillId: skill.id, resolvedAt: at(30) };
      expect(await s.proposals.update(accepted)).toEqual(accepted);
      expect(await s.proposals.get(bot.id, proposal.id)).toEqual(accepted);
      expect(await s.proposals.listByBot(bot.id, { status: "pending", limit: 10 })).toEqual([]);
    });

    test("update returns null when the proposal does not exist", async (s) => {
      const bot = await seedBot(s);
      expect(await s.proposals.update(makeProposal(bot.id, bot.userId))).toBeNull();
    });

    test("an integration proposal's plan round-trips through create and update", async (s) => {
      const bot = await seedBot(s);
      const integration: NonNullable<Proposal["integration"]> = {
        topic: "Acme",
        stage: "proposed",
        sources: ["https://docs.acme.example/api"],
        tool: {
          name: "acme",
          description: "Acme orders",
          baseUrl: "https://api.acme.example",
          auth: { type: "api_key_header", header: "X-Api-Key" },
          endpoints: makeEndpoints(),
        },
        skills: [
          { name: "Acme Orders", description: "Orders", instructions: "Use acme.", triggers: ["acme"] },
        ],
        rejected: [{ name: "Evil", reasons: ["tries to override the bot's rules"] }],
        toolId: null,
        skillIds: [],
      };
      const proposal = makeProposal(bot.id, bot.userId, { integration });
      expect(await s.proposals.create(proposal)).toEqual(proposal);
      expect(await s.proposals.get(bot.id, proposal.id)).toEqual(proposal);
      const approved: Proposal = {
        ...proposal,
        status: "accepted",
        resolvedAt: at(5),
        integration: { ...integration, stage: "awaiting-credential" },
      };
      await s.proposals.update(approved);
      expect(await s.proposals.get(bot.id, proposal.id)).toEqual(approved);
    });
  });
}

function registerToolTests(group: Group): void {
  group("tools", (test) => {
    test("create returns the tool and get round-trips every field, for every kind of auth", async (s) => {
      const bot = await seedBot(s);
      const tools = [
        makeTool(bot.id, { createdAt: at(1), updatedAt: at(2) }),
        makeTool(bot.id, { auth: { type: "none" }, credential: null, createdAt: at(3) }),
        makeTool(bot.id, { auth: { type: "api_key_header", header: "X-Api-Key" }, createdAt: at(4) }),
        makeTool(bot.id, { auth: { type: "basic", username: "" }, createdAt: at(5) }),
        makeTool(bot.id, { auth: { type: "api_key_query", param: "api_key" }, createdAt: at(6) }),
      ];
      for (const tool of tools) {
        expect(await s.tools.create(tool)).toEqual(tool);
        const stored = await s.tools.get(bot.id, tool.id);
        expect(stored).toEqual(tool);
        expect(stored?.createdAt).toBeInstanceOf(Date);
      }
    });

    test("get returns null for an unknown tool", async (s) => {
      const bot = await seedBot(s);
      expect(await s.tools.get(bot.id, uid("missing"))).toBeNull();
    });

    test("findByName compares names case-insensitively and matches whole names only", async (s) => {
      const bot = await seedBot(s);
      const tool = makeTool(bot.id, { name: "acme-pay" });
      await s.tools.create(tool);
      expect(await s.tools.findByName(bot.id, "acme-pay")).toEqual(tool);
      expect(await s.tools.findByName(bot.id, "ACME-Pay")).toEqual(tool);
      expect(await s.tools.findByName(bot.id, "acme")).toBeNull();
      expect(await s.tools.findByName(bot.id, "acme_pay")).toBeNull();
      expect(await s.tools.findByName(bot.id, "acme%")).toBeNull();
    });

    test("listByBot returns the bot's tools oldest first", async (s) => {
      const bot = await seedBot(s);
      const tools = [2, 0, 1].map((n) => makeTool(bot.id, { name: `tool-${n}`, createdAt: at(n) }));
      for (const tool of tools) await s.tools.create(tool);
      const listed = await s.tools.listByBot(bot.id);
      expect(listed.map((tool) => tool.name)).toEqual(["tool-0", "tool-1", "tool-2"]);
      expect(listed[0]).toEqual(tools[1]);
      expect(await s.tools.listByBot(uid("nobody"))).toEqual([]);
    });

    test("update replaces the stored tool, credential included", async (s) => {
      const bot = await seedBot(s);
      const tool = makeTool(bot.id, { name: "before" });
      await s.tools.create(tool);
      const changed: Tool = {
        ...tool,
        name: "after",
        baseUrl: "https://api.other.example",
        auth: { type: "api_key_query", param: "key" },
        credential: null,
        endpoints: [makeEndpoints()[0]!],
        updatedAt: at(60),
      };
      expect(await s.tools.update(changed)).toEqual(changed);
      expect(await s.tools.get(bot.id, tool.id)).toEqual(changed);
      expect(await s.tools.findByName(bot.id, "after")).toEqual(changed);
      expect(await s.tools.findByName(bot.id, "before")).toBeNull();
      const rekeyed: Tool = { ...changed, credential: "v1.key-2.bmV3.Y2lwaGVy.dGFn", updatedAt: at(61) };
      expect(await s.tools.update(rekeyed)).toEqual(rekeyed);
      expect(await s.tools.get(bot.id, tool.id)).toEqual(rekeyed);
    });

    test("update returns null when the tool does not exist", async (s) => {
      const bot = await seedBot(s);
      const tool = makeTool(bot.id);
      expect(await s.tools.update(tool)).toBeNull();
      expect(await s.tools.get(bot.id, tool.id)).toBeNull();
    });

    test("delete removes the tool and returns true, then false; its name can be used again", async (s) => {
      const bot = await seedBot(s);
      const tool = makeTool(bot.id, { name: "acme" });
      await s.tools.create(tool);
      expect(await s.tools.delete(bot.id, tool.id)).toBe(true);
      expect(await s.tools.get(bot.id, tool.id)).toBeNull();
      expect(await s.tools.findByName(bot.id, "acme")).toBeNull();
      expect(await s.tools.listByBot(bot.id)).toEqual([]);
      expect(await s.tools.delete(bot.id, tool.id)).toBe(false);
      const again = makeTool(bot.id, { name: "ACME" });
      expect(await s.tools.create(again)).toEqual(again);
    });

    test("delete keeps the tool's audit entries and approvals", async (s) => {
      const world = await seedWorld(s);
      const { bot, tool, audit, approval } = world;
      expect(await s.tools.delete(bot.id, tool.id)).toBe(true);
      expect((await s.toolAudit.list(bot.id, { limit: 10 })).items).toEqual([audit]);
      expect(await s.approvals.get(bot.id, approval.id)).toEqual(approval);
    });

    test("create for a bot that does not exist throws NOT_FOUND", async (s) => {
      const tool = makeTool(uid("no-such-bot"));
      await expectKiloError(s.tools.create(tool), "NOT_FOUND");
      expect(await s.tools.get(tool.botId, tool.id)).toBeNull();
    });
  });
}

function registerToolAuditTests(group: Group): void {
  group("tool audit", (test) => {
    test("record returns the entry and list round-trips every field", async (s) => {
      const bot = await seedBot(s);
      const conversation = makeConversation(bot.id, bot.userId);
      await s.conversations.create(conversation);
      const succeeded = makeAudit(bot.id, bot.userId, { conversationId: conversation.id, createdAt: at(1) });
      const blocked = makeAudit(bot.id, bot.userId, {
        toolId: null,
        toolName: "unknown-tool",
        endpoint: "not_registered",
        method: null,
        status: "blocked",
        httpStatus: null,
        durationMs: 0,
        responseBytes: 0,
        errorCode: "SSRF_BLOCKED",
        createdAt: at(2),
      });
      expect(await s.toolAudit.record(succeeded)).toEqual(succeeded);
      expect(await s.toolAudit.record(blocked)).toEqual(blocked);
      const page = await s.toolAudit.list(bot.id, { limit: 10 });
      expect(page).toEqual({ items: [blocked, succeeded], nextCursor: null });
      expect(page.items[0]?.createdAt).toBeInstanceOf(Date);
    });

    test("every status and method round-trips", async (s) => {
      const bot = await seedBot(s);
      const statuses = ["succeeded", "failed", "blocked", "denied", "awaiting_approval"] as const;
      const methods = ["GET", "POST", "PUT", "PATCH", "DELETE"] as const;
      const entries = statuses.map((status, n) =>
        makeAudit(bot.id, bot.userId, {
          status,
          method: methods[n]!,
          httpStatus: status === "failed" ? 503 : null,
          createdAt: at(n),
        }),
      );
      for (const entry of entries) await s.toolAudit.record(entry);
      expect((await s.toolAudit.list(bot.id, { limit: 10 })).items).toEqual([...entries].reverse());
    });

    test("list returns only the bot's entries, newest first", async (s) => {
      const bot = await seedBot(s);
      const sibling = await seedBot(s, { userId: bot.userId });
      for (const n of [2, 3, 1]) {
        await s.toolAudit.record(makeAudit(bot.id, bot.userId, { endpoint: `e${n}`, createdAt: at(n) }));
      }
      await s.toolAudit.record(makeAudit(sibling.id, bot.userId, { endpoint: "theirs", createdAt: at(9) }));
      const page = await s.toolAudit.list(bot.id, { limit: 10 });
      expect(page.items.map((entry) => entry.endpoint)).toEqual(["e3", "e2", "e1"]);
      expect(await s.toolAudit.list(uid("nobody"), { limit: 10 })).toEqual({ items: [], nextCursor: null });
    });

    test("record for a bot that does not exist throws NOT_FOUND", async (s) => {
      const entry = makeAudit(uid("no-such-bot"), uid("user"));
      await expectKiloError(s.toolAudit.record(entry), "NOT_FOUND");
      expect((await s.toolAudit.list(entry.botId, { limit: 10 })).items).toEqual([]);
    });
  });
}

function registerToolApprovalTests(group: Group): void {
  group("tool approvals", (test) => {
    const seedConversation = async (s: Storage) => {
      const bot = await seedBot(s);
      const conversation = makeConversation(bot.id, bot.userId);
      await s.conversations.create(conversation);
      return { bot, conversation };
    };

    test("create returns the approval and get round-trips every field", async (s) => {
      const { bot, conversation } = await seedConversation(s);
      const approval = makeApproval(bot.id, bot.userId, conversation.id, { createdAt: at(7) });
      expect(await s.approvals.create(approval)).toEqual(approval);
      const stored = await s.approvals.get(bot.id, approval.id);
      expect(stored).toEqual(approval);
      expect(stored?.createdAt).toBeInstanceOf(Date);
      // An approval asked outside a run has no run id.
      const outside = makeApproval(bot.id, bot.userId, conversation.id, { runId: null });
      await s.approvals.create(outside);
      expect(await s.approvals.get(bot.id, outside.id)).toEqual(outside);
    });

    test("get returns null for an unknown approval", async (s) => {
      const bot = await seedBot(s);
      expect(await s.approvals.get(bot.id, uid("missing"))).toBeNull();
    });

    test("listByBot returns newest first, filtered by status, up to the limit", async (s) => {
      const { bot, conversation } = await seedConversation(s);
      const statuses = ["pending", "denied", "pending", "approved", "pending"] as const;
      for (const [n, status] of statuses.entries()) {
        await s.approvals.create(
          makeApproval(bot.id, bot.userId, conversation.id, { endpoint: `e${n}`, status, createdAt: at(n) }),
        );
      }
      const all = await s.approvals.listByBot(bot.id, { limit: 10 });
      expect(all.map((a) => a.endpoint)).toEqual(["e4", "e3", "e2", "e1", "e0"]);
      const pending = await s.approvals.listByBot(bot.id, { status: "pending", limit: 10 });
      expect(pending.map((a) => a.endpoint)).toEqual(["e4", "e2", "e0"]);
      const two = await s.approvals.listByBot(bot.id, { status: "pending", limit: 2 });
      expect(two.map((a) => a.endpoint)).toEqual(["e4", "e2"]);
      expect(await s.approvals.listByBot(bot.id, { status: "approved", limit: 10 })).toHaveLength(1);
    });

    test("update replaces the stored approval", async (s) => {
      const { bot, conversation } = await seedConversation(s);
      const approval = makeApproval(bot.id, bot.userId, conversation.id);
      await s.approvals.create(approval);
      const denied: ToolApproval = { ...approval, status: "denied", reason: "too much", decidedAt: at(30) };
      expect(await s.approvals.update(denied)).toEqual(denied);
      expect(await s.approvals.get(bot.id, approval.id)).toEqual(denied);
      expect(await s.approvals.listByBot(bot.id, { status: "pending", limit: 10 })).toEqual([]);
    });

    test("update returns null when the approval does not exist", async (s) => {
      const { bot, conversation } = await seedConversation(s);
      const approval = makeApproval(bot.id, bot.userId, conversation.id);
      expect(await s.approvals.update(approval)).toBeNull();
      expect(await s.approvals.get(bot.id, approval.id)).toBeNull();
    });

    test("decide records the decision of a pending approval, once", async (s) => {
      const { bot, conversation } = await seedConversation(s);
      const approval = makeApproval(bot.id, bot.userId, conversation.id);
      await s.approvals.create(approval);
      const decided = await s.approvals.decide(bot.id, approval.id, {
        status: "approved",
        reason: null,
        decidedAt: at(40),
      });
      const expected: ToolApproval = { ...approval, status: "approved", decidedAt: at(40) };
      expect(decided).toEqual(expected);
      expect(await s.approvals.get(bot.id, approval.id)).toEqual(expected);
      await expectKiloError(
        s.approvals.decide(bot.id, approval.id, {
          status: "denied",
          reason: "changed my mind",
          decidedAt: at(41),
        }),
        "CONFLICT",
      );
      expect(await s.approvals.get(bot.id, approval.id)).toEqual(expected);
      const other = makeApproval(bot.id, bot.userId, conversation.id);
      await s.approvals.create(other);
      const denial = { status: "denied", reason: "not today", decidedAt: at(42) } as const;
      expect(await s.approvals.decide(bot.id, other.id, denial)).toEqual({ ...other, ...denial });
    });

    test("decide returns null for an unknown approval", async (s) => {
      const bot = await seedBot(s);
      const decision = { status: "approved", reason: null, decidedAt: at(1) } as const;
      expect(await s.approvals.decide(bot.id, uid("missing"), decision)).toBeNull();
    });

    test("create for a bot that does not exist throws NOT_FOUND", async (s) => {
      const approval = makeApproval(uid("no-such-bot"), uid("user"), uid("conversation"));
      await expectKiloError(s.approvals.create(approval), "NOT_FOUND");
      expect(await s.approvals.get(approval.botId, approval.id)).toBeNull();
    });
  });
}

// ---------------------------------------------------------------------------
// Tenancy

function registerTenancyTests(group: Group): void {
  group("tenancy", (test) => {
    /** Two bots of the same user, each with one of everything. */
    const seedTwo = async (s: Storage) => {
      const mine = await seedWorld(s);
      const theirs = await seedWorld(s, mine.bot.userId);
      return { mine, theirs, other: theirs.bot.id };
    };

    test("skills of one bot are invisible and untouchable through another", async (s) => {
      const { mine, other } = await seedTwo(s);
      expect(await s.skills.get(other, mine.skill.id)).toBeNull();
      expect(ids(await s.skills.listByBot(other))).not.toContain(mine.skill.id);
      expect(await s.skills.update({ ...mine.skill, botId: other, name: "Stolen" })).toBeNull();
      expect(await s.skills.delete(other, mine.skill.id)).toBe(false);
      expect(await s.skills.get(mine.bot.id, mine.skill.id)).toEqual(mine.skill);
    });

    test("skill names only clash within one bot", async (s) => {
      const { mine, other } = await seedTwo(s);
      const twin = makeSkill(other, { name: mine.skill.name.toUpperCase() });
      expect(await s.skills.create(twin)).toEqual(twin);
    });

    test("skill records of one bot are invisible and untouchable through another", async (s) => {
      const { mine, other } = await seedTwo(s);
      const { record, skill } = mine;
      expect(await s.skillRecords.get(other, skill.id, record.id)).toBeNull();
      expect((await s.skillRecords.query(other, skill.id, {}, { limit: 10 })).items).toEqual([]);
      expect(
        await s.skillRecords.update({ ...record, botId: other, data: { customer: "Mallory" } }),
      ).toBeNull();
      expect(await s.skillRecords.delete(other, skill.id, record.id)).toBe(false);
      expect(await s.skillRecords.get(mine.bot.id, skill.id, record.id)).toEqual(record);
    });

    test("a record cannot be filed under another bot's skill", async (s) => {
      const { mine, other } = await seedTwo(s);
      const intruder = makeRecord(other, mine.skill.id, { customer: "Mallory" });
      await rejection(s.skillRecords.create(intruder));
      const page = await s.skillRecords.query(mine.bot.id, mine.skill.id, {}, { limit: 10 });
      expect(ids(page.items)).toEqual([mine.record.id]);
      expect((await s.skillRecords.query(other, mine.skill.id, {}, { limit: 10 })).items).toEqual([]);
    });

    test("conversations of one bot are invisible and untouchable through another", async (s) => {
      const { mine, other } = await seedTwo(s);
      const { conversation } = mine;
      expect(await s.conversations.get(other, conversation.id)).toBeNull();
      expect(ids((await s.conversations.listByBot(other, { limit: 50 })).items)).not.toContain(
        conversation.id,
      );
      await s.conversations.touch(other, conversation.id, at(1000));
      expect(await s.conversations.get(mine.bot.id, conversation.id)).toEqual(conversation);
    });

    test("messages of one bot are invisible through another", async (s) => {
      const { mine, other } = await seedTwo(s);
      expect(await s.messages.listRecent(other, mine.conversation.id, { limit: 10 })).toEqual([]);
      const listed = await s.messages.listRecent(mine.bot.id, mine.conversation.id, { limit: 10 });
      expect(listed).toEqual(mine.messages);
    });

    test("a message cannot be appended to another bot's conversation", async (s) => {
      const { mine, other } = await seedTwo(s);
      await rejection(s.messages.append(makeMessage(other, mine.conversation.id, { content: "injected" })));
      const listed = await s.messages.listRecent(mine.bot.id, mine.conversation.id, { limit: 10 });
      expect(listed).toEqual(mine.messages);
      expect(await s.messages.listRecent(other, mine.conversation.id, { limit: 10 })).toEqual([]);
    });

    test("memories of one bot are invisible and untouchable through another", async (s) => {
      const { mine, theirs, other } = await seedTwo(s);
      const { memory } = mine;
      expect(await s.memories.get(other, memory.id)).toBeNull();
      expect(await s.memories.findByKey(other, memory.userId, memory.key)).toEqual(theirs.memory);
      expect(ids((await s.memories.list(other, memory.userId, { limit: 50 })).items)).not.toContain(
        memory.id,
      );
      expect(await s.memories.update({ ...memory, botId: other, content: "stolen" })).toBeNull();
      expect(await s.memories.delete(other, memory.id)).toBe(false);
      expect(await s.memories.get(mine.bot.id, memory.id)).toEqual(memory);
      expect(await s.memories.findByKey(mine.bot.id, memory.userId, memory.key)).toEqual(memory);
    });

    test("usage filtered by bot excludes another bot's records", async (s) => {
      const { mine, theirs, other } = await seedTwo(s);
      const page = await s.usage.list({ userId: mine.bot.userId, botId: other }, { limit: 50 });
      expect(ids(page.items)).toEqual([theirs.usage.id]);
      const stranger = makeUser();
      await s.users.upsert(stranger);
      expect((await s.usage.list({ userId: stranger.id }, { limit: 50 })).items).toEqual([]);
      expect((await s.usage.list({ userId: stranger.id, botId: mine.bot.id }, { limit: 50 })).items).toEqual(
        [],
      );
    });

    test("proposals of one bot are invisible and untouchable through another", async (s) => {
      const { mine, other } = await seedTwo(s);
      const { proposal } = mine;
      expect(await s.proposals.get(other, proposal.id)).toBeNull();
      expect(ids(await s.proposals.listByBot(other, { limit: 50 }))).not.toContain(proposal.id);
      expect(await s.proposals.update({ ...proposal, botId: other, status: "dismissed" })).toBeNull();
      expect(await s.proposals.get(mine.bot.id, proposal.id)).toEqual(proposal);
    });

    test("tools of one bot are invisible and untouchable through another", async (s) => {
      const { mine, theirs, other } = await seedTwo(s);
      const { tool } = mine;
      expect(await s.tools.get(other, tool.id)).toBeNull();
      expect(await s.tools.findByName(other, tool.name)).toBeNull();
      expect(await s.tools.findByName(other, theirs.tool.name)).toEqual(theirs.tool);
      expect(ids(await s.tools.listByBot(other))).toEqual([theirs.tool.id]);
      expect(await s.tools.update({ ...tool, botId: other, credential: "stolen" })).toBeNull();
      expect(await s.tools.delete(other, tool.id)).toBe(false);
      expect(await s.tools.get(mine.bot.id, tool.id)).toEqual(tool);
      expect(await s.tools.findByName(mine.bot.id, tool.name)).toEqual(tool);
    });

    test("tool names only clash within one bot", async (s) => {
      const { mine, other } = await seedTwo(s);
      const twin = makeTool(other, { name: mine.tool.name.toUpperCase() });
      expect(await s.tools.create(twin)).toEqual(twin);
      expect(await s.tools.findByName(mine.bot.id, mine.tool.name)).toEqual(mine.tool);
      expect(await s.tools.findByName(other, mine.tool.name)).toEqual(twin);
    });

    test("tool audit entries of one bot are invisible through another", async (s) => {
      const { mine, theirs, other } = await seedTwo(s);
      expect(ids((await s.toolAudit.list(other, { limit: 50 })).items)).toEqual([theirs.audit.id]);
      expect(ids((await s.toolAudit.list(mine.bot.id, { limit: 50 })).items)).toEqual([mine.audit.id]);
    });

    test("tool approvals of one bot are invisible and untouchable through another", async (s) => {
      const { mine, theirs, other } = await seedTwo(s);
      const { approval } = mine;
      expect(await s.approvals.get(other, approval.id)).toBeNull();
      expect(ids(await s.approvals.listByBot(other, { limit: 50 }))).toEqual([theirs.approval.id]);
      expect(await s.approvals.update({ ...approval, botId: other, status: "approved" })).toBeNull();
      const decision = { status: "approved", reason: null, decidedAt: at(5) } as const;
      expect(await s.approvals.decide(other, approval.id, decision)).toBeNull();
      expect(await s.approvals.get(mine.bot.id, approval.id)).toEqual(approval);
    });

    test("ids containing ':' and '.' never collide across bots", async (s) => {
      const prefix = uid("t");
      const user = makeUser({ id: `${prefix}.u` });
      const colonUser = makeUser({ id: `x:${prefix}.u` });
      await s.users.upsert(user);
      await s.users.upsert(colonUser);
      // "a:x" + "y" and "a" + "x:y" join to the same string when ':' is the separator.
      const left = makeBot({ id: `${prefix}:x`, userId: user.id });
      const right = makeBot({ id: prefix, userId: colonUser.id });
      await s.bots.create(left);
      await s.bots.create(right);
      const leftMemory = makeMemory(left.id, user.id, { key: "k" });
      const rightMemory = makeMemory(right.id, colonUser.id, { key: "k" });
      await s.memories.create(leftMemory);
      await s.memories.create(rightMemory);
      expect(await s.memories.findByKey(left.id, user.id, "k")).toEqual(leftMemory);
      expect(ids((await s.memories.list(right.id, colonUser.id, { limit: 10 })).items)).toEqual([
        rightMemory.id,
      ]);
      const leftSkill = makeSkill(left.id, { id: `${prefix}.s`, name: "same" });
      const rightSkill = makeSkill(right.id, { id: `x:${prefix}.s`, name: "same" });
      await s.skills.create(leftSkill);
      await s.skills.create(rightSkill);
      await s.skillRecords.create(makeRecord(left.id, leftSkill.id, { side: "left" }));
      await s.skillRecords.create(makeRecord(right.id, rightSkill.id, { side: "right" }));
      const leftRecords = await s.skillRecords.query(left.id, leftSkill.id, {}, { limit: 10 });
      expect(leftRecords.items.map((r) => r.data.side)).toEqual(["left"]);
      const rightRecords = await s.skillRecords.query(right.id, rightSkill.id, {}, { limit: 10 });
      expect(rightRecords.items.map((r) => r.data.side)).toEqual(["right"]);
    });
  });
}

// ---------------------------------------------------------------------------
// Pagination

function registerPaginationTests(group: Group): void {
  group("pagination", (test) => {
    test("bots.listByUser walks every bot exactly once, oldest first, within the limit", async (s) => {
      const user = makeUser();
      await s.users.upsert(user);
      const bots = Array.from({ length: 23 }, (_, n) => makeBot({ userId: user.id, createdAt: at(n) }));
      for (const bot of shuffled(bots)) await s.bots.create(bot);
      const pages = await walk(5, (cursor) => s.bots.listByUser(user.id, { limit: 5, cursor }));
      expect(pages[0]).toHaveLength(5);
      expect(pages.length).toBeLessThanOrEqual(6);
      expect(ids(pages.flat())).toEqual(ids(bots));
    });

    test("pages stay complete when many rows share a timestamp", async (s) => {
      const user = makeUser();
      await s.users.upsert(user);
      const bots = Array.from({ length: 17 }, () => makeBot({ userId: user.id, createdAt: at(1) }));
      for (const bot of bots) await s.bots.create(bot);
      const pages = await walk(4, (cursor) => s.bots.listByUser(user.id, { limit: 4, cursor }));
      const seen = ids(pages.flat());
      expect(seen).toHaveLength(17);
      expect(new Set(seen)).toEqual(new Set(ids(bots)));
    });

    test("pages stay complete when rows are inserted between pages", async (s) => {
      const user = makeUser();
      await s.users.upsert(user);
      const bots = Array.from({ length: 12 }, (_, n) => makeBot({ userId: user.id, createdAt: at(n) }));
      for (const bot of bots) await s.bots.create(bot);
      const seen: string[] = [];
      let cursor: string | null = null;
      let inserted = 0;
      do {
        const page: Page<Bot> = await s.bots.listByUser(user.id, { limit: 5, cursor });
        expect(page.items.length).toBeLessThanOrEqual(5);
        seen.push(...ids(page.items));
        cursor = page.nextCursor;
        // Both newer rows and rows sharing the cursor's timestamp arrive mid-walk.
        await s.bots.create(makeBot({ userId: user.id, createdAt: at(100 + inserted) }));
        await s.bots.create(makeBot({ userId: user.id, createdAt: at(4) }));
        inserted += 1;
        expect(inserted, "pagination did not end").toBeLessThan(100);
      } while (cursor !== null);
      const originals = seen.filter((id) => ids(bots).includes(id));
      expect(originals).toEqual(ids(bots));
      expect(new Set(seen).size).toBe(seen.length);
    });

    test("conversations.listByBot walks every conversation once, most recently updated first", async (s) => {
      const bot = await seedBot(s);
      const conversations = Array.from({ length: 14 }, (_, n) =>
        makeConversation(bot.id, bot.userId, { updatedAt: at(n) }),
      );
      for (const conversation of shuffled(conversations)) await s.conversations.create(conversation);
      const pages = await walk(4, async (cursor) => {
        const page = await s.conversations.listByBot(bot.id, { limit: 4, cursor });
        // Newer conversations created mid-walk sort before the cursor and must not disturb it.
        await s.conversations.create(makeConversation(bot.id, bot.userId, { updatedAt: at(1000) }));
        return page;
      });
      const seen = ids(pages.flat()).filter((id) => ids(conversations).includes(id));
      expect(seen).toEqual(ids(conversations).reverse());
    });

    test("memories.list walks every memory once, most recently updated first", async (s) => {
      const bot = await seedBot(s);
      const memories = Array.from({ length: 11 }, (_, n) =>
        makeMemory(bot.id, bot.userId, { key: `k${n}`, updatedAt: at(n) }),
      );
      for (const memory of shuffled(memories)) await s.memories.create(memory);
      const pages = await walk(3, (cursor) => s.memories.list(bot.id, bot.userId, { limit: 3, cursor }));
      expect(pages[0]).toHaveLength(3);
      expect(ids(pages.flat())).toEqual(ids(memories).reverse());
    });

    test("usage.list walks every record once, oldest first, with filters", async (s) => {
      const bot = await seedBot(s);
      const sibling = await seedBot(s, { userId: bot.userId });
      const records = Array.from({ length: 30 }, (_, n) =>
        makeUsage(bot.userId, n % 3 === 0 ? sibling.id : bot.id, { createdAt: at(n) }),
      );
      for (const record of shuffled(records)) await s.usage.record(record);
      const all = await walk(7, (cursor) => s.usage.list({ userId: bot.userId }, { limit: 7, cursor }));
      expect(ids(all.flat())).toEqual(ids(records));
      const filter = { userId: bot.userId, botId: bot.id, from: at(5), to: at(25) };
      const filtered = await walk(4, (cursor) => s.usage.list(filter, { limit: 4, cursor }));
      const expected = records.filter((r, n) => r.botId === bot.id && n >= 5 && n < 25);
      expect(ids(filtered.flat())).toEqual(ids(expected));
    });

    test("skillRecords.query walks every match once, oldest first", async (s) => {
      const bot = await seedBot(s);
      const skill = makeSkill(bot.id);
      await s.skills.create(skill);
      const records = Array.from({ length: 25 }, (_, n) =>
        makeRecord(bot.id, skill.id, { parity: n % 2 === 0 ? "Even" : "odd", n }, { createdAt: at(n) }),
      );
      for (const record of shuffled(records)) await s.skillRecords.create(record);
      const all = await walk(6, (cursor) => s.skillRecords.query(bot.id, skill.id, {}, { limit: 6, cursor }));
      expect(ids(all.flat())).toEqual(ids(records));
      const even = await walk(4, (cursor) =>
        s.skillRecords.query(bot.id, skill.id, { equals: { parity: "even" } }, { limit: 4, cursor }),
      );
      expect(ids(even.flat())).toEqual(ids(records.filter((r) => r.data.parity === "Even")));
    });

    test("toolAudit.list walks every entry once, newest first, while calls are recorded", async (s) => {
      const bot = await seedBot(s);
      const entries = Array.from({ length: 19 }, (_, n) =>
        makeAudit(bot.id, bot.userId, { createdAt: at(n) }),
      );
      for (const entry of shuffled(entries)) await s.toolAudit.record(entry);
      const pages = await walk(4, async (cursor) => {
        const page = await s.toolAudit.list(bot.id, { limit: 4, cursor });
        // Calls recorded mid-walk are newer than the cursor and must not disturb it.
        await s.toolAudit.record(makeAudit(bot.id, bot.userId, { createdAt: at(1000) }));
        return page;
      });
      expect(pages[0]).toHaveLength(4);
      const seen = ids(pages.flat()).filter((id) => ids(entries).includes(id));
      expect(seen).toEqual(ids(entries).reverse());
    });

    test("toolAudit.list pages stay complete when entries share a timestamp", async (s) => {
      const bot = await seedBot(s);
      const entries = Array.from({ length: 13 }, () => makeAudit(bot.id, bot.userId, { createdAt: at(3) }));
      for (const entry of entries) await s.toolAudit.record(entry);
      const pages = await walk(4, (cursor) => s.toolAudit.list(bot.id, { limit: 4, cursor }));
      const seen = ids(pages.flat());
      expect(seen).toHaveLength(13);
      expect(new Set(seen)).toEqual(new Set(ids(entries)));
    });

    test("a limit above the total gives one page with a null cursor; no rows give an empty page", async (s) => {
      const bot = await seedBot(s);
      const page = await s.bots.listByUser(bot.userId, { limit: 500 });
      expect(page).toEqual({ items: [bot], nextCursor: null });
      expect(await s.conversations.listByBot(bot.id, { limit: 10 })).toEqual({ items: [], nextCursor: null });
      expect(await s.memories.list(bot.id, bot.userId, { limit: 10 })).toEqual({
        items: [],
        nextCursor: null,
      });
      expect(await s.usage.list({ userId: bot.userId }, { limit: 10 })).toEqual({
        items: [],
        nextCursor: null,
      });
      expect(await s.toolAudit.list(bot.id, { limit: 10 })).toEqual({ items: [], nextCursor: null });
    });
  });
}

// ---------------------------------------------------------------------------
// Cascading deletes

function registerCascadeTests(group: Group): void {
  group("cascading deletes", (test) => {
    const expectGone = async (s: Storage, world: World) => {
      const { bot, skill, record, conversation, memory, proposal, tool, approval } = world;
      expect(await s.bots.get(bot.id)).toBeNull();
      expect(await s.tools.get(bot.id, tool.id)).toBeNull();
      expect(await s.tools.findByName(bot.id, tool.name)).toBeNull();
      expect(await s.tools.listByBot(bot.id)).toEqual([]);
      expect(await s.toolAudit.list(bot.id, { limit: 10 })).toEqual({ items: [], nextCursor: null });
      expect(await s.approvals.get(bot.id, approval.id)).toBeNull();
      expect(await s.approvals.listByBot(bot.id, { limit: 10 })).toEqual([]);
      expect(await s.skills.get(bot.id, skill.id)).toBeNull();
      expect(await s.skills.listByBot(bot.id)).toEqual([]);
      expect(await s.skillRecords.get(bot.id, skill.id, record.id)).toBeNull();
      expect((await s.skillRecords.query(bot.id, skill.id, {}, { limit: 10 })).items).toEqual([]);
      expect(await s.conversations.get(bot.id, conversation.id)).toBeNull();
      expect((await s.conversations.listByBot(bot.id, { limit: 10 })).items).toEqual([]);
      expect(await s.messages.listRecent(bot.id, conversation.id, { limit: 10 })).toEqual([]);
      expect(await s.memories.get(bot.id, memory.id)).toBeNull();
      expect(await s.memories.findByKey(bot.id, memory.userId, memory.key)).toBeNull();
      expect((await s.memories.list(bot.id, memory.userId, { limit: 10 })).items).toEqual([]);
      expect(await s.proposals.get(bot.id, proposal.id)).toBeNull();
      expect(await s.proposals.listByBot(bot.id, { limit: 10 })).toEqual([]);
      expect((await s.usage.list({ userId: bot.userId, botId: bot.id }, { limit: 10 })).items).toEqual([]);
    };

    test("bots.delete removes the bot and everything it owns", async (s) => {
      const world = await seedWorld(s);
      expect(await s.bots.delete(world.bot.id)).toBe(true);
      await expectGone(s, world);
      expect((await s.usage.list({ userId: world.bot.userId }, { limit: 10 })).items).toEqual([]);
      expect(await s.users.get(world.bot.userId)).not.toBeNull();
    });

    test("bots.delete leaves other bots' data alone", async (s) => {
      const doomed = await seedWorld(s);
      const kept = await seedWorld(s, doomed.bot.userId);
      await s.bots.delete(doomed.bot.id);
      const { bot, skill, record, conversation, messages, memory, usage, proposal } = kept;
      expect(await s.bots.get(bot.id)).toEqual(bot);
      expect(await s.tools.listByBot(bot.id)).toEqual([kept.tool]);
      expect(await s.tools.findByName(bot.id, kept.tool.name)).toEqual(kept.tool);
      expect((await s.toolAudit.list(bot.id, { limit: 10 })).items).toEqual([kept.audit]);
      expect(await s.approvals.listByBot(bot.id, { limit: 10 })).toEqual([kept.approval]);
      expect(await s.skills.get(bot.id, skill.id)).toEqual(skill);
      expect(await s.skillRecords.get(bot.id, skill.id, record.id)).toEqual(record);
      expect(await s.conversations.get(bot.id, conversation.id)).toEqual(conversation);
      expect(await s.messages.listRecent(bot.id, conversation.id, { limit: 10 })).toEqual(messages);
      expect(await s.memories.get(bot.id, memory.id)).toEqual(memory);
      expect(await s.proposals.get(bot.id, proposal.id)).toEqual(proposal);
      expect((await s.usage.list({ userId: bot.userId }, { limit: 10 })).items).toEqual([usage]);
      expect(ids((await s.bots.listByUser(bot.userId, { limit: 10 })).items)).toEqual([bot.id]);
    });

    test("a bot re-created with a deleted bot's id starts empty", async (s) => {
      const world = await seedWorld(s);
      await s.bots.delete(world.bot.id);
      await s.bots.create(world.bot);
      expect(await s.bots.get(world.bot.id)).toEqual(world.bot);
      const { bot, skill, record, conversation, memory, proposal } = world;
      expect(await s.skills.listByBot(bot.id)).toEqual([]);
      expect(await s.skills.get(bot.id, skill.id)).toBeNull();
      expect(await s.skillRecords.get(bot.id, skill.id, record.id)).toBeNull();
      expect(await s.conversations.get(bot.id, conversation.id)).toBeNull();
      expect(await s.memories.get(bot.id, memory.id)).toBeNull();
      expect(await s.proposals.get(bot.id, proposal.id)).toBeNull();
      expect(await s.messages.listRecent(bot.id, conversation.id, { limit: 10 })).toEqual([]);
      expect(await s.memories.findByKey(bot.id, memory.userId, memory.key)).toBeNull();
      expect(await s.proposals.listByBot(bot.id, { limit: 10 })).toEqual([]);
      expect((await s.usage.list({ userId: bot.userId, botId: bot.id }, { limit: 10 })).items).toEqual([]);
      expect(await s.tools.listByBot(bot.id)).toEqual([]);
      expect(await s.tools.findByName(bot.id, world.tool.name)).toBeNull();
      expect((await s.toolAudit.list(bot.id, { limit: 10 })).items).toEqual([]);
      expect(await s.approvals.get(bot.id, world.approval.id)).toBeNull();
      // The deleted bot's tool name is free again.
      expect(await s.tools.create(world.tool)).toEqual(world.tool);
    });

    test("skills.delete removes the skill's records and nothing else", async (s) => {
      const world = await seedWorld(s);
      const { bot, skill, record } = world;
      const sibling = makeSkill(bot.id);
      await s.skills.create(sibling);
      const siblingRecord = makeRecord(bot.id, sibling.id, { customer: "Alan" });
      await s.skillRecords.create(siblingRecord);
      expect(await s.skills.delete(bot.id, skill.id)).toBe(true);
      expect(await s.skillRecords.get(bot.id, skill.id, record.id)).toBeNull();
      expect((await s.skillRecords.query(bot.id, skill.id, {}, { limit: 10 })).items).toEqual([]);
      expect(await s.skillRecords.get(bot.id, sibling.id, siblingRecord.id)).toEqual(siblingRecord);
      expect(await s.skills.listByBot(bot.id)).toEqual([sibling]);
      expect(await s.memories.get(bot.id, world.memory.id)).toEqual(world.memory);
      await s.skills.create(skill);
      expect((await s.skillRecords.query(bot.id, skill.id, {}, { limit: 10 })).items).toEqual([]);
    });
  });
}

// ---------------------------------------------------------------------------
// Copies

function registerCopyTests(group: Group): void {
  group("copies", (test) => {
    test("mutating a returned bot does not change storage", async (s) => {
      const bot = await seedBot(s);
      const snapshot = structuredClone(bot);
      const fetched = (await s.bots.get(bot.id))!;
      fetched.name = "Mutated";
      (fetched.metadata.nested as { flags: number[] }).flags.push(4);
      fetched.soul!.valuesAndPrinciples.push("greed");
      fetched.createdAt.setTime(0);
      const listed = (await s.bots.listByUser(bot.userId, { limit: 10 })).items[0]!;
      listed.metadata.tier = "stolen";
      expect(await s.bots.get(bot.id)).toEqual(snapshot);
    });

    test("mutating the object passed to create or update does not change storage", async (s) => {
      const user = makeUser();
      await s.users.upsert(user);
      const bot = makeBot({ userId: user.id });
      const snapshot = structuredClone(bot);
      const returned = await s.bots.create(bot);
      bot.name = "Mutated";
      bot.soul!.behavioralRules.never.length = 0;
      bot.updatedAt.setTime(0);
      returned.metadata.tier = "stolen";
      expect(await s.bots.get(snapshot.id)).toEqual(snapshot);
      const update: Bot = structuredClone({ ...snapshot, name: "Updated" });
      const expected = structuredClone(update);
      await s.bots.update(update);
      update.metadata.tier = "stolen";
      expect(await s.bots.get(snapshot.id)).toEqual(expected);
    });

    test("mutating returned skills, records, messages, memories and proposals does not change storage", async (s) => {
      const world = await seedWorld(s);
      const { bot, skill, record, conversation, memory, proposal } = world;
      const fetchedSkill = (await s.skills.listByBot(bot.id))[0]!;
      fetchedSkill.triggers.push("hijack");
      fetchedSkill.dataFields[0]!.name = "hijacked";
      const fetchedRecord = (await s.skillRecords.query(bot.id, skill.id, {}, { limit: 10 })).items[0]!;
      fetchedRecord.data.customer = "Mallory";
      const fetchedMessage = (await s.messages.listRecent(bot.id, conversation.id, { limit: 1 }))[0]!;
      fetchedMessage.content = "rewritten";
      fetchedMessage.seq = -1;
      const fetchedMemory = (await s.memories.findByKey(bot.id, memory.userId, memory.key))!;
      fetchedMemory.history.push({ content: "x", source: memory.source, replacedAt: at(0) });
      fetchedMemory.history[0]!.replacedAt.setTime(0);
      const fetchedProposal = (await s.proposals.listByBot(bot.id, { limit: 1 }))[0]!;
      fetchedProposal.triggers.length = 0;
      const fetchedConversation = (await s.conversations.get(bot.id, conversation.id))!;
      fetchedConversation.metadata.locale = "xx";
      expect(await s.skills.get(bot.id, skill.id)).toEqual(skill);
      expect(await s.skillRecords.get(bot.id, skill.id, record.id)).toEqual(record);
      expect(await s.messages.listRecent(bot.id, conversation.id, { limit: 10 })).toEqual(world.messages);
      expect(await s.memories.get(bot.id, memory.id)).toEqual(memory);
      expect(await s.proposals.get(bot.id, proposal.id)).toEqual(proposal);
      expect(await s.conversations.get(bot.id, conversation.id)).toEqual(conversation);
    });

    test("mutating returned tools, audit entries and approvals does not change storage", async (s) => {
      const world = await seedWorld(s);
      const { bot, tool, audit, approval } = world;
      const fetched = (await s.tools.get(bot.id, tool.id))!;
      fetched.endpoints[0]!.parameters.push({
        name: "injected",
        in: "query",
        type: "string",
        required: false,
        description: "",
      });
      fetched.endpoints[1]!.risky = false;
      fetched.credential = "tampered";
      const byName = (await s.tools.findByName(bot.id, tool.name))!;
      byName.endpoints.length = 0;
      (byName.auth as { type: string }).type = "none";
      const listed = (await s.tools.listByBot(bot.id))[0]!;
      listed.createdAt.setTime(0);
      listed.baseUrl = "https://evil.example";
      const entry = (await s.toolAudit.list(bot.id, { limit: 1 })).items[0]!;
      entry.status = "denied";
      entry.createdAt.setTime(0);
      const fetchedApproval = (await s.approvals.get(bot.id, approval.id))!;
      fetchedApproval.input.amount = 1_000_000;
      (fetchedApproval.input.meta as { tags: string[] }).tags.push("c");
      const listedApproval = (await s.approvals.listByBot(bot.id, { limit: 1 }))[0]!;
      listedApproval.status = "approved";
      expect(await s.tools.get(bot.id, tool.id)).toEqual(tool);
      expect((await s.toolAudit.list(bot.id, { limit: 10 })).items).toEqual([audit]);
      expect(await s.approvals.get(bot.id, approval.id)).toEqual(approval);
      const decided = (await s.approvals.decide(bot.id, approval.id, {
        status: "denied",
        reason: "no",
        decidedAt: at(9),
      }))!;
      decided.input.amount = 1;
      expect((await s.approvals.get(bot.id, approval.id))?.input).toEqual(approval.input);
    });

    test("mutating the tool or approval passed to a write does not change storage", async (s) => {
      const bot = await seedBot(s);
      const conversation = makeConversation(bot.id, bot.userId);
      await s.conversations.create(conversation);
      const tool = makeTool(bot.id);
      const snapshot = structuredClone(tool);
      const returned = await s.tools.create(tool);
      tool.endpoints[0]!.path = "/admin";
      tool.credential = null;
      returned.endpoints.pop();
      expect(await s.tools.get(bot.id, tool.id)).toEqual(snapshot);
      const update: Tool = structuredClone({ ...snapshot, description: "Updated" });
      const expected = structuredClone(update);
      await s.tools.update(update);
      update.endpoints[0]!.parameters.length = 0;
      expect(await s.tools.get(bot.id, tool.id)).toEqual(expected);
      const approval = makeApproval(bot.id, bot.userId, conversation.id);
      const approvalSnapshot = structuredClone(approval);
      await s.approvals.create(approval);
      approval.input.charge = "ch_other";
      expect(await s.approvals.get(bot.id, approval.id)).toEqual(approvalSnapshot);
      const entry = makeAudit(bot.id, bot.userId);
      const entrySnapshot = structuredClone(entry);
      await s.toolAudit.record(entry);
      entry.responseBytes = 1;
      expect((await s.toolAudit.list(bot.id, { limit: 10 })).items).toEqual([entrySnapshot]);
    });

    test("mutating an appended message or a recorded usage input does not change storage", async (s) => {
      const world = await seedWorld(s);
      const { bot, conversation } = world;
      const message = makeMessage(bot.id, conversation.id, { metadata: { tags: ["a"] } });
      const appended = await s.messages.append(message);
      message.content = "changed";
      (message.metadata.tags as string[]).push("b");
      appended.content = "changed too";
      const usage = makeUsage(bot.userId, bot.id, { createdAt: at(5) });
      const snapshot = structuredClone(usage);
      await s.usage.record(usage);
      usage.promptTokens = 999_999;
      const recent = await s.messages.listRecent(bot.id, conversation.id, { limit: 1 });
      expect(recent[0]?.content).toBe("hello");
      expect(recent[0]?.metadata).toEqual({ tags: ["a"] });
      const listed = await s.usage.list({ userId: bot.userId, from: at(5) }, { limit: 10 });
      expect(listed.items).toEqual([snapshot]);
    });
  });
}

// ---------------------------------------------------------------------------
// Conflicts

function registerConflictTests(group: Group): void {
  group("conflicts", (test) => {
    test("bots.create with a taken id throws CONFLICT and keeps the original", async (s) => {
      const bot = await seedBot(s);
      await expectKiloError(s.bots.create({ ...bot, name: "Impostor" }), "CONFLICT");
      expect(await s.bots.get(bot.id)).toEqual(bot);
    });

    test("skills.create with a taken id throws CONFLICT", async (s) => {
      const world = await seedWorld(s);
      await expectKiloError(s.skills.create({ ...world.skill, name: "Another name" }), "CONFLICT");
      expect(await s.skills.get(world.bot.id, world.skill.id)).toEqual(world.skill);
    });

    test("skills.create with a name the bot already uses, in any case, throws CONFLICT", async (s) => {
      const bot = await seedBot(s);
      const skill = makeSkill(bot.id, { name: "Cake Orders" });
      await s.skills.create(skill);
      await expectKiloError(s.skills.create(makeSkill(bot.id, { name: "cake ORDERS" })), "CONFLICT");
      expect(await s.skills.listByBot(bot.id)).toEqual([skill]);
    });

    test("skills.update to another skill's name throws CONFLICT; changing the case of its own name does not", async (s) => {
      const bot = await seedBot(s);
      const orders = makeSkill(bot.id, { name: "Orders" });
      const stock = makeSkill(bot.id, { name: "Stock" });
      await s.skills.create(orders);
      await s.skills.create(stock);
      await expectKiloError(s.skills.update({ ...stock, name: "ORDERS" }), "CONFLICT");
      expect(await s.skills.get(bot.id, stock.id)).toEqual(stock);
      const recased = { ...orders, name: "ORDERS" };
      expect(await s.skills.update(recased)).toEqual(recased);
    });

    test("skillRecords.create with a taken id throws CONFLICT", async (s) => {
      const world = await seedWorld(s);
      await expectKiloError(s.skillRecords.create({ ...world.record, data: { other: true } }), "CONFLICT");
      expect(await s.skillRecords.get(world.bot.id, world.skill.id, world.record.id)).toEqual(world.record);
    });

    test("conversations.create with a taken id throws CONFLICT", async (s) => {
      const world = await seedWorld(s);
      await expectKiloError(s.conversations.create({ ...world.conversation, title: "other" }), "CONFLICT");
      expect(await s.conversations.get(world.bot.id, world.conversation.id)).toEqual(world.conversation);
    });

    test("messages.append with a taken id throws CONFLICT", async (s) => {
      const world = await seedWorld(s);
      const { seq: _seq, ...taken } = world.messages[0]!;
      await expectKiloError(s.messages.append({ ...taken, content: "again" }), "CONFLICT");
      const listed = await s.messages.listRecent(world.bot.id, world.conversation.id, { limit: 10 });
      expect(listed).toEqual(world.messages);
    });

    test("memories.create with a taken id throws CONFLICT", async (s) => {
      const world = await seedWorld(s);
      await expectKiloError(s.memories.create({ ...world.memory, key: "other" }), "CONFLICT");
      expect(await s.memories.get(world.bot.id, world.memory.id)).toEqual(world.memory);
    });

    test("usage.record with a taken id throws CONFLICT", async (s) => {
      const world = await seedWorld(s);
      await expectKiloError(s.usage.record({ ...world.usage, model: "other" }), "CONFLICT");
      const listed = await s.usage.list({ userId: world.bot.userId }, { limit: 10 });
      expect(listed.items).toEqual([world.usage]);
    });

    test("proposals.create with a taken id throws CONFLICT", async (s) => {
      const world = await seedWorld(s);
      await expectKiloError(s.proposals.create({ ...world.proposal, name: "other" }), "CONFLICT");
      expect(await s.proposals.get(world.bot.id, world.proposal.id)).toEqual(world.proposal);
    });

    test("tools.create with a taken id throws CONFLICT and keeps the original", async (s) => {
      const world = await seedWorld(s);
      await expectKiloError(s.tools.create({ ...world.tool, name: "another-name" }), "CONFLICT");
      expect(await s.tools.get(world.bot.id, world.tool.id)).toEqual(world.tool);
      expect(await s.tools.findByName(world.bot.id, "another-name")).toBeNull();
    });

    test("tools.create with a name the bot already uses, in any case, throws CONFLICT", async (s) => {
      const bot = await seedBot(s);
      const tool = makeTool(bot.id, { name: "acme-pay" });
      await s.tools.create(tool);
      await expectKiloError(s.tools.create(makeTool(bot.id, { name: "ACME-Pay" })), "CONFLICT");
      expect(await s.tools.listByBot(bot.id)).toEqual([tool]);
    });

    test("tools.update to another tool's name throws CONFLICT; changing the case of its own name does not", async (s) => {
      const bot = await seedBot(s);
      const pay = makeTool(bot.id, { name: "pay" });
      const mail = makeTool(bot.id, { name: "mail" });
      await s.tools.create(pay);
      await s.tools.create(mail);
      await expectKiloError(s.tools.update({ ...mail, name: "PAY" }), "CONFLICT");
      expect(await s.tools.get(bot.id, mail.id)).toEqual(mail);
      const recased = { ...pay, name: "Pay" };
      expect(await s.tools.update(recased)).toEqual(recased);
      expect(await s.tools.findByName(bot.id, "pay")).toEqual(recased);
    });

    test("toolAudit.record with a taken id throws CONFLICT", async (s) => {
      const world = await seedWorld(s);
      await expectKiloError(s.toolAudit.record({ ...world.audit, status: "failed" }), "CONFLICT");
      expect((await s.toolAudit.list(world.bot.id, { limit: 10 })).items).toEqual([world.audit]);
    });

    test("approvals.create with a taken id throws CONFLICT", async (s) => {
      const world = await seedWorld(s);
      await expectKiloError(s.approvals.create({ ...world.approval, status: "approved" }), "CONFLICT");
      expect(await s.approvals.get(world.bot.id, world.approval.id)).toEqual(world.approval);
    });

    test("CONFLICT errors name the adapter", async (s) => {
      const bot = await seedBot(s);
      const error = await expectKiloError(s.bots.create(bot), "CONFLICT");
      expect(error.adapter).toBe(s.name);
    });
  });
}

// ---------------------------------------------------------------------------
// Transactions

function registerTransactionTests(group: Group): void {
  group("transactions", (test) => {
    test("writes are committed when the callback resolves, and its value is returned", async (s) => {
      const user = makeUser();
      await s.users.upsert(user);
      const bot = makeBot({ userId: user.id });
      const skill = makeSkill(bot.id);
      const result = await s.transaction(async (tx) => {
        await tx.bots.create(bot);
        await tx.skills.create(skill);
        return { done: 42 };
      });
      expect(result).toEqual({ done: 42 });
      expect(await s.bots.get(bot.id)).toEqual(bot);
      expect(await s.skills.get(bot.id, skill.id)).toEqual(skill);
    });

    test("reads inside a transaction see its own writes", async (s) => {
      const bot = await seedBot(s);
      const conversation = makeConversation(bot.id, bot.userId);
      await s.transaction(async (tx) => {
        await tx.conversations.create(conversation);
        expect(await tx.conversations.get(bot.id, conversation.id)).toEqual(conversation);
        const appended = await tx.messages.append(makeMessage(bot.id, conversation.id));
        expect(await tx.messages.listRecent(bot.id, conversation.id, { limit: 5 })).toEqual([appended]);
        await tx.bots.update({ ...bot, name: "Renamed" });
        expect((await tx.bots.get(bot.id))?.name).toBe("Renamed");
      });
      expect((await s.bots.get(bot.id))?.name).toBe("Renamed");
    });

    test(
      "every write is rolled back and the same error rethrown when the callback throws",
      async (s) => {
        const world = await seedWorld(s);
        const { bot, skill, record, conversation, messages, memory, proposal } = world;
        const newBot = makeBot({ userId: bot.userId });
        const newSkill = makeSkill(bot.id);
        const newMemory = makeMemory(bot.id, bot.userId, { key: "rolled back" });
        const newUsage = makeUsage(bot.userId, bot.id, { createdAt: at(500) });
        const newProposal = makeProposal(bot.id, bot.userId);
        const newUser = makeUser();
        const newTool = makeTool(bot.id);
        const newAudit = makeAudit(bot.id, bot.userId, { createdAt: at(500) });
        const newApproval = makeApproval(bot.id, bot.userId, conversation.id);
        const { tool, audit, approval } = world;
        const failure = new Error("boom");
        const outcome = s.transaction(async (tx) => {
          await tx.users.upsert(newUser);
          await tx.bots.create(newBot);
          await tx.bots.update({ ...bot, name: "Renamed" });
          await tx.skills.create(newSkill);
          await tx.skills.update({ ...skill, name: "Renamed skill" });
          await tx.skillRecords.update({ ...record, data: { customer: "Changed" } });
          await tx.conversations.touch(bot.id, conversation.id, at(900));
          await tx.messages.append(makeMessage(bot.id, conversation.id, { content: "rolled back" }));
          await tx.memories.create(newMemory);
          await tx.memories.update({ ...memory, content: "changed" });
          await tx.usage.record(newUsage);
          await tx.proposals.create(newProposal);
          await tx.proposals.update({ ...proposal, status: "dismissed" });
          await tx.skills.delete(bot.id, skill.id);
          await tx.tools.create(newTool);
          await tx.tools.update({ ...tool, name: "renamed-tool", credential: null });
          await tx.toolAudit.record(newAudit);
          await tx.approvals.create(newApproval);
          await tx.approvals.decide(bot.id, approval.id, {
            status: "approved",
            reason: null,
            decidedAt: at(501),
          });
          await tx.tools.delete(bot.id, tool.id);
          throw failure;
        });
        expect(await rejection(outcome)).toBe(failure);
        expect(await s.users.get(newUser.id)).toBeNull();
        expect(await s.bots.get(newBot.id)).toBeNull();
        expect(await s.bots.get(bot.id)).toEqual(bot);
        expect(await s.skills.listByBot(bot.id)).toEqual([skill]);
        expect(await s.skillRecords.get(bot.id, skill.id, record.id)).toEqual(record);
        expect(await s.conversations.get(bot.id, conversation.id)).toEqual(conversation);
        expect(await s.messages.listRecent(bot.id, conversation.id, { limit: 10 })).toEqual(messages);
        expect(await s.memories.get(bot.id, newMemory.id)).toBeNull();
        expect(await s.memories.get(bot.id, memory.id)).toEqual(memory);
        expect((await s.usage.list({ userId: bot.userId }, { limit: 10 })).items).toEqual([world.usage]);
        expect(await s.proposals.listByBot(bot.id, { limit: 10 })).toEqual([proposal]);
        expect(await s.tools.listByBot(bot.id)).toEqual([tool]);
        expect(await s.tools.findByName(bot.id, tool.name)).toEqual(tool);
        expect(await s.tools.findByName(bot.id, "renamed-tool")).toBeNull();
        expect((await s.toolAudit.list(bot.id, { limit: 10 })).items).toEqual([audit]);
        expect(await s.approvals.listByBot(bot.id, { limit: 10 })).toEqual([approval]);
      },
      { requires: "transactions" },
    );

    test(
      "a bot delete inside a failed transaction is rolled back with its cascade",
      async (s) => {
        const world = await seedWorld(s);
        const failure = new Error("undo the delete");
        const outcome = s.transaction(async (tx) => {
          expect(await tx.bots.delete(world.bot.id)).toBe(true);
          throw failure;
        });
        expect(await rejection(outcome)).toBe(failure);
        const { bot, skill, record, conversation, messages, memory, proposal, usage } = world;
        expect(await s.bots.get(bot.id)).toEqual(bot);
        expect(await s.skillRecords.get(bot.id, skill.id, record.id)).toEqual(record);
        expect(await s.messages.listRecent(bot.id, conversation.id, { limit: 10 })).toEqual(messages);
        expect(await s.memories.findByKey(bot.id, memory.userId, memory.key)).toEqual(memory);
        expect(await s.proposals.get(bot.id, proposal.id)).toEqual(proposal);
        expect((await s.usage.list({ userId: bot.userId, botId: bot.id }, { limit: 10 })).items).toEqual([
          usage,
        ]);
        expect(await s.tools.findByName(bot.id, world.tool.name)).toEqual(world.tool);
        expect((await s.toolAudit.list(bot.id, { limit: 10 })).items).toEqual([world.audit]);
        expect(await s.approvals.get(bot.id, world.approval.id)).toEqual(world.approval);
      },
      { requires: "transactions" },
    );

    test(
      "a CONFLICT inside a transaction rolls back the writes before it",
      async (s) => {
        const existing = await seedBot(s);
        const fresh = makeBot({ userId: existing.userId });
        const outcome = s.transaction(async (tx) => {
          await tx.bots.create(fresh);
          await tx.bots.create({ ...existing });
        });
        await expectKiloError(outcome, "CONFLICT");
        expect(await s.bots.get(fresh.id)).toBeNull();
        expect(await s.bots.get(existing.id)).toEqual(existing);
      },
      { requires: "transactions" },
    );

    test(
      "writes made outside an open transaction survive its rollback",
      async (s) => {
        const bot = await seedBot(s);
        const conversation = makeConversation(bot.id, bot.userId);
        await s.conversations.create(conversation);
        const inside = makeBot({ userId: bot.userId });
        const outside = makeBot({ userId: bot.userId });
        const opened = deferred();
        const release = deferred();
        const failure = new Error("rollback");
        const outcome = s.transaction(async (tx) => {
          await tx.bots.create(inside);
          await tx.messages.append(makeMessage(bot.id, conversation.id, { content: "inside" }));
          opened.resolve();
          await release.promise;
          throw failure;
        });
        await opened.promise;
        // Not awaited before release: an adapter may make these wait for the transaction.
        const outsideWrites = Promise.all([
          s.bots.create(outside),
          s.messages.append(makeMessage(bot.id, conversation.id, { content: "outside" })),
        ]);
        release.resolve();
        expect(await rejection(outcome)).toBe(failure);
        await outsideWrites;
        expect(await s.bots.get(inside.id)).toBeNull();
        expect(await s.bots.get(outside.id)).toEqual(outside);
        const listed = await s.messages.listRecent(bot.id, conversation.id, { limit: 10 });
        expect(listed.map((m) => m.content)).toEqual(["outside"]);
      },
      { requires: "transactions" },
    );

    test("writes made outside an open transaction and inside it are all kept when it commits", async (s) => {
      const bot = await seedBot(s);
      const conversation = makeConversation(bot.id, bot.userId);
      await s.conversations.create(conversation);
      const opened = deferred();
      const release = deferred();
      const outcome = s.transaction(async (tx) => {
        await tx.messages.append(makeMessage(bot.id, conversation.id, { content: "inside 1" }));
        opened.resolve();
        await release.promise;
        await tx.messages.append(makeMessage(bot.id, conversation.id, { content: "inside 2" }));
      });
      await opened.promise;
      const outside = Promise.all(
        [1, 2, 3].map((n) =>
          s.messages.append(makeMessage(bot.id, conversation.id, { content: `outside ${n}` })),
        ),
      );
      release.resolve();
      await outcome;
      await outside;
      const listed = await s.messages.listRecent(bot.id, conversation.id, { limit: 10 });
      expect(listed.map((m) => m.content).sort()).toEqual([
        "inside 1",
        "inside 2",
        "outside 1",
        "outside 2",
        "outside 3",
      ]);
      for (let n = 1; n < listed.length; n++) expect(listed[n]!.seq).toBeGreaterThan(listed[n - 1]!.seq);
    });

    test(
      "concurrent transactions keep exactly the writes of those that succeed",
      async (s) => {
        const user = makeUser();
        await s.users.upsert(user);
        const batches = Array.from({ length: 10 }, (_, n) => ({
          fails: n % 2 === 1,
          bots: Array.from({ length: 3 }, () => makeBot({ userId: user.id })),
        }));
        const outcomes = await Promise.allSettled(
          batches.map((batch) =>
            s.transaction(async (tx) => {
              for (const bot of batch.bots) await tx.bots.create(bot);
              if (batch.fails) throw new Error("fail this batch");
            }),
          ),
        );
        expect(outcomes.map((o) => o.status)).toEqual(
          batches.map((b) => (b.fails ? "rejected" : "fulfilled")),
        );
        const pages = await walk(50, (cursor) => s.bots.listByUser(user.id, { limit: 50, cursor }));
        const expected = batches.filter((b) => !b.fails).flatMap((b) => ids(b.bots));
        expect(new Set(ids(pages.flat()))).toEqual(new Set(expected));
      },
      { requires: "transactions" },
    );
  });
}

// ---------------------------------------------------------------------------
// Concurrency

function registerConcurrencyTests(group: Group): void {
  group("concurrency", (test) => {
    test("100 parallel bot creates are all persisted", async (s) => {
      const user = makeUser();
      await s.users.upsert(user);
      const bots = Array.from({ length: 100 }, (_, n) => makeBot({ userId: user.id, createdAt: at(n) }));
      const created = await Promise.all(bots.map((bot) => s.bots.create(bot)));
      expect(created).toEqual(bots);
      const pages = await walk(30, (cursor) => s.bots.listByUser(user.id, { limit: 30, cursor }));
      expect(ids(pages.flat())).toEqual(ids(bots));
    });

    test("100 parallel skill record creates are all persisted and queryable", async (s) => {
      const bot = await seedBot(s);
      const skill = makeSkill(bot.id);
      await s.skills.create(skill);
      const records = Array.from({ length: 100 }, (_, n) =>
        makeRecord(bot.id, skill.id, { n, tag: "batch" }),
      );
      await Promise.all(records.map((record) => s.skillRecords.create(record)));
      const pages = await walk(100, (cursor) =>
        s.skillRecords.query(bot.id, skill.id, { equals: { tag: "BATCH" } }, { limit: 100, cursor }),
      );
      expect(new Set(ids(pages.flat()))).toEqual(new Set(ids(records)));
    });

    test("parallel creates of one skill name: exactly one succeeds, the rest throw CONFLICT", async (s) => {
      const bot = await seedBot(s);
      const attempts = Array.from({ length: 10 }, (_, n) =>
        makeSkill(bot.id, { name: n % 2 === 0 ? "Orders" : "ORDERS" }),
      );
      const outcomes = await Promise.allSettled(attempts.map((skill) => s.skills.create(skill)));
      const fulfilled = outcomes.filter((o) => o.status === "fulfilled");
      const rejected = outcomes.filter((o): o is PromiseRejectedResult => o.status === "rejected");
      expect(fulfilled).toHaveLength(1);
      expect(rejected.every((o) => KiloError.is(o.reason, "CONFLICT"))).toBe(true);
      expect(await s.skills.listByBot(bot.id)).toHaveLength(1);
    });

    test("parallel creates of one tool name: exactly one succeeds, the rest throw CONFLICT", async (s) => {
      const bot = await seedBot(s);
      const attempts = Array.from({ length: 10 }, (_, n) =>
        makeTool(bot.id, { name: n % 2 === 0 ? "acme" : "ACME" }),
      );
      const outcomes = await Promise.allSettled(attempts.map((tool) => s.tools.create(tool)));
      const rejected = outcomes.filter((o): o is PromiseRejectedResult => o.status === "rejected");
      expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(1);
      expect(rejected.every((o) => KiloError.is(o.reason, "CONFLICT"))).toBe(true);
      expect(await s.tools.listByBot(bot.id)).toHaveLength(1);
    });

    test("parallel decisions on one approval: exactly one wins, the rest throw CONFLICT", async (s) => {
      const bot = await seedBot(s);
      const conversation = makeConversation(bot.id, bot.userId);
      await s.conversations.create(conversation);
      const approval = makeApproval(bot.id, bot.userId, conversation.id);
      await s.approvals.create(approval);
      const outcomes = await Promise.allSettled(
        Array.from({ length: 10 }, (_, n) =>
          s.approvals.decide(bot.id, approval.id, {
            status: n % 2 === 0 ? "approved" : "denied",
            reason: `decision ${n}`,
            decidedAt: at(n + 1),
          }),
        ),
      );
      const fulfilled = outcomes.filter(
        (o): o is PromiseFulfilledResult<ToolApproval | null> => o.status === "fulfilled",
      );
      const rejected = outcomes.filter((o): o is PromiseRejectedResult => o.status === "rejected");
      expect(fulfilled).toHaveLength(1);
      expect(rejected.every((o) => KiloError.is(o.reason, "CONFLICT"))).toBe(true);
      expect(await s.approvals.get(bot.id, approval.id)).toEqual(fulfilled[0]!.value);
    });

    test("parallel upserts of one user store and return a single version", async (s) => {
      const id = uid("user");
      const versions = Array.from({ length: 10 }, (_, n) => makeUser({ id, name: `version ${n}` }));
      const results = await Promise.all(versions.map((user) => s.users.upsert(user)));
      const stored = await s.users.get(id);
      expect(stored).not.toBeNull();
      for (const result of results) expect(result).toEqual(stored);
    });

    test("parallel updates and touches leave every row in one of the written states", async (s) => {
      const bot = await seedBot(s);
      const conversation = makeConversation(bot.id, bot.userId);
      await s.conversations.create(conversation);
      const names = Array.from({ length: 20 }, (_, n) => `name ${n}`);
      await Promise.all([
        ...names.map((name) => s.bots.update({ ...bot, name })),
        ...names.map((_, n) => s.conversations.touch(bot.id, conversation.id, at(n + 1))),
        ...names.map((name) => s.messages.append(makeMessage(bot.id, conversation.id, { content: name }))),
      ]);
      expect(names).toContain((await s.bots.get(bot.id))?.name);
      const touched = await s.conversations.get(bot.id, conversation.id);
      expect(touched?.updatedAt.getTime()).toBeGreaterThanOrEqual(at(1).getTime());
      expect(touched?.updatedAt.getTime()).toBeLessThanOrEqual(at(20).getTime());
      expect({ ...touched, updatedAt: conversation.updatedAt }).toEqual(conversation);
      expect(await s.messages.listRecent(bot.id, conversation.id, { limit: 50 })).toHaveLength(20);
    });
  });
}

// ---------------------------------------------------------------------------
// Hostile strings

const HOSTILE_STRINGS: Record<string, string> = {
  "SQL injection": "'; DROP TABLE bots; --",
  "quotes of every kind": `She said "hi", 'bye' and \`tick\` ‘curly’ “double”`,
  backslashes: "C:\\path\\to\\file \\' \\\" \\\\ \\n \\u0000",
  "LIKE and regex metacharacters": "100% of _all_ [a-z]* ^$ .+ ? (x|y) {1,2}",
  placeholders: "$1 ? :name @p0 %s {{x}} $\u{7B}x} #{x}",
  "JSON and operators": '{"$gt": ""} ]}) -> ->> @> ?| /* */ --',
  unicode: "Grüße 👩‍💻🎂 日本語 עברית مرحبا e\u0301 ß İı Ω 🏳️‍🌈",
  "control characters": "line1\nline2\r\n\ttab \u0007 \u001b[31m red \u007f",
  "zero-width and BOM": "a\u200Bb\u200Dc\uFEFFd",
  "leading and trailing spaces": "  padded  ",
};

function registerHostileStringTests(group: Group): void {
  group("hostile strings", (test) => {
    /** Stores `text` in every text field it can go in, reads everything back, compares. */
    const roundTrip = async (s: Storage, text: string, label: string) => {
      const user = makeUser({ name: text, metadata: { [text]: text } });
      await s.users.upsert(user);
      const bot = makeBot({
        userId: user.id,
        name: text,
        personality: text,
        context: text,
        metadata: { [text]: text, list: [text], nested: { text } },
      });
      await s.bots.create(bot);
      const skill = makeSkill(bot.id, {
        name: text,
        description: text,
        instructions: text,
        triggers: [text],
        examples: [text],
        metadata: { [text]: text },
      });
      await s.skills.create(skill);
      const record = makeRecord(bot.id, skill.id, { text, [text]: text });
      await s.skillRecords.create(record);
      const conversation = makeConversation(bot.id, user.id, { title: text, metadata: { text } });
      await s.conversations.create(conversation);
      const message = await s.messages.append(
        makeMessage(bot.id, conversation.id, { content: text, metadata: { [text]: [text] } }),
      );
      const memory = makeMemory(bot.id, user.id, { key: text, content: text });
      await s.memories.create(memory);
      const usage = makeUsage(user.id, bot.id, {
        purpose: text,
        model: text,
        provider: text,
        errorCode: text,
      });
      await s.usage.record(usage);
      const proposal = makeProposal(bot.id, user.id, {
        name: text,
        description: text,
        sourceMessage: text,
        triggers: [text],
        clarifyingQuestions: [text],
      });
      await s.proposals.create(proposal);
      // Storage keeps what it is given; the schemas that keep such names out of tools live in the core.
      const [endpoint] = makeEndpoints();
      const tool = makeTool(bot.id, {
        name: text,
        description: text,
        baseUrl: text,
        auth: { type: "basic", username: text },
        credential: text,
        endpoints: [
          {
            ...endpoint!,
            description: text,
            parameters: [{ name: text, in: "query", type: "string", required: false, description: text }],
          },
        ],
      });
      await s.tools.create(tool);
      const audit = makeAudit(bot.id, user.id, { toolName: text, endpoint: text, errorCode: text });
      await s.toolAudit.record(audit);
      const approval = makeApproval(bot.id, user.id, conversation.id, {
        toolName: text,
        endpoint: text,
        toolCallId: text,
        reason: text,
        input: { [text]: text, nested: { list: [text, { [text]: null }] } },
      });
      await s.approvals.create(approval);

      const where = `(${label})`;
      expect(await s.users.get(user.id), where).toEqual(user);
      expect(await s.bots.get(bot.id), where).toEqual(bot);
      expect(await s.skills.get(bot.id, skill.id), where).toEqual(skill);
      expect(await s.skillRecords.get(bot.id, skill.id, record.id), where).toEqual(record);
      expect(await s.conversations.get(bot.id, conversation.id), where).toEqual(conversation);
      expect(await s.messages.listRecent(bot.id, conversation.id, { limit: 5 }), where).toEqual([message]);
      expect(await s.memories.get(bot.id, memory.id), where).toEqual(memory);
      expect(await s.memories.findByKey(bot.id, user.id, text), where).toEqual(memory);
      expect((await s.usage.list({ userId: user.id }, { limit: 5 })).items, where).toEqual([usage]);
      expect(await s.proposals.get(bot.id, proposal.id), where).toEqual(proposal);
      const equal = await s.skillRecords.query(bot.id, skill.id, { equals: { text } }, { limit: 5 });
      expect(ids(equal.items), `equals ${where}`).toEqual([record.id]);
      const contains = await s.skillRecords.query(bot.id, skill.id, { contains: { text } }, { limit: 5 });
      expect(ids(contains.items), `contains ${where}`).toEqual([record.id]);
      const byHostileField = await s.skillRecords.query(
        bot.id,
        skill.id,
        { equals: { [text]: text } },
        { limit: 5 },
      );
      expect(ids(byHostileField.items), `field name ${where}`).toEqual([record.id]);
      await expectKiloError(s.skills.create(makeSkill(bot.id, { name: text })), "CONFLICT");
      expect(await s.tools.get(bot.id, tool.id), where).toEqual(tool);
      expect(await s.tools.findByName(bot.id, text), `tool name ${where}`).toEqual(tool);
      await expectKiloError(s.tools.create(makeTool(bot.id, { name: text })), "CONFLICT");
      expect((await s.toolAudit.list(bot.id, { limit: 5 })).items, where).toEqual([audit]);
      expect(await s.approvals.get(bot.id, approval.id), where).toEqual(approval);
      const decision = { status: "denied", reason: text, decidedAt: at(3) } as const;
      expect(await s.approvals.decide(bot.id, approval.id, decision), where).toEqual({
        ...approval,
        ...decision,
      });
    };

    test("hostile strings round-trip unchanged through every text field", async (s) => {
      for (const [label, text] of Object.entries(HOSTILE_STRINGS)) await roundTrip(s, text, label);
      // The storage must still work afterwards (no table was dropped, no state corrupted).
      const bot = await seedBot(s);
      expect(await s.bots.get(bot.id)).toEqual(bot);
    });

    test("NUL bytes round-trip unchanged", async (s) => {
      await roundTrip(s, "before\u0000after", "NUL");
    });

    test("a 100 KB string round-trips unchanged", async (s) => {
      const unit = "kilo '\"\\; DROP -- % _ 🎂 ";
      const big = unit.repeat(Math.floor(100_000 / unit.length)).padEnd(100_000, "x");
      expect(big).toHaveLength(100_000);
      const bot = await seedBot(s, { metadata: { big } });
      expect(await s.bots.get(bot.id)).toEqual(bot);
      const conversation = makeConversation(bot.id, bot.userId);
      await s.conversations.create(conversation);
      const message = await s.messages.append(makeMessage(bot.id, conversation.id, { content: big }));
      expect((await s.messages.listRecent(bot.id, conversation.id, { limit: 1 }))[0]?.content).toBe(big);
      expect(message.content).toBe(big);
      const skill = makeSkill(bot.id);
      await s.skills.create(skill);
      const record = makeRecord(bot.id, skill.id, { big });
      await s.skillRecords.create(record);
      expect((await s.skillRecords.get(bot.id, skill.id, record.id))?.data.big).toBe(big);
      const found = await s.skillRecords.query(
        bot.id,
        skill.id,
        { contains: { big: big.slice(5_000, 6_000) } },
        {
          limit: 5,
        },
      );
      expect(ids(found.items)).toEqual([record.id]);
      const proposal = makeProposal(bot.id, bot.userId, { sourceMessage: big });
      await s.proposals.create(proposal);
      expect((await s.proposals.get(bot.id, proposal.id))?.sourceMessage).toBe(big);
      const [endpoint] = makeEndpoints();
      const tool = makeTool(bot.id, { endpoints: [{ ...endpoint!, description: big }] });
      await s.tools.create(tool);
      expect((await s.tools.get(bot.id, tool.id))?.endpoints[0]?.description).toBe(big);
      const approval = makeApproval(bot.id, bot.userId, conversation.id, { input: { big } });
      await s.approvals.create(approval);
      expect((await s.approvals.get(bot.id, approval.id))?.input.big).toBe(big);
    });

    test("LIKE wildcards in `contains` and findByKey match only themselves", async (s) => {
      const bot = await seedBot(s);
      const skill = makeSkill(bot.id);
      await s.skills.create(skill);
      const texts = ["abc", "a_c", "100%", "100 percent", "a\\b", "ab"];
      const records = texts.map((text, n) => makeRecord(bot.id, skill.id, { text }, { createdAt: at(n) }));
      for (const record of records) await s.skillRecords.create(record);
      const containing = async (needle: string) =>
        (
          await s.skillRecords.query(bot.id, skill.id, { contains: { text: needle } }, { limit: 10 })
        ).items.map((r) => r.data.text);
      expect(await containing("_")).toEqual(["a_c"]);
      expect(await containing("%")).toEqual(["100%"]);
      expect(await containing("\\")).toEqual(["a\\b"]);
      expect(await containing("a%c")).toEqual([]);
      const equalTo = await s.skillRecords.query(
        bot.id,
        skill.id,
        { equals: { text: "a_c" } },
        { limit: 10 },
      );
      expect(equalTo.items.map((r) => r.data.text)).toEqual(["a_c"]);
      await s.memories.create(makeMemory(bot.id, bot.userId, { key: "abc" }));
      expect(await s.memories.findByKey(bot.id, bot.userId, "a_c")).toBeNull();
      expect(await s.memories.findByKey(bot.id, bot.userId, "a%")).toBeNull();
    });
  });
}
