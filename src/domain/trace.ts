import { z } from "zod";

/** How the turn's skill was chosen: the keyword `fast` path, the `llm` classifier, `none` (no skills), or `null` when no matcher ran (a proposal answer, a learning request). */
export type TraceMatchPass = "fast" | "llm" | "none";

/** A tool call as a trace keeps it: the name and whether it worked (never its input or result). */
export interface TraceToolCall {
  name: string;
  ok: boolean;
}

/** A user's verdict on a turn, given after it (`kilo.traces.feedback`). */
export const TraceFeedbackInputSchema = z
  .object({
    rating: z.enum(["up", "down"]),
    comment: z.string().trim().max(2000).optional(),
  })
  .strict();

/** A user's verdict on a turn, as `kilo.traces.feedback` takes it. */
export type TraceFeedbackInput = z.input<typeof TraceFeedbackInputSchema>;

/** A user's verdict on a turn, as stored on its trace. */
export interface TraceFeedback {
  rating: "up" | "down";
  comment: string | null;
  /** When the feedback was given (the latest feedback replaces earlier feedback). */
  at: Date;
}

/**
 * What one chat turn did, kept for review, feedback and evolution
 * (LLMos-Lite's execution traces). Written with the turn's reply, in the same
 * storage call. Never holds secrets: tool calls keep only their name and
 * outcome.
 */
export interface Trace {
  id: string;
  botId: string;
  userId: string;
  /** The conversation of the turn (`null` when the turn failed before it had one). */
  conversationId: string | null;
  /** The stored user message of the turn. */
  userMessageId: string | null;
  /** The stored reply (`null` when the turn failed). */
  replyMessageId: string | null;
  /** The user's message, as received. */
  message: string;
  /** The skill that handled the turn, if any. */
  skillId: string | null;
  skillName: string | null;
  /** Which matcher pass decided; `null` when no matcher ran. */
  matchPass: TraceMatchPass | null;
  /** How sure that pass was (0..1); `null` when no matcher ran. */
  matchConfidence: number | null;
  /** Names of the skills whose instructions went into the prompt (LLMos-Lite's `skills_used`). */
  skillsInjected: string[];
  toolCalls: TraceToolCall[];
  /** `ok`, or `error` with the KiloError code in `errorCode`. */
  outcome: "ok" | "error";
  errorCode: string | null;
  /** Wall time of the turn in milliseconds. */
  latencyMs: number;
  /** The model of the turn's last LLM call (`null` when none was made). */
  model: string | null;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
  feedback: TraceFeedback | null;
  createdAt: Date;
}
