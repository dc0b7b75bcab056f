import type { Bot } from "../domain/bot.js";
import type { Run } from "../domain/run.js";
import { type CliFlags, type CliSettings, loadSettings } from "./cli-config.js";
import type { CliIo } from "./cli-io.js";

/** What every command receives: the streams, the raw arguments and the settings (loaded on first use). */
export interface CommandContext {
  io: CliIo;
  /** The whole command line as `process.argv` has it: `[node, script, ...arguments]`. */
  argv: readonly string[];
  /** The settings; loading validates them and throws `CONFIGURATION_INVALID` on a bad value. */
  settings(): CliSettings;
}

/** A context whose settings are read once, from the global flags, the environment and the config file. */
export function commandContext(io: CliIo, argv: readonly string[], flags: () => CliFlags): CommandContext {
  let loaded: CliSettings | null = null;
  return {
    io,
    argv,
    settings() {
      loaded ??= loadSettings({ env: io.env, cwd: io.cwd, flags: flags() });
      return loaded;
    },
  };
}

/** A run as `--json` prints it: the my-kaiser shape (`run_id`, `status`, `output`) plus what a script needs next. */
export interface RunJson {
  run_id: string;
  status: Run["status"];
  /** What the run returned (for a message: the turn, with `reply`); `null` until it succeeded. */
  output: Run["output"];
  error: Run["error"];
  bot_id: string;
  conversation_key: string;
}

/** The `--json` view of a run. */
export function runJson(run: Run): RunJson {
  return {
    run_id: run.id,
    status: run.status,
    output: run.output,
    error: run.error,
    bot_id: run.botId,
    conversation_key: run.conversationKey,
  };
}

/** The reply text of a finished run, if it has one. */
export function replyOf(run: Pick<Run, "output">): string | null {
  const reply = run.output?.reply;
  return typeof reply === "string" ? reply : null;
}

/** The notice printed when `resolveBot` created the default bot. */
export function createdBotNotice(bot: Pick<Bot, "id" | "name" | "userId">): string {
  return `created bot "${bot.name}" (${bot.id}) for user '${bot.userId}'`;
}
