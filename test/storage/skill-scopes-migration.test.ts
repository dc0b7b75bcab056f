import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { MIGRATIONS } from "../../adapters/storage/sql/migrations.js";
import { sqliteStorage } from "../../adapters/storage/sqlite/index.js";
import { KiloError } from "../../src/errors.js";

const when = new Date("2024-05-01T10:00:00.000Z").getTime();
const scopesMigration = MIGRATIONS.find((migration) => migration.name === "0011_skill_scopes_and_teams");

/** A database at schema version 10 with one bot, its skill, a record and a version (tables prefixed). */
async function databaseAtVersion10(prefix: string) {
  const database = new Database(":memory:");
  const old = sqliteStorage({ database, migrate: false, tablePrefix: prefix });
  await old.migrate({ to: 10 });
  const t = (name: string) => `${prefix}${name}`;
  database.prepare(`insert into ${t("users")} values ('u1', 'Ada', '{}', ?)`).run(when);
  database
    .prepare(`insert into ${t("bots")} values ('b1', 'u1', 'Baker', null, null, null, '{}', ?, ?)`)
    .run(when, when);
  database
    .prepare(
      `insert into ${t("skills")} (id, bot_id, name, name_folded, description, instructions, triggers, examples,
         data_fields, required_integrations, task_type, status, metadata, created_at, updated_at, markdown)
       values ('s1', 'b1', 'Orders', 'orders', 'Tracks orders', 'Record them', '["order"]', '[]',
         '[{"name":"customer","type":"string","description":"","required":true}]', '[]',
         'skill_execution', 'active', '{}', ?, ?, null)`,
    )
    .run(when, when);
  database
    .prepare(`insert into ${t("skill_records")} values ('r1', 'b1', 's1', '{"customer":"Ada"}', ?, ?)`)
    .run(when, when);
  database
    .prepare(
      `insert into ${t("skill_versions")} values ('v1', 's1', 'b1', 1, '{"name":"Orders"}', 'u1', null, '+a', ?)`,
    )
    .run(when);
  return database;
}

describe("migration 0011_skill_scopes_and_teams", () => {
  it("comes after every earlier migration", () => {
    expect(scopesMigration?.version).toBe(11);
    expect(MIGRATIONS.indexOf(scopesMigration!)).toBe(10);
  });

  it("keeps skills, records and versions written before it as the bot's own, with their cascades", async () => {
    const database = await databaseAtVersion10("k_");
    const storage = sqliteStorage({ database, tablePrefix: "k_" });
    expect(await storage.migrate()).toEqual({
      applied: ["0011_skill_scopes_and_teams", "0012_approval_runs", "0013_run_resumes"],
    });

    const skill = await storage.skills.get("b1", "s1");
    expect(skill).toMatchObject({ id: "s1", botId: "b1", scope: { kind: "bot", id: "b1" }, name: "Orders" });
    expect(await storage.skills.get({ kind: "bot", id: "b1" }, "s1")).toEqual(skill);
    expect(await storage.skillRecords.get("b1", "s1", "r1")).toMatchObject({ data: { customer: "Ada" } });
    expect(await storage.skillVersions!.get("b1", "s1", 1)).toMatchObject({
      scope: { kind: "bot", id: "b1" },
      botId: "b1",
      origin: null,
      author: "u1",
    });
    // Names are unique per scope now: the same name in another scope is fine.
    await storage.skills.create({ ...skill!, id: "s2", botId: null, scope: { kind: "system" } });
    await expect(storage.skills.create({ ...skill!, id: "s3" })).rejects.toSatisfy((error) =>
      KiloError.is(error, "CONFLICT"),
    );
    // The rebuilt tables still cascade from the bot.
    expect(await storage.bots.delete("b1")).toBe(true);
    expect(await storage.skills.get("b1", "s1")).toBeNull();
    expect(await storage.skillRecords.get("b1", "s1", "r1")).toBeNull();
    expect(await storage.skillVersions!.get("b1", "s1", 1)).toBeNull();
    expect(await storage.skills.get({ kind: "system" }, "s2")).not.toBeNull();
    const foreignKeys = database.prepare("pragma foreign_key_check").all();
    expect(foreignKeys).toEqual([]);
    await storage.close();
    database.close();
  });

  it("leaves no table under a temporary name, and the prefixed tables reference each other", async () => {
    const database = await databaseAtVersion10("k_");
    const storage = sqliteStorage({ database, tablePrefix: "k_" });
    await storage.init();
    const tables = database
      .prepare("select name, sql from sqlite_master where type = 'table' order by name")
      .all() as Array<{ name: string; sql: string }>;
    expect(tables.map((table) => table.name)).not.toContainEqual(expect.stringMatching(/_next$/));
    const records = tables.find((table) => table.name === "k_skill_records")!;
    expect(records.sql).toContain('references "k_skills"');
    await storage.close();
    database.close();
  });
});
