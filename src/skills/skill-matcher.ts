import { z } from "zod";
import { type Skill, type TaskType, TaskTypeSchema } from "../domain/skill.js";
import { KiloError, toKiloError } from "../errors.js";
import type { LlmGateway } from "../ports/llm-gateway.js";
import type {
  ContextRequirements,
  MatchCandidate,
  MatchInput,
  SkillCatalog,
  SkillMatch,
  SkillMatcher,
} from "../ports/skill-matcher.js";
import type { SkillRecordFilter } from "../ports/storage.js";
import {
  buildKeywordIndex,
  DEFAULT_FAST_PATH_THRESHOLDS,
  type FastPathThresholds,
  isStopword,
  type KeywordCandidate,
  type KeywordIndex,
  type KeywordSearchResult,
  tokenize,
} from "./keyword-index.js";

/** Options of {@link createSkillMatcher}. */
export interface SkillMatcherOptions {
  /** The gateway the LLM fallback calls (task type `simple_qa`, purpose `classify`). */
  gateway: LlmGateway;
  /** Ask the LLM when the fast path is not confident (default `true`). */
  llmFallback?: boolean | undefined;
  /**
   * When a fast-path decision is confident. Defaults to
   * {@link DEFAULT_FAST_PATH_THRESHOLDS} (tuned on CLINC150 val).
   */
  thresholds?: Partial<FastPathThresholds> | undefined;
  /** The LLM's pick is used only at or above this confidence (0–1, default 0.5). */
  minLlmConfidence?: number | undefined;
  /** Skills listed to the LLM at most, best fast-path candidates first (default 20). */
  maxLlmSkills?: number | undefined;
  /** Built indexes kept, least recently used evicted first (default 16). */
  indexCacheSize?: number | undefined;
  /**
   * History depth per task type of the turn (0–200). Defaults: `simple_qa` 6,
   * `doc_extraction` 6, `complex_reasoning` 12, every other task type 10.
   */
  historyDepth?: Partial<Record<TaskType, number>> | undefined;
  /** Memories to retrieve at most (default 8). */
  memoryLimit?: number | undefined;
  /** Records of the matched skill to load at most (default 20). */
  skillDataLimit?: number | undefined;
}

const DEFAULT_HISTORY_DEPTH: Record<TaskType, number> = {
  simple_qa: 6,
  skill_execution: 10,
  skill_generation: 10,
  complex_reasoning: 12,
  data_analysis: 10,
  doc_extraction: 6,
};

const probability = z.number().min(0).max(1);
const count = (max: number) => z.number().int().min(0).max(max);

const OptionsSchema = z.object({
  gateway: z.custom<LlmGateway>(
    (value) =>
      typeof value === "object" && value !== null && typeof Reflect.get(value, "complete") === "function",
    "must be an LlmGateway (an object with `complete`)",
  ),
  llmFallback: z.boolean().optional(),
  thresholds: z.object({ minScore: probability.optional(), minMargin: probability.optional() }).optional(),
  minLlmConfidence: probability.optional(),
  maxLlmSkills: z.number().int().min(1).max(500).optional(),
  indexCacheSize: z.number().int().min(1).max(10_000).optional(),
  historyDepth: z.partialRecord(TaskTypeSchema, count(200)).optional(),
  memoryLimit: count(1000).optional(),
  skillDataLimit: count(1000).optional(),
});

/**
 * Creates the default two-pass {@link SkillMatcher}.
 *
 * 1. **Fast path**: a keyword index over the catalog's triggers and examples
 *    (see `buildKeywordIndex`), built once per `catalog.key` and kept in a
 *    bounded LRU. A confident best candidate decides the turn (`pass: "fast"`).
 * 2. **LLM fallback**: otherwise the gateway classifies the message against
 *    the catalog (best fast-path candidates listed first) and must answer with
 *    JSON; a reply that cannot be parsed, or names an unknown skill, means no
 *    skill (`pass: "llm"`). Errors of the gateway itself propagate.
 *
 * An empty catalog never calls the LLM (`pass: "none"`).
 *
 * `confidence` is the fast path's calibrated confidence for a fast decision
 * (one minus it when the fast path declines and the fallback is off), the
 * model's own for an LLM decision (0 when its reply was unusable), and 1 for
 * an empty catalog. `actionable` is true for a matched skill, the model's
 * flag after an LLM pass, and {@link looksActionable} otherwise.
 *
 * Building an index is synchronous and linear in the catalog's text (about
 * half a second for 10,000 skills with 45,000 examples); it happens on the
 * first message after a catalog key changes.
 *
 * @throws KiloError `CONFIGURATION_INVALID` when an option is malformed.
 *
 * @example
 * ```ts
 * const matcher = createSkillMatcher({ gateway });
 * const match = await matcher.match({ message, catalog, bot, userId, conversationId });
 * if (match.skill) console.log(match.skill.name, match.reason);
 * ```
 */
