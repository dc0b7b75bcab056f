/**
 * Fast-path latency of the default skill matcher at 100, 1,000 and 10,000
 * synthetic skills (seeded, so every run indexes the same catalog and sends
 * the same queries).
 *
 * For each size: index build time, then median and p99 over many queries
 * (after a warm-up) of `KeywordIndex.search` alone and of `SkillMatcher.match`
 * with the LLM fallback off (index cached, context requirements included).
 *
 * Run: `npx tsx bench/matcher.ts`. Writes `bench/results/matcher.json`.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Bot } from "../src/domain/bot.js";
import type { Skill } from "../src/domain/skill.js";
import { KiloError } from "../src/errors.js";
import type { LlmGateway } from "../src/ports/llm-gateway.js";
import type { SkillCatalog } from "../src/ports/skill-matcher.js";
import { buildKeywordIndex } from "../src/skills/keyword-index.js";
import { createSkillMatcher } from "../src/skills/skill-matcher.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** Catalog sizes measured. */
export const SIZES = [100, 1_000, 10_000] as const;
const WARMUP_QUERIES = 1_000;
const MEASURED_QUERIES = 10_000;
const SEED = 20_240_601;

/** Figures for one catalog size. */
export interface MatcherSizeResult {
  skills: number;
  examples: number;
  triggers: number;
  buildMs: number;
  search: { medianMs: number; p99Ms: number; maxMs: number };
  match: { medianMs: number; p99Ms: number; maxMs: number };
  /** Share of measured queries the fast path decided confidently. */
  confidentShare: number;
  /** Share of queries written from one skill's vocabulary that the fast path decided confidently and right. */
  confidentCorrectShare: number;
}

/** What {@link benchMatcher} returns and saves. */
export interface MatcherResult {
  benchmark: "matcher";
  date: string;
  node: string;
  seed: number;
  queries: { warmup: number; measured: number };
  target: { p99Ms: number; skills: number; met: boolean };
  sizes: MatcherSizeResult[];
}

/** Mulberry32: small, fast, deterministic (also used by `evolution.ts`). */
export function rng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const NOUNS = (
  "order invoice recipe workout plant medication expense budget meeting appointment client lead task habit book " +
  "movie trip flight hotel package delivery subscription bill payment receipt supplier shipment employee shift " +
  "timesheet lesson student homework grade patient symptom meal grocery pantry wine coffee garden seed harvest " +
  "chicken egg goat horse dog vet vaccine car fuel mileage repair tire bike run swim hike yoga weight sleep mood " +
  "journal podcast episode song playlist concert ticket event party guest gift wedding birthday contract lease " +
  "tenant rent mortgage loan stock dividend tax donation volunteer project milestone bug release server domain " +
  "password backup photo album cake bread cookie pie candle soap quilt painting commission sketch booking " +
  "reservation table menu catering invoice quote estimate job site tool rental lab sample experiment paper " +
  "citation grant deadline interview candidate offer referral review complaint ticket refund warranty"
).split(" ");

const ROLES = (
  "tracker log planner reminder manager journal counter scheduler organizer checklist diary monitor ledger " +
  "catalog registry inbox queue board calendar assistant"
).split(" ");

const QUALIFIERS = (
  "daily weekly monthly family team client personal shop farm studio clinic school office home garage kitchen " +
  "bakery salon gym church club"
).split(" ");

const VERBS = "add log track check update cancel schedule review count record plan confirm pay send".split(
  " ",
);
const PEOPLE = "maria john aisha chen olga pedro fatima liam noah emma sofia yuki omar lena ivan".split(" ");
const WHEN = "today tomorrow on monday on friday on saturday next week this weekend tonight at noon".split(
  " ",
);
const SYLLABLES = "ka zo ri mu tel bra vin sol ux pe dra qui lo nor fen gal tis mar ov ren".split(" ");

const CHITCHAT = [
  "how are you doing today",
  "tell me a joke",
  "what is the meaning of life",
  "thanks, that was helpful",
  "what's the weather like tomorrow in lisbon",
  "who won the football game last night",
  "i feel a bit tired this afternoon",
  "can you explain how photosynthesis works",
  "good morning!",
  "what do you think about jazz",
];

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

