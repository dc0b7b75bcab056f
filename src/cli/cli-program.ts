import { Command, CommanderError, InvalidArgumentError } from "commander";
import packageJson from "../../package.json" with { type: "json" };
import { IdSchema } from "../domain/common.js";
import {
  type CliFlags,
  CONFIG_FILE_NAME,
  DEFAULT_DATABASE_FILE,
  DEFAULT_PORT,
  DEFAULT_USER,
} from "./cli-config.js";
import { type CommandContext, commandContext } from "./cli-context.js";
import { type CliIo, EXIT, processIo, reportFailure } from "./cli-io.js";

const ENVIRONMENT_HELP = `
Configuration (flags > environment > config file > defaults):
  KILO_DATABASE_URL     postgres://user:pass@host:5432/db, sqlite:<file> or a file path
                        (default: ${DEFAULT_DATABASE_FILE})
  KILO_DATABASE_SCHEMA  Postgres schema for kilo's tables (or ?schema= in the URL)
  KILO_TABLE_PREFIX     prefix of kilo's table names
  KILO_USER             the user you act as (default: ${DEFAULT_USER})
  KILO_BOT              bot id or name (default: your first bot, created on first use)
  KILO_PROVIDER         auto | anthropic | openai | offline (default: auto)
  KILO_MODEL            the model of the live provider
  KILO_HOST, KILO_PORT  where \`kilo serve\` listens (default: 127.0.0.1:${DEFAULT_PORT})
  KILO_API_TOKEN        bearer token \`kilo serve\` requires (needed off loopback)
  KILO_LOG_LEVEL        debug | info | warn | error | silent (default: warn; info for serve)
  KILO_LOG_FORMAT       pretty | json (default: pretty); logs go to stderr
  KILO_WORKSPACE        workspace folder: SYSTEM.md, AGENTS.md, skills/, workflows/
  KILO_CONFIG           config file (default: ./${CONFIG_FILE_NAME} when present)
  ANTHROPIC_API_KEY, OPENAI_API_KEY (+ OPENAI_BASE_URL): live models; without
                        them kilo uses a deterministic offline model.

Exit codes: 0 ok, 1 failure (a KiloError code and message on stderr), 2 usage error.
Docs: docs/cli.md`;

