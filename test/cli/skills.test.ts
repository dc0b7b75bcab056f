import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseSkillMarkdown, validateSkillMarkdown } from "../../src/skills/markdown/index.js";
import { runInProcess, workspace } from "./cli-harness.js";

const space = workspace();
afterAll(() => space.remove());

const PYTHON_TESTING = readFileSync(
  new URL("../__fixtures__/skills/python-testing.md", import.meta.url),
  "utf8",
);

describe("kilo skills", () => {
  it("imports every SKILL.md under a folder with its warnings, lists them, and exports one that validators accept", async () => {
    const dir = join(space.cwd, "skills");
    mkdirSync(join(dir, "python-testing"), { recursive: true });
    mkdirSync(join(dir, "meeting-notes"), { recursive: true });
    mkdirSync(join(dir, "broken"), { recursive: true });
    writeFileSync(join(dir, "python-testing", "SKILL.md"), PYTHON_TESTING);
    writeFileSync(
      join(dir, "meeting-notes", "SKILL.md"),
      "---\nname: meeting-notes\ndescription: Writes meeting notes\n---\nList decisions first.\n",
    );
    writeFileSync(join(dir, "broken", "SKILL.md"), "no front matter here\n");

    const imported = await runInProcess(["skills", "import", "skills"], space);
    // One file could not be read: the others still imported, and the exit code says something failed.
    expect(imported.code).toBe(1);
    expect(imported.stdout).toContain("imported meeting-notes (");
    expect(imported.stdout).toContain("imported Python Testing (");
    expect(imported.stdout).toContain("from skills/python-testing/SKILL.md");
    expect(imported.stderr).toContain("warning name-format:");
    expect(imported.stderr).toMatch(
      /kilo: skills\/broken\/SKILL\.md: error VALIDATION_FAILED: .*skills\/broken\/SKILL\.md/,
    );

    const listed = await runInProcess(["skills", "list", "--json"], space);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([
      expect.objectContaining({ name: "meeting-notes", kind: "markdown", status: "active" }),
      expect.objectContaining({ name: "Python Testing", kind: "markdown", status: "active" }),
    ]);

    const exported = await runInProcess(["skills", "export", "meeting-notes"], space);
    expect(exported.code).toBe(0);
    expect(validateSkillMarkdown(exported.stdout)).toEqual([]);
    expect(parseSkillMarkdown(exported.stdout).skill).toMatchObject({
      name: "meeting-notes",
      description: "Writes meeting notes",
    });

    const written = await runInProcess(["skills", "export", "MEETING-NOTES", "--out", "out"], space);
    expect(written.code).toBe(0);
    expect(written.stdout.trim()).toBe("wrote out/meeting-notes/SKILL.md");
    expect(readFileSync(join(space.cwd, "out", "meeting-notes", "SKILL.md"), "utf8")).toBe(exported.stdout);

    // "Python Testing" breaks the standard's name rule: strict export refuses it and says why.
    const refused = await runInProcess(["skills", "export", "Python Testing"], space);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("error VALIDATION_FAILED");
    expect(refused.stderr).toContain("python-testing");
  });

  it("imports a single file as JSON and refuses a missing path as a usage error", async () => {
    const file = join(space.cwd, "one.md");
    writeFileSync(file, "---\nname: one-skill\ndescription: One\n---\nBody.\n");
    const result = await runInProcess(["skills", "import", "one.md", "--json"], space);
    expect(result.code).toBe(0);
    const body = JSON.parse(result.stdout) as { results: Array<Record<string, unknown>> };
    expect(body.results).toEqual([
      expect.objectContaining({ file: "one.md", name: "one-skill", warnings: [] }),
    ]);
    const missing = await runInProcess(["skills", "import", "nope"], space);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("no such file or directory");
  });
});
