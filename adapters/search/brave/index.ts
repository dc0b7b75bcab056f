/**
 * Web search through the Brave Search API, for auto-learning's research step:
 * `import { braveSearch } from "kilo/search/brave"`. Needs no extra package;
 * the key comes from the `apiKey` option or BRAVE_SEARCH_API_KEY.
 *
 * @module
 */
export type { BraveFetch, BraveSearchOptions } from "./brave-search.js";
export { braveSearch } from "./brave-search.js";
