/**
 * Redis cache: `import { redisCache } from "kilo/cache/redis"`. Needs the
 * optional peer dependency `ioredis` when kilo creates the client from a URL.
 *
 * @module
 */
export type {
  RedisCacheOptions,
  RedisClient,
  RedisSubscriber,
  RedisSubscriberOptions,
} from "./redis-cache.js";
export { redisCache } from "./redis-cache.js";
