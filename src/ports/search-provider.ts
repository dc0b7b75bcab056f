/** One web search hit. */
export interface SearchResult {
  /** The page's title as the search engine shows it (plain text, tags removed). */
  title: string;
  /** The page's address: an absolute `https:` or `http:` URL. */
  url: string;
  /** The engine's short excerpt of the page (plain text), or `""`. */
  snippet: string;
}

/** Options of {@link SearchProvider.search}. */
export interface SearchOptions {
  /** Most results wanted (1–20). The provider may return fewer. Default 5. */
  count?: number | undefined;
  /** Aborts the request; the promise rejects with a KiloError `ABORTED`. */
  signal?: AbortSignal | undefined;
}

/**
 * The SearchProvider port: web search for the research pipeline behind
 * auto-learning ("Learn how to use Stripe" → search → read → analyse →
 * propose). kilo ships `braveSearch()` in `kilo/search/brave`; any engine
 * works behind this interface, and tests pass a fake that returns fixed
 * results.
 *
 * Semantics an adapter must keep:
 *
 * - `search` returns the engine's results for `query`, best first, at most
 *   `options.count` of them (default 5), and `[]` when there are none. Each
 *   result has an absolute URL; results without one are dropped.
 * - The adapter only searches. It never fetches the result pages: kilo reads
 *   those itself, through its SSRF-safe HTTP executor, so a result pointing at
 *   a private address is refused there.
 * - Credentials (an API key) are read at call time, so a host can set the
 *   environment variable after creating the adapter. A missing key fails the
 *   first search with `CONFIGURATION_INVALID`, naming the option and the
 *   environment variable.
 *
 * Errors: throw `KiloError` with `provider` set to `name`:
 * `CONFIGURATION_INVALID` (no key), `PROVIDER_REJECTED` (the engine refused:
 * bad key, quota; not retryable), `PROVIDER_FAILED` (could not reach it, 5xx,
 * malformed answer; `retryable` when worth another try), `ABORTED`. Messages
 * never contain the API key.
 *
 * @example
 * ```ts
 * import type { SearchProvider } from "kilo";
 *
 * // A fixed index, e.g. for tests or an intranet wiki.
 * const docsOnly: SearchProvider = {
 *   name: "docs",
 *   async search(query, options = {}) {
 *     return [{ title: "Acme API", url: "https://docs.acme.example/api", snippet: query }].slice(0, options.count ?? 5);
 *   },
 * };
 * const kilo = createKilo({ storage, providers, search: docsOnly });
 * ```
 */
export interface SearchProvider {
  /** Names the engine in errors and logs, e.g. `brave`. */
  readonly name: string;
  /** Searches the web for `query`; see the interface for semantics and errors. */
  search(query: string, options?: SearchOptions): Promise<SearchResult[]>;
}
