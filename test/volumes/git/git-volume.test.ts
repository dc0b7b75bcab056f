import { existsSync, lstatSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { gitVolume } from "../../../adapters/volumes/git/index.js";
import { KiloError } from "../../../src/errors.js";
import {
  bakers,
  fs,
  git,
  gitLogOneline,
  handWrite,
  hasGitBinary,
  KILO,
  newVolume,
  skillMarkdown,
  subjects,
  system,
  tempRoot,
} from "./helpers.js";

const ann = { name: "Ann Baker", email: "ann@bakery.example" };

async function expectKiloError(promise: Promise<unknown>, code: string): Promise<KiloError> {
  const error = await promise.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(KiloError.is(error), `expected a KiloError ${code}, got ${String(error)}`).toBe(true);
  expect((error as KiloError).code).toBe(code);
  expect((error as KiloError).adapter).toBe("git");
  return error as KiloError;
}

describe("gitVolume: layout and commits", () => {
  it("creates one repository per scope on first write, on branch main, one commit per change", async () => {
    const { volume, root } = newVolume();
    expect(await volume.list(bakers)).toEqual([]);
    expect(existsSync(join(root, "team"))).toBe(false);

    const first = await volume.write(
      bakers,
      { name: "cake-orders", markdown: skillMarkdown("cake-orders") },
      { author: ann, reason: "First version" },
    );
    const second = await volume.write(
      bakers,
      {
        name: "cake-orders",
        markdown: skillMarkdown("cake-orders", "# Steps\n\n1. Ask for the pickup day.\n"),
      },
      { author: ann, reason: "Ask for the pickup day\n\nCustomers kept forgetting." },
    );
    await volume.write(system, { name: "greeting", markdown: skillMarkdown("greeting") });

    const dir = join(root, "team", "bakers");
    expect(volume.directoryOf(bakers)).toBe(dir);
    expect(readFileSync(join(dir, "cake-orders", "SKILL.md"), "utf8")).toContain("pickup day");
    expect(await git.currentBranch({ fs, dir })).toBe("main");

    const log = await git.log({ fs, dir });
    expect(log.map((entry) => entry.oid)).toEqual([second.commit!.id, first.commit!.id]);
    expect(log[0]!.commit.author).toMatchObject({ name: "Ann Baker", email: "ann@bakery.example" });
    expect(log[0]!.commit.committer).toMatchObject(KILO);
    expect(log[0]!.commit.message).toBe(
      "Update cake-orders: Ask for the pickup day\n\nAsk for the pickup day\n\nCustomers kept forgetting.\n\nKilo-Change: update\n",
    );
    expect(await subjects(dir)).toEqual([
      "Update cake-orders: Ask for the pickup day",
      "Add cake-orders: First version",
    ]);
    expect(second.commit).toMatchObject({
      author: { name: "Ann Baker", email: "ann@bakery.example" },
      reason: "Ask for the pickup day\n\nCustomers kept forgetting.",
      origin: "kilo",
    });
    expect(second.commit!.time).toBeInstanceOf(Date);

    // The system scope is a repository of its own, authored by the volume when no author is given.
    const systemLog = await git.log({ fs, dir: join(root, "system") });
    expect(systemLog).toHaveLength(1);
    expect(systemLog[0]!.commit.author).toMatchObject(KILO);

    if (hasGitBinary) {
      const lines = gitLogOneline(dir);
      expect(lines).toHaveLength(2);
      expect(lines[0]).toMatch(/^[0-9a-f]{7,} Ann Baker\|kilo\|Update cake-orders: Ask for the pickup day$/);
      expect(lines[1]).toMatch(/^[0-9a-f]{7,} Ann Baker\|kilo\|Add cake-orders: First version$/);
    }
  });

  it("makes no commit when the content is already that", async () => {
    const { volume } = newVolume();
    const markdown = skillMarkdown("cake-orders");
    expect((await volume.write(system, { name: "cake-orders", markdown })).commit).not.toBeNull();
    expect(await volume.write(system, { name: "cake-orders", markdown })).toEqual({ commit: null });
    expect(await subjects(volume.directoryOf(system))).toHaveLength(1);
  });

  it("writes scopes under <root>/<kind>/<id>, with ':' in ids escaped", async () => {
    const { volume, root } = newVolume();
    await volume.write({ kind: "user", id: "tg:42" }, { name: "notes", markdown: skillMarkdown("notes") });
    await volume.write({ kind: "bot", id: "bot_1" }, { name: "notes", markdown: skillMarkdown("notes") });
    expect(existsSync(join(root, "user", "tg%3A42", ".git"))).toBe(true);
    expect(existsSync(join(root, "user", "tg%3A42", "notes", "SKILL.md"))).toBe(true);
    expect(existsSync(join(root, "bot", "bot_1", "notes", "SKILL.md"))).toBe(true);
    // Scopes never share anything.
    expect(await volume.list({ kind: "user", id: "tg" })).toEqual([]);
    expect((await volume.list({ kind: "bot", id: "bot_1" })).map((skill) => skill.name)).toEqual(["notes"]);
  });

  it("serializes concurrent changes to one repository into a line of commits", async () => {
    const { volume } = newVolume();
    const names = ["a-one", "b-two", "c-three", "d-four", "e-five"];
    const results = await Promise.all(
      names.map((name) => volume.write(system, { name, markdown: skillMarkdown(name) })),
    );
    expect(results.every((result) => result.commit !== null)).toBe(true);
    const log = await git.log({ fs, dir: volume.directoryOf(system) });
    expect(log).toHaveLength(5);
    for (const [index, entry] of log.entries()) {
      expect(entry.commit.parent).toEqual(index === log.length - 1 ? [] : [log[index + 1]!.oid]);
    }
    expect((await volume.list(system)).map((skill) => skill.name)).toEqual(names);
    expect((await volume.changes(system)).changes).toEqual([]);
  });

  it("removes a skill as one commit, and does nothing for a skill it does not have", async () => {
    const { volume } = newVolume();
    await volume.write(system, {
      name: "cake-orders",
      markdown: skillMarkdown("cake-orders"),
      resources: [{ path: "references/prices.md", content: "# Prices\n" }],
    });
    const removed = await volume.remove(system, "cake-orders", {
      author: ann,
      reason: "Nobody orders cakes",
    });
    expect(removed.commit).toMatchObject({ origin: "kilo", reason: "Nobody orders cakes" });
    expect(existsSync(join(volume.directoryOf(system), "cake-orders"))).toBe(false);
    expect(await volume.read(system, "cake-orders")).toBeNull();
    expect(await subjects(volume.directoryOf(system))).toEqual([
      "Remove cake-orders: Nobody orders cakes",
      "Add cake-orders",
    ]);
    expect(await volume.remove(system, "cake-orders")).toEqual({ commit: null });
    expect(await volume.remove(bakers, "cake-orders")).toEqual({ commit: null });
    expect((await volume.changes(system)).changes).toEqual([]);
  });
});

describe("gitVolume: reading, history and rollback", () => {
  it("reads a skill at the latest version or at a commit, and lists the scope", async () => {
    const { volume } = newVolume();
    const v1 = await volume.write(system, { name: "cake-orders", markdown: skillMarkdown("cake-orders") });
    const newer = skillMarkdown("cake-orders", "# Steps\n\n1. Ask for the size.\n");
    const v2 = await volume.write(system, { name: "cake-orders", markdown: newer });
    await volume.write(system, { name: "bread", markdown: skillMarkdown("bread") });

    expect(await volume.read(system, "cake-orders")).toEqual({
      name: "cake-orders",
      markdown: newer,
      resources: [],
      version: await git.resolveRef({ fs, dir: volume.directoryOf(system), ref: "HEAD" }),
    });
    const old = await volume.read(system, "cake-orders", { version: v1.commit!.id.slice(0, 8) });
    expect(old).toMatchObject({ markdown: skillMarkdown("cake-orders"), version: v1.commit!.id });
    expect(await volume.read(system, "bread", { version: v2.commit!.id })).toBeNull();
    expect(await volume.read(system, "missing")).toBeNull();
    expect((await volume.list(system)).map((skill) => [skill.name, skill.markdown])).toEqual([
      ["bread", skillMarkdown("bread")],
      ["cake-orders", newer],
    ]);
    await expectKiloError(volume.read(system, "cake-orders", { version: "0000000" }), "NOT_FOUND");
  });

  it("gives a skill's history newest first with who, when, why and the SKILL.md diff", async () => {
    const { volume } = newVolume();
    await volume.write(
      system,
      { name: "cake-orders", markdown: skillMarkdown("cake-orders") },
      { author: ann },
    );
    await volume.write(system, { name: "bread", markdown: skillMarkdown("bread") });
    await volume.write(
      system,
      {
        name: "cake-orders",
        markdown: skillMarkdown("cake-orders", "# Steps\n\n1. Ask for the pickup day.\n"),
      },
      { reason: "pickup day" },
    );
    await volume.write(system, {
      name: "cake-orders",
      markdown: skillMarkdown("cake-orders", "# Steps\n\n1. Ask for the pickup day.\n"),
      resources: [{ path: "prices.md", content: "12 EUR\n" }],
    });
    await volume.remove(system, "cake-orders", { reason: "retired" });

    const versions = await volume.history(system, "cake-orders");
    expect(versions.map((version) => [version.change, version.reason, version.author.name])).toEqual([
      ["deleted", "retired", "kilo"],
      ["updated", null, "kilo"],
      ["updated", "pickup day", "kilo"],
      ["created", null, "Ann Baker"],
    ]);
    expect(versions[2]!.diff).toContain("--- cake-orders/SKILL.md");
    expect(versions[2]!.diff).toContain("-1. Ask for the cake.");
    expect(versions[2]!.diff).toContain("+1. Ask for the pickup day.");
    expect(versions[3]!.diff).toContain("+name: cake-orders");
    expect(versions[0]!.diff).toContain("-name: cake-orders");
    // Only a resource changed: the SKILL.md diff has no hunks.
    expect(versions[1]!.diff).not.toContain("@@");
    expect(versions.every((version) => version.time instanceof Date && version.origin === "kilo")).toBe(true);

    expect(await volume.history(system, "cake-orders", { limit: 2 })).toHaveLength(2);
    expect(await volume.history(system, "bread")).toHaveLength(1);
    expect(await volume.history(system, "never-was")).toEqual([]);
    expect(await volume.history(bakers, "cake-orders")).toEqual([]);
  });

  it("rolls back by writing the old content as a new commit, never rewriting history", async () => {
    const { volume } = newVolume();
    const v1 = await volume.write(system, {
      name: "cake-orders",
      markdown: skillMarkdown("cake-orders"),
      resources: [{ path: "references/prices.md", content: "10 EUR\n" }],
    });
    await volume.write(system, {
      name: "cake-orders",
      markdown: skillMarkdown("cake-orders", "# Broken\n"),
      resources: [{ path: "references/new.md", content: "new\n" }],
    });
    const before = await git.log({ fs, dir: volume.directoryOf(system) });

    const rolled = await volume.rollback(system, "cake-orders", v1.commit!.id.slice(0, 7), { author: ann });
    const after = await git.log({ fs, dir: volume.directoryOf(system) });
    expect(after).toHaveLength(before.length + 1);
    expect(after.slice(1).map((entry) => entry.oid)).toEqual(before.map((entry) => entry.oid));
    expect(after[0]!.oid).toBe(rolled.commit!.id);
    expect(after[0]!.commit.message.split("\n")[0]).toBe(
      `Roll back cake-orders to ${v1.commit!.id.slice(0, 7)}`,
    );
    expect(rolled.commit).toMatchObject({
      origin: "kilo",
      author: { name: "Ann Baker" },
      reason: `Restore cake-orders as it was at ${v1.commit!.id}.`,
    });

    const now = await volume.read(system, "cake-orders");
    expect(now).toMatchObject({
      markdown: skillMarkdown("cake-orders"),
      resources: ["references/prices.md"],
    });
    expect(existsSync(join(volume.directoryOf(system), "cake-orders", "references", "new.md"))).toBe(false);
    const history = await volume.history(system, "cake-orders");
    expect(history[0]!.diff).toContain("-# Broken");
    expect(history[0]!.diff).toContain("+# Steps");

    // Rolling back to what is already there commits nothing.
    expect(await volume.rollback(system, "cake-orders", v1.commit!.id)).toEqual({ commit: null });
    expect((await volume.changes(system)).changes).toEqual([]);
  });

  it("refuses a rollback to an unknown version, or one where the skill did not exist", async () => {
    const { volume } = newVolume();
    const first = await volume.write(system, { name: "bread", markdown: skillMarkdown("bread") });
    await volume.write(system, { name: "cake-orders", markdown: skillMarkdown("cake-orders") });
    await expectKiloError(volume.rollback(system, "cake-orders", first.commit!.id), "NOT_FOUND");
    await expectKiloError(volume.rollback(system, "cake-orders", "deadbeef"), "NOT_FOUND");
    await expectKiloError(volume.rollback(bakers, "cake-orders", first.commit!.id), "NOT_FOUND");
    await expectKiloError(volume.rollback(system, "cake-orders", "HEAD~1"), "VALIDATION_FAILED");
    // A tree id is not a version.
    const tree = (await git.readCommit({ fs, dir: volume.directoryOf(system), oid: first.commit!.id })).commit
      .tree;
    await expectKiloError(volume.rollback(system, "cake-orders", tree), "NOT_FOUND");
    expect(await subjects(volume.directoryOf(system))).toHaveLength(2);
  });
});

describe("gitVolume: resource files", () => {
  it("writes resources beside the SKILL.md, keeps them when not given, replaces the set when given", async () => {
    const { volume } = newVolume();
    const dir = volume.directoryOf(system);
    await volume.write(system, {
      name: "pdf-tools",
      markdown: skillMarkdown("pdf-tools", "See [forms](references/forms.md) and `scripts/fill.py`.\n"),
      resources: [
        { path: "references/forms.md", content: "# Forms\n" },
        { path: "scripts/fill.py", content: "print('fill')\n" },
        { path: "assets/logo.png", content: new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 255]) },
      ],
    });
    expect(readFileSync(join(dir, "pdf-tools", "references", "forms.md"), "utf8")).toBe("# Forms\n");
    expect((await volume.read(system, "pdf-tools"))!.resources).toEqual([
      "assets/logo.png",
      "references/forms.md",
      "scripts/fill.py",
    ]);
    expect(Array.from((await volume.readResource(system, "pdf-tools", "assets/logo.png"))!)).toEqual([
      0x89, 0x50, 0x4e, 0x47, 0, 255,
    ]);
    expect(await volume.readResource(system, "pdf-tools", "missing.md")).toBeNull();

    // No `resources`: only the SKILL.md changes.
    await volume.write(system, { name: "pdf-tools", markdown: skillMarkdown("pdf-tools", "Shorter.\n") });
    expect((await volume.read(system, "pdf-tools"))!.resources).toHaveLength(3);

    // `resources` given: exactly these files afterwards, empty folders gone.
    const replaced = await volume.write(system, {
      name: "pdf-tools",
      markdown: skillMarkdown("pdf-tools", "Shorter.\n"),
      resources: [{ path: "references/forms.md", content: "# Forms v2\n" }],
    });
    expect(replaced.commit).not.toBeNull();
    expect((await volume.read(system, "pdf-tools"))!.resources).toEqual(["references/forms.md"]);
    expect(existsSync(join(dir, "pdf-tools", "scripts"))).toBe(false);
    expect(existsSync(join(dir, "pdf-tools", "assets"))).toBe(false);
    const older = (await volume.history(system, "pdf-tools"))[2]!.id;
    expect(
      new TextDecoder().decode(
        (await volume.readResource(system, "pdf-tools", "scripts/fill.py", { version: older }))!,
      ),
    ).toBe("print('fill')\n");
  });

  it("restores an executable script's mode on rollback", async () => {
    const { volume } = newVolume();
    const dir = volume.directoryOf(system);
    await volume.write(system, { name: "pdf-tools", markdown: skillMarkdown("pdf-tools") });
    // Someone adds an executable script by hand and commits it.
    const script = join(dir, "pdf-tools", "scripts", "run.sh");
    handWrite(dir, "pdf-tools/scripts/run.sh", "#!/bin/sh\necho hi\n");
    fs.chmodSync(script, 0o755);
    await git.add({ fs, dir, filepath: "pdf-tools/scripts/run.sh" });
    const added = await git.commit({ fs, dir, message: "Add a script", author: ann });
    const tree = await git.readTree({ fs, dir, oid: added, filepath: "pdf-tools/scripts" });
    expect(tree.tree[0]!.mode).toBe("100755");

    await volume.write(system, { name: "pdf-tools", markdown: skillMarkdown("pdf-tools"), resources: [] });
    expect(existsSync(script)).toBe(false);
    await volume.rollback(system, "pdf-tools", added);
    expect(statSync(script).mode & 0o111).not.toBe(0);
    expect(readFileSync(script, "utf8")).toBe("#!/bin/sh\necho hi\n");
    const restored = await git.readTree({
      fs,
      dir,
      oid: await git.resolveRef({ fs, dir, ref: "HEAD" }),
      filepath: "pdf-tools/scripts",
    });
    expect(restored.tree[0]!.mode).toBe("100755");
  });
});

