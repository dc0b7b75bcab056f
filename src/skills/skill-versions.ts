import { createTwoFilesPatch } from "diff";
import type { Skill } from "../domain/skill.js";
import type { SkillSnapshot } from "../domain/skill-version.js";
import { serializeSkillMarkdown } from "./markdown/skill-markdown-serializer.js";

/**
 * Snapshots and diffs of skill versions (see `SkillVersion`).
 *
 * @module
 */

/** The skill's content: every field but `id`, `botId`, `scope`, `createdAt` and `updatedAt`, deep-copied. */
export function skillSnapshot(skill: Skill): SkillSnapshot {
  const {
    id: _id,
    botId: _botId,
    scope: _scope,
    createdAt: _createdAt,
    updatedAt: _updatedAt,
    ...content
  } = skill;
  return structuredClone(content);
}

function sortedKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortedKeys);
  if (value !== null && typeof value === "object" && !(value instanceof Date)) {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => [key, sortedKeys((value as Record<string, unknown>)[key])]),
    );
  }
  return value;
}

/**
 * The text a version's diff compares: a Markdown skill's SKILL.md (what
 * `serializeSkillMarkdown` writes), or a structured skill's content as
 * pretty JSON with sorted keys, so equal content always gives equal text.
 * Fields a SKILL.md does not hold (a Markdown skill's `status`, `examples`,
 * ...) are in the snapshot but not in the text.
 */
export function canonicalSkillText(snapshot: SkillSnapshot): string {
  if (snapshot.markdown !== undefined) {
    return serializeSkillMarkdown({
      name: snapshot.name,
      description: snapshot.description,
      triggers: snapshot.triggers,
      markdown: snapshot.markdown,
    });
  }
  return `${JSON.stringify(sortedKeys(snapshot), null, 2)}\n`;
}

const fileOf = (snapshot: SkillSnapshot): string =>
  snapshot.markdown !== undefined ? "SKILL.md" : "skill.json";

/**
 * The unified diff (jsdiff `createTwoFilesPatch`, three lines of context)
 * from `before`'s canonical text to `after`'s; from empty text when there is
 * no `before`. File headers name the file (`SKILL.md` or `skill.json`) and
 * carry each side's label. What versions and promotion requests both show.
 *
 * @example
 * ```ts
 * skillDiff({ label: "team:bakers version 3", snapshot: teamSkill }, { label: "user:alice version 5", snapshot: mine });
 * ```
 */
export function skillDiff(
  before: { label: string; snapshot: SkillSnapshot } | null,
  after: { label: string; snapshot: SkillSnapshot },
): string {
  return createTwoFilesPatch(
    before ? fileOf(before.snapshot) : fileOf(after.snapshot),
    fileOf(after.snapshot),
    before ? canonicalSkillText(before.snapshot) : "",
    canonicalSkillText(after.snapshot),
    before ? before.label : "(none)",
    after.label,
  );
}

/**
 * The diff a version shows: {@link skillDiff} from `previous` (or nothing)
 * to `next`, the headers naming the versions (`version 2`, `version 3`).
 */
export function skillVersionDiff(
  previous: { version: number; snapshot: SkillSnapshot } | null,
  next: { version: number; snapshot: SkillSnapshot },
): string {
  return skillDiff(previous ? { label: `version ${previous.version}`, snapshot: previous.snapshot } : null, {
    label: `version ${next.version}`,
    snapshot: next.snapshot,
  });
}
