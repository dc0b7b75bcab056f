import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { runInProcess, runKilo, workspace } from "./cli-harness.js";

// Never skipped: fails loudly when Postgres does not answer on 127.0.0.1:5432.
const DATABASE_URL = process.env.KILO_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const schema = `kilo_cli_${randomBytes(4).toString("hex")}`;
const space = workspace({ KILO_DATABASE_URL: DATABASE_URL, KILO_DATABASE_SCHEMA: schema });
const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });

afterAll(async () => {
  await admin.query(`drop schema if exists "${schema}" cascade`);
  await admin.end();
  space.remove();
});

describe("the CLI on Postgres", () => {
  it("migrates a fresh schema, then answers `kilo ask --json` from it", async () => {
    const migrated = await runInProcess(["migrate", "--json"], space);
    expect(migrated.code).toBe(0);
    const report = JSON.parse(migrated.stdout) as { database: string; applied: string[] };
    expect(report.database).toBe(`postgres 127.0.0.1:5432/test (schema ${schema})`);
    expect(report.applied[0]).toBe("0001_initial_schema");

    const asked = await runKilo(["ask", "ping", "--json"], space);
    expect(asked.code).toBe(0);
    const run = JSON.parse(asked.stdout) as { run_id: string; status: string; output: { reply: string } };
    expect(run).toMatchObject({ status: "succeeded", output: { reply: "pong" } });

    // It really is in that schema.
    const { rows } = await admin.query<{ status: string }>(
      `select status from "${schema}".runs where id = $1`,
      [run.run_id],
    );
    expect(rows).toEqual([{ status: "succeeded" }]);
  });

  it("takes the schema from ?schema= in the URL as well", async () => {
    const viaUrl = await runInProcess(["status", "--json", "run_missing"], space, {
      env: { KILO_DATABASE_SCHEMA: "", KILO_DATABASE_URL: `${DATABASE_URL}?schema=${schema}` },
    });
    expect(viaUrl.stderr).toBe("kilo: error NOT_FOUND: No run 'run_missing'\n");
    const bots = await runInProcess(["bots", "--json"], space, {
      env: { KILO_DATABASE_SCHEMA: "", KILO_DATABASE_URL: `${DATABASE_URL}?schema=${schema}` },
    });
    expect(JSON.parse(bots.stdout)).toEqual([expect.objectContaining({ name: "Kilo", current: true })]);
  });
});
