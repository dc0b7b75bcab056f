import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { KiloError } from "../../src/errors.js";
import { createLlmGateway } from "../../src/gateway/llm-gateway.js";
import type { LlmRequest, LlmStreamEvent } from "../../src/ports/llm-provider.js";
import {
  loadReplayFile,
  mockProvider,
  type ReplayFile,
  recordingProvider,
  replayProvider,
} from "../../src/testing/index.js";

function request(text: string, purpose = "chat"): LlmRequest {
  return {
    model: "claude-sonnet-4-5",
    system: [{ text: "You are a baker." }],
    messages: [{ role: "user", content: [{ type: "text", text }] }],
    tools: [{ name: "get_hours", description: "hours", inputSchema: { type: "object" } }],
    maxTokens: 1000,
    purpose,
  };
}

async function rejection(promise: Promise<unknown>): Promise<KiloError> {
  try {
    await promise;
  } catch (error) {
    if (KiloError.is(error)) return error;
    throw error;
  }
  throw new Error("expected a rejection");
}

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "kilo-replay-"));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("recordingProvider + replayProvider", () => {
  it("round-trips record -> save -> load -> replay", async () => {
    const live = mockProvider({
      name: "anthropic",
      model: "claude-sonnet-4-5",
      replies: [
        { text: "We open at 7.", thinking: "hours" },
        { text: "", toolCalls: [{ name: "get_hours", input: { day: "mon" } }] },
        "chat answer",
      ],
    });
    const file = join(dir, "nested", "bakery.replay.json");
    const recorder = recordingProvider(live, {
      file,
      clock: { now: () => new Date("2026-02-03T04:05:06Z") },
    });
    expect(recorder.name).toBe("anthropic");

    const recorded = [
      await recorder.complete(request("When do you open?")),
      await recorder.complete(request("extract facts", "extract-memory")),
      await recorder.complete(request("And on Monday?")),
    ];
    expect(await recorder.save()).toBe(file);

    const loaded = loadReplayFile(file);
    expect(loaded).toMatchObject({
      version: 1,
      provider: "anthropic",
      model: "claude-sonnet-4-5",
      recordedAt: "2026-02-03T04:05:06.000Z",
    });
    expect(loaded.entries[0]?.purpose).toBe("chat");
    expect(loaded.entries[0]?.request).toMatchObject({
      model: "claude-sonnet-4-5",
      lastUserText: "When do you open?",
      toolNames: ["get_hours"],
    });
    expect(loaded.entries[0]?.request.systemDigest).toMatch(/^[0-9a-f]{16}$/);

    const replay = replayProvider(file);
    expect(replay.name).toBe("anthropic");
    expect(replay.defaultModel).toBe("claude-sonnet-4-5");
    // Non-strict replay matches on purpose: the memory call may come first.
    expect(await replay.complete(request("anything", "extract-memory"))).toEqual(recorded[1]);
    expect(await replay.complete(request("When do you open?"))).toEqual(recorded[0]);
    expect(await replay.complete(request("different text"))).toEqual(recorded[2]);
    expect(replay.remaining).toBe(0);

    const exhausted = await rejection(replay.complete(request("more")));
    expect(exhausted.code).toBe("REPLAY_EXHAUSTED");
    expect(exhausted.message).toContain("call #4");
  });

  it("replays through the gateway in place of the live provider", async () => {
    const live = mockProvider({ name: "openai", model: "gpt-4o", replies: ["recorded answer"] });
    const recorder = recordingProvider(live);
    const options = {
      usage: async () => {},
      clock: { now: () => new Date(0) },
      ids: { next: (prefix: string) => `${prefix}_1` },
      logger: { debug() {}, info() {}, warn() {}, error() {}, child: () => options.logger },
    };
    const base = {
      taskType: "simple_qa" as const,
      purpose: "chat",
      system: [],
      messages: [{ role: "user" as const, content: [{ type: "text" as const, text: "hi" }] }],
    };
    const recordingGateway = createLlmGateway({ ...options, providers: [recorder] });
    const live1 = await recordingGateway.complete(base);
    const file = join(dir, "gateway.replay.json");
    await recorder.save(file);

    const replayGateway = createLlmGateway({
      ...options,
      providers: [replayProvider(file, { strict: true })],
    });
    const replayed = await replayGateway.complete(base);

    expect(replayed.content).toEqual(live1.content);
    expect(replayed.usage).toEqual(live1.usage);
    expect(replayed.provider).toBe("openai");
  });

  it("records streamed calls", async () => {
    const recorder = recordingProvider(mockProvider({ replies: ["streamed text"] }));
    const events: LlmStreamEvent[] = [];
    for await (const event of recorder.stream!(request("hi"))) events.push(event);

    expect(events.at(-1)?.type).toBe("done");
    expect(recorder.entries).toHaveLength(1);
    expect(recorder.toReplayFile().entries[0]?.response.content).toEqual([
      { type: "text", text: "streamed text" },
    ]);
    await expect(recorder.save()).rejects.toThrowError(/needs a file/);
  });

  it("in strict mode, reports a mismatch with both texts", async () => {
    const recorder = recordingProvider(mockProvider({ replies: ["a", "b"] }));
    await recorder.complete(request("When do you open?"));
    await recorder.complete(request("Thanks!"));
    const replay = replayProvider(recorder.toReplayFile(), { strict: true, name: "replayed" });

    await replay.complete(request("When do you open?"));
    const mismatch = await rejection(replay.complete(request("What about Sunday?")));

    expect(mismatch.code).toBe("REPLAY_EXHAUSTED");
    expect(mismatch.message).toContain("call #2 does not match recorded entry #2");
    expect(mismatch.message).toContain('recorded "Thanks!"');
    expect(mismatch.message).toContain('got "What about Sunday?"');
    expect(mismatch.details).toMatchObject({
      expected: { purpose: "chat", lastUserText: "Thanks!" },
      actual: { purpose: "chat", lastUserText: "What about Sunday?" },
    });

    replay.reset();
    await replay.complete(request("When do you open?"));
    const wrongPurpose = await rejection(replay.complete(request("Thanks!", "classify")));
    expect(wrongPurpose.message).toContain(`purpose: recorded "chat", got "classify"`);

    replay.reset();
    await replay.complete(request("When do you open?"));
    await replay.complete(request("Thanks!"));
    expect((await rejection(replay.complete(request("More?")))).message).toContain("ends after 2 calls");
  });

  it("streams replayed responses", async () => {
    const file: ReplayFile = {
      version: 1,
      provider: "p",
      model: "m",
      recordedAt: "2026-01-01T00:00:00.000Z",
      entries: [
        {
          purpose: "chat",
          request: { model: "m", lastUserText: "hi", toolNames: [] },
          response: {
            content: [{ type: "text", text: "hello there" }],
            stopReason: "end_turn",
            usage: {
              inputTokens: 1,
              outputTokens: 2,
              cacheReadTokens: 0,
              cacheWriteTokens: 0,
              reasoningTokens: 0,
            },
            model: "m",
          },
        },
      ],
    };
    const events: LlmStreamEvent[] = [];
    for await (const event of replayProvider(file).stream(request("hi"))) events.push(event);

    expect(
      events
        .filter((event) => event.type === "text-delta")
        .map((event) => event.text)
        .join(""),
    ).toBe("hello there");
    expect(events.at(-1)?.type).toBe("done");
  });

  it("rejects bad replay files with VALIDATION_FAILED naming the file", async () => {
    const bad = join(dir, "bad.replay.json");
    await writeFile(bad, JSON.stringify({ version: 2, provider: "p", entries: [] }));
    const error = (() => {
      try {
        loadReplayFile(bad);
      } catch (caught) {
        return caught as KiloError;
      }
      throw new Error("expected a failure");
    })();
    expect(error.code).toBe("VALIDATION_FAILED");
    expect(error.message).toContain(bad);
    expect(error.message).toContain("version");

    const notJson = join(dir, "broken.replay.json");
    await writeFile(notJson, "{ nope");
    expect(() => replayProvider(notJson)).toThrowError(/not valid JSON/);
    expect(() => replayProvider(join(dir, "missing.json"))).toThrowError(/does not exist/);
    expect(() => replayProvider({ version: 1 } as unknown as ReplayFile)).toThrowError(/inline replay/);
  });
});
