import { z } from "zod";
import { IdSchema } from "./common.js";
import { SkillDataFieldSchema } from "./skill.js";

/** State of a skill proposal. */
export const ProposalStatusSchema = z.enum(["pending", "accepted", "dismissed"]);
/** State of a skill proposal. */
export type ProposalStatus = z.infer<typeof ProposalStatusSchema>;

/**
 * A skill the bot offered to create because nothing handled a request.
 * A dismissed proposal keeps the bot from offering the same skill again for a while.
 */
export const ProposalSchema = z.object({
  id: IdSchema,
  botId: IdSchema,
  userId: IdSchema,
  conversationId: IdSchema.nullable(),
  name: z.string().min(1).max(100),
  description: z.string().max(1024),
  triggers: z.array(z.string().min(1).max(200)).max(50),
  dataFields: z.array(SkillDataFieldSchema).max(50),
  clarifyingQuestions: z.array(z.string().min(1).max(500)).max(10),
  /** The user message that led to the proposal. */
  sourceMessage: z.string().max(100_000),
  status: ProposalStatusSchema,
  /** The skill created when the proposal was accepted. */
  skillId: IdSchema.nullable(),
  createdAt: z.date(),
  resolvedAt: z.date().nullable(),
});

/** A skill the bot offered to create. */
export type Proposal = z.infer<typeof ProposalSchema>;
