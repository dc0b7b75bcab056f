import { describe, expect, it } from "vitest";
import { ruleMemoryExtractor } from "../../src/memory/memory-extractor.js";
import { makeBot } from "../fixtures.js";

const extractor = ruleMemoryExtractor();
const extract = (userMessage: string) =>
  extractor.extract({ bot: makeBot(), userId: "user_1", conversationId: "conv_1", userMessage, reply: "ok" });

describe("rule memory extractor", () => {
  it.each([
    [
      "By the way, my bakery is called Sweet Crumb.",
      "bakery name",
      "The user's bakery is called Sweet Crumb.",
    ],
    ["my name is Maria", "name", "The user's name is Maria."],
    ["Please call me Mo!", "name", "The user's name is Mo."],
    ["My favorite color is teal.", "favorite color", "The user's favorite color is teal."],
    ["I live in Lisbon.", "location", "The user lives in Lisbon."],
    ["I work as a pastry chef", "work", "The user works as a pastry chef."],
    ["Remember that my dog is named Biscuit", "dog name", "The user's dog is named Biscuit."],
  ])("%s -> %s", async (message, key, content) => {
    expect(await extract(message)).toEqual([{ key, content }]);
  });

  it("ignores questions, news and requests", async () => {
    expect(await extract("What is my bakery called?")).toEqual([]);
    expect(await extract("My order is late")).toEqual([]);
    expect(await extract("New order: Maria, chocolate cake, Saturday")).toEqual([]);
    expect(await extract("Can you track my inventory?")).toEqual([]);
  });

  it("finds several facts in one message and keeps the last per key", async () => {
    const facts = await extract("My name is Ana. I live in Porto. Actually, my name is Ana Sofia.");
    expect(facts).toEqual([
      { key: "name", content: "The user's name is Ana Sofia." },
      { key: "location", content: "The user lives in Porto." },
    ]);
  });

  it("keeps a free-form note when asked to remember something else", async () => {
    const facts = await extract("Remember that the oven needs servicing in March");
    expect(facts).toHaveLength(1);
    expect(facts[0]?.key).toBe("note: the oven needs servicing in march");
    expect(facts[0]?.content).toBe("The user asked to remember: the oven needs servicing in March.");
  });
});
