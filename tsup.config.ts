import { defineConfig } from "tsup";
import { studioAssetsPlugin } from "./src/studio/build-studio.js";

// Every entry here has a matching subpath in package.json "exports" (test/package/exports.test.ts checks it).
export const entries = {
  index: "src/index.ts",
  "testing/index": "src/testing/index.ts",
  "http/index": "src/http/index.ts",
  "storage/memory/index": "adapters/storage/memory/index.ts",
  "storage/sqlite/index": "adapters/storage/sqlite/index.ts",
  "storage/postgres/index": "adapters/storage/postgres/index.ts",
  "cache/redis/index": "adapters/cache/redis/index.ts",
  "providers/anthropic/index": "adapters/providers/anthropic/index.ts",
  "providers/openai/index": "adapters/providers/openai/index.ts",
  "search/brave/index": "adapters/search/brave/index.ts",
  "channels/telegram/index": "adapters/channels/telegram/index.ts",
  "volumes/git/index": "adapters/volumes/git/index.ts",
  "durable/dbos/index": "adapters/durable/dbos/index.ts",
};

export default defineConfig({
  // The `kilo` bin (package.json "bin"): an executable, not an exports subpath. Its shebang comes from the source.
  entry: { ...entries, cli: "src/cli/main.ts" },
  format: ["esm", "cjs"],
  // tsup sets baseUrl for its declaration build, which TypeScript 6 flags as deprecated.
  dts: { compilerOptions: { ignoreDeprecations: "6.0" } },
  sourcemap: true,
  clean: true,
  target: "node20",
  splitting: true,
  treeshake: true,
  // Drivers are optional peer dependencies: never bundled, loaded only by their adapter.
  external: [
    "vitest",
    "kysely",
    "pg",
    "better-sqlite3",
    "ioredis",
    "openai",
    "@anthropic-ai/sdk",
    "grammy",
    "isomorphic-git",
    "@dbos-inc/dbos-sdk",
  ],
  // kilo studio's browser client (src/studio/client), bundled into `kilo/http` at build time.
  esbuildPlugins: [studioAssetsPlugin()],
});
