import { isMap, isScalar, isSeq } from "yaml";
import {
  MARKDOWN_DESCRIPTION_MAX,
  type MarkdownSkillBody,
  type MarkdownSkillResource,
  type Skill,
} from "../../domain/skill.js";
import { KiloError } from "../../errors.js";
import { type FrontMatterEntry, scalarText, splitFrontMatter } from "./front-matter.js";
import {
  AGENT_SKILL_FIELDS,
  AGENT_SKILL_LIMITS,
  countLines,
  frontMatterIssues,
  LLMOS_SKILL_FIELDS,
  type SkillMarkdownRule,
  type SkillMarkdownSourceOptions,
  type SkillMarkdownWarning,
  skillFolderOf,
  UNNAMED_SKILL_FILE,
} from "./skill-markdown-rules.js";

/** Most characters of a SKILL.md that `kilo.skills.importMarkdown` and skill volumes read. */
export const SKILL_MARKDOWN_MAX_CHARS = 1_000_000;

/**
 * A skill as a SKILL.md describes it: what `kilo.skills.create` needs for a
 * Markdown skill. The front matter's `keywords` are its `triggers`.
 */
export type MarkdownSkillInput = Pick<Skill, "name" | "description" | "triggers"> & {
  markdown: MarkdownSkillBody;
};

/** What {@link parseSkillMarkdown} read: the skill, and every rule the file breaks. */
export interface ParsedSkillMarkdown {
  skill: MarkdownSkillInput;
  warnings: SkillMarkdownWarning[];
}

// What kilo stores at most; past these a load keeps a prefix and warns (rule `kilo-limit`).
const KEPT = {
  name: 100,
  license: 2000,
  compatibility: 2000,
  category: 200,
  trigger: 200,
  triggers: 200,
  tool: 500,
  tools: 200,
  metadataKey: 200,
  metadataValue: 10_000,
  metadataEntries: 200,
  body: 500_000,
  resources: 500,
  resourcePath: 1000,
};

/**
 * Reads a SKILL.md (YAML front matter and a Markdown body) leniently.
 *
 * Anything the Agent Skills standard or LLMos-Lite's format allows loads as
 * written. A file that breaks a rule still loads, with one
 * {@link SkillMarkdownWarning} per broken rule naming the file and the rule:
 * an over-long description is kept, an unquoted number becomes the text
 * written (`1.0`), unknown keys are kept under `metadata`, a missing `name`
 * is taken from the path (`pdf-tools/SKILL.md` or `pdf-tools.md` gives
 * `pdf-tools`). LLMos-Lite's `category` and `keywords` are read at the top
 * level or under `metadata` (where export writes them); `keywords` become
 * the skill's triggers. Relative links and backquoted relative file paths in
 * the body become `markdown.resources`.
 *
 * Parsing what {@link serializeSkillMarkdown} wrote gives back an equal skill.
 *
 * @throws KiloError `VALIDATION_FAILED` naming the file when it cannot be
 *   read: no front matter, front matter not closed, invalid YAML, YAML that
 *   is not a mapping, or no `name` and none derivable from `file`.
 *
 * @example
 * ```ts
 * const { skill, warnings } = parseSkillMarkdown(text, { file: "pdf-processing/SKILL.md" });
 * for (const warning of warnings) console.warn(`${warning.file}: ${warning.rule}: ${warning.message}`);
 * ```
 */
