import { expect } from "vitest";
import type { Bot } from "../domain/bot.js";
import type { SkillScope } from "../domain/scope.js";
import type { Skill, SkillRecord } from "../domain/skill.js";
import type { SkillPromotion } from "../domain/skill-promotion.js";
import type { SkillVersion } from "../domain/skill-version.js";
import type { Team, TeamMember } from "../domain/team.js";
import { KiloError, type KiloErrorCode } from "../errors.js";
import type { Storage, StorageRepositories } from "../ports/storage.js";
import type { RunTestGroup } from "./run-conformance.js";

/**
 * The `teams`, `scoped skills` and `skillPromotions` groups of the storage
 * conformance suite, registered by `runStorageConformance` for adapters
 * that have `teams` and `teamMembers`, `skills.listByScopes`, and
 * `skillPromotions` respectively.
 *
 * @module
 */

const RUN = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
let counter = 0;
const uid = (prefix: string) => `${prefix}-${RUN}-s${++counter}`;
const at = (seconds: number) => new Date(Date.UTC(2024, 0, 1, 12, 0, 0) + seconds * 1000);

async function codeOf(promise: Promise<unknown>): Promise<KiloErrorCode | string> {
  try {
    await promise;
    return "resolved";
  } catch (error) {
    return KiloError.is(error) ? error.code : String(error);
  }
}

function makeTeam(overrides: Partial<Team> = {}): Team {
  return {
    id: uid("team"),
    name: "Bakers ✓ \u{1F35E}",
    metadata: { plan: "pro", nested: { on: true } },
    createdAt: at(0),
    updatedAt: at(0),
    ...overrides,
  };
}

function makeMember(teamId: string, overrides: Partial<TeamMember> = {}): TeamMember {
  return { teamId, userId: uid("user"), role: "member", createdAt: at(0), updatedAt: at(0), ...overrides };
}

async function makeBot(s: StorageRepositories, overrides: Partial<Bot> = {}): Promise<Bot> {
  const userId = overrides.userId ?? uid("user");
  await s.users.upsert({ id: userId, name: null, metadata: {}, createdAt: at(0) });
  return s.bots.create({
    id: uid("bot"),
    userId,
    name: "Scoped",
    soul: null,
    personality: null,
    context: null,
    metadata: {},
    createdAt: at(0),
    updatedAt: at(0),
    ...overrides,
  });
}

function makeSkill(scope: SkillScope, overrides: Partial<Skill> = {}): Skill {
  return {
    id: uid("skill"),
    botId: scope.kind === "bot" ? scope.id : null,
    scope,
    name: `Orders ${uid("n")}`,
    description: "Tracks cake orders",
    instructions: "Record each order.",
    triggers: ["new order"],
    examples: [],
    dataFields: [{ name: "customer", type: "string", description: "", required: true }],
    requiredIntegrations: [],
    taskType: "skill_execution",
    status: "active",
    metadata: { source: "conformance" },
    createdAt: at(0),
    updatedAt: at(0),
    ...overrides,
  };
}

function makeRecord(botId: string, skillId: string, overrides: Partial<SkillRecord> = {}): SkillRecord {
  return {
    id: uid("record"),
    botId,
    skillId,
    data: { customer: "Ada" },
    createdAt: at(0),
    updatedAt: at(0),
    ...overrides,
  };
}

function makeVersion(skill: Skill, version: number, overrides: Partial<SkillVersion> = {}): SkillVersion {
  const { id: _id, botId: _botId, scope: _scope, createdAt: _c, updatedAt: _u, ...snapshot } = skill;
  return {
    id: uid("version"),
    skillId: skill.id,
    botId: skill.botId,
    scope: skill.scope,
    version,
    snapshot,
    author: "user-1",
    reason: null,
    diff: "--- skill.json\n+++ skill.json\n",
    origin: null,
    createdAt: at(version),
    ...overrides,
  };
}

