import type { Insertable, Kysely, Selectable } from "kysely";
import type { RunError } from "../../../src/domain/run.js";
import type { RunStep, RunStepKind, RunStepStatus } from "../../../src/domain/run-step.js";
import { KiloError } from "../../../src/errors.js";
import type { RunStepRepository } from "../../../src/ports/storage.js";
import { copyRecord } from "../../../src/runtime/copy.js";
import type { RunStepsTable, SqlNames, Tables } from "./schema.js";
import { type SqlAccess, storableJson } from "./sql-access.js";
import type { SqlDialect } from "./sql-storage.js";

/** A run step as a `run_steps` row. */
export function runStepRow(dialect: SqlDialect, step: RunStep): Insertable<RunStepsTable> {
  const json = (value: unknown): string => storableJson(dialect, value, "a run step's output");
  return {
    run_id: step.runId,
    bot_id: step.botId,
    step_index: step.index,
    name: dialect.text(step.name),
    kind: step.kind,
    status: step.status,
    // Wrapped in an object: pg hands a jsonb string back parsed, indistinguishable from JSON text.
    output: step.output === null || step.output === undefined ? null : json({ value: step.output }),
    error: step.error === null ? null : json(step.error),
    started_at: dialect.timestamp(step.startedAt),
    finished_at: step.finishedAt === null ? null : dialect.timestamp(step.finishedAt),
  };
}

/**
 * Inserts the step, or replaces the step at its index; call it inside a
 * transaction. Only when the run is the step's bot's (the foreign key alone
 * would accept another bot's run): returns false when the bot has no such run.
 */
export async function upsertRunStep(
  db: Kysely<Tables>,
  dialect: SqlDialect,
  step: RunStep,
  /** The caller has just matched the run by id and bot in this transaction: no check needed. */
  owned = false,
): Promise<boolean> {
  const owner =
    owned ||
    (await db
      .selectFrom("runs")
      .select("id")
      .where("id", "=", step.runId)
      .where("bot_id", "=", step.botId)
      .executeTakeFirst());
  if (!owner) return false;
  const row = runStepRow(dialect, step);
  const { run_id: _runId, step_index: _index, ...columns } = row;
  await db
    .insertInto("run_steps")
    .values(row)
    .onConflict((oc) => oc.columns(["run_id", "step_index"]).doUpdateSet(columns))
    .execute();
  return true;
}

/** The `run_steps` repository of the SQL adapters (migration 9), kept beside sql-storage.ts for size. */
export function sqlRunStepRepository(
  access: SqlAccess,
  dialect: SqlDialect,
  names: SqlNames,
): RunStepRepository {
  const adapter = dialect.name;
  const stepOf = (stored: Selectable<RunStepsTable>): RunStep => ({
    runId: stored.run_id,
    botId: stored.bot_id,
    index: Number(stored.step_index),
    name: dialect.fromText(stored.name),
    kind: stored.kind as RunStepKind,
    status: stored.status as RunStepStatus,
    output: stored.output === null ? null : (dialect.fromJson(stored.output) as { value: unknown }).value,
    error: stored.error === null ? null : (dialect.fromJson(stored.error) as RunError),
    startedAt: dialect.fromTimestamp(stored.started_at),
    finishedAt: stored.finished_at === null ? null : dialect.fromTimestamp(stored.finished_at),
  });

  return {
    save: async (step) => {
      const saved = dialect.saveRunStep
        ? await access.run("runSteps.save", (db) =>
            dialect.saveRunStep!(db, names, runStepRow(dialect, step)),
          )
        : await access.atomic("runSteps.save", (db) => upsertRunStep(db, dialect, step));
      if (!saved) {
        throw new KiloError(
          "NOT_FOUND",
          `${adapter} storage: cannot save a run step: bot ${step.botId} has no run ${step.runId}`,
          { adapter },
        );
      }
      return { ...copyRecord(step), output: step.output ?? null };
    },
    listByRun: (botId, runId) =>
      access.run("runSteps.listByRun", async (db) => {
        const rows = await db
          .selectFrom("run_steps")
          .selectAll()
          .where("run_id", "=", runId)
          .where("bot_id", "=", botId)
          .orderBy("step_index")
          .execute();
        return rows.map(stepOf);
      }),
  };
}