export function parseSkillMarkdown(
  text: string,
  options: SkillMarkdownSourceOptions = {},
): ParsedSkillMarkdown {
  const file = options.file ?? UNNAMED_SKILL_FILE;
  const split = splitFrontMatter(text);
  if (!split.ok) throw unreadable(file, split.failure, split.message);
  const { entries, body: rawBody } = split;
  const warnings = frontMatterIssues(entries, file, true);
  const warn = (rule: SkillMarkdownRule, message: string) => warnings.push({ file, rule, message });
  const keep = (value: string, max: number, what: string): string => {
    if (value.length <= max) return value;
    warn("kilo-limit", `${what} has ${value.length} characters; kilo keeps the first ${max}`);
    return value.slice(0, max);
  };

  // name: as written, else from the path.
  let name = textOf(entries.get("name"))?.trim() ?? "";
  if (name.length === 0) {
    const derived = nameFromPath(file);
    if (derived === null) {
      throw unreadable(file, "name-missing", "the front matter has no `name` and the file path gives none");
    }
    // One warning saying both what is wrong and what kilo did instead.
    const missing = warnings.findIndex((warning) => warning.rule === "name-missing");
    if (missing !== -1) warnings.splice(missing, 1);
    warn(
      "name-missing",
      `the front matter has no \`name\`, which the standard requires; using ${JSON.stringify(derived)} from the file path`,
    );
    name = derived;
  }
  name = keep(name, KEPT.name, "`name`");

  const description = keep(
    textOf(entries.get("description")) ?? "",
    MARKDOWN_DESCRIPTION_MAX,
    "`description`",
  );
  const license = optionalText(entries.get("license"), KEPT.license, "`license`", keep);
  const compatibility = optionalText(
    entries.get("compatibility"),
    KEPT.compatibility,
    "`compatibility`",
    keep,
  );
  const allowedTools = readAllowedTools(entries.get("allowed-tools"), (tool) =>
    keep(tool, KEPT.tool, "a tool"),
  );
  if (allowedTools.length > KEPT.tools) {
    warn(
      "kilo-limit",
      `\`allowed-tools\` names ${allowedTools.length} tools; kilo keeps the first ${KEPT.tools}`,
    );
    allowedTools.length = KEPT.tools;
  }

  // metadata: the standard's map, with unknown top-level keys added; category and keywords lifted out.
  const metadata = new Map<string, string>();
  const metadataEntry = entries.get("metadata");
  if (metadataEntry !== undefined && isMap(metadataEntry.node)) {
    const resolved = metadataEntry.value as Record<string, unknown>;
    for (const pair of metadataEntry.node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      const value = entryText(pair.value, resolved[key]);
      if (value !== null) metadata.set(key, value);
    }
  }
  for (const [key, entry] of entries) {
    if (AGENT_SKILL_FIELDS.includes(key) || LLMOS_SKILL_FIELDS.includes(key)) continue;
    const value = entryText(entry.node, entry.value);
    if (value === null) continue;
    if (metadata.has(key)) {
      warn(
        "field-conflict",
        `\`${key}\` is both a top-level key and \`metadata.${key}\`; kilo keeps the one under metadata`,
      );
    } else {
      metadata.set(key, value);
    }
  }

  const categoryEntry = entries.get("category");
  let category: string | null = null;
  if (categoryEntry !== undefined) {
    category = textOf(categoryEntry);
    if (category === null) {
      warn(
        "category-type",
        `\`category\` must be a string, not ${kindOf(categoryEntry.value)}; it was dropped`,
      );
    }
    if (metadata.delete("category")) {
      warn(
        "field-conflict",
        "`category` is both a top-level key and `metadata.category`; kilo keeps the top-level one",
      );
    }
  } else {
    category = metadata.get("category") ?? null;
    metadata.delete("category");
  }
  if (category !== null) category = keep(category, KEPT.category, "`category`");

  const keywordsEntry = entries.get("keywords");
  let keywords: string[];
  if (keywordsEntry !== undefined) {
    keywords = readKeywords(keywordsEntry, (message) => warn("keywords-type", message));
    if (metadata.delete("keywords")) {
      warn(
        "field-conflict",
        "`keywords` is both a top-level key and `metadata.keywords`; kilo keeps the top-level one",
      );
    }
  } else {
    keywords = splitKeywords(metadata.get("keywords") ?? "");
    metadata.delete("keywords");
  }
  const triggers = uniquePhrases(keywords.map((keyword) => keep(keyword, KEPT.trigger, "a keyword")));
  if (triggers.length > KEPT.triggers) {
    warn("kilo-limit", `${triggers.length} keywords; kilo keeps the first ${KEPT.triggers} as triggers`);
    triggers.length = KEPT.triggers;
  }

  const keptMetadata: Record<string, string> = {};
  for (const [key, value] of metadata) {
    if (key.length === 0 || key.length > KEPT.metadataKey) {
      warn(
        "kilo-limit",
        `\`metadata\` key ${JSON.stringify(key.slice(0, 40))} must be 1 to ${KEPT.metadataKey} characters; dropped`,
      );
      continue;
    }
    if (Object.keys(keptMetadata).length >= KEPT.metadataEntries) {
      warn(
        "kilo-limit",
        `\`metadata\` has more than ${KEPT.metadataEntries} entries; kilo keeps the first ${KEPT.metadataEntries}`,
      );
      break;
    }
    keptMetadata[key] = keep(value, KEPT.metadataValue, `\`metadata.${key}\``);
  }

  const lines = countLines(rawBody);
  if (lines > AGENT_SKILL_LIMITS.recommendedBodyLines) {
    warn(
      "body-length",
      `the body has ${lines} lines; the standard recommends at most ${AGENT_SKILL_LIMITS.recommendedBodyLines} (move detail to referenced files)`,
    );
  }
  const body = keep(rawBody, KEPT.body, "the body");
  const resources = findResources(body);
  if (resources.length > KEPT.resources) {
    warn(
      "kilo-limit",
      `the body refers to ${resources.length} files; kilo lists the first ${KEPT.resources}`,
    );
    resources.length = KEPT.resources;
  }

  return {
    skill: {
      name,
      description,
      triggers,
      markdown: {
        body,
        license,
        compatibility,
        allowedTools,
        metadata: keptMetadata,
        category,
        resources,
      },
    },
    warnings,
  };
}