describe("gitVolume: changes made outside kilo", () => {
  it("picks up a hand edit to the working tree: commits it, reports it until marked seen", async () => {
    const { volume } = newVolume();
    const dir = volume.directoryOf(system);
    await volume.write(system, { name: "cake-orders", markdown: skillMarkdown("cake-orders") });
    await volume.write(system, { name: "bread", markdown: skillMarkdown("bread") });
    expect((await volume.changes(system)).changes).toEqual([]);

    const edited = skillMarkdown("cake-orders", "# Steps\n\n1. Ask for the flavour.\n");
    handWrite(dir, "cake-orders/SKILL.md", edited);
    const found = await volume.changes(system);
    expect(found.pickedUp).toMatchObject({
      origin: "picked-up",
      author: { name: "kilo", email: "kilo@bakery.example" },
      reason: "Changed outside kilo and picked up from the working tree: cake-orders/SKILL.md (modified).",
    });
    expect(found.changes).toEqual([
      {
        name: "cake-orders",
        kind: "updated",
        skill: { name: "cake-orders", markdown: edited, resources: [], version: found.pickedUp!.id },
        commits: [found.pickedUp],
        marker: {
          from: expect.stringMatching(/^[0-9a-f]{40}$/),
          to: expect.stringMatching(/^[0-9a-f]{40}$/),
        },
      },
    ]);
    expect((await subjects(dir))[0]).toBe("Pick up changes made outside kilo");
    if (hasGitBinary)
      expect(gitLogOneline(dir)[0]).toMatch(/ kilo\|kilo\|Pick up changes made outside kilo$/);

    // Not marked seen: reported again (no second pick-up commit), then gone once marked.
    const again = await volume.changes(system);
    expect(again.pickedUp).toBeNull();
    expect(again.changes.map((change) => change.name)).toEqual(["cake-orders"]);
    expect(await subjects(dir)).toHaveLength(3);
    await volume.markSeen(system, again.changes);
    expect(await volume.changes(system)).toEqual({ changes: [], pickedUp: null, ignored: [] });
    expect((await volume.read(system, "cake-orders"))!.markdown).toBe(edited);
  });

  it("picks up a commit someone else made, with their name and message", async () => {
    const { volume } = newVolume();
    const dir = volume.directoryOf(bakers);
    await volume.write(bakers, { name: "cake-orders", markdown: skillMarkdown("cake-orders") });

    handWrite(dir, "cake-orders/SKILL.md", skillMarkdown("cake-orders", "# Steps\n\n1. Hand edited.\n"));
    handWrite(dir, "croissants/SKILL.md", skillMarkdown("croissants"));
    await git.add({ fs, dir, filepath: "." });
    const bob = { name: "Bob Hand", email: "bob@bakery.example" };
    const first = await git.commit({ fs, dir, message: "Tweak cakes, add croissants", author: bob });
    handWrite(dir, "croissants/SKILL.md", skillMarkdown("croissants", "# Butter\n"));
    await git.add({ fs, dir, filepath: "croissants/SKILL.md" });
    const second = await git.commit({ fs, dir, message: "More butter\n\nBecause.", author: bob });

    const found = await volume.changes(bakers);
    expect(found.pickedUp).toBeNull();
    expect(found.changes.map((change) => [change.name, change.kind])).toEqual([
      ["cake-orders", "updated"],
      ["croissants", "created"],
    ]);
    const [cakes, croissants] = found.changes;
    expect(cakes!.skill!.markdown).toContain("Hand edited");
    expect(cakes!.commits.map((commit) => commit.id)).toEqual([first]);
    expect(cakes!.commits[0]).toMatchObject({
      author: { name: "Bob Hand", email: "bob@bakery.example" },
      origin: "outside",
      reason: "Tweak cakes, add croissants",
    });
    expect(croissants!.commits.map((commit) => [commit.id, commit.reason])).toEqual([
      [second, "More butter\n\nBecause."],
      [first, "Tweak cakes, add croissants"],
    ]);
    expect(croissants!.skill!.markdown).toContain("# Butter");

    await volume.markSeen(bakers, found.changes);
    expect((await volume.changes(bakers)).changes).toEqual([]);
    // kilo's next write goes on top of the hand commits.
    const next = await volume.write(bakers, { name: "croissants", markdown: skillMarkdown("croissants") });
    expect((await git.readCommit({ fs, dir, oid: next.commit!.id })).commit.parent).toEqual([second]);
    const history = await volume.history(bakers, "croissants");
    expect(history.map((version) => [version.origin, version.author.name])).toEqual([
      ["kilo", "kilo"],
      ["outside", "Bob Hand"],
      ["outside", "Bob Hand"],
    ]);
  });

  it("reports a folder deleted by hand as a delete, and one added by hand as a create", async () => {
    const { volume } = newVolume();
    const dir = volume.directoryOf(system);
    await volume.write(system, {
      name: "cake-orders",
      markdown: skillMarkdown("cake-orders"),
      resources: [{ path: "notes.md", content: "notes\n" }],
    });
    rmSync(join(dir, "cake-orders"), { recursive: true });
    handWrite(dir, "bread/SKILL.md", skillMarkdown("bread"));
    handWrite(dir, "bread/references/flour.md", "# Flour\n");

    const found = await volume.changes(system);
    expect(found.pickedUp!.reason).toBe(
      "Changed outside kilo and picked up from the working tree: bread/SKILL.md (added), bread/references/flour.md (added), cake-orders/SKILL.md (deleted), cake-orders/notes.md (deleted).",
    );
    expect(found.changes.map((change) => [change.name, change.kind, change.skill?.resources])).toEqual([
      ["bread", "created", ["references/flour.md"]],
      ["cake-orders", "deleted", undefined],
    ]);
    expect(found.changes[1]!.skill).toBeNull();
    expect(found.changes[1]!.commits).toEqual([found.pickedUp]);
    expect(found.changes[1]!.marker.to).toBeNull();
    await volume.markSeen(system, found.changes);
    expect((await volume.changes(system)).changes).toEqual([]);
    expect(await volume.read(system, "cake-orders")).toBeNull();
    expect((await volume.history(system, "cake-orders"))[0]).toMatchObject({
      change: "deleted",
      origin: "picked-up",
    });
  });

  it("does not report what kilo wrote itself, even on top of unseen hand changes", async () => {
    const { volume } = newVolume();
    const dir = volume.directoryOf(system);
    await volume.write(system, { name: "bread", markdown: skillMarkdown("bread") });
    handWrite(dir, "bread/SKILL.md", skillMarkdown("bread", "# Hand\n"));
    // kilo writes another skill: the hand edit is committed first (one pick-up commit), and stays unseen.
    await volume.write(system, { name: "cake-orders", markdown: skillMarkdown("cake-orders") });
    expect(await subjects(dir)).toEqual([
      "Add cake-orders",
      "Pick up changes made outside kilo",
      "Add bread",
    ]);
    const found = await volume.changes(system);
    expect(found.changes.map((change) => change.name)).toEqual(["bread"]);
    expect(found.changes[0]!.commits.map((commit) => commit.origin)).toEqual(["picked-up"]);
  });

  it("keeps a stale change from hiding a newer one: markSeen compares and sets", async () => {
    const { volume } = newVolume();
    const dir = volume.directoryOf(system);
    await volume.write(system, { name: "bread", markdown: skillMarkdown("bread") });
    handWrite(dir, "bread/SKILL.md", skillMarkdown("bread", "# Hand one\n"));
    const stale = await volume.changes(system);
    handWrite(dir, "bread/SKILL.md", skillMarkdown("bread", "# Hand two\n"));
    const fresh = await volume.changes(system);
    expect(fresh.changes[0]!.skill!.markdown).toContain("Hand two");
    expect(fresh.changes[0]!.commits).toHaveLength(2);

    await volume.markSeen(system, fresh.changes);
    await volume.markSeen(system, stale.changes); // too late: ignored
    expect((await volume.changes(system)).changes).toEqual([]);

    // kilo overwrote the skill after a change was found: the found change is stale.
    handWrite(dir, "bread/SKILL.md", skillMarkdown("bread", "# Hand three\n"));
    const found = await volume.changes(system);
    await volume.write(system, { name: "bread", markdown: skillMarkdown("bread", "# Kilo\n") });
    await volume.markSeen(system, found.changes);
    expect((await volume.changes(system)).changes).toEqual([]);
    expect((await volume.read(system, "bread"))!.markdown).toContain("# Kilo");
  });

  it("commits hand edits before its own write to the same skill, so history keeps them", async () => {
    const { volume } = newVolume();
    const dir = volume.directoryOf(system);
    await volume.write(system, { name: "bread", markdown: skillMarkdown("bread") });
    handWrite(dir, "bread/SKILL.md", skillMarkdown("bread", "# Hand\n"));
    await volume.write(system, { name: "bread", markdown: skillMarkdown("bread", "# Kilo\n") });
    const history = await volume.history(system, "bread");
    expect(history.map((version) => version.origin)).toEqual(["kilo", "picked-up", "kilo"]);
    expect(history[1]!.diff).toContain("+# Hand");
    expect((await volume.changes(system)).changes).toEqual([]);
  });

  it("turns a folder of skills put there by hand into a repository, and names folders that are not skills", async () => {
    const root = tempRoot();
    const volume = gitVolume({ root, author: KILO });
    const dir = join(root, "team", "bakers");
    handWrite(dir, "cake-orders/SKILL.md", skillMarkdown("cake-orders"));
    handWrite(dir, "Python Testing/SKILL.md", skillMarkdown("python-testing"));
    handWrite(dir, "drafts/idea.md", "not a skill yet\n");
    handWrite(dir, "README.md", "# Our skills\n");

    const found = await volume.changes(bakers);
    expect(existsSync(join(dir, ".git"))).toBe(true);
    expect(await git.currentBranch({ fs, dir })).toBe("main");
    expect(found.changes.map((change) => [change.name, change.kind])).toEqual([["cake-orders", "created"]]);
    expect(found.ignored).toEqual([
      { path: "Python Testing", reason: expect.stringContaining("lowercase letters and digits") },
      { path: "drafts", reason: "the folder has no SKILL.md" },
    ]);
    expect(await volume.changes({ kind: "team", id: "nobody" })).toEqual({
      changes: [],
      pickedUp: null,
      ignored: [],
    });
    expect(existsSync(join(root, "team", "nobody"))).toBe(false);
  });

  it("picks up a commit made with the git binary too", async () => {
    const { volume } = newVolume();
    const dir = volume.directoryOf(system);
    await volume.write(system, { name: "bread", markdown: skillMarkdown("bread") });
    handWrite(dir, "bread/SKILL.md", skillMarkdown("bread", "# From the shell\n"));
    const { spawnSync } = await import("node:child_process");
    const committed = hasGitBinary
      ? spawnSync(
          "git",
          [
            "-c",
            "safe.directory=*",
            "-c",
            "user.name=Shell User",
            "-c",
            "user.email=shell@bakery.example",
            "commit",
            "-am",
            "Edit from the shell",
          ],
          { cwd: dir, encoding: "utf8" },
        ).status === 0
      : false;
    const found = await volume.changes(system);
    expect(found.changes.map((change) => change.name)).toEqual(["bread"]);
    expect(found.changes[0]!.skill!.markdown).toContain("# From the shell");
    // With the binary the edit is the shell commit; without it, kilo picks the edit up from the working tree.
    expect(found.changes[0]!.commits[0]).toMatchObject(
      committed
        ? { origin: "outside", author: { name: "Shell User" }, reason: "Edit from the shell" }
        : { origin: "picked-up", author: { name: "kilo" } },
    );
    expect(found.pickedUp === null).toBe(committed);
    expect(committed).toBe(hasGitBinary);
  });
});

