import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { z } from "zod";
import { KiloError } from "../errors.js";
import { responseEvents, textOf } from "../gateway/content.js";
import type { Clock } from "../ports/clock.js";
import type {
  LlmProvider,
  LlmProviderCapabilities,
  LlmRequest,
  LlmResponse,
  LlmStreamEvent,
} from "../ports/llm-provider.js";

const UsageSchema = z.object({
  inputTokens: z.number().int().nonnegative(),
  outputTokens: z.number().int().nonnegative(),
  cacheReadTokens: z.number().int().nonnegative(),
  cacheWriteTokens: z.number().int().nonnegative(),
  reasoningTokens: z.number().int().nonnegative(),
});

const ContentBlockSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("text"), text: z.string() }),
  z.object({
    type: z.literal("thinking"),
    text: z.string(),
    signature: z.string().optional(),
    redacted: z.boolean().optional(),
  }),
  z.object({
    type: z.literal("tool_call"),
    id: z.string(),
    name: z.string(),
    input: z.record(z.string(), z.unknown()),
  }),
  z.object({
    type: z.literal("tool_result"),
    toolCallId: z.string(),
    content: z.string(),
    isError: z.boolean().optional(),
  }),
]);

const LlmResponseSchema = z.object({
  content: z.array(ContentBlockSchema),
  stopReason: z.enum(["end_turn", "tool_use", "max_tokens", "stop_sequence", "refusal", "other"]),
  usage: UsageSchema,
  model: z.string(),
  warnings: z.array(z.string()).optional(),
});

/** What a replay entry remembers of the request: enough to check a replay follows the recording. */
export const ReplayRequestSummarySchema = z.object({
  model: z.string(),
  /** The text blocks of the last `user` message, concatenated ("" when it held only tool results). */
  lastUserText: z.string(),
  toolNames: z.array(z.string()),
  /** A short SHA-256 digest of the system prompt: shows prompt drift without storing the prompt. */
  systemDigest: z.string().optional(),
});

/** One recorded call. */
export const ReplayEntrySchema = z.object({
  /** The request's `purpose` ("" when it had none). */
  purpose: z.string(),
  request: ReplayRequestSummarySchema,
  response: LlmResponseSchema,
});

/** The JSON replay file written by {@link recordingProvider} and read by {@link replayProvider}. */
export const ReplayFileSchema = z.object({
  version: z.literal(1),
  /** Name of the recorded provider; the replay provider takes it by default. */
  provider: z.string().min(1),
  /** The recorded provider's default model. */
  model: z.string().min(1),
  /** ISO 8601 time of the recording. */
  recordedAt: z.string(),
  entries: z.array(ReplayEntrySchema),
});

/** A replay file; see {@link ReplayFileSchema}. */
export type ReplayFile = z.infer<typeof ReplayFileSchema>;
/** One recorded call of a replay file. */
export type ReplayEntry = z.infer<typeof ReplayEntrySchema>;
/** The request summary of a replay entry. */
export type ReplayRequestSummary = z.infer<typeof ReplayRequestSummarySchema>;

/** Options of {@link recordingProvider}. */
export interface RecordingProviderOptions {
  /** Where `save()` writes when called without a file. */
  file?: string | undefined;
  /** Stamps `recordedAt`. Default: the system clock. */
  clock?: Clock | undefined;
}

/** A live provider wrapped to record each successful call; see {@link recordingProvider}. */
export interface RecordingProvider extends LlmProvider {
  /** The calls recorded so far, in order. */
  readonly entries: readonly ReplayEntry[];
  /** The recording as a replay file object. */
  toReplayFile(): ReplayFile;
  /** Writes the replay file (creating its directory) and returns its path. */
  save(file?: string): Promise<string>;
}

/** Options of {@link replayProvider}. */
export interface ReplayProviderOptions {
  /** Default: the provider name stored in the file, so recorded routes keep working. */
  name?: string | undefined;
  /**
   * Replay strictly in recorded order and check each call's purpose and last
   * user text against the recording. Default `false`: each call takes the
   * first unused entry with its purpose.
   */
  strict?: boolean | undefined;
  /** Default `{ thinking: true, streaming: true, promptCaching: false }`. */
  capabilities?: Partial<LlmProviderCapabilities> | undefined;
}

