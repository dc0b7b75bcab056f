import type { Bot } from "../domain/bot.js";
import type { IntegrationPlan, Proposal } from "../domain/proposal.js";
import type { Skill } from "../domain/skill.js";
import { type CreateToolInput, type RedactedTool, ToolSecretSchema } from "../domain/tool.js";
import { KiloError } from "../errors.js";
import type { KiloEvents, LearningProgressEvent, LearningStage } from "../events.js";
import type { Clock, IdGenerator } from "../ports/clock.js";
import type { Learner, LearnerReply } from "../ports/learner.js";
import type { Logger } from "../ports/logger.js";
import type { SearchProvider } from "../ports/search-provider.js";
import type { ProposerInput } from "../ports/skill-proposer.js";
import type { Storage } from "../ports/storage.js";
import { parseInput } from "../runtime/validate.js";
import { answersNo, answersYes } from "../skills/skill-proposer.js";
import type { SkillService } from "../skills/skill-service.js";
import { assertValidSkill } from "../skills/skill-validation.js";
import type { HttpExecutor, HttpExecutorOptions } from "../tools/http-executor.js";
import type { DocAnalyzer } from "./doc-analyzer.js";
import { clarifyingQuestion, detectLearningIntent } from "./learning-detector.js";
import type { PageReader, ReadPage } from "./page-reader.js";
import { buildIntegrationPlan, renderIntegrationPlan } from "./proposal-builder.js";

/** An integration proposal from auto-learning: a proposal with its plan. */
export type LearningSession = Proposal & { integration: IntegrationPlan };

/** What `kilo.learning.start` returns: a stored proposal, or a question when the topic is too vague. */
export type LearningStartResult =
  | { status: "proposed"; session: LearningSession; reply: string }
  | { status: "needs-clarification"; question: string };

/** Settings of auto-learning (`createKilo({ learning })`). */
export interface LearningSettings {
  /** Search results asked for. Default 5. */
  maxResults?: number | undefined;
  /** Result pages read at most. Default 3. */
  maxPages?: number | undefined;
  /** Lowest detector confidence (0.6–0.95) at which a chat message starts research. Default 0.7. */
  minConfidence?: number | undefined;
}

/** Options of auto-learning (`createKilo({ learning })`). */
export interface LearningOptions extends LearningSettings {
  /**
   * The HTTP executor that reads documentation pages, or options for it.
   * Default: the `executor` option's settings (resolver, CA, test-only
   * allowlist) with `maxBytes` 1 MiB and `timeoutMs` 10 000; a larger page
   * is skipped, never loaded whole.
   */
  executor?: HttpExecutor | HttpExecutorOptions | undefined;
  /** Most characters of readable text kept per page (cut with a note). Default 20 000. */
  maxPageChars?: number | undefined;
  /** Replace the doc analyzer (default: one `doc_extraction` model call). */
  analyzer?: DocAnalyzer | undefined;
}

/** What {@link LearningService} needs. */
export interface LearningServiceDependencies extends LearningSettings {
  storage: Storage;
  clock: Clock;
  ids: IdGenerator;
  logger: Logger;
  /** Publishes `learning-progress` events as a session moves through its stages; must not throw. */
  emit: <E extends keyof KiloEvents>(name: E, payload: Parameters<KiloEvents[E]>[0]) => void;
  skills: SkillService;
  /** Web search; without it, chat messages never start research and `start` fails with `CONFIGURATION_INVALID`. */
  search: SearchProvider | undefined;
  reader: PageReader;
  analyzer: DocAnalyzer;
  /** Registers a tool, encrypting its secret (kilo's `tools.create`). */
  createTool(botId: string, input: CreateToolInput): Promise<RedactedTool>;
  /** Removes a tool (kilo's `tools.delete`), to undo a half-done creation. */
  deleteTool(botId: string, toolId: string): Promise<void>;
}

