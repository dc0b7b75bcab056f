import { z } from "zod";
import { IdSchema } from "./common.js";

/** Versions of the inbound event schema this kilo accepts. */
export const SUPPORTED_EVENT_SCHEMA_VERSIONS = [1] as const;

/**
 * A normalized inbound event, schema version 1: what every ingress (HTTP,
 * CLI, Telegram, host code) turns its input into before `kilo.runs.ingest`.
 *
 * The first six fields are the my-kaiser contract; `delivery_id` (an
 * idempotency key: a Telegram `update_id`, an HTTP `Idempotency-Key`) and
 * `bot_id` (a routing hint) are kilo's optional additions.
 *
 * @example
 * ```ts
 * const event: InboundEventInput = {
 *   schema_version: 1,
 *   type: "telegram.message",
 *   conversation_key: "tg:12345",
 *   user_key: "tg_user_678",
 *   text: "What's on my list?",
 *   delivery_id: 90210,
 * };
 * ```
 */
export const InboundEventSchema = z.object({
  schema_version: z.literal(1, {
    error: `unsupported schema_version; supported versions: ${SUPPORTED_EVENT_SCHEMA_VERSIONS.join(", ")}`,
  }),
  /** What happened, e.g. `message` or `telegram.message`; it names the workflow that handles the event. */
  type: z
    .string()
    .min(1, "must not be empty")
    .max(50)
    .regex(/^[A-Za-z0-9_.:-]+$/, "may contain only letters, digits, '_', '-', '.' and ':'"),
  /** The conversation the event belongs to (a Telegram chat id, a session id). Events of one key run in order. */
  conversation_key: z.string().min(1, "must not be empty").max(256),
  /** Who sent it; becomes the kilo user id. */
  user_key: IdSchema,
  /** The message text. */
  text: z.string().trim().min(1, "must not be empty").max(100_000),
  /** The ingress's original payload. May hold PII or secrets: stored only when the host opts in. */
  raw: z.unknown().optional(),
  /** Idempotency key: an event whose delivery id was already ingested returns the existing run. */
  delivery_id: z
    .union([z.string().min(1).max(256), z.number().int().nonnegative()])
    .transform((value) => String(value))
    .optional(),
  /** Routing hint: the bot the event is for, when the ingest call does not name one. */
  bot_id: IdSchema.optional(),
});

/** A normalized inbound event, as the host passes it. */
export type InboundEventInput = z.input<typeof InboundEventSchema>;
/** A normalized inbound event after validation (`delivery_id` is always a string). */
export type InboundEvent = z.output<typeof InboundEventSchema>;

/** Where a run is in its life. `queued` and `running` are unfinished; `succeeded` and `failed` are terminal. */
export const RunStatusSchema = z.enum(["queued", "running", "awaiting_approval", "succeeded", "failed"]);
/** Where a run is in its life. */
export type RunStatus = z.infer<typeof RunStatusSchema>;

/** Statuses after which a run never changes again. */
export const TERMINAL_RUN_STATUSES: readonly RunStatus[] = ["succeeded", "failed"];

/** Why a run failed: a KiloError's stable code and message (never a stack trace). */
export const RunErrorSchema = z.object({ code: z.string().min(1), message: z.string() });
/** Why a run failed. */
export type RunError = z.infer<typeof RunErrorSchema>;

/** One processing of one inbound event: durable, ordered per conversation key. */
export const RunSchema = z.object({
  id: IdSchema,
  botId: IdSchema,
  userId: IdSchema,
  /** The event's `conversation_key`. */
  conversationKey: z.string().min(1).max(256),
  /** The kilo conversation the key maps to; `null` for workflows without one. */
  conversationId: IdSchema.nullable(),
  /** The event's `type`. */
  eventType: z.string().min(1).max(50),
  /** The workflow that handles the run. */
  workflow: z.string().min(1).max(100),
  status: RunStatusSchema,
  /** The event as ingested; `raw` only when the host opted in with `storeRawEvents`. */
  input: z.record(z.string(), z.unknown()),
  /** What the workflow returned (for a bot turn: the TurnResult as JSON); `null` until it succeeded. */
  output: z.record(z.string(), z.unknown()).nullable(),
  error: RunErrorSchema.nullable(),
  deliveryId: z.string().min(1).max(256).nullable(),
  createdAt: z.date(),
  startedAt: z.date().nullable(),
  finishedAt: z.date().nullable(),
  /** Ingest order within (bot, conversation key), assigned by storage: strictly increasing. */
  seq: z.number().int().positive(),
  /**
   * How many times the run went back to the queue after a decision on the
   * approval its workflow stopped at (`ctx.tool`; see `RunRepository.requeue`);
   * absent (or 0) until then. Each return gives the run a new `seq`, at the
   * end of its key's lane.
   */
  resumes: z.number().int().nonnegative().optional(),
});

/** One processing of one inbound event. */
export type Run = z.infer<typeof RunSchema>;

/** A run as handed to storage; `seq` is assigned on create (and `resumes` by `requeue`). */
export type NewRun = Omit<Run, "seq" | "resumes">;
