import { z } from "zod";
import { IdSchema } from "./common.js";
import { SkillDataFieldSchema } from "./skill.js";
import { ToolAuthSchema, ToolBaseUrlSchema, ToolEndpointSchema, ToolNameSchema } from "./tool.js";

/** State of a skill proposal. */
export const ProposalStatusSchema = z.enum(["pending", "accepted", "dismissed"]);
/** State of a skill proposal. */
export type ProposalStatus = z.infer<typeof ProposalStatusSchema>;

/** Where an integration proposal is: offered, approved and waiting for its credential, done, or declined. */
export const IntegrationStageSchema = z.enum(["proposed", "awaiting-credential", "completed", "declined"]);
/** Where an integration proposal is; see {@link IntegrationStageSchema}. */
export type IntegrationStage = z.infer<typeof IntegrationStageSchema>;

/** A skill an integration proposal would create; it needs the proposal's tool. */
export const ProposedSkillSchema = z.object({
  name: z.string().min(1).max(100),
  description: z.string().max(1024),
  instructions: z.string().max(20_000),
  triggers: z.array(z.string().min(1).max(200)).max(50),
});
/** A skill an integration proposal would create. */
export type ProposedSkill = z.infer<typeof ProposedSkillSchema>;

/** The tool an integration proposal would register (the secret comes later, through the API). */
export const ProposedToolSchema = z.object({
  name: ToolNameSchema,
  description: z.string().max(2000),
  baseUrl: ToolBaseUrlSchema,
  auth: ToolAuthSchema,
  endpoints: z.array(ToolEndpointSchema).min(1).max(100),
});
/** The tool an integration proposal would register. */
export type ProposedTool = z.infer<typeof ProposedToolSchema>;

/**
 * What auto-learning researched and proposes: a tool registration plus the
 * skills that use it, with where it came from and what was left out.
 */
export const IntegrationPlanSchema = z.object({
  /** What the user asked to learn ("Stripe"). */
  topic: z.string().min(1).max(200),
  stage: IntegrationStageSchema,
  /** The documentation pages the plan was drawn from. */
  sources: z.array(z.string().max(2000)).max(20),
  tool: ProposedToolSchema,
  skills: z.array(ProposedSkillSchema).max(10),
  /** Skills and endpoints the validation pipeline refused, with its reasons. */
  rejected: z
    .array(z.object({ name: z.string().max(200), reasons: z.array(z.string().max(500)).max(20) }))
    .max(50),
  /** The tool created once the plan was carried out. */
  toolId: IdSchema.nullable(),
  /** The skills created once the plan was carried out. */
  skillIds: z.array(IdSchema).max(10),
});
/** What auto-learning proposes; see {@link IntegrationPlanSchema}. */
export type IntegrationPlan = z.infer<typeof IntegrationPlanSchema>;

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
  /**
   * Present on an integration proposal from auto-learning (a tool plus
   * skills, see `kilo.learning`); absent on a plain skill proposal.
   */
  integration: IntegrationPlanSchema.optional(),
});

/** A skill the bot offered to create. */
export type Proposal = z.infer<typeof ProposalSchema>;
