/**
 * In-memory storage: `import { memoryStorage } from "kilo/storage/memory"`.
 *
 * @module
 */
export type { MemoryStorageOptions } from "./memory-storage.js";
export { memoryStorage } from "./memory-storage.js";
