import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

// `npm test` builds first (pretest); a bare `vitest` run needs `npm run build` once.
const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const recorder = join(root, "test/package/__fixtures__/record-loads.mjs");
const scratch = mkdtempSync(join(tmpdir(), "kilo-core-imports-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

// The optional peer dependencies: only their adapter entry may load them.
const drivers = [
  "pg",
  "better-sqlite3",
  "ioredis",
  "kysely",
  "@anthropic-ai/sdk",
  "openai",
  "grammy",
  "isomorphic-git",
  "@dbos-inc/dbos-sdk",
  "vitest",
];

interface Load {
  specifier: string;
  resolved: string;
}

let runs = 0;
/**
 * Runs `code` in a fresh node (from the package root, so `kilo` resolves to the built package by
 * self-reference) with every module resolution recorded, and returns what was resolved.
 */
function loadsOf(code: string, type: "module" | "commonjs"): Load[] {
  const log = join(scratch, `loads-${++runs}.tsv`);
  const { NODE_OPTIONS: _ignored, ...env } = process.env;
  // Waiting a little lets a deferred `import()` started at load time show up too.
  const settle = "await new Promise((resolve) => setTimeout(resolve, 100));";
  const body = type === "module" ? `${code}\n${settle}` : `(async () => { ${code}\n${settle} })();`;
  execFileSync(process.execPath, ["--import", recorder, `--input-type=${type}`, "--eval", body], {
    cwd: root,
    env: { ...env, KILO_LOAD_LOG: log },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return readFileSync(log, "utf8")
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => {
      const [specifier = "", resolved = ""] = line.split("\t");
      return { specifier, resolved };
    });
}

function driversIn(loads: Load[]): string[] {
  const found = new Set<string>();
  for (const { specifier, resolved } of loads) {
    const path = resolved.replaceAll("\\", "/");
    for (const driver of drivers) {
      if (
        specifier === driver ||
        specifier.startsWith(`${driver}/`) ||
        path.includes(`/node_modules/${driver}/`)
      ) {
        found.add(driver);
      }
    }
  }
  return [...found].sort();
}

describe("import 'kilo'", () => {
  it("the recorder sees a driver when one is loaded", () => {
    const loads = loadsOf(`await import("pg"); await import("kysely");`, "module");
    expect(driversIn(loads)).toEqual(["kysely", "pg"]);
  });

  it("loads no adapter driver from the built ESM entry", () => {
    const loads = loadsOf(
      `const kilo = await import("kilo"); if (typeof kilo.createKilo !== "function") throw new Error("no createKilo");`,
      "module",
    );
    expect(loads.find((load) => load.specifier === "kilo")?.resolved).toMatch(/\/dist\/index\.js$/);
    expect(loads.some((load) => load.resolved.includes("/node_modules/zod/"))).toBe(true);
    expect(driversIn(loads)).toEqual([]);
  });

  it("loads no adapter driver from the built CommonJS entry", () => {
    const loads = loadsOf(
      `const kilo = require("kilo"); if (typeof kilo.createKilo !== "function") throw new Error("no createKilo");`,
      "commonjs",
    );
    expect(loads.find((load) => load.specifier === "kilo")?.resolved).toMatch(/[\\/]dist[\\/]index\.cjs$/);
    expect(loads.some((load) => load.resolved.includes("/node_modules/zod/"))).toBe(true);
    expect(driversIn(loads)).toEqual([]);
  });

  it("running a turn on the memory storage loads no driver either", () => {
    const loads = loadsOf(
      `const { createKilo } = await import("kilo");
       const { memoryStorage } = await import("kilo/storage/memory");
       const usage = { inputTokens: 1, outputTokens: 1, cacheReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0 };
       const echo = {
         name: "echo",
         defaultModel: "echo-1",
         capabilities: { thinking: false, streaming: false, promptCaching: false },
         async complete(request) {
           return { content: [{ type: "text", text: "hi" }], stopReason: "end_turn", usage, model: request.model };
         },
       };
       const kilo = createKilo({ storage: memoryStorage(), providers: [echo] });
       const bot = await kilo.bots.create({ userId: "u1", name: "B" });
       const result = await kilo.chat({ botId: bot.id, userId: "u1", message: "hello" });
       if (result.reply !== "hi") throw new Error("unexpected reply " + result.reply);
       await kilo.close();`,
      "module",
    );
    expect(loads.some((load) => load.resolved.endsWith("/dist/storage/memory/index.js"))).toBe(true);
    expect(driversIn(loads)).toEqual([]);
  });
});
