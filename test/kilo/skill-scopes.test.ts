import { describe, expect, it } from "vitest";
import type { CreateSkillInput, Kilo, SkillScope } from "../../src/index.js";
import { kiloFailure, ORDER_TRACKER } from "../fixtures.js";
import { classify, setup } from "./helpers.js";

const ALICE = { userId: "alice" };
const BOB = { userId: "bob" };
const CAROL = { userId: "carol" };

const PRICING: CreateSkillInput = {
  name: "Pricing",
  description: "Quotes prices for cakes.",
  instructions: "Quote from the price list.",
  triggers: ["price", "how much"],
};

const GREETING: CreateSkillInput = {
  name: "Greeting",
  description: "Greets customers.",
  instructions: "Say hello warmly.",
  triggers: ["hello"],
};

/** A kilo with team "bakers" (bob its admin, alice a member) and a bot of alice's in it. */
async function bakery(script: Parameters<typeof setup>[0] = { chat: ["ok"] }) {
  const { kilo, provider } = setup(script);
  const team = await kilo.teams.create({ id: "bakers", name: "Bakers" }, { actor: BOB });
  await kilo.teams.addMember(team.id, { userId: "alice" }, { actor: BOB });
  const bot = await kilo.bots.create({ userId: "alice", name: "Crumb", teamId: team.id });
  const teamScope: SkillScope = { kind: "team", id: team.id };
  return { kilo, provider, team, bot, teamScope };
}

const versionsOf = async (kilo: Kilo, owner: string | SkillScope, skillId: string) =>
  (await kilo.skills.history(owner, skillId, { limit: 100 })).items;

