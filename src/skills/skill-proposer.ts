import { z } from "zod";
import type { Proposal } from "../domain/proposal.js";
import { type SkillDataField, SkillDataFieldSchema } from "../domain/skill.js";
import { KiloError } from "../errors.js";
import { textOf } from "../gateway/content.js";
import type { Clock, IdGenerator } from "../ports/clock.js";
import type { LlmGateway } from "../ports/llm-gateway.js";
import type { Logger } from "../ports/logger.js";
import type { ProposalOffer, ProposalReply, ProposerInput, SkillProposer } from "../ports/skill-proposer.js";
import type { Storage } from "../ports/storage.js";
import { isStopword, tokenize } from "./keyword-index.js";
import type { SkillService } from "./skill-service.js";
import { assertValidSkill, validateSkill, withoutTakenTriggers } from "./skill-validation.js";

/** Dependencies and settings of {@link createSkillProposer}. */
export interface SkillProposerOptions {
  gateway: LlmGateway;
  storage: Storage;
  skills: SkillService;
  clock: Clock;
  ids: IdGenerator;
  logger: Logger;
  /** How long a declined proposal keeps similar ones from being offered. Default 30 days. */
  dismissalWindowMs?: number;
  /** Word overlap (0–1) at which a request counts as similar to a declined one. Default 0.5. */
  similarityThreshold?: number;
}

