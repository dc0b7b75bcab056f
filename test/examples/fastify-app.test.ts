import { expect, it } from "vitest";
import { createApp } from "../../examples/fastify/app.js";
import { OFFLINE_REPLY } from "../../examples/fastify/provider.js";
import { describeHostApp } from "./host-app-suite.js";

let appOrigin = "";
const origin = () => appOrigin;

describeHostApp({
  name: "fastify",
  offlineReply: OFFLINE_REPLY,
  async start(kilo) {
    const app = createApp({ kilo });
    appOrigin = await app.listen({ port: 0, host: "127.0.0.1" });
    return {
      origin: appOrigin,
      async close() {
        app.server.closeAllConnections();
        await app.close();
      },
    };
  },
  extra: ({ user }) => {
    it("hands kilo the request body unread: kilo, not Fastify, parses and answers it", async () => {
      const response = await fetch(`${origin()}/kilo/api/bots`, {
        method: "POST",
        headers: { "x-user-id": user, "content-type": "application/json" },
        body: "{not json",
      });
      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({
        error: { code: "VALIDATION_FAILED", message: expect.any(String) },
      });

      const plain = await fetch(`${origin()}/kilo/api/bots`, {
        method: "POST",
        headers: { "x-user-id": user, "content-type": "text/plain" },
        body: JSON.stringify({ name: "Plain" }),
      });
      expect(plain.status).toBe(201);
      expect(await plain.json()).toMatchObject({ name: "Plain", userId: user });
    });
  },
});
