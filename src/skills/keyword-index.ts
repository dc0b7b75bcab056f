import type { Skill } from "../domain/skill.js";

/**
 * The fast path of the default skill matcher: an inverted index over every
 * skill's `triggers`, `examples`, `name` and `description`, built once per
 * skill catalog and queried once per message.
 *
 * A message is scored against each skill with three pieces of evidence, each
 * in 0..1:
 *
 * - **trigger**: a trigger phrase of the skill occurs in the message (token
 *   for token, after normalisation). Longer phrases and phrases no other
 *   skill uses count more.
 * - **example**: cosine similarity (TF-IDF over unigrams and bigrams) between
 *   the message and the skill's nearest example utterance.
 * - **keywords**: BM25 of the message against the skill as one document,
 *   divided by what the message could score at most, so it reads as "how much
 *   of the message's informative words this skill accounts for".
 *
 * They are combined by noisy-OR into the skill's score (0..1). The decision
 * is confident when the best score reaches {@link FastPathThresholds.minScore}
 * and leads the runner-up by {@link FastPathThresholds.minMargin}.
 *
 * Querying touches only the postings of the message's terms, and at most
 * {@link KeywordIndexOptions.maxPostingsPerTerm} of each (the heaviest: long
 * postings lists are kept in descending weight order), so the work per
 * message stops growing with the catalog once common terms reach that cap.
 * An index is not safe to search re-entrantly from two threads; in one
 * JavaScript realm searches run one at a time, which is all it needs.
 *
 * @module
 */

/** The parts of a skill the index reads. */
export type IndexableSkill = Pick<Skill, "id" | "name" | "description" | "triggers" | "examples">;

/** When a fast-path decision counts as confident. */
export interface FastPathThresholds {
  /** The best candidate's score must reach this (0..1). */
  minScore: number;
  /** The best score minus the runner-up's must reach this (0..1). */
  minMargin: number;
}

/**
 * Defaults chosen by a grid search on CLINC150 `val` with `oos_val` +
 * `oos_train` (never `test`; see `bench/clinc150.ts`): the pair with the most
 * val coverage whose confident decisions kept precision ≥ 97% and accepted
 * ≤ 2% of out-of-scope queries, leaving headroom below the 95% / 5% targets
 * for unseen data. `minScore` is capped at 0.7 so one exclusive trigger word
 * with any support from the skill's text still decides.
 */
export const DEFAULT_FAST_PATH_THRESHOLDS: Readonly<FastPathThresholds> = Object.freeze({
  minScore: 0.7,
  minMargin: 0.125,
});

/** Options of {@link buildKeywordIndex}. */
export interface KeywordIndexOptions {
  /** Default thresholds of {@link KeywordIndex.search}. */
  thresholds?: Partial<FastPathThresholds> | undefined;
  /**
   * Postings read per query term, highest weight first (default 512). Bounds
   * query time for very common terms in very large catalogs.
   */
  maxPostingsPerTerm?: number | undefined;
}

/** Why a candidate scored what it did. */
export interface KeywordEvidence {
  /** The longest trigger phrase of the skill found in the message, as written in the skill. */
  trigger: string | null;
  /** Trigger evidence, 0..1. */
  triggerScore: number;
  /** The skill's example most similar to the message. */
  example: string | null;
  /** Cosine similarity to that example, 0..1. */
  exampleScore: number;
  /** Share of the message's term weight the skill's vocabulary accounts for (normalised BM25), 0..1. */
  keywordScore: number;
  /** Message terms found in the skill's document, most informative first (at most 5). */
  matchedTerms: string[];
}

/** One skill the fast path considered. */
export interface KeywordCandidate<S extends IndexableSkill = Skill> {
  skill: S;
  /** Combined score, 0..1. */
  score: number;
  evidence: KeywordEvidence;
}

/** The fast path's answer for one message. */
export interface KeywordSearchResult<S extends IndexableSkill = Skill> {
  /** Best candidates first; only skills with a positive score. */
  candidates: KeywordCandidate<S>[];
  /** The best candidate's score, or 0. */
  score: number;
  /** Best score minus the runner-up's (the runner-up counts as 0 when there is none). */
  margin: number;
  /**
   * 0..1: estimated probability that the best candidate is right, from score
   * and margin (a logistic fit on CLINC150 val; see `bench/clinc150.ts`).
   */
  confidence: number;
  /** Whether score and margin clear the thresholds. */
  confident: boolean;
}

