import { z } from "zod";
import { IdSchema, MetadataSchema } from "./common.js";

/** A thread of messages between one user and one bot. */
export const ConversationSchema = z.object({
  id: IdSchema,
  botId: IdSchema,
  userId: IdSchema,
  /** Where the conversation happens: `api`, `cli`, `telegram`, ... */
  channel: z.string().min(1).max(50),
  title: z.string().max(200).nullable(),
  metadata: MetadataSchema,
  createdAt: z.date(),
  updatedAt: z.date(),
});

/** A thread of messages between one user and one bot. */
export type Conversation = z.infer<typeof ConversationSchema>;

/** Who wrote a message. */
export const MessageRoleSchema = z.enum(["user", "assistant"]);
/** Who wrote a message. */
export type MessageRole = z.infer<typeof MessageRoleSchema>;

/** One message of a conversation. */
export const MessageSchema = z.object({
  id: IdSchema,
  conversationId: IdSchema,
  botId: IdSchema,
  role: MessageRoleSchema,
  content: z.string().max(100_000),
  /** Position in the conversation, assigned by storage: strictly increasing per conversation. */
  seq: z.number().int().nonnegative(),
  /** Details of the turn: matched skill, tool calls, usage. */
  metadata: MetadataSchema,
  createdAt: z.date(),
});

/** One message of a conversation. */
export type Message = z.infer<typeof MessageSchema>;

/** A message as handed to storage; `seq` is assigned on append. */
export type NewMessage = Omit<Message, "seq">;

/**
 * Validates what `kilo.chat` receives (a `TurnInput`): the orchestrator and
 * the run service, which refuses bad input before storing the turn's run.
 */
export const TurnInputSchema = z.object({
  botId: IdSchema,
  userId: IdSchema,
  conversationId: IdSchema.optional(),
  message: z.string().trim().min(1, "must not be empty").max(100_000),
  channel: z.string().min(1).max(50).default("api"),
  context: z.array(z.string().min(1).max(20_000)).max(20).optional(),
  skills: z
    .object({ include: z.boolean().optional(), max: z.number().int().min(0).max(1000).optional() })
    .strict()
    .optional(),
  signal: z.instanceof(AbortSignal).optional(),
});
