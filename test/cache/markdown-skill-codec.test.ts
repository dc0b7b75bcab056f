import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { catalogCodec } from "../../src/cache/cache-codec.js";
import { parseSkillMarkdown } from "../../src/skills/markdown/index.js";
import { makeSkill, ORDER_TRACKER } from "../fixtures.js";

describe("the catalog codec with Markdown skills", () => {
  it("carries a Markdown skill through a shared cache unchanged, beside a structured one", () => {
    const text = readFileSync(new URL("../__fixtures__/skills/python-testing.md", import.meta.url), "utf8");
    const parsed = parseSkillMarkdown(text).skill;
    const markdown = makeSkill({ ...parsed, id: "python-testing" });
    // Past the standard's 1,024 characters, as real files are: still a valid cached value.
    const long = makeSkill({ ...parsed, id: "long", name: "long", description: "d".repeat(2000) });
    const catalog = { version: "v1", skills: [makeSkill(ORDER_TRACKER), markdown, long] };
    const decoded = catalogCodec.decode(catalogCodec.encode(catalog, "g1"));
    expect(decoded).toEqual({ value: catalog, generation: "g1" });
    expect(catalogCodec.revive(catalogCodec.encode(catalog, null))).toEqual(catalog);
  });
});
