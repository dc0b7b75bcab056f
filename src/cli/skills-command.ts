import { mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import type { Skill } from "../domain/skill.js";
import { KiloError } from "../errors.js";
import type { CommandContext } from "./cli-context.js";
import { createdBotNotice } from "./cli-context.js";
import { EXIT, notice, printJson, println, UsageError } from "./cli-io.js";
import { openRuntime, resolveBot } from "./cli-runtime.js";

/** Options of `kilo skills import`. */
export interface SkillsImportOptions {
  json?: boolean;
}

/** Options of `kilo skills export`. */
export interface SkillsExportOptions {
  /** A directory to write `<name>/SKILL.md` into; default: print to stdout. */
  out?: string;
}

/** Options of `kilo skills list`. */
export interface SkillsListOptions {
  json?: boolean;
}

/** Every SKILL.md under `path` (a file is taken as it is, a directory is walked), sorted. */
async function skillFiles(path: string): Promise<string[]> {
  const info = await stat(path).catch(() => null);
  if (!info) throw new UsageError(`no such file or directory: ${path}`);
  if (info.isFile()) return [path];
  const found: string[] = [];
  for (const entry of await readdir(path, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name === "SKILL.md") found.push(join(entry.parentPath, entry.name));
  }
  return found.sort();
}

async function openForBot(context: CommandContext) {
  const settings = context.settings();
  const runtime = await openRuntime(settings, context.io, { defaultLogLevel: "warn", role: "reader" });
  try {
    const { bot, created } = await resolveBot(runtime.kilo, settings);
    if (created) notice(context.io, createdBotNotice(bot));
    return { runtime, bot };
  } catch (error) {
    await runtime.close();
    throw error;
  }
}

/**
 * `kilo skills import <path...>`: imports SKILL.md files (a directory is
 * searched for them) into the current bot. Loading is lenient: each file's
 * warnings are printed with the file and the rule. A file that cannot be read
 * is reported and the others still import; the exit code is 1 if any failed.
 */
export async function skillsImportCommand(
  paths: string[],
  options: SkillsImportOptions,
  context: CommandContext,
): Promise<number> {
  const { io } = context;
  if (paths.length === 0) throw new UsageError("name at least one SKILL.md file or directory");
  const files = (await Promise.all(paths.map((path) => skillFiles(resolve(io.cwd, path))))).flat();
  if (files.length === 0) throw new UsageError(`no SKILL.md found under ${paths.join(", ")}`);
  const { runtime, bot } = await openForBot(context);
  const results: Array<Record<string, unknown>> = [];
  let failed = 0;
  try {
    for (const file of files) {
      const shown = relative(io.cwd, file) || file;
      try {
        const text = await readFile(file, "utf8");
        const { skill, warnings } = await runtime.kilo.skills.importMarkdown(bot.id, { file: shown, text });
        results.push({ file: shown, skill_id: skill.id, name: skill.name, warnings });
        if (!options.json) {
          println(io.stdout, `imported ${skill.name} (${skill.id}) from ${shown}`);
          for (const warning of warnings) println(io.stderr, `  warning ${warning.rule}: ${warning.message}`);
        }
      } catch (error) {
        failed += 1;
        const code = KiloError.is(error) ? error.code : "INTERNAL";
        const message = error instanceof Error ? error.message : String(error);
        results.push({ file: shown, error: { code, message } });
        if (!options.json) println(io.stderr, `kilo: ${shown}: error ${code}: ${message}`);
      }
    }
  } finally {
    await runtime.close();
  }
  if (options.json) printJson(io, { bot_id: bot.id, results });
  return failed > 0 ? EXIT.failure : EXIT.ok;
}

function findSkill(skills: Skill[], wanted: string): Skill | undefined {
  const lower = wanted.toLowerCase();
  return (
    skills.find((skill) => skill.id === wanted) ?? skills.find((skill) => skill.name.toLowerCase() === lower)
  );
}

/**
 * `kilo skills export <skill>`: a Markdown skill of the current bot as a
 * SKILL.md that strict Agent Skills validators accept, printed or written to
 * `<out>/<name>/SKILL.md`.
 */
export async function skillsExportCommand(
  wanted: string,
  options: SkillsExportOptions,
  context: CommandContext,
): Promise<number> {
  const { io } = context;
  const { runtime, bot } = await openForBot(context);
  try {
    const skills = await runtime.kilo.skills.list(bot.id);
    const skill = findSkill(skills, wanted);
    if (!skill) throw new KiloError("NOT_FOUND", `Bot '${bot.name}' has no skill '${wanted}'`);
    const text = await runtime.kilo.skills.exportMarkdown(bot.id, skill.id);
    if (options.out === undefined) {
      io.stdout.write(text);
      return EXIT.ok;
    }
    const dir = join(resolve(io.cwd, options.out), skill.name);
    await mkdir(dir, { recursive: true });
    const file = join(dir, "SKILL.md");
    await writeFile(file, text);
    println(io.stdout, `wrote ${relative(io.cwd, file) || file}`);
    return EXIT.ok;
  } finally {
    await runtime.close();
  }
}

/** `kilo skills list`: the current bot's skills, Markdown or structured. */
export async function skillsListCommand(
  options: SkillsListOptions,
  context: CommandContext,
): Promise<number> {
  const { io } = context;
  const { runtime, bot } = await openForBot(context);
  try {
    const skills = await runtime.kilo.skills.list(bot.id);
    if (options.json) {
      printJson(
        io,
        skills.map((skill) => ({
          id: skill.id,
          name: skill.name,
          kind: skill.markdown ? "markdown" : "structured",
          status: skill.status,
          description: skill.description,
        })),
      );
    } else if (skills.length === 0) {
      println(io.stdout, `${bot.name} has no skills yet: kilo skills import <SKILL.md or folder>`);
    } else {
      for (const skill of skills) {
        println(
          io.stdout,
          `${skill.name}  ${skill.id}  ${skill.markdown ? "markdown" : "structured"}  ${skill.status}`,
        );
      }
    }
    return EXIT.ok;
  } finally {
    await runtime.close();
  }
}
