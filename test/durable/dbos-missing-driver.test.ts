import { describe, expect, it, vi } from "vitest";
import { dbosExecutor } from "../../adapters/durable/dbos/index.js";
import { memoryStorage } from "../../adapters/storage/memory/index.js";
import { createKilo, KiloError } from "../../src/index.js";
import { mockProvider } from "../../src/testing/index.js";

// As if the optional peer dependency were not installed.
vi.mock("@dbos-inc/dbos-sdk", () => {
  throw new Error("Cannot find package '@dbos-inc/dbos-sdk'");
});

describe("dbosExecutor without @dbos-inc/dbos-sdk", () => {
  it("is created, and the first use of kilo.runs fails with CONFIGURATION_INVALID naming the package", async () => {
    const kilo = createKilo({
      storage: memoryStorage(),
      providers: [mockProvider({ replies: [] })],
      runs: {
        executor: dbosExecutor({ systemDatabaseUrl: "postgres://127.0.0.1:1/none", applicationVersion: "1" }),
      },
    });
    const error = await kilo.runs.start().catch((caught: unknown) => caught);
    expect(KiloError.is(error, "CONFIGURATION_INVALID")).toBe(true);
    expect((error as KiloError).adapter).toBe("dbos");
    expect((error as KiloError).message).toBe(
      "dbosExecutor needs the '@dbos-inc/dbos-sdk' package, an optional peer dependency of kilo: npm install @dbos-inc/dbos-sdk",
    );
    // kilo.close() releases the executor, so another can be created in this process.
    await kilo.close();
    expect(() =>
      dbosExecutor({ systemDatabaseUrl: "postgres://127.0.0.1:1/none", applicationVersion: "1" }),
    ).not.toThrow();
  });
});
