import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import type { Bot } from "../domain/bot.js";
import type { InboundEventInput, Run } from "../domain/run.js";
import { KiloError, toKiloError } from "../errors.js";
import { type CommandContext, createdBotNotice, replyOf, runJson } from "./cli-context.js";
import { type CliIo, EXIT, notice, printJson, println, UsageError } from "./cli-io.js";
import { announceProviders } from "./provider-selection.js";

/** Options of `kilo ask`. */
export interface AskOptions {
  json?: boolean;
  /** `false` with `--no-wait`: queue the run, print its id, and leave it to a background process. */
  wait: boolean;
  /** The conversation to continue; default: a new one. */
  conversation?: string;
}

/** The event type (and so the workflow) of a message sent with `kilo ask`. */
export const ASK_EVENT_TYPE = "cli.message";

/** Set in the environment of the background process `--no-wait` starts. */
const HANDOFF_VARIABLE = "KILO_INTERNAL_HANDOFF";

/** What the background process tells the command that started it, once the run is queued. */
type HandoffReply = Queued | { error: { code: string; message: string } };

/** A run just queued, as `--no-wait` reports it. */
interface Queued {
  run_id: string;
  bot_id: string;
  conversation_key: string;
  /** The default bot, when this message created it. */
  created_bot: Pick<Bot, "id" | "name" | "userId"> | null;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString("utf8");
}

/** The message: the arguments joined, or stdin when there are none (or just `-`) and stdin is not a terminal. */
async function messageText(words: string[], io: CliIo): Promise<string> {
  const fromStdin = words.length === 0 || (words.length === 1 && words[0] === "-");
  if (fromStdin && io.stdin.isTTY) {
    throw new UsageError('no message: kilo ask "your message" (or pipe the message on stdin)');
  }
  const text = (fromStdin ? await readAll(io.stdin) : words.join(" ")).trim();
  if (text === "")
    throw new UsageError('the message is empty: kilo ask "your message" (or pipe it on stdin)');
  return text;
}

function printQueued(io: CliIo, options: AskOptions, queued: Queued): void {
  if (queued.created_bot) notice(io, createdBotNotice(queued.created_bot));
  if (options.json) {
    const { run_id, bot_id, conversation_key } = queued;
    printJson(io, { run_id, status: "queued", output: null, error: null, bot_id, conversation_key });
    return;
  }
  println(io.stdout, `${queued.run_id} queued`);
  notice(io, `see how it goes with: kilo status ${queued.run_id}`);
}

/** Prints a finished run (JSON, or its reply) and returns the exit code: 1 when the run failed. */
export function printFinished(io: CliIo, options: Pick<AskOptions, "json">, run: Run): number {
  if (options.json) printJson(io, runJson(run));
  else {
    const reply = replyOf(run);
    println(io.stdout, reply ?? `${run.id} ${run.status}`);
  }
  if (run.status !== "failed") return EXIT.ok;
  const error = run.error ?? { code: "INTERNAL", message: "the run failed" };
  println(io.stderr, `kilo: error ${error.code}: ${error.message} (run ${run.id})`);
  return EXIT.failure;
}

/**
 * Starts this same command in a detached process that queues the run and
 * executes it, and returns as soon as that process reports the run queued:
 * `--no-wait` exits at once while the run goes on (the CLI has no server to
 * hand it to).
 */
async function handOff(context: CommandContext, text: string): Promise<HandoffReply> {
  const { io } = context;
  const child = spawn(process.execPath, [...process.execArgv, ...context.argv.slice(1)], {
    cwd: io.cwd,
    env: { ...io.env, [HANDOFF_VARIABLE]: "1" },
    detached: true,
    stdio: ["ignore", "ignore", "ignore", "ipc"],
  });
  try {
    return await new Promise<HandoffReply>((resolve, reject) => {
      child.once("message", (message) => resolve(message as HandoffReply));
      child.once("error", (error) =>
        reject(new KiloError("INTERNAL", `Cannot start the background process: ${error.message}`)),
      );
      child.once("exit", (code) =>
        reject(
          new KiloError("INTERNAL", `The background process exited (code ${code}) before queuing the run`),
        ),
      );
      child.send({ text });
    });
  } finally {
    if (child.connected) child.disconnect();
    child.unref();
  }
}

