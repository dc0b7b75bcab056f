import { timingSafeEqual } from "node:crypto";
import { IdSchema } from "../../../src/domain/common.js";
import { type Run, TERMINAL_RUN_STATUSES } from "../../../src/domain/run.js";
import { KiloError, toKiloError } from "../../../src/errors.js";
import { errorResponse, json, readJson } from "../../../src/http/http-response.js";
import type { Kilo } from "../../../src/kilo.js";
import type { Logger } from "../../../src/ports/logger.js";
import { silentLogger } from "../../../src/runtime/logger.js";
import {
  loadGrammyApi,
  retryAfterSeconds,
  splitMessage,
  type TelegramApi,
  type TelegramChat,
  type TelegramUpdate,
  type TelegramUser,
  telegramError,
} from "./telegram-api.js";

/** Options of {@link telegramChannel}. */
export interface TelegramChannelOptions {
  /** The kilo instance whose runs handle the messages. */
  kilo: Kilo;
  /** The kilo bot that answers. Its owner must be the user `userKey` maps senders to. */
  botId: string;
  /**
   * The bot token from BotFather. Default: the `TELEGRAM_BOT_TOKEN`
   * environment variable, read on first use. Not needed with `api`.
   */
  token?: string;
  /** The Bot API server, e.g. a local `telegram-bot-api` or a test double. Default Telegram's. */
  apiRoot?: string;
  /**
   * Your own Bot API client, such as a grammY bot's `bot.api` with its
   * transformers installed. Default: a grammY `Api` made from `token` and `apiRoot`.
   */
  api?: TelegramApi;
  /**
   * The secret Telegram sends with every webhook call (1–256 of `A-Z a-z 0-9 _ -`).
   * Default: the `TELEGRAM_WEBHOOK_SECRET` environment variable. Needed only
   * by {@link TelegramChannel.webhookHandler} and {@link TelegramChannel.setWebhook}.
   */
  webhookSecret?: string;
  /**
   * The kilo user a Telegram sender is: the event's `user_key`. Default
   * `tg_<user id>`. A personal assistant usually maps its owner's Telegram id
   * to the owner's kilo user id. A throw is reported as `HOST_CALLBACK_FAILED`
   * and the message is dropped.
   */
  userKey?: (user: TelegramUser, chat: TelegramChat) => string | Promise<string>;
  /** Telegram user ids whose messages are answered; others are ignored. Default: everyone. */
  allowedUserIds?: readonly number[];
  /** Chat types answered. Default `["private"]`: personal chats only. */
  chatTypes?: ReadonlyArray<TelegramChat["type"]>;
  /** Sent when a run fails; `null` sends nothing. Default: a short apology. */
  failureReply?: string | null;
  /** Long-polling timeout of each `getUpdates`, in seconds. Default 30. */
  pollingTimeoutSeconds?: number;
  /** How often the typing indicator is renewed while a run works, in ms. Default 4000 (Telegram shows it for 5 s). */
  typingIntervalMs?: number;
  /** Longest `retry_after` (seconds) waited out when Telegram rate-limits a reply; a longer one fails the reply. Default 60. */
  maxRetryAfterSeconds?: number;
  /** Where the channel logs. Default: silent. Failures also go to kilo's `error` event. */
  logger?: Logger;
}

/**
 * What became of one update: `ingested` (a run was queued and will be
 * answered), `duplicate` (its `update_id` was ingested before: no second run),
 * `ignored` (not a text message from an allowed user in an allowed chat),
 * `failed` (reported; the update is acknowledged anyway), or `retry` (kilo
 * could not store it; it is not acknowledged, so Telegram delivers it again).
 */
export type TelegramUpdateOutcome = "ingested" | "duplicate" | "ignored" | "failed" | "retry";

/** A Web-standard request handler: what {@link TelegramChannel.webhookHandler} returns. */
export type TelegramWebhookHandler = (request: Request) => Promise<Response>;

