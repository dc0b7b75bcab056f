import { z } from "zod";
import type { Skill } from "../../domain/skill.js";
import type { LlmToolDefinition, ToolCallBlock } from "../../ports/llm-provider.js";
import type { ToolContext, ToolOutcome, ToolProvider, ToolSet } from "../../ports/tool-provider.js";

/** The tool through which the model reads a Markdown skill's body or one of its files on demand. */
export const SKILL_READ_TOOL = "skill_read";

/** Most characters of a body or file one `skill_read` call returns; longer text is cut with a note. */
export const SKILL_READ_MAX_CHARS = 40_000;

const InputSchema = z.object({ skill: z.string().min(1), path: z.string().min(1).optional() }).strict();

// The tool list must stay byte-identical between turns (tools open every prompt), so the
// definition depends only on which Markdown skills exist; catalogs are cached, so the array recurs.
const definitionCache = new WeakMap<readonly Skill[], LlmToolDefinition[]>();

const markdownSkills = (skills: readonly Skill[]) => skills.filter((skill) => skill.markdown !== undefined);

/**
 * The `skill_read` tool definition for a bot's Markdown skills, or none when
 * it has no Markdown skills. Progressive disclosure: the catalog shows every
 * skill's name and description, the matched skill's body rides in the turn,
 * and the model reads any other skill's body, or a file a body refers to,
 * with this tool.
 */
export function skillReadToolDefinitions(skills: readonly Skill[]): LlmToolDefinition[] {
  let definitions = definitionCache.get(skills);
  if (!definitions) {
    const names = markdownSkills(skills).map((skill) => skill.name);
    definitions =
      names.length === 0
        ? []
        : [
            {
              name: SKILL_READ_TOOL,
              description:
                "Read a skill's full instructions, or one of the files its instructions refer to (`path`). " +
                "Use it when a listed skill fits the request but its instructions are not in the context.",
              inputSchema: {
                type: "object",
                properties: {
                  skill: { type: "string", enum: names, description: "The skill's name" },
                  path: {
                    type: "string",
                    description:
                      "A file the skill refers to, e.g. references/api.md; omit for the instructions",
                  },
                },
                required: ["skill"],
                additionalProperties: false,
              },
            },
          ];
    definitionCache.set(skills, definitions);
  }
  return definitions;
}

function clip(text: string): string {
  if (text.length <= SKILL_READ_MAX_CHARS) return text;
  return `${text.slice(0, SKILL_READ_MAX_CHARS)}\n[… cut: ${text.length - SKILL_READ_MAX_CHARS} more characters]`;
}

/** The tool provider behind {@link SKILL_READ_TOOL}; reads only the bot's own active skills. */
export function skillReadTools(): ToolProvider {
  return {
    name: "skill-read",
    tools(context: ToolContext): ToolSet {
      const skills = markdownSkills(context.skills);
      return {
        definitions: skillReadToolDefinitions(context.skills),
        async execute(call: ToolCallBlock): Promise<ToolOutcome> {
          const parsed = InputSchema.safeParse(call.input);
          if (!parsed.success) {
            return {
              content: `Invalid input: ${parsed.error.issues.map((i) => i.message).join("; ")}`,
              isError: true,
            };
          }
          const wanted = parsed.data.skill.trim().toLowerCase();
          const skill = skills.find((candidate) => candidate.name.toLowerCase() === wanted);
          if (!skill?.markdown) {
            return {
              content: `No Markdown skill is named '${parsed.data.skill}'. Skills: ${skills.map((s) => s.name).join(", ")}`,
              isError: true,
            };
          }
          const path = parsed.data.path;
          if (path === undefined) return { content: clip(skill.markdown.body), isError: false };
          const resource = skill.markdown.resources.find((candidate) => candidate.path === path);
          if (!resource) {
            const known = skill.markdown.resources.map((r) => r.path);
            return {
              content: `Skill '${skill.name}' refers to no file '${path}'. Files: ${known.join(", ") || "none"}`,
              isError: true,
            };
          }
          if (resource.content === undefined) {
            return {
              content: `The file '${path}' of skill '${skill.name}' was not provided to kilo.`,
              isError: true,
            };
          }
          return { content: clip(resource.content), isError: false };
        },
      };
    },
  };
}
