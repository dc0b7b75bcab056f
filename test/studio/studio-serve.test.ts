import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RISKY_REFUND_ENDPOINT } from "../fixtures.js";
import {
  chunk,
  completion,
  type FakeOpenAIServer,
  startFakeOpenAIServer,
  usageChunk,
} from "../providers/fake-openai-server.js";
import {
  contrastProblems,
  focused,
  launchBrowser,
  overflowsSideways,
  plantProblems,
  type ServeProcess,
  screenshot,
  startServe,
  unlabelledControls,
  watchForErrors,
} from "./studio-harness.js";

// kilo studio in a real browser against a real `kilo serve` (the CLI from source in a child
// process, SQLite, the offline model): a chat turn, a skill edit and rollback, an evolution draft
// approved, runs and traces, usage, keyboard-only use, a phone-sized screen and the token mode.

const ORDERS = {
  name: "Order Tracker",
  description: "Records customer orders and answers questions about them.",
  instructions: "Store each new order. Answer from stored orders only.",
  triggers: ["new order", "order", "orders", "pickup"],
};

let serve: ServeProcess;
let browser: Browser;
let skillId = "";

beforeAll(async () => {
  [serve, browser] = await Promise.all([startServe(), launchBrowser()]);
  skillId = (await serve.api<{ id: string }>("POST", `/api/bots/${serve.botId}/skills`, ORDERS)).id;
  // Requests made again and again that no skill serves: what evolution drafts a skill from.
  for (const message of ["log my run of 5 km today", "log my run of 10 km", "please log my run of 3 km"]) {
    await serve.api("POST", "/api/chat", { botId: serve.botId, message });
  }
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await serve?.stop();
}, 300_000);

async function open(
  view = "chat",
  viewport = { width: 1280, height: 900 },
): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const errors = watchForErrors(page);
  await page.goto(`${serve.url}/studio#/${view}`);
  await page.getByRole("heading", { level: 2 }).first().waitFor();
  return { page, errors };
}

