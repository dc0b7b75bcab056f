import { Api } from "grammy";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  splitMessage,
  type TelegramChannelOptions,
  telegramChannel,
} from "../../adapters/channels/telegram/index.js";
import { memoryStorage } from "../../adapters/storage/memory/index.js";
import { createHttpHandler } from "../../src/http/index.js";
import { createKilo, type Kilo, KiloError } from "../../src/index.js";
import { type MockReply, mockProvider } from "../../src/testing/index.js";
import { userText } from "../runs/helpers.js";
import { type FakeTelegram, startFakeTelegram } from "./fake-telegram-server.js";

const OWNER = 42;

let cleanup: Array<() => Promise<void>> = [];
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

beforeEach(() => {
  unhandled.length = 0;
  process.on("unhandledRejection", onUnhandled);
});

afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
  process.off("unhandledRejection", onUnhandled);
  expect(unhandled).toEqual([]);
});

interface Setup {
  telegram: FakeTelegram;
  kilo: Kilo;
  botId: string;
  errors: KiloError[];
  channel: ReturnType<typeof telegramChannel>;
}

/**
 * A fake Bot API server, a kilo over memory storage whose mock provider
 * answers `echo: <message>` (or `respond`), a bot owned by `tg_42`, and a
 * channel on grammY's real client pointed at the fake server.
 */
async function setup(
  options: {
    respond?: (text: string) => MockReply | Promise<MockReply>;
    channel?: Partial<TelegramChannelOptions>;
    telegram?: FakeTelegram;
    kilo?: Kilo;
  } = {},
): Promise<Setup> {
  const telegram = options.telegram ?? (await startFakeTelegram());
  const respond = options.respond ?? ((text: string) => `echo: ${text}`);
  const kilo =
    options.kilo ??
    createKilo({
      storage: memoryStorage(),
      providers: [
        mockProvider({
          respond: (request) => (request.purpose === "chat" ? respond(userText(request)) : "ok"),
        }),
      ],
    });
  const errors: KiloError[] = [];
  const unsubscribe = kilo.onError(({ error }) => errors.push(error));
  const bots = await kilo.bots.listByUser(`tg_${OWNER}`).catch(() => ({ items: [] }));
  const botId = bots.items[0]?.id ?? (await kilo.bots.create({ userId: `tg_${OWNER}`, name: "Crumb" })).id;
  const channel = telegramChannel({
    kilo,
    botId,
    token: telegram.token,
    apiRoot: telegram.apiRoot,
    pollingTimeoutSeconds: 5,
    ...options.channel,
  });
  cleanup.push(async () => {
    await channel.stop();
    await channel.idle();
    unsubscribe();
    if (!options.kilo) await kilo.close();
    if (!options.telegram) await telegram.close();
  });
  return { telegram, kilo, botId, errors, channel };
}

async function runsOf(kilo: Kilo, botId: string, runIds: string[]) {
  return Promise.all(runIds.map((id) => kilo.runs.get(id).then((run) => ({ ...run, botId }))));
}

/** Run ids the channel queued, from kilo's run events. */
function collectRuns(kilo: Kilo): string[] {
  const ids: string[] = [];
  kilo.events.on("run-queued", (event) => ids.push(event.runId));
  return ids;
}

/** Telegram's answer to a flood: wait `seconds`. */
const tooManyRequests = (seconds: number) => ({
  error_code: 429,
  description: `Too Many Requests: retry after ${seconds}`,
  parameters: { retry_after: seconds },
});

