import { z } from "zod";
import { IdSchema, type Page } from "../domain/common.js";
import { type Trace, type TraceFeedbackInput, TraceFeedbackInputSchema } from "../domain/trace.js";
import { KiloError } from "../errors.js";
import type { Clock } from "../ports/clock.js";
import type { Storage, TraceRepository } from "../ports/storage.js";
import { parseInput } from "../runtime/validate.js";

/** Options of `createKilo({ traces })`. */
export interface TraceOptions {
  /**
   * Keep traces this many days; `kilo.traces.prune()` deletes older ones.
   * Default: kept until pruned with an explicit cutoff. kilo runs no timer:
   * the host schedules `prune()` (a cron job, a daily `setInterval`).
   */
  retentionDays?: number | undefined;
}

/** A query of `kilo.traces.list`: the bot's traces, optionally one user's, in a `[from, to)` window, paged. */
export interface TraceQuery {
  botId: string;
  userId?: string | undefined;
  from?: Date | undefined;
  to?: Date | undefined;
  /** Page size, 1–500 (default 50). */
  limit?: number | undefined;
  /** The `nextCursor` of the previous page. */
  cursor?: string | null | undefined;
}

const TraceQuerySchema = z
  .object({
    botId: IdSchema,
    userId: IdSchema.optional(),
    from: z.date().optional(),
    to: z.date().optional(),
    limit: z.number().int().min(1).max(500).default(50),
    cursor: z.string().min(1).max(1000).nullish(),
  })
  .strict();

const TraceOptionsSchema = z.object({ retentionDays: z.number().positive().max(36_500).optional() }).strict();

/** `kilo.traces`: what chat turns did, user feedback on them, and retention. */
export interface KiloTraces {
  /** The bot's traces, oldest first, paged; `userId`, `from` and `to` narrow them. */
  list(query: TraceQuery): Promise<Page<Trace>>;
  /** One trace of the bot. Fails with `NOT_FOUND`. */
  get(botId: string, traceId: string): Promise<Trace>;
  /** Records a thumbs up or down (and an optional comment) on a turn, replacing earlier feedback. Fails with `NOT_FOUND`. */
  feedback(botId: string, traceId: string, feedback: TraceFeedbackInput): Promise<Trace>;
  /**
   * Deletes traces older than the retention (`createKilo({ traces: { retentionDays } })`),
   * or older than `olderThan` when given; returns how many. Without either it deletes nothing.
   */
  prune(options?: { olderThan?: Date }): Promise<{ deleted: number }>;
}

const DAY_MS = 86_400_000;

/** Builds `kilo.traces` over the storage's trace repository. */
export function createTraceApi(storage: Storage, clock: Clock, options: TraceOptions = {}): KiloTraces {
  const { retentionDays } = parseInput(TraceOptionsSchema, options, "traces options");
  const repository = (): TraceRepository => {
    if (!storage.traces) {
      throw new KiloError(
        "CONFIGURATION_INVALID",
        `Storage adapter '${storage.name}' has no traces repository, so kilo keeps no traces`,
      );
    }
    return storage.traces;
  };
  const get = async (botId: string, traceId: string): Promise<Trace> => {
    const trace = await repository().get(
      parseInput(IdSchema, botId, "bot id"),
      parseInput(IdSchema, traceId, "trace id"),
    );
    if (!trace) throw new KiloError("NOT_FOUND", `Bot '${botId}' has no trace '${traceId}'`);
    return trace;
  };
  return {
    async list(query) {
      const { limit, cursor, ...filter } = parseInput(TraceQuerySchema, query, "trace query");
      return repository().list(filter, { limit, cursor });
    },
    get,
    async feedback(botId, traceId, raw) {
      const input = parseInput(TraceFeedbackInputSchema, raw, "trace feedback");
      await get(botId, traceId);
      const updated = await repository().setFeedback(botId, traceId, {
        rating: input.rating,
        comment: input.comment ?? null,
        at: clock.now(),
      });
      if (!updated) throw new KiloError("NOT_FOUND", `Bot '${botId}' has no trace '${traceId}'`);
      return updated;
    },
    async prune(pruneOptions = {}) {
      const cutoff =
        pruneOptions.olderThan ??
        (retentionDays === undefined ? null : new Date(clock.now().getTime() - retentionDays * DAY_MS));
      if (cutoff === null) return { deleted: 0 };
      return { deleted: await repository().deleteOlderThan(cutoff) };
    },
  };
}
