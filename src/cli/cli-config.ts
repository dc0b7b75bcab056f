import { existsSync, readFileSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { IdSchema } from "../domain/common.js";
import { KiloError } from "../errors.js";
import { LOG_LEVELS, type LogLevel } from "../ports/logger.js";

/** The config file looked for in the working directory when neither `--config` nor `KILO_CONFIG` names one. */
export const CONFIG_FILE_NAME = "kilo.config.json";

/** The SQLite file used when no database is configured, relative to the working directory. */
export const DEFAULT_DATABASE_FILE = ".kilo/kilo.sqlite";

/** The port `kilo serve` listens on by default. */
export const DEFAULT_PORT = 31415;

/** The user id the CLI acts for by default. */
export const DEFAULT_USER = "local";

/** Which LLM provider the CLI uses: `auto` picks from the environment's API keys. */
export const PROVIDER_CHOICES = ["auto", "anthropic", "openai", "offline"] as const;

/** How log lines are written: `pretty` for people, `json` for log collectors. */
export const LOG_FORMATS = ["pretty", "json"] as const;

const PORT_MESSAGE = "must be a port number from 0 to 65535";
const PortSchema = z
  .number({ error: PORT_MESSAGE })
  .int(PORT_MESSAGE)
  .min(0, PORT_MESSAGE)
  .max(65535, PORT_MESSAGE);

/** Every setting, as validated from one source (all optional there). */
const fields = {
  databaseUrl: z.string().trim().min(1, "must not be empty"),
  databaseSchema: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, "must be a Postgres identifier (letters, digits, '_')"),
  tablePrefix: z.string().regex(/^[A-Za-z0-9_]{1,24}$/, "must be 1-24 letters, digits or '_'"),
  host: z.string().trim().min(1, "must not be empty"),
  port: PortSchema,
  logLevel: z.enum(LOG_LEVELS),
  logFormat: z.enum(LOG_FORMATS),
  user: IdSchema,
  bot: z.string().trim().min(1, "must not be empty").max(128),
  provider: z.enum(PROVIDER_CHOICES),
  model: z.string().trim().min(1, "must not be empty").max(200),
  apiToken: z.string().min(16, "must be at least 16 characters"),
  workspace: z.string().trim().min(1, "must not be empty").max(4096),
};

type FieldName = keyof typeof fields;

/** What the config file may hold: every setting but the API token (a secret: environment only). */
const FileSchema = z
  .object({
    databaseUrl: fields.databaseUrl.optional(),
    databaseSchema: fields.databaseSchema.optional(),
    tablePrefix: fields.tablePrefix.optional(),
    host: fields.host.optional(),
    port: fields.port.optional(),
    logLevel: fields.logLevel.optional(),
    logFormat: fields.logFormat.optional(),
    user: fields.user.optional(),
    bot: fields.bot.optional(),
    provider: fields.provider.optional(),
    model: fields.model.optional(),
    workspace: fields.workspace.optional(),
  })
  .strict();

/** The contents of `kilo.config.json`: every key optional, unknown keys refused. */
export type CliConfigFile = z.infer<typeof FileSchema>;

/** Environment variable of each setting. */
export const ENV_VARIABLES: Readonly<Record<FieldName, string>> = {
  databaseUrl: "KILO_DATABASE_URL",
  databaseSchema: "KILO_DATABASE_SCHEMA",
  tablePrefix: "KILO_TABLE_PREFIX",
  host: "KILO_HOST",
  port: "KILO_PORT",
  logLevel: "KILO_LOG_LEVEL",
  logFormat: "KILO_LOG_FORMAT",
  user: "KILO_USER",
  bot: "KILO_BOT",
  provider: "KILO_PROVIDER",
  model: "KILO_MODEL",
  apiToken: "KILO_API_TOKEN",
  workspace: "KILO_WORKSPACE",
};

/** Where the CLI keeps its data. */
export type DatabaseTarget =
  | { kind: "sqlite"; filename: string; tablePrefix?: string | undefined }
  | {
      kind: "postgres";
      connectionString: string;
      schema?: string | undefined;
      tablePrefix?: string | undefined;
    };

