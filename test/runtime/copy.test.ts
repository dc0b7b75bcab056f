import { describe, expect, it } from "vitest";
import { copyRecord } from "../../src/runtime/copy.js";

describe("copyRecord", () => {
  it("copies plain objects, arrays and Dates deeply: changing the copy leaves the original alone", () => {
    const original = {
      id: "run_1",
      createdAt: new Date("2026-11-22T10:00:00Z"),
      output: { reply: "ok", toolCalls: [{ name: "get_hours", input: { day: "mon" } }], usage: null },
      tags: ["a", "b"],
      missing: undefined,
    };
    const copy = copyRecord(original);
    expect(copy).toEqual(original);
    expect(copy.createdAt).toBeInstanceOf(Date);
    expect(copy.createdAt).not.toBe(original.createdAt);
    copy.output.toolCalls[0]!.input.day = "tue";
    copy.tags.push("c");
    copy.createdAt.setUTCFullYear(2000);
    expect(original.output.toolCalls[0]!.input.day).toBe("mon");
    expect(original.tags).toEqual(["a", "b"]);
    expect(original.createdAt.toISOString()).toBe("2026-11-22T10:00:00.000Z");
    expect(Object.hasOwn(copy, "missing")).toBe(true);
  });

  it("copies what is not plain data (a Map, a null-prototype object) as structuredClone does", () => {
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { k: 1 });
    const original = { counts: new Map([["x", { n: 1 }]]), bare };
    const copy = copyRecord(original);
    expect(copy.counts).toBeInstanceOf(Map);
    expect(copy.counts.get("x")).toEqual({ n: 1 });
    expect(copy.counts.get("x")).not.toBe(original.counts.get("x"));
    expect(copy.bare).toEqual({ k: 1 });
    expect(copy.bare).not.toBe(bare);
  });

  it("refuses a function or a symbol inside, as structuredClone refuses them", () => {
    expect(() => copyRecord({ metadata: { onDone: () => 1 } })).toThrow(TypeError);
    expect(() => copyRecord([Symbol("s")])).toThrow(/cannot copy a symbol/);
  });
});
