import { z } from "zod";
import { IdSchema, MetadataSchema } from "./common.js";

const line = z.string().min(1).max(500);
const lines = z.array(line).max(50).default([]);

/**
 * The five-layer soul: a structured personality, not a flat string.
 * Every layer is optional; empty layers are left out of the prompt.
 */
export const SoulSchema = z.object({
  /** Tone, energy and communication patterns, e.g. "warm", "playful". */
  personalityTraits: z
    .object({
      tone: z.string().max(200).optional(),
      energy: z.string().max(200).optional(),
      traits: lines,
    })
    .default({ traits: [] }),
  /** What the bot prioritises, most important first. */
  valuesAndPrinciples: lines,
  /** Verbosity, formality and formatting preferences. */
  communicationStyle: z
    .object({
      verbosity: z.enum(["concise", "balanced", "detailed"]).default("balanced"),
      formality: z.enum(["casual", "neutral", "formal"]).default("neutral"),
      /** `plain` strips Markdown from replies; `markdown` keeps it. */
      formatting: z.enum(["plain", "markdown"]).default("markdown"),
      /** Hard cap on reply length in characters (the response processor enforces it). */
      maxReplyLength: z.number().int().min(50).max(100_000).optional(),
    })
    .default({ verbosity: "balanced", formality: "neutral", formatting: "markdown" }),
  /** Always/never constraints and guardrails. */
  behavioralRules: z
    .object({
      always: lines,
      never: lines,
    })
    .default({ always: [], never: [] }),
  /** How to handle ambiguity, conflicts and escalation. */
  decisionFramework: z
    .object({
      ambiguity: z.string().max(1000).optional(),
      conflicts: z.string().max(1000).optional(),
      escalation: z.string().max(1000).optional(),
    })
    .default({}),
});

/** The five-layer soul. */
export type Soul = z.infer<typeof SoulSchema>;
/** A soul as a host writes it: every layer optional. */
export type SoulInput = z.input<typeof SoulSchema>;

/** A personal assistant owned by one user. */
export const BotSchema = z.object({
  id: IdSchema,
  userId: IdSchema,
  name: z.string().min(1).max(100),
  /** Structured personality. `null` falls back to `personality` and `context`. */
  soul: SoulSchema.nullable(),
  /** Flat personality text, used when there is no soul. */
  personality: z.string().max(4000).nullable(),
  /** Flat background context, used when there is no soul. */
  context: z.string().max(8000).nullable(),
  metadata: MetadataSchema,
  /**
   * The team the bot belongs to (its owner must be a member); it then sees
   * the team's skills. Absent or `null`: no team.
   */
  teamId: IdSchema.nullable().optional(),
  createdAt: z.date(),
  updatedAt: z.date(),
});

/** A personal assistant owned by one user. */
export type Bot = z.infer<typeof BotSchema>;

/** Input of `kilo.bots.create`. */
export const CreateBotInputSchema = z.object({
  id: IdSchema.optional(),
  userId: IdSchema,
  name: z.string().min(1).max(100),
  soul: SoulSchema.nullish(),
  personality: z.string().max(4000).nullish(),
  context: z.string().max(8000).nullish(),
  metadata: MetadataSchema.optional(),
  /** A team the owner is a member of; the bot then sees the team's skills. */
  teamId: IdSchema.nullish(),
});

/** Input of `kilo.bots.create`. */
export type CreateBotInput = z.input<typeof CreateBotInputSchema>;

/** Input of `kilo.bots.update`: every field optional; `null` clears a nullable field. */
export const UpdateBotInputSchema = z
  .object({
    name: z.string().min(1).max(100),
    soul: SoulSchema.nullable(),
    personality: z.string().max(4000).nullable(),
    context: z.string().max(8000).nullable(),
    metadata: MetadataSchema,
    /** Moves the bot to a team its owner is a member of; `null` takes it out of its team. */
    teamId: IdSchema.nullable(),
  })
  .partial()
  .strict();

/** Input of `kilo.bots.update`. */
export type UpdateBotInput = z.input<typeof UpdateBotInputSchema>;
