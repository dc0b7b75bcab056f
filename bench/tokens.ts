/**
 * Token efficiency: a 50-turn scripted conversation with 20 skills and 100
 * memories. For every chat call it reports the prompt kilo sent against a
 * naive prompt (the whole history plus every skill in full plus every
 * memory), and the share of the prompt that is a stable prefix of the
 * previous call's prompt (what a provider's prompt cache can reuse).
 * Tokens are estimated as characters / 4 for both, so the ratio is fair.
 *
 *   npx tsx bench/tokens.ts
 */
import { memoryStorage } from "../adapters/storage/memory/index.js";
import { createKilo, type LlmProvider, type LlmRequest, type Skill } from "../src/index.js";
import { isMain, saveResult } from "./support.js";

/** One chat call of the scripted conversation. */
export interface TokenTurn {
  turn: number;
  promptTokens: number;
  naiveTokens: number;
  ratio: number;
  /** Share of the prompt identical to the start of the previous prompt: what a prefix cache actually reuses. */
  cacheableShare: number;
  /** Share before the last cache breakpoint (everything but the newest user message): what the provider can cache. */
  breakpointShare: number;
}

/** What the token bench reports. */
export interface TokenResult {
  turns: TokenTurn[];
  atTurn50: { ratio: number; target: number; met: boolean };
  minCacheableFromTurn2: { share: number; target: number; met: boolean; turnsBelow: number[] };
  minBreakpointShareFromTurn2: { share: number; target: number; met: boolean };
}

const tokens = (chars: number) => Math.ceil(chars / 4);

/**
 * The request as a provider's cache and tokenizer see it: tools, then system,
 * then messages, in order. Text is counted as text (system and message text
 * alike: a newline is one character, not the two of a JSON escape); tool
 * definitions, tool calls and tool results as the JSON they are sent as.
 */
function serialize(request: LlmRequest): string {
  const parts = [JSON.stringify(request.tools ?? []), ...request.system.map((block) => block.text)];
  for (const message of request.messages) {
    for (const block of message.content) {
      parts.push(`${message.role}:${block.type === "text" ? block.text : JSON.stringify(block)}`);
    }
  }
  return parts.join("\n");
}

function commonPrefix(a: string, b: string): number {
  const max = Math.min(a.length, b.length);
  let i = 0;
  while (i < max && a.charCodeAt(i) === b.charCodeAt(i)) i += 1;
  return i;
}

const TOPICS = [
  "order",
  "invoice",
  "recipe",
  "supplier",
  "delivery",
  "staff shift",
  "oven",
  "catering",
  "allergen",
  "expense",
  "inventory",
  "loyalty",
  "wedding cake",
  "market stall",
  "pricing",
  "review",
  "newsletter",
  "payroll",
  "cleaning",
  "permit",
];

