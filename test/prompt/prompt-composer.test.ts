import { describe, expect, it } from "vitest";
import { createPromptComposer, renderCatalog, renderSoul } from "../../src/prompt/prompt-composer.js";
import { makeBot, makeMemory, makeMessage, makeSkill, NOW, ORDER_TRACKER } from "../fixtures.js";

const soulful = makeBot({
  soulInput: {
    personalityTraits: { tone: "warm", traits: ["organised"] },
    valuesAndPrinciples: ["Never lose an order"],
    communicationStyle: { verbosity: "concise", formality: "casual", formatting: "plain" },
    behavioralRules: { always: ["Confirm what you stored"], never: ["Invent orders"] },
    decisionFramework: { ambiguity: "Ask one short question." },
  },
});

describe("renderSoul", () => {
  it("renders every layer of a soul", () => {
    const text = renderSoul(soulful);
    expect(text).toContain("You are Crumb");
    expect(text).toContain("Tone: warm.");
    expect(text).toContain("- Never lose an order");
    expect(text).toContain("Verbosity: concise. Formality: casual. Write plain text without Markdown.");
    expect(text).toContain("When a request is ambiguous: Ask one short question.");
  });

  it("falls back to flat personality and context when there is no soul", () => {
    const text = renderSoul(
      makeBot({ personality: "Cheerful baker's helper", context: "Runs a small bakery" }),
    );
    expect(text).toContain("## Personality\nCheerful baker's helper");
    expect(text).toContain("## Context\nRuns a small bakery");
  });
});

describe("renderCatalog", () => {
  it("says how many skills it left out when over budget", () => {
    const skills = Array.from({ length: 50 }, (_, i) =>
      makeSkill({ id: `s${i}`, name: `Skill number ${i}`, description: "Does a thing for the user" }),
    );
    const text = renderCatalog(skills, 200);
    expect(text).toMatch(/\(\d+ more skills not listed for space\)/);
    const listed = text.split("\n").filter((line) => line.startsWith("- Skill number")).length;
    expect(listed).toBeGreaterThan(0);
    expect(listed).toBeLessThan(50);
    expect(text).toContain(`(${50 - listed} more skills`);
  });
});

