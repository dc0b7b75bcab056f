import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import * as git from "isomorphic-git";
import { afterEach } from "vitest";
import { type GitVolume, gitVolume } from "../../../adapters/volumes/git/index.js";
import type { SkillScope } from "../../../src/domain/scope.js";

export { fs, git };

/** Whether a `git` binary is on PATH: tests check `git log` output with it when it is. */
export const hasGitBinary = spawnSync("git", ["--version"], { stdio: "ignore" }).status === 0;

const created: string[] = [];
afterEach(() => {
  for (const directory of created.splice(0)) rmSync(directory, { recursive: true, force: true });
});

/** A fresh root folder, removed after the test. */
export function tempRoot(): string {
  const root = mkdtempSync(join(tmpdir(), "kilo-git-volume-"));
  created.push(root);
  return root;
}

export const KILO = { name: "kilo", email: "kilo@bakery.example" };

/** A git volume on a fresh root. */
export function newVolume(): { volume: GitVolume; root: string } {
  const root = tempRoot();
  return { volume: gitVolume({ root, author: KILO }), root };
}

export const system: SkillScope = { kind: "system" };
export const bakers: SkillScope = { kind: "team", id: "bakers" };

/** A SKILL.md for a skill. */
export function skillMarkdown(
  name: string,
  body = "# Steps\n\n1. Ask for the cake.\n",
  description = "Takes cake orders.",
): string {
  return `---\nname: ${name}\ndescription: ${description}\n---\n${body}`;
}

/** Writes a file into a working tree by hand (as an editor would). */
export function handWrite(dir: string, path: string, content: string): void {
  const file = join(dir, path);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, content);
}

/** `git log --oneline` with the real binary (only call when {@link hasGitBinary}). */
export function gitLogOneline(dir: string): string[] {
  const result = spawnSync("git", ["-c", "safe.directory=*", "log", "--oneline", "--format=%h %an|%cn|%s"], {
    cwd: dir,
    encoding: "utf8",
  });
  if (result.status !== 0) throw new Error(`git log failed: ${result.stderr}`);
  return result.stdout.trim().split("\n");
}

/** Commit subjects, newest first, read with isomorphic-git. */
export async function subjects(dir: string): Promise<string[]> {
  const commits = await git.log({ fs, dir });
  return commits.map((entry) => entry.commit.message.split("\n")[0]!);
}