/** Input of {@link LearningService.research}. */
export interface LearningResearchInput {
  bot: Bot;
  userId: string;
  conversationId: string | null;
  topic: string;
  sourceMessage: string;
  signal?: AbortSignal | undefined;
}

// A pasted credential: a vendor-prefixed key, a long random-looking token, or "my key is ...".
const SECRET_SHAPES = [
  /\b(?:sk|pk|rk|whsec|xox[abprs]|ghp|gho|github_pat|glpat|AKIA|AIza|key|token|secret|api)[-_][A-Za-z0-9_-]{10,}/,
  /\b(?=[A-Za-z0-9_-]*\d)(?=[A-Za-z0-9_-]*[A-Za-z])[A-Za-z0-9_-]{32,}\b/,
  /\b[A-Za-z]+_(?:live|test|prod|sandbox)_[A-Za-z0-9]{8,}/,
  // A lone token of letters and digits: what a pasted key looks like.
  /^(?=\S*\d)(?=\S*[A-Za-z])[A-Za-z0-9_\-.:+/=]{16,}$/,
  /\b(?:api[\s_-]?key|token|secret|password|credential)s?\s*(?:is|=|:)\s*\S{8,}/i,
];

function looksLikeSecret(message: string): boolean {
  return SECRET_SHAPES.some((shape) => shape.test(message));
}

function isSession(proposal: Proposal | null): proposal is LearningSession {
  return proposal?.integration !== undefined;
}

/**
 * Auto-learning: researches an API's documentation (search → read →
 * analyse), proposes a tool and skills, and creates them once the user
 * approved and supplied the credential through the API. Also the default
 * {@link Learner} behind chat. Sessions are integration proposals, stored
 * with the proposals repository.
 */
export class LearningService implements Learner {
  constructor(private readonly deps: LearningServiceDependencies) {}

  private progress(
    base: Omit<LearningProgressEvent, "stage" | "message" | "url">,
    stage: LearningStage,
    message: string,
    url?: string,
  ): void {
    this.deps.emit("learning-progress", { ...base, stage, message, ...(url === undefined ? {} : { url }) });
  }

  /** Researches `topic` and stores the integration proposal; see `kilo.learning.start`. */
  async research(input: LearningResearchInput): Promise<LearningSession> {
    const { search } = this.deps;
    if (!search) {
      throw new KiloError(
        "CONFIGURATION_INVALID",
        "Auto-learning needs web search: pass `search` to createKilo, e.g. braveSearch() from 'kilo/search/brave'",
      );
    }
    const base = {
      sessionId: this.deps.ids.next("prop"),
      botId: input.bot.id,
      userId: input.userId,
      conversationId: input.conversationId,
      topic: input.topic,
    };
    try {
      this.progress(base, "searching", `Searching the web for ${input.topic} API documentation`);
      const results = await search.search(`${input.topic} API documentation`, {
        count: this.deps.maxResults ?? 5,
        signal: input.signal,
      });
      const urls = [...new Set(results.map((result) => result.url))].slice(0, this.deps.maxPages ?? 3);
      if (urls.length === 0) {
        throw new KiloError("RESEARCH_FAILED", `The web search found nothing for ${input.topic}`);
      }
      const pages: ReadPage[] = [];
      for (const [index, url] of urls.entries()) {
        this.progress(base, "reading", `Reading ${url} (${index + 1} of ${urls.length})`, url);
        try {
          const page = await this.deps.reader.read(url, { signal: input.signal });
          if (page.text.length > 0) pages.push(page);
        } catch (error) {
          if (KiloError.is(error, "ABORTED")) throw error;
          const reason = error instanceof Error ? error.message : String(error);
          this.deps.logger.warn(
            { botId: input.bot.id, url, reason },
            "learning: a result page could not be read",
          );
          this.progress(base, "reading", `Skipped ${url}: ${reason}`, url);
        }
      }
      if (pages.length === 0) {
        throw new KiloError("RESEARCH_FAILED", `None of the pages found for ${input.topic} could be read`);
      }
      this.progress(
        base,
        "analysing",
        `Analysing ${pages.length} page${pages.length === 1 ? "" : "s"} of documentation`,
      );
      const analysis = await this.deps.analyzer.analyze({
        topic: input.topic,
        pages,
        botId: input.bot.id,
        userId: input.userId,
        conversationId: input.conversationId,
        signal: input.signal,
      });
      this.progress(base, "proposing", `Drafting a tool and skills for ${analysis.name}`);
      const integration = buildIntegrationPlan({
        topic: input.topic,
        sources: pages.map((page) => page.url),
        analysis,
        existing: await this.validationContext(input.bot),
      });
      const proposal = await this.deps.storage.proposals.create({
        id: base.sessionId,
        botId: input.bot.id,
        userId: input.userId,
        conversationId: input.conversationId,
        name: analysis.name,
        description: integration.tool.description.slice(0, 1024),
        triggers: [...new Set(integration.skills.flatMap((skill) => skill.triggers))].slice(0, 50),
        dataFields: [],
        clarifyingQuestions: [],
        sourceMessage: input.sourceMessage.slice(0, 100_000),
        status: "pending",
        skillId: null,
        createdAt: this.deps.clock.now(),
        resolvedAt: null,
        integration,
      });
      this.progress(
        base,
        "proposed",
        `Proposed the ${integration.tool.name} tool and ${integration.skills.length} skill(s)`,
      );
      return proposal as LearningSession;
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.progress(base, "failed", `Could not learn ${input.topic}: ${reason}`);
      throw error;
    }
  }