/** The CLI's resolved configuration: command-line flags over environment over config file over defaults. */
export interface CliSettings {
  database: DatabaseTarget;
  host: string;
  port: number;
  /** `null`: the default of the command (`info` for `serve`, `warn` otherwise). */
  logLevel: LogLevel | null;
  logFormat: (typeof LOG_FORMATS)[number];
  user: string;
  /** A bot id or name; `null`: the user's first bot (created when there is none). */
  bot: string | null;
  provider: (typeof PROVIDER_CHOICES)[number];
  /** The model a live provider uses; `null`: the provider's default. */
  model: string | null;
  /** Bearer token `kilo serve` requires, from `KILO_API_TOKEN`; `null`: no token. */
  apiToken: string | null;
  /** The config file read, if any. */
  configFile: string | null;
  /** The workspace directory (SYSTEM.md, AGENTS.md, skills/, workflows/), resolved; `null`: none. */
  workspace: string | null;
}

/** Settings given on the command line; they win over the environment and the file. */
export interface CliFlags {
  config?: string | undefined;
  user?: string | undefined;
  bot?: string | undefined;
  port?: number | undefined;
  host?: string | undefined;
}

/** Where {@link loadSettings} reads from. */
export interface SettingsSources {
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
  flags?: CliFlags;
}

function invalid(where: string, error: z.ZodError, name: (key: string) => string): KiloError {
  const problems = error.issues.map((issue) => {
    if (issue.code === "unrecognized_keys") {
      return `unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((key) => `'${key}'`).join(", ")} (known: ${Object.keys(FileSchema.shape).join(", ")})`;
    }
    const key = issue.path.length > 0 ? name(String(issue.path[0])) : "(root)";
    return `${key}: ${issue.message}`;
  });
  return new KiloError("CONFIGURATION_INVALID", `Invalid configuration in ${where}: ${problems.join("; ")}`, {
    details: error.issues,
  });
}

