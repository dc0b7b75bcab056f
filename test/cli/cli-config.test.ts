import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadSettings, parseDatabaseUrl } from "../../src/cli/cli-config.js";
import { selectProviders } from "../../src/cli/provider-selection.js";
import { KiloError } from "../../src/errors.js";

const dirs: string[] = [];
function tempDir(config?: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), "kilo-config-"));
  dirs.push(dir);
  if (config !== undefined) {
    writeFileSync(
      join(dir, "kilo.config.json"),
      typeof config === "string" ? config : JSON.stringify(config),
    );
  }
  return dir;
}

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function failure(run: () => unknown): KiloError {
  try {
    run();
  } catch (error) {
    if (KiloError.is(error)) return error;
    throw error;
  }
  throw new Error("expected a KiloError");
}

describe("CLI settings", () => {
  it("has defaults for everything: a SQLite file under ./.kilo, loopback port 31415, user 'local'", () => {
    const cwd = tempDir();
    const settings = loadSettings({ env: {}, cwd });
    expect(settings).toMatchObject({
      database: { kind: "sqlite", filename: join(cwd, ".kilo/kilo.sqlite") },
      host: "127.0.0.1",
      port: 31415,
      user: "local",
      bot: null,
      provider: "auto",
      logLevel: null,
      logFormat: "pretty",
      apiToken: null,
      configFile: null,
    });
  });

  it("takes flags over KILO_* variables over kilo.config.json", () => {
    const cwd = tempDir({
      user: "from-file",
      bot: "FileBot",
      port: 4000,
      logFormat: "json",
      model: "m-file",
    });
    const env = { KILO_USER: "from-env", KILO_PORT: "5000", KILO_LOG_LEVEL: "debug" };
    const settings = loadSettings({ env, cwd, flags: { user: "from-flag" } });
    expect(settings).toMatchObject({
      user: "from-flag",
      bot: "FileBot",
      port: 5000,
      logLevel: "debug",
      logFormat: "json",
      model: "m-file",
      configFile: join(cwd, "kilo.config.json"),
    });
  });

  it("reads the file named by --config or KILO_CONFIG instead of ./kilo.config.json", () => {
    const cwd = tempDir({ user: "default-file" });
    writeFileSync(join(cwd, "other.json"), JSON.stringify({ user: "other-file" }));
    expect(loadSettings({ env: {}, cwd, flags: { config: "other.json" } }).user).toBe("other-file");
    expect(loadSettings({ env: { KILO_CONFIG: "other.json" }, cwd }).user).toBe("other-file");
  });

  it("treats an empty variable as unset", () => {
    const cwd = tempDir();
    expect(loadSettings({ env: { KILO_PORT: "", KILO_USER: " " }, cwd })).toMatchObject({
      port: 31415,
      user: "local",
    });
  });

  it("keeps the API token to the environment: the config file may not hold it", () => {
    const cwd = tempDir({ apiToken: "a-very-long-secret-token" });
    const error = failure(() => loadSettings({ env: {}, cwd }));
    expect(error.code).toBe("CONFIGURATION_INVALID");
    expect(error.message).toContain("unknown key 'apiToken'");
    expect(
      loadSettings({ env: { KILO_API_TOKEN: "a-very-long-secret-token" }, cwd: tempDir() }).apiToken,
    ).toBe("a-very-long-secret-token");
  });

  it.each([
    [{ KILO_PORT: "http" }, "KILO_PORT: must be a port number from 0 to 65535"],
    [{ KILO_PORT: "70000" }, "KILO_PORT: must be a port number from 0 to 65535"],
    [{ KILO_LOG_FORMAT: "xml" }, "KILO_LOG_FORMAT"],
    [{ KILO_LOG_LEVEL: "loud" }, "KILO_LOG_LEVEL"],
    [{ KILO_USER: "has spaces" }, "KILO_USER"],
    [{ KILO_PROVIDER: "gemini" }, "KILO_PROVIDER"],
    [{ KILO_DATABASE_URL: "mysql://db/kilo" }, "Unsupported database URL scheme 'mysql:'"],
    [{ KILO_API_TOKEN: "short" }, "KILO_API_TOKEN: must be at least 16 characters"],
  ])("refuses %o with a message naming the variable", (env, message) => {
    const error = failure(() => loadSettings({ env, cwd: tempDir() }));
    expect(error.code).toBe("CONFIGURATION_INVALID");
    expect(error.message).toContain(message);
  });

  it("names the file and key of a bad config file, and refuses unknown keys", () => {
    const typo = tempDir({ prot: 8080 });
    const typoError = failure(() => loadSettings({ env: {}, cwd: typo }));
    expect(typoError.message).toContain(join(typo, "kilo.config.json"));
    expect(typoError.message).toContain("unknown key 'prot'");
    const wrongType = failure(() => loadSettings({ env: {}, cwd: tempDir({ port: "8080" }) }));
    expect(wrongType.message).toMatch(/port: must be a port number/);
    const notJson = failure(() => loadSettings({ env: {}, cwd: tempDir("{ port: 1") }));
    expect(notJson.message).toMatch(/is not valid JSON/);
    const missing = failure(() => loadSettings({ env: {}, cwd: tempDir(), flags: { config: "nope.json" } }));
    expect(missing.message).toMatch(/Cannot read config file .*nope\.json: no such file/);
  });
});

