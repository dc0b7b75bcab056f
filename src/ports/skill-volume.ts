import type { SkillScope } from "../domain/scope.js";

/**
 * Who made a change to a volume, as given to it: a name and an optional
 * e-mail address (default `""`). Neither may contain `<`, `>` or a line break.
 */
export interface SkillVolumeIdentity {
  /** A display name, 1–200 characters: a user id, "Ann Baker", "kilo". */
  name: string;
  /** An e-mail address, at most 200 characters. Default `""`. */
  email?: string | undefined;
}

/** A person as a volume read it back from a commit. */
export interface SkillVolumePerson {
  /** The name recorded. */
  name: string;
  /** The e-mail address recorded; `""` when none was. */
  email: string;
}

/**
 * Where a commit came from:
 * - `kilo`: a `write`, `remove` or `rollback` through the volume.
 * - `picked-up`: kilo committing files edited, added or deleted in the
 *   working tree by someone else (see {@link SkillVolume.changes}).
 * - `outside`: a commit kilo did not make (a hand `git commit`, a merge, a pull).
 */
export type SkillVolumeCommitOrigin = "kilo" | "picked-up" | "outside";

/** One commit of a scope's repository. */
export interface SkillVolumeCommit {
  /** The commit id (40 hex digits); what `read({ version })` and `rollback` take. */
  id: string;
  /** Who made the change (the commit's author). */
  author: SkillVolumePerson;
  /** When the change was made (the author time, to the second). */
  time: Date;
  /** The whole commit message as written. */
  message: string;
  /**
   * Why: for kilo's own commits the `reason` option given (or `null` when
   * none was); for commits made outside kilo the whole message, trimmed
   * (`null` when empty); for picked-up edits a sentence saying so.
   */
  reason: string | null;
  /** Where the commit came from. */
  origin: SkillVolumeCommitOrigin;
}

/** A resource file of a skill, written beside its SKILL.md. */
export interface SkillVolumeResourceFile {
  /**
   * A path relative to the skill's folder with `/` between parts
   * (`references/api.md`, `scripts/check.py`): no `..`, `.` or `.git` part,
   * no backslash, not `SKILL.md` itself; at most 1,000 characters.
   */
  path: string;
  /** The file's content: text (written as UTF-8) or bytes. */
  content: string | Uint8Array;
}

/** What {@link SkillVolume.write} writes: one skill's folder. */
export interface SkillVolumeWriteInput {
  /**
   * The skill's folder name, by the Agent Skills name rule: 1–64 lowercase
   * letters and digits in runs joined by single hyphens (`pdf-tools`).
   */
  name: string;
  /** The SKILL.md text, as it should be on disk (at most 1,000,000 characters). */
  markdown: string;
  /**
   * The skill's resource files (at most 500). When given, the folder holds
   * exactly the SKILL.md and these files afterwards (others are deleted);
   * when absent, the folder's other files stay as they are.
   */
  resources?: SkillVolumeResourceFile[] | undefined;
}

/** Who makes a change and why: recorded in the commit the change makes. */
export interface SkillVolumeChangeOptions {
  /** The commit's author. Default: the volume's own identity. */
  author?: SkillVolumeIdentity | undefined;
  /** Why the change was made (at most 2,000 characters); carried in the commit message. */
  reason?: string | undefined;
}

/** What a change through the volume did. */
export interface SkillVolumeWriteResult {
  /** The commit the change made, or `null` when the content was already that (nothing to commit). */
  commit: SkillVolumeCommit | null;
}

/** A skill as it is in a scope's repository. */
export interface SkillVolumeSkill {
  /** The folder name (`pdf-tools`). */
  name: string;
  /** The SKILL.md text. */
  markdown: string;
  /** The other files of the folder, relative to it with `/`, sorted (`references/api.md`). */
  resources: string[];
  /** The commit this was read at. */
  version: string;
}

/** Options of {@link SkillVolume.read} and {@link SkillVolume.readResource}. */
export interface SkillVolumeReadOptions {
  /** A commit id (4–40 hex digits, abbreviated ids expanded) to read at. Default: the latest commit. */
  version?: string | undefined;
}

