import type { Page } from "../domain/common.js";

/**
 * Every item of a paged list: calls `fetchPage` with each next cursor (the
 * first call gets `null`) until a page has no `nextCursor`, up to `max` items.
 *
 * @example
 * ```ts
 * const bots = await allPages((cursor) => kilo.bots.listByUser(userId, { limit: 500, cursor }));
 * ```
 */
export async function allPages<T>(
  fetchPage: (cursor: string | null) => Promise<Page<T>>,
  max = Number.POSITIVE_INFINITY,
): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | null = null;
  do {
    const page: Page<T> = await fetchPage(cursor);
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor && items.length < max);
  return items.length > max ? items.slice(0, max) : items;
}
