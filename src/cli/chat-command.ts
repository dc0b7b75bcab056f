import type { Bot } from "../domain/bot.js";
import { KiloError, toKiloError } from "../errors.js";
import { type CommandContext, createdBotNotice } from "./cli-context.js";
import { type CliIo, EXIT, notice, println } from "./cli-io.js";
import { type CliRuntime, findBot, listBots, openRuntime, resolveBot } from "./cli-runtime.js";
import { type LinePrompter, linePrompter } from "./line-prompter.js";
import { announceProviders } from "./provider-selection.js";
import { soulWizard } from "./soul-wizard.js";
import { type Spinner, terminalSpinner } from "./terminal-spinner.js";

/** The chat's slash commands and what they do, as `/help` lists them. */
export const CHAT_COMMANDS: ReadonlyArray<readonly [string, string]> = [
  ["/bots", "list your bots"],
  ["/new", "create a bot with a guided soul setup"],
  ["/switch [bot]", "talk to another bot (name, number or id)"],
  ["/delete [bot]", "delete a bot and all its data"],
  ["/skills", "list the current bot's skills"],
  ["/tools", "list the current bot's API integrations"],
  ["/cost", "show your LLM spend, by model and by bot"],
  ["/help", "show this list"],
  ["/quit", "leave (Ctrl-D works too)"],
];

/** The chat's state: who is talking to which bot, in which conversation. */
interface ChatSession {
  runtime: CliRuntime;
  io: CliIo;
  prompter: LinePrompter;
  spinner: Spinner;
  userId: string;
  bot: Bot | null;
  /** The conversation under way with `bot`; a new one starts after a switch. */
  conversationId: string | undefined;
}

const usd = (value: number) => `$${value.toFixed(4)}`;

async function pickBot(session: ChatSession, argument: string, verb: string): Promise<Bot | null> {
  const { io } = session;
  const bots = await listBots(session.runtime.kilo, session.userId);
  if (bots.length === 0) {
    println(io.stdout, "You have no bots. /new creates one.");
    return null;
  }
  let wanted = argument;
  if (wanted === "") {
    for (const [index, bot] of bots.entries()) println(io.stdout, `  ${index + 1}. ${bot.name}`);
    wanted = ((await session.prompter.ask(`${verb} which bot (number or name)? `)) ?? "").trim();
    if (wanted === "") return null;
  }
  const byNumber = /^\d+$/.test(wanted) ? bots[Number(wanted) - 1] : undefined;
  const bot = byNumber ?? findBot(bots, wanted);
  if (!bot) println(io.stdout, `No bot '${wanted}'. /bots lists them.`);
  return bot ?? null;
}

function switchTo(session: ChatSession, bot: Bot | null): void {
  session.bot = bot;
  session.conversationId = undefined;
  println(session.io.stdout, bot ? `Now talking to ${bot.name}.` : "No bot selected: /new creates one.");
}

async function listCurrentBots(session: ChatSession): Promise<void> {
  const bots = await listBots(session.runtime.kilo, session.userId);
  if (bots.length === 0) println(session.io.stdout, "You have no bots. /new creates one.");
  bots.forEach((bot, index) => {
    const marker = bot.id === session.bot?.id ? "*" : " ";
    println(session.io.stdout, `${marker} ${index + 1}. ${bot.name}  (${bot.id})`);
  });
}

async function createBot(session: ChatSession): Promise<void> {
  const result = await soulWizard(session.io, session.prompter);
  if (!result) {
    println(session.io.stdout, "Cancelled: no bot created.");
    return;
  }
  const bot = await session.runtime.kilo.bots.create({ userId: session.userId, ...result });
  println(session.io.stdout, `Created ${bot.name} (${bot.id}).`);
  switchTo(session, bot);
}

async function deleteBot(session: ChatSession, argument: string): Promise<void> {
  const bot = await pickBot(session, argument, "Delete");
  if (!bot) return;
  const answer = await session.prompter.ask(
    `Delete ${bot.name} and all its data (skills, memories, conversations)? [y/N]: `,
  );
  if (!/^y/i.test(answer?.trim() ?? "")) {
    println(session.io.stdout, "Kept.");
    return;
  }
  await session.runtime.kilo.bots.delete(bot.id);
  println(session.io.stdout, `Deleted ${bot.name}.`);
  if (session.bot?.id === bot.id)
    switchTo(session, (await listBots(session.runtime.kilo, session.userId))[0] ?? null);
}

async function listSkills(session: ChatSession, bot: Bot): Promise<void> {
  const skills = await session.runtime.kilo.skills.list(bot.id);
  if (skills.length === 0)
    println(
      session.io.stdout,
      `${bot.name} has no skills yet: ask it for something new and it may propose one.`,
    );
  for (const skill of skills) println(session.io.stdout, `- ${skill.name}: ${skill.description}`);
}

async function listTools(session: ChatSession, bot: Bot): Promise<void> {
  const tools = await session.runtime.kilo.tools.list(bot.id);
  if (tools.length === 0)
    println(
      session.io.stdout,
      `${bot.name} has no API integrations (register them over the HTTP API or kilo.tools).`,
    );
  for (const tool of tools) {
    const endpoints = `${tool.endpoints.length} endpoint${tool.endpoints.length === 1 ? "" : "s"}`;
    println(session.io.stdout, `- ${tool.name}: ${tool.baseUrl} (${endpoints}, auth ${tool.auth.type})`);
  }
}

