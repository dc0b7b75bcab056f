import { memoryStorage } from "../../adapters/storage/memory/index.js";
import { conversationIdFor, createKilo, type Kilo, type KiloOptions, type NewRun } from "../../src/index.js";
import type { LogFields, Logger } from "../../src/ports/logger.js";
import type { Storage } from "../../src/ports/storage.js";
import { type MockReply, mockProvider } from "../../src/testing/index.js";

/** The user every test bot belongs to; events carry it as `user_key`. */
export const USER = "user_1";

/** A log line as captured. */
export interface LogLine {
  level: string;
  message: string | undefined;
  fields: LogFields;
}

/** A logger that keeps every line (child fields merged in). */
export function captureLogger(lines: LogLine[], base: LogFields = {}): Logger {
  const write = (level: string) => (fields: LogFields, message?: string) => {
    lines.push({ level, message, fields: { ...base, ...fields } });
  };
  return {
    debug: write("debug"),
    info: write("info"),
    warn: write("warn"),
    error: write("error"),
    child: (fields) => captureLogger(lines, { ...base, ...fields }),
  };
}

/** The last text block of the last user message of a request: the message being answered. */
export function userText(request: { messages: Array<{ role: string; content: unknown }> }): string {
  const message = request.messages.findLast((m) => m.role === "user");
  const content = message?.content;
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  const texts = content.map((block: { text?: string }) => block.text ?? "").filter((text) => text !== "");
  return texts[texts.length - 1] ?? "";
}

/** A message event for `USER`. */
export function event(conversationKey: string, text: string, extra: Record<string, unknown> = {}) {
  return {
    schema_version: 1 as const,
    type: "message",
    conversation_key: conversationKey,
    user_key: USER,
    text,
    ...extra,
  };
}

/** One run's execution window, from the run events. */
export interface Span {
  runId: string;
  key: string;
  seq: number;
  start: number;
  end: number;
}

/**
 * A kilo whose mock provider answers "ok" after `latencyMs`, or fails
 * for messages containing "FAIL"; records each run's start and end.
 */
export async function setupRuns(
  options: { latencyMs?: number; storage?: Storage; kilo?: Partial<KiloOptions> } = {},
) {
  const provider = mockProvider({
    latencyMs: options.latencyMs ?? 0,
    respond: (request): MockReply => {
      const text = userText(request);
      if (text.includes("FAIL")) return { error: { code: "PROVIDER_FAILED", message: "scripted failure" } };
      return "ok";
    },
  });
  const kilo: Kilo = createKilo({
    storage: options.storage ?? memoryStorage(),
    providers: [provider],
    ...options.kilo,
  });
  const bot = await kilo.bots.create({ userId: USER, name: "Runner" });
  const spans = new Map<string, Span>();
  kilo.events.on("run-started", (e) => {
    spans.set(e.runId, {
      runId: e.runId,
      key: e.conversationKey,
      seq: e.seq,
      start: performance.now(),
      end: 0,
    });
  });
  kilo.events.on("run-completed", (e) => {
    const span = spans.get(e.runId);
    if (span) span.end = performance.now();
  });
  return { kilo, bot, provider, spans };
}

/** True when two spans overlap in time. */
export const overlaps = (a: Span, b: Span) => a.start < b.end && b.start < a.end;

/** A queued message run of `USER` for the bot, as a process would hand it to `storage.runs.create`. */
export function queuedRun(id: string, botId: string, key: string, text: string): NewRun {
  return {
    id,
    botId,
    userId: USER,
    conversationKey: key,
    conversationId: conversationIdFor(botId, key),
    eventType: "message",
    workflow: "message",
    status: "queued",
    input: event(key, text),
    output: null,
    error: null,
    deliveryId: null,
    createdAt: new Date(),
    startedAt: null,
    finishedAt: null,
  };
}

/** Stores `USER` and a bot of theirs with this id straight into storage, as a previous process would have. */
export async function storedBot(storage: Storage, id: string) {
  await storage.users.upsert({ id: USER, name: null, metadata: {}, createdAt: new Date() });
  return storage.bots.create({
    id,
    userId: USER,
    name: "Runner",
    soul: null,
    personality: null,
    context: null,
    metadata: {},
    createdAt: new Date(),
    updatedAt: new Date(),
  });
}
