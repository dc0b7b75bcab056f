import { rmSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { gitVolume } from "../../../adapters/volumes/git/index.js";
import { KiloError } from "../../../src/index.js";
import { setup, USER } from "../../kilo/helpers.js";
import { fs, git, handWrite, KILO, skillMarkdown, tempRoot } from "./helpers.js";

const CAKE = skillMarkdown("cake-orders", "# Steps\n\n1. Ask for the cake.\n2. Ask for the day.\n");

/** A kilo on the memory adapter with a git volume; the bot's scope folder on disk. */
async function kiloWithVolume() {
  const root = tempRoot();
  const volume = gitVolume({ root, author: KILO });
  const { kilo } = setup({}, { volume });
  const bot = await kilo.bots.create({ userId: USER, name: "Crumb" });
  return { kilo, volume, bot, dir: volume.directoryOf({ kind: "bot", id: bot.id }) };
}

const log = (dir: string) => git.log({ fs, dir, ref: "main" });

describe("createKilo({ volume }): Markdown skills kept in a git repository per scope", () => {
  it("writes one commit per change, with the change's author and reason", async () => {
    const { kilo, bot, dir } = await kiloWithVolume();
    const { skill } = await kilo.skills.importMarkdown(bot.id, CAKE, { author: "ann", reason: "First cut" });
    await kilo.skills.update(
      bot.id,
      skill.id,
      { description: "Takes and tracks cake orders." },
      { reason: "Clearer" },
    );
    // A structured skill has no SKILL.md: nothing is committed for it.
    await kilo.skills.create(bot.id, {
      name: "Notes",
      description: "Keeps notes",
      instructions: "Keep notes.",
    });

    const commits = await log(dir);
    expect(commits.map((entry) => entry.commit.author.name)).toEqual([USER, "ann"]);
    expect(commits[0]!.commit.message).toContain("Clearer");
    expect(commits[1]!.commit.message).toContain("First cut");
    const onDisk = fs.readFileSync(join(dir, "cake-orders", "SKILL.md"), "utf8");
    expect(onDisk).toContain("description: Takes and tracks cake orders.");
    expect(fs.existsSync(join(dir, "notes"))).toBe(false);

    await kilo.skills.delete(bot.id, skill.id);
    expect(fs.existsSync(join(dir, "cake-orders"))).toBe(false);
    expect(await log(dir)).toHaveLength(3);
    await kilo.close();
  });

  it("reads history from git and rolls back through it, as a new commit and a new skill version", async () => {
    const { kilo, bot } = await kiloWithVolume();
    const { skill } = await kilo.skills.importMarkdown(bot.id, CAKE);
    await kilo.skills.update(bot.id, skill.id, {
      markdown: { ...skill.markdown!, body: "# Steps\n\n1. Just bake it.\n" },
    });

    const history = await kilo.skills.volume.history(bot.id, skill.id);
    expect(history).toHaveLength(2);
    expect(history[0]!.diff).toContain("+1. Just bake it.");
    const restored = await kilo.skills.volume.rollback(bot.id, skill.id, history[1]!.id, { reason: "Undo" });

    expect(restored.markdown?.body).toContain("Ask for the day");
    const after = await kilo.skills.volume.history(bot.id, skill.id);
    expect(after).toHaveLength(3);
    expect(after[0]!.reason).toBe("Undo");
    const versions = await kilo.skills.history(bot.id, skill.id);
    expect(versions.items).toHaveLength(3);
    expect(versions.items[0]!.snapshot).toMatchObject({
      markdown: { body: expect.stringContaining("Ask for the day") },
    });
    await kilo.close();
  });

  it("picks up a repository edited by hand: edits, new folders and deletions become skill versions", async () => {
    const { kilo, bot, dir } = await kiloWithVolume();
    const { skill } = await kilo.skills.importMarkdown(bot.id, CAKE);
    await kilo.skills.importMarkdown(bot.id, skillMarkdown("bread-orders"));
    handWrite(dir, "cake-orders/SKILL.md", skillMarkdown("cake-orders", "# Steps\n\n1. Edited in vim.\n"));
    handWrite(dir, "croissants/SKILL.md", skillMarkdown("croissants", "# Butter\n", "Bakes croissants."));
    rmSync(join(dir, "bread-orders"), { recursive: true });

    const report = await kilo.skills.volume.sync(bot.id);

    expect(report.applied.map((action) => `${action.kind} ${action.name}`).sort()).toEqual([
      "create croissants",
      "delete bread-orders",
      "update cake-orders",
    ]);
    const names = (await kilo.skills.list(bot.id)).map((entry) => entry.name).sort();
    expect(names).toEqual(["cake-orders", "croissants"]);
    expect((await kilo.skills.get(bot.id, skill.id)).markdown?.body).toContain("Edited in vim");
    // The import is a skill version, and it did not write a reformatting commit back.
    expect((await kilo.skills.history(bot.id, skill.id)).items).toHaveLength(2);
    const commits = await log(dir);
    expect(commits[0]!.commit.message).toMatch(/Pick up/i);
    // Nothing new on a second sync.
    expect((await kilo.skills.volume.sync(bot.id)).applied).toHaveLength(0);
    await kilo.close();
  });

  it("mirrors an approved promotion into the target scope's repository", async () => {
    const root = tempRoot();
    const volume = gitVolume({ root, author: KILO });
    const { kilo } = setup({}, { volume });
    const bot = await kilo.bots.create({ userId: USER, name: "Crumb" });
    const { skill } = await kilo.skills.importMarkdown(bot.id, CAKE);
    const request = await kilo.skills.promotions.request(bot.id, skill.id, {
      to: { kind: "system" },
      reason: "Every bakery needs it",
      requestedBy: USER,
    });
    await kilo.skills.promotions.approve(request.id, { reviewer: "ops" });
    const commits = await log(volume.directoryOf({ kind: "system" }));
    expect(commits).toHaveLength(1);
    expect(commits[0]!.commit.author.name).toBe("ops");
    await kilo.close();
  });

  it("says how to configure a volume when there is none", async () => {
    const { kilo } = setup({});
    const bot = await kilo.bots.create({ userId: USER, name: "Crumb" });
    await expect(kilo.skills.volume.sync(bot.id)).rejects.toSatisfy(
      (error) =>
        KiloError.is(error, "CONFIGURATION_INVALID") && /createKilo\(\{ volume \}\)/.test(error.message),
    );
    await kilo.close();
  });
});
