/**
 * An Express 5 host app that mounts kilo's HTTP API under `/kilo`, next to
 * its own routes and behind its own (toy) auth.
 */
import express, { type Express, type NextFunction, type Request, type Response } from "express";
import { memoryStorage } from "../../adapters/storage/memory/index.js";
import { createHttpHandler, type HttpPrincipal, toNodeHandler } from "../../src/http/index.js";
import { createKilo, type Kilo } from "../../src/index.js";
import { offlineProvider } from "./provider.js";

/** Options of {@link createApp}. */
export interface AppOptions {
  /** The kilo to mount. Default: memory storage and the offline mock provider. */
  kilo?: Kilo;
}

/**
 * The toy "session lookup": the `x-user-id` header *is* the user. Anyone can
 * claim any id, so this is for local tries only; a real app verifies a
 * session cookie or a bearer token here (Passport, express-session, its IdP).
 */
export function identify(header: string | null | undefined): HttpPrincipal | null {
  const userId = header?.trim();
  return userId ? { userId } : null;
}

/** The host's auth middleware: puts the user (or null) on `res.locals.user` for the host's routes. */
function toyAuth(req: Request, res: Response, next: NextFunction): void {
  res.locals.user = identify(req.get("x-user-id"));
  next();
}

/** Builds the Express app: `GET /`, `GET /me`, and kilo under `/kilo`. */
export function createApp(options: AppOptions = {}): Express {
  const kilo = options.kilo ?? createKilo({ storage: memoryStorage(), providers: [offlineProvider()] });
  const kiloHandler = createHttpHandler(kilo, {
    // kilo sees a Web `Request`, so it asks the same lookup the middleware uses.
    authenticate: async (request) => identify(request.headers.get("x-user-id")),
    // `app.use("/kilo", ...)` strips "/kilo" from req.url before kilo sees it,
    // so kilo's own basePath stays "" (with "/kilo" here every route would be 404).
    basePath: "",
  });

  const app = express();
  app.use(toyAuth);

  // Mounted before any body parser: kilo reads (and size-limits) the body itself.
  app.use("/kilo", toNodeHandler(kiloHandler));

  app.use(express.json());
  app.get("/", (_req, res) => {
    res.json({ app: "express-host", message: "Hello from the host app!", kilo: "/kilo" });
  });
  app.get("/me", (_req, res) => {
    const user = res.locals.user as HttpPrincipal | null;
    if (!user) {
      res.status(401).json({ error: "Send an x-user-id header." });
      return;
    }
    res.json(user);
  });
  return app;
}
