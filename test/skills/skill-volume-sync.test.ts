import { describe, expect, it } from "vitest";
import type { MarkdownSkillBody } from "../../src/domain/skill.js";
import { KiloError } from "../../src/errors.js";
import type { SkillVolumeChange, SkillVolumeCommit } from "../../src/ports/skill-volume.js";
import { parseSkillMarkdown } from "../../src/skills/markdown/skill-markdown-parser.js";
import { planSkillVolumeImport, type SkillVolumeStoredSkill } from "../../src/skills/skill-volume-sync.js";

const OID = (n: number) => n.toString(16).padStart(40, "0");

function commit(n: number, overrides: Partial<SkillVolumeCommit> = {}): SkillVolumeCommit {
  return {
    id: OID(n),
    author: { name: "Bob Hand", email: "bob@bakery.example" },
    time: new Date("2025-01-01T00:00:00Z"),
    message: `change ${n}`,
    reason: `change ${n}`,
    origin: "outside",
    ...overrides,
  };
}

const markdownOf = (name: string, body = "# Steps\n", description = "Takes orders.") =>
  `---\nname: ${name}\ndescription: ${description}\nmetadata:\n  keywords: order, cake\n---\n${body}`;

function change(
  name: string,
  kind: SkillVolumeChange["kind"],
  markdown: string | null,
  commits: SkillVolumeCommit[] = [commit(1)],
): SkillVolumeChange {
  return {
    name,
    kind,
    skill: markdown === null ? null : { name, markdown, resources: [], version: OID(99) },
    commits,
    marker: { from: kind === "created" ? null : OID(50), to: kind === "deleted" ? null : OID(51) },
  };
}

function stored(id: string, markdown: string): SkillVolumeStoredSkill {
  const { skill } = parseSkillMarkdown(markdown);
  return { id, ...skill };
}

const structured = (id: string, name: string): SkillVolumeStoredSkill => ({
  id,
  name,
  description: "Structured",
  triggers: [],
  markdown: undefined,
});

