/**
 * The CLI's composition root: it turns settings into storage, a provider, a
 * logger and a kilo instance. Like a host application, it is the one place in
 * `src/` that loads adapters, always through `import()`, so the core never
 * depends on them and a driver is loaded only when its database is used.
 */

import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { Bot } from "../domain/bot.js";
import type { Run } from "../domain/run.js";
import { KiloError } from "../errors.js";
import type { LearningProgressEvent, LearningStage } from "../events.js";
import { createKilo, type Kilo } from "../kilo.js";
import type { LlmProvider } from "../ports/llm-provider.js";
import type { Logger, LogLevel } from "../ports/logger.js";
import type { Storage } from "../ports/storage.js";
import type { RunSettings } from "../runs/run-service.js";
import { jsonLogger } from "../runtime/logger.js";
import { allPages } from "../runtime/pages.js";
import type { CliSettings, DatabaseTarget } from "./cli-config.js";
import { type CliIo, println } from "./cli-io.js";
import { OFFLINE_MODEL, offlineProvider } from "./offline-provider.js";
import { prettyLogger } from "./pretty-logger.js";
import { PROVIDER_VARIABLES, selectProviders } from "./provider-selection.js";

/** The name of the bot created when the user has none. */
export const DEFAULT_BOT_NAME = "Kilo";

/** A storage adapter with the lifecycle the CLI drives. */
export type CliStorage = Storage & {
  migrate(): Promise<{ applied: string[] }>;
  close(): Promise<void>;
};

/** Options of {@link openRuntime}. */
export interface RuntimeOptions {
  /** The log level when none is configured. */
  defaultLogLevel: LogLevel;
  /**
   * What the command does with runs, which decides how its kilo executes them:
   * - `reader` only reads (status, bots): no model, and it never executes a run.
   * - `sender` executes the runs it sends (ask, chat): never what an earlier
   *   process left unfinished, which another live process may be running; on
   *   shared storage (Postgres), where every process claims queued runs, one at a time.
   * - `server` is kilo's default executor: it resumes unfinished runs on
   *   storage one process owns (SQLite), and claims `concurrency` runs at once on shared storage.
   */
  role: "reader" | "sender" | "server";
}

/** The `runs` settings of a {@link RuntimeOptions.role}. */
function runSettings(role: RuntimeOptions["role"], shared: boolean): RunSettings {
  if (role === "server") return {};
  if (!shared) return { recover: false };
  return { concurrency: role === "reader" ? 0 : 1 };
}

/** An open kilo and what it was built from. Close it when the command is done. */
export interface CliRuntime {
  kilo: Kilo;
  settings: CliSettings;
  logger: Logger;
  /** The providers in fallback order (one, the offline model, when no key is set). */
  providers: LlmProvider[];
  close(): Promise<void>;
}

/** The logger of `KILO_LOG_LEVEL` and `KILO_LOG_FORMAT`, writing to stderr. */
export function createCliLogger(settings: CliSettings, io: CliIo, defaultLevel: LogLevel): Logger {
  const level = settings.logLevel ?? defaultLevel;
  const write = (line: string) => println(io.stderr, line);
  return settings.logFormat === "json" ? jsonLogger({ level, write }) : prettyLogger({ level, write });
}

/** Opens the configured database. SQL adapters migrate on first use unless `migrate` is false. */
export async function openStorage(
  target: DatabaseTarget,
  options: { migrate?: boolean } = {},
): Promise<CliStorage> {
  const migrate = options.migrate ?? true;
  if (target.kind === "postgres") {
    const { postgresStorage } = await import("../../adapters/storage/postgres/index.js");
    return postgresStorage({
      connectionString: target.connectionString,
      schema: target.schema,
      tablePrefix: target.tablePrefix,
      migrate,
      poolSize: 4,
    });
  }
  if (target.filename !== ":memory:") mkdirSync(dirname(target.filename), { recursive: true });
  const { sqliteStorage } = await import("../../adapters/storage/sqlite/index.js");
  return sqliteStorage({ filename: target.filename, tablePrefix: target.tablePrefix, migrate });
}

/** The live provider adapters, loaded only when selected. Both take `apiKey`, `baseURL` and `defaultModel`. */
const LIVE_PROVIDERS = {
  anthropic: async () => (await import("../../adapters/providers/anthropic/index.js")).anthropicProvider,
  openai: async () => (await import("../../adapters/providers/openai/index.js")).openaiProvider,
};