/** A Telegram channel; see {@link telegramChannel}. */
export interface TelegramChannel {
  /**
   * Starts long polling: checks the token (`getMe`), removes any webhook, then
   * polls `getUpdates` in the background until {@link TelegramChannel.stop}.
   * Resolves once polling runs; rejects with `CONFIGURATION_INVALID` (no token,
   * no grammY) or `CHANNEL_REJECTED` / `CHANNEL_FAILED`. Polling assumes one
   * running instance per bot token.
   */
  start(): Promise<void>;
  /**
   * Stops polling after the update being handled, and acknowledges the
   * handled ones to Telegram. Replies under way go on; await
   * {@link TelegramChannel.idle} before closing kilo to let them finish.
   */
  stop(): Promise<void>;
  /**
   * The webhook endpoint, `(Request) => Promise<Response>`: mount it at the
   * URL given to {@link TelegramChannel.setWebhook}. It answers 401 unless the
   * `X-Telegram-Bot-Api-Secret-Token` header holds the secret, stores the
   * update's run before answering 200, and answers 503 when kilo could not
   * store it (Telegram retries). Throws `CONFIGURATION_INVALID` when no
   * secret is configured.
   */
  webhookHandler(): TelegramWebhookHandler;
  /** Points the bot's webhook at `url`, with the secret and `allowed_updates: ["message"]`. */
  setWebhook(url: string): Promise<void>;
  /** Handles one update as polling and the webhook do: for hosts with an ingress of their own. */
  handleUpdate(update: TelegramUpdate): Promise<TelegramUpdateOutcome>;
  /** Resolves when every reply under way has been sent (or has failed and been reported). */
  idle(): Promise<void>;
}

const DEFAULT_FAILURE_REPLY = "Sorry, something went wrong and I could not answer. Please try again.";
const SECRET_PATTERN = /^[A-Za-z0-9_-]{1,256}$/;
/** How many times one call is retried after a 429. */
const RATE_LIMIT_RETRIES = 3;
/** Pause before polling again after a failed `getUpdates` or an update kilo could not store. */
const POLL_RETRY_MS = 3_000;
/** Telegram updates are small; a larger webhook body is refused. */
const MAX_WEBHOOK_BODY_BYTES = 1024 * 1024;

const isSettled = (run: Run) =>
  TERMINAL_RUN_STATUSES.includes(run.status) || run.status === "awaiting_approval";

function configurationError(message: string): KiloError {
  return new KiloError("CONFIGURATION_INVALID", message, { adapter: "telegram" });
}

function positive(name: string, value: number | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < min) {
    throw configurationError(`telegramChannel \`${name}\` must be a number of at least ${min}`);
  }
  return value;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