/** A provider answering from a replay file; see {@link replayProvider}. */
export interface ReplayProvider extends LlmProvider {
  /** Every request received, in order: deep copies, without the signal. */
  readonly requests: LlmRequest[];
  /** Number of calls received. */
  readonly calls: number;
  /** Entries not replayed yet. */
  readonly remaining: number;
  stream(request: LlmRequest): AsyncIterable<LlmStreamEvent>;
  /** Rewinds to the first entry and forgets recorded requests. */
  reset(): void;
}

function lastUserText(request: LlmRequest): string {
  const message = request.messages.findLast((candidate) => candidate.role === "user");
  return message === undefined ? "" : textOf(message.content);
}

function summarize(request: LlmRequest): ReplayRequestSummary {
  const summary: ReplayRequestSummary = {
    model: request.model,
    lastUserText: lastUserText(request),
    toolNames: (request.tools ?? []).map((tool) => tool.name),
  };
  if (request.system.length > 0) {
    const system = request.system.map((part) => part.text).join("\n");
    summary.systemDigest = createHash("sha256").update(system).digest("hex").slice(0, 16);
  }
  return summary;
}

function copyRequest(request: LlmRequest): LlmRequest {
  const { signal: _signal, ...rest } = request;
  return structuredClone(rest);
}

// Responses are stored as JSON: dropping undefined members keeps files and deep-equality checks clean.
function toJsonValue<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`)
    .join("; ");
}

/**
 * Checks a parsed replay file.
 *
 * @param source names the file in error messages.
 * @throws KiloError `VALIDATION_FAILED` naming `source` when the data is not a replay file.
 */
export function parseReplayFile(data: unknown, source = "replay file"): ReplayFile {
  const parsed = ReplayFileSchema.safeParse(data);
  if (!parsed.success) {
    throw new KiloError(
      "VALIDATION_FAILED",
      `'${source}' is not a valid kilo replay file: ${describeIssues(parsed.error)}`,
      { details: parsed.error.issues },
    );
  }
  return parsed.data;
}

/**
 * Reads and checks a replay file.
 *
 * @throws KiloError `NOT_FOUND` when the file does not exist, `VALIDATION_FAILED`
 *   naming the file when it is not JSON or not a replay file.
 */
export function loadReplayFile(file: string): ReplayFile {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === "ENOENT";
    throw new KiloError(
      missing ? "NOT_FOUND" : "VALIDATION_FAILED",
      missing
        ? `Replay file '${file}' does not exist; record one with recordingProvider(provider).save('${file}')`
        : `Replay file '${file}' could not be read: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new KiloError(
      "VALIDATION_FAILED",
      `Replay file '${file}' is not valid JSON: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  return parseReplayFile(data, file);
}

/**
 * Wraps a live provider and records each successful call (a summary of the
 * request and the whole response) for {@link replayProvider}. Failed calls
 * are not recorded. The wrapper keeps the inner provider's name, default
 * model and capabilities, so it drops into the same routes.
 *
 * @example
 * ```ts
 * const recorder = recordingProvider(anthropicProvider(), { file: "test/__fixtures__/bakery.replay.json" });
 * const kilo = createKilo({ storage, providers: [recorder] });
 * await kilo.chat({ botId, userId, message: "What's on the menu?" });
 * await recorder.save();
 * ```
 */
export function recordingProvider(
  inner: LlmProvider,
  options: RecordingProviderOptions = {},
): RecordingProvider {
  const entries: ReplayEntry[] = [];
  const now = (): Date => options.clock?.now() ?? new Date();

  function remember(request: LlmRequest, response: LlmResponse): void {
    entries.push({
      purpose: request.purpose ?? "",
      request: summarize(request),
      response: toJsonValue(response),
    });
  }

  function toReplayFile(): ReplayFile {
    return {
      version: 1,
      provider: inner.name,
      model: inner.defaultModel,
      recordedAt: now().toISOString(),
      entries: structuredClone(entries),
    };
  }

  const recorder: RecordingProvider = {
    name: inner.name,
    defaultModel: inner.defaultModel,
    capabilities: inner.capabilities,
    get entries() {
      return entries;
    },
    async complete(request) {
      const response = await inner.complete(request);
      remember(request, response);
      return response;
    },
    toReplayFile,
    async save(file) {
      const target = file ?? options.file;
      if (target === undefined) {
        throw new KiloError(
          "CONFIGURATION_INVALID",
          "recordingProvider.save() needs a file: pass one, or the `file` option when recording",
        );
      }
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, `${JSON.stringify(toReplayFile(), null, 2)}\n`, "utf8");
      return target;
    },
  };
  const innerStream = inner.stream?.bind(inner);
  if (innerStream !== undefined) {
    recorder.stream = async function* (request) {
      for await (const event of innerStream(request)) {
        if (event.type === "done") remember(request, event.response);
        yield event;
      }
    };
  }
  return recorder;
}

function quote(text: string): string {
  return JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}…` : text);
}

