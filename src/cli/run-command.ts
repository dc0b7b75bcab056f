import { randomUUID } from "node:crypto";
import type { InboundEventInput } from "../domain/run.js";
import { printFinished } from "./ask-command.js";
import type { CommandContext } from "./cli-context.js";
import { createdBotNotice } from "./cli-context.js";
import { notice, UsageError } from "./cli-io.js";
import { openRuntime, resolveBot } from "./cli-runtime.js";

/** Options of `kilo run`. */
export interface RunOptions {
  /** The workflow's arguments: a JSON object, given to the workflow as the event's `text`. */
  args?: string;
  json?: boolean;
  /** The conversation key; default: a new one per run. */
  conversation?: string;
}

/** The arguments as the event's text: a JSON object, re-serialized compactly. */
function argumentsText(args: string | undefined): string {
  if (args === undefined) return "{}";
  let parsed: unknown;
  try {
    parsed = JSON.parse(args);
  } catch {
    throw new UsageError(`--args is not JSON: ${args}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new UsageError('--args must be a JSON object, e.g. --args \'{"day":"monday"}\'');
  }
  return JSON.stringify(parsed);
}

/**
 * `kilo run <workflow>`: starts a named workflow (registered by the
 * workspace's `workflows/`, see KILO_WORKSPACE) as a durable run with the
 * arguments as its event text, waits for it and prints its output.
 */
export async function runCommand(
  workflow: string,
  options: RunOptions,
  context: CommandContext,
): Promise<number> {
  const { io } = context;
  const text = argumentsText(options.args);
  const settings = context.settings();
  const runtime = await openRuntime(settings, io, { defaultLogLevel: "warn", role: "sender" });
  try {
    const { bot, created } = await resolveBot(runtime.kilo, settings);
    if (created) notice(io, createdBotNotice(bot));
    const event: InboundEventInput = {
      schema_version: 1,
      type: workflow,
      conversation_key: options.conversation ?? `cli-run:${randomUUID()}`,
      user_key: settings.user,
      text,
    };
    const { run_id } = await runtime.kilo.runs.ingest(event, { botId: bot.id });
    const run = await runtime.kilo.runs.wait(run_id);
    if (!options.json && run.status === "succeeded" && typeof run.output?.reply !== "string") {
      io.stdout.write(`${JSON.stringify(run.output, null, 2)}\n`);
      return 0;
    }
    return printFinished(io, { json: options.json }, run);
  } finally {
    await runtime.close();
  }
}
