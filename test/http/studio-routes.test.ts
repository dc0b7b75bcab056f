import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { memoryStorage } from "../../adapters/storage/memory/index.js";
import { offlineProvider } from "../../src/cli/offline-provider.js";
import { createHttpHandler, toNodeHandler } from "../../src/http/index.js";
import { createKilo, type Kilo } from "../../src/index.js";
import { ALICE, classify, ORDER_TRACKER, readSse, startApi, type TestApi, WEATHER_TOOL } from "./helpers.js";

// The routes kilo studio uses beyond the seed's REST API: who am I, skill history and rollback,
// evolution with its drafts and their review, traces with feedback, runs by conversation, approvals.

interface Server2 {
  kilo: Kilo;
  call(method: string, path: string, options?: { user?: string | null; body?: unknown }): Promise<Response>;
  close(): Promise<void>;
}

const servers: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

/**
 * The handler on a real node:http server over memory storage and the CLI's offline model, which
 * drafts a skill from a pattern's keywords (as `kilo evolve` without a key does).
 */
async function startOffline(): Promise<Server2> {
  const kilo = createKilo({ storage: memoryStorage(), providers: [offlineProvider()] });
  const handler = createHttpHandler(kilo, {
    authenticate: async (request) => {
      const user = request.headers.get("x-user");
      return user ? { userId: user } : null;
    },
  });
  const server: Server = createServer(toNodeHandler(handler));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const started: Server2 = {
    kilo,
    call: (method, path, { user = ALICE, body } = {}) =>
      fetch(`${origin}${path}`, {
        method,
        headers: {
          ...(user ? { "x-user": user } : {}),
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      }),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await kilo.close();
    },
  };
  servers.push(started);
  return started;
}

async function json<T>(response: Promise<Response>, status = 200): Promise<T> {
  const resolved = await response;
  const text = await resolved.text();
  expect({ status: resolved.status, text }).toMatchObject({ status });
  return JSON.parse(text) as T;
}

async function aliceBot(server: Pick<Server2, "call">): Promise<string> {
  return (await json<{ id: string }>(server.call("POST", "/api/bots", { body: { name: "Crumb" } }), 201)).id;
}

const REQUESTS = ["log my run of 5 km today", "log my run of 10 km", "please log my run of 3 km"];

describe("GET /api/me", () => {
  it("answers who the request acts for, and 401 without credentials", async () => {
    const server = await startOffline();
    expect(await json(server.call("GET", "/api/me"))).toEqual({ userId: ALICE });
    expect((await server.call("GET", "/api/me", { user: null })).status).toBe(401);
  });
});

describe("skill history, versions and rollback", () => {
  it("lists versions with diffs, reads one, and rolls back as a new version", async () => {
    const server = await startOffline();
    const botId = await aliceBot(server);
    const skill = await json<{ id: string }>(
      server.call("POST", `/api/bots/${botId}/skills`, { body: ORDER_TRACKER }),
      201,
    );
    await json(server.call("PATCH", `/api/skills/${skill.id}`, { body: { description: "Takes orders." } }));

    type Version = { version: number; author: string; reason: string | null; diff: string };
    const history = await json<{ items: Version[]; nextCursor: string | null }>(
      server.call("GET", `/api/skills/${skill.id}/history?botId=${botId}&limit=10`),
    );
    expect(history.items.map((version) => version.version)).toEqual([2, 1]);
    expect(history.items[0]?.diff).toContain("+");
    expect(history.items[0]?.diff).toContain("Takes orders.");
    expect(history.nextCursor).toBeNull();
    const paged = await json<{ items: Version[]; nextCursor: string | null }>(
      server.call("GET", `/api/skills/${skill.id}/history?limit=1`),
    );
    expect(paged.items.map((version) => version.version)).toEqual([2]);
    expect(paged.nextCursor).not.toBeNull();

    const first = await json<{ version: number; snapshot: { description: string } }>(
      server.call("GET", `/api/skills/${skill.id}/versions/1`),
    );
    expect(first).toMatchObject({ version: 1, snapshot: { description: ORDER_TRACKER.description } });
    expect((await server.call("GET", `/api/skills/${skill.id}/versions/9`)).status).toBe(404);
    expect((await server.call("GET", `/api/skills/${skill.id}/versions/one`)).status).toBe(400);

    const restored = await json<{ description: string }>(
      server.call("POST", `/api/skills/${skill.id}/rollback?botId=${botId}`, { body: { version: 1 } }),
    );
    expect(restored.description).toBe(ORDER_TRACKER.description);
    const after = await json<{ items: Version[] }>(server.call("GET", `/api/skills/${skill.id}/history`));
    expect(after.items[0]).toMatchObject({ version: 3, author: ALICE, reason: "Rollback to version 1" });

    expect(
      (await server.call("POST", `/api/skills/${skill.id}/rollback`, { body: { version: 0 } })).status,
    ).toBe(400);
    expect(
      (await server.call("POST", `/api/skills/${skill.id}/rollback`, { body: { version: 7 } })).status,
    ).toBe(404);
  });
});

