import * as fs from "node:fs";
import {
  chmod,
  lstat,
  mkdir,
  readdir,
  readFile,
  rename,
  rm,
  rmdir,
  unlink,
  writeFile,
} from "node:fs/promises";
import { join, resolve } from "node:path";
import { createTwoFilesPatch } from "diff";
import { z } from "zod";
import { type SkillScope, scopeKey } from "../../../src/domain/scope.js";
import { KiloError } from "../../../src/errors.js";
import type { Clock } from "../../../src/ports/clock.js";
import type {
  SkillVolume,
  SkillVolumeChange,
  SkillVolumeChangeOptions,
  SkillVolumeChanges,
  SkillVolumeCommit,
  SkillVolumeHistoryOptions,
  SkillVolumeIdentity,
  SkillVolumeIgnoredEntry,
  SkillVolumeReadOptions,
  SkillVolumeSkill,
  SkillVolumeVersion,
  SkillVolumeWriteInput,
  SkillVolumeWriteResult,
} from "../../../src/ports/skill-volume.js";
import {
  isSkillFolderName,
  SKILL_VOLUME_FILE,
  SkillFolderNameSchema,
  SkillVolumeChangeOptionsSchema,
  SkillVolumeHistoryOptionsSchema,
  SkillVolumeIdentitySchema,
  SkillVolumeReadOptionsSchema,
  SkillVolumeResourcePathSchema,
  SkillVolumeVersionSchema,
  SkillVolumeWriteInputSchema,
  skillVolumeScopePath,
} from "../../../src/skills/skill-volume-layout.js";
import { kiloCommitMessage, type PickedUpFile, pickUpMessage, readCommitMessage } from "./commit-messages.js";
import {
  type GitCommitEntry,
  type GitTreeEntry,
  type IsomorphicGit,
  isIsomorphicGit,
  loadIsomorphicGit,
} from "./git-client.js";

const ADAPTER = "git";
/** The branch a new repository starts on. */
const DEFAULT_BRANCH = "main";
/** Where kilo keeps what it has seen, inside `.git` (never committed). */
const STATE_PATH = ["kilo", "seen.json"];
/** Most commits one change reports. */
const CHANGE_COMMITS = 20;
/** Most commits `changes` walks back to attribute changes. */
const ATTRIBUTION_WALK = 2000;
const SYMLINK_MODE = "120000";

/** Options of {@link gitVolume}. */
export interface GitVolumeOptions {
  /**
   * The folder holding one repository per scope: `<root>/system`,
   * `<root>/team/<id>`, `<root>/user/<id>`, `<root>/bot/<id>` (created on
   * first write). Relative paths are resolved against the working directory
   * when the volume is created.
   */
  root: string;
  /**
   * The volume's own identity: the committer of every commit kilo makes,
   * the author of changes made without an `author`, and of working-tree
   * edits kilo picks up (it cannot know who made those).
   */
  author: SkillVolumeIdentity;
  /**
   * isomorphic-git's module, when the host bundles its own copy
   * (`import * as git from "isomorphic-git"`). Default: the optional peer
   * dependency `isomorphic-git`, loaded on first use.
   */
  git?: IsomorphicGit;
  /** Where commit times come from. Default: the wall clock. */
  clock?: Clock;
}

/** A {@link SkillVolume} on git repositories; see {@link gitVolume}. */
export interface GitVolume extends SkillVolume {
  /** `"git"`. */
  readonly name: "git";
  /** The absolute folder holding the scopes' repositories. */
  readonly root: string;
  /** One resource file's bytes at the latest version or `options.version`; `null` when absent. */
  readResource(
    scope: SkillScope,
    name: string,
    path: string,
    options?: SkillVolumeReadOptions,
  ): Promise<Uint8Array | null>;
  /** The repository folder of a scope (whether or not it exists yet). */
  directoryOf(scope: SkillScope): string;
  /** Waits for changes under way, then refuses further calls with `CLOSED`. */
  close(): Promise<void>;
}

/** Changes to one repository run one at a time in this process, whichever volume object makes them. */
const queues = new Map<string, Promise<unknown>>();

function exclusive<T>(key: string, work: () => Promise<T>): Promise<T> {
  const previous = queues.get(key) ?? Promise.resolve();
  const run = previous.then(work, work);
  const settled = run.then(
    () => undefined,
    () => undefined,
  );
  queues.set(key, settled);
  void settled.then(() => {
    if (queues.get(key) === settled) queues.delete(key);
  });
  return run;
}

