import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  findResources,
  parseSkillMarkdown,
  SKILL_MARKDOWN_RULES,
  type SkillMarkdownWarning,
  serializeSkillMarkdown,
  suggestSkillName,
  validateSkillMarkdown,
} from "../../../src/skills/markdown/index.js";

// The example skill of the LLMos-Lite seed: a display name and LLMos-only fields.
const LLMOS_SKILL = readFileSync(
  new URL("../../__fixtures__/skills/python-testing.md", import.meta.url),
  "utf8",
);

const VALID = `---
name: pdf-processing
description: Extract text and tables from PDF files. Use when the user mentions PDFs.
license: Apache-2.0
compatibility: Requires python3 and pdfplumber
allowed-tools: Bash(pdftotext:*) Read
metadata:
  author: example-org
  version: "1.0"
---
# PDF processing

See [the reference](references/REFERENCE.md) and run \`scripts/extract.py\`.
`;

const rules = (warnings: readonly SkillMarkdownWarning[]) => warnings.map((warning) => warning.rule);

/** A KiloError with these fields (asymmetric matchers allowed). */
const kiloError = (fields: Record<string, unknown>) =>
  expect.objectContaining({ name: "KiloError", ...fields });

describe("parseSkillMarkdown", () => {
  it("reads a valid Agent Skills file without warnings", () => {
    const { skill, warnings } = parseSkillMarkdown(VALID, { file: "skills/pdf-processing/SKILL.md" });
    expect(warnings).toEqual([]);
    expect(skill).toEqual({
      name: "pdf-processing",
      description: "Extract text and tables from PDF files. Use when the user mentions PDFs.",
      triggers: [],
      markdown: {
        body: "# PDF processing\n\nSee [the reference](references/REFERENCE.md) and run `scripts/extract.py`.\n",
        license: "Apache-2.0",
        compatibility: "Requires python3 and pdfplumber",
        allowedTools: ["Bash(pdftotext:*)", "Read"],
        metadata: { author: "example-org", version: "1.0" },
        category: null,
        resources: [{ path: "references/REFERENCE.md" }, { path: "scripts/extract.py" }],
      },
    });
  });

  it("loads the LLMos-Lite seed's example with warnings naming the file and each rule", () => {
    const { skill, warnings } = parseSkillMarkdown(LLMOS_SKILL, {
      file: "users/alice/skills/python-testing.md",
    });
    expect(skill.name).toBe("Python Testing");
    expect(skill.triggers).toEqual(["python", "testing", "pytest"]);
    expect(skill.markdown.category).toBe("coding");
    expect(skill.markdown.metadata).toEqual({});
    expect(warnings).toEqual([
      {
        file: "users/alice/skills/python-testing.md",
        rule: "name-format",
        message: expect.stringContaining('"Python Testing" must be lowercase letters and digits'),
      },
      {
        file: "users/alice/skills/python-testing.md",
        rule: "unknown-field",
        message:
          "`category` is an LLMos-Lite field, not an Agent Skills one; kept, and exported as `metadata.category`",
      },
      {
        file: "users/alice/skills/python-testing.md",
        rule: "unknown-field",
        message:
          "`keywords` is an LLMos-Lite field, not an Agent Skills one; kept, and exported as `metadata.keywords`",
      },
    ]);
  });

  it("writes LLMos-Lite fields under metadata, where a strict validator accepts them, and reads them back", () => {
    const first = parseSkillMarkdown(LLMOS_SKILL).skill;
    const renamed = { ...first, name: "python-testing" };
    const text = serializeSkillMarkdown(renamed);
    expect(text).toBe(
      "---\nname: python-testing\ndescription: How to write effective Python tests\n" +
        "metadata:\n  category: coding\n  keywords: python, testing, pytest\n---\n" +
        LLMOS_SKILL.slice(LLMOS_SKILL.indexOf("\n# Skill")),
    );
    expect(validateSkillMarkdown(text, { file: "python-testing/SKILL.md" })).toEqual([]);
    const again = parseSkillMarkdown(text, { file: "python-testing/SKILL.md" });
    expect(again.warnings).toEqual([]);
    expect(again.skill).toEqual(renamed);
  });

  it("takes a missing name from the folder or the file name, with a warning", () => {
    const text = "---\ndescription: Does things\n---\nBody\n";
    const fromFolder = parseSkillMarkdown(text, { file: "skills/data-cleanup/SKILL.md" });
    expect(fromFolder.skill.name).toBe("data-cleanup");
    expect(fromFolder.warnings).toEqual([
      {
        file: "skills/data-cleanup/SKILL.md",
        rule: "name-missing",
        message:
          'the front matter has no `name`, which the standard requires; using "data-cleanup" from the file path',
      },
    ]);
    expect(parseSkillMarkdown(text, { file: "notes/weekly-report.md" }).skill.name).toBe("weekly-report");
  });

  it("fails with VALIDATION_FAILED naming the file when no name can be found", () => {
    expect(() => parseSkillMarkdown("---\ndescription: x\n---\nBody\n")).toThrow(
      kiloError({
        code: "VALIDATION_FAILED",
        message:
          "<input>: cannot load the skill: the front matter has no `name` and the file path gives none",
      }),
    );
    expect(() => parseSkillMarkdown("---\n---\n", { file: "SKILL.md" })).toThrow(
      kiloError({ message: expect.stringMatching(/^SKILL\.md: cannot load the skill/) }),
    );
  });

  it.each([
    ["no front matter", "# Just Markdown\n", "front-matter-missing", /does not start with a '---' line/],
    [
      "unclosed front matter",
      "---\nname: a\ndescription: b\n# Body\n",
      "front-matter-unclosed",
      /not closed/,
    ],
    [
      "invalid YAML",
      "---\nname: [unclosed\ndescription: b\n---\n",
      "yaml-invalid",
      /invalid YAML front matter/,
    ],
    ["duplicate keys", "---\nname: a\nname: b\n---\n", "yaml-invalid", /Map keys must be unique/],
    ["a YAML list", "---\n- name: a\n---\n", "front-matter-not-a-map", /not a mapping/],
  ])("fails on %s, naming the file and the rule", (_, text, rule, message) => {
    expect(() => parseSkillMarkdown(text, { file: "broken/SKILL.md" })).toThrow(
      kiloError({
        code: "VALIDATION_FAILED",
        message: expect.stringMatching(/^broken\/SKILL\.md: cannot load the skill: /),
        details: [{ file: "broken/SKILL.md", rule, message: expect.stringMatching(message) }],
      }),
    );
  });

  it("refuses an alias bomb as invalid YAML", () => {
    const bomb = [
      "---",
      "a: &a [x, x, x, x, x, x, x, x, x, x]",
      "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]",
      "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]",
      "name: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]",
      "---",
      "",
    ].join("\n");
    expect(() => parseSkillMarkdown(bomb)).toThrow(
      kiloError({ details: [{ file: "<input>", rule: "yaml-invalid", message: expect.any(String) }] }),
    );
  });

  it("keeps values of the wrong type as the text written, with a warning per rule", () => {
    const text = [
      "---",
      "name: 2024",
      "description: 3.10",
      "license: true",
      "compatibility: ''",
      "allowed-tools: [Read, Grep]",
      "metadata:",
      "  version: 1.0",
      "  tags: [a, b]",
      "  empty:",
      "---",
      "",
    ].join("\n");
    const { skill, warnings } = parseSkillMarkdown(text, { file: "2024/SKILL.md" });
    expect(skill.name).toBe("2024");
    expect(skill.description).toBe("3.10");
    expect(skill.markdown.license).toBe("true");
    expect(skill.markdown.compatibility).toBe("");
    expect(skill.markdown.allowedTools).toEqual(["Read", "Grep"]);
    expect(skill.markdown.metadata).toEqual({ version: "1.0", tags: '["a","b"]' });
    expect(rules(warnings)).toEqual([
      "name-type",
      "description-type",
      "license-type",
      "compatibility-length",
      "metadata-value",
      "metadata-value",
      "metadata-value",
      "allowed-tools-type",
    ]);
    expect(warnings[4]?.message).toBe(
      '`metadata.version` must be a string, not the unquoted "1.0"; kept as the text written',
    );
  });

  it("keeps unknown fields under metadata, and the one under metadata on a clash", () => {
    const text = [
      "---",
      "name: deploy",
      "description: Deploys the app",
      "disable-model-invocation: true",
      "model: claude-sonnet-4-5",
      "metadata:",
      "  model: kept",
      "---",
      "",
    ].join("\n");
    const { skill, warnings } = parseSkillMarkdown(text);
    expect(skill.markdown.metadata).toEqual({ model: "kept", "disable-model-invocation": "true" });
    expect(rules(warnings)).toEqual(["unknown-field", "unknown-field", "field-conflict"]);
    expect(warnings[0]?.message).toBe(
      "`disable-model-invocation` is not an Agent Skills field (name, description, license, compatibility, metadata, allowed-tools); kept as `metadata.disable-model-invocation`",
    );
    const again = parseSkillMarkdown(serializeSkillMarkdown(skill));
    expect(again.warnings).toEqual([]);
    expect(again.skill).toEqual(skill);
  });

  it("reads keywords as a comma-separated string too, dropping blanks and repeats", () => {
    const { skill } = parseSkillMarkdown(
      "---\nname: baking\ndescription: Bread\nkeywords: sourdough, Bread,  , bread, starter\n---\n",
    );
    expect(skill.triggers).toEqual(["sourdough", "Bread", "starter"]);
  });

  it("splits allowed-tools on spaces and commas, but not inside parentheses", () => {
    const { skill } = parseSkillMarkdown(
      '---\nname: git\ndescription: Git work\nallowed-tools: "Bash(git add:*), Bash(git commit:*)  Read"\n---\n',
    );
    expect(skill.markdown.allowedTools).toEqual(["Bash(git add:*)", "Bash(git commit:*)", "Read"]);
  });

  it("drops a byte order mark and reads CRLF line endings", () => {
    const { skill, warnings } = parseSkillMarkdown(
      "\uFEFF---\r\nname: crlf\r\ndescription: Windows file\r\n---\r\n# Title\r\nText\r\n",
    );
    expect(warnings).toEqual([]);
    expect(skill.name).toBe("crlf");
    expect(skill.markdown.body).toBe("# Title\nText\n");
  });

  it("warns when the name does not match its folder, or breaks the length and hyphen rules", () => {
    const warningsOf = (name: string, file: string) =>
      rules(parseSkillMarkdown(`---\nname: ${name}\ndescription: d\n---\n`, { file }).warnings);
    expect(warningsOf("pdf-tools", "pdf/SKILL.md")).toEqual(["name-directory"]);
    expect(warningsOf("pdf--tools", "pdf--tools/SKILL.md")).toEqual(["name-format"]);
    expect(warningsOf("-pdf", "x.md")).toEqual(["name-format"]);
    expect(warningsOf("a".repeat(65), "x.md")).toEqual(["name-length"]);
  });

  it("keeps a description past the standard's limit, and cuts one past kilo's", () => {
    const long = parseSkillMarkdown(`---\nname: a\ndescription: ${"x".repeat(2000)}\n---\n`);
    expect(long.skill.description).toHaveLength(2000);
    expect(rules(long.warnings)).toEqual(["description-length"]);
    const huge = parseSkillMarkdown(`---\nname: a\ndescription: ${"x".repeat(5000)}\n---\n`);
    expect(huge.skill.description).toHaveLength(4096);
    expect(rules(huge.warnings)).toEqual(["description-length", "kilo-limit"]);
  });

  it("names only rules of SKILL_MARKDOWN_RULES", () => {
    const { warnings } = parseSkillMarkdown(
      "---\nname: Bad Name\ndescription: ''\nlicense: [a]\ncompatibility: {a: 1}\nmetadata: text\nallowed-tools: 3\ncategory: [x]\nkeywords: {a: 1}\nextra: 1\n---\n",
      { file: "other/SKILL.md" },
    );
    expect(warnings.length).toBeGreaterThan(8);
    for (const warning of warnings) expect(SKILL_MARKDOWN_RULES).toContain(warning.rule);
  });
});

