import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROUTES, type RouteSpec } from "../../src/http/http-routes.js";
import { ALICE, classify, MALLORY, ORDER_TRACKER, startApi, type TestApi, WEATHER_TOOL } from "./helpers.js";

const RISKY_TOOL = {
  ...WEATHER_TOOL,
  name: "shop",
  endpoints: [
    ...WEATHER_TOOL.endpoints,
    {
      name: "cancel",
      method: "POST",
      path: "/cancel",
      description: "Cancel everything",
      parameters: [],
      risky: true,
    },
  ],
};

describe("every route checks that the authenticated user owns what it touches", () => {
  let api: TestApi;
  const alice = {
    botId: "",
    skillId: "",
    toolId: "",
    conversationId: "",
    runId: "",
    approvalId: "",
    traceId: "",
    promotionId: "",
  };
  let malloryBot = "";

  async function json<T>(response: Promise<Response>, status: number): Promise<T> {
    const resolved = await response;
    expect(resolved.status).toBe(status);
    return (await resolved.json()) as T;
  }

  /** What Alice owns, as kilo itself sees it: must be the same after Mallory's attempts. */
  async function aliceState() {
    const { kilo } = api;
    const messages = await kilo.conversations.messages(alice.botId, alice.conversationId);
    return {
      bots: await kilo.bots.listByUser(ALICE),
      skills: await kilo.skills.list(alice.botId),
      tools: await kilo.tools.list(alice.botId),
      approvals: await kilo.approvals.list(alice.botId),
      conversations: await kilo.conversations.list(alice.botId),
      messages,
      run: await kilo.runs.get(alice.runId),
      steps: await kilo.runs.steps(alice.runId),
      traces: await kilo.traces.list({ botId: alice.botId }),
      history: await kilo.skills.history(alice.botId, alice.skillId),
      usage: await kilo.usage.summary({ userId: ALICE }),
      promotions: await kilo.skills.promotions.list(),
      teamSkills: await kilo.skills.list({ kind: "team", id: "crumb-team" }),
      providerCalls: api.provider.calls,
    };
  }

  beforeAll(async () => {
    api = await startApi({
      classify: [classify(null), classify(null), classify(null)],
      chat: [
        { toolCalls: [{ name: "call_api", input: { tool: "shop", endpoint: "cancel", params: {} } }] },
        "I have asked for your approval.",
        "pong",
        "Mallory's own reply",
      ],
    });
    const bot = await json<{ id: string }>(api.call("POST", "/api/bots", { body: { name: "Crumb" } }), 201);
    alice.botId = bot.id;
    alice.skillId = (
      await json<{ id: string }>(api.call("POST", `/api/bots/${bot.id}/skills`, { body: ORDER_TRACKER }), 201)
    ).id;
    alice.toolId = (
      await json<{ id: string }>(api.call("POST", `/api/bots/${bot.id}/tools`, { body: RISKY_TOOL }), 201)
    ).id;
    const turn = await json<{ conversationId: string }>(
      api.call("POST", "/api/chat", { body: { botId: bot.id, message: "please cancel everything" } }),
      200,
    );
    alice.conversationId = turn.conversationId;
    const [approval] = await api.kilo.approvals.list(bot.id, { status: "pending" });
    expect(approval).toBeDefined();
    alice.approvalId = approval?.id ?? "";
    const { run_id } = await json<{ run_id: string }>(
      api.call("POST", "/v1/events", {
        body: { schema_version: 1, type: "message", conversation_key: "k1", user_key: ALICE, text: "ping" },
      }),
      202,
    );
    alice.runId = run_id;
    expect((await api.kilo.runs.wait(run_id)).status).toBe("succeeded");
    alice.traceId = (await api.kilo.traces.list({ botId: bot.id })).items[0]?.id ?? "";
    expect(alice.traceId).not.toBe("");
    malloryBot = (
      await json<{ id: string }>(api.call("POST", "/api/bots", { user: MALLORY, body: { name: "Mal" } }), 201)
    ).id;
    // Alice's team, and her request to share the skill with it (Mallory is in no team).
    await api.kilo.teams.create({ id: "crumb-team", name: "Crumbs" }, { actor: { userId: ALICE } });
    alice.promotionId = (
      await json<{ id: string }>(
        api.call("POST", `/api/skills/${alice.skillId}/promotions`, {
          body: { to: { kind: "team", id: "crumb-team" }, reason: "Share it" },
        }),
        201,
      )
    ).id;
  });

  afterAll(async () => {
    await api.close();
  });

  it("answers 403 or 404 on every route called with another user's ids, and changes nothing", async () => {
    const before = await aliceState();
    const { botId, skillId, toolId, conversationId, runId, approvalId, traceId, promotionId } = alice;
    const attempts: Array<[method: string, path: string, body: unknown, expected: 403 | 404]> = [
      ["GET", `/api/users/${ALICE}/bots`, undefined, 403],
      ["POST", "/api/bots", { name: "Planted", userId: ALICE }, 403],
      ["GET", `/api/bots/${botId}`, undefined, 404],
      ["PATCH", `/api/bots/${botId}`, { name: "Owned" }, 404],
      ["DELETE", `/api/bots/${botId}`, undefined, 404],
      ["GET", `/api/bots/${botId}/skills`, undefined, 404],
      ["POST", `/api/bots/${botId}/skills`, { name: "Planted" }, 404],
      ["PATCH", `/api/skills/${skillId}`, { name: "Owned" }, 404],
      ["PATCH", `/api/skills/${skillId}?botId=${botId}`, { name: "Owned" }, 404],
      ["DELETE", `/api/skills/${skillId}`, undefined, 404],
      ["DELETE", `/api/skills/${skillId}?botId=${botId}`, undefined, 404],
      ["GET", `/api/bots/${botId}/tools`, undefined, 404],
      ["POST", `/api/bots/${botId}/tools`, { ...WEATHER_TOOL, name: "planted" }, 404],
      ["GET", `/api/tools/${toolId}`, undefined, 404],
      ["GET", `/api/tools/${toolId}?botId=${botId}`, undefined, 404],
      ["PATCH", `/api/tools/${toolId}`, { description: "Owned" }, 404],
      ["PATCH", `/api/tools/${toolId}?botId=${botId}`, { description: "Owned" }, 404],
      ["DELETE", `/api/tools/${toolId}`, undefined, 404],
      ["DELETE", `/api/tools/${toolId}?botId=${botId}`, undefined, 404],
      ["POST", "/api/chat", { botId, message: "hello" }, 404],
      ["POST", "/api/chat", { botId, conversationId, message: "hello" }, 404],
      ["POST", "/api/chat/stream", { botId, message: "hello" }, 404],
      ["POST", "/api/chat/stream", { botId, conversationId, message: "hello" }, 404],
      ["POST", `/api/approvals/${approvalId}/approve`, { botId }, 404],
      ["POST", `/api/approvals/${approvalId}/approve?botId=${botId}`, undefined, 404],
      ["POST", `/api/approvals/${approvalId}/approve`, { botId: malloryBot }, 404],
      ["POST", `/api/approvals/${approvalId}/deny`, { botId, reason: "mine now" }, 404],
      ["POST", `/api/approvals/${approvalId}/deny?botId=${botId}`, undefined, 404],
      ["POST", `/api/approvals/${approvalId}/deny`, { botId: malloryBot }, 404],
      ["GET", `/api/users/${ALICE}/usage`, undefined, 403],
      ["GET", `/api/users/${ALICE}/usage/breakdown`, undefined, 403],
      ["GET", `/api/users/${MALLORY}/usage?botId=${botId}`, undefined, 404],
      ["GET", `/api/users/${MALLORY}/usage/breakdown?botId=${botId}`, undefined, 404],
      [
        "POST",
        "/v1/events",
        {
          schema_version: 1,
          type: "message",
          conversation_key: "k1",
          user_key: ALICE,
          text: "x",
          bot_id: botId,
        },
        403,
      ],
      [
        "POST",
        "/v1/events",
        {
          schema_version: 1,
          type: "message",
          conversation_key: "k1",
          user_key: MALLORY,
          text: "x",
          bot_id: botId,
        },
        404,
      ],
      ["GET", `/v1/runs/${runId}`, undefined, 404],
      ["GET", `/api/bots/${botId}/approvals`, undefined, 404],
      ["GET", `/api/skills/${skillId}/history`, undefined, 404],
      ["GET", `/api/skills/${skillId}/history?botId=${botId}`, undefined, 404],
      ["GET", `/api/skills/${skillId}/versions/1`, undefined, 404],
      ["POST", `/api/skills/${skillId}/rollback`, { version: 1 }, 404],
      ["POST", `/api/skills/${skillId}/rollback?botId=${botId}`, { version: 1 }, 404],
      ["GET", `/api/bots/${botId}/drafts`, undefined, 404],
      ["POST", `/api/skills/${skillId}/approve`, undefined, 404],
      ["POST", `/api/skills/${skillId}/reject?botId=${botId}`, { reason: "mine" }, 404],
      ["POST", `/api/bots/${botId}/evolve`, {}, 404],
      ["POST", `/api/bots/${botId}/evolve/stream`, {}, 404],
      ["GET", `/api/bots/${botId}/traces`, undefined, 404],
      ["GET", `/api/traces/${traceId}`, undefined, 404],
      ["GET", `/api/traces/${traceId}?botId=${botId}`, undefined, 404],
      ["POST", `/api/traces/${traceId}/feedback`, { rating: "down" }, 404],
      ["GET", `/api/bots/${botId}/runs?conversationKey=k1`, undefined, 404],
      ["GET", `/api/runs/${runId}/steps`, undefined, 404],
      ["POST", `/api/skills/${skillId}/promotions`, { to: { kind: "system" }, reason: "mine" }, 404],
      ["POST", `/api/promotions/${promotionId}/approve`, {}, 403],
      ["POST", `/api/promotions/${promotionId}/reject`, { reason: "no" }, 403],
    ];
    const seen = new Set<string>();
    for (const [method, path, body, expected] of attempts) {
      seen.add(`${method} ${path.replace(/\?.*$/, "")}`);
      const response = await api.call(method, path, { user: MALLORY, body });
      const text = await response.text();
      expect({ method, path, status: response.status }).toEqual({ method, path, status: expected });
      const parsed = JSON.parse(text) as { error: { code: string; message: string } };
      expect(parsed.error.code).toBe(expected === 403 ? "FORBIDDEN" : "NOT_FOUND");
      // Never names whose the thing is.
      expect(text).not.toContain(ALICE);
    }
    // The review queue lists only requests Mallory may review: none of Alice's.
    const queue = await api.call("GET", "/api/promotions", { user: MALLORY });
    expect(queue.status).toBe(200);
    expect(((await queue.json()) as { items: unknown[] }).items).toEqual([]);
    seen.add("GET /api/promotions");
    // Every authenticated route of the API (all but /healthz, /openapi.json and /api/me, which names
    // no id and answers only who the caller is) was walked.
    const templates = (ROUTES as readonly RouteSpec[])
      .filter((route) => route.auth !== false && route.operationId !== "getPrincipal")
      .map((route) => `${route.method} ${route.path}`);
    expect(templates).toHaveLength(40);
    const ids: Record<string, string> = {
      ":userId": ALICE,
      ":botId": botId,
      ":skillId": skillId,
      ":toolId": toolId,
      ":approvalId": approvalId,
      ":run_id": runId,
      ":runId": runId,
      ":traceId": traceId,
      ":promotionId": promotionId,
      ":version": "1",
    };
    for (const template of templates) {
      const concrete = template.replace(/:[A-Za-z_]+/g, (key) => ids[key] ?? key);
      expect(seen.has(concrete) || seen.has(concrete.replace(ALICE, MALLORY)), template).toBe(true);
    }
    expect(await aliceState()).toEqual(before);
  });

  it("answers another user's bot exactly as a bot that does not exist", async () => {
    const theirs = await api.call("GET", `/api/bots/${alice.botId}`, { user: MALLORY });
    const missing = await api.call("GET", "/api/bots/bot_does_not_exist", { user: MALLORY });
    type ErrorBody = { error: { code: string; message: string } };
    const strip = (body: ErrorBody, id: string) => ({
      ...body.error,
      message: body.error.message.replace(id, "<id>"),
    });
    expect(strip((await theirs.json()) as ErrorBody, alice.botId)).toEqual(
      strip((await missing.json()) as ErrorBody, "bot_does_not_exist"),
    );
  });

  it("keeps Mallory's own conversation apart when Mallory names Alice's conversation id", async () => {
    const before = await aliceState();
    const response = await api.call("POST", "/api/chat", {
      user: MALLORY,
      body: { botId: malloryBot, conversationId: alice.conversationId, message: "hello" },
    });
    expect(response.status).toBe(404);
    expect(((await response.clone().json()) as { error: { code: string } }).error.code).toBe("NOT_FOUND");
    expect(await response.text()).not.toContain("cancel everything");
    const { providerCalls: _ignored, usage: _usage, ...rest } = before;
    const { providerCalls: _after, usage: _usageAfter, ...restAfter } = await aliceState();
    expect(restAfter).toEqual(rest);
  });

  it("lets Alice approve her own pending call", async () => {
    const outcome = await api.call("POST", `/api/approvals/${alice.approvalId}/deny`, {
      body: { botId: alice.botId, reason: "changed my mind" },
    });
    expect(outcome.status).toBe(200);
    expect(((await outcome.json()) as { approval: { status: string } }).approval.status).toBe("denied");
  });
});
