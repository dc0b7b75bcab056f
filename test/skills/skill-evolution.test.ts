import { describe, expect, it } from "vitest";
import { memoryStorage } from "../../adapters/storage/memory/index.js";
import type { EvolutionReplay, EvolveProgressEvent, Trace } from "../../src/index.js";
import { detectPatterns } from "../../src/skills/trace-patterns.js";
import { ORDER_TRACKER } from "../fixtures.js";
import { setup, USER } from "../kilo/helpers.js";

const draft = (name = "invoice-reminders") =>
  JSON.stringify({
    name,
    description: "Writes a friendly payment reminder for an overdue invoice.",
    triggers: ["invoice reminder", "overdue invoice"],
    examples: ["Write an invoice reminder for Acme"],
    body: "# Invoice reminders\n\n1. Name the invoice number and amount.\n2. Keep a friendly tone.",
    category: "finance",
  });

const REQUESTS = [
  "Write an overdue invoice reminder for Acme",
  "Draft an invoice reminder to Globex, it is overdue",
  "Please write an overdue invoice reminder for Initech",
];

const noProposals = { respond: async () => null, consider: async () => null };

function makeTrace(botId: string, index: number, overrides: Partial<Trace> = {}): Trace {
  return {
    id: `trace_seed_${index}`,
    botId,
    userId: USER,
    conversationId: null,
    userMessageId: null,
    replyMessageId: null,
    message: REQUESTS[index % REQUESTS.length]!,
    skillId: null,
    skillName: null,
    matchPass: "none",
    matchConfidence: 1,
    skillsInjected: [],
    toolCalls: [],
    outcome: "ok",
    errorCode: null,
    latencyMs: 5,
    model: "mock",
    promptTokens: 10,
    completionTokens: 2,
    costUsd: 0,
    feedback: null,
    createdAt: new Date(Date.UTC(2026, 0, 1, 0, index)),
    ...overrides,
  };
}

