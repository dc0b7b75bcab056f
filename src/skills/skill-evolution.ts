import { z } from "zod";
import type { Bot } from "../domain/bot.js";
import { IdSchema } from "../domain/common.js";
import type { SkillScope } from "../domain/scope.js";
import { type CreateSkillInput, CreateSkillInputSchema, type Skill } from "../domain/skill.js";
import type { Trace } from "../domain/trace.js";
import { KiloError } from "../errors.js";
import type { EvolveProgressEvent } from "../events.js";
import { textOf } from "../gateway/content.js";
import type { Clock } from "../ports/clock.js";
import type { LlmGateway } from "../ports/llm-gateway.js";
import type { Logger } from "../ports/logger.js";
import type { PromptComposer } from "../ports/prompt-composer.js";
import type { SkillCatalog, SkillMatcher } from "../ports/skill-matcher.js";
import type { Storage } from "../ports/storage.js";
import { allPages } from "../runtime/pages.js";
import { parseInput } from "../runtime/validate.js";
import { buildKeywordIndex, type IndexableSkill, type KeywordIndex } from "./keyword-index.js";
import { extractJson } from "./skill-proposer.js";
import type { SkillService } from "./skill-service.js";
import { validateSkill, withoutTakenTriggers } from "./skill-validation.js";
import { type DetectedPattern, detectPatterns } from "./trace-patterns.js";

/** Validates what `kilo.evolve` receives. */
export const EvolveInputSchema = z
  .object({
    /**
     * One bot of `userId`: analyse its traces and draft into its own scope. Without it, every bot
     * of the user (drafts in the user's scope) or of the team (drafts in the team's scope).
     */
    botId: IdSchema.optional(),
    /** Whose traces: a user's (with `botId`, that bot's). Give `userId` or `teamId`. */
    userId: IdSchema.optional(),
    /** A team's: the traces of the team's bots; drafts go to the team's scope. */
    teamId: IdSchema.optional(),
    /** Create the skills active instead of as drafts (default false: drafts, for review). */
    autoApply: z.boolean().default(false),
    /** Fewest similar requests that make a pattern (default 3). */
    minOccurrences: z.number().int().min(2).max(10_000).default(3),
    /** Least share of a pattern's turns that went well: outcome `ok` and no thumbs-down (default 0.7). */
    minSuccessRate: z.number().min(0).max(1).default(0.7),
    /** Only traces created at or after this time (default: all the user's traces). */
    since: z.date().optional(),
    signal: z.instanceof(AbortSignal).optional(),
  })
  .strict()
  .refine((input) => (input.userId === undefined) !== (input.teamId === undefined), {
    message: "give userId or teamId (one of them)",
    path: ["userId"],
  })
  .refine((input) => input.botId === undefined || input.userId !== undefined, {
    message: "botId needs the bot's userId",
    path: ["botId"],
  });

/** Input of `kilo.evolve`. */
export type EvolveInput = z.input<typeof EvolveInputSchema>;

/** What became of one detected pattern. */
export type EvolvedPatternOutcome = "created" | "served" | "duplicate" | "low-success" | "invalid";

/** A detected pattern and what evolution did with it. */
export interface EvolvedPattern {
  /** The terms the requests share (see `detectPatterns`). */
  signature: string;
  occurrences: number;
  /** Share of the pattern's turns with outcome `ok` and no thumbs-down. */
  successRate: number;
  outcome: EvolvedPatternOutcome;
  /** Why it was skipped, or what was created. */
  reason: string;
  /** The skill created for it (`created` only). */
  skillId: string | null;
}

/**
 * Which pass of the matcher decided a replayed request: the keyword `fast`
 * path, the `llm` classifier, `none` (no active skills), or `error` (the
 * classifier call failed; the request counts as unmatched).
 */
export type ReplayPass = "fast" | "llm" | "none" | "error";

/** One replayed request: what handled it without and with the draft, and what the prompt became. */
export interface EvolutionReplayExample {
  message: string;
  /** The skill that handled it without the draft, or `null`. */
  before: string | null;
  beforePass: ReplayPass;
  /** The skill that would handle it with the draft added (the draft's name when the draft wins), or `null`. */
  after: string | null;
  afterPass: ReplayPass;
  /** Characters of the composed prompt (system and turn context, no history or memories) without and with the draft. */
  promptChars: { before: number; after: number };
  /** Whether the draft's body is in the prompt composed with it (it is when the draft handles the request). */
  draftInPrompt: boolean;
}

/**
 * What replaying a pattern's requests through the bot's matcher (fast path,
 * then the LLM classifier when the fast path is unsure) and composer, without
 * and with the draft, showed: the evidence a reviewer sees before approving.
 */
