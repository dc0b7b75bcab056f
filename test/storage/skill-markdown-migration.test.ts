import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { MIGRATIONS } from "../../adapters/storage/sql/migrations.js";
import { sqliteStorage } from "../../adapters/storage/sqlite/index.js";
import type { Skill } from "../../src/domain/skill.js";

const when = new Date("2024-05-01T10:00:00.000Z");
const markdownMigration = MIGRATIONS.find((migration) => migration.name === "0006_markdown_skills");

describe("migration 0006_markdown_skills", () => {
  it("comes after every earlier migration", () => {
    expect(markdownMigration?.version).toBe(6);
    expect(MIGRATIONS.indexOf(markdownMigration!)).toBe(5);
  });

  it("keeps the skills written before it as structured skills, and stores Markdown ones after it", async () => {
    const database = new Database(":memory:");
    const old = sqliteStorage({ database, migrate: false });
    await old.migrate({ to: markdownMigration!.version - 1 });
    const at = when.getTime();
    database.prepare("insert into users values ('u1', 'Ada', '{}', ?)").run(at);
    database
      .prepare("insert into bots values ('b1', 'u1', 'Baker', null, null, null, '{}', ?, ?)")
      .run(at, at);
    database
      .prepare(
        `insert into skills (id, bot_id, name, name_folded, description, instructions, triggers, examples,
           data_fields, required_integrations, task_type, status, metadata, created_at, updated_at)
         values ('s1', 'b1', 'Orders', 'orders', 'Tracks orders', 'Record them', '["order"]', '[]', '[]', '[]',
           'skill_execution', 'active', '{}', ?, ?)`,
      )
      .run(at, at);

    const upgraded = sqliteStorage({ database });
    await upgraded.init();
    const stored = await upgraded.skills.get("b1", "s1");
    expect(stored).toMatchObject({ name: "Orders", instructions: "Record them", triggers: ["order"] });
    expect(stored?.markdown).toBeUndefined();

    const markdown: Skill = {
      ...stored!,
      instructions: "",
      markdown: {
        body: "# Orders\n",
        license: null,
        compatibility: null,
        allowedTools: [],
        metadata: { source: "import" },
        category: "bakery",
        resources: [],
      },
    };
    expect(await upgraded.skills.update(markdown)).toEqual(markdown);
    expect(await upgraded.skills.get("b1", "s1")).toEqual(markdown);
    await upgraded.close();
    database.close();
  });
});
