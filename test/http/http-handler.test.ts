import { afterEach, describe, expect, it } from "vitest";
import { ALICE, classify, ORDER_TRACKER, readSse, startApi, type TestApi, WEATHER_TOOL } from "./helpers.js";

let api: TestApi | null = null;
afterEach(async () => {
  await api?.close();
  api = null;
});

async function start(...args: Parameters<typeof startApi>) {
  api = await startApi(...args);
  return api;
}

async function createBot(current: TestApi, name = "Crumb") {
  const response = await current.call("POST", "/api/bots", { body: { name } });
  expect(response.status).toBe(201);
  return (await response.json()) as { id: string; userId: string; name: string };
}

function expectErrorShape(body: unknown, code: string) {
  expect(body).toEqual({ error: { code, message: expect.any(String) } });
  expect(JSON.stringify(body)).not.toMatch(/\bat .+:\d+:\d+|stack/);
}

describe("kilo/http over node:http", () => {
  it("answers GET /healthz without auth", async () => {
    const current = await start();
    const response = await current.call("GET", "/healthz", { user: null });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "ok" });
  });

  it("creates a bot and a skill, then chats with the skill handling the turn", async () => {
    const current = await start({ classify: [classify(null)], chat: ["Noted: Ana, lemon tart."] });
    const bot = await createBot(current);
    expect(bot.userId).toBe(ALICE);

    const skillResponse = await current.call("POST", `/api/bots/${bot.id}/skills`, { body: ORDER_TRACKER });
    expect(skillResponse.status).toBe(201);
    const skill = (await skillResponse.json()) as { id: string; name: string };

    const list = await current.call("GET", `/api/bots/${bot.id}/skills`);
    expect(((await list.json()) as { items: unknown[] }).items).toHaveLength(1);
    const bots = await current.call("GET", `/api/users/${ALICE}/bots`);
    expect(((await bots.json()) as { items: Array<{ id: string }> }).items.map((b) => b.id)).toEqual([
      bot.id,
    ]);

    const chat = await current.call("POST", "/api/chat", {
      body: { botId: bot.id, message: "New order: Ana, lemon tart, Sunday" },
    });
    expect(chat.status).toBe(200);
    const turn = (await chat.json()) as {
      reply: string;
      conversationId: string;
      skill: { id: string } | null;
    };
    expect(turn.reply).toBe("Noted: Ana, lemon tart.");
    expect(turn.skill?.id).toBe(skill.id);
    const messages = await current.kilo.conversations.messages(bot.id, turn.conversationId);
    expect(messages.map((m) => m.role)).toEqual(["user", "assistant"]);

    const usage = await current.call("GET", `/api/users/${ALICE}/usage`);
    expect(usage.status).toBe(200);
    expect(((await usage.json()) as { calls: number }).calls).toBeGreaterThan(0);
    const breakdown = await current.call("GET", `/api/users/${ALICE}/usage/breakdown?botId=${bot.id}`);
    expect(breakdown.status).toBe(200);
    expect(((await breakdown.json()) as { byBot: Array<{ botId: string }> }).byBot[0]?.botId).toBe(bot.id);
  });

  it("updates and deletes bots, skills and tools, finding a skill or tool by id alone or with ?botId=", async () => {
    const current = await start();
    const bot = await createBot(current);
    const patched = await current.call("PATCH", `/api/bots/${bot.id}`, { body: { name: "Crumb II" } });
    expect(((await patched.json()) as { name: string }).name).toBe("Crumb II");

    const skill = (await (
      await current.call("POST", `/api/bots/${bot.id}/skills`, { body: ORDER_TRACKER })
    ).json()) as { id: string };
    const renamed = await current.call("PATCH", `/api/skills/${skill.id}`, { body: { name: "Orders" } });
    expect(renamed.status).toBe(200);
    expect(((await renamed.json()) as { name: string }).name).toBe("Orders");
    expect((await current.call("DELETE", `/api/skills/${skill.id}?botId=${bot.id}`)).status).toBe(204);
    expect(await current.kilo.skills.list(bot.id)).toEqual([]);

    const created = await current.call("POST", `/api/bots/${bot.id}/tools`, { body: WEATHER_TOOL });
    expect(created.status).toBe(201);
    const tool = (await created.json()) as { id: string; credential: unknown };
    expect(tool.credential).toEqual({ configured: false });
    const fetched = await current.call("GET", `/api/tools/${tool.id}`);
    expect(((await fetched.json()) as { id: string }).id).toBe(tool.id);
    const listed = await current.call("GET", `/api/bots/${bot.id}/tools`);
    expect(((await listed.json()) as { items: unknown[] }).items).toHaveLength(1);
    const updated = await current.call("PATCH", `/api/tools/${tool.id}`, {
      body: { description: "Forecasts" },
    });
    expect(((await updated.json()) as { description: string }).description).toBe("Forecasts");
    expect((await current.call("DELETE", `/api/tools/${tool.id}`)).status).toBe(204);
    expect(await current.kilo.tools.list(bot.id)).toEqual([]);

    expect((await current.call("DELETE", `/api/bots/${bot.id}`)).status).toBe(204);
    expect((await current.call("GET", `/api/bots/${bot.id}`)).status).toBe(404);
  });

  it("streams a chat as Server-Sent Events ending with the result", async () => {
    const reply = "Good morning! The ovens are warm and the orders are ready.";
    const current = await start({ classify: [classify(null)], chat: [reply] });
    const bot = await createBot(current);
    const response = await current.call("POST", "/api/chat/stream", {
      body: { botId: bot.id, message: "good morning" },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/event-stream");
    const frames = await readSse(response);
    const deltas = frames.filter((frame) => frame.event === "text-delta");
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.map((frame) => (frame.data as { text: string }).text).join("")).toBe(reply);
    const last = frames.at(-1);
    expect(last?.event).toBe("result");
    expect((last?.data as { result: { reply: string } } | undefined)?.result.reply).toBe(reply);
  });

  it("sends a streamed turn's failure as an error event with the error shape", async () => {
    const current = await start({
      classify: [classify(null)],
      chat: [{ error: { code: "PROVIDER_FAILED", message: "upstream overloaded", retryable: false } }],
    });
    const bot = await createBot(current);
    const response = await current.call("POST", "/api/chat/stream", {
      body: { botId: bot.id, message: "hi" },
    });
    const frames = await readSse(response);
    const last = frames.at(-1);
    expect(last?.event).toBe("error");
    expectErrorShape(last?.data, "PROVIDER_FAILED");
  });

  it("ingests an event, returns 202 with its run_id, and the run can be polled until it succeeded", async () => {
    const current = await start({ classify: [classify(null)], chat: ["pong"] });
    const bot = await createBot(current);
    const ingest = await current.call("POST", "/v1/events", {
      body: { schema_version: 1, type: "message", conversation_key: "c1", user_key: ALICE, text: "ping" },
      headers: { "idempotency-key": "delivery-1" },
    });
    expect(ingest.status).toBe(202);
    const { run_id } = (await ingest.json()) as { run_id: string };
    expect(run_id).toEqual(expect.any(String));

    type RunView = { status: string; output: { reply?: string } | null; bot_id: string };
    const poll = async (): Promise<RunView> => {
      for (let attempt = 0; attempt < 100; attempt += 1) {
        const response = await current.call("GET", `/v1/runs/${run_id}`);
        expect(response.status).toBe(200);
        const view = (await response.json()) as RunView;
        if (view.status === "succeeded" || view.status === "failed") return view;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      throw new Error("the run did not finish");
    };
    const run = await poll();
    expect(run?.status).toBe("succeeded");
    expect(run?.output?.reply).toBe("pong");
    expect(run?.bot_id).toBe(bot.id);

    const again = await current.call("POST", "/v1/events", {
      body: { schema_version: 1, type: "message", conversation_key: "c1", user_key: ALICE, text: "ping" },
      headers: { "idempotency-key": "delivery-1" },
    });
    expect(await again.json()).toEqual({ run_id, duplicate: true });
  });

  it("answers bad input with 400 VALIDATION_FAILED in the error shape, changing nothing", async () => {
    const current = await start();
    const bot = await createBot(current);
    const cases: Array<[string, string, unknown]> = [
      ["POST", "/api/bots", { name: "" }],
      ["POST", "/api/bots", { name: "X", id: "chosen" }],
      ["POST", "/api/bots", "{ not json"],
      ["POST", "/api/bots", undefined],
      ["PATCH", `/api/bots/${bot.id}`, { name: 42 }],
      [
        "POST",
        `/api/bots/${bot.id}/skills`,
        { name: "Bad", dataFields: [{ name: "Not Snake", type: "string" }] },
      ],
      ["POST", `/api/bots/${bot.id}/tools`, { name: "t", baseUrl: "not a url", endpoints: [] }],
      ["POST", "/api/chat", { botId: bot.id }],
      ["POST", "/api/chat", { botId: bot.id, message: "   " }],
      ["POST", "/api/chat/stream", { botId: "bad id!", message: "hi" }],
      [
        "POST",
        "/v1/events",
        { schema_version: 2, type: "message", conversation_key: "c", user_key: ALICE, text: "x" },
      ],
      ["GET", `/api/users/${ALICE}/usage?from=yesterday`, undefined],
      ["GET", `/api/users/${ALICE}/bots?limit=0`, undefined],
      ["POST", "/api/approvals/appr_1/approve", {}],
    ];
    for (const [method, path, body] of cases) {
      const response = await current.call(method, path, { body });
      expect({ method, path, status: response.status }).toEqual({ method, path, status: 400 });
      expectErrorShape(await response.json(), "VALIDATION_FAILED");
    }
    expect((await current.kilo.bots.listByUser(ALICE)).items.map((b) => b.name)).toEqual(["Crumb"]);
    expect(await current.kilo.skills.list(bot.id)).toEqual([]);
    expect(await current.kilo.tools.list(bot.id)).toEqual([]);
    expect(current.provider.calls).toBe(0);
  });

  it("continues only existing conversations: an unknown conversation id is 404 and creates nothing", async () => {
    const current = await start();
    const created = await current.call("POST", "/api/bots", { body: { name: "Crumb" } });
    const bot = (await created.json()) as { id: string };
    const response = await current.call("POST", "/api/chat", {
      body: { botId: bot.id, message: "hello", conversationId: "conv_made_up" },
    });
    expect(response.status).toBe(404);
    expectErrorShape(await response.json(), "NOT_FOUND");
    expect((await current.kilo.conversations.list(bot.id)).items).toEqual([]);
    expect(current.provider.calls).toBe(0);
  });

  it("answers 401 without a user, 404 on unknown routes, 405 on a wrong method", async () => {
    const current = await start();
    const unauthenticated = await current.call("GET", `/api/users/${ALICE}/bots`, { user: null });
    expect(unauthenticated.status).toBe(401);
    expectErrorShape(await unauthenticated.json(), "UNAUTHENTICATED");
    const post = await current.call("POST", "/api/bots", { user: null, body: { name: "X" } });
    expect(post.status).toBe(401);
    expect((await current.kilo.bots.listByUser(ALICE)).items).toEqual([]);

    const unknown = await current.call("GET", "/api/nothing-here");
    expect(unknown.status).toBe(404);
    expectErrorShape(await unknown.json(), "NOT_FOUND");

    const wrongMethod = await current.call("PUT", "/api/bots/bot_1", { body: {} });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get("allow")).toBe("GET, PATCH, DELETE");
    expectErrorShape(await wrongMethod.json(), "METHOD_NOT_ALLOWED");
  });

  it("treats a throwing authenticate hook as unauthenticated, without leaking its error", async () => {
    const current = await start(
      {},
      {
        authenticate: async () => {
          throw new Error("token store at 10.0.0.5 is down");
        },
      },
    );
    const response = await current.call("GET", `/api/users/${ALICE}/bots`);
    expect(response.status).toBe(401);
    const text = await response.text();
    expect(text).not.toContain("10.0.0.5");
  });

  it("refuses a body over the limit with 413, by declared length and while streaming", async () => {
    const current = await start({}, { maxBodyBytes: 1024 });
    const big = JSON.stringify({ name: "x".repeat(5000) });
    const declared = await current.call("POST", "/api/bots", { body: big });
    expect(declared.status).toBe(413);
    expectErrorShape(await declared.json(), "PAYLOAD_TOO_LARGE");

    // A chunked body declares no length: the limit is enforced while reading.
    const chunks = new ReadableStream<Uint8Array>({
      start(controller) {
        const bytes = new TextEncoder().encode(big);
        for (let offset = 0; offset < bytes.length; offset += 512)
          controller.enqueue(bytes.slice(offset, offset + 512));
        controller.close();
      },
    });
    const streamed = await fetch(`${current.origin}/api/bots`, {
      method: "POST",
      headers: { "x-user": ALICE, "content-type": "application/json" },
      body: chunks,
      duplex: "half",
    } as RequestInit);
    expect(streamed.status).toBe(413);
    expectErrorShape(await streamed.json(), "PAYLOAD_TOO_LARGE");
    expect((await current.kilo.bots.listByUser(ALICE)).items).toEqual([]);
  });

  it("honours basePath", async () => {
    const current = await start({}, { basePath: "/kilo" });
    expect((await current.call("GET", "/kilo/healthz")).status).toBe(200);
    expect((await current.call("GET", "/healthz")).status).toBe(404);
  });

  it("never sends a stack trace, even for an unexpected failure", async () => {
    const current = await start();
    const bot = await createBot(current);
    current.kilo.skills.list = async () => {
      throw new TypeError("Cannot read properties of undefined (reading 'secretThing')");
    };
    const response = await current.call("GET", `/api/bots/${bot.id}/skills`);
    expect(response.status).toBe(500);
    const body = await response.json();
    expectErrorShape(body, "INTERNAL");
    expect(JSON.stringify(body)).not.toContain("secretThing");
  });
});
