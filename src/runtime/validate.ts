import type { z } from "zod";
import { KiloError } from "../errors.js";

/**
 * Parses public input with its schema. Failure throws `VALIDATION_FAILED`
 * whose message names every offending path, with the zod issues as `details`.
 */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join(".") : "(root)"}: ${issue.message}`)
    .join("; ");
  const more = result.error.issues.length > 5 ? ` (and ${result.error.issues.length - 5} more)` : "";
  throw new KiloError("VALIDATION_FAILED", `Invalid ${what}: ${problems}${more}`, {
    details: result.error.issues,
  });
}
