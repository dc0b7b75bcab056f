import { expect } from "vitest";
import type { Skill } from "../domain/skill.js";
import type { SkillSnapshot, SkillVersion } from "../domain/skill-version.js";
import { KiloError, type KiloErrorCode } from "../errors.js";
import type { SkillVersionRepository, Storage, StorageRepositories } from "../ports/storage.js";
import type { RunTestGroup } from "./run-conformance.js";

/**
 * The `skillVersions` group of the storage conformance suite, registered by
 * `runStorageConformance` for adapters that have `storage.skillVersions`.
 *
 * @module
 */

const RUN = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
let counter = 0;
const uid = (prefix: string) => `${prefix}-${RUN}-v${++counter}`;
const at = (seconds: number) => new Date(Date.UTC(2024, 0, 1, 12, 0, seconds));

async function seedSkill(s: StorageRepositories, markdown = false): Promise<Skill> {
  const userId = uid("user");
  await s.users.upsert({ id: userId, name: null, metadata: {}, createdAt: at(0) });
  const bot = await s.bots.create({
    id: uid("bot"),
    userId,
    name: "Versioner",
    soul: null,
    personality: null,
    context: null,
    metadata: {},
    createdAt: at(0),
    updatedAt: at(0),
  });
  return s.skills.create({
    id: uid("skill"),
    botId: bot.id,
    scope: { kind: "bot", id: bot.id },
    name: `Orders ${uid("n")}`,
    description: "Tracks cake orders",
    instructions: markdown ? "" : "Record each order.",
    triggers: ["new order"],
    examples: [],
    dataFields: [],
    requiredIntegrations: [],
    taskType: "skill_execution",
    status: "active",
    metadata: {},
    createdAt: at(0),
    updatedAt: at(0),
    ...(markdown
      ? {
          markdown: {
            body: "# Orders\n\nAsk for the date ✓ \u{1F382}\n",
            license: null,
            compatibility: null,
            allowedTools: [],
            metadata: {},
            category: null,
            resources: [],
          },
        }
      : {}),
  });
}

function snapshotOf(skill: Skill): SkillSnapshot {
  const {
    id: _id,
    botId: _botId,
    scope: _scope,
    createdAt: _createdAt,
    updatedAt: _updatedAt,
    ...content
  } = skill;
  return content;
}

function makeVersion(skill: Skill, version: number, overrides: Partial<SkillVersion> = {}): SkillVersion {
  return {
    id: uid("version"),
    skillId: skill.id,
    botId: skill.botId!,
    scope: skill.scope,
    version,
    snapshot: { ...snapshotOf(skill), description: `version ${version}` },
    author: "user-1",
    reason: `change ${version} — "quoted" ✓`,
    diff: `--- skill.json\n+++ skill.json\n@@ -1 +1 @@\n-a\n+b ${version}\n`,
    origin: null,
    createdAt: at(version),
    ...overrides,
  };
}

const versionsOf = (s: Storage): SkillVersionRepository => s.skillVersions!;

async function codeOf(promise: Promise<unknown>): Promise<KiloErrorCode | string> {
  try {
    await promise;
    return "resolved";
  } catch (error) {
    return KiloError.is(error) ? error.code : String(error);
  }
}