describe("telegramChannel over long polling", () => {
  it("answers a message in its chat, through a run keyed by the chat", async () => {
    const { telegram, kilo, botId, channel, errors } = await setup();
    const runIds = collectRuns(kilo);
    await channel.start();
    const update = telegram.push({ chatId: OWNER, text: "hello there" });

    await telegram.waitForSent(1);
    expect(telegram.sent).toEqual([{ chatId: OWNER, text: "echo: hello there" }]);
    await telegram.waitForCall(
      "sendChatAction",
      (body) => body.chat_id === OWNER && body.action === "typing",
    );
    expect(telegram.calls.slice(0, 2).map((call) => call.method)).toEqual(["getMe", "deleteWebhook"]);

    const [run] = await runsOf(kilo, botId, runIds);
    expect(run).toMatchObject({
      status: "succeeded",
      conversationKey: `tg:${OWNER}`,
      eventType: "telegram.message",
      userId: `tg_${OWNER}`,
      deliveryId: String(update.update_id),
    });
    // The update was acknowledged: the next getUpdates asked from the offset after it.
    await telegram.waitForCall("getUpdates", (body) => body.offset === update.update_id + 1);
    expect(errors).toEqual([]);
  });

  it("starts no second run for a re-delivered update_id", async () => {
    const { telegram, kilo, channel } = await setup();
    const runIds = collectRuns(kilo);
    await channel.start();
    const update = telegram.push({ chatId: OWNER, text: "once" });
    await telegram.waitForSent(1);

    telegram.redeliver(update);
    const next = telegram.push({ chatId: OWNER, text: "twice" });
    await telegram.waitForSent(2);
    await telegram.waitForCall("getUpdates", (body) => body.offset === next.update_id + 1);
    expect(runIds).toHaveLength(2);
    expect(telegram.sent.map((message) => message.text)).toEqual(["echo: once", "echo: twice"]);
  });

  it("answers several quick messages of one chat in order", async () => {
    // The first turn is the slowest; order must still hold.
    const { telegram, channel } = await setup({
      respond: async (text) => {
        if (text === "one") await new Promise((resolve) => setTimeout(resolve, 100));
        return `echo: ${text}`;
      },
    });
    for (const text of ["one", "two", "three", "four"]) telegram.push({ chatId: OWNER, text });
    await channel.start();
    await telegram.waitForSent(4);
    expect(telegram.sent.map((message) => message.text)).toEqual([
      "echo: one",
      "echo: two",
      "echo: three",
      "echo: four",
    ]);
  });

  it("works on two chats at once", async () => {
    let inFlight = 0;
    let most = 0;
    let release: () => void = () => undefined;
    const bothIn = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { telegram, channel } = await setup({
      channel: { userKey: () => `tg_${OWNER}` },
      respond: async (text) => {
        inFlight += 1;
        most = Math.max(most, inFlight);
        if (inFlight === 2) release();
        // Each turn waits until the other chat's turn is under way too (or gives up after 5 s, and fails below).
        await Promise.race([bothIn, new Promise((resolve) => setTimeout(resolve, 5_000))]);
        inFlight -= 1;
        return `echo: ${text}`;
      },
    });
    telegram.push({ chatId: 1001, fromId: OWNER, text: "from the first chat" });
    telegram.push({ chatId: 2002, fromId: 7, text: "from the second chat" });
    await channel.start();
    await telegram.waitForSent(2);
    expect(most).toBe(2);
    expect(telegram.sent).toEqual(
      expect.arrayContaining([
        { chatId: 1001, text: "echo: from the first chat" },
        { chatId: 2002, text: "echo: from the second chat" },
      ]),
    );
  });

  it("splits a reply longer than 4096 characters into several messages", async () => {
    const long = Array.from({ length: 1500 }, (_, index) => `word${index}`).join(" ");
    expect(long.length).toBeGreaterThan(3 * 4096);
    const { telegram, channel } = await setup({ respond: () => long });
    await channel.start();
    telegram.push({ chatId: OWNER, text: "tell me everything" });
    await telegram.waitForSent(4);
    await channel.idle();
    const texts = telegram.sent.map((message) => message.text);
    expect(texts).toHaveLength(4);
    for (const text of texts) expect(text.length).toBeLessThanOrEqual(4096);
    expect(texts.join("")).toBe(long);
  });

  it("waits out a 429 with retry_after, and reports a reply Telegram refuses", async () => {
    const { telegram, channel, errors } = await setup();
    telegram.failNext("sendMessage", tooManyRequests(1));
    await channel.start();
    telegram.push({ chatId: OWNER, text: "busy?" });
    await telegram.waitForSent(1);
    expect(telegram.sent).toEqual([{ chatId: OWNER, text: "echo: busy?" }]);
    expect(telegram.calls.filter((call) => call.method === "sendMessage")).toHaveLength(2);
    expect(errors).toEqual([]);

    telegram.failNext("sendMessage", {
      error_code: 403,
      description: "Forbidden: bot was blocked by the user",
    });
    telegram.push({ chatId: OWNER, text: "still there?" });
    await telegram.waitForCall("sendMessage", (body) => body.text === "echo: still there?");
    await channel.idle();
    expect(errors).toHaveLength(1);
    expect(KiloError.is(errors[0], "CHANNEL_REJECTED")).toBe(true);
    expect(errors[0]?.message).toContain("403 Forbidden: bot was blocked by the user");
    expect(errors[0]?.message).not.toContain(telegram.token);

    // Polling goes on.
    telegram.push({ chatId: OWNER, text: "and now?" });
    await telegram.waitForSent(2);
    expect(telegram.sent[1]?.text).toBe("echo: and now?");
  });

  it("reports a rate limit longer than it will wait", async () => {
    const { telegram, channel, errors } = await setup({ channel: { maxRetryAfterSeconds: 5 } });
    telegram.failNext("sendMessage", tooManyRequests(600));
    await channel.start();
    telegram.push({ chatId: OWNER, text: "flood" });
    await telegram.waitForCall("sendMessage");
    await channel.idle();
    expect(errors.map((error) => [error.code, error.retryable, error.details])).toEqual([
      ["CHANNEL_REJECTED", true, { errorCode: 429, retryAfter: 600 }],
    ]);
  });

  it("tells the user when the run fails", async () => {
    const { telegram, channel } = await setup({
      respond: () => ({ error: { code: "PROVIDER_FAILED", message: "scripted outage" } }),
      channel: { failureReply: "Sorry, try again later." },
    });
    await channel.start();
    telegram.push({ chatId: OWNER, text: "hello?" });
    await telegram.waitForSent(1);
    expect(telegram.sent[0]?.text).toBe("Sorry, try again later.");
  });

  it("maps senders with userKey, keeps strangers out with the allowlist, and ignores group chats", async () => {
    const { telegram, kilo, channel } = await setup({
      channel: { userKey: (user) => (user.id === 5 ? `tg_${OWNER}` : `tg_${user.id}`), allowedUserIds: [5] },
    });
    const runIds = collectRuns(kilo);
    await channel.start();
    telegram.push({ chatId: 9, text: "let me in" }); // a stranger
    telegram.push({ chatId: -100, fromId: 5, chatType: "group", text: "in a group" });
    const last = telegram.push({ chatId: 5, text: "it's me" });
    await telegram.waitForSent(1);
    await telegram.waitForCall("getUpdates", (body) => body.offset === last.update_id + 1);
    expect(telegram.sent).toEqual([{ chatId: 5, text: "echo: it's me" }]);
    expect(runIds).toHaveLength(1);
    expect((await kilo.runs.get(runIds[0] ?? "")).userId).toBe(`tg_${OWNER}`);
  });

  it("reports a throwing userKey as HOST_CALLBACK_FAILED and goes on", async () => {
    const { telegram, channel, errors } = await setup({
      channel: {
        userKey: (user, chat) => {
          if (chat.id === 13) throw new Error("no such user in the directory");
          return `tg_${user.id}`;
        },
      },
    });
    await channel.start();
    telegram.push({ chatId: 13, text: "unlucky" });
    telegram.push({ chatId: OWNER, text: "lucky" });
    await telegram.waitForSent(1);
    expect(telegram.sent).toEqual([{ chatId: OWNER, text: "echo: lucky" }]);
    expect(errors.map((error) => error.code)).toEqual(["HOST_CALLBACK_FAILED"]);
    expect(errors[0]?.message).toContain("no such user in the directory");
  });

  it("after a restart in the middle of a batch, runs and answers each message exactly once", async () => {
    const telegram = await startFakeTelegram();
    cleanup.push(() => telegram.close());
    const kilo = createKilo({
      storage: memoryStorage(),
      providers: [
        mockProvider({
          respond: (request) => (request.purpose === "chat" ? `echo: ${userText(request)}` : "ok"),
        }),
      ],
    });
    cleanup.push(() => kilo.close());
    const runIds = collectRuns(kilo);
    // The first process hangs on the second update of the batch, as if it died there.
    let hung = false;
    let die: (error: Error) => void = () => undefined;
    const dead = new Promise<never>((_, reject) => {
      die = reject;
    });
    const first = await setup({
      telegram,
      kilo,
      channel: {
        userKey: async (user) => {
          if (hung) await dead;
          hung = true;
          return `tg_${user.id}`;
        },
      },
    });
    telegram.push({ chatId: OWNER, text: "first" });
    telegram.push({ chatId: OWNER, text: "second" });
    telegram.push({ chatId: OWNER, text: "third" });
    await first.channel.start();
    await telegram.waitForSent(1);
    expect(telegram.confirmedUpTo()).toBe(0);

    // A second process polls from scratch: Telegram delivers the unconfirmed batch again.
    const second = await setup({ telegram, kilo });
    await second.channel.start();
    await telegram.waitForSent(3);
    await second.channel.idle();
    expect(telegram.sent.map((message) => message.text)).toEqual([
      "echo: first",
      "echo: second",
      "echo: third",
    ]);
    expect(runIds).toHaveLength(3);
    await telegram.waitForCall("getUpdates", (body) => body.offset === 4);
    expect(telegram.confirmedUpTo()).toBe(3);
    // Let the first process's stuck handler end, so it can be stopped.
    die(new Error("process died"));
  });
});

