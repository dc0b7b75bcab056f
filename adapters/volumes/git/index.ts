/**
 * Git volume: `import { gitVolume } from "kilo/volumes/git"`. Keeps each
 * skill scope as a git repository of SKILL.md folders. Needs the optional
 * peer dependency `isomorphic-git` (no `git` binary) unless the host passes
 * its own copy as `git`. See `docs/volumes-git.md`.
 *
 * @module
 */
export type {
  GitCommitEntry,
  GitFileSystem,
  GitPerson,
  GitStatusRow,
  GitTarget,
  GitTreeEntry,
  IsomorphicGit,
} from "./git-client.js";
export type { GitVolume, GitVolumeOptions } from "./git-volume.js";
export { gitVolume } from "./git-volume.js";