describe("kilo studio on kilo serve", () => {
  it("is announced by kilo serve and answers behind the loopback checks", async () => {
    await serve.stdout.expect(/studio: http:\/\/127\.0\.0\.1:\d+\/studio\//);
    const fromElsewhere = await fetch(`${serve.url}/studio/`, {
      headers: { origin: "https://evil.example" },
    });
    expect(fromElsewhere.status).toBe(403);
  });

  it("chats with a bot, streamed, showing the skill, how it matched, memories and cost", async () => {
    const { page, errors } = await open("chat");
    await page.getByRole("heading", { name: "Chat with Kilo" }).waitFor();
    await page.getByLabel("Message").fill("new order for Ann: two lemon tarts");
    await page.getByLabel("Message").press("Enter");
    const reply = page.locator(".message.assistant").last();
    await reply.locator(".turn-cost").waitFor();
    await expect(reply.locator(".text").textContent()).resolves.toContain(
      'You said: "new order for Ann: two lemon tarts"',
    );
    await expect(reply.locator(".turn-skill").textContent()).resolves.toMatch(
      /Skill: Order Tracker · fast path, \d+% sure/,
    );
    await expect(reply.locator(".turn-cost").textContent()).resolves.toMatch(
      /^Cost \$0\.00 · 1 model call · \d+ tokens in, \d+ out$/,
    );
    await reply.getByText("No memories written.").waitFor();
    await expect(page.locator(".conversation-id").textContent()).resolves.toMatch(/^Conversation conv_/);
    // The turn was stored and traced like any other.
    const traces = await serve.api<{
      items: Array<{ message: string; skillName: string | null; matchPass: string }>;
    }>("GET", `/api/bots/${serve.botId}/traces?limit=100`);
    expect(traces.items.at(-1)).toMatchObject({
      message: "new order for Ann: two lemon tarts",
      skillName: "Order Tracker",
      matchPass: "fast",
    });
    await screenshot(page, "chat");
    expect(errors).toEqual([]);
    await page.context().close();
  }, 300_000);

  it("edits a skill with validation messages, shows its history with diffs, and rolls it back", async () => {
    const { page, errors } = await open("skills");
    await page.getByRole("searchbox", { name: "Search" }).fill("pickup");
    await page.getByText("1 of 1 skill").waitFor();
    await page.getByLabel("Scope").selectOption("system");
    await page.getByText("No skill matches.").waitFor();
    await page.getByLabel("Scope").selectOption("bot");
    await page.getByRole("button", { name: "Order Tracker" }).click();
    await page.getByRole("heading", { level: 3, name: "Order Tracker" }).waitFor();

    // The server's validation message, tied to the field it names; nothing is saved.
    const triggers = page.getByLabel("Triggers");
    await triggers.fill(`new order\n${"x".repeat(201)}`);
    await page.getByRole("button", { name: "Save skill" }).click();
    const alert = page.getByRole("alert").filter({ hasText: "The skill was not saved" });
    await alert.waitFor();
    await expect(alert.textContent()).resolves.toMatch(/triggers\.1: /);
    await expect(triggers.getAttribute("aria-invalid")).resolves.toBe("true");
    await screenshot(page, "skills-validation");

    await triggers.fill(ORDERS.triggers.join("\n"));
    await page.getByLabel("Description").fill("Takes the bakery's orders and finds them again.");
    await page.getByRole("button", { name: "Save skill" }).click();
    // The studio also announces this status in a visually hidden live region outside #main (50 ms
    // later): the page's own status is the one in #main.
    await page.locator("#main").getByText("Saved “Order Tracker”.").waitFor();
    await expect(triggers.getAttribute("aria-invalid")).resolves.toBeNull();
    expect(
      (await serve.api<{ description: string }>("GET", `/api/bots/${serve.botId}/skills`)) as unknown,
    ).toMatchObject({
      items: [expect.objectContaining({ description: "Takes the bakery's orders and finds them again." })],
    });
    await screenshot(page, "skills");

    await page.getByRole("tab", { name: "History" }).click();
    const latest = page.locator(".version").first();
    await expect(latest.getByRole("heading").textContent()).resolves.toBe("Version 2 (current)");
    await expect(latest.locator(".diff .add").allTextContents()).resolves.toEqual(
      expect.arrayContaining([expect.stringContaining("Takes the bakery's orders and finds them again.")]),
    );
    await expect(latest.locator(".diff .del").allTextContents()).resolves.toEqual(
      expect.arrayContaining([expect.stringContaining(ORDERS.description)]),
    );
    await screenshot(page, "skill-history");
    await page.getByRole("button", { name: "Roll back to version 1" }).click();
    await page
      .locator("#main")
      .getByText("Rolled back to version 1: its content is now version 3.")
      .waitFor();
    const skills = await serve.api<{ items: Array<{ id: string; description: string }> }>(
      "GET",
      `/api/bots/${serve.botId}/skills`,
    );
    expect(skills.items.find((skill) => skill.id === skillId)?.description).toBe(ORDERS.description);
    const history = await serve.api<{ items: Array<{ version: number; reason: string }> }>(
      "GET",
      `/api/skills/${skillId}/history`,
    );
    expect(history.items[0]).toMatchObject({ version: 3, reason: "Rollback to version 1" });
    // The panel shows the restored content.
    await page.getByRole("tab", { name: "Edit" }).click();
    await expect(page.getByLabel("Description").inputValue()).resolves.toBe(ORDERS.description);
    expect(errors).toEqual([]);
    await page.context().close();
  }, 300_000);

  it("runs evolution with its progress, shows the draft's replay evidence, and approves it", async () => {
    const { page, errors } = await open("evolution");
    await page.getByText("No drafts are waiting for review.").waitFor();
    await page.getByRole("button", { name: "Run evolution" }).click();
    const log = page.getByRole("list", { name: "Evolution progress" });
    await log.locator('[data-stage="done"]').waitFor();
    await expect(log.locator("li").allTextContents()).resolves.toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^analysing Reading traces/),
        expect.stringMatching(/^created /),
      ]),
    );
    await page.getByText(/^Analysed \d+ traces: \d+ repeated patterns?, 1 skill drafted\.$/).waitFor();
    const card = page.locator("article.draft");
    await card.waitFor();
    const name =
      (await card.getByRole("heading", { level: 4 }).textContent())?.replace(/draft$/, "").trim() ?? "";
    expect(name).toMatch(/log|run|km/);
    await card
      .getByText(/^Of 3 requests, 0 matched a skill before; the draft would match [1-3]\.$/)
      .waitFor();
    // A header and the three replayed requests.
    expect(await card.getByRole("table").getByRole("row").count()).toBe(4);
    await screenshot(page, "evolution");

    await card.getByLabel("Reason (optional)").fill("Matches how I log runs");
    await card.getByRole("button", { name: `Approve ${name}` }).click();
    await page.getByText("No drafts are waiting for review.").waitFor();
    const skills = await serve.api<{ items: Array<{ name: string; status: string; id: string }> }>(
      "GET",
      `/api/bots/${serve.botId}/skills`,
    );
    const approved = skills.items.find((skill) => skill.name === name);
    expect(approved?.status).toBe("active");
    const history = await serve.api<{ items: Array<{ author: string; reason: string }> }>(
      "GET",
      `/api/skills/${approved?.id}/history`,
    );
    expect(history.items[0]).toMatchObject({ author: "local", reason: "Matches how I log runs" });
    expect(errors).toEqual([]);
    await page.context().close();
  }, 300_000);

  it("lists runs of every conversation, filters by one, opens a run step by step, and records feedback on a trace", async () => {
    const ingest = async (conversationKey: string, text: string) => {
      const { run_id } = await serve.api<{ run_id: string }>("POST", "/v1/events", {
        schema_version: 1,
        type: "message",
        conversation_key: conversationKey,
        user_key: "local",
        text,
        bot_id: serve.botId,
      });
      for (let attempt = 0; attempt < 200; attempt += 1) {
        const run = await serve.api<{ status: string }>("GET", `/v1/runs/${run_id}`);
        if (run.status === "succeeded") break;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      return run_id;
    };
    const otherId = await ingest("studio:2", "hello");
    const runId = await ingest("studio:1", "ping");
    const { page, errors } = await open("runs");
    // Unfiltered: every conversation's runs, newest first.
    const recent = page.getByRole("table", { name: "Recent runs" });
    await recent.getByRole("row").filter({ hasText: otherId }).waitFor();
    const ids = await recent.getByRole("row").allTextContents();
    const at = (id: string) => ids.findIndex((text) => text.includes(id));
    expect(at(runId)).toBeGreaterThan(0);
    expect(at(runId)).toBeLessThan(at(otherId));
    await expect(recent.getByRole("row").filter({ hasText: otherId }).textContent()).resolves.toContain(
      "studio:2",
    );
    await page.getByLabel("Conversation key").fill("studio:1");
    await page.getByRole("button", { name: "Show runs" }).click();
    await page.getByRole("table", { name: "Runs of conversation studio:1" }).waitFor();
    expect(await page.getByRole("row").filter({ hasText: otherId }).count()).toBe(0);
    const row = page.getByRole("row").filter({ hasText: runId });
    await row.getByText("succeeded").waitFor();
    await row.getByRole("button", { name: runId }).click();
    const detail = page.locator(".run-detail");
    await detail.getByText("The turn, step by step").waitFor();
    await expect(detail.locator(".run-steps li").first().textContent()).resolves.toMatch(
      /^turn turn succeeded/,
    );
    await expect(detail.locator(".trace-steps").textContent()).resolves.toContain("Message received: “ping”");

    // Traces of the bot, filterable by conversation, with thumbs up and down.
    const traceRow = page.getByRole("row").filter({ hasText: "new order for Ann" });
    await traceRow.getByRole("button", { name: "Good answer" }).click();
    await expect
      .poll(() =>
        page
          .getByRole("row")
          .filter({ hasText: "new order for Ann" })
          .getByRole("button", { name: "Good answer" })
          .getAttribute("aria-pressed"),
      )
      .toBe("true");
    const traces = await serve.api<{
      items: Array<{ message: string; feedback: { rating: string } | null }>;
    }>("GET", `/api/bots/${serve.botId}/traces?limit=100`);
    expect(
      traces.items.find((trace) => trace.message.startsWith("new order for Ann"))?.feedback?.rating,
    ).toBe("up");
    await screenshot(page, "runs");
    expect(errors).toEqual([]);
    await page.context().close();
  }, 300_000);

  it("charts usage by day, model and bot", async () => {
    const { page, errors } = await open("usage");
    await page.getByRole("img", { name: "Cost by day" }).waitFor();
    await page.getByLabel("Show").selectOption("calls");
    const byModel = page.getByRole("img", { name: "Model calls by model" });
    await byModel.waitFor();
    await expect(byModel.textContent()).resolves.toContain("offline-1");
    await expect(page.getByRole("img", { name: "Model calls by bot" }).textContent()).resolves.toContain(
      "Kilo",
    );
    await expect(
      page.getByRole("img", { name: "Model calls by day" }).locator("rect").count(),
    ).resolves.toBeGreaterThan(0);
    await screenshot(page, "usage");
    expect(errors).toEqual([]);
    await page.context().close();
  }, 300_000);

  it("labels every control and keeps text contrast at 4.5:1 or more, on every view", async () => {
    const { page, errors } = await open("chat");
    for (const view of ["chat", "skills", "evolution", "runs", "usage"]) {
      await page
        .getByRole("link", {
          name: {
            chat: "Chat",
            skills: "Skills",
            evolution: "Evolution",
            runs: "Runs & traces",
            usage: "Usage",
          }[view],
        })
        .click();
      await page.waitForLoadState("networkidle");
      if (view === "skills") await page.getByRole("button", { name: "Order Tracker" }).click();
      expect({ view, unlabelled: await unlabelledControls(page) }).toEqual({ view, unlabelled: [] });
      expect({ view, contrast: await contrastProblems(page) }).toEqual({ view, contrast: [] });
    }
    // The checks are not vacuous: faint text and an unlabelled field are caught.
    await plantProblems(page);
    expect(await contrastProblems(page)).toEqual([expect.stringContaining('"faint"')]);
    expect(await unlabelledControls(page)).toEqual([expect.stringContaining("<input")]);
    expect(errors).toEqual([]);
    await page.context().close();
  }, 300_000);

  it("can be used with the keyboard alone, with visible focus", async () => {
    const { page, errors } = await open("chat");
    await page.keyboard.press("Tab");
    expect(await focused(page)).toMatchObject({ tag: "a", text: "Skip to content" });
    await page.keyboard.press("Tab");
    expect(await focused(page)).toMatchObject({ tag: "select" });
    // Through the navigation to Skills, and Enter opens it with focus on its heading.
    let steps = 0;
    while ((await focused(page)).text !== "Skills" && steps < 10) {
      await page.keyboard.press("Tab");
      steps += 1;
    }
    const onLink = await focused(page);
    expect(onLink).toMatchObject({ tag: "a", text: "Skills" });
    expect(onLink.outline).toMatch(/^solid (3|2)px$/);
    await page.keyboard.press("Enter");
    // The link is named "Skills" too: wait for the heading itself to take focus.
    await expect
      .poll(async () => {
        const now = await focused(page);
        return `${now.tag}:${now.text}`;
      })
      .toBe("h2:Skills");
    await expect(page.getByRole("link", { name: "Skills" }).getAttribute("aria-current")).resolves.toBe(
      "page",
    );

    // Into the search box, then to the skill, opened with Enter.
    await page.keyboard.press("Tab");
    expect(await focused(page)).toMatchObject({ tag: "input" });
    await page.keyboard.type("order");
    while ((await focused(page)).text !== "Order Tracker" && steps < 30) {
      await page.keyboard.press("Tab");
      steps += 1;
    }
    await page.keyboard.press("Enter");
    expect(await focused(page)).toMatchObject({ tag: "h3", text: "Order Tracker" });
    // The tabs: one tab stop, arrows move between them.
    await page.keyboard.press("Tab");
    expect(await focused(page)).toMatchObject({ tag: "button", text: "Edit" });
    await page.keyboard.press("ArrowRight");
    expect(await focused(page)).toMatchObject({ tag: "button", text: "History" });
    await expect(page.getByRole("tab", { name: "History" }).getAttribute("aria-selected")).resolves.toBe(
      "true",
    );
    await page
      .getByRole("tabpanel")
      .getByRole("heading", { name: /^Version 3/ })
      .waitFor();
    await page.keyboard.press("Home");
    expect(await focused(page)).toMatchObject({ text: "Edit" });

    // Chat: type and send with Enter, never touching the mouse.
    await page.getByRole("link", { name: "Chat" }).focus();
    await page.keyboard.press("Enter");
    await page.keyboard.press("Tab");
    while ((await focused(page)).tag !== "textarea" && steps < 60) {
      await page.keyboard.press("Tab");
      steps += 1;
    }
    await page.keyboard.type("ping");
    await page.keyboard.press("Enter");
    await expect.poll(() => page.locator(".message.assistant .text").last().textContent()).toBe("pong");
    expect(errors).toEqual([]);
    await page.context().close();
  }, 300_000);

  it("fits a phone-sized screen (375x812)", async () => {
    const { page, errors } = await open("chat", { width: 375, height: 812 });
    await page.getByLabel("Message").fill("ping");
    await page.getByRole("button", { name: "Send" }).click();
    await expect.poll(() => page.locator(".message.assistant .text").last().textContent()).toBe("pong");
    await page.locator(".turn-cost").last().waitFor();
    expect(await overflowsSideways(page)).toBe(false);
    await screenshot(page, "phone-chat");
    for (const view of ["Skills", "Evolution", "Runs & traces", "Usage"]) {
      await page.getByRole("link", { name: view }).click();
      await page.waitForLoadState("networkidle");
      if (view === "Skills") await page.getByRole("button", { name: "Order Tracker" }).click();
      expect({ view, overflows: await overflowsSideways(page) }).toEqual({ view, overflows: false });
      await page.getByRole("link", { name: view }).waitFor();
    }
    await screenshot(page, "phone-usage");
    expect(errors).toEqual([]);
    await page.context().close();
  }, 300_000);
});

