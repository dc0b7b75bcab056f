import type { CommandContext } from "./cli-context.js";
import { EXIT, printJson, println } from "./cli-io.js";
import { findBot, listBots, openRuntime } from "./cli-runtime.js";

/** Options of `kilo bots`. */
export interface BotsOptions {
  json?: boolean;
}

/** `kilo bots`: the configured user's bots, oldest first; `*` marks the one `ask` and `chat` use. */
export async function botsCommand(options: BotsOptions, context: CommandContext): Promise<number> {
  const { io } = context;
  const settings = context.settings();
  const runtime = await openRuntime(settings, io, { defaultLogLevel: "warn", role: "reader" });
  try {
    const bots = await listBots(runtime.kilo, settings.user);
    const current = settings.bot === null ? bots[0] : findBot(bots, settings.bot);
    if (options.json) {
      printJson(
        io,
        bots.map((bot) => ({
          id: bot.id,
          name: bot.name,
          created_at: bot.createdAt.toISOString(),
          current: bot === current,
        })),
      );
      return EXIT.ok;
    }
    if (bots.length === 0) {
      println(
        io.stdout,
        `User '${settings.user}' has no bots yet: \`kilo ask\` or \`kilo chat\` creates one.`,
      );
      return EXIT.ok;
    }
    for (const bot of bots) {
      println(
        io.stdout,
        `${bot === current ? "*" : " "} ${bot.name}  ${bot.id}  ${bot.createdAt.toISOString()}`,
      );
    }
    return EXIT.ok;
  } finally {
    await runtime.close();
  }
}
