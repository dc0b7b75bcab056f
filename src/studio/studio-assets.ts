/** The studio's client as the browser loads it: one ES module and one stylesheet. */
export interface StudioAssets {
  /** The bundled client (`src/studio/client/main.ts` and what it imports), an ES module. */
  script: string;
  /** The stylesheet (`src/studio/client/studio.css`). */
  style: string;
}

let loading: Promise<StudioAssets> | null = null;

/**
 * The studio's assets. The package build replaces this module with one that
 * holds them already bundled (see `studioAssetsPlugin` in `build-studio.ts`,
 * used by `tsup.config.ts`), so the published package never bundles at run
 * time. Run from source (vitest, tsx), the client is bundled with esbuild on
 * first use, so what is served is always the current source.
 */
export function loadStudioAssets(): Promise<StudioAssets> {
  loading ??= import("./build-studio.js")
    .then((build) => build.buildStudioAssets())
    .catch((error: unknown) => {
      loading = null;
      throw error;
    });
  return loading;
}