export function createSkillMatcher(options: SkillMatcherOptions): SkillMatcher {
  const parsed = OptionsSchema.safeParse(options);
  if (!parsed.success) {
    throw new KiloError(
      "CONFIGURATION_INVALID",
      `createSkillMatcher: invalid options: ${z.prettifyError(parsed.error)}`,
      { details: parsed.error.issues },
    );
  }
  const gateway = options.gateway;
  const llmFallback = options.llmFallback ?? true;
  const thresholds: FastPathThresholds = {
    minScore: options.thresholds?.minScore ?? DEFAULT_FAST_PATH_THRESHOLDS.minScore,
    minMargin: options.thresholds?.minMargin ?? DEFAULT_FAST_PATH_THRESHOLDS.minMargin,
  };
  const minLlmConfidence = options.minLlmConfidence ?? 0.5;
  const maxLlmSkills = options.maxLlmSkills ?? 20;
  const historyDepth: Record<TaskType, number> = { ...DEFAULT_HISTORY_DEPTH };
  for (const [taskType, depth] of Object.entries(options.historyDepth ?? {})) {
    if (depth !== undefined) historyDepth[taskType as TaskType] = depth;
  }
  const memoryLimit = options.memoryLimit ?? 8;
  const skillDataLimit = options.skillDataLimit ?? 20;
  const indexes = new LruCache<KeywordIndex<Skill>>(options.indexCacheSize ?? 16);

  function indexFor(catalog: SkillCatalog): KeywordIndex<Skill> {
    const cached = indexes.get(catalog.key);
    if (cached !== undefined) return cached;
    const index = buildKeywordIndex(catalog.skills, { thresholds });
    indexes.set(catalog.key, index);
    return index;
  }

  function context(skill: Skill | null, taskType: TaskType, message: string): ContextRequirements {
    const query = message.trim();
    return {
      historyDepth: historyDepth[taskType],
      memoryQuery: query.length > 0 ? query.slice(0, 2000) : null,
      memoryLimit,
      skillData:
        skill !== null && skill.dataFields.length > 0
          ? { skillId: skill.id, filter: deriveRecordFilter(skill, message), limit: skillDataLimit }
          : null,
    };
  }

  function decide(
    input: MatchInput,
    fields: Pick<SkillMatch, "skill" | "confidence" | "pass" | "reason" | "actionable" | "candidates">,
  ): SkillMatch {
    const taskType = fields.skill?.taskType ?? "simple_qa";
    return { ...fields, taskType, context: context(fields.skill, taskType, input.message) };
  }

  return {
    async match(input: MatchInput): Promise<SkillMatch> {
      const { message, catalog } = input;
      if (catalog.skills.length === 0) {
        return decide(input, {
          skill: null,
          confidence: 1,
          pass: "none",
          reason: "no active skills",
          actionable: looksActionable(message),
          candidates: [],
        });
      }

      const index = indexFor(catalog);
      const fast = index.search(message, 5, thresholds);
      const candidates: MatchCandidate[] = fast.candidates.slice(0, 5).map((candidate) => ({
        skillId: candidate.skill.id,
        name: candidate.skill.name,
        score: candidate.score,
      }));
      const best = fast.candidates[0];
      if (fast.confident && best !== undefined) {
        return decide(input, {
          skill: best.skill,
          confidence: fast.confidence,
          pass: "fast",
          reason: `fast path: ${describeEvidence(best)} (score ${fixed(fast.score)}, margin ${fixed(fast.margin)})`,
          actionable: true,
          candidates,
        });
      }

      const unsure = describeUnsure(fast, thresholds);
      if (!llmFallback) {
        return decide(input, {
          skill: null,
          confidence: round(1 - fast.confidence),
          pass: "fast",
          reason: `${unsure}; llm fallback disabled`,
          actionable: looksActionable(message),
          candidates,
        });
      }

      // The LLM sees more candidates than the result keeps; searching again costs far less than the call.
      const ranked =
        maxLlmSkills > 5 && catalog.skills.length > 5
          ? index.search(message, maxLlmSkills, thresholds)
          : fast;
      const verdict = await classify(gateway, input, ranked, maxLlmSkills);
      let skill: Skill | null = null;
      let reason: string;
      if (!verdict.ok) {
        reason = `${unsure}; llm reply unusable (${verdict.error}), treated as no skill`;
      } else if (verdict.skillId === null) {
        reason = `${unsure}; llm chose no skill${suffix(verdict.reason)}`;
      } else {
        const chosen = findSkill(catalog.skills, verdict.skillId);
        if (chosen === null) {
          reason = `${unsure}; llm chose unknown skill ${JSON.stringify(clip(verdict.skillId, 80))}, treated as no skill`;
        } else if (verdict.confidence < minLlmConfidence) {
          reason = `${unsure}; llm chose "${chosen.name}" with low confidence ${fixed(verdict.confidence)} < ${fixed(minLlmConfidence)}, treated as no skill`;
        } else {
          skill = chosen;
          reason = `${unsure}; llm chose "${chosen.name}" (confidence ${fixed(verdict.confidence)})${suffix(verdict.reason)}`;
        }
      }
      return decide(input, {
        skill,
        confidence: verdict.ok ? verdict.confidence : 0,
        pass: "llm",
        reason,
        actionable: verdict.ok && verdict.actionable !== null ? verdict.actionable : looksActionable(message),
        candidates,
      });
    },
  };
}

