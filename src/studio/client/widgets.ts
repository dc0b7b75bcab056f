// Small pieces several views share: tabs, status badges, diffs and bar charts.

import { h, svg, uid } from "./dom.js";

/** One tab: its label and what its panel shows (rendered when first selected). */
export interface Tab {
  label: string;
  render: () => HTMLElement;
}

/**
 * ARIA tabs: one tab stop for the tab list; Left and Right (and Home, End) move between tabs and
 * select them; Tab moves on into the panel.
 */
export function tabs(label: string, entries: Tab[], selected = 0): HTMLElement {
  const list = h("div", { role: "tablist", "aria-label": label, class: "tabs" });
  const panels = h("div", { class: "tab-panels" });
  const buttons: HTMLButtonElement[] = [];
  const views: HTMLElement[] = [];
  const choose = (index: number, focus: boolean) => {
    buttons.forEach((button, at) => {
      const on = at === index;
      button.setAttribute("aria-selected", String(on));
      button.tabIndex = on ? 0 : -1;
      views[at]!.hidden = !on;
      if (on && views[at]!.childElementCount === 0) views[at]!.append(entries[at]!.render());
    });
    if (focus) buttons[index]!.focus();
  };
  entries.forEach((entry, index) => {
    const tabId = uid("tab");
    const panelId = uid("panel");
    const button = h(
      "button",
      { type: "button", role: "tab", id: tabId, "aria-controls": panelId },
      entry.label,
    );
    button.addEventListener("click", () => choose(index, false));
    button.addEventListener("keydown", (event) => {
      const last = entries.length - 1;
      const next =
        event.key === "ArrowRight"
          ? index === last
            ? 0
            : index + 1
          : event.key === "ArrowLeft"
            ? index === 0
              ? last
              : index - 1
            : event.key === "Home"
              ? 0
              : event.key === "End"
                ? last
                : null;
      if (next === null) return;
      event.preventDefault();
      choose(next, true);
    });
    buttons.push(button);
    list.append(button);
    const panel = h("div", {
      role: "tabpanel",
      id: panelId,
      "aria-labelledby": tabId,
      tabindex: 0,
      hidden: true,
    });
    views.push(panel);
    panels.append(panel);
  });
  choose(selected, false);
  return h("div", { class: "tabbed" }, list, panels);
}

/** A skill or run status as a badge: the word itself, so it never relies on colour alone. */
export function badge(status: string): HTMLSpanElement {
  const tone =
    status === "active" || status === "succeeded" || status === "ok" || status === "approved"
      ? "active"
      : status === "draft" ||
          status === "queued" ||
          status === "running" ||
          status === "pending" ||
          status === "awaiting_approval"
        ? "draft"
        : status === "failed" || status === "error" || status === "rejected" || status === "denied"
          ? "error"
          : "muted";
  return h("span", { class: `badge ${tone}` }, status.replace(/_/g, " "));
}

/** A unified diff, one line per row; added and removed lines keep their `+`/`-` as well as a colour. */
export function diffView(diff: string, label: string): HTMLElement {
  const lines = diff.replace(/\n$/, "").split("\n");
  return h(
    "pre",
    { class: "diff", "aria-label": label, tabindex: 0 },
    lines.map((line) => {
      const kind =
        line.startsWith("+++") || line.startsWith("---")
          ? "file"
          : line.startsWith("+")
            ? "add"
            : line.startsWith("-")
              ? "del"
              : line.startsWith("@@")
                ? "hunk"
                : "same";
      return h("span", { class: `line ${kind}` }, line === "" ? " " : line);
    }),
  );
}

/** One bar of a chart. */
export interface Bar {
  label: string;
  value: number;
  /** The value as people read it: `$0.42`, `12 calls`. */
  text: string;
}

/**
 * A horizontal bar chart as an SVG image (`role=img`, named by `title`). Positions are in
 * percentages of its width and text in CSS pixels, so it fits any screen without shrinking its
 * labels. Views show the same numbers in a table beside it.
 */
export function barChart(title: string, bars: Bar[]): SVGSVGElement {
  const rowHeight = 30;
  // Labels take the first 34% of the width, bars the next 44% at most, the value follows its bar.
  const barStart = 35;
  const barSpan = 43;
  const max = Math.max(...bars.map((bar) => bar.value), 0);
  const height = Math.max(bars.length, 1) * rowHeight + 6;
  const titleId = uid("chart");
  const chart = svg(
    "svg",
    { class: "chart", width: "100%", height, role: "img", "aria-labelledby": titleId },
    svg("title", { id: titleId }, title),
  );
  if (bars.length === 0) {
    chart.append(svg("text", { x: 0, y: 20, class: "chart-label" }, "No data"));
    return chart;
  }
  bars.forEach((bar, index) => {
    const y = index * rowHeight + 3;
    const share = max > 0 ? (bar.value / max) * barSpan : 0;
    const length = bar.value > 0 ? Math.max(share, 0.5) : 0;
    const name = bar.label.length > 18 ? `${bar.label.slice(0, 17)}…` : bar.label;
    chart.append(
      svg("text", { x: 0, y: y + 18, class: "chart-label" }, svg("title", {}, bar.label), name),
      svg("rect", {
        x: `${barStart}%`,
        y: y + 5,
        width: `${length.toFixed(2)}%`,
        height: rowHeight - 12,
        class: "chart-bar",
        rx: 2,
      }),
      svg(
        "text",
        { x: `${(barStart + length).toFixed(2)}%`, dx: 6, y: y + 18, class: "chart-value" },
        bar.text,
      ),
    );
  });
  return chart;
}
