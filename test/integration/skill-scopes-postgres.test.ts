import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { postgresStorage } from "../../adapters/storage/postgres/index.js";
import { createKilo, KiloError } from "../../src/index.js";
import { mockProvider, scriptByPurpose } from "../../src/testing/index.js";
import { ORDER_TRACKER } from "../fixtures.js";

const DATABASE_URL = process.env.KILO_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const RUN = randomBytes(4).toString("hex");
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
const schemas: string[] = [];
const sent: string[] = [];
pool.on("connect", (client) => {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    const first = args[0];
    sent.push(typeof first === "string" ? first : String((first as { text?: string })?.text ?? ""));
    return query(...args);
  };
});

const schemaName = (label: string) => {
  const name = `kilo_scopes_${RUN}_${label}`;
  schemas.push(name);
  return name;
};

afterAll(async () => {
  for (const schema of schemas) await pool.query(`drop schema if exists "${schema}" cascade`);
  await pool.end();
});

const when = new Date("2024-05-01T10:00:00.000Z");

describe("skill scopes on Postgres", () => {
  it("migration 0011 keeps earlier skills, records and versions as the bot's own, cascades included", async () => {
    const schema = schemaName("upgrade");
    const old = postgresStorage({ pool, schema, migrate: false });
    await old.migrate({ to: 10 });
    const q = (table: string) => `"${schema}"."${table}"`;
    await pool.query(`insert into ${q("users")} values ('u1', 'Ada', '{}', $1)`, [when]);
    await pool.query(
      `insert into ${q("bots")} values ('b1', 'u1', 'Baker', null, null, null, '{}', $1, $1)`,
      [when],
    );
    await pool.query(
      `insert into ${q("skills")} (id, bot_id, name, name_folded, description, instructions, triggers, examples,
         data_fields, required_integrations, task_type, status, metadata, created_at, updated_at, markdown)
       values ('s1', 'b1', 'Orders', 'orders', 'Tracks orders', 'Record them', '["order"]', '[]',
         '[{"name":"customer","type":"string","description":"","required":true}]', '[]',
         'skill_execution', 'active', '{}', $1, $1, null)`,
      [when],
    );
    await pool.query(
      `insert into ${q("skill_records")} values ('r1', 'b1', 's1', '{"customer":"Ada"}', $1, $1)`,
      [when],
    );
    await pool.query(
      `insert into ${q("skill_versions")} values ('v1', 's1', 'b1', 1, '{"name":"Orders"}', 'u1', null, '+a', $1)`,
      [when],
    );
    await old.close();

    const storage = postgresStorage({ pool, schema });
    expect(await storage.migrate()).toEqual({
      applied: ["0011_skill_scopes_and_teams", "0012_approval_runs", "0013_run_resumes"],
    });
    const skill = await storage.skills.get("b1", "s1");
    expect(skill).toMatchObject({ botId: "b1", scope: { kind: "bot", id: "b1" }, name: "Orders" });
    expect(await storage.skillVersions!.get("b1", "s1", 1)).toMatchObject({
      scope: { kind: "bot", id: "b1" },
      origin: null,
    });
    await storage.skills.create({ ...skill!, id: "s2", botId: null, scope: { kind: "system" } });
    await expect(storage.skills.create({ ...skill!, id: "s3" })).rejects.toSatisfy((error) =>
      KiloError.is(error, "CONFLICT"),
    );
    expect(await storage.bots.delete("b1")).toBe(true);
    expect(await storage.skillRecords.get("b1", "s1", "r1")).toBeNull();
    expect(await storage.skillVersions!.get("b1", "s1", 1)).toBeNull();
    expect(await storage.skills.get({ kind: "system" }, "s2")).not.toBeNull();
    await storage.close();
  });

  it("keeps a warm turn of a bot in a team at 5 statements and its run's claim, with skills in every scope", async () => {
    const classify = JSON.stringify({
      skill: null,
      confidence: 0.9,
      actionable: false,
      reason: "small talk",
    });
    const provider = mockProvider({
      respond: scriptByPurpose({ classify: [classify, classify, classify], chat: ["Hi!", "Sure.", "Bye!"] }),
    });
    const kilo = createKilo({
      storage: postgresStorage({ pool, schema: schemaName("turns") }),
      providers: [provider],
    });
    const team = await kilo.teams.create({ name: "Bakers" }, { actor: { userId: "rt-user" } });
    const bot = await kilo.bots.create({ userId: "rt-user", name: "Counter", teamId: team.id });
    await kilo.skills.create({ kind: "system" }, { name: "Greeting", triggers: ["greetings"] });
    await kilo.skills.create({ kind: "team", id: team.id }, ORDER_TRACKER);
    await kilo.skills.create({ kind: "user", id: "rt-user" }, { name: "Pricing", triggers: ["price list"] });
    await kilo.skills.create(bot.id, { name: "Recipes", triggers: ["recipe book"] });
    const first = await kilo.chat({ botId: bot.id, userId: "rt-user", message: "hello there" });
    await kilo.chat({
      botId: bot.id,
      userId: "rt-user",
      conversationId: first.conversationId,
      message: "thanks",
    });

    sent.length = 0;
    const warm = await kilo.chat({
      botId: bot.id,
      userId: "rt-user",
      conversationId: first.conversationId,
      message: "good night",
    });
    expect(warm.reply).toBe("Bye!");
    // Store the turn's run, append the user's message, read history and memories, commit reply + usage +
    // touch + the run's outcome; plus the claims that took the run (an idle poll may add one). The four
    // scopes' skills come from the cache.
    const turn = sent.filter((text) => !/with picked as/.test(text));
    expect(turn, turn.join("\n---\n")).toHaveLength(5);
    expect(sent.length - turn.length).toBeGreaterThanOrEqual(1);
    expect((await kilo.skills.effective(bot.id)).map(({ skill }) => skill.scope.kind)).toEqual([
      "system",
      "team",
      "user",
      "bot",
    ]);
    await kilo.close();
  });
});
