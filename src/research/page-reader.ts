import { convert } from "html-to-text";
import { KiloError } from "../errors.js";
import type { HttpExecutor } from "../tools/http-executor.js";

/** Limits of {@link createPageReader}. */
export interface PageReaderOptions {
  /**
   * Fetches the pages: the SSRF-safe executor, so a search result pointing at
   * a private address is refused. Its own `maxBytes` and `timeoutMs` cap every
   * download (kilo builds one from `createKilo({ learning: { executor } })`).
   */
  executor: HttpExecutor;
  /** Most characters of readable text kept per page; longer text is cut with a note. Default 20 000. */
  maxChars?: number | undefined;
}

/** A page as the doc analyzer sees it. */
export interface ReadPage {
  /** The final URL (after redirects). */
  url: string;
  /** The page's `<title>`, or `""`. */
  title: string;
  /** Readable text: links and tables kept, scripts, styles and images dropped. */
  text: string;
  /** True when `text` was cut at `maxChars` (the text ends with a note saying so). */
  truncated: boolean;
}

/** Reads web pages as text; see {@link createPageReader}. */
export interface PageReader {
  /**
   * Fetches `url` (GET, through the executor) and returns its readable text.
   * Rejects with the executor's KiloError (`SSRF_BLOCKED`, `TOOL_FAILED` for
   * unreachable, too slow or too large) or `TOOL_FAILED` for an error status
   * or a body that is neither HTML nor text.
   */
  read(url: string, options?: { signal?: AbortSignal | undefined }): Promise<ReadPage>;
}

const TEXT_TYPES = /^(?:text\/(?:html|plain|markdown)|application\/(?:xhtml\+xml|json))\b/i;

function titleOf(html: string): string {
  const match = /<title[^>]*>([\s\S]{0,500}?)<\/title>/i.exec(html);
  return match ? convert(match[1] ?? "", { wordwrap: false }).trim() : "";
}

/**
 * The page reader of the research pipeline: fetches a documentation page
 * through the SSRF-safe executor (byte and time caps come from the executor)
 * and turns its HTML into readable text with `html-to-text`, keeping at most
 * `maxChars` characters.
 *
 * @example
 * ```ts
 * const reader = createPageReader({ executor: createHttpExecutor({ maxBytes: 1_048_576, timeoutMs: 8_000 }) });
 * const page = await reader.read("https://docs.example.com/api");
 * ```
 */
export function createPageReader(options: PageReaderOptions): PageReader {
  const maxChars = options.maxChars ?? 20_000;
  if (!Number.isInteger(maxChars) || maxChars < 100) {
    throw new KiloError("CONFIGURATION_INVALID", "page reader `maxChars` must be an integer of at least 100");
  }
  return {
    async read(url, readOptions = {}) {
      const response = await options.executor.request({
        url,
        method: "GET",
        headers: { accept: "text/html,application/xhtml+xml,text/plain;q=0.9" },
        ...(readOptions.signal ? { signal: readOptions.signal } : {}),
      });
      const origin = new URL(response.url).origin;
      if (response.status >= 400) {
        throw new KiloError("TOOL_FAILED", `${origin} answered ${response.status} for a documentation page`);
      }
      const type = response.headers["content-type"] ?? "text/html";
      if (!TEXT_TYPES.test(type)) {
        throw new KiloError("TOOL_FAILED", `${origin} sent ${type.split(";")[0]}, not a readable page`);
      }
      const html = /html/i.test(type);
      const full = html
        ? convert(response.body, {
            wordwrap: false,
            // The body is already capped in bytes; this bounds the parser's work on markup-heavy pages too.
            limits: { maxInputLength: Math.max(maxChars * 20, 200_000) },
            selectors: [
              { selector: "img", format: "skip" },
              { selector: "nav", format: "skip" },
              { selector: "footer", format: "skip" },
              { selector: "a", options: { hideLinkHrefIfSameAsText: true, ignoreHref: false } },
              { selector: "table", format: "dataTable", options: { uppercaseHeaderCells: false } },
              ...["h1", "h2", "h3", "h4", "h5", "h6"].map((selector) => ({
                selector,
                options: { uppercase: false },
              })),
            ],
          })
        : response.body;
      const text = full.replace(/\n{3,}/g, "\n\n").trim();
      const truncated = text.length > maxChars;
      return {
        url: response.url,
        title: html ? titleOf(response.body) : "",
        text: truncated
          ? `${text.slice(0, maxChars)}\n\n[truncated: the page's text is ${text.length} characters; only the first ${maxChars} were read]`
          : text,
        truncated,
      };
    },
  };
}