describe("validateSkillMarkdown", () => {
  it("accepts a valid file", () => {
    expect(validateSkillMarkdown(VALID, { file: "pdf-processing/SKILL.md" })).toEqual([]);
  });

  it("reports every violation of the standard, LLMos-Lite fields included", () => {
    expect(rules(validateSkillMarkdown(LLMOS_SKILL))).toEqual([
      "name-format",
      "unknown-field",
      "unknown-field",
    ]);
    expect(validateSkillMarkdown(LLMOS_SKILL)[1]?.message).toBe(
      "`category` is an LLMos-Lite field, not an Agent Skills one; put it under `metadata`",
    );
    expect(rules(validateSkillMarkdown("---\nname: a\n---\n"))).toEqual(["description-missing"]);
    expect(rules(validateSkillMarkdown("no front matter"))).toEqual(["front-matter-missing"]);
    expect(
      rules(validateSkillMarkdown(`---\nname: a\ndescription: d\ncompatibility: ${"c".repeat(501)}\n---\n`)),
    ).toEqual(["compatibility-length"]);
  });

  it("does not count a long body against the file", () => {
    const body = "line\n".repeat(600);
    expect(validateSkillMarkdown(`---\nname: a\ndescription: d\n---\n${body}`)).toEqual([]);
    expect(rules(parseSkillMarkdown(`---\nname: a\ndescription: d\n---\n${body}`).warnings)).toEqual([
      "body-length",
    ]);
  });
});

