import { afterEach, describe, expect, it } from "vitest";
import type { HttpHandlerOptions } from "../../src/http/index.js";
import { KiloError } from "../../src/index.js";
import { STUDIO_CONTENT_SECURITY_POLICY } from "../../src/studio/studio-handler.js";
import { inProcessHandler } from "./helpers.js";

let close: (() => Promise<void>) | null = null;
afterEach(async () => {
  await close?.();
  close = null;
});

function handlerWith(options: Partial<HttpHandlerOptions> = {}) {
  const made = inProcessHandler(options);
  close = made.close;
  return made.handler;
}

const get = (path: string, headers: Record<string, string> = { "x-user": "alice" }, method = "GET") =>
  new Request(`http://kilo.test${path}`, { method, headers });

describe("kilo studio in createHttpHandler", () => {
  it("is off unless the host turns it on", async () => {
    const handler = handlerWith();
    const response = await handler(get("/studio/"));
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ error: { code: "NOT_FOUND", message: "No such route" } });
  });

  it("serves the page and its assets behind authenticate, with a strict Content-Security-Policy", async () => {
    const handler = handlerWith({ studio: true });

    // Without credentials the page gets exactly what the API gets.
    const anonymous = await handler(get("/studio/", {}));
    const api = await handler(get("/api/me", {}));
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toEqual(await api.json());
    for (const asset of ["/studio", "/studio/studio.js", "/studio/studio.css"]) {
      expect((await handler(get(asset, {}))).status).toBe(401);
    }

    const redirect = await handler(get("/studio"));
    expect(redirect.status).toBe(308);
    expect(redirect.headers.get("location")).toBe("studio/");

    const page = await handler(get("/studio/"));
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(page.headers.get("content-security-policy")).toBe(STUDIO_CONTENT_SECURITY_POLICY);
    expect(STUDIO_CONTENT_SECURITY_POLICY).toContain("script-src 'self'");
    expect(STUDIO_CONTENT_SECURITY_POLICY).toContain("frame-ancestors 'none'");
    expect(STUDIO_CONTENT_SECURITY_POLICY).not.toContain("unsafe");
    expect(page.headers.get("x-frame-options")).toBe("DENY");
    expect(page.headers.get("x-content-type-options")).toBe("nosniff");
    expect(page.headers.get("cache-control")).toBe("no-store");
    const html = await page.text();
    // No inline script or style: the only script is the module by relative URL.
    expect(html.match(/<script\b[^>]*>/g)).toEqual(['<script type="module" src="studio.js">']);
    expect(html).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
    expect(html).toContain('<link rel="stylesheet" href="studio.css">');
    const operations = /<meta name="kilo-operations" content="([^"]*)">/.exec(html)?.[1]?.split(" ") ?? [];
    expect(operations).toEqual(
      expect.arrayContaining(["getPrincipal", "chatStream", "rollbackSkill", "evolveStream"]),
    );

    const script = await handler(get("/studio/studio.js"));
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(script.headers.get("content-security-policy")).toBe(STUDIO_CONTENT_SECURITY_POLICY);
    const code = await script.text();
    expect(code.length).toBeGreaterThan(10_000);
    // Trusted Types are enforced: the client never parses HTML from strings, nor evaluates code.
    expect(code).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function/);
    // No CDN, no external font: every URL the client names is relative to the page.
    expect(code).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/);

    const etag = script.headers.get("etag");
    expect(etag).toMatch(/^"[\w-]+"$/);
    const revalidated = await handler(
      new Request("http://kilo.test/studio/studio.js", {
        headers: { "x-user": "alice", "if-none-match": etag ?? "" },
      }),
    );
    expect(revalidated.status).toBe(304);
    expect(await revalidated.text()).toBe("");

    const style = await handler(get("/studio/studio.css"));
    expect(style.status).toBe(200);
    expect(style.headers.get("content-type")).toBe("text/css; charset=utf-8");
    const css = await style.text();
    expect(css).toContain(":focus-visible");
    expect(css).not.toMatch(/@import|url\(/);

    const head = await handler(get("/studio/", { "x-user": "alice" }, "HEAD"));
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");

    expect((await handler(get("/studio/app.js"))).status).toBe(404);
    const posted = await handler(get("/studio/", { "x-user": "alice" }, "POST"));
    expect(posted.status).toBe(405);
    expect(posted.headers.get("allow")).toBe("GET, HEAD");
    // The API is untouched by the studio.
    expect((await handler(get("/api/me"))).status).toBe(200);
  });

  it("lives under the handler's basePath", async () => {
    const handler = handlerWith({ studio: true, basePath: "/kilo" });
    expect((await handler(get("/kilo/studio/"))).status).toBe(200);
    expect((await handler(get("/kilo/studio/studio.js"))).status).toBe(200);
    expect((await handler(get("/studio/"))).status).toBe(404);
  });

  it("answers a page load without credentials with the host's `unauthenticated`, but not a refusal", async () => {
    const handler = handlerWith({
      authenticate: async (request) => {
        if (request.headers.get("x-banned")) throw new KiloError("FORBIDDEN", "Banned");
        const user = request.headers.get("x-user");
        return user ? { userId: user } : null;
      },
      studio: { unauthenticated: (request) => Response.redirect(new URL("/login", request.url), 303) },
    });
    const anonymous = await handler(get("/studio/", {}));
    expect(anonymous.status).toBe(303);
    expect(anonymous.headers.get("location")).toBe("http://kilo.test/login");
    const banned = await handler(get("/studio/", { "x-banned": "1" }));
    expect(banned.status).toBe(403);
    // The API keeps its own answers.
    expect((await handler(get("/api/me", {}))).status).toBe(401);
  });

  it("refuses studio options it cannot use", () => {
    expect(() => handlerWith({ studio: { unauthenticated: "nope" as never } })).toThrow(/unauthenticated/);
  });
});
