/**
 * Tool execution: the SSRF guard and the outbound HTTP executor.
 *
 * @module
 */

export type { ApprovalDecider, ApprovalDeciderOptions, ApprovalDecision } from "./approval-decider.js";
export { answersApproval, createApprovalDecider } from "./approval-decider.js";
export type { ApiCallOutcome, AuditContext, CallApiDependencies, ResolvedCall } from "./call-api.js";
export {
  ApiCaller,
  buildUrl,
  callApiDefinition,
  callApiTools,
  resolveCall,
  scrub,
  secretForms,
} from "./call-api.js";
export type { AesGcmVault, AesGcmVaultOptions } from "./credential-vault.js";
export { aesGcmVault } from "./credential-vault.js";
export type {
  HttpExecutor,
  HttpExecutorOptions,
  OutboundRequest,
  OutboundResponse,
} from "./http-executor.js";
export { createHttpExecutor } from "./http-executor.js";
export type { CheckOutboundUrlOptions, HostResolver, OutboundUrlCheck } from "./url-guard.js";
export { checkOutboundUrl } from "./url-guard.js";
