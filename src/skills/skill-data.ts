import { z } from "zod";
import type { Skill, SkillDataField, SkillRecord } from "../domain/skill.js";
import { KiloError } from "../errors.js";
import type { Clock, IdGenerator } from "../ports/clock.js";
import type { LlmToolDefinition, ToolCallBlock } from "../ports/llm-provider.js";
import type { SkillRecordFilter, Storage } from "../ports/storage.js";
import type { ToolContext, ToolOutcome, ToolProvider, ToolSet } from "../ports/tool-provider.js";

const MAX_TEXT = 10_000;

function valueSchema(field: SkillDataField): z.ZodType {
  const describe = (schema: z.ZodType, extra = "") =>
    schema.describe([field.description, extra].filter(Boolean).join(" ") || field.name);
  switch (field.type) {
    case "string":
      return describe(z.string().min(1).max(MAX_TEXT));
    case "number":
      return describe(z.number());
    case "integer":
      return describe(z.number().int());
    case "boolean":
      return describe(z.boolean());
    // Users say "Saturday" as often as "2026-11-28": keep their words when no exact date is known.
    case "date":
      return describe(z.string().min(1).max(100), "(ISO date YYYY-MM-DD when known, else the user's words)");
    case "datetime":
      return describe(z.string().min(1).max(100), "(ISO 8601 date-time when known, else the user's words)");
    case "enum":
      return describe(z.enum(field.options as [string, ...string[]]));
  }
}

/** The zod schema of a skill's record data, derived from its data fields. */
export function recordSchemaFor(skill: Pick<Skill, "dataFields">): z.ZodObject {
  const shape: Record<string, z.ZodType> = {};
  for (const field of skill.dataFields) {
    const schema = valueSchema(field);
    shape[field.name] = field.required ? schema : schema.optional();
  }
  return z.object(shape).strict();
}

function filterSchemaFor(skill: Pick<Skill, "dataFields">): z.ZodObject {
  const equals: Record<string, z.ZodType> = {};
  const contains: Record<string, z.ZodType> = {};
  for (const field of skill.dataFields) {
    equals[field.name] = z.union([z.string(), z.number(), z.boolean()]).optional();
    if (field.type !== "number" && field.type !== "integer" && field.type !== "boolean") {
      contains[field.name] = z.string().min(1).max(200).optional();
    }
  }
  return z
    .object({
      equals: z.object(equals).strict().optional().describe("Fields that must equal these values"),
      contains: z.object(contains).strict().optional().describe("Text fields that must contain these words"),
      limit: z.number().int().min(1).max(100).optional().describe("Most records to return (default 20)"),
    })
    .strict();
}

/** A tool-name-safe slug of a skill name: `Order Tracker` -> `order_tracker`. */
export function skillSlug(skill: Pick<Skill, "name" | "id">): string {
  const slug = skill.name
    .toLowerCase()
    .normalize("NFKD")
    .replace(/[^a-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "")
    .slice(0, 40);
  return slug.length > 0 ? slug : skill.id.replace(/[^a-zA-Z0-9_-]/g, "_").slice(0, 40);
}

function jsonSchema(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io: "input" }) as Record<string, unknown>;
  return rest;
}

/** Names of the four data tools, shared by every skill with data. */
export const RECORD_TOOL_NAMES = ["record_create", "record_query", "record_update", "record_delete"] as const;

/**
 * The JSON schema of one skill's record data, derived from its fields. The
 * composer shows it to the model for the matched skill; the tools validate
 * against the same fields.
 */
export function recordJsonSchema(skill: Pick<Skill, "dataFields">): Record<string, unknown> {
  let schema = schemaCache.get(skill);
  if (!schema) {
    schema = jsonSchema(recordSchemaFor(skill));
    schemaCache.set(skill, schema);
  }
  return schema;
}

const FIELD_TYPE_WORDS: Record<SkillDataField["type"], string> = {
  string: "text",
  number: "number",
  integer: "whole number",
  boolean: "true/false",
  date: "date",
  datetime: "date-time",
  enum: "one of",
};

// Users say "Saturday" as often as "2026-11-28": the tools keep their words when no exact date is known.
const FIELD_HINTS: Partial<Record<SkillDataField["type"], string>> = {
  date: "YYYY-MM-DD if known, else the user's words",
  datetime: "ISO 8601 when known, else the user's words",
};

/**
 * A skill's record fields as compact prompt text, one line per field:
 * `name (type, required): description`. It says what the JSON schema says
 * about each field (the tools validate against that schema) in about a third
 * of the tokens, which matters because it rides in every turn of the skill.
 *
 * @example
 * ```ts
 * describeRecordFields(orders);
 * // customer (text, required): Who ordered
 * // pickup (date): YYYY-MM-DD if known, else the user's words
 * // status (one of: new, baked, collected)
 * ```
 */
