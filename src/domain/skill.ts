import { z } from "zod";
import { IdSchema, MetadataSchema } from "./common.js";
import { SkillScopeSchema } from "./scope.js";

/** What kind of work a turn is; the gateway routes each to a model and a thinking budget. */
export const TASK_TYPES = [
  "simple_qa",
  "skill_execution",
  "skill_generation",
  "complex_reasoning",
  "data_analysis",
  "doc_extraction",
] as const;

/** A task type; see {@link TASK_TYPES}. */
export const TaskTypeSchema = z.enum(TASK_TYPES);
/** A task type; see {@link TASK_TYPES}. */
export type TaskType = z.infer<typeof TaskTypeSchema>;

/** A snake_case identifier used for field and tool names. */
const FieldNameSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(
    /^[a-z][a-z0-9_]*$/,
    "must be snake_case: lowercase letters, digits and '_', starting with a letter",
  );

/** Types a skill data field can hold. */
export const FIELD_TYPES = ["string", "number", "integer", "boolean", "date", "datetime", "enum"] as const;

/** One field of a skill's structured data, e.g. an order's `customer`. */
export const SkillDataFieldSchema = z
  .object({
    name: FieldNameSchema,
    type: z.enum(FIELD_TYPES),
    description: z.string().max(500).default(""),
    required: z.boolean().default(false),
    /** Allowed values, for `enum` fields (required there, refused elsewhere). */
    options: z.array(z.string().min(1).max(100)).min(1).max(100).optional(),
  })
  .refine((field) => (field.type === "enum") === (field.options !== undefined), {
    message: "enum fields need `options`, and only enum fields may have them",
    path: ["options"],
  });

/** One field of a skill's structured data. */
export type SkillDataField = z.infer<typeof SkillDataFieldSchema>;

/** Lifecycle of a skill: only `active` skills are matched. */
export const SkillStatusSchema = z.enum(["active", "draft", "disabled"]);
/** Lifecycle of a skill. */
export type SkillStatus = z.infer<typeof SkillStatusSchema>;

const phrase = z.string().trim().min(1).max(200);

/** Most characters of a structured skill's description. */
export const STRUCTURED_DESCRIPTION_MAX = 1024;
/**
 * Most characters of a Markdown skill's description. The Agent Skills standard
 * allows 1,024; real files run over it (a lenient load keeps them, with a
 * warning), so kilo stores up to this many and refuses more only on export.
 */
export const MARKDOWN_DESCRIPTION_MAX = 4096;

/**
 * A file a Markdown skill's body refers to (`references/api.md`,
 * `scripts/check.py`): a path relative to the skill's folder, and its text
 * when the host supplied it. The composer can offer it on demand.
 */
export const MarkdownSkillResourceSchema = z
  .object({
    path: z
      .string()
      .min(1)
      .max(1000)
      .refine((path) => !path.startsWith("/") && !path.split("/").includes(".."), {
        message: "must be a path relative to the skill's folder, without '..'",
      }),
    content: z.string().max(500_000).optional(),
  })
  .strict();

/** A file a Markdown skill's body refers to. */
export type MarkdownSkillResource = z.infer<typeof MarkdownSkillResourceSchema>;

/**
 * The Markdown body of a skill: a SKILL.md's Markdown and the front-matter
 * fields beyond `name` and `description` (which are the skill's own), as
 * the Agent Skills standard and LLMos-Lite define them. The front matter's
 * `keywords` are the skill's `triggers`.
 */
export const MarkdownSkillBodySchema = z
  .object({
    /** The Markdown after the front matter, as written. */
    body: z.string().max(500_000),
    /** `license`: a license name or a reference to a bundled license file. */
    license: z.string().max(2000).nullable().default(null),
    /** `compatibility`: environment requirements (the standard allows 500 characters). */
    compatibility: z.string().max(2000).nullable().default(null),
    /** `allowed-tools`: tools the skill may use without asking (experimental in the standard). */
    allowedTools: z.array(z.string().min(1).max(500)).max(200).default([]),
    /** `metadata`: the standard's free string map (LLMos-Lite's `category` and `keywords` excluded). */
    metadata: z.record(z.string().min(1).max(200), z.string().max(10_000)).default({}),
    /** LLMos-Lite's `category` (exported as `metadata.category`). */
    category: z.string().max(200).nullable().default(null),
    /** Files the body refers to, in order of first mention. */
    resources: z.array(MarkdownSkillResourceSchema).max(500).default([]),
  })
  .strict();

/** The Markdown body of a skill. */
export type MarkdownSkillBody = z.infer<typeof MarkdownSkillBodySchema>;
/** The Markdown body of a skill as input (defaults filled in). */
export type MarkdownSkillBodyInput = z.input<typeof MarkdownSkillBodySchema>;

/** Fields shared by a skill and its create input. */
const skillBody = {
  name: z.string().trim().min(1).max(100),
  /** At most {@link STRUCTURED_DESCRIPTION_MAX} characters, or {@link MARKDOWN_DESCRIPTION_MAX} for a Markdown skill. */
  description: z.string().max(MARKDOWN_DESCRIPTION_MAX).default(""),
  /** What the bot should do when this skill handles a turn (structured skills; empty for Markdown ones). */
  instructions: z.string().max(20_000).default(""),
  /** Keywords and phrases that trigger the skill on the fast path ("new order", "orders"). */
  triggers: z.array(phrase).max(200).default([]),
  /** Example utterances; the fast path indexes them beside the triggers. */
  examples: z.array(z.string().trim().min(1).max(500)).max(1000).default([]),
  /** Structured data the skill stores; a non-empty list gives the skill data tools. */
  dataFields: z.array(SkillDataFieldSchema).max(50).default([]),
  /** Names of external tools (integrations) the skill needs. */
  requiredIntegrations: z.array(z.string().min(1).max(100)).max(20).default([]),
  taskType: TaskTypeSchema.default("skill_execution"),
  status: SkillStatusSchema.default("active"),
  metadata: MetadataSchema.default({}),
  /**
   * Present on a Markdown skill (one loaded from a SKILL.md), absent on a
   * structured one. A Markdown skill's instructions are `markdown.body`, so
   * its `instructions` and `dataFields` stay empty.
   */
  markdown: MarkdownSkillBodySchema.optional(),
};

