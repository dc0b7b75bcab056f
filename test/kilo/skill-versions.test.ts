import { describe, expect, it } from "vitest";
import { memoryStorage } from "../../adapters/storage/memory/index.js";
import type { Storage } from "../../src/index.js";
import { kiloFailure, ORDER_TRACKER } from "../fixtures.js";
import { setup, USER } from "./helpers.js";

const SKILL_MD = `---
name: release-notes
description: Writes release notes from a list of merged changes.
metadata:
  keywords: release notes, changelog
---

# Release notes

Group the changes by kind.
List breaking changes first.
`;

async function withBot(options: Parameters<typeof setup>[1] = {}) {
  const { kilo } = setup({ chat: ["ok"] }, options);
  const bot = await kilo.bots.create({ userId: USER, name: "Crumb" });
  return { kilo, bot };
}

describe("skill versions", () => {
  it("records a version per change with author, reason and a diff of the changed lines", async () => {
    const { kilo, bot } = await withBot();
    const skill = await kilo.skills.create(bot.id, ORDER_TRACKER, { reason: "first cut" });
    await kilo.skills.update(
      bot.id,
      skill.id,
      { instructions: "Store each new order. Confirm the pickup day." },
      { author: "user_2", reason: "confirm pickups" },
    );
    await kilo.skills.update(
      bot.id,
      skill.id,
      { status: "disabled" },
      { author: "system", reason: "paused" },
    );

    const { items, nextCursor } = await kilo.skills.history(bot.id, skill.id);
    expect(nextCursor).toBeNull();
    expect(items.map(({ version, author, reason }) => ({ version, author, reason }))).toEqual([
      { version: 3, author: "system", reason: "paused" },
      { version: 2, author: "user_2", reason: "confirm pickups" },
      // The default author is the bot's owner.
      { version: 1, author: USER, reason: "first cut" },
    ]);
    const [third, second, first] = items;
    expect(first!.diff).toContain('+  "name": "Order Tracker",');
    expect(second!.diff).toContain(
      '-  "instructions": "Store each new order. Answer from stored orders only.",',
    );
    expect(second!.diff).toContain('+  "instructions": "Store each new order. Confirm the pickup day.",');
    expect(second!.diff).toContain("--- skill.json\tversion 1");
    expect(second!.diff).not.toMatch(/^[-+] {2}"status"/m);
    expect(third!.diff).toContain('-  "status": "active",');
    expect(third!.diff).toContain('+  "status": "disabled",');
    expect(third!.snapshot.status).toBe("disabled");
    expect(first!.createdAt.getTime()).toBeLessThan(third!.createdAt.getTime());
    expect(await kilo.skills.version(bot.id, skill.id, 2)).toEqual(second);
  });

  it("pages the history newest first", async () => {
    const { kilo, bot } = await withBot();
    const skill = await kilo.skills.create(bot.id, ORDER_TRACKER);
    for (const n of [1, 2, 3]) await kilo.skills.update(bot.id, skill.id, { triggers: [`order ${n}`] });
    const first = await kilo.skills.history(bot.id, skill.id, { limit: 3 });
    const rest = await kilo.skills.history(bot.id, skill.id, { limit: 3, cursor: first.nextCursor });
    expect([...first.items, ...rest.items].map((version) => version.version)).toEqual([4, 3, 2, 1]);
    expect(rest.nextCursor).toBeNull();
  });

  it("rolls back as a new version equal in content to the old one", async () => {
    const { kilo, bot } = await withBot();
    const skill = await kilo.skills.create(bot.id, ORDER_TRACKER);
    await kilo.skills.update(bot.id, skill.id, { name: "Orders", triggers: ["orders"] });
    await kilo.skills.update(bot.id, skill.id, { description: "Changed again." });

    const restored = await kilo.skills.rollback(bot.id, skill.id, 1, { author: "user_2" });
    expect(restored).toMatchObject({ id: skill.id, name: "Order Tracker", triggers: skill.triggers });
    expect(await kilo.skills.get(bot.id, skill.id)).toEqual(restored);

    const { items } = await kilo.skills.history(bot.id, skill.id);
    expect(items.map((version) => version.version)).toEqual([4, 3, 2, 1]);
    const [fourth, , , first] = items;
    expect(fourth!.snapshot).toEqual(first!.snapshot);
    expect(fourth).toMatchObject({ author: "user_2", reason: "Rollback to version 1" });
    expect(fourth!.diff).toContain('-  "name": "Orders",');
    expect(fourth!.diff).toContain('+  "name": "Order Tracker",');
  });

  it("refuses a rollback whose name is now taken, changing nothing", async () => {
    const { kilo, bot } = await withBot();
    const skill = await kilo.skills.create(bot.id, ORDER_TRACKER);
    const renamed = await kilo.skills.update(bot.id, skill.id, { name: "Orders" });
    await kilo.skills.create(bot.id, { ...ORDER_TRACKER, name: "order tracker" });

    const error = await kiloFailure(kilo.skills.rollback(bot.id, skill.id, 1));
    expect(error.code).toBe("VALIDATION_FAILED");
    expect(error.message).toMatch(/order tracker/i);
    expect(await kilo.skills.get(bot.id, skill.id)).toEqual(renamed);
    expect((await kilo.skills.history(bot.id, skill.id)).items).toHaveLength(2);
  });

  it("answers NOT_FOUND for an unknown version and for another bot's skill", async () => {
    const { kilo, bot } = await withBot();
    const other = await kilo.bots.create({ userId: "user_2", name: "Other" });
    const skill = await kilo.skills.create(bot.id, ORDER_TRACKER);
    expect((await kiloFailure(kilo.skills.version(bot.id, skill.id, 2))).code).toBe("NOT_FOUND");
    expect((await kiloFailure(kilo.skills.rollback(bot.id, skill.id, 7))).code).toBe("NOT_FOUND");
    expect((await kiloFailure(kilo.skills.history(other.id, skill.id))).code).toBe("NOT_FOUND");
    expect((await kiloFailure(kilo.skills.version(other.id, skill.id, 1))).code).toBe("NOT_FOUND");
    expect((await kiloFailure(kilo.skills.rollback(other.id, skill.id, 1))).code).toBe("NOT_FOUND");
    expect((await kiloFailure(kilo.skills.version(bot.id, skill.id, 0))).code).toBe("VALIDATION_FAILED");
  });

  it("diffs a Markdown skill as its SKILL.md", async () => {
    const { kilo, bot } = await withBot();
    const { skill } = await kilo.skills.importMarkdown(bot.id, SKILL_MD, { reason: "imported" });
    const markdown = skill.markdown!;
    await kilo.skills.update(
      bot.id,
      skill.id,
      {
        markdown: {
          ...markdown,
          body: markdown.body.replace("List breaking changes first.", "Link each change."),
        },
      },
      { reason: "link changes" },
    );
    const { items } = await kilo.skills.history(bot.id, skill.id);
    const [second, first] = items;
    expect(first).toMatchObject({ version: 1, author: USER, reason: "imported" });
    expect(first!.diff).toContain("+name: release-notes");
    expect(second!.diff).toContain("--- SKILL.md\tversion 1");
    expect(second!.diff).toContain("-List breaking changes first.");
    expect(second!.diff).toContain("+Link each change.");
    expect(second!.diff).not.toContain("name: release-notes");

    await kilo.skills.rollback(bot.id, skill.id, 1);
    expect((await kilo.skills.get(bot.id, skill.id)).markdown?.body).toContain(
      "List breaking changes first.",
    );
  });

  it("works without history on a storage that keeps no versions, and says so", async () => {
    const { skillVersions: _dropped, ...rest } = memoryStorage();
    const storage = rest as Storage;
    const { kilo, bot } = await withBot({ storage });
    const skill = await kilo.skills.create(bot.id, ORDER_TRACKER);
    const updated = await kilo.skills.update(bot.id, skill.id, { status: "draft" });
    expect(updated.status).toBe("draft");
    const error = await kiloFailure(kilo.skills.history(bot.id, skill.id));
    expect(error.code).toBe("CONFIGURATION_INVALID");
    expect(error.message).toMatch(/keeps no skill versions/);
  });
});
