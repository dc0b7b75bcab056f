import type { Bot } from "../domain/bot.js";

/** Input of {@link ResponseProcessor.process}. */
export interface ProcessInput {
  text: string;
  bot: Bot;
  /** The channel the reply goes to (`api`, `cli`, `telegram`, ...). */
  channel: string;
}

/** A processed reply and what was changed. */
export interface ProcessedResponse {
  text: string;
  /** What the processor did: `markdown-stripped`, `truncated`, `secret-redacted`, ... */
  actions: string[];
}

/**
 * The ResponseProcessor port: last step before a reply leaves kilo. Enforces
 * the soul's format and the channel's limits, and filters unsafe content.
 */
export interface ResponseProcessor {
  /** Turns the model's final text into the reply the user sees, listing each change it made in `actions`. */
  process(input: ProcessInput): ProcessedResponse;
  /**
   * Optional: filters a piece of reply text while it streams (whole words
   * only; a credential never straddles two pieces). The final reply still
   * goes through `process`. A processor without it streams no partial text:
   * the processed reply is sent as one piece at the end, so nothing unfiltered
   * reaches a user.
   */
  filterDelta?(text: string, input: Omit<ProcessInput, "text">): string;
}
