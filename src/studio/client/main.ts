// kilo studio: the entry point. Finds who is signed in and their bots, draws the frame (header,
// bot picker, navigation) and shows one view at a time, chosen by the location hash (#/skills).

import { type Api, ApiError, createApi, segment, withQuery } from "./api.js";
import { errorBox, field, h, replace, select, showError } from "./dom.js";
import type { Studio, View } from "./studio.js";
import type { Bot, Page } from "./types.js";
import { chatView } from "./views/chat.js";
import { evolutionView } from "./views/evolution.js";
import { runsView } from "./views/runs.js";
import { skillsView } from "./views/skills.js";
import { usageView } from "./views/usage.js";

const VIEWS: ReadonlyArray<{ name: string; label: string; view: View }> = [
  { name: "chat", label: "Chat", view: chatView },
  { name: "skills", label: "Skills", view: skillsView },
  { name: "evolution", label: "Evolution", view: evolutionView },
  { name: "runs", label: "Runs & traces", view: runsView },
  { name: "usage", label: "Usage", view: usageView },
];

const BOT_KEY = "kilo-studio-bot";

async function allBots(api: Api, userId: string): Promise<Bot[]> {
  const bots: Bot[] = [];
  let cursor: string | null = null;
  do {
    const page: Page<Bot> = await api.get(
      withQuery(`api/users/${segment(userId)}/bots`, { limit: 500, cursor: cursor ?? undefined }),
    );
    bots.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return bots;
}

function operationsOfPage(): Set<string> {
  const content = document.querySelector('meta[name="kilo-operations"]')?.getAttribute("content") ?? "";
  return new Set(content.split(/\s+/).filter((name) => name !== ""));
}

/** Where the hash points: a view name and the rest of its path. */
function route(): { name: string; path: string[] } {
  let parts: string[];
  try {
    parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  } catch {
    parts = [];
  }
  const [name = "", ...path] = parts;
  const known = VIEWS.some((entry) => entry.name === name);
  return known ? { name, path } : { name: "chat", path: [] };
}

function firstBotForm(api: Api, done: (bot: Bot) => void): HTMLElement {
  const name = h("input", { type: "text", required: true, maxlength: 100, autocomplete: "off" });
  const error = errorBox();
  const form = h(
    "form",
    {
      class: "card",
      onsubmit: async (event: Event) => {
        event.preventDefault();
        showError(error, null);
        try {
          done(await api.post<Bot>("api/bots", { name: name.value.trim() }));
        } catch (failure) {
          showError(error, failure);
        }
      },
    },
    h("p", {}, "You have no bots yet. Create one to start."),
    field("Bot name", name),
    h("button", { type: "submit", class: "primary" }, "Create bot"),
    error,
  );
  return form;
}

async function boot(): Promise<void> {
  const root = document.getElementById("app");
  if (!root) return;
  const api = createApi(new URL("../", location.href));
  const alert = errorBox();
  alert.classList.add("global");
  api.onUnauthenticated = () =>
    showError(alert, "You are not signed in (the server answered 401). Reload the page to sign in again.");

  const fail = (error: unknown) =>
    replace(
      root,
      h(
        "main",
        { class: "boot-error" },
        h("h1", {}, "kilo studio"),
        h(
          "p",
          { role: "alert" },
          error instanceof ApiError && error.status === 401
            ? "You are not signed in. Reload the page to sign in."
            : `The studio could not start: ${error instanceof Error ? error.message : String(error)}`,
        ),
      ),
    );

  let userId: string;
  let bots: Bot[];
  try {
    userId = (await api.get<{ userId: string }>("api/me")).userId;
    bots = await allBots(api, userId);
  } catch (error) {
    fail(error);
    return;
  }

  const operations = operationsOfPage();
  const announcer = h("p", { class: "visually-hidden", role: "status", "aria-live": "polite" });
  const main = h("main", { id: "main", tabindex: -1 });
  const botPicker = select([], "", { id: "bot-picker" });
  const links = VIEWS.map(({ name, label }) => h("a", { href: `#/${name}`, "data-view": name }, label));
  const skip = h(
    "a",
    {
      class: "skip",
      href: "#main",
      onclick: (event: Event) => {
        event.preventDefault();
        main.focus();
      },
    },
    "Skip to content",
  );

  let current: Bot | null = null;
  const fillPicker = () => {
    replace(
      botPicker,
      bots.map((bot) => h("option", { value: bot.id, selected: bot.id === current?.id }, bot.name)),
    );
  };
  const pick = (botId: string | null) => {
    current = bots.find((bot) => bot.id === botId) ?? bots[0] ?? null;
    if (current) localStorage.setItem(BOT_KEY, current.id);
    fillPicker();
  };
  pick(localStorage.getItem(BOT_KEY));

  const studio = (bot: Bot): Studio => ({
    api,
    userId,
    bots,
    bot,
    operations,
    go: (view, ...path) => {
      location.hash = `#/${[view, ...path].map(encodeURIComponent).join("/")}`;
    },
    announce: (text) => {
      announcer.textContent = "";
      // A new text node after a tick, so the same words twice are announced twice.
      setTimeout(() => {
        announcer.textContent = text;
      }, 50);
    },
  });

  const show = (focus: boolean) => {
    const { name, path } = route();
    const entry = VIEWS.find((candidate) => candidate.name === name) ?? VIEWS[0]!;
    for (const link of links) {
      if (link.dataset.view === entry.name) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    document.title = `${entry.label} · kilo studio`;
    showError(alert, null);
    if (!current) {
      replace(
        main,
        firstBotForm(api, (bot) => {
          bots.push(bot);
          pick(bot.id);
          show(true);
        }),
      );
      return;
    }
    const view = entry.view(studio(current), path);
    replace(main, view);
    if (focus) (view.querySelector("h2") ?? main).focus();
  };

  botPicker.addEventListener("change", () => {
    pick(botPicker.value);
    show(false);
  });
  window.addEventListener("hashchange", () => {
    if (location.hash.startsWith("#/")) show(true);
  });

  replace(
    root,
    skip,
    h(
      "header",
      { class: "top" },
      h("h1", {}, "kilo studio"),
      h(
        "div",
        { class: "top-controls" },
        h("div", { class: "bot-field" }, h("label", { for: botPicker.id }, "Bot"), botPicker),
        h("p", { class: "who" }, "Signed in as ", h("strong", {}, userId)),
      ),
    ),
    h(
      "nav",
      { class: "views", "aria-label": "Studio" },
      h(
        "ul",
        {},
        links.map((link) => h("li", {}, link)),
      ),
    ),
    alert,
    main,
    announcer,
  );
  show(false);
}

void boot();
