/**
 * kilo: an embeddable SDK for personal AI assistants that learn.
 *
 * Start with {@link createKilo}. Storage adapters live in subpaths
 * (`kilo/storage/memory`, ...), test helpers in `kilo/testing`.
 *
 * @module kilo
 */

// The instance
export type {
  ApprovalOutcome,
  Component,
  Kilo,
  KiloComponents,
  KiloOptions,
  KiloParts,
  RunListOptions,
  UsageQuery,
} from "./kilo.js";
export { createKilo } from "./kilo.js";

// Errors and events
export type { KiloErrorCode, KiloErrorOptions } from "./errors.js";
export { KILO_ERROR_CODES, KiloError, toKiloError } from "./errors.js";
export type {
  EvolveProgressEvent,
  EvolveStage,
  KiloEventEmitter,
  KiloEventName,
  KiloEvents,
  LearningProgressEvent,
  LearningStage,
  RunEventBase,
  TurnEventBase,
} from "./events.js";

// Domain schemas and types
export * from "./domain/index.js";

// Ports: implement these to replace a component or add an adapter
export type * from "./ports/cache.js";
export type * from "./ports/clock.js";
export type * from "./ports/context-loader.js";
export type * from "./ports/credential-vault.js";
export type * from "./ports/llm-gateway.js";
export type * from "./ports/llm-provider.js";
export type * from "./ports/logger.js";
export { LOG_LEVELS } from "./ports/logger.js";
export type * from "./ports/memory.js";
export type * from "./ports/orchestrator.js";
export type * from "./ports/prompt-composer.js";
export type * from "./ports/response-processor.js";
export type * from "./ports/skill-matcher.js";
export type * from "./ports/learner.js";
export type * from "./ports/search-provider.js";
export type * from "./ports/skill-proposer.js";
export type * from "./ports/skill-volume.js";
export type * from "./ports/storage.js";
export type * from "./ports/run-executor.js";
export type * from "./ports/tool-provider.js";

