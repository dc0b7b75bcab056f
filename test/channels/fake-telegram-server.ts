import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** A Bot API call as the fake server received it. */
export interface BotApiCall {
  method: string;
  body: Record<string, unknown>;
}

/** An API error the fake server answers a call with, in Telegram's wire format. */
export interface BotApiFailure {
  error_code: number;
  description: string;
  parameters?: { retry_after?: number };
}

interface Update {
  update_id: number;
  message: Record<string, unknown>;
}

/**
 * A local stand-in for api.telegram.org, speaking the Bot API's wire format
 * (`POST /bot<token>/<method>`, `{ ok, result }` or `{ ok: false, error_code,
 * description, parameters }`): getMe, getUpdates with offset confirmation and
 * long polling, sendMessage (refusing texts over 4096 characters, as Telegram
 * does), sendChatAction, setWebhook, deleteWebhook.
 */
export interface FakeTelegram {
  apiRoot: string;
  token: string;
  /** Every call, in order of arrival. */
  calls: BotApiCall[];
  /** Texts sent with sendMessage, with their chat. */
  sent: Array<{ chatId: number; text: string }>;
  /** Queues a text message update for getUpdates; returns it. */
  push(message: { chatId: number; text: string; fromId?: number; chatType?: string }): Update;
  /** Queues an update again, as Telegram does when it was not confirmed. */
  redeliver(update: Update): void;
  /** Answers the next call of `method` with this error instead. */
  failNext(method: string, failure: BotApiFailure): void;
  /** Resolves once at least `count` messages were sent. */
  waitForSent(count: number): Promise<void>;
  /** Resolves once a call of `method` matching `predicate` arrived. */
  waitForCall(method: string, predicate?: (body: Record<string, unknown>) => boolean): Promise<BotApiCall>;
  /** The highest update id confirmed so far (by a getUpdates asking from a higher offset). */
  confirmedUpTo(): number;
  close(): Promise<void>;
}

export const BOT_USER = { id: 777, is_bot: true, first_name: "Crumb", username: "crumb_bot" };

export async function startFakeTelegram(token = "123:fake-token"): Promise<FakeTelegram> {
  const calls: BotApiCall[] = [];
  const sent: Array<{ chatId: number; text: string }> = [];
  let queue: Update[] = [];
  let nextUpdateId = 1;
  let nextMessageId = 1;
  let confirmed = 0;
  const failures = new Map<string, BotApiFailure[]>();
  const pollers = new Set<() => void>();
  const watchers = new Set<() => void>();

  const changed = () => {
    for (const wake of [...watchers]) wake();
  };
  const wakePollers = () => {
    for (const wake of [...pollers]) wake();
  };

  function reply(response: ServerResponse, status: number, body: unknown) {
    if (response.writableEnded || response.destroyed) return;
    response.writeHead(status, { "content-type": "application/json" });
    response.end(JSON.stringify(body));
  }

  async function readBody(request: IncomingMessage): Promise<Record<string, unknown>> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    return text.trim() === "" ? {} : (JSON.parse(text) as Record<string, unknown>);
  }

  function pending(offset: number, limit: number): Update[] {
    return queue.filter((update) => update.update_id >= offset).slice(0, limit);
  }

  async function getUpdates(body: Record<string, unknown>, request: IncomingMessage): Promise<Update[]> {
    const offset = typeof body.offset === "number" ? body.offset : 0;
    const limit = typeof body.limit === "number" ? body.limit : 100;
    const timeout = typeof body.timeout === "number" ? body.timeout : 0;
    // Asking from an offset confirms every update below it: Telegram forgets them.
    if (offset > 0) {
      confirmed = Math.max(confirmed, offset - 1);
      queue = queue.filter((update) => update.update_id >= offset);
    }
    let found = pending(offset, limit);
    if (found.length > 0 || timeout === 0) return found;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        pollers.delete(done);
        request.off("close", done);
        resolve();
      };
      const timer = setTimeout(done, timeout * 1000);
      pollers.add(done);
      request.on("close", done);
    });
    found = pending(offset, limit);
    return found;
  }

  async function handle(request: IncomingMessage, response: ServerResponse) {
    const match = /^\/bot([^/]+)\/(\w+)$/.exec(request.url ?? "");
    if (!match) return reply(response, 404, { ok: false, error_code: 404, description: "Not Found" });
    const [, givenToken, method = ""] = match;
    const body = await readBody(request);
    calls.push({ method, body });
    changed();
    if (givenToken !== token) {
      return reply(response, 401, { ok: false, error_code: 401, description: "Unauthorized" });
    }
    const failure = failures.get(method)?.shift();
    if (failure) return reply(response, failure.error_code, { ok: false, ...failure });
    switch (method) {
      case "getMe":
        return reply(response, 200, { ok: true, result: BOT_USER });
      case "getUpdates":
        return reply(response, 200, { ok: true, result: await getUpdates(body, request) });
      case "sendMessage": {
        const text = String(body.text ?? "");
        if (text.trim() === "") {
          return reply(response, 400, {
            ok: false,
            error_code: 400,
            description: "Bad Request: message text is empty",
          });
        }
        if (text.length > 4096) {
          return reply(response, 400, {
            ok: false,
            error_code: 400,
            description: "Bad Request: message is too long",
          });
        }
        const chatId = Number(body.chat_id);
        sent.push({ chatId, text });
        changed();
        return reply(response, 200, {
          ok: true,
          result: {
            message_id: nextMessageId++,
            date: Math.floor(Date.now() / 1000),
            chat: { id: chatId, type: "private" },
            from: BOT_USER,
            text,
          },
        });
      }
      case "sendChatAction":
      case "setWebhook":
      case "deleteWebhook":
        return reply(response, 200, { ok: true, result: true });
      default:
        return reply(response, 404, {
          ok: false,
          error_code: 404,
          description: "Not Found: method not found",
        });
    }
  }

  const server: Server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) =>
      reply(response, 500, { ok: false, error_code: 500, description: String(error) }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  function until(check: () => boolean): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve) => {
      const watch = () => {
        if (!check()) return;
        watchers.delete(watch);
        resolve();
      };
      watchers.add(watch);
    });
  }

  return {
    apiRoot: `http://127.0.0.1:${port}`,
    token,
    calls,
    sent,
    push({ chatId, text, fromId = chatId, chatType = "private" }) {
      const update: Update = {
        update_id: nextUpdateId++,
        message: {
          message_id: nextMessageId++,
          date: Math.floor(Date.now() / 1000),
          chat: { id: chatId, type: chatType },
          from: { id: fromId, is_bot: false, first_name: `User ${fromId}` },
          text,
        },
      };
      queue.push(update);
      wakePollers();
      return update;
    },
    redeliver(update) {
      queue.push(update);
      queue.sort((a, b) => a.update_id - b.update_id);
      wakePollers();
    },
    failNext(method, failure) {
      const list = failures.get(method) ?? [];
      list.push(failure);
      failures.set(method, list);
    },
    waitForSent: (count) => until(() => sent.length >= count),
    async waitForCall(method, predicate = () => true) {
      const find = () => calls.find((call) => call.method === method && predicate(call.body));
      await until(() => find() !== undefined);
      return find() as BotApiCall;
    },
    confirmedUpTo: () => confirmed,
    async close() {
      wakePollers();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
