/**
 * The bakery scenario from the Kilo seed, end to end:
 * a bot with a soul, an Order Tracker skill, orders stored and queried,
 * a fact learned in one session and used in the next, and a skill proposal
 * for an unmet request.
 *
 * Run it with `npm run demo`. Offline by default: model replies come from
 * `bakery.replay.json` beside this file (recorded with `recordingProvider`).
 */

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { memoryStorage } from "../../adapters/storage/memory/index.js";
import { createKilo, type Kilo, type LlmProvider, type TurnResult } from "../../src/index.js";
import { replayProvider } from "../../src/testing/index.js";

/** One turn of the transcript. */
export interface DemoTurn {
  session: number;
  user: string;
  result: TurnResult;
}

/** What the demo did. */
export interface DemoOutcome {
  kilo: Kilo;
  botId: string;
  userId: string;
  turns: DemoTurn[];
  mode: "replay" | "live";
}

/** Options of {@link runBakeryDemo}. */
export interface DemoOptions {
  /** A live provider; default: the shipped replay file. */
  provider?: LlmProvider;
  /** Called with each line of the transcript as it happens. */
  print?: (line: string) => void;
}

const here = dirname(fileURLToPath(import.meta.url));
/** The shipped recording of model replies the offline demo plays. */
export const REPLAY_FILE = join(here, "bakery.replay.json");

const USER = "maria-baker";

const SCRIPT: Array<{ session: number; text: string }> = [
  { session: 1, text: "New order: Maria, chocolate cake, Saturday" },
  { session: 1, text: "New order: Tom, two dozen croissants, Friday" },
  { session: 1, text: "What orders do I have on Saturday?" },
  { session: 1, text: "By the way, my bakery is called Sweet Crumb." },
  { session: 2, text: "What's the name of my bakery again?" },
  { session: 2, text: "Can you track my inventory?" },
  { session: 2, text: "Yes, please" },
  { session: 2, text: "Inventory update: 20 kg flour" },
];

/** Plays the scenario and returns the transcript. */
export async function runBakeryDemo(options: DemoOptions = {}): Promise<DemoOutcome> {
  const print = options.print ?? (() => undefined);
  const mode = options.provider ? "live" : "replay";
  const provider = options.provider ?? replayProvider(REPLAY_FILE);
  const kilo = createKilo({ storage: memoryStorage(), providers: [provider] });

  const bot = await kilo.bots.create({
    userId: USER,
    name: "Crumb",
    soul: {
      personalityTraits: { tone: "warm and upbeat", energy: "calm", traits: ["organised", "encouraging"] },
      valuesAndPrinciples: ["Never lose an order", "Be honest about what you don't know"],
      communicationStyle: { verbosity: "concise", formality: "casual", formatting: "plain" },
      behavioralRules: { always: ["Confirm what you stored"], never: ["Invent orders"] },
      decisionFramework: { ambiguity: "Ask one short question." },
    },
  });
  await kilo.skills.create(bot.id, {
    name: "Order Tracker",
    description: "Records customer orders and answers questions about them.",
    instructions:
      "Store each new order with its customer, item and pickup day. Answer questions from stored orders only.",
    triggers: ["new order", "order", "orders", "pickup"],
    examples: ["New order: Ana, lemon tart, Sunday", "What orders are due Friday?", "Cancel Tom's order"],
    dataFields: [
      { name: "customer", type: "string", required: true, description: "Who ordered" },
      { name: "item", type: "string", required: true, description: "What they ordered" },
      { name: "pickup_day", type: "date", required: true, description: "When they pick it up" },
    ],
  });
  print(
    `kilo bakery demo (${mode === "replay" ? "offline: replaying examples/bakery/bakery.replay.json" : "live"})`,
  );
  print(`Bot "${bot.name}" with a soul, and one skill: Order Tracker.\n`);

  const turns: DemoTurn[] = [];
  const conversations = new Map<number, string>();
  for (const step of SCRIPT) {
    if (!conversations.has(step.session) && step.session > 1) print(`--- new session ${step.session} ---`);
    const result = await kilo.chat({
      botId: bot.id,
      userId: USER,
      conversationId: conversations.get(step.session),
      message: step.text,
    });
    conversations.set(step.session, result.conversationId);
    turns.push({ session: step.session, user: step.text, result });
    const handledBy = result.skill
      ? `${result.skill.name} (${result.match.pass === "fast" ? "fast path" : "LLM"})`
      : result.proposal
        ? `skill proposal (${result.proposal.status})`
        : `no skill (${result.match.pass === "llm" ? "LLM decided" : result.match.pass})`;
    print(`you:   ${step.text}`);
    print(`crumb: ${result.reply.replaceAll("\n", "\n       ")}`);
    const extras = [
      `skill: ${handledBy}`,
      result.toolCalls.length > 0 && `tools: ${result.toolCalls.map((call) => call.name).join(", ")}`,
      result.memories.length > 0 && `remembered: ${result.memories.map((m) => m.content).join("; ")}`,
      result.createdSkill && `created skill: ${result.createdSkill.name}`,
      `cost: $${result.usage.costUsd.toFixed(5)} (${result.usage.calls} LLM calls)`,
    ].filter(Boolean);
    print(`       [${extras.join(" | ")}]\n`);
  }
  const usage = await kilo.usage.summary({ userId: USER });
  print(
    `Total: ${usage.calls} LLM calls, ${usage.promptTokens + usage.cacheReadTokens + usage.cacheWriteTokens} prompt tokens ` +
      `(${usage.cacheReadTokens} from cache), ${usage.completionTokens} completion tokens, $${usage.costUsd.toFixed(4)}.`,
  );
  return { kilo, botId: bot.id, userId: USER, turns, mode };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const outcome = await runBakeryDemo({ print: (line) => console.log(line) });
  if (process.env.ANTHROPIC_API_KEY || process.env.OPENAI_API_KEY) {
    console.log(
      "\n(A provider key is set, but the provider adapters are not in this build yet: the demo ran offline.)",
    );
  }
  await outcome.kilo.close();
}
