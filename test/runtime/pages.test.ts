import { describe, expect, it } from "vitest";
import { allPages } from "../../src/runtime/pages.js";

const pages: Record<string, { items: number[]; nextCursor: string | null }> = {
  start: { items: [1, 2], nextCursor: "b" },
  b: { items: [3, 4], nextCursor: "c" },
  c: { items: [5], nextCursor: null },
};

describe("allPages", () => {
  it("follows cursors until a page has none, and stops early at max", async () => {
    const seen: Array<string | null> = [];
    const fetchPage = async (cursor: string | null) => {
      seen.push(cursor);
      return pages[cursor ?? "start"]!;
    };
    expect(await allPages(fetchPage)).toEqual([1, 2, 3, 4, 5]);
    expect(seen).toEqual([null, "b", "c"]);
    seen.length = 0;
    expect(await allPages(fetchPage, 3)).toEqual([1, 2, 3]);
    expect(seen).toEqual([null, "b"]);
  });
});