  /** `kilo.learning.start`: researches a topic outside a conversation. */
  async start(bot: Bot, userId: string, topic: string, signal?: AbortSignal): Promise<LearningStartResult> {
    const intent = detectLearningIntent(`learn how to use ${topic}`);
    if (!intent?.specific) {
      return {
        status: "needs-clarification",
        question: clarifyingQuestion(intent ?? { topic, confidence: 0.6, specific: false, rule: "api" }),
      };
    }
    const session = await this.research({
      bot,
      userId,
      conversationId: null,
      topic,
      sourceMessage: topic,
      signal,
    });
    return { status: "proposed", session, reply: renderIntegrationPlan(session.name, session.integration) };
  }

  /** The session with this id, or `NOT_FOUND` (also for a plain skill proposal). */
  async get(botId: string, sessionId: string): Promise<LearningSession> {
    const proposal = await this.deps.storage.proposals.get(botId, sessionId);
    if (!isSession(proposal)) {
      throw new KiloError("NOT_FOUND", `Bot '${botId}' has no learning session '${sessionId}'`);
    }
    return proposal;
  }

  /** The bot's sessions, newest first. */
  async list(botId: string, limit: number): Promise<LearningSession[]> {
    const proposals = await this.deps.storage.proposals.listByBot(botId, { limit: Math.min(500, limit * 4) });
    return proposals.filter(isSession).slice(0, limit);
  }

  /**
   * Approves a proposed session: with auth `none` the tool and skills are
   * created at once; otherwise the session waits for `setCredential`.
   */
  async approve(bot: Bot, sessionId: string): Promise<{ session: LearningSession; reply: string }> {
    const session = await this.get(bot.id, sessionId);
    if (session.status !== "pending") {
      throw new KiloError(
        "CONFLICT",
        `Learning session '${session.id}' is already ${session.integration.stage}`,
      );
    }
    // Checked now too: a skill or tool of the same name may have appeared since the proposal.
    await this.checkPlan(bot, session.integration);
    const accepted: LearningSession = {
      ...session,
      status: "accepted",
      resolvedAt: this.deps.clock.now(),
      integration: { ...session.integration, stage: "awaiting-credential" },
    };
    if (session.integration.tool.auth.type === "none") return this.carryOut(bot, accepted, undefined);
    await this.save(accepted);
    this.progress(
      this.eventBase(accepted),
      "awaiting-credential",
      `Waiting for the ${accepted.integration.tool.name} credential`,
    );
    return {
      session: accepted,
      reply:
        `Great. One last step: add your ${session.name} credential through the app (the credential API, ` +
        `kilo.learning.setCredential with session ${session.id}) — please don't paste it here, chat messages are stored. ` +
        "I'll set up the tool and skills as soon as it arrives.",
    };
  }

