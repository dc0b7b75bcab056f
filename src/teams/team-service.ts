import { z } from "zod";
import type { CacheLoader } from "../cache/cache-loader.js";
import { type Actor, ActorSchema } from "../domain/actor.js";
import type { Bot } from "../domain/bot.js";
import { IdSchema, type Page, type PageOptions, PageOptionsSchema } from "../domain/common.js";
import {
  type AddTeamMemberInput,
  AddTeamMemberInputSchema,
  type CreateTeamInput,
  CreateTeamInputSchema,
  type Team,
  type TeamMember,
  type UpdateTeamInput,
  UpdateTeamInputSchema,
} from "../domain/team.js";
import { KiloError } from "../errors.js";
import type { Clock, IdGenerator } from "../ports/clock.js";
import type { Storage, StorageRepositories } from "../ports/storage.js";
import { allPages } from "../runtime/pages.js";
import { parseInput } from "../runtime/validate.js";
import type { ScopeAccess } from "../skills/scope-access.js";

/** Options of the calls of `kilo.teams` that may act for a user. */
export interface TeamOptions {
  /**
   * The user the call is made for. Creating a team makes them its admin;
   * changing a team, its members or deleting it needs an admin (a member
   * may also remove themselves); reading members needs a member. Without it
   * the host is trusted.
   */
  actor?: Actor | undefined;
}

const TeamOptionsSchema = z.object({ actor: ActorSchema.optional() }).strict();

/**
 * Teams and their members (`kilo.teams`): a team shares its skills (the
 * `team` scope) with the bots in it. A bot joins a team through
 * `kilo.bots.create` or `kilo.bots.update` (`teamId`), and only a bot whose
 * owner is a member; removing a member takes their bots out of the team.
 * Every method fails with `CONFIGURATION_INVALID` when the storage keeps no
 * teams. See docs/skill-scopes.md.
 *
 * @example
 * ```ts
 * const team = await kilo.teams.create({ name: "Bakers" }, { actor: { userId: "alice" } }); // alice is its admin
 * await kilo.teams.addMember(team.id, { userId: "bob" }, { actor: { userId: "alice" } });
 * await kilo.bots.update(bobsBot.id, { teamId: team.id }); // bob's bot now sees the team's skills
 * ```
 */
export interface KiloTeams {
  /** Creates a team; with an actor, the actor becomes its first admin. Fails with `VALIDATION_FAILED` or `CONFLICT` (the id is taken). */
  create(input: CreateTeamInput, options?: TeamOptions): Promise<Team>;
  /** The team with this id. Fails with `NOT_FOUND`. */
  get(teamId: string): Promise<Team>;
  /** One page of every team, oldest first (50 by default); pass `nextCursor` back for the next page. */
  list(page?: PageOptions): Promise<Page<Team>>;
  /** The user's memberships (team and role), oldest first. With an actor, only the actor's own (`FORBIDDEN` otherwise). */
  listByUser(userId: string, options?: TeamOptions): Promise<TeamMember[]>;
  /** Applies the fields given in `patch`. Fails with `NOT_FOUND`, `VALIDATION_FAILED` or `FORBIDDEN` (not an admin). */
  update(teamId: string, patch: UpdateTeamInput, options?: TeamOptions): Promise<Team>;
  /**
   * Deletes the team with its memberships and skills (their versions and
   * records included); its bots leave it. Promotion requests stay, as the
   * record of what was asked. Fails with `NOT_FOUND` or `FORBIDDEN` (not an admin).
   */
  delete(teamId: string, options?: TeamOptions): Promise<void>;
  /** The team's members, oldest first. Fails with `NOT_FOUND`, or `FORBIDDEN` when the actor is not a member. */
  members(teamId: string, options?: TeamOptions): Promise<TeamMember[]>;
  /**
   * Adds the user (recorded as a user if new) with a role (default
   * `member`), or changes the role of a member. Fails with `NOT_FOUND` or
   * `FORBIDDEN` (not an admin).
   */
  addMember(teamId: string, input: AddTeamMemberInput, options?: TeamOptions): Promise<TeamMember>;
  /**
   * Removes the user from the team and takes their bots out of it. An admin
   * may remove anyone; a member may remove themselves. Fails with
   * `NOT_FOUND` (no such team or member) or `FORBIDDEN`.
   */
  removeMember(teamId: string, userId: string, options?: TeamOptions): Promise<void>;
}

/** Dependencies of {@link createTeamApi}. */
export interface TeamServiceDependencies {
  storage: Storage;
  clock: Clock;
  ids: IdGenerator;
  cache: CacheLoader;
  access: ScopeAccess;
}

/**
 * Creates `kilo.teams` (see {@link KiloTeams}).
 *
 * @example
 * ```ts
 * const teams = createTeamApi({ storage, clock, ids, cache, access });
 * ```
 */