export interface EvolutionReplay {
  /** Requests replayed: the pattern's latest, at most 10. */
  messages: number;
  /** How many an existing skill handled, without the draft. */
  matchedBefore: number;
  /** How many the draft would handle, with it added to the bot's active skills. */
  matchedByDraft: number;
  /** Classifier calls the replay made (each is a `classify` call recorded in usage). */
  classifierCalls: number;
  /** Up to 5 replayed requests in detail. */
  examples: EvolutionReplayExample[];
}

/** What `kilo.evolve` returns (LLMos-Lite's `/evolve` fields, plus the details). */
export interface EvolveResult {
  tracesAnalyzed: number;
  patternsDetected: number;
  skillsCreated: number;
  /** The created skills (drafts unless `autoApply`). */
  skills: Skill[];
  /** Every detected pattern, with its outcome. */
  patterns: EvolvedPattern[];
}

/** Dependencies of {@link SkillEvolution}. */
export interface SkillEvolutionDependencies {
  storage: Storage;
  skills: SkillService;
  gateway: LlmGateway;
  /** The matcher and composer chat turns use: drafts are replayed through them. */
  matcher: SkillMatcher;
  composer: PromptComposer;
  clock: Clock;
  logger: Logger;
  emit: (event: EvolveProgressEvent) => void;
  loadBot: (botId: string) => Promise<Bot | null>;
}

/** The reply the model must give when drafting a skill. */
const DraftSchema = z.object({
  name: z.string().trim().min(1).max(64),
  description: z.string().trim().min(1).max(1024),
  triggers: z.array(z.string().trim().min(1).max(200)).min(1).max(20),
  examples: z.array(z.string().trim().min(1).max(500)).max(20).default([]),
  body: z.string().trim().min(1).max(20_000),
  category: z.string().trim().max(200).nullish(),
});

const SERVED_SHARE = 0.5;
const SAMPLE_SIZE = 10;

/**
 * The evolution engine (LLMos-Lite's evolution cron): analyses a user's
 * traces, detects repeated requests, and drafts a Markdown skill for each
 * pattern no skill serves yet. Patterns are skipped when an existing active
 * skill already serves them (`served`), when any skill of the bot (drafts
 * included) already covers them or the draft would duplicate one
 * (`duplicate`), when too few of their turns went well (`low-success`), or
 * when the model's draft does not validate (`invalid`).
 */
export class SkillEvolution {
  constructor(private readonly deps: SkillEvolutionDependencies) {}

  /** The bots whose traces a pass reads, and the scope its drafts go to. */
  private async subjects(
    input: z.output<typeof EvolveInputSchema>,
  ): Promise<{ bots: Bot[]; scope: SkillScope }> {
    const { botId, userId, teamId } = input;
    if (botId !== undefined) {
      const bot = await this.deps.loadBot(botId);
      if (!bot || bot.userId !== userId)
        throw new KiloError("NOT_FOUND", `User '${userId}' has no bot '${botId}'`);
      return { bots: [bot], scope: { kind: "bot", id: bot.id } };
    }
    const botsOf = (user: string) =>
      allPages((cursor) => this.deps.storage.bots.listByUser(user, { limit: 500, cursor }));
    if (userId !== undefined) return { bots: await botsOf(userId), scope: { kind: "user", id: userId } };
    const teams = this.deps.storage.teams;
    const team = teams ? await teams.get(teamId!) : null;
    if (!teams || !team) throw new KiloError("NOT_FOUND", `No team '${teamId}'`);
    const bots: Bot[] = [];
    for (const member of (await this.deps.storage.teamMembers?.listByTeam(team.id)) ?? []) {
      bots.push(...(await botsOf(member.userId)).filter((bot) => bot.teamId === team.id));
    }
    return { bots, scope: { kind: "team", id: team.id } };
  }