export function describeRecordFields(skill: Pick<Skill, "dataFields">): string {
  return skill.dataFields
    .map((field) => {
      const type =
        field.type === "enum" ? `one of: ${(field.options ?? []).join(", ")}` : FIELD_TYPE_WORDS[field.type];
      const head = `${field.name} (${type}${field.required ? ", required" : ""})`;
      const notes = [field.description, FIELD_HINTS[field.type]].filter(Boolean).join(". ");
      return notes ? `${head}: ${notes}` : head;
    })
    .join("\n");
}

// Skill objects come from the cached catalog, so a derived schema is computed once per skill version.
const schemaCache = new WeakMap<object, Record<string, unknown>>();

// Deriving JSON schemas costs more than the rest of a turn; catalogs are cached, so the same array recurs.
const definitionCache = new WeakMap<readonly Skill[], LlmToolDefinition[]>();

/**
 * The four data tools for a bot's skills with data: create, query, update
 * and delete records of a named skill. The list depends only on which skills
 * have data, so it stays byte-identical from turn to turn (tools open every
 * prompt, and a changing tool list would defeat provider prompt caches).
 */
export function skillDataToolDefinitions(skills: readonly Skill[]): LlmToolDefinition[] {
  let definitions = definitionCache.get(skills);
  if (!definitions) {
    definitions = deriveDefinitions(skills.filter((skill) => skill.dataFields.length > 0));
    definitionCache.set(skills, definitions);
  }
  return definitions;
}

function deriveDefinitions(dataSkills: readonly Skill[]): LlmToolDefinition[] {
  if (dataSkills.length === 0) return [];
  const names = dataSkills.map((skill) => skill.name) as [string, ...string[]];
  const skill = z.enum(names).describe("Which skill's records");
  const value = z.union([z.string(), z.number(), z.boolean()]);
  const id = z.string().min(1).describe("The record's id");
  return [
    {
      name: "record_create",
      description:
        "Store a new record of a skill. `data` must have the fields of that skill's records, as listed in the context.",
      inputSchema: jsonSchema(z.object({ skill, data: z.record(z.string(), z.unknown()) }).strict()),
    },
    {
      name: "record_query",
      description:
        "Find stored records of a skill, newest first. With no filter, returns the most recent ones.",
      inputSchema: jsonSchema(
        z
          .object({
            skill,
            equals: z.record(z.string(), value).optional().describe("Fields that must equal these values"),
            contains: z
              .record(z.string(), z.string())
              .optional()
              .describe("Text fields that must contain these words"),
            limit: z
              .number()
              .int()
              .min(1)
              .max(100)
              .optional()
              .describe("Most records to return (default 20)"),
          })
          .strict(),
      ),
    },
    {
      name: "record_update",
      description: "Change fields of a stored record of a skill.",
      inputSchema: jsonSchema(z.object({ skill, id, changes: z.record(z.string(), z.unknown()) }).strict()),
    },
    {
      name: "record_delete",
      description: "Delete a stored record of a skill.",
      inputSchema: jsonSchema(z.object({ skill, id }).strict()),
    },
  ];
}

/** Dependencies of the skill data service and tools. */
export interface SkillDataDependencies {
  storage: Storage;
  clock: Clock;
  ids: IdGenerator;
}

/**
 * Reads and writes a skill's records with validation against the skill's
 * data fields. Used by the data tools and by `kilo.records`. Records are
 * kept per bot: every method takes the bot whose records it reads or
 * writes, which defaults to the skill's own bot and must be given for a
 * skill of a shared scope (a team's, say).
 */
export class SkillDataService {
  constructor(private readonly deps: SkillDataDependencies) {}

  /** Validates `data` against the skill's fields and stores it as the bot's record. */
  async create(skill: Skill, data: unknown, botId: string | null = skill.botId): Promise<SkillRecord> {
    const owner = recordOwner(skill, botId);
    const parsed = this.parse(recordSchemaFor(skill), data, skill);
    const now = this.deps.clock.now();
    return this.deps.storage.skillRecords.create({
      id: this.deps.ids.next("rec"),
      botId: owner,
      skillId: skill.id,
      data: parsed,
      createdAt: now,
      updatedAt: now,
    });
  }

  /** Up to `limit` of the bot's records of the skill matching `filter`, newest first. */
  async query(
    skill: Skill,
    filter: SkillRecordFilter,
    limit: number,
    botId: string | null = skill.botId,
  ): Promise<SkillRecord[]> {
    // Newest first: "what orders do I have" is about recent data.
    const page = await this.deps.storage.skillRecords.query(recordOwner(skill, botId), skill.id, filter, {
      limit,
      newestFirst: true,
    });
    return page.items;
  }

