import { KiloError } from "../../../src/errors.js";
import type { SearchOptions, SearchProvider, SearchResult } from "../../../src/ports/search-provider.js";

/** The subset of the global `fetch` the adapter uses; pass your own (a proxy agent, a test double). */
export type BraveFetch = (
  url: string,
  init: { method: "GET"; headers: Record<string, string>; signal: AbortSignal },
) => Promise<{
  status: number;
  ok: boolean;
  /** The response body; the adapter parses the JSON itself so a malformed body becomes a `KiloError`. */
  text(): Promise<string>;
}>;

/** Options of {@link braveSearch}. Every option is optional. */
export interface BraveSearchOptions {
  /**
   * The Brave Search API subscription token. Default: the
   * `BRAVE_SEARCH_API_KEY` environment variable, read at each search.
   */
  apiKey?: string | undefined;
  /** The API's base URL. Default `https://api.search.brave.com/res/v1`. */
  baseURL?: string | undefined;
  /** The fetch used for requests. Default: the global `fetch`. */
  fetch?: BraveFetch | undefined;
  /** Deadline of one search in milliseconds. Default 10 000. */
  timeoutMs?: number | undefined;
  /** Names the provider in errors. Default `brave`. */
  name?: string | undefined;
}

const DEFAULT_BASE_URL = "https://api.search.brave.com/res/v1";

interface BraveWebResult {
  title?: unknown;
  url?: unknown;
  description?: unknown;
}

// Brave marks the query words in titles and descriptions with <strong>; results are plain text here.
function plain(value: unknown): string {
  if (typeof value !== "string") return "";
  return value
    .replace(/<[^>]*>/g, "")
    .replace(/&quot;/g, '"')
    .replace(/&#39;|&#x27;/g, "'")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&")
    .trim();
}

function absoluteUrl(value: unknown): string | null {
  if (typeof value !== "string") return null;
  try {
    const url = new URL(value);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  } catch {
    return null;
  }
}

/**
 * Web search through the Brave Search API (`GET /web/search`), for
 * auto-learning's research step.
 *
 * @example
 * ```ts
 * import { createKilo } from "kilo";
 * import { braveSearch } from "kilo/search/brave";
 *
 * const kilo = createKilo({ storage, providers, search: braveSearch() }); // BRAVE_SEARCH_API_KEY
 * ```
 */
export function braveSearch(options: BraveSearchOptions = {}): SearchProvider {
  const name = options.name ?? "brave";
  const baseURL = (options.baseURL ?? DEFAULT_BASE_URL).replace(/\/+$/, "");
  const timeoutMs = options.timeoutMs ?? 10_000;
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
    throw new KiloError("CONFIGURATION_INVALID", "braveSearch `timeoutMs` must be a positive integer");
  }

  function fail(code: "PROVIDER_FAILED" | "PROVIDER_REJECTED", message: string, extra = {}): KiloError {
    return new KiloError(code, `Brave Search ${message}`, { provider: name, ...extra });
  }

  return {
    name,
    async search(query: string, searchOptions: SearchOptions = {}): Promise<SearchResult[]> {
      const apiKey = options.apiKey || process.env.BRAVE_SEARCH_API_KEY || undefined;
      if (apiKey === undefined) {
        throw new KiloError(
          "CONFIGURATION_INVALID",
          "Brave Search has no API key: pass the `apiKey` option to braveSearch or set the BRAVE_SEARCH_API_KEY environment variable",
          { provider: name },
        );
      }
      if (typeof query !== "string" || query.trim() === "") {
        throw new KiloError("VALIDATION_FAILED", "Brave Search needs a non-empty query", { provider: name });
      }
      const count = Math.min(20, Math.max(1, Math.trunc(searchOptions.count ?? 5)));
      const url = `${baseURL}/web/search?${new URLSearchParams({ q: query.slice(0, 400), count: String(count) })}`;
      if (searchOptions.signal?.aborted) throw new KiloError("ABORTED", "The search was aborted");
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), timeoutMs);
      const onAbort = () => controller.abort();
      searchOptions.signal?.addEventListener("abort", onAbort, { once: true });
      let status: number;
      let body: string;
      try {
        const response = await (options.fetch ?? (fetch as unknown as BraveFetch))(url, {
          method: "GET",
          headers: { accept: "application/json", "x-subscription-token": apiKey },
          signal: controller.signal,
        });
        status = response.status;
        body = await response.text();
      } catch (error) {
        if (searchOptions.signal?.aborted) throw new KiloError("ABORTED", "The search was aborted");
        const reason = controller.signal.aborted
          ? `did not answer within ${timeoutMs} ms`
          : `could not be reached (${error instanceof Error ? error.message : String(error)})`;
        throw fail("PROVIDER_FAILED", reason, { retryable: true, cause: error });
      } finally {
        clearTimeout(timer);
        searchOptions.signal?.removeEventListener("abort", onAbort);
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch {
        throw fail("PROVIDER_FAILED", `answered ${status} with a body that is not JSON`, {
          retryable: status >= 500,
        });
      }
      if (status >= 400) {
        const detail = (parsed as { error?: { detail?: unknown } })?.error?.detail;
        const reason = typeof detail === "string" ? `: ${detail.slice(0, 300)}` : "";
        if (status === 429 || status >= 500) {
          throw fail("PROVIDER_FAILED", `failed with status ${status}${reason}`, { retryable: true, status });
        }
        const hint =
          status === 401 || status === 403 || status === 422
            ? "; check the `apiKey` option of braveSearch or the BRAVE_SEARCH_API_KEY environment variable"
            : "";
        throw fail("PROVIDER_REJECTED", `refused the search with status ${status}${reason}${hint}`, {
          status,
        });
      }
      const results = (parsed as { web?: { results?: unknown } })?.web?.results;
      if (results === undefined) return [];
      if (!Array.isArray(results)) throw fail("PROVIDER_FAILED", "answered with malformed web results");
      const hits: SearchResult[] = [];
      for (const item of results as BraveWebResult[]) {
        const link = absoluteUrl(item?.url);
        if (link === null) continue;
        hits.push({ title: plain(item.title), url: link, snippet: plain(item.description) });
        if (hits.length >= count) break;
      }
      return hits;
    },
  };
}
