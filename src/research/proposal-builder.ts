import type { Soul } from "../domain/bot.js";
import type { IntegrationPlan, ProposedSkill } from "../domain/proposal.js";
import { type ToolEndpoint, ToolEndpointSchema } from "../domain/tool.js";
import { KiloError } from "../errors.js";
import { toSnakeName } from "../skills/skill-proposer.js";
import {
  injectionReasons,
  type SkillValidationContext,
  validateSkill,
  withoutTakenTriggers,
} from "../skills/skill-validation.js";
import type { ApiAnalysis } from "./doc-analyzer.js";

/** Input of {@link buildIntegrationPlan}. */
export interface IntegrationPlanInput {
  topic: string;
  /** URLs of the pages the analysis was drawn from. */
  sources: readonly string[];
  analysis: ApiAnalysis;
  /** The bot's skills and tool names, and its soul, for the validation pipeline. */
  existing: SkillValidationContext;
}

function endpointText(endpoint: ApiAnalysis["endpoints"][number]): string {
  return [endpoint.description, ...endpoint.parameters.map((parameter) => parameter.description)].join("\n");
}

/** The lines a generated skill's instructions end with: which tool and endpoints to call. */
function usage(toolName: string, endpoints: readonly ToolEndpoint[]): string {
  const list = endpoints.map(
    (e) => `- ${e.name}: ${e.method} ${e.path}${e.description ? ` — ${e.description}` : ""}`,
  );
  return `Call the API with call_api, tool "${toolName}":\n${list.join("\n")}`;
}

/**
 * Turns a doc analysis into an integration plan: the tool registration
 * (endpoints checked against the tool schema; anything but GET waits for
 * the user's approval at call time) plus the skills that use it, each passed
 * through the skill validation pipeline. Endpoints and skills that fail a
 * check are left out and listed in `rejected` with the reasons; text that
 * reads as a prompt injection never makes it into the plan.
 *
 * Throws `CONFLICT` when the bot already has a tool of that name, and
 * `RESEARCH_FAILED` when no endpoint survives.
 */
export function buildIntegrationPlan(input: IntegrationPlanInput): IntegrationPlan {
  const { analysis, existing } = input;
  const soul: Soul | null | undefined = existing.soul;
  if (existing.tools.some((name) => name.toLowerCase() === analysis.toolName)) {
    throw new KiloError(
      "CONFLICT",
      `The bot already has a tool named "${analysis.toolName}"; change or delete it before learning ${analysis.name} again`,
    );
  }
  const rejected: IntegrationPlan["rejected"] = [];
  const endpoints: ToolEndpoint[] = [];
  for (const raw of analysis.endpoints) {
    const injected = injectionReasons(endpointText(raw), soul);
    const parsed = ToolEndpointSchema.safeParse({
      ...raw,
      name: toSnakeName(raw.name, "endpoint"),
      // Generated integrations only read freely; every write waits for the user's approval.
      risky: raw.risky || raw.method !== "GET",
    });
    const reasons = [
      ...injected.map((reason) => `the endpoint description ${reason}`),
      ...(parsed.success
        ? []
        : parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`)),
    ];
    if (!parsed.success || reasons.length > 0) rejected.push({ name: `endpoint ${raw.name}`, reasons });
    else if (!endpoints.some((endpoint) => endpoint.name === parsed.data.name)) endpoints.push(parsed.data);
  }
  if (endpoints.length === 0) {
    throw new KiloError(
      "RESEARCH_FAILED",
      `None of the endpoints found for ${analysis.name} could be used: ${rejected
        .flatMap((r) => r.reasons)
        .slice(0, 3)
        .join("; ")}`,
    );
  }
  const descriptionProblems = injectionReasons(analysis.description, soul);
  if (descriptionProblems.length > 0) {
    rejected.push({ name: "tool description", reasons: descriptionProblems });
  }
  const tool = {
    name: analysis.toolName,
    description: descriptionProblems.length > 0 ? `${analysis.name} API` : analysis.description,
    baseUrl: analysis.baseUrl,
    auth: analysis.auth,
    endpoints,
  };

  const suggested =
    analysis.skills.length > 0
      ? analysis.skills
      : [
          {
            name: analysis.name,
            description: `Use the ${analysis.name} API`,
            instructions: `Help the user with ${analysis.name}.`,
            triggers: [input.topic.toLowerCase(), analysis.name.toLowerCase()],
            endpoints: [],
          },
        ];
  const skills: ProposedSkill[] = [];
  const context: SkillValidationContext = { ...existing, tools: [...existing.tools, tool.name] };
  for (const draft of suggested) {
    const used = endpoints.filter((e) => draft.endpoints.length === 0 || draft.endpoints.includes(e.name));
    const taken = [...existing.skills, ...skills.map((s, index) => ({ id: `new-${index}`, ...s }))];
    const candidate = {
      name: draft.name,
      description: draft.description,
      instructions:
        `${draft.instructions.trim()}\n\n${usage(tool.name, used.length > 0 ? used : endpoints)}`.trim(),
      triggers: [...new Set(withoutTakenTriggers(draft.triggers, taken))],
      requiredIntegrations: [tool.name],
    };
    const verdict = validateSkill(candidate, { ...context, skills: taken });
    if (!verdict.ok) {
      rejected.push({ name: `skill ${draft.name}`, reasons: verdict.issues.map((issue) => issue.message) });
      continue;
    }
    skills.push({
      name: verdict.skill.name,
      description: verdict.skill.description ?? "",
      instructions: verdict.skill.instructions ?? "",
      triggers: verdict.skill.triggers ?? [],
    });
  }
  return {
    topic: input.topic,
    stage: "proposed",
    sources: [...input.sources],
    tool,
    skills,
    rejected,
    toolId: null,
    skillIds: [],
  };
}

/** The reply that presents an integration proposal to the user. */
export function renderIntegrationPlan(name: string, plan: IntegrationPlan): string {
  const auth =
    plan.tool.auth.type === "none"
      ? "It needs no credential."
      : "It needs a credential, which you add through the app (the credential API), never in this chat.";
  const lines = [
    `I read the ${name} documentation${plan.sources.length > 0 ? ` (${plan.sources.length} page${plan.sources.length === 1 ? "" : "s"})` : ""} and can set it up:`,
    `**Tool \`${plan.tool.name}\`** at ${plan.tool.baseUrl}, with ${plan.tool.endpoints.length} endpoint${plan.tool.endpoints.length === 1 ? "" : "s"}:\n${plan.tool.endpoints
      .map((e) => `- ${e.name}: ${e.method} ${e.path}${e.risky ? " (asks you first)" : ""}`)
      .join("\n")}`,
  ];
  if (plan.skills.length > 0) {
    lines.push(
      `**Skills:**\n${plan.skills.map((s) => `- ${s.name}${s.description ? ` — ${s.description}` : ""}`).join("\n")}`,
    );
  }
  if (plan.rejected.length > 0) {
    lines.push(
      `I left out ${plan.rejected.map((r) => `${r.name} (${r.reasons[0] ?? "failed validation"})`).join(", ")}.`,
    );
  }
  lines.push(auth, "Shall I set it up? (yes / no)");
  return lines.join("\n\n");
}
