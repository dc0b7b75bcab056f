import type { SkillScope } from "../domain/scope.js";
import { CreateSkillInputSchema, type Skill } from "../domain/skill.js";
import { KiloError, toKiloError } from "../errors.js";
import type {
  SkillVolume,
  SkillVolumeChange,
  SkillVolumeCommit,
  SkillVolumeIgnoredEntry,
} from "../ports/skill-volume.js";
import { type MarkdownSkillInput, parseSkillMarkdown } from "./markdown/skill-markdown-parser.js";
import type { SkillMarkdownWarning } from "./markdown/skill-markdown-rules.js";
import { SKILL_VOLUME_FILE } from "./skill-volume-layout.js";

/**
 * Importing what people changed on a `SkillVolume` (hand edits, hand
 * commits) into storage: {@link planSkillVolumeImport} decides, purely,
 * what to create, update and delete; {@link syncSkillVolume} runs the
 * whole round (find changes, plan, apply through the core's callback,
 * mark seen).
 *
 * @module
 */

/** A skill as storage has it, as far as an import compares it (a full `Skill` will do). */
export type SkillVolumeStoredSkill = Pick<Skill, "id" | "name" | "description" | "triggers" | "markdown">;

/** What every import action carries: the skill's folder name, who changed it and why, and the change itself. */
export interface SkillVolumeActionBase {
  /** The skill's folder name, which is also its name in storage. */
  name: string;
  /** Who made the change, as a kilo author (see `SkillChangeOptions.author`); from the newest commit. */
  author: string;
  /** Why: the commits' reasons, oldest first, with their short ids (at most 2,000 characters). */
  reason: string;
  /** The volume's change this action imports. */
  change: SkillVolumeChange;
}

/** Create a Markdown skill from a SKILL.md that storage does not have. */
export interface SkillVolumeCreateAction extends SkillVolumeActionBase {
  /** `"create"`. */
  kind: "create";
  /** The skill to create (its `name` is the folder name), with resource texts the volume holds. */
  skill: MarkdownSkillInput;
  /** The rules of the Agent Skills standard the file breaks (the import goes on). */
  warnings: SkillMarkdownWarning[];
}

/** Update a stored skill to what its SKILL.md now says. */
export interface SkillVolumeUpdateAction extends SkillVolumeActionBase {
  /** `"update"`. */
  kind: "update";
  /** The stored skill's id. */
  skillId: string;
  /** The skill's new name, description, triggers and Markdown body: the patch to apply. */
  skill: MarkdownSkillInput;
  /** The rules of the Agent Skills standard the file breaks (the import goes on). */
  warnings: SkillMarkdownWarning[];
}

/** Delete a stored skill whose folder is gone. */
export interface SkillVolumeDeleteAction extends SkillVolumeActionBase {
  /** `"delete"`. */
  kind: "delete";
  /** The stored skill's id. */
  skillId: string;
}

/** One thing the core does to storage for a change on the volume. */
export type SkillVolumeImportAction =
  | SkillVolumeCreateAction
  | SkillVolumeUpdateAction
  | SkillVolumeDeleteAction;

/** A change that cannot be imported as it is; it stays unseen, so it is reported again until fixed. */
export interface SkillVolumeImportProblem {
  /** The skill's folder name. */
  name: string;
  /** The file at fault (`pdf-tools/SKILL.md`). */
  file: string;
  /** What is wrong, in words. */
  message: string;
  /** The error behind it. */
  error: KiloError;
  /** The volume's change. */
  change: SkillVolumeChange;
}

/** What {@link planSkillVolumeImport} decided. */
export interface SkillVolumeImportPlan {
  /** What to apply, deletes first, then by name. */
  actions: SkillVolumeImportAction[];
  /** Changes storage needs nothing for (it already has that content, or not the deleted skill): mark them seen. */
  unchanged: SkillVolumeChange[];
  /** Changes that cannot be imported. */
  problems: SkillVolumeImportProblem[];
}

