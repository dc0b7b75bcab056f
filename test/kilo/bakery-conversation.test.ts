import { describe, expect, it } from "vitest";
import { KiloError } from "../../src/index.js";
import { bakeryBot, classify, lastUserText, setup, USER } from "./helpers.js";

describe("a bakery owner talks to Crumb", () => {
  it("stores a new order through the skill's tools and answers from stored orders", async () => {
    const { kilo, provider } = setup({
      chat: [
        {
          toolCalls: [
            {
              name: "record_create",
              input: {
                skill: "Order Tracker",
                data: { customer: "Maria", item: "chocolate cake", pickup_day: "Saturday" },
              },
            },
          ],
        },
        "Got it: chocolate cake for Maria on Saturday.",
        {
          toolCalls: [
            {
              name: "record_create",
              input: {
                skill: "Order Tracker",
                data: { customer: "Tom", item: "croissants", pickup_day: "Friday" },
              },
            },
          ],
        },
        "Croissants for Tom on Friday.",
        {
          toolCalls: [
            { name: "record_query", input: { skill: "Order Tracker", equals: { pickup_day: "saturday" } } },
          ],
        },
        "On Saturday: Maria's chocolate cake.",
      ],
    });
    const { bot, skill } = await bakeryBot(kilo);

    const first = await kilo.chat({
      botId: bot.id,
      userId: USER,
      message: "New order: Maria, chocolate cake, Saturday",
    });
    expect(first.reply).toBe("Got it: chocolate cake for Maria on Saturday.");
    expect(first.skill).toEqual({ id: skill.id, name: "Order Tracker" });
    expect(first.match.pass).toBe("fast");
    expect(first.toolCalls).toMatchObject([{ name: "record_create", isError: false }]);

    await kilo.chat({
      botId: bot.id,
      userId: USER,
      conversationId: first.conversationId,
      message: "New order: Tom, croissants, Friday",
    });
    const stored = await kilo.records.list(bot.id, skill.id);
    expect(stored.items.map((record) => record.data)).toEqual([
      { customer: "Maria", item: "chocolate cake", pickup_day: "Saturday" },
      { customer: "Tom", item: "croissants", pickup_day: "Friday" },
    ]);

    const question = await kilo.chat({
      botId: bot.id,
      userId: USER,
      conversationId: first.conversationId,
      message: "What orders do I have on Saturday?",
    });
    expect(question.skill?.name).toBe("Order Tracker");
    expect(question.reply).toBe("On Saturday: Maria's chocolate cake.");
    // The query tool's result went back to the model, and it held Maria's order only.
    const followUp = provider.requests.at(-1)!;
    const toolResult = followUp.messages.at(-1)!.content.find((block) => block.type === "tool_result");
    expect(toolResult?.type === "tool_result" && JSON.parse(toolResult.content)).toMatchObject({
      count: 1,
      records: [{ customer: "Maria", item: "chocolate cake" }],
    });
    // The data tools were offered, and the model was shown the record fields derived from the skill's fields.
    const create = followUp.tools?.find((tool) => tool.name === "record_create");
    expect(create?.inputSchema).toMatchObject({ properties: { skill: { enum: ["Order Tracker"] } } });
    const context = lastUserText(provider.requests.at(-2)!);
    expect(context).toContain(
      'Records: record_* tools, skill "Order Tracker". Fields:\ncustomer (text, required): ',
    );
    expect(context).toContain("item (text, required)");
    expect(context).toContain("pickup_day (date, required)");
    // The tool list is the same for every turn of the bot, so the prompt prefix stays cacheable.
    expect(provider.requests.map((request) => JSON.stringify(request.tools))).toEqual(
      provider.requests.map(() => JSON.stringify(followUp.tools)),
    );
  });

  it("gives the model a tool error it can correct, and never stores invalid data", async () => {
    const { kilo, provider } = setup({
      chat: [
        {
          toolCalls: [
            { name: "record_create", input: { skill: "Order Tracker", data: { customer: "Maria" } } },
          ],
        },
        {
          toolCalls: [
            {
              name: "record_create",
              input: { skill: "Order Tracker", data: { customer: "Maria", item: "cake", pickup_day: "Sat" } },
            },
          ],
        },
        "Stored.",
      ],
    });
    const { bot, skill } = await bakeryBot(kilo);
    const result = await kilo.chat({ botId: bot.id, userId: USER, message: "New order: Maria, cake, Sat" });
    expect(result.toolCalls.map((call) => call.isError)).toEqual([true, false]);
    const error = provider.requests[1]!.messages.at(-1)!.content[0];
    expect(error).toMatchObject({ type: "tool_result", isError: true });
    expect(error?.type === "tool_result" && error.content).toMatch(/item: .*pickup_day: /s);
    expect((await kilo.records.list(bot.id, skill.id)).items).toHaveLength(1);
  });

  it("stops a model that keeps calling tools", async () => {
    const call = { toolCalls: [{ name: "record_query", input: { skill: "Order Tracker" } }] };
    const { kilo } = setup({ chat: [call, call, call] }, { maxToolSteps: 3 });
    const { bot } = await bakeryBot(kilo);
    const failure = await kilo
      .chat({ botId: bot.id, userId: USER, message: "orders?" })
      .catch((e: unknown) => e);
    expect(KiloError.is(failure, "TOOL_LOOP_LIMIT")).toBe(true);
  });

  it("remembers the bakery's name and uses it in a new session", async () => {
    const { kilo, provider } = setup({
      classify: [classify(null), classify(null), classify(null)],
      chat: ["Lovely name!", "Your bakery is called Sweet Crumb.", "Noted, Sweet Crumbs & Co it is."],
    });
    const { bot } = await bakeryBot(kilo);
    const first = await kilo.chat({
      botId: bot.id,
      userId: USER,
      message: "By the way, my bakery is called Sweet Crumb.",
    });
    expect(first.memories.map((memory) => memory.content)).toEqual([
      "The user's bakery is called Sweet Crumb.",
    ]);

    const second = await kilo.chat({
      botId: bot.id,
      userId: USER,
      message: "What's the name of my bakery again?",
    });
    expect(second.conversationId).not.toBe(first.conversationId);
    // A standing memory: in the cacheable system prompt of every later turn, not in the volatile context.
    const system = provider.requests.at(-1)!.system.map((block) => block.text);
    expect(system.at(-1)).toBe("## What you know about the user\n- The user's bakery is called Sweet Crumb.");
    expect(lastUserText(provider.requests.at(-1)!)).not.toContain("Sweet Crumb");
    // History of the first session is not in the new session's prompt.
    expect(provider.requests.at(-1)!.messages).toHaveLength(1);

    const third = await kilo.chat({
      botId: bot.id,
      userId: USER,
      conversationId: second.conversationId,
      message: "Actually, my bakery is called Sweet Crumbs & Co.",
    });
    expect(third.memories).toHaveLength(1);
    const remembered = await kilo.memories.list(bot.id, USER);
    expect(remembered.items).toHaveLength(1);
    expect(remembered.items[0]).toMatchObject({
      key: "bakery name",
      content: "The user's bakery is called Sweet Crumbs & Co.",
      history: [{ content: "The user's bakery is called Sweet Crumb." }],
    });

    await kilo.memories.delete(bot.id, remembered.items[0]!.id);
    expect((await kilo.memories.list(bot.id, USER)).items).toEqual([]);
  });

  it("proposes an Inventory Tracker, creates it on yes, and the new skill handles the next message", async () => {
    const proposal = {
      name: "Inventory Tracker",
      description: "Tracks stock levels.",
      triggers: ["inventory", "stock"],
      dataFields: [
        { name: "item", type: "string", required: true },
        { name: "Quantity", type: "number", required: true },
        { name: "bogus", type: "colour" },
      ],
      clarifyingQuestions: ["Which units do you use?"],
    };
    const { kilo, respond } = setup({
      classify: [classify(null, true, "no inventory skill")],
      "propose-skill": [JSON.stringify(proposal)],
      chat: [
        {
          toolCalls: [
            {
              name: "record_create",
              input: { skill: "Inventory Tracker", data: { item: "flour", quantity: 20 } },
            },
          ],
        },
        "Stored 20 flour.",
      ],
    });
    const { bot } = await bakeryBot(kilo);
    const events: string[] = [];
    kilo.events.on("proposal-created", (event) => events.push(event.proposal.name));

    const offer = await kilo.chat({ botId: bot.id, userId: USER, message: "Can you track my inventory?" });
    expect(offer.proposal).toMatchObject({ name: "Inventory Tracker", status: "pending" });
    expect(offer.proposal?.dataFields.map((field) => field.name)).toEqual(["item", "quantity"]);
    expect(offer.reply).toContain("Inventory Tracker");
    expect(offer.reply).toContain("Which units do you use?");
    expect(events).toEqual(["Inventory Tracker"]);

    const yes = await kilo.chat({
      botId: bot.id,
      userId: USER,
      conversationId: offer.conversationId,
      message: "Yes please",
    });
    expect(yes.createdSkill?.name).toBe("Inventory Tracker");
    expect(yes.usage.calls).toBe(0);
    expect((await kilo.skills.list(bot.id)).map((skill) => skill.name)).toEqual([
      "Order Tracker",
      "Inventory Tracker",
    ]);

    const stock = await kilo.chat({
      botId: bot.id,
      userId: USER,
      conversationId: offer.conversationId,
      message: "Inventory: 20 flour in stock",
    });
    expect(stock.skill?.name).toBe("Inventory Tracker");
    expect(stock.toolCalls[0]).toMatchObject({ name: "record_create", isError: false });
    expect(respond.remaining()).toEqual({ classify: 0, "propose-skill": 0, chat: 0 });
  });

  it("does not propose again what the user just declined", async () => {
    const draft = JSON.stringify({
      name: "Inventory Tracker",
      description: "Tracks stock.",
      triggers: ["inventory"],
    });
    const { kilo, respond } = setup({
      classify: [classify(null, true), classify(null, true)],
      "propose-skill": [draft],
      chat: ["Alright, ask me anytime."],
    });
    const { bot } = await bakeryBot(kilo);
    const offer = await kilo.chat({ botId: bot.id, userId: USER, message: "Can you track my inventory?" });
    const no = await kilo.chat({
      botId: bot.id,
      userId: USER,
      conversationId: offer.conversationId,
      message: "No thanks",
    });
    expect(no.proposal?.status).toBe("dismissed");
    const again = await kilo.chat({
      botId: bot.id,
      userId: USER,
      message: "could you track my inventory for me?",
    });
    expect(again.proposal).toBeNull();
    expect(again.reply).toBe("Alright, ask me anytime.");
    expect(respond.remaining()["propose-skill"]).toBe(0);
    expect(await kilo.proposals.list(bot.id, { status: "pending" })).toEqual([]);
  });
});
