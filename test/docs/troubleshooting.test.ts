import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { KILO_ERROR_CODES, KiloError } from "../../src/errors.js";

describe("docs/troubleshooting.md", () => {
  it("has a section for every error code, in the registry's order, and none for codes that do not exist", async () => {
    const page = await readFile("docs/troubleshooting.md", "utf8");
    const headings = [...page.matchAll(/^## ([A-Z_]+)$/gm)].map((match) => match[1]);
    expect(headings).toEqual([...KILO_ERROR_CODES]);
  });

  it("states the HTTP status each code maps to", async () => {
    const page = await readFile("docs/troubleshooting.md", "utf8");
    for (const code of KILO_ERROR_CODES) {
      const section = page.split(`## ${code}\n`)[1]!.split("\n## ")[0]!;
      expect(section, code).toContain(`HTTP ${new KiloError(code, "x").status}.`);
    }
  });
});
