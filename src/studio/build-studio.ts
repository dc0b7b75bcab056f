/**
 * Bundles the studio's browser client. Used at build time by `tsup.config.ts`
 * (through {@link studioAssetsPlugin}) and, when kilo runs from source, by
 * `studio-assets.ts` on first use. Never part of the published package:
 * esbuild is a build tool (tsup's own bundler), not a dependency.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Plugin } from "esbuild";
import type { StudioAssets } from "./studio-assets.js";

/** Where the client's sources live: `main.ts`, its modules, `studio.css` and its own `tsconfig.json`. */
export const STUDIO_CLIENT_DIR = fileURLToPath(new URL("./client/", import.meta.url));

async function only(result: Promise<{ outputFiles?: Array<{ text: string }> }>): Promise<string> {
  const [file] = (await result).outputFiles ?? [];
  if (!file) throw new Error("esbuild wrote no output for the studio client");
  return file.text;
}

/** Bundles and minifies the client script (ES2022 module) and its stylesheet, in memory. */
export async function buildStudioAssets(clientDir: string = STUDIO_CLIENT_DIR): Promise<StudioAssets> {
  const common = { bundle: true, minify: true, write: false, charset: "utf8", logLevel: "silent" } as const;
  const [script, style] = await Promise.all([
    only(
      build({
        ...common,
        entryPoints: [join(clientDir, "main.ts")],
        format: "esm",
        platform: "browser",
        target: ["es2022"],
        legalComments: "none",
        tsconfig: join(clientDir, "tsconfig.json"),
      }),
    ),
    only(build({ ...common, entryPoints: [join(clientDir, "studio.css")] })),
  ]);
  return { script, style };
}

/**
 * An esbuild plugin (tsup's `esbuildPlugins`) that replaces `studio-assets.ts`
 * with a module holding the bundled client, so the built package serves the
 * studio without bundling anything at run time, and no generated file is
 * kept in the repository.
 */
export function studioAssetsPlugin(clientDir: string = STUDIO_CLIENT_DIR): Plugin {
  let built: Promise<StudioAssets> | null = null;
  return {
    name: "kilo-studio-assets",
    setup(pluginBuild) {
      pluginBuild.onLoad({ filter: /[\\/]src[\\/]studio[\\/]studio-assets\.ts$/ }, async () => {
        built ??= buildStudioAssets(clientDir);
        const assets = await built;
        return {
          loader: "ts",
          contents: [
            "// Generated at build time from src/studio/client by studioAssetsPlugin (src/studio/build-studio.ts).",
            `const ASSETS = Object.freeze(${JSON.stringify(assets)});`,
            "export function loadStudioAssets() { return Promise.resolve(ASSETS); }",
          ].join("\n"),
        };
      });
    },
  };
}
