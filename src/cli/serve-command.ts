import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { KiloError } from "../errors.js";
import { createHttpHandler, type HttpHandler, type HttpPrincipal } from "../http/http-handler.js";
import { toNodeHandler } from "../http/node.js";
import { describeDatabase, ENV_VARIABLES } from "./cli-config.js";
import { type CommandContext, createdBotNotice } from "./cli-context.js";
import { EXIT, notice, println } from "./cli-io.js";
import { openRuntime, resolveBot } from "./cli-runtime.js";
import { announceProviders } from "./provider-selection.js";

/** How long in-flight requests (a chat, an event stream) get to finish after SIGINT or SIGTERM. */
const SHUTDOWN_GRACE_MS = 10_000;

const LOOPBACK_NAMES = new Set(["localhost", "::1", "[::1]"]);

/** True for 127.0.0.0/8, `::1` and `localhost`. */
export function isLoopback(host: string): boolean {
  const name = host.toLowerCase();
  return LOOPBACK_NAMES.has(name) || /^127(\.\d{1,3}){3}$/.test(name);
}

function hostOf(value: string): string | null {
  try {
    return new URL(value.includes("://") ? value : `http://${value}`).hostname;
  } catch {
    return null;
  }
}

const digest = (value: string) => createHash("sha256").update(value).digest();

/** The password of an `Authorization: Basic` header (the user name is not checked), or `undefined`. */
function basicPassword(header: string): string | undefined {
  const encoded = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header)?.[1];
  if (encoded === undefined) return undefined;
  const decoded = Buffer.from(encoded, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  return colon < 0 ? undefined : decoded.slice(colon + 1);
}

/**
 * A browser sends HTTP Basic credentials by itself, to any request for the
 * site, so a request carrying them must come from the site's own pages:
 * `Sec-Fetch-Site` (when sent) `same-origin` or `none` (typed or bookmarked),
 * and `Origin` (when sent) the same host as `Host`.
 */
function assertSameOrigin(request: Request): void {
  const site = request.headers.get("sec-fetch-site");
  const origin = request.headers.get("origin");
  let originHost: string | null = null;
  if (origin !== null) {
    try {
      originHost = new URL(origin).host;
    } catch {
      originHost = null;
    }
  }
  if (
    (site !== null && site !== "same-origin" && site !== "none") ||
    (origin !== null && originHost !== request.headers.get("host"))
  ) {
    throw new KiloError(
      "FORBIDDEN",
      "Requests with HTTP Basic credentials must come from kilo serve's own pages",
    );
  }
}

/**
 * How `kilo serve` authenticates: every request acts for the configured
 * user. With a token, a request must carry `Authorization: Bearer <token>`,
 * or HTTP Basic credentials whose password is the token (what a browser
 * sends after asking for them, for kilo studio), from the server's own pages
 * only. Without one, the server listens on loopback only, and refuses
 * requests whose Host or Origin is not loopback: a web page the user visits
 * can then neither call it (CSRF) nor read it through DNS rebinding.
 */
export function cliAuthenticator(
  userId: string,
  token: string | null,
): (request: Request) => Promise<HttpPrincipal | null> {
  const expected = token === null ? null : digest(token);
  return async (request) => {
    if (expected !== null) {
      const header = request.headers.get("authorization") ?? "";
      const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
      const basic = bearer === undefined ? basicPassword(header) : undefined;
      const given = bearer ?? basic;
      if (given === undefined || !timingSafeEqual(digest(given), expected)) return null;
      if (basic !== undefined) assertSameOrigin(request);
      return { userId };
    }
    const host = hostOf(request.headers.get("host") ?? "");
    const origin = request.headers.get("origin");
    const originHost = origin === null ? null : hostOf(origin);
    if (
      host === null ||
      !isLoopback(host) ||
      (origin !== null && (originHost === null || !isLoopback(originHost)))
    ) {
      throw new KiloError(
        "FORBIDDEN",
        "Without KILO_API_TOKEN, kilo serve answers only requests to and from this machine (loopback Host and Origin)",
      );
    }
    return { userId };
  };
}

