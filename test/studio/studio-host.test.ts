import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memoryStorage } from "../../adapters/storage/memory/index.js";
import { createHttpHandler, toNodeHandler } from "../../src/http/index.js";
import { createHttpExecutor, createKilo, type Kilo, type LlmRequest } from "../../src/index.js";
import { type MockReply, mockProvider } from "../../src/testing/index.js";
import { RISKY_REFUND_ENDPOINT } from "../fixtures.js";
import {
  startHttpsServer,
  TEST_CA,
  type TestServer,
  tableResolver,
} from "../tools/helpers/https-test-server.js";
import { launchBrowser, screenshot, unlabelledControls, watchForErrors } from "./studio-harness.js";

// kilo studio mounted by a host through kilo/http (`createHttpHandler(kilo, { studio: true })`
// under /kilo), over a scripted mock model and a local HTTPS server as the external API (allowed
// by the executor's test-only private-address allowlist): a pending tool call approved from the
// chat, skill scopes, and promotion requests reviewed and made through the real routes.

const USER = "ann";
let kilo: Kilo;
let server: Server;
let external: TestServer;
let browser: Browser;
let origin = "";
let botId = "";
const chatReplies: MockReply[] = [
  { text: "Nice to meet you, Ann.", thinking: "She told me her name; I should remember it." },
  {
    text: "I will ask you first.",
    thinking: "A refund is a risky call: it needs the user's approval.",
    toolCalls: [
      { name: "call_api", input: { tool: "bakeshop", endpoint: "refund", params: { amount: 1200 } } },
    ],
  },
  "The refund of $12.00 is waiting for your approval.",
  "Done: $12.00 was refunded.",
];

function respond(request: LlmRequest): MockReply {
  switch (request.purpose) {
    case "classify":
      return JSON.stringify({ skill: null, confidence: 0.9, actionable: false, reason: "scripted" });
    case "propose-skill":
      return "{}";
    case "extract-memory":
      return JSON.stringify({ facts: [] });
    default:
      return chatReplies.shift() ?? "(no reply scripted)";
  }
}

beforeAll(async () => {
  external = await startHttpsServer((request, res) => {
    res.writeHead(request.path === "/v1/refunds" ? 200 : 404, { "content-type": "application/json" });
    res.end(
      request.path === "/v1/refunds" ? JSON.stringify({ refunded: JSON.parse(request.body).amount }) : "{}",
    );
  });
  kilo = createKilo({
    storage: memoryStorage(),
    providers: [mockProvider({ respond, model: "claude-sonnet-4-5" })],
    executor: createHttpExecutor({
      resolve: tableResolver({ "api.test.kilo": ["127.0.0.1"] }).resolve,
      ca: TEST_CA,
      allowPrivateAddresses: ["127.0.0.1"],
    }),
  });
  botId = (await kilo.bots.create({ userId: USER, name: "Till" })).id;
  await kilo.tools.create(botId, {
    name: "bakeshop",
    description: "The bakery's order system",
    baseUrl: external.origin("api.test.kilo"),
    auth: { type: "none" },
    endpoints: [RISKY_REFUND_ENDPOINT],
  });
  await kilo.skills.create(botId, {
    name: "Order Tracker",
    description: "Records customer orders.",
    instructions: "Store each new order.",
    triggers: ["order", "orders"],
  });
  // The host's own auth: here a cookie its login page would have set.
  const handler = createHttpHandler(kilo, {
    basePath: "/kilo",
    studio: true,
    authenticate: async (request) =>
      /(?:^|;\s*)session=ann-session(?:;|$)/.test(request.headers.get("cookie") ?? "")
        ? { userId: USER }
        : null,
  });
  server = createServer(toNodeHandler(handler));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await launchBrowser();
}, 300_000);

afterAll(async () => {
  await browser?.close();
  server?.closeAllConnections();
  await new Promise<void>((resolve) => server?.close(() => resolve()));
  await kilo?.close();
  await external?.close();
}, 300_000);

