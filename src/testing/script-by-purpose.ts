import { KiloError } from "../errors.js";
import type { LlmRequest } from "../ports/llm-provider.js";
import type { MockReply } from "./mock-provider.js";

/** Scripted replies per request purpose (`chat`, `classify`, `propose-skill`, `extract-memory`, ...). */
export type PurposeScript = Record<string, MockReply[]>;

/** A `respond` function for `mockProvider` with queues per purpose; `remaining()` tells what was not used. */
export interface PurposeResponder {
  (request: LlmRequest, index: number): MockReply;
  /** Replies not consumed yet, per purpose. */
  remaining(): Record<string, number>;
}

/**
 * Scripts a mock provider per purpose, so a test of chat replies does not
 * have to know when the matcher's classifier or the skill proposer call the
 * model in between.
 *
 * @example
 * ```ts
 * const provider = mockProvider({
 *   respond: scriptByPurpose({
 *     classify: ['{"skill": null, "confidence": 0.9, "actionable": false, "reason": "small talk"}'],
 *     chat: ["Hello!"],
 *   }),
 * });
 * ```
 */
export function scriptByPurpose(script: PurposeScript): PurposeResponder {
  const queues = new Map(Object.entries(script).map(([purpose, replies]) => [purpose, [...replies]]));
  const respond = ((request: LlmRequest, index: number): MockReply => {
    const purpose = request.purpose ?? "";
    const reply = queues.get(purpose)?.shift();
    if (reply === undefined) {
      throw new KiloError(
        "REPLAY_EXHAUSTED",
        `No scripted reply left for purpose '${purpose}' (call #${index + 1}); scripted purposes: ${[...queues.keys()].join(", ") || "none"}`,
      );
    }
    return reply;
  }) as PurposeResponder;
  respond.remaining = () =>
    Object.fromEntries([...queues].map(([purpose, queue]) => [purpose, queue.length]));
  return respond;
}
