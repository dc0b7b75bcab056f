import type { AddressInfo } from "node:net";
import { createApp } from "../../examples/express/app.js";
import { OFFLINE_REPLY } from "../../examples/express/provider.js";
import { describeHostApp } from "./host-app-suite.js";

describeHostApp({
  name: "express",
  offlineReply: OFFLINE_REPLY,
  async start(kilo) {
    const server = createApp({ kilo }).listen(0, "127.0.0.1");
    await new Promise<void>((resolve) => server.once("listening", resolve));
    return {
      origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      async close() {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      },
    };
  },
});
