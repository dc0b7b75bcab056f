import { afterAll, describe, expect, it } from "vitest";
import { type CliResult, runInProcess, runKilo, workspace } from "./cli-harness.js";

const space = workspace();
afterAll(() => space.remove());

const json = (result: CliResult) => JSON.parse(result.stdout) as Record<string, unknown>;

// `--no-wait` leaves the run to a background process: only a real process (not runInProcess) can show it.
describe("kilo ask --no-wait", () => {
  it("--no-wait prints the queued run and exits; the run goes on and `kilo status` sees it succeed", async () => {
    const queued = await runKilo(["ask", "--no-wait", "--json", "ping"], space);
    expect(queued.code).toBe(0);
    const receipt = json(queued);
    expect(receipt).toMatchObject({ run_id: expect.stringMatching(/^run_/), status: "queued", output: null });
    // The background process created the default bot; the command says so.
    expect(queued.stderr).toContain(`created bot "Kilo" (${receipt.bot_id as string})`);
    const runId = receipt.run_id as string;

    // Poll as a script would; the run is executed by the process --no-wait left behind.
    let last: Record<string, unknown> = {};
    for (let attempt = 0; attempt < 200 && last.status !== "succeeded"; attempt += 1) {
      const status = await runInProcess(["status", runId, "--json"], space);
      expect(status.code).toBe(0);
      last = json(status);
      expect(["queued", "running", "succeeded"]).toContain(last.status);
    }
    expect(last).toMatchObject({
      run_id: runId,
      status: "succeeded",
      output: { reply: "pong" },
      error: null,
    });

    const text = await runInProcess(["status", runId], space);
    expect(text.stdout).toBe(`${runId} succeeded\npong\n`);
  });

  it("--no-wait without --json prints the run id and status; `status --wait` waits for the end", async () => {
    const queued = await runKilo(["ask", "--no-wait", "hello"], space);
    expect(queued.code).toBe(0);
    const [runId, status] = queued.stdout.trim().split(" ");
    expect(runId).toMatch(/^run_/);
    expect(status).toBe("queued");
    expect(queued.stderr).toContain(`kilo status ${runId}`);
    const waited = await runInProcess(["status", runId!, "--wait", "--json"], space);
    expect(json(waited)).toMatchObject({
      status: "succeeded",
      output: { reply: expect.stringContaining("hello") },
    });
  });
});