/** Options of {@link planSkillVolumeImport}. */
export interface SkillVolumeImportOptions {
  /**
   * The kilo author (1–128 characters) of a commit: map e-mail addresses to
   * user ids here. Called with the newest commit of the change, or `null`
   * when no commit made it (the branch was moved back). Default: the
   * commit's author e-mail, else its name; `"outside"` without a commit.
   */
  authorOf?: ((commit: SkillVolumeCommit | null) => string) | undefined;
  /**
   * Texts of resource files by skill name, then path relative to the
   * skill's folder: put as `content` on the resources the SKILL.md refers
   * to. {@link syncSkillVolume} reads them from the volume.
   */
  resources?: ReadonlyMap<string, ReadonlyMap<string, string>> | undefined;
}

const AUTHOR_CHARS = 128;
const REASON_CHARS = 2000;

/**
 * Decides what to do to storage for changes found on a volume, without
 * touching anything: for each changed SKILL.md, parse it leniently (the
 * warnings kept) and compare it with the stored skill of that name (the
 * folder name; letter case ignored).
 *
 * - A created or updated folder becomes `create` when storage has no skill
 *   of that name, `update` when its content differs, and is `unchanged`
 *   when storage has it as it is (an import that ran twice, say).
 * - A deleted folder becomes `delete` when storage has the skill, else `unchanged`.
 * - The folder name wins over the front matter's `name` (the parser warns
 *   `name-directory`), so the skill keeps matching its folder.
 * - A SKILL.md that cannot be read, or gives a skill that does not
 *   validate, and a folder whose name a structured skill has, are `problems`.
 *
 * @example
 * ```ts
 * const found = await volume.changes(scope);
 * const plan = planSkillVolumeImport(found.changes, await storedSkillsOf(scope));
 * for (const action of plan.actions) await apply(action);
 * await volume.markSeen(scope, [...plan.actions.map((action) => action.change), ...plan.unchanged]);
 * ```
 */
export function planSkillVolumeImport(
  changes: readonly SkillVolumeChange[],
  stored: readonly SkillVolumeStoredSkill[],
  options: SkillVolumeImportOptions = {},
): SkillVolumeImportPlan {
  const authorOf = options.authorOf ?? defaultAuthor;
  const byName = new Map<string, SkillVolumeStoredSkill>();
  for (const skill of stored) {
    const key = skill.name.trim().toLowerCase();
    if (!byName.has(key)) byName.set(key, skill);
  }
  const plan: SkillVolumeImportPlan = { actions: [], unchanged: [], problems: [] };
  const sorted = [...changes].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const deletes: SkillVolumeImportAction[] = [];
  const writes: SkillVolumeImportAction[] = [];

  for (const change of sorted) {
    const existing = byName.get(change.name.toLowerCase());
    const base = {
      name: change.name,
      author: clip(authorOf(change.commits[0] ?? null).trim(), AUTHOR_CHARS) || "outside",
      reason: reasonOf(change),
      change,
    };
    if (change.skill === null) {
      if (existing) deletes.push({ ...base, kind: "delete", skillId: existing.id });
      else plan.unchanged.push(change);
      continue;
    }
    const file = `${change.name}/${SKILL_VOLUME_FILE}`;
    const problem = (message: string, error: KiloError) =>
      plan.problems.push({ name: change.name, file, message, error, change });

    let parsed: { skill: MarkdownSkillInput; warnings: SkillMarkdownWarning[] };
    try {
      parsed = parseSkillMarkdown(change.skill.markdown, { file });
    } catch (error) {
      const failure = toKiloError(error, "VALIDATION_FAILED", `${file}: cannot load the skill`);
      problem(failure.message, failure);
      continue;
    }
    const texts = options.resources?.get(change.name);
    const skill: MarkdownSkillInput = {
      ...parsed.skill,
      name: change.name,
      markdown: {
        ...parsed.skill.markdown,
        resources: parsed.skill.markdown.resources.map((resource) => {
          const content = texts?.get(resource.path);
          return content === undefined ? resource : { ...resource, content };
        }),
      },
    };
    const warnings = [...parsed.warnings];
    if (parsed.skill.name !== change.name) {
      warnings.push({
        file,
        rule: "name-directory",
        message: `kilo names the skill ${JSON.stringify(change.name)} after its folder, not ${JSON.stringify(parsed.skill.name)}`,
      });
    }
    const checked = CreateSkillInputSchema.safeParse(skill);
    if (!checked.success) {
      const message = `${file}: not a usable skill: ${checked.error.issues
        .map((issue) => `${issue.path.join(".")}: ${issue.message}`)
        .join("; ")}`;
      problem(message, new KiloError("VALIDATION_FAILED", message, { details: checked.error.issues }));
      continue;
    }
    if (!existing) {
      writes.push({ ...base, kind: "create", skill, warnings });
    } else if (existing.markdown === undefined) {
      const message = `${file}: a structured skill is named '${existing.name}' (${existing.id}); a SKILL.md cannot replace it`;
      problem(message, new KiloError("CONFLICT", message));
    } else if (sameContent(existing, skill)) {
      plan.unchanged.push(change);
    } else {
      writes.push({ ...base, kind: "update", skillId: existing.id, skill, warnings });
    }
  }
  plan.actions = [...deletes, ...writes];
  return plan;
}

