import type { Proposal } from "../domain/proposal.js";
import type { ProposerInput } from "./skill-proposer.js";

/** The learner's answer to a message it handled. */
export interface LearnerReply {
  /** The reply to send the user. */
  reply: string;
  /** The integration proposal the message created or answered; `null` for a clarifying question or a refusal. */
  proposal: Proposal | null;
}

/**
 * The Learner port: auto-learning's hook in a turn, called by the
 * orchestrator before the skill proposer (the same place, the same way).
 *
 * `respond` handles, in this order:
 *
 * 1. An answer to a pending integration proposal of the conversation:
 *    "yes" approves it (a tool that needs a credential then waits for it,
 *    supplied through the API), "no" declines it.
 * 2. A message that looks like a pasted credential while a proposal of the
 *    conversation is open: refused, never used (chat is stored), with a
 *    pointer to the credential API.
 * 3. A learning request ("Learn how to use Stripe"): a vague one gets a
 *    clarifying question; a clear one is researched (search, read, analyse)
 *    and answered with an integration proposal. Research that fails is
 *    answered with what went wrong; nothing is created.
 *
 * It returns `null` for any other message, so the turn goes on as usual, and
 * must stay cheap then (no storage read, no model call).
 *
 * @example
 * ```ts
 * // Turn auto-learning off in chat (kilo.learning.* still works):
 * const kilo = createKilo({ storage, providers, learner: { respond: async () => null } });
 * ```
 */
export interface Learner {
  /** Handles a learning-related message, or returns `null`; see the interface. */
  respond(input: ProposerInput): Promise<LearnerReply | null>;
}
