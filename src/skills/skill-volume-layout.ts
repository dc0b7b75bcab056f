import { z } from "zod";
import { type SkillScope, SkillScopeSchema } from "../domain/scope.js";
import { KiloError } from "../errors.js";
import { SKILL_MARKDOWN_MAX_CHARS } from "./markdown/skill-markdown-parser.js";
import { AGENT_SKILL_LIMITS, AGENT_SKILL_NAME_PATTERN } from "./markdown/skill-markdown-rules.js";

/**
 * The layout and input rules every `SkillVolume` adapter shares: where a
 * scope lives, which skill names and resource paths are allowed, and the
 * zod schemas an adapter validates its input with.
 *
 * @module
 */

/** The file that makes a folder a skill. */
export const SKILL_VOLUME_FILE = "SKILL.md";

/** Limits of what a `SkillVolume` accepts. */
export const SKILL_VOLUME_LIMITS = Object.freeze({
  /** Most characters of a skill (folder) name. */
  nameChars: AGENT_SKILL_LIMITS.nameChars,
  /** Most characters of a SKILL.md. */
  markdownChars: SKILL_MARKDOWN_MAX_CHARS,
  /** Most resource files one write takes. */
  resources: 500,
  /** Most characters of a resource path. */
  resourcePathChars: 1000,
  /** Most characters of a reason. */
  reasonChars: 2000,
  /** Most characters of an author's name or e-mail. */
  identityChars: 200,
  /** Most versions one `history` call returns. */
  historyLimit: 500,
});

/**
 * Whether `name` can be a skill's folder: the Agent Skills name rule, 1–64
 * lowercase letters and digits in runs joined by single hyphens (so it can
 * never be `.`, `..`, `.git` or hold a `/`).
 */
export function isSkillFolderName(name: string): boolean {
  return (
    name.length > 0 && name.length <= SKILL_VOLUME_LIMITS.nameChars && AGENT_SKILL_NAME_PATTERN.test(name)
  );
}

/** A skill (folder) name, by {@link isSkillFolderName}. */
export const SkillFolderNameSchema = z.string().refine(isSkillFolderName, {
  message:
    "must be 1 to 64 lowercase letters and digits joined by single hyphens, not starting or ending with one (e.g. `pdf-tools`)",
});

/**
 * Why `path` cannot be a resource path, or `null` when it can: a path
 * relative to the skill's folder with `/` between parts, no empty, `.`,
 * `..` or `.git` part, no backslash or control character, not the SKILL.md
 * itself (in any letter case), at most 1,000 characters.
 */
export function resourcePathProblem(path: string): string | null {
  if (path.length === 0 || path.length > SKILL_VOLUME_LIMITS.resourcePathChars) {
    return `must be 1 to ${SKILL_VOLUME_LIMITS.resourcePathChars} characters`;
  }
  if (path.includes("\\")) return "must use `/` between parts, not `\\`";
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(path)) return "must not contain control characters";
  if (path.startsWith("/")) return "must be relative to the skill's folder";
  const parts = path.split("/");
  for (const part of parts) {
    if (part === "") return "must not have an empty part (`//` or a trailing `/`)";
    if (part === "." || part === "..") return "must not have a `.` or `..` part";
    if (part.toLowerCase() === ".git") return "must not have a `.git` part";
  }
  if (path.toLowerCase() === SKILL_VOLUME_FILE.toLowerCase()) {
    return `must not be the ${SKILL_VOLUME_FILE} itself (pass it as \`markdown\`)`;
  }
  return null;
}

/** A resource path, by {@link resourcePathProblem}. */
export const SkillVolumeResourcePathSchema = z.string().superRefine((path, context) => {
  const problem = resourcePathProblem(path);
  if (problem !== null) context.addIssue({ code: "custom", message: problem });
});

const identityText = (what: string) =>
  z
    .string()
    .max(SKILL_VOLUME_LIMITS.identityChars)
    .refine((text) => !/[<>\r\n]/.test(text), {
      message: `${what} must not contain '<', '>' or a line break`,
    });

