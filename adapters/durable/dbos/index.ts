/**
 * A run executor on DBOS Transact: `import { dbosExecutor } from "kilo/durable/dbos"`.
 * Needs `@dbos-inc/dbos-sdk` (version 5), an optional peer dependency, and a
 * Postgres database for DBOS's system tables. See docs/durable-dbos.md.
 *
 * @module
 */
export type { DbosExecutor, DbosExecutorOptions } from "./dbos-executor.js";
export { dbosExecutor, workflowIdOf } from "./dbos-executor.js";
