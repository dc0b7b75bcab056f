import type { RunStep } from "../domain/run-step.js";
import type { CommandContext } from "./cli-context.js";
import { EXIT, printJson, println } from "./cli-io.js";
import { openRuntime, ownRun } from "./cli-runtime.js";

/** Options of `kilo logs`. */
export interface LogsOptions {
  json?: boolean;
}

const time = (date: Date | null) => (date ? date.toISOString() : "-");

function stepLine(step: RunStep): string {
  const took =
    step.finishedAt === null ? "" : ` (${step.finishedAt.getTime() - step.startedAt.getTime()} ms)`;
  const failure = step.error ? ` ${step.error.code}: ${step.error.message}` : "";
  return `${time(step.startedAt)}  step ${step.index} ${step.kind} ${step.name} ${step.status}${took}${failure}`;
}

/**
 * `kilo logs <run_id>`: a run's durable log: when it was queued, started and
 * finished, and each recorded workflow step with its outcome. Free-form
 * `ctx.log` lines go to the logger (stderr or JSON logs) with the run's id.
 */
export async function logsCommand(
  runId: string,
  options: LogsOptions,
  context: CommandContext,
): Promise<number> {
  const { io } = context;
  const settings = context.settings();
  const runtime = await openRuntime(settings, io, { defaultLogLevel: "warn", role: "reader" });
  try {
    const run = await ownRun(runtime, runId);
    const steps = await runtime.kilo.runs.steps(run.id);
    if (options.json) {
      printJson(io, { run_id: run.id, status: run.status, workflow: run.workflow, steps });
      return EXIT.ok;
    }
    println(
      io.stdout,
      `${time(run.createdAt)}  run ${run.id} queued (workflow ${run.workflow}, ${run.conversationKey})`,
    );
    if (run.startedAt) println(io.stdout, `${time(run.startedAt)}  run started`);
    for (const step of steps) println(io.stdout, stepLine(step));
    if (run.finishedAt) {
      const failure = run.error ? `: ${run.error.code}: ${run.error.message}` : "";
      println(io.stdout, `${time(run.finishedAt)}  run ${run.status}${failure}`);
    } else {
      println(io.stdout, `(run ${run.status})`);
    }
    return EXIT.ok;
  } finally {
    await runtime.close();
  }
}