function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException) => {
      const reason =
        error.code === "EADDRINUSE"
          ? `port ${port} is already in use (set KILO_PORT or --port)`
          : error.code === "EADDRNOTAVAIL" || error.code === "ENOTFOUND"
            ? `this machine has no address ${host} (KILO_HOST or --host)`
            : error.message;
      reject(
        new KiloError("CONFIGURATION_INVALID", `Cannot listen on ${host}:${port}: ${reason}`, {
          cause: error,
        }),
      );
    };
    server.once("error", failed);
    server.listen(port, host, () => {
      server.off("error", failed);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** The challenge `kilo serve` adds to every 401 when it has a token. */
export const BASIC_CHALLENGE = 'Basic realm="kilo", charset="UTF-8"';

/**
 * The handler, with an HTTP Basic challenge on every 401: a browser opening
 * kilo studio then asks for the token (any user name, the token as the
 * password) and sends it with the page, its assets and its API calls.
 * Clients that send `Authorization: Bearer` see no difference.
 */
export function withBasicChallenge(handler: HttpHandler): HttpHandler {
  const challenged = async (request: Request): Promise<Response> => {
    const response = await handler(request);
    if (response.status !== 401) return response;
    const headers = new Headers(response.headers);
    headers.set("www-authenticate", BASIC_CHALLENGE);
    return new Response(response.body, { status: 401, statusText: response.statusText, headers });
  };
  return Object.assign(challenged, { maxBodyBytes: handler.maxBodyBytes });
}

/** Resolves with the name of the first SIGINT or SIGTERM. */
function stopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      resolve(signal);
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
}

/** Stops accepting connections, gives requests under way a grace period, then cuts what is left. */
async function closeServer(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const grace = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS);
  grace.unref();
  // A second signal means "now".
  const force = () => server.closeAllConnections();
  process.once("SIGINT", force);
  process.once("SIGTERM", force);
  try {
    await closed;
  } finally {
    clearTimeout(grace);
    process.off("SIGINT", force);
    process.off("SIGTERM", force);
  }
}

/**
 * `kilo serve`: kilo's HTTP API (`kilo/http`) and kilo studio (at `/studio/`)
 * on KILO_HOST:KILO_PORT (127.0.0.1:31415 by default), acting for the configured user. Prints the
 * URL, and on SIGINT or SIGTERM stops accepting requests, lets those under
 * way finish, waits for running runs and exits 0.
 */
export async function serveCommand(context: CommandContext): Promise<number> {
  const { io } = context;
  const settings = context.settings();
  if (settings.apiToken === null && !isLoopback(settings.host)) {
    throw new KiloError(
      "CONFIGURATION_INVALID",
      `Refusing to listen on ${settings.host} without a token: set ${ENV_VARIABLES.apiToken} (clients then send "Authorization: Bearer <token>"), or keep the default host 127.0.0.1`,
    );
  }
  announceProviders(settings, io);
  const runtime = await openRuntime(settings, io, { defaultLogLevel: "info", role: "server" });
  let server: Server | null = null;
  try {
    const { bot, created } = await resolveBot(runtime.kilo, settings);
    if (created) notice(io, createdBotNotice(bot));
    const api = createHttpHandler(runtime.kilo, {
      authenticate: cliAuthenticator(settings.user, settings.apiToken),
      logger: runtime.logger,
      studio: true,
    });
    const handler = settings.apiToken === null ? api : withBasicChallenge(api);
    server = createServer(toNodeHandler(handler));
    const address = await listen(server, settings.port, settings.host);
    const stopped = stopSignal();
    const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
    println(io.stdout, `kilo API listening on http://${host}:${address.port}`);
    println(
      io.stdout,
      [
        `  user: ${settings.user}, bot: ${bot.name} (${bot.id})`,
        `  database: ${describeDatabase(settings.database)}`,
        `  model: ${runtime.providers.map((provider) => provider.name).join(", ")}`,
        `  auth: ${settings.apiToken === null ? "none (loopback only)" : `bearer token (${ENV_VARIABLES.apiToken})`}`,
        `  studio: http://${host}:${address.port}/studio/`,
        "  Ctrl-C stops it.",
      ].join("\n"),
    );
    runtime.logger.info({ url: `http://${host}:${address.port}` }, "server started");
    const signal = await stopped;
    notice(io, `${signal}: shutting down`);
    await closeServer(server);
    server = null;
    return EXIT.ok;
  } finally {
    if (server?.listening) await closeServer(server);
    await runtime.close();
  }
}
