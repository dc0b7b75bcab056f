/**
 * A worker process for the cross-process runs tests and the runs bench: a kilo
 * on a shared Postgres schema that only executes runs (`kilo.runs.start()`),
 * with a mock provider that answers with the worker's name.
 *
 * Configured through the environment:
 * - `KILO_WORKER_DATABASE_URL`, `KILO_WORKER_SCHEMA` (required);
 * - `KILO_WORKER_NAME` (the reply; default `worker`);
 * - `KILO_WORKER_LATENCY_MS` (per model call; default 5);
 * - `KILO_WORKER_HANG_TEXT`: a message containing it makes the model call last an hour
 *   (announced with `{"hanging":true}` on stdout);
 * - `KILO_WORKER_CONCURRENCY`, `KILO_WORKER_LEASE_MS`, `KILO_WORKER_HEARTBEAT_MS`,
 *   `KILO_WORKER_POOL_SIZE` (kilo's defaults when unset).
 *
 * Writes one JSON object per line to stdout: `{"ready":true,"pid":...}` once it
 * claims, then `{"started":"<run id>","at":...}` as each run starts and
 * `{"completed":"<run id>","at":...}` once its outcome is stored (`at`: ms since
 * the epoch, sub-millisecond, comparable between processes). Stops (closing
 * kilo) on SIGTERM or when its stdin closes, so it never outlives its parent.
 */
import { postgresStorage } from "../../adapters/storage/postgres/index.js";
import { createKilo, jsonLogger } from "../../src/index.js";
import { mockProvider } from "../../src/testing/index.js";

const env = process.env;
const number = (name: string): number | undefined =>
  env[name] === undefined || env[name] === "" ? undefined : Number(env[name]);
const name = env.KILO_WORKER_NAME ?? "worker";
const latencyMs = number("KILO_WORKER_LATENCY_MS") ?? 5;
const hang = env.KILO_WORKER_HANG_TEXT;
const lastUserText = (messages: ReadonlyArray<{ role: string; content: unknown }>): string =>
  JSON.stringify(messages.findLast((message) => message.role === "user")?.content ?? "");

const kilo = createKilo({
  storage: postgresStorage({
    connectionString: env.KILO_WORKER_DATABASE_URL!,
    schema: env.KILO_WORKER_SCHEMA!,
    poolSize: number("KILO_WORKER_POOL_SIZE") ?? 4,
  }),
  providers: [
    mockProvider({
      recordRequests: false,
      async respond(request) {
        const hangs = hang !== undefined && lastUserText(request.messages).includes(hang);
        if (hangs) process.stdout.write(`${JSON.stringify({ hanging: true })}\n`);
        await new Promise((resolve) => setTimeout(resolve, hangs ? 3_600_000 : latencyMs));
        return name;
      },
    }),
  ],
  prices: { "mock-1": { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 } },
  logger: jsonLogger({ level: "warn", base: { worker: name } }),
  runs: {
    concurrency: number("KILO_WORKER_CONCURRENCY"),
    leaseMs: number("KILO_WORKER_LEASE_MS"),
    heartbeatIntervalMs: number("KILO_WORKER_HEARTBEAT_MS"),
  },
});

const at = () => performance.timeOrigin + performance.now();
kilo.events.on("run-started", (event) => {
  process.stdout.write(`${JSON.stringify({ started: event.runId, at: at() })}\n`);
});
kilo.events.on("run-completed", (event) => {
  process.stdout.write(`${JSON.stringify({ completed: event.runId, at: at() })}\n`);
});

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await kilo.close();
  process.exit(0);
}
process.on("SIGTERM", () => void stop());
process.stdin.on("close", () => void stop());
process.stdin.resume();

await kilo.runs.start();
process.stdout.write(`${JSON.stringify({ ready: true, pid: process.pid })}\n`);