function readConfigFile(path: string): CliConfigFile {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : String(error);
    throw new KiloError("CONFIGURATION_INVALID", `Cannot read config file ${path}: ${reason}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new KiloError(
      "CONFIGURATION_INVALID",
      `Config file ${path} is not valid JSON: ${(error as Error).message}`,
    );
  }
  const parsed = FileSchema.safeParse(json);
  if (!parsed.success) throw invalid(path, parsed.error, (key) => key);
  return parsed.data;
}

function readEnvironment(env: SettingsSources["env"]): Partial<Record<FieldName, unknown>> {
  const raw: Partial<Record<FieldName, unknown>> = {};
  for (const [key, variable] of Object.entries(ENV_VARIABLES) as Array<[FieldName, string]>) {
    const value = env[variable];
    // An empty variable counts as unset, as in most shells' `VAR= cmd`.
    if (value === undefined || value.trim() === "") continue;
    raw[key] = key === "port" && /^\d+$/.test(value.trim()) ? Number(value.trim()) : value;
  }
  const schema = z.object(
    Object.fromEntries(Object.entries(fields).map(([key, field]) => [key, field.optional()])) as {
      [K in FieldName]: z.ZodOptional<(typeof fields)[K]>;
    },
  );
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    throw invalid("the environment", parsed.error, (key) => ENV_VARIABLES[key as FieldName] ?? key);
  }
  return parsed.data;
}

/** The config file to read: `--config`, else `KILO_CONFIG`, else `kilo.config.json` when the working directory has one. */
function configPath(sources: SettingsSources): string | null {
  const named = sources.flags?.config ?? (sources.env.KILO_CONFIG?.trim() || undefined);
  if (named !== undefined) return resolve(sources.cwd, named);
  const found = resolve(sources.cwd, CONFIG_FILE_NAME);
  return existsSync(found) ? found : null;
}

const LONE_DRIVE_LETTER = /^[A-Za-z]:[\\/]/;

/**
 * Reads a database URL: `postgres://` or `postgresql://` (a `?schema=` parameter
 * picks the schema), `sqlite:<path>`, `file:` URLs, or a plain SQLite file path.
 */
export function parseDatabaseUrl(
  url: string,
  cwd: string,
  extra: { schema?: string | undefined; tablePrefix?: string | undefined } = {},
): DatabaseTarget {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(url)?.[1]?.toLowerCase();
  if (scheme === "postgres" || scheme === "postgresql") {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new KiloError(
        "CONFIGURATION_INVALID",
        "KILO_DATABASE_URL is not a valid postgres:// URL (expected postgres://user:password@host:port/database)",
      );
    }
    const fromUrl = parsed.searchParams.get("schema") ?? undefined;
    parsed.searchParams.delete("schema");
    const schema = extra.schema ?? fromUrl;
    if (schema !== undefined && !fields.databaseSchema.safeParse(schema).success) {
      throw new KiloError(
        "CONFIGURATION_INVALID",
        `Invalid database schema '${schema}': must be a Postgres identifier (letters, digits, '_')`,
      );
    }
    return { kind: "postgres", connectionString: parsed.href, schema, tablePrefix: extra.tablePrefix };
  }
  let filename: string;
  if (scheme === "sqlite") {
    filename = url.slice("sqlite:".length).replace(/^\/\//, "");
  } else if (scheme === "file") {
    filename = fileURLToPath(url);
  } else if (scheme === undefined || LONE_DRIVE_LETTER.test(url)) {
    filename = url;
  } else {
    throw new KiloError(
      "CONFIGURATION_INVALID",
      `Unsupported database URL scheme '${scheme}:'; use postgres://..., sqlite:<file> or a SQLite file path`,
    );
  }
  if (filename === "") throw new KiloError("CONFIGURATION_INVALID", "The SQLite database URL names no file");
  if (filename !== ":memory:" && !isAbsolute(filename)) filename = resolve(cwd, filename);
  return { kind: "sqlite", filename, tablePrefix: extra.tablePrefix };
}

/**
 * Resolves the CLI's settings: command-line flags over `KILO_*` environment
 * variables over the config file over defaults. Every source is validated;
 * a bad value fails with `CONFIGURATION_INVALID` naming the variable or key.
 */
export function loadSettings(sources: SettingsSources): CliSettings {
  const file = configPath(sources);
  const fromFile: Partial<Record<FieldName, unknown>> = file ? readConfigFile(file) : {};
  const fromEnv = readEnvironment(sources.env);
  const flags = sources.flags ?? {};
  const pick = <K extends FieldName>(key: K): z.output<(typeof fields)[K]> | undefined =>
    ((flags as Record<string, unknown>)[key] ?? fromEnv[key] ?? fromFile[key]) as
      | z.output<(typeof fields)[K]>
      | undefined;
  const database = parseDatabaseUrl(pick("databaseUrl") ?? DEFAULT_DATABASE_FILE, sources.cwd, {
    schema: pick("databaseSchema"),
    tablePrefix: pick("tablePrefix"),
  });
  return {
    database,
    host: pick("host") ?? "127.0.0.1",
    port: pick("port") ?? DEFAULT_PORT,
    logLevel: pick("logLevel") ?? null,
    logFormat: pick("logFormat") ?? "pretty",
    user: pick("user") ?? DEFAULT_USER,
    bot: pick("bot") ?? null,
    provider: pick("provider") ?? "auto",
    model: pick("model") ?? null,
    apiToken: (fromEnv.apiToken as string | undefined) ?? null,
    configFile: file,
    workspace: pick("workspace") === undefined ? null : resolve(sources.cwd, pick("workspace")!),
  };
}

/** The database as shown to people: a file path, or host/database without credentials. */
export function describeDatabase(target: DatabaseTarget): string {
  if (target.kind === "sqlite") return `sqlite ${target.filename}`;
  const url = new URL(target.connectionString);
  const schema = target.schema ? ` (schema ${target.schema})` : "";
  return `postgres ${url.hostname}${url.port ? `:${url.port}` : ""}${url.pathname}${schema}`;
}
