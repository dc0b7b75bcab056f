import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { sqliteStorage } from "../../adapters/storage/sqlite/index.js";
import type { Run } from "../../src/index.js";
import { storedBot } from "./helpers.js";

// A real crash: a child process (test/__fixtures__/workflow-worker.ts, run with tsx) on a SQLite
// file is killed with SIGKILL inside a workflow's second step; a new process resumes the run.
const directory = mkdtempSync(join(tmpdir(), "kilo-workflow-crash-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

interface Child {
  /** Resolves with the first stdout line (parsed) that has `key`. */
  line<T>(key: string): Promise<T>;
  kill(): void;
  exited: Promise<NodeJS.Signals | number | null>;
}

function start(env: Record<string, string>): Child {
  const child = spawn(process.execPath, ["--import", "tsx", "test/__fixtures__/workflow-worker.ts"], {
    env: { ...process.env, ...env },
  });
  child.stderr.pipe(process.stderr);
  const lines: Array<Record<string, unknown>> = [];
  const listeners = new Set<() => void>();
  let buffered = "";
  child.stdout.on("data", (chunk: Buffer) => {
    buffered += chunk.toString("utf8");
    let newline = buffered.indexOf("\n");
    while (newline >= 0) {
      lines.push(JSON.parse(buffered.slice(0, newline)) as Record<string, unknown>);
      buffered = buffered.slice(newline + 1);
      newline = buffered.indexOf("\n");
    }
    for (const listener of listeners) listener();
  });
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
    child.on("exit", (code, signal) => resolve(signal ?? code)),
  );
  return {
    line<T>(key: string) {
      return new Promise<T>((resolve, reject) => {
        const check = () => {
          const found = lines.find((line) => key in line);
          if (!found) return false;
          listeners.delete(check);
          resolve(found[key] as T);
          return true;
        };
        if (check()) return;
        listeners.add(check);
        void exited.then((how) => {
          if (!check()) reject(new Error(`worker exited (${String(how)}) before writing '${key}'`));
        });
      });
    },
    kill: () => child.kill("SIGKILL"),
    exited,
  };
}

describe("kilo.runs workflows: a process killed with SIGKILL inside step 2", () => {
  it("a new process resumes the run: step 1 is not made again, step 2 is retried with the same idempotency key", async () => {
    const db = join(directory, "crash.db");
    const effects = join(directory, "effects.log");
    const setup = sqliteStorage({ filename: db });
    const bot = await storedBot(setup, "bot_crash");
    await setup.close();
    const env = { KILO_WF_DB: db, KILO_WF_EFFECTS: effects, KILO_WF_BOT: bot.id };

    const first = start({ ...env, KILO_WF_HANG: "1" });
    const runId = await first.line<string>("run_id");
    await first.line("hanging");
    first.kill();
    expect(await first.exited).toBe("SIGKILL");
    expect(readFileSync(effects, "utf8")).toBe(`charge ${runId}:0\nship ${runId}:1\n`);

    const second = start({ ...env, KILO_WF_RUN: runId });
    const run = await second.line<Run & { output: { pid: number } }>("run");
    expect(await second.exited).toBe(0);
    expect(run.status).toBe("succeeded");
    expect(run.output).toMatchObject({
      charge: { chargeId: `ch_${runId}:0` },
      ship: { shipped: `ch_${runId}:0` },
    });
    // Step 1's side effect happened once; step 2's twice, both times with the same key.
    expect(readFileSync(effects, "utf8")).toBe(`charge ${runId}:0\nship ${runId}:1\nship ${runId}:1\n`);

    const after = sqliteStorage({ filename: db });
    const steps = await after.runSteps!.listByRun(bot.id, runId);
    expect(steps.map((step) => [step.index, step.name, step.status])).toEqual([
      [0, "charge", "succeeded"],
      [1, "ship", "succeeded"],
    ]);
    await after.close();
  }, 300_000);
});