/** A fast-path index over one skill catalog. Immutable once built. */
export interface KeywordIndex<S extends IndexableSkill = Skill> {
  /** Number of skills indexed. */
  readonly size: number;
  /**
   * Scores the message against the catalog.
   *
   * @param limit how many candidates to return at most (default 5).
   * @param thresholds overrides the index's thresholds for this call.
   */
  search(message: string, limit?: number, thresholds?: Partial<FastPathThresholds>): KeywordSearchResult<S>;
}

// Articles, auxiliaries, prepositions, pronouns and fillers. Question words and
// possessives stay out of unigrams but still form bigrams ("my name" vs "your name").
const STOPWORDS = new Set(
  (
    "a an the and or but if so of to in on at for with by from into onto about as than then " +
    "is are was were be been being am do doe did done have ha had having will would shall should can could " +
    "may might must i me my mine myself you your yours yourself we us our ours he him his she her hers " +
    "it its they them their theirs this that these those there here what which who whom whose when where " +
    "why how all any some just also very really too not no nor only own same such up down out off over " +
    "again once please pleas ok okay hi hello hey thank thanks want wanna need let get got like know tell " +
    "im ive id youre dont doesnt didnt cant wont isnt arent"
  ).split(" "),
);

/**
 * Normalises text into stemmed tokens: strips accents, lowercases, drops
 * apostrophes ("what's" -> "whats"), splits on anything but letters and
 * digits, and strips plural, `-ing`, `-ed` and final `-e`/`-y` endings so
 * "orders", "ordered" and "ordering" all become "order".
 */
export function tokenize(text: string): string[] {
  const cleaned = text
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/['’`]/g, "");
  const tokens: string[] = [];
  for (const raw of cleaned.split(/[^\p{L}\p{N}]+/u)) {
    if (raw.length > 0) tokens.push(stem(raw));
  }
  return tokens;
}

function stem(word: string): string {
  if (word.length <= 3 || /\d/.test(word)) return word;
  let w = word;
  if (w.endsWith("ies") && w.length > 4) w = `${w.slice(0, -3)}i`;
  else if (w.endsWith("sses")) w = w.slice(0, -2);
  else if (w.endsWith("s") && !/(ss|us|is)$/.test(w)) w = w.slice(0, -1);
  if (w.endsWith("ing") && w.length >= 6) w = undouble(w.slice(0, -3));
  else if (w.endsWith("ed") && w.length >= 5 && !w.endsWith("eed")) w = undouble(w.slice(0, -2));
  if (w.length > 3 && w.endsWith("e")) w = w.slice(0, -1);
  else if (w.length > 3 && w.endsWith("y")) w = `${w.slice(0, -1)}i`;
  return w;
}

function undouble(w: string): string {
  const last = w.at(-1);
  if (w.length > 3 && last === w.at(-2) && last !== undefined && !"lsz".includes(last)) return w.slice(0, -1);
  return w;
}

/** Whether a normalised token is a stopword (ignored as a unigram, kept in bigrams and trigger phrases). */
export function isStopword(token: string): boolean {
  return STOPWORDS.has(token);
}

function isStop(token: string): boolean {
  return STOPWORDS.has(token);
}

// Articles carry nothing even in a bigram: "make a cake" and "make the cake" should agree.
const ARTICLES = new Set(["a", "an", "the"]);

/** Unigrams (content words only) and adjacent bigrams (articles skipped) with at least one content word. */
function termCounts(
  all: readonly string[],
  into = new Map<string, number>(),
  weight = 1,
): Map<string, number> {
  const tokens = all.filter((token) => !ARTICLES.has(token));
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    const stop = isStop(token);
    if (!stop) into.set(token, (into.get(token) ?? 0) + weight);
    const next = tokens[i + 1];
    if (next !== undefined && !(stop && isStop(next))) {
      const bigram = `${token} ${next}`;
      into.set(bigram, (into.get(bigram) ?? 0) + weight);
    }
  }
  return into;
}

