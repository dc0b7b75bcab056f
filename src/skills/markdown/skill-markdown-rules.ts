import { isMap, isScalar } from "yaml";
import { type FrontMatterEntry, scalarText, splitFrontMatter } from "./front-matter.js";

/** The Agent Skills standard's `name`: lowercase letters and digits in runs joined by single hyphens. */
export const AGENT_SKILL_NAME_PATTERN: RegExp = /^[a-z0-9]+(-[a-z0-9]+)*$/;

/** Limits of the Agent Skills standard (agentskills.io/specification). */
export const AGENT_SKILL_LIMITS = Object.freeze({
  /** Most characters of `name`. */
  nameChars: 64,
  /** Most characters of `description` (and at least one). */
  descriptionChars: 1024,
  /** Most characters of `compatibility` (and at least one, when present). */
  compatibilityChars: 500,
  /** Most lines the standard recommends for the Markdown body. */
  recommendedBodyLines: 500,
});

/** The front-matter keys the Agent Skills standard allows; a strict validator refuses any other. */
export const AGENT_SKILL_FIELDS: readonly string[] = Object.freeze([
  "name",
  "description",
  "license",
  "compatibility",
  "metadata",
  "allowed-tools",
]);

/** LLMos-Lite's own front-matter keys; kilo reads them at the top level and writes them under `metadata`. */
export const LLMOS_SKILL_FIELDS: readonly string[] = Object.freeze(["category", "keywords"]);

/**
 * Every rule a SKILL.md can break, as named in a {@link SkillMarkdownWarning}.
 *
 * The first four make a file unreadable (loading fails); the others are
 * warnings when loading and violations for {@link validateSkillMarkdown},
 * except `body-length` (a recommendation, never a violation), `keywords-type`,
 * `category-type`, `field-conflict` and `kilo-limit` (about what kilo kept).
 */
export const SKILL_MARKDOWN_RULES = [
  "front-matter-missing",
  "front-matter-unclosed",
  "yaml-invalid",
  "front-matter-not-a-map",
  "name-missing",
  "name-type",
  "name-length",
  "name-format",
  "name-directory",
  "description-missing",
  "description-type",
  "description-length",
  "license-type",
  "compatibility-type",
  "compatibility-length",
  "metadata-type",
  "metadata-value",
  "allowed-tools-type",
  "unknown-field",
  "keywords-type",
  "category-type",
  "field-conflict",
  "body-length",
  "kilo-limit",
] as const;

/** A rule of {@link SKILL_MARKDOWN_RULES}. */
export type SkillMarkdownRule = (typeof SKILL_MARKDOWN_RULES)[number];

/** A rule a SKILL.md breaks: the file, the rule, and what is wrong in words. */
export interface SkillMarkdownWarning {
  /** The file as the caller named it (`skills/pdf/SKILL.md`), or `<input>` for bare text. */
  file: string;
  rule: SkillMarkdownRule;
  message: string;
}

/** Options of {@link validateSkillMarkdown} and `parseSkillMarkdown`. */
export interface SkillMarkdownSourceOptions {
  /**
   * The file's path, for messages and for the rule that `name` matches the
   * folder (`<folder>/SKILL.md`). Default `<input>`, which names no folder.
   */
  file?: string | undefined;
}

/** The file name used in warnings when the caller gave none. */
export const UNNAMED_SKILL_FILE = "<input>";

type Entries = ReadonlyMap<string, FrontMatterEntry>;

/**
 * The folder a `<folder>/SKILL.md` path names, or `null` (a bare `SKILL.md`,
 * another file name, or no path).
 */
export function skillFolderOf(file: string): string | null {
  const parts = file.split(/[\\/]+/).filter((part) => part.length > 0);
  if (parts.length < 2 || parts.at(-1)?.toLowerCase() !== "skill.md") return null;
  const folder = parts.at(-2)!;
  return folder === "." || folder === ".." ? null : folder;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  return typeof value === "object" ? "a mapping" : `a ${typeof value}`;
}

const chars = (count: number) => count.toLocaleString("en-US");

/**
 * The Agent Skills standard's rules, checked on a front matter's top-level
 * keys. `lenient` words the messages for a load that goes on (saying what
 * kilo kept); otherwise they read as violations.
 */
