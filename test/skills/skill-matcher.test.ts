import { describe, expect, it } from "vitest";
import type { Bot } from "../../src/domain/bot.js";
import type { Message } from "../../src/domain/conversation.js";
import type { Skill } from "../../src/domain/skill.js";
import { KiloError } from "../../src/errors.js";
import type { GatewayRequest, GatewayResponse, LlmGateway } from "../../src/ports/llm-gateway.js";
import type { MatchInput, SkillCatalog } from "../../src/ports/skill-matcher.js";
import { createSkillMatcher, deriveRecordFilter, looksActionable } from "../../src/skills/skill-matcher.js";

function skill(fields: Partial<Skill> & Pick<Skill, "id" | "name">): Skill {
  return {
    botId: "bot-1",
    scope: { kind: "bot", id: "bot-1" },
    description: "",
    instructions: "",
    triggers: [],
    examples: [],
    dataFields: [],
    requiredIntegrations: [],
    taskType: "skill_execution",
    status: "active",
    metadata: {},
    createdAt: new Date(0),
    updatedAt: new Date(0),
    ...fields,
  };
}

const DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

const orderTracker = skill({
  id: "order-tracker",
  name: "Order Tracker",
  description: "Tracks customer orders for the bakery.",
  triggers: ["new order", "order", "orders"],
  examples: ["New order for John: two baguettes on Friday", "Which orders are due this week?"],
  dataFields: [
    { name: "customer", type: "string", description: "", required: true },
    { name: "item", type: "string", description: "", required: true },
    { name: "pickup_day", type: "enum", description: "", required: false, options: DAYS },
    { name: "status", type: "enum", description: "", required: false, options: ["new", "baking", "ready"] },
  ],
});
const recipeBook = skill({
  id: "recipe-book",
  name: "Recipe Book",
  description: "Keeps the bakery's recipes.",
  triggers: ["recipe", "recipes"],
  examples: ["How do I make the sourdough starter?", "Save my lemon tart recipe"],
  taskType: "simple_qa",
});
const bakery: SkillCatalog = { key: "bakery-v1", skills: [orderTracker, recipeBook] };

const bot: Bot = {
  id: "bot-1",
  userId: "user-1",
  name: "Baker",
  soul: null,
  personality: null,
  context: null,
  metadata: {},
  createdAt: new Date(0),
  updatedAt: new Date(0),
};

/** A gateway that records requests and answers with scripted text (or throws a scripted error). */
function fakeGateway(...replies: Array<string | Error>) {
  const requests: GatewayRequest[] = [];
  const gateway: LlmGateway = {
    async complete(request): Promise<GatewayResponse> {
      requests.push(request);
      const reply = replies.shift() ?? "";
      if (reply instanceof Error) throw reply;
      return {
        content: [{ type: "text", text: reply }],
        stopReason: "end_turn",
        usage: {
          inputTokens: 10,
          outputTokens: 10,
          cacheReadTokens: 0,
          cacheWriteTokens: 0,
          reasoningTokens: 0,
        },
        model: "fake-1",
        provider: "fake",
        taskType: request.taskType,
        costUsd: 0,
        latencyMs: 1,
        attempts: [{ provider: "fake", model: "fake-1", ok: true, errorCode: null, latencyMs: 1 }],
      };
    },
    stream() {
      throw new Error("the matcher does not stream");
    },
  };
  return { gateway, requests };
}

function input(message: string, catalog: SkillCatalog = bakery, extra: Partial<MatchInput> = {}): MatchInput {
  return { message, catalog, bot, userId: "user-1", conversationId: "conv-1", ...extra };
}

function systemText(request: GatewayRequest | undefined): string {
  return (request?.system ?? []).map((block) => block.text).join("\n");
}