function isBigram(term: string): boolean {
  return term.includes(" ");
}

interface Phrase {
  tokens: string[];
  /** Skills using this phrase, with the trigger as each wrote it. */
  owners: Map<number, string>;
  base: number;
}

interface Postings {
  offsets: Int32Array;
  ids: Int32Array;
  weights: Float32Array;
}

// BM25 parameters: the usual ones.
const K1 = 1.2;
const B = 0.75;
// Field weights of a skill's document: triggers and name say more than prose.
const TRIGGER_TF = 2;
const NAME_TF = 2;
// Trigger evidence by number of content words in the phrase (0, 1, 2, 3+).
const TRIGGER_BASE = [0.45, 0.7, 0.85, 0.92] as const;
// How much of each evidence survives into the combined score.
// (Both picked on CLINC150 val; the keyword share is damped because a catalog's
// vocabulary often covers an off-topic message word by word.)
const EXAMPLE_WEIGHT = 1;
const KEYWORD_WEIGHT = 0.7;
// Confidence = sigmoid(a*score + b*margin + c): a logistic fit on CLINC150 val + oos_val
// (bench/clinc150.ts prints the refit). Its prior is val's 3% out-of-scope share.
const CALIBRATION = { score: 3.52, margin: 8.52, bias: -2.23 } as const;

/**
 * Lays postings out flat (CSR): `fill` puts every (term, id, weight) once,
 * `df` says how many each term gets. Queries read at most `readLimit` per
 * term, highest weight first, so only lists longer than that are sorted.
 */
function buildPostings(
  df: Int32Array,
  fill: (put: (term: number, id: number, weight: number) => void) => void,
  readLimit: number,
): Postings {
  const termCount = df.length;
  const offsets = new Int32Array(termCount + 1);
  for (let t = 0; t < termCount; t++) offsets[t + 1] = offsets[t]! + df[t]!;
  const ids = new Int32Array(offsets[termCount]!);
  const weights = new Float32Array(offsets[termCount]!);
  const cursor = offsets.slice(0, termCount);
  fill((term, id, weight) => {
    const at = cursor[term]!;
    cursor[term] = at + 1;
    ids[at] = id;
    weights[at] = weight;
  });
  for (let t = 0; t < termCount; t++) {
    const start = offsets[t]!;
    const end = offsets[t + 1]!;
    if (end - start <= readLimit) continue;
    const order = Array.from({ length: end - start }, (_, k) => start + k).sort(
      (x, y) => weights[y]! - weights[x]!,
    );
    const sortedIds = order.map((p) => ids[p]!);
    const sortedWeights = order.map((p) => weights[p]!);
    ids.set(sortedIds, start);
    weights.set(sortedWeights, start);
  }
  return { offsets, ids, weights };
}

function bm25Idf(total: number, df: number): number {
  return Math.log(1 + (total - df + 0.5) / (df + 0.5));
}

/**
 * Builds the fast-path index over a skill catalog. Cost is linear in the
 * catalog's text; build once per catalog and reuse (the default matcher keeps
 * an LRU of indexes keyed by catalog key).
 *
 * @example
 * ```ts
 * const index = buildKeywordIndex(skills);
 * const result = index.search("New order: Maria, chocolate cake, Saturday");
 * if (result.confident) console.log(result.candidates[0]?.skill.name);
 * ```
 */
