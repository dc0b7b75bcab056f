import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { gitVolume } from "../../../adapters/volumes/git/index.js";
import { KiloError } from "../../../src/errors.js";

// No helpers.js here: it imports isomorphic-git, which this file pretends is missing.
const root = mkdtempSync(join(tmpdir(), "kilo-git-volume-missing-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const system = { kind: "system" } as const;

// As if the optional peer dependency were not installed.
vi.mock("isomorphic-git", () => {
  throw new Error("Cannot find package 'isomorphic-git'");
});

describe("gitVolume without isomorphic-git", () => {
  it("is created, and fails on first use with CONFIGURATION_INVALID naming the package", async () => {
    const volume = gitVolume({ root, author: { name: "kilo" } });
    const error = await volume
      .write(system, { name: "cake", markdown: "---\nname: cake\ndescription: Cakes.\n---\n" })
      .catch((caught) => caught);
    expect(KiloError.is(error, "CONFIGURATION_INVALID")).toBe(true);
    expect(error.adapter).toBe("git");
    expect(error.message).toBe(
      "gitVolume needs the 'isomorphic-git' package, an optional peer dependency of kilo: npm install isomorphic-git",
    );
    // Validation still runs first, without the package.
    const invalid = await volume.read(system, "Bad Name").catch((caught) => caught);
    expect(KiloError.is(invalid, "VALIDATION_FAILED")).toBe(true);
    expect(existsSync(join(root, "system"))).toBe(false);
  });
});