function secretMatches(given: string | null, expected: Buffer): boolean {
  if (given === null) return false;
  const actual = Buffer.from(given);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

function isUpdate(value: unknown): value is TelegramUpdate {
  return (
    typeof value === "object" &&
    value !== null &&
    Number.isSafeInteger((value as { update_id?: unknown }).update_id)
  );
}

/**
 * A Telegram channel for a kilo bot, on grammY's Bot API client (an optional
 * peer dependency, loaded on first use unless you pass `api`).
 *
 * Each text message becomes an InboundEvent v1 — `type: "telegram.message"`,
 * `conversation_key: "tg:<chat id>"`, `user_key` from `userKey`,
 * `delivery_id: update_id`, the update as `raw` — ingested through
 * `kilo.runs` before the update is acknowledged, so a crash re-delivers rather
 * than loses it, and a re-delivered update starts no second run. The channel
 * then waits for the run, showing "typing…" meanwhile, and replies in the
 * chat, split at Telegram's 4096-character limit. Messages of one chat run
 * and are answered in order; chats run concurrently.
 *
 * Failures (Telegram's, kilo's, your `userKey`'s) never reject in the
 * background: they are wrapped as `KiloError`s and sent to kilo's `error`
 * event (`kilo.onError`), with `context.channel === "telegram"`.
 *
 * @example
 * ```ts
 * import { createKilo } from "kilo";
 * import { telegramChannel } from "kilo/channels/telegram";
 *
 * const telegram = telegramChannel({
 *   kilo,
 *   botId: bot.id,
 *   userKey: () => bot.userId, // a personal assistant: every allowed sender is its owner
 *   allowedUserIds: [123456789],
 * }); // reads TELEGRAM_BOT_TOKEN
 * await telegram.start(); // long polling; or mount telegram.webhookHandler()
 * process.on("SIGTERM", async () => {
 *   await telegram.stop();
 *   await telegram.idle();
 *   await kilo.close();
 * });
 * ```
 */
export function telegramChannel(options: TelegramChannelOptions): TelegramChannel {
  if (!options || typeof options.kilo?.runs?.ingest !== "function") {
    throw configurationError("telegramChannel needs `kilo`, a kilo instance");
  }
  const parsedBotId = IdSchema.safeParse(options.botId);
  if (!parsedBotId.success)
    throw configurationError("telegramChannel needs `botId`, the kilo bot that answers");
  const botId = parsedBotId.data;
  const { kilo } = options;
  const pollingTimeoutSeconds = positive("pollingTimeoutSeconds", options.pollingTimeoutSeconds, 30, 0);
  const typingIntervalMs = positive("typingIntervalMs", options.typingIntervalMs, 4_000);
  const maxRetryAfterSeconds = positive("maxRetryAfterSeconds", options.maxRetryAfterSeconds, 60, 0);
  const chatTypes = new Set(options.chatTypes ?? ["private"]);
  const allowed = options.allowedUserIds ? new Set(options.allowedUserIds) : null;
  const failureReply = options.failureReply === undefined ? DEFAULT_FAILURE_REPLY : options.failureReply;
  const userKey = options.userKey ?? ((user: TelegramUser) => `tg_${user.id}`);
  const logger = (options.logger ?? silentLogger()).child({ component: "telegram", bot_id: botId });

  function report(error: KiloError, context: Record<string, unknown>): void {
    logger.error({ ...context, code: error.code, error }, "telegram channel failed");
    try {
      kilo.events.emit("error", { error, context: { channel: "telegram", botId, ...context } });
    } catch (listenerError) {
      logger.error({ error: listenerError }, "an 'error' listener threw");
    }
  }

  // --- the Bot API client ---

  let owned: { token: string; api: TelegramApi } | undefined;

  async function client(): Promise<TelegramApi> {
    if (options.api) return options.api;
    const token = options.token ?? process.env.TELEGRAM_BOT_TOKEN;
    if (!token) {
      throw configurationError(
        "telegramChannel has no bot token: pass the `token` option or set the TELEGRAM_BOT_TOKEN environment variable",
      );
    }
    if (owned?.token !== token) {
      const Api = await loadGrammyApi();
      owned = { token, api: new Api(token, options.apiRoot ? { apiRoot: options.apiRoot } : undefined) };
    }
    return owned.api;
  }

  /** Calls the Bot API, waiting out rate limits Telegram names (`retry_after`); failures become KiloErrors. */
  async function call<T>(
    action: string,
    run: (api: TelegramApi) => Promise<T>,
    retries = RATE_LIMIT_RETRIES,
  ) {
    const api = await client();
    for (let attempt = 0; ; attempt++) {
      try {
        return await run(api);
      } catch (error) {
        const wait = retryAfterSeconds(error);
        if (wait === undefined || wait > maxRetryAfterSeconds || attempt >= retries) {
          throw telegramError(error, action, owned?.token);
        }
        logger.warn({ action, retry_after: wait }, "rate-limited by Telegram; retrying");
        await pause(wait * 1000);
      }
    }
  }

  function webhookSecret(): string {
    const secret = options.webhookSecret ?? process.env.TELEGRAM_WEBHOOK_SECRET;
    if (!secret) {
      throw configurationError(
        "telegramChannel has no webhook secret: pass the `webhookSecret` option or set the TELEGRAM_WEBHOOK_SECRET environment variable",
      );
    }
    if (!SECRET_PATTERN.test(secret)) {
      throw configurationError(
        "The Telegram webhook secret must be 1-256 characters of A-Z, a-z, 0-9, _ and -",
      );
    }
    return secret;
  }

  // --- replies: one queue per chat, so a chat's replies go out in order ---

  const chains = new Map<number, Promise<void>>();
  const waiting = new Set<string>();
  const typing = new Map<number, { pending: number; timer: ReturnType<typeof setInterval> }>();

  function typingStarted(chatId: number): void {
    const entry = typing.get(chatId);
    if (entry) {
      entry.pending += 1;
      return;
    }
    const send = () => {
      call("send the typing action", (api) => api.sendChatAction(chatId, "typing"), 0).catch((error) =>
        report(toKiloError(error, "INTERNAL", "Typing action failed"), { chatId, action: "sendChatAction" }),
      );
    };
    send();
    const timer = setInterval(send, typingIntervalMs);
    timer.unref?.();
    typing.set(chatId, { pending: 1, timer });
  }

  function typingStopped(chatId: number): void {
    const entry = typing.get(chatId);
    if (!entry) return;
    entry.pending -= 1;
    if (entry.pending > 0) return;
    clearInterval(entry.timer);
    typing.delete(chatId);
  }

  function replyText(run: Run): string | null {
    if (run.status === "failed") return failureReply;
    const reply = run.output?.reply;
    return typeof reply === "string" && reply.trim() !== "" ? reply : null;
  }

  async function answer(chatId: number, runId: string): Promise<void> {
    try {
      const run = await kilo.runs.wait(runId);
      const text = replyText(run);
      if (text === null) return;
      for (const part of splitMessage(text)) {
        await call("send a reply", (api) => api.sendMessage(chatId, part));
      }
    } finally {
      typingStopped(chatId);
    }
  }

  function scheduleReply(chatId: number, runId: string, updateId: number): void {
    waiting.add(runId);
    typingStarted(chatId);
    const tail = (chains.get(chatId) ?? Promise.resolve())
      .then(() => answer(chatId, runId))
      .catch((error: unknown) =>
        report(toKiloError(error, "INTERNAL", "Cannot answer a Telegram message"), {
          chatId,
          runId,
          updateId,
        }),
      )
      .finally(() => {
        waiting.delete(runId);
        if (chains.get(chatId) === tail) chains.delete(chatId);
      });
    chains.set(chatId, tail);
  }

  // --- updates ---

  async function handleUpdate(update: TelegramUpdate): Promise<TelegramUpdateOutcome> {
    const message = update.message;
    const from = message?.from;
    if (!message || !from || from.is_bot || typeof message.text !== "string" || message.text.trim() === "") {
      return "ignored";
    }
    if (!chatTypes.has(message.chat.type)) return "ignored";
    if (allowed && !allowed.has(from.id)) {
      logger.info({ telegram_user_id: from.id }, "ignored a message from a user not on the allowlist");
      return "ignored";
    }
    const chatId = message.chat.id;
    const context = { chatId, updateId: update.update_id };
    let user: string;
    try {
      user = await userKey(from, message.chat);
    } catch (error) {
      report(toKiloError(error, "HOST_CALLBACK_FAILED", "telegramChannel `userKey` threw"), context);
      return "failed";
    }
    let ingested: { run_id: string; duplicate: boolean };
    try {
      ingested = await kilo.runs.ingest(
        {
          schema_version: 1,
          type: "telegram.message",
          conversation_key: `tg:${chatId}`,
          user_key: user,
          text: message.text,
          raw: update,
          delivery_id: update.update_id,
        },
        { botId },
      );
    } catch (error) {
      const wrapped = toKiloError(error, "INTERNAL", "Cannot ingest a Telegram update");
      report(wrapped, context);
      return wrapped.code === "STORAGE_FAILED" || wrapped.retryable ? "retry" : "failed";
    }
    if (ingested.duplicate) {
      // Answer a re-delivered update only when its run is still unfinished and nobody here waits for it
      // (a restart after ingest): a finished one may have been answered already.
      if (waiting.has(ingested.run_id)) return "duplicate";
      const run = await kilo.runs.get(ingested.run_id).catch(() => null);
      if (!run || isSettled(run)) return "duplicate";
    }
    scheduleReply(chatId, ingested.run_id, update.update_id);
    return ingested.duplicate ? "duplicate" : "ingested";
  }

  // --- long polling ---

  let polling: { controller: AbortController; done: Promise<void> } | null = null;
  /** The next update id to ask for; every update below it was handled (and is acknowledged by asking). */
  let offset = 0;

  async function poll(api: TelegramApi, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      let updates: TelegramUpdate[];
      try {
        updates = await api.getUpdates(
          { offset, timeout: pollingTimeoutSeconds, allowed_updates: ["message"] },
          signal,
        );
      } catch (error) {
        if (signal.aborted) break;
        const wrapped = telegramError(error, "get updates", owned?.token);
        const code = (wrapped.details as { errorCode?: number } | undefined)?.errorCode;
        // A wrong token, or another consumer (a webhook, a second poller): polling cannot go on.
        const fatal = code === 401 || code === 404 || code === 409;
        report(wrapped, { action: "getUpdates", stopped: fatal });
        if (fatal) break;
        await pause((retryAfterSeconds(error) ?? POLL_RETRY_MS / 1000) * 1000, signal);
        continue;
      }
      for (const update of updates) {
        if (signal.aborted) break;
        if (update.update_id < offset) continue;
        const outcome = await handleUpdate(update);
        if (outcome === "retry") {
          await pause(POLL_RETRY_MS, signal);
          break;
        }
        offset = update.update_id + 1;
      }
    }
  }

  return {
    async start() {
      if (polling) return;
      await call("check the bot token", (api) => api.getMe(), 0);
      await call("remove the webhook", (api) => api.deleteWebhook());
      const api = await client();
      const controller = new AbortController();
      const done = poll(api, controller.signal).catch((error: unknown) =>
        report(toKiloError(error, "INTERNAL", "Telegram long polling stopped"), { action: "getUpdates" }),
      );
      polling = { controller, done };
      logger.info({}, "long polling started");
    },

    async stop() {
      const current = polling;
      if (!current) return;
      polling = null;
      current.controller.abort();
      await current.done;
      try {
        // Acknowledge what was handled, so a restart does not fetch it again.
        await call("acknowledge updates", (api) => api.getUpdates({ offset, limit: 1, timeout: 0 }), 0);
      } catch (error) {
        report(toKiloError(error, "INTERNAL", "Cannot acknowledge updates"), { action: "getUpdates" });
      }
      logger.info({}, "long polling stopped");
    },

    webhookHandler() {
      const expected = Buffer.from(webhookSecret());
      return async (request: Request): Promise<Response> => {
        try {
          if (request.method !== "POST") {
            return json(
              405,
              { error: { code: "METHOD_NOT_ALLOWED", message: "Telegram webhooks are POSTed" } },
              { allow: "POST" },
            );
          }
          if (!secretMatches(request.headers.get("x-telegram-bot-api-secret-token"), expected)) {
            return json(401, {
              error: { code: "UNAUTHENTICATED", message: "Wrong or missing secret token" },
            });
          }
          const update = await readJson(request, MAX_WEBHOOK_BODY_BYTES);
          if (!isUpdate(update)) {
            throw new KiloError("VALIDATION_FAILED", "The body is not a Telegram update");
          }
          const outcome = await handleUpdate(update);
          if (outcome === "retry") {
            return json(503, { error: { code: "STORAGE_FAILED", message: "Try again later" } });
          }
          return json(200, { ok: true, outcome });
        } catch (error) {
          return errorResponse(error, logger, { action: "webhook" });
        }
      };
    },

    async setWebhook(url) {
      const secret = webhookSecret();
      await call("set the webhook", (api) =>
        api.setWebhook(url, { secret_token: secret, allowed_updates: ["message"] }),
      );
    },

    handleUpdate,

    async idle() {
      while (chains.size > 0) await Promise.all([...chains.values()]);
    },
  };
}
