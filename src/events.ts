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

/** A stage of an evolution pass (`kilo.evolve`), in order: analysing, detected, then one per pattern, then done. */
export type EvolveStage = "analysing" | "detected" | "created" | "skipped" | "done";

/** Progress of one evolution pass (`evolve-progress`). */
export interface EvolveProgressEvent {
  /** The bot evolved, when `kilo.evolve` named one. */
  botId: string | null;
  /** The user whose traces are read, when `kilo.evolve` named one (else `teamId`). */
  userId: string | null;
  /** The team whose bots' traces are read, when `kilo.evolve` named one. */
  teamId: string | null;
  stage: EvolveStage;
  /** One line a UI or CLI can show as is. */
  message: string;
  /** The pattern this event is about (`created`, `skipped`). */
  signature?: string | undefined;
  /** The skill created for it (`created`). */
  skillId?: string | null | undefined;
  /** Totals so far (`detected`, `done`). */
  tracesAnalyzed?: number | undefined;
  patternsDetected?: number | undefined;
  skillsCreated?: number | undefined;
}

/**
 * kilo's typed events. Listen with `kilo.events.on("reply-sent", (event) => ...)`.
 * A listener that throws is reported as an `error` event; it never breaks a turn.
 */
export interface KiloEvents {
  /** A user message was stored, before any model call; `channel` is where it came from. */
  "message-received": (event: TurnEventBase & { messageId: string; channel: string }) => void;
  /** The matcher decided which skill (if any) handles the message, and how (`pass`) and how sure it is. */
  "skill-matched": (
    event: TurnEventBase & {
      skillId: string | null;
      skillName: string | null;
      pass: SkillMatch["pass"];
      confidence: number;
      reason: string;
    },
  ) => void;
  /**
   * One provider attempt was recorded in usage (every success, and failures that reported tokens);
   * `fallback` is true when the attempt went to a route entry other than the first.
   */
  "llm-call": (event: { usage: UsageRecord; attempt: number; fallback: boolean }) => void;
  /** A tool the model called has finished; `isError` is what the model was told. */
  "tool-called": (event: TurnEventBase & { name: string; isError: boolean; durationMs: number }) => void;
  /** A fact was written to memory after the reply; `updated` when it replaced an older value of the same key. */
  "memory-extracted": (event: TurnEventBase & { memory: Memory; updated: boolean }) => void;
  /** The bot offered to create a skill for a request no skill handled. */
  "proposal-created": (event: TurnEventBase & { proposal: Proposal }) => void;
  /** The turn finished and its reply was stored; `result` is what `kilo.chat` returns. */
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
  /** An evolution pass (`kilo.evolve`) moved on: traces read, patterns detected, a skill drafted or a pattern skipped, done. */
  "evolve-progress": (event: EvolveProgressEvent) => void;
  /**
   * A failure kilo caught instead of letting it become an unhandled rejection: a failed turn or
   * run, a listener that threw, an unreadable workspace file. `context` says where it happened.
   */
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
