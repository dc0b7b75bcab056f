import { describe, expect, it } from "vitest";
import { clarifyingQuestion, detectLearningIntent } from "../../src/index.js";

describe("learning intent detector", () => {
  it.each([
    ["Learn how to use Stripe", "Stripe", 0.95],
    ["Can you please learn how to use stripe?", "stripe", 0.95],
    ["learn the Notion API", "Notion API", 0.9],
    ["Please learn about the GitHub REST API", "GitHub REST API", 0.9],
    ["figure out how to post to our Slack webhook", "our Slack webhook", 0.8],
    ["Set up an integration with Airtable", "Airtable", 0.8],
    ["learn about Shopify", "Shopify", 0.8],
  ])("%s → %s (%d)", (message, topic, confidence) => {
    const intent = detectLearningIntent(message);
    expect(intent).toMatchObject({ topic, confidence, specific: true });
    expect(intent!.confidence).toBeGreaterThanOrEqual(0.6);
    expect(intent!.confidence).toBeLessThanOrEqual(0.95);
  });

  it("marks a vague intent as not specific, at the low end of the range", () => {
    expect(detectLearningIntent("learn how to tell time")).toMatchObject({
      topic: "tell time",
      confidence: 0.6,
      specific: false,
    });
    expect(detectLearningIntent("Learn about gardening")).toMatchObject({ specific: false, confidence: 0.7 });
    expect(clarifyingQuestion(detectLearningIntent("learn how to tell time")!)).toContain('"tell time"');
  });

  it("leaves ordinary messages alone", () => {
    for (const message of [
      "What time is it?",
      "I want to learn French",
      "New order: Maria, chocolate cake, Saturday",
      "Did you learn anything today?",
      "",
    ]) {
      expect(detectLearningIntent(message)).toBeNull();
    }
  });
});