describe("createPromptComposer", () => {
  const composer = createPromptComposer();
  const orderTracker = makeSkill(ORDER_TRACKER);
  const base = {
    bot: soulful,
    skills: [orderTracker],
    matchedSkill: null,
    tools: [],
    memories: [],
    skillRecords: [],
    history: [],
    channel: "api",
    now: NOW,
  };

  it("keeps the system prompt identical across turns with different volatile context", () => {
    const first = composer.compose({
      ...base,
      userMessage: "hi",
      memories: [makeMemory("name", "The user's name is Ana.")],
    });
    const second = composer.compose({
      ...base,
      userMessage: "New order: Maria, cake, Saturday",
      matchedSkill: orderTracker,
      history: [makeMessage(1, "user", "hi"), makeMessage(2, "assistant", "hello")],
      now: new Date(NOW.getTime() + 60_000),
    });
    expect(second.system).toEqual(first.system);
    expect(first.system.at(-1)?.cacheable).toBe(true);
  });

  it("puts stable content first and volatile content in the last user message", () => {
    const prompt = composer.compose({
      ...base,
      userMessage: "What orders do I have on Saturday?",
      matchedSkill: orderTracker,
      memories: [makeMemory("bakery name", "The user's bakery is called Sweet Crumb.")],
      skillRecords: [
        {
          id: "rec_1",
          botId: "bot_1",
          skillId: orderTracker.id,
          data: { customer: "Maria" },
          createdAt: NOW,
          updatedAt: NOW,
        },
      ],
      history: [makeMessage(1, "user", "hi"), makeMessage(2, "assistant", "hello")],
    });
    const system = prompt.system.map((block) => block.text).join("\n");
    expect(system).toContain("Always: Confirm what you stored");
    expect(system).toContain("- Order Tracker: Records customer orders");
    expect(system).not.toContain("Sweet Crumb");
    expect(prompt.messages.map((m) => m.role)).toEqual(["user", "assistant", "user"]);
    const last = prompt.messages.at(-1)!;
    const lastText = last.content.map((block) => (block.type === "text" ? block.text : "")).join("\n");
    expect(lastText).toContain("Sweet Crumb");
    expect(lastText).toContain('"customer":"Maria"');
    expect(lastText).toContain("Active skill: Order Tracker");
    expect(lastText).toContain("Current time: 2026-11-21 10:00 UTC (Saturday)");
    expect(lastText.endsWith("What orders do I have on Saturday?")).toBe(true);
  });

  it("names the channel in the turn context unless it is the host's own api", () => {
    const lastText = (channel: string) =>
      composer
        .compose({ ...base, channel, userMessage: "hi" })
        .messages.at(-1)!
        .content.map((block) => (block.type === "text" ? block.text : ""))
        .join("\n");
    expect(lastText("telegram")).toContain("(Saturday). Channel: telegram.");
    expect(lastText("api")).toContain("(Saturday).\n");
    expect(lastText("api")).not.toContain("Channel:");
  });

  it("describes the matched skill's record fields compactly, not as a JSON schema", () => {
    const prompt = composer.compose({ ...base, userMessage: "New order", matchedSkill: orderTracker });
    const lastText = prompt.messages
      .at(-1)!
      .content.map((block) => (block.type === "text" ? block.text : ""))
      .join("\n");
    expect(lastText).toContain("customer (text, required): Who ordered");
    expect(lastText).toContain(
      "pickup_day (date, required): When they pick it up. YYYY-MM-DD if known, else the user's words",
    );
    expect(lastText).toContain("status (one of: open, done)");
    expect(lastText).not.toContain('"properties"');
  });

  it("puts standing memories in a second cacheable system block and only relevant ones in the turn", () => {
    const standing = [makeMemory("bakery name", "The user's bakery is called Sweet Crumb.")];
    const first = composer.compose({
      ...base,
      userMessage: "Any allergies to watch?",
      standingMemories: standing,
      memories: [makeMemory("allergy", "Maria is allergic to nuts.")],
    });
    const second = composer.compose({
      ...base,
      userMessage: "hi again",
      standingMemories: standing,
      memories: [],
      history: [makeMessage(1, "user", "Any allergies to watch?"), makeMessage(2, "assistant", "Nuts.")],
    });
    expect(first.system).toHaveLength(2);
    expect(first.system[1]).toEqual({
      text: "## What you know about the user\n- The user's bakery is called Sweet Crumb.",
      cacheable: true,
    });
    expect(second.system).toEqual(first.system);
    const turnText = (prompt: typeof first) =>
      prompt.messages
        .at(-1)!
        .content.map((block) => (block.type === "text" ? block.text : ""))
        .join("\n");
    expect(turnText(first)).toContain("Also relevant to this message:\n- Maria is allergic to nuts.");
    expect(turnText(first)).not.toContain("Sweet Crumb");
    expect(turnText(second)).not.toContain("relevant");
  });

  it("drops a leading assistant message and merges consecutive messages of one role", () => {
    const prompt = composer.compose({
      ...base,
      userMessage: "third",
      history: [
        makeMessage(1, "assistant", "orphan"),
        makeMessage(2, "user", "first"),
        makeMessage(3, "user", "second"),
      ],
    });
    expect(prompt.messages).toHaveLength(1);
    expect(prompt.messages[0]?.role).toBe("user");
    const texts = prompt.messages[0]!.content.map((block) => (block.type === "text" ? block.text : ""));
    expect(texts[0]).toBe("first");
    expect(texts[1]).toBe("second");
    expect(texts.at(-1)).toBe("third");
    expect(texts.join()).not.toContain("orphan");
  });
});