interface Repo {
  git: IsomorphicGit;
  dir: string;
  /** isomorphic-git's cache, shared by the calls of one operation. */
  cache: object;
  /** Root tree entries by commit id, for this operation. */
  roots: Map<string, Promise<GitTreeEntry[]>>;
  commits: Map<string, Promise<GitCommitEntry>>;
}

/** A file of a skill's folder as a commit holds it. */
interface FolderFile {
  /** Relative to the skill's folder. */
  path: string;
  oid: string;
  mode: string;
}

/** A file to put in a skill's folder. */
interface FileToWrite {
  path: string;
  content: string | Uint8Array;
  executable?: boolean;
}

const SeenStateSchema = z.object({ skills: z.record(z.string(), z.string()) });

const OidSchema = z.string().regex(/^[0-9a-f]{40}$/);
const MarkSeenSchema = z.array(
  z.object({
    name: SkillFolderNameSchema,
    marker: z.object({ from: OidSchema.nullable(), to: OidSchema.nullable() }),
  }),
);

const utf8 = new TextDecoder("utf-8");

/**
 * A {@link SkillVolume} keeping each scope as a git repository of SKILL.md
 * folders, with isomorphic-git (no `git` binary needed) and `node:fs`.
 *
 * - Layout: `<root>/system`, `<root>/team/<id>`, `<root>/user/<id>`,
 *   `<root>/bot/<id>` (a `:` in an id is written `%3A`), each a repository
 *   with one folder per skill: `<name>/SKILL.md` and its resource files.
 *   A repository is created (`git init`, branch `main`) on the scope's first
 *   change; kilo commits to whatever branch is checked out.
 * - Every change is one commit: the author is the `author` option of the
 *   change (default: the volume's identity), the committer the volume's
 *   identity, the message `Update <name>: <reason>` with the whole reason as
 *   the body and a `Kilo-Change: <add|update|remove|rollback|pickup>` trailer.
 * - Before every change, and in `changes`, files edited, added or deleted in
 *   the working tree (not ignored by `.gitignore`) are committed as one
 *   "Pick up changes made outside kilo" commit authored by the volume.
 * - What kilo has seen of each skill (its folder's tree id) is kept in
 *   `.git/kilo/seen.json`, never committed. `changes` compares the latest
 *   commit against it, so hand commits, merges, pulls and picked-up edits
 *   are all reported, and kilo's own writes are not.
 * - Changes to one repository are serialized within the process. Two
 *   processes writing one repository at once are not coordinated; see
 *   `docs/volumes-git.md`.
 *
 * Errors are `KiloError`s with `adapter: "git"`: `VALIDATION_FAILED`,
 * `NOT_FOUND`, `CONFLICT` (a file kilo did not write is in the way),
 * `CONFIGURATION_INVALID` (options, or `isomorphic-git` not installed),
 * `STORAGE_FAILED` (the file system or repository failed) and `CLOSED`.
 *
 * @example
 * ```ts
 * import { gitVolume } from "kilo/volumes/git";
 *
 * const volume = gitVolume({ root: "./skills", author: { name: "kilo", email: "kilo@bakery.example" } });
 * const { commit } = await volume.write(
 *   { kind: "system" },
 *   { name: "cake-orders", markdown: "---\nname: cake-orders\ndescription: Takes cake orders.\n---\n# Steps\n" },
 *   { author: { name: "ann", email: "ann@bakery.example" }, reason: "First version" },
 * );
 * ```
 */