describe("telegramChannel webhook", () => {
  const SECRET = "s3cret_token-1";
  const updateBody = (updateId: number, text: string) => ({
    update_id: updateId,
    message: {
      message_id: updateId,
      date: 1_700_000_000,
      chat: { id: OWNER, type: "private" },
      from: { id: OWNER, is_bot: false, first_name: "Owner" },
      text,
    },
  });
  const post = (body: unknown, secret: string | null = SECRET) =>
    new Request("https://bot.example/telegram/webhook", {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(secret === null ? {} : { "x-telegram-bot-api-secret-token": secret }),
      },
      body: JSON.stringify(body),
    });

  it("sets the webhook with its secret, and ingests a POSTed update before answering 200", async () => {
    const { telegram, kilo, channel } = await setup({ channel: { webhookSecret: SECRET } });
    const runIds = collectRuns(kilo);
    await channel.setWebhook("https://bot.example/telegram/webhook");
    expect((await telegram.waitForCall("setWebhook")).body).toEqual({
      url: "https://bot.example/telegram/webhook",
      secret_token: SECRET,
      allowed_updates: ["message"],
    });

    const handler = channel.webhookHandler();
    const response = await handler(post(updateBody(500, "via webhook")));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ok: true, outcome: "ingested" });
    expect(runIds).toHaveLength(1); // stored before the answer

    // Telegram retries the same update: no second run.
    const again = await handler(post(updateBody(500, "via webhook")));
    expect(await again.json()).toEqual({ ok: true, outcome: "duplicate" });
    await channel.idle();
    expect(telegram.sent).toEqual([{ chatId: OWNER, text: "echo: via webhook" }]);
    expect(runIds).toHaveLength(1);
  });

  it("answers 401 to a wrong or missing secret and ingests nothing", async () => {
    const { kilo, channel } = await setup({ channel: { webhookSecret: SECRET } });
    const runIds = collectRuns(kilo);
    const handler = channel.webhookHandler();
    for (const secret of ["wrong", `${SECRET}x`, null]) {
      const response = await handler(post(updateBody(600, "let me in"), secret));
      expect(response.status).toBe(401);
      expect(await response.json()).toEqual({
        error: { code: "UNAUTHENTICATED", message: "Wrong or missing secret token" },
      });
    }
    const get = await handler(new Request("https://bot.example/telegram/webhook"));
    expect(get.status).toBe(405);
    const malformed = await handler(post({ hello: "world" }));
    expect(malformed.status).toBe(400);
    expect(runIds).toEqual([]);
  });

  it("mounts in kilo's HTTP handler at /webhooks/telegram, without the host's authenticate", async () => {
    const { telegram, kilo, channel } = await setup({ channel: { webhookSecret: SECRET } });
    const runIds = collectRuns(kilo);
    let authenticated = 0;
    const http = createHttpHandler(kilo, {
      basePath: "/kilo",
      authenticate: async () => {
        authenticated += 1;
        return null;
      },
      maxBodyBytes: 2_000,
      webhooks: { telegram: channel.webhookHandler() },
    });
    const at = (request: Request, path: string) => new Request(`https://bot.example${path}`, request);
    const response = await http(at(post(updateBody(800, "through kilo/http")), "/kilo/webhooks/telegram"));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ok: true, outcome: "ingested" });
    await channel.idle();
    expect(telegram.sent).toEqual([{ chatId: OWNER, text: "echo: through kilo/http" }]);
    // The receiver checks its own secret; the host's authenticate is never asked.
    expect((await http(at(post(updateBody(801, "x"), "wrong"), "/kilo/webhooks/telegram"))).status).toBe(401);
    expect(authenticated).toBe(0);
    // Only POST, within the body limit, and only mounted names.
    const get = await http(new Request("https://bot.example/kilo/webhooks/telegram"));
    expect(get.status).toBe(405);
    expect(get.headers.get("allow")).toBe("POST");
    const big = await http(at(post(updateBody(802, "y".repeat(3_000))), "/kilo/webhooks/telegram"));
    expect(big.status).toBe(413);
    expect((await http(at(post(updateBody(803, "z")), "/kilo/webhooks/slack"))).status).toBe(404);
    expect(runIds).toHaveLength(1);
    expect(() =>
      createHttpHandler(kilo, {
        authenticate: async () => null,
        webhooks: { "Bad Name": channel.webhookHandler() },
      }),
    ).toThrow(/'Bad Name' is not a valid webhook name/);
  });

  it("needs a webhook secret, naming the option and the environment variable", async () => {
    const saved = process.env.TELEGRAM_WEBHOOK_SECRET;
    delete process.env.TELEGRAM_WEBHOOK_SECRET;
    try {
      const { channel } = await setup();
      expect(() => channel.webhookHandler()).toThrow(/`webhookSecret`.*TELEGRAM_WEBHOOK_SECRET/);
      process.env.TELEGRAM_WEBHOOK_SECRET = SECRET;
      const response = await channel.webhookHandler()(post(updateBody(700, "env secret")));
      expect(response.status).toBe(200);
    } finally {
      if (saved === undefined) delete process.env.TELEGRAM_WEBHOOK_SECRET;
      else process.env.TELEGRAM_WEBHOOK_SECRET = saved;
    }
  });
});

