import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runInProcess, workspace } from "./cli-harness.js";

const space = workspace();
afterAll(() => space.remove());

describe("kilo run", () => {
  it("starts a workspace workflow with JSON arguments and prints its output", async () => {
    const dir = join(space.cwd, "ws");
    mkdirSync(join(dir, "workflows"), { recursive: true });
    writeFileSync(
      join(dir, "workflows", "nightly-report.mjs"),
      "export default async (event, ctx) => { const args = JSON.parse(event.text); " +
        "return { day: args.day, orders: await ctx.step('count', () => 7) }; };\n",
    );
    const env = { KILO_WORKSPACE: "ws" };
    const plain = await runInProcess(["run", "nightly-report", "--args", '{"day":"monday"}'], space, { env });
    expect(plain.code).toBe(0);
    expect(JSON.parse(plain.stdout)).toEqual({ day: "monday", orders: 7 });

    const json = await runInProcess(["run", "nightly-report", "--json"], space, { env });
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      status: "succeeded",
      workflow: "nightly-report",
      output: { orders: 7 },
    });

    const unknown = await runInProcess(["run", "weekly-report"], space, { env });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("error VALIDATION_FAILED");
    expect(unknown.stderr).toContain("no workflow handles type 'weekly-report'");

    const bad = await runInProcess(["run", "nightly-report", "--args", "[1,2]"], space, { env });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--args must be a JSON object");
  });

  it("shows a run's lifecycle and recorded steps with kilo logs", async () => {
    const env = { KILO_WORKSPACE: "ws" };
    const started = await runInProcess(
      ["run", "nightly-report", "--args", '{"day":"friday"}', "--json"],
      space,
      {
        env,
      },
    );
    const runId = (JSON.parse(started.stdout) as { run_id: string }).run_id;
    const logs = await runInProcess(["logs", runId], space, { env });
    expect(logs.code).toBe(0);
    const lines = logs.stdout.trim().split("\n");
    expect(lines[0]).toMatch(new RegExp(`run ${runId} queued \\(workflow nightly-report, cli-run:`));
    expect(lines[1]).toMatch(/run started$/);
    expect(lines[2]).toMatch(/step 0 step count succeeded \(\d+ ms\)$/);
    expect(lines[3]).toMatch(/run succeeded$/);
    const json = JSON.parse((await runInProcess(["logs", runId, "--json"], space, { env })).stdout) as {
      steps: Array<{ name: string; output: unknown }>;
    };
    expect(json.steps).toEqual([expect.objectContaining({ name: "count", output: 7 })]);
    const other = await runInProcess(["logs", runId], space, { env: { ...env, KILO_USER: "someone-else" } });
    expect(other.code).toBe(1);
    expect(other.stderr).toContain("error NOT_FOUND");
  });
});
