/**
 * `kilo/testing`: fakes and suites for host applications' tests.
 *
 * @module
 */

export type {
  MockAnswer,
  MockFailure,
  MockProvider,
  MockProviderOptions,
  MockReply,
  MockToolCall,
} from "./mock-provider.js";
export { mockProvider } from "./mock-provider.js";
export type {
  RecordingProvider,
  RecordingProviderOptions,
  ReplayEntry,
  ReplayFile,
  ReplayProvider,
  ReplayProviderOptions,
  ReplayRequestSummary,
} from "./replay-provider.js";
export {
  loadReplayFile,
  parseReplayFile,
  ReplayEntrySchema,
  ReplayFileSchema,
  ReplayRequestSummarySchema,
  recordingProvider,
  replayProvider,
} from "./replay-provider.js";
export type { PurposeResponder, PurposeScript } from "./script-by-purpose.js";
export { scriptByPurpose } from "./script-by-purpose.js";
export type { StorageConformanceOptions, StorageConformanceSkip } from "./storage-conformance.js";
export { runStorageConformance } from "./storage-conformance.js";