describe("skill scopes: what a bot sees", () => {
  it("merges system, team, owner and bot skills; the most specific wins a name clash and says what it shadows", async () => {
    const { kilo, bot, teamScope } = await bakery();
    const system = await kilo.skills.create({ kind: "system" }, GREETING);
    const teamOrders = await kilo.skills.create(teamScope, ORDER_TRACKER, { actor: BOB });
    const teamPricing = await kilo.skills.create(teamScope, PRICING, { actor: BOB });
    const userPricing = await kilo.skills.create({ kind: "user", id: "alice" }, PRICING, { actor: ALICE });
    const botOrders = await kilo.skills.create(bot.id, { ...ORDER_TRACKER, name: "order tracker" });

    const effective = await kilo.skills.effective(bot.id);
    expect(effective.map(({ skill }) => [skill.name, skill.scope])).toEqual([
      ["Greeting", { kind: "system" }],
      ["Pricing", { kind: "user", id: "alice" }],
      ["order tracker", { kind: "bot", id: bot.id }],
    ]);
    expect(effective.map(({ skill }) => skill.id)).toEqual([system.id, userPricing.id, botOrders.id]);
    expect(effective[1]!.shadows).toEqual([{ id: teamPricing.id, name: "Pricing", scope: teamScope }]);
    expect(effective[2]!.shadows).toEqual([{ id: teamOrders.id, name: "Order Tracker", scope: teamScope }]);
    expect(effective[0]!.shadows).toEqual([]);
    // The bot's own list is its own skills only, as before scopes.
    expect((await kilo.skills.list(bot.id)).map((skill) => skill.id)).toEqual([botOrders.id]);
    expect(botOrders).toMatchObject({ botId: bot.id, scope: { kind: "bot", id: bot.id } });
    expect(teamOrders).toMatchObject({ botId: null, scope: teamScope });
  });

  it("leaves inactive skills out, so a draft of the bot's does not hide its team's skill", async () => {
    const { kilo, bot, teamScope } = await bakery();
    const team = await kilo.skills.create(teamScope, ORDER_TRACKER);
    await kilo.skills.create(bot.id, { ...ORDER_TRACKER, status: "draft" });
    expect((await kilo.skills.effective(bot.id)).map(({ skill }) => skill.id)).toEqual([team.id]);
  });

  it("matches the team's skill in a chat turn, and each bot of the team keeps its own records", async () => {
    const { kilo, bot, teamScope } = await bakery({
      chat: [
        {
          toolCalls: [
            {
              name: "record_create",
              input: {
                skill: "Order Tracker",
                data: { customer: "Maria", item: "cake", pickup_day: "Saturday" },
              },
            },
          ],
        },
        "Saved.",
      ],
    });
    const teamSkill = await kilo.skills.create(teamScope, ORDER_TRACKER, { actor: BOB });
    const bobsBot = await kilo.bots.create({ userId: "bob", name: "Rye", teamId: "bakers" });

    const turn = await kilo.chat({
      botId: bot.id,
      userId: "alice",
      message: "New order: Maria, cake, Saturday",
    });
    expect(turn.skill).toEqual({ id: teamSkill.id, name: "Order Tracker" });
    expect(turn.match.pass).toBe("fast");
    expect(turn.toolCalls).toMatchObject([{ name: "record_create", isError: false }]);
    expect((await kilo.records.list(bot.id, teamSkill.id)).items.map((record) => record.data)).toEqual([
      { customer: "Maria", item: "cake", pickup_day: "Saturday" },
    ]);
    expect((await kilo.records.list(bobsBot.id, teamSkill.id)).items).toEqual([]);

    // A bot outside the team does not see the team's skill.
    const loner = await kilo.bots.create({ userId: "alice", name: "Solo" });
    expect((await kilo.skills.effective(loner.id)).map(({ skill }) => skill.id)).toEqual([]);
    expect(await kiloFailure(kilo.records.list(loner.id, teamSkill.id))).toMatchObject({ code: "NOT_FOUND" });
  });

  it("sees a skill written to a shared scope on the bot's next turn", async () => {
    const { kilo, bot, teamScope } = await bakery({ classify: [classify(null)], chat: ["Hi!", "Hello!"] });
    const first = await kilo.chat({ botId: bot.id, userId: "alice", message: "hello there" });
    expect(first.skill).toBeNull();
    const orders = await kilo.skills.create(teamScope, ORDER_TRACKER);
    const second = await kilo.chat({
      botId: bot.id,
      userId: "alice",
      conversationId: first.conversationId,
      message: "New order: Ana, lemon tart, Sunday",
    });
    expect(second.skill).toEqual({ id: orders.id, name: "Order Tracker" });
  });

  it("moves a bot between teams only with its owner as a member; leaving a team takes its bots out", async () => {
    const { kilo, bot, team, teamScope } = await bakery();
    await kilo.skills.create(teamScope, GREETING);
    const carols = await kilo.bots.create({ userId: "carol", name: "Scone" });
    expect(await kiloFailure(kilo.bots.update(carols.id, { teamId: team.id }))).toMatchObject({
      code: "FORBIDDEN",
    });
    expect(
      await kiloFailure(kilo.bots.create({ userId: "carol", name: "Bun", teamId: team.id })),
    ).toMatchObject({ code: "FORBIDDEN" });
    expect(await kiloFailure(kilo.bots.update(carols.id, { teamId: "nope" }))).toMatchObject({
      code: "NOT_FOUND",
    });

    expect((await kilo.skills.effective(bot.id)).map(({ skill }) => skill.name)).toEqual(["Greeting"]);
    await kilo.teams.removeMember(team.id, "alice", { actor: ALICE });
    expect((await kilo.bots.get(bot.id)).teamId ?? null).toBeNull();
    expect(await kilo.skills.effective(bot.id)).toEqual([]);
    expect(await kilo.teams.listByUser("alice")).toEqual([]);
  });

  it("deleting a team deletes its skills and frees its bots", async () => {
    const { kilo, bot, team, teamScope } = await bakery();
    const skill = await kilo.skills.create(teamScope, GREETING);
    await kilo.teams.delete(team.id, { actor: BOB });
    expect(await kiloFailure(kilo.teams.get(team.id))).toMatchObject({ code: "NOT_FOUND" });
    expect((await kilo.bots.get(bot.id)).teamId ?? null).toBeNull();
    expect(await kilo.skills.effective(bot.id)).toEqual([]);
    expect(await kiloFailure(kilo.skills.get(teamScope, skill.id))).toMatchObject({ code: "NOT_FOUND" });
  });
});