describe("kilo studio on kilo serve with KILO_API_TOKEN", () => {
  const token = "studio-token-0123456789abcdef";
  let secured: ServeProcess;
  beforeAll(async () => {
    secured = await startServe({ KILO_API_TOKEN: token });
  }, 300_000);
  afterAll(async () => {
    await secured?.stop();
  }, 300_000);

  it("asks the browser for the token, then works with it", async () => {
    const anonymous = await fetch(`${secured.url}/studio/`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("www-authenticate")).toBe('Basic realm="kilo", charset="UTF-8"');

    const refused = await browser.newContext({
      httpCredentials: { username: "me", password: "wrong-token-000000" },
    });
    const refusedPage = await refused.newPage();
    const response = await refusedPage.goto(`${secured.url}/studio/`);
    expect(response?.status()).toBe(401);
    await refused.close();

    const context = await browser.newContext({ httpCredentials: { username: "me", password: token } });
    const page = await context.newPage();
    const errors = watchForErrors(page);
    await page.goto(`${secured.url}/studio/`);
    await page.getByRole("heading", { name: "Chat with Kilo" }).waitFor();
    await page.getByText("Signed in as local").waitFor();
    await page.getByLabel("Message").fill("ping");
    await page.getByLabel("Message").press("Enter");
    await expect.poll(() => page.locator(".message.assistant .text").last().textContent()).toBe("pong");
    expect(errors).toEqual([]);
    await context.close();
  }, 300_000);
});