function makePromotion(
  skill: Skill,
  to: SkillScope,
  overrides: Partial<SkillPromotion> = {},
): SkillPromotion {
  const { id: _id, botId: _botId, scope: _scope, createdAt: _c, updatedAt: _u, ...snapshot } = skill;
  return {
    id: uid("promotion"),
    skillId: skill.id,
    skillName: skill.name,
    from: skill.scope,
    to,
    sourceVersion: 3,
    snapshot,
    targetSkillId: null,
    targetVersion: null,
    diff: `--- (none)\n+++ skill.json\n@@ -0,0 +1 @@\n+"quoted" ✓ \u{1F382}\n`,
    reason: 'Everyone takes orders — "really"',
    requestedBy: "alice",
    status: "pending",
    reviewer: null,
    reviewNote: null,
    resultSkillId: null,
    createdAt: at(0),
    decidedAt: null,
    ...overrides,
  };
}

const teamsOf = (s: StorageRepositories) => ({ teams: s.teams!, members: s.teamMembers! });
const byId = <T extends { id: string }>(items: T[], ids: string[]) =>
  items.filter((item) => ids.includes(item.id));

/** Registers the `teams` group: teams, memberships, bots in teams and what a team's deletion takes with it. */
export function registerTeamTests(group: RunTestGroup): void {
  group("teams", (test) => {
    test("create stores every field; get reads it back, or null", async (s) => {
      const team = makeTeam();
      expect(await teamsOf(s).teams.create(team)).toEqual(team);
      expect(await teamsOf(s).teams.get(team.id)).toEqual(team);
      expect(await teamsOf(s).teams.get(uid("missing"))).toBeNull();
    });

    test("a taken id is refused with CONFLICT", async (s) => {
      const team = await teamsOf(s).teams.create(makeTeam());
      expect(await codeOf(teamsOf(s).teams.create(makeTeam({ id: team.id, name: "Other" })))).toBe(
        "CONFLICT",
      );
      expect((await teamsOf(s).teams.get(team.id))?.name).toBe(team.name);
    });

    test("list walks every team once, oldest first", async (s) => {
      const made: Team[] = [];
      for (const second of [30, 10, 20])
        made.push(await teamsOf(s).teams.create(makeTeam({ createdAt: at(second) })));
      const seen: Team[] = [];
      let cursor: string | null = null;
      do {
        const page = await teamsOf(s).teams.list({ limit: 2, cursor });
        expect(page.items.length).toBeLessThanOrEqual(2);
        seen.push(...page.items);
        cursor = page.nextCursor;
      } while (cursor);
      const mine = byId(
        seen,
        made.map((team) => team.id),
      );
      expect(mine.map((team) => team.createdAt)).toEqual([at(10), at(20), at(30)]);
      expect(new Set(seen.map((team) => team.id)).size).toBe(seen.length);
    });

    test("update replaces the team; a missing one returns null", async (s) => {
      const team = await teamsOf(s).teams.create(makeTeam());
      const renamed = { ...team, name: "Pastry", metadata: {}, updatedAt: at(5) };
      expect(await teamsOf(s).teams.update(renamed)).toEqual(renamed);
      expect(await teamsOf(s).teams.get(team.id)).toEqual(renamed);
      expect(await teamsOf(s).teams.update(makeTeam())).toBeNull();
    });

    test("save inserts a membership, then changes its role and keeps when it began", async (s) => {
      const team = await teamsOf(s).teams.create(makeTeam());
      const member = makeMember(team.id);
      expect(await teamsOf(s).members.save(member)).toEqual(member);
      const promoted = await teamsOf(s).members.save({
        ...member,
        role: "admin",
        createdAt: at(9),
        updatedAt: at(9),
      });
      expect(promoted).toEqual({ ...member, role: "admin", updatedAt: at(9) });
      expect(await teamsOf(s).members.get(team.id, member.userId)).toEqual(promoted);
      expect(await teamsOf(s).members.get(team.id, uid("nobody"))).toBeNull();
    });

    test("a membership of a missing team is refused with NOT_FOUND", async (s) => {
      expect(await codeOf(teamsOf(s).members.save(makeMember(uid("missing"))))).toBe("NOT_FOUND");
    });

    test("listByTeam and listByUser return memberships oldest first; delete removes one", async (s) => {
      const one = await teamsOf(s).teams.create(makeTeam());
      const two = await teamsOf(s).teams.create(makeTeam());
      const userId = uid("user");
      const late = await teamsOf(s).members.save(
        makeMember(one.id, { createdAt: at(20), updatedAt: at(20) }),
      );
      const early = await teamsOf(s).members.save(
        makeMember(one.id, { userId, createdAt: at(10), updatedAt: at(10) }),
      );
      const other = await teamsOf(s).members.save(
        makeMember(two.id, { userId, role: "admin", createdAt: at(30) }),
      );
      expect(await teamsOf(s).members.listByTeam(one.id)).toEqual([early, late]);
      expect(await teamsOf(s).members.listByUser(userId)).toEqual([early, other]);
      expect(await teamsOf(s).members.delete(one.id, userId)).toBe(true);
      expect(await teamsOf(s).members.delete(one.id, userId)).toBe(false);
      expect(await teamsOf(s).members.listByTeam(one.id)).toEqual([late]);
      expect(await teamsOf(s).members.listByUser(userId)).toEqual([other]);
    });

    test("a bot's team round-trips; an unknown team is refused with NOT_FOUND; leaving clears it", async (s) => {
      const team = await teamsOf(s).teams.create(makeTeam());
      const bot = await makeBot(s, { teamId: team.id });
      expect((await s.bots.get(bot.id))?.teamId).toBe(team.id);
      expect(await codeOf(makeBot(s, { teamId: uid("missing") }))).toBe("NOT_FOUND");
      const { teamId: _teamId, ...alone } = bot;
      expect(await s.bots.update({ ...alone, updatedAt: at(3) })).toEqual({ ...alone, updatedAt: at(3) });
      expect((await s.bots.get(bot.id))?.teamId ?? null).toBeNull();
    });

    test("a bot written without a team reads back without one", async (s) => {
      const bot = await makeBot(s);
      expect(await s.bots.get(bot.id)).toEqual(bot);
    });

    test("delete takes the team's members and skills (with their versions and records) and frees its bots", async (s) => {
      const team = await teamsOf(s).teams.create(makeTeam());
      const kept = await teamsOf(s).teams.create(makeTeam());
      const member = await teamsOf(s).members.save(makeMember(team.id));
      const bot = await makeBot(s, { userId: member.userId, teamId: team.id });
      const skill = await s.skills.create(makeSkill({ kind: "team", id: team.id }));
      const keptSkill = await s.skills.create(makeSkill({ kind: "team", id: kept.id }));
      await s.skillRecords.create(makeRecord(bot.id, skill.id));
      if (s.skillVersions) await s.skillVersions.append(makeVersion(skill, 1));

      expect(await teamsOf(s).teams.delete(team.id)).toBe(true);
      expect(await teamsOf(s).teams.delete(team.id)).toBe(false);
      expect(await teamsOf(s).teams.get(team.id)).toBeNull();
      expect(await teamsOf(s).members.listByTeam(team.id)).toEqual([]);
      expect(await s.skills.get({ kind: "team", id: team.id }, skill.id)).toBeNull();
      expect((await s.skillRecords.query(bot.id, skill.id, {}, { limit: 10 })).items).toEqual([]);
      if (s.skillVersions) {
        expect(await s.skillVersions.get({ kind: "team", id: team.id }, skill.id, 1)).toBeNull();
      }
      expect((await s.bots.get(bot.id))?.teamId ?? null).toBeNull();
      expect(await s.skills.get({ kind: "team", id: kept.id }, keptSkill.id)).toEqual(keptSkill);
    });

    test("returned teams and memberships are copies", async (s) => {
      const team = makeTeam();
      const stored = await teamsOf(s).teams.create(team);
      (stored.metadata as Record<string, unknown>).plan = "mutated";
      const read = await teamsOf(s).teams.get(team.id);
      expect(read).toEqual(team);
      (read!.metadata as Record<string, unknown>).plan = "mutated";
      expect(await teamsOf(s).teams.get(team.id)).toEqual(team);
      const member = makeMember(team.id);
      const saved = await teamsOf(s).members.save(member);
      saved.role = "admin";
      expect(await teamsOf(s).members.get(team.id, member.userId)).toEqual(member);
    });
  });
}