describe("gitVolume: validation and safety", () => {
  it("refuses skill names that break the Agent Skills rule, writing nothing", async () => {
    const { volume, root } = newVolume();
    for (const name of [
      "../escape",
      "Cake",
      "cake--orders",
      "-cake",
      "cake-",
      "",
      ".git",
      "a/b",
      "a".repeat(65),
    ]) {
      await expectKiloError(
        volume.write(system, { name, markdown: skillMarkdown("x") }),
        "VALIDATION_FAILED",
      );
      await expectKiloError(volume.read(system, name), "VALIDATION_FAILED");
      await expectKiloError(volume.remove(system, name), "VALIDATION_FAILED");
      await expectKiloError(volume.history(system, name), "VALIDATION_FAILED");
    }
    expect(await volume.write(system, { name: "a".repeat(64), markdown: skillMarkdown("x") })).not.toEqual({
      commit: null,
    });
    expect(fs.readdirSync(root)).toEqual(["system"]);
  });

  it("refuses resource paths that leave the skill's folder or clash", async () => {
    const { volume, root } = newVolume();
    const bad = [
      "../outside.md",
      "refs/../../outside.md",
      "/etc/passwd",
      ".git/config",
      "refs/.GIT/hooks",
      "SKILL.md",
      "skill.md",
      "refs\\win.md",
      "refs//double.md",
      "refs/",
      "./here.md",
      "bad\u0000name",
    ];
    for (const path of bad) {
      const error = await expectKiloError(
        volume.write(system, {
          name: "cake",
          markdown: skillMarkdown("cake"),
          resources: [{ path, content: "x" }],
        }),
        "VALIDATION_FAILED",
      );
      expect(error.message).toContain("resources.0.path");
      await expectKiloError(volume.readResource(system, "cake", path), "VALIDATION_FAILED");
    }
    await expectKiloError(
      volume.write(system, {
        name: "cake",
        markdown: skillMarkdown("cake"),
        resources: [
          { path: "Notes.md", content: "a" },
          { path: "notes.md", content: "b" },
        ],
      }),
      "VALIDATION_FAILED",
    );
    await expectKiloError(
      volume.write(system, {
        name: "cake",
        markdown: skillMarkdown("cake"),
        resources: [
          { path: "refs", content: "a" },
          { path: "refs/x.md", content: "b" },
        ],
      }),
      "VALIDATION_FAILED",
    );
    expect(fs.readdirSync(root)).toEqual([]);
  });

  it("refuses malformed scopes, versions, reasons and authors", async () => {
    const { volume, root } = newVolume();
    const markdown = skillMarkdown("cake");
    await expectKiloError(
      volume.write({ kind: "team", id: ".." }, { name: "cake", markdown }),
      "VALIDATION_FAILED",
    );
    await expectKiloError(
      volume.write({ kind: "user", id: "a/b" }, { name: "cake", markdown }),
      "VALIDATION_FAILED",
    );
    await expectKiloError(
      volume.write({ kind: "planet" } as never, { name: "cake", markdown }),
      "VALIDATION_FAILED",
    );
    await expectKiloError(
      volume.write(system, { name: "cake", markdown }, { author: { name: "Eve <eve@x>" } }),
      "VALIDATION_FAILED",
    );
    await expectKiloError(
      volume.write(system, { name: "cake", markdown }, { reason: "x".repeat(2001) }),
      "VALIDATION_FAILED",
    );
    await expectKiloError(volume.read(system, "cake", { version: "main" }), "VALIDATION_FAILED");
    await expectKiloError(volume.history(system, "cake", { limit: 0 }), "VALIDATION_FAILED");
    await expectKiloError(
      volume.markSeen(system, [{ name: "../x", marker: { from: null, to: null } } as never]),
      "VALIDATION_FAILED",
    );
    expect(() => volume.directoryOf({ kind: "bot", id: "." })).toThrow(KiloError);
    expect(fs.readdirSync(root)).toEqual([]);
  });

  it("never writes through a symlink planted in the working tree", async () => {
    const { volume, root } = newVolume();
    const outside = tempRoot();
    await volume.write(system, { name: "cake", markdown: skillMarkdown("cake") });
    const dir = volume.directoryOf(system);
    rmSync(join(dir, "cake"), { recursive: true });
    symlinkSync(outside, join(dir, "cake"));
    mkdirSync(join(dir, "bread"));
    symlinkSync(outside, join(dir, "bread", "refs"));

    await volume.write(system, { name: "cake", markdown: skillMarkdown("cake", "# Again\n") });
    await volume.write(system, {
      name: "bread",
      markdown: skillMarkdown("bread"),
      resources: [{ path: "refs/x.md", content: "inside\n" }],
    });
    expect(fs.readdirSync(outside)).toEqual([]);
    expect(lstatSync(join(dir, "cake")).isDirectory()).toBe(true);
    expect(readFileSync(join(dir, "bread", "refs", "x.md"), "utf8")).toBe("inside\n");
    expect(root).not.toBe(outside);

    // A link someone committed is never read as a resource, and goes when kilo sets the exact set of files.
    handWrite(outside, "secret.md", "secret\n");
    symlinkSync(join(outside, "secret.md"), join(dir, "bread", "secret.md"));
    await volume.changes(system);
    expect((await volume.read(system, "bread"))!.resources).toEqual(["refs/x.md"]);
    await volume.write(system, { name: "bread", markdown: skillMarkdown("bread"), resources: [] });
    expect(existsSync(join(dir, "bread", "secret.md"))).toBe(false);
    expect(readFileSync(join(outside, "secret.md"), "utf8")).toBe("secret\n");
    const tracked = await git.listFiles({ fs, dir });
    expect(tracked.filter((path) => path.startsWith("bread/"))).toEqual(["bread/SKILL.md"]);
  });

  it("checks its options and refuses calls after close", async () => {
    expect(() => gitVolume({ root: "", author: KILO })).toThrow(/root/);
    expect(() => gitVolume({ root: tempRoot(), author: { name: "" } })).toThrow(/author/);
    expect(() => gitVolume({ root: tempRoot(), author: KILO, git: {} as never })).toThrow(/isomorphic-git/);
    const fromModule = gitVolume({ root: tempRoot(), author: KILO, git });
    expect(
      (await fromModule.write(system, { name: "cake", markdown: skillMarkdown("cake") })).commit,
    ).not.toBeNull();

    const { volume } = newVolume();
    const writing = volume.write(system, { name: "cake", markdown: skillMarkdown("cake") });
    await volume.close();
    expect((await writing).commit).not.toBeNull();
    await expectKiloError(volume.list(system), "CLOSED");
  });

  it("uses the clock it is given for commit times", async () => {
    const at = new Date("2025-03-04T05:06:07Z");
    const volume = gitVolume({ root: tempRoot(), author: KILO, clock: { now: () => at } });
    const { commit } = await volume.write(system, { name: "cake", markdown: skillMarkdown("cake") });
    expect(commit!.time).toEqual(at);
    expect((await volume.history(system, "cake"))[0]!.time).toEqual(at);
  });
});
