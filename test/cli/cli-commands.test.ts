import { afterAll, describe, expect, it } from "vitest";
import { runInProcess, type Workspace, workspace } from "./cli-harness.js";

const spaces: Workspace[] = [];
function space(env: Record<string, string> = {}): Workspace {
  const made = workspace(env);
  spaces.push(made);
  return made;
}

afterAll(() => {
  for (const made of spaces) made.remove();
});

const COMMANDS = ["ask", "status", "chat", "serve", "migrate", "bots"];

describe("kilo --help", () => {
  it("lists every command, the configuration variables and the exit codes", async () => {
    const result = await runInProcess(["--help"], space());
    expect(result.code).toBe(0);
    for (const command of COMMANDS) expect(result.stdout).toMatch(new RegExp(`^  ${command} `, "m"));
    for (const variable of [
      "KILO_DATABASE_URL",
      "KILO_DATABASE_SCHEMA",
      "KILO_PORT",
      "KILO_HOST",
      "KILO_LOG_LEVEL",
      "KILO_LOG_FORMAT",
      "KILO_USER",
      "KILO_BOT",
      "KILO_API_TOKEN",
      "KILO_CONFIG",
      "ANTHROPIC_API_KEY",
    ]) {
      expect(result.stdout).toContain(variable);
    }
    expect(result.stdout).toContain("Exit codes: 0 ok, 1 failure");
  });

  it.each(COMMANDS)("has help with examples for `kilo %s`", async (command) => {
    const result = await runInProcess([command, "--help"], space());
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`Usage: kilo ${command}`);
    expect(result.stdout).toMatch(new RegExp(`Examples:\\n(  .*\\n)*  kilo ${command}`));
    // Global options show in every command's help.
    expect(result.stdout).toContain("--config <file>");
  });

  it("answers `kilo help ask` like `kilo ask --help`", async () => {
    const viaHelp = await runInProcess(["help", "ask"], space());
    expect(viaHelp.code).toBe(0);
    expect(viaHelp.stdout).toContain("--no-wait");
  });
});

describe("usage errors exit 2", () => {
  it.each([
    [["frobnicate"], "unknown command 'frobnicate'"],
    [["ask", "hi", "--shout"], "unknown option '--shout'"],
    [["status"], "missing required argument 'run_id'"],
    [["serve", "--port", "http"], "a port is a number from 0 to 65535"],
    [["--user", "not valid", "bots"], "a user id is 1-128"],
    [["ask"], "the message is empty"],
    [["ask", "  "], "the message is empty"],
  ])("kilo %j", async (args, message) => {
    const result = await runInProcess(args, space());
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
    expect(result.stdout).toBe("");
  });

  it("prints the help on stderr when no command is given", async () => {
    const result = await runInProcess([], space());
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("Usage: kilo");
  });
});

describe("failures exit 1 with a code and a message, and no stack trace", () => {
  it("reports bad configuration", async () => {
    const result = await runInProcess(["bots"], space({ KILO_PORT: "eighty" }));
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      "kilo: error CONFIGURATION_INVALID: Invalid configuration in the environment: KILO_PORT: must be a port number from 0 to 65535\n",
    );
  });

  it("adds the stack trace under KILO_LOG_LEVEL=debug", async () => {
    const result = await runInProcess(
      ["bots"],
      space({ KILO_DATABASE_URL: "mysql://db", KILO_LOG_LEVEL: "debug" }),
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^kilo: error CONFIGURATION_INVALID: Unsupported database URL scheme/);
    expect(result.stderr).toMatch(/\n\s+at /);
  });

  it("refuses to serve off loopback without a token", async () => {
    const result = await runInProcess(["serve", "--host", "0.0.0.0"], space());
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      "error CONFIGURATION_INVALID: Refusing to listen on 0.0.0.0 without a token",
    );
  });

  it("reports a run that does not exist", async () => {
    const result = await runInProcess(["status", "run_missing"], space());
    expect(result.code).toBe(1);
    expect(result.stderr).toBe("kilo: error NOT_FOUND: No run 'run_missing'\n");
  });
});

describe("kilo migrate", () => {
  it("applies every migration to a new database, then nothing", async () => {
    const fresh = space();
    const first = await runInProcess(["migrate"], fresh);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^sqlite .*kilo\.sqlite: applied \d+ migrations\n {2}0001_initial_schema\n/);
    const again = await runInProcess(["migrate", "--json"], fresh);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toEqual({ database: `sqlite ${fresh.database}`, applied: [] });
  });
});

describe("kilo bots", () => {
  it("says when the user has no bots, without creating one", async () => {
    const fresh = space();
    const empty = await runInProcess(["bots"], fresh);
    expect(empty.code).toBe(0);
    expect(empty.stdout).toContain("User 'local' has no bots yet");
    expect(JSON.parse((await runInProcess(["bots", "--json"], fresh)).stdout)).toEqual([]);
  });
});
