/**
 * Runs the Express host app: `npx tsx examples/express/server.ts`.
 * Port from KILO_PORT or PORT (default 3000); memory storage; the model from
 * the environment (see `provider.ts`), offline when no key is set.
 */
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { memoryStorage } from "../../adapters/storage/memory/index.js";
import { createKilo } from "../../src/index.js";
import { createApp } from "./app.js";
import { providerFromEnv } from "./provider.js";

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const port = Number(process.env.KILO_PORT ?? process.env.PORT ?? 3000);
  const provider = providerFromEnv();
  const kilo = createKilo({ storage: memoryStorage(), providers: [provider] });
  const server = createApp({ kilo }).listen(port, () => {
    const { port: actual } = server.address() as AddressInfo;
    console.log(
      `Express host listening on http://localhost:${actual} (kilo at /kilo, model: ${provider.name})`,
    );
  });
  const stop = () => {
    server.close(() => {
      kilo.close().finally(() => process.exit(0));
    });
    server.closeAllConnections();
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
