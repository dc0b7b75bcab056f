import { z } from "zod";
import { type Bot, BotSchema } from "../domain/bot.js";
import { type Skill, SkillSchema } from "../domain/skill.js";

/**
 * How one kind of cached value becomes a string and back. Dates travel as
 * ISO-8601 strings with milliseconds, so they come back exactly.
 */
export interface CacheCodec<T> {
  /** Serializes the value with the generation token it was loaded under. */
  encode(value: T, generation: string | null): string;
  /**
   * Parses and validates text read from a shared cache, which other
   * processes (or other versions of kilo) wrote. Returns `null` when the
   * text is not a well-formed entry, so it is treated as a miss.
   */
  decode(text: string): CacheEntry<T> | null;
  /** Parses text this process wrote itself (its L1), without validation. */
  revive(text: string): T;
}

/** A decoded cache entry: the value and the generation it was loaded under. */
export interface CacheEntry<T> {
  value: T;
  generation: string | null;
}

/** A bot's active skills as cached: `version` is new every time the list is loaded from storage. */
export interface CachedCatalog {
  version: string;
  skills: Skill[];
}

const IsoDateSchema = z.codec(z.iso.datetime({ offset: true }), z.date(), {
  decode: (text) => new Date(text),
  encode: (date) => date.toISOString(),
});

const dates = { createdAt: IsoDateSchema, updatedAt: IsoDateSchema };
const BotWireSchema = BotSchema.extend(dates);
const CatalogWireSchema = z.object({
  version: z.string().min(1).max(200),
  skills: z.array(SkillSchema.extend(dates)),
});

function envelopeSchema<T extends z.ZodType>(value: T) {
  return z.object({ v: z.literal(1), generation: z.string().nullable(), value });
}

type Timestamped = { createdAt: unknown; updatedAt: unknown };

function reviveDates<T extends Timestamped>(record: T): T {
  record.createdAt = new Date(record.createdAt as string);
  record.updatedAt = new Date(record.updatedAt as string);
  return record;
}

function codec<T>(wire: z.ZodType<T, unknown>, revive: (value: unknown) => T): CacheCodec<T> {
  const envelope = envelopeSchema(wire);
  return {
    // JSON.stringify writes Dates through Date#toJSON: ISO-8601 with milliseconds.
    encode: (value, generation) => JSON.stringify({ v: 1, generation, value }),
    decode(text) {
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        return null;
      }
      const parsed = envelope.safeParse(json);
      return parsed.success ? { value: parsed.data.value as T, generation: parsed.data.generation } : null;
    },
    revive: (text) => revive((JSON.parse(text) as { value: unknown }).value),
  };
}

/** The codec of cached bots (soul included). */
export const botCodec: CacheCodec<Bot> = codec<Bot>(BotWireSchema, (value) =>
  reviveDates(value as Bot & Timestamped),
);

/** The codec of cached skill catalogs. */
export const catalogCodec: CacheCodec<CachedCatalog> = codec<CachedCatalog>(CatalogWireSchema, (value) => {
  const catalog = value as CachedCatalog;
  for (const skill of catalog.skills) reviveDates(skill as Skill & Timestamped);
  return catalog;
});