/** The fields {@link skillShapeProblems} looks at. */
export type SkillShapeFields = {
  description?: string | undefined;
  instructions?: string | undefined;
  dataFields?: readonly unknown[] | undefined;
  markdown?: MarkdownSkillBody | undefined;
};

/**
 * What makes a skill's two bodies consistent: a structured skill's
 * description fits {@link STRUCTURED_DESCRIPTION_MAX}; a Markdown skill keeps
 * no `instructions` or `dataFields` beside its body. Returns one message per
 * problem, keyed by field.
 */
export function skillShapeProblems(skill: SkillShapeFields): Array<{ path: string; message: string }> {
  const problems: Array<{ path: string; message: string }> = [];
  if (skill.markdown === undefined) {
    if ((skill.description ?? "").length > STRUCTURED_DESCRIPTION_MAX) {
      problems.push({
        path: "description",
        message: `must be at most ${STRUCTURED_DESCRIPTION_MAX} characters (${MARKDOWN_DESCRIPTION_MAX} for a Markdown skill)`,
      });
    }
    return problems;
  }
  if ((skill.instructions ?? "").length > 0) {
    problems.push({
      path: "instructions",
      message: "must be empty on a Markdown skill: its instructions are `markdown.body`",
    });
  }
  if ((skill.dataFields ?? []).length > 0) {
    problems.push({ path: "dataFields", message: "must be empty on a Markdown skill" });
  }
  return problems;
}

function checkShape(skill: SkillShapeFields, context: z.RefinementCtx): void {
  for (const problem of skillShapeProblems(skill)) {
    context.addIssue({ code: "custom", path: [problem.path], message: problem.message });
  }
}

/** A capability of a bot: when to use it, what to do, and the data it keeps. */
export const SkillSchema = z.object({
  id: IdSchema,
  /** The bot whose own skill this is; `null` for a skill of a shared scope (system, team, user). */
  botId: IdSchema.nullable(),
  /** Where the skill lives: a bot's own skills, its owner's, its team's or the system's (see `SkillScope`). */
  scope: SkillScopeSchema,
  ...skillBody,
  createdAt: z.date(),
  updatedAt: z.date(),
});

/**
 * A capability of a bot. One concept with two bodies: a structured skill
 * (`instructions`, `dataFields`) or a Markdown skill (`markdown`, see
 * {@link isMarkdownSkill}); both are matched by their name, description and
 * triggers. A skill lives in a scope (`scope`): a bot's own skill has
 * `botId` set to that bot; a system, team or user skill has `botId: null`
 * and is offered to every bot that sees its scope.
 */
export type Skill = z.infer<typeof SkillSchema>;

/** A skill with a Markdown body. */
export type MarkdownSkill = Skill & { markdown: MarkdownSkillBody };

/** Whether the skill has a Markdown body (it was loaded from a SKILL.md) rather than a structured one. */
export function isMarkdownSkill(skill: Skill): skill is MarkdownSkill {
  return skill.markdown !== undefined;
}

function uniqueFieldNames(fields: { name: string }[]): boolean {
  return new Set(fields.map((field) => field.name)).size === fields.length;
}

/** Input of `kilo.skills.create`. */
export const CreateSkillInputSchema = z
  .object({ id: IdSchema.optional(), ...skillBody })
  .strict()
  .refine((skill) => uniqueFieldNames(skill.dataFields), {
    message: "data field names must be unique",
    path: ["dataFields"],
  })
  .superRefine(checkShape);

/** Input of `kilo.skills.create`. */
export type CreateSkillInput = z.input<typeof CreateSkillInputSchema>;

/**
 * Input of `kilo.skills.update`: every field optional. The skill it yields
 * is checked again as a whole (see {@link skillShapeProblems}).
 */
export const UpdateSkillInputSchema = z
  .object({
    name: skillBody.name,
    description: z.string().max(MARKDOWN_DESCRIPTION_MAX),
    instructions: z.string().max(20_000),
    triggers: z.array(phrase).max(200),
    examples: z.array(z.string().trim().min(1).max(500)).max(1000),
    dataFields: z.array(SkillDataFieldSchema).max(50),
    requiredIntegrations: z.array(z.string().min(1).max(100)).max(20),
    taskType: TaskTypeSchema,
    status: SkillStatusSchema,
    metadata: MetadataSchema,
    markdown: MarkdownSkillBodySchema,
  })
  .partial()
  .strict()
  .refine((patch) => patch.dataFields === undefined || uniqueFieldNames(patch.dataFields), {
    message: "data field names must be unique",
    path: ["dataFields"],
  });

/** Input of `kilo.skills.update`. */
export type UpdateSkillInput = z.input<typeof UpdateSkillInputSchema>;

/**
 * One stored item of a skill's data, e.g. one order. Records are kept per
 * bot, also for a skill of a shared scope: two bots of a team using the
 * team's Order Tracker each keep their own orders.
 */
export const SkillRecordSchema = z.object({
  id: IdSchema,
  botId: IdSchema,
  skillId: IdSchema,
  data: z.record(z.string(), z.unknown()),
  createdAt: z.date(),
  updatedAt: z.date(),
});

/** One stored item of a skill's data. */
export type SkillRecord = z.infer<typeof SkillRecordSchema>;