export function createTeamApi(deps: TeamServiceDependencies): KiloTeams {
  const { storage, clock, ids, cache, access } = deps;
  const teamId = (value: string) => parseInput(IdSchema, value, "team id");
  const optionsOf = (options: TeamOptions | undefined) =>
    parseInput(TeamOptionsSchema, options ?? {}, "team options");
  const repositoriesOf = (repositories: StorageRepositories) => {
    const { teams, teamMembers } = repositories;
    if (!teams || !teamMembers) return access.teams();
    return { teams, members: teamMembers };
  };
  const getTeam = async (id: string): Promise<Team> => {
    const team = await access.teams().teams.get(teamId(id));
    if (!team) throw new KiloError("NOT_FOUND", `No team '${id}'`);
    return team;
  };
  /** The user's bots that are in the team (a bot's owner is a member of its team). */
  const botsInTeam = async (userId: string, id: string): Promise<Bot[]> =>
    (await allPages((cursor) => storage.bots.listByUser(userId, { limit: 500, cursor }))).filter(
      (bot) => bot.teamId === id,
    );

  return {
    async create(input, options) {
      const parsed = parseInput(CreateTeamInputSchema, input, "team");
      const { actor } = optionsOf(options);
      access.teams();
      const now = clock.now();
      const team = await storage.transaction(async (tx) => {
        const { teams, members } = repositoriesOf(tx);
        const created = await teams.create({
          id: parsed.id ?? ids.next("team"),
          name: parsed.name,
          metadata: parsed.metadata ?? {},
          createdAt: now,
          updatedAt: now,
        });
        if (actor) {
          await tx.users.upsert({ id: actor.userId, name: null, metadata: {}, createdAt: now });
          await members.save({
            teamId: created.id,
            userId: actor.userId,
            role: "admin",
            createdAt: now,
            updatedAt: now,
          });
        }
        return created;
      });
      // A host may reuse the id of a team deleted behind kilo's back.
      await cache.invalidateScope({ kind: "team", id: team.id });
      return team;
    },
    get: getTeam,
    list: (page = {}) => access.teams().teams.list(parseInput(PageOptionsSchema, page, "page options")),
    async listByUser(userId, options) {
      const { actor } = optionsOf(options);
      const user = parseInput(IdSchema, userId, "user id");
      if (actor && actor.userId !== user) {
        throw new KiloError("FORBIDDEN", `User '${actor.userId}' cannot list the teams of user '${user}'`);
      }
      return access.teams().members.listByUser(user);
    },
    async update(id, patch, options) {
      const parsed = parseInput(UpdateTeamInputSchema, patch, "team update");
      const { actor } = optionsOf(options);
      await access.assertTeamAdmin(actor, teamId(id));
      const team = await getTeam(id);
      const changes = Object.fromEntries(Object.entries(parsed).filter(([, value]) => value !== undefined));
      const updated = await access.teams().teams.update({ ...team, ...changes, updatedAt: clock.now() });
      if (!updated) throw new KiloError("NOT_FOUND", `No team '${id}'`);
      return updated;
    },
    async delete(id, options) {
      const { actor } = optionsOf(options);
      const team = teamId(id);
      await access.assertTeamAdmin(actor, team);
      const { teams, members } = access.teams();
      // Found before the delete: the team's bots belong to its members, and their cached copies name the team.
      const bots: Bot[] = [];
      for (const member of await members.listByTeam(team))
        bots.push(...(await botsInTeam(member.userId, team)));
      const deleted = await teams.delete(team);
      await cache.invalidateScope({ kind: "team", id: team });
      for (const bot of bots) await cache.invalidateBot(bot.id);
      if (!deleted) throw new KiloError("NOT_FOUND", `No team '${id}'`);
    },
    async members(id, options) {
      const { actor } = optionsOf(options);
      await getTeam(id);
      if (actor) await access.assertTeamMember(actor.userId, id, `list the members of team '${id}'`);
      return access.teams().members.listByTeam(id);
    },
    async addMember(id, input, options) {
      const parsed = parseInput(AddTeamMemberInputSchema, input, "team member");
      const { actor } = optionsOf(options);
      await access.assertTeamAdmin(actor, teamId(id));
      const now = clock.now();
      return storage.transaction(async (tx) => {
        await tx.users.upsert({ id: parsed.userId, name: null, metadata: {}, createdAt: now });
        return repositoriesOf(tx).members.save({
          teamId: id,
          userId: parsed.userId,
          role: parsed.role,
          createdAt: now,
          updatedAt: now,
        });
      });
    },
    async removeMember(id, userId, options) {
      const { actor } = optionsOf(options);
      const team = teamId(id);
      const user = parseInput(IdSchema, userId, "user id");
      // Leaving a team needs no admin.
      if (actor?.userId === user) await getTeam(team);
      else await access.assertTeamAdmin(actor, team);
      const bots = await botsInTeam(user, team);
      const removed = await storage.transaction(async (tx) => {
        if (!(await repositoriesOf(tx).members.delete(team, user))) return false;
        const now = clock.now();
        for (const bot of bots) await tx.bots.update({ ...withoutTeam(bot), updatedAt: now });
        return true;
      });
      if (!removed) throw new KiloError("NOT_FOUND", `User '${user}' is not a member of team '${team}'`);
      for (const bot of bots) await cache.invalidateBot(bot.id);
    },
  };
}

/** The bot out of its team (no `teamId`: a bot without a team reads back without one). */
export function withoutTeam(bot: Bot): Bot {
  const { teamId: _teamId, ...rest } = bot;
  return rest;
}
