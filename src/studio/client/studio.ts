// What every view gets: the API, who is signed in, the bot being worked on, and navigation.

import type { Api } from "./api.js";
import type { Bot } from "./types.js";

/** The studio as a view sees it. */
export interface Studio {
  api: Api;
  /** The signed-in user (`GET /api/me`). */
  userId: string;
  /** The user's bots. */
  bots: Bot[];
  /** The bot the views work on. */
  bot: Bot;
  /** The API's operation ids: a view offers what the server has (promotions, say) and nothing else. */
  operations: ReadonlySet<string>;
  /** Goes to a view: `go("skills", skillId)` is `#/skills/<skillId>`. */
  go(view: string, ...path: string[]): void;
  /** Says something to screen-reader users without moving focus. */
  announce(text: string): void;
}

/** A view: renders into a fresh element each time it is shown. `path` is what follows its name in the hash. */
export type View = (studio: Studio, path: string[]) => HTMLElement;
