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
export {
  askConversationIdFor,
  createWorkflowRegistry,
  executeWorkflow,
  MESSAGE_WORKFLOW,
  type WorkflowContext,
  type WorkflowExecution,
  type WorkflowHandler,
  type WorkflowRegistry,
  type WorkflowStepInfo,
  type WorkflowTurnOptions,
  type WorkflowTurnResult,
} from "./workflow.js";