describe("createSkillMatcher: fast path", () => {
  it('matches "New order: Maria, chocolate cake, Saturday" to the Order Tracker without the LLM', async () => {
    const { gateway, requests } = fakeGateway();
    const match = await createSkillMatcher({ gateway }).match(
      input("New order: Maria, chocolate cake, Saturday"),
    );
    expect(match.skill?.id).toBe("order-tracker");
    expect(match.pass).toBe("fast");
    expect(match.reason).toMatch(
      /^fast path: "Order Tracker" by trigger "new order" \(score 0\.\d+, margin 0\.\d+\)$/,
    );
    expect(match.confidence).toBeGreaterThan(0.9);
    expect(match.taskType).toBe("skill_execution");
    expect(match.actionable).toBe(true);
    expect(match.candidates[0]).toMatchObject({ skillId: "order-tracker", name: "Order Tracker" });
    expect(requests).toHaveLength(0);
  });

  it('matches "What orders do I have on Saturday?" and filters records by the day named', async () => {
    const { gateway, requests } = fakeGateway();
    const match = await createSkillMatcher({ gateway }).match(input("What orders do I have on Saturday?"));
    expect(match.skill?.id).toBe("order-tracker");
    expect(match.pass).toBe("fast");
    expect(match.context).toEqual({
      historyDepth: 10,
      memoryQuery: "What orders do I have on Saturday?",
      memoryLimit: 8,
      skillData: { skillId: "order-tracker", filter: { equals: { pickup_day: "Saturday" } }, limit: 20 },
    });
    expect(requests).toHaveLength(0);
  });

  it("returns at most five candidates, best first", async () => {
    const skills = Array.from({ length: 8 }, (_, i) =>
      skill({ id: `s${i}`, name: `Cake Log ${i}`, triggers: ["cake"], examples: [`cake number ${i}`] }),
    );
    const { gateway } = fakeGateway(
      '{"skill": null, "confidence": 0.9, "actionable": false, "reason": "tie"}',
    );
    const match = await createSkillMatcher({ gateway }).match(input("cake", { key: "cakes", skills }));
    expect(match.candidates).toHaveLength(5);
    const scores = match.candidates.map((candidate) => candidate.score);
    expect([...scores].sort((x, y) => y - x)).toEqual(scores);
  });

  it("does not call the LLM when the fallback is off", async () => {
    const { gateway, requests } = fakeGateway();
    const match = await createSkillMatcher({ gateway, llmFallback: false }).match(
      input("hello there, how are you?"),
    );
    expect(match).toMatchObject({ skill: null, pass: "fast", taskType: "simple_qa" });
    expect(match.reason).toMatch(/fast path .*; llm fallback disabled/);
    expect(requests).toHaveLength(0);
  });
});

