// Skills: browse the bot's skills by scope and status, search them, edit one (Markdown or
// structured) with the server's validation messages, read its history with diffs, roll back, and
// (when the server has promotions) request and review promotions.

import { ApiError, segment, withQuery } from "../api.js";
import { errorBox, field, h, replace, select, showError, statusLine, table, uid } from "../dom.js";
import { when } from "../format.js";
import { canRequestPromotion, canReviewPromotions, promotionForm, promotionReview } from "../promotions.js";
import { editable, SCOPE_KINDS, scopeLabel, skillScope } from "../scope.js";
import type { Studio } from "../studio.js";
import type { DataField, Page, Skill, SkillVersion } from "../types.js";
import { badge, diffView, tabs } from "../widgets.js";

/** Filters kept while the page is open, so coming back to the panel finds them as they were. */
const filters = { query: "", scope: "", status: "" };

const lines = (text: string) =>
  text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "");

function matches(skill: Skill, query: string): boolean {
  const haystack = [skill.name, skill.description, ...skill.triggers, ...skill.examples]
    .join("\n")
    .toLowerCase();
  return haystack.includes(query);
}

/**
 * The server's validation message as one line per problem. kilo's messages read
 * `Invalid skill update: name: ...; triggers.0: ...`; the field each names is returned too.
 */
export function validationProblems(message: string): Array<{ field: string | null; text: string }> {
  const body = message.replace(/^Invalid [^:]+:\s*/, "");
  if (body === message) return [{ field: null, text: message }];
  return body.split(/;\s+/).map((part) => {
    const match = /^([A-Za-z]+)[\w.]*:\s*(.*)$/.exec(part);
    return match ? { field: match[1] ?? null, text: part } : { field: null, text: part };
  });
}

/** The edit form of one skill. `saved` is told what happened once the server stored the change. */
function editor(studio: Studio, skill: Skill, saved: (message: string) => void): HTMLElement {
  const markdown = skill.markdown !== undefined;
  const readOnly = !editable(skill);
  const name = h("input", { type: "text", value: skill.name, required: true, maxlength: 100 });
  const description = h("textarea", { rows: 3, value: skill.description });
  const status = select(
    [
      ["active", "Active"],
      ["draft", "Draft"],
      ["disabled", "Disabled"],
    ],
    skill.status,
  );
  const triggers = h("textarea", { rows: 3, value: skill.triggers.join("\n") });
  const examples = h("textarea", { rows: 3, value: skill.examples.join("\n") });
  const body = h("textarea", {
    rows: 12,
    class: "code",
    value: skill.markdown?.body ?? "",
    spellcheck: false,
  });
  const category = h("input", { type: "text", value: skill.markdown?.category ?? "" });
  const instructions = h("textarea", { rows: 8, value: skill.instructions });
  const dataFields = h("textarea", {
    rows: 6,
    class: "code",
    value: JSON.stringify(skill.dataFields, null, 2),
    spellcheck: false,
  });
  /** The controls by the field name the server's validation messages use. */
  const controls: Record<string, HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement> = {
    name,
    description,
    status,
    triggers,
    examples,
    markdown: body,
    instructions,
    dataFields,
  };
  for (const control of [...Object.values(controls), category]) control.disabled = readOnly;
  const error = errorBox();

  const flag = (names: Array<string | null>) => {
    for (const [key, control] of Object.entries(controls)) {
      if (names.includes(key)) {
        control.setAttribute("aria-invalid", "true");
        control.setAttribute("aria-errormessage", error.id);
      } else {
        control.removeAttribute("aria-invalid");
        control.removeAttribute("aria-errormessage");
      }
    }
    const first = Object.entries(controls).find(([key]) => names.includes(key));
    first?.[1].focus();
  };
  error.id = uid("skill-error");

  const problems = (list: Array<{ field: string | null; text: string }>) => {
    error.hidden = false;
    replace(
      error,
      h("p", {}, "The skill was not saved:"),
      h(
        "ul",
        {},
        list.map((problem) => h("li", {}, problem.text)),
      ),
    );
    flag(list.map((problem) => problem.field));
  };

  const submit = async (event: Event) => {
    event.preventDefault();
    showError(error, null);
    const local: Array<{ field: string | null; text: string }> = [];
    if (name.value.trim() === "") local.push({ field: "name", text: "name: must not be empty" });
    let fields: DataField[] = [];
    if (!markdown) {
      try {
        const parsed = JSON.parse(dataFields.value.trim() === "" ? "[]" : dataFields.value) as unknown;
        if (!Array.isArray(parsed)) throw new Error("not a list");
        fields = parsed as DataField[];
      } catch {
        local.push({ field: "dataFields", text: "dataFields: must be a JSON list of fields, e.g. []" });
      }
    }
    if (local.length > 0) {
      problems(local);
      return;
    }
    const patch: Record<string, unknown> = {
      name: name.value.trim(),
      description: description.value,
      status: status.value,
      triggers: lines(triggers.value),
      examples: lines(examples.value),
    };
    if (markdown) {
      patch.markdown = { ...skill.markdown, body: body.value, category: category.value.trim() || null };
    } else {
      patch.instructions = instructions.value;
      patch.dataFields = fields;
    }
    try {
      const updated = await studio.api.patch<Skill>(
        withQuery(`api/skills/${segment(skill.id)}`, { botId: studio.bot.id }),
        patch,
      );
      flag([]);
      saved(`Saved “${updated.name}”.`);
    } catch (failure) {
      if (failure instanceof ApiError && failure.code === "VALIDATION_FAILED")
        problems(validationProblems(failure.message));
      else showError(error, failure);
    }
  };

  return h(
    "form",
    { class: "stack skill-form", onsubmit: submit, novalidate: true },
    readOnly ? h("p", { class: "notice" }, "System skills are read-only here.") : null,
    field("Name", name),
    field("Description", description, "What the skill does and when to use it."),
    field("Status", status, "Only active skills are matched."),
    field("Triggers", triggers, "One keyword or phrase per line."),
    field("Examples", examples, "One example request per line."),
    markdown
      ? [field("Body (Markdown)", body), field("Category", category)]
      : [
          field("Instructions", instructions),
          field(
            "Data fields (JSON)",
            dataFields,
            "A list of { name, type, description, required, options }.",
          ),
        ],
    readOnly
      ? null
      : h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Save skill")),
    error,
  );
}

