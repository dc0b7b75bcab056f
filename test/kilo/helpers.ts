import { memoryStorage } from "../../adapters/storage/memory/index.js";
import { createKilo, type KiloOptions } from "../../src/index.js";
import { sequentialIds } from "../../src/runtime/defaults.js";
import { mockProvider, type PurposeScript, scriptByPurpose } from "../../src/testing/index.js";
import { NOW, ORDER_TRACKER } from "../fixtures.js";

export const USER = "user_1";

/** A classifier reply: what the matcher's LLM pass answers. */
export const classify = (skill: string | null, actionable = false, reason = "scripted") =>
  JSON.stringify({ skill, confidence: 0.9, actionable, reason });

/** A kilo on memory storage whose mock provider answers per purpose, with readable ids and a fixed clock. */
export function setup(script: PurposeScript, options: Partial<KiloOptions> = {}) {
  const respond = scriptByPurpose(script);
  const provider = mockProvider({ respond, model: "claude-sonnet-4-5" });
  let now = NOW.getTime();
  const kilo = createKilo({
    storage: memoryStorage(),
    providers: [provider],
    ids: sequentialIds(),
    clock: {
      now: () => {
        now += 1000;
        return new Date(now);
      },
    },
    ...options,
  });
  return { kilo, provider, respond };
}

/** A bot with the Order Tracker skill. */
export async function bakeryBot(kilo: ReturnType<typeof setup>["kilo"]) {
  const bot = await kilo.bots.create({ userId: USER, name: "Crumb" });
  const skill = await kilo.skills.create(bot.id, ORDER_TRACKER);
  return { bot, skill };
}

/** The text of the last user message of a recorded request. */
export function lastUserText(request: {
  messages: Array<{ role: string; content: Array<{ type: string; text?: string }> }>;
}) {
  const message = request.messages.findLast((m) => m.role === "user");
  return (message?.content ?? []).map((block) => block.text ?? "").join("\n");
}