/** The background process's side of the hand-off. */
interface HandoffChannel {
  /** The message to send, from the command that started this process. */
  text(): Promise<string>;
  /** Tells that command the run is queued, or why it is not; only the first reply is sent. */
  reply(message: HandoffReply): void;
}

/** In the background process: the message comes from the parent, and the receipt goes back to it. */
function handoffChannel(io: CliIo): HandoffChannel | null {
  if (io.env[HANDOFF_VARIABLE] !== "1" || typeof process.send !== "function") return null;
  const send = process.send.bind(process);
  let replied = false;
  return {
    text: () =>
      new Promise((resolve, reject) => {
        process.once("message", (message) => resolve((message as { text: string }).text));
        // The command that started this process is gone before it sent the message: nothing to do.
        process.once("disconnect", () => reject(new KiloError("ABORTED", "The starting command went away")));
      }),
    reply(message) {
      if (replied) return;
      replied = true;
      send(message);
      process.disconnect?.();
    },
  };
}

/**
 * `kilo ask`: sends one message to the bot as an InboundEvent v1 through
 * `kilo.runs`, waits for the run and prints the reply (or, with `--json`,
 * `{ run_id, status, output, ... }`). With `--no-wait` it prints the run id
 * once the run is queued and exits; the run goes on in a background process.
 */
export async function askCommand(
  words: string[],
  options: AskOptions,
  context: CommandContext,
): Promise<number> {
  const { io } = context;
  const handoff = handoffChannel(io);
  const settings = context.settings();
  if (!handoff) {
    const text = await messageText(words, io);
    announceProviders(settings, io);
    if (!options.wait) {
      const reply = await handOff(context, text);
      if ("error" in reply) throw new KiloError(reply.error.code as KiloError["code"], reply.error.message);
      printQueued(io, options, reply);
      return EXIT.ok;
    }
    return sendAndWait(context, text, options, null);
  }
  try {
    return await sendAndWait(context, await handoff.text(), options, handoff);
  } catch (error) {
    // Whatever stopped the run from being queued (no database, a bad bot) goes back to the command.
    handoff.reply({ error: toKiloError(error, "INTERNAL", "Cannot queue the run").toJSON() });
    throw error;
  }
}

async function sendAndWait(
  context: CommandContext,
  text: string,
  options: AskOptions,
  handoff: HandoffChannel | null,
): Promise<number> {
  const { io } = context;
  const settings = context.settings();
  // Loaded here, not at the top: `--no-wait` hands off before it needs kilo itself.
  const { openRuntime, resolveBot } = await import("./cli-runtime.js");
  const runtime = await openRuntime(settings, io, { defaultLogLevel: "warn", role: "sender" });
  try {
    const { bot, created } = await resolveBot(runtime.kilo, settings);
    const event: InboundEventInput = {
      schema_version: 1,
      type: ASK_EVENT_TYPE,
      conversation_key: options.conversation ?? `cli:${randomUUID()}`,
      user_key: settings.user,
      text,
    };
    const { run_id } = await runtime.kilo.runs.ingest(event, { botId: bot.id });
    const queued: Queued = {
      run_id,
      bot_id: bot.id,
      conversation_key: event.conversation_key,
      created_bot: created ? { id: bot.id, name: bot.name, userId: bot.userId } : null,
    };
    if (handoff) handoff.reply(queued);
    else if (queued.created_bot) notice(io, createdBotNotice(queued.created_bot));
    const run = await runtime.kilo.runs.wait(queued.run_id);
    return handoff ? EXIT.ok : printFinished(io, options, run);
  } finally {
    await runtime.close();
  }
}
