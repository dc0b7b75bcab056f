import { readdir, readFile, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { CreateSkillInputSchema } from "../domain/skill.js";
import { KiloError } from "../errors.js";
import type { Logger } from "../ports/logger.js";
import { WORKFLOW_NAME, type WorkflowHandler } from "../runs/workflow.js";
import { type MarkdownSkillInput, parseSkillMarkdown } from "../skills/markdown/skill-markdown-parser.js";

/** The workspace files kilo reads, and what each one does. */
export const WORKSPACE_FILES = {
  /** Replaces the soul's rendered text at the top of the system prompt. */
  system: "SYSTEM.md",
  /** Appended to the system prompt, after the rules. */
  appendSystem: "APPEND_SYSTEM.md",
  /** Context rules: the host's conventions for every prompt. */
  agents: "AGENTS.md",
} as const;

/** Largest workspace file kilo reads; a bigger one is reported and ignored. */
export const MAX_WORKSPACE_FILE_BYTES = 256 * 1024;

/** Options of `createKilo({ workspace })`: a directory, or these. */
export interface WorkspaceOptions {
  /** The workspace directory (the my-kaiser workspace contract). */
  dir: string;
  /**
   * How often, at most, the files are checked for changes (one `stat` per
   * file, on the next turn after this many milliseconds). Default 1,000;
   * `0` checks on every turn.
   */
  checkIntervalMs?: number;
}

/** A Markdown skill from the workspace's `skills/` folder, offered to every bot. */
export interface WorkspaceSkill {
  /** The file's absolute path. */
  file: string;
  /** The skill as its SKILL.md describes it (validated). */
  skill: MarkdownSkillInput;
}

/** The workspace's prompt text as of the last check. */
export interface WorkspacePrompt {
  /** SYSTEM.md: replaces the soul's text, or `null` when absent or empty. */
  system: string | null;
  /** APPEND_SYSTEM.md, or `null`. */
  appendSystem: string | null;
  /** AGENTS.md as one context rule, or none. */
  contextRules: string[];
  /**
   * Markdown skills from `skills/<name>/SKILL.md` and `skills/<name>.md`,
   * sorted by file, offered to every bot beside its own (a bot's own skill
   * with the same name wins).
   */
  skills: WorkspaceSkill[];
  /** Changes whenever a workspace skill file is added, changed or removed. */
  skillsVersion: string;
}

/** A workspace file that could not be used, reported once per change of the file. */
export interface WorkspaceProblem {
  /** The file's absolute path. */
  path: string;
  message: string;
}

/** What {@link createWorkspace} needs besides its options. */
export interface WorkspaceHooks {
  logger: Logger;
  /** Called once per problem (a file that changes and breaks again is reported again). */
  onProblem: (error: KiloError, problem: WorkspaceProblem) => void;
}

/**
 * A workspace directory whose files shape every prompt. Files are re-read
 * when they change, without a restart; a file that cannot be used (too
 * large, not UTF-8, not a file, unreadable) is reported with its path and
 * the last good version (or nothing) is kept, so the bot keeps working.
 */
export interface Workspace {
  /** The prompt text, re-checking the files when `checkIntervalMs` has passed. */
  prompt(): Promise<WorkspacePrompt>;
  /**
   * Workflows from `workflows/<name>.mjs` (or `.js`, an ES module whose
   * default export is the handler `(event, ctx) => ...`), by name; they
   * register or override workflows of that name. Checked like the files:
   * a changed module is imported again (the old one stays loaded until the
   * process ends); one that fails to import or has no default function is
   * reported once and its last good version kept.
   */
  workflows(): Promise<ReadonlyMap<string, WorkflowHandler>>;
}

interface FileState {
  /** `mtimeMs:size` of the version last looked at, or `absent`. */
  version: string;
  /** The last good text, trimmed; `null` when absent, empty or never good. */
  text: string | null;
}

/** The folder of Markdown skills in a workspace. */
const SKILLS_DIR = "skills";
/** The folder of workflow modules in a workspace. */
const WORKFLOWS_DIR = "workflows";

const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Creates the workspace reader for `createKilo({ workspace })`. A missing
 * directory is a configuration error (`CONFIGURATION_INVALID`) on first use,
 * since a typo would otherwise silently drop the host's prompt.
 */
export function createWorkspace(options: WorkspaceOptions, hooks: WorkspaceHooks): Workspace {
  const dir = resolve(options.dir);
  const interval = options.checkIntervalMs ?? 1_000;
  if (!Number.isFinite(interval) || interval < 0) {
    throw new KiloError(
      "CONFIGURATION_INVALID",
      `workspace.checkIntervalMs must be 0 or more, got ${String(interval)}`,
    );
  }
  const states = new Map<string, FileState>();
  let checkedAt = Number.NEGATIVE_INFINITY;
  let current: WorkspacePrompt = {
    system: null,
    appendSystem: null,
    contextRules: [],
    skills: [],
    skillsVersion: "",
  };
  let checking: Promise<WorkspacePrompt> | null = null;

  const report = (path: string, message: string) => {
    const problem = { path, message };
    const error = new KiloError("WORKSPACE_INVALID", `Workspace file ${path}: ${message}`, {
      details: { path },
    });
    hooks.logger.warn({ path, reason: message }, "workspace file ignored");
    hooks.onProblem(error, problem);
  };

  /**
   * Re-reads the file at `path` when its modification time or size changed.
   * `accept` may refuse good UTF-8 text (a SKILL.md that does not parse) with
   * a reason; a refused or unreadable version is reported once and the last
   * good text is kept.
   */
  async function refresh(key: string, path: string, accept?: (text: string) => string | null): Promise<void> {
    const previous = states.get(key) ?? { version: "absent", text: null };
    let info: Awaited<ReturnType<typeof stat>>;
    try {
      info = await stat(path);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? "unknown";
      if (code === "ENOENT") {
        states.set(key, { version: "absent", text: null });
        return;
      }
      if (previous.version === `error:${code}`) return;
      states.set(key, { version: `error:${code}`, text: previous.text });
      return report(path, `cannot be read (${code})`);
    }
    const version = `${info.mtimeMs}:${info.size}`;
    if (version === previous.version) return;
    states.set(key, { version, text: previous.text });
    if (!info.isFile()) return report(path, "is not a regular file");
    if (info.size > MAX_WORKSPACE_FILE_BYTES) {
      return report(path, `is ${info.size} bytes; the limit is ${MAX_WORKSPACE_FILE_BYTES}`);
    }
    let text: string;
    try {
      text = decoder.decode(await readFile(path));
    } catch (error) {
      const reason =
        error instanceof TypeError
          ? "is not valid UTF-8 text"
          : `cannot be read (${(error as Error).message})`;
      return report(path, reason);
    }
    const refused = accept?.(text) ?? null;
    if (refused !== null) return report(path, refused);
    const trimmed = text.trim();
    states.set(key, { version, text: trimmed === "" ? null : trimmed });
    hooks.logger.info({ path }, "workspace file loaded");
  }

  /** `skills/<name>/SKILL.md` and `skills/<name>.md`, sorted; none when there is no `skills/` folder. */
  async function skillFiles(): Promise<string[]> {
    const root = join(dir, SKILLS_DIR);
    const entries = await readdir(root, { withFileTypes: true }).catch(() => []);
    const files = entries.flatMap((entry) => {
      if (entry.isDirectory()) return [join(root, entry.name, "SKILL.md")];
      return entry.isFile() && entry.name.endsWith(".md") ? [join(root, entry.name)] : [];
    });
    return files.sort();
  }

  const parsedSkills = new Map<string, { text: string; skill: MarkdownSkillInput }>();

  /** Parses and validates a workspace SKILL.md; the reason it cannot be used, or `null`. */
  function acceptSkill(file: string) {
    return (text: string): string | null => {
      try {
        const { skill } = parseSkillMarkdown(text, { file });
        const problems = CreateSkillInputSchema.safeParse(skill);
        if (!problems.success) {
          return `is not a usable skill: ${problems.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; ")}`;
        }
        parsedSkills.set(file, { text: text.trim(), skill });
        return null;
      } catch (error) {
        return `is not a readable SKILL.md (${(error as Error).message})`;
      }
    };
  }

  async function refreshSkills(): Promise<{ skills: WorkspaceSkill[]; version: string }> {
    const files = await skillFiles();
    await Promise.all(files.map((file) => refresh(`skill:${file}`, file, acceptSkill(file))));
    // Files that disappeared are forgotten, so a file put back is read (and judged) again.
    const listed = new Set(files.map((file) => `skill:${file}`));
    for (const key of [...states.keys()])
      if (key.startsWith("skill:") && !listed.has(key)) states.delete(key);
    const skills: WorkspaceSkill[] = [];
    const versions: string[] = [];
    for (const file of files) {
      const state = states.get(`skill:${file}`);
      const parsed = parsedSkills.get(file);
      // The last good version of this file, if it ever had one.
      if (!state || state.text === null || !parsed || parsed.text !== state.text) continue;
      skills.push({ file, skill: parsed.skill });
      versions.push(`${file}@${state.version}`);
    }
    return { skills, version: versions.join("|") };
  }

  const workflowVersions = new Map<string, string>();
  let workflowHandlers = new Map<string, WorkflowHandler>();

  /** Imports changed workflow modules; keeps the last good handler of a module that breaks. */
  async function refreshWorkflows(): Promise<void> {
    const root = join(dir, WORKFLOWS_DIR);
    const entries = await readdir(root, { withFileTypes: true }).catch(() => []);
    const next = new Map<string, WorkflowHandler>();
    const seen = new Set<string>();
    for (const entry of entries) {
      const match = /^(.+)\.m?js$/.exec(entry.name);
      if (!entry.isFile() || !match) continue;
      const name = match[1]!;
      const file = join(root, entry.name);
      seen.add(file);
      if (!WORKFLOW_NAME.test(name)) {
        if (workflowVersions.get(file) !== "bad-name") report(file, `'${name}' is not a valid workflow name`);
        workflowVersions.set(file, "bad-name");
        continue;
      }
      const info = await stat(file).catch(() => null);
      if (!info) continue;
      const version = `${info.mtimeMs}:${info.size}`;
      const previous = workflowHandlers.get(name);
      if (workflowVersions.get(file) === version) {
        if (previous) next.set(name, previous);
        continue;
      }
      workflowVersions.set(file, version);
      try {
        // A new URL per version: Node caches modules by URL, so this is how a changed file is seen.
        const module = (await import(`${pathToFileURL(file).href}?v=${encodeURIComponent(version)}`)) as {
          default?: unknown;
        };
        if (typeof module.default !== "function") {
          report(file, "has no default export function (event, ctx) => ...");
          if (previous) next.set(name, previous);
          continue;
        }
        next.set(name, module.default as WorkflowHandler);
        hooks.logger.info({ path: file, workflow: name }, "workspace workflow loaded");
      } catch (error) {
        report(file, `cannot be imported (${(error as Error).message})`);
        if (previous) next.set(name, previous);
      }
    }
    for (const file of [...workflowVersions.keys()]) if (!seen.has(file)) workflowVersions.delete(file);
    workflowHandlers = next;
  }

  async function check(): Promise<WorkspacePrompt> {
    try {
      const info = await stat(dir);
      if (!info.isDirectory()) throw new Error("not a directory");
    } catch {
      throw new KiloError(
        "CONFIGURATION_INVALID",
        `workspace: '${dir}' is not a directory (createKilo({ workspace }))`,
      );
    }
    // One after the other (three stats, once per check): their problems are reported in this order.
    for (const [name, file] of Object.entries(WORKSPACE_FILES) as Array<
      [keyof typeof WORKSPACE_FILES, string]
    >) {
      await refresh(name, join(dir, file));
    }
    const skills = await refreshSkills();
    await refreshWorkflows();
    const agents = states.get("agents")?.text ?? null;
    current = {
      system: states.get("system")?.text ?? null,
      appendSystem: states.get("appendSystem")?.text ?? null,
      contextRules: agents === null ? [] : [agents],
      skills: skills.skills,
      skillsVersion: skills.version,
    };
    checkedAt = Date.now();
    return current;
  }

  const prompt = (): Promise<WorkspacePrompt> => {
    if (Date.now() - checkedAt < interval) return Promise.resolve(current);
    // Turns arriving together share one check.
    checking ??= check().finally(() => {
      checking = null;
    });
    return checking;
  };

  return {
    prompt,
    async workflows() {
      await prompt();
      return workflowHandlers;
    },
  };
}