// Imperatives and requests: "can you ...", "please ...", "remind me ...", "track ...", "add ...".
const ACTIONABLE_PATTERNS: readonly RegExp[] = [
  /\b(can|could|would|will) you\b/i,
  /\b(please|pls)\b/i,
  /\b(help me|i need you to|i want you to|i'?d like you to)\b/i,
  /\b(track|keep track|remind me|remember|manage|log|record|schedule|set up|sign me up|note down)\b/i,
  /^\s*(add|create|make|put|save|book|order|cancel|update|change|delete|remove|send|set|start|stop|plan|organi[sz]e|list|show|find|check|mark|move|write|draft|keep)\b/i,
];

/**
 * A cheap guess whether a message asks the bot to do, track or manage
 * something, for turns where no LLM pass runs.
 */
export function looksActionable(message: string): boolean {
  return ACTIONABLE_PATTERNS.some((pattern) => pattern.test(message));
}

/**
 * A filter over the matched skill's records, derived only when it is safe:
 * an `enum` field gets `equals` when exactly one of its options appears in
 * the message as whole words, and not as part of one of the skill's trigger
 * phrases (in "new order", "new" names the action, not a status).
 */
export function deriveRecordFilter(
  skill: Pick<Skill, "dataFields" | "triggers">,
  message: string,
): SkillRecordFilter {
  const tokens = tokenize(message);
  const taken = new Array<boolean>(tokens.length).fill(false);
  for (const trigger of skill.triggers) {
    const phrase = tokenize(trigger);
    for (const at of occurrences(tokens, phrase))
      for (let k = 0; k < phrase.length; k++) taken[at + k] = true;
  }
  const equals: Record<string, string> = {};
  for (const field of skill.dataFields) {
    if (field.type !== "enum" || field.options === undefined) continue;
    const found = field.options.filter((option) => {
      const phrase = tokenize(option);
      if (phrase.length === 0 || phrase.every(isStopword)) return false;
      return occurrences(tokens, phrase).some((at) => phrase.every((_, k) => !taken[at + k]));
    });
    if (found.length === 1) equals[field.name] = found[0]!;
  }
  return Object.keys(equals).length > 0 ? { equals } : {};
}

function occurrences(tokens: readonly string[], phrase: readonly string[]): number[] {
  const found: number[] = [];
  if (phrase.length === 0) return found;
  for (let at = 0; at + phrase.length <= tokens.length; at++) {
    if (phrase.every((token, k) => tokens[at + k] === token)) found.push(at);
  }
  return found;
}

function describeEvidence(candidate: KeywordCandidate<Skill>): string {
  const { evidence } = candidate;
  const name = `"${candidate.skill.name}"`;
  if (evidence.trigger !== null) return `${name} by trigger ${JSON.stringify(evidence.trigger)}`;
  if (evidence.example !== null && evidence.exampleScore >= evidence.keywordScore * 0.7) {
    return `${name} by example ${JSON.stringify(clip(evidence.example, 80))} (similarity ${fixed(evidence.exampleScore)})`;
  }
  return `${name} by keywords ${evidence.matchedTerms.join(", ") || "(none)"}`;
}

function describeUnsure(fast: KeywordSearchResult<Skill>, thresholds: FastPathThresholds): string {
  const best = fast.candidates[0];
  if (best === undefined) return "fast path not confident (no candidate)";
  const why =
    fast.score < thresholds.minScore
      ? `best ${fixed(fast.score)} < ${fixed(thresholds.minScore)}`
      : `margin ${fixed(fast.margin)} < ${fixed(thresholds.minMargin)}`;
  return `fast path not confident (${why}; best "${best.skill.name}")`;
}

// ---------------------------------------------------------------------------
// LLM fallback

type Verdict =
  | {
      ok: true;
      skillId: string | null;
      confidence: number;
      actionable: boolean | null;
      reason: string | null;
    }
  | { ok: false; error: string };

const CLASSIFIER_INSTRUCTIONS = [
  "You route one message from a user to a skill of their personal assistant.",
  "A skill handles a message only when the message clearly asks for what the skill does.",
  "Greetings, small talk, and questions the assistant can answer on its own need no skill.",
  "Set `actionable` to true when the message asks the assistant to do, track, remember, schedule or manage",
  "something, whether or not a listed skill fits.",
  "Answer with one JSON object and nothing else:",
  '{"skill": "<skill id exactly as listed, or null>", "confidence": <0 to 1>, "actionable": <true or false>, ' +
    '"reason": "<one short sentence>"}',
].join("\n");

async function classify(
  gateway: LlmGateway,
  input: MatchInput,
  fast: KeywordSearchResult<Skill>,
  maxSkills: number,
): Promise<Verdict> {
  if (isAborted(input.signal)) {
    throw new KiloError("ABORTED", "skill matching was aborted", { cause: input.signal?.reason });
  }
  const request = {
    taskType: "simple_qa" as const,
    purpose: "classify",
    system: [
      { text: CLASSIFIER_INSTRUCTIONS, cacheable: true },
      { text: catalogText(input.catalog.skills, fast, maxSkills) },
    ],
    messages: [{ role: "user" as const, content: [{ type: "text" as const, text: userText(input) }] }],
    maxTokens: 300,
    thinking: false,
    botId: input.bot.id,
    userId: input.userId,
    conversationId: input.conversationId,
    signal: input.signal,
  };
  let text: string;
  try {
    const response = await gateway.complete(request);
    text = response.content.map((block) => (block.type === "text" ? block.text : "")).join("");
  } catch (error) {
    if (!KiloError.is(error) && isAborted(input.signal)) {
      throw new KiloError("ABORTED", "skill matching was aborted", { cause: error });
    }
    throw toKiloError(error, "PROVIDER_FAILED", "skill classification failed");
  }
  return parseVerdict(text);
}

function catalogText(skills: readonly Skill[], fast: KeywordSearchResult<Skill>, maxSkills: number): string {
  const listed: Skill[] = [];
  const seen = new Set<string>();
  for (const candidate of fast.candidates) {
    if (listed.length >= maxSkills) break;
    listed.push(candidate.skill);
    seen.add(candidate.skill.id);
  }
  for (const skill of skills) {
    if (listed.length >= maxSkills) break;
    if (!seen.has(skill.id)) listed.push(skill);
  }
  const lines = listed.map((skill) => {
    const parts = [`- id: ${skill.id}`, `name: ${clip(skill.name, 100)}`];
    if (skill.description.trim().length > 0)
      parts.push(`description: ${clip(oneLine(skill.description), 240)}`);
    if (skill.triggers.length > 0)
      parts.push(`triggers: ${skill.triggers.slice(0, 5).map(oneLine).join(", ")}`);
    return parts.join(" | ");
  });
  const heading =
    listed.length < skills.length
      ? `Skills (the ${listed.length} most likely of ${skills.length}, most likely first):`
      : "Skills (most likely first):";
  return `${heading}\n${lines.join("\n")}`;
}

function userText(input: MatchInput): string {
  const recent = (input.history ?? []).slice(-4);
  const history =
    recent.length > 0
      ? `Recent conversation, oldest first:\n${recent.map((m) => `${m.role}: ${clip(oneLine(m.content), 300)}`).join("\n")}\n\n`
      : "";
  return `${history}Message to route:\n<message>\n${clip(input.message, 4000)}\n</message>`;
}

const VerdictSchema = z.object({
  skill: z.union([z.string(), z.null()]).optional(),
  confidence: z.number().optional(),
  actionable: z.boolean().optional(),
  reason: z.string().optional(),
});

/** Reads the classifier's reply: bare JSON, fenced JSON, or the first JSON object inside other text. */
function parseVerdict(text: string): Verdict {
  let sawJson = false;
  for (const candidate of jsonCandidates(text)) {
    let value: unknown;
    try {
      value = JSON.parse(candidate);
    } catch {
      continue;
    }
    sawJson = true;
    const result = VerdictSchema.safeParse(value);
    if (!result.success || result.data.skill === undefined) continue;
    const raw = result.data.skill?.trim() ?? "";
    const skillId = raw === "" || /^(null|none)$/i.test(raw) ? null : raw;
    const confidence = result.data.confidence;
    return {
      ok: true,
      skillId,
      confidence:
        confidence === undefined || !Number.isFinite(confidence) ? 0.5 : round(clamp(confidence, 0, 1)),
      actionable: result.data.actionable ?? null,
      reason: result.data.reason?.trim() ? clip(oneLine(result.data.reason), 200) : null,
    };
  }
  if (text.trim().length === 0) return { ok: false, error: "empty reply" };
  return { ok: false, error: sawJson ? "JSON without a `skill` field" : "no JSON object found" };
}

function* jsonCandidates(text: string): Generator<string> {
  for (const fence of text.matchAll(/```(?:json)?\s*([\s\S]*?)```/gi)) yield fence[1]!.trim();
  yield text.trim();
  // Every balanced {...} span, outermost first, skipping braces inside strings.
  for (let start = text.indexOf("{"); start !== -1; start = text.indexOf("{", start + 1)) {
    const end = matchingBrace(text, start);
    if (end !== -1) yield text.slice(start, end + 1);
  }
}

function matchingBrace(text: string, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const char = text[i];
    if (inString) {
      if (char === "\\") i++;
      else if (char === '"') inString = false;
    } else if (char === '"') inString = true;
    else if (char === "{") depth++;
    else if (char === "}" && --depth === 0) return i;
  }
  return -1;
}

function findSkill(skills: readonly Skill[], id: string): Skill | null {
  const exact = skills.find((skill) => skill.id === id);
  if (exact !== undefined) return exact;
  const lower = id.toLowerCase();
  return skills.find((skill) => skill.id.toLowerCase() === lower) ?? null;
}

// ---------------------------------------------------------------------------
// Helpers

/** A Map kept in recency order: a hit moves the key to the end, overflow drops the front. */
class LruCache<V> {
  private readonly entries = new Map<string, V>();

  constructor(private readonly capacity: number) {}

  get(key: string): V | undefined {
    const value = this.entries.get(key);
    if (value !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, value);
    }
    return value;
  }

  set(key: string, value: V): void {
    this.entries.delete(key);
    this.entries.set(key, value);
    while (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.entries.delete(oldest.value);
    }
  }
}

// A function, so a check after an await is not narrowed away by one before it.
function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

function suffix(reason: string | null): string {
  return reason === null ? "" : `: ${reason}`;
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

function round(value: number): number {
  return Math.round(value * 1e4) / 1e4;
}

function fixed(value: number): string {
  return String(Math.round(value * 1000) / 1000);
}
