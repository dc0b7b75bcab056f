import { describe, expect, it } from "vitest";
import { runBakeryDemo } from "../../examples/bakery/demo.js";

describe("npm run demo (the bakery scenario)", () => {
  it("plays the whole scenario offline and prints who handled each turn and the cost", async () => {
    const lines: string[] = [];
    const outcome = await runBakeryDemo({ print: (line) => lines.push(line) });
    const { kilo, botId, userId, turns } = outcome;
    expect(outcome.mode).toBe("replay");
    expect(lines[0]).toContain("offline");

    const handled = turns.map((turn) => [turn.result.skill?.name ?? null, turn.result.match.pass]);
    expect(handled).toEqual([
      ["Order Tracker", "fast"],
      ["Order Tracker", "fast"],
      ["Order Tracker", "fast"],
      [null, "llm"],
      [null, "llm"],
      [null, "llm"],
      [null, "none"],
      ["Inventory Tracker", "fast"],
    ]);

    const skills = await kilo.skills.list(botId);
    const orders = await kilo.records.list(botId, skills[0]!.id);
    expect(orders.items.map((record) => record.data.customer)).toEqual(["Maria", "Tom"]);
    const inventory = await kilo.records.list(botId, skills[1]!.id);
    expect(inventory.items.map((record) => record.data)).toEqual([
      { item: "flour", quantity: 20, unit: "kg" },
    ]);

    // Learned in session 1, used in session 2.
    expect(turns[3]!.result.memories.map((m) => m.key)).toEqual(["bakery name"]);
    expect(turns[4]!.result.conversationId).not.toBe(turns[3]!.result.conversationId);
    expect(turns[4]!.result.reply).toContain("Sweet Crumb");
    expect(turns[5]!.result.proposal?.name).toBe("Inventory Tracker");
    expect(turns[6]!.result.createdSkill?.name).toBe("Inventory Tracker");

    const summary = await kilo.usage.summary({ userId });
    expect(summary.calls).toBe(14);
    expect(summary.costUsd).toBeGreaterThan(0);
    expect(lines.at(-1)).toContain(`$${summary.costUsd.toFixed(4)}`);
    expect(lines.join("\n")).toContain("skill: Order Tracker (fast path)");
    await kilo.close();
  });
});