describe("skill scopes: who may do what", () => {
  it("keeps the system scope read-only for users; the host writes it", async () => {
    const { kilo, bot } = await bakery();
    const refused = await kiloFailure(kilo.skills.create({ kind: "system" }, GREETING, { actor: ALICE }));
    expect(refused.code).toBe("FORBIDDEN");
    expect(refused.message).toMatch(/read-only/);
    const system = await kilo.skills.create({ kind: "system" }, GREETING);
    expect(
      await kiloFailure(
        kilo.skills.update({ kind: "system" }, system.id, { description: "x" }, { actor: ALICE }),
      ),
    ).toMatchObject({ code: "FORBIDDEN" });
    expect(
      await kiloFailure(kilo.skills.delete({ kind: "system" }, system.id, { actor: ALICE })),
    ).toMatchObject({
      code: "FORBIDDEN",
    });
    expect(await kilo.skills.get({ kind: "system" }, system.id, { actor: ALICE })).toEqual(system);
    expect((await kilo.skills.effective(bot.id, { actor: ALICE })).map(({ skill }) => skill.id)).toEqual([
      system.id,
    ]);
  });

  it("lets a team's admins write its skills, its members read them, and nobody else either", async () => {
    const { kilo, teamScope } = await bakery();
    expect(await kiloFailure(kilo.skills.create(teamScope, PRICING, { actor: ALICE }))).toMatchObject({
      code: "FORBIDDEN",
    });
    const pricing = await kilo.skills.create(teamScope, PRICING, { actor: BOB });
    expect(await kilo.skills.list(teamScope, { actor: ALICE })).toEqual([pricing]);
    expect(await kiloFailure(kilo.skills.list(teamScope, { actor: CAROL }))).toMatchObject({
      code: "FORBIDDEN",
    });
    expect(await kiloFailure(kilo.skills.history(teamScope, pricing.id, {}, { actor: CAROL }))).toMatchObject(
      {
        code: "FORBIDDEN",
      },
    );
    expect(
      await kiloFailure(kilo.skills.update(teamScope, pricing.id, { description: "x" }, { actor: ALICE })),
    ).toMatchObject({ code: "FORBIDDEN" });
    await kilo.teams.addMember("bakers", { userId: "alice", role: "admin" }, { actor: BOB });
    const changed = await kilo.skills.update(
      teamScope,
      pricing.id,
      { description: "Now alice may" },
      { actor: ALICE },
    );
    expect(changed.description).toBe("Now alice may");
    expect((await kilo.skills.version(teamScope, pricing.id, 2)).author).toBe("alice");
    expect(await kiloFailure(kilo.skills.create({ kind: "team", id: "nope" }, PRICING))).toMatchObject({
      code: "NOT_FOUND",
    });
  });

  it("lets a user write their own scope and their bots, not another user's", async () => {
    const { kilo, bot } = await bakery();
    await kilo.skills.create({ kind: "user", id: "alice" }, PRICING, { actor: ALICE });
    expect(
      await kiloFailure(kilo.skills.create({ kind: "user", id: "alice" }, GREETING, { actor: BOB })),
    ).toMatchObject({
      code: "FORBIDDEN",
    });
    expect(await kiloFailure(kilo.skills.list({ kind: "user", id: "alice" }, { actor: BOB }))).toMatchObject({
      code: "FORBIDDEN",
    });
    await kilo.skills.create(bot.id, GREETING, { actor: ALICE });
    // Another user's bot is reported as missing, so bot ids cannot be probed.
    expect(await kiloFailure(kilo.skills.create(bot.id, ORDER_TRACKER, { actor: BOB }))).toMatchObject({
      code: "NOT_FOUND",
    });
    expect(await kiloFailure(kilo.skills.effective(bot.id, { actor: BOB }))).toMatchObject({
      code: "NOT_FOUND",
    });
  });

  it("lets only admins manage a team, and members see who is in it", async () => {
    const { kilo, team } = await bakery();
    expect(
      await kiloFailure(kilo.teams.addMember(team.id, { userId: "carol" }, { actor: ALICE })),
    ).toMatchObject({
      code: "FORBIDDEN",
    });
    expect(await kiloFailure(kilo.teams.update(team.id, { name: "Mine" }, { actor: ALICE }))).toMatchObject({
      code: "FORBIDDEN",
    });
    expect(await kiloFailure(kilo.teams.delete(team.id, { actor: ALICE }))).toMatchObject({
      code: "FORBIDDEN",
    });
    expect(await kiloFailure(kilo.teams.members(team.id, { actor: CAROL }))).toMatchObject({
      code: "FORBIDDEN",
    });
    expect(
      (await kilo.teams.members(team.id, { actor: ALICE })).map(({ userId, role }) => [userId, role]),
    ).toEqual([
      ["bob", "admin"],
      ["alice", "member"],
    ]);
    expect((await kilo.teams.update(team.id, { name: "Bread" }, { actor: BOB })).name).toBe("Bread");
  });
});

