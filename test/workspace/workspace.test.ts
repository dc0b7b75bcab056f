import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { memoryStorage } from "../../adapters/storage/memory/index.js";
import { KiloError } from "../../src/errors.js";
import { createKilo } from "../../src/index.js";
import { mockProvider } from "../../src/testing/index.js";
import { MAX_WORKSPACE_FILE_BYTES } from "../../src/workspace/workspace.js";
import { lastUserText, USER } from "../kilo/helpers.js";

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "kilo-workspace-"));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A kilo reading `dir` on every turn, with a bot; returns the system prompt of each chat call. */
async function workspaceKilo(workspaceDir = dir) {
  const provider = mockProvider({ respond: () => "ok" });
  const kilo = createKilo({
    storage: memoryStorage(),
    providers: [provider],
    workspace: { dir: workspaceDir, checkIntervalMs: 0 },
  });
  const bot = await kilo.bots.create({
    userId: USER,
    name: "Crumb",
    soul: { personalityTraits: { tone: "warm", traits: [] } },
  });
  const errors: KiloError[] = [];
  kilo.events.on("error", ({ error }) => errors.push(error));
  const turn = async (message = "hello") => {
    await kilo.chat({ botId: bot.id, userId: USER, message });
    const request = provider.requests.filter((r) => r.purpose === "chat").at(-1)!;
    return request.system.map((block) => block.text).join("\n\n");
  };
  return { kilo, turn, errors };
}