function pseudoWord(random: () => number): string {
  const count = 2 + Math.floor(random() * 2);
  let word = "";
  for (let i = 0; i < count; i++) word += pick(random, SYLLABLES);
  return word;
}

interface SyntheticSkill {
  skill: Skill;
  noun: string;
  qualifier: string;
}

/** A deterministic catalog of `count` skills with names, triggers, descriptions and 3–6 examples each. */
export function syntheticSkills(count: number, seed = SEED): SyntheticSkill[] {
  const random = rng(seed);
  const created = new Date(0);
  const skills: SyntheticSkill[] = [];
  for (let i = 0; i < count; i++) {
    const noun = pick(random, NOUNS);
    const role = pick(random, ROLES);
    // Half the skills carry a made-up proper name (a shop, a project), so the vocabulary grows with the catalog.
    const qualifier = random() < 0.5 ? pseudoWord(random) : pick(random, QUALIFIERS);
    const name = `${cap(qualifier)} ${cap(noun)} ${cap(role)}`;
    const examples: string[] = [];
    const templates = [
      () => `add a new ${noun} for ${pick(random, PEOPLE)} ${pick(random, WHEN)}`,
      () => `how many ${noun}s did i ${pick(random, VERBS)} ${pick(random, WHEN)}`,
      () => `show my ${qualifier} ${noun}s`,
      () => `remind me to ${pick(random, VERBS)} the ${noun} ${pick(random, WHEN)}`,
      () => `mark the ${noun} for ${pick(random, PEOPLE)} as done`,
      () => `what ${noun}s are due ${pick(random, WHEN)}`,
      () => `${pick(random, VERBS)} ${1 + Math.floor(random() * 9)} ${noun}s for the ${qualifier} ${role}`,
    ];
    const exampleCount = 3 + Math.floor(random() * 4);
    for (let e = 0; e < exampleCount; e++) examples.push(pick(random, templates)());
    skills.push({
      noun,
      qualifier,
      skill: {
        id: `skill-${i}`,
        botId: "bench-bot",
        scope: { kind: "bot", id: "bench-bot" },
        name,
        description: `Keeps the ${qualifier} ${noun}s in a ${role}: adds, updates and reports on them.`,
        instructions: "",
        triggers: [`new ${noun}`, `${qualifier} ${noun}`, `${noun} ${role}`],
        examples,
        dataFields: [],
        requiredIntegrations: [],
        taskType: "skill_execution",
        status: "active",
        metadata: {},
        createdAt: created,
        updatedAt: created,
      },
    });
  }
  return skills;
}

/** Queries: four in five written from a random skill's vocabulary, one in five chit-chat. */
export function syntheticQueries(
  skills: readonly SyntheticSkill[],
  count: number,
  seed = SEED + 1,
): Array<{ text: string; skillId: string | null }> {
  const random = rng(seed);
  const queries: Array<{ text: string; skillId: string | null }> = [];
  for (let i = 0; i < count; i++) {
    if (random() < 0.2) {
      queries.push({ text: pick(random, CHITCHAT), skillId: null });
      continue;
    }
    const { skill, noun, qualifier } = pick(random, skills);
    const forms = [
      `new ${noun} for ${cap(pick(random, PEOPLE))}, ${pick(random, WHEN)}, ${qualifier}`,
      `what ${qualifier} ${noun}s do i have ${pick(random, WHEN)}?`,
      `please ${pick(random, VERBS)} the ${qualifier} ${noun} for ${pick(random, PEOPLE)}`,
      `How many ${noun}s are left in the ${qualifier} list?`,
    ];
    queries.push({ text: pick(random, forms), skillId: skill.id });
  }
  return queries;
}

function stats(times: number[]): { medianMs: number; p99Ms: number; maxMs: number } {
  const sorted = [...times].sort((x, y) => x - y);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return { medianMs: round(at(0.5)), p99Ms: round(at(0.99)), maxMs: round(sorted.at(-1) ?? 0) };
}

const refusingGateway: LlmGateway = {
  complete() {
    return Promise.reject(new KiloError("INTERNAL", "the matcher bench runs the fast path only"));
  },
  stream() {
    throw new KiloError("INTERNAL", "the matcher bench runs the fast path only");
  },
};

const bot: Bot = {
  id: "bench-bot",
  userId: "bench-user",
  name: "Bench",
  soul: null,
  personality: null,
  context: null,
  metadata: {},
  createdAt: new Date(0),
  updatedAt: new Date(0),
};