/** Options of {@link syncSkillVolume}. */
export interface SkillVolumeSyncOptions extends Omit<SkillVolumeImportOptions, "resources"> {
  /** The volume to import from. */
  volume: SkillVolume;
  /** The scope to import. */
  scope: SkillScope;
  /** The scope's skills as storage has them now; called once, after the volume reported changes. */
  storedSkills: () => Promise<readonly SkillVolumeStoredSkill[]>;
  /**
   * Applies one action to storage as a skill version with the action's
   * `author` and `reason`: create, update (the patch is `action.skill`) or
   * delete. A throw fails that action only; it stays unseen and is tried
   * again on the next sync.
   */
  apply: (action: SkillVolumeImportAction) => Promise<void>;
}

/** What {@link syncSkillVolume} did. */
export interface SkillVolumeSyncResult {
  /** Actions applied (and marked seen). */
  applied: SkillVolumeImportAction[];
  /** Changes that needed nothing (marked seen). */
  unchanged: SkillVolumeChange[];
  /** Changes that cannot be imported (not marked seen). */
  problems: SkillVolumeImportProblem[];
  /** Actions whose `apply` threw (not marked seen). */
  failed: Array<{ action: SkillVolumeImportAction; error: KiloError }>;
  /** The commit the volume made of working-tree edits, if any. */
  pickedUp: SkillVolumeCommit | null;
  /** Folders that are not skills, for a warning. */
  ignored: SkillVolumeIgnoredEntry[];
}

const RESOURCE_TEXT_CHARS = 500_000;

/**
 * One import round for a scope: asks the volume for its changes (which
 * commits working-tree edits), plans them with
 * {@link planSkillVolumeImport} (reading the text of resource files the
 * SKILL.md files refer to, when the volume has `readResource`), applies
 * each action through `apply`, and marks what was applied or needed
 * nothing as seen. Problems and failed actions stay unseen, so they are
 * reported again until fixed: importing is at least once, and planning
 * against storage's current content makes a repeat harmless.
 *
 * @example
 * ```ts
 * const result = await syncSkillVolume({
 *   volume,
 *   scope: { kind: "team", id: "bakers" },
 *   storedSkills: () => skillsOfScope({ kind: "team", id: "bakers" }),
 *   apply: async (action) => {
 *     const change = { author: action.author, reason: action.reason };
 *     if (action.kind === "create") await createInScope(action.skill, change);
 *     else if (action.kind === "update") await updateSkill(action.skillId, action.skill, change);
 *     else await deleteSkill(action.skillId);
 *   },
 * });
 * for (const problem of result.problems) logger.warn(problem.message);
 * ```
 */
