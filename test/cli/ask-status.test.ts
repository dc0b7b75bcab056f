import { afterAll, describe, expect, it } from "vitest";
import { type CliResult, runInProcess, runKilo, workspace } from "./cli-harness.js";

// One database for the file: the first ask creates the default bot, the others find it.
const space = workspace();
afterAll(() => space.remove());

const json = (result: CliResult) => JSON.parse(result.stdout) as Record<string, unknown>;

describe("kilo ask", () => {
  it('answers `kilo ask "ping" --json` with { run_id, status, output } offline, creating the default bot', async () => {
    // The my-kaiser acceptance test, as a real process.
    const result = await runKilo(["ask", "ping", "--json"], space);
    expect(result.code).toBe(0);
    const run = json(result);
    expect(run).toMatchObject({
      run_id: expect.stringMatching(/^run_/),
      status: "succeeded",
      output: { reply: "pong", conversationId: expect.any(String) },
      error: null,
      bot_id: expect.stringMatching(/^bot_/),
      conversation_key: expect.stringMatching(/^cli:/),
    });
    expect(result.stderr).toContain("no ANTHROPIC_API_KEY or OPENAI_API_KEY set: using the offline model");
    expect(result.stderr).toContain(`created bot "Kilo" (${run.bot_id as string}) for user 'local'`);
  });

  it("prints just the reply without --json, reads stdin, and continues a named conversation", async () => {
    const first = await runInProcess(["ask", "--conversation", "notes", "Remember", "the", "milk"], space);
    expect(first.code).toBe(0);
    expect(first.stdout).toBe(
      '(offline model) You said: "Remember the milk". Set ANTHROPIC_API_KEY or OPENAI_API_KEY for real answers.\n',
    );
    // The bot exists now: nothing is created.
    expect(first.stderr).not.toContain("created bot");
    const piped = await runInProcess(["ask", "--conversation", "notes", "--json"], space, {
      input: "ping\n",
    });
    const dash = await runInProcess(["ask", "--conversation", "notes", "--json", "-"], space, {
      input: "ping",
    });
    expect(json(piped).output).toMatchObject({ reply: "pong" });
    // One conversation key, one kilo conversation.
    const conversation = (result: CliResult) =>
      (json(result).output as { conversationId: string }).conversationId;
    expect(conversation(dash)).toBe(conversation(piped));
    const fresh = await runInProcess(["ask", "--json", "ping"], space);
    expect(conversation(fresh)).not.toBe(conversation(piped));
  });

  it("keeps runs to their user: another KILO_USER gets NOT_FOUND", async () => {
    const mine = json(await runInProcess(["ask", "ping", "--json"], space));
    const theirs = await runInProcess(["status", mine.run_id as string], space, {
      env: { KILO_USER: "someone-else" },
    });
    expect(theirs.code).toBe(1);
    expect(theirs.stderr).toBe(`kilo: error NOT_FOUND: No run '${mine.run_id as string}'\n`);
  });

  it("names a bot with --bot, and refuses one the user does not have", async () => {
    const bots = json(await runInProcess(["bots", "--json"], space)) as unknown as Array<{
      name: string;
      current: boolean;
    }>;
    expect(bots).toEqual([expect.objectContaining({ name: "Kilo", current: true })]);
    const byName = await runInProcess(["--bot", "kilo", "ask", "ping"], space);
    expect(byName).toMatchObject({ code: 0, stdout: "pong\n" });
    const missing = await runInProcess(["ask", "--bot", "Crumb", "ping"], space);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(
      "kilo: error NOT_FOUND: User 'local' has no bot 'Crumb'; their bots: Kilo",
    );
  });

  it("--no-wait reports what kept the run from being queued, with its code, and exits 1", async () => {
    const missing = await runKilo(["ask", "--no-wait", "--bot", "Crumb", "ping"], space);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe("");
    expect(missing.stderr).toContain(
      "kilo: error NOT_FOUND: User 'local' has no bot 'Crumb'; their bots: Kilo",
    );
  });
});
