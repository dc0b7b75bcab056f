import { createHash } from "node:crypto";
import type { z } from "zod";
import type { CacheLoader } from "../cache/cache-loader.js";
import type { Bot } from "../domain/bot.js";
import { type Conversation, type Message, type NewMessage, TurnInputSchema } from "../domain/conversation.js";
import type { Memory } from "../domain/memory.js";
import type { Proposal } from "../domain/proposal.js";
import { CreateSkillInputSchema, type Skill } from "../domain/skill.js";
import type { Trace } from "../domain/trace.js";
import type { UsageRecord } from "../domain/usage.js";
import { KiloError, toKiloError } from "../errors.js";
import type { KiloEvents } from "../events.js";
import { textOf, thinkingSummary } from "../gateway/content.js";
import type { MemoryService } from "../memory/memory-service.js";
import type { Clock, IdGenerator } from "../ports/clock.js";
import type { ContextLoader } from "../ports/context-loader.js";
import type { Learner } from "../ports/learner.js";
import type { GatewayRequest, GatewayResponse, LlmGateway } from "../ports/llm-gateway.js";
import type { ContentBlock, LlmMessage, ToolCallBlock, ToolResultBlock } from "../ports/llm-provider.js";
import type { Logger } from "../ports/logger.js";
import type { MemoryExtractor } from "../ports/memory.js";
import type {
  Orchestrator,
  TurnInput,
  TurnObserver,
  TurnOptions,
  TurnResult,
  TurnRunLink,
  TurnStreamEvent,
  TurnToolCall,
} from "../ports/orchestrator.js";
import type { PromptComposer } from "../ports/prompt-composer.js";
import type { ResponseProcessor } from "../ports/response-processor.js";
import type { SkillCatalog, SkillMatch, SkillMatcher } from "../ports/skill-matcher.js";
import type { SkillProposer } from "../ports/skill-proposer.js";
import type { Storage } from "../ports/storage.js";
import type { ToolContext, ToolProvider, ToolSet } from "../ports/tool-provider.js";
import { parseInput } from "../runtime/validate.js";
import type { SkillService } from "../skills/skill-service.js";
import type { ApprovalDecider } from "../tools/approval-decider.js";
import type { WorkspacePrompt } from "../workspace/workspace.js";
import { createDeltaBuffer, type DeltaBuffer } from "./delta-buffer.js";
import type { TurnMeter, TurnTally } from "./turn-meter.js";

/** The catalog of a turn that leaves skills out. */
const NO_SKILLS: SkillCatalog = { key: "none", skills: [] };

/** The catalog a turn may use: all active skills, none, or at most `max`, matched and closest first. */
function injectedSkills(catalog: SkillCatalog, match: SkillMatch, max: number | undefined): Skill[] {
  if (max === undefined || catalog.skills.length <= max) return catalog.skills;
  const rank = new Map<string, number>();
  if (match.skill) rank.set(match.skill.id, -1);
  match.candidates.forEach((candidate, index) => {
    if (!rank.has(candidate.skillId)) rank.set(candidate.skillId, index);
  });
  const order = (skill: Skill) => rank.get(skill.id) ?? Number.POSITIVE_INFINITY;
  // A stable sort keeps the catalog's own order among skills the matcher did not rank.
  return [...catalog.skills].sort((a, b) => order(a) - order(b)).slice(0, max);
}

/** Everything the default orchestrator coordinates. */
export interface OrchestratorDependencies {
  storage: Storage;
  clock: Clock;
  ids: IdGenerator;
  logger: Logger;
  /** Publishes the turn's events (`message-received`, `skill-matched`, `reply-sent`, ...); must not throw. */
  emit: <E extends keyof KiloEvents>(name: E, payload: Parameters<KiloEvents[E]>[0]) => void;
  meter: TurnMeter;
  /** Loads the bot cache-first. Default: every turn reads `storage.bots.get`. */
  cache?: CacheLoader;
  skills: SkillService;
  matcher: SkillMatcher;
  contextLoader: ContextLoader;
  composer: PromptComposer;
  gateway: LlmGateway;
  toolProviders: ToolProvider[];
  responseProcessor: ResponseProcessor;
  memoryExtractor: MemoryExtractor;
  memory: MemoryService;
  proposer: SkillProposer;
  /** Auto-learning: answers learning requests and integration proposals before the proposer does. */
  learner?: Learner | undefined;
  /**
   * Decides a pending approval of the conversation from the user's own yes or
   * no ("yes, go ahead") before anything else; the turn then goes on with the
   * decision's note in its context (`ApprovalDecider.respond`).
   */
  approvals?: Pick<ApprovalDecider, "respond"> | undefined;
  /** Most model calls in one turn's tool loop. */
  maxToolSteps: number;
  /** Extra stable rules for every prompt. */
  contextRules: () => string[];
  /** The workspace's prompt text (SYSTEM.md, APPEND_SYSTEM.md, AGENTS.md), when the host set one. */
  workspace?: (() => Promise<WorkspacePrompt>) | undefined;
}

