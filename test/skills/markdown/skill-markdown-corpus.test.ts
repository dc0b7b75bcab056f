import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  parseSkillMarkdown,
  serializeSkillMarkdown,
  validateSkillMarkdown,
} from "../../../src/skills/markdown/index.js";

// Real SKILL.md files (github.com/anthropics/skills, Apache-2.0; see SOURCE.md there),
// kept beside the repository as bench/clinc150.ts keeps CLINC150.
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const CORPUS = path.resolve(repoRoot, "../shared/corpora/agent-skills");

function skillFiles(directory: string): string[] {
  if (!existsSync(directory)) {
    throw new Error(
      `Agent Skills corpus not found at ${CORPUS}. Expected the SKILL.md corpus in ` +
        "../shared/corpora/agent-skills/ next to the repository.",
    );
  }
  const found: string[] = [];
  for (const entry of readdirSync(directory).sort()) {
    const full = path.join(directory, entry);
    if (statSync(full).isDirectory()) found.push(...skillFiles(full));
    else if (entry === "SKILL.md") found.push(full);
  }
  return found;
}

// Resolved while collecting, so a missing corpus fails the file instead of registering nothing.
const files = skillFiles(CORPUS);
const relative = (file: string) => path.relative(CORPUS, file).split(path.sep).join("/");

describe("the Agent Skills corpus", () => {
  it("holds the twelve skills it was copied with", () => {
    expect(files.map(relative)).toEqual([
      "algorithmic-art/SKILL.md",
      "brand-guidelines/SKILL.md",
      "canvas-design/SKILL.md",
      "claude-api/SKILL.md",
      "frontend-design/SKILL.md",
      "internal-comms/SKILL.md",
      "mcp-builder/SKILL.md",
      "skill-creator/SKILL.md",
      "slack-gif-creator/SKILL.md",
      "theme-factory/SKILL.md",
      "web-artifacts-builder/SKILL.md",
      "webapp-testing/SKILL.md",
    ]);
  });

  it.each(files.map((file) => [relative(file), file]))(
    "%s loads, and parse → serialize → parse gives the same skill",
    (name, file) => {
      const text = readFileSync(file, "utf8");
      const first = parseSkillMarkdown(text, { file: name });
      expect(first.skill.name).toBe(name.split("/")[0]);
      expect(first.skill.description.length).toBeGreaterThan(0);
      expect(first.skill.markdown.body.length).toBeGreaterThan(0);
      const again = parseSkillMarkdown(serializeSkillMarkdown(first.skill), { file: name });
      expect(again.skill).toEqual(first.skill);
      expect(again.warnings).toEqual(first.warnings);
    },
  );

  it("warns only where the files break the standard: claude-api's long description and body", () => {
    const warnings = files.flatMap(
      (file) => parseSkillMarkdown(readFileSync(file, "utf8"), { file: relative(file) }).warnings,
    );
    const byRule: Record<string, number> = {};
    for (const warning of warnings) byRule[warning.rule] = (byRule[warning.rule] ?? 0) + 1;
    expect(byRule).toEqual({ "description-length": 1, "body-length": 1 });
    expect(warnings).toEqual([
      {
        file: "claude-api/SKILL.md",
        rule: "description-length",
        message: "`description` has 1,068 characters; the standard allows at most 1,024",
      },
      {
        file: "claude-api/SKILL.md",
        rule: "body-length",
        message: expect.stringMatching(/^the body has 5\d\d lines; the standard recommends at most 500/),
      },
    ]);
  });

  it("keeps claude-api's multi-line description with its colons, backticks and quotes", () => {
    const file = files.find((candidate) => relative(candidate) === "claude-api/SKILL.md")!;
    const { skill } = parseSkillMarkdown(readFileSync(file, "utf8"), { file: "claude-api/SKILL.md" });
    expect(skill.description).toHaveLength(1068);
    expect(skill.description.split("\n")).toHaveLength(3);
    expect(skill.description).toContain('"looks like a one-liner"');
    expect(skill.description).toContain("`@anthropic-ai`");
    expect(skill.markdown.license).toBe("Complete terms in LICENSE.txt");
  });

  it("passes strict validation as written, except claude-api's description", () => {
    for (const file of files) {
      const name = relative(file);
      const problems = validateSkillMarkdown(readFileSync(file, "utf8"), { file: name });
      expect(problems.map((problem) => problem.rule)).toEqual(
        name === "claude-api/SKILL.md" ? ["description-length"] : [],
      );
    }
  });

  it("serializes every file back to its exact bytes", () => {
    for (const file of files) {
      const text = readFileSync(file, "utf8");
      expect(serializeSkillMarkdown(parseSkillMarkdown(text, { file: relative(file) }).skill)).toBe(text);
    }
  });

  it("finds the files the bodies refer to", () => {
    const resources = (name: string) => {
      const file = files.find((candidate) => relative(candidate) === name)!;
      return parseSkillMarkdown(readFileSync(file, "utf8")).skill.markdown.resources.map(
        (resource) => resource.path,
      );
    };
    expect(resources("mcp-builder/SKILL.md")).toEqual([
      "reference/mcp_best_practices.md",
      "reference/node_mcp_server.md",
      "reference/python_mcp_server.md",
      "reference/evaluation.md",
    ]);
    expect(resources("webapp-testing/SKILL.md")).toEqual(["scripts/with_server.py"]);
  });
});