async function createProviders(settings: CliSettings, env: CliIo["env"]): Promise<LlmProvider[]> {
  const providers: LlmProvider[] = [];
  for (const [index, name] of selectProviders(settings, env).entries()) {
    if (name === "offline") {
      providers.push(offlineProvider());
      continue;
    }
    const create = await LIVE_PROVIDERS[name]();
    const variables = PROVIDER_VARIABLES[name];
    providers.push(
      create({
        apiKey: env[variables.apiKey],
        baseURL: env[variables.baseUrl] || undefined,
        // KILO_MODEL is the first provider's model; a fallback keeps its own default.
        defaultModel: index === 0 ? (settings.model ?? undefined) : undefined,
      }),
    );
  }
  return providers;
}

/** Opens storage, providers and a kilo instance for one command. */
export async function openRuntime(
  settings: CliSettings,
  io: CliIo,
  options: RuntimeOptions,
): Promise<CliRuntime> {
  const logger = createCliLogger(settings, io, options.defaultLogLevel);
  const providers = options.role === "reader" ? [offlineProvider()] : await createProviders(settings, io.env);
  const storage = await openStorage(settings.database);
  // Auto-learning ("Learn how to use Stripe") needs web search: on when a Brave key is set.
  const search =
    options.role !== "reader" && io.env.BRAVE_SEARCH_API_KEY
      ? (await import("../../adapters/search/brave/index.js")).braveSearch({
          apiKey: io.env.BRAVE_SEARCH_API_KEY,
        })
      : undefined;
  const kilo = createKilo({
    storage,
    providers,
    logger,
    search,
    workspace: settings.workspace ?? undefined,
    prices: { [OFFLINE_MODEL]: { input: 0, output: 0, cacheWrite: 0, cacheRead: 0 } },
    runs: runSettings(options.role, storage.capabilities.crossProcess),
  });
  if (options.role !== "reader") {
    kilo.events.on("learning-progress", (event) => println(io.stderr, learningProgressLine(event)));
  }
  return { kilo, settings, logger, providers, close: () => kilo.close() };
}

const WORKING_STAGES: ReadonlySet<LearningStage> = new Set([
  "searching",
  "reading",
  "analysing",
  "proposing",
]);
const DONE_STAGES: ReadonlySet<LearningStage> = new Set(["proposed", "created"]);

/**
 * One stderr line per auto-learning stage: `…` while it works, `✓` when a
 * proposal or the integration is ready, `✗` when it failed or was declined.
 * Waiting for a credential also says how to give it without putting it in chat.
 */
export function learningProgressLine(event: LearningProgressEvent): string {
  const mark = WORKING_STAGES.has(event.stage)
    ? "…"
    : DONE_STAGES.has(event.stage)
      ? "✓"
      : event.stage === "awaiting-credential"
        ? "→"
        : "✗";
  const line = `kilo: learning ${event.topic}: ${mark} ${event.message}`;
  if (event.stage !== "awaiting-credential") return line;
  return `${line}\n  give the key through the API (kilo.learning.setCredential, session ${event.sessionId}), never in chat: chat is stored`;
}

/** The configured user's run; another user's run is `NOT_FOUND`, as over HTTP, so ids cannot be probed. */
export async function ownRun(runtime: CliRuntime, runId: string): Promise<Run> {
  const run = await runtime.kilo.runs.get(runId);
  if (run.userId !== runtime.settings.user) throw new KiloError("NOT_FOUND", `No run '${runId}'`);
  return run;
}

/** All of the user's bots, oldest first. */
export function listBots(kilo: Kilo, userId: string): Promise<Bot[]> {
  return allPages((cursor) => kilo.bots.listByUser(userId, { limit: 500, cursor }));
}

/** Finds one of the user's bots by id, else by name (ignoring case). */
export function findBot(bots: Bot[], wanted: string): Bot | undefined {
  const lower = wanted.toLowerCase();
  return bots.find((bot) => bot.id === wanted) ?? bots.find((bot) => bot.name.toLowerCase() === lower);
}

/**
 * The bot a command talks to: the one `KILO_BOT` / `--bot` names (id or
 * name), else the user's first bot. When the user has no bot yet, one is
 * created (named after `KILO_BOT`, else {@link DEFAULT_BOT_NAME}) and
 * `created` is true. A named bot the user lacks, while they have others, is
 * `NOT_FOUND`: a typo never creates a bot.
 */
export async function resolveBot(kilo: Kilo, settings: CliSettings): Promise<{ bot: Bot; created: boolean }> {
  const bots = await listBots(kilo, settings.user);
  const found = settings.bot === null ? bots[0] : findBot(bots, settings.bot);
  if (found) return { bot: found, created: false };
  if (bots.length === 0) {
    const bot = await kilo.bots.create({ userId: settings.user, name: settings.bot ?? DEFAULT_BOT_NAME });
    return { bot, created: true };
  }
  throw new KiloError(
    "NOT_FOUND",
    `User '${settings.user}' has no bot '${settings.bot}'; their bots: ${bots.map((bot) => bot.name).join(", ")} (see \`kilo bots\`)`,
  );
}