  /**
   * Merges `changes` into the record's data and validates the result against the skill's fields.
   * Throws `NOT_FOUND` or `VALIDATION_FAILED`.
   */
  async update(
    skill: Skill,
    recordId: string,
    changes: unknown,
    botId: string | null = skill.botId,
  ): Promise<SkillRecord> {
    const existing = await this.deps.storage.skillRecords.get(recordOwner(skill, botId), skill.id, recordId);
    if (!existing) throw new KiloError("NOT_FOUND", `No ${skill.name} record with id '${recordId}'`);
    const patch = this.parse(recordSchemaFor(skill).partial(), changes, skill);
    const merged = this.parse(recordSchemaFor(skill), { ...existing.data, ...patch }, skill);
    const updated = await this.deps.storage.skillRecords.update({
      ...existing,
      data: merged,
      updatedAt: this.deps.clock.now(),
    });
    if (!updated) throw new KiloError("NOT_FOUND", `No ${skill.name} record with id '${recordId}'`);
    return updated;
  }

  /** Deletes one of the bot's records of the skill. Throws `NOT_FOUND`. */
  async delete(skill: Skill, recordId: string, botId: string | null = skill.botId): Promise<void> {
    const deleted = await this.deps.storage.skillRecords.delete(
      recordOwner(skill, botId),
      skill.id,
      recordId,
    );
    if (!deleted) throw new KiloError("NOT_FOUND", `No ${skill.name} record with id '${recordId}'`);
  }

  private parse<S extends z.ZodType>(schema: S, value: unknown, skill: Skill): z.output<S> {
    const result = schema.safeParse(value);
    if (result.success) return result.data;
    const problems = result.error.issues
      .map((issue) => `${issue.path.join(".") || "(record)"}: ${issue.message}`)
      .join("; ");
    throw new KiloError("VALIDATION_FAILED", `Invalid ${skill.name} record: ${problems}`, {
      details: result.error.issues,
    });
  }
}

/** The bot whose records are meant: the one given, else the skill's own bot. */
function recordOwner(skill: Skill, botId: string | null): string {
  if (botId !== null) return botId;
  throw new KiloError(
    "VALIDATION_FAILED",
    `Records of skill '${skill.name}' (${skill.id}) are kept per bot: name the bot whose records these are`,
  );
}

function summarize(record: SkillRecord): Record<string, unknown> {
  return { id: record.id, ...record.data, createdAt: record.createdAt.toISOString() };
}

const ToolInputSchema = z.object({ skill: z.string().min(1) }).passthrough();

/**
 * The ToolProvider for skill data: `record_create`, `record_query`,
 * `record_update` and `record_delete`, naming the skill in each call. Data is
 * validated against the named skill's fields; a bad call comes back to the
 * model as a tool error it can correct.
 */
export function skillDataTools(service: SkillDataService): ToolProvider {
  return {
    name: "skill-data",
    tools(context: ToolContext): ToolSet {
      const dataSkills = context.skills.filter((skill) => skill.dataFields.length > 0);
      return {
        definitions: skillDataToolDefinitions(context.skills),
        async execute(call: ToolCallBlock): Promise<ToolOutcome> {
          try {
            const input = ToolInputSchema.parse(call.input);
            const wanted = input.skill.trim().toLowerCase();
            const skill = dataSkills.find((candidate) => candidate.name.toLowerCase() === wanted);
            if (!skill) {
              return {
                content: `No skill with data is named '${input.skill}'. Skills with data: ${dataSkills.map((s) => s.name).join(", ")}`,
                isError: true,
              };
            }
            switch (call.name) {
              case "record_create": {
                const record = await service.create(skill, input.data ?? {}, context.bot.id);
                return {
                  content: JSON.stringify({ stored: summarize(record) }),
                  isError: false,
                  data: record,
                };
              }
              case "record_query": {
                const parsed = filterSchemaFor(skill).parse({
                  equals: input.equals,
                  contains: input.contains,
                  limit: input.limit,
                }) as SkillRecordFilter & { limit?: number };
                const records = await service.query(
                  skill,
                  { equals: parsed.equals, contains: parsed.contains },
                  parsed.limit ?? 20,
                  context.bot.id,
                );
                return {
                  content: JSON.stringify({ count: records.length, records: records.map(summarize) }),
                  isError: false,
                  data: records,
                };
              }
              case "record_update": {
                const record = await service.update(
                  skill,
                  String(input.id ?? ""),
                  input.changes ?? {},
                  context.bot.id,
                );
                return {
                  content: JSON.stringify({ updated: summarize(record) }),
                  isError: false,
                  data: record,
                };
              }
              case "record_delete": {
                await service.delete(skill, String(input.id ?? ""), context.bot.id);
                return {
                  content: JSON.stringify({ deleted: input.id }),
                  isError: false,
                  data: { id: input.id },
                };
              }
              default:
                return { content: `Unknown tool '${call.name}'`, isError: true };
            }
          } catch (error) {
            // The model can correct a bad call; only storage failures end the turn.
            if (KiloError.is(error) && (error.code === "VALIDATION_FAILED" || error.code === "NOT_FOUND")) {
              return { content: error.message, isError: true };
            }
            if (error instanceof z.ZodError) {
              return {
                content: `Invalid input: ${error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
                isError: true,
              };
            }
            throw error;
          }
        },
      };
    },
  };
}
