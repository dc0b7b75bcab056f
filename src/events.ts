import type { EventEmitter } from "eventemitter3";
import type { Memory } from "./domain/memory.js";
import type { Proposal } from "./domain/proposal.js";
import type { RunError, RunStatus } from "./domain/run.js";
import type { UsageRecord } from "./domain/usage.js";
import type { KiloError } from "./errors.js";
import type { TurnResult, TurnStreamEvent } from "./ports/orchestrator.js";
import type { SkillMatch } from "./ports/skill-matcher.js";

/** Fields every turn event carries, for correlation. */
export interface TurnEventBase {
  botId: string;
  userId: string;
  conversationId: string;
}

/** Fields every run event carries, for correlation. */
export interface RunEventBase {
  runId: string;
  botId: string;
  userId: string;
  conversationKey: string;
  conversationId: string | null;
  workflow: string;
  /** The run's place in its conversation key's ingest order. */
  seq: number;
}

/** A stage of auto-learning, in order: research, then the user's decision, then creation. */
export type LearningStage =
  | "searching"
  | "reading"
  | "analysing"
  | "proposing"
  | "proposed"
  | "failed"
  | "awaiting-credential"
  | "created"
  | "declined";

/** Progress of one auto-learning session (`learning-progress`). */
export interface LearningProgressEvent {
  /** The session's id (the integration proposal's id, also before it is stored). */
  sessionId: string;
  botId: string;
  userId: string;
  /** The conversation that asked, or `null` when started through `kilo.learning.start`. */
  conversationId: string | null;
  /** What is being learned ("Stripe"). */
  topic: string;
  stage: LearningStage;
  /** One line a UI or CLI can show as is, e.g. "Reading https://docs.stripe.com/api (2 of 3)". Never contains secrets. */
  message: string;
  /** The page being read, at stage `reading`. */
  url?: string | undefined;
}

/**
 * kilo's typed events. Listen with `kilo.events.on("reply-sent", (event) => ...)`.
 * A listener that throws is reported as an `error` event; it never breaks a turn.
 */
export interface KiloEvents {
  "message-received": (event: TurnEventBase & { messageId: string; channel: string }) => void;
  "skill-matched": (
    event: TurnEventBase & {
      skillId: string | null;
      skillName: string | null;
      pass: SkillMatch["pass"];
      confidence: number;
      reason: string;
    },
  ) => void;
  "llm-call": (event: { usage: UsageRecord; attempt: number; fallback: boolean }) => void;
  "tool-called": (event: TurnEventBase & { name: string; isError: boolean; durationMs: number }) => void;
  "memory-extracted": (event: TurnEventBase & { memory: Memory; updated: boolean }) => void;
  "proposal-created": (event: TurnEventBase & { proposal: Proposal }) => void;
  "reply-sent": (event: TurnEventBase & { messageId: string; result: TurnResult }) => void;
  /** Progress of a streamed turn (`kilo.stream`): the same deltas the stream yields. */
  "turn-progress": (event: TurnEventBase & { event: Exclude<TurnStreamEvent, { type: "result" }> }) => void;
  /** A run was stored and queued (`kilo.runs.ingest`). */
  "run-queued": (event: RunEventBase) => void;
  /** A run began executing (also when a run left `running` by a crashed process is re-run). */
  "run-started": (event: RunEventBase) => void;
  /** A run ended: `succeeded`, or `failed` with its error's code and message. */
  "run-completed": (
    event: RunEventBase & { status: RunStatus; error: RunError | null; durationMs: number },
  ) => void;
  /** Auto-learning moved on: searching, reading a page, analysing, proposing, ..., created. */
  "learning-progress": (event: LearningProgressEvent) => void;
  error: (event: { error: KiloError; context: Record<string, unknown> }) => void;
}

/** The emitter type of `kilo.events`. */
export type KiloEventEmitter = EventEmitter<KiloEvents>;

/** Names of kilo's events. */
export type KiloEventName = keyof KiloEvents;

/**
 * Emits an event without letting a listener's throw escape into kilo's
 * control flow: the throw is handed to `onListenerError` (and, for any event
 * but `error` itself, reported as an `error` event by the caller).
 */
export function safeEmit<E extends KiloEventName>(
  emitter: KiloEventEmitter,
  name: E,
  payload: Parameters<KiloEvents[E]>[0],
  onListenerError: (error: unknown, name: KiloEventName) => void,
): void {
  try {
    (emitter.emit as (event: E, arg: typeof payload) => boolean)(name, payload);
  } catch (error) {
    onListenerError(error, name);
  }
}