describe("serializeSkillMarkdown", () => {
  it("round-trips awkward strings through YAML", () => {
    const skill = {
      name: "odd-strings",
      description: 'Has: colons, "quotes", #hashes, a trailing space \nand\n\nblank lines',
      triggers: ["yes", "no", "1.0"],
      markdown: {
        body: "---\nnot front matter\n---\n",
        license: "null",
        compatibility: "~",
        allowedTools: [],
        metadata: { on: "off", "key with spaces": "- dash" },
        category: "true",
        resources: [],
      },
    };
    expect(parseSkillMarkdown(serializeSkillMarkdown(skill)).skill).toEqual(skill);
  });
});

describe("findResources", () => {
  it("lists relative links and backquoted paths, not URLs, anchors, absolute paths or fenced code", () => {
    const body = [
      "Read [forms](./forms.md#top) and [the API](references/api%20guide.md).",
      "![diagram](assets/flow.png) [site](https://example.com/x.md) [here](#usage) [up](../secret.md)",
      "Run `scripts/check.py` (not `check.py` nor `/etc/passwd.d/x.conf`).",
      "```",
      "[skip](fenced/link.md) `fenced/path.py`",
      "```",
      "Again: [forms](forms.md).",
    ].join("\n");
    expect(findResources(body)).toEqual([
      { path: "forms.md" },
      { path: "references/api guide.md" },
      { path: "assets/flow.png" },
      { path: "scripts/check.py" },
    ]);
  });
});

describe("suggestSkillName", () => {
  it("makes a standard name from a display name", () => {
    expect(suggestSkillName("Python Testing")).toBe("python-testing");
    expect(suggestSkillName("  Crème Brûlée -- Recipes! ")).toBe("creme-brulee-recipes");
    expect(suggestSkillName("日本語")).toBeNull();
  });
});