// Default components, for hosts that wrap or reconfigure them
export * from "./tools/index.js";
export type { CacheLoader, CacheLoaderOptions, CacheOptions } from "./cache/cache-loader.js";
export { createCacheLoader } from "./cache/cache-loader.js";
export type { MemoryCache, MemoryCacheOptions } from "./cache/memory-cache.js";
export { memoryCache } from "./cache/memory-cache.js";
export type { ContextLoaderDependencies } from "./context/context-loader.js";
export { createContextLoader, historyWindowStart } from "./context/context-loader.js";
export { textOf, thinkingSummary } from "./gateway/content.js";
export type {
  GatewayRoute,
  GatewayRoutes,
  LlmCallEvent,
  LlmGatewayOptions,
  UsageSink,
} from "./gateway/llm-gateway.js";
export { createLlmGateway } from "./gateway/llm-gateway.js";
export type { ModelPrice, PriceTable } from "./gateway/pricing.js";
export { DEFAULT_PRICES, findPrice, mergePrices, priceOf } from "./gateway/pricing.js";
export type { ProviderFailure } from "./gateway/provider-errors.js";
export { malformedResponse, providerError } from "./gateway/provider-errors.js";
export type { TaskSettings, TaskSettingsOverrides } from "./gateway/task-routing.js";
export { DEFAULT_TASK_SETTINGS } from "./gateway/task-routing.js";
export type { LlmMemoryExtractorOptions } from "./memory/memory-extractor.js";
export { llmMemoryExtractor, ruleMemoryExtractor } from "./memory/memory-extractor.js";
export type {
  LexicalMemoryRetrieverOptions,
  MemoryServiceDependencies,
  RememberedFact,
} from "./memory/memory-service.js";
export { lexicalMemoryRetriever, MemoryService, normalizeMemoryKey } from "./memory/memory-service.js";
export type { OrchestratorDependencies } from "./orchestrator/orchestrator.js";
export { createOrchestrator } from "./orchestrator/orchestrator.js";
export type { TurnMeter, TurnTally } from "./orchestrator/turn-meter.js";
export { createTurnMeter } from "./orchestrator/turn-meter.js";
export type { PromptComposerOptions } from "./prompt/prompt-composer.js";
export {
  CATALOG_DESCRIPTION_MAX_CHARS,
  createPromptComposer,
  renderCatalog,
  renderRules,
  renderSoul,
} from "./prompt/prompt-composer.js";
export type {
  Workspace,
  WorkspaceHooks,
  WorkspaceOptions,
  WorkspacePrompt,
  WorkspaceProblem,
  WorkspaceSkill,
} from "./workspace/workspace.js";
export { createWorkspace, MAX_WORKSPACE_FILE_BYTES, WORKSPACE_FILES } from "./workspace/workspace.js";
export type { ResponseProcessorOptions } from "./response/response-processor.js";
export { createResponseProcessor, stripMarkdown } from "./response/response-processor.js";
export type {
  IngestOptions,
  IngestResult,
  PruneOptions,
  RunService,
  RunServiceOptions,
  RunSettings,
  TurnRunOptions,
  WaitOptions,
  WorkflowContext,
  WorkflowHandler,
  WorkflowStepInfo,
  WorkflowToolRequest,
  WorkflowToolResult,
  WorkflowTurnOptions,
  WorkflowTurnResult,
} from "./runs/index.js";
export {
  conversationIdFor,
  createRunService,
  DEFAULT_RUN_CONCURRENCY,
  MESSAGE_WORKFLOW,
} from "./runs/index.js";
export { randomIds, sequentialIds, systemClock } from "./runtime/defaults.js";
export { contextualLogger, withLogFields } from "./runtime/log-context.js";
export type { JsonLoggerOptions } from "./runtime/logger.js";
export { jsonLogger, silentLogger } from "./runtime/logger.js";
export type {
  FastPathThresholds,
  IndexableSkill,
  KeywordCandidate,
  KeywordEvidence,
  KeywordIndex,
  KeywordIndexOptions,
  KeywordSearchResult,
} from "./skills/keyword-index.js";
export { buildKeywordIndex, DEFAULT_FAST_PATH_THRESHOLDS, tokenize } from "./skills/keyword-index.js";
export type { SkillDataDependencies } from "./skills/skill-data.js";
export {
  describeRecordFields,
  recordSchemaFor,
  SkillDataService,
  skillDataToolDefinitions,
  skillDataTools,
} from "./skills/skill-data.js";
export type { SkillMatcherOptions } from "./skills/skill-matcher.js";
export { createSkillMatcher, deriveRecordFilter, looksActionable } from "./skills/skill-matcher.js";
export type { ProposalDecisionDependencies, SkillProposerOptions } from "./skills/skill-proposer.js";
export {
  acceptProposal,
  answersNo,
  answersYes,
  createSkillProposer,
  dismissProposal,
  extractJson,
  renderProposal,
  toSnakeName,
} from "./skills/skill-proposer.js";
export type {
  SkillValidationCheck,
  SkillValidationContext,
  SkillValidationIssue,
  SkillValidationResult,
} from "./skills/skill-validation.js";
export {
  assertValidSkill,
  injectionReasons,
  validateSkill,
  withoutTakenTriggers,
} from "./skills/skill-validation.js";
// Traces and evolution: what turns did, feedback, skills drafted from repeated requests
export type { KiloTraces, TraceOptions, TraceQuery } from "./traces/trace-service.js";
export type {
  EvolutionReplay,
  EvolutionReplayExample,
  EvolvedPattern,
  EvolvedPatternOutcome,
  EvolveInput,
  EvolveResult,
  ReplayPass,
} from "./skills/skill-evolution.js";
export { EvolveInputSchema } from "./skills/skill-evolution.js";
export type { DetectedPattern, PatternInput, PatternOptions } from "./skills/trace-patterns.js";
export { contentTerms, detectPatterns } from "./skills/trace-patterns.js";
// Auto-learning: research an API's docs, propose a tool and skills
export type { ApiAnalysis, DocAnalysisInput, DocAnalyzer } from "./research/doc-analyzer.js";
export {
  AnalyzedEndpointSchema,
  AnalyzedSkillSchema,
  ApiAnalysisSchema,
  createDocAnalyzer,
} from "./research/doc-analyzer.js";
export type { LearningIntent } from "./research/learning-detector.js";
export { clarifyingQuestion, detectLearningIntent } from "./research/learning-detector.js";
export type {
  LearningOptions,
  LearningResearchInput,
  LearningServiceDependencies,
  LearningSession,
  LearningSettings,
  LearningStartResult,
} from "./research/learning-service.js";
export { LearningService } from "./research/learning-service.js";
export type { PageReader, PageReaderOptions, ReadPage } from "./research/page-reader.js";
export { createPageReader } from "./research/page-reader.js";
export type { IntegrationPlanInput } from "./research/proposal-builder.js";
export { buildIntegrationPlan, renderIntegrationPlan } from "./research/proposal-builder.js";
export type {
  ImportedSkillMarkdown,
  SkillAccessOptions,
  SkillChangeOptions,
  SkillMarkdownSource,
  SkillServiceDependencies,
} from "./skills/skill-service.js";
export { SKILL_MARKDOWN_MAX_CHARS, SkillService, storageOwner } from "./skills/skill-service.js";
export { canonicalSkillText, skillDiff, skillSnapshot, skillVersionDiff } from "./skills/skill-versions.js";
// Scopes, teams and promotion requests
export type { EffectiveSkill, SkillRef } from "./skills/effective-skills.js";
export { resolveEffectiveSkills } from "./skills/effective-skills.js";
export type { ScopeAccessDependencies } from "./skills/scope-access.js";
export { describeScope, ScopeAccess } from "./skills/scope-access.js";
export type { KiloSkills, KiloSkillVolume } from "./skills/skill-api.js";
export type { SkillVolumeSyncReport } from "./skills/skill-volume-link.js";
export { createSkillApi } from "./skills/skill-api.js";
export type {
  ApprovedSkillPromotion,
  KiloSkillPromotions,
  SkillPromotionApproval,
  SkillPromotionDependencies,
  SkillPromotionListOptions,
  SkillPromotionRejection,
  SkillPromotionRequestInput,
} from "./skills/skill-promotions.js";
export { createSkillPromotionApi } from "./skills/skill-promotions.js";
export type { KiloTeams, TeamOptions, TeamServiceDependencies } from "./teams/team-service.js";
export { createTeamApi, withoutTeam } from "./teams/team-service.js";
export * from "./skills/markdown/index.js";
// Skill volumes: scopes kept as folders of SKILL.md files (kilo/volumes/git), and importing what people change there
export {
  isSkillFolderName,
  resourcePathProblem,
  SKILL_VOLUME_FILE,
  SKILL_VOLUME_LIMITS,
  SkillFolderNameSchema,
  SkillVolumeChangeOptionsSchema,
  SkillVolumeHistoryOptionsSchema,
  SkillVolumeIdentitySchema,
  SkillVolumeReadOptionsSchema,
  SkillVolumeResourcePathSchema,
  SkillVolumeVersionSchema,
  SkillVolumeWriteInputSchema,
  skillVolumeScopePath,
} from "./skills/skill-volume-layout.js";
export type {
  SkillVolumeActionBase,
  SkillVolumeCreateAction,
  SkillVolumeDeleteAction,
  SkillVolumeImportAction,
  SkillVolumeImportOptions,
  SkillVolumeImportPlan,
  SkillVolumeImportProblem,
  SkillVolumeStoredSkill,
  SkillVolumeSyncOptions,
  SkillVolumeSyncResult,
  SkillVolumeUpdateAction,
} from "./skills/skill-volume-sync.js";
export { planSkillVolumeImport, syncSkillVolume } from "./skills/skill-volume-sync.js";
