import { describe, expect, it } from "vitest";
import { createHttpHandler } from "../../src/http/index.js";
import { ORDER_TRACKER } from "../fixtures.js";
import { lastUserText, setup, USER } from "./helpers.js";

async function threeSkills() {
  const { kilo, provider } = setup({ chat: ["one", "two", "three", "four"] });
  const bot = await kilo.bots.create({ userId: USER, name: "Crumb" });
  const orders = await kilo.skills.create(bot.id, ORDER_TRACKER);
  await kilo.skills.create(bot.id, {
    name: "Recipe Box",
    description: "Keeps recipes",
    instructions: "Store recipes.",
    triggers: ["recipe", "recipes"],
  });
  await kilo.skills.create(bot.id, {
    name: "Shift Planner",
    description: "Plans staff shifts",
    instructions: "Plan shifts.",
    triggers: ["shift", "shifts"],
  });
  const chats = () => provider.requests.filter((request) => request.purpose === "chat");
  const system = (index: number) =>
    chats()
      [index]!.system.map((block) => block.text)
      .join("\n");
  return { kilo, provider, bot, orders, chats, system };
}

describe("per-turn skill injection (include_skills / max_skills)", () => {
  it("leaves skills out entirely with include: false: no match, no catalog, no skill tools", async () => {
    const { kilo, provider, bot, chats, system } = await threeSkills();
    const result = await kilo.chat({
      botId: bot.id,
      userId: USER,
      message: "New order: Maria, chocolate cake, Saturday",
      skills: { include: false },
    });
    expect(result.skill).toBeNull();
    expect(result.skillsUsed).toEqual([]);
    expect(provider.requests.map((request) => request.purpose)).toEqual(["chat"]);
    expect(system(0)).not.toContain("Order Tracker");
    expect(chats()[0]!.tools ?? []).toEqual([]);
    expect(lastUserText(chats()[0]!)).not.toContain("Active skill");
    await kilo.close();
  });

  it("caps the catalog at max, the matched skill first, and keeps the usual catalog otherwise", async () => {
    const { kilo, bot, system } = await threeSkills();
    const capped = await kilo.chat({
      botId: bot.id,
      userId: USER,
      message: "New order: Maria, chocolate cake, Saturday",
      skills: { max: 1 },
    });
    expect(capped.skill?.name).toBe("Order Tracker");
    expect(capped.skillsUsed).toEqual(["Order Tracker"]);
    expect(system(0)).toContain("- Order Tracker:");
    expect(system(0)).not.toContain("Recipe Box");
    expect(system(0)).not.toContain("Shift Planner");
    await kilo.chat({ botId: bot.id, userId: USER, message: "New order: Tom, croissants, Friday" });
    for (const name of ["Order Tracker", "Recipe Box", "Shift Planner"])
      expect(system(1)).toContain(`- ${name}:`);
    await expect(
      kilo.chat({ botId: bot.id, userId: USER, message: "hi", skills: { max: -1 } }),
    ).rejects.toMatchObject({ code: "VALIDATION_FAILED" });
    await kilo.close();
  });

  it("takes includeSkills and maxSkills in the HTTP chat body", async () => {
    const { kilo, bot, system } = await threeSkills();
    const http = createHttpHandler(kilo, { authenticate: async () => ({ userId: USER }) });
    const response = await http(
      new Request("http://kilo.test/api/chat", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ botId: bot.id, message: "New order: Ana, bread, Monday", maxSkills: 2 }),
      }),
    );
    expect(response.status).toBe(200);
    const body = (await response.json()) as { skillsUsed: string[] };
    expect(body.skillsUsed).toEqual(["Order Tracker"]);
    const listed = ["Order Tracker", "Recipe Box", "Shift Planner"].filter((name) =>
      system(0).includes(`- ${name}:`),
    );
    expect(listed).toHaveLength(2);
    expect(listed[0]).toBe("Order Tracker");
    await kilo.close();
  });
});
