import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CATALOG_DESCRIPTION_MAX_CHARS, createPromptComposer } from "../../src/prompt/prompt-composer.js";
import { SKILL_READ_TOOL } from "../../src/skills/markdown/index.js";
import { makeBot, makeSkill, NOW } from "../fixtures.js";
import { lastUserText, setup, USER } from "./helpers.js";

const PYTHON_TESTING = readFileSync(
  new URL("../__fixtures__/skills/python-testing.md", import.meta.url),
  "utf8",
);
const NOTES =
  "---\nname: meeting-notes\ndescription: Writes meeting notes\n---\n# Notes\nList decisions first, then owners.\n";

const toolResults = (request: { messages: Array<{ content: Array<{ type: string }> }> }) =>
  request.messages
    .flatMap((message) => message.content)
    .filter(
      (block): block is { type: "tool_result"; content: string; isError?: boolean } =>
        block.type === "tool_result",
    );

describe("Markdown skills in the prompt (progressive disclosure)", () => {
  it("puts the matched skill's body in the turn, lists the others in the catalog, and reads any body on demand", async () => {
    const { kilo, provider } = setup({
      chat: [
        { toolCalls: [{ name: SKILL_READ_TOOL, input: { skill: "meeting-notes" } }] },
        {
          toolCalls: [
            { name: SKILL_READ_TOOL, input: { skill: "Python Testing", path: "references/fixtures.md" } },
            { name: SKILL_READ_TOOL, input: { skill: "Order Tracker" } },
          ],
        },
        "Use pytest fixtures, and write the decisions down first.",
      ],
    });
    const bot = await kilo.bots.create({ userId: USER, name: "Crumb" });
    await kilo.skills.importMarkdown(bot.id, {
      file: "skills/python-testing/SKILL.md",
      text: PYTHON_TESTING,
    });
    await kilo.skills.importMarkdown(bot.id, NOTES);
    await kilo.skills.create(bot.id, {
      name: "Order Tracker",
      description: "Records orders",
      instructions: "Store orders.",
      triggers: ["new order"],
    });

    const result = await kilo.chat({ botId: bot.id, userId: USER, message: "How do I use pytest fixtures?" });
    expect(result.skill?.name).toBe("Python Testing");
    const [first, second, third] = provider.requests.filter((request) => request.purpose === "chat");
    // The catalog names every skill; only the matched skill's body rides in the turn.
    const system = first!.system.map((block) => block.text).join("\n");
    expect(system).toContain("- Python Testing: How to write effective Python tests");
    expect(system).toContain("- meeting-notes: Writes meeting notes");
    expect(system).not.toContain("# Skill: Python Testing");
    const turn = lastUserText(first!);
    expect(turn).toContain("Active skill: Python Testing\n# Skill: Python Testing");
    expect(turn).toContain(
      "Files this skill refers to (read one with skill_read and its path): references/fixtures.md",
    );
    expect(turn).not.toContain("List decisions first");
    // One stable tool for all Markdown skills.
    const read = first!.tools?.find((tool) => tool.name === SKILL_READ_TOOL);
    expect(read?.inputSchema).toMatchObject({
      properties: { skill: { enum: ["Python Testing", "meeting-notes"] } },
    });
    // The model read another skill's body, a file that was not supplied, and a skill that is not Markdown.
    expect(toolResults(second!).at(-1)).toMatchObject({
      content: "# Notes\nList decisions first, then owners.\n",
    });
    const [file, structured] = toolResults(third!).slice(-2);
    expect(file).toMatchObject({
      content: "The file 'references/fixtures.md' of skill 'Python Testing' was not provided to kilo.",
      isError: true,
    });
    expect(structured).toMatchObject({ isError: true });
    expect(structured?.content).toContain("No Markdown skill is named 'Order Tracker'");
    expect(result.reply).toBe("Use pytest fixtures, and write the decisions down first.");
    await kilo.close();
  });

  it("offers no skill_read tool to a bot without Markdown skills", async () => {
    const { kilo, provider } = setup({ chat: ["Hi!"] });
    const bot = await kilo.bots.create({ userId: USER, name: "Crumb" });
    await kilo.chat({ botId: bot.id, userId: USER, message: "hello" });
    expect(provider.requests.at(-1)?.tools ?? []).toEqual([]);
    await kilo.close();
  });
});

describe("createPromptComposer with Markdown skills", () => {
  const markdownSkill = (body: string, description = "Long skill") =>
    makeSkill({
      name: "long-skill",
      description,
      markdown: { body, resources: [] },
    });

  it("cuts a body over skillBodyCharLimit with a note pointing at skill_read", () => {
    const composer = createPromptComposer({ skillBodyCharLimit: 100 });
    const skill = markdownSkill("x".repeat(250));
    const prompt = composer.compose({
      bot: makeBot(),
      skills: [skill],
      matchedSkill: skill,
      tools: [],
      memories: [],
      skillRecords: [],
      history: [],
      userMessage: "go",
      channel: "api",
      now: NOW,
    });
    const turn = lastUserText(prompt);
    expect(turn).toContain(`${"x".repeat(100)}\n[… 150 more characters: read them with skill_read]`);
    expect(turn).not.toContain("x".repeat(101));
  });

  it("clips a long description in the catalog", () => {
    const composer = createPromptComposer();
    const skill = markdownSkill("body", "d".repeat(CATALOG_DESCRIPTION_MAX_CHARS + 50));
    const prompt = composer.compose({
      bot: makeBot(),
      skills: [skill],
      matchedSkill: null,
      tools: [],
      memories: [],
      skillRecords: [],
      history: [],
      userMessage: "go",
      channel: "api",
      now: NOW,
    });
    const line = prompt.system[0]!.text.split("\n").find((text) => text.startsWith("- long-skill"))!;
    expect(line).toBe(`- long-skill: ${"d".repeat(CATALOG_DESCRIPTION_MAX_CHARS - 1)}…`);
  });
});