  /** Runs one evolution pass; see `kilo.evolve`. */
  async evolve(raw: EvolveInput): Promise<EvolveResult> {
    const input = parseInput(EvolveInputSchema, raw, "evolve input");
    const { bots, scope } = await this.subjects(input);
    const botId = input.botId ?? null;
    const userId = input.userId ?? null;
    const teamId = input.teamId ?? null;
    const repository = this.deps.storage.traces;
    if (!repository) {
      throw new KiloError(
        "CONFIGURATION_INVALID",
        `Storage adapter '${this.deps.storage.name}' keeps no traces, so there is nothing to evolve from`,
      );
    }
    const progress = (
      stage: EvolveProgressEvent["stage"],
      message: string,
      extra: Partial<EvolveProgressEvent> = {},
    ) => this.deps.emit({ botId, userId, teamId, stage, message, ...extra });

    progress("analysing", "Reading traces");
    const traces: Trace[] = [];
    for (const bot of bots) {
      traces.push(
        ...(await allPages((cursor) =>
          repository.list(
            { botId: bot.id, userId: userId ?? undefined, from: input.since },
            { limit: 1000, cursor },
          ),
        )),
      );
    }
    const detected = detectPatterns(traces, { minOccurrences: input.minOccurrences });
    progress(
      "detected",
      `${detected.length} pattern${detected.length === 1 ? "" : "s"} in ${traces.length} traces`,
      {
        tracesAnalyzed: traces.length,
        patternsDetected: detected.length,
      },
    );

    // What the analysed bots see (a pattern one of them serves is skipped), plus the drafts and
    // disabled skills of the target scope (an earlier pass's drafts are not drafted again).
    const seen = new Map<string, Skill>();
    for (const bot of bots) {
      for (const { skill } of await this.deps.skills.effective(bot.id)) seen.set(skill.id, skill);
    }
    for (const skill of await this.deps.skills.list(scope)) seen.set(skill.id, skill);
    let all = [...seen.values()];
    const botsById = new Map(bots.map((bot) => [bot.id, bot]));
    const tools = [
      ...new Set(
        (await Promise.all(bots.map((bot) => this.deps.storage.tools.listByBot(bot.id)))).flatMap((list) =>
          list.map((tool) => tool.name),
        ),
      ),
    ];
    const result: EvolveResult = {
      tracesAnalyzed: traces.length,
      patternsDetected: detected.length,
      skillsCreated: 0,
      skills: [],
      patterns: [],
    };

    for (const pattern of detected) {
      input.signal?.throwIfAborted();
      const members = pattern.members.map((index) => traces[index]!);
      const outcome = await this.consider(
        mostFrequentBot(members, botsById),
        scope,
        pattern,
        members,
        all,
        tools,
        input,
      );
      result.patterns.push(outcome.pattern);
      progress(outcome.skill ? "created" : "skipped", outcome.pattern.reason, {
        signature: pattern.signature,
        skillId: outcome.skill?.id ?? null,
      });
      if (outcome.skill) {
        result.skills.push(outcome.skill);
        result.skillsCreated += 1;
        all = [...all, outcome.skill];
      }
    }
    progress("done", `${result.skillsCreated} skill${result.skillsCreated === 1 ? "" : "s"} created`, {
      tracesAnalyzed: result.tracesAnalyzed,
      patternsDetected: result.patternsDetected,
      skillsCreated: result.skillsCreated,
    });
    return result;
  }

