import { afterAll, describe, expect, it } from "vitest";
import { offlineDraft } from "../../src/cli/offline-provider.js";
import { runInProcess, workspace } from "./cli-harness.js";

const space = workspace();
afterAll(() => space.remove());

describe("kilo evolve", () => {
  it("drafts a skill from a request made again and again, leaving it inactive until reviewed", async () => {
    for (const text of ["log my run of 5 km today", "log my run of 10 km", "please log my run of 3 km"]) {
      expect((await runInProcess(["ask", text], space)).code).toBe(0);
    }
    const result = await runInProcess(["evolve", "--json"], space);
    expect(result.code).toBe(0);
    const body = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(body).toMatchObject({ traces_analyzed: 3, patterns_detected: 1, skills_created: 1 });
    const [draft] = body.skills as Array<{ name: string; status: string }>;
    expect(draft?.status).toBe("draft");
    expect(draft?.name).toMatch(/log|run|km/);
    expect(result.stderr).toContain("kilo: evolve:");

    // A draft is listed but not active; a second pass drafts nothing new.
    const listed = JSON.parse((await runInProcess(["skills", "list", "--json"], space)).stdout) as Array<{
      name: string;
      status: string;
    }>;
    expect(listed).toEqual([expect.objectContaining({ name: draft!.name, status: "draft" })]);
    const again = await runInProcess(["evolve"], space);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/analysed 3 traces: \d+ repeated patterns, 0 skills drafted/);
  });

  it("has the offline model draft from the pattern's keywords, and nothing without them", () => {
    const draft = JSON.parse(
      offlineDraft("Keywords: log, run, km\nRequests (3 in all):\n- log my run"),
    ) as Record<string, unknown>;
    expect(draft).toMatchObject({ name: "log-run-km", triggers: ["log", "run", "km"] });
    expect(offlineDraft("no keywords here")).toBe("{}");
  });
});