describe("planSkillVolumeImport", () => {
  it("creates what storage lacks, updates what differs, deletes what is gone (deletes first)", () => {
    const plan = planSkillVolumeImport(
      [
        change("cake-orders", "updated", markdownOf("cake-orders", "# New steps\n")),
        change("bread", "created", markdownOf("bread")),
        change("old-skill", "deleted", null, [commit(3, { reason: "retire it" })]),
      ],
      [stored("skill_1", markdownOf("cake-orders")), stored("skill_2", markdownOf("old-skill"))],
    );
    expect(plan.problems).toEqual([]);
    expect(plan.unchanged).toEqual([]);
    expect(plan.actions.map((action) => [action.kind, action.name])).toEqual([
      ["delete", "old-skill"],
      ["create", "bread"],
      ["update", "cake-orders"],
    ]);
    const [deleted, created, updated] = plan.actions;
    expect(deleted).toMatchObject({
      skillId: "skill_2",
      author: "bob@bakery.example",
      reason: `retire it (commit ${OID(3).slice(0, 7)})`,
    });
    expect(created).toMatchObject({
      kind: "create",
      skill: { name: "bread", description: "Takes orders.", triggers: ["order", "cake"] },
      warnings: [],
    });
    expect(updated).toMatchObject({
      kind: "update",
      skillId: "skill_1",
      skill: { markdown: { body: "# New steps\n" } },
    });
  });

  it("leaves alone what storage already has, and deletes of skills it does not have", () => {
    const plan = planSkillVolumeImport(
      [change("cake-orders", "created", markdownOf("cake-orders")), change("gone", "deleted", null)],
      [stored("skill_1", markdownOf("cake-orders"))],
    );
    expect(plan.actions).toEqual([]);
    expect(plan.unchanged.map((entry) => entry.name)).toEqual(["cake-orders", "gone"]);
  });

  it("matches stored names ignoring case, and names the skill after its folder", () => {
    const plan = planSkillVolumeImport(
      [change("cake-orders", "updated", markdownOf("cakes", "# Other\n"))],
      [{ ...stored("skill_1", markdownOf("cake-orders")), name: "Cake-Orders" }],
    );
    expect(plan.actions).toHaveLength(1);
    const action = plan.actions[0]!;
    expect(action).toMatchObject({ kind: "update", skillId: "skill_1", skill: { name: "cake-orders" } });
    expect("warnings" in action && action.warnings.map((warning) => warning.rule)).toEqual([
      "name-directory",
      "name-directory",
    ]);
  });

  it("keeps the parser's warnings and imports a file breaking the standard", () => {
    const plan = planSkillVolumeImport(
      [change("loose", "created", "---\nname: loose\ncategory: baking\nversion: 1.0\n---\nBody\n")],
      [],
    );
    const action = plan.actions[0]!;
    expect(action.kind).toBe("create");
    expect("warnings" in action && action.warnings.map((warning) => warning.rule).sort()).toEqual([
      "description-missing",
      "unknown-field",
      "unknown-field",
    ]);
    expect("warnings" in action && action.warnings[0]!.file).toBe("loose/SKILL.md");
  });

  it("reports unreadable files, invalid skills and structured skills in the way as problems", () => {
    const plan = planSkillVolumeImport(
      [
        change("no-front-matter", "created", "# Just a title\n"),
        change("too-long", "created", markdownOf("too-long", "See [notes](notes.md).\n")),
        change("orders", "updated", markdownOf("orders")),
      ],
      [structured("skill_9", "orders")],
      { resources: new Map([["too-long", new Map([["notes.md", "n".repeat(500_001)]])]]) },
    );
    expect(plan.actions).toEqual([]);
    expect(plan.unchanged).toEqual([]);
    expect(plan.problems.map((problem) => [problem.name, problem.file, problem.error.code])).toEqual([
      ["no-front-matter", "no-front-matter/SKILL.md", "VALIDATION_FAILED"],
      ["orders", "orders/SKILL.md", "CONFLICT"],
      ["too-long", "too-long/SKILL.md", "VALIDATION_FAILED"],
    ]);
    expect(plan.problems.every((problem) => KiloError.is(problem.error))).toBe(true);
    expect(plan.problems[2]!.message).toContain("markdown.resources.0.content");
  });

  it("takes the author from the newest commit and the reason from every commit, oldest first", () => {
    const picked = commit(7, {
      author: { name: "kilo", email: "" },
      origin: "picked-up",
      reason: "Changed outside kilo and picked up from the working tree: a/SKILL.md (modified).",
    });
    const plan = planSkillVolumeImport(
      [
        change("a", "created", markdownOf("a"), [picked, commit(6, { reason: "line one\nline two" })]),
        change("b", "created", markdownOf("b"), []),
        change("c", "created", markdownOf("c"), [commit(8, { reason: null, message: "" })]),
      ],
      [],
      { authorOf: (entry) => (entry === null ? "system" : `git:${entry.author.name}`) },
    );
    expect(plan.actions.map((action) => [action.author, action.reason])).toEqual([
      [
        "git:kilo",
        `line one line two (commit ${OID(6).slice(0, 7)})\nChanged outside kilo and picked up from the working tree: a/SKILL.md (modified). (commit ${OID(7).slice(0, 7)})`,
      ],
      ["system", "b was created outside kilo"],
      ["git:Bob Hand", `No message (commit ${OID(8).slice(0, 7)})`],
    ]);
    const defaults = planSkillVolumeImport([change("a", "created", markdownOf("a"), [picked])], []);
    expect(defaults.actions[0]!.author).toBe("kilo");
  });

  it("puts the resource texts it is given on the resources the SKILL.md refers to", () => {
    const markdown = markdownOf("pdf-tools", "Read [forms](references/forms.md) and `scripts/fill.py`.\n");
    const plan = planSkillVolumeImport([change("pdf-tools", "created", markdown)], [], {
      resources: new Map([["pdf-tools", new Map([["references/forms.md", "# Forms\n"]])]]),
    });
    const action = plan.actions[0]!;
    expect(action.kind === "create" && (action.skill.markdown as MarkdownSkillBody).resources).toEqual([
      { path: "references/forms.md", content: "# Forms\n" },
      { path: "scripts/fill.py" },
    ]);
  });
});
