import { z } from "zod";
import { IdSchema } from "./common.js";

/**
 * The user a call acts for. The host calling `kilo.*` is trusted: a call
 * without an actor may do anything. With one, kilo checks the user's rights
 * (see docs/skill-scopes.md): a user writes their own user scope and their
 * bots' skills, a team's skills only as its admin, and never the system's.
 *
 * @example
 * ```ts
 * await kilo.skills.create({ kind: "team", id: "bakers" }, input, { actor: { userId: "alice" } });
 * ```
 */
export const ActorSchema = z.object({ userId: IdSchema }).strict();

/** The user a call acts for; see {@link ActorSchema}. */
export type Actor = z.infer<typeof ActorSchema>;
