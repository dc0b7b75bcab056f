export {
  conversationIdFor,
  createRunService,
  DEFAULT_RUN_CONCURRENCY,
  type IngestOptions,
  type IngestResult,
  type RunService,
  type RunServiceOptions,
  type RunSettings,
  type WaitOptions,
} from "./run-service.js";
