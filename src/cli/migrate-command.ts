import { describeDatabase } from "./cli-config.js";
import type { CommandContext } from "./cli-context.js";
import { EXIT, printJson, println } from "./cli-io.js";
import { openStorage } from "./cli-runtime.js";

/** Options of `kilo migrate`. */
export interface MigrateCommandOptions {
  json?: boolean;
}

/**
 * `kilo migrate`: brings the database's schema up to date and prints the
 * migrations it applied. Other commands migrate on first use too; this one
 * is for deploy steps and for seeing what changed.
 */
export async function migrateCommand(
  options: MigrateCommandOptions,
  context: CommandContext,
): Promise<number> {
  const { io } = context;
  const settings = context.settings();
  const storage = await openStorage(settings.database, { migrate: false });
  try {
    const { applied } = await storage.migrate();
    const database = describeDatabase(settings.database);
    if (options.json) {
      printJson(io, { database, applied });
    } else if (applied.length === 0) {
      println(io.stdout, `${database}: schema is up to date, nothing applied`);
    } else {
      println(
        io.stdout,
        `${database}: applied ${applied.length} migration${applied.length === 1 ? "" : "s"}`,
      );
      for (const name of applied) println(io.stdout, `  ${name}`);
    }
    return EXIT.ok;
  } finally {
    await storage.close();
  }
}
