import { describe, expect, it } from "vitest";
import { createResponseProcessor, stripMarkdown } from "../../src/response/response-processor.js";
import { makeBot } from "../fixtures.js";

const processor = createResponseProcessor({ channelMaxLength: { sms: 40 } });

describe("response processor", () => {
  it("redacts anything shaped like a credential", () => {
    const out = processor.process({
      text: "Your key is sk-ant-api03-abcdefghijklmnop and AKIAABCDEFGHIJKLMNOP.",
      bot: makeBot(),
      channel: "api",
    });
    expect(out.text).toBe("Your key is [redacted] and [redacted].");
    expect(out.actions).toContain("secret-redacted");
  });

  it("strips Markdown when the soul asks for plain text", () => {
    const bot = makeBot({ soulInput: { communicationStyle: { formatting: "plain" } } });
    const out = processor.process({
      text: "## Orders\n**Maria**: _cake_ [link](https://x.test)",
      bot,
      channel: "api",
    });
    expect(out.text).toBe("Orders\nMaria: cake link (https://x.test)");
    expect(out.actions).toEqual(["markdown-stripped"]);
  });

  it("keeps Markdown by default", () => {
    const out = processor.process({ text: "**bold**", bot: makeBot(), channel: "api" });
    expect(out.text).toBe("**bold**");
    expect(out.actions).toEqual([]);
  });

  it("enforces the soul's and the channel's length caps, whichever is smaller", () => {
    const bot = makeBot({ soulInput: { communicationStyle: { maxReplyLength: 60 } } });
    const long = "word ".repeat(50);
    const api = processor.process({ text: long, bot, channel: "api" });
    expect(api.text.length).toBeLessThanOrEqual(60);
    expect(api.actions).toContain("truncated");
    const sms = processor.process({ text: long, bot, channel: "sms" });
    expect(sms.text.length).toBeLessThanOrEqual(40);
    expect(sms.text.endsWith("…")).toBe(true);
  });

  it("never sends an empty reply", () => {
    const out = processor.process({ text: "   ", bot: makeBot(), channel: "api" });
    expect(out.text.length).toBeGreaterThan(0);
    expect(out.actions).toContain("empty-replaced");
  });

  it("stripMarkdown keeps code content and list items", () => {
    expect(stripMarkdown("```ts\nconst a = 1;\n```\n* one\n* two")).toBe("const a = 1;\n- one\n- two");
  });
});
