/**
 * Getting started: a first bot with a soul, a first skill that keeps data,
 * and a fact remembered across conversations. docs/getting-started.md walks
 * through this file; `npx tsx examples/getting-started/first-bot.ts` runs it.
 *
 * Offline by default (a scripted mock model); with ANTHROPIC_API_KEY set it
 * talks to Claude instead. In this repository `kilo` resolves to the source
 * through tsconfig `paths`; in your app it is the installed package.
 */
import { createKilo, type LlmProvider } from "kilo";
import { memoryStorage } from "kilo/storage/memory";
import { mockProvider } from "kilo/testing";

// 1. A model. Offline, a mock that stores an order when asked and answers from what it is shown.
async function pickProvider(): Promise<LlmProvider> {
  if (process.env.ANTHROPIC_API_KEY) {
    const { anthropicProvider } = await import("../../adapters/providers/anthropic/index.js");
    return anthropicProvider();
  }
  return mockProvider({
    respond(request) {
      const last = request.messages.at(-1);
      const results = last?.content.filter((block) => block.type === "tool_result") ?? [];
      if (results.length > 0) return "Stored: Maria's chocolate cake for Saturday.";
      const text = last?.content.map((block) => (block.type === "text" ? block.text : "")).join("\n") ?? "";
      if (text.includes("New order")) {
        return {
          toolCalls: [
            {
              name: "record_create",
              input: {
                skill: "Order Tracker",
                data: { customer: "Maria", item: "chocolate cake", day: "Saturday" },
              },
            },
          ],
        };
      }
      // What kilo remembers about the user rides in the system prompt.
      const known = request.system.map((block) => block.text).join("\n");
      if (text.includes("name of my bakery") && known.includes("Sweet Crumb"))
        return "Your bakery is Sweet Crumb.";
      return "Noted!";
    },
  });
}

// 2. kilo itself: storage and providers are all it needs.
const kilo = createKilo({ storage: memoryStorage(), providers: [await pickProvider()] });

// 3. A bot with a soul: who it is and how it behaves.
const bot = await kilo.bots.create({
  userId: "maria",
  name: "Crumb",
  soul: {
    personalityTraits: { tone: "warm", traits: ["organised"] },
    behavioralRules: { always: ["Confirm what you stored"], never: ["Invent orders"] },
  },
});

// 4. A skill with data: matched by its triggers, its records stored and queryable.
await kilo.skills.create(bot.id, {
  name: "Order Tracker",
  description: "Records customer orders.",
  instructions: "Store each new order. Answer from stored orders only.",
  triggers: ["new order", "orders"],
  dataFields: [
    { name: "customer", type: "string", required: true },
    { name: "item", type: "string", required: true },
    { name: "day", type: "date" },
  ],
});

const order = await kilo.chat({
  botId: bot.id,
  userId: "maria",
  message: "New order: Maria, chocolate cake, Saturday",
});
console.log(`Crumb: ${order.reply}  [skill: ${order.skill?.name ?? "none"}]`);

const records = await kilo.records.list(bot.id, order.skill!.id);
console.log(`Stored records: ${JSON.stringify(records.items.map((record) => record.data))}`);

// 5. Memory: a fact from one conversation is known in the next.
await kilo.chat({ botId: bot.id, userId: "maria", message: "By the way, my bakery is called Sweet Crumb." });
const later = await kilo.chat({ botId: bot.id, userId: "maria", message: "What's the name of my bakery?" });
console.log(`Crumb (new conversation): ${later.reply}`);
console.log(
  `Memories: ${(await kilo.memories.list(bot.id, "maria")).items.map((m) => m.content).join(" | ")}`,
);

await kilo.close();