describe("kilo.evolve", () => {
  it("drafts a Markdown skill from 3 similar unmatched requests, with replay evidence and progress events", async () => {
    const { kilo, provider } = setup(
      { chat: ["Sure.", "Done.", "Here you go."], "evolve-skill": [draft()] },
      { proposer: noProposals },
    );
    const bot = await kilo.bots.create({ userId: USER, name: "Crumb" });
    const turns = [];
    for (const message of REQUESTS) turns.push(await kilo.chat({ botId: bot.id, userId: USER, message }));
    const events: EvolveProgressEvent[] = [];
    kilo.events.on("evolve-progress", (event) => events.push(event));

    const result = await kilo.evolve({ botId: bot.id, userId: USER });

    expect(result).toMatchObject({ tracesAnalyzed: 3, patternsDetected: 1, skillsCreated: 1 });
    const [skill] = result.skills;
    expect(skill).toMatchObject({ name: "invoice-reminders", status: "draft" });
    expect(skill!.markdown?.body).toContain("Invoice reminders");
    const evolution = skill!.metadata.evolution as Record<string, unknown>;
    expect(evolution.traceIds).toEqual(turns.map((turn) => turn.traceId));
    expect(evolution.replay).toMatchObject({ messages: 3, matchedBefore: 0, matchedByDraft: 3 });
    expect(provider.requests.filter((request) => request.purpose === "evolve-skill")).toHaveLength(1);
    expect(events.map((event) => event.stage)).toEqual(["analysing", "detected", "created", "done"]);
    // Drafts are never matched: the next turn does not use it.
    const next = await kilo.chat({ botId: bot.id, userId: USER, message: REQUESTS[0]! }).catch(() => null);
    expect(next?.skill ?? null).toBeNull();
  });

  it("replays the requests through the matcher's classifier and the composer, without and with the draft", async () => {
    const storage = memoryStorage();
    const unsure = '{"skill": null, "confidence": 0.9, "actionable": true, "reason": "no skill fits"}';
    // Two classifier replies for three replayed requests: the third call fails.
    const { kilo, provider } = setup({ "evolve-skill": [draft()], classify: [unsure, unsure] }, { storage });
    const bot = await kilo.bots.create({ userId: USER, name: "Crumb" });
    await kilo.skills.create(bot.id, ORDER_TRACKER);
    for (let i = 0; i < 3; i++) await storage.traces!.create(makeTrace(bot.id, i));

    const result = await kilo.evolve({ botId: bot.id, userId: USER });

    expect(result.skillsCreated).toBe(1);
    const replay = (result.skills[0]!.metadata.evolution as { replay: EvolutionReplay }).replay;
    // Without the draft the fast path is unsure about Order Tracker, so the classifier decides (no skill);
    // with it, the fast path picks the draft and the classifier is not asked.
    expect(replay).toMatchObject({ messages: 3, matchedBefore: 0, matchedByDraft: 3, classifierCalls: 3 });
    expect(replay.examples.map((example) => [example.beforePass, example.afterPass])).toEqual([
      ["llm", "fast"],
      ["llm", "fast"],
      ["error", "fast"],
    ]);
    for (const example of replay.examples) {
      expect(example).toMatchObject({ before: null, after: "invoice-reminders", draftInPrompt: true });
      expect(example.promptChars.after).toBeGreaterThan(example.promptChars.before);
    }
    expect(provider.requests.filter((request) => request.purpose === "classify")).toHaveLength(3);
  });

  it("evolves a user across their bots into the user's scope, which every bot of theirs then sees", async () => {
    const storage = memoryStorage();
    const { kilo } = setup({ "evolve-skill": [draft()] }, { storage });
    const crumb = await kilo.bots.create({ userId: USER, name: "Crumb" });
    const rye = await kilo.bots.create({ userId: USER, name: "Rye" });
    // The pattern only shows across both bots: two requests to one, one to the other.
    await storage.traces!.create(makeTrace(crumb.id, 0));
    await storage.traces!.create(makeTrace(crumb.id, 1));
    await storage.traces!.create(makeTrace(rye.id, 2));

    const result = await kilo.evolve({ userId: USER, autoApply: true });

    expect(result).toMatchObject({ tracesAnalyzed: 3, patternsDetected: 1, skillsCreated: 1 });
    expect(result.skills[0]!.scope).toEqual({ kind: "user", id: USER });
    for (const bot of [crumb, rye]) {
      const names = (await kilo.skills.effective(bot.id)).map(({ skill }) => skill.name);
      expect(names).toEqual(["invoice-reminders"]);
    }
    // A second pass sees the skill in the user's scope: nothing new.
    expect((await kilo.evolve({ userId: USER })).patterns[0]).toMatchObject({ outcome: "served" });
  });

  it("evolves a team from its bots' traces into the team's scope, leaving members' other bots out", async () => {
    const storage = memoryStorage();
    const { kilo } = setup({ "evolve-skill": [draft()] }, { storage });
    const team = await kilo.teams.create({ id: "bakers", name: "Bakers" });
    await kilo.teams.addMember(team.id, { userId: USER });
    await kilo.teams.addMember(team.id, { userId: "bob" });
    const mine = await kilo.bots.create({ userId: USER, name: "Crumb", teamId: team.id });
    const bobs = await kilo.bots.create({ userId: "bob", name: "Rye", teamId: team.id });
    const outside = await kilo.bots.create({ userId: "bob", name: "Private" });
    await storage.traces!.create(makeTrace(mine.id, 0));
    await storage.traces!.create(makeTrace(bobs.id, 1, { userId: "bob" }));
    await storage.traces!.create(makeTrace(bobs.id, 2, { userId: "bob" }));
    await storage.traces!.create(makeTrace(outside.id, 3, { userId: "bob", id: "trace_private" }));

    const result = await kilo.evolve({ teamId: team.id });

    expect(result).toMatchObject({ tracesAnalyzed: 3, skillsCreated: 1 });
    expect(result.skills[0]).toMatchObject({ scope: { kind: "team", id: "bakers" }, status: "draft" });
    const evidence = result.skills[0]!.metadata.evolution as { traceIds: string[] };
    expect(evidence.traceIds).not.toContain("trace_private");
    await expect(kilo.evolve({ teamId: "nope" })).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(kilo.evolve({ userId: USER, teamId: team.id })).rejects.toMatchObject({
      code: "VALIDATION_FAILED",
    });
  });

  it("applies the skill at once with autoApply", async () => {
    const storage = memoryStorage();
    const { kilo } = setup({ "evolve-skill": [draft()] }, { storage });
    const bot = await kilo.bots.create({ userId: USER, name: "Crumb" });
    for (let i = 0; i < 3; i++) await storage.traces!.create(makeTrace(bot.id, i));
    const result = await kilo.evolve({ botId: bot.id, userId: USER, autoApply: true });
    expect(result.skills[0]).toMatchObject({ status: "active" });
  });

  it("skips a pattern an existing skill already serves, without calling the model", async () => {
    const storage = memoryStorage();
    const { kilo, provider } = setup({}, { storage });
    const bot = await kilo.bots.create({ userId: USER, name: "Crumb" });
    await kilo.skills.create(bot.id, {
      name: "Invoice Reminders",
      description: "Writes reminders for overdue invoices",
      instructions: "Write a polite reminder.",
      triggers: ["invoice reminder", "overdue invoice"],
    });
    for (let i = 0; i < 3; i++) await storage.traces!.create(makeTrace(bot.id, i));
    const result = await kilo.evolve({ botId: bot.id, userId: USER });
    expect(result).toMatchObject({ tracesAnalyzed: 3, patternsDetected: 1, skillsCreated: 0 });
    expect(result.patterns[0]).toMatchObject({ outcome: "served" });
    expect(provider.requests).toHaveLength(0);
  });

  it("never drafts a near-duplicate: not of an earlier draft, not of a skill with the draft's name", async () => {
    const storage = memoryStorage();
    const { kilo, provider } = setup({ "evolve-skill": [draft(), draft("Weekly Report")] }, { storage });
    const bot = await kilo.bots.create({ userId: USER, name: "Crumb" });
    for (let i = 0; i < 3; i++) await storage.traces!.create(makeTrace(bot.id, i));
    expect((await kilo.evolve({ botId: bot.id, userId: USER })).skillsCreated).toBe(1);
    // Run again: the draft from the first pass covers the pattern.
    const again = await kilo.evolve({ botId: bot.id, userId: USER });
    expect(again.skillsCreated).toBe(0);
    expect(again.patterns[0]).toMatchObject({ outcome: "duplicate" });
    expect(provider.requests).toHaveLength(1);

    // A different bot whose existing (unrelated) skill has the name the model picks.
    const other = await kilo.bots.create({ userId: USER, name: "Other" });
    await kilo.skills.create(other.id, {
      name: "Weekly Report",
      instructions: "Summarize the week.",
      triggers: ["weekly report"],
    });
    for (let i = 0; i < 3; i++)
      await storage.traces!.create(makeTrace(other.id, i, { id: `trace_other_${i}` }));
    const clash = await kilo.evolve({ botId: other.id, userId: USER });
    expect(clash.skillsCreated).toBe(0);
    expect(clash.patterns[0]).toMatchObject({ outcome: "duplicate" });
    expect((await kilo.skills.list(other.id)).map((skill) => skill.name)).toEqual(["Weekly Report"]);
  });

  it("respects minSuccessRate: failed turns and thumbs-down count against a pattern", async () => {
    const storage = memoryStorage();
    const { kilo, provider } = setup({ "evolve-skill": [draft()] }, { storage });
    const bot = await kilo.bots.create({ userId: USER, name: "Crumb" });
    await storage.traces!.create(makeTrace(bot.id, 0, { outcome: "error", errorCode: "PROVIDER_FAILED" }));
    await storage.traces!.create(
      makeTrace(bot.id, 1, { feedback: { rating: "down", comment: null, at: new Date() } }),
    );
    await storage.traces!.create(makeTrace(bot.id, 2));
    const low = await kilo.evolve({ botId: bot.id, userId: USER });
    expect(low).toMatchObject({ patternsDetected: 1, skillsCreated: 0 });
    expect(low.patterns[0]).toMatchObject({ outcome: "low-success" });
    expect(low.patterns[0]!.successRate).toBeCloseTo(1 / 3);
    expect(provider.requests).toHaveLength(0);
    const lenient = await kilo.evolve({ botId: bot.id, userId: USER, minSuccessRate: 0.3 });
    expect(lenient.skillsCreated).toBe(1);
  });

  it("needs minOccurrences similar requests and refuses another user's bot", async () => {
    const storage = memoryStorage();
    const { kilo } = setup({}, { storage });
    const bot = await kilo.bots.create({ userId: USER, name: "Crumb" });
    for (let i = 0; i < 3; i++) await storage.traces!.create(makeTrace(bot.id, i));
    expect(await kilo.evolve({ botId: bot.id, userId: USER, minOccurrences: 4 })).toMatchObject({
      tracesAnalyzed: 3,
      patternsDetected: 0,
      skillsCreated: 0,
    });
    await expect(kilo.evolve({ botId: bot.id, userId: "user_2" })).rejects.toMatchObject({
      code: "NOT_FOUND",
    });
  });
});

describe("detectPatterns", () => {
  it("groups similar requests by a shared keyword signature and leaves one-off requests alone", () => {
    const messages = [
      ...REQUESTS,
      "What's the weather in Paris",
      "weather in Oslo?",
      "Weather for Lima",
      "Book a table for two at Luigi's tonight",
      "Remind me to water the plants",
      "Translate good morning into Japanese",
    ];
    const patterns = detectPatterns(messages.map((message) => ({ message })));
    expect(patterns.map((pattern) => pattern.members)).toEqual([
      [0, 1, 2],
      [3, 4, 5],
    ]);
    expect(patterns[0]!.keywords).toEqual(expect.arrayContaining(["invoic", "overdu", "reminder"]));
    // Deterministic: the same input gives the same signatures.
    expect(detectPatterns(messages.map((message) => ({ message })))).toEqual(patterns);
  });
});
