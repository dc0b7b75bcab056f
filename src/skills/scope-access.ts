import type { CacheLoader } from "../cache/cache-loader.js";
import type { Actor } from "../domain/actor.js";
import type { Bot } from "../domain/bot.js";
import type { SkillScope } from "../domain/scope.js";
import type { TeamRole } from "../domain/team.js";
import { KiloError } from "../errors.js";
import type { Storage, TeamMemberRepository, TeamRepository } from "../ports/storage.js";

/** Dependencies of {@link ScopeAccess}. */
export interface ScopeAccessDependencies {
  storage: Storage;
  /** Bots are read through it (cache-first). */
  cache: CacheLoader;
}

/**
 * Who may read and write the skills of a scope. The host calling kilo is
 * trusted: without an actor everything is allowed. With an actor (the user
 * a call acts for):
 *
 * | scope | read | write |
 * | --- | --- | --- |
 * | `system` | everyone | nobody (the host writes it, without an actor) |
 * | `team:T` | members of T | admins of T |
 * | `user:U` | U | U |
 * | `bot:B` | B's owner | B's owner |
 *
 * A refusal is `FORBIDDEN`, except for another user's bot, which is
 * reported as missing (`NOT_FOUND`) so bot ids cannot be probed. The scope
 * itself must exist: an unknown bot or team is `NOT_FOUND`, actor or not.
 *
 * @example
 * ```ts
 * await access.assertWrite({ userId: "alice" }, { kind: "team", id: "bakers" }); // alice must be an admin
 * ```
 */
export class ScopeAccess {
  constructor(private readonly deps: ScopeAccessDependencies) {}

  /** Throws unless the scope exists and the actor (if any) may read its skills. */
  async assertRead(actor: Actor | undefined, scope: SkillScope): Promise<void> {
    switch (scope.kind) {
      case "system":
        return;
      case "bot":
        await this.bot(scope.id, actor);
        return;
      case "user":
        if (actor && actor.userId !== scope.id) {
          throw forbidden(actor, `read the skills of user '${scope.id}'`);
        }
        return;
      case "team": {
        await this.team(scope.id);
        if (actor && (await this.role(scope.id, actor.userId)) === null) {
          throw forbidden(actor, `read the skills of team '${scope.id}': they are not a member`);
        }
      }
    }
  }

  /** Throws unless the scope exists and the actor (if any) may write its skills. */
  async assertWrite(actor: Actor | undefined, scope: SkillScope): Promise<void> {
    switch (scope.kind) {
      case "system":
        if (actor) {
          throw forbidden(
            actor,
            "change system skills: the system scope is read-only for users (the host changes it with a call that names no actor)",
          );
        }
        return;
      case "bot":
        await this.bot(scope.id, actor);
        return;
      case "user":
        if (actor && actor.userId !== scope.id) {
          throw forbidden(actor, `change the skills of user '${scope.id}'`);
        }
        return;
      case "team":
        await this.assertTeamAdmin(actor, scope.id);
    }
  }

  /** Throws `NOT_FOUND` for an unknown team, `FORBIDDEN` unless the actor (if any) is one of its admins. */
  async assertTeamAdmin(actor: Actor | undefined, teamId: string): Promise<void> {
    await this.team(teamId);
    if (actor && (await this.role(teamId, actor.userId)) !== "admin") {
      throw forbidden(actor, `change team '${teamId}' or its skills: only the team's admins may`);
    }
  }

  /** Throws `NOT_FOUND` for an unknown team, `FORBIDDEN` unless the user is one of its members. */
  async assertTeamMember(userId: string, teamId: string, what: string): Promise<void> {
    await this.team(teamId);
    if ((await this.role(teamId, userId)) === null) {
      throw new KiloError(
        "FORBIDDEN",
        `User '${userId}' cannot ${what}: they are not a member of team '${teamId}'`,
      );
    }
  }

  /** The user's role in the team, or `null` when they are not a member (or the storage has no teams). */
  async role(teamId: string, userId: string): Promise<TeamRole | null> {
    const member = await this.deps.storage.teamMembers?.get(teamId, userId);
    return member?.role ?? null;
  }

  /** The bot (cache-first); `NOT_FOUND` when it does not exist or belongs to another user than the actor. */
  async bot(botId: string, actor?: Actor): Promise<Bot> {
    const bot = await this.deps.cache.bot(botId);
    if (!bot) throw new KiloError("NOT_FOUND", `No bot '${botId}'`);
    if (actor && bot.userId !== actor.userId) {
      throw new KiloError("NOT_FOUND", `User '${actor.userId}' has no bot '${botId}'`);
    }
    return bot;
  }

  /** The storage's teams, or `CONFIGURATION_INVALID` when it keeps none. */
  teams(): { teams: TeamRepository; members: TeamMemberRepository } {
    const { teams, teamMembers } = this.deps.storage;
    if (!teams || !teamMembers) {
      throw new KiloError(
        "CONFIGURATION_INVALID",
        `Storage adapter '${this.deps.storage.name}' keeps no teams (it has no \`teams\` and \`teamMembers\` repositories)`,
      );
    }
    return { teams, members: teamMembers };
  }

  private async team(teamId: string): Promise<void> {
    if (!(await this.teams().teams.get(teamId))) throw new KiloError("NOT_FOUND", `No team '${teamId}'`);
  }
}

function forbidden(actor: Actor, what: string): KiloError {
  return new KiloError("FORBIDDEN", `User '${actor.userId}' cannot ${what}`);
}

/** `scope` for messages: `team 'bakers'`, `the system scope`, ... */
export function describeScope(scope: SkillScope): string {
  return scope.kind === "system" ? "the system scope" : `${scope.kind} '${scope.id}'`;
}
