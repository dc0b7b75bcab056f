import { describe, expect, it } from "vitest";
import { BASIC_CHALLENGE, cliAuthenticator, withBasicChallenge } from "../../src/cli/serve-command.js";
import { KiloError } from "../../src/index.js";

const TOKEN = "serve-token-0123456789abcdef";
const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
const request = (headers: Record<string, string>) =>
  new Request("http://127.0.0.1:31415/api/me", { headers: { host: "127.0.0.1:31415", ...headers } });

describe("kilo serve's authentication with KILO_API_TOKEN", () => {
  const authenticate = cliAuthenticator("local", TOKEN);

  it("takes the token as a bearer token, or as the password of HTTP Basic credentials (for kilo studio)", async () => {
    expect(await authenticate(request({ authorization: `Bearer ${TOKEN}` }))).toEqual({ userId: "local" });
    expect(await authenticate(request({ authorization: basic("anyone", TOKEN) }))).toEqual({
      userId: "local",
    });
    expect(await authenticate(request({ authorization: basic("local", "wrong-token") }))).toBeNull();
    expect(await authenticate(request({ authorization: basic(TOKEN, "") }))).toBeNull();
    expect(await authenticate(request({ authorization: "Basic not base64!" }))).toBeNull();
    expect(await authenticate(request({}))).toBeNull();
  });

  it("accepts Basic credentials, which a browser sends by itself, only from the server's own pages", async () => {
    const own = {
      authorization: basic("me", TOKEN),
      origin: "http://127.0.0.1:31415",
      "sec-fetch-site": "same-origin",
    };
    expect(await authenticate(request(own))).toEqual({ userId: "local" });
    expect(
      await authenticate(request({ authorization: basic("me", TOKEN), "sec-fetch-site": "none" })),
    ).toEqual({
      userId: "local",
    });
    for (const foreign of [
      { origin: "https://evil.example" },
      { origin: "http://127.0.0.1:8080" },
      { origin: "null" },
      { "sec-fetch-site": "cross-site" },
      { "sec-fetch-site": "same-site" },
    ]) {
      const refusal = await authenticate(request({ ...own, ...foreign })).catch((error: unknown) => error);
      expect(KiloError.is(refusal, "FORBIDDEN"), JSON.stringify(foreign)).toBe(true);
    }
    // A bearer token is never sent by a browser on its own: no origin check.
    expect(
      await authenticate(request({ authorization: `Bearer ${TOKEN}`, origin: "https://app.example" })),
    ).toEqual({ userId: "local" });
  });

  it("challenges for Basic credentials on every 401, and changes nothing else", async () => {
    const inner = Object.assign(
      async (incoming: Request) =>
        new URL(incoming.url).pathname === "/open"
          ? new Response("ok", { status: 200 })
          : new Response('{"error":{"code":"UNAUTHENTICATED","message":"Authentication required"}}', {
              status: 401,
              headers: { "content-type": "application/json" },
            }),
      { maxBodyBytes: 1234 },
    );
    const handler = withBasicChallenge(inner);
    expect(handler.maxBodyBytes).toBe(1234);
    const refused = await handler(new Request("http://127.0.0.1/studio/"));
    expect(refused.status).toBe(401);
    expect(refused.headers.get("www-authenticate")).toBe(BASIC_CHALLENGE);
    expect(refused.headers.get("content-type")).toBe("application/json");
    expect(await refused.json()).toEqual({
      error: { code: "UNAUTHENTICATED", message: "Authentication required" },
    });
    const open = await handler(new Request("http://127.0.0.1/open"));
    expect(open.headers.get("www-authenticate")).toBeNull();
  });
});
