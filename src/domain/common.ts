import { z } from "zod";

/** An identifier: 1–128 characters of letters, digits, `_`, `-`, `.` or `:`. */
export const IdSchema = z
  .string()
  .min(1, "must not be empty")
  .max(128, "must be at most 128 characters")
  .regex(/^[A-Za-z0-9_.:-]+$/, "may contain only letters, digits, '_', '-', '.' and ':'");

/** Free-form JSON-compatible metadata a host attaches to a record. */
export const MetadataSchema = z.record(z.string(), z.unknown());

/** A point in time, stored as a `Date`. */
export const TimestampSchema = z.date();

/** A page of results with an opaque cursor for the next page (`null` at the end). */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** Paging options accepted by list methods. */
export const PageOptionsSchema = z.object({
  /** Most items to return (1–500, default 50). */
  limit: z.number().int().min(1).max(500).default(50),
  /** The `nextCursor` of the previous page. */
  cursor: z.string().nullish(),
});

/** Paging options accepted by list methods. */
export type PageOptions = z.input<typeof PageOptionsSchema>;