describe("createKilo({ workspace })", () => {
  it("SYSTEM.md replaces the soul, APPEND_SYSTEM.md follows the rules, AGENTS.md adds context rules", async () => {
    await writeFile(join(dir, "SYSTEM.md"), "You are Kaiser, the household's assistant.\n");
    await writeFile(join(dir, "APPEND_SYSTEM.md"), "Answer in English.");
    await writeFile(join(dir, "AGENTS.md"), "# House rules\nNever book anything after 22:00.");
    const { kilo, turn, errors } = await workspaceKilo();
    const system = await turn();
    expect(system.startsWith("You are Kaiser, the household's assistant.\n\n## Rules")).toBe(true);
    expect(system).not.toContain("You are Crumb");
    expect(system).toContain("## Context rules\n# House rules\nNever book anything after 22:00.");
    // Appended after the rules, before the skill catalog.
    expect(system.indexOf("Answer in English.")).toBeGreaterThan(system.indexOf("## Context rules"));
    expect(system.indexOf("Answer in English.")).toBeLessThan(system.indexOf("## Skills"));
    expect(errors).toEqual([]);
    await kilo.close();
  });

  it("picks up changed, added and removed files without a restart", async () => {
    const { kilo, turn } = await workspaceKilo();
    expect(await turn()).toContain("You are Crumb");
    await writeFile(join(dir, "AGENTS.md"), "Rule one.");
    expect(await turn()).toContain("## Context rules\nRule one.");
    await writeFile(join(dir, "AGENTS.md"), "Rule two, which is longer.");
    const changed = await turn();
    expect(changed).toContain("Rule two, which is longer.");
    expect(changed).not.toContain("Rule one.");
    await writeFile(join(dir, "SYSTEM.md"), "You are Kaiser.");
    expect(await turn()).toMatch(/^You are Kaiser\./);
    await rm(join(dir, "SYSTEM.md"));
    await rm(join(dir, "AGENTS.md"));
    const reverted = await turn();
    expect(reverted).toMatch(/^You are Crumb/);
    expect(reverted).not.toContain("Context rules");
    await kilo.close();
  });

  it("reports a malformed file with its path once, keeps its last good version and keeps answering", async () => {
    await writeFile(join(dir, "SYSTEM.md"), "You are Kaiser.");
    const { kilo, turn, errors } = await workspaceKilo();
    expect(await turn()).toMatch(/^You are Kaiser\./);
    // Not UTF-8: a half-saved or binary file.
    await writeFile(join(dir, "SYSTEM.md"), Buffer.from([0x59, 0x6f, 0xff, 0xfe, 0x75]));
    expect(await turn()).toMatch(/^You are Kaiser\./);
    expect(await turn()).toMatch(/^You are Kaiser\./);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.code).toBe("WORKSPACE_INVALID");
    expect(errors[0]?.message).toContain(join(dir, "SYSTEM.md"));
    expect(errors[0]?.message).toContain("not valid UTF-8");

    await writeFile(join(dir, "APPEND_SYSTEM.md"), "x".repeat(MAX_WORKSPACE_FILE_BYTES + 1));
    await mkdir(join(dir, "AGENTS.md"));
    const system = await turn();
    expect(system).not.toContain("xxxx");
    expect(system).not.toContain("Context rules");
    expect(errors.map((error) => error.message)).toEqual([
      expect.stringContaining("not valid UTF-8"),
      expect.stringMatching(/APPEND_SYSTEM\.md: is \d+ bytes; the limit is 262144/),
      expect.stringMatching(/AGENTS\.md: is not a regular file/),
    ]);
    // Fixed: the good version is used again.
    await writeFile(join(dir, "SYSTEM.md"), "You are Kaiser, fixed.");
    expect(await turn()).toMatch(/^You are Kaiser, fixed\./);
    await kilo.close();
  });

  it("fails the turn with CONFIGURATION_INVALID when the directory does not exist", async () => {
    const { kilo, turn } = await workspaceKilo(join(dir, "missing"));
    const failure = await turn().catch((error: unknown) => error);
    expect(KiloError.is(failure, "CONFIGURATION_INVALID")).toBe(true);
    expect((failure as Error).message).toContain(join(dir, "missing"));
    await kilo.close();
  });

  it("offers skills/ Markdown skills to every bot, the bot's own skill winning a name clash", async () => {
    await mkdir(join(dir, "skills", "python-testing"), { recursive: true });
    await writeFile(
      join(dir, "skills", "python-testing", "SKILL.md"),
      "---\nname: python-testing\ndescription: How to write Python tests\nkeywords: [pytest, fixtures]\n---\n# Python testing\nUse pytest fixtures for setup.\n",
    );
    await writeFile(
      join(dir, "skills", "meeting-notes.md"),
      "---\nname: meeting-notes\ndescription: Workspace notes skill\n---\nWorkspace version.\n",
    );
    await mkdir(join(dir, "skills", "broken"));
    await writeFile(join(dir, "skills", "broken", "SKILL.md"), "no front matter\n");
    const provider = mockProvider({ respond: () => "ok" });
    const kilo = createKilo({
      storage: memoryStorage(),
      providers: [provider],
      workspace: { dir, checkIntervalMs: 0 },
    });
    const errors: KiloError[] = [];
    kilo.events.on("error", ({ error }) => errors.push(error));
    const bot = await kilo.bots.create({ userId: USER, name: "Crumb" });
    await kilo.skills.importMarkdown(
      bot.id,
      "---\nname: meeting-notes\ndescription: The bot's own notes skill\n---\nOwn version.\n",
    );
    const lastChat = () => provider.requests.filter((r) => r.purpose === "chat").at(-1)!;
    const systemText = () =>
      lastChat()
        .system.map((block) => block.text)
        .join("\n");

    const result = await kilo.chat({
      botId: bot.id,
      userId: USER,
      message: "How do I share pytest fixtures?",
    });
    expect(result.skill?.name).toBe("python-testing");
    expect(result.skill?.id).toMatch(/^wsk_/);
    expect(lastUserText(lastChat())).toContain("Use pytest fixtures for setup.");
    expect(systemText()).toContain("- meeting-notes: The bot's own notes skill");
    expect(systemText()).not.toContain("Workspace notes skill");
    // The broken file is reported once, by path; the other skills still work.
    await kilo.chat({ botId: bot.id, userId: USER, message: "hello" });
    expect(errors.map((error) => error.code)).toEqual(["WORKSPACE_INVALID"]);
    expect(errors[0]?.message).toContain(join(dir, "skills", "broken", "SKILL.md"));

    // Added and removed files are picked up on the next turn.
    await writeFile(
      join(dir, "skills", "oven-care.md"),
      "---\nname: oven-care\ndescription: Looks after the ovens\n---\nClean weekly.\n",
    );
    await kilo.chat({ botId: bot.id, userId: USER, message: "hello again" });
    expect(systemText()).toContain("- oven-care: Looks after the ovens");
    await rm(join(dir, "skills", "python-testing"), { recursive: true });
    await kilo.chat({ botId: bot.id, userId: USER, message: "and again" });
    expect(systemText()).not.toContain("python-testing");
    await kilo.close();
  });

  it("runs workflows/ modules by name, overriding built-in ones, and picks up edits", async () => {
    await mkdir(join(dir, "workflows"));
    await writeFile(
      join(dir, "workflows", "nightly-report.mjs"),
      "export default async (event, ctx) => ({ report: 'v1: ' + event.text, step: await ctx.step('count', () => 3) });\n",
    );
    await writeFile(
      join(dir, "workflows", "message.mjs"),
      "export default async (event) => ({ reply: 'workspace says: ' + event.text });\n",
    );
    const provider = mockProvider({ respond: () => "ok" });
    const kilo = createKilo({
      storage: memoryStorage(),
      providers: [provider],
      workspace: { dir, checkIntervalMs: 0 },
    });
    const errors: KiloError[] = [];
    kilo.events.on("error", ({ error }) => errors.push(error));
    const bot = await kilo.bots.create({ userId: USER, name: "Crumb" });
    const run = async (type: string, text: string) => {
      const { run_id } = await kilo.runs.ingest(
        { schema_version: 1, type, conversation_key: "ws", user_key: USER, text },
        { botId: bot.id },
      );
      return kilo.runs.wait(run_id);
    };

    expect(await run("nightly-report", "monday")).toMatchObject({
      status: "succeeded",
      output: { report: "v1: monday", step: 3 },
    });
    // workflows/message.mjs overrides the built-in message workflow: no model call.
    expect(await run("telegram.message", "hi")).toMatchObject({
      status: "succeeded",
      output: { reply: "workspace says: hi" },
    });
    expect(provider.requests).toEqual([]);

    // An edit is picked up on the next run; a broken edit is reported once and the last good one kept.
    await writeFile(
      join(dir, "workflows", "nightly-report.mjs"),
      "export default async (event) => ({ report: 'v2, longer: ' + event.text });\n",
    );
    expect((await run("nightly-report", "tuesday")).output).toEqual({ report: "v2, longer: tuesday" });
    await writeFile(
      join(dir, "workflows", "nightly-report.mjs"),
      "export default async (event) => {{{ broken\n",
    );
    expect((await run("nightly-report", "wednesday")).output).toEqual({ report: "v2, longer: wednesday" });
    expect((await run("nightly-report", "thursday")).output).toEqual({ report: "v2, longer: thursday" });
    expect(errors.map((error) => error.code)).toEqual(["WORKSPACE_INVALID"]);
    expect(errors[0]?.message).toContain("nightly-report.mjs: cannot be imported");

    // Removing the override brings the built-in message workflow back; an unknown type is refused at ingest.
    await rm(join(dir, "workflows", "message.mjs"));
    expect(await run("message", "hello")).toMatchObject({ status: "succeeded", output: { reply: "ok" } });
    await expect(run("weekly-report", "x")).rejects.toMatchObject({ code: "VALIDATION_FAILED" });
    await kilo.close();
  });
});