export function frontMatterIssues(entries: Entries, file: string, lenient: boolean): SkillMarkdownWarning[] {
  const issues: SkillMarkdownWarning[] = [];
  const add = (rule: SkillMarkdownRule, message: string) => issues.push({ file, rule, message });

  const name = entries.get("name");
  if (name === undefined || name.value === null) {
    add("name-missing", "the front matter has no `name`, which the standard requires");
  } else if (typeof name.value !== "string") {
    add("name-type", `\`name\` must be a string, not ${describe(name.value)}`);
  } else {
    const value = name.value;
    if (value.length > AGENT_SKILL_LIMITS.nameChars) {
      add("name-length", `\`name\` has ${value.length} characters; the standard allows at most 64`);
    }
    if (!AGENT_SKILL_NAME_PATTERN.test(value)) {
      add(
        "name-format",
        `\`name\` ${JSON.stringify(value)} must be lowercase letters and digits joined by single hyphens, ` +
          "not starting or ending with one (e.g. `pdf-processing`)",
      );
    }
    const folder = skillFolderOf(file);
    if (folder !== null && folder.normalize("NFKC") !== value.normalize("NFKC")) {
      add(
        "name-directory",
        `\`name\` ${JSON.stringify(value)} does not match its folder ${JSON.stringify(folder)}`,
      );
    }
  }

  const description = entries.get("description");
  if (description === undefined || description.value === null) {
    add("description-missing", "the front matter has no `description`, which the standard requires");
  } else if (typeof description.value !== "string") {
    add("description-type", `\`description\` must be a string, not ${describe(description.value)}`);
  } else if (description.value.trim().length === 0) {
    add("description-missing", "`description` is empty; the standard requires one");
  } else if (description.value.length > AGENT_SKILL_LIMITS.descriptionChars) {
    add(
      "description-length",
      `\`description\` has ${chars(description.value.length)} characters; the standard allows at most 1,024`,
    );
  }

  const license = entries.get("license");
  if (license !== undefined && typeof license.value !== "string") {
    add("license-type", `\`license\` must be a string, not ${describe(license.value)}`);
  }

  const compatibility = entries.get("compatibility");
  if (compatibility !== undefined) {
    if (typeof compatibility.value !== "string") {
      add("compatibility-type", `\`compatibility\` must be a string, not ${describe(compatibility.value)}`);
    } else if (
      compatibility.value.length === 0 ||
      compatibility.value.length > AGENT_SKILL_LIMITS.compatibilityChars
    ) {
      add(
        "compatibility-length",
        `\`compatibility\` has ${chars(compatibility.value.length)} characters; the standard allows 1 to 500`,
      );
    }
  }

  const metadata = entries.get("metadata");
  if (metadata !== undefined) {
    if (!isMap(metadata.node)) {
      add("metadata-type", `\`metadata\` must be a mapping of strings, not ${describe(metadata.value)}`);
    } else {
      for (const pair of metadata.node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        if (!isScalar(pair.value) || typeof pair.value.value !== "string") {
          const shown = scalarText(pair.value);
          add(
            "metadata-value",
            `\`metadata.${key}\` must be a string, not ${shown === null ? "a null or a collection" : `the unquoted ${JSON.stringify(shown)}`}` +
              (lenient && shown !== null ? "; kept as the text written" : ""),
          );
        }
      }
    }
  }

  const allowedTools = entries.get("allowed-tools");
  if (allowedTools !== undefined && typeof allowedTools.value !== "string") {
    add(
      "allowed-tools-type",
      `\`allowed-tools\` must be one space-separated string, not ${describe(allowedTools.value)}`,
    );
  }

  for (const key of entries.keys()) {
    if (AGENT_SKILL_FIELDS.includes(key)) continue;
    if (LLMOS_SKILL_FIELDS.includes(key)) {
      add(
        "unknown-field",
        `\`${key}\` is an LLMos-Lite field, not an Agent Skills one` +
          (lenient ? `; kept, and exported as \`metadata.${key}\`` : "; put it under `metadata`"),
      );
    } else {
      add(
        "unknown-field",
        `\`${key}\` is not an Agent Skills field (${AGENT_SKILL_FIELDS.join(", ")})` +
          (lenient ? `; kept as \`metadata.${key}\`` : ""),
      );
    }
  }
  return issues;
}

/**
 * Checks a SKILL.md strictly against the Agent Skills standard: front matter
 * present and valid YAML; only the standard's six keys; `name` 1–64 lowercase
 * letters, digits and single hyphens, matching its folder when `file` is
 * `<folder>/SKILL.md`; `description` 1–1,024 characters; `license` a string;
 * `compatibility` 1–500 characters; `metadata` a map of strings;
 * `allowed-tools` a string. Returns every violation; an empty list means
 * the file is valid. A body over 500 lines is only a recommendation and is
 * not reported here.
 *
 * @example
 * ```ts
 * const problems = validateSkillMarkdown(text, { file: "pdf-processing/SKILL.md" });
 * for (const { rule, message } of problems) console.log(rule, message);
 * ```
 */
export function validateSkillMarkdown(
  text: string,
  options: SkillMarkdownSourceOptions = {},
): SkillMarkdownWarning[] {
  const file = options.file ?? UNNAMED_SKILL_FILE;
  const split = splitFrontMatter(text);
  if (!split.ok) return [{ file, rule: split.failure, message: split.message }];
  return frontMatterIssues(split.entries, file, false);
}

/**
 * A name the Agent Skills standard accepts, made from any skill name:
 * lowercase ASCII letters and digits joined by single hyphens, at most 64
 * characters (`"Python Testing"` gives `python-testing`). `null` when
 * nothing usable is left (a name in another script).
 */
export function suggestSkillName(name: string): string | null {
  const slug = name
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, AGENT_SKILL_LIMITS.nameChars)
    .replace(/-+$/, "");
  return slug.length > 0 ? slug : null;
}

/** Lines of a Markdown body, counting a last line without a newline. */
export function countLines(body: string): number {
  if (body.length === 0) return 0;
  const newlines = body.split("\n").length - 1;
  return body.endsWith("\n") ? newlines : newlines + 1;
}
