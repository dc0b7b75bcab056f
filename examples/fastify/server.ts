/**
 * Runs the Fastify host app: `npx tsx examples/fastify/server.ts`.
 * Port from KILO_PORT or PORT (default 3000); memory storage; the model from
 * the environment (see `provider.ts`), offline when no key is set.
 */
import { fileURLToPath } from "node:url";
import { memoryStorage } from "../../adapters/storage/memory/index.js";
import { createKilo } from "../../src/index.js";
import { createApp } from "./app.js";
import { providerFromEnv } from "./provider.js";

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const port = Number(process.env.KILO_PORT ?? process.env.PORT ?? 3000);
  const provider = providerFromEnv();
  const kilo = createKilo({ storage: memoryStorage(), providers: [provider] });
  const app = createApp({ kilo });
  app.addHook("onClose", () => kilo.close());
  await app.listen({ port, host: "localhost" });
  const address = app.server.address();
  const actual = typeof address === "object" && address ? address.port : port;
  console.log(
    `Fastify host listening on http://localhost:${actual} (kilo at /kilo, model: ${provider.name})`,
  );
  const stop = () => {
    app.close().finally(() => process.exit(0));
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
