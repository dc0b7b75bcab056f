import { createHash } from "node:crypto";
import { KiloError } from "../errors.js";
import { HttpError } from "../http/http-response.js";
import { loadStudioAssets } from "./studio-assets.js";

/**
 * Options of the studio that `createHttpHandler(kilo, { studio })` serves at
 * `{basePath}/studio/`. See `docs/studio.md`.
 */
export interface StudioOptions {
  /**
   * Answers a studio page or asset request that `authenticate` found no user
   * for, instead of the API's 401 JSON error: redirect to your sign-in page,
   * or challenge for credentials. `kilo serve` with a token answers 401 with
   * `WWW-Authenticate: Basic`, so the browser asks for the token. Not called
   * when `authenticate` throws (a `FORBIDDEN`, say): that error is answered.
   *
   * @example
   * ```ts
   * unauthenticated: (request) => Response.redirect(new URL("/login", request.url), 303)
   * ```
   */
  unauthenticated?: (request: Request) => Response | Promise<Response>;
}

/** Where the studio lives under the handler's `basePath`. */
export const STUDIO_PATH = "/studio";

/**
 * The studio's Content-Security-Policy: its own script and stylesheet only (no
 * inline script or style, no eval), API calls to its own origin only, no
 * framing, and DOM sinks closed by Trusted Types (the client builds every
 * node with DOM calls, never from HTML strings).
 */
export const STUDIO_CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join("; ");

const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy": STUDIO_CONTENT_SECURITY_POLICY,
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
};

interface Asset {
  body: string;
  type: string;
  etag: string;
}

const escapeAttribute = (value: string) =>
  value.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/**
 * The page: no inline script or style; assets by relative URL, so it works
 * under any mount path, stripped by the framework or not. The operation ids
 * of the API tell the client which routes this server has.
 */
function pageHtml(operations: readonly string[]): string {
  return [
    "<!doctype html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="color-scheme" content="light">',
    `<meta name="kilo-operations" content="${escapeAttribute(operations.join(" "))}">`,
    "<title>kilo studio</title>",
    '<link rel="icon" href="data:,">',
    '<link rel="stylesheet" href="studio.css">',
    '<script type="module" src="studio.js"></script>',
    "</head>",
    "<body>",
    '<noscript><p class="noscript">kilo studio needs JavaScript.</p></noscript>',
    '<div id="app"><p class="loading" role="status">Loading kilo studio…</p></div>',
    "</body>",
    "</html>",
    "",
  ].join("\n");
}

const etagOf = (body: string) => `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`;

/** Serves the studio: the page at `/studio/` and its two assets, every response behind `authenticate`. */
export interface StudioServer {
  /**
   * Answers `path` (below {@link STUDIO_PATH}: `""`, `"/"`, `"/studio.js"`,
   * ...). `authenticate` is the handler's own: it throws the API's errors.
   */
  serve(request: Request, path: string, authenticate: () => Promise<string>): Promise<Response>;
}

/** Creates the studio's server part; `operations` are the API's operation ids (from the route table). */
export function createStudioServer(options: StudioOptions, operations: readonly string[]): StudioServer {
  if (options.unauthenticated !== undefined && typeof options.unauthenticated !== "function") {
    throw new KiloError("CONFIGURATION_INVALID", "studio.unauthenticated must be a function");
  }
  let assets: Promise<Map<string, Asset>> | null = null;
  const load = () => {
    assets ??= loadStudioAssets().then((loaded) => {
      const page = pageHtml(operations);
      return new Map<string, Asset>([
        ["/", { body: page, type: "text/html; charset=utf-8", etag: etagOf(page) }],
        [
          "/studio.js",
          { body: loaded.script, type: "text/javascript; charset=utf-8", etag: etagOf(loaded.script) },
        ],
        ["/studio.css", { body: loaded.style, type: "text/css; charset=utf-8", etag: etagOf(loaded.style) }],
      ]);
    });
    assets.catch(() => {
      assets = null;
    });
    return assets;
  };

  return {
    async serve(request, path, authenticate) {
      if (request.method !== "GET" && request.method !== "HEAD") {
        throw new HttpError(405, "METHOD_NOT_ALLOWED", "Use GET on the studio", { allow: "GET, HEAD" });
      }
      try {
        await authenticate();
      } catch (error) {
        if (error instanceof HttpError && error.status === 401 && options.unauthenticated) {
          return await options.unauthenticated(request);
        }
        throw error;
      }
      // `/studio` -> `studio/`: relative, so it resolves under whatever mount path the browser sees.
      if (path === "") {
        return new Response(null, {
          status: 308,
          headers: { ...SECURITY_HEADERS, location: "studio/", "cache-control": "no-store" },
        });
      }
      const asset = (await load()).get(path);
      if (!asset) throw new KiloError("NOT_FOUND", "No such route");
      const headers = {
        ...SECURITY_HEADERS,
        "content-type": asset.type,
        // Revalidated on every load, so a studio the host turns off, or a user signed out, stops at once.
        "cache-control": path === "/" ? "no-store" : "private, no-cache",
        etag: asset.etag,
      };
      if (request.headers.get("if-none-match") === asset.etag) {
        return new Response(null, { status: 304, headers });
      }
      return new Response(request.method === "HEAD" ? null : asset.body, { status: 200, headers });
    },
  };
}
