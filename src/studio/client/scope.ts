// Skill scopes as the studio shows them. A skill from a server with scopes carries `scope`
// (`{ kind: "system" | "team" | "user" | "bot", id? }`); one from a server without them is the
// bot's own, so it counts as `bot`. Every view reads scopes through these functions only.

import type { Skill } from "./types.js";

/** The scope kinds, widest first, with the words the studio uses for them. */
export const SCOPE_KINDS: ReadonlyArray<readonly [kind: string, label: string]> = [
  ["system", "System"],
  ["team", "Team"],
  ["user", "User"],
  ["bot", "Bot"],
];

/** The skill's scope kind: its `scope.kind` when the server sends one, else `bot`. */
export function skillScope(skill: Pick<Skill, "scope">): string {
  const kind = skill.scope?.kind;
  return typeof kind === "string" && kind !== "" ? kind : "bot";
}

/** The skill's scope for people: `Team (bakers)`, `Bot`. */
export function scopeLabel(skill: Pick<Skill, "scope">): string {
  const kind = skillScope(skill);
  const label = SCOPE_KINDS.find(([name]) => name === kind)?.[1] ?? kind;
  const id = skill.scope?.id;
  return id && kind !== "bot" && kind !== "user" ? `${label} (${id})` : label;
}

/** Whether the studio user may edit the skill here: system skills are read-only for users. */
export function editable(skill: Pick<Skill, "scope">): boolean {
  return skillScope(skill) !== "system";
}