/** An author as a volume takes it. */
export const SkillVolumeIdentitySchema = z
  .object({
    name: identityText("a name").refine((name) => name.trim().length > 0, { message: "must not be empty" }),
    email: identityText("an e-mail address").optional(),
  })
  .strict();

/** Options of a change (`write`, `remove`, `rollback`). */
export const SkillVolumeChangeOptionsSchema = z
  .object({
    author: SkillVolumeIdentitySchema.optional(),
    reason: z.string().max(SKILL_VOLUME_LIMITS.reasonChars).optional(),
  })
  .strict();

/** Input of `write`. Resource paths must be unique (in any letter case), and no path may be another's folder. */
export const SkillVolumeWriteInputSchema = z
  .object({
    name: SkillFolderNameSchema,
    markdown: z.string().max(SKILL_VOLUME_LIMITS.markdownChars),
    resources: z
      .array(
        z
          .object({
            path: SkillVolumeResourcePathSchema,
            content: z.union([z.string(), z.instanceof(Uint8Array)]),
          })
          .strict(),
      )
      .max(SKILL_VOLUME_LIMITS.resources)
      .optional(),
  })
  .strict()
  .superRefine((input, context) => {
    const files = new Map<string, number>();
    for (const [index, resource] of (input.resources ?? []).entries()) {
      const folded = resource.path.toLowerCase();
      if (files.has(folded)) {
        context.addIssue({
          code: "custom",
          path: ["resources", index, "path"],
          message: `${JSON.stringify(resource.path)} is given twice (paths are compared ignoring letter case)`,
        });
      }
      files.set(folded, index);
    }
    for (const [folded, index] of files) {
      const parts = folded.split("/");
      for (let end = 1; end < parts.length; end++) {
        if (files.has(parts.slice(0, end).join("/"))) {
          context.addIssue({
            code: "custom",
            path: ["resources", index, "path"],
            message: `is inside ${JSON.stringify(parts.slice(0, end).join("/"))}, which is given as a file`,
          });
        }
      }
    }
  });

/** A version (commit id): 4–40 hex digits. */
export const SkillVolumeVersionSchema = z
  .string()
  .regex(/^[0-9a-fA-F]{4,40}$/, "must be a commit id: 4 to 40 hex digits")
  .transform((id) => id.toLowerCase());

/** Options of `read` and `readResource`. */
export const SkillVolumeReadOptionsSchema = z
  .object({ version: SkillVolumeVersionSchema.optional() })
  .strict();

/** Options of `history`. */
export const SkillVolumeHistoryOptionsSchema = z
  .object({ limit: z.number().int().min(1).max(SKILL_VOLUME_LIMITS.historyLimit).default(50) })
  .strict();

/**
 * The folder a scope lives in, as path parts under the volume's root:
 * `["system"]`, `["team", "<id>"]`, `["user", "<id>"]`, `["bot", "<id>"]`.
 * An id's `:` is written `%3A` (a colon cannot be in a Windows file name).
 *
 * @throws KiloError `VALIDATION_FAILED` for a malformed scope, or an id of
 *   `.` or `..` (which would name another folder).
 *
 * @example
 * ```ts
 * skillVolumeScopePath({ kind: "user", id: "tg:42" }); // ["user", "tg%3A42"]
 * ```
 */
export function skillVolumeScopePath(scope: SkillScope): string[] {
  const parsed = SkillScopeSchema.safeParse(scope);
  if (!parsed.success) {
    throw new KiloError(
      "VALIDATION_FAILED",
      `Invalid skill scope: ${parsed.error.issues
        .map((issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`)
        .join("; ")}`,
      { details: parsed.error.issues },
    );
  }
  const checked = parsed.data;
  if (checked.kind === "system") return ["system"];
  if (checked.id === "." || checked.id === "..") {
    throw new KiloError(
      "VALIDATION_FAILED",
      `Invalid skill scope: the ${checked.kind} id ${JSON.stringify(checked.id)} cannot name a folder`,
      { details: [{ path: ["id"], message: "must not be `.` or `..`" }] },
    );
  }
  return [checked.kind, checked.id.replaceAll(":", "%3A")];
}
