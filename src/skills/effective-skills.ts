import { SCOPE_RANK, type SkillScope } from "../domain/scope.js";
import type { Skill } from "../domain/skill.js";

/**
 * Which skills a bot sees when its scopes (system, team, user, bot) have
 * skills of the same name: the most specific scope wins.
 *
 * @module
 */

/** A skill named by id, name and scope: what an effective skill shadows. */
export interface SkillRef {
  id: string;
  name: string;
  scope: SkillScope;
}

/**
 * A skill a bot sees (the winner of its name), with the skills of wider
 * scopes it hides: a bot's own "Orders" shadows its team's "Orders".
 */
export interface EffectiveSkill {
  /** The skill; `skill.scope` says which scope it came from. */
  skill: Skill;
  /** Skills of the same name (case-insensitive) in wider scopes, most specific first; empty when none. */
  shadows: SkillRef[];
}

/**
 * Resolves name clashes among the skills of a bot's scopes: per name
 * (case-insensitive) the skill of the most specific scope wins (bot over
 * user over team over system) and lists the ones it shadows. The winners
 * keep the order they were given in (widest scope first, each scope's
 * oldest first), so the catalog stays stable from turn to turn.
 *
 * @example
 * ```ts
 * const effective = resolveEffectiveSkills([...systemSkills, ...teamSkills, ...userSkills, ...botSkills]);
 * effective.map(({ skill, shadows }) => [skill.name, skill.scope.kind, shadows.length]);
 * ```
 */
export function resolveEffectiveSkills(skills: readonly Skill[]): EffectiveSkill[] {
  const byName = new Map<string, Skill[]>();
  for (const skill of skills) {
    const name = skill.name.trim().toLowerCase();
    const same = byName.get(name);
    if (same) same.push(skill);
    else byName.set(name, [skill]);
  }
  const winners = new Map<Skill, SkillRef[]>();
  for (const same of byName.values()) {
    // Stable: between equally specific skills (only possible across two bots' scopes), the first stays.
    const ranked = [...same].sort((a, b) => rank(b) - rank(a));
    const [winner, ...shadowed] = ranked as [Skill, ...Skill[]];
    winners.set(
      winner,
      shadowed.map((skill) => ({ id: skill.id, name: skill.name, scope: skill.scope })),
    );
  }
  return skills.flatMap((skill) => {
    const shadows = winners.get(skill);
    return shadows ? [{ skill, shadows }] : [];
  });
}

const rank = (skill: Skill): number => SCOPE_RANK[skill.scope?.kind ?? "bot"];
