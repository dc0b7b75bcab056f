/**
 * SKILL.md files: lenient parsing, faithful serialization and strict
 * validation against the Agent Skills standard, with LLMos-Lite's fields.
 *
 * @module
 */
export type { MarkdownSkillInput, ParsedSkillMarkdown } from "./skill-markdown-parser.js";
export { findResources, parseSkillMarkdown } from "./skill-markdown-parser.js";
export type {
  SkillMarkdownRule,
  SkillMarkdownSourceOptions,
  SkillMarkdownWarning,
} from "./skill-markdown-rules.js";
export {
  AGENT_SKILL_FIELDS,
  AGENT_SKILL_LIMITS,
  AGENT_SKILL_NAME_PATTERN,
  LLMOS_SKILL_FIELDS,
  SKILL_MARKDOWN_RULES,
  suggestSkillName,
  validateSkillMarkdown,
} from "./skill-markdown-rules.js";
export type { SerializableMarkdownSkill } from "./skill-markdown-serializer.js";
export { serializeSkillMarkdown } from "./skill-markdown-serializer.js";
export {
  SKILL_READ_MAX_CHARS,
  SKILL_READ_TOOL,
  skillReadToolDefinitions,
  skillReadTools,
} from "./skill-read-tool.js";
