import { describe, expect, it } from "vitest";
import { memoryStorage } from "../../adapters/storage/memory/index.js";
import { KiloError } from "../../src/errors.js";
import { sequentialIds } from "../../src/runtime/defaults.js";
import {
  recordJsonSchema,
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

  it("gives the model four tools that stay the same from turn to turn, naming the skills with data", () => {
    const notes = makeSkill({ id: "skill_2", name: "Notes" });
    const catalog = [orders, notes];
    const tools = skillDataToolDefinitions(catalog);
    expect(tools.map((tool) => tool.name)).toEqual([
      "record_create",
      "record_query",
      "record_update",
      "record_delete",
    ]);
    for (const tool of tools) expect(tool.name).toMatch(/^[a-zA-Z0-9_-]{1,64}$/);
    expect(tools[0]?.inputSchema).toMatchObject({
      type: "object",
      required: ["skill", "data"],
      properties: { skill: { enum: ["Order Tracker"] } },
      additionalProperties: false,
    });
    expect(tools[0]?.inputSchema).not.toHaveProperty("$schema");
    expect(skillDataToolDefinitions(catalog)).toBe(tools);
    expect(skillDataToolDefinitions([notes])).toEqual([]);
    expect(recordJsonSchema(orders)).toMatchObject({
      required: ["customer", "item", "pickup_day"],
      properties: { status: { enum: ["open", "done"] } },
    });
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

  it("offers no tools without skills with data, and returns errors to the model instead of throwing", async () => {
    const { tools } = await setup();
    const context = { bot: makeBot(), userId: "user_1", conversationId: "conv_1", matchedSkill: null };
    expect((await tools.tools({ ...context, skills: [] })).definitions).toEqual([]);
    const set = await tools.tools({ ...context, skills: [orders] });
    const call = (name: string, input: Record<string, unknown>) =>
      set.execute({ type: "tool_call", id: "c", name, input });
    expect(await call("record_delete", { skill: "Order Tracker", id: "rec_404" })).toMatchObject({
      isError: true,
    });
    expect((await call("record_query", { skill: "Order Tracker", equals: { nope: 1 } })).isError).toBe(true);
    const unknown = await call("record_query", { skill: "Invoices" });
    expect(unknown).toMatchObject({ isError: true });
    expect(unknown.content).toContain("Skills with data: Order Tracker");
    const invalid = await call("record_create", { skill: "Order Tracker", data: { customer: "Tom" } });
    expect(invalid.isError).toBe(true);
    expect(invalid.content).toMatch(/item: .*pickup_day: /s);
    const created = await call("record_create", {
      skill: "order tracker",
      data: { customer: "Tom", item: "bread", pickup_day: "Friday" },
    });
    expect(created.isError).toBe(false);
    const found = await call("record_query", { skill: "Order Tracker", contains: { item: "BRE" } });
    expect(JSON.parse(found.content)).toMatchObject({ count: 1, records: [{ customer: "Tom" }] });
  });
});