export async function syncSkillVolume(options: SkillVolumeSyncOptions): Promise<SkillVolumeSyncResult> {
  const { volume, scope } = options;
  const found = await volume.changes(scope);
  const result: SkillVolumeSyncResult = {
    applied: [],
    unchanged: [],
    problems: [],
    failed: [],
    pickedUp: found.pickedUp,
    ignored: found.ignored,
  };
  if (found.changes.length === 0) return result;

  const stored = await options.storedSkills();
  const resources = await referencedTexts(volume, scope, found.changes);
  const plan = planSkillVolumeImport(found.changes, stored, { authorOf: options.authorOf, resources });
  result.unchanged = plan.unchanged;
  result.problems = plan.problems;
  for (const action of plan.actions) {
    try {
      await options.apply(action);
      result.applied.push(action);
    } catch (error) {
      result.failed.push({
        action,
        error: toKiloError(
          error,
          "HOST_CALLBACK_FAILED",
          `Importing ${action.name} from the skill volume failed`,
        ),
      });
    }
  }
  const seen = [...result.applied.map((action) => action.change), ...result.unchanged];
  if (seen.length > 0) await volume.markSeen(scope, seen);
  return result;
}

/** Texts of the resource files the changed SKILL.md files refer to and the volume holds (UTF-8 only). */
async function referencedTexts(
  volume: SkillVolume,
  scope: SkillScope,
  changes: readonly SkillVolumeChange[],
): Promise<Map<string, Map<string, string>>> {
  const texts = new Map<string, Map<string, string>>();
  if (!volume.readResource) return texts;
  const decoder = new TextDecoder("utf-8", { fatal: true });
  for (const change of changes) {
    if (change.skill === null || change.skill.resources.length === 0) continue;
    let referenced: string[];
    try {
      referenced = parseSkillMarkdown(change.skill.markdown).skill.markdown.resources.map(
        (resource) => resource.path,
      );
    } catch {
      continue; // the plan reports the unreadable file
    }
    const held = new Set(change.skill.resources);
    const found = new Map<string, string>();
    for (const path of referenced) {
      if (!held.has(path)) continue;
      const bytes = await volume.readResource(scope, change.name, path, { version: change.skill.version });
      if (bytes === null) continue;
      let text: string;
      try {
        text = decoder.decode(bytes);
      } catch {
        continue; // binary: the skill lists the path, without content
      }
      if (text.length <= RESOURCE_TEXT_CHARS) found.set(path, text);
    }
    if (found.size > 0) texts.set(change.name, found);
  }
  return texts;
}

function defaultAuthor(commit: SkillVolumeCommit | null): string {
  if (commit === null) return "outside";
  return commit.author.email.trim() || commit.author.name.trim() || "outside";
}

function reasonOf(change: SkillVolumeChange): string {
  const lines = [...change.commits].reverse().map((commit) => {
    const text = (commit.reason ?? commit.message).trim().replace(/\s*\n\s*/g, " ");
    return `${text || "No message"} (commit ${commit.id.slice(0, 7)})`;
  });
  const reason = lines.length > 0 ? lines.join("\n") : `${change.name} was ${change.kind} outside kilo`;
  return clip(reason, REASON_CHARS);
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** Whether the stored skill already has this name, description, triggers and Markdown body. */
function sameContent(stored: SkillVolumeStoredSkill, skill: MarkdownSkillInput): boolean {
  const canonical = (value: Pick<SkillVolumeStoredSkill, "name" | "description" | "triggers" | "markdown">) =>
    JSON.stringify(sortedKeys({ ...value, name: value.name.trim() }));
  return (
    canonical({
      name: stored.name,
      description: stored.description,
      triggers: stored.triggers,
      markdown: stored.markdown,
    }) ===
    canonical({
      name: skill.name,
      description: skill.description,
      triggers: skill.triggers,
      markdown: skill.markdown,
    })
  );
}

function sortedKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortedKeys);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
        .map((key) => [key, sortedKeys((value as Record<string, unknown>)[key])]),
    );
  }
  return value;
}