async function measureSize(size: number): Promise<MatcherSizeResult> {
  const synthetic = syntheticSkills(size);
  const skills = synthetic.map((entry) => entry.skill);
  const queries = syntheticQueries(synthetic, WARMUP_QUERIES + MEASURED_QUERIES);

  const started = performance.now();
  const index = buildKeywordIndex(skills);
  const buildMs = performance.now() - started;

  for (const query of queries.slice(0, WARMUP_QUERIES)) index.search(query.text, 5);
  const searchTimes: number[] = [];
  let confident = 0;
  let confidentCorrect = 0;
  let fromSkills = 0;
  for (const query of queries.slice(WARMUP_QUERIES)) {
    const t0 = performance.now();
    const result = index.search(query.text, 5);
    searchTimes.push(performance.now() - t0);
    if (result.confident) confident++;
    if (query.skillId !== null) {
      fromSkills++;
      if (result.confident && result.candidates[0]?.skill.id === query.skillId) confidentCorrect++;
    }
  }

  const matcher = createSkillMatcher({ gateway: refusingGateway, llmFallback: false });
  const catalog: SkillCatalog = { key: `bench-${size}`, skills };
  const matchTimes: number[] = [];
  const input = { catalog, bot, userId: "bench-user", conversationId: null };
  for (const query of queries.slice(0, WARMUP_QUERIES))
    await matcher.match({ ...input, message: query.text });
  for (const query of queries.slice(WARMUP_QUERIES)) {
    const t0 = performance.now();
    await matcher.match({ ...input, message: query.text });
    matchTimes.push(performance.now() - t0);
  }

  return {
    skills: size,
    examples: skills.reduce((sum, skill) => sum + skill.examples.length, 0),
    triggers: skills.reduce((sum, skill) => sum + skill.triggers.length, 0),
    buildMs: round(buildMs),
    search: stats(searchTimes),
    match: stats(matchTimes),
    confidentShare: round(confident / MEASURED_QUERIES),
    confidentCorrectShare: round(confidentCorrect / Math.max(1, fromSkills)),
  };
}

/** Runs the matcher latency benchmark, prints a table and saves `bench/results/matcher.json`. */
export async function benchMatcher(): Promise<MatcherResult> {
  const sizes: MatcherSizeResult[] = [];
  for (const size of SIZES) sizes.push(await measureSize(size));
  const largest = sizes.at(-1)!;
  const result: MatcherResult = {
    benchmark: "matcher",
    date: new Date().toISOString(),
    node: process.version,
    seed: SEED,
    queries: { warmup: WARMUP_QUERIES, measured: MEASURED_QUERIES },
    target: { p99Ms: 1, skills: 10_000, met: largest.match.p99Ms <= 1 },
    sizes,
  };

  const rows = [
    [
      "skills",
      "examples",
      "build ms",
      "search p50",
      "search p99",
      "match p50",
      "match p99",
      "confident",
      "conf+right",
    ],
    ...sizes.map((s) => [
      String(s.skills),
      String(s.examples),
      s.buildMs.toFixed(1),
      `${s.search.medianMs.toFixed(4)} ms`,
      `${s.search.p99Ms.toFixed(4)} ms`,
      `${s.match.medianMs.toFixed(4)} ms`,
      `${s.match.p99Ms.toFixed(4)} ms`,
      `${(s.confidentShare * 100).toFixed(1)}%`,
      `${(s.confidentCorrectShare * 100).toFixed(1)}%`,
    ]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  console.log(
    `Skill matcher fast path (${MEASURED_QUERIES} queries per size after ${WARMUP_QUERIES} warm-up)`,
  );
  console.log(rows.map((row) => row.map((cell, c) => cell.padStart(widths[c]!)).join("  ")).join("\n"));
  console.log(`target p99 <= 1 ms at 10,000 skills (match): ${result.target.met ? "met" : "MISSED"}`);

  const out = path.join(repoRoot, "bench", "results");
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, "matcher.json"), `${JSON.stringify(result, null, 2)}\n`);
  return result;
}

function cap(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

function round(value: number): number {
  return Math.round(value * 1e5) / 1e5;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  await benchMatcher();
}
