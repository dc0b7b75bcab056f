import { z } from "zod";
import { IdSchema } from "./common.js";
import { RunErrorSchema } from "./run.js";

/**
 * What a run step did: `turn` (a bot turn in the run's conversation,
 * `ctx.turn`), `ask` (another bot asked as a sub-agent, `ctx.ask`) or `step`
 * (host code with side effects, `ctx.step`).
 */
export const RunStepKindSchema = z.enum(["turn", "ask", "tool", "step"]);
/** What a run step did. */
export type RunStepKind = z.infer<typeof RunStepKindSchema>;

/** Where a run step is: `running` until it returns (or its process dies), then `succeeded` or `failed`. */
export const RunStepStatusSchema = z.enum(["running", "succeeded", "failed"]);
/** Where a run step is. */
export type RunStepStatus = z.infer<typeof RunStepStatusSchema>;

/**
 * One recorded step of a run's workflow. Steps are numbered in the order the
 * workflow makes them (`index` 0, 1, 2, ...); when a run is re-executed after
 * a crash, a step already `succeeded` at the same index and name is not made
 * again: its `output` is returned instead.
 */
export const RunStepSchema = z.object({
  runId: IdSchema,
  /** The run's bot (steps go with their run, and their run with its bot). */
  botId: IdSchema,
  /** Order within the run, from 0. */
  index: z.number().int().nonnegative(),
  /** The step's name: `ctx.step(name, fn)`'s name, `turn` or `ask:<botId>`. */
  name: z.string().min(1).max(200),
  kind: RunStepKindSchema,
  status: RunStepStatusSchema,
  /** What the step returned, as JSON (`undefined` becomes `null`); `null` until it succeeded. */
  output: z.unknown(),
  /** Why it failed; `null` unless `failed`. */
  error: RunErrorSchema.nullable(),
  startedAt: z.date(),
  finishedAt: z.date().nullable(),
});

/** One recorded step of a run's workflow. */
export type RunStep = z.infer<typeof RunStepSchema>;
