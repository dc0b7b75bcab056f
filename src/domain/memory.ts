import { z } from "zod";
import { IdSchema } from "./common.js";

/** Where a remembered fact came from. */
export const MemorySourceSchema = z.object({
  kind: z.enum(["conversation", "manual"]),
  conversationId: IdSchema.nullable(),
  messageId: IdSchema.nullable(),
});

/** Where a remembered fact came from. */
export type MemorySource = z.infer<typeof MemorySourceSchema>;

/** An earlier value of a fact that was later refined or contradicted. */
export const MemoryRevisionSchema = z.object({
  content: z.string(),
  source: MemorySourceSchema,
  replacedAt: z.date(),
});

/** An earlier value of a fact. */
export type MemoryRevision = z.infer<typeof MemoryRevisionSchema>;

/**
 * A fact the bot remembers about its user. `key` names what the fact is
 * about (`bakery name`), so a new fact about the same thing replaces the old
 * one (which moves to `history`) instead of piling up.
 */
export const MemorySchema = z.object({
  id: IdSchema,
  botId: IdSchema,
  userId: IdSchema,
  key: z.string().min(1).max(200),
  content: z.string().min(1).max(2000),
  source: MemorySourceSchema,
  history: z.array(MemoryRevisionSchema),
  createdAt: z.date(),
  updatedAt: z.date(),
});

/** A fact the bot remembers about its user. */
export type Memory = z.infer<typeof MemorySchema>;