describe("database URLs", () => {
  const cwd = "/srv/app";

  it("reads SQLite paths, sqlite: URLs and file: URLs, relative to the working directory", () => {
    expect(parseDatabaseUrl("data/kilo.db", cwd)).toEqual({
      kind: "sqlite",
      filename: "/srv/app/data/kilo.db",
    });
    expect(parseDatabaseUrl("sqlite:data/kilo.db", cwd)).toMatchObject({ filename: "/srv/app/data/kilo.db" });
    expect(parseDatabaseUrl("sqlite:///var/kilo.db", cwd)).toMatchObject({ filename: "/var/kilo.db" });
    expect(parseDatabaseUrl("file:///var/kilo.db", cwd)).toMatchObject({ filename: "/var/kilo.db" });
    expect(parseDatabaseUrl("sqlite::memory:", cwd)).toMatchObject({ filename: ":memory:" });
  });

  it("reads postgres URLs, taking the schema from ?schema= or KILO_DATABASE_SCHEMA", () => {
    expect(parseDatabaseUrl("postgres://kilo:secret@db:5432/app?schema=kilo&sslmode=disable", cwd)).toEqual({
      kind: "postgres",
      connectionString: "postgres://kilo:secret@db:5432/app?sslmode=disable",
      schema: "kilo",
      tablePrefix: undefined,
    });
    expect(parseDatabaseUrl("postgresql://db/app", cwd, { schema: "mine" })).toMatchObject({
      schema: "mine",
    });
    expect(() => parseDatabaseUrl("postgres://db/app?schema=drop;table", cwd)).toThrow(
      /Invalid database schema/,
    );
  });
});

describe("provider selection", () => {
  it("uses Anthropic, then OpenAI, as their keys are set, and the offline model when none is", () => {
    expect(selectProviders({ provider: "auto" }, {})).toEqual(["offline"]);
    expect(selectProviders({ provider: "auto" }, { OPENAI_API_KEY: "k" })).toEqual(["openai"]);
    expect(selectProviders({ provider: "auto" }, { ANTHROPIC_API_KEY: "k", OPENAI_API_KEY: "k" })).toEqual([
      "anthropic",
      "openai",
    ]);
    expect(selectProviders({ provider: "offline" }, { ANTHROPIC_API_KEY: "k" })).toEqual(["offline"]);
  });

  it("fails clearly when KILO_PROVIDER names a provider without its key", () => {
    expect(() => selectProviders({ provider: "anthropic" }, {})).toThrow(
      "KILO_PROVIDER=anthropic needs ANTHROPIC_API_KEY",
    );
  });
});