/** The History tab: every version with its author, reason and diff, and a rollback to each older one. */
function versions(studio: Studio, skill: Skill, changed: (message: string) => void): HTMLElement {
  const list = h("ol", { class: "versions", reversed: true });
  const error = errorBox();
  const base = `api/skills/${segment(skill.id)}`;
  const load = async () => {
    try {
      const page = await studio.api.get<Page<SkillVersion>>(
        withQuery(`${base}/history`, { botId: studio.bot.id, limit: 100 }),
      );
      const latest = page.items[0]?.version ?? 0;
      replace(
        list,
        page.items.length === 0
          ? h("li", { class: "muted" }, "No versions recorded.")
          : page.items.map((version, index) => {
              const rollback =
                version.version === latest || !editable(skill)
                  ? null
                  : h(
                      "button",
                      {
                        type: "button",
                        onclick: async () => {
                          showError(error, null);
                          try {
                            await studio.api.post<Skill>(
                              withQuery(`${base}/rollback`, { botId: studio.bot.id }),
                              {
                                version: version.version,
                              },
                            );
                            changed(
                              `Rolled back to version ${version.version}: its content is now version ${latest + 1}.`,
                            );
                          } catch (failure) {
                            showError(error, failure);
                          }
                        },
                      },
                      `Roll back to version ${version.version}`,
                    );
              return h(
                "li",
                { class: "version" },
                h("h4", {}, `Version ${version.version}`, version.version === latest ? " (current)" : ""),
                h(
                  "p",
                  { class: "muted" },
                  `${when(version.createdAt)} · by ${version.author}${version.reason ? ` · ${version.reason}` : ""}`,
                ),
                h(
                  "details",
                  { open: index === 0 },
                  h("summary", {}, `Changes in version ${version.version}`),
                  diffView(version.diff, `Changes in version ${version.version}`),
                ),
                rollback,
              );
            }),
      );
    } catch (failure) {
      showError(error, failure);
    }
  };
  void load();
  return h("div", { class: "stack" }, error, list);
}

