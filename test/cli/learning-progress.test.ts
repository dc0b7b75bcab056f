import { PassThrough } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { loadSettings } from "../../src/cli/cli-config.js";
import { learningProgressLine, openRuntime } from "../../src/cli/cli-runtime.js";
import type { LearningProgressEvent } from "../../src/events.js";
import { workspace } from "./cli-harness.js";

const space = workspace();
afterAll(() => space.remove());

const event = (stage: LearningProgressEvent["stage"], message: string): LearningProgressEvent => ({
  sessionId: "prop_1",
  botId: "bot_1",
  userId: "local",
  conversationId: "conv_1",
  topic: "Acme",
  stage,
  message,
});

describe("auto-learning progress in the CLI", () => {
  it("marks working, done, waiting and failed stages, and says how to give a key without chat", () => {
    expect(learningProgressLine(event("searching", "Searching the web for Acme API docs"))).toBe(
      "kilo: learning Acme: … Searching the web for Acme API docs",
    );
    expect(learningProgressLine(event("proposed", "Proposed the Acme tool and 2 skills"))).toBe(
      "kilo: learning Acme: ✓ Proposed the Acme tool and 2 skills",
    );
    expect(learningProgressLine(event("failed", "No readable documentation"))).toBe(
      "kilo: learning Acme: ✗ No readable documentation",
    );
    const waiting = learningProgressLine(event("awaiting-credential", "Waiting for the Acme API key"));
    expect(waiting).toContain("kilo: learning Acme: → Waiting for the Acme API key");
    expect(waiting).toContain("session prop_1), never in chat");
  });

  it("prints every learning-progress event of a sending command to stderr, and none for a reader", async () => {
    const lines = async (role: "sender" | "reader") => {
      const stderr = new PassThrough();
      let text = "";
      stderr.on("data", (chunk: Buffer) => {
        text += chunk.toString("utf8");
      });
      const io = {
        stdin: new PassThrough(),
        stdout: new PassThrough(),
        stderr,
        env: space.env,
        cwd: space.cwd,
      };
      const settings = loadSettings({ env: space.env, cwd: space.cwd, flags: {} });
      const runtime = await openRuntime(settings, io, { defaultLogLevel: "silent", role });
      runtime.kilo.events.emit(
        "learning-progress",
        event("reading", "Reading https://docs.acme.test (1 of 2)"),
      );
      await runtime.close();
      await new Promise((resolve) => setImmediate(resolve));
      return text;
    };
    expect(await lines("sender")).toBe("kilo: learning Acme: … Reading https://docs.acme.test (1 of 2)\n");
    expect(await lines("reader")).toBe("");
  });
});