export async function benchTokens(): Promise<TokenResult> {
  const requests: LlmRequest[] = [];
  const usage = {
    inputTokens: 0,
    outputTokens: 0,
    cacheReadTokens: 0,
    cacheWriteTokens: 0,
    reasoningTokens: 0,
  };
  const provider: LlmProvider = {
    name: "recorder",
    defaultModel: "recorder-1",
    capabilities: { thinking: false, streaming: false, promptCaching: true },
    async complete(request) {
      if (request.purpose === "chat") requests.push(request);
      const text =
        request.purpose === "classify"
          ? JSON.stringify({ skill: null, confidence: 0.9, actionable: false, reason: "chat" })
          : "Done. I've noted that and updated everything accordingly for you.";
      return { content: [{ type: "text", text }], stopReason: "end_turn", usage, model: request.model };
    },
  };
  const storage = memoryStorage();
  // A fixed clock, so the figures do not depend on the day the bench runs (the
  // turn context names the weekday): a Wednesday, the longest name, two minutes a turn.
  let now = new Date("2026-03-04T09:00:00Z");
  const kilo = createKilo({
    storage,
    clock: { now: () => now },
    providers: [provider],
    prices: { "recorder-1": { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 } },
  });
  const bot = await kilo.bots.create({
    userId: "token-user",
    name: "Crumb",
    soul: {
      personalityTraits: { tone: "warm", traits: ["organised", "precise"] },
      valuesAndPrinciples: ["Never lose an order", "Be honest"],
      behavioralRules: { always: ["Confirm what you stored"], never: ["Invent data"] },
    },
  });
  const skills: Skill[] = [];
  for (const [index, topic] of TOPICS.entries()) {
    skills.push(
      await kilo.skills.create(bot.id, {
        name: `${topic.replace(/\b\w/g, (c) => c.toUpperCase())} Helper`,
        description: `Keeps track of ${topic} details for the bakery.`,
        instructions:
          `When the user talks about ${topic}s, store the details with your tools, confirm what was stored, and answer questions from stored data only. Keep answers short. `.repeat(
            3,
          ),
        triggers: [`${topic}`, `${topic}s`, `new ${topic}`],
        examples: [
          `Add a ${topic} for Friday`,
          `What ${topic}s do I have?`,
          `Update the ${topic} from Tuesday`,
        ],
        dataFields:
          index % 2 === 0
            ? [
                { name: "title", type: "string", required: true, description: `The ${topic}` },
                { name: "day", type: "date", description: "When" },
                { name: "notes", type: "string", description: "Anything else" },
              ]
            : [],
      }),
    );
  }
  for (let n = 0; n < 100; n += 1) {
    await storage.memories.create({
      id: `mem_${n}`,
      botId: bot.id,
      userId: "token-user",
      key: `fact ${n}`,
      content: `Fact ${n}: the bakery's ${TOPICS[n % TOPICS.length]} preference number ${n} is to keep things simple.`,
      source: { kind: "manual", conversationId: null, messageId: null },
      history: [],
      createdAt: new Date(Date.UTC(2026, 0, 1, 0, n)),
      updatedAt: new Date(Date.UTC(2026, 0, 1, 0, n)),
    });
  }

  const turns: TokenTurn[] = [];
  const history: string[] = [];
  let conversationId: string | undefined;
  let previous = "";
  for (let turn = 1; turn <= 50; turn += 1) {
    const topic = TOPICS[turn % TOPICS.length]!;
    const message =
      turn % 3 === 0
        ? `What ${topic}s do I have this week?`
        : turn % 3 === 1
          ? `New ${topic}: entry number ${turn} for the shop, due Friday`
          : `Thanks, and how are things looking overall today?`;
    now = new Date(now.getTime() + 120_000);
    const result = await kilo.chat({ botId: bot.id, userId: "token-user", conversationId, message });
    conversationId = result.conversationId;
    const request = requests.at(-1)!;
    const sent = serialize(request);
    const naiveChars =
      request.system.reduce((sum, block) => sum + block.text.length, 0) +
      JSON.stringify(skills).length +
      (await storage.memories.list(bot.id, "token-user", { limit: 500 })).items.reduce(
        (sum, m) => sum + m.content.length,
        0,
      ) +
      history.join("\n").length +
      message.length;
    const cacheable = turn === 1 ? 0 : commonPrefix(previous, sent) / sent.length;
    const volatile = serialize({
      ...request,
      tools: [],
      system: [],
      messages: request.messages.slice(-1),
    }).length;
    const breakpointShare = (sent.length - volatile) / sent.length;
    turns.push({
      turn,
      promptTokens: tokens(sent.length),
      naiveTokens: tokens(naiveChars),
      ratio: tokens(sent.length) / tokens(naiveChars),
      cacheableShare: cacheable,
      breakpointShare,
    });
    history.push(message, result.reply);
    previous = sent;
  }
  await kilo.close();
  const last = turns.at(-1)!;
  const minShare = Math.min(...turns.slice(1).map((turn) => turn.cacheableShare));
  const minBreakpoint = Math.min(...turns.slice(1).map((turn) => turn.breakpointShare));
  return {
    turns,
    atTurn50: { ratio: last.ratio, target: 0.35, met: last.ratio <= 0.35 },
    minCacheableFromTurn2: {
      share: minShare,
      target: 0.8,
      met: minShare >= 0.8,
      turnsBelow: turns.filter((turn) => turn.turn > 1 && turn.cacheableShare < 0.8).map((turn) => turn.turn),
    },
    minBreakpointShareFromTurn2: { share: minBreakpoint, target: 0.8, met: minBreakpoint >= 0.8 },
  };
}

if (isMain(import.meta.url)) {
  const result = await benchTokens();
  console.table(
    result.turns
      .filter((turn) => turn.turn <= 3 || turn.turn % 10 === 0)
      .map((turn) => ({
        turn: turn.turn,
        "prompt tokens": turn.promptTokens,
        "naive tokens": turn.naiveTokens,
        "kilo / naive": `${(turn.ratio * 100).toFixed(1)}%`,
        "reused prefix": `${(turn.cacheableShare * 100).toFixed(1)}%`,
        "before last breakpoint": `${(turn.breakpointShare * 100).toFixed(1)}%`,
      })),
  );
  console.log(
    `turn 50: ${(result.atTurn50.ratio * 100).toFixed(1)}% of the naive prompt (target <= 35%); ` +
      `lowest reused-prefix share from turn 2: ${(result.minCacheableFromTurn2.share * 100).toFixed(1)}%; ` +
      `lowest share before the last cache breakpoint: ${(result.minBreakpointShareFromTurn2.share * 100).toFixed(1)}% (target >= 80%)`,
  );
  await saveResult("tokens", result);
}