  /** Declines a proposed session; nothing is created. */
  async decline(botId: string, sessionId: string): Promise<{ session: LearningSession; reply: string }> {
    const session = await this.get(botId, sessionId);
    if (session.status !== "pending") {
      throw new KiloError(
        "CONFLICT",
        `Learning session '${session.id}' is already ${session.integration.stage}`,
      );
    }
    const declined: LearningSession = {
      ...session,
      status: "dismissed",
      resolvedAt: this.deps.clock.now(),
      integration: { ...session.integration, stage: "declined" },
    };
    await this.save(declined);
    this.progress(this.eventBase(declined), "declined", `${session.name} will not be set up`);
    return { session: declined, reply: `No problem, I won't set up ${session.name}.` };
  }

  /** Stores the credential with a new tool and creates the session's skills. */
  async setCredential(bot: Bot, sessionId: string, secret: string): Promise<LearningSession> {
    const plaintext = parseInput(ToolSecretSchema, secret, "credential");
    const session = await this.get(bot.id, sessionId);
    if (session.integration.stage !== "awaiting-credential") {
      throw new KiloError(
        "CONFLICT",
        session.integration.stage === "proposed"
          ? `Learning session '${session.id}' is not approved yet; approve it first`
          : `Learning session '${session.id}' is already ${session.integration.stage}`,
      );
    }
    return (await this.carryOut(bot, session, plaintext)).session;
  }

  async respond(input: ProposerInput): Promise<LearnerReply | null> {
    const message = input.message.trim();
    const yes = answersYes(message);
    const no = !yes && answersNo(message);
    const secret = !yes && !no && looksLikeSecret(message);
    const intent = yes || no || secret ? null : detectLearningIntent(message);
    if (!yes && !no && !secret && !intent) return null;

    if (yes || no || secret) {
      const open = await this.openSession(input);
      if (!open) return null;
      if (secret) {
        return {
          reply:
            "I won't use a key sent in chat: chat messages are stored, so it is not safe here. " +
            `Please add the ${open.name} credential through the app (the credential API), and consider rotating the key you pasted.`,
          proposal: open,
        };
      }
      if (open.status !== "pending") return null;
      const outcome = no
        ? await this.decline(input.bot.id, open.id)
        : await this.approveInChat(input.bot, open);
      return { reply: outcome.reply, proposal: outcome.session };
    }

    // Without web search, learning requests are ordinary messages.
    if (!intent || !this.deps.search) return null;
    if (!intent.specific) return { reply: clarifyingQuestion(intent), proposal: null };
    if (intent.confidence < (this.deps.minConfidence ?? 0.7)) return null;
    try {
      const session = await this.research({
        bot: input.bot,
        userId: input.userId,
        conversationId: input.conversationId,
        topic: intent.topic,
        sourceMessage: input.message,
        signal: input.signal,
      });
      return { reply: renderIntegrationPlan(session.name, session.integration), proposal: session };
    } catch (error) {
      if (!KiloError.is(error) || error.code === "ABORTED" || error.code === "INTERNAL") throw error;
      return { reply: `I tried to learn ${intent.topic}, but couldn't: ${error.message}`, proposal: null };
    }
  }

  private async approveInChat(bot: Bot, session: LearningSession) {
    try {
      return await this.approve(bot, session.id);
    } catch (error) {
      if (!KiloError.is(error, "VALIDATION_FAILED") && !KiloError.is(error, "CONFLICT")) throw error;
      return { session, reply: `I can't set up ${session.name} as proposed: ${error.message}` };
    }
  }

