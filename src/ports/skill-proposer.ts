import type { Bot } from "../domain/bot.js";
import type { Proposal } from "../domain/proposal.js";
import type { Skill } from "../domain/skill.js";
import type { SkillMatch } from "./skill-matcher.js";

/** Shared input of the proposer's methods. */
export interface ProposerInput {
  bot: Bot;
  userId: string;
  conversationId: string;
  message: string;
  signal?: AbortSignal | undefined;
}

/** The proposer's answer to a message about a pending proposal. */
export interface ProposalReply {
  /** The reply to send the user. */
  reply: string;
  proposal: Proposal;
  /** The skill created when the user accepted. */
  skill: Skill | null;
}

/** A new proposal and the reply that presents it. */
export interface ProposalOffer {
  reply: string;
  proposal: Proposal;
}

/**
 * The SkillProposer port: offers a new skill when nothing handles an
 * actionable request, and handles the user's answer.
 */
export interface SkillProposer {
  /**
   * When a proposal is pending in the conversation and the message answers it
   * ("yes", "no thanks"), accepts or dismisses it. Returns `null` when the
   * message is not an answer, so the turn goes on as usual.
   */
  respond(input: ProposerInput): Promise<ProposalReply | null>;
  /**
   * Proposes a skill for an unmet, actionable request, or returns `null`
   * (not actionable, or the user recently declined a similar skill).
   */
  consider(input: ProposerInput & { match: SkillMatch; skills: Skill[] }): Promise<ProposalOffer | null>;
}
