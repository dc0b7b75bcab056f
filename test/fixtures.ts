import type { Bot } from "../src/domain/bot.js";
import { type SoulInput, SoulSchema } from "../src/domain/bot.js";
import type { Message } from "../src/domain/conversation.js";
import type { Memory } from "../src/domain/memory.js";
import { type CreateSkillInput, CreateSkillInputSchema, type Skill } from "../src/domain/skill.js";
import type { ToolEndpoint } from "../src/domain/tool.js";
import { KiloError } from "../src/errors.js";
import type { Kilo } from "../src/kilo.js";

export const NOW = new Date("2026-11-21T10:00:00.000Z");

export function makeBot(overrides: Partial<Bot> & { soulInput?: SoulInput } = {}): Bot {
  const { soulInput, ...rest } = overrides;
  return {
    id: "bot_1",
    userId: "user_1",
    name: "Crumb",
    soul: soulInput ? SoulSchema.parse(soulInput) : null,
    personality: null,
    context: null,
    metadata: {},
    createdAt: NOW,
    updatedAt: NOW,
    ...rest,
  };
}

export function makeSkill(input: CreateSkillInput & { id?: string; botId?: string }): Skill {
  const { botId, ...body } = input;
  const parsed = CreateSkillInputSchema.parse(body);
  const bot = botId ?? "bot_1";
  return {
    ...parsed,
    id: parsed.id ?? "skill_1",
    botId: bot,
    scope: { kind: "bot", id: bot },
    createdAt: NOW,
    updatedAt: NOW,
  };
}

export function makeMemory(key: string, content: string, overrides: Partial<Memory> = {}): Memory {
  return {
    id: `mem_${key.replace(/\W+/g, "_")}`,
    botId: "bot_1",
    userId: "user_1",
    key,
    content,
    source: { kind: "manual", conversationId: null, messageId: null },
    history: [],
    createdAt: NOW,
    updatedAt: NOW,
    ...overrides,
  };
}

export function makeMessage(seq: number, role: Message["role"], content: string): Message {
  return {
    id: `msg_${seq}`,
    conversationId: "conv_1",
    botId: "bot_1",
    role,
    content,
    seq,
    metadata: {},
    createdAt: NOW,
  };
}

export const ORDER_TRACKER: CreateSkillInput = {
  name: "Order Tracker",
  description: "Records customer orders and answers questions about them.",
  instructions: "Store each new order. Answer from stored orders only.",
  triggers: ["new order", "order", "orders", "pickup"],
  examples: ["New order: Ana, lemon tart, Sunday", "What orders are due Friday?"],
  dataFields: [
    { name: "customer", type: "string", required: true, description: "Who ordered" },
    { name: "item", type: "string", required: true, description: "What they ordered" },
    { name: "pickup_day", type: "date", required: true, description: "When they pick it up" },
    { name: "status", type: "enum", options: ["open", "done"] },
  ],
};

/** The KiloError `promise` rejects with; throws when it resolves or rejects with anything else. */
export async function kiloFailure(promise: Promise<unknown>): Promise<KiloError> {
  try {
    await promise;
  } catch (error) {
    if (KiloError.is(error)) return error;
    throw error;
  }
  throw new Error("expected the call to fail with a KiloError");
}

/** A matcher that never calls the model and never matches: keeps a script to chat replies. */
export const quietMatcher = {
  async match() {
    return {
      skill: null,
      confidence: 1,
      pass: "none" as const,
      reason: "test",
      actionable: false,
      taskType: "simple_qa" as const,
      candidates: [],
      context: { historyDepth: 10, memoryQuery: null, memoryLimit: 0, skillData: null },
    };
  },
};

/** A risky endpoint (`POST /v1/refunds`, amount in cents): calling it waits for the user's approval. */
export const RISKY_REFUND_ENDPOINT: ToolEndpoint = {
  name: "refund",
  method: "POST",
  path: "/v1/refunds",
  description: "Refund a payment",
  parameters: [{ name: "amount", in: "body", type: "integer", required: true, description: "Cents" }],
  risky: true,
};

/** A bot of `userId` named Till with the tool `shop` (no auth) holding only {@link RISKY_REFUND_ENDPOINT}. */
export async function botWithRiskyShop(kilo: Kilo, userId: string): Promise<Bot> {
  const bot = await kilo.bots.create({ userId, name: "Till" });
  await kilo.tools.create(bot.id, {
    name: "shop",
    baseUrl: "https://api.test.kilo",
    auth: { type: "none" },
    endpoints: [RISKY_REFUND_ENDPOINT],
  });
  return bot;
}
