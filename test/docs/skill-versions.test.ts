import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const directory = mkdtempSync(join(tmpdir(), "kilo-docs-skill-versions-"));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

/** The package's import specifiers, pointed at the sources. */
const SOURCES: Record<string, string> = {
  kilo: resolve("src/index.ts"),
  "kilo/storage/memory": resolve("adapters/storage/memory/index.ts"),
  "kilo/testing": resolve("src/testing/index.ts"),
};

describe("docs/skill-versions.md", () => {
  it("the example runs as written and prints the history with its rollback", () => {
    const page = readFileSync("docs/skill-versions.md", "utf8");
    const block = page.split(
      "<!-- runnable: test/docs/skill-versions.test.ts runs this block -->\n```ts\n",
    )[1];
    expect(block, "the runnable block is missing").toBeDefined();
    let code = block!.split("\n```")[0]!;
    for (const [specifier, path] of Object.entries(SOURCES)) {
      code = code.replaceAll(`from "${specifier}";`, `from ${JSON.stringify(path)};`);
    }
    const file = join(directory, "skill-versions-example.mts");
    writeFileSync(file, code);
    const result = spawnSync(process.execPath, ["--import", "tsx", file], { encoding: "utf8" });
    expect(result.stderr).toBe("");
    expect(JSON.parse(result.stdout.trim())).toEqual({
      status: "active",
      instructions: "Store each new order.",
      versions: [
        "4:alice:Rollback to version 1",
        "3:system:paused",
        "2:alice:confirm pickups",
        "1:alice:null",
      ],
      changed: [
        '-  "instructions": "Store each new order.",',
        '+  "instructions": "Store each order; confirm the day.",',
      ],
    });
  });
});
