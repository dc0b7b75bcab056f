import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { postgresStorage } from "../../adapters/storage/postgres/index.js";
import { createKilo, KiloError } from "../../src/index.js";
import { mockProvider } from "../../src/testing/index.js";

const DATABASE_URL = process.env.KILO_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const schema = `kilo_fault_${randomUUID().slice(0, 8)}`;
const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });

afterAll(async () => {
  await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await admin.end();
});

async function retrying<T>(read: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await read();
    } catch (error) {
      if (attempt >= 3 || !KiloError.is(error, "STORAGE_FAILED") || !error.retryable) throw error;
    }
  }
}

describe("a Postgres connection dropped in the middle of a turn", () => {
  it("fails the turn with a typed error and keeps the user's message", async () => {
    const pool = new pg.Pool({
      connectionString: DATABASE_URL,
      max: 2,
      application_name: `kilo-fault-${schema}`,
    });
    // Keep the pool from crashing the process when its idle clients are killed.
    pool.on("error", () => undefined);
    let kill = false;
    const provider = mockProvider({
      respond: async (request) => {
        if (request.purpose === "classify") {
          return JSON.stringify({ skill: null, confidence: 0.9, actionable: false, reason: "chat" });
        }
        if (kill) {
          // While the model "thinks", every connection kilo holds is terminated by the server.
          await admin.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()",
            [`kilo-fault-${schema}`],
          );
        }
        return "All good.";
      },
    });
    const kilo = createKilo({ storage: postgresStorage({ pool, schema }), providers: [provider] });
    const bot = await kilo.bots.create({ userId: "fault-user", name: "Fragile" });
    const first = await kilo.chat({ botId: bot.id, userId: "fault-user", message: "hello" });

    kill = true;
    const failure = await kilo
      .chat({
        botId: bot.id,
        userId: "fault-user",
        conversationId: first.conversationId,
        message: "please keep this",
      })
      .catch((e: unknown) => e);
    kill = false;
    expect(KiloError.is(failure), String(failure)).toBe(true);
    expect((failure as KiloError).code).toBe("STORAGE_FAILED");
    expect((failure as KiloError).retryable).toBe(true);

    // The message stored before the model call is there, and no reply was stored. The pool may still
    // hand out another killed connection once (the error says retryable), so read as a host would: retrying.
    const messages = await retrying(() => kilo.conversations.messages(bot.id, first.conversationId));
    expect(messages.map((m) => [m.role, m.content])).toEqual([
      ["user", "hello"],
      ["assistant", "All good."],
      ["user", "please keep this"],
    ]);
    await kilo.close();
    await pool.end();
  });
});