  private async consider(
    bot: Bot,
    scope: SkillScope,
    pattern: DetectedPattern,
    members: Trace[],
    skills: Skill[],
    tools: string[],
    input: z.output<typeof EvolveInputSchema>,
  ): Promise<{ pattern: EvolvedPattern; skill: Skill | null }> {
    const good = members.filter(
      (trace) => trace.outcome === "ok" && trace.feedback?.rating !== "down",
    ).length;
    const base = {
      signature: pattern.signature,
      occurrences: members.length,
      successRate: good / members.length,
      skillId: null,
    };
    const skip = (outcome: EvolvedPatternOutcome, reason: string) => ({
      pattern: { ...base, outcome, reason },
      skill: null,
    });
    if (base.successRate < input.minSuccessRate) {
      return skip(
        "low-success",
        `"${pattern.signature}": success rate ${base.successRate.toFixed(2)} is below ${input.minSuccessRate}`,
      );
    }
    const messages = members.map((trace) => trace.message);
    const active = skills.filter((skill) => skill.status === "active");
    const activeIndex = buildKeywordIndex(active);
    // Served: the skill matched at the time, or the fast path matches it now.
    const matchedThen = members.filter((trace) => trace.skillId !== null).length;
    const matchedNow = countConfident(activeIndex, messages, null);
    if (Math.max(matchedThen, matchedNow) >= SERVED_SHARE * members.length) {
      return skip("served", `"${pattern.signature}": an existing skill already serves these requests`);
    }
    // Covered by a draft or disabled skill (an earlier evolution pass, say).
    const others = skills.filter((skill) => skill.status !== "active");
    if (
      others.length > 0 &&
      countConfident(buildKeywordIndex(others), messages, null) >= SERVED_SHARE * members.length
    ) {
      return skip(
        "duplicate",
        `"${pattern.signature}": a draft or disabled skill already covers these requests`,
      );
    }

    const draft = await this.draft(bot, pattern, messages, input);
    if (!draft) return skip("invalid", `"${pattern.signature}": the model's draft was not a valid skill`);
    const nearDuplicate = this.nearDuplicate(draft, skills);
    if (nearDuplicate) {
      return skip(
        "duplicate",
        `"${pattern.signature}": the draft "${draft.name}" duplicates "${nearDuplicate.name}"`,
      );
    }
    const triggers = withoutTakenTriggers(draft.triggers, skills);
    if (triggers.length === 0) {
      return skip("duplicate", `"${pattern.signature}": every trigger of "${draft.name}" is another skill's`);
    }
    const candidate: CreateSkillInput = {
      name: draft.name,
      description: draft.description,
      triggers,
      examples: draft.examples,
      taskType: "skill_execution",
      status: input.autoApply ? "active" : "draft",
      markdown: { body: draft.body, category: draft.category ?? null },
      metadata: {
        source: "evolution",
        evolution: {
          signature: pattern.signature,
          keywords: pattern.keywords,
          occurrences: members.length,
          successRate: base.successRate,
          traceIds: members.slice(0, 50).map((trace) => trace.id),
        },
      },
    };
    const verdict = validateSkill(candidate, { skills, tools, soul: bot.soul });
    if (!verdict.ok) {
      return skip(
        "invalid",
        `"${pattern.signature}": ${verdict.issues.map((issue) => issue.message).join("; ")}`,
      );
    }
    // Replayed only once the draft is valid: the replay may call the classifier.
    const replay = await this.replay(bot, input, { ...draft, triggers }, messages.slice(-SAMPLE_SIZE));
    const evolution = { ...(verdict.skill.metadata?.evolution as Record<string, unknown>), replay };
    const skill = await this.deps.skills.create(
      scope,
      { ...verdict.skill, metadata: { ...verdict.skill.metadata, evolution } },
      {
        author: "evolution",
        reason: `Drafted from ${members.length} similar requests ("${pattern.signature}")`.slice(0, 2000),
      },
    );
    return {
      pattern: {
        ...base,
        skillId: skill.id,
        outcome: "created",
        reason: `"${pattern.signature}": ${input.autoApply ? "created" : "drafted"} "${skill.name}" (would match ${replay.matchedByDraft} of ${replay.messages})`,
      },
      skill,
    };
  }

  /** Asks the model (task type `skill_generation`) for a Markdown skill; `null` when the reply does not parse. */
  private async draft(
    bot: Bot,
    pattern: DetectedPattern,
    messages: string[],
    input: z.output<typeof EvolveInputSchema>,
  ): Promise<z.output<typeof DraftSchema> | null> {
    const sample = messages.slice(-SAMPLE_SIZE);
    const response = await this.deps.gateway.complete({
      taskType: "skill_generation",
      purpose: "evolve-skill",
      botId: bot.id,
      userId: bot.userId,
      signal: input.signal,
      system: [
        {
          text:
            "You write Markdown skills (SKILL.md) for a personal assistant from requests a user makes again and again. " +
            "A skill has a name (lowercase words joined by hyphens, at most 64 characters), a one-sentence description " +
            "saying what it does and when to use it, trigger keywords the user would say, up to 5 example requests, and a " +
            "Markdown body with the steps and best practices to follow. Reply with JSON only: " +
            '{"name":"","description":"","triggers":[],"examples":[],"body":"","category":""}',
        },
      ],
      messages: [
        {
          role: "user",
          content: [
            {
              type: "text",
              text: `Keywords: ${pattern.keywords.join(", ")}\nRequests (${messages.length} in all):\n${sample.map((message) => `- ${message.slice(0, 500)}`).join("\n")}`,
            },
          ],
        },
      ],
    });
    const parsed = DraftSchema.safeParse(extractJson(textOf(response.content)));
    if (!parsed.success) {
      this.deps.logger.warn(
        { signature: pattern.signature, issues: parsed.error.issues.length },
        "evolution draft did not parse",
      );
      return null;
    }
    return parsed.data;
  }

