import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { entries } from "../../tsup.config.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  exports: Record<
    string,
    string | { import: { types: string; default: string }; require: { types: string; default: string } }
  >;
};

// `npm test` builds first (pretest); a bare `vitest` run needs `npm run build` once.
const dist = (file: string) => join(root, "dist", file);

describe("the published package", () => {
  it("has one exports subpath per tsup entry, and every file it names was built", () => {
    const subpaths = Object.entries(pkg.exports).filter(([key]) => key !== "./package.json");
    const fromExports = subpaths.map(([key, value]) => {
      expect(typeof value).toBe("object");
      const target = value as Exclude<typeof value, string>;
      for (const file of [
        target.import.types,
        target.import.default,
        target.require.types,
        target.require.default,
      ]) {
        expect(existsSync(join(root, file)), `${key} -> ${file}`).toBe(true);
      }
      return target.import.default.replace(/^\.\/dist\//, "").replace(/\.js$/, "");
    });
    expect(fromExports.sort()).toEqual(Object.keys(entries).sort());
  });

  it("runs a chat turn from the built ESM files", async () => {
    const kiloModule = await import(pathToFileURL(dist("index.js")).href);
    const { memoryStorage } = await import(pathToFileURL(dist("storage/memory/index.js")).href);
    const { mockProvider } = await import(pathToFileURL(dist("testing/index.js")).href);
    const kilo = kiloModule.createKilo({
      storage: memoryStorage(),
      providers: [mockProvider({ replies: ["Hello from dist"] })],
    });
    const bot = await kilo.bots.create({ userId: "u1", name: "Dist" });
    const result = await kilo.chat({ botId: bot.id, userId: "u1", message: "hi" });
    expect(result.reply).toBe("Hello from dist");
    const failure = await kilo.bots.get("missing").catch((e: unknown) => e);
    expect(kiloModule.KiloError.is(failure, "NOT_FOUND")).toBe(true);
  });

  it("serves the HTTP API from the built kilo/http entry", async () => {
    const kiloModule = await import(pathToFileURL(dist("index.js")).href);
    const { memoryStorage } = await import(pathToFileURL(dist("storage/memory/index.js")).href);
    const { mockProvider } = await import(pathToFileURL(dist("testing/index.js")).href);
    const http = await import(pathToFileURL(dist("http/index.js")).href);
    const kilo = kiloModule.createKilo({
      storage: memoryStorage(),
      providers: [mockProvider({ replies: [] })],
    });
    const handler = http.createHttpHandler(kilo, { authenticate: async () => ({ userId: "u1" }) });
    const health = await handler(new Request("http://kilo.test/healthz"));
    expect(health.status).toBe(200);
    const missing = await handler(new Request("http://kilo.test/api/bots/nope"));
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { code: "NOT_FOUND" } });
  });

  it("loads from the built CommonJS files, and KiloError.is agrees across both copies", async () => {
    const require = createRequire(import.meta.url);
    const cjs = require(dist("index.cjs")) as typeof import("../../src/index.js");
    const esm = (await import(pathToFileURL(dist("index.js")).href)) as typeof import("../../src/index.js");
    expect(typeof cjs.createKilo).toBe("function");
    const fromCjs = new cjs.KiloError("CONFLICT", "taken");
    expect(esm.KiloError.is(fromCjs, "CONFLICT")).toBe(true);
    expect(fromCjs instanceof esm.KiloError).toBe(false);
  });

  it("keeps the core entry free of adapter drivers and test runners", () => {
    const core = readFileSync(dist("index.js"), "utf8");
    for (const driver of [
      "vitest",
      "pg",
      "better-sqlite3",
      "ioredis",
      "@anthropic-ai/sdk",
      "openai",
      "grammy",
    ]) {
      expect(core).not.toMatch(new RegExp(`from ["']${driver}["']`));
    }
  });
});
