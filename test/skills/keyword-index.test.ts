import { describe, expect, it } from "vitest";
import type { Skill } from "../../src/domain/skill.js";
import {
  buildKeywordIndex,
  DEFAULT_FAST_PATH_THRESHOLDS,
  type IndexableSkill,
  isStopword,
  tokenize,
} from "../../src/skills/keyword-index.js";

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

const orderTracker = skill({
  id: "order-tracker",
  name: "Order Tracker",
  description: "Tracks customer orders for the bakery.",
  triggers: ["new order", "order", "orders"],
  examples: ["New order for John: two baguettes on Friday", "Which orders are due this week?"],
});
const recipeBook = skill({
  id: "recipe-book",
  name: "Recipe Book",
  description: "Keeps the bakery's recipes.",
  triggers: ["recipe", "recipes"],
  examples: ["How do I make the sourdough starter?", "Save my lemon tart recipe"],
});
const expenseLog = skill({
  id: "expense-log",
  name: "Expense Log",
  description: "Logs what the bakery spends.",
  triggers: ["expense", "expenses", "spent"],
  examples: ["I spent 40 euros on flour", "How much did we spend on butter this month?"],
});
const bakery = [orderTracker, recipeBook, expenseLog];

describe("tokenize", () => {
  it("lowercases, strips punctuation and accents, and stems plurals, -ing and -ed", () => {
    expect(tokenize("Orders, ORDERED & ordering!")).toEqual(["order", "order", "order"]);
    expect(tokenize("Crème brûlée")).toEqual(tokenize("creme brulee"));
    expect(tokenize("cookies")).toEqual(tokenize("cookie"));
    expect(tokenize("What's on?")).toEqual(["what", "on"]);
    expect(tokenize("  ...  ")).toEqual([]);
  });

  it("keeps digits and stems short words not at all", () => {
    expect(tokenize("2 cakes at 10am")).toEqual(["2", "cak", "at", "10am"]);
    expect(tokenize("gas bus")).toEqual(["gas", "bus"]);
  });

  it("knows its stopwords", () => {
    expect(isStopword("the")).toBe(true);
    expect(isStopword("order")).toBe(false);
  });
});

describe("buildKeywordIndex", () => {
  const index = buildKeywordIndex(bakery);

  it("matches a trigger phrase confidently", () => {
    const result = index.search("New order: Maria, chocolate cake, Saturday");
    expect(result.confident).toBe(true);
    expect(result.candidates[0]?.skill.id).toBe("order-tracker");
    expect(result.candidates[0]?.evidence.trigger).toBe("new order");
    expect(result.score).toBeGreaterThanOrEqual(DEFAULT_FAST_PATH_THRESHOLDS.minScore);
    expect(result.margin).toBeGreaterThanOrEqual(DEFAULT_FAST_PATH_THRESHOLDS.minMargin);
  });

  it("matches a plural trigger inside a question", () => {
    const result = index.search("What orders do I have on Saturday?");
    expect(result.confident).toBe(true);
    expect(result.candidates[0]?.skill.id).toBe("order-tracker");
  });

  it("is not confident about chit-chat", () => {
    const result = index.search("How's the weather looking today?");
    expect(result.confident).toBe(false);
    expect(result.score).toBeLessThan(DEFAULT_FAST_PATH_THRESHOLDS.minScore);
  });

  it("uses examples when no trigger matches", () => {
    const result = index.search("how do i make a sourdough starter");
    expect(result.candidates[0]?.skill.id).toBe("recipe-book");
    expect(result.candidates[0]?.evidence.trigger).toBeNull();
    expect(result.candidates[0]?.evidence.example).toBe("How do I make the sourdough starter?");
    expect(result.candidates[0]?.evidence.exampleScore).toBeGreaterThan(0.8);
    expect(result.confident).toBe(true);
  });

  it("is not confident when two skills share the matching trigger", () => {
    const shared = buildKeywordIndex([
      skill({ id: "a", name: "Cake Orders", triggers: ["order"] }),
      skill({ id: "b", name: "Flour Orders", triggers: ["order"] }),
    ]);
    const result = shared.search("I want to place an order");
    expect(result.candidates).toHaveLength(2);
    expect(result.margin).toBeLessThan(DEFAULT_FAST_PATH_THRESHOLDS.minMargin);
    expect(result.confident).toBe(false);
  });

  it("returns best candidates first, bounded by limit, with scores and confidence in 0..1", () => {
    const result = index.search("new order recipe expense", 2);
    expect(result.candidates).toHaveLength(2);
    const scores = result.candidates.map((candidate) => candidate.score);
    expect([...scores].sort((x, y) => y - x)).toEqual(scores);
    for (const candidate of result.candidates) {
      expect(candidate.score).toBeGreaterThan(0);
      expect(candidate.score).toBeLessThanOrEqual(1);
    }
    expect(result.confidence).toBeGreaterThanOrEqual(0);
    expect(result.confidence).toBeLessThanOrEqual(1);
  });

  it("gives higher confidence to clearer matches", () => {
    const clear = index.search("New order: Maria, chocolate cake, Saturday");
    const vague = index.search("what about maria");
    expect(clear.confidence).toBeGreaterThan(0.9);
    expect(vague.confidence).toBeLessThan(clear.confidence);
  });

  it("accepts per-call threshold overrides", () => {
    expect(index.search("What orders do I have on Saturday?", 5, { minScore: 0.999 }).confident).toBe(false);
    const strict = buildKeywordIndex(bakery, { thresholds: { minMargin: 0.99 } });
    expect(strict.search("What orders do I have on Saturday?").confident).toBe(false);
  });

  it("handles an empty catalog and an empty message", () => {
    const empty = buildKeywordIndex([]);
    expect(empty.size).toBe(0);
    expect(empty.search("new order")).toMatchObject({ candidates: [], score: 0, confident: false });
    expect(index.search("")).toMatchObject({ candidates: [], score: 0, confident: false });
  });

  it("gives the same answer to the same message twice (scratch buffers are reset)", () => {
    const first = index.search("How much did we spend on butter?");
    index.search("New order: Maria, chocolate cake, Saturday");
    expect(index.search("How much did we spend on butter?")).toEqual(first);
  });

  it("finds the right skill among thousands", () => {
    const many: IndexableSkill[] = Array.from({ length: 5_000 }, (_, i) => ({
      id: `skill-${i}`,
      name: `Tracker ${i}`,
      description: "Keeps things in order",
      triggers: [`widget${i}`, "tracker"],
      examples: [`log a widget${i} reading for today`],
    }));
    const large = buildKeywordIndex(many);
    expect(large.size).toBe(5_000);
    const result = large.search("please log a widget4321 reading");
    expect(result.candidates[0]?.skill.id).toBe("skill-4321");
    expect(result.confident).toBe(true);
  });

  it("does not match a trigger split across words", () => {
    const result = index.search("the new customer placed an older order");
    expect(result.candidates[0]?.evidence.trigger).toBe("order");
  });
});