/** Registers the `skillVersions` group: append, numbering, newest-first paging, get, tenancy, cascades, copies. */
export function registerSkillVersionTests(group: RunTestGroup): void {
  group("skillVersions", (test) => {
    test("append stores every field; get reads a version back by its number", async (s) => {
      const skill = await seedSkill(s);
      const first = makeVersion(skill, 1, { reason: null });
      expect(await versionsOf(s).append(first)).toEqual(first);
      expect(await versionsOf(s).get(skill.botId!, skill.id, 1)).toEqual(first);
      expect(await versionsOf(s).get(skill.botId!, skill.id, 2)).toBeNull();
    });

    test("a Markdown skill's snapshot round-trips, body and all", async (s) => {
      const skill = await seedSkill(s, true);
      const version = makeVersion(skill, 1, { snapshot: snapshotOf(skill) });
      await versionsOf(s).append(version);
      expect(await versionsOf(s).get(skill.botId!, skill.id, 1)).toEqual(version);
    });

    test("list returns versions newest first, paged with cursors", async (s) => {
      const skill = await seedSkill(s);
      const all: SkillVersion[] = [];
      for (let number = 1; number <= 5; number++) {
        all.push(await versionsOf(s).append(makeVersion(skill, number)));
      }
      const first = await versionsOf(s).list(skill.botId!, skill.id, { limit: 2 });
      expect(first.items.map((version) => version.version)).toEqual([5, 4]);
      expect(first.nextCursor).not.toBeNull();
      // Appended while walking: the walk stays complete and does not repeat.
      await versionsOf(s).append(makeVersion(skill, 6));
      const second = await versionsOf(s).list(skill.botId!, skill.id, { limit: 2, cursor: first.nextCursor });
      expect(second.items.map((version) => version.version)).toEqual([3, 2]);
      const third = await versionsOf(s).list(skill.botId!, skill.id, { limit: 2, cursor: second.nextCursor });
      expect(third.items).toEqual([all[0]]);
      expect(third.nextCursor).toBeNull();
    });

    test("an invalid cursor is refused with VALIDATION_FAILED", async (s) => {
      const skill = await seedSkill(s);
      await versionsOf(s).append(makeVersion(skill, 1));
      expect(await codeOf(versionsOf(s).list(skill.botId!, skill.id, { limit: 2, cursor: "nope" }))).toBe(
        "VALIDATION_FAILED",
      );
    });

    test("a taken version number or id is refused with CONFLICT, and the stored version stays", async (s) => {
      const skill = await seedSkill(s);
      const first = await versionsOf(s).append(makeVersion(skill, 1));
      expect(await codeOf(versionsOf(s).append(makeVersion(skill, 1, { author: "other" })))).toBe("CONFLICT");
      expect(await codeOf(versionsOf(s).append(makeVersion(skill, 2, { id: first.id })))).toBe("CONFLICT");
      expect((await versionsOf(s).list(skill.botId!, skill.id, { limit: 10 })).items).toEqual([first]);
    });

    test("numbers are per skill: two skills each have a version 1", async (s) => {
      const one = await seedSkill(s);
      const two = await seedSkill(s);
      await versionsOf(s).append(makeVersion(one, 1));
      await versionsOf(s).append(makeVersion(two, 1));
      expect((await versionsOf(s).get(two.botId!, two.id, 1))?.skillId).toBe(two.id);
    });

    test("a version of a missing skill, or of another bot's skill, is refused with NOT_FOUND and invisible", async (s) => {
      const skill = await seedSkill(s);
      const other = await seedSkill(s);
      expect(await codeOf(versionsOf(s).append(makeVersion(skill, 1, { skillId: uid("missing") })))).toBe(
        "NOT_FOUND",
      );
      expect(
        await codeOf(versionsOf(s).append(makeVersion(skill, 1, { botId: other.botId, scope: other.scope }))),
      ).toBe("NOT_FOUND");
      await versionsOf(s).append(makeVersion(skill, 1));
      expect(await versionsOf(s).get(other.botId!, skill.id, 1)).toBeNull();
      expect((await versionsOf(s).list(other.botId!, skill.id, { limit: 10 })).items).toEqual([]);
    });

    test("versions go with their skill and with their bot", async (s) => {
      const skill = await seedSkill(s);
      await versionsOf(s).append(makeVersion(skill, 1));
      expect(await s.skills.delete(skill.botId!, skill.id)).toBe(true);
      expect((await versionsOf(s).list(skill.botId!, skill.id, { limit: 10 })).items).toEqual([]);
      // A skill re-created with the same id starts a fresh history.
      await s.skills.create({ ...skill });
      expect(await versionsOf(s).get(skill.botId!, skill.id, 1)).toBeNull();
      await versionsOf(s).append(makeVersion(skill, 1));
      expect(await s.bots.delete(skill.botId!)).toBe(true);
      expect(await versionsOf(s).get(skill.botId!, skill.id, 1)).toBeNull();
    });

    test("returned versions are copies", async (s) => {
      const skill = await seedSkill(s);
      const version = makeVersion(skill, 1);
      const stored = await versionsOf(s).append(version);
      stored.snapshot.triggers.push("mutated");
      const read = await versionsOf(s).get(skill.botId!, skill.id, 1);
      expect(read).toEqual(version);
      read!.snapshot.triggers.push("mutated");
      expect((await versionsOf(s).list(skill.botId!, skill.id, { limit: 1 })).items[0]).toEqual(version);
    });

    test(
      "an append inside a rolled-back transaction leaves no version",
      async (s) => {
        const skill = await seedSkill(s);
        await s
          .transaction(async (tx) => {
            await tx.skillVersions!.append(makeVersion(skill, 1));
            throw new Error("roll back");
          })
          .catch(() => {});
        expect(await versionsOf(s).get(skill.botId!, skill.id, 1)).toBeNull();
      },
      { requires: "transactions" },
    );
  });
}
