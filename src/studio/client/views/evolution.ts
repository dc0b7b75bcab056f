// Evolution: run `kilo.evolve` over the user's traces with the bot and watch its progress, then
// review the drafts it wrote with their replay evidence: approve, edit (in the skills panel) or reject.

import { segment, withQuery } from "../api.js";
import { errorBox, field, h, replace, showError, table, uid } from "../dom.js";
import { count, percent } from "../format.js";
import type { Studio } from "../studio.js";
import type { EvolutionEvidence, EvolveProgress, EvolveResult, Skill } from "../types.js";
import { badge } from "../widgets.js";

function evidenceOf(skill: Skill): EvolutionEvidence | null {
  const evolution = skill.metadata.evolution;
  return evolution && typeof evolution === "object" ? (evolution as EvolutionEvidence) : null;
}

/** One draft with its evidence and the review buttons. */
function draftCard(studio: Studio, skill: Skill, reviewed: () => void): HTMLElement {
  const evidence = evidenceOf(skill);
  const replay = evidence?.replay;
  const titleId = uid("draft");
  const reason = h("input", { type: "text", autocomplete: "off", maxlength: 2000 });
  const error = errorBox();
  const decide = async (decision: "approve" | "reject") => {
    showError(error, null);
    try {
      const text = reason.value.trim();
      await studio.api.post<Skill>(
        withQuery(`api/skills/${segment(skill.id)}/${decision}`, { botId: studio.bot.id }),
        text === "" ? {} : { reason: text },
      );
      studio.announce(
        `${skill.name} ${decision === "approve" ? "approved: it is active now" : "rejected: it is disabled"}.`,
      );
      reviewed();
    } catch (failure) {
      showError(error, failure);
    }
  };
  return h(
    "article",
    { class: "card draft", "aria-labelledby": titleId },
    h("h4", { id: titleId }, skill.name, " ", badge(skill.status)),
    h("p", {}, skill.description),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Triggers"),
      h("dd", {}, skill.triggers.join(", ") || "–"),
      evidence
        ? [
            h("dt", {}, "Pattern"),
            h("dd", {}, `“${evidence.signature ?? "?"}”, seen ${count(evidence.occurrences ?? 0)} times`),
            h("dt", {}, "Went well"),
            h("dd", {}, percent(evidence.successRate ?? 0)),
          ]
        : [h("dt", {}, "Source"), h("dd", {}, "Not drafted by evolution")],
      replay
        ? [
            h("dt", {}, "Replay"),
            h(
              "dd",
              {},
              `Of ${count(replay.messages)} requests, ${count(replay.matchedBefore)} matched a skill before; the draft would match ${count(replay.matchedByDraft)}.`,
            ),
          ]
        : null,
    ),
    replay && replay.examples.length > 0
      ? table(
          `Replayed requests for ${skill.name}`,
          ["Request", "Matched before", "With the draft"],
          replay.examples.map((example) => [
            example.message,
            example.before ?? "nothing",
            example.after ?? "nothing",
          ]),
        )
      : null,
    skill.markdown
      ? h("details", {}, h("summary", {}, "Skill body"), h("pre", { class: "code" }, skill.markdown.body))
      : null,
    field("Reason (optional)", reason, "Recorded in the skill's history with your decision."),
    h(
      "div",
      { class: "actions" },
      h(
        "button",
        { type: "button", class: "primary", onclick: () => decide("approve") },
        `Approve ${skill.name}`,
      ),
      h("button", { type: "button", onclick: () => studio.go("skills", skill.id) }, `Edit ${skill.name}`),
      h(
        "button",
        { type: "button", class: "danger", onclick: () => decide("reject") },
        `Reject ${skill.name}`,
      ),
    ),
    error,
  );
}

