import { z } from "zod";
import { IdSchema } from "./common.js";

/**
 * Where a skill lives, from the widest to the narrowest:
 * - `system`: global, offered to every bot; read-only for users.
 * - `team`: offered to the bots of a team.
 * - `user`: offered to every bot the user owns.
 * - `bot`: the bot's own skills.
 *
 * A bot sees system + its team's + its owner's + its own skills; when two
 * have the same name, the most specific scope wins (bot over user over team
 * over system).
 */
export const SKILL_SCOPE_KINDS = ["system", "team", "user", "bot"] as const;

/** One of {@link SKILL_SCOPE_KINDS}. */
export type SkillScopeKind = (typeof SKILL_SCOPE_KINDS)[number];

/** A scope a skill lives in; `id` names the team, user or bot (absent for `system`). */
export const SkillScopeSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("system") }).strict(),
  z.object({ kind: z.literal("team"), id: IdSchema }).strict(),
  z.object({ kind: z.literal("user"), id: IdSchema }).strict(),
  z.object({ kind: z.literal("bot"), id: IdSchema }).strict(),
]);

/** A scope a skill lives in. */
export type SkillScope = z.infer<typeof SkillScopeSchema>;

/** How specific a scope kind is: a higher rank wins a name conflict. */
export const SCOPE_RANK: Readonly<Record<SkillScopeKind, number>> = { system: 0, team: 1, user: 2, bot: 3 };

/**
 * A scope as one string, for keys, paths and logs: `system`, `team:<id>`,
 * `user:<id>` or `bot:<id>`.
 *
 * @example
 * ```ts
 * scopeKey({ kind: "team", id: "team_bakers" }); // "team:team_bakers"
 * ```
 */
export function scopeKey(scope: SkillScope): string {
  return scope.kind === "system" ? "system" : `${scope.kind}:${scope.id}`;
}

/** The scope a {@link scopeKey} names, or `null` when the text is not one. */
export function parseScopeKey(key: string): SkillScope | null {
  if (key === "system") return { kind: "system" };
  const colon = key.indexOf(":");
  if (colon < 0) return null;
  const parsed = SkillScopeSchema.safeParse({ kind: key.slice(0, colon), id: key.slice(colon + 1) });
  return parsed.success ? parsed.data : null;
}

/**
 * Whose skills a call names: a bot id (the bot's own skills, as before
 * scopes existed) or any {@link SkillScope}. `"bot_1"` and
 * `{ kind: "bot", id: "bot_1" }` name the same skills.
 *
 * @example
 * ```ts
 * await kilo.skills.list("bot_1"); // the bot's own skills
 * await kilo.skills.list({ kind: "team", id: "team_bakers" }); // the team's
 * ```
 */
export type SkillOwner = string | SkillScope;

/** Validates a {@link SkillOwner}: a bot id, or a scope. */
export const SkillOwnerSchema = z.union([IdSchema, SkillScopeSchema]);

/** The scope a {@link SkillOwner} names: a bot id is that bot's scope. */
export function ownerScope(owner: SkillOwner): SkillScope {
  return typeof owner === "string" ? { kind: "bot", id: owner } : owner;
}

/** Whether two scopes are the same scope. */
export function sameScope(a: SkillScope, b: SkillScope): boolean {
  return scopeKey(a) === scopeKey(b);
}

/**
 * The scopes a bot sees, widest first: `system`, its team's (when it is in
 * one), its owner's and its own. Later scopes win a name conflict.
 *
 * @example
 * ```ts
 * botScopes({ id: "bot_1", userId: "alice", teamId: "bakers" });
 * // [{ kind: "system" }, { kind: "team", id: "bakers" }, { kind: "user", id: "alice" }, { kind: "bot", id: "bot_1" }]
 * ```
 */
export function botScopes(bot: {
  id: string;
  userId: string;
  teamId?: string | null | undefined;
}): SkillScope[] {
  const scopes: SkillScope[] = [{ kind: "system" }];
  if (bot.teamId) scopes.push({ kind: "team", id: bot.teamId });
  scopes.push({ kind: "user", id: bot.userId }, { kind: "bot", id: bot.id });
  return scopes;
}