type Notify = (event: Exclude<TurnStreamEvent, { type: "result" }>) => void;

/** Streaming state of a turn: `buffer` is null when the response processor cannot filter partial text. */
interface LiveText {
  buffer: DeltaBuffer | null;
  streamed: boolean;
}

/** What a turn has done so far, kept for its trace (also when it fails midway). */
interface Trail {
  match: SkillMatch | null;
  toolCalls: TurnToolCall[];
}

interface Answer {
  text: string;
  match: SkillMatch | null;
  toolCalls: TurnToolCall[];
  proposal: Proposal | null;
  createdSkill: Skill | null;
  thinking: string | null;
}

/**
 * The default orchestrator. It only coordinates: every decision is made by
 * the component it calls. The user's message is stored before any model
 * call, so a failing model loses nothing.
 */
export function createOrchestrator(deps: OrchestratorDependencies): Orchestrator {
  // The workspace's skills as each bot's Skills, built once per (bot, catalog, workspace version).
  const workspaceCatalogs = new Map<string, SkillCatalog>();

  /** The bot's effective catalog plus the workspace's skills, a stored skill winning a name clash. */
  function withWorkspaceSkills(catalog: SkillCatalog, botId: string, workspace: WorkspacePrompt | null) {
    if (!workspace || workspace.skills.length === 0) return catalog;
    const key = `${catalog.key}|ws:${workspace.skillsVersion}`;
    const cached = workspaceCatalogs.get(botId);
    if (cached?.key === key) return cached;
    const own = new Set(catalog.skills.map((skill) => skill.name.toLowerCase()));
    const now = deps.clock.now();
    const added = workspace.skills
      .filter(({ skill }) => !own.has(skill.name.toLowerCase()))
      .map(
        ({ file, skill }): Skill => ({
          ...CreateSkillInputSchema.parse(skill),
          id: `wsk_${createHash("sha256").update(file).digest("hex").slice(0, 24)}`,
          botId,
          scope: { kind: "bot", id: botId },
          createdAt: now,
          updatedAt: now,
        }),
      );
    const merged = { key, skills: [...catalog.skills, ...added] };
    workspaceCatalogs.set(botId, merged);
    return merged;
  }

  async function loadBot(botId: string, userId: string): Promise<Bot> {
    const bot = deps.cache ? await deps.cache.bot(botId) : await deps.storage.bots.get(botId);
    // Another user's bot is reported as missing, so ids cannot be probed.
    if (!bot || bot.userId !== userId)
      throw new KiloError("NOT_FOUND", `User '${userId}' has no bot '${botId}'`);
    return bot;
  }

  function newConversation(bot: Bot, userId: string, id: string | undefined, channel: string): Conversation {
    const now = deps.clock.now();
    return {
      id: id ?? deps.ids.next("conv"),
      botId: bot.id,
      userId,
      channel,
      title: null,
      metadata: {},
      createdAt: now,
      updatedAt: now,
    };
  }

  /**
   * Stores the user's message, starting the conversation when it does not
   * exist yet. An existing conversation costs one write: the append itself
   * checks that the bot has it (a bot's conversations all belong to its owner).
   */
  async function storeUserMessage(bot: Bot, input: z.output<typeof TurnInputSchema>): Promise<Message> {
    const message = (conversationId: string): NewMessage => ({
      id: deps.ids.next("msg"),
      conversationId,
      botId: bot.id,
      role: "user",
      content: input.message,
      metadata: { channel: input.channel },
      createdAt: deps.clock.now(),
    });
    if (input.conversationId) {
      try {
        return await deps.storage.messages.append(message(input.conversationId));
      } catch (error) {
        if (!KiloError.is(error, "NOT_FOUND")) throw error;
      }
    }
    const conversation = await deps.storage.conversations.create(
      newConversation(bot, input.userId, input.conversationId, input.channel),
    );
    return deps.storage.messages.append(message(conversation.id));
  }

  async function storeReply(
    reply: NewMessage,
    usage: UsageRecord[],
    trace: Trace | null,
    turn: TurnResult,
    run: TurnRunLink | undefined,
  ): Promise<Message> {
    const traced = trace && deps.storage.traces ? trace : undefined;
    // A turn that ends a run stores the run's outcome and step with it: no write of the run's own.
    if (run && deps.storage.commitRunTurn) {
      const committed = await deps.storage.commitRunTurn({
        message: reply,
        usage,
        conversationUpdatedAt: reply.createdAt,
        ...(traced ? { trace: traced } : {}),
        ...run.finish(turn),
      });
      run.stored(committed.run, committed.next);
      return committed.message;
    }
    if (deps.storage.commitTurn) {
      return deps.storage.commitTurn({
        message: reply,
        usage,
        conversationUpdatedAt: reply.createdAt,
        ...(traced ? { trace: traced } : {}),
      });
    }
    const stored = await deps.storage.messages.append(reply);
    for (const record of usage) await deps.storage.usage.record(record);
    await deps.storage.conversations.touch(reply.botId, reply.conversationId, reply.createdAt);
    if (traced) await deps.storage.traces!.create(traced);
    return stored;
  }

  /** The trace of a turn; tool calls keep only their name and outcome (never inputs or results). */
  function traceOf(
    input: z.output<typeof TurnInputSchema>,
    userMessage: Message,
    trail: Trail,
    started: number,
    records: readonly UsageRecord[],
    end: { replyMessageId: string | null; errorCode: string | null },
  ): Trace {
    const skill = trail.match?.skill ?? null;
    let promptTokens = 0;
    let completionTokens = 0;
    let costUsd = 0;
    for (const record of records) {
      promptTokens += record.promptTokens + record.cacheReadTokens + record.cacheWriteTokens;
      completionTokens += record.completionTokens;
      costUsd += record.costUsd;
    }
    return {
      id: deps.ids.next("trace"),
      botId: userMessage.botId,
      userId: input.userId,
      conversationId: userMessage.conversationId,
      userMessageId: userMessage.id,
      replyMessageId: end.replyMessageId,
      message: input.message,
      skillId: skill?.id ?? null,
      skillName: skill?.name ?? null,
      matchPass: trail.match?.pass ?? null,
      matchConfidence: trail.match?.confidence ?? null,
      skillsInjected: skill ? [skill.name] : [],
      toolCalls: trail.toolCalls.map((call) => ({ name: call.name, ok: !call.isError })),
      outcome: end.errorCode === null ? "ok" : "error",
      errorCode: end.errorCode,
      latencyMs: Math.max(0, performance.now() - started),
      model: records.at(-1)?.model ?? null,
      promptTokens,
      completionTokens,
      costUsd,
      feedback: null,
      createdAt: deps.clock.now(),
    };
  }

  async function runTools(
    sets: ToolSet[],
    owners: Map<string, ToolSet>,
    calls: ToolCallBlock[],
    base: { botId: string; userId: string; conversationId: string },
    record: TurnToolCall[],
    notify: Notify,
  ): Promise<ToolResultBlock[]> {
    const results: ToolResultBlock[] = [];
    for (const call of calls) {
      const started = performance.now();
      notify({ type: "tool-call", name: call.name, input: call.input });
      const owner = owners.get(call.name);
      const outcome = owner
        ? await owner.execute(call)
        : {
            content: `There is no tool named '${call.name}'. Available: ${sets.flatMap((s) => s.definitions.map((d) => d.name)).join(", ") || "none"}`,
            isError: true,
            data: undefined,
          };
      record.push({
        name: call.name,
        input: call.input,
        isError: outcome.isError,
        result: outcome.data ?? null,
      });
      deps.emit("tool-called", {
        ...base,
        name: call.name,
        isError: outcome.isError,
        durationMs: performance.now() - started,
      });
      notify({ type: "tool-result", name: call.name, isError: outcome.isError });
      results.push({
        type: "tool_result",
        toolCallId: call.id,
        content: outcome.content,
        isError: outcome.isError,
      });
    }
    return results;
  }

  async function answer(
    input: z.output<typeof TurnInputSchema>,
    bot: Bot,
    userMessage: Message,
    live: LiveText | null,
    notify: Notify,
    trail: Trail,
    run: Pick<TurnOptions, "runId" | "idempotencyKey"> | undefined,
  ): Promise<Answer> {
    const conversationId = userMessage.conversationId;
    const base = { botId: bot.id, userId: input.userId, conversationId };
    const proposerInput = {
      bot,
      userId: input.userId,
      conversationId,
      message: input.message,
      signal: input.signal,
    };

    // "Yes, go ahead" to the one approval the conversation waits for decides it; the model is told
    // what became of the call and answers the rest of the message.
    const decision = deps.approvals ? await deps.approvals.respond(proposerInput) : null;
    if (decision) {
      input = { ...input, context: [...(input.context ?? []), decision.note] };
      trail.toolCalls.push({
        name: "call_api",
        input: {
          tool: decision.approval.toolName,
          endpoint: decision.approval.endpoint,
          params: decision.approval.input,
        },
        isError: decision.result?.isError ?? false,
        result: { approvalId: decision.approval.id, status: decision.approval.status },
      });
    }

    const learned = decision ? null : deps.learner ? await deps.learner.respond(proposerInput) : null;
    if (learned) {
      return {
        text: learned.reply,
        match: null,
        toolCalls: [],
        proposal: learned.proposal,
        createdSkill: null,
        thinking: null,
      };
    }

    const decided = decision ? null : await deps.proposer.respond(proposerInput);
    if (decided) {
      return {
        text: decided.reply,
        match: null,
        toolCalls: [],
        proposal: decided.proposal,
        createdSkill: decided.skill,
        thinking: null,
      };
    }

    const skillsOff = input.skills?.include === false || input.skills?.max === 0;
    const workspace = deps.workspace ? await deps.workspace() : null;
    const catalog: SkillCatalog = skillsOff
      ? NO_SKILLS
      : withWorkspaceSkills(await deps.skills.catalog(bot), bot.id, workspace);
    const match = await deps.matcher.match({
      message: input.message,
      catalog,
      bot,
      userId: input.userId,
      conversationId,
      signal: input.signal,
    });
    trail.match = match;
    deps.emit("skill-matched", {
      ...base,
      skillId: match.skill?.id ?? null,
      skillName: match.skill?.name ?? null,
      pass: match.pass,
      confidence: match.confidence,
      reason: match.reason,
    });

    const offer = skillsOff
      ? null
      : await deps.proposer.consider({ ...proposerInput, match, skills: catalog.skills });
    if (offer) {
      deps.emit("proposal-created", { ...base, proposal: offer.proposal });
      return {
        text: offer.reply,
        match,
        toolCalls: [],
        proposal: offer.proposal,
        createdSkill: null,
        thinking: null,
      };
    }

    const context = await deps.contextLoader.load({
      botId: bot.id,
      userId: input.userId,
      conversationId,
      beforeSeq: userMessage.seq,
      requirements: match.context,
    });
    const skills = injectedSkills(catalog, match, input.skills?.max);
    const toolContext: ToolContext = {
      bot,
      userId: input.userId,
      conversationId,
      matchedSkill: match.skill,
      skills,
      signal: input.signal,
      ...(run?.runId ? { runId: run.runId } : {}),
      ...(run?.idempotencyKey ? { idempotencyKey: run.idempotencyKey } : {}),
    };
    const sets = await Promise.all(deps.toolProviders.map((provider) => provider.tools(toolContext)));
    const owners = new Map<string, ToolSet>();
    for (const set of sets) for (const definition of set.definitions) owners.set(definition.name, set);
    const prompt = deps.composer.compose({
      bot,
      skills,
      matchedSkill: match.skill,
      tools: sets.flatMap((set) => set.definitions),
      memories: context.memories,
      standingMemories: context.standingMemories,
      skillRecords: context.skillRecords,
      history: context.history,
      userMessage: input.message,
      channel: input.channel,
      now: deps.clock.now(),
      contextRules: workspace ? [...deps.contextRules(), ...workspace.contextRules] : deps.contextRules(),
      systemPrompt: workspace?.system,
      appendSystemPrompt: workspace?.appendSystem,
      notes: [...(input.context ?? []), ...sets.flatMap((set) => set.notes ?? [])],
    });

    const messages: LlmMessage[] = [...prompt.messages];
    const toolCalls = trail.toolCalls;
    const thoughts: ContentBlock[] = [];
    let response: GatewayResponse | null = null;
    for (let step = 0; step < deps.maxToolSteps; step += 1) {
      const request: GatewayRequest = {
        taskType: match.taskType,
        purpose: "chat",
        system: prompt.system,
        messages,
        tools: prompt.tools.length > 0 ? prompt.tools : undefined,
        ...base,
        signal: input.signal,
      };
      response = live ? await streamStep(request, live, notify) : await deps.gateway.complete(request);
      thoughts.push(...response.content.filter((block) => block.type === "thinking"));
      const calls = response.content.filter((block): block is ToolCallBlock => block.type === "tool_call");
      if (calls.length === 0) break;
      // Thinking blocks go back unchanged with the tool calls, as providers require.
      messages.push({ role: "assistant", content: response.content });
      messages.push({ role: "user", content: await runTools(sets, owners, calls, base, toolCalls, notify) });
      if (step === deps.maxToolSteps - 1) {
        throw new KiloError(
          "TOOL_LOOP_LIMIT",
          `The model was still calling tools after ${deps.maxToolSteps} steps`,
        );
      }
    }
    const thinking = thinkingSummary(thoughts);
    if (thinking) notify({ type: "thinking", summary: thinking });
    return {
      text: response ? textOf(response.content) : "",
      match,
      toolCalls,
      proposal: null,
      createdSkill: null,
      thinking,
    };
  }

  /** One model call, streamed: text goes out in filtered whole words, thinking as it comes. */
  async function streamStep(
    request: GatewayRequest,
    live: LiveText,
    notify: Notify,
  ): Promise<GatewayResponse> {
    let response: GatewayResponse | null = null;
    for await (const event of deps.gateway.stream(request)) {
      if (event.type === "text-delta") live.buffer?.push(event.text);
      else if (event.type === "thinking-delta") notify({ type: "thinking-delta", text: event.text });
      else if (event.type === "done") response = event.response;
    }
    live.buffer?.flush();
    if (!response)
      throw new KiloError("PROVIDER_FAILED", "The model's stream ended without a response", {
        retryable: true,
      });
    if (live.buffer && textOf(response.content).length > 0) live.streamed = true;
    return response;
  }

  // A failed turn still owes the usage of the calls it made.
  async function storeHeldUsage(tally: TurnTally): Promise<void> {
    for (const record of tally.records) {
      await deps.storage.usage.record(record).catch((error: unknown) => {
        deps.logger.error({ usageId: record.id, error }, "could not store the usage of a failed turn");
      });
    }
  }

  return {
    async handle(raw: TurnInput, observer?: TurnObserver, options?: TurnOptions): Promise<TurnResult> {
      const input = parseInput(TurnInputSchema, raw, "chat input");
      const started = performance.now();
      const trail: Trail = { match: null, toolCalls: [] };
      const bot = await loadBot(input.botId, input.userId);
      const userMessage = await storeUserMessage(bot, input);
      const base = { botId: bot.id, userId: input.userId, conversationId: userMessage.conversationId };
      const log = deps.logger.child(base);
      deps.emit("message-received", { ...base, messageId: userMessage.id, channel: input.channel });
      const notify: Notify = observer
        ? (event) => {
            observer.onEvent(event);
            deps.emit("turn-progress", { ...base, event });
          }
        : () => undefined;
      const filterDelta = deps.responseProcessor.filterDelta?.bind(deps.responseProcessor);
      const live: LiveText | null = observer
        ? {
            streamed: false,
            buffer: filterDelta
              ? createDeltaBuffer(
                  (text) => notify({ type: "text-delta", text }),
                  (text) => filterDelta(text, { bot, channel: input.channel }),
                )
              : null,
          }
        : null;

      try {
        const { value: result, tally } = await deps.meter.run(async () => {
          const done = await answer(input, bot, userMessage, live, notify, trail, options);
          const processed = deps.responseProcessor.process({ text: done.text, bot, channel: input.channel });
          // Replies that were not streamed (proposals, processors without filterDelta) go out whole.
          if (live && !live.streamed) notify({ type: "text-delta", text: processed.text });
          const facts = await deps.memoryExtractor.extract({
            bot,
            userId: input.userId,
            conversationId: base.conversationId,
            userMessage: input.message,
            reply: processed.text,
            signal: input.signal,
          });
          const remembered = await deps.memory.remember(bot.id, input.userId, facts, {
            kind: "conversation",
            conversationId: base.conversationId,
            messageId: userMessage.id,
          });
          for (const entry of remembered) deps.emit("memory-extracted", { ...base, ...entry });
          return { done, processed, memories: remembered.map((entry): Memory => entry.memory) };
        }, storeHeldUsage);
        const usage = tally.usage;
        const { done, processed, memories } = result;
        const replyId = deps.ids.next("msg");
        const trace = deps.storage.traces
          ? traceOf(input, userMessage, trail, started, tally.records, {
              replyMessageId: replyId,
              errorCode: null,
            })
          : null;
        const reply: NewMessage = {
          id: replyId,
          conversationId: base.conversationId,
          botId: bot.id,
          role: "assistant",
          content: processed.text,
          metadata: {
            skillId: done.match?.skill?.id ?? null,
            pass: done.match?.pass ?? null,
            toolCalls: done.toolCalls.map((call) => ({ name: call.name, isError: call.isError })),
            proposalId: done.proposal?.id ?? null,
            actions: processed.actions,
            costUsd: usage.costUsd,
          },
          createdAt: deps.clock.now(),
        };
        const turn: TurnResult = {
          reply: processed.text,
          conversationId: base.conversationId,
          userMessageId: userMessage.id,
          replyMessageId: replyId,
          skill: done.match?.skill ? { id: done.match.skill.id, name: done.match.skill.name } : null,
          match: done.match
            ? {
                pass: done.match.pass,
                confidence: done.match.confidence,
                reason: done.match.reason,
                taskType: done.match.taskType,
              }
            : {
                pass: "none",
                confidence: 1,
                reason: "answered a pending skill proposal",
                taskType: "simple_qa",
              },
          toolCalls: done.toolCalls,
          memories,
          proposal: done.proposal,
          createdSkill: done.createdSkill ? { id: done.createdSkill.id, name: done.createdSkill.name } : null,
          thinking: done.thinking,
          usage,
          skillsUsed: trace?.skillsInjected ?? (done.match?.skill ? [done.match.skill.name] : []),
          traceId: trace?.id ?? null,
        };
        const replyMessage = await storeReply(reply, tally.records, trace, turn, options?.run);
        log.info(
          {
            skillId: turn.skill?.id ?? null,
            pass: turn.match.pass,
            toolCalls: turn.toolCalls.length,
            costUsd: usage.costUsd,
          },
          "turn completed",
        );
        deps.emit("reply-sent", { ...base, messageId: replyMessage.id, result: turn });
        return turn;
      } catch (error) {
        const wrapped = toKiloError(error, "INTERNAL", "The turn failed");
        log.error({ code: wrapped.code, error: wrapped }, "turn failed; the user's message is kept");
        // A failed turn leaves a trace too (its own write: failures are rare, warm turns stay lean).
        if (deps.storage.traces) {
          const failed = traceOf(input, userMessage, trail, started, [], {
            replyMessageId: null,
            errorCode: wrapped.code,
          });
          await deps.storage.traces.create(failed).catch((caught: unknown) => {
            log.error({ traceId: failed.id, error: caught }, "could not store the trace of a failed turn");
          });
        }
        deps.emit("error", { error: wrapped, context: { ...base, messageId: userMessage.id } });
        throw wrapped;
      }
    },
  };
}
