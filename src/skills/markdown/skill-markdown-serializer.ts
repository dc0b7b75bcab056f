import type { MarkdownSkillBody, Skill } from "../../domain/skill.js";
import { joinFrontMatter } from "./front-matter.js";

/** What {@link serializeSkillMarkdown} writes: a skill's name, description, triggers and Markdown body. */
export type SerializableMarkdownSkill = Pick<Skill, "name" | "description" | "triggers"> & {
  markdown: MarkdownSkillBody;
};

/**
 * Writes a Markdown skill as a SKILL.md in the Agent Skills layout: `name`,
 * `description`, `license`, `compatibility`, `allowed-tools` (one
 * space-separated string) and `metadata`, then the body as stored. LLMos-Lite's
 * fields go under `metadata` so strict validators accept the file:
 * `metadata.category`, and the triggers as `metadata.keywords` (comma-separated).
 * Empty optional fields are left out.
 *
 * The output is faithful, not checked: a name or description that breaks
 * the standard is written as it is (check with `validateSkillMarkdown`, as
 * `kilo.skills.exportMarkdown` does). `parseSkillMarkdown` of the output gives
 * back an equal skill (resource contents aside, which a SKILL.md does not hold).
 *
 * @example
 * ```ts
 * const text = serializeSkillMarkdown(skill); // "---\nname: pdf-processing\n..."
 * ```
 */
export function serializeSkillMarkdown(skill: SerializableMarkdownSkill): string {
  const { markdown } = skill;
  const data: Record<string, unknown> = { name: skill.name, description: skill.description };
  if (markdown.license !== null) data.license = markdown.license;
  if (markdown.compatibility !== null) data.compatibility = markdown.compatibility;
  if (markdown.allowedTools.length > 0) data["allowed-tools"] = markdown.allowedTools.join(" ");
  const metadata: Record<string, string> = { ...markdown.metadata };
  if (markdown.category !== null) metadata.category = markdown.category;
  if (skill.triggers.length > 0) metadata.keywords = skill.triggers.join(", ");
  if (Object.keys(metadata).length > 0) data.metadata = metadata;
  return joinFrontMatter(data, markdown.body);
}
