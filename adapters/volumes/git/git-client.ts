import type * as NodeFs from "node:fs";
import { KiloError } from "../../../src/errors.js";

const PACKAGE = "isomorphic-git";
const ADAPTER = "git";

/** A person on a commit, as isomorphic-git reads and writes it. */
export interface GitPerson {
  /** The name. */
  name: string;
  /** The e-mail address (may be `""`). */
  email: string;
  /** Seconds since the Unix epoch. */
  timestamp: number;
  /** Minutes from local time to UTC, as `Date#getTimezoneOffset` gives them. */
  timezoneOffset: number;
}

/** A commit as isomorphic-git's `readCommit` and `log` give it. */
export interface GitCommitEntry {
  /** The commit id. */
  oid: string;
  /** The parsed commit. */
  commit: {
    /** The message. */
    message: string;
    /** The root tree's id. */
    tree: string;
    /** The parents' ids. */
    parent: string[];
    /** The author. */
    author: GitPerson;
    /** The committer. */
    committer: GitPerson;
  };
}

/** One entry of a tree. */
export interface GitTreeEntry {
  /** The mode as 6 octal digits (`100644`, `100755`, `040000`, `120000`, `160000`). */
  mode: string;
  /** The entry's name within its tree. */
  path: string;
  /** The object id. */
  oid: string;
  /** The kind of object. */
  type: "commit" | "blob" | "tree";
}

/** `[filepath, head, workdir, stage]` as isomorphic-git's `statusMatrix` returns it. */
export type GitStatusRow = [string, 0 | 1, 0 | 1 | 2, 0 | 1 | 2 | 3];

/** The file system module isomorphic-git is given: `node:fs`. */
export type GitFileSystem = typeof NodeFs;

/** Arguments every call takes: the file system client and the working tree. */
export interface GitTarget {
  /** The file system (`node:fs`). */
  fs: GitFileSystem;
  /** The working tree. */
  dir: string;
  /** isomorphic-git's cache object, shared by the calls of one operation. */
  cache?: object;
}

/**
 * The part of isomorphic-git's API the git volume uses, typed structurally
 * so kilo's declarations do not depend on the package. Pass the package's
 * module (`import * as git from "isomorphic-git"`) as `gitVolume({ git })`
 * to use a copy the host bundles.
 */
export interface IsomorphicGit {
  /** Creates a repository. */
  init(args: { fs: GitFileSystem; dir: string; defaultBranch?: string }): Promise<void>;
  /** Stages files. */
  add(args: GitTarget & { filepath: string | string[]; force?: boolean }): Promise<void>;
  /** Unstages a file (or every file under a folder). */
  remove(args: GitTarget & { filepath: string }): Promise<void>;
  /** Commits the index to the current branch; resolves with the new commit's id. */
  commit(
    args: GitTarget & {
      message: string;
      author: Partial<GitPerson>;
      committer?: Partial<GitPerson>;
    },
  ): Promise<string>;
  /** Reads one commit. */
  readCommit(args: GitTarget & { oid: string }): Promise<GitCommitEntry>;
  /** Reads a tree (or the tree at `filepath` below it). */
  readTree(
    args: GitTarget & { oid: string; filepath?: string },
  ): Promise<{ oid: string; tree: GitTreeEntry[] }>;
  /** Reads a blob (or the blob at `filepath` below a tree or commit). */
  readBlob(args: GitTarget & { oid: string; filepath?: string }): Promise<{ oid: string; blob: Uint8Array }>;
  /** Compares HEAD, the working tree and the index, file by file. */
  statusMatrix(args: GitTarget & { filepaths?: string[] }): Promise<GitStatusRow[]>;
  /** The object id a ref names. */
  resolveRef(args: { fs: GitFileSystem; dir: string; ref: string }): Promise<string>;
  /** The full id of an abbreviated one. */
  expandOid(args: GitTarget & { oid: string }): Promise<string>;
}

const REQUIRED: ReadonlyArray<keyof IsomorphicGit> = [
  "init",
  "add",
  "remove",
  "commit",
  "readCommit",
  "readTree",
  "readBlob",
  "statusMatrix",
  "resolveRef",
  "expandOid",
];

/** Whether `value` has every function of {@link IsomorphicGit}. */
export function isIsomorphicGit(value: unknown): value is IsomorphicGit {
  if (value === null || (typeof value !== "object" && typeof value !== "function")) return false;
  return REQUIRED.every((key) => typeof (value as Record<string, unknown>)[key] === "function");
}

let loading: Promise<IsomorphicGit> | undefined;

/** isomorphic-git, loaded on first use: it is an optional peer dependency. */
export function loadIsomorphicGit(): Promise<IsomorphicGit> {
  loading ??= (async () => {
    let loaded: Record<string, unknown>;
    try {
      loaded = (await import(PACKAGE)) as Record<string, unknown>;
    } catch (error) {
      throw new KiloError(
        "CONFIGURATION_INVALID",
        `gitVolume needs the '${PACKAGE}' package, an optional peer dependency of kilo: npm install ${PACKAGE}`,
        { adapter: ADAPTER, cause: error },
      );
    }
    // ESM gives named exports; a CJS interop layer may give only `default`.
    const candidate = isIsomorphicGit(loaded) ? loaded : loaded.default;
    if (!isIsomorphicGit(candidate)) {
      throw new KiloError(
        "CONFIGURATION_INVALID",
        `The installed '${PACKAGE}' package lacks functions the git volume needs (${REQUIRED.join(", ")})`,
        { adapter: ADAPTER },
      );
    }
    return candidate;
  })();
  const attempt = loading;
  attempt.catch(() => {
    if (loading === attempt) loading = undefined;
  });
  return attempt;
}