async function signedIn(): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.addCookies([{ name: "session", value: "ann-session", url: origin }]);
  const page = await context.newPage();
  return { page, errors: watchForErrors(page) };
}

describe("kilo studio mounted by a host", () => {
  it("answers a browser without the host's session as the API does", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const response = await page.goto(`${origin}/kilo/studio/`);
    expect(response?.status()).toBe(401);
    expect(await response?.json()).toEqual({
      error: { code: "UNAUTHENTICATED", message: "Authentication required" },
    });
    await context.close();
  }, 300_000);

  it("shows a pending tool call with Approve and Deny, and approving it sends the call and continues", async () => {
    const { page, errors } = await signedIn();
    await page.goto(`${origin}/kilo/studio`);
    await page.getByRole("heading", { name: "Chat with Till" }).waitFor();

    // A turn that writes a memory, with its thinking summary.
    await page.getByLabel("Message").fill("My name is Ann");
    await page.getByRole("button", { name: "Send" }).click();
    const first = page.locator(".message.assistant").first();
    await first.locator(".turn-cost").waitFor();
    await expect(first.locator(".memories").textContent()).resolves.toBe("name: The user's name is Ann.");
    await first.getByText("Thinking summary").click();
    await expect(first.locator(".thinking p").textContent()).resolves.toContain("remember");
    await expect(first.locator(".turn-cost").textContent()).resolves.toMatch(
      /^Cost \$0\.\d{4,6} · \d model calls? · \d+ tokens in, \d+ out$/,
    );

    // A risky call: nothing is sent until Ann approves it.
    await page.getByLabel("Message").fill("Please refund my order, $12");
    await page.getByRole("button", { name: "Send" }).click();
    const second = page.locator(".message.assistant").nth(1);
    await second.locator(".turn-cost").waitFor();
    const call = second.locator(".tool-call");
    await expect(call.textContent()).resolves.toContain("waiting for approval");
    const pending = page.getByRole("region", { name: "Waiting for your approval" });
    await pending.locator("code", { hasText: "bakeshop.refund" }).waitFor();
    await pending.getByRole("button", { name: "Approve bakeshop.refund" }).waitFor();
    expect(external.requests).toEqual([]);
    await screenshot(page, "approvals");

    await call.getByRole("button", { name: "Approve" }).click();
    await call
      .getByText('Approved: sent. It returned: {"status":200,"body":"{\\"refunded\\":1200}"}')
      .waitFor();
    await page.locator(".message.assistant").nth(2).getByText("Done: $12.00 was refunded.").waitFor();
    // The same approval in the pending list was settled with it, and the list is gone.
    await expect.poll(() => pending.isHidden()).toBe(true);
    expect(
      external.requests.map((request) => [request.method, request.path, JSON.parse(request.body)]),
    ).toEqual([["POST", "/v1/refunds", { amount: 1200 }]]);
    const [approval] = await kilo.approvals.list(botId);
    expect(approval?.status).toBe("approved");
    await screenshot(page, "approvals-approved");
    expect(await unlabelledControls(page)).toEqual([]);
    expect(errors).toEqual([]);
    await page.context().close();
  }, 300_000);

  it("shows skill scopes from the real routes: a column, a filter, and system skills read-only", async () => {
    // Ann's team and a system skill: Till, in the team, sees its own, the team's and the system's skills.
    await kilo.teams.create({ id: "bakers", name: "Bakers" }, { actor: { userId: USER } });
    await kilo.bots.update(botId, { teamId: "bakers" });
    const shared = (name: string) => ({
      name,
      description: `${name} for everyone`,
      instructions: "Follow it.",
      triggers: [name.toLowerCase()],
    });
    await kilo.skills.create({ kind: "team", id: "bakers" }, shared("Bakers' Rota"));
    await kilo.skills.create({ kind: "system" }, shared("House Style"));
    const { page, errors } = await signedIn();
    await page.goto(`${origin}/kilo/studio/#/skills`);
    const rows = page.getByRole("table", { name: "Skills of Till" }).getByRole("row");
    await rows.filter({ hasText: "Bakers' Rota" }).waitFor();
    await expect(rows.filter({ hasText: "Bakers' Rota" }).textContent()).resolves.toContain("Team (bakers)");
    await expect(rows.filter({ hasText: "House Style" }).textContent()).resolves.toContain("System");
    await page.getByLabel("Scope").selectOption("team");
    await page.getByText("1 of 3 skills").waitFor();
    expect(await rows.count()).toBe(2);
    await page.getByLabel("Scope").selectOption("");
    await page.getByRole("button", { name: "House Style" }).click();
    await page.getByText("System skills are read-only here.").waitFor();
    expect(await page.getByRole("button", { name: "Save skill" }).count()).toBe(0);
    // The server enforces it too: a user cannot change a system skill over the API.
    const [system] = await kilo.skills.list({ kind: "system" });
    const forbidden = await page.evaluate(async (id) => {
      const response = await fetch(`../api/skills/${id}`, {
        method: "PATCH",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ description: "Mine now" }),
      });
      return response.status;
    }, system!.id);
    expect(forbidden).toBe(403);
    expect(errors.filter((error) => !error.includes("403"))).toEqual([]);
    await page.context().close();
  }, 300_000);

  it("reviews and requests promotions through the real routes", async () => {
    // A pending request from Ann's own scope to her team, which she administers.
    const { skill: specials } = await kilo.skills.importMarkdown(
      { kind: "user", id: USER },
      "---\nname: weekly-specials\ndescription: Plans the week's specials.\n---\n# Steps\n\n1. Pick three cakes.\n",
    );
    const seeded = await kilo.skills.promotions.request({ kind: "user", id: USER }, specials.id, {
      to: { kind: "team", id: "bakers" },
      reason: "The team plans specials too",
      requestedBy: USER,
    });
    const { page, errors } = await signedIn();
    await page.goto(`${origin}/kilo/studio/#/skills`);
    const review = page.getByRole("region", { name: "Promotion requests" });
    await review.getByRole("heading", { name: /weekly-specials/ }).waitFor();
    await review.getByText("Diff").click();
    await review.locator(".diff .add", { hasText: "name: weekly-specials" }).waitFor();
    // Rejecting needs a reason; approving does not.
    await review.getByRole("button", { name: "Reject promotion" }).click();
    await review.getByText("Say why you reject it: the requester reads it.").waitFor();
    await expect(review.getByLabel("Note").getAttribute("aria-invalid")).resolves.toBe("true");
    expect((await kilo.skills.promotions.get(seeded.id)).status).toBe("pending");
    await review.getByLabel("Note").fill("Welcome, team");
    await review.getByRole("button", { name: "Approve promotion" }).click();
    await review.getByText("No promotion requests are waiting.").waitFor();
    expect(await kilo.skills.promotions.get(seeded.id)).toMatchObject({
      status: "approved",
      reviewer: USER,
      reviewNote: "Welcome, team",
    });
    const teamSkills = await kilo.skills.list({ kind: "team", id: "bakers" });
    expect(teamSkills.map((skill) => skill.name)).toContain("weekly-specials");

    // Ann asks to share her bot's Order Tracker with the team.
    await page.getByRole("button", { name: "Order Tracker" }).first().click();
    await page.getByRole("tab", { name: "Promotion" }).click();
    await page.getByLabel("Promote to").selectOption("team");
    await page.getByLabel("Team id").fill("bakers");
    await page.getByLabel("Why").fill("The whole team takes orders");
    await page.getByRole("button", { name: "Request promotion" }).click();
    await page.getByText("Promotion requested (pending): a reviewer of team bakers decides.").waitFor();
    const pending = await kilo.skills.promotions.list({ status: "pending" });
    expect(pending.items).toHaveLength(1);
    expect(pending.items[0]).toMatchObject({
      skillName: "Order Tracker",
      from: { kind: "bot", id: botId },
      to: { kind: "team", id: "bakers" },
      reason: "The whole team takes orders",
      requestedBy: USER,
    });
    await screenshot(page, "promotions");
    expect(errors).toEqual([]);
    await page.context().close();
  }, 300_000);
});
