import { z } from "zod";
import { IdSchema, MetadataSchema } from "./common.js";

/** A person who owns bots. kilo does not authenticate users: the host does. */
export const UserSchema = z.object({
  id: IdSchema,
  name: z.string().max(200).nullable().default(null),
  metadata: MetadataSchema.default({}),
  createdAt: z.date(),
});

/** A person who owns bots. */
export type User = z.infer<typeof UserSchema>;
