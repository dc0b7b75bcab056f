import { rmSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { KiloError } from "../../../src/errors.js";
import type { SkillVolume } from "../../../src/ports/skill-volume.js";
import { parseSkillMarkdown } from "../../../src/skills/markdown/skill-markdown-parser.js";
import {
  type SkillVolumeImportAction,
  type SkillVolumeStoredSkill,
  syncSkillVolume,
} from "../../../src/skills/skill-volume-sync.js";
import { bakers, fs, git, handWrite, newVolume, skillMarkdown } from "./helpers.js";

/** A scope's skills in memory, with the versions the core would write: what the wiring does. */
function fakeStore() {
  const skills = new Map<string, SkillVolumeStoredSkill>();
  const versions: Array<{ kind: string; name: string; author: string; reason: string }> = [];
  let next = 0;
  const apply = async (action: SkillVolumeImportAction) => {
    versions.push({ kind: action.kind, name: action.name, author: action.author, reason: action.reason });
    if (action.kind === "create") skills.set(`skill_${++next}`, { id: `skill_${next}`, ...action.skill });
    else if (action.kind === "update") skills.set(action.skillId, { id: action.skillId, ...action.skill });
    else skills.delete(action.skillId);
  };
  return { skills, versions, apply, storedSkills: async () => [...skills.values()] };
}

function sync(volume: SkillVolume, store: ReturnType<typeof fakeStore>) {
  return syncSkillVolume({ volume, scope: bakers, storedSkills: store.storedSkills, apply: store.apply });
}

describe("syncSkillVolume with the git volume", () => {
  it("imports hand edits, hand commits and deletions as versions, once", async () => {
    const { volume } = newVolume();
    const store = fakeStore();
    const dir = volume.directoryOf(bakers);

    // What kilo writes itself is not imported back.
    await volume.write(bakers, { name: "cake-orders", markdown: skillMarkdown("cake-orders") });
    store.skills.set("skill_cake", {
      id: "skill_cake",
      ...parseSkillMarkdown(skillMarkdown("cake-orders")).skill,
    });
    expect((await sync(volume, store)).applied).toEqual([]);

    handWrite(
      dir,
      "cake-orders/SKILL.md",
      skillMarkdown("cake-orders", "# Steps\n\n1. Ask for the flavour.\n"),
    );
    handWrite(dir, "bread/SKILL.md", skillMarkdown("bread"));
    await git.add({ fs, dir, filepath: "bread/SKILL.md" });
    await git.commit({
      fs,
      dir,
      message: "Add bread",
      author: { name: "Bob Hand", email: "bob@bakery.example" },
    });

    const first = await sync(volume, store);
    expect(first.pickedUp).toMatchObject({ origin: "picked-up" });
    expect(first.applied.map((action) => [action.kind, action.name, action.author])).toEqual([
      ["create", "bread", "bob@bakery.example"],
      ["update", "cake-orders", "kilo@bakery.example"],
    ]);
    expect(store.versions[0]!.reason).toMatch(/^Add bread \(commit [0-9a-f]{7}\)$/);
    expect(store.versions[1]!.reason).toContain(
      "picked up from the working tree: cake-orders/SKILL.md (modified)",
    );
    expect(store.skills.get("skill_cake")!.markdown!.body).toContain("flavour");

    // Nothing new: nothing applied, no commit made.
    const commits = (await git.log({ fs, dir })).length;
    expect(await sync(volume, store)).toMatchObject({ applied: [], unchanged: [], problems: [], failed: [] });
    expect(await git.log({ fs, dir })).toHaveLength(commits);

    rmSync(join(dir, "bread"), { recursive: true });
    const removal = await sync(volume, store);
    expect(removal.applied.map((action) => [action.kind, action.name])).toEqual([["delete", "bread"]]);
    expect([...store.skills.values()].map((skill) => skill.name)).toEqual(["cake-orders"]);
  });

  it("keeps a broken SKILL.md and a failed apply unseen until they import", async () => {
    const { volume } = newVolume();
    const store = fakeStore();
    const dir = volume.directoryOf(bakers);
    handWrite(dir, "broken/SKILL.md", "no front matter here\n");
    handWrite(dir, "flaky/SKILL.md", skillMarkdown("flaky"));

    let failing = true;
    const result = await syncSkillVolume({
      volume,
      scope: bakers,
      storedSkills: store.storedSkills,
      apply: async (action) => {
        if (failing) throw new Error("storage is down");
        await store.apply(action);
      },
    });
    expect(result.problems.map((problem) => [problem.file, problem.error.code])).toEqual([
      ["broken/SKILL.md", "VALIDATION_FAILED"],
    ]);
    expect(result.failed.map((failure) => [failure.action.name, failure.error.code])).toEqual([
      ["flaky", "HOST_CALLBACK_FAILED"],
    ]);
    expect(KiloError.is(result.failed[0]!.error)).toBe(true);

    failing = false;
    handWrite(dir, "broken/SKILL.md", skillMarkdown("broken"));
    const retry = await sync(volume, store);
    expect(retry.applied.map((action) => action.name)).toEqual(["broken", "flaky"]);
    expect((await sync(volume, store)).applied).toEqual([]);
  });

  it("reads the texts of resource files the SKILL.md refers to", async () => {
    const { volume } = newVolume();
    const store = fakeStore();
    const dir = volume.directoryOf(bakers);
    handWrite(
      dir,
      "pdf-tools/SKILL.md",
      skillMarkdown("pdf-tools", "See [forms](references/forms.md), [logo](logo.png).\n"),
    );
    handWrite(dir, "pdf-tools/references/forms.md", "# Forms\n");
    handWrite(dir, "pdf-tools/unreferenced.md", "ignored\n");
    fs.writeFileSync(join(dir, "pdf-tools", "logo.png"), new Uint8Array([0x89, 0xff, 0xfe, 0]));

    const result = await sync(volume, store);
    const action = result.applied[0]!;
    expect(action.kind === "create" && action.skill.markdown.resources).toEqual([
      { path: "references/forms.md", content: "# Forms\n" },
      { path: "logo.png" },
    ]);
  });
});
