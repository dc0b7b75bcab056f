// The shapes the studio reads from kilo's HTTP API, as JSON (dates are ISO strings). Only the
// fields the studio uses; the OpenAPI document at /openapi.json has the full ones.

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface Bot {
  id: string;
  userId: string;
  name: string;
}

/** A skill's scope, when the server has scopes (`system`, `team`, `user`, `bot`). */
export interface SkillScope {
  kind: string;
  id?: string;
}

export interface DataField {
  name: string;
  type: string;
  description?: string;
  required?: boolean;
  options?: string[];
}

export interface Skill {
  id: string;
  botId: string | null;
  /** Present when the server has skill scopes. */
  scope?: SkillScope;
  name: string;
  description: string;
  instructions: string;
  triggers: string[];
  examples: string[];
  dataFields: DataField[];
  status: "active" | "draft" | "disabled";
  metadata: Record<string, unknown>;
  markdown?: { body: string; category: string | null };
  createdAt: string;
  updatedAt: string;
}

export interface SkillVersion {
  id: string;
  version: number;
  author: string;
  reason: string | null;
  diff: string;
  createdAt: string;
}

export interface Memory {
  id: string;
  key: string;
  content: string;
}

export interface TurnToolCall {
  name: string;
  input: Record<string, unknown>;
  isError: boolean;
  result: unknown;
}

export interface TurnResult {
  reply: string;
  conversationId: string;
  skill: { id: string; name: string } | null;
  match: { pass: "fast" | "llm" | "none"; confidence: number; reason: string; taskType: string };
  toolCalls: TurnToolCall[];
  memories: Memory[];
  thinking: string | null;
  usage: { calls: number; promptTokens: number; completionTokens: number; costUsd: number };
  skillsUsed: string[];
  traceId: string | null;
}

export interface ToolApproval {
  id: string;
  toolName: string;
  endpoint: string;
  input: Record<string, unknown>;
  status: "pending" | "approved" | "denied";
  conversationId: string;
  createdAt: string;
}

export interface ApprovalOutcome {
  approval: ToolApproval;
  result: { content: string; isError: boolean } | null;
  /** `null` when a workflow stopped at the call: its run resumes instead. */
  turn: TurnResult | null;
  run: Run | null;
}

export interface EvolveProgress {
  stage: string;
  message: string;
}

export interface EvolvedPattern {
  signature: string;
  occurrences: number;
  successRate: number;
  outcome: string;
  reason: string;
  skillId: string | null;
}

export interface EvolveResult {
  tracesAnalyzed: number;
  patternsDetected: number;
  skillsCreated: number;
  skills: Skill[];
  patterns: EvolvedPattern[];
}

/** `metadata.evolution` of a drafted skill: the evidence a reviewer reads. */
export interface EvolutionEvidence {
  signature?: string;
  occurrences?: number;
  successRate?: number;
  replay?: {
    messages: number;
    matchedBefore: number;
    matchedByDraft: number;
    examples: Array<{ message: string; before: string | null; after: string | null }>;
  };
}

export interface Trace {
  id: string;
  botId: string;
  conversationId: string | null;
  message: string;
  skillName: string | null;
  matchPass: "fast" | "llm" | "none" | null;
  matchConfidence: number | null;
  skillsInjected: string[];
  toolCalls: Array<{ name: string; ok: boolean }>;
  outcome: "ok" | "error";
  errorCode: string | null;
  latencyMs: number;
  model: string | null;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
  feedback: { rating: "up" | "down"; comment: string | null } | null;
  createdAt: string;
}

export interface Run {
  id: string;
  botId: string;
  conversationKey: string;
  conversationId: string | null;
  workflow: string;
  status: string;
  output: Record<string, unknown> | null;
  error: { code: string; message: string } | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  seq: number;
  resumes?: number;
}

export interface RunStep {
  index: number;
  name: string;
  kind: string;
  status: string;
  error: { code: string; message: string } | null;
  startedAt: string;
  finishedAt: string | null;
}

export interface UsageTotals {
  calls: number;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
}

export interface UsageBreakdown {
  byModel: Array<UsageTotals & { model: string }>;
  byBot: Array<UsageTotals & { botId: string | null }>;
  byDay: Array<UsageTotals & { day: string }>;
}