describe("createSkillMatcher: LLM fallback", () => {
  it("asks the LLM about unrelated chit-chat and accepts its 'no skill'", async () => {
    const { gateway, requests } = fakeGateway(
      '{"skill": null, "confidence": 0.9, "actionable": false, "reason": "small talk"}',
    );
    const match = await createSkillMatcher({ gateway }).match(input("Lovely weather today, isn't it?"));
    expect(requests).toHaveLength(1);
    const request = requests[0]!;
    expect(request).toMatchObject({
      taskType: "simple_qa",
      purpose: "classify",
      maxTokens: 300,
      thinking: false,
      botId: "bot-1",
      userId: "user-1",
      conversationId: "conv-1",
    });
    expect(systemText(request)).toContain("id: order-tracker | name: Order Tracker");
    expect(systemText(request)).toContain("triggers: new order, order, orders");
    expect(systemText(request)).toContain('"skill"');
    expect(JSON.stringify(request.messages)).toContain("Lovely weather today");
    expect(match).toMatchObject({ skill: null, pass: "llm", confidence: 0.9, actionable: false });
    expect(match.reason).toMatch(/^fast path not confident \(.*\); llm chose no skill: small talk$/);
    expect(match.taskType).toBe("simple_qa");
    expect(match.context).toEqual({
      historyDepth: 6,
      memoryQuery: "Lovely weather today, isn't it?",
      memoryLimit: 8,
      skillData: null,
    });
  });

  it("accepts a skill the LLM picks, from fenced JSON", async () => {
    const { gateway } = fakeGateway(
      'Sure!\n```json\n{"skill": "recipe-book", "confidence": 0.82, "actionable": true, "reason": "asks for a bake"}\n```',
    );
    const match = await createSkillMatcher({ gateway }).match(
      input("Maria wants to know how long the focaccia proves"),
    );
    expect(match).toMatchObject({ pass: "llm", confidence: 0.82, actionable: true, taskType: "simple_qa" });
    expect(match.skill?.id).toBe("recipe-book");
    expect(match.reason).toContain('llm chose "Recipe Book" (confidence 0.82): asks for a bake');
    expect(match.context.skillData).toBeNull();
  });

  it("finds JSON inside prose, even with braces in strings", async () => {
    const { gateway } = fakeGateway(
      'I think {this} fits: {"skill": "order-tracker", "confidence": 0.7, "actionable": true, "reason": "a {new} order"} ok',
    );
    const match = await createSkillMatcher({ gateway }).match(input("Maria is coming for the big one"));
    expect(match.skill?.id).toBe("order-tracker");
    expect(match.context.skillData).toMatchObject({ skillId: "order-tracker", limit: 20 });
  });

  it("treats an unknown skill id as no skill, without throwing", async () => {
    const { gateway } = fakeGateway('{"skill": "weather-skill", "confidence": 0.95, "actionable": false}');
    const match = await createSkillMatcher({ gateway }).match(input("Is it going to rain?"));
    expect(match).toMatchObject({ skill: null, pass: "llm", taskType: "simple_qa" });
    expect(match.reason).toContain('llm chose unknown skill "weather-skill", treated as no skill');
  });

  it("treats garbage as no skill, without throwing", async () => {
    for (const reply of [
      "I am not sure, sorry.",
      "",
      '{"skill": ',
      "```json\nnot json\n```",
      '{"answer": 42}',
    ]) {
      const { gateway } = fakeGateway(reply);
      const match = await createSkillMatcher({ gateway }).match(input("Is it going to rain?"));
      expect(match).toMatchObject({ skill: null, pass: "llm", confidence: 0 });
      expect(match.reason).toMatch(/llm reply unusable \(.+\), treated as no skill$/);
    }
  });

  it("ignores a pick below the minimum LLM confidence", async () => {
    const { gateway } = fakeGateway('{"skill": "recipe-book", "confidence": 0.2, "actionable": false}');
    const match = await createSkillMatcher({ gateway }).match(input("Is it going to rain?"));
    expect(match.skill).toBeNull();
    expect(match.reason).toContain("low confidence 0.2 < 0.5");
  });

  it("falls back to the heuristic when the LLM leaves out `actionable`", async () => {
    const { gateway } = fakeGateway('{"skill": null}');
    const match = await createSkillMatcher({ gateway }).match(input("Could you remind me to call the mill?"));
    expect(match).toMatchObject({ skill: null, actionable: true, confidence: 0.5 });
  });

  it("lets a gateway error propagate", async () => {
    const failure = new KiloError("PROVIDER_FAILED", "every provider failed", { retryable: true });
    const { gateway } = fakeGateway(failure);
    await expect(createSkillMatcher({ gateway }).match(input("Is it going to rain?"))).rejects.toBe(failure);
  });

  it("wraps a non-kilo gateway error as PROVIDER_FAILED", async () => {
    const { gateway } = fakeGateway(new Error("socket hang up"));
    const error = await createSkillMatcher({ gateway })
      .match(input("Is it going to rain?"))
      .catch((e: unknown) => e);
    expect(KiloError.is(error, "PROVIDER_FAILED")).toBe(true);
  });

  it("refuses to call the LLM once aborted", async () => {
    const { gateway, requests } = fakeGateway();
    const controller = new AbortController();
    controller.abort();
    const error = await createSkillMatcher({ gateway })
      .match(input("Is it going to rain?", bakery, { signal: controller.signal }))
      .catch((e: unknown) => e);
    expect(KiloError.is(error, "ABORTED")).toBe(true);
    expect(requests).toHaveLength(0);
  });

  it("lists at most maxLlmSkills skills, best fast-path candidates first", async () => {
    const skills = Array.from({ length: 40 }, (_, i) =>
      skill({
        id: `skill-${i}`,
        name: `Skill ${i}`,
        triggers: [`thing${i}`],
        description: `Handles thing${i}.`,
      }),
    );
    const { gateway, requests } = fakeGateway('{"skill": null, "confidence": 0.6, "actionable": false}');
    await createSkillMatcher({ gateway, maxLlmSkills: 20 }).match(
      input("thing37 or thing12, not sure", { key: "many", skills }),
    );
    const lines = systemText(requests[0])
      .split("\n")
      .filter((line) => line.startsWith("- id: "));
    expect(lines).toHaveLength(20);
    expect(
      lines
        .slice(0, 2)
        .map((line) => line.split(" | ")[0])
        .sort(),
    ).toEqual(["- id: skill-12", "- id: skill-37"]);
    expect(systemText(requests[0])).toContain("the 20 most likely of 40");
  });

  it("passes recent history to the classifier", async () => {
    const history: Message[] = [
      {
        id: "m1",
        conversationId: "conv-1",
        botId: "bot-1",
        role: "assistant",
        content: "Shall I add Maria's cake to the orders?",
        seq: 1,
        metadata: {},
        createdAt: new Date(0),
      },
    ];
    const { gateway, requests } = fakeGateway(
      '{"skill": "order-tracker", "confidence": 0.9, "actionable": true}',
    );
    const match = await createSkillMatcher({ gateway }).match(input("yes please", bakery, { history }));
    expect(JSON.stringify(requests[0]?.messages)).toContain(
      "assistant: Shall I add Maria's cake to the orders?",
    );
    expect(match.skill?.id).toBe("order-tracker");
  });
});

