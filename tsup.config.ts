import { defineConfig } from "tsup";

// Every entry here has a matching subpath in package.json "exports" (test/package/exports.test.ts checks it).
export const entries = {
  index: "src/index.ts",
  "testing/index": "src/testing/index.ts",
  "storage/memory/index": "adapters/storage/memory/index.ts",
};

export default defineConfig({
  entry: entries,
  format: ["esm", "cjs"],
  // tsup sets baseUrl for its declaration build, which TypeScript 6 flags as deprecated.
  dts: { compilerOptions: { ignoreDeprecations: "6.0" } },
  sourcemap: true,
  clean: true,
  target: "node20",
  splitting: true,
  treeshake: true,
  external: ["vitest"],
});
