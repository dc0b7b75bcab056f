import type { Bot } from "../domain/bot.js";
import type { Run } from "../domain/run.js";
import { type RunView, runView } from "../http/http-routes.js";
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

/** A run as `--json` prints it: the my-kaiser v1 view, the same as `GET /v1/runs/:run_id` returns. */
export type RunJson = RunView;

/** The `--json` view of a run. */
export const runJson: (run: Run) => RunJson = runView;

/** The reply text of a finished run, if it has one. */
export function replyOf(run: Pick<Run, "output">): string | null {
  const reply = run.output?.reply;
  return typeof reply === "string" ? reply : null;
}

/** The notice printed when `resolveBot` created the default bot. */
export function createdBotNotice(bot: Pick<Bot, "id" | "name" | "userId">): string {
  return `created bot "${bot.name}" (${bot.id}) for user '${bot.userId}'`;
}
