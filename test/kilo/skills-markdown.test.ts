import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseSkillMarkdown, validateSkillMarkdown } from "../../src/skills/markdown/index.js";
import { ORDER_TRACKER } from "../fixtures.js";
import { setup, USER } from "./helpers.js";

// The example skill of the LLMos-Lite seed: a display name and LLMos-only fields.
const LLMOS_SKILL = readFileSync(
  new URL("../__fixtures__/skills/python-testing.md", import.meta.url),
  "utf8",
);

/** A KiloError with these fields (asymmetric matchers allowed). */
const kiloError = (fields: Record<string, unknown>) =>
  expect.objectContaining({ name: "KiloError", ...fields });

async function withBot() {
  const { kilo, provider } = setup({ chat: ["Use pytest fixtures."] });
  const bot = await kilo.bots.create({ userId: USER, name: "Crumb" });
  return { kilo, provider, bot };
}

describe("kilo.skills.importMarkdown", () => {
  it("creates a Markdown skill and returns the warnings, naming the file", async () => {
    const { kilo, bot } = await withBot();
    const { skill, warnings } = await kilo.skills.importMarkdown(bot.id, {
      file: "users/alice/skills/python-testing.md",
      text: LLMOS_SKILL,
    });
    expect(skill).toMatchObject({
      botId: bot.id,
      name: "Python Testing",
      description: "How to write effective Python tests",
      instructions: "",
      triggers: ["python", "testing", "pytest"],
      dataFields: [],
      status: "active",
      markdown: {
        category: "coding",
        resources: [{ path: "references/fixtures.md" }],
        body: expect.stringContaining("# Skill: Python Testing"),
      },
    });
    expect(warnings.map((warning) => [warning.file, warning.rule])).toEqual([
      ["users/alice/skills/python-testing.md", "name-format"],
      ["users/alice/skills/python-testing.md", "unknown-field"],
      ["users/alice/skills/python-testing.md", "unknown-field"],
    ]);
    expect(await kilo.skills.get(bot.id, skill.id)).toEqual(skill);
  });

  it("accepts bare text", async () => {
    const { kilo, bot } = await withBot();
    const { skill, warnings } = await kilo.skills.importMarkdown(
      bot.id,
      "---\nname: notes\ndescription: Keeps notes\n---\nWrite them down.\n",
    );
    expect(warnings).toEqual([]);
    expect(skill.markdown?.body).toBe("Write them down.\n");
  });

  it("refuses an unreadable file with VALIDATION_FAILED naming it, and creates nothing", async () => {
    const { kilo, bot } = await withBot();
    await expect(
      kilo.skills.importMarkdown(bot.id, { file: "drafts/broken/SKILL.md", text: "# no front matter\n" }),
    ).rejects.toEqual(
      kiloError({
        code: "VALIDATION_FAILED",
        message: expect.stringMatching(/^drafts\/broken\/SKILL\.md: cannot load the skill: /),
      }),
    );
    expect(await kilo.skills.list(bot.id)).toEqual([]);
  });

  it("refuses a malformed source, a taken name and an unknown bot", async () => {
    const { kilo, bot } = await withBot();
    await expect(kilo.skills.importMarkdown(bot.id, { file: "x.md" } as never)).rejects.toEqual(
      kiloError({ code: "VALIDATION_FAILED" }),
    );
    await kilo.skills.importMarkdown(bot.id, LLMOS_SKILL);
    await expect(kilo.skills.importMarkdown(bot.id, LLMOS_SKILL)).rejects.toEqual(
      kiloError({ code: "CONFLICT" }),
    );
    await expect(kilo.skills.importMarkdown("bot_missing", LLMOS_SKILL)).rejects.toEqual(
      kiloError({ code: "NOT_FOUND" }),
    );
  });

  it("matches an imported skill by its keywords like any other skill", async () => {
    const { kilo, bot } = await withBot();
    const { skill } = await kilo.skills.importMarkdown(bot.id, LLMOS_SKILL);
    await kilo.skills.create(bot.id, ORDER_TRACKER);
    const turn = await kilo.chat({ botId: bot.id, userId: USER, message: "how do I use pytest fixtures?" });
    expect(turn.skill).toEqual({ id: skill.id, name: "Python Testing" });
    expect(turn.match.pass).toBe("fast");
  });
});

