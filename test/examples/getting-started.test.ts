import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const EXAMPLE = "examples/getting-started/first-bot.ts";

describe("docs/getting-started.md", () => {
  it("runs its example file and prints what the page says it prints", async () => {
    const { stdout } = await run(process.execPath, ["--import", "tsx", EXAMPLE], {
      env: { ...process.env, ANTHROPIC_API_KEY: "" },
      timeout: 60_000,
    });
    const page = await readFile("docs/getting-started.md", "utf8");
    const printed = /```text\n([\s\S]*?)```/.exec(page)?.[1];
    expect(printed).toBeDefined();
    expect(stdout).toBe(printed);
  });

  it("shows only code that is in the example file", async () => {
    const page = await readFile("docs/getting-started.md", "utf8");
    const source = await readFile(EXAMPLE, "utf8");
    const snippets = [...page.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1]!.trim());
    expect(snippets.length).toBeGreaterThanOrEqual(4);
    for (const snippet of snippets) expect(source).toContain(snippet);
  });
});
