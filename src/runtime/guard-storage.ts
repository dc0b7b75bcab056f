import { KiloError, toKiloError } from "../errors.js";
import { STORAGE_REPOSITORY_NAMES, type Storage, type StorageRepositories } from "../ports/storage.js";

/** A guarded storage: the core's only way to the host's adapter. */
export interface GuardedStorage extends Storage {
  /** Runs the adapter's migrations (a no-op for adapters without any). */
  migrate(): Promise<{ applied: string[] }>;
  /** Marks the storage closed and closes the adapter. */
  close(): Promise<void>;
}

type AnyMethod = (...args: unknown[]) => Promise<unknown>;

function wrapRepositories(
  repositories: StorageRepositories,
  adapter: string,
  before: () => Promise<void>,
): StorageRepositories {
  const wrapped = {} as Record<string, Record<string, AnyMethod>>;
  for (const name of STORAGE_REPOSITORY_NAMES) {
    const repository = repositories[name] as unknown as Record<string, AnyMethod> | undefined;
    // An optional repository the adapter lacks stays missing, so the core sees that it lacks it.
    if (!repository) continue;
    const methods: Record<string, AnyMethod> = {};
    for (const method of Object.keys(repository)) {
      const fn = repository[method];
      if (typeof fn !== "function") continue;
      methods[method] = async (...args: unknown[]) => {
        await before();
        try {
          return await fn.apply(repository, args);
        } catch (error) {
          throw toKiloError(
            error,
            "STORAGE_FAILED",
            `Storage adapter '${adapter}' failed in ${name}.${method}`,
            {
              adapter,
              retryable: true,
            },
          );
        }
      };
    }
    wrapped[name] = methods;
  }
  return wrapped as unknown as StorageRepositories;
}

/**
 * Wraps an injected storage adapter so that `init` runs once before first
 * use, nothing is used after `close()`, and anything the adapter throws that
 * is not already a KiloError comes back as `STORAGE_FAILED` naming the adapter.
 */
export function guardStorage(storage: Storage): GuardedStorage {
  let initializing: Promise<void> | null = null;
  let closed = false;
  const ensureOpen = async () => {
    if (closed) throw new KiloError("CLOSED", `Storage adapter '${storage.name}' was used after close()`);
    if (!storage.init) return;
    initializing ??= storage.init().catch((error: unknown) => {
      initializing = null;
      throw toKiloError(error, "STORAGE_FAILED", `Storage adapter '${storage.name}' failed to start`, {
        adapter: storage.name,
      });
    });
    await initializing;
  };
  // Inside a transaction the adapter is already open; skip the checks on every call.
  const inTransaction = async () => {};
  /** A storage-level call (`commitTurn`, `commitRunTurn`) behind the open check, its failures named. */
  const guarded =
    <A, R>(name: string, call: (arg: A) => Promise<R>) =>
    async (arg: A): Promise<R> => {
      await ensureOpen();
      try {
        return await call(arg);
      } catch (error) {
        throw toKiloError(error, "STORAGE_FAILED", `Storage adapter '${storage.name}' failed in ${name}`, {
          adapter: storage.name,
          retryable: true,
        });
      }
    };
  return {
    ...wrapRepositories(storage, storage.name, ensureOpen),
    name: storage.name,
    capabilities: storage.capabilities,
    async transaction(fn) {
      await ensureOpen();
      // The callback's own errors pass through untouched; only the adapter's are wrapped.
      let thrownByCallback = false;
      try {
        return await storage.transaction(async (tx) => {
          try {
            return await fn(wrapRepositories(tx, storage.name, inTransaction));
          } catch (error) {
            thrownByCallback = true;
            throw error;
          }
        });
      } catch (error) {
        if (thrownByCallback) throw error;
        throw toKiloError(
          error,
          "STORAGE_FAILED",
          `Storage adapter '${storage.name}' failed in a transaction`,
          {
            adapter: storage.name,
          },
        );
      }
    },
    ...(storage.commitTurn ? { commitTurn: guarded("commitTurn", storage.commitTurn.bind(storage)) } : {}),
    ...(storage.commitRunTurn
      ? { commitRunTurn: guarded("commitRunTurn", storage.commitRunTurn.bind(storage)) }
      : {}),
    // Not behind init: with automatic migrations off, init refuses an old schema until this has run.
    async migrate() {
      if (closed) throw new KiloError("CLOSED", `Storage adapter '${storage.name}' was used after close()`);
      if (!storage.migrate) return { applied: [] };
      try {
        return await storage.migrate();
      } catch (error) {
        throw toKiloError(error, "STORAGE_FAILED", `Storage adapter '${storage.name}' failed to migrate`, {
          adapter: storage.name,
        });
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await initializing?.catch(() => undefined);
      await storage.close?.();
    },
  };
}