function unreadable(file: string, rule: SkillMarkdownRule, message: string): KiloError {
  return new KiloError("VALIDATION_FAILED", `${file}: cannot load the skill: ${message}`, {
    details: [{ file, rule, message }],
  });
}

/** The skill name a path gives: the folder of `<folder>/SKILL.md`, else the file name without `.md`. */
function nameFromPath(file: string): string | null {
  if (file === UNNAMED_SKILL_FILE) return null;
  const folder = skillFolderOf(file);
  if (folder !== null) return folder;
  const base =
    file
      .split(/[\\/]+/)
      .filter((part) => part.length > 0)
      .at(-1) ?? "";
  if (base.toLowerCase() === "skill.md") return null;
  const stem = base.replace(/\.(md|markdown)$/i, "").trim();
  return stem.length > 0 ? stem : null;
}

/** A string or scalar entry as text (as written); `null` for null, a collection or no entry. */
function textOf(entry: FrontMatterEntry | undefined): string | null {
  if (entry === undefined) return null;
  return typeof entry.value === "string" ? entry.value : scalarText(entry.node);
}

function optionalText(
  entry: FrontMatterEntry | undefined,
  max: number,
  what: string,
  keep: (value: string, max: number, what: string) => string,
): string | null {
  const text = textOf(entry);
  return text === null ? null : keep(text, max, what);
}

/**
 * A value as text for `metadata`: a scalar as written, an alias's value, a
 * collection as JSON; `null` for null.
 */
function entryText(node: unknown, resolved: unknown): string | null {
  const text = scalarText(node);
  if (text !== null) return text;
  if (resolved === null || resolved === undefined) return null;
  return typeof resolved === "object" ? JSON.stringify(resolved) : String(resolved);
}

function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  return typeof value === "object" ? "a mapping" : `a ${typeof value}`;
}

/**
 * `allowed-tools`: one string of names separated by spaces (the standard) or
 * commas (Claude Code's habit), or a YAML list. A space inside parentheses
 * belongs to the name (`Bash(git add:*)`).
 */
