import { KiloError } from "../../../src/errors.js";

/** The sender of a Telegram message (the subset kilo reads). */
export interface TelegramUser {
  id: number;
  is_bot?: boolean;
  first_name?: string;
  username?: string;
}

/** The chat a Telegram message belongs to (the subset kilo reads). */
export interface TelegramChat {
  id: number;
  type: "private" | "group" | "supergroup" | "channel";
}

/** A Telegram message (the subset kilo reads). */
export interface TelegramMessage {
  message_id: number;
  date?: number;
  chat: TelegramChat;
  from?: TelegramUser;
  text?: string;
}

/** A Telegram update, as `getUpdates` and webhooks deliver it (the subset kilo reads). */
export interface TelegramUpdate {
  update_id: number;
  message?: TelegramMessage;
}

/**
 * The Telegram Bot API methods the channel calls, typed structurally: grammY's
 * `Api` (and so a host's `bot.api`, with its transformers) fits, and so does
 * any client with the same signatures. Methods reject on failure; an API
 * refusal carries `error_code`, `description` and `parameters.retry_after`,
 * as grammY's `GrammyError` does.
 */
export interface TelegramApi {
  /** The bot's own identity; `start()` calls it first, so a bad token fails before polling begins. */
  getMe(): Promise<{ id: number; username?: string }>;
  /** `signal` is an `AbortSignal`, typed loosely so that clients built on an AbortSignal shim fit too. */
  getUpdates(
    other?: { offset?: number; limit?: number; timeout?: number; allowed_updates?: readonly "message"[] },
    signal?: { readonly aborted: boolean },
  ): Promise<TelegramUpdate[]>;
  /** Sends one plain-text message, at most {@link TELEGRAM_MESSAGE_LIMIT} long (the channel splits longer replies). */
  sendMessage(chatId: number | string, text: string): Promise<unknown>;
  /** Shows "typing…" in the chat while a turn runs; a failure is reported, never fatal. */
  sendChatAction(chatId: number | string, action: "typing"): Promise<unknown>;
  /** Registers the webhook URL with the secret Telegram echoes in `X-Telegram-Bot-Api-Secret-Token`. */
  setWebhook(
    url: string,
    other?: { secret_token?: string; allowed_updates?: readonly "message"[]; drop_pending_updates?: boolean },
  ): Promise<unknown>;
  /** Removes any webhook, which Telegram requires before `getUpdates` (long polling) works. */
  deleteWebhook(other?: { drop_pending_updates?: boolean }): Promise<unknown>;
}

/** Telegram's limit on the length of one message's text, in UTF-16 code units. */
export const TELEGRAM_MESSAGE_LIMIT = 4096;

const PACKAGE = "grammy";

interface ApiRefusal {
  error_code: number;
  description?: string;
  method?: string;
  parameters?: { retry_after?: number };
}

/** True for an API refusal (grammY's `GrammyError`, or anything shaped like it). */
export function isApiRefusal(error: unknown): error is ApiRefusal {
  return (
    typeof error === "object" &&
    error !== null &&
    typeof (error as { error_code?: unknown }).error_code === "number"
  );
}

/** Seconds Telegram asks to wait before retrying a rate-limited call, when it said. */
export function retryAfterSeconds(error: unknown): number | undefined {
  if (!isApiRefusal(error) || error.error_code !== 429) return undefined;
  const seconds = error.parameters?.retry_after;
  return typeof seconds === "number" && seconds >= 0 ? seconds : undefined;
}

/**
 * A failed Bot API call as a KiloError: `CHANNEL_REJECTED` when Telegram
 * answered with an error, `CHANNEL_FAILED` when it could not be reached. The
 * original error is not kept as `cause`: it may hold the token (in a URL) or
 * the message text.
 */
export function telegramError(error: unknown, action: string, token: string | undefined): KiloError {
  if (KiloError.is(error)) return error;
  const scrub = (text: string) => (token ? text.split(token).join("***") : text);
  if (isApiRefusal(error)) {
    const retryAfter = retryAfterSeconds(error);
    return new KiloError(
      "CHANNEL_REJECTED",
      scrub(`Telegram refused ${action}: ${error.error_code} ${error.description ?? ""}`.trim()),
      {
        adapter: "telegram",
        retryable: error.error_code === 429 || error.error_code >= 500,
        details: { errorCode: error.error_code, ...(retryAfter === undefined ? {} : { retryAfter }) },
      },
    );
  }
  const reason = error instanceof Error ? error.message : String(error);
  return new KiloError("CHANNEL_FAILED", scrub(`Cannot reach Telegram to ${action}: ${reason}`), {
    adapter: "telegram",
    retryable: true,
  });
}

type ApiConstructor = new (token: string, options?: { apiRoot?: string }) => TelegramApi;

let grammy: Promise<ApiConstructor> | undefined;

/** grammY's `Api` class, loaded on first use: grammY is an optional peer dependency. */
export function loadGrammyApi(): Promise<ApiConstructor> {
  grammy ??= (async () => {
    let loaded: { Api?: unknown };
    try {
      loaded = (await import(PACKAGE)) as { Api?: unknown };
    } catch (error) {
      throw new KiloError(
        "CONFIGURATION_INVALID",
        `telegramChannel needs the '${PACKAGE}' package, an optional peer dependency of kilo: npm install ${PACKAGE}`,
        { adapter: "telegram", cause: error },
      );
    }
    if (typeof loaded.Api !== "function") {
      throw new KiloError("CONFIGURATION_INVALID", `The installed '${PACKAGE}' exports no Api class`, {
        adapter: "telegram",
      });
    }
    return loaded.Api as ApiConstructor;
  })();
  const attempt = grammy;
  attempt.catch(() => {
    if (grammy === attempt) grammy = undefined;
  });
  return attempt;
}

/**
 * Splits a reply into messages of at most `limit` UTF-16 code units, breaking
 * after a newline or a space where one is near the end of a part, and never
 * inside a surrogate pair.
 */
export function splitMessage(text: string, limit = TELEGRAM_MESSAGE_LIMIT): string[] {
  const parts: string[] = [];
  let rest = text;
  while (rest.length > limit) {
    let cut = limit;
    const code = rest.charCodeAt(cut - 1);
    if (code >= 0xd800 && code <= 0xdbff) cut -= 1;
    const window = rest.slice(0, cut);
    const newline = window.lastIndexOf("\n");
    const space = window.lastIndexOf(" ");
    // Prefer a natural break, unless it would leave a part much shorter than the limit.
    if (newline >= cut / 2) cut = newline + 1;
    else if (space >= cut / 2) cut = space + 1;
    parts.push(rest.slice(0, cut));
    rest = rest.slice(cut);
  }
  parts.push(rest);
  // Telegram refuses a message of only whitespace.
  return parts.filter((part) => part.trim() !== "");
}
