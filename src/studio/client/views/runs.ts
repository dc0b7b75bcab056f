// Runs and traces: a conversation key's runs with their status, a run step by step (its workflow
// steps, then what its turn did, from the turn's trace), and the bot's traces with feedback.

import { segment, withQuery } from "../api.js";
import { errorBox, field, h, replace, select, showError, statusLine, table, uid } from "../dom.js";
import { count, duration, matchPass, percent, took, usd, when } from "../format.js";
import type { Studio } from "../studio.js";
import type { Page, Run, RunStep, Trace } from "../types.js";
import { badge } from "../widgets.js";

/** The conversation key last looked at, kept while the page is open. */
let lastKey = "";

/** A turn's trace as numbered steps: what came in, how a skill was chosen, what was called, what it cost. */
function traceSteps(trace: Trace): HTMLElement {
  return h(
    "ol",
    { class: "trace-steps" },
    h("li", {}, h("strong", {}, "Message received: "), `“${trace.message}”`),
    h(
      "li",
      {},
      h("strong", {}, "Skill matched: "),
      trace.skillName
        ? `${trace.skillName} (${matchPass(trace.matchPass)}${trace.matchConfidence === null ? "" : `, ${percent(trace.matchConfidence)} sure`})`
        : `none (${matchPass(trace.matchPass)})`,
    ),
    h("li", {}, h("strong", {}, "Skills in the prompt: "), trace.skillsInjected.join(", ") || "none"),
    h(
      "li",
      {},
      h("strong", {}, "Tool calls: "),
      trace.toolCalls.length === 0
        ? "none"
        : trace.toolCalls.map((call) => `${call.name} (${call.ok ? "ok" : "failed"})`).join(", "),
    ),
    h(
      "li",
      {},
      h("strong", {}, "Model: "),
      `${trace.model ?? "none"} · ${count(trace.promptTokens)} tokens in, ${count(trace.completionTokens)} out · ${usd(trace.costUsd)}`,
    ),
    h(
      "li",
      {},
      h("strong", {}, "Outcome: "),
      badge(trace.outcome),
      trace.errorCode ? ` ${trace.errorCode}` : "",
      ` after ${duration(trace.latencyMs)}`,
    ),
  );
}

function runsSection(studio: Studio): HTMLElement {
  const { bot, api } = studio;
  const headingId = uid("runs");
  const key = h("input", { type: "text", value: lastKey, required: true, autocomplete: "off" });
  const list = h("div", {});
  const detail = h("div", { class: "run-detail" });
  const error = errorBox();
  const shown = statusLine();

  const openRun = async (run: Run, button: HTMLButtonElement) => {
    showError(error, null);
    try {
      const { items: steps } = await api.get<{ items: RunStep[] }>(`api/runs/${segment(run.id)}/steps`);
      const traceId = typeof run.output?.traceId === "string" ? run.output.traceId : null;
      const trace = traceId
        ? await api.get<Trace>(withQuery(`api/traces/${segment(traceId)}`, { botId: bot.id }))
        : null;
      const titleId = uid("run");
      replace(
        detail,
        h(
          "article",
          { class: "card", "aria-labelledby": titleId },
          h("h4", { id: titleId, tabindex: -1 }, `Run ${run.id} `, badge(run.status)),
          h(
            "p",
            { class: "muted" },
            `Workflow ${run.workflow} · queued ${when(run.createdAt)} · started ${when(run.startedAt)} · took ${took(run.startedAt, run.finishedAt)}`,
          ),
          run.error ? h("p", { class: "error-text" }, `${run.error.code}: ${run.error.message}`) : null,
          h("h5", {}, "Workflow steps"),
          steps.length === 0
            ? h("p", { class: "muted" }, "No steps recorded.")
            : h(
                "ol",
                { class: "run-steps" },
                steps.map((step) =>
                  h(
                    "li",
                    {},
                    `${step.kind} ${step.name} `,
                    badge(step.status),
                    ` · ${took(step.startedAt, step.finishedAt)}`,
                    step.error ? ` · ${step.error.code}: ${step.error.message}` : "",
                  ),
                ),
              ),
          h("h5", {}, "The turn, step by step"),
          trace ? traceSteps(trace) : h("p", { class: "muted" }, "This run kept no trace."),
        ),
      );
      detail.querySelector<HTMLElement>("h4")?.focus();
      for (const other of list.querySelectorAll("button[aria-current]"))
        other.removeAttribute("aria-current");
      button.setAttribute("aria-current", "true");
    } catch (failure) {
      showError(error, failure);
    }
  };

  const load = async () => {
    lastKey = key.value.trim();
    const filtered = lastKey !== "";
    showError(error, null);
    try {
      // One conversation: its runs in ingest order, shown newest first. Otherwise every conversation's, newest first.
      const { items } = await api.get<{ items: Run[] }>(
        withQuery(
          `api/bots/${segment(bot.id)}/runs`,
          filtered ? { conversationKey: lastKey, limit: 500 } : { limit: 100 },
        ),
      );
      const runs = filtered ? items.slice().reverse() : items;
      shown.textContent = filtered
        ? `${runs.length} run${runs.length === 1 ? "" : "s"} in conversation ${lastKey}`
        : `${runs.length} most recent run${runs.length === 1 ? "" : "s"}, every conversation`;
      replace(
        list,
        runs.length === 0
          ? h("p", { class: "muted" }, filtered ? "No runs in that conversation." : "No runs yet.")
          : table(
              filtered ? `Runs of conversation ${lastKey}` : "Recent runs",
              ["Run", "Conversation", "Status", "Workflow", "Queued", "Took"],
              runs.map((run) => {
                const button: HTMLButtonElement = h(
                  "button",
                  { type: "button", class: "link", onclick: () => openRun(run, button) },
                  run.id,
                );
                return [
                  button,
                  run.conversationKey,
                  badge(run.status),
                  run.workflow,
                  when(run.createdAt),
                  took(run.startedAt, run.finishedAt),
                ];
              }),
            ),
      );
    } catch (failure) {
      showError(error, failure);
    }
  };

  void load();
  return h(
    "section",
    { class: "stack", "aria-labelledby": headingId },
    h("h3", { id: headingId }, "Runs"),
    h(
      "form",
      {
        class: "toolbar",
        role: "search",
        "aria-label": "Filter runs by conversation",
        onsubmit: (event: Event) => {
          event.preventDefault();
          void load();
        },
      },
      field(
        "Conversation key",
        key,
        "The conversation_key of the events (e.g. tg:12345); empty shows every conversation's runs.",
      ),
      h("div", { class: "actions" }, h("button", { type: "submit" }, "Show runs")),
    ),
    shown,
    error,
    list,
    detail,
  );
}