function readAllowedTools(entry: FrontMatterEntry | undefined, keep: (tool: string) => string): string[] {
  if (entry === undefined) return [];
  const text = typeof entry.value === "string" ? entry.value : null;
  const parts =
    text !== null
      ? splitToolList(text)
      : isSeq(entry.node)
        ? entry.node.items.flatMap((item) => splitToolList(scalarText(item) ?? ""))
        : [];
  return uniquePhrases(parts.map(keep));
}

function splitToolList(text: string): string[] {
  const tools: string[] = [];
  let depth = 0;
  let current = "";
  for (const char of text) {
    if (char === "(") depth++;
    else if (char === ")") depth = Math.max(0, depth - 1);
    if (depth === 0 && (char === "," || /\s/.test(char))) {
      if (current.length > 0) tools.push(current);
      current = "";
    } else {
      current += char;
    }
  }
  if (current.length > 0) tools.push(current);
  return tools;
}

/** `keywords`: a YAML list, or one comma-separated string. Commas inside an item split it too. */
function readKeywords(entry: FrontMatterEntry, warn: (message: string) => void): string[] {
  if (typeof entry.value === "string") return splitKeywords(entry.value);
  if (isSeq(entry.node)) {
    const keywords: string[] = [];
    for (const item of entry.node.items) {
      const text = scalarText(item);
      if (text === null) warn("`keywords` items must be strings; a null or nested item was dropped");
      else keywords.push(...splitKeywords(text));
    }
    return keywords;
  }
  const text = scalarText(entry.node);
  if (text !== null) return splitKeywords(text);
  warn(`\`keywords\` must be a list of strings, not ${kindOf(entry.value)}; it was dropped`);
  return [];
}

function splitKeywords(text: string): string[] {
  return text.split(",").map((keyword) => keyword.trim());
}

/** Trimmed, non-empty, first of each case-insensitive duplicate kept, in order. */
function uniquePhrases(phrases: readonly string[]): string[] {
  const seen = new Set<string>();
  const kept: string[] = [];
  for (const phrase of phrases) {
    const trimmed = phrase.trim();
    const folded = trimmed.toLowerCase();
    if (trimmed.length === 0 || seen.has(folded)) continue;
    seen.add(folded);
    kept.push(trimmed);
  }
  return kept;
}

const FENCE = /^(```|~~~)/;
const LINK = /!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+["'(][^)\n]*)?\)/g;
const CODE_SPAN = /`([^`\n]+)`/g;
const FILE_PATH = /^(?:\.\/)?(?:[\w.-]+\/)*[\w.-]+\.[A-Za-z0-9]{1,10}$/;

/**
 * Files a Markdown body refers to, in order of first mention: targets of
 * relative links (`[guide](references/guide.md)`, `#anchor` and `?query`
 * dropped) anywhere but inside fenced code, and backquoted relative paths
 * with a folder and an extension (`` `scripts/check.py` ``). URLs, absolute
 * paths and paths climbing out with `..` are not resources.
 */
export function findResources(body: string): MarkdownSkillResource[] {
  const found: string[] = [];
  let fenced = false;
  for (const line of body.split("\n")) {
    if (FENCE.test(line.trimStart())) {
      fenced = !fenced;
      continue;
    }
    if (fenced) continue;
    for (const match of line.matchAll(LINK)) {
      const target = match[1]!.replace(/[#?].*$/, "");
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
      found.push(target);
    }
    for (const match of line.matchAll(CODE_SPAN)) {
      const path = match[1]!.trim();
      if (path.includes("/") && FILE_PATH.test(path)) found.push(path);
    }
  }
  const resources: MarkdownSkillResource[] = [];
  const seen = new Set<string>();
  for (const raw of found) {
    let path: string;
    try {
      path = decodeURI(raw);
    } catch {
      path = raw;
    }
    path = path.replace(/^(\.\/)+/, "");
    if (path.length === 0 || path.length > KEPT.resourcePath || path.startsWith("/")) continue;
    if (path.split("/").includes("..") || seen.has(path)) continue;
    seen.add(path);
    resources.push({ path });
  }
  return resources;
}
