import { z } from "zod";
import { IdSchema, MetadataSchema } from "./common.js";

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

/** Fields shared by a skill and its create input. */
const skillBody = {
  name: z.string().trim().min(1).max(100),
  description: z.string().max(1024).default(""),
  /** What the bot should do when this skill handles a turn. */
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
};

/** A capability of a bot: when to use it, what to do, and the data it keeps. */
export const SkillSchema = z.object({
  id: IdSchema,
  botId: IdSchema,
  ...skillBody,
  createdAt: z.date(),
  updatedAt: z.date(),
});

/** A capability of a bot. */
export type Skill = z.infer<typeof SkillSchema>;

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
  });

/** Input of `kilo.skills.create`. */
export type CreateSkillInput = z.input<typeof CreateSkillInputSchema>;

/** Input of `kilo.skills.update`: every field optional. */
export const UpdateSkillInputSchema = z
  .object({
    name: skillBody.name,
    description: z.string().max(1024),
    instructions: z.string().max(20_000),
    triggers: z.array(phrase).max(200),
    examples: z.array(z.string().trim().min(1).max(500)).max(1000),
    dataFields: z.array(SkillDataFieldSchema).max(50),
    requiredIntegrations: z.array(z.string().min(1).max(100)).max(20),
    taskType: TaskTypeSchema,
    status: SkillStatusSchema,
    metadata: MetadataSchema,
  })
  .partial()
  .strict()
  .refine((patch) => patch.dataFields === undefined || uniqueFieldNames(patch.dataFields), {
    message: "data field names must be unique",
    path: ["dataFields"],
  });

/** Input of `kilo.skills.update`. */
export type UpdateSkillInput = z.input<typeof UpdateSkillInputSchema>;

/** One stored item of a skill's data, e.g. one order. */
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