function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((line) => `  ${line}`).join("\n")}`;
}

function parseUser(value: string): string {
  if (!IdSchema.safeParse(value).success) {
    throw new InvalidArgumentError("a user id is 1-128 letters, digits, '_', '-', '.' or ':'");
  }
  return value;
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535)
    throw new InvalidArgumentError("a port is a number from 0 to 65535");
  return port;
}

/** The `kilo` command line, with every command and its help; `finish` receives each command's exit code. */
function buildProgram(io: CliIo, argv: readonly string[], finish: (code: number) => void): Command {
  const program = new Command("kilo");
  const flags = (): CliFlags => {
    const global = program.opts<{ config?: string; user?: string; bot?: string }>();
    return { config: global.config, user: global.user, bot: global.bot, ...servedAt };
  };
  let servedAt: Pick<CliFlags, "port" | "host"> = {};
  const context: CommandContext = commandContext(io, argv, flags);
  const run = (action: () => Promise<number>) => async () => finish(await action());
  // Commands are loaded when run, so help and usage errors answer without loading kilo.
  const commands = {
    ask: () => import("./ask-command.js"),
    bots: () => import("./bots-command.js"),
    chat: () => import("./chat-command.js"),
    evolve: () => import("./evolve-command.js"),
    logs: () => import("./logs-command.js"),
    run: () => import("./run-command.js"),
    migrate: () => import("./migrate-command.js"),
    serve: () => import("./serve-command.js"),
    skills: () => import("./skills-command.js"),
    status: () => import("./status-command.js"),
  };

  program
    .description("kilo: personal AI assistants that learn, from the command line.")
    .version(packageJson.version, "-v, --version", "print kilo's version")
    .option("-c, --config <file>", `config file (default: ./${CONFIG_FILE_NAME} when present)`)
    .option("-u, --user <id>", `the user you act as (default: $KILO_USER or '${DEFAULT_USER}')`, parseUser)
    .option("-b, --bot <bot>", "bot id or name (default: $KILO_BOT, else your first bot)")
    .helpOption("-h, --help", "show help")
    .helpCommand("help [command]", "show help for a command")
    .configureHelp({ showGlobalOptions: true })
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    })
    .showHelpAfterError("(kilo --help shows the commands; kilo <command> --help shows one)")
    .exitOverride()
    .addHelpText(
      "after",
      `${examples(
        'kilo ask "ping" --json',
        'kilo ask "What is on my list?" --bot Crumb',
        "kilo chat",
        "kilo serve --port 8080",
      )}\n${ENVIRONMENT_HELP}`,
    );

  program
    .command("ask")
    .summary("send one message and print the reply")
    .description(
      "Sends one message to your bot as an InboundEvent (type cli.message) through kilo's durable runs,\n" +
        "waits for the run and prints the reply. With --json it prints { run_id, status, output, error,\n" +
        "bot_id, conversation_key }; output.reply is the reply. With --no-wait it prints the run id as soon as\n" +
        "the run is queued and exits while a background process runs it (see kilo status).\n" +
        "Each ask starts a new conversation unless --conversation names one. Exits 1 when the run failed.",
    )
    .argument("[message...]", "the message; read from stdin when absent or '-'")
    .option("--json", "print the run as JSON")
    .option("--wait", "wait for the run to finish (the default)")
    .option("--no-wait", "print the run id once it is queued, and exit")
    .option("--conversation <key>", "conversation key to continue (printed by --json)")
    .addHelpText(
      "after",
      examples(
        'kilo ask "ping" --json',
        'kilo ask "Remind me what I ordered" --conversation my-session',
        'kilo ask --no-wait "Summarise my week"      # then: kilo status <run_id>',
        "echo 'hello' | kilo ask",
        'kilo ask "ping" --json | jq -r .output.reply',
      ),
    )
    .action((message: string[], options: { json?: boolean; wait?: boolean; conversation?: string }) =>
      run(async () =>
        (await commands.ask()).askCommand(
          message,
          { json: options.json, wait: options.wait ?? true, conversation: options.conversation },
          context,
        ),
      )(),
    );

  program
    .command("status")
    .summary("show a run's status and output")
    .description(
      "Prints a run's status (queued, running, awaiting_approval, succeeded, failed) and its reply or error.\n" +
        "Exits 0 whatever the run's status, 1 when you have no such run.",
    )
    .argument("<run_id>", "the run, as `kilo ask` printed it")
    .option("--json", "print the run as JSON, like kilo ask --json")
    .option("--wait", "wait until the run has finished first")
    .addHelpText("after", examples("kilo status run_0123abcd", "kilo status run_0123abcd --wait --json"))
    .action((runId: string, options: { json?: boolean; wait?: boolean }) =>
      run(async () => (await commands.status()).statusCommand(runId, options, context))(),
    );

  program
    .command("chat")
    .summary("chat with your bots interactively")
    .description(
      "An interactive chat: replies stream in as the model writes them. Slash commands:\n" +
        "  /bots, /new (guided soul setup), /switch [bot], /delete [bot], /skills, /tools, /cost, /help, /quit",
    )
    .addHelpText("after", examples("kilo chat", "kilo chat --bot Crumb", "KILO_USER=maria kilo chat"))
    .action(run(async () => (await commands.chat()).chatCommand(context)));

  program
    .command("serve")
    .summary("serve kilo's HTTP API and kilo studio")
    .description(
      "Serves kilo's HTTP API (GET /healthz, POST /v1/events, GET /v1/runs/:run_id, the REST API under /api)\n" +
        "and kilo studio, the browser app, at /studio/, for the configured user. Without KILO_API_TOKEN it\n" +
        "listens on loopback only and takes every request as that user; with it, requests need\n" +
        "`Authorization: Bearer <token>` (the studio asks the browser for it). Stops cleanly on SIGINT/SIGTERM.",
    )
    .option(
      "-p, --port <port>",
      `port (default: $KILO_PORT or ${DEFAULT_PORT}; 0 picks a free one)`,
      parsePort,
    )
    .option("--host <host>", "address to listen on (default: $KILO_HOST or 127.0.0.1)")
    .addHelpText(
      "after",
      examples(
        "kilo serve",
        "kilo serve --port 8080",
        "curl http://127.0.0.1:31415/healthz",
        "KILO_API_TOKEN=$(openssl rand -hex 24) kilo serve --host 0.0.0.0",
      ),
    )
    .action((options: { port?: number; host?: string }) => {
      servedAt = { port: options.port, host: options.host };
      return run(async () => (await commands.serve()).serveCommand(context))();
    });

  const skills = program
    .command("skills")
    .summary("import, export and list your bot's skills")
    .description(
      "Markdown skills (SKILL.md, the Agent Skills standard with LLMos-Lite's fields) in and out of your bot.\n" +
        "Import is lenient: a file that breaks the standard is imported with warnings naming the rule.\n" +
        "Export is strict: it writes a SKILL.md that standard validators accept, or fails listing the rules.",
    )
    .addHelpText(
      "after",
      examples(
        "kilo skills import ./skills                 # every SKILL.md below ./skills",
        "kilo skills import skills/pdf/SKILL.md --json",
        "kilo skills export pdf --out ./exported     # writes ./exported/pdf/SKILL.md",
        "kilo skills list",
      ),
    );
  skills
    .command("import")
    .summary("import SKILL.md files (or folders holding them) into your bot")
    .argument("<path...>", "SKILL.md files or directories to search for them")
    .option("--json", "print { bot_id, results: [{ file, skill_id, name, warnings } | { file, error }] }")
    .action((paths: string[], options: { json?: boolean }) =>
      run(async () => (await commands.skills()).skillsImportCommand(paths, options, context))(),
    );
  skills
    .command("export")
    .summary("print a Markdown skill as SKILL.md, or write it to a folder")
    .argument("<skill>", "the skill's id or name")
    .option("-o, --out <dir>", "write <dir>/<name>/SKILL.md instead of printing")
    .action((skill: string, options: { out?: string }) =>
      run(async () => (await commands.skills()).skillsExportCommand(skill, options, context))(),
    );
  skills
    .command("list")
    .summary("list your bot's skills")
    .option("--json", "print the skills as JSON")
    .action((options: { json?: boolean }) =>
      run(async () => (await commands.skills()).skillsListCommand(options, context))(),
    );

  program
    .command("evolve")
    .summary("draft skills from requests you keep making")
    .description(
      "Analyses your traces with the current bot, finds requests that come back (at least 3 times,\n" +
        "mostly successful) and that no skill serves, and drafts a Markdown skill for each. Drafts are\n" +
        "not used until activated; --auto-apply activates them at once. Progress goes to stderr.",
    )
    .option("--json", "print { traces_analyzed, patterns_detected, skills_created, skills, patterns }")
    .option("--auto-apply", "activate the drafted skills at once")
    .addHelpText("after", examples("kilo evolve", "kilo evolve --json", "kilo evolve --auto-apply"))
    .action((options: { json?: boolean; autoApply?: boolean }) =>
      run(async () => (await commands.evolve()).evolveCommand(options, context))(),
    );

  program
    .command("run")
    .summary("start a named workflow and print its output")
    .description(
      "Starts a workflow by name (from the workspace's workflows/ folder, see KILO_WORKSPACE) as a durable\n" +
        "run: the event's type is the workflow, its text the --args JSON. Waits for the run and prints its\n" +
        "output (with --json, the run as kilo status --json prints it). Exits 1 when the run failed.",
    )
    .argument("<workflow>", "the workflow's name, e.g. nightly-report")
    .option("--args <json>", "the workflow's arguments, a JSON object (default {})")
    .option("--json", "print the run as JSON")
    .option("--conversation <key>", "conversation key (default: a new one per run)")
    .addHelpText(
      "after",
      examples(
        'KILO_WORKSPACE=./workspace kilo run nightly-report --args \'{"day":"monday"}\'',
        "kilo run nightly-report --json | jq .output",
      ),
    )
    .action((workflow: string, options: { args?: string; json?: boolean; conversation?: string }) =>
      run(async () => (await commands.run()).runCommand(workflow, options, context))(),
    );

  program
    .command("logs")
    .summary("show a run's log: lifecycle and recorded steps")
    .description(
      "Prints when a run was queued, started and finished, and each recorded workflow step (turn, ask, step)\n" +
        "with its status and duration. Free-form ctx.log lines go to the logger with the run's id.",
    )
    .argument("<run_id>", "the run, as `kilo ask` or `kilo run` printed it")
    .option("--json", "print { run_id, status, workflow, steps } as JSON")
    .addHelpText("after", examples("kilo logs run_0123abcd", "kilo logs run_0123abcd --json"))
    .action((runId: string, options: { json?: boolean }) =>
      run(async () => (await commands.logs()).logsCommand(runId, options, context))(),
    );

  program
    .command("migrate")
    .summary("bring the database schema up to date")
    .description(
      "Applies pending storage migrations and prints them. Other commands migrate on first use too;\n" +
        "run this from a deploy step, or to see what changed.",
    )
    .option("--json", "print { database, applied } as JSON")
    .addHelpText(
      "after",
      examples("kilo migrate", "KILO_DATABASE_URL=postgres://kilo@127.0.0.1:5432/kilo kilo migrate --json"),
    )
    .action((options: { json?: boolean }) =>
      run(async () => (await commands.migrate()).migrateCommand(options, context))(),
    );

  program
    .command("bots")
    .summary("list your bots")
    .description("Lists the configured user's bots, oldest first; * marks the one ask and chat use.")
    .option("--json", "print the bots as JSON")
    .addHelpText("after", examples("kilo bots", "KILO_USER=maria kilo bots --json"))
    .action((options: { json?: boolean }) =>
      run(async () => (await commands.bots()).botsCommand(options, context))(),
    );

  return program;
}

/**
 * Runs the `kilo` command line and resolves with its exit code: 0 ok, 1 a
 * failure (reported on stderr as `kilo: error CODE: message`, with a stack
 * trace only under `KILO_LOG_LEVEL=debug`), 2 a usage error.
 *
 * @param argv The whole command line, as `process.argv` has it: `[node, script, ...arguments]`.
 */
export async function runCli(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  let code: number = EXIT.ok;
  const program = buildProgram(io, argv, (result) => {
    code = result;
  });
  try {
    await program.parseAsync([...argv]);
    return code;
  } catch (error) {
    // Help and --version end parsing with exit code 0; every other parse error is a usage error.
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    return reportFailure(io, error, io.env.KILO_LOG_LEVEL === "debug");
  }
}