/** Options of {@link SkillVolume.history}. */
export interface SkillVolumeHistoryOptions {
  /** Most versions to return, newest first (1–500, default 50). */
  limit?: number | undefined;
}

/** One version of a skill: a commit that touched its folder. */
export interface SkillVolumeVersion extends SkillVolumeCommit {
  /** What the commit did to the skill. */
  change: "created" | "updated" | "deleted";
  /**
   * The unified diff (jsdiff, three lines of context) of the skill's
   * SKILL.md from the commit's first parent to the commit: from empty text
   * when created, to empty text when deleted, and no hunks when only a
   * resource file changed.
   */
  diff: string;
}

/**
 * A skill changed outside kilo since kilo last saw it: edited, added or
 * deleted in the working tree (and committed by kilo when picked up), or
 * changed by commits someone else made.
 */
export interface SkillVolumeChange {
  /** The folder name. */
  name: string;
  /** `created`: kilo has not seen this skill; `updated`: it differs from what kilo saw; `deleted`: it is gone. */
  kind: "created" | "updated" | "deleted";
  /** The skill as it is now (at the latest commit); `null` when deleted. */
  skill: SkillVolumeSkill | null;
  /**
   * The commits that made the change, newest first (at most 20): the commit
   * kilo made when it picked up working-tree edits, and commits made outside
   * kilo. Never empty, except when the branch was moved back (a `git reset`)
   * so that no commit made the change.
   */
  commits: SkillVolumeCommit[];
  /**
   * What {@link SkillVolume.markSeen} records: the state kilo saw before and
   * the state now. Opaque to the core; pass the change back unchanged.
   */
  marker: { from: string | null; to: string | null };
}

/** A file or folder at the top of a scope's repository that is not a skill, and why. */
export interface SkillVolumeIgnoredEntry {
  /** The entry's path in the repository (`Python Testing`, `README.md`). */
  path: string;
  /** Why it is not a skill, in words. */
  reason: string;
}

/** What {@link SkillVolume.changes} found. */
export interface SkillVolumeChanges {
  /** Skills changed outside kilo since kilo last saw them, by name. */
  changes: SkillVolumeChange[];
  /** The commit kilo made of working-tree edits, or `null` when there were none. */
  pickedUp: SkillVolumeCommit | null;
  /**
   * Folders at the top of the repository that look like skills but cannot
   * be one (a name breaking the Agent Skills rule), for the core to warn about.
   */
  ignored: SkillVolumeIgnoredEntry[];
}

/**
 * The SkillVolume port: skill scopes kept as folders of SKILL.md files on a
 * versioned volume, beside storage. kilo ships `gitVolume()` in
 * `kilo/volumes/git` (one git repository per scope); the core imports what
 * people change there with `syncSkillVolume` (see `docs/volumes-git.md`).
 *
 * Layout, per scope: one folder per skill, named by the Agent Skills rule,
 * holding `SKILL.md` and its resource files (`pdf-tools/SKILL.md`,
 * `pdf-tools/references/forms.md`). Scopes never share anything.
 *
 * Semantics an adapter must keep:
 *
 * - Every change through the volume (`write`, `remove`, `rollback`) is one
 *   version (one commit) carrying its author and reason, or none when the
 *   content is already that. History is never rewritten: `rollback` writes
 *   the old content as a new version.
 * - A scope's storage is created on its first write; reading a scope that
 *   has none gives nothing (`null`, `[]`), not an error.
 * - `changes` reports what changed outside kilo since kilo last saw each
 *   skill: working-tree edits (which the volume commits first, authored by
 *   its own identity, so history stays complete) and versions made by
 *   others. What kilo writes itself is seen already. A change stays
 *   reported until `markSeen` is called with it, so a core that fails while
 *   importing gets it again next time (at least once). `markSeen` ignores a
 *   change that is stale (kilo or someone else changed the skill again since).
 * - Names and paths are validated so nothing is written outside the skill's
 *   folder: a skill name breaking the Agent Skills rule, a resource path
 *   climbing out, a malformed scope or version is `VALIDATION_FAILED` and
 *   changes nothing.
 * - `read`, `list` and `history` see committed content; working-tree edits
 *   appear once `changes` (or any change through the volume) picked them up.
 *
 * Errors: throw `KiloError` naming the adapter (`adapter: "git"`):
 * `VALIDATION_FAILED` (bad input), `NOT_FOUND` (an unknown version, or a
 * rollback to a version where the skill did not exist), `CONFIGURATION_INVALID`
 * (a missing driver, an unusable root), `STORAGE_FAILED` (the file system or
 * repository failed), `CLOSED` (used after `close`).
 *
 * @example
 * ```ts
 * import { gitVolume } from "kilo/volumes/git";
 *
 * const volume = gitVolume({ root: "/srv/kilo/skills", author: { name: "kilo", email: "kilo@bakery.example" } });
 * const scope = { kind: "team", id: "bakers" } as const;
 * await volume.write(scope, { name: "cake-orders", markdown }, { author: { name: "ann" }, reason: "Ask for the pickup day" });
 * const versions = await volume.history(scope, "cake-orders");
 * await volume.rollback(scope, "cake-orders", versions[1]!.id, { reason: "Back to the old steps" });
 *
 * const found = await volume.changes(scope); // hand edits, hand commits
 * // ...import found.changes into storage, then:
 * await volume.markSeen(scope, found.changes);
 * ```
 */