/** Registers the `scoped skills` group: skills of every scope, names per scope, records per bot, versions per scope. */
export function registerScopedSkillTests(group: RunTestGroup, hasTeams: boolean, hasVersions: boolean): void {
  group("scoped skills", (test) => {
    const seedScopes = async (s: Storage) => {
      const bot = await makeBot(s);
      const scopes: SkillScope[] = [{ kind: "system" }];
      if (hasTeams) {
        const team = await s.teams!.create(makeTeam());
        scopes.push({ kind: "team", id: team.id });
      }
      scopes.push({ kind: "user", id: bot.userId }, { kind: "bot", id: bot.id });
      return { bot, scopes };
    };

    test("a skill of each scope is stored in it and read back only through it", async (s) => {
      const { scopes } = await seedScopes(s);
      for (const scope of scopes) {
        const skill = makeSkill(scope);
        expect(await s.skills.create(skill)).toEqual(skill);
        expect(await s.skills.get(scope, skill.id)).toEqual(skill);
        for (const other of scopes.filter((candidate) => candidate !== scope)) {
          expect(await s.skills.get(other, skill.id)).toBeNull();
        }
      }
    });

    test("a bot id and its bot scope name the same skills", async (s) => {
      const { bot } = await seedScopes(s);
      const skill = await s.skills.create(makeSkill({ kind: "bot", id: bot.id }));
      expect(await s.skills.get(bot.id, skill.id)).toEqual(skill);
      expect(await s.skills.listByBot(bot.id)).toEqual([skill]);
    });

    test("listByScopes returns the scopes in the order given, each oldest first; listByBot only the bot's own", async (s) => {
      const { bot, scopes } = await seedScopes(s);
      const made = new Map<string, Skill[]>();
      for (const [index, scope] of scopes.entries()) {
        const later = await s.skills.create(makeSkill(scope, { createdAt: at(100 - index) }));
        const earlier = await s.skills.create(makeSkill(scope, { createdAt: at(10 - index) }));
        made.set(JSON.stringify(scope), [earlier, later]);
      }
      const own = scopes.filter((scope) => scope.kind !== "system");
      const listed = await s.skills.listByScopes!([...own].reverse());
      expect(listed).toEqual([...own].reverse().flatMap((scope) => made.get(JSON.stringify(scope))!));
      const system = await s.skills.listByScopes!([{ kind: "system" }]);
      const systemIds = made.get(JSON.stringify({ kind: "system" }))!.map((skill) => skill.id);
      expect(byId(system, systemIds)).toEqual(made.get(JSON.stringify({ kind: "system" })));
      expect(await s.skills.listByBot(bot.id)).toEqual(made.get(JSON.stringify({ kind: "bot", id: bot.id })));
      expect(await s.skills.listByScopes!([])).toEqual([]);
    });

    test("names are unique per scope (case-insensitive) and may repeat across scopes", async (s) => {
      const { scopes } = await seedScopes(s);
      const user = scopes.find((scope) => scope.kind === "user")!;
      const bot = scopes.find((scope) => scope.kind === "bot")!;
      const name = `Shared ${uid("n")}`;
      await s.skills.create(makeSkill(user, { name }));
      await s.skills.create(makeSkill(bot, { name }));
      expect(await codeOf(s.skills.create(makeSkill(user, { name: name.toUpperCase() })))).toBe("CONFLICT");
    });

    if (hasTeams) {
      test("a team skill of a missing team is refused with NOT_FOUND", async (s) => {
        expect(await codeOf(s.skills.create(makeSkill({ kind: "team", id: uid("missing") })))).toBe(
          "NOT_FOUND",
        );
      });
    }

    test("update and delete act within the scope named", async (s) => {
      const { scopes } = await seedScopes(s);
      const user = scopes.find((scope) => scope.kind === "user")!;
      const skill = await s.skills.create(makeSkill(user));
      const taken = await s.skills.create(makeSkill(user));
      const changed = { ...skill, description: "Changed", updatedAt: at(5) };
      expect(await s.skills.update(changed)).toEqual(changed);
      expect(await s.skills.get(user, skill.id)).toEqual(changed);
      expect(await s.skills.update({ ...changed, scope: { kind: "system" }, botId: null })).toBeNull();
      expect(await codeOf(s.skills.update({ ...changed, name: taken.name }))).toBe("CONFLICT");
      expect(await s.skills.delete({ kind: "system" }, skill.id)).toBe(false);
      expect(await s.skills.delete(user, skill.id)).toBe(true);
      expect(await s.skills.get(user, skill.id)).toBeNull();
    });

    test("each bot keeps its own records under a shared skill; deleting the skill takes every bot's", async (s) => {
      const { bot, scopes } = await seedScopes(s);
      const other = await makeBot(s);
      const shared = await s.skills.create(makeSkill(scopes[0]!));
      const mine = await s.skillRecords.create(makeRecord(bot.id, shared.id, { data: { customer: "Mine" } }));
      const theirs = await s.skillRecords.create(
        makeRecord(other.id, shared.id, { data: { customer: "Theirs" } }),
      );
      expect((await s.skillRecords.query(bot.id, shared.id, {}, { limit: 10 })).items).toEqual([mine]);
      expect((await s.skillRecords.query(other.id, shared.id, {}, { limit: 10 })).items).toEqual([theirs]);
      expect(await s.skillRecords.get(other.id, shared.id, mine.id)).toBeNull();
      expect(await s.skills.delete({ kind: "system" }, shared.id)).toBe(true);
      expect(await s.skillRecords.get(bot.id, shared.id, mine.id)).toBeNull();
      expect(await s.skillRecords.get(other.id, shared.id, theirs.id)).toBeNull();
    });

    test("a bot cannot keep records under another bot's own skill", async (s) => {
      const { bot } = await seedScopes(s);
      const other = await makeBot(s);
      const theirs = await s.skills.create(makeSkill({ kind: "bot", id: other.id }));
      expect(await codeOf(s.skillRecords.create(makeRecord(bot.id, theirs.id)))).toBe("NOT_FOUND");
      expect(await codeOf(s.skillRecords.create(makeRecord(uid("ghost"), theirs.id)))).toBe("NOT_FOUND");
    });

    test("deleting a bot takes its records under shared skills and leaves other bots' alone", async (s) => {
      const { bot } = await seedScopes(s);
      const other = await makeBot(s);
      const shared = await s.skills.create(makeSkill({ kind: "user", id: bot.userId }));
      const mine = await s.skillRecords.create(makeRecord(bot.id, shared.id));
      const theirs = await s.skillRecords.create(makeRecord(other.id, shared.id));
      expect(await s.bots.delete(bot.id)).toBe(true);
      expect(await s.skillRecords.get(bot.id, shared.id, mine.id)).toBeNull();
      expect(await s.skillRecords.get(other.id, shared.id, theirs.id)).toEqual(theirs);
      expect(await s.skills.get({ kind: "user", id: bot.userId }, shared.id)).toEqual(shared);
    });

    if (hasVersions) {
      test("versions of a shared skill are kept and read through its scope only", async (s) => {
        const versions = s.skillVersions!;
        const { scopes } = await seedScopes(s);
        const scope = scopes[scopes.length - 2]!;
        const skill = await s.skills.create(makeSkill(scope));
        const origin = {
          scope: { kind: "user" as const, id: "alice" },
          skillId: "s-1",
          version: 2,
          promotionId: "p-1",
        };
        const first = await versions.append(makeVersion(skill, 1, { origin }));
        const second = await versions.append(makeVersion(skill, 2));
        expect(await versions.get(scope, skill.id, 1)).toEqual(first);
        expect((await versions.list(scope, skill.id, { limit: 10 })).items).toEqual([second, first]);
        expect(await versions.get({ kind: "system" }, skill.id, 1)).toBeNull();
        expect((await versions.list({ kind: "system" }, skill.id, { limit: 10 })).items).toEqual([]);
        expect(
          await codeOf(versions.append(makeVersion(skill, 3, { scope: { kind: "system" }, botId: null }))),
        ).toBe("NOT_FOUND");
      });
    }
  });
}