describe("evolution and draft review", () => {
  async function seeded() {
    const server = await startOffline();
    const botId = await aliceBot(server);
    for (const message of REQUESTS)
      await json(server.call("POST", "/api/chat", { body: { botId, message } }));
    return { server, botId };
  }

  it("evolves, lists the draft with its replay evidence, and approves it", async () => {
    const { server, botId } = await seeded();
    const result = await json<{
      tracesAnalyzed: number;
      skillsCreated: number;
      skills: Array<{ id: string; status: string }>;
      patterns: Array<{ outcome: string }>;
    }>(server.call("POST", `/api/bots/${botId}/evolve`, { body: { minOccurrences: 3 } }));
    expect(result).toMatchObject({ tracesAnalyzed: 3, skillsCreated: 1 });
    expect(result.patterns.map((pattern) => pattern.outcome)).toEqual(["created"]);
    const draftId = result.skills[0]?.id ?? "";

    const drafts = await json<{
      items: Array<{ id: string; status: string; metadata: Record<string, unknown> }>;
    }>(server.call("GET", `/api/bots/${botId}/drafts`));
    expect(drafts.items.map((draft) => draft.id)).toEqual([draftId]);
    expect(drafts.items[0]?.metadata).toMatchObject({
      source: "evolution",
      evolution: {
        occurrences: 3,
        replay: { messages: 3, matchedBefore: 0, matchedByDraft: expect.any(Number) },
      },
    });

    const approved = await json<{ status: string }>(
      server.call("POST", `/api/skills/${draftId}/approve?botId=${botId}`, {
        body: { reason: "Looks right" },
      }),
    );
    expect(approved.status).toBe("active");
    const [latest] = (await server.kilo.skills.history(botId, draftId)).items;
    expect(latest).toMatchObject({ author: ALICE, reason: "Looks right" });
    expect((await json<{ items: unknown[] }>(server.call("GET", `/api/bots/${botId}/drafts`))).items).toEqual(
      [],
    );

    // Only a draft can be reviewed.
    const again = await server.call("POST", `/api/skills/${draftId}/approve`);
    expect(again.status).toBe(409);
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe("CONFLICT");
  });

  it("rejects a draft by disabling it, so the next pass does not draft it again", async () => {
    const { server, botId } = await seeded();
    const result = await json<{ skills: Array<{ id: string }> }>(
      server.call("POST", `/api/bots/${botId}/evolve`),
    );
    const draftId = result.skills[0]?.id ?? "";
    const rejected = await json<{ status: string }>(server.call("POST", `/api/skills/${draftId}/reject`));
    expect(rejected.status).toBe("disabled");
    const [latest] = (await server.kilo.skills.history(botId, draftId)).items;
    expect(latest).toMatchObject({ author: ALICE, reason: "Draft rejected" });
    const second = await json<{ skillsCreated: number }>(server.call("POST", `/api/bots/${botId}/evolve`));
    expect(second.skillsCreated).toBe(0);
  });

  it("streams evolution's progress, then its result", async () => {
    const { server, botId } = await seeded();
    const response = await server.call("POST", `/api/bots/${botId}/evolve/stream`, { body: {} });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/event-stream");
    const frames = await readSse(response);
    const stages = frames
      .filter((frame) => frame.event === "progress")
      .map((frame) => (frame.data as { stage: string }).stage);
    expect(stages).toEqual(["analysing", "detected", "created", "done"]);
    expect(frames.at(-1)).toMatchObject({
      event: "result",
      data: { type: "result", result: { skillsCreated: 1 } },
    });
  });

  it("validates the evolve options before anything runs", async () => {
    const { server, botId } = await seeded();
    const response = await server.call("POST", `/api/bots/${botId}/evolve/stream`, {
      body: { minOccurrences: 1 },
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe("VALIDATION_FAILED");
    expect(
      (await server.call("POST", `/api/bots/${botId}/evolve`, { body: { userId: "mallory" } })).status,
    ).toBe(400);
  });
});

describe("traces", () => {
  it("lists a bot's traces, reads one, and records feedback", async () => {
    const server = await startOffline();
    const botId = await aliceBot(server);
    const turn = await json<{ traceId: string; conversationId: string }>(
      server.call("POST", "/api/chat", { body: { botId, message: "ping" } }),
    );
    const page = await json<{ items: Array<{ id: string; message: string; conversationId: string }> }>(
      server.call("GET", `/api/bots/${botId}/traces?limit=10&userId=${ALICE}`),
    );
    expect(page.items).toEqual([
      expect.objectContaining({ id: turn.traceId, message: "ping", conversationId: turn.conversationId }),
    ]);
    expect(
      (await json<{ items: unknown[] }>(server.call("GET", `/api/bots/${botId}/traces?userId=someone-else`)))
        .items,
    ).toEqual([]);
    expect((await server.call("GET", `/api/bots/${botId}/traces?from=yesterday`)).status).toBe(400);

    expect(await json(server.call("GET", `/api/traces/${turn.traceId}`))).toMatchObject({
      id: turn.traceId,
      outcome: "ok",
    });
    expect((await server.call("GET", "/api/traces/trace_missing")).status).toBe(404);

    const rated = await json<{ feedback: { rating: string; comment: string | null } }>(
      server.call("POST", `/api/traces/${turn.traceId}/feedback?botId=${botId}`, {
        body: { rating: "down", comment: "too short" },
      }),
    );
    expect(rated.feedback).toMatchObject({ rating: "down", comment: "too short" });
    expect(
      (await server.call("POST", `/api/traces/${turn.traceId}/feedback`, { body: { rating: "meh" } })).status,
    ).toBe(400);
  });
});

describe("runs by conversation", () => {
  it("lists a conversation key's runs in order, and a run's steps", async () => {
    const server = await startOffline();
    const botId = await aliceBot(server);
    const runIds: string[] = [];
    for (const text of ["ping", "ping again"]) {
      const { run_id } = await json<{ run_id: string }>(
        server.call("POST", "/v1/events", {
          body: {
            schema_version: 1,
            type: "message",
            conversation_key: "k1",
            user_key: ALICE,
            text,
            bot_id: botId,
          },
        }),
        202,
      );
      await server.kilo.runs.wait(run_id);
      runIds.push(run_id);
    }
    type RunItem = {
      id: string;
      status: string;
      conversationKey: string;
      seq: number;
      output: { traceId?: string };
    };
    const runs = await json<{ items: RunItem[] }>(
      server.call("GET", `/api/bots/${botId}/runs?conversationKey=k1`),
    );
    expect(runs.items.map((run) => [run.id, run.status, run.conversationKey])).toEqual([
      [runIds[0], "succeeded", "k1"],
      [runIds[1], "succeeded", "k1"],
    ]);
    expect(runs.items[0]?.output.traceId).toEqual(expect.any(String));
    const later = await json<{ items: RunItem[] }>(
      server.call("GET", `/api/bots/${botId}/runs?conversationKey=k1&afterSeq=${runs.items[0]?.seq}&limit=5`),
    );
    expect(later.items.map((run) => run.id)).toEqual([runIds[1]]);
    expect(
      (await json<{ items: unknown[] }>(server.call("GET", `/api/bots/${botId}/runs?conversationKey=other`)))
        .items,
    ).toEqual([]);
    // Without a conversation key: every conversation's runs, newest first, paged with a cursor.
    const { run_id: otherRun } = await json<{ run_id: string }>(
      server.call("POST", "/v1/events", {
        body: {
          schema_version: 1,
          type: "message",
          conversation_key: "k2",
          user_key: ALICE,
          text: "hi",
          bot_id: botId,
        },
      }),
      202,
    );
    await server.kilo.runs.wait(otherRun);
    const first = await json<{ items: RunItem[]; nextCursor: string | null }>(
      server.call("GET", `/api/bots/${botId}/runs?limit=2`),
    );
    expect(first.items.map((run) => [run.id, run.conversationKey])).toEqual([
      [otherRun, "k2"],
      [runIds[1], "k1"],
    ]);
    const rest = await json<{ items: RunItem[]; nextCursor: string | null }>(
      server.call("GET", `/api/bots/${botId}/runs?limit=2&cursor=${first.nextCursor}`),
    );
    expect(rest).toMatchObject({ items: [expect.objectContaining({ id: runIds[0] })], nextCursor: null });
    // Each way of paging belongs to its listing.
    expect((await server.call("GET", `/api/bots/${botId}/runs?afterSeq=1`)).status).toBe(400);
    expect((await server.call("GET", `/api/bots/${botId}/runs?conversationKey=k1&cursor=x`)).status).toBe(
      400,
    );
    // kilo.runs.list itself: the bot must exist, and its options are checked.
    await expect(server.kilo.runs.list("bot_missing", "k1")).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(server.kilo.runs.list(botId, "k1", { limit: 501 })).rejects.toMatchObject({
      code: "VALIDATION_FAILED",
    });
    expect((await server.kilo.runs.list(botId, "k1", { limit: 1 })).map((run) => run.id)).toEqual([
      runIds[0],
    ]);

    const steps = await json<{ items: Array<{ kind: string; status: string }> }>(
      server.call("GET", `/api/runs/${runIds[0]}/steps`),
    );
    expect(steps.items).toEqual([expect.objectContaining({ kind: "turn", status: "succeeded" })]);
    expect((await server.call("GET", "/api/runs/run_missing/steps")).status).toBe(404);
  });
});

describe("approvals of a bot", () => {
  let api: TestApi | null = null;
  afterEach(async () => {
    await api?.close();
    api = null;
  });

  it("lists the pending approvals, and no longer once decided", async () => {
    api = await startApi({
      classify: [classify(null), classify(null)],
      "propose-skill": ["{}", "{}"],
      chat: [
        { toolCalls: [{ name: "call_api", input: { tool: "shop", endpoint: "cancel", params: {} } }] },
        "It is waiting for your approval.",
        "Not sent.",
      ],
    });
    const botId = (
      await json<{ id: string }>(api.call("POST", "/api/bots", { body: { name: "Crumb" } }), 201)
    ).id;
    const risky = {
      ...WEATHER_TOOL,
      name: "shop",
      endpoints: [
        {
          name: "cancel",
          method: "POST",
          path: "/cancel",
          description: "Cancel",
          parameters: [],
          risky: true,
        },
      ],
    };
    await json(api.call("POST", `/api/bots/${botId}/tools`, { body: risky }), 201);
    await json(api.call("POST", "/api/chat", { body: { botId, message: "cancel everything" } }));
    type Approval = { id: string; status: string; toolName: string; endpoint: string };
    const pending = await json<{ items: Approval[] }>(
      api.call("GET", `/api/bots/${botId}/approvals?status=pending`),
    );
    expect(pending.items).toEqual([
      expect.objectContaining({ toolName: "shop", endpoint: "cancel", status: "pending" }),
    ]);
    await json(api.call("POST", `/api/approvals/${pending.items[0]?.id}/deny`, { body: { botId } }));
    expect(
      (await json<{ items: Approval[] }>(api.call("GET", `/api/bots/${botId}/approvals?status=pending`)))
        .items,
    ).toEqual([]);
    expect(
      (await json<{ items: Approval[] }>(api.call("GET", `/api/bots/${botId}/approvals?limit=1`))).items,
    ).toHaveLength(1);
    expect((await api.call("GET", `/api/bots/${botId}/approvals?status=maybe`)).status).toBe(400);
  });
});