  /**
   * Replays requests through the bot's matcher and composer with its current
   * catalog, then with the draft added as an active skill. A classifier call
   * that fails marks its request `error` (unmatched) instead of failing the pass.
   */
  private async replay(
    bot: Bot,
    input: z.output<typeof EvolveInputSchema>,
    draft: z.output<typeof DraftSchema>,
    messages: string[],
  ): Promise<EvolutionReplay> {
    const { matcher, composer, clock } = this.deps;
    const now = clock.now();
    const before = await this.deps.skills.catalog(bot);
    const candidate: Skill = {
      ...CreateSkillInputSchema.parse({
        name: draft.name,
        description: draft.description,
        triggers: draft.triggers,
        examples: draft.examples,
        taskType: "skill_execution",
        markdown: { body: draft.body, category: draft.category ?? null },
      }),
      id: DRAFT_ID,
      botId: bot.id,
      scope: { kind: "bot", id: bot.id },
      createdAt: now,
      updatedAt: now,
    };
    const after: SkillCatalog = {
      key: `${before.key}|evolution-draft:${JSON.stringify([draft.name, draft.triggers, draft.examples, draft.description])}`,
      skills: [...before.skills, candidate],
    };
    let classifierCalls = 0;
    const decide = async (catalog: SkillCatalog, message: string) => {
      try {
        const match = await matcher.match({
          message,
          catalog,
          bot,
          userId: bot.userId,
          conversationId: null,
          signal: input.signal,
        });
        if (match.pass === "llm") classifierCalls += 1;
        return { skill: match.skill, pass: match.pass as ReplayPass };
      } catch (error) {
        input.signal?.throwIfAborted();
        classifierCalls += 1;
        this.deps.logger.warn(
          { error: error instanceof Error ? error.message : String(error) },
          "evolution replay: classifier call failed",
        );
        return { skill: null, pass: "error" as const };
      }
    };
    const promptChars = (catalog: SkillCatalog, skill: Skill | null, message: string) => {
      const prompt = composer.compose({
        bot,
        skills: catalog.skills,
        matchedSkill: skill,
        tools: [],
        memories: [],
        skillRecords: [],
        history: [],
        userMessage: message,
        channel: "api",
        now,
      });
      const text = [
        ...prompt.system.map((block) => block.text),
        ...prompt.messages.flatMap((m) =>
          m.content.map((block) => (block.type === "text" ? block.text : "")),
        ),
      ].join("\n");
      return { chars: text.length, draftInPrompt: text.includes(draft.body) };
    };
    let matchedBefore = 0;
    let matchedByDraft = 0;
    const examples: EvolutionReplayExample[] = [];
    for (const message of messages) {
      const was = await decide(before, message);
      const will = await decide(after, message);
      if (was.skill) matchedBefore += 1;
      if (will.skill?.id === DRAFT_ID) matchedByDraft += 1;
      if (examples.length < 5) {
        const without = promptChars(before, was.skill, message);
        const withDraft = promptChars(after, will.skill, message);
        examples.push({
          message: message.slice(0, 200),
          before: was.skill?.name ?? null,
          beforePass: was.pass,
          after: will.skill?.name ?? null,
          afterPass: will.pass,
          promptChars: { before: without.chars, after: withDraft.chars },
          draftInPrompt: withDraft.draftInPrompt,
        });
      }
    }
    return { messages: messages.length, matchedBefore, matchedByDraft, classifierCalls, examples };
  }

  /** An existing skill the draft repeats: the same name, or one the fast path takes the draft's own text for. */
  private nearDuplicate(draft: z.output<typeof DraftSchema>, skills: Skill[]): Skill | null {
    const fold = (text: string) =>
      text
        .trim()
        .toLowerCase()
        .replace(/[\s_-]+/g, " ");
    const same = skills.find((skill) => fold(skill.name) === fold(draft.name));
    if (same) return same;
    if (skills.length === 0) return null;
    const index = buildKeywordIndex(skills);
    const probes = [draft.description, ...draft.examples.slice(0, 5)];
    let hits = 0;
    let top: Skill | null = null;
    for (const probe of probes) {
      const found = index.search(probe, 1);
      if (found.confident) {
        hits += 1;
        top = found.candidates[0]!.skill;
      }
    }
    return hits * 2 > probes.length ? top : null;
  }
}

/** The bot most of a pattern's traces came from: its catalog and soul are what the draft is checked against. */
function mostFrequentBot(members: Trace[], bots: ReadonlyMap<string, Bot>): Bot {
  const counts = new Map<string, number>();
  for (const trace of members) counts.set(trace.botId, (counts.get(trace.botId) ?? 0) + 1);
  const [top] = [...counts].sort((a, b) => b[1] - a[1]);
  return bots.get(top![0])!;
}

/** How many messages the index matches confidently (to `only`, when given). */
function countConfident<S extends IndexableSkill>(
  index: KeywordIndex<S>,
  messages: string[],
  only: string | null,
): number {
  if (index.size === 0) return 0;
  let count = 0;
  for (const message of messages) {
    const found = index.search(message, 1);
    if (found.confident && (only === null || found.candidates[0]!.skill.id === only)) count += 1;
  }
  return count;
}

const DRAFT_ID = "evolution-draft";
