import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const directory = mkdtempSync(join(tmpdir(), "kilo-docs-skill-scopes-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

/** The package's import specifiers, pointed at the sources. */
const SOURCES: Record<string, string> = {
  kilo: resolve("src/index.ts"),
  "kilo/storage/memory": resolve("adapters/storage/memory/index.ts"),
  "kilo/testing": resolve("src/testing/index.ts"),
};

describe("docs/skill-scopes.md", () => {
  it("the example runs as written and prints what the page says", () => {
    const page = readFileSync("docs/skill-scopes.md", "utf8");
    const block = page.split("<!-- runnable: test/docs/skill-scopes.test.ts runs this block -->\n```ts\n")[1];
    expect(block, "the runnable block is missing").toBeDefined();
    let code = block!.split("\n```")[0]!;
    for (const [specifier, path] of Object.entries(SOURCES)) {
      code = code.replaceAll(`from "${specifier}";`, `from ${JSON.stringify(path)};`);
    }
    const file = join(directory, "skill-scopes-example.mts");
    writeFileSync(file, code);
    const result = spawnSync(process.execPath, ["--import", "tsx", file], { encoding: "utf8" });
    expect(result.stderr).toBe("");
    const printed = JSON.parse(result.stdout.trim());
    // The page shows the same output.
    const shown = JSON.parse(page.split("```json\n").at(-1)!.split("\n```")[0]!);
    expect(printed).toEqual(shown);
    expect(printed).toMatchObject({ denied: "FORBIDDEN", matchedOwn: true });
  });

  it("is linked from the concepts page and the skill versions page", () => {
    expect(readFileSync("docs/concepts.md", "utf8")).toContain("(skill-scopes.md)");
    expect(readFileSync("docs/skill-versions.md", "utf8")).toContain("(skill-scopes.md)");
  });
});
