/**
 * Summarizes a V8 CPU profile (`node --cpu-prof`): self time by function and
 * by file, and inclusive time (each function counted once per sample).
 *
 *   npm run bench:peers -- --only=kilo-memory --reps=1 --cpu-prof --n=10000
 *   npx tsx bench/peers/profile-summary.ts <tmp>/kilo-peers-profiles/<file>.cpuprofile [rows]
 */
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, rowsArg] = process.argv.slice(2);
if (!file) throw new Error("usage: profile-summary.ts <file.cpuprofile> [rows]");
const rows = Number(rowsArg ?? 30);
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;

const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
const parents = new Map<number, number>();
for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id);
const selfTime = new Map<number, number>();
profile.samples.forEach((id, i) => {
  selfTime.set(id, (selfTime.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
});
const total = [...selfTime.values()].reduce((sum, value) => sum + value, 0);

const fileOf = (node: ProfileNode) =>
  node.callFrame.url.replace(/^file:\/\//, "").replace(/^.*\/node_modules\//, "");
const label = (node: ProfileNode) =>
  `${node.callFrame.functionName || "(anonymous)"} ${fileOf(node)}:${node.callFrame.lineNumber + 1}`;

const bySelf = new Map<string, number>();
const byFile = new Map<string, number>();
const inclusive = new Map<string, number>();
for (const [id, time] of selfTime) {
  const node = nodes.get(id)!;
  bySelf.set(label(node), (bySelf.get(label(node)) ?? 0) + time);
  const where = fileOf(node) || node.callFrame.functionName;
  byFile.set(where, (byFile.get(where) ?? 0) + time);
  const seen = new Set<string>();
  for (let at: number | undefined = id; at !== undefined; at = parents.get(at)) {
    const name = label(nodes.get(at)!);
    if (seen.has(name)) continue;
    seen.add(name);
    inclusive.set(name, (inclusive.get(name) ?? 0) + time);
  }
}

function print(title: string, table: Map<string, number>): void {
  console.log(`\n== ${title} (of ${(total / 1000).toFixed(0)} ms sampled)`);
  for (const [name, time] of [...table].sort((a, b) => b[1] - a[1]).slice(0, rows)) {
    console.log(`${((100 * time) / total).toFixed(1).padStart(5)}%  ${name}`);
  }
}
print("self time by function", bySelf);
print("self time by file", byFile);
print("inclusive time", inclusive);
