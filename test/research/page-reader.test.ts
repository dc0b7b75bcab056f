import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHttpExecutor, createPageReader } from "../../src/index.js";
import { kiloFailure } from "../fixtures.js";
import {
  startHttpsServer,
  TEST_CA,
  type TestServer,
  tableResolver,
} from "../tools/helpers/https-test-server.js";

let server: TestServer;
const LONG_PARAGRAPH = `<p>${"Orders can be listed and filtered by status. ".repeat(400)}</p>`;

beforeAll(async () => {
  server = await startHttpsServer((request, res) => {
    if (request.path === "/docs") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(
        "<html><head><title>Acme API</title><style>body{color:red}</style><script>alert(1)</script></head>" +
          "<body><nav>Home | Pricing</nav><h1>Acme API</h1><p>Base URL: <code>https://api.acme.example</code></p>" +
          "<table><tr><th>Method</th><th>Path</th></tr><tr><td>GET</td><td>/v1/orders/{id}</td></tr></table>" +
          '<img src="x.png" alt="diagram"><a href="https://docs.acme.example/auth">Authentication</a></body></html>',
      );
      return;
    }
    if (request.path === "/long") {
      res.writeHead(200, { "content-type": "text/html" });
      res.end(`<html><body>${LONG_PARAGRAPH}</body></html>`);
      return;
    }
    if (request.path === "/huge") {
      res.writeHead(200, { "content-type": "text/html" });
      res.end(`<html><body>${"<p>padding</p>".repeat(20_000)}</body></html>`);
      return;
    }
    if (request.path === "/binary") {
      res.writeHead(200, { "content-type": "application/pdf" });
      res.end("%PDF-1.4");
      return;
    }
    res.writeHead(404, { "content-type": "text/html" });
    res.end("<p>missing</p>");
  });
});

afterAll(() => server.close());

function reader(options: { allow?: boolean; maxChars?: number } = {}) {
  const executor = createHttpExecutor({
    resolve: tableResolver({ "docs.test.kilo": ["127.0.0.1"] }).resolve,
    ca: TEST_CA,
    allowPrivateAddresses: options.allow === false ? [] : ["127.0.0.1"],
    maxBytes: 64 * 1024,
  });
  return createPageReader({ executor, maxChars: options.maxChars ?? 2_000 });
}

const url = (path: string) => `${server.origin("docs.test.kilo")}${path}`;

describe("page reader", () => {
  it("turns HTML into readable text: title, headings, tables and links kept; scripts, styles, nav and images dropped", async () => {
    const page = await reader().read(url("/docs"));
    expect(page.title).toBe("Acme API");
    expect(page.truncated).toBe(false);
    expect(page.text).toContain("Acme API");
    expect(page.text).toContain("Base URL: https://api.acme.example");
    expect(page.text).toMatch(/GET\s+\/v1\/orders\/\{id\}/);
    expect(page.text).toContain("Authentication [https://docs.acme.example/auth]");
    for (const gone of ["alert(1)", "color:red", "Pricing", "diagram"]) expect(page.text).not.toContain(gone);
  });

  it("cuts text longer than maxChars and says so", async () => {
    const page = await reader({ maxChars: 1_000 }).read(url("/long"));
    expect(page.truncated).toBe(true);
    expect(page.text.startsWith("Orders can be listed")).toBe(true);
    expect(page.text).toMatch(
      /\[truncated: the page's text is \d+ characters; only the first 1000 were read\]$/,
    );
    expect(page.text.length).toBeLessThan(1_200);
  });

  it("refuses a page over the executor's byte cap instead of loading it", async () => {
    const error = await kiloFailure(reader().read(url("/huge")));
    expect(error.code).toBe("TOOL_FAILED");
    expect(error.message).toContain("too large");
  });

  it("refuses error statuses and bodies that are not text", async () => {
    expect((await kiloFailure(reader().read(url("/nope")))).message).toContain("answered 404");
    expect((await kiloFailure(reader().read(url("/binary")))).message).toContain("application/pdf");
  });

  it("goes through the SSRF guard: a private address is refused outside the test allowlist", async () => {
    expect((await kiloFailure(reader({ allow: false }).read(url("/docs")))).code).toBe("SSRF_BLOCKED");
  });
});