const ACCEPT =
  /^(?:yes|yeah|yep|yup|sure|ok(?:ay)?|please do|do it|go ahead|create it|set it up|sounds good|let'?s do it|absolutely|definitely)\b/i;
const DECLINE =
  /^(?:no|nope|nah|not now|no thanks|no thank you|don'?t|cancel|never ?mind|skip it|not needed)\b/i;

/** Whether the message says yes to a question the bot asked ("yes", "sure", "go ahead", ...). */
export function answersYes(message: string): boolean {
  return ACCEPT.test(message.trim());
}

/** Whether the message says no to a question the bot asked ("no", "not now", "cancel", ...). */
export function answersNo(message: string): boolean {
  return !answersYes(message) && DECLINE.test(message.trim());
}

const GeneratedSkillSchema = z.object({
  name: z.string().trim().min(1).max(100),
  description: z.string().trim().max(1024).default(""),
  instructions: z.string().max(4000).default(""),
  triggers: z.array(z.string().trim().min(1).max(200)).max(50).default([]),
  dataFields: z.array(z.unknown()).max(50).default([]),
  clarifyingQuestions: z.array(z.string().trim().min(1).max(500)).max(10).default([]),
});

function words(text: string): Set<string> {
  return new Set(tokenize(text).filter((token) => !isStopword(token)));
}

function overlap(a: Set<string>, b: Set<string>): number {
  if (a.size === 0 || b.size === 0) return 0;
  let shared = 0;
  for (const word of a) if (b.has(word)) shared += 1;
  return shared / Math.min(a.size, b.size);
}

/**
 * A model's name for something as snake_case (`"Order Date"` and `"orderDate"`
 * give `order_date`), at most 64 characters, starting with a letter (else
 * `prefix` and `_` go first).
 */
export function toSnakeName(name: string, prefix: string): string {
  const snake = name
    .trim()
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "");
  return /^[a-z]/.test(snake) ? snake.slice(0, 64) : `${prefix}_${snake}`.slice(0, 64);
}

const toFieldName = (name: string) => toSnakeName(name, "field");

// Models name fields in many ways; keep every field that can be made valid and drop the rest.
function cleanFields(raw: unknown[]): SkillDataField[] {
  const fields: SkillDataField[] = [];
  const seen = new Set<string>();
  for (const item of raw) {
    if (typeof item !== "object" || item === null) continue;
    const candidate = { ...(item as Record<string, unknown>) };
    if (typeof candidate.name === "string") candidate.name = toFieldName(candidate.name);
    if (candidate.type === "text") candidate.type = "string";
    if (candidate.type !== "enum") delete candidate.options;
    const parsed = SkillDataFieldSchema.safeParse(candidate);
    if (parsed.success && !seen.has(parsed.data.name)) {
      seen.add(parsed.data.name);
      fields.push(parsed.data);
    }
  }
  return fields;
}

/** The first `{` to the last `}` of a model's reply, parsed; `null` when there is none or it is not JSON. */
export function extractJson(text: string): unknown {
  const start = text.indexOf("{");
  const end = text.lastIndexOf("}");
  if (start < 0 || end <= start) return null;
  try {
    return JSON.parse(text.slice(start, end + 1));
  } catch {
    return null;
  }
}

/** The reply that presents a proposal to the user. */
export function renderProposal(proposal: Proposal): string {
  const lines = [
    `I don't have a skill for that yet, but I could set one up: **${proposal.name}**${proposal.description ? ` — ${proposal.description}` : ""}`,
  ];
  if (proposal.dataFields.length > 0) {
    lines.push(
      `It would keep track of: ${proposal.dataFields.map((field) => field.name.replaceAll("_", " ")).join(", ")}.`,
    );
  }
  if (proposal.clarifyingQuestions.length > 0) {
    lines.push(`A few questions first:\n${proposal.clarifyingQuestions.map((q) => `- ${q}`).join("\n")}`);
  }
  lines.push("Shall I create it? (yes / no)");
  return lines.join("\n\n");
}

/** What {@link acceptProposal} and {@link dismissProposal} need. */
export interface ProposalDecisionDependencies {
  storage: Storage;
  skills: SkillService;
  clock: Clock;
}

/**
 * Creates the proposed skill and marks the proposal accepted. A name already
 * taken keeps the existing skill. The skill passes the validation pipeline
 * first (see `validateSkill`); a failed check throws `VALIDATION_FAILED` with
 * its reasons, and nothing is created. An integration proposal (from
 * auto-learning) is refused with `CONFLICT`: it is decided through `kilo.learning`.
 */
export async function acceptProposal(
  deps: ProposalDecisionDependencies,
  botId: string,
  proposal: Proposal,
): Promise<ProposalReply> {
  if (proposal.status !== "pending") {
    throw new KiloError("CONFLICT", `Proposal '${proposal.id}' is already ${proposal.status}`);
  }
  if (proposal.integration) {
    throw new KiloError(
      "CONFLICT",
      `Proposal '${proposal.id}' is an integration proposal; approve it with kilo.learning.approve`,
    );
  }
  const now = deps.clock.now();
  const input = assertValidSkill(
    {
      name: proposal.name,
      description: proposal.description,
      instructions: `Help the user with: ${proposal.description || proposal.name}. Store and look up data with your tools.`,
      triggers: proposal.triggers,
      dataFields: proposal.dataFields,
    },
    // A taken name keeps the existing skill (below); triggers were checked when the proposal was made.
    { skills: [], tools: [], skip: ["name-conflict", "trigger-conflict"] },
  );
  try {
    const skill = await deps.skills.create(botId, input);
    const accepted: Proposal = { ...proposal, status: "accepted", skillId: skill.id, resolvedAt: now };
    await deps.storage.proposals.update(accepted);
    return { reply: `Done! ${skill.name} is set up. Just tell me what to track.`, proposal: accepted, skill };
  } catch (error) {
    if (!KiloError.is(error, "CONFLICT")) throw error;
    const accepted: Proposal = { ...proposal, status: "accepted", resolvedAt: now };
    await deps.storage.proposals.update(accepted);
    return {
      reply: `You already have a skill named ${proposal.name}, so I'll use that one.`,
      proposal: accepted,
      skill: null,
    };
  }
}

/** Marks the proposal dismissed: similar skills are not offered again within the dismissal window. */
export async function dismissProposal(
  deps: ProposalDecisionDependencies,
  proposal: Proposal,
): Promise<ProposalReply> {
  if (proposal.status !== "pending") {
    throw new KiloError("CONFLICT", `Proposal '${proposal.id}' is already ${proposal.status}`);
  }
  const dismissed: Proposal = { ...proposal, status: "dismissed", resolvedAt: deps.clock.now() };
  await deps.storage.proposals.update(dismissed);
  return {
    reply: `No problem, I won't set up ${proposal.name}. I won't suggest it again for a while.`,
    proposal: dismissed,
    skill: null,
  };
}

/**
 * The default skill proposer. Offers a skill (drafted by the LLM, task type
 * `skill_generation`) for an actionable request no skill handles, answers
 * "yes"/"no" to a pending proposal, and stays quiet about requests similar to
 * ones the user declined within the dismissal window.
 */
export function createSkillProposer(options: SkillProposerOptions): SkillProposer {
  const window = options.dismissalWindowMs ?? 30 * 24 * 60 * 60 * 1000;
  const threshold = options.similarityThreshold ?? 0.5;
  const { storage } = options;

  async function pendingFor(input: ProposerInput): Promise<Proposal | null> {
    const pending = await storage.proposals.listByBot(input.bot.id, { status: "pending", limit: 20 });
    return (
      pending.find(
        (p) => !p.integration && p.conversationId === input.conversationId && p.userId === input.userId,
      ) ?? null
    );
  }

  async function recentlyDeclined(input: ProposerInput, text: string): Promise<Proposal | null> {
    const since = options.clock.now().getTime() - window;
    const dismissed = await storage.proposals.listByBot(input.bot.id, { status: "dismissed", limit: 50 });
    const asked = words(text);
    return (
      dismissed.find(
        (p) =>
          !p.integration &&
          p.userId === input.userId &&
          (p.resolvedAt?.getTime() ?? 0) >= since &&
          overlap(asked, words(`${p.sourceMessage} ${p.name} ${p.triggers.join(" ")}`)) >= threshold,
      ) ?? null
    );
  }

  return {
    async respond(input: ProposerInput): Promise<ProposalReply | null> {
      const accept = answersYes(input.message);
      const decline = !accept && answersNo(input.message);
      if (!accept && !decline) return null;
      const proposal = await pendingFor(input);
      if (!proposal) return null;
      if (decline) return dismissProposal(options, proposal);
      try {
        return await acceptProposal(options, input.bot.id, proposal);
      } catch (error) {
        if (!KiloError.is(error, "VALIDATION_FAILED")) throw error;
        return { reply: `I can't create ${proposal.name}: ${error.message}`, proposal, skill: null };
      }
    },

    async consider(input): Promise<ProposalOffer | null> {
      if (input.match.skill || !input.match.actionable) return null;
      if (await recentlyDeclined(input, input.message)) return null;
      const response = await options.gateway.complete({
        taskType: "skill_generation",
        purpose: "propose-skill",
        botId: input.bot.id,
        userId: input.userId,
        conversationId: input.conversationId,
        signal: input.signal,
        system: [
          {
            text:
              "You design skills for a personal assistant. A skill has a name (2-4 words, Title Case), a one-sentence " +
              "description, instructions, trigger keywords the user would say, the data fields it stores (snake_case " +
              "names; types string, number, integer, boolean, date, datetime or enum with options) and up to 3 short " +
              "clarifying questions. Reply with JSON only: " +
              '{"name":"","description":"","instructions":"","triggers":[],"dataFields":[{"name":"","type":"string","description":"","required":false}],"clarifyingQuestions":[]}',
          },
        ],
        messages: [
          {
            role: "user",
            content: [
              {
                type: "text",
                text: `Existing skills: ${input.skills.map((s) => s.name).join(", ") || "none"}.\nThe user asked: ${input.message}`,
              },
            ],
          },
        ],
      });
      const generated = GeneratedSkillSchema.safeParse(extractJson(textOf(response.content)));
      if (!generated.success) {
        options.logger.warn(
          { botId: input.bot.id },
          "skill proposal: the model's draft was not valid JSON; no proposal made",
        );
        return null;
      }
      const draft = generated.data;
      const taken = input.skills.some((s) => s.name.toLowerCase() === draft.name.toLowerCase());
      const declined = await recentlyDeclined(input, `${draft.name} ${draft.triggers.join(" ")}`);
      const pending = await pendingFor(input);
      if (taken || declined || pending?.name.toLowerCase() === draft.name.toLowerCase()) return null;
      const dataFields = cleanFields(draft.dataFields);
      // The validation pipeline: triggers another skill uses are dropped, any other failed check drops the draft.
      const triggers = withoutTakenTriggers(draft.triggers, input.skills);
      const verdict = validateSkill(
        {
          name: draft.name,
          description: draft.description,
          instructions: draft.instructions,
          triggers,
          dataFields,
        },
        { skills: input.skills, tools: [], soul: input.bot.soul },
      );
      if (!verdict.ok) {
        options.logger.warn(
          { botId: input.bot.id, reasons: verdict.issues.map((issue) => issue.message) },
          "skill proposal: the model's draft failed validation; no proposal made",
        );
        return null;
      }
      const proposal: Proposal = {
        id: options.ids.next("prop"),
        botId: input.bot.id,
        userId: input.userId,
        conversationId: input.conversationId,
        name: draft.name,
        description: draft.description,
        triggers,
        dataFields,
        clarifyingQuestions: draft.clarifyingQuestions,
        sourceMessage: input.message,
        status: "pending",
        skillId: null,
        createdAt: options.clock.now(),
        resolvedAt: null,
      };
      const stored = await storage.proposals.create(proposal);
      return { reply: renderProposal(stored), proposal: stored };
    },
  };
}
