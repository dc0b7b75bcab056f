/**
 * The bakery scenario from the Kilo seed, end to end:
 * a bot with a soul, an Order Tracker skill, orders stored and queried,
 * a fact learned in one session and used in the next, and a skill proposal
 * for an unmet request.
 *
 * `npm run demo` keeps its data in `.kilo-demo/bakery.sqlite`: run it again
 * and Crumb remembers the bakery, the orders and the stock. `--fresh` starts
 * over. Offline by default: model replies come from the recorded replay files
 * beside this file (made with `recordingProvider`). With ANTHROPIC_API_KEY, or
 * OPENAI_API_KEY (and optionally OPENAI_BASE_URL), set, it talks to the live model.
 */
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { anthropicProvider } from "../../adapters/providers/anthropic/index.js";
import { openaiProvider } from "../../adapters/providers/openai/index.js";
import { memoryStorage } from "../../adapters/storage/memory/index.js";
import { sqliteStorage } from "../../adapters/storage/sqlite/index.js";
import { createKilo, type Kilo, type LlmProvider, type Storage, type TurnResult } from "../../src/index.js";
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
  /** `first` played the whole scenario; `returning` found Crumb's data from an earlier run. */
  run: "first" | "returning";
}

/** Options of {@link runBakeryDemo}. */
export interface DemoOptions {
  /** Where Crumb's data lives. Default: in memory (nothing kept). */
  storage?: Storage;
  /** A live provider; default: the shipped replay files. */
  provider?: LlmProvider;
  /** Called with each line of the transcript as it happens. */
  print?: (line: string) => void;
}

const here = dirname(fileURLToPath(import.meta.url));
/** The recording of model replies for a first run. */
export const REPLAY_FILE = join(here, "bakery.replay.json");
/** The recording of model replies for a run that finds an earlier run's data. */
export const RETURNING_REPLAY_FILE = join(here, "bakery-returning.replay.json");
/** Where `npm run demo` keeps its data. */
export const DEMO_DATABASE = join(here, "../../.kilo-demo/bakery.sqlite");

const USER = "maria-baker";

const FIRST_RUN: Array<{ session: number; text: string }> = [
  { session: 1, text: "New order: Maria, chocolate cake, Saturday" },
  { session: 1, text: "New order: Tom, two dozen croissants, Friday" },
  { session: 1, text: "What orders do I have on Saturday?" },
  { session: 1, text: "By the way, my bakery is called Sweet Crumb." },
  { session: 2, text: "What's the name of my bakery again?" },
  { session: 2, text: "Can you track my inventory?" },
  { session: 2, text: "Yes, please" },
  { session: 2, text: "Inventory update: 20 kg flour" },
];

const RETURNING_RUN: Array<{ session: number; text: string }> = [
  { session: 1, text: "What's my bakery called?" },
  { session: 1, text: "What orders do I have on Saturday?" },
  { session: 1, text: "What's in stock?" },
];

async function createCrumb(kilo: Kilo): Promise<string> {
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
  return bot.id;
}

function describeTurn(result: TurnResult): string {
  const handledBy = result.skill
    ? `${result.skill.name} (${result.match.pass === "fast" ? "fast path" : "LLM"})`
    : result.proposal
      ? `skill proposal (${result.proposal.status})`
      : `no skill (${result.match.pass === "llm" ? "LLM decided" : result.match.pass})`;
  return [
    `skill: ${handledBy}`,
    result.toolCalls.length > 0 && `tools: ${result.toolCalls.map((call) => call.name).join(", ")}`,
    result.memories.length > 0 && `remembered: ${result.memories.map((m) => m.content).join("; ")}`,
    result.createdSkill && `created skill: ${result.createdSkill.name}`,
    `cost: $${result.usage.costUsd.toFixed(5)} (${result.usage.calls} LLM calls)`,
  ]
    .filter(Boolean)
    .join(" | ");
}

/** Plays the scenario (or, when Crumb already exists in `storage`, the returning visit) and returns the transcript. */
export async function runBakeryDemo(options: DemoOptions = {}): Promise<DemoOutcome> {
  const print = options.print ?? (() => undefined);
  const storage = options.storage ?? memoryStorage();
  await storage.init?.();
  const existing = (await storage.bots.listByUser(USER, { limit: 50 })).items.find(
    (bot) => bot.name === "Crumb",
  );
  const run = existing ? "returning" : "first";
  const mode = options.provider ? "live" : "replay";
  const provider = options.provider ?? replayProvider(run === "first" ? REPLAY_FILE : RETURNING_REPLAY_FILE);
  const kilo = createKilo({ storage, providers: [provider] });
  const botId = existing?.id ?? (await createCrumb(kilo));

  print(
    `kilo bakery demo (${mode === "replay" ? "offline: replaying recorded model replies" : "live"}, storage: ${storage.name})`,
  );
  print(
    run === "first"
      ? `Bot "Crumb" with a soul, and one skill: Order Tracker.\n`
      : `Crumb is back from an earlier run with ${(await kilo.skills.list(botId)).length} skills and what it learned.\n`,
  );

  const turns: DemoTurn[] = [];
  const conversations = new Map<number, string>();
  for (const step of run === "first" ? FIRST_RUN : RETURNING_RUN) {
    if (!conversations.has(step.session) && step.session > 1) print(`--- new session ${step.session} ---`);
    const result = await kilo.chat({
      botId,
      userId: USER,
      conversationId: conversations.get(step.session),
      message: step.text,
    });
    conversations.set(step.session, result.conversationId);
    turns.push({ session: step.session, user: step.text, result });
    print(`you:   ${step.text}`);
    print(`crumb: ${result.reply.replaceAll("\n", "\n       ")}`);
    print(`       [${describeTurn(result)}]\n`);
  }
  const usage = await kilo.usage.summary({ userId: USER });
  print(
    `All runs so far: ${usage.calls} LLM calls, ${usage.promptTokens + usage.cacheReadTokens + usage.cacheWriteTokens} prompt tokens ` +
      `(${usage.cacheReadTokens} from cache), ${usage.completionTokens} completion tokens, $${usage.costUsd.toFixed(4)}.`,
  );
  return { kilo, botId, userId: USER, turns, mode, run };
}

/** A live provider when a key is set in the environment (Anthropic first), else none: the demo replays. */
export function liveProvider(env: NodeJS.ProcessEnv = process.env): LlmProvider | undefined {
  if (env.ANTHROPIC_API_KEY) return anthropicProvider();
  if (env.OPENAI_API_KEY) return openaiProvider();
  return undefined;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const database = process.env.KILO_DEMO_DATABASE ?? DEMO_DATABASE;
  if (process.argv.includes("--fresh")) rmSync(database, { force: true });
  if (!existsSync(dirname(database))) mkdirSync(dirname(database), { recursive: true });
  const outcome = await runBakeryDemo({
    storage: sqliteStorage({ filename: database }),
    provider: liveProvider(),
    print: (line) => console.log(line),
  });
  console.log(
    outcome.run === "first"
      ? "\nRun `npm run demo` again: Crumb keeps its data in .kilo-demo/bakery.sqlite (`npm run demo -- --fresh` starts over)."
      : "\nEverything above came from the database written by the first run (`npm run demo -- --fresh` starts over).",
  );
  if (process.env.ANTHROPIC_API_KEY || process.env.OPENAI_API_KEY) {
    console.log(
      "(A provider key is set, but the provider adapters are not in this build yet: the demo ran offline.)",
    );
  }
  await outcome.kilo.close();
}