/** The skills panel. `path[0]` opens that skill. */
export function skillsView(studio: Studio, path: string[]): HTMLElement {
  const { bot } = studio;
  const heading = h("h2", { id: uid("skills"), tabindex: -1 }, "Skills");
  const search = h("input", { type: "search", value: filters.query, autocomplete: "off" });
  const scope = select(
    [["", "All scopes"], ...SCOPE_KINDS.map(([kind, label]): [string, string] => [kind, label])],
    filters.scope,
  );
  const status = select(
    [
      ["", "All statuses"],
      ["active", "Active"],
      ["draft", "Draft"],
      ["disabled", "Disabled"],
    ],
    filters.status,
  );
  const shown = statusLine();
  const listBox = h("div", { class: "skill-list" });
  const detail = h(
    "div",
    { class: "skill-detail" },
    h("p", { class: "muted" }, "Choose a skill to read and edit it."),
  );
  const error = errorBox();
  let skills: Skill[] = [];
  let openId: string | null = path[0] ?? null;
  /** How to show the open skill after the next load: the tab it was on, and what just happened. */
  let reopen: { tab?: number; message?: string } = {};
  const changedOn = (tab: number) => (message: string) => {
    reopen = { tab, message };
    void load();
  };

  const renderList = () => {
    filters.query = search.value;
    filters.scope = scope.value;
    filters.status = status.value;
    const query = search.value.trim().toLowerCase();
    const visible = skills.filter(
      (skill) =>
        (scope.value === "" || skillScope(skill) === scope.value) &&
        (status.value === "" || skill.status === status.value) &&
        (query === "" || matches(skill, query)),
    );
    shown.textContent = `${visible.length} of ${skills.length} skill${skills.length === 1 ? "" : "s"}`;
    replace(
      listBox,
      visible.length === 0
        ? h(
            "p",
            { class: "muted" },
            skills.length === 0 ? "This bot has no skills yet." : "No skill matches.",
          )
        : table(
            `Skills of ${bot.name}`,
            ["Name", "Scope", "Kind", "Status", "Updated"],
            visible.map((skill) => [
              h(
                "button",
                {
                  type: "button",
                  class: "link",
                  "aria-current": skill.id === openId ? "true" : null,
                  onclick: () => open(skill.id, true),
                },
                skill.name,
              ),
              scopeLabel(skill),
              skill.markdown ? "Markdown" : "Structured",
              badge(skill.status),
              when(skill.updatedAt),
            ]),
          ),
    );
  };

  const load = async () => {
    try {
      skills = (await studio.api.get<{ items: Skill[] }>(`api/bots/${segment(bot.id)}/skills`)).items;
      renderList();
      if (openId) open(openId, false, reopen);
      reopen = {};
    } catch (failure) {
      showError(error, failure);
    }
  };

  function open(skillId: string, focus: boolean, shown: { tab?: number; message?: string } = {}): void {
    const skill = skills.find((candidate) => candidate.id === skillId);
    if (!skill) {
      replace(detail, h("p", { class: "muted" }, "That skill is not one of this bot's."));
      return;
    }
    openId = skill.id;
    rememberOpen(skill.id);
    const title = h("h3", { tabindex: -1 }, skill.name);
    const entries = [
      { label: "Edit", render: () => editor(studio, skill, changedOn(0)) },
      { label: "History", render: () => versions(studio, skill, changedOn(1)) },
    ];
    if (canRequestPromotion(studio))
      entries.push({ label: "Promotion", render: () => promotionForm(studio, skill) });
    replace(
      detail,
      title,
      h(
        "p",
        { class: "muted" },
        `${skill.markdown ? "Markdown" : "Structured"} skill · ${scopeLabel(skill)} scope · `,
        badge(skill.status),
      ),
      shown.message ? h("p", { class: "status", role: "status" }, shown.message) : null,
      tabs(`${skill.name}: views`, entries, shown.tab ?? 0),
    );
    if (shown.message) studio.announce(shown.message);
    renderList();
    if (focus) title.focus();
  }

  search.addEventListener("input", renderList);
  scope.addEventListener("change", renderList);
  status.addEventListener("change", renderList);
  void load();

  return h(
    "section",
    { class: "view skills", "aria-labelledby": heading.id },
    heading,
    h(
      "div",
      { class: "toolbar", role: "search", "aria-label": "Filter skills" },
      field("Search", search),
      field("Scope", scope),
      field("Status", status),
    ),
    shown,
    error,
    h("div", { class: "split" }, listBox, detail),
    canReviewPromotions(studio) ? promotionReview(studio) : null,
  );
}

/** Keeps the open skill in the address without a navigation (no hashchange, no re-render). */
function rememberOpen(skillId: string): void {
  history.replaceState(null, "", `#/skills/${encodeURIComponent(skillId)}`);
}
