import type { CommandContext } from "./cli-context.js";
import { createdBotNotice } from "./cli-context.js";
import { EXIT, notice, printJson, println } from "./cli-io.js";
import { openRuntime, resolveBot } from "./cli-runtime.js";

/** Options of `kilo evolve`. */
export interface EvolveOptions {
  json?: boolean;
  /** Activate the drafted skills at once instead of leaving them as drafts. */
  autoApply?: boolean;
}

/**
 * `kilo evolve`: analyses the current bot's traces of the configured user,
 * drafts Markdown skills for requests that keep coming back unserved, and
 * prints what it did; progress goes to stderr as it happens.
 */
export async function evolveCommand(options: EvolveOptions, context: CommandContext): Promise<number> {
  const { io } = context;
  const settings = context.settings();
  const runtime = await openRuntime(settings, io, { defaultLogLevel: "warn", role: "sender" });
  try {
    const { bot, created } = await resolveBot(runtime.kilo, settings);
    if (created) notice(io, createdBotNotice(bot));
    runtime.kilo.events.on("evolve-progress", (event) =>
      println(io.stderr, `kilo: evolve: ${event.message}`),
    );
    const result = await runtime.kilo.evolve({
      botId: bot.id,
      userId: settings.user,
      autoApply: options.autoApply ?? false,
    });
    if (options.json) {
      printJson(io, {
        bot_id: bot.id,
        traces_analyzed: result.tracesAnalyzed,
        patterns_detected: result.patternsDetected,
        skills_created: result.skillsCreated,
        skills: result.skills.map((skill) => ({ id: skill.id, name: skill.name, status: skill.status })),
        patterns: result.patterns,
      });
      return EXIT.ok;
    }
    println(
      io.stdout,
      `analysed ${result.tracesAnalyzed} traces: ${result.patternsDetected} repeated patterns, ${result.skillsCreated} skills ${options.autoApply ? "created" : "drafted"}`,
    );
    for (const skill of result.skills) {
      println(io.stdout, `  ${skill.name} (${skill.id}) ${skill.status}`);
    }
    if (result.skillsCreated > 0 && !options.autoApply) {
      println(
        io.stdout,
        "Review the drafts (kilo skills list; kilo skills export <name>) before activating them.",
      );
    }
    return EXIT.ok;
  } finally {
    await runtime.close();
  }
}
