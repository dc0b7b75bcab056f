/**
 * Runs the `kilo` CLI from its TypeScript source (through tsx, never the
 * built dist/) in a child process with a temporary working directory and an
 * environment made from scratch: no provider keys, no KILO_* variables of the
 * machine running the tests.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { PassThrough } from "node:stream";
import { fileURLToPath, pathToFileURL } from "node:url";
import { runCli } from "../../src/cli/cli-program.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
/** The CLI's entry point. */
export const CLI_MAIN = join(root, "src/cli/main.ts");
const tsxPackage = createRequire(import.meta.url).resolve("tsx/package.json");
/** tsx's ESM loader as a file URL, so `--import` finds it from any working directory. */
export const TSX_LOADER = pathToFileURL(join(dirname(tsxPackage), "dist/loader.mjs")).href;

/** The node arguments that run the CLI's source. */
export const cliArgs = (args: string[]) => ["--import", TSX_LOADER, CLI_MAIN, ...args];

/** A temporary directory to run the CLI in, with its own SQLite database. */
export interface Workspace {
  cwd: string;
  /** The environment commands get: a SQLite file in `cwd`, nothing from the machine but PATH. */
  env: Record<string, string>;
  database: string;
  remove(): void;
}

/** Creates a {@link Workspace}; `env` is added to (and overrides) its environment. */
export function workspace(env: Record<string, string> = {}): Workspace {
  const cwd = mkdtempSync(join(tmpdir(), "kilo-cli-"));
  const database = join(cwd, "kilo.sqlite");
  return {
    cwd,
    database,
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: cwd,
      SHELL: "/bin/sh",
      KILO_DATABASE_URL: database,
      ...env,
    },
    remove: () => rmSync(cwd, { recursive: true, force: true }),
  };
}

/** What a finished command left behind. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `kilo <args>` to its end as a child process. */
export function runKilo(
  args: string[],
  space: Pick<Workspace, "cwd" | "env">,
  options: { input?: string; env?: Record<string, string> } = {},
): Promise<CliResult> {
  const child = spawn(process.execPath, cliArgs(args), {
    cwd: space.cwd,
    env: { ...space.env, ...options.env },
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString("utf8");
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8");
  });
  child.stdin.end(options.input ?? "");
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** Output collected as it arrives, with a cursor: each `expect` waits for a match after the previous one. */
export interface Transcript {
  /** Everything so far, ANSI escapes removed. */
  readonly text: string;
  /** Resolves with the match once `pattern` appears after the last match; rejects if the process ends first. */
  expect(pattern: RegExp): Promise<RegExpExecArray>;
}

// ESC [ ... letter: colours, cursor moves, erase-line.
const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;?]*[A-Za-z]`, "g");

/** Follows a child's output stream(s) as a {@link Transcript}. */
export function transcript(
  child: ChildProcessWithoutNullStreams,
  streams: Array<"stdout" | "stderr">,
): Transcript {
  let text = "";
  let cursor = 0;
  let ended = false;
  const listeners = new Set<() => void>();
  const changed = () => {
    for (const listener of [...listeners]) listener();
  };
  for (const name of streams) {
    child[name].on("data", (chunk: Buffer) => {
      text += chunk.toString("utf8").replace(ANSI, "");
      changed();
    });
  }
  child.once("close", () => {
    ended = true;
    changed();
  });
  return {
    get text() {
      return text;
    },
    expect(pattern) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const search = new RegExp(pattern.source, pattern.flags.replace("g", ""));
          const match = search.exec(text.slice(cursor));
          if (match) {
            listeners.delete(check);
            cursor += match.index + match[0].length;
            resolve(match);
          } else if (ended) {
            listeners.delete(check);
            reject(new Error(`Process ended before ${pattern} appeared. Output:\n${text}`));
          }
        };
        listeners.add(check);
        check();
      });
    },
  };
}

/** Resolves with the exit code (or signal) once the child has exited. */
export function exited(
  child: ChildProcessWithoutNullStreams,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
}

/**
 * Runs the CLI in this process with collected output: for what needs no
 * process of its own (everything but `--no-wait`, `serve` and `chat`), and
 * is much faster than starting one.
 */
export async function runInProcess(
  args: string[],
  space: Pick<Workspace, "cwd" | "env">,
  options: { input?: string; env?: Record<string, string> } = {},
): Promise<CliResult> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const chunks = { stdout: "", stderr: "" };
  stdout.on("data", (chunk: Buffer) => {
    chunks.stdout += chunk.toString("utf8");
  });
  stderr.on("data", (chunk: Buffer) => {
    chunks.stderr += chunk.toString("utf8");
  });
  const stdin = new PassThrough();
  stdin.end(options.input ?? "");
  const env = { ...space.env, ...options.env };
  const code = await runCli(["node", "kilo", ...args], { stdin, stdout, stderr, env, cwd: space.cwd });
  // Let the streams deliver what was written last.
  await new Promise((resolve) => setImmediate(resolve));
  return { code, ...chunks };
}