async function showCost(session: ChatSession): Promise<void> {
  const { kilo } = session.runtime;
  const query = { userId: session.userId };
  const summary = await kilo.usage.summary(query);
  const out = session.io.stdout;
  println(
    out,
    `Total: ${usd(summary.costUsd)} over ${summary.calls} LLM call${summary.calls === 1 ? "" : "s"} ` +
      `(${summary.promptTokens + summary.cacheReadTokens + summary.cacheWriteTokens} prompt tokens, ${summary.cacheReadTokens} from cache; ${summary.completionTokens} completion tokens)`,
  );
  if (summary.calls === 0) return;
  const breakdown = await kilo.usage.breakdown(query);
  const names = new Map((await listBots(kilo, session.userId)).map((bot) => [bot.id, bot.name]));
  println(out, "By model:");
  for (const row of breakdown.byModel)
    println(out, `  ${row.model}: ${usd(row.costUsd)} (${row.calls} calls)`);
  println(out, "By bot:");
  for (const row of breakdown.byBot) {
    const name = row.botId === null ? "(no bot)" : (names.get(row.botId) ?? row.botId);
    println(out, `  ${name}: ${usd(row.costUsd)} (${row.calls} calls)`);
  }
}

/** One message to the bot, its reply streamed as the model writes it. */
async function sendMessage(session: ChatSession, bot: Bot, message: string): Promise<void> {
  const { io, spinner } = session;
  const label = `${bot.name} is thinking...`;
  let writing = false;
  spinner.start(label);
  try {
    const stream = session.runtime.kilo.stream({
      botId: bot.id,
      userId: session.userId,
      conversationId: session.conversationId,
      message,
      channel: "cli",
    });
    for await (const event of stream) {
      if (event.type === "text-delta") {
        if (!writing) {
          spinner.stop();
          io.stdout.write(`${bot.name} > `);
          writing = true;
        }
        io.stdout.write(event.text);
      } else if (event.type === "tool-call") {
        spinner.stop();
        if (writing) println(io.stdout);
        writing = false;
        println(io.stdout, `  [calling ${event.name}]`);
        spinner.start(label);
      } else if (event.type === "result") {
        spinner.stop();
        const { result } = event;
        // A provider that does not stream sends no deltas: the reply comes whole.
        println(io.stdout, writing ? "" : `${bot.name} > ${result.reply}`);
        session.conversationId = result.conversationId;
        if (result.createdSkill) println(io.stdout, `  [new skill: ${result.createdSkill.name}]`);
      }
    }
  } finally {
    spinner.stop();
  }
}

/** Handles one line; resolves `false` when the chat should end. */
async function handleLine(session: ChatSession, line: string): Promise<boolean> {
  const { io } = session;
  const [command = "", ...rest] = line.split(/\s+/);
  const argument = rest.join(" ");
  if (!line.startsWith("/")) {
    if (!session.bot) println(io.stdout, "No bot selected: /new creates one.");
    else await sendMessage(session, session.bot, line);
    return true;
  }
  const needBot = (then: (bot: Bot) => Promise<void>) =>
    session.bot
      ? then(session.bot)
      : Promise.resolve(println(io.stdout, "No bot selected: /new creates one."));
  switch (command.toLowerCase()) {
    case "/quit":
    case "/exit":
      return false;
    case "/help":
      for (const [name, description] of CHAT_COMMANDS)
        println(io.stdout, `  ${name.padEnd(14)} ${description}`);
      return true;
    case "/bots":
      await listCurrentBots(session);
      return true;
    case "/new":
      await createBot(session);
      return true;
    case "/switch": {
      const bot = await pickBot(session, argument, "Switch to");
      if (bot) switchTo(session, bot);
      return true;
    }
    case "/delete":
      await deleteBot(session, argument);
      return true;
    case "/skills":
      await needBot((bot) => listSkills(session, bot));
      return true;
    case "/tools":
      await needBot((bot) => listTools(session, bot));
      return true;
    case "/cost":
      await showCost(session);
      return true;
    default:
      println(io.stdout, `Unknown command ${command}: /help lists them.`);
      return true;
  }
}

/**
 * `kilo chat`: the interactive chat of the Kilo seed. Messages go to the
 * current bot and replies stream in as the model writes them, with a spinner
 * while it works; slash commands manage bots (`/new` walks through a soul),
 * list skills and tools, and show spend. A failed turn is reported and the
 * chat goes on.
 */
export async function chatCommand(context: CommandContext): Promise<number> {
  const { io } = context;
  const settings = context.settings();
  announceProviders(settings, io);
  const runtime = await openRuntime(settings, io, { defaultLogLevel: "warn", role: "sender" });
  const prompter = linePrompter(io);
  try {
    const { bot, created } = await resolveBot(runtime.kilo, settings);
    if (created) notice(io, createdBotNotice(bot));
    const session: ChatSession = {
      runtime,
      io,
      prompter,
      spinner: terminalSpinner(io.stdout),
      userId: settings.user,
      bot,
      conversationId: undefined,
    };
    const model = runtime.providers.map((provider) => provider.name).join(", ");
    println(
      io.stdout,
      `kilo chat: talking to ${bot.name} (model: ${model}). /help lists commands, /quit leaves.`,
    );
    for (;;) {
      const line = await prompter.ask("you > ");
      if (line === null) break;
      const trimmed = line.trim();
      if (trimmed === "") continue;
      try {
        if (!(await handleLine(session, trimmed))) break;
      } catch (error) {
        const failure = KiloError.is(error) ? error : toKiloError(error, "INTERNAL", "Unexpected failure");
        println(io.stdout, `error ${failure.code}: ${failure.message}`);
      }
    }
    println(io.stdout, "Bye.");
    return EXIT.ok;
  } finally {
    prompter.close();
    await runtime.close();
  }
}