export interface SkillVolume {
  /** Names the backend in errors and logs, e.g. `git`. */
  readonly name: string;
  /**
   * Writes one skill's folder (its SKILL.md, and its resource files when
   * given) as one version authored and explained by `options`. Creates the
   * scope's storage on first use. Kilo has seen what it wrote.
   */
  write(
    scope: SkillScope,
    input: SkillVolumeWriteInput,
    options?: SkillVolumeChangeOptions,
  ): Promise<SkillVolumeWriteResult>;
  /** Deletes a skill's folder as one version; `{ commit: null }` when there is no such skill. */
  remove(
    scope: SkillScope,
    name: string,
    options?: SkillVolumeChangeOptions,
  ): Promise<SkillVolumeWriteResult>;
  /** The skill at the latest version, or at `options.version`; `null` when it did not exist there. */
  read(scope: SkillScope, name: string, options?: SkillVolumeReadOptions): Promise<SkillVolumeSkill | null>;
  /**
   * Optional: one resource file's bytes (`path` relative to the skill's
   * folder), at the latest version or `options.version`; `null` when absent.
   */
  readResource?(
    scope: SkillScope,
    name: string,
    path: string,
    options?: SkillVolumeReadOptions,
  ): Promise<Uint8Array | null>;
  /** The scope's skills at the latest version, sorted by name. */
  list(scope: SkillScope): Promise<SkillVolumeSkill[]>;
  /** The versions that touched the skill's folder, newest first, each with its SKILL.md diff. */
  history(
    scope: SkillScope,
    name: string,
    options?: SkillVolumeHistoryOptions,
  ): Promise<SkillVolumeVersion[]>;
  /**
   * Restores the skill's folder as it was at `version` (a commit id) as a
   * new version; the reason defaults to saying which version was restored.
   * `NOT_FOUND` when the version is unknown or the skill did not exist there.
   */
  rollback(
    scope: SkillScope,
    name: string,
    version: string,
    options?: SkillVolumeChangeOptions,
  ): Promise<SkillVolumeWriteResult>;
  /**
   * What changed outside kilo since kilo last saw each skill, after
   * committing working-tree edits. Reports the same changes again until
   * {@link SkillVolume.markSeen} is called with them.
   */
  changes(scope: SkillScope): Promise<SkillVolumeChanges>;
  /** Records that kilo has seen (imported) these changes; stale ones are ignored. */
  markSeen(scope: SkillScope, changes: readonly SkillVolumeChange[]): Promise<void>;
  /** Waits for changes under way, then refuses further calls with `CLOSED`. */
  close?(): Promise<void>;
}
