import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memoryStorage } from "../../adapters/storage/memory/index.js";
import { createKilo, type Kilo } from "../../src/index.js";
import { mockProvider, scriptByPurpose } from "../../src/testing/index.js";
import { classify, readSse } from "../http/helpers.js";

/** Calls the running example app as a user (`null`: no user header). */
export type CallApp = (
  method: string,
  path: string,
  options?: { user?: string | null; body?: unknown },
) => Promise<Response>;

/** How one example host app is started for the shared suite. */
export interface HostAppSuiteOptions {
  /** The example's folder under examples/ (also its `app` name, `<name>-host`). */
  name: string;
  /** Starts the app on 127.0.0.1 with this kilo; returns its origin and how to stop it. */
  start(kilo: Kilo): Promise<{ origin: string; close(): Promise<void> }>;
  /** What the example's offline provider answers. */
  offlineReply: string;
  /** Tests only this host app needs. */
  extra?: (context: { call: CallApp; user: string }) => void;
}

const USER = "maria-baker";
const REPLY = "Good morning, Maria! The ovens are warm.";
const STREAMED = "Fresh bread at seven, as always.";

/**
 * The scenario every example host app must pass over real HTTP: its own routes and auth, kilo's
 * health check and error shape under /kilo, a bot created, a chat, a streamed chat, tenancy, and
 * its server.ts started as a child process answering offline.
 */
export function describeHostApp(options: HostAppSuiteOptions): void {
  let kilo: Kilo;
  let stop: () => Promise<void>;
  let origin: string;

  const call: CallApp = (method, path, callOptions = {}) => {
    const { user = USER, body } = callOptions;
    return fetch(`${origin}${path}`, {
      method,
      headers: {
        ...(user ? { "x-user-id": user } : {}),
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  };

  async function createBot(name = "Crumb"): Promise<{ id: string; userId: string; name: string }> {
    const response = await call("POST", "/kilo/api/bots", {
      body: { name, personality: "A warm bakery helper." },
    });
    expect(response.status).toBe(201);
    return (await response.json()) as { id: string; userId: string; name: string };
  }

  beforeAll(async () => {
    const provider = mockProvider({
      respond: scriptByPurpose({ classify: [classify(null), classify(null)], chat: [REPLY, STREAMED] }),
      model: "claude-sonnet-4-5",
    });
    kilo = createKilo({ storage: memoryStorage(), providers: [provider] });
    const started = await options.start(kilo);
    origin = started.origin;
    stop = started.close;
  });

  afterAll(async () => {
    await stop();
    await kilo.close();
  });

  describe(`examples/${options.name}: a host app mounting kilo under /kilo`, () => {
    it("serves the host's own routes, with the host's auth", async () => {
      const hello = await call("GET", "/", { user: null });
      expect(hello.status).toBe(200);
      expect(await hello.json()).toMatchObject({ app: `${options.name}-host`, kilo: "/kilo" });
      expect(await (await call("GET", "/me")).json()).toEqual({ userId: USER });
      expect((await call("GET", "/me", { user: null })).status).toBe(401);
    });

    it("answers kilo's health check without auth", async () => {
      const response = await call("GET", "/kilo/healthz", { user: null });
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ status: "ok" });
      // Only under the mount path: the host's root is not kilo's.
      expect((await call("GET", "/healthz", { user: null })).status).toBe(404);
    });

    it("answers an unauthenticated kilo route with 401 and kilo's error shape", async () => {
      const response = await call("POST", "/kilo/api/bots", { user: null, body: { name: "Crumb" } });
      expect(response.status).toBe(401);
      expect(await response.json()).toEqual({
        error: { code: "UNAUTHENTICATED", message: expect.any(String) },
      });
    });

    it("creates a bot, chats, and streams a chat over HTTP", async () => {
      const bot = await createBot();
      expect(bot).toMatchObject({ userId: USER, name: "Crumb" });

      const listed = await call("GET", `/kilo/api/users/${USER}/bots`);
      expect(((await listed.json()) as { items: Array<{ id: string }> }).items.map((b) => b.id)).toEqual([
        bot.id,
      ]);

      const chat = await call("POST", "/kilo/api/chat", { body: { botId: bot.id, message: "good morning" } });
      expect(chat.status).toBe(200);
      const turn = (await chat.json()) as { reply: string; conversationId: string };
      expect(turn.reply).toBe(REPLY);

      const stream = await call("POST", "/kilo/api/chat/stream", {
        body: { botId: bot.id, message: "when is the bread ready?", conversationId: turn.conversationId },
      });
      expect(stream.status).toBe(200);
      expect(stream.headers.get("content-type")).toContain("text/event-stream");
      const frames = await readSse(stream);
      const text = frames
        .filter((frame) => frame.event === "text-delta")
        .map((frame) => (frame.data as { text: string }).text)
        .join("");
      expect(text).toBe(STREAMED);
      const last = frames.at(-1);
      expect(last?.event).toBe("result");
      expect((last?.data as { result: { reply: string } } | undefined)?.result.reply).toBe(STREAMED);
    });

    it("keeps one user out of another's bot", async () => {
      const bot = await createBot("Private");
      const response = await call("GET", `/kilo/api/bots/${bot.id}`, { user: "mallory" });
      expect(response.status).toBe(404);
    });

    options.extra?.({ call, user: USER });
  });

  describe(`examples/${options.name}/server.ts`, () => {
    it("starts on KILO_PORT, logs its URL and answers offline", async () => {
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        KILO_PORT: "0",
        ANTHROPIC_API_KEY: "",
        OPENAI_API_KEY: "",
      };
      const child = spawn(process.execPath, ["--import", "tsx", `examples/${options.name}/server.ts`], {
        env,
      });
      try {
        const url = await new Promise<string>((resolve, reject) => {
          let output = "";
          child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
            output += chunk;
            const match = /http:\/\/localhost:\d+/.exec(output);
            if (match) resolve(match[0]);
          });
          child.once("exit", (code) => reject(new Error(`server exited with ${code}: ${output}`)));
        });
        const headers = { "x-user-id": "sam", "content-type": "application/json" };
        const bot = (await (
          await fetch(`${url}/kilo/api/bots`, {
            method: "POST",
            headers,
            body: JSON.stringify({ name: "Pip" }),
          })
        ).json()) as { id: string };
        const chat = await fetch(`${url}/kilo/api/chat`, {
          method: "POST",
          headers,
          body: JSON.stringify({ botId: bot.id, message: "hello" }),
        });
        expect(((await chat.json()) as { reply: string }).reply).toBe(options.offlineReply);
      } finally {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGTERM");
        await exited;
      }
    }, 30_000);
  });
}