describe("telegramChannel configuration", () => {
  it("reads the token on first use: TELEGRAM_BOT_TOKEN, else fails naming both", async () => {
    const saved = process.env.TELEGRAM_BOT_TOKEN;
    delete process.env.TELEGRAM_BOT_TOKEN;
    try {
      const { telegram, channel } = await setup({ channel: { token: undefined } });
      const failure = await channel.start().catch((error: unknown) => error);
      expect(KiloError.is(failure, "CONFIGURATION_INVALID")).toBe(true);
      expect((failure as KiloError).message).toMatch(/`token`.*TELEGRAM_BOT_TOKEN/);

      process.env.TELEGRAM_BOT_TOKEN = telegram.token;
      await channel.start();
      telegram.push({ chatId: OWNER, text: "token from the environment" });
      await telegram.waitForSent(1);
    } finally {
      if (saved === undefined) delete process.env.TELEGRAM_BOT_TOKEN;
      else process.env.TELEGRAM_BOT_TOKEN = saved;
    }
  });

  it("rejects start() with CHANNEL_REJECTED for a token Telegram refuses", async () => {
    const { channel } = await setup({ channel: { token: "999:wrong" } });
    const failure = await channel.start().catch((error: unknown) => error);
    expect(KiloError.is(failure, "CHANNEL_REJECTED")).toBe(true);
    expect((failure as KiloError).message).not.toContain("999:wrong");
  });

  it("uses a host's own grammY Api client", async () => {
    const telegram = await startFakeTelegram();
    cleanup.push(() => telegram.close());
    const { channel } = await setup({
      telegram,
      channel: { token: undefined, api: new Api(telegram.token, { apiRoot: telegram.apiRoot }) },
    });
    await channel.start();
    telegram.push({ chatId: OWNER, text: "host client" });
    await telegram.waitForSent(1);
    expect(telegram.sent[0]?.text).toBe("echo: host client");
  });

  it("refuses a missing kilo or botId", () => {
    expect(() => telegramChannel({} as TelegramChannelOptions)).toThrow(/needs `kilo`/);
  });
});

describe("splitMessage", () => {
  it("keeps short texts whole and never splits a surrogate pair", () => {
    expect(splitMessage("hi")).toEqual(["hi"]);
    const emoji = "😀".repeat(3000); // 6000 UTF-16 code units, no spaces
    const parts = splitMessage(emoji);
    expect(parts.join("")).toBe(emoji);
    for (const part of parts) {
      expect(part.length).toBeLessThanOrEqual(4096);
      expect(part.charCodeAt(part.length - 1)).not.toBe(0xd83d);
    }
  });
});