describe("kilo studio on kilo serve with an OpenAI-compatible model server", () => {
  // kilo serve's live provider pointed (OPENAI_BASE_URL) at a local server speaking OpenAI's wire
  // format, scripted to call a risky endpoint: the call waits for the user's approval in the studio.
  let fake: FakeOpenAIServer;
  let live: ServeProcess;
  const refund = { tool: "bakeshop", endpoint: "refund", params: { amount: 1200 } };

  beforeAll(async () => {
    fake = await startFakeOpenAIServer();
    fake.reply((request) => {
      const messages = request.body.messages ?? [];
      const toolResult = messages.some((message) => message.role === "tool");
      if (request.body.stream) {
        return {
          sse: toolResult
            ? [
                chunk({ role: "assistant", content: "The refund waits for your approval." }),
                chunk({}, { finishReason: "stop" }),
                usageChunk({ prompt: 300, completion: 8 }),
              ]
            : [
                chunk({
                  role: "assistant",
                  tool_calls: [
                    {
                      index: 0,
                      id: "call_refund",
                      type: "function",
                      function: { name: "call_api", arguments: JSON.stringify(refund) },
                    },
                  ],
                }),
                chunk({}, { finishReason: "tool_calls" }),
                usageChunk({ prompt: 280, completion: 20 }),
              ],
        };
      }
      // The turn after the decision has the tools; other helpers (the skill proposer) get nothing usable.
      return {
        json: completion({
          content: request.body.tools ? "I asked the bakeshop for the refund." : "{}",
          usage: { prompt: 200, completion: 9 },
        }),
      };
    });
    live = await startServe({
      KILO_PROVIDER: "openai",
      OPENAI_API_KEY: "sk-test-studio",
      OPENAI_BASE_URL: fake.baseURL,
    });
    await live.api("POST", `/api/bots/${live.botId}/tools`, {
      name: "bakeshop",
      description: "The bakery's order system",
      baseUrl: "https://api.bakeshop.example",
      auth: { type: "none" },
      endpoints: [RISKY_REFUND_ENDPOINT],
    });
  }, 300_000);

  afterAll(async () => {
    await live?.stop();
    await fake?.close();
  }, 300_000);

  it("shows a pending tool call with Approve, and approving it settles the approval and continues", async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const errors = watchForErrors(page);
    await page.goto(`${live.url}/studio#/chat`);
    await page.getByLabel("Message").fill("Please refund my order, $12");
    await page.getByRole("button", { name: "Send" }).click();
    const turn = page.locator(".message.assistant").first();
    await turn.getByText("The refund waits for your approval.").waitFor();
    const call = turn.locator(".tool-call");
    await expect(call.textContent()).resolves.toContain("waiting for approval");
    const pending = page.getByRole("region", { name: "Waiting for your approval" });
    await pending.getByRole("button", { name: "Approve bakeshop.refund" }).waitFor();
    const before = await live.api<{ items: Array<{ status: string }> }>(
      "GET",
      `/api/bots/${live.botId}/approvals`,
    );
    expect(before.items.map((approval) => approval.status)).toEqual(["pending"]);

    await call.getByRole("button", { name: "Approve" }).click();
    await page
      .locator(".message.assistant")
      .nth(1)
      .getByText("I asked the bakeshop for the refund.")
      .waitFor();
    await expect.poll(() => pending.isHidden()).toBe(true);
    const after = await live.api<{ items: Array<{ status: string; toolName: string }> }>(
      "GET",
      `/api/bots/${live.botId}/approvals`,
    );
    expect(after.items.map((approval) => [approval.toolName, approval.status])).toEqual([
      ["bakeshop", "approved"],
    ]);
    // The model saw the call's outcome in the turn after the decision.
    const followUp = fake.requests.find((request) => !request.body.stream && request.body.tools);
    expect(JSON.stringify(followUp?.body.messages)).toContain("bakeshop.refund");
    await screenshot(page, "approvals-serve");
    expect(errors).toEqual([]);
    await context.close();
  }, 300_000);
});