describe("createSkillMatcher: catalogs and context", () => {
  it('answers pass "none" for an empty catalog, without calling the LLM', async () => {
    const { gateway, requests } = fakeGateway();
    const matcher = createSkillMatcher({ gateway });
    const match = await matcher.match(
      input("Can you keep track of my water intake?", { key: "empty", skills: [] }),
    );
    expect(match).toEqual({
      skill: null,
      confidence: 1,
      pass: "none",
      reason: "no active skills",
      actionable: true,
      taskType: "simple_qa",
      candidates: [],
      context: {
        historyDepth: 6,
        memoryQuery: "Can you keep track of my water intake?",
        memoryLimit: 8,
        skillData: null,
      },
    });
    const chat = await matcher.match(input("good morning!", { key: "empty", skills: [] }));
    expect(chat.actionable).toBe(false);
    expect(requests).toHaveLength(0);
  });

  it("reuses the index for the same catalog key and rebuilds for a new key", async () => {
    const { gateway } = fakeGateway();
    const matcher = createSkillMatcher({ gateway, llmFallback: false });
    const renamed = skill({ ...recipeBook, id: "bread-book", name: "Bread Book", triggers: ["bread"] });
    expect((await matcher.match(input("new order for Maria"))).skill?.id).toBe("order-tracker");
    // Same key: the catalog is declared unchanged, so the cached index answers.
    const stale = await matcher.match(input("bread", { key: "bakery-v1", skills: [renamed] }));
    expect(stale.skill).toBeNull();
    const fresh = await matcher.match(input("bread", { key: "bakery-v2", skills: [renamed] }));
    expect(fresh.skill?.id).toBe("bread-book");
  });

  it("evicts the least recently used index beyond indexCacheSize", async () => {
    const { gateway } = fakeGateway();
    const matcher = createSkillMatcher({ gateway, llmFallback: false, indexCacheSize: 1 });
    const bread = skill({ id: "bread-book", name: "Bread Book", triggers: ["bread"] });
    await matcher.match(input("new order", { key: "a", skills: [orderTracker] }));
    await matcher.match(input("bread", { key: "b", skills: [bread] }));
    // "a" was evicted, so the same key is built again from the skills given now.
    const rebuilt = await matcher.match(input("bread", { key: "a", skills: [bread] }));
    expect(rebuilt.skill?.id).toBe("bread-book");
  });

  it("does not filter by an enum option that is part of a trigger", async () => {
    const { gateway } = fakeGateway();
    const match = await createSkillMatcher({ gateway }).match(
      input("New order: Maria, chocolate cake, Saturday"),
    );
    expect(match.context.skillData).toEqual({
      skillId: "order-tracker",
      filter: { equals: { pickup_day: "Saturday" } },
      limit: 20,
    });
  });

  it("honours configured history depth, memory limit and record limit", async () => {
    const { gateway } = fakeGateway();
    const matcher = createSkillMatcher({
      gateway,
      historyDepth: { skill_execution: 25 },
      memoryLimit: 3,
      skillDataLimit: 50,
    });
    const match = await matcher.match(input("show the ready orders"));
    expect(match.context).toEqual({
      historyDepth: 25,
      memoryQuery: "show the ready orders",
      memoryLimit: 3,
      skillData: { skillId: "order-tracker", filter: { equals: { status: "ready" } }, limit: 50 },
    });
  });

  it("rejects malformed options", () => {
    const { gateway } = fakeGateway();
    for (const options of [
      { gateway, thresholds: { minScore: 2 } },
      { gateway, indexCacheSize: 0 },
      { gateway, historyDepth: { simple_qa: 500 } },
      { gateway: {} as LlmGateway },
    ]) {
      let error: unknown;
      try {
        createSkillMatcher(options);
      } catch (e) {
        error = e;
      }
      expect(KiloError.is(error, "CONFIGURATION_INVALID")).toBe(true);
    }
  });
});

describe("looksActionable", () => {
  it("spots requests and imperatives", () => {
    for (const message of [
      "Can you track my runs?",
      "please note that Maria paid",
      "Remind me to order flour on Monday",
      "help me manage the shop's invoices",
      "Add eggs to the shopping list",
    ]) {
      expect(looksActionable(message), message).toBe(true);
    }
  });

  it("leaves chat alone", () => {
    for (const message of ["good morning!", "what a lovely day", "who wrote Hamlet?", "I like sourdough"]) {
      expect(looksActionable(message), message).toBe(false);
    }
  });
});

describe("deriveRecordFilter", () => {
  it("filters only on an unambiguous enum option", () => {
    expect(deriveRecordFilter(orderTracker, "orders for Saturday or Sunday")).toEqual({});
    expect(deriveRecordFilter(orderTracker, "orders for saturdays")).toEqual({
      equals: { pickup_day: "Saturday" },
    });
    expect(deriveRecordFilter(orderTracker, "anything baking?")).toEqual({ equals: { status: "baking" } });
    expect(deriveRecordFilter(recipeBook, "Saturday")).toEqual({});
  });
});