  /** The conversation's integration proposal still open: pending, or waiting for its credential. */
  private async openSession(input: ProposerInput): Promise<LearningSession | null> {
    const recent = await this.deps.storage.proposals.listByBot(input.bot.id, { limit: 20 });
    return (
      recent.find(
        (p): p is LearningSession =>
          isSession(p) &&
          p.conversationId === input.conversationId &&
          p.userId === input.userId &&
          (p.integration.stage === "proposed" || p.integration.stage === "awaiting-credential"),
      ) ?? null
    );
  }

  private eventBase(session: LearningSession) {
    return {
      sessionId: session.id,
      botId: session.botId,
      userId: session.userId,
      conversationId: session.conversationId,
      topic: session.integration.topic,
    };
  }

  private async validationContext(bot: Bot) {
    const [skills, tools] = await Promise.all([
      this.deps.skills.list(bot.id),
      this.deps.storage.tools.listByBot(bot.id),
    ]);
    return { skills, tools: tools.map((tool) => tool.name), soul: bot.soul };
  }

  /** Runs every skill of the plan through the validation pipeline; throws `VALIDATION_FAILED` with the reasons. */
  private async checkPlan(bot: Bot, plan: IntegrationPlan): Promise<void> {
    const context = await this.validationContext(bot);
    if (context.tools.includes(plan.tool.name)) {
      throw new KiloError("CONFLICT", `The bot already has a tool named "${plan.tool.name}"`);
    }
    const created: Array<Pick<Skill, "id" | "name" | "triggers">> = [...context.skills];
    for (const [index, skill] of plan.skills.entries()) {
      assertValidSkill(
        { ...skill, requiredIntegrations: [plan.tool.name] },
        { ...context, skills: created, tools: [...context.tools, plan.tool.name] },
      );
      created.push({ id: `planned-${index}`, name: skill.name, triggers: skill.triggers });
    }
  }

  /** Creates the tool and the skills, undoing what was created when a step fails. */
  private async carryOut(
    bot: Bot,
    session: LearningSession,
    secret: string | undefined,
  ): Promise<{ session: LearningSession; reply: string }> {
    const plan = session.integration;
    await this.checkPlan(bot, plan);
    const tool = await this.deps.createTool(bot.id, {
      ...plan.tool,
      ...(secret === undefined ? {} : { secret }),
    });
    const skills: Skill[] = [];
    try {
      for (const skill of plan.skills) {
        skills.push(await this.deps.skills.create(bot.id, { ...skill, requiredIntegrations: [tool.name] }));
      }
    } catch (error) {
      for (const skill of skills) await this.deps.skills.delete(bot.id, skill.id).catch(() => undefined);
      await this.deps.deleteTool(bot.id, tool.id).catch(() => undefined);
      throw error;
    }
    const done: LearningSession = {
      ...session,
      status: "accepted",
      skillId: skills[0]?.id ?? null,
      resolvedAt: session.resolvedAt ?? this.deps.clock.now(),
      integration: {
        ...plan,
        stage: "completed",
        toolId: tool.id,
        skillIds: skills.map((skill) => skill.id),
      },
    };
    await this.save(done);
    this.progress(
      this.eventBase(done),
      "created",
      `Set up the ${tool.name} tool and ${skills.length} skill(s)`,
    );
    return {
      session: done,
      reply: `Done! ${session.name} is set up${skills.length > 0 ? `: ${skills.map((skill) => skill.name).join(", ")}` : ""}.`,
    };
  }

  private async save(session: LearningSession): Promise<void> {
    const saved = await this.deps.storage.proposals.update(session);
    if (!saved)
      throw new KiloError("NOT_FOUND", `Bot '${session.botId}' has no learning session '${session.id}'`);
  }
}
