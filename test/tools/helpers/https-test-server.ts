import { readFileSync } from "node:fs";
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";

const fixture = (name: string) => readFileSync(new URL(`../../__fixtures__/tls/${name}`, import.meta.url));
const helper = (name: string) => readFileSync(new URL(`./${name}`, import.meta.url));

/** The test CA that signed the fixture server certificate. */
export const TEST_CA = fixture("ca.crt");

/** What the server saw of one request. */
export interface RecordedRequest {
  /** The Host header without the port. */
  host: string;
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** The address the client connected to (the server's side of the socket). */
  localAddress: string;
  /** The TLS SNI the client sent, if any. */
  servername: string | null;
}

export type TestHandler = (request: RecordedRequest, res: ServerResponse) => void;

export interface TestServer {
  port: number;
  /** `https://<host>:<port>`. */
  origin(host: string): string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

/**
 * Starts an HTTPS server on 127.0.0.1 (port 0) with the fixture certificate (or a certificate the
 * test CA did not sign, for TLS failure tests) and records every request it gets.
 */
export async function startHttpsServer(
  handler: TestHandler,
  options: { untrusted?: boolean } = {},
): Promise<TestServer> {
  const requests: RecordedRequest[] = [];
  const tls = options.untrusted
    ? { cert: helper("untrusted.crt"), key: helper("untrusted.key") }
    : { cert: fixture("server.crt"), key: fixture("server.key") };
  const server: Server = createServer(tls, (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const socket = req.socket as typeof req.socket & { servername?: string | false };
      const recorded: RecordedRequest = {
        host: (req.headers.host ?? "").replace(/:\d+$/, ""),
        method: req.method ?? "",
        path: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks).toString("utf8"),
        localAddress: socket.localAddress ?? "",
        servername: typeof socket.servername === "string" ? socket.servername : null,
      };
      requests.push(recorded);
      try {
        handler(recorded, res);
      } catch (error) {
        res.statusCode = 599;
        res.end(String(error));
      }
    });
  });
  server.on("tlsClientError", () => {});
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    origin: (host) => `https://${host}:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * A resolver for tests: a fixed table, recording every lookup. A function value is called on every
 * lookup of that name (to script rebinding answers).
 */
export function tableResolver(
  table: Record<string, readonly string[] | ((call: number) => readonly string[])>,
): {
  resolve: (hostname: string) => Promise<readonly string[]>;
  calls: string[];
} {
  const calls: string[] = [];
  return {
    calls,
    resolve: async (hostname) => {
      calls.push(hostname);
      const entry = table[hostname];
      if (entry === undefined)
        throw Object.assign(new Error(`no test record for ${hostname}`), { code: "ENOTFOUND" });
      return typeof entry === "function" ? entry(calls.filter((name) => name === hostname).length) : entry;
    },
  };
}