/** The evolution view. */
export function evolutionView(studio: Studio): HTMLElement {
  const { bot } = studio;
  const heading = h("h2", { id: uid("evolution"), tabindex: -1 }, "Evolution");
  const minOccurrences = h("input", {
    type: "number",
    min: 2,
    max: 10000,
    step: 1,
    value: "3",
    required: true,
  });
  const minSuccessRate = h("input", {
    type: "number",
    min: 0,
    max: 1,
    step: 0.05,
    value: "0.7",
    required: true,
  });
  const autoApply = h("input", { type: "checkbox" });
  autoApply.id = uid("auto");
  const run = h("button", { type: "submit", class: "primary" }, "Run evolution");
  const progress = h("ol", { class: "progress-log", "aria-label": "Evolution progress" });
  const summary = h("div", { class: "evolve-summary" });
  const error = errorBox();
  const drafts = h("div", { class: "stack drafts" });
  const draftsError = errorBox();

  const loadDrafts = async () => {
    try {
      const { items } = await studio.api.get<{ items: Skill[] }>(`api/bots/${segment(bot.id)}/drafts`);
      replace(
        drafts,
        items.length === 0
          ? h("p", { class: "muted" }, "No drafts are waiting for review.")
          : items.map((skill) => draftCard(studio, skill, () => void loadDrafts())),
      );
    } catch (failure) {
      showError(draftsError, failure);
    }
  };

  const form = h(
    "form",
    {
      class: "card stack",
      onsubmit: async (event: Event) => {
        event.preventDefault();
        run.disabled = true;
        showError(error, null);
        progress.replaceChildren();
        summary.replaceChildren();
        progress.setAttribute("aria-busy", "true");
        try {
          await studio.api.stream(
            `api/bots/${segment(bot.id)}/evolve/stream`,
            {
              minOccurrences: Number(minOccurrences.value),
              minSuccessRate: Number(minSuccessRate.value),
              autoApply: autoApply.checked,
            },
            (name, data) => {
              if (name === "progress") {
                const event = data as EvolveProgress;
                progress.append(
                  h(
                    "li",
                    { "data-stage": event.stage },
                    h("span", { class: "stage" }, event.stage),
                    ` ${event.message}`,
                  ),
                );
              } else if (name === "result") {
                const result = (data as { result: EvolveResult }).result;
                replace(
                  summary,
                  h(
                    "p",
                    { role: "status" },
                    `Analysed ${count(result.tracesAnalyzed)} traces: ${count(result.patternsDetected)} repeated patterns, ${count(result.skillsCreated)} skill${result.skillsCreated === 1 ? "" : "s"} ${autoApply.checked ? "created" : "drafted"}.`,
                  ),
                  result.patterns.length > 0
                    ? table(
                        "Patterns found",
                        ["Pattern", "Seen", "Went well", "Outcome", "Why"],
                        result.patterns.map((pattern) => [
                          pattern.signature,
                          count(pattern.occurrences),
                          percent(pattern.successRate),
                          badge(pattern.outcome),
                          pattern.reason,
                        ]),
                      )
                    : null,
                );
              } else if (name === "error") {
                const body = data as { error?: { message?: string } };
                throw new Error(body.error?.message ?? "Evolution failed");
              }
            },
          );
          await loadDrafts();
        } catch (failure) {
          showError(error, failure);
        } finally {
          progress.setAttribute("aria-busy", "false");
          run.disabled = false;
        }
      },
    },
    h("h3", {}, "Run evolution"),
    h(
      "p",
      {},
      `Looks through your conversations with ${bot.name} for requests you make again and again that no skill serves, and drafts a skill for each.`,
    ),
    h(
      "div",
      { class: "row" },
      field("Fewest similar requests", minOccurrences),
      field("Least share that went well", minSuccessRate, "From 0 to 1."),
    ),
    h(
      "div",
      { class: "check" },
      autoApply,
      h("label", { for: autoApply.id }, "Activate drafted skills at once (no review)"),
    ),
    h("div", { class: "actions" }, run),
    error,
    h("h4", {}, "Progress"),
    progress,
    summary,
  );

  void loadDrafts();
  return h(
    "section",
    { class: "view evolution", "aria-labelledby": heading.id },
    heading,
    form,
    h(
      "section",
      { class: "stack", "aria-labelledby": `${heading.id}-drafts` },
      h("h3", { id: `${heading.id}-drafts` }, "Drafts to review"),
      draftsError,
      drafts,
    ),
  );
}