/**
 * A provider that answers from a replay file recorded by
 * {@link recordingProvider}: deterministic end-to-end tests without network.
 *
 * By default each call takes the first unused entry with the same purpose.
 * With `strict`, calls must follow the recording in order: a different
 * purpose or last user text throws `REPLAY_EXHAUSTED` showing both sides.
 * Running out of entries throws `REPLAY_EXHAUSTED`.
 *
 * @param source a path to a replay file, or a replay file object.
 * @throws KiloError `NOT_FOUND` / `VALIDATION_FAILED` when the file is missing or invalid.
 *
 * @example
 * ```ts
 * const provider = replayProvider("test/__fixtures__/bakery.replay.json", { strict: true });
 * const kilo = createKilo({ storage: memoryStorage(), providers: [provider] });
 * ```
 */
export function replayProvider(
  source: string | ReplayFile,
  options: ReplayProviderOptions = {},
): ReplayProvider {
  const label = typeof source === "string" ? source : "inline replay";
  const file = typeof source === "string" ? loadReplayFile(source) : parseReplayFile(source, label);
  const name = options.name ?? file.provider;
  const strict = options.strict ?? false;
  const used: boolean[] = file.entries.map(() => false);
  const requests: LlmRequest[] = [];
  let calls = 0;
  let cursor = 0;

  function exhausted(call: number, purpose: string, why: string): KiloError {
    return new KiloError(
      "REPLAY_EXHAUSTED",
      `replay provider '${name}' (${label}) has no reply for call #${call} (purpose: ${purpose || "unspecified"}): ${why}`,
      { provider: name },
    );
  }

  function pick(request: LlmRequest, call: number): ReplayEntry {
    const purpose = request.purpose ?? "";
    if (!strict) {
      const index = used.findIndex(
        (done, candidate) => !done && file.entries[candidate]?.purpose === purpose,
      );
      const entry = file.entries[index];
      if (entry === undefined) {
        throw exhausted(call, purpose, `no unused entry with this purpose among ${file.entries.length}`);
      }
      used[index] = true;
      return entry;
    }
    const entry = file.entries[cursor];
    if (entry === undefined) {
      throw exhausted(call, purpose, `the recording ends after ${file.entries.length} calls`);
    }
    const actualText = lastUserText(request);
    if (entry.purpose !== purpose || entry.request.lastUserText !== actualText) {
      throw new KiloError(
        "REPLAY_EXHAUSTED",
        `replay provider '${name}' (${label}): call #${call} does not match recorded entry #${cursor + 1}. ` +
          `purpose: recorded ${quote(entry.purpose)}, got ${quote(purpose)}; ` +
          `last user text: recorded ${quote(entry.request.lastUserText)}, got ${quote(actualText)}`,
        {
          provider: name,
          details: {
            call,
            expected: { purpose: entry.purpose, lastUserText: entry.request.lastUserText },
            actual: { purpose, lastUserText: actualText },
          },
        },
      );
    }
    used[cursor] = true;
    cursor += 1;
    return entry;
  }

  async function complete(request: LlmRequest): Promise<LlmResponse> {
    calls += 1;
    requests.push(copyRequest(request));
    if (request.signal?.aborted === true) {
      throw new KiloError("ABORTED", `replay provider '${name}': call #${calls} was aborted`, {
        provider: name,
        cause: request.signal.reason,
      });
    }
    return structuredClone(pick(request, calls).response);
  }

  return {
    name,
    defaultModel: file.model,
    capabilities: { thinking: true, streaming: true, promptCaching: false, ...options.capabilities },
    requests,
    get calls() {
      return calls;
    },
    get remaining() {
      return used.filter((done) => !done).length;
    },
    complete,
    async *stream(request) {
      yield* responseEvents(await complete(request), 3);
    },
    reset() {
      requests.length = 0;
      calls = 0;
      cursor = 0;
      used.fill(false);
    },
  };
}
