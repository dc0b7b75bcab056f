// Usage: what the user's model calls cost, by day, by model and by bot, as charts with the same
// numbers in tables beside them.

import { segment, withQuery } from "../api.js";
import { errorBox, field, h, replace, select, showError, table, uid } from "../dom.js";
import { count, usd } from "../format.js";
import type { Studio } from "../studio.js";
import type { UsageBreakdown, UsageTotals } from "../types.js";
import { type Bar, barChart } from "../widgets.js";

const DAY_MS = 86_400_000;
const settings = { days: "30", metric: "cost", bot: "" };

const METRICS: Record<
  string,
  { label: string; of: (totals: UsageTotals) => number; text: (value: number) => string }
> = {
  cost: { label: "Cost", of: (totals) => totals.costUsd, text: usd },
  calls: { label: "Model calls", of: (totals) => totals.calls, text: count },
  tokens: {
    label: "Tokens",
    of: (totals) => totals.promptTokens + totals.completionTokens,
    text: count,
  },
};

/** The usage view. */
export function usageView(studio: Studio): HTMLElement {
  const heading = h("h2", { id: uid("usage"), tabindex: -1 }, "Usage");
  const period = select(
    [
      ["7", "Last 7 days"],
      ["30", "Last 30 days"],
      ["90", "Last 90 days"],
      ["", "All time"],
    ],
    settings.days,
  );
  const metric = select(
    Object.entries(METRICS).map(([name, entry]): [string, string] => [name, entry.label]),
    settings.metric,
  );
  const bot = select(
    [["", "All bots"], ...studio.bots.map((entry): [string, string] => [entry.id, entry.name])],
    settings.bot,
  );
  const totals = h("div", { class: "totals" });
  const charts = h("div", { class: "charts" });
  const error = errorBox();
  const botName = (id: string | null) => studio.bots.find((entry) => entry.id === id)?.name ?? id ?? "(none)";

  const chart = (title: string, rows: Array<{ label: string; totals: UsageTotals }>) => {
    const chosen = METRICS[metric.value] ?? METRICS.cost!;
    const bars: Bar[] = rows.map((row) => {
      const value = chosen.of(row.totals);
      return { label: row.label, value, text: chosen.text(value) };
    });
    const captionId = uid("figure");
    return h(
      "figure",
      { class: "card chart-card", "aria-labelledby": captionId },
      h("figcaption", { id: captionId }, `${chosen.label} ${title}`),
      barChart(`${chosen.label} ${title}`, bars),
      h(
        "details",
        {},
        h("summary", {}, "Numbers"),
        table(
          `${title[0]?.toUpperCase()}${title.slice(1)}`,
          ["", "Calls", "Tokens in", "Tokens out", "Cost"],
          rows.map((row) => [
            row.label,
            count(row.totals.calls),
            count(row.totals.promptTokens),
            count(row.totals.completionTokens),
            usd(row.totals.costUsd),
          ]),
        ),
      ),
    );
  };

  const load = async () => {
    settings.days = period.value;
    settings.metric = metric.value;
    settings.bot = bot.value;
    showError(error, null);
    const from =
      period.value === "" ? undefined : new Date(Date.now() - Number(period.value) * DAY_MS).toISOString();
    try {
      const breakdown = await studio.api.get<UsageBreakdown>(
        withQuery(`api/users/${segment(studio.userId)}/usage/breakdown`, {
          from,
          botId: bot.value || undefined,
        }),
      );
      const sum = breakdown.byDay.reduce(
        (all, day) => ({
          calls: all.calls + day.calls,
          promptTokens: all.promptTokens + day.promptTokens,
          completionTokens: all.completionTokens + day.completionTokens,
          costUsd: all.costUsd + day.costUsd,
        }),
        { calls: 0, promptTokens: 0, completionTokens: 0, costUsd: 0 },
      );
      replace(
        totals,
        h(
          "dl",
          { class: "facts totals-list" },
          h("dt", {}, "Cost"),
          h("dd", {}, usd(sum.costUsd)),
          h("dt", {}, "Model calls"),
          h("dd", {}, count(sum.calls)),
          h("dt", {}, "Tokens"),
          h("dd", {}, `${count(sum.promptTokens)} in, ${count(sum.completionTokens)} out`),
        ),
      );
      replace(
        charts,
        chart(
          "by day",
          breakdown.byDay.map((day) => ({ label: day.day, totals: day })),
        ),
        chart(
          "by model",
          breakdown.byModel.map((model) => ({ label: model.model, totals: model })),
        ),
        chart(
          "by bot",
          breakdown.byBot.map((entry) => ({ label: botName(entry.botId), totals: entry })),
        ),
      );
    } catch (failure) {
      showError(error, failure);
    }
  };
  for (const control of [period, metric, bot]) control.addEventListener("change", () => void load());
  void load();
  return h(
    "section",
    { class: "view usage", "aria-labelledby": heading.id },
    heading,
    h("div", { class: "toolbar" }, field("Period", period), field("Show", metric), field("Bot", bot)),
    error,
    totals,
    charts,
  );
}
