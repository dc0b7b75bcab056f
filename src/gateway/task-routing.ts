import { TASK_TYPES, type TaskType } from "../domain/skill.js";
import { KiloError } from "../errors.js";

/** How the gateway calls a model for one task type. */
export interface TaskSettings {
  /** Extended thinking budget in tokens, or `null` for no thinking. Must be below `maxTokens`. */
  thinkingBudget: number | null;
  /** Most tokens the model may produce (thinking included). */
  maxTokens: number;
}

/** Per-task-type overrides, merged over {@link DEFAULT_TASK_SETTINGS}. */
export type TaskSettingsOverrides = Partial<Record<TaskType, Partial<TaskSettings>>>;

/**
 * Thinking budgets and output limits per task type: quick answers get no
 * thinking and a small limit, reasoning-heavy work gets a budget.
 *
 * | task type           | thinking | max tokens |
 * | ------------------- | -------- | ---------- |
 * | `simple_qa`         | off      | 2,048      |
 * | `skill_execution`   | 5,000    | 8,192      |
 * | `skill_generation`  | 5,000    | 8,192      |
 * | `complex_reasoning` | 10,000   | 16,384     |
 * | `data_analysis`     | 5,000    | 8,192      |
 * | `doc_extraction`    | 8,000    | 12,288     |
 */
export const DEFAULT_TASK_SETTINGS: Readonly<Record<TaskType, Readonly<TaskSettings>>> = Object.freeze({
  simple_qa: Object.freeze({ thinkingBudget: null, maxTokens: 2048 }),
  skill_execution: Object.freeze({ thinkingBudget: 5000, maxTokens: 8192 }),
  skill_generation: Object.freeze({ thinkingBudget: 5000, maxTokens: 8192 }),
  complex_reasoning: Object.freeze({ thinkingBudget: 10000, maxTokens: 16384 }),
  data_analysis: Object.freeze({ thinkingBudget: 5000, maxTokens: 8192 }),
  doc_extraction: Object.freeze({ thinkingBudget: 8000, maxTokens: 12288 }),
});

function isPositiveInteger(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value > 0;
}

/**
 * {@link DEFAULT_TASK_SETTINGS} with `overrides` merged over it, checked.
 *
 * @throws KiloError `CONFIGURATION_INVALID` for an unknown task type, a
 *   non-positive limit, or a thinking budget not below its max tokens.
 */
export function resolveTaskSettings(overrides: TaskSettingsOverrides = {}): Record<TaskType, TaskSettings> {
  for (const key of Object.keys(overrides)) {
    if (!(TASK_TYPES as readonly string[]).includes(key)) {
      throw new KiloError(
        "CONFIGURATION_INVALID",
        `taskSettings names unknown task type '${key}'; expected one of ${TASK_TYPES.join(", ")}`,
      );
    }
  }
  const resolved = {} as Record<TaskType, TaskSettings>;
  for (const taskType of TASK_TYPES) {
    const settings = { ...DEFAULT_TASK_SETTINGS[taskType], ...overrides[taskType] };
    if (!isPositiveInteger(settings.maxTokens)) {
      throw new KiloError(
        "CONFIGURATION_INVALID",
        `taskSettings.${taskType}.maxTokens must be a positive integer, got ${String(settings.maxTokens)}`,
      );
    }
    if (settings.thinkingBudget !== null) {
      if (!isPositiveInteger(settings.thinkingBudget) || settings.thinkingBudget >= settings.maxTokens) {
        throw new KiloError(
          "CONFIGURATION_INVALID",
          `taskSettings.${taskType}.thinkingBudget must be null or a positive integer below maxTokens ` +
            `(${settings.maxTokens}), got ${String(settings.thinkingBudget)}`,
        );
      }
    }
    resolved[taskType] = settings;
  }
  return resolved;
}
