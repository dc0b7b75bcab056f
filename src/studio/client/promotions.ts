// Skill promotions: asking for a skill to be copied into a wider scope (a team, the system), and
// reviewing such requests. Shown only when the server's route table has the operations below (the
// page lists the server's operation ids), so the studio works with servers with and without them.

import { ApiError, segment, withQuery } from "./api.js";
import { errorBox, field, h, replace, select, showError, statusLine, uid } from "./dom.js";
import { when } from "./format.js";
import { skillScope } from "./scope.js";
import type { Studio } from "./studio.js";
import type { Skill, SkillScope } from "./types.js";
import { badge, diffView } from "./widgets.js";

/**
 * The promotion routes the studio calls, by operation id:
 * - `requestSkillPromotion`: `POST api/skills/:skillId/promotions?botId=` with `{ to: SkillScope, reason }`, answers a {@link Promotion}
 * - `listSkillPromotions`: `GET api/promotions?status=pending`, answers `{ items: Promotion[] }`
 * - `approveSkillPromotion`: `POST api/promotions/:promotionId/approve` with `{ note? }`, answers the
 *   promotion or `{ promotion, skill }` (what `kilo.skills.promotions.approve` returns)
 * - `rejectSkillPromotion`: `POST api/promotions/:promotionId/reject` with `{ reason }`, answers the promotion
 */
export const PROMOTION_OPERATIONS = {
  request: "requestSkillPromotion",
  list: "listSkillPromotions",
  approve: "approveSkillPromotion",
  reject: "rejectSkillPromotion",
} as const;

/** A promotion request, as the studio reads it. */
export interface Promotion {
  id: string;
  skillId: string;
  skillName: string;
  from: SkillScope;
  to: SkillScope;
  diff: string;
  reason: string;
  requestedBy: string;
  status: string;
  reviewer: string | null;
  reviewNote: string | null;
  createdAt: string;
}

const scopeText = (scope: SkillScope) => (scope.id ? `${scope.kind} ${scope.id}` : scope.kind);

/** Whether the server offers promotion requests (the Promotion tab of a skill). */
export const canRequestPromotion = (studio: Studio) => studio.operations.has(PROMOTION_OPERATIONS.request);

/** Whether the server offers promotion review (the review list of the skills panel). */
export const canReviewPromotions = (studio: Studio) =>
  studio.operations.has(PROMOTION_OPERATIONS.list) &&
  studio.operations.has(PROMOTION_OPERATIONS.approve) &&
  studio.operations.has(PROMOTION_OPERATIONS.reject);

/** The Promotion tab of a skill: ask for it to be copied to a team or to the system. */
export function promotionForm(studio: Studio, skill: Skill): HTMLElement {
  const from = skillScope(skill);
  const targets: Array<[string, string]> = [];
  if (from !== "team" && from !== "system") targets.push(["team", "A team"]);
  if (from !== "system") targets.push(["system", "The system (every bot)"]);
  if (targets.length === 0)
    return h("p", { class: "muted" }, "A system skill is already as wide as it gets.");
  const target = select(targets, targets[0]![0]);
  const team = h("input", { type: "text", autocomplete: "off" });
  const teamField = field("Team id", team);
  const reason = h("textarea", { rows: 3, required: true });
  const status = statusLine();
  const error = errorBox();
  const sync = () => {
    teamField.hidden = target.value !== "team";
  };
  target.addEventListener("change", sync);
  sync();
  return h(
    "form",
    {
      class: "stack",
      onsubmit: async (event: Event) => {
        event.preventDefault();
        showError(error, null);
        if (target.value === "team" && team.value.trim() === "") {
          team.setAttribute("aria-invalid", "true");
          showError(error, "Name the team to promote the skill to.");
          team.focus();
          return;
        }
        team.removeAttribute("aria-invalid");
        const to: SkillScope =
          target.value === "team" ? { kind: "team", id: team.value.trim() } : { kind: "system" };
        try {
          const created = await studio.api.post<Promotion>(
            withQuery(`api/skills/${segment(skill.id)}/promotions`, { botId: studio.bot.id }),
            { to, reason: reason.value.trim() },
          );
          status.textContent = `Promotion requested (${created.status}): a reviewer of ${scopeText(created.to)} decides.`;
          reason.value = "";
        } catch (failure) {
          showError(error, failure);
        }
      },
    },
    h(
      "p",
      {},
      `Ask for “${skill.name}” to be copied to a wider scope. A reviewer reads the diff and decides.`,
    ),
    field("Promote to", target),
    teamField,
    field("Why", reason, "The reviewer reads this."),
    h("button", { type: "submit", class: "primary" }, "Request promotion"),
    status,
    error,
  );
}

/** The list of pending promotion requests the user may review, with Approve and Reject. */
export function promotionReview(studio: Studio): HTMLElement {
  const headingId = uid("promotions");
  const list = h("div", { class: "stack" });
  const error = errorBox();
  const section = h(
    "section",
    { class: "card promotions", "aria-labelledby": headingId },
    h("h3", { id: headingId }, "Promotion requests"),
    list,
    error,
  );
  const load = async () => {
    try {
      const { items } = await studio.api.get<{ items: Promotion[] }>(
        withQuery("api/promotions", { status: "pending" }),
      );
      replace(
        list,
        items.length === 0
          ? h("p", { class: "muted" }, "No promotion requests are waiting.")
          : items.map(item),
      );
    } catch (failure) {
      // A server that lists only what the user may review answers 403 to others: nothing to show then.
      if (failure instanceof ApiError && failure.status === 403) section.hidden = true;
      else showError(error, failure);
    }
  };
  const item = (promotion: Promotion) => {
    const note = h("input", { type: "text", autocomplete: "off", maxlength: 2000 });
    const decided = statusLine();
    const decide = async (decision: "approve" | "reject") => {
      showError(error, null);
      const text = note.value.trim();
      if (decision === "reject" && text === "") {
        note.setAttribute("aria-invalid", "true");
        showError(error, "Say why you reject it: the requester reads it.");
        note.focus();
        return;
      }
      note.removeAttribute("aria-invalid");
      try {
        const result = await studio.api.post<Promotion | { promotion: Promotion }>(
          `api/promotions/${segment(promotion.id)}/${decision}`,
          decision === "reject" ? { reason: text } : text === "" ? {} : { note: text },
        );
        const decidedStatus = "promotion" in result ? result.promotion.status : result.status;
        decided.textContent = `${promotion.skillName}: ${decidedStatus}.`;
        studio.announce(decided.textContent);
        await load();
      } catch (failure) {
        showError(error, failure);
      }
    };
    const titleId = uid("promotion");
    return h(
      "article",
      { class: "promotion", "aria-labelledby": titleId },
      h("h4", { id: titleId }, promotion.skillName, " ", badge(promotion.status)),
      h(
        "p",
        {},
        `${scopeText(promotion.from)} → ${scopeText(promotion.to)} · asked by ${promotion.requestedBy} · ${when(promotion.createdAt)}`,
      ),
      h("p", {}, promotion.reason),
      h(
        "details",
        {},
        h("summary", {}, "Diff"),
        diffView(promotion.diff, `Changes promoted by ${promotion.skillName}`),
      ),
      field("Note", note, "Optional to approve; to reject, say why."),
      h(
        "div",
        { class: "actions" },
        h(
          "button",
          { type: "button", class: "primary", onclick: () => decide("approve") },
          "Approve promotion",
        ),
        h("button", { type: "button", onclick: () => decide("reject") }, "Reject promotion"),
      ),
      decided,
    );
  };
  void load();
  return section;
}