export function buildKeywordIndex<S extends IndexableSkill>(
  skills: readonly S[],
  options: KeywordIndexOptions = {},
): KeywordIndex<S> {
  const defaults: FastPathThresholds = {
    ...DEFAULT_FAST_PATH_THRESHOLDS,
    ...definedOnly(options.thresholds),
  };
  const maxPostings = Math.max(1, options.maxPostingsPerTerm ?? 512);
  const skillCount = skills.length;

  const termIds = new Map<string, number>();
  const termOf = (term: string): number => {
    let id = termIds.get(term);
    if (id === undefined) {
      id = termIds.size;
      termIds.set(term, id);
    }
    return id;
  };

  // Per-skill documents (BM25) and per-example term lists (cosine), the latter flat.
  const skillDocs: Array<Map<number, number>> = [];
  const skillLengths = new Float64Array(skillCount);
  const exampleStarts: number[] = [0];
  const exampleTerms: number[] = [];
  const exampleTfs: number[] = [];
  const exampleSkill: number[] = [];
  const exampleText: string[] = [];
  const phrases = new Map<string, Phrase>();
  const phrasesByFirst = new Map<string, Phrase[]>();

  for (let s = 0; s < skillCount; s++) {
    const skill = skills[s]!;
    const doc = new Map<string, number>();
    termCounts(tokenize(skill.name.replace(/[_-]+/g, " ")), doc, NAME_TF);
    termCounts(tokenize(skill.description), doc);
    for (const trigger of skill.triggers) {
      const tokens = tokenize(trigger);
      if (tokens.length === 0) continue;
      termCounts(tokens, doc, TRIGGER_TF);
      const key = tokens.join(" ");
      let phrase = phrases.get(key);
      if (phrase === undefined) {
        const content = tokens.filter((token) => !isStop(token)).length;
        phrase = { tokens, owners: new Map(), base: TRIGGER_BASE[Math.min(content, 3)]! };
        phrases.set(key, phrase);
        const first = tokens[0]!;
        const list = phrasesByFirst.get(first);
        if (list === undefined) phrasesByFirst.set(first, [phrase]);
        else list.push(phrase);
      }
      if (!phrase.owners.has(s)) phrase.owners.set(s, trigger);
    }
    for (const example of skill.examples) {
      const counts = termCounts(tokenize(example));
      if (counts.size === 0) continue;
      for (const [term, tf] of counts) {
        doc.set(term, (doc.get(term) ?? 0) + tf);
        exampleTerms.push(termOf(term));
        exampleTfs.push(tf);
      }
      exampleStarts.push(exampleTerms.length);
      exampleSkill.push(s);
      exampleText.push(example);
    }
    const docIds = new Map<number, number>();
    let length = 0;
    for (const [term, tf] of doc) {
      docIds.set(termOf(term), tf);
      length += tf;
    }
    skillDocs.push(docIds);
    skillLengths[s] = length;
  }

  const termCount = termIds.size;
  const exampleCount = exampleSkill.length;

  // Skill-level BM25 postings: weight = the term-frequency part; idf is per term.
  const skillDf = new Int32Array(termCount);
  for (const doc of skillDocs) for (const id of doc.keys()) skillDf[id]!++;
  const skillIdf = new Float64Array(termCount);
  for (let t = 0; t < termCount; t++) skillIdf[t] = bm25Idf(skillCount, skillDf[t]!);
  let lengthSum = 0;
  for (let s = 0; s < skillCount; s++) lengthSum += skillLengths[s]!;
  const averageLength = skillCount > 0 ? lengthSum / skillCount : 1;
  const skillPostings = buildPostings(
    skillDf,
    (put) => {
      for (let s = 0; s < skillCount; s++) {
        const norm = K1 * (1 - B + (B * skillLengths[s]!) / (averageLength || 1));
        for (const [id, tf] of skillDocs[s]!) put(id, s, (tf * (K1 + 1)) / (tf + norm));
      }
    },
    maxPostings,
  );

  // Example-level postings: L2-normalised (1 + ln tf) * idf.
  const exampleDf = new Int32Array(termCount);
  for (const id of exampleTerms) exampleDf[id]!++;
  const exampleIdf = new Float64Array(termCount);
  for (let t = 0; t < termCount; t++) exampleIdf[t] = bm25Idf(exampleCount, exampleDf[t]!);
  const examplePostings = buildPostings(
    exampleDf,
    (put) => {
      for (let e = 0; e < exampleCount; e++) {
        const from = exampleStarts[e]!;
        const to = exampleStarts[e + 1]!;
        let norm = 0;
        for (let k = from; k < to; k++)
          norm += ((1 + Math.log(exampleTfs[k]!)) * exampleIdf[exampleTerms[k]!]!) ** 2;
        norm = Math.sqrt(norm) || 1;
        for (let k = from; k < to; k++) {
          const id = exampleTerms[k]!;
          put(id, e, ((1 + Math.log(exampleTfs[k]!)) * exampleIdf[id]!) / norm);
        }
      }
    },
    maxPostings,
  );

  const unknownSkillIdf = bm25Idf(skillCount, 0);
  const unknownExampleIdf = bm25Idf(exampleCount, 0);

  // Scratch buffers reused by every search (searches are synchronous).
  const exampleScores = new Float32Array(exampleCount);
  const touchedExamples = new Int32Array(exampleCount);
  const keywordScores = new Float32Array(skillCount);
  const bestExampleScore = new Float32Array(skillCount);
  const bestExample = new Int32Array(skillCount);
  const triggerMiss = new Float32Array(skillCount).fill(1);
  const skillSeen = new Uint8Array(skillCount);
  const touchedSkills = new Int32Array(skillCount);

  function search(
    message: string,
    limit = 5,
    thresholds?: Partial<FastPathThresholds>,
  ): KeywordSearchResult<S> {
    const { minScore, minMargin } = { ...defaults, ...definedOnly(thresholds) };
    const tokens = tokenize(message);
    const counts = termCounts(tokens);
    let touchedSkillCount = 0;
    const touch = (s: number): void => {
      if (skillSeen[s] === 0) {
        skillSeen[s] = 1;
        touchedSkills[touchedSkillCount++] = s;
      }
    };

    // Triggers: phrases starting at each token, checked token for token.
    const triggerOf = new Map<number, { text: string; length: number }>();
    const matchedPhrases = new Set<Phrase>();
    for (let i = 0; i < tokens.length; i++) {
      const starting = phrasesByFirst.get(tokens[i]!);
      if (starting === undefined) continue;
      for (const phrase of starting) {
        if (matchedPhrases.has(phrase) || !matchesAt(tokens, i, phrase.tokens)) continue;
        matchedPhrases.add(phrase);
        const strength = phrase.base / phrase.owners.size;
        for (const [s, text] of phrase.owners) {
          touch(s);
          triggerMiss[s] = triggerMiss[s]! * (1 - strength);
          const previous = triggerOf.get(s);
          if (previous === undefined || previous.length < phrase.tokens.length) {
            triggerOf.set(s, { text, length: phrase.tokens.length });
          }
        }
      }
    }

    // Keyword (BM25) and nearest-example accumulation over capped postings.
    let keywordMax = 0;
    let queryNorm = 0;
    let touchedExampleCount = 0;
    for (const [term, tf] of counts) {
      const id = termIds.get(term);
      const queryWeight = 1 + Math.log(tf);
      if (id === undefined) {
        // Unknown words still weigh on the message: text the catalog cannot explain lowers every score.
        keywordMax += isBigram(term) ? 0 : unknownSkillIdf * (K1 + 1);
        queryNorm += (queryWeight * unknownExampleIdf) ** 2;
        continue;
      }
      const idf = skillIdf[id]!;
      // A term's BM25 part tops out near K1 + 1 (frequent in the skill's text).
      if (!isBigram(term)) keywordMax += idf * (K1 + 1);
      if (!isBigram(term) && skillDf[id]! > 0) {
        const start = skillPostings.offsets[id]!;
        const end = Math.min(skillPostings.offsets[id + 1]!, start + maxPostings);
        for (let p = start; p < end; p++) {
          const s = skillPostings.ids[p]!;
          touch(s);
          keywordScores[s] = keywordScores[s]! + idf * skillPostings.weights[p]!;
        }
      }
      const exampleWeight = queryWeight * exampleIdf[id]!;
      queryNorm += exampleWeight * exampleWeight;
      if (exampleDf[id]! === 0) continue;
      const start = examplePostings.offsets[id]!;
      const end = Math.min(examplePostings.offsets[id + 1]!, start + maxPostings);
      for (let p = start; p < end; p++) {
        const e = examplePostings.ids[p]!;
        if (exampleScores[e] === 0) touchedExamples[touchedExampleCount++] = e;
        exampleScores[e] = exampleScores[e]! + exampleWeight * examplePostings.weights[p]!;
      }
    }
    queryNorm = Math.sqrt(queryNorm) || 1;
    for (let k = 0; k < touchedExampleCount; k++) {
      const e = touchedExamples[k]!;
      const similarity = exampleScores[e]! / queryNorm;
      exampleScores[e] = 0;
      const s = exampleSkill[e]!;
      touch(s);
      if (similarity > bestExampleScore[s]!) {
        bestExampleScore[s] = similarity;
        bestExample[s] = e;
      }
    }

    // Combine and keep the best `limit` + 1 (the extra one is the runner-up) in a short sorted list.
    const keep = Math.max(1, limit);
    const topSkills: number[] = [];
    const topScores: number[] = [];
    for (let k = 0; k < touchedSkillCount; k++) {
      const s = touchedSkills[k]!;
      const keyword = keywordMax > 0 ? Math.min(1, keywordScores[s]! / keywordMax) : 0;
      const score = combine(1 - triggerMiss[s]!, Math.min(1, bestExampleScore[s]!), keyword);
      if (score <= 0 || (topScores.length > keep && score <= topScores[keep]!)) continue;
      let at = Math.min(topScores.length, keep);
      while (at > 0 && topScores[at - 1]! < score) at--;
      topSkills.splice(at, 0, s);
      topScores.splice(at, 0, score);
      if (topScores.length > keep + 1) {
        topSkills.pop();
        topScores.pop();
      }
    }
    const top = topSkills.map((s, k) => ({ s, score: topScores[k]! }));
    const runnerUp = top[1]?.score ?? 0;

    const candidates: KeywordCandidate<S>[] = top.slice(0, keep).map(({ s, score }) => {
      const trigger = triggerOf.get(s);
      const hasExample = bestExampleScore[s]! > 0;
      return {
        skill: skills[s]!,
        score: round(score),
        evidence: {
          trigger: trigger?.text ?? null,
          triggerScore: round(1 - triggerMiss[s]!),
          example: hasExample ? exampleText[bestExample[s]!]! : null,
          exampleScore: round(Math.min(1, bestExampleScore[s]!)),
          keywordScore: round(keywordMax > 0 ? Math.min(1, keywordScores[s]! / keywordMax) : 0),
          matchedTerms: matchedTerms(s, counts),
        },
      };
    });

    for (let k = 0; k < touchedSkillCount; k++) {
      const s = touchedSkills[k]!;
      skillSeen[s] = 0;
      keywordScores[s] = 0;
      bestExampleScore[s] = 0;
      triggerMiss[s] = 1;
    }

    const best = top[0]?.score ?? 0;
    const margin = best - runnerUp;
    return {
      candidates,
      score: round(best),
      margin: round(margin),
      confidence: best > 0 ? round(calibrate(best, margin)) : 0,
      confident: best > 0 && best >= minScore && margin >= minMargin,
    };
  }

  function matchedTerms(s: number, counts: Map<string, number>): string[] {
    const doc = skillDocs[s]!;
    const found: Array<[string, number]> = [];
    for (const term of counts.keys()) {
      const id = termIds.get(term);
      if (id !== undefined && doc.has(id)) found.push([term, skillIdf[id]!]);
    }
    found.sort((x, y) => y[1] - x[1]);
    return found.slice(0, 5).map(([term]) => term);
  }

  return { size: skillCount, search };
}

function matchesAt(tokens: readonly string[], at: number, phrase: readonly string[]): boolean {
  if (at + phrase.length > tokens.length) return false;
  for (let k = 0; k < phrase.length; k++) if (tokens[at + k] !== phrase[k]) return false;
  return true;
}

function combine(trigger: number, example: number, keyword: number): number {
  return 1 - (1 - trigger) * (1 - EXAMPLE_WEIGHT * example) * (1 - KEYWORD_WEIGHT * keyword);
}

function calibrate(score: number, margin: number): number {
  return 1 / (1 + Math.exp(-(CALIBRATION.score * score + CALIBRATION.margin * margin + CALIBRATION.bias)));
}

function round(value: number): number {
  return Math.round(value * 1e4) / 1e4;
}

function definedOnly<T extends object>(value: Partial<T> | undefined): Partial<T> {
  if (value === undefined) return {};
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
