import type { Run } from "../domain/run.js";
import { type CommandContext, replyOf, runJson } from "./cli-context.js";
import { EXIT, printJson, println } from "./cli-io.js";
import { openRuntime, ownRun } from "./cli-runtime.js";

/** Options of `kilo status`. */
export interface StatusOptions {
  json?: boolean;
  /** Wait until the run is finished (or awaits an approval) before printing. */
  wait?: boolean;
}

/**
 * `kilo status <run_id>`: a run's status and output. Exits 0 whatever the
 * run's status (the command worked); 1 when there is no such run for the
 * configured user.
 */
export async function statusCommand(
  runId: string,
  options: StatusOptions,
  context: CommandContext,
): Promise<number> {
  const { io } = context;
  const settings = context.settings();
  const runtime = await openRuntime(settings, io, { defaultLogLevel: "warn", role: "reader" });
  try {
    let run: Run = await ownRun(runtime, runId);
    if (options.wait) run = await runtime.kilo.runs.wait(run.id);
    if (options.json) {
      printJson(io, runJson(run));
      return EXIT.ok;
    }
    println(io.stdout, `${run.id} ${run.status}`);
    const reply = replyOf(run);
    if (reply !== null) println(io.stdout, reply);
    if (run.error) println(io.stdout, `error ${run.error.code}: ${run.error.message}`);
    return EXIT.ok;
  } finally {
    await runtime.close();
  }
}