describe("skill promotions", () => {
  it("promotes user → team → system with the diff shown and the history carried", async () => {
    const { kilo, teamScope, bot } = await bakery();
    const mine = await kilo.skills.create({ kind: "user", id: "alice" }, PRICING, {
      actor: ALICE,
      reason: "first",
    });
    await kilo.skills.update(
      { kind: "user", id: "alice" },
      mine.id,
      { instructions: "Quote from the price list; add 10% on Sundays." },
      { actor: ALICE, reason: "Sunday surcharge" },
    );

    const toTeam = await kilo.skills.promotions.request({ kind: "user", id: "alice" }, mine.id, {
      to: teamScope,
      reason: "Everyone quotes prices",
      actor: ALICE,
    });
    expect(toTeam).toMatchObject({
      status: "pending",
      from: { kind: "user", id: "alice" },
      to: teamScope,
      requestedBy: "alice",
      sourceVersion: 2,
      targetSkillId: null,
    });
    expect(toTeam.diff).toContain("--- skill.json\t(none)");
    expect(toTeam.diff).toContain("+++ skill.json\tuser:alice version 2");
    expect(toTeam.diff).toContain('+  "instructions": "Quote from the price list; add 10% on Sundays.",');
    expect((await kilo.skills.promotions.list({ to: teamScope, status: "pending" })).items).toEqual([toTeam]);
    expect(
      await kiloFailure(
        kilo.skills.promotions.request({ kind: "user", id: "alice" }, mine.id, {
          to: teamScope,
          reason: "again",
          actor: ALICE,
        }),
      ),
    ).toMatchObject({ code: "CONFLICT" });
    expect(await kiloFailure(kilo.skills.promotions.approve(toTeam.id, { actor: ALICE }))).toMatchObject({
      code: "FORBIDDEN",
    });

    const approved = await kilo.skills.promotions.approve(toTeam.id, { actor: BOB, note: "Good one" });
    const teamSkill = approved.skill;
    expect(teamSkill).toMatchObject({ name: "Pricing", scope: teamScope, botId: null });
    expect(teamSkill.instructions).toBe("Quote from the price list; add 10% on Sundays.");
    expect(approved.promotion).toMatchObject({
      status: "approved",
      reviewer: "bob",
      reviewNote: "Good one",
      resultSkillId: teamSkill.id,
    });
    const teamHistory = await versionsOf(kilo, teamScope, teamSkill.id);
    expect(teamHistory.map(({ version, author, reason }) => [version, author, reason])).toEqual([
      [3, "bob", `Promoted from user:alice (request ${toTeam.id}): Everyone quotes prices`],
      [2, "alice", "Sunday surcharge"],
      [1, "alice", "first"],
    ]);
    expect(teamHistory.map((version) => version.scope)).toEqual([teamScope, teamScope, teamScope]);
    const fromAlice = { scope: { kind: "user", id: "alice" }, skillId: mine.id, promotionId: toTeam.id };
    expect(teamHistory.map((version) => version.origin)).toEqual([
      { ...fromAlice, version: 2 },
      { ...fromAlice, version: 2 },
      { ...fromAlice, version: 1 },
    ]);
    expect(teamHistory[1]!.diff).toContain(
      '+  "instructions": "Quote from the price list; add 10% on Sundays.",',
    );
    // The bot of the team's member now sees its owner's copy (more specific) shadowing the team's.
    expect((await kilo.skills.effective(bot.id))[0]!.shadows).toEqual([
      { id: teamSkill.id, name: "Pricing", scope: teamScope },
    ]);

    await kilo.skills.update(teamScope, teamSkill.id, { triggers: ["price", "quote"] }, { actor: BOB });
    const toSystem = await kilo.skills.promotions.request(teamScope, teamSkill.id, {
      to: { kind: "system" },
      reason: "Every bakery needs it",
      actor: ALICE,
    });
    expect(toSystem.diff).toContain("+++ skill.json\tteam:bakers version 4");
    expect(await kiloFailure(kilo.skills.promotions.approve(toSystem.id, { actor: BOB }))).toMatchObject({
      code: "FORBIDDEN",
    });
    const { skill: systemSkill, promotion } = await kilo.skills.promotions.approve(toSystem.id, {
      reviewer: "host",
    });
    expect(promotion.reviewer).toBe("host");
    expect(systemSkill.scope).toEqual({ kind: "system" });
    expect(systemSkill.triggers).toEqual(["price", "quote"]);
    const systemHistory = await versionsOf(kilo, { kind: "system" }, systemSkill.id);
    expect(systemHistory.map(({ version, author }) => [version, author])).toEqual([
      [5, "host"],
      [4, "bob"],
      [3, "bob"],
      [2, "alice"],
      [1, "alice"],
    ]);
    // Versions first written in alice's scope keep saying so; the team's own edit names the team.
    expect(systemHistory.map((version) => version.origin?.scope.kind)).toEqual([
      "team",
      "team",
      "user",
      "user",
      "user",
    ]);

    // Everyone's bots see the system skill now.
    const carols = await kilo.bots.create({ userId: "carol", name: "Scone" });
    expect((await kilo.skills.effective(carols.id)).map(({ skill }) => skill.id)).toEqual([systemSkill.id]);
    // Rolling a promoted skill back works like any other.
    const rolled = await kilo.skills.rollback({ kind: "system" }, systemSkill.id, 1);
    expect(rolled.instructions).toBe("Quote from the price list.");
    expect((await kilo.skills.version({ kind: "system" }, systemSkill.id, 6)).reason).toBe(
      "Rollback to version 1",
    );
  });

  it("rejects a request with a reason and writes nothing", async () => {
    const { kilo, teamScope } = await bakery();
    const mine = await kilo.skills.create({ kind: "user", id: "alice" }, PRICING);
    const request = await kilo.skills.promotions.request({ kind: "user", id: "alice" }, mine.id, {
      to: teamScope,
      reason: "please",
      requestedBy: "alice",
    });
    const rejected = await kilo.skills.promotions.reject(request.id, {
      actor: BOB,
      reason: "We price per shop",
    });
    expect(rejected).toMatchObject({
      status: "rejected",
      reviewer: "bob",
      reviewNote: "We price per shop",
      resultSkillId: null,
    });
    expect(rejected.decidedAt).toBeInstanceOf(Date);
    expect(await kilo.skills.promotions.get(request.id)).toEqual(rejected);
    expect(await kilo.skills.list(teamScope)).toEqual([]);
    expect(await kiloFailure(kilo.skills.promotions.approve(request.id, { actor: BOB }))).toMatchObject({
      code: "CONFLICT",
    });
    expect((await kilo.skills.promotions.list({ status: "rejected", to: teamScope })).items).toEqual([
      rejected,
    ]);
  });

  it("updates the target's skill of the same name, with the diff against it, and refuses a stale request", async () => {
    const { kilo, teamScope } = await bakery();
    const team = await kilo.skills.create(teamScope, PRICING, { actor: BOB });
    const mine = await kilo.skills.create(
      { kind: "user", id: "alice" },
      { ...PRICING, instructions: "Quote in euros." },
      { actor: ALICE },
    );
    const request = await kilo.skills.promotions.request({ kind: "user", id: "alice" }, mine.id, {
      to: teamScope,
      reason: "euros",
      actor: ALICE,
    });
    expect(request).toMatchObject({ targetSkillId: team.id, targetVersion: 1 });
    expect(request.diff).toContain("--- skill.json\tteam:bakers version 1");
    expect(request.diff).toContain('-  "instructions": "Quote from the price list.",');
    expect(request.diff).toContain('+  "instructions": "Quote in euros.",');

    const { skill } = await kilo.skills.promotions.approve(request.id, { actor: BOB });
    expect(skill.id).toBe(team.id);
    expect(skill.instructions).toBe("Quote in euros.");
    const history = await versionsOf(kilo, teamScope, team.id);
    expect(history.map(({ version, author }) => [version, author])).toEqual([
      [2, "bob"],
      [1, "bob"],
    ]);
    expect(history[0]!.origin).toEqual({
      scope: { kind: "user", id: "alice" },
      skillId: mine.id,
      version: 1,
      promotionId: request.id,
    });
    expect(history[0]!.diff).toContain('+  "instructions": "Quote in euros.",');

    const again = await kilo.skills.update({ kind: "user", id: "alice" }, mine.id, {
      instructions: "Quote in dollars.",
    });
    const stale = await kilo.skills.promotions.request({ kind: "user", id: "alice" }, again.id, {
      to: teamScope,
      reason: "dollars",
      requestedBy: "alice",
    });
    await kilo.skills.update(teamScope, team.id, { description: "Changed meanwhile" });
    expect(await kiloFailure(kilo.skills.promotions.approve(stale.id, { reviewer: "bob" }))).toMatchObject({
      code: "CONFLICT",
    });
    expect((await kilo.skills.promotions.get(stale.id)).status).toBe("pending");
    expect((await kilo.skills.get(teamScope, team.id)).instructions).toBe("Quote in euros.");
  });

  it("promotes only to a wider team or the system, and only for members of the target team", async () => {
    const { kilo, teamScope, bot } = await bakery();
    await kilo.teams.create({ id: "pastry", name: "Pastry" });
    const teamSkill = await kilo.skills.create(teamScope, PRICING);
    const refused = await kiloFailure(
      kilo.skills.promotions.request(teamScope, teamSkill.id, {
        to: { kind: "team", id: "pastry" },
        reason: "x",
        requestedBy: "bob",
      }),
    );
    expect(refused.code).toBe("VALIDATION_FAILED");
    const system = await kilo.skills.create({ kind: "system" }, GREETING);
    expect(
      await kiloFailure(
        kilo.skills.promotions.request({ kind: "system" }, system.id, {
          to: teamScope,
          reason: "x",
          requestedBy: "bob",
        }),
      ),
    ).toMatchObject({ code: "VALIDATION_FAILED" });
    const botSkill = await kilo.skills.create(bot.id, ORDER_TRACKER);
    expect(
      await kiloFailure(
        kilo.skills.promotions.request(bot.id, botSkill.id, {
          to: { kind: "team", id: "pastry" },
          reason: "x",
          actor: ALICE,
        }),
      ),
    ).toMatchObject({ code: "FORBIDDEN" });
    expect(
      await kiloFailure(kilo.skills.promotions.request(bot.id, botSkill.id, { to: teamScope, reason: "x" })),
    ).toMatchObject({ code: "VALIDATION_FAILED" });
    const fromBot = await kilo.skills.promotions.request(bot.id, botSkill.id, {
      to: teamScope,
      reason: "x",
      actor: ALICE,
    });
    expect(fromBot.from).toEqual({ kind: "bot", id: bot.id });
  });
});
