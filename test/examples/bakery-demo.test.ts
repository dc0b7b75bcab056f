import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runBakeryDemo } from "../../examples/bakery/demo.js";
import { completion, startFakeOpenAIServer } from "../providers/fake-openai-server.js";

describe("npm run demo (the bakery scenario)", () => {
  it("plays the whole scenario offline and prints who handled each turn and the cost", async () => {
    const lines: string[] = [];
    const outcome = await runBakeryDemo({ print: (line) => lines.push(line) });
    const { kilo, botId, userId, turns } = outcome;
    expect(outcome.mode).toBe("replay");
    expect(lines[0]).toContain("offline");

    const handled = turns.map((turn) => [turn.result.skill?.name ?? null, turn.result.match.pass]);
    expect(handled).toEqual([
      ["Order Tracker", "fast"],
      ["Order Tracker", "fast"],
      ["Order Tracker", "fast"],
      [null, "llm"],
      [null, "llm"],
      [null, "llm"],
      [null, "none"],
      ["Inventory Tracker", "fast"],
    ]);

    const skills = await kilo.skills.list(botId);
    const orders = await kilo.records.list(botId, skills[0]!.id);
    expect(orders.items.map((record) => record.data.customer)).toEqual(["Maria", "Tom"]);
    const inventory = await kilo.records.list(botId, skills[1]!.id);
    expect(inventory.items.map((record) => record.data)).toEqual([
      { item: "flour", quantity: 20, unit: "kg" },
    ]);

    // Learned in session 1, used in session 2.
    expect(turns[3]!.result.memories.map((m) => m.key)).toEqual(["bakery name"]);
    expect(turns[4]!.result.conversationId).not.toBe(turns[3]!.result.conversationId);
    expect(turns[4]!.result.reply).toContain("Sweet Crumb");
    expect(turns[5]!.result.proposal?.name).toBe("Inventory Tracker");
    expect(turns[6]!.result.createdSkill?.name).toBe("Inventory Tracker");

    const summary = await kilo.usage.summary({ userId });
    expect(summary.calls).toBe(14);
    expect(summary.costUsd).toBeGreaterThan(0);
    expect(lines.at(-1)).toContain(`$${summary.costUsd.toFixed(4)}`);
    expect(outcome.run).toBe("first");
    expect(lines.join("\n")).toContain("skill: Order Tracker (fast path)");
    await kilo.close();
  });
});

describe("npm run demo, twice, on its SQLite file", () => {
  it("remembers on the second run what the first one learned", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kilo-demo-"));
    const env = { ...process.env, KILO_DEMO_DATABASE: join(dir, "bakery.sqlite") };
    const run = () =>
      execFileSync(process.execPath, ["--import", "tsx", "examples/bakery/demo.ts"], {
        env,
        encoding: "utf8",
      });
    try {
      const first = run();
      expect(first).toContain('Bot "Crumb" with a soul');
      expect(first).toContain("remembered: The user's bakery is called Sweet Crumb.");
      expect(first).toContain("Run `npm run demo` again");
      const second = run();
      expect(second).toContain("Crumb is back from an earlier run with 2 skills");
      expect(second).toContain("crumb: Welcome back! Your bakery is called Sweet Crumb.");
      expect(second).toContain("skill: Order Tracker (fast path) | tools: record_query");
      expect(second).toContain("skill: Inventory Tracker (fast path) | tools: record_query");
      expect(second).toMatch(/All runs so far: 20 LLM calls/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe("npm run demo with a provider key set", () => {
  it("talks to the live provider (here a local OpenAI-compatible server) instead of replaying", async () => {
    const server = await startFakeOpenAIServer();
    server.reply(() => ({ json: completion({ content: "Noted, thank you!" }) }));
    const dir = mkdtempSync(join(tmpdir(), "kilo-demo-live-"));
    const env = {
      ...process.env,
      KILO_DEMO_DATABASE: join(dir, "bakery.sqlite"),
      OPENAI_API_KEY: "sk-test-demo",
      OPENAI_BASE_URL: server.baseURL,
      ANTHROPIC_API_KEY: "",
    };
    try {
      const output = await new Promise<string>((resolve, reject) => {
        execFile(
          process.execPath,
          ["--import", "tsx", "examples/bakery/demo.ts"],
          { env, encoding: "utf8" },
          (error, stdout) => (error ? reject(error) : resolve(stdout)),
        );
      });
      expect(output).toContain("kilo bakery demo (live, storage: sqlite)");
      expect(output).toContain("crumb: Noted, thank you!");
      expect(server.requests.length).toBeGreaterThanOrEqual(8);
      expect(server.requests[0]?.headers.authorization).toBe("Bearer sk-test-demo");
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