function tracesSection(studio: Studio): HTMLElement {
  const { bot, api } = studio;
  const headingId = uid("traces");
  const conversation = select([["", "All conversations"]], "");
  const list = h("div", {});
  const more = h("button", { type: "button", hidden: true }, "Load more traces");
  const detail = h("div", {});
  const error = errorBox();
  const shown = statusLine();
  const traces: Trace[] = [];
  let cursor: string | null = null;

  const feedback = async (trace: Trace, rating: "up" | "down") => {
    showError(error, null);
    try {
      const updated = await api.post<Trace>(
        withQuery(`api/traces/${segment(trace.id)}/feedback`, { botId: bot.id }),
        { rating },
      );
      traces.splice(traces.indexOf(trace), 1, updated);
      studio.announce(rating === "up" ? "Marked as a good answer" : "Marked as a bad answer");
      render();
    } catch (failure) {
      showError(error, failure);
    }
  };

  const render = () => {
    const known = new Set(
      traces.map((trace) => trace.conversationId).filter((id): id is string => id !== null),
    );
    const chosen = conversation.value;
    replace(
      conversation,
      h("option", { value: "" }, "All conversations"),
      [...known].map((id) => h("option", { value: id, selected: id === chosen }, id)),
    );
    const visible = traces.filter((trace) => chosen === "" || trace.conversationId === chosen);
    shown.textContent = `${visible.length} trace${visible.length === 1 ? "" : "s"}`;
    replace(
      list,
      visible.length === 0
        ? h("p", { class: "muted" }, "No traces yet: chat with the bot first.")
        : table(
            `Traces of ${bot.name}`,
            ["When", "Message", "Skill", "Outcome", "Latency", "Cost", "Feedback"],
            visible
              .slice()
              .reverse()
              .map((trace) => [
                when(trace.createdAt),
                h(
                  "button",
                  {
                    type: "button",
                    class: "link",
                    onclick: () => {
                      const titleId = uid("trace");
                      replace(
                        detail,
                        h(
                          "article",
                          { class: "card", "aria-labelledby": titleId },
                          h("h4", { id: titleId, tabindex: -1 }, `Trace ${trace.id}`),
                          traceSteps(trace),
                        ),
                      );
                      detail.querySelector<HTMLElement>("h4")?.focus();
                    },
                  },
                  trace.message.length > 60 ? `${trace.message.slice(0, 59)}…` : trace.message,
                ),
                trace.skillName
                  ? `${trace.skillName} (${matchPass(trace.matchPass)})`
                  : matchPass(trace.matchPass),
                badge(trace.outcome),
                duration(trace.latencyMs),
                usd(trace.costUsd),
                h(
                  "div",
                  { class: "feedback", role: "group", "aria-label": "Feedback" },
                  h(
                    "button",
                    {
                      type: "button",
                      "aria-pressed": String(trace.feedback?.rating === "up"),
                      "aria-label": "Good answer",
                      onclick: () => feedback(trace, "up"),
                    },
                    "Good",
                  ),
                  h(
                    "button",
                    {
                      type: "button",
                      "aria-pressed": String(trace.feedback?.rating === "down"),
                      "aria-label": "Bad answer",
                      onclick: () => feedback(trace, "down"),
                    },
                    "Bad",
                  ),
                ),
              ]),
          ),
    );
    more.hidden = cursor === null;
  };

  const load = async () => {
    try {
      const page = await api.get<Page<Trace>>(
        withQuery(`api/bots/${segment(bot.id)}/traces`, { limit: 100, cursor: cursor ?? undefined }),
      );
      traces.push(...page.items);
      cursor = page.nextCursor;
      render();
    } catch (failure) {
      showError(error, failure);
    }
  };
  more.addEventListener("click", () => void load());
  conversation.addEventListener("change", render);
  void load();
  return h(
    "section",
    { class: "stack", "aria-labelledby": headingId },
    h("h3", { id: headingId }, "Traces"),
    h("div", { class: "toolbar" }, field("Conversation", conversation)),
    shown,
    error,
    list,
    more,
    detail,
  );
}

/** The runs and traces view. */
export function runsView(studio: Studio): HTMLElement {
  const heading = h("h2", { id: uid("runs-view"), tabindex: -1 }, "Runs & traces");
  return h(
    "section",
    { class: "view runs", "aria-labelledby": heading.id },
    heading,
    runsSection(studio),
    tracesSection(studio),
  );
}
