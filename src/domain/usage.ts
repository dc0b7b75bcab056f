import { z } from "zod";
import { IdSchema } from "./common.js";
import { TaskTypeSchema } from "./skill.js";

/** One LLM call, as the gateway recorded it. Failed attempts that used tokens are recorded too. */
export const UsageRecordSchema = z.object({
  id: IdSchema,
  botId: IdSchema.nullable(),
  userId: IdSchema.nullable(),
  conversationId: IdSchema.nullable(),
  provider: z.string(),
  model: z.string(),
  taskType: TaskTypeSchema,
  /** What the call was for: `chat`, `classify`, `propose-skill`, ... */
  purpose: z.string(),
  promptTokens: z.number().int().nonnegative(),
  completionTokens: z.number().int().nonnegative(),
  cacheReadTokens: z.number().int().nonnegative(),
  cacheWriteTokens: z.number().int().nonnegative(),
  reasoningTokens: z.number().int().nonnegative(),
  /** Cost in US dollars from the gateway's price table (0 for unknown models). */
  costUsd: z.number().nonnegative(),
  latencyMs: z.number().nonnegative(),
  success: z.boolean(),
  errorCode: z.string().nullable(),
  createdAt: z.date(),
});

/** One LLM call, as the gateway recorded it. */
export type UsageRecord = z.infer<typeof UsageRecordSchema>;

/** Totals over a set of usage records. */
export interface UsageTotals {
  calls: number;
  promptTokens: number;
  completionTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  reasoningTokens: number;
  costUsd: number;
}

/** Usage totals for a user (optionally one bot) over a period. */
export interface UsageSummary extends UsageTotals {
  userId: string;
  botId: string | null;
  from: Date | null;
  to: Date | null;
}

/** Usage totals broken down by model, bot and UTC day. */
export interface UsageBreakdown {
  byModel: Array<UsageTotals & { model: string }>;
  byBot: Array<UsageTotals & { botId: string | null }>;
  byDay: Array<UsageTotals & { day: string }>;
}