describe("kilo.skills.exportMarkdown", () => {
  it("writes a strictly valid SKILL.md with LLMos-Lite's fields under metadata", async () => {
    const { kilo, bot } = await withBot();
    const { skill } = await kilo.skills.importMarkdown(bot.id, LLMOS_SKILL);
    await kilo.skills.update(bot.id, skill.id, { name: "python-testing" });
    const text = await kilo.skills.exportMarkdown(bot.id, skill.id);
    expect(text).toMatch(/^---\nname: python-testing\ndescription: How to write effective Python tests\n/);
    expect(text).toContain("metadata:\n  category: coding\n  keywords: python, testing, pytest\n---\n");
    expect(validateSkillMarkdown(text, { file: "python-testing/SKILL.md" })).toEqual([]);

    // Imported elsewhere, it is the same skill.
    const other = await kilo.bots.create({ userId: USER, name: "Other" });
    const copy = await kilo.skills.importMarkdown(other.id, { file: "python-testing/SKILL.md", text });
    expect(copy.warnings).toEqual([]);
    const fields = ({ name, description, triggers, markdown }: typeof skill) => ({
      name,
      description,
      triggers,
      markdown,
    });
    expect(fields(copy.skill)).toEqual({ ...fields(skill), name: "python-testing" });
    expect(parseSkillMarkdown(text).skill.markdown).toEqual(skill.markdown);
  });

  it("refuses a skill breaking the standard, naming each rule and a name to use", async () => {
    const { kilo, bot } = await withBot();
    const { skill } = await kilo.skills.importMarkdown(bot.id, LLMOS_SKILL);
    await expect(kilo.skills.exportMarkdown(bot.id, skill.id)).rejects.toEqual(
      kiloError({
        code: "VALIDATION_FAILED",
        message: expect.stringMatching(
          /^Skill 'Python Testing' \(.+\) cannot be exported as a valid SKILL\.md: name-format: .*\(rename the skill, e\.g\. to 'python-testing'\)$/,
        ),
        details: [{ file: "SKILL.md", rule: "name-format", message: expect.any(String) }],
      }),
    );

    const long = await kilo.skills.importMarkdown(
      bot.id,
      `---\nname: long\ndescription: ${"d".repeat(1100)}\n---\n`,
    );
    expect(long.warnings.map((warning) => warning.rule)).toEqual(["description-length"]);
    await expect(kilo.skills.exportMarkdown(bot.id, long.skill.id)).rejects.toEqual(
      kiloError({ message: expect.stringMatching(/description-length: `description` has 1,100 characters/) }),
    );
  });

  it("refuses a structured skill and an unknown one", async () => {
    const { kilo, bot } = await withBot();
    const orders = await kilo.skills.create(bot.id, ORDER_TRACKER);
    await expect(kilo.skills.exportMarkdown(bot.id, orders.id)).rejects.toEqual(
      kiloError({
        code: "VALIDATION_FAILED",
        message: expect.stringMatching(/is a structured skill; only Markdown skills export as SKILL\.md/),
      }),
    );
    await expect(kilo.skills.exportMarkdown(bot.id, "skill_missing")).rejects.toEqual(
      kiloError({ code: "NOT_FOUND" }),
    );
  });
});

describe("one Skill, two bodies", () => {
  it("keeps a Markdown skill free of instructions and data fields", async () => {
    const { kilo, bot } = await withBot();
    const markdown = { body: "# Notes\n" };
    await expect(
      kilo.skills.create(bot.id, { name: "notes", instructions: "Do this", markdown }),
    ).rejects.toEqual(
      kiloError({
        code: "VALIDATION_FAILED",
        message: expect.stringMatching(/instructions: must be empty on a Markdown skill/),
      }),
    );
    const { skill } = await kilo.skills.importMarkdown(bot.id, "---\nname: notes\ndescription: d\n---\n");
    await expect(
      kilo.skills.update(bot.id, skill.id, { dataFields: [{ name: "note", type: "string" }] }),
    ).rejects.toEqual(
      kiloError({
        code: "VALIDATION_FAILED",
        message: expect.stringMatching(/dataFields: must be empty on a Markdown skill/),
      }),
    );
  });

  it("keeps a structured skill's description within 1,024 characters", async () => {
    const { kilo, bot } = await withBot();
    const long = "d".repeat(1025);
    await expect(kilo.skills.create(bot.id, { ...ORDER_TRACKER, description: long })).rejects.toEqual(
      kiloError({ code: "VALIDATION_FAILED" }),
    );
    const orders = await kilo.skills.create(bot.id, ORDER_TRACKER);
    await expect(kilo.skills.update(bot.id, orders.id, { description: long })).rejects.toEqual(
      kiloError({
        code: "VALIDATION_FAILED",
        message: expect.stringMatching(
          /description: must be at most 1024 characters \(4096 for a Markdown skill\)/,
        ),
      }),
    );
    expect((await kilo.skills.get(bot.id, orders.id)).markdown).toBeUndefined();
  });
});
