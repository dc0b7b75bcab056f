import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { LlmGateway } from "../../../src/ports/llm-gateway.js";
import type { SkillCatalog } from "../../../src/ports/skill-matcher.js";
import { parseSkillMarkdown } from "../../../src/skills/markdown/index.js";
import { createSkillMatcher } from "../../../src/skills/skill-matcher.js";
import { makeBot, makeSkill, ORDER_TRACKER } from "../../fixtures.js";

const CORPUS = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  "../../../../shared/corpora/agent-skills",
);

const corpusSkills = readdirSync(CORPUS)
  .filter((entry) => !entry.includes("."))
  .sort()
  .map((folder) => {
    const file = `${folder}/SKILL.md`;
    const { skill } = parseSkillMarkdown(readFileSync(path.join(CORPUS, file), "utf8"), { file });
    return makeSkill({ ...skill, id: folder });
  });

// The example skill of the LLMos-Lite seed, with keywords.
const pythonTesting = makeSkill({
  ...parseSkillMarkdown(
    readFileSync(new URL("../../__fixtures__/skills/python-testing.md", import.meta.url), "utf8"),
  ).skill,
  id: "python-testing",
});

// The fast path decides every case below, so the gateway must never be called.
const gateway: LlmGateway = {
  complete: async () => {
    throw new Error("the LLM pass was not expected");
  },
  stream: () => {
    throw new Error("the LLM pass was not expected");
  },
};

const bot = makeBot();

const matcher = createSkillMatcher({ gateway, llmFallback: false });
const match = (message: string, catalog: SkillCatalog) =>
  matcher.match({ message, catalog, bot, userId: "user_1", conversationId: "conv_1" });

describe("matching Markdown skills", () => {
  it("decides on a Markdown skill's keywords, beside structured skills", async () => {
    const catalog = {
      key: "mixed-1",
      skills: [makeSkill({ ...ORDER_TRACKER, id: "orders" }), pythonTesting],
    };
    const result = await match("how do I use pytest fixtures?", catalog);
    expect(result.pass).toBe("fast");
    expect(result.skill?.id).toBe("python-testing");
    expect(result.reason).toMatch(/by trigger "pytest"/);
  });

  it.each([
    ["make me an animated GIF for Slack", "slack-gif-creator"],
    ["build an MCP server for the GitHub API", "mcp-builder"],
    ["write a status report for leadership", "internal-comms"],
    ["test my local web app with playwright", "webapp-testing"],
    ["generative art with p5.js flow fields", "algorithmic-art"],
  ])("ranks the real skill first by name and description: %s", async (message, expected) => {
    const result = await match(message, { key: "corpus-1", skills: corpusSkills });
    expect(result.candidates[0]?.skillId).toBe(expected);
  });
});