export function gitVolume(options: GitVolumeOptions): GitVolume {
  if (options === null || typeof options !== "object") {
    throw configuration("gitVolume needs options: { root, author }");
  }
  if (typeof options.root !== "string" || options.root.trim().length === 0) {
    throw configuration("gitVolume needs `root`: the folder holding the scopes' repositories");
  }
  const identityResult = SkillVolumeIdentitySchema.safeParse(options.author);
  if (!identityResult.success) {
    throw configuration(
      `gitVolume needs \`author\`: the volume's identity, { name, email? } (${identityResult.error.issues
        .map((issue) => `${issue.path.join(".") || "author"}: ${issue.message}`)
        .join("; ")})`,
    );
  }
  if (options.git !== undefined && !isIsomorphicGit(options.git)) {
    throw configuration("gitVolume's `git` option must be isomorphic-git's module");
  }
  const root = resolve(options.root);
  const identity = { name: identityResult.data.name, email: identityResult.data.email ?? "" };
  const clock = options.clock ?? { now: () => new Date() };
  const given = options.git;
  let closed = false;
  const pending = new Set<Promise<unknown>>();

  const directoryOf = (scope: SkillScope) => join(root, ...skillVolumeScopePath(scope));

  /** Runs `work` on the scope's repository (serialized with other changes when `change` is set). */
  function operate<T>(
    what: string,
    scope: SkillScope,
    change: boolean,
    work: (repo: Repo) => Promise<T>,
  ): Promise<T> {
    if (closed) {
      return Promise.reject(
        new KiloError("CLOSED", "The git volume was closed", { adapter: ADAPTER, status: 503 }),
      );
    }
    let dir: string;
    try {
      dir = directoryOf(scope);
    } catch (error) {
      return Promise.reject(withAdapter(error));
    }
    const run = async () => {
      const git = given ?? (await loadIsomorphicGit());
      const repo: Repo = { git, dir, cache: {}, roots: new Map(), commits: new Map() };
      try {
        return await work(repo);
      } catch (error) {
        if (KiloError.is(error)) throw withAdapter(error);
        const reason = error instanceof Error ? error.message : String(error);
        throw new KiloError(
          "STORAGE_FAILED",
          `The git volume could not ${what} in scope '${scopeKey(scope)}': ${reason}`,
          { adapter: ADAPTER, cause: error },
        );
      }
    };
    const result = change ? exclusive(dir, run) : run();
    pending.add(result);
    void result.then(
      () => pending.delete(result),
      () => pending.delete(result),
    );
    return result;
  }

  // ----- reading commits and trees -----

  function readCommitCached(repo: Repo, oid: string): Promise<GitCommitEntry> {
    let found = repo.commits.get(oid);
    if (!found) {
      found = repo.git.readCommit({ fs, dir: repo.dir, oid, cache: repo.cache });
      repo.commits.set(oid, found);
    }
    return found;
  }

  function rootEntries(repo: Repo, commitOid: string): Promise<GitTreeEntry[]> {
    let found = repo.roots.get(commitOid);
    if (!found) {
      found = readCommitCached(repo, commitOid).then(
        async (entry) =>
          (await repo.git.readTree({ fs, dir: repo.dir, oid: entry.commit.tree, cache: repo.cache })).tree,
      );
      repo.roots.set(commitOid, found);
    }
    return found;
  }

  /** The tree id of a top-level folder at a commit, or `null`. */
  async function folderOid(repo: Repo, commitOid: string | null, name: string): Promise<string | null> {
    if (commitOid === null) return null;
    const entry = (await rootEntries(repo, commitOid)).find((candidate) => candidate.path === name);
    return entry?.type === "tree" ? entry.oid : null;
  }

  /**
   * Every file below a tree, sorted by path: regular files, and symlinks
   * too with `withLinks` (kilo never reads or restores a link, but removes
   * one when a folder must hold exactly what it writes). Submodules are left out.
   */
  async function filesOf(repo: Repo, treeOid: string, withLinks = false, prefix = ""): Promise<FolderFile[]> {
    const { tree } = await repo.git.readTree({ fs, dir: repo.dir, oid: treeOid, cache: repo.cache });
    const files: FolderFile[] = [];
    for (const entry of tree) {
      const path = `${prefix}${entry.path}`;
      if (entry.type === "tree") files.push(...(await filesOf(repo, entry.oid, withLinks, `${path}/`)));
      else if (entry.type === "blob" && (withLinks || entry.mode !== SYMLINK_MODE)) {
        files.push({ path, oid: entry.oid, mode: entry.mode });
      }
    }
    return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /** Every path a folder holds at a commit, links included (`[]` when there is no such folder). */
  async function folderPaths(repo: Repo, commitOid: string | null, name: string): Promise<FolderFile[]> {
    const oid = await folderOid(repo, commitOid, name);
    return oid === null ? [] : filesOf(repo, oid, true);
  }

  /** The files of a skill's folder at a commit, or `null` when the folder holds no SKILL.md there. */
  async function skillFiles(
    repo: Repo,
    commitOid: string | null,
    name: string,
  ): Promise<FolderFile[] | null> {
    const oid = await folderOid(repo, commitOid, name);
    if (oid === null) return null;
    const files = await filesOf(repo, oid);
    return files.some((file) => file.path === SKILL_VOLUME_FILE) ? files : null;
  }

  async function blobText(repo: Repo, oid: string): Promise<string> {
    const { blob } = await repo.git.readBlob({ fs, dir: repo.dir, oid, cache: repo.cache });
    return utf8.decode(blob);
  }

  async function skillAt(
    repo: Repo,
    commitOid: string | null,
    name: string,
  ): Promise<SkillVolumeSkill | null> {
    const files = await skillFiles(repo, commitOid, name);
    if (files === null || commitOid === null) return null;
    const skillFile = files.find((file) => file.path === SKILL_VOLUME_FILE)!;
    return {
      name,
      markdown: await blobText(repo, skillFile.oid),
      resources: files.filter((file) => file.path !== SKILL_VOLUME_FILE).map((file) => file.path),
      version: commitOid,
    };
  }

  async function skillText(repo: Repo, commitOid: string | null, name: string): Promise<string | null> {
    const files = await skillFiles(repo, commitOid, name);
    const skillFile = files?.find((file) => file.path === SKILL_VOLUME_FILE);
    return skillFile ? blobText(repo, skillFile.oid) : null;
  }

  function toVolumeCommit(entry: GitCommitEntry): SkillVolumeCommit {
    const { origin, reason } = readCommitMessage(entry.commit.message);
    return {
      id: entry.oid,
      author: { name: entry.commit.author.name, email: entry.commit.author.email },
      time: new Date(entry.commit.author.timestamp * 1000),
      message: entry.commit.message,
      reason,
      origin,
    };
  }

  /** Commits reachable from `start`, newest (by commit time) first, each once. */
  async function* walk(repo: Repo, start: string): AsyncGenerator<GitCommitEntry> {
    const queue: GitCommitEntry[] = [await readCommitCached(repo, start)];
    const queued = new Set([start]);
    while (queue.length > 0) {
      const next = queue.shift()!;
      yield next;
      for (const parent of next.commit.parent) {
        if (queued.has(parent)) continue;
        queued.add(parent);
        const entry = await readCommitCached(repo, parent);
        const at = queue.findIndex(
          (candidate) => candidate.commit.committer.timestamp < entry.commit.committer.timestamp,
        );
        if (at < 0) queue.push(entry);
        else queue.splice(at, 0, entry);
      }
    }
  }

  /**
   * Whether a commit changed a folder: its tree differs from the folder in
   * every parent (git's rule, so a merge bringing in a change made on a
   * branch is not counted twice).
   */
  async function touches(repo: Repo, entry: GitCommitEntry, name: string): Promise<boolean> {
    const after = await folderOid(repo, entry.oid, name);
    if (entry.commit.parent.length === 0) return after !== null;
    for (const parent of entry.commit.parent) {
      if ((await folderOid(repo, parent, name)) === after) return false;
    }
    return true;
  }

  // ----- the repository on disk -----

  async function head(repo: Repo): Promise<string | null> {
    if (!(await exists(join(repo.dir, ".git")))) return null;
    try {
      return await repo.git.resolveRef({ fs, dir: repo.dir, ref: "HEAD" });
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  async function ensureRepository(repo: Repo): Promise<void> {
    if (await exists(join(repo.dir, ".git"))) return;
    await mkdir(repo.dir, { recursive: true });
    await repo.git.init({ fs, dir: repo.dir, defaultBranch: DEFAULT_BRANCH });
  }

  function person(who: SkillVolumeIdentity | undefined) {
    const seconds = Math.floor(clock.now().getTime() / 1000);
    const chosen = who ?? identity;
    return { name: chosen.name, email: chosen.email ?? "", timestamp: seconds, timezoneOffset: 0 };
  }

  async function commitIndex(
    repo: Repo,
    message: string,
    author: SkillVolumeIdentity | undefined,
  ): Promise<SkillVolumeCommit> {
    const oid = await repo.git.commit({
      fs,
      dir: repo.dir,
      cache: repo.cache,
      message,
      author: person(author),
      committer: person(undefined),
    });
    return toVolumeCommit(await readCommitCached(repo, oid));
  }

  /**
   * Commits every file edited, added or deleted in the working tree (and
   * anything staged by hand) as one pick-up commit; `null` when the working
   * tree matches the latest commit.
   */
  async function pickUp(repo: Repo): Promise<SkillVolumeCommit | null> {
    const rows = await repo.git.statusMatrix({ fs, dir: repo.dir, cache: repo.cache });
    const files: PickedUpFile[] = [];
    for (const [filepath, inHead, inWorkdir, inStage] of rows) {
      if (inHead === 1 && inWorkdir === 1 && inStage === 1) continue;
      if (inWorkdir === 0) {
        if (inStage !== 0) await repo.git.remove({ fs, dir: repo.dir, filepath, cache: repo.cache });
      } else {
        await repo.git.add({ fs, dir: repo.dir, filepath, cache: repo.cache });
      }
      if (inHead === 1 && inWorkdir !== 1) {
        files.push({ path: filepath, status: inWorkdir === 0 ? "deleted" : "modified" });
      } else if (inHead === 0 && inWorkdir === 2) {
        files.push({ path: filepath, status: "added" });
      }
    }
    if (files.length === 0) return null;
    return commitIndex(repo, pickUpMessage(files), undefined);
  }

  /** Whether the index differs from the latest commit under `name`. */
  async function staged(repo: Repo, name: string): Promise<boolean> {
    const rows = await repo.git.statusMatrix({ fs, dir: repo.dir, filepaths: [name], cache: repo.cache });
    return rows.some(([, inHead, , inStage]) => !(inHead === 1 && inStage === 1));
  }

  /**
   * Makes a skill's folder hold `files` (and, with `exact`, nothing else it
   * held at `base`), staging every change. Never follows a symlink out of
   * the folder: a link in the way is removed, not written through.
   */
  async function putFolder(
    repo: Repo,
    name: string,
    files: readonly FileToWrite[],
    base: readonly FolderFile[],
    exact: boolean,
  ): Promise<void> {
    const folder = join(repo.dir, name);
    const link = await lstat(folder).catch(() => null);
    if (link?.isSymbolicLink()) await unlink(folder);
    else if (link && !link.isDirectory()) {
      throw new KiloError(
        "CONFLICT",
        `'${name}' in scope repository ${repo.dir} is a file, not a skill folder`,
        {
          adapter: ADAPTER,
        },
      );
    }
    if (exact) {
      const keep = new Set(files.map((file) => file.path));
      for (const old of base) {
        if (keep.has(old.path)) continue;
        await rm(join(folder, old.path), { force: true });
        await repo.git.remove({ fs, dir: repo.dir, filepath: `${name}/${old.path}`, cache: repo.cache });
      }
      await pruneEmptyFolders(folder);
    }
    await mkdir(folder, { recursive: true });
    for (const file of files) {
      const parts = file.path.split("/");
      for (let depth = 1; depth < parts.length; depth++) {
        const at = join(folder, ...parts.slice(0, depth));
        const stat = await lstat(at).catch(() => null);
        if (stat?.isSymbolicLink()) await unlink(at);
        else if (stat && !stat.isDirectory()) {
          throw new KiloError(
            "CONFLICT",
            `Cannot write '${name}/${file.path}': '${name}/${parts.slice(0, depth).join("/")}' is a file`,
            { adapter: ADAPTER },
          );
        }
        if (!stat || stat.isSymbolicLink()) await mkdir(at);
      }
      const target = join(folder, ...parts);
      const stat = await lstat(target).catch(() => null);
      if (stat?.isSymbolicLink()) await unlink(target);
      else if (stat?.isDirectory()) {
        throw new KiloError("CONFLICT", `Cannot write '${name}/${file.path}': it is a folder`, {
          adapter: ADAPTER,
        });
      }
      await writeFile(target, file.content);
      if (file.executable !== undefined) await chmod(target, file.executable ? 0o755 : 0o644);
      await repo.git.add({
        fs,
        dir: repo.dir,
        filepath: `${name}/${file.path}`,
        force: true,
        cache: repo.cache,
      });
    }
  }

  // ----- what kilo has seen -----

  const statePath = (repo: Repo) => join(repo.dir, ".git", ...STATE_PATH);

  async function readSeen(repo: Repo): Promise<Map<string, string>> {
    let text: string;
    try {
      text = await readFile(statePath(repo), "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return new Map();
      throw error;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
    // A damaged file means kilo has seen nothing: every skill is reported again, which importing tolerates.
    const state = SeenStateSchema.safeParse(parsed);
    return state.success ? new Map(Object.entries(state.data.skills)) : new Map();
  }

  async function writeSeen(repo: Repo, seen: Map<string, string>): Promise<void> {
    const path = statePath(repo);
    await mkdir(join(repo.dir, ".git", ...STATE_PATH.slice(0, -1)), { recursive: true });
    const skills = Object.fromEntries([...seen].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    const temporary = `${path}.${process.pid}.tmp`;
    await writeFile(temporary, `${JSON.stringify({ skills }, null, 2)}\n`);
    await rename(temporary, path);
  }

  /** Records that kilo has seen the skill's folder as it is at the latest commit. */
  async function see(repo: Repo, name: string): Promise<void> {
    const seen = await readSeen(repo);
    const at = await head(repo);
    const oid = (await skillFiles(repo, at, name)) ? await folderOid(repo, at, name) : null;
    if (oid === null) seen.delete(name);
    else seen.set(name, oid);
    await writeSeen(repo, seen);
  }

  async function resolveVersion(repo: Repo, version: string): Promise<string> {
    let oid: string;
    try {
      oid = await repo.git.expandOid({ fs, dir: repo.dir, oid: version, cache: repo.cache });
    } catch (error) {
      if (isNotFound(error))
        throw new KiloError("NOT_FOUND", `No version ${version} in ${repo.dir}`, { adapter: ADAPTER });
      if ((error as { code?: string }).code === "AmbiguousError") {
        throw new KiloError(
          "VALIDATION_FAILED",
          `Version ${version} is ambiguous; give more of the commit id`,
          {
            adapter: ADAPTER,
          },
        );
      }
      throw error;
    }
    try {
      await readCommitCached(repo, oid);
    } catch (error) {
      if ((error as { code?: string }).code === "ObjectTypeError" || isNotFound(error)) {
        throw new KiloError("NOT_FOUND", `${version} is not a commit in ${repo.dir}`, { adapter: ADAPTER });
      }
      throw error;
    }
    return oid;
  }

  // ----- the port -----

  async function write(
    scope: SkillScope,
    input: SkillVolumeWriteInput,
    options: SkillVolumeChangeOptions = {},
  ): Promise<SkillVolumeWriteResult> {
    const checked = parse(SkillVolumeWriteInputSchema, input, "skill volume write");
    const change = parse(SkillVolumeChangeOptionsSchema, options, "skill volume change options");
    return operate("write a skill", scope, true, async (repo) => {
      await ensureRepository(repo);
      await pickUp(repo);
      const before = await skillFiles(repo, await head(repo), checked.name);
      const files: FileToWrite[] = [
        { path: SKILL_VOLUME_FILE, content: checked.markdown },
        ...(checked.resources ?? []),
      ];
      const held = await folderPaths(repo, await head(repo), checked.name);
      await putFolder(repo, checked.name, files, held, checked.resources !== undefined);
      let commit: SkillVolumeCommit | null = null;
      if (await staged(repo, checked.name)) {
        const message = kiloCommitMessage(before ? "update" : "add", checked.name, change.reason ?? null);
        commit = await commitIndex(repo, message, change.author);
      }
      await see(repo, checked.name);
      return { commit };
    });
  }

  async function remove(
    scope: SkillScope,
    name: string,
    options: SkillVolumeChangeOptions = {},
  ): Promise<SkillVolumeWriteResult> {
    const checkedName = parse(SkillFolderNameSchema, name, "skill name");
    const change = parse(SkillVolumeChangeOptionsSchema, options, "skill volume change options");
    return operate("remove a skill", scope, true, async (repo) => {
      if (!(await exists(join(repo.dir, ".git")))) return { commit: null };
      await pickUp(repo);
      const before = await skillFiles(repo, await head(repo), checkedName);
      let commit: SkillVolumeCommit | null = null;
      if (before) {
        const folder = join(repo.dir, checkedName);
        const stat = await lstat(folder).catch(() => null);
        if (stat?.isSymbolicLink()) await unlink(folder);
        else await rm(folder, { recursive: true, force: true });
        await repo.git.remove({ fs, dir: repo.dir, filepath: checkedName, cache: repo.cache });
        commit = await commitIndex(
          repo,
          kiloCommitMessage("remove", checkedName, change.reason ?? null),
          change.author,
        );
      }
      await see(repo, checkedName);
      return { commit };
    });
  }

  async function read(
    scope: SkillScope,
    name: string,
    options: SkillVolumeReadOptions = {},
  ): Promise<SkillVolumeSkill | null> {
    const checkedName = parse(SkillFolderNameSchema, name, "skill name");
    const { version } = parse(SkillVolumeReadOptionsSchema, options, "skill volume read options");
    return operate("read a skill", scope, false, async (repo) => {
      const at = await head(repo);
      if (at === null) {
        if (version !== undefined) throw new KiloError("NOT_FOUND", `No version ${version} in ${repo.dir}`);
        return null;
      }
      return skillAt(repo, version === undefined ? at : await resolveVersion(repo, version), checkedName);
    });
  }

  async function readResource(
    scope: SkillScope,
    name: string,
    path: string,
    options: SkillVolumeReadOptions = {},
  ): Promise<Uint8Array | null> {
    const checkedName = parse(SkillFolderNameSchema, name, "skill name");
    const checkedPath = parse(SkillVolumeResourcePathSchema, path, "resource path");
    const { version } = parse(SkillVolumeReadOptionsSchema, options, "skill volume read options");
    return operate("read a resource", scope, false, async (repo) => {
      const at = await head(repo);
      if (at === null) {
        if (version !== undefined) throw new KiloError("NOT_FOUND", `No version ${version} in ${repo.dir}`);
        return null;
      }
      const commitOid = version === undefined ? at : await resolveVersion(repo, version);
      const files = await skillFiles(repo, commitOid, checkedName);
      const file = files?.find((candidate) => candidate.path === checkedPath);
      if (!file) return null;
      return (await repo.git.readBlob({ fs, dir: repo.dir, oid: file.oid, cache: repo.cache })).blob;
    });
  }

  async function list(scope: SkillScope): Promise<SkillVolumeSkill[]> {
    return operate("list skills", scope, false, async (repo) => {
      const at = await head(repo);
      if (at === null) return [];
      const skills: SkillVolumeSkill[] = [];
      const names = (await rootEntries(repo, at))
        .filter((entry) => entry.type === "tree" && isSkillFolderName(entry.path))
        .map((entry) => entry.path)
        .sort();
      for (const name of names) {
        const skill = await skillAt(repo, at, name);
        if (skill) skills.push(skill);
      }
      return skills;
    });
  }

  async function history(
    scope: SkillScope,
    name: string,
    options: SkillVolumeHistoryOptions = {},
  ): Promise<SkillVolumeVersion[]> {
    const checkedName = parse(SkillFolderNameSchema, name, "skill name");
    const { limit } = parse(SkillVolumeHistoryOptionsSchema, options, "skill volume history options");
    return operate("read a skill's history", scope, false, async (repo) => {
      const at = await head(repo);
      if (at === null) return [];
      const versions: SkillVolumeVersion[] = [];
      for await (const entry of walk(repo, at)) {
        if (versions.length >= limit) break;
        if (!(await touches(repo, entry, checkedName))) continue;
        const parent = entry.commit.parent[0] ?? null;
        const before = await skillText(repo, parent, checkedName);
        const after = await skillText(repo, entry.oid, checkedName);
        if (before === null && after === null) continue;
        const file = `${checkedName}/${SKILL_VOLUME_FILE}`;
        versions.push({
          ...toVolumeCommit(entry),
          change: before === null ? "created" : after === null ? "deleted" : "updated",
          diff: createTwoFilesPatch(
            file,
            file,
            before ?? "",
            after ?? "",
            parent === null || before === null ? "(none)" : parent.slice(0, 7),
            entry.oid.slice(0, 7),
          ),
        });
      }
      return versions;
    });
  }

  async function rollback(
    scope: SkillScope,
    name: string,
    version: string,
    options: SkillVolumeChangeOptions = {},
  ): Promise<SkillVolumeWriteResult> {
    const checkedName = parse(SkillFolderNameSchema, name, "skill name");
    const checkedVersion = parse(SkillVolumeVersionSchema, version, "version");
    const change = parse(SkillVolumeChangeOptionsSchema, options, "skill volume change options");
    return operate("roll a skill back", scope, true, async (repo) => {
      if ((await head(repo)) === null) {
        throw new KiloError("NOT_FOUND", `No version ${checkedVersion} in ${repo.dir}`);
      }
      await pickUp(repo);
      const target = await resolveVersion(repo, checkedVersion);
      const restored = await skillFiles(repo, target, checkedName);
      if (restored === null) {
        throw new KiloError(
          "NOT_FOUND",
          `Skill '${checkedName}' did not exist at version ${target.slice(0, 7)} (scope '${scopeKey(scope)}')`,
        );
      }
      const files: FileToWrite[] = [];
      for (const file of restored) {
        const { blob } = await repo.git.readBlob({ fs, dir: repo.dir, oid: file.oid, cache: repo.cache });
        files.push({ path: file.path, content: blob, executable: file.mode === "100755" });
      }
      await putFolder(repo, checkedName, files, await folderPaths(repo, await head(repo), checkedName), true);
      let commit: SkillVolumeCommit | null = null;
      if (await staged(repo, checkedName)) {
        const short = target.slice(0, 7);
        const reason = change.reason ?? `Restore ${checkedName} as it was at ${target}.`;
        const message = kiloCommitMessage("rollback", checkedName, reason, {
          target: short,
          subjectReason: change.reason ?? null,
        });
        commit = await commitIndex(repo, message, change.author);
      }
      await see(repo, checkedName);
      return { commit };
    });
  }

  async function changes(scope: SkillScope): Promise<SkillVolumeChanges> {
    return operate("look for changes", scope, true, async (repo) => {
      const none: SkillVolumeChanges = { changes: [], pickedUp: null, ignored: [] };
      if (!(await exists(join(repo.dir, ".git")))) {
        // A folder of skills put there by hand becomes a repository; no folder is an empty scope.
        const entries = await readdir(repo.dir).catch(() => [] as string[]);
        if (entries.length === 0) return none;
        await ensureRepository(repo);
      }
      const pickedUp = await pickUp(repo);
      const at = await head(repo);
      const current = new Map<string, string>();
      const ignored: SkillVolumeIgnoredEntry[] = [];
      for (const entry of at === null ? [] : await rootEntries(repo, at)) {
        if (entry.type !== "tree" || entry.path.startsWith(".")) continue;
        if (!isSkillFolderName(entry.path)) {
          ignored.push({
            path: entry.path,
            reason:
              "a skill folder's name must be 1 to 64 lowercase letters and digits joined by single hyphens",
          });
        } else if ((await skillFiles(repo, at, entry.path)) === null) {
          ignored.push({ path: entry.path, reason: `the folder has no ${SKILL_VOLUME_FILE}` });
        } else {
          current.set(entry.path, entry.oid);
        }
      }
      const seen = await readSeen(repo);
      const changed = new Map<string, { from: string | null; to: string | null }>();
      for (const [name, oid] of current) {
        if (seen.get(name) !== oid) changed.set(name, { from: seen.get(name) ?? null, to: oid });
      }
      for (const [name, oid] of seen) {
        if (!current.has(name)) changed.set(name, { from: oid, to: null });
      }
      if (changed.size === 0) return { ...none, pickedUp, ignored };

      // Attribute each change to the commits since the state kilo saw, walking back from the latest.
      const commits = new Map<string, SkillVolumeCommit[]>([...changed.keys()].map((name) => [name, []]));
      const open = new Set(changed.keys());
      let walked = 0;
      if (at !== null) {
        for await (const entry of walk(repo, at)) {
          if (open.size === 0 || ++walked > ATTRIBUTION_WALK) break;
          for (const name of [...open]) {
            if ((await folderOid(repo, entry.oid, name)) === changed.get(name)!.from) {
              open.delete(name);
              continue;
            }
            const found = commits.get(name)!;
            if (found.length < CHANGE_COMMITS && (await touches(repo, entry, name))) {
              found.push(toVolumeCommit(entry));
            }
          }
        }
      }
      const result: SkillVolumeChange[] = [];
      for (const name of [...changed.keys()].sort()) {
        const marker = changed.get(name)!;
        result.push({
          name,
          kind: marker.to === null ? "deleted" : marker.from === null ? "created" : "updated",
          skill: marker.to === null ? null : await skillAt(repo, at, name),
          commits: commits.get(name)!,
          marker,
        });
      }
      return { changes: result, pickedUp, ignored };
    });
  }

  async function markSeen(scope: SkillScope, seenChanges: readonly SkillVolumeChange[]): Promise<void> {
    const checked = parse(MarkSeenSchema, seenChanges, "changes to mark seen");
    return operate("record what kilo has seen", scope, true, async (repo) => {
      if (checked.length === 0 || !(await exists(join(repo.dir, ".git")))) return;
      const seen = await readSeen(repo);
      for (const { name, marker } of checked) {
        // Compare and set: a change kilo or someone else made since is not hidden by a stale one.
        if ((seen.get(name) ?? null) !== marker.from) continue;
        if (marker.to === null) seen.delete(name);
        else seen.set(name, marker.to);
      }
      await writeSeen(repo, seen);
    });
  }

  return {
    name: "git",
    root,
    directoryOf: (scope) => {
      try {
        return directoryOf(scope);
      } catch (error) {
        throw withAdapter(error);
      }
    },
    write,
    remove,
    read,
    readResource,
    list,
    history,
    rollback,
    changes,
    markSeen,
    async close() {
      closed = true;
      await Promise.allSettled([...pending]);
    },
  };
}

function configuration(message: string): KiloError {
  return new KiloError("CONFIGURATION_INVALID", message, { adapter: ADAPTER });
}

/** A KiloError with `adapter: "git"` (the core's validation errors name none). */
function withAdapter(error: unknown): unknown {
  if (!KiloError.is(error) || error.adapter !== undefined) return error;
  return new KiloError(error.code, error.message, {
    adapter: ADAPTER,
    status: error.status,
    retryable: error.retryable,
    details: error.details,
    cause: error.cause,
  });
}

function parse<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join(".") : "(root)"}: ${issue.message}`)
    .join("; ");
  throw new KiloError("VALIDATION_FAILED", `Invalid ${what}: ${problems}`, {
    adapter: ADAPTER,
    details: result.error.issues,
  });
}

function isNotFound(error: unknown): boolean {
  return (error as { code?: string } | null)?.code === "NotFoundError";
}

async function exists(path: string): Promise<boolean> {
  return (await lstat(path).catch(() => null)) !== null;
}

/** Removes empty folders below `folder` (deepest first), keeping `folder` itself. */
async function pruneEmptyFolders(folder: string): Promise<void> {
  const entries = await readdir(folder, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    if (!entry.isDirectory()) continue;
    const path = join(folder, entry.name);
    await pruneEmptyFolders(path);
    if ((await readdir(path)).length === 0) await rmdir(path);
  }
}
