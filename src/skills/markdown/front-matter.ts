import { isMap, isScalar, parseDocument, stringify } from "yaml";

/**
 * The envelope of a Markdown file with YAML front matter, and the YAML in it.
 *
 * The envelope follows the convention Jekyll, gray-matter and the Agent
 * Skills clients share: the file opens with a line `---`, the front matter
 * runs to the next line `---`, and the Markdown body is everything after
 * that line. The YAML itself is read and written by the `yaml` package
 * (YAML 1.2 core schema, so `yes` and `2024-01-01` stay strings).
 *
 * @module
 */

/** Why a file's front matter could not be read. */
export type FrontMatterFailure =
  | "front-matter-missing"
  | "front-matter-unclosed"
  | "yaml-invalid"
  | "front-matter-not-a-map";

/** One top-level key of the front matter: its value as plain JavaScript, and its YAML node. */
export interface FrontMatterEntry {
  value: unknown;
  node: unknown;
}

/** A file split into its front matter and body. */
export type SplitFrontMatter =
  | {
      ok: true;
      /** The top-level keys in file order (empty for empty front matter). */
      entries: Map<string, FrontMatterEntry>;
      /** The Markdown after the closing `---` line. */
      body: string;
    }
  | { ok: false; failure: FrontMatterFailure; message: string };

const OPENING = /^---[ \t]*\n/;
const CLOSING = /^---[ \t]*$/m;

/**
 * Splits a file into YAML front matter and Markdown body, and parses the
 * YAML. A UTF-8 byte order mark is dropped and CRLF line endings become LF
 * first. Duplicate keys, YAML syntax errors, aliases expanding past 100
 * nodes (billion laughs) and front matter that is not a mapping fail.
 */
export function splitFrontMatter(source: string): SplitFrontMatter {
  const text = source.replace(/^\uFEFF/, "").replace(/\r\n?/g, "\n");
  const opening = OPENING.exec(text);
  if (opening === null) {
    return {
      ok: false,
      failure: "front-matter-missing",
      message: "the file does not start with a '---' line opening YAML front matter",
    };
  }
  const rest = text.slice(opening[0].length);
  // The closing line may be the very first line of `rest` (empty front matter).
  const closing = CLOSING.exec(rest);
  if (closing === null) {
    return {
      ok: false,
      failure: "front-matter-unclosed",
      message: "the YAML front matter is not closed by a '---' line",
    };
  }
  const afterClosing = closing.index + closing[0].length;
  const body = rest.slice(rest[afterClosing] === "\n" ? afterClosing + 1 : afterClosing);
  const document = parseDocument(rest.slice(0, closing.index), { prettyErrors: true, uniqueKeys: true });
  const error = document.errors[0];
  if (error !== undefined) {
    return {
      ok: false,
      failure: "yaml-invalid",
      message: `invalid YAML front matter: ${error.message.trim()}`,
    };
  }
  const contents = document.contents;
  const entries = new Map<string, FrontMatterEntry>();
  if (contents === null || (isScalar(contents) && contents.value === null))
    return { ok: true, entries, body };
  if (!isMap(contents)) {
    return {
      ok: false,
      failure: "front-matter-not-a-map",
      message: "the YAML front matter is not a mapping of keys to values",
    };
  }
  let values: Record<string, unknown>;
  try {
    // Resolves aliases (bounded) and turns keys into strings as JSON would.
    values = document.toJS({ maxAliasCount: 100 }) as Record<string, unknown>;
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    return { ok: false, failure: "yaml-invalid", message: `invalid YAML front matter: ${reason}` };
  }
  for (const pair of contents.items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
    entries.set(key, { value: values[key] ?? null, node: pair.value });
  }
  return { ok: true, entries, body };
}

/**
 * Joins front matter and body into a file: `---`, the YAML of `data` (keys
 * in their insertion order, no line folding), `---`, then `body` unchanged.
 * {@link splitFrontMatter} gives back equal data and the same body.
 */
export function joinFrontMatter(data: Record<string, unknown>, body: string): string {
  return `---\n${stringify(data, { lineWidth: 0 })}---\n${body}`;
}

/**
 * A scalar node as text, the way it was written: `1.0` stays `1.0`, not `1`.
 * `null` for a null scalar, an alias or a collection.
 */
export function scalarText(node: unknown): string | null {
  if (!isScalar(node) || node.value === null || node.value === undefined) return null;
  if (typeof node.value === "string") return node.value;
  return typeof node.source === "string" ? node.source : String(node.value);
}
