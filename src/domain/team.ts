import { z } from "zod";
import { IdSchema, MetadataSchema } from "./common.js";

/**
 * What a team member may do: a `member` sees the team's skills (through
 * bots in the team) and may request promotions to it; an `admin` also
 * writes the team's skills, reviews promotions to it and manages the team.
 */
export const TEAM_ROLES = ["member", "admin"] as const;

/** A member's role in a team; see {@link TEAM_ROLES}. */
export const TeamRoleSchema = z.enum(TEAM_ROLES);
/** A member's role in a team; see {@link TEAM_ROLES}. */
export type TeamRole = z.infer<typeof TeamRoleSchema>;

const teamName = z.string().trim().min(1).max(100);

/** A group of users sharing skills (the `team` scope). Bots may belong to one team. */
export const TeamSchema = z.object({
  id: IdSchema,
  name: teamName,
  metadata: MetadataSchema,
  createdAt: z.date(),
  updatedAt: z.date(),
});

/** A group of users sharing skills. */
export type Team = z.infer<typeof TeamSchema>;

/** One user's membership of one team. A user is a member of a team at most once. */
export const TeamMemberSchema = z.object({
  teamId: IdSchema,
  userId: IdSchema,
  role: TeamRoleSchema,
  createdAt: z.date(),
  updatedAt: z.date(),
});

/** One user's membership of one team. */
export type TeamMember = z.infer<typeof TeamMemberSchema>;

/** Input of `kilo.teams.create`. */
export const CreateTeamInputSchema = z
  .object({ id: IdSchema.optional(), name: teamName, metadata: MetadataSchema.optional() })
  .strict();

/** Input of `kilo.teams.create`. */
export type CreateTeamInput = z.input<typeof CreateTeamInputSchema>;

/** Input of `kilo.teams.update`: every field optional. */
export const UpdateTeamInputSchema = z
  .object({ name: teamName, metadata: MetadataSchema })
  .partial()
  .strict();

/** Input of `kilo.teams.update`. */
export type UpdateTeamInput = z.input<typeof UpdateTeamInputSchema>;

/** Input of `kilo.teams.addMember`: the user, and their role (default `member`). */
export const AddTeamMemberInputSchema = z
  .object({ userId: IdSchema, role: TeamRoleSchema.default("member") })
  .strict();

/** Input of `kilo.teams.addMember`. */
export type AddTeamMemberInput = z.input<typeof AddTeamMemberInputSchema>;
