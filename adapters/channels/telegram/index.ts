/**
 * Telegram channel: `import { telegramChannel } from "kilo/channels/telegram"`.
 * Needs the optional peer dependency `grammy` unless the host passes its own `api`.
 * See `docs/channels/telegram.md`.
 *
 * @module
 */
export type {
  TelegramApi,
  TelegramChat,
  TelegramMessage,
  TelegramUpdate,
  TelegramUser,
} from "./telegram-api.js";
export { splitMessage, TELEGRAM_MESSAGE_LIMIT } from "./telegram-api.js";
export type {
  TelegramChannel,
  TelegramChannelOptions,
  TelegramUpdateOutcome,
  TelegramWebhookHandler,
} from "./telegram-channel.js";
export { telegramChannel } from "./telegram-channel.js";
