import { type SkillScope, scopeKey } from "../domain/scope.js";
import type { CreateSkillInput, Skill, UpdateSkillInput } from "../domain/skill.js";
import { KiloError, toKiloError } from "../errors.js";
import type { Logger } from "../ports/logger.js";
import type { SkillVolume, SkillVolumeChangeOptions, SkillVolumeVersion } from "../ports/skill-volume.js";
import { parseSkillMarkdown } from "./markdown/skill-markdown-parser.js";
import { serializeSkillMarkdown } from "./markdown/skill-markdown-serializer.js";
import { isSkillFolderName } from "./skill-volume-layout.js";
import { type SkillVolumeSyncResult, syncSkillVolume } from "./skill-volume-sync.js";

/** The writes of the skill service a volume import applies (they must not write back to the volume). */
export interface SkillVolumeTarget {
  /** The scope's skills as storage has them. */
  listScope(scope: SkillScope): Promise<Skill[]>;
  create(
    scope: SkillScope,
    skill: CreateSkillInput,
    change: { author: string; reason: string },
  ): Promise<unknown>;
  update(
    scope: SkillScope,
    skillId: string,
    patch: UpdateSkillInput,
    change: { author: string; reason: string },
  ): Promise<unknown>;
  delete(scope: SkillScope, skillId: string): Promise<void>;
  /** The skill of the scope, or `NOT_FOUND`. */
  find(scope: SkillScope, skillId: string): Promise<Skill>;
}

/** What `kilo.skills.volume.sync` did for one scope. */
export type SkillVolumeSyncReport = Pick<
  SkillVolumeSyncResult,
  "applied" | "unchanged" | "problems" | "failed" | "pickedUp" | "ignored"
>;

/** The folder a skill has on a volume, or `null` when it is not mirrored (structured, or a name that is no folder name). */
function folderOf(skill: Skill): string | null {
  return skill.markdown !== undefined && isSkillFolderName(skill.name) ? skill.name : null;
}

/**
 * Keeps a {@link SkillVolume} in step with storage. Storage stays the source
 * of truth kilo reads from; the volume gets one version per change to a
 * Markdown skill (mirror), and what people change on the volume by hand is
 * imported as skill versions (sync). Imports never write back, so a
 * hand-written file is not re-serialized into a reformatting commit.
 */
export class SkillVolumeLink {
  /** Skills being imported from the volume, by scope and name: their changes are not mirrored back. */
  private readonly importing = new Set<string>();

  constructor(
    readonly volume: SkillVolume,
    private readonly target: SkillVolumeTarget,
    private readonly logger: Logger,
  ) {}

  /**
   * Mirrors a stored change to the volume: writes the skill's SKILL.md (and
   * removes its old folder after a rename). A volume failure is logged, not
   * thrown: the change is stored, and the volume catches up on the next change.
   */
  async saved(scope: SkillScope, skill: Skill, previous: Skill | null, change: SkillVolumeChangeOptions) {
    const folder = folderOf(skill);
    const before = previous ? folderOf(previous) : null;
    if (this.importing.has(this.key(scope, folder ?? before ?? ""))) return;
    await this.guard(scope, skill, async () => {
      if (before !== null && before !== folder) await this.volume.remove(scope, before, change);
      if (folder !== null) {
        const markdown = serializeSkillMarkdown({ ...skill, markdown: skill.markdown! });
        await this.volume.write(scope, { name: folder, markdown }, change);
      }
    });
  }

  /** Mirrors a deleted skill: removes its folder. */
  async removed(scope: SkillScope, skill: Skill, change: SkillVolumeChangeOptions) {
    const folder = folderOf(skill);
    if (folder === null || this.importing.has(this.key(scope, folder))) return;
    await this.guard(scope, skill, () => this.volume.remove(scope, folder, change));
  }

  /**
   * Imports what changed on the volume outside kilo for one scope (hand
   * edits are committed by the volume first): creates, updates and deletes
   * the scope's Markdown skills as versions authored by the commits' authors.
   */
  async sync(scope: SkillScope): Promise<SkillVolumeSyncReport> {
    const result = await syncSkillVolume({
      volume: this.volume,
      scope,
      storedSkills: () => this.target.listScope(scope),
      apply: (action) =>
        this.quietly(scope, action.name, async () => {
          const change = { author: action.author, reason: action.reason };
          if (action.kind === "create") await this.target.create(scope, action.skill, change);
          else if (action.kind === "update")
            await this.target.update(scope, action.skillId, action.skill, change);
          else await this.target.delete(scope, action.skillId);
        }),
    });
    for (const problem of result.problems) {
      this.logger.warn(
        { scope: scopeKey(scope), problem: problem.message },
        "skill volume: change not imported",
      );
    }
    for (const { action, error } of result.failed) {
      this.logger.warn(
        { scope: scopeKey(scope), skill: action.name, code: error.code, error: error.message },
        "skill volume: import failed",
      );
    }
    return result;
  }

  /** The volume's versions of a skill, newest first, each with its SKILL.md diff. */
  async history(scope: SkillScope, skillId: string, limit?: number): Promise<SkillVolumeVersion[]> {
    const folder = this.mirrored(await this.target.find(scope, skillId));
    return this.volume.history(scope, folder, limit === undefined ? {} : { limit });
  }

  /**
   * Restores a skill's folder as it was at a volume version (a new version on
   * the volume), then imports it, so storage gets the restored skill as a
   * new skill version. Returns the skill as stored afterwards.
   */
  async rollback(scope: SkillScope, skillId: string, version: string, change: SkillVolumeChangeOptions) {
    const folder = this.mirrored(await this.target.find(scope, skillId));
    await this.volume.rollback(scope, folder, version, change);
    // The volume counts its own rollback as seen, so storage takes the restored file from it here.
    const restored = await this.volume.read(scope, folder);
    if (!restored)
      throw new KiloError("NOT_FOUND", `The ${this.volume.name} volume has no skill '${folder}'`);
    const { skill } = parseSkillMarkdown(restored.markdown, { file: `${folder}/SKILL.md` });
    const reason = change.reason ?? `Rollback to volume version ${version.slice(0, 12)}`;
    await this.quietly(scope, folder, async () => {
      await this.target.update(
        scope,
        skillId,
        { name: folder, description: skill.description, triggers: skill.triggers, markdown: skill.markdown },
        { author: change.author?.name ?? "system", reason },
      );
    });
    return this.target.find(scope, skillId);
  }

  private mirrored(skill: Skill): string {
    const folder = folderOf(skill);
    if (folder === null) {
      throw new KiloError(
        "VALIDATION_FAILED",
        `Skill '${skill.name}' (${skill.id}) is not on the ${this.volume.name} volume: only Markdown skills named by the Agent Skills rule (lowercase words joined by hyphens) are`,
      );
    }
    return folder;
  }

  private async quietly(scope: SkillScope, name: string, work: () => Promise<void>) {
    const key = this.key(scope, name);
    this.importing.add(key);
    try {
      await work();
    } finally {
      this.importing.delete(key);
    }
  }

  private async guard(scope: SkillScope, skill: Skill, work: () => Promise<unknown>) {
    try {
      await work();
    } catch (error) {
      const failure = toKiloError(error, "STORAGE_FAILED", "Cannot write the skill volume");
      this.logger.warn(
        { scope: scopeKey(scope), skill: skill.name, code: failure.code, error: failure.message },
        `skill volume: the change is stored but not on the ${this.volume.name} volume`,
      );
    }
  }

  private key(scope: SkillScope, name: string) {
    return `${scopeKey(scope)}/${name}`;
  }
}
