import { describe, expect, it } from "vitest";
import { memoryStorage } from "../../adapters/storage/memory/index.js";
import { KiloError } from "../../src/errors.js";
import { sequentialIds } from "../../src/runtime/defaults.js";
import {
  recordSchemaFor,
  SkillDataService,
  skillDataToolDefinitions,
  skillDataTools,
  skillSlug,
} from "../../src/skills/skill-data.js";
import { makeBot, makeSkill, NOW, ORDER_TRACKER } from "../fixtures.js";

const orders = makeSkill(ORDER_TRACKER);

describe("schemas derived from a skill's data fields", () => {
  it("requires required fields, checks types and enum options, and refuses unknown fields", () => {
    const schema = recordSchemaFor(orders);
    expect(schema.safeParse({ customer: "Maria", item: "cake", pickup_day: "Saturday" }).success).toBe(true);
    expect(schema.safeParse({ customer: "Maria", item: "cake" }).success).toBe(false);
    expect(
      schema.safeParse({ customer: "Maria", item: "cake", pickup_day: "Sat", status: "lost" }).success,
    ).toBe(false);
    expect(
      schema.safeParse({ customer: "Maria", item: "cake", pickup_day: "Sat", colour: "red" }).success,
    ).toBe(false);
    expect(
      recordSchemaFor(makeSkill({ name: "N", dataFields: [{ name: "n", type: "integer" }] })).safeParse({
        n: 1.5,
      }).success,
    ).toBe(false);
  });

  it("gives the model four tools with JSON schemas and names safe for every provider", () => {
    const tools = skillDataToolDefinitions(orders);
    expect(tools.map((tool) => tool.name)).toEqual([
      "order_tracker_create",
      "order_tracker_query",
      "order_tracker_update",
      "order_tracker_delete",
    ]);
    for (const tool of tools) expect(tool.name).toMatch(/^[a-zA-Z0-9_-]{1,64}$/);
    expect(tools[0]?.inputSchema).toMatchObject({
      type: "object",
      required: ["customer", "item", "pickup_day"],
      properties: { status: { enum: ["open", "done"] } },
      additionalProperties: false,
    });
    expect(tools[0]?.inputSchema).not.toHaveProperty("$schema");
    expect(skillDataToolDefinitions(orders)).toBe(tools);
    expect(skillSlug({ id: "skill_9", name: "Café ☕ Orders!" })).toBe("cafe_orders");
    expect(skillSlug({ id: "skill_9", name: "☕☕" })).toBe("skill_9");
  });
});

describe("SkillDataService and the data tools", () => {
  async function setup() {
    const storage = memoryStorage();
    await storage.users.upsert({ id: "user_1", name: null, metadata: {}, createdAt: NOW });
    await storage.bots.create(makeBot());
    await storage.skills.create(orders);
    const service = new SkillDataService({ storage, ids: sequentialIds(), clock: { now: () => NOW } });
    return { service, tools: skillDataTools(service) };
  }

  it("updates merge with the stored record and stay valid", async () => {
    const { service } = await setup();
    const record = await service.create(orders, { customer: "Maria", item: "cake", pickup_day: "Saturday" });
    const updated = await service.update(orders, record.id, { pickup_day: "Sunday", status: "done" });
    expect(updated.data).toEqual({ customer: "Maria", item: "cake", pickup_day: "Sunday", status: "done" });
    const invalid = await service.update(orders, record.id, { status: "lost" }).catch((e: unknown) => e);
    expect(KiloError.is(invalid, "VALIDATION_FAILED")).toBe(true);
    const missing = await service.update(orders, "rec_404", {}).catch((e: unknown) => e);
    expect(KiloError.is(missing, "NOT_FOUND")).toBe(true);
  });

  it("offers no tools without a matched data skill, and returns errors to the model instead of throwing", async () => {
    const { tools } = await setup();
    const context = { bot: makeBot(), userId: "user_1", conversationId: "conv_1" };
    expect((await tools.tools({ ...context, matchedSkill: null })).definitions).toEqual([]);
    const set = await tools.tools({ ...context, matchedSkill: orders });
    const bad = await set.execute({
      type: "tool_call",
      id: "c1",
      name: "order_tracker_delete",
      input: { id: "rec_404" },
    });
    expect(bad).toMatchObject({ isError: true });
    const badFilter = await set.execute({
      type: "tool_call",
      id: "c2",
      name: "order_tracker_query",
      input: { equals: { nope: 1 } },
    });
    expect(badFilter.isError).toBe(true);
    const created = await set.execute({
      type: "tool_call",
      id: "c3",
      name: "order_tracker_create",
      input: { customer: "Tom", item: "bread", pickup_day: "Friday" },
    });
    expect(created.isError).toBe(false);
    const found = await set.execute({
      type: "tool_call",
      id: "c4",
      name: "order_tracker_query",
      input: { contains: { item: "BRE" } },
    });
    expect(JSON.parse(found.content)).toMatchObject({ count: 1, records: [{ customer: "Tom" }] });
  });
});
