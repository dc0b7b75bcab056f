import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const directory = mkdtempSync(join(tmpdir(), "kilo-docs-volumes-git-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

/** The package's import specifiers, pointed at the sources. */
const SOURCES: Record<string, string> = {
  kilo: resolve("src/index.ts"),
  "kilo/volumes/git": resolve("adapters/volumes/git/index.ts"),
};

describe("docs/volumes-git.md", () => {
  it("the example runs as written and prints the picked-up edit with its history", () => {
    const page = readFileSync("docs/volumes-git.md", "utf8");
    const block = page.split("<!-- runnable: test/docs/volumes-git.test.ts runs this block -->\n```ts\n")[1];
    expect(block, "the runnable block is missing").toBeDefined();
    let code = block!.split("\n```")[0]!;
    for (const [specifier, path] of Object.entries(SOURCES)) {
      code = code.replaceAll(`from "${specifier}";`, `from ${JSON.stringify(path)};`);
    }
    const file = join(directory, "volumes-git-example.mts");
    writeFileSync(file, code);
    const result = spawnSync(process.execPath, ["--import", "tsx", file], { encoding: "utf8" });
    expect(result.stderr).toBe("");
    const printed = JSON.parse(result.stdout.trim());
    expect(printed).toEqual({
      imported: ["update cake-orders by kilo@bakery.example"],
      body: "1. Ask for the cake.\n2. Ask for the pickup day.\n",
      versions: ["picked-up:kilo:updated", "kilo:Ann:created"],
      added: ["+2. Ask for the pickup day."],
    });
    // The page shows the same output.
    const shown = page.split("added:\n\n```json\n")[1]?.split("\n```")[0];
    expect(JSON.parse(shown!)).toEqual(printed);
  });
});