/** Registers the `skillPromotions` group: create, get, filtered newest-first paging and the atomic decision. */
export function registerSkillPromotionTests(group: RunTestGroup): void {
  group("skillPromotions", (test) => {
    const repository = (s: StorageRepositories) => s.skillPromotions!;
    const source = () => makeSkill({ kind: "user", id: uid("user") });

    test("create stores every field; get reads it back, or null", async (s) => {
      const promotion = makePromotion(
        source(),
        { kind: "team", id: uid("team") },
        { targetSkillId: "s-9", targetVersion: 4 },
      );
      expect(await repository(s).create(promotion)).toEqual(promotion);
      expect(await repository(s).get(promotion.id)).toEqual(promotion);
      expect(await repository(s).get(uid("missing"))).toBeNull();
      const none = makePromotion(source(), { kind: "system" }, { sourceVersion: null });
      await repository(s).create(none);
      expect(await repository(s).get(none.id)).toEqual(none);
    });

    test("a taken id is refused with CONFLICT", async (s) => {
      const promotion = await repository(s).create(makePromotion(source(), { kind: "system" }));
      expect(await codeOf(repository(s).create({ ...promotion, reason: "again" }))).toBe("CONFLICT");
    });

    test("list filters by status, target, source and skill, newest first, paged", async (s) => {
      const team: SkillScope = { kind: "team", id: uid("team") };
      const skill = source();
      const made: SkillPromotion[] = [];
      for (const second of [10, 30, 20]) {
        made.push(await repository(s).create(makePromotion(skill, team, { createdAt: at(second) })));
      }
      const elsewhere = await repository(s).create(makePromotion(source(), team, { createdAt: at(40) }));
      const seen: SkillPromotion[] = [];
      let cursor: string | null = null;
      do {
        const page = await repository(s).list({ to: team }, { limit: 2, cursor });
        seen.push(...page.items);
        cursor = page.nextCursor;
      } while (cursor);
      expect(seen.map((promotion) => promotion.createdAt)).toEqual([at(40), at(30), at(20), at(10)]);
      const bySkill = await repository(s).list({ skillId: skill.id, to: team }, { limit: 10 });
      expect(bySkill.items.map((promotion) => promotion.id)).toEqual([made[1]!.id, made[2]!.id, made[0]!.id]);
      const bySource = await repository(s).list({ from: elsewhere.from }, { limit: 10 });
      expect(bySource.items).toEqual([elsewhere]);
      await repository(s).decide(made[0]!.id, {
        status: "rejected",
        reviewer: "bob",
        reviewNote: "no",
        resultSkillId: null,
        decidedAt: at(50),
      });
      const pending = await repository(s).list({ to: team, status: "pending" }, { limit: 10 });
      expect(pending.items.map((promotion) => promotion.id)).toEqual([
        elsewhere.id,
        made[1]!.id,
        made[2]!.id,
      ]);
      expect(await codeOf(repository(s).list({ to: team }, { limit: 2, cursor: "nope" }))).toBe(
        "VALIDATION_FAILED",
      );
    });

    test("decide sets the outcome once; a second decision is refused with CONFLICT; a missing request is null", async (s) => {
      const promotion = await repository(s).create(makePromotion(source(), { kind: "system" }));
      const decision = {
        status: "approved" as const,
        reviewer: "host ✓",
        reviewNote: "ship it",
        resultSkillId: "skill-new",
        decidedAt: at(9),
      };
      const decided = await repository(s).decide(promotion.id, decision);
      expect(decided).toEqual({ ...promotion, ...decision });
      expect(await repository(s).get(promotion.id)).toEqual(decided);
      expect(
        await codeOf(
          repository(s).decide(promotion.id, { ...decision, status: "rejected", resultSkillId: null }),
        ),
      ).toBe("CONFLICT");
      expect(await repository(s).get(promotion.id)).toEqual(decided);
      expect(await repository(s).decide(uid("missing"), decision)).toBeNull();
    });

    test(
      "a decision inside a rolled-back transaction leaves the request pending",
      async (s) => {
        const promotion = await repository(s).create(makePromotion(source(), { kind: "system" }));
        await s
          .transaction(async (tx) => {
            await tx.skillPromotions!.decide(promotion.id, {
              status: "approved",
              reviewer: "host",
              reviewNote: null,
              resultSkillId: null,
              decidedAt: at(1),
            });
            throw new Error("roll back");
          })
          .catch(() => {});
        expect((await repository(s).get(promotion.id))?.status).toBe("pending");
      },
      { requires: "transactions" },
    );
  });
}
