/**
 * A Fastify 5 host app that mounts kilo's HTTP API under `/kilo`, next to
 * its own routes and behind its own (toy) auth.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { memoryStorage } from "../../adapters/storage/memory/index.js";
import { createHttpHandler, type HttpPrincipal, toNodeHandler } from "../../src/http/index.js";
import { createKilo, type Kilo } from "../../src/index.js";
import { offlineProvider } from "./provider.js";

declare module "fastify" {
  interface FastifyRequest {
    /** Set by the host's auth hook; null when the request names no user. */
    user: HttpPrincipal | null;
  }
}

/** Options of {@link createApp}. */
export interface AppOptions {
  /** The kilo to mount. Default: memory storage and the offline mock provider, closed with the app. */
  kilo?: Kilo;
}

/**
 * The toy "session lookup": the `x-user-id` header *is* the user. Anyone can
 * claim any id, so this is for local tries only; a real app verifies a
 * session cookie or a bearer token here (@fastify/jwt, @fastify/session, its IdP).
 */
export function identify(header: string | string[] | null | undefined): HttpPrincipal | null {
  const userId = (Array.isArray(header) ? header[0] : header)?.trim();
  return userId ? { userId } : null;
}

/** Builds the Fastify app: `GET /`, `GET /me`, and kilo under `/kilo`. Call `listen` (or `ready`) on it. */
export function createApp(options: AppOptions = {}): FastifyInstance {
  const kilo = options.kilo ?? createKilo({ storage: memoryStorage(), providers: [offlineProvider()] });
  const nodeHandler = toNodeHandler(
    createHttpHandler(kilo, {
      // kilo sees a Web `Request`, so it asks the same lookup the hook uses.
      authenticate: async (request) => identify(request.headers.get("x-user-id")),
      // Fastify passes the full URL on (request.raw.url is "/kilo/..."), so kilo strips the prefix itself.
      basePath: "/kilo",
    }),
  );

  const app = Fastify();
  if (!options.kilo) app.addHook("onClose", () => kilo.close());

  // The host's auth hook: puts the user (or null) on every request.
  app.decorateRequest("user", null);
  app.addHook("onRequest", async (request) => {
    request.user = identify(request.headers["x-user-id"]);
  });

  app.get("/", async () => ({ app: "fastify-host", message: "Hello from the host app!", kilo: "/kilo" }));
  app.get("/me", async (request, reply) => {
    if (!request.user) return reply.code(401).send({ error: "Send an x-user-id header." });
    return request.user;
  });

  // kilo in its own plugin scope, so the pass-through parser below applies to it alone.
  app.register(async (scope) => {
    // Fastify would read and parse the body before the route runs; leave it
    // unread instead: kilo reads it from the raw request (and enforces its size limit).
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", (_request, _payload, done) => done(null));
    const serve = (request: FastifyRequest, reply: FastifyReply): void => {
      // From here on kilo writes the raw response (streaming SSE included); Fastify stays out of it.
      reply.hijack();
      nodeHandler(request.raw, reply.raw);
    };
    scope.all("/kilo", serve);
    scope.all("/kilo/*", serve);
  });
  return app;
}
