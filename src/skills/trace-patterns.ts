import { isStopword, tokenize } from "./keyword-index.js";

/**
 * Pattern detection over traces, for the evolution engine: which requests a
 * user makes again and again. Deterministic and O(n) in the number of
 * traces (each message contributes at most {@link MAX_TERMS} terms, so at
 * most a fixed number of pairs).
 *
 * 1. Each message becomes a set of content terms (the matcher's tokenizer
 *    and stemmer, stopwords, short words and numbers dropped).
 * 2. Pass one counts in how many messages each term occurs (`df`).
 * 3. Pass two counts, for each message, the pairs of its *frequent* terms
 *    (df at least `minOccurrences`).
 * 4. Each message takes as its signature its strongest pair: occurring in at
 *    least `minOccurrences` messages, and *cohesive*: the pair accounts for
 *    at least {@link PatternOptions.minCohesion} of the messages of its rarer
 *    term, so two common words that met by chance do not make a pattern.
 *    Ties go to the pair seen in more messages, then alphabetically, so
 *    every message of one pattern picks the same pair.
 * 5. A short message (at most three content terms) with no such pair falls
 *    back to its rarest frequent term ("weather in Paris", "weather in Oslo").
 * 6. Messages are grouped by signature; groups of at least `minOccurrences`
 *    are patterns.
 *
 * @module
 */

/** Most content terms of one message that take part (the first ones, in order). */
export const MAX_TERMS = 10;

/** What pattern detection reads of a trace. */
export interface PatternInput {
  message: string;
}

/** Options of {@link detectPatterns}. */
export interface PatternOptions {
  /** Fewest messages a pattern has (default 3). */
  minOccurrences?: number | undefined;
  /** Least share of its rarer term's messages a pair must account for (default 0.5). */
  minCohesion?: number | undefined;
}

/** A group of similar requests. */
export interface DetectedPattern {
  /** The terms the messages share, sorted and joined with spaces (stable across runs). */
  signature: string;
  /** Indexes of the pattern's messages in the input, ascending. */
  members: number[];
  /** Terms in at least 80% of the members, most common first (the signature's terms included). */
  keywords: string[];
}

/** The content terms of a message: stemmed, stopwords, numbers and words under 3 letters dropped, unique. */
export function contentTerms(message: string): string[] {
  const seen = new Set<string>();
  for (const token of tokenize(message)) {
    if (token.length < 3 || isStopword(token) || /^\d+$/.test(token)) continue;
    seen.add(token);
    if (seen.size === MAX_TERMS) break;
  }
  return [...seen];
}

/**
 * Groups messages into patterns of similar requests (see the module
 * comment). Patterns come out with the largest first, then by signature.
 *
 * @example
 * ```ts
 * detectPatterns(traces, { minOccurrences: 3 });
 * // [{ signature: "invoic reminder", members: [0, 4, 9], keywords: ["invoic", "reminder", "send"] }]
 * ```
 */
export function detectPatterns(
  traces: readonly PatternInput[],
  options: PatternOptions = {},
): DetectedPattern[] {
  const min = Math.max(2, options.minOccurrences ?? 3);
  const cohesion = options.minCohesion ?? 0.5;
  const terms = traces.map((trace) => contentTerms(trace.message));

  const df = new Map<string, number>();
  for (const list of terms) for (const term of list) df.set(term, (df.get(term) ?? 0) + 1);

  const frequent = terms.map((list) => list.filter((term) => (df.get(term) ?? 0) >= min).sort());
  const pairs = new Map<string, number>();
  for (const list of frequent) {
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        const pair = `${list[i]} ${list[j]}`;
        pairs.set(pair, (pairs.get(pair) ?? 0) + 1);
      }
    }
  }

  const groups = new Map<string, number[]>();
  for (let index = 0; index < frequent.length; index++) {
    const list = frequent[index]!;
    let best: string | null = null;
    let bestCount = 0;
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        const a = list[i]!;
        const b = list[j]!;
        const pair = `${a} ${b}`;
        const count = pairs.get(pair) ?? 0;
        if (count < min) continue;
        if (count < cohesion * Math.min(df.get(a)!, df.get(b)!)) continue;
        if (count > bestCount || (count === bestCount && best !== null && pair < best)) {
          best = pair;
          bestCount = count;
        }
      }
    }
    if (best === null && terms[index]!.length <= 3 && list.length > 0) {
      // Short request: its rarest frequent term carries it (ties alphabetically).
      best = list.reduce((rarest, term) => (df.get(term)! < df.get(rarest)! ? term : rarest));
    }
    if (best === null) continue;
    const members = groups.get(best);
    if (members) members.push(index);
    else groups.set(best, [index]);
  }

  const patterns: DetectedPattern[] = [];
  for (const [signature, members] of groups) {
    if (members.length < min) continue;
    const counts = new Map<string, number>();
    for (const member of members)
      for (const term of terms[member]!) counts.set(term, (counts.get(term) ?? 0) + 1);
    const keywords = [...counts]
      .filter(([, count]) => count >= 0.8 * members.length)
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .map(([term]) => term);
    patterns.push({ signature, members, keywords });
  }
  return patterns.sort((a, b) => b.members.length - a.members.length || (a.signature < b.signature ? -1 : 1));
}
