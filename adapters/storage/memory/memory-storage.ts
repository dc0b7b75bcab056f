import { AsyncLocalStorage } from "node:async_hooks";
import type { Bot } from "../../../src/domain/bot.js";
import type { Page } from "../../../src/domain/common.js";
import type { Conversation, Message, NewMessage } from "../../../src/domain/conversation.js";
import type { Memory } from "../../../src/domain/memory.js";
import type { Proposal } from "../../../src/domain/proposal.js";
import type { Run } from "../../../src/domain/run.js";
import type { RunStep } from "../../../src/domain/run-step.js";
import { ownerScope, type SkillOwner, type SkillScope, scopeKey } from "../../../src/domain/scope.js";
import type { Skill, SkillRecord } from "../../../src/domain/skill.js";
import type { SkillPromotion } from "../../../src/domain/skill-promotion.js";
import type { SkillVersion } from "../../../src/domain/skill-version.js";
import type { Team, TeamMember } from "../../../src/domain/team.js";
import type { Tool, ToolApproval, ToolCallAudit } from "../../../src/domain/tool.js";
import type { Trace } from "../../../src/domain/trace.js";
import type { UsageRecord } from "../../../src/domain/usage.js";
import type { User } from "../../../src/domain/user.js";
import { KiloError, type KiloErrorCode } from "../../../src/errors.js";
import type {
  BotRepository,
  ConversationRepository,
  MemoryRepository,
  MessageRepository,
  ProposalRepository,
  RunHandOff,
  RunRepository,
  RunStepRepository,
  RunTurnCommit,
  RunTurnCommitted,
  SkillPromotionFilter,
  SkillPromotionRepository,
  SkillRecordFilter,
  SkillRecordRepository,
  SkillRepository,
  SkillVersionRepository,
  Storage,
  StoragePageOptions,
  StorageRepositories,
  TeamMemberRepository,
  TeamRepository,
  ToolApprovalRepository,
  ToolAuditRepository,
  ToolRepository,
  TraceRepository,
  TurnCommit,
  UsageRepository,
  UserRepository,
} from "../../../src/ports/storage.js";
import { copyRecord } from "../../../src/runtime/copy.js";

/** Options of {@link memoryStorage}. */
export interface MemoryStorageOptions {
  /**
   * Milliseconds every repository call waits before doing its work (default `0`).
   * Makes the store behave like a remote one in tests, so that code relying on
   * storage answering synchronously, or racing its own writes, shows up.
   */
  latencyMs?: number;
}

const ADAPTER = "memory";

/**
 * A {@link Storage} that keeps everything in process memory: fast, zero-dependency,
 * and gone when the process exits. Meant for tests, demos and single-process
 * development; it passes the whole storage conformance suite.
 *
 * Guarantees:
 * - Every value is copied on the way in and on the way out (`copyRecord`:
 *   `Date`s stay `Date`s). A value that cannot be copied (a function in
 *   `metadata`, say) is refused with `VALIDATION_FAILED`.
 * - Writes are serialized: a transaction holds the store from start to finish,
 *   and writes made outside it while it is open wait for it to commit or roll
 *   back, then run in the order they were made.
 * - Reads never wait. While a transaction is open, reads outside it can observe
 *   its uncommitted writes (read-uncommitted, like SQLite on one connection).
 * - Inside a transaction callback, calls on the outer storage join the
 *   transaction (the callback's async context is tracked with
 *   `AsyncLocalStorage`): reads see its writes, writes are rolled back with it,
 *   and nothing deadlocks. A nested `storage.transaction(...)` is a savepoint:
 *   if its callback throws, only its own writes are undone.
 * - The repositories handed to a transaction callback throw `CLOSED` once the
 *   transaction has finished.
 * - Rows must have a parent: bot skills, conversations, memories, proposals,
 *   tools, tool audit entries, approvals and runs need their bot, team skills and
 *   memberships their team, a bot in a team its team, a skill record its bot and a
 *   skill (shared, or the bot's own), a skill version its skill (of the same scope), a
 *   message its conversation (of the same bot) and a run step its run (of the same bot); otherwise `NOT_FOUND`.
 *
 * Capabilities: `{ transactions: true, crossProcess: false, durable: false }`.
 *
 * @example
 * ```ts
 * import { createKilo } from "kilo";
 * import { memoryStorage } from "kilo/storage/memory";
 *
 * const kilo = createKilo({ storage: memoryStorage(), providers: [myProvider] });
 * ```
 */
export function memoryStorage(options: MemoryStorageOptions = {}): Storage {
  const latencyMs = options.latencyMs ?? 0;
  if (!Number.isFinite(latencyMs) || latencyMs < 0) {
    throw new KiloError("CONFIGURATION_INVALID", "memoryStorage: `latencyMs` must be a number >= 0", {
      adapter: ADAPTER,
    });
  }
  const pause = latencyMs > 0 ? () => new Promise<void>((resolve) => setTimeout(resolve, latencyMs)) : null;

  const db = createDatabase();
  const gate = new WriteGate();
  const context = new AsyncLocalStorage<Scope>();

  const currentScope = (): Scope | null => {
    const scope = context.getStore();
    return scope?.isOpen() ? scope : null;
  };

  const outerAccess: Access = {
    async read(op) {
      if (pause) await pause();
      return op();
    },
    async write(op) {
      if (pause) await pause();
      const scope = currentScope();
      if (scope) return op(scope);
      return gate.write(() => op(null));
    },
  };

  const transactionAccess = (bound: Scope): Access => {
    const ensureOpen = () => {
      if (!bound.isOpen()) {
        throw error(
          "CLOSED",
          "this transaction has already finished; its repositories can no longer be used",
        );
      }
    };
    return {
      async read(op) {
        if (pause) await pause();
        ensureOpen();
        return op();
      },
      async write(op) {
        if (pause) await pause();
        ensureOpen();
        // A savepoint opened inside this scope, when the caller is in one, owns the write,
        // so the write is undone if that savepoint rolls back.
        const ambient = currentScope();
        return op(ambient?.isWithin(bound) ? ambient : bound);
      },
    };
  };

  const runScope = async <T>(scope: Scope, fn: (tx: StorageRepositories) => Promise<T>): Promise<T> => {
    try {
      const result = await context.run(scope, () => fn(buildRepositories(db, transactionAccess(scope))));
      scope.close();
      return result;
    } catch (caught) {
      scope.rollback();
      scope.close();
      throw caught;
    }
  };

  const transaction = async <T>(fn: (tx: StorageRepositories) => Promise<T>): Promise<T> => {
    const parent = currentScope();
    if (parent) return runScope(new Scope(parent), fn);
    await gate.acquire();
    try {
      return await runScope(new Scope(null), fn);
    } finally {
      gate.release();
    }
  };

  return {
    name: ADAPTER,
    capabilities: { transactions: true, crossProcess: false, durable: false },
    ...buildRepositories(db, outerAccess),
    transaction,
    // One synchronous step: no other write can come between its writes, so it is atomic without
    // a transaction's async context and per-transaction repositories (a third of a turn's storage
    // time in profiles). A failure undoes what the step wrote; inside a transaction it is a savepoint.
    commitTurn: (turn: TurnCommit) =>
      outerAccess.write((ambient) => {
        const scope = new Scope(ambient);
        try {
          const message = writeTurn(db, turn, scope);
          return copy(message);
        } catch (caught) {
          scope.rollback();
          throw caught;
        } finally {
          scope.close();
        }
      }),
    // The same one synchronous step, with the run's step and (when it is still the worker's) outcome.
    commitRunTurn: (turn: RunTurnCommit) =>
      outerAccess.write((ambient): RunTurnCommitted => {
        const scope = new Scope(ambient);
        try {
          const message = writeTurn(db, turn, scope);
          saveRunStep(db, turn.step, scope);
          const run = finishRun(db, turn.run, turn.owner, scope);
          if (!turn.handOff || (turn.owner === null && turn.handOff.runId === undefined)) {
            return { message: copy(message), run };
          }
          const next = run ? handOffRun(db, run, turn.owner, turn.handOff, scope) : null;
          return { message: copy(message), run, next };
        } catch (caught) {
          scope.rollback();
          throw caught;
        } finally {
          scope.close();
        }
      }),
  };
}

/** A turn's writes (reply, usage, trace, the conversation's touch); returns the stored reply. */
function writeTurn(db: Database, turn: TurnCommit, journal: Journal): Message {
  const message = appendMessage(db, turn.message, journal);
  for (const record of turn.usage) recordUsage(db, record, journal);
  if (turn.trace) insertTrace(db, turn.trace, journal);
  touchConversation(db, turn.message.botId, turn.message.conversationId, turn.conversationUpdatedAt, journal);
  return message;
}

/** Sets or clears a run's lease, undoably. */
function setLeaseOf(db: Database, runId: string, lease: Lease | null, journal: Journal): void {
  const previous = db.leases.get(runId);
  if (lease) db.leases.set(runId, lease);
  else db.leases.delete(runId);
  journal?.record(() => {
    if (previous) db.leases.set(runId, previous);
    else db.leases.delete(runId);
  });
}

/** True when the run is `running` under `owner`'s lease. */
function holdsLease(db: Database, run: Run | undefined, owner: string): run is Run {
  return run !== undefined && run.status === "running" && db.leases.get(run.id)?.owner === owner;
}

/** `existing` with the outcome of `run` (`runs.update`, `runs.finish`): the rest stays as stored. */
function keptFields(run: Run, existing: Run): Run {
  const { status, output, error, startedAt, finishedAt } = copy(run);
  return { ...existing, status, output, error, startedAt, finishedAt };
}

/** Stores a run's outcome if it is still running (under `owner`'s lease, when given); `null` otherwise. */
function finishRun(db: Database, run: Run, owner: string | null, journal: Journal): Run | null {
  const existing = ownedBy(db.runs.get(run.id), run.botId);
  // The lease is the fence: a worker whose run was reclaimed finishes nothing.
  if (owner === null ? existing?.status !== "running" : !holdsLease(db, existing, owner)) return null;
  const stored = keptFields(run, existing!);
  db.runs.replace(stored, journal);
  setLeaseOf(db, run.id, null, journal);
  return copy(stored);
}

/**
 * Starts the next run of a finished run's key (a hand-off), claimed for
 * `owner` when there is one: its unfinished run with the smallest seq, when
 * that run is queued, is `handOff.runId` (when given) and is not reserved for
 * another owner past `handOff.now`. `null` when there is none.
 */
function handOffRun(
  db: Database,
  finished: Run,
  owner: string | null,
  handOff: RunHandOff,
  journal: Journal,
): Run | null {
  const head = db.runs.index.byConversation
    .rows(key(finished.botId, finished.conversationKey))
    .find((row) => row.value.status === "queued" || row.value.status === "running")?.value;
  if (head?.status !== "queued") return null;
  if (handOff.runId !== undefined && head.id !== handOff.runId) return null;
  const lease = db.leases.get(head.id);
  if (lease && lease.owner !== owner && lease.expiresAt >= handOff.now.getTime()) return null;
  const stored: Run = {
    ...head,
    status: "running",
    startedAt: new Date(handOff.now),
    finishedAt: null,
    output: null,
    error: null,
  };
  db.runs.replace(stored, journal);
  setLeaseOf(
    db,
    head.id,
    owner === null ? null : { owner, expiresAt: handOff.leaseExpiresAt.getTime() },
    journal,
  );
  return copy(stored);
}

/** Inserts a run step, or replaces the step at its index. */
function saveRunStep(db: Database, step: RunStep, journal: Journal): RunStep {
  if (!ownedBy(db.runs.get(step.runId), step.botId)) {
    throw error("NOT_FOUND", `cannot save a run step: bot ${step.botId} has no run ${step.runId}`);
  }
  const stored: StoredRunStep = { id: key(step.runId, String(step.index)), step: copy(step) };
  if (db.runSteps.has(stored.id)) db.runSteps.replace(stored, journal);
  else db.runSteps.insert(stored, journal);
  return copy(stored.step);
}

// ---------------------------------------------------------------------------
// Errors and copies

function error(code: KiloErrorCode, message: string, cause?: unknown): KiloError {
  return new KiloError(code, `memory storage: ${message}`, { adapter: ADAPTER, cause });
}

function copy<T>(value: T): T {
  try {
    return copyRecord(value);
  } catch (cause) {
    throw error(
      "VALIDATION_FAILED",
      "value cannot be stored because it is not cloneable (functions, symbols or similar inside it)",
      cause,
    );
  }
}

// ---------------------------------------------------------------------------
// Transactions: scopes with an undo journal, and a gate that serializes writes

type UndoEntry = { scope: Scope; undo: () => void };

/** A transaction (no parent) or a savepoint inside one. */
class Scope {
  readonly root: Scope;
  private open = true;
  private readonly entries: UndoEntry[] = [];

  constructor(readonly parent: Scope | null) {
    this.root = parent?.root ?? this;
  }

  isOpen(): boolean {
    return this.open && this.root.open;
  }

  close(): void {
    this.open = false;
  }

  record(undo: () => void): void {
    this.root.entries.push({ scope: this, undo });
  }

  isWithin(ancestor: Scope): boolean {
    for (let scope: Scope | null = this; scope; scope = scope.parent) if (scope === ancestor) return true;
    return false;
  }

  /** Undoes, newest first, every write made in this scope or a savepoint inside it. */
  rollback(): void {
    const entries = this.root.entries;
    const kept: UndoEntry[] = [];
    for (let i = entries.length - 1; i >= 0; i--) {
      const entry = entries[i]!;
      if (entry.scope.isWithin(this)) entry.undo();
      else kept.push(entry);
    }
    entries.length = 0;
    for (let i = kept.length - 1; i >= 0; i--) entries.push(kept[i]!);
  }
}

/**
 * Serializes writes behind transactions. With no transaction open a write runs
 * at once (synchronously, so it is atomic); otherwise it waits its turn, FIFO.
 */
class WriteGate {
  private held = false;
  private readonly queue: Array<() => void> = [];

  write<R>(op: () => R): R | Promise<R> {
    if (!this.held && this.queue.length === 0) return op();
    return new Promise<R>((resolve, reject) => {
      this.queue.push(() => {
        try {
          resolve(op());
        } catch (caught) {
          reject(caught);
        }
      });
    });
  }

  acquire(): Promise<void> {
    if (!this.held && this.queue.length === 0) {
      this.held = true;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      this.queue.push(() => {
        this.held = true;
        resolve();
      });
    });
  }

  release(): void {
    this.held = false;
    while (!this.held && this.queue.length > 0) this.queue.shift()!();
  }
}

// ---------------------------------------------------------------------------
// Tables with sorted secondary indexes

interface Row<T> {
  readonly value: T;
  /** Insertion order, unique across the store: the tie-breaker that makes every order total. */
  readonly ord: number;
}

/** A place in an index's order; cursors encode one. */
interface Position {
  key: number;
  ord: number;
}

interface IndexSpec<T> {
  /** The group a value belongs to, or `null` to leave it out of the index. */
  group(value: T): string | null;
  /** Sort key within the group (a time or a seq); ties are broken by insertion order. */
  sortKey(value: T): number;
  descending: boolean;
}

class SortedIndex<T> {
  private readonly groups = new Map<string, Row<T>[]>();

  constructor(private readonly spec: IndexSpec<T>) {}

  groupOf(value: T): string | null {
    return this.spec.group(value);
  }

  /** The group's rows in index order. Callers must not modify the array. */
  rows(group: string): readonly Row<T>[] {
    return this.groups.get(group) ?? [];
  }

  position(row: Row<T>): Position {
    return { key: this.spec.sortKey(row.value), ord: row.ord };
  }

  /** Negative when `a` comes before `b` in this index's order. */
  compare(a: Position, b: Position): number {
    const ascending = a.key === b.key ? a.ord - b.ord : a.key < b.key ? -1 : 1;
    return this.spec.descending ? -ascending : ascending;
  }

  /** Index of the first row that comes after `position`. */
  after(rows: readonly Row<T>[], position: Position): number {
    return this.search(rows, position, 0);
  }

  /** Index of the first row that comes at or after `position`. */
  atOrAfter(rows: readonly Row<T>[], position: Position): number {
    return this.search(rows, position, -1);
  }

  add(row: Row<T>): void {
    const group = this.spec.group(row.value);
    if (group === null) return;
    const rows = this.groups.get(group);
    if (!rows) {
      this.groups.set(group, [row]);
      return;
    }
    const last = rows[rows.length - 1];
    const position = this.position(row);
    // Appends (new messages, records created in time order) are the common case.
    if (last === undefined || this.compareRow(last, position) < 0) rows.push(row);
    else rows.splice(this.after(rows, position), 0, row);
  }

  /**
   * Puts `row` in `previous`'s place when both have the same group and sort
   * key (a change that leaves this index's order alone: a binary search, no
   * splices); otherwise moves it.
   */
  replace(previous: Row<T>, row: Row<T>): void {
    const group = this.spec.group(row.value);
    if (
      group !== null &&
      group === this.spec.group(previous.value) &&
      this.spec.sortKey(row.value) === this.spec.sortKey(previous.value)
    ) {
      const rows = this.groups.get(group);
      const at = rows ? this.atOrAfter(rows, this.position(previous)) : -1;
      if (rows && rows[at] === previous) {
        rows[at] = row;
        return;
      }
    }
    this.remove(previous);
    this.add(row);
  }

  remove(row: Row<T>): void {
    const group = this.spec.group(row.value);
    if (group === null) return;
    const rows = this.groups.get(group);
    if (!rows) return;
    const at = this.atOrAfter(rows, this.position(row));
    if (rows[at] === row) rows.splice(at, 1);
    if (rows.length === 0) this.groups.delete(group);
  }

  /** `compare(position(row), position)` without allocating a position per probe. */
  private compareRow(row: Row<T>, position: Position): number {
    const key = this.spec.sortKey(row.value);
    const ascending = key === position.key ? row.ord - position.ord : key < position.key ? -1 : 1;
    return this.spec.descending ? -ascending : ascending;
  }

  /** Index of the first row that compares above `floor` against `position` (0: after it, -1: at or after it). */
  private search(rows: readonly Row<T>[], position: Position, floor: 0 | -1): number {
    let low = 0;
    let high = rows.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.compareRow(rows[middle]!, position) > floor) high = middle;
      else low = middle + 1;
    }
    return low;
  }
}

type Journal = Scope | null;

/** Hands out insertion ordinals; one per database so instances never share state. */
interface OrdCounter {
  next: number;
}

/**
 * Rows by id plus sorted indexes and an optional unique key, kept in step.
 * Stored values are private copies and are never mutated: a change replaces the row.
 */
class Table<T extends { id: string }, I extends string> {
  private readonly byId = new Map<string, Row<T>>();
  private readonly byUnique = new Map<string, Row<T>>();
  private readonly indexes: SortedIndex<T>[] = [];
  readonly index: Record<I, SortedIndex<T>>;

  constructor(
    private readonly ords: OrdCounter,
    specs: Record<I, IndexSpec<T>>,
    private readonly uniqueKey: ((value: T) => string) | null = null,
  ) {
    const index = {} as Record<I, SortedIndex<T>>;
    for (const name of Object.keys(specs) as I[]) {
      index[name] = new SortedIndex(specs[name]);
      this.indexes.push(index[name]);
    }
    this.index = index;
  }

  get(id: string): T | undefined {
    return this.byId.get(id)?.value;
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  findUnique(key: string): T | undefined {
    return this.byUnique.get(key)?.value;
  }

  insert(value: T, journal: Journal): void {
    const row: Row<T> = { value, ord: this.ords.next++ };
    this.attach(row);
    journal?.record(() => {
      if (this.byId.get(value.id) === row) this.detach(row);
    });
  }

  /** Replaces the row with the same id, keeping its place in insertion order. */
  replace(value: T, journal: Journal): void {
    const previous = this.byId.get(value.id);
    if (!previous) throw error("INTERNAL", `replace of a missing row ${value.id}`);
    const row: Row<T> = { value, ord: previous.ord };
    this.relink(previous, row);
    journal?.record(() => {
      if (this.byId.get(value.id) === row) this.relink(row, previous);
    });
  }

  /** Swaps `from` for `to` (the same id) in every index, in place where its order is unchanged. */
  private relink(from: Row<T>, to: Row<T>): void {
    this.byId.set(to.value.id, to);
    if (this.uniqueKey) {
      const old = this.uniqueKey(from.value);
      if (this.byUnique.get(old) === from) this.byUnique.delete(old);
      this.byUnique.set(this.uniqueKey(to.value), to);
    }
    for (const index of this.indexes) index.replace(from, to);
  }

  remove(id: string, journal: Journal): boolean {
    const row = this.byId.get(id);
    if (!row) return false;
    this.detach(row);
    journal?.record(() => {
      if (!this.byId.has(id)) this.attach(row);
    });
    return true;
  }

  private attach(row: Row<T>): void {
    this.byId.set(row.value.id, row);
    if (this.uniqueKey) this.byUnique.set(this.uniqueKey(row.value), row);
    for (const index of this.indexes) index.add(row);
  }

  private detach(row: Row<T>): void {
    this.byId.delete(row.value.id);
    if (this.uniqueKey) {
      const key = this.uniqueKey(row.value);
      if (this.byUnique.get(key) === row) this.byUnique.delete(key);
    }
    for (const index of this.indexes) index.remove(row);
  }
}

/** A collision-free composite key. */
function key(...parts: string[]): string {
  return JSON.stringify(parts);
}

function by<T>(
  group: (value: T) => string | null,
  sortKey: (value: T) => number,
  order: "asc" | "desc",
): IndexSpec<T> {
  return { group, sortKey, descending: order === "desc" };
}

/** Who holds a claimed run, and until when (epoch milliseconds). */
interface Lease {
  owner: string;
  expiresAt: number;
}

function createDatabase() {
  const ords: OrdCounter = { next: 1 };
  return {
    /** Leases of claimed runs by run id (kept beside the runs: a lease is not part of the Run record). */
    leases: new Map<string, Lease>(),
    /** The last seq given per (bot, conversation key): seqs keep rising after retention deletes runs. */
    runSeqs: new Map<string, number>(),
    traces: createTraceTable(ords),
    users: new Table<User, never>(ords, {}),
    bots: new Table<Bot, "byUser" | "byTeam">(ords, {
      byUser: by(
        (b) => b.userId,
        (b) => b.createdAt.getTime(),
        "asc",
      ),
      byTeam: by(
        (b) => b.teamId ?? null,
        (b) => b.createdAt.getTime(),
        "asc",
      ),
    }),
    /** Skills of every scope, per scope oldest first; names unique per scope. */
    skills: new Table<Skill, "byScope">(
      ords,
      {
        byScope: by(
          (s) => scopeKey(s.scope),
          (s) => s.createdAt.getTime(),
          "asc",
        ),
      },
      (s) => key(scopeKey(s.scope), s.name.toLowerCase()),
    ),
    skillRecords: new Table<SkillRecord, "bySkill" | "byBot" | "bySkillOnly">(ords, {
      bySkill: by(
        (r) => key(r.botId, r.skillId),
        (r) => r.createdAt.getTime(),
        "asc",
      ),
      // What bots.delete removes (records under shared skills included) and skills.delete (every bot's).
      byBot: by(
        (r) => r.botId,
        (r) => r.createdAt.getTime(),
        "asc",
      ),
      bySkillOnly: by(
        (r) => r.skillId,
        (r) => r.createdAt.getTime(),
        "asc",
      ),
    }),
    teams: new Table<Team, "all">(ords, {
      all: by(
        () => "all",
        (t) => t.createdAt.getTime(),
        "asc",
      ),
    }),
    /** One row per (team, user), keyed by both. */
    teamMembers: new Table<StoredTeamMember, "byTeam" | "byUser">(ords, {
      byTeam: by(
        (row) => row.member.teamId,
        (row) => row.member.createdAt.getTime(),
        "asc",
      ),
      byUser: by(
        (row) => row.member.userId,
        (row) => row.member.createdAt.getTime(),
        "asc",
      ),
    }),
    /** Promotion requests, newest first. */
    skillPromotions: new Table<SkillPromotion, "all">(ords, {
      all: by(
        () => "all",
        (p) => p.createdAt.getTime(),
        "desc",
      ),
    }),
    conversations: new Table<Conversation, "byBot">(ords, {
      byBot: by(
        (c) => c.botId,
        (c) => c.updatedAt.getTime(),
        "desc",
      ),
    }),
    messages: new Table<Message, "byConversation">(ords, {
      byConversation: by(
        (m) => key(m.botId, m.conversationId),
        (m) => m.seq,
        "asc",
      ),
    }),
    memories: new Table<Memory, "byOwner" | "byBot" | "byKey">(ords, {
      byOwner: by(
        (m) => key(m.botId, m.userId),
        (m) => m.updatedAt.getTime(),
        "desc",
      ),
      byBot: by(
        (m) => m.botId,
        (m) => m.createdAt.getTime(),
        "asc",
      ),
      byKey: by(
        (m) => key(m.botId, m.userId, m.key.toLowerCase()),
        (m) => m.updatedAt.getTime(),
        "desc",
      ),
    }),
    usage: new Table<UsageRecord, "byUser" | "byBot">(ords, {
      byUser: by(
        (u) => u.userId,
        (u) => u.createdAt.getTime(),
        "asc",
      ),
      byBot: by(
        (u) => u.botId,
        (u) => u.createdAt.getTime(),
        "asc",
      ),
    }),
    proposals: new Table<Proposal, "byBot">(ords, {
      byBot: by(
        (p) => p.botId,
        (p) => p.createdAt.getTime(),
        "desc",
      ),
    }),
    tools: new Table<Tool, "byBot">(
      ords,
      {
        byBot: by(
          (t) => t.botId,
          (t) => t.createdAt.getTime(),
          "asc",
        ),
      },
      (t) => key(t.botId, t.name.toLowerCase()),
    ),
    toolAudit: new Table<ToolCallAudit, "byBot">(ords, {
      byBot: by(
        (a) => a.botId,
        (a) => a.createdAt.getTime(),
        "desc",
      ),
    }),
    approvals: new Table<ToolApproval, "byBot">(ords, {
      byBot: by(
        (a) => a.botId,
        (a) => a.createdAt.getTime(),
        "desc",
      ),
    }),
    runs: new Table<Run, "byConversation" | "byBot" | "byDelivery" | "unfinished" | "finished">(ords, {
      byConversation: by(
        (r) => key(r.botId, r.conversationKey),
        (r) => r.seq,
        "asc",
      ),
      byBot: by(
        (r) => r.botId,
        (r) => r.createdAt.getTime(),
        "asc",
      ),
      byDelivery: by(
        (r) => (r.deliveryId === null ? null : key(r.botId, r.deliveryId)),
        (r) => r.createdAt.getTime(),
        "asc",
      ),
      // One group holding only the runs an executor must resume; a status change moves a run out.
      unfinished: by(
        (r) => (r.status === "queued" || r.status === "running" ? "unfinished" : null),
        (r) => r.createdAt.getTime(),
        "asc",
      ),
      // The runs retention may delete, oldest finish first.
      finished: by(
        (r) => ((r.status === "succeeded" || r.status === "failed") && r.finishedAt ? "finished" : null),
        (r) => r.finishedAt!.getTime(),
        "asc",
      ),
    }),
    /** Versions of skills, newest first per skill; unique per (skill, version). */
    skillVersions: new Table<SkillVersion, "bySkill">(
      ords,
      {
        bySkill: by(
          (v) => v.skillId,
          (v) => v.version,
          "desc",
        ),
      },
      (v) => key(v.skillId, String(v.version)),
    ),
    /** Recorded workflow steps, one row per (run, index). */
    runSteps: new Table<StoredRunStep, "byRun">(ords, {
      byRun: by(
        (row) => row.step.runId,
        (row) => row.step.index,
        "asc",
      ),
    }),
  };
}

type Database = ReturnType<typeof createDatabase>;

/** Traces of chat turns: per bot, per (bot, user), and one group over all of them for retention. */
function createTraceTable(ords: OrdCounter) {
  return new Table<Trace, "byBot" | "byUser" | "all">(ords, {
    byBot: by(
      (t) => t.botId,
      (t) => t.createdAt.getTime(),
      "asc",
    ),
    byUser: by(
      (t) => key(t.botId, t.userId),
      (t) => t.createdAt.getTime(),
      "asc",
    ),
    all: by(
      () => "all",
      (t) => t.createdAt.getTime(),
      "asc",
    ),
  });
}

function insertTrace(db: Database, trace: Trace, journal: Journal): Trace {
  if (!db.bots.has(trace.botId))
    throw error("NOT_FOUND", `cannot store a trace: bot ${trace.botId} does not exist`);
  requireFreeId(db.traces, trace.id, "trace");
  const stored = copy(trace);
  db.traces.insert(stored, journal);
  return stored;
}

/** A run step as kept in its table: the id is its (run, index) key. */
/** A membership with the id the table keys it by: (team, user). */
interface StoredTeamMember {
  id: string;
  member: TeamMember;
}

interface StoredRunStep {
  id: string;
  step: RunStep;
}

// ---------------------------------------------------------------------------
// Paging

function encodeCursor(position: Position): string {
  return Buffer.from(JSON.stringify(["m1", position.key, position.ord])).toString("base64url");
}

function decodeCursor(cursor: string): Position {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    if (
      Array.isArray(parsed) &&
      parsed.length === 3 &&
      parsed[0] === "m1" &&
      Number.isFinite(parsed[1]) &&
      Number.isFinite(parsed[2])
    ) {
      return { key: parsed[1], ord: parsed[2] };
    }
  } catch {
    // Reported below as an invalid cursor.
  }
  throw error("VALIDATION_FAILED", "invalid page cursor; pass the `nextCursor` of the previous page");
}

function checkLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1) {
    throw error("VALIDATION_FAILED", `page limit must be a positive integer, got ${String(limit)}`);
  }
}

interface PageQuery<T> {
  index: SortedIndex<T>;
  group: string;
  page: StoragePageOptions;
  /** Rows before this position are skipped (used for inclusive lower bounds). */
  from?: Position;
  /** Scanning stops at the first row for which this is true (used for exclusive upper bounds). */
  stop?: (value: T) => boolean;
  filter?: (value: T) => boolean;
  /** Walk the index from its end. */
  reverse?: boolean;
}

function readPage<T>(query: PageQuery<T>): Page<T> {
  if (query.reverse) return readPageReversed(query);
  const { index, group, page, from, stop, filter } = query;
  checkLimit(page.limit);
  const rows = index.rows(group);
  let start = page.cursor ? index.after(rows, decodeCursor(page.cursor)) : 0;
  if (from) start = Math.max(start, index.atOrAfter(rows, from));
  const items: T[] = [];
  let last: Row<T> | undefined;
  let more = false;
  for (let i = start; i < rows.length; i++) {
    const row = rows[i]!;
    if (stop?.(row.value)) break;
    if (filter && !filter(row.value)) continue;
    if (items.length === page.limit) {
      more = true;
      break;
    }
    items.push(copy(row.value));
    last = row;
  }
  return { items, nextCursor: more && last ? encodeCursor(index.position(last)) : null };
}

function readPageReversed<T>({ index, group, page, filter }: PageQuery<T>): Page<T> {
  checkLimit(page.limit);
  const rows = index.rows(group);
  // The cursor's row (or, if it was deleted, the first row after it) is where the previous page ended.
  const start = page.cursor ? index.atOrAfter(rows, decodeCursor(page.cursor)) - 1 : rows.length - 1;
  const items: T[] = [];
  let last: Row<T> | undefined;
  let more = false;
  for (let i = start; i >= 0; i--) {
    const row = rows[i]!;
    if (filter && !filter(row.value)) continue;
    if (items.length === page.limit) {
      more = true;
      break;
    }
    items.push(copy(row.value));
    last = row;
  }
  return { items, nextCursor: more && last ? encodeCursor(index.position(last)) : null };
}

// ---------------------------------------------------------------------------
// Repositories

interface Access {
  read<R>(op: () => R): Promise<R>;
  /** Runs a write; `journal` records how to undo it when it is part of a transaction. */
  write<R>(op: (journal: Journal) => R): Promise<R>;
}

function matchesFilter(data: Record<string, unknown>, filter: SkillRecordFilter): boolean {
  for (const [field, expected] of Object.entries(filter.equals ?? {})) {
    if (!Object.hasOwn(data, field)) return false;
    const actual = data[field];
    if (typeof expected === "string") {
      if (typeof actual !== "string" || actual.toLowerCase() !== expected.toLowerCase()) return false;
    } else if (actual !== expected) {
      return false;
    }
  }
  for (const [field, text] of Object.entries(filter.contains ?? {})) {
    const actual = Object.hasOwn(data, field) ? data[field] : undefined;
    if (typeof actual !== "string" || !actual.toLowerCase().includes(text.toLowerCase())) return false;
  }
  return true;
}

function requireFreeId(table: { has(id: string): boolean }, id: string, what: string): void {
  if (table.has(id)) throw error("CONFLICT", `a ${what} with id ${id} already exists`);
}

function ownedBy<T extends { botId: string | null }>(value: T | undefined, botId: string): T | undefined {
  return value !== undefined && value.botId === botId ? value : undefined;
}

// The writes of a chat turn, shared by the repositories and commitTurn. They return the stored value (not a copy).

function appendMessage(db: Database, message: NewMessage, journal: Journal): Message {
  if (!ownedBy(db.conversations.get(message.conversationId), message.botId)) {
    throw error("NOT_FOUND", `cannot append: the bot has no conversation ${message.conversationId}`);
  }
  requireFreeId(db.messages, message.id, "message");
  const rows = db.messages.index.byConversation.rows(key(message.botId, message.conversationId));
  const last = rows[rows.length - 1];
  // Set on the copy, not spread into a new literal: V8 gives every `{ ...copy, seq }` its own
  // hidden class, which doubled the memory each stored message took.
  const stored = copy(message) as Message;
  stored.seq = last ? last.value.seq + 1 : 1;
  db.messages.insert(stored, journal);
  return stored;
}

function recordUsage(db: Database, record: UsageRecord, journal: Journal): UsageRecord {
  requireFreeId(db.usage, record.id, "usage record");
  const stored = copy(record);
  db.usage.insert(stored, journal);
  return stored;
}

function touchConversation(
  db: Database,
  botId: string,
  conversationId: string,
  at: Date,
  journal: Journal,
): void {
  const conversation = ownedBy(db.conversations.get(conversationId), botId);
  if (!conversation) return;
  const touched = copy(conversation);
  touched.updatedAt = new Date(at);
  db.conversations.replace(touched, journal);
}

function buildRepositories(db: Database, access: Access): StorageRepositories {
  const requireBot = (botId: string, what: string) => {
    if (!db.bots.has(botId)) throw error("NOT_FOUND", `cannot store ${what}: bot ${botId} does not exist`);
  };
  const requireTeam = (teamId: string, what: string) => {
    if (!db.teams.has(teamId))
      throw error("NOT_FOUND", `cannot store ${what}: team ${teamId} does not exist`);
  };
  const skillNameTaken = (skill: Skill): boolean => {
    const holder = db.skills.findUnique(key(scopeKey(skill.scope), skill.name.toLowerCase()));
    return holder !== undefined && holder.id !== skill.id;
  };
  /** The skill, when it lives in the owner's scope. */
  const skillIn = (owner: SkillOwner, skillId: string): Skill | undefined => {
    const skill = db.skills.get(skillId);
    return skill !== undefined && scopeKey(skill.scope) === scopeKey(ownerScope(owner)) ? skill : undefined;
  };
  const toolNameTaken = (tool: Tool): boolean => {
    const holder = db.tools.findUnique(key(tool.botId, tool.name.toLowerCase()));
    return holder !== undefined && holder.id !== tool.id;
  };
  const copyOrNull = <T>(value: T | undefined): T | null => (value === undefined ? null : copy(value));

  const setLease = (runId: string, lease: Lease | null, journal: Journal) =>
    setLeaseOf(db, runId, lease, journal);
  const holds = (run: Run | undefined, owner: string): run is Run => holdsLease(db, run, owner);

  /** Removes a skill with its versions and every bot's records of it. */
  const removeSkill = (skillId: string, journal: Journal) => {
    for (const row of [...db.skillRecords.index.bySkillOnly.rows(skillId)]) {
      db.skillRecords.remove(row.value.id, journal);
    }
    for (const row of [...db.skillVersions.index.bySkill.rows(skillId)]) {
      db.skillVersions.remove(row.value.id, journal);
    }
    db.skills.remove(skillId, journal);
  };
  const requireTeamOf = (bot: Bot) => {
    if (bot.teamId !== undefined && bot.teamId !== null) requireTeam(bot.teamId, "a bot in a team");
  };

  const users: UserRepository = {
    upsert: (user) =>
      access.write((journal) => {
        const existing = db.users.get(user.id);
        if (existing) return copy(existing);
        const stored = copy(user);
        db.users.insert(stored, journal);
        return copy(stored);
      }),
    get: (userId) => access.read(() => copyOrNull(db.users.get(userId))),
  };

  const bots: BotRepository = {
    create: (bot) =>
      access.write((journal) => {
        requireFreeId(db.bots, bot.id, "bot");
        requireTeamOf(bot);
        const stored = copy(bot);
        db.bots.insert(stored, journal);
        return copy(stored);
      }),
    get: (botId) => access.read(() => copyOrNull(db.bots.get(botId))),
    listByUser: (userId, page) =>
      access.read(() => readPage({ index: db.bots.index.byUser, group: userId, page })),
    update: (bot) =>
      access.write((journal) => {
        if (!db.bots.has(bot.id)) return null;
        requireTeamOf(bot);
        const stored = copy(bot);
        db.bots.replace(stored, journal);
        return copy(stored);
      }),
    delete: (botId) =>
      access.write((journal) => {
        if (!db.bots.has(botId)) return false;
        for (const row of [...db.skills.index.byScope.rows(scopeKey({ kind: "bot", id: botId }))]) {
          removeSkill(row.value.id, journal);
        }
        // Its records under skills of shared scopes go with it too.
        for (const row of [...db.skillRecords.index.byBot.rows(botId)])
          db.skillRecords.remove(row.value.id, journal);
        for (const row of [...db.conversations.index.byBot.rows(botId)]) {
          for (const message of [...db.messages.index.byConversation.rows(key(botId, row.value.id))]) {
            db.messages.remove(message.value.id, journal);
          }
          db.conversations.remove(row.value.id, journal);
        }
        for (const row of [...db.memories.index.byBot.rows(botId)]) db.memories.remove(row.value.id, journal);
        for (const row of [...db.proposals.index.byBot.rows(botId)])
          db.proposals.remove(row.value.id, journal);
        for (const row of [...db.usage.index.byBot.rows(botId)]) db.usage.remove(row.value.id, journal);
        for (const row of [...db.tools.index.byBot.rows(botId)]) db.tools.remove(row.value.id, journal);
        for (const row of [...db.toolAudit.index.byBot.rows(botId)])
          db.toolAudit.remove(row.value.id, journal);
        for (const row of [...db.approvals.index.byBot.rows(botId)])
          db.approvals.remove(row.value.id, journal);
        for (const row of [...db.traces.index.byBot.rows(botId)]) db.traces.remove(row.value.id, journal);
        for (const row of [...db.runs.index.byBot.rows(botId)]) {
          for (const step of [...db.runSteps.index.byRun.rows(row.value.id)])
            db.runSteps.remove(step.value.id, journal);
          setLease(row.value.id, null, journal);
          db.runs.remove(row.value.id, journal);
        }
        // Lanes are key(botId, conversationKey): the JSON array's opening with the bot id.
        const prefix = `${key(botId).slice(0, -1)},`;
        for (const [lane, last] of [...db.runSeqs]) {
          if (!lane.startsWith(prefix)) continue;
          db.runSeqs.delete(lane);
          journal?.record(() => db.runSeqs.set(lane, last));
        }
        db.bots.remove(botId, journal);
        return true;
      }),
  };

  const skills: SkillRepository = {
    create: (skill) =>
      access.write((journal) => {
        const scope = skill.scope;
        if (scope.kind === "bot") requireBot(scope.id, "skill");
        if (scope.kind === "team") requireTeam(scope.id, "a team skill");
        requireFreeId(db.skills, skill.id, "skill");
        if (skillNameTaken(skill))
          throw error("CONFLICT", `the scope ${scopeKey(scope)} already has a skill named "${skill.name}"`);
        const stored = copy(skill);
        db.skills.insert(stored, journal);
        return copy(stored);
      }),
    get: (owner, skillId) => access.read(() => copyOrNull(skillIn(owner, skillId))),
    listByBot: (botId) =>
      access.read(() =>
        db.skills.index.byScope.rows(scopeKey({ kind: "bot", id: botId })).map((row) => copy(row.value)),
      ),
    listByScopes: (scopes) =>
      access.read(() =>
        scopes.flatMap((scope: SkillScope) =>
          db.skills.index.byScope.rows(scopeKey(scope)).map((row) => copy(row.value)),
        ),
      ),
    update: (skill) =>
      access.write((journal) => {
        // The scope names the skill's owner; a bot skill's `botId` must agree with it.
        if (skillIn(skill.scope, skill.id)?.botId !== skill.botId) return null;
        if (skillNameTaken(skill))
          throw error(
            "CONFLICT",
            `the scope ${scopeKey(skill.scope)} already has a skill named "${skill.name}"`,
          );
        const stored = copy(skill);
        db.skills.replace(stored, journal);
        return copy(stored);
      }),
    delete: (owner, skillId) =>
      access.write((journal) => {
        if (!skillIn(owner, skillId)) return false;
        removeSkill(skillId, journal);
        return true;
      }),
  };

  const ownedRecord = (botId: string, skillId: string, recordId: string) => {
    const record = ownedBy(db.skillRecords.get(recordId), botId);
    return record?.skillId === skillId ? record : undefined;
  };

  const skillRecords: SkillRecordRepository = {
    create: (record) =>
      access.write((journal) => {
        const skill = db.skills.get(record.skillId);
        // A bot keeps records under its own skills and under skills of shared scopes, never under another bot's.
        if (
          !db.bots.has(record.botId) ||
          !skill ||
          (skill.scope.kind === "bot" && skill.botId !== record.botId)
        ) {
          throw error("NOT_FOUND", `cannot store a skill record: the bot has no skill ${record.skillId}`);
        }
        requireFreeId(db.skillRecords, record.id, "skill record");
        const stored = copy(record);
        db.skillRecords.insert(stored, journal);
        return copy(stored);
      }),
    get: (botId, skillId, recordId) => access.read(() => copyOrNull(ownedRecord(botId, skillId, recordId))),
    query: (botId, skillId, filter, page) =>
      access.read(() =>
        readPage({
          index: db.skillRecords.index.bySkill,
          group: key(botId, skillId),
          page,
          filter: (record) => matchesFilter(record.data, filter),
          reverse: page.newestFirst === true,
        }),
      ),
    update: (record) =>
      access.write((journal) => {
        if (!ownedRecord(record.botId, record.skillId, record.id)) return null;
        const stored = copy(record);
        db.skillRecords.replace(stored, journal);
        return copy(stored);
      }),
    delete: (botId, skillId, recordId) =>
      access.write((journal) =>
        ownedRecord(botId, skillId, recordId) ? db.skillRecords.remove(recordId, journal) : false,
      ),
  };

  const conversations: ConversationRepository = {
    create: (conversation) =>
      access.write((journal) => {
        requireBot(conversation.botId, "conversation");
        requireFreeId(db.conversations, conversation.id, "conversation");
        const stored = copy(conversation);
        db.conversations.insert(stored, journal);
        return copy(stored);
      }),
    get: (botId, conversationId) =>
      access.read(() => copyOrNull(ownedBy(db.conversations.get(conversationId), botId))),
    listByBot: (botId, page) =>
      access.read(() => readPage({ index: db.conversations.index.byBot, group: botId, page })),
    touch: (botId, conversationId, at) =>
      access.write((journal) => touchConversation(db, botId, conversationId, at, journal)),
  };

  const messages: MessageRepository = {
    append: (message: NewMessage) => access.write((journal) => copy(appendMessage(db, message, journal))),
    listRecent: (botId, conversationId, { limit, beforeSeq }) =>
      access.read(() => {
        checkLimit(limit);
        const index = db.messages.index.byConversation;
        const rows = index.rows(key(botId, conversationId));
        const end = beforeSeq === undefined ? rows.length : index.atOrAfter(rows, { key: beforeSeq, ord: 0 });
        return rows.slice(Math.max(0, end - limit), end).map((row) => copy(row.value));
      }),
  };

  const memories: MemoryRepository = {
    create: (memory) =>
      access.write((journal) => {
        requireBot(memory.botId, "memory");
        requireFreeId(db.memories, memory.id, "memory");
        const stored = copy(memory);
        db.memories.insert(stored, journal);
        return copy(stored);
      }),
    get: (botId, memoryId) => access.read(() => copyOrNull(ownedBy(db.memories.get(memoryId), botId))),
    findByKey: (botId, userId, memoryKey) =>
      access.read(() => {
        const rows = db.memories.index.byKey.rows(key(botId, userId, memoryKey.toLowerCase()));
        return copyOrNull(rows[0]?.value);
      }),
    list: (botId, userId, page) =>
      access.read(() => readPage({ index: db.memories.index.byOwner, group: key(botId, userId), page })),
    update: (memory) =>
      access.write((journal) => {
        if (!ownedBy(db.memories.get(memory.id), memory.botId)) return null;
        const stored = copy(memory);
        db.memories.replace(stored, journal);
        return copy(stored);
      }),
    delete: (botId, memoryId) =>
      access.write((journal) =>
        ownedBy(db.memories.get(memoryId), botId) ? db.memories.remove(memoryId, journal) : false,
      ),
  };

  const usage: UsageRepository = {
    record: (record) => access.write((journal) => copy(recordUsage(db, record, journal))),
    list: (filter, page) =>
      access.read(() => {
        const { userId, botId, from, to } = filter;
        // Both indexes share one order, so a cursor from either fits the other.
        const byBot = botId !== undefined && botId !== null;
        return readPage<UsageRecord>({
          index: byBot ? db.usage.index.byBot : db.usage.index.byUser,
          group: byBot ? botId : userId,
          page,
          ...(from ? { from: { key: from.getTime(), ord: 0 } } : {}),
          ...(to ? { stop: (record) => record.createdAt.getTime() >= to.getTime() } : {}),
          filter: (record) => record.userId === userId,
        });
      }),
  };

  const proposals: ProposalRepository = {
    create: (proposal) =>
      access.write((journal) => {
        requireBot(proposal.botId, "proposal");
        requireFreeId(db.proposals, proposal.id, "proposal");
        const stored = copy(proposal);
        db.proposals.insert(stored, journal);
        return copy(stored);
      }),
    get: (botId, proposalId) => access.read(() => copyOrNull(ownedBy(db.proposals.get(proposalId), botId))),
    listByBot: (botId, { status, limit }) =>
      access.read(() => {
        checkLimit(limit);
        const found: Proposal[] = [];
        for (const row of db.proposals.index.byBot.rows(botId)) {
          if (found.length === limit) break;
          if (status === undefined || row.value.status === status) found.push(copy(row.value));
        }
        return found;
      }),
    update: (proposal) =>
      access.write((journal) => {
        if (!ownedBy(db.proposals.get(proposal.id), proposal.botId)) return null;
        const stored = copy(proposal);
        db.proposals.replace(stored, journal);
        return copy(stored);
      }),
  };

  const tools: ToolRepository = {
    create: (tool) =>
      access.write((journal) => {
        requireBot(tool.botId, "tool");
        requireFreeId(db.tools, tool.id, "tool");
        if (toolNameTaken(tool)) throw error("CONFLICT", `the bot already has a tool named "${tool.name}"`);
        const stored = copy(tool);
        db.tools.insert(stored, journal);
        return copy(stored);
      }),
    get: (botId, toolId) => access.read(() => copyOrNull(ownedBy(db.tools.get(toolId), botId))),
    findByName: (botId, name) =>
      access.read(() => copyOrNull(db.tools.findUnique(key(botId, name.toLowerCase())))),
    listByBot: (botId) => access.read(() => db.tools.index.byBot.rows(botId).map((row) => copy(row.value))),
    update: (tool) =>
      access.write((journal) => {
        if (!ownedBy(db.tools.get(tool.id), tool.botId)) return null;
        if (toolNameTaken(tool)) throw error("CONFLICT", `the bot already has a tool named "${tool.name}"`);
        const stored = copy(tool);
        db.tools.replace(stored, journal);
        return copy(stored);
      }),
    delete: (botId, toolId) =>
      access.write((journal) =>
        ownedBy(db.tools.get(toolId), botId) ? db.tools.remove(toolId, journal) : false,
      ),
  };

  const toolAudit: ToolAuditRepository = {
    record: (entry) =>
      access.write((journal) => {
        requireBot(entry.botId, "tool call audit entry");
        requireFreeId(db.toolAudit, entry.id, "tool call audit entry");
        const stored = copy(entry);
        db.toolAudit.insert(stored, journal);
        return copy(stored);
      }),
    list: (botId, page) =>
      access.read(() => readPage({ index: db.toolAudit.index.byBot, group: botId, page })),
  };

  const approvals: ToolApprovalRepository = {
    create: (approval) =>
      access.write((journal) => {
        requireBot(approval.botId, "tool approval");
        requireFreeId(db.approvals, approval.id, "tool approval");
        const stored = copy(approval);
        db.approvals.insert(stored, journal);
        return copy(stored);
      }),
    get: (botId, approvalId) => access.read(() => copyOrNull(ownedBy(db.approvals.get(approvalId), botId))),
    listByBot: (botId, { status, limit }) =>
      access.read(() => {
        checkLimit(limit);
        const found: ToolApproval[] = [];
        for (const row of db.approvals.index.byBot.rows(botId)) {
          if (found.length === limit) break;
          if (status === undefined || row.value.status === status) found.push(copy(row.value));
        }
        return found;
      }),
    update: (approval) =>
      access.write((journal) => {
        if (!ownedBy(db.approvals.get(approval.id), approval.botId)) return null;
        const stored = copy(approval);
        db.approvals.replace(stored, journal);
        return copy(stored);
      }),
    decide: (botId, approvalId, decision) =>
      access.write((journal) => {
        const existing = ownedBy(db.approvals.get(approvalId), botId);
        if (!existing) return null;
        if (existing.status !== "pending") {
          throw error("CONFLICT", `tool approval ${approvalId} was already ${existing.status}`);
        }
        const stored: ToolApproval = {
          ...existing,
          status: decision.status,
          reason: decision.reason,
          decidedAt: new Date(decision.decidedAt),
        };
        db.approvals.replace(stored, journal);
        return copy(stored);
      }),
  };

  const runs: RunRepository = {
    create: (run, options = {}) =>
      access.write((journal) => {
        requireBot(run.botId, "run");
        requireFreeId(db.runs, run.id, "run");
        if (
          run.deliveryId !== null &&
          db.runs.index.byDelivery.rows(key(run.botId, run.deliveryId)).length > 0
        ) {
          throw error("CONFLICT", `the bot already has a run with delivery id ${run.deliveryId}`);
        }
        const lane = key(run.botId, run.conversationKey);
        const last = db.runSeqs.get(lane);
        const seq = (last ?? 0) + 1;
        const claim = options.claimFor;
        // Claimed at once when nothing of its key is queued or running (see the port).
        const start =
          claim !== undefined &&
          !db.runs.index.byConversation
            .rows(lane)
            .some((row) => row.value.status === "queued" || row.value.status === "running");
        const stored: Run = start
          ? { ...copy(run), seq, status: "running", startedAt: new Date(claim.now), finishedAt: null }
          : { ...copy(run), seq };
        db.runs.insert(stored, journal);
        db.runSeqs.set(lane, seq);
        journal?.record(() => {
          if (last === undefined) db.runSeqs.delete(lane);
          else db.runSeqs.set(lane, last);
        });
        const reserve = options.reserveFor;
        if (start)
          setLease(run.id, { owner: claim.owner, expiresAt: claim.leaseExpiresAt.getTime() }, journal);
        else if (reserve)
          setLease(run.id, { owner: reserve.owner, expiresAt: reserve.until.getTime() }, journal);
        return copy(stored);
      }),
    get: (runId) => access.read(() => copyOrNull(db.runs.get(runId))),
    findByDelivery: (botId, deliveryId) =>
      access.read(() => copyOrNull(db.runs.index.byDelivery.rows(key(botId, deliveryId))[0]?.value)),
    listByConversation: (botId, conversationKey, { limit, afterSeq }) =>
      access.read(() => {
        checkLimit(limit);
        const found: Run[] = [];
        for (const row of db.runs.index.byConversation.rows(key(botId, conversationKey))) {
          if (found.length === limit) break;
          if (afterSeq === undefined || row.value.seq > afterSeq) found.push(copy(row.value));
        }
        return found;
      }),
    update: (run) =>
      access.write((journal) => {
        const existing = ownedBy(db.runs.get(run.id), run.botId);
        if (!existing) return null;
        const stored = keptFields(run, existing);
        db.runs.replace(stored, journal);
        return copy(stored);
      }),
    getMany: (runIds) =>
      access.read(() => runIds.flatMap((runId) => (db.runs.has(runId) ? [copy(db.runs.get(runId)!)] : []))),
    requeue: (botId, runId) =>
      access.write((journal) => {
        const existing = ownedBy(db.runs.get(runId), botId);
        if (existing?.status !== "awaiting_approval") return null;
        const lane = key(botId, existing.conversationKey);
        const previous = db.runSeqs.get(lane);
        const last = Math.max(previous ?? 0, existing.seq);
        const stored: Run = {
          ...existing,
          status: "queued",
          seq: last + 1,
          resumes: (existing.resumes ?? 0) + 1,
          output: null,
          error: null,
          finishedAt: null,
        };
        db.runs.replace(stored, journal);
        db.runSeqs.set(lane, last + 1);
        journal?.record(() => {
          if (previous === undefined) db.runSeqs.delete(lane);
          else db.runSeqs.set(lane, previous);
        });
        setLease(runId, null, journal);
        return copy(stored);
      }),
    claim: ({ owner, now, leaseExpiresAt, limit }) =>
      access.write((journal) => {
        checkLimit(limit);
        // The head of each key: its unfinished run with the smallest seq.
        const heads = new Map<string, Run>();
        for (const row of db.runs.index.unfinished.rows("unfinished")) {
          const lane = key(row.value.botId, row.value.conversationKey);
          const head = heads.get(lane);
          if (!head || row.value.seq < head.seq) heads.set(lane, row.value);
        }
        const claimable = [...heads.values()]
          .filter((run) => {
            const lease = db.leases.get(run.id);
            // A queued run reserved for another owner waits for it until the reservation ends.
            if (run.status === "queued")
              return !lease || lease.owner === owner || lease.expiresAt < now.getTime();
            return !lease || lease.expiresAt < now.getTime();
          })
          .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || (a.id < b.id ? -1 : 1))
          .slice(0, limit);
        return claimable.map((run) => {
          const stored: Run = {
            ...run,
            status: "running",
            startedAt: new Date(now),
            finishedAt: null,
            output: null,
            error: null,
          };
          db.runs.replace(stored, journal);
          setLease(run.id, { owner, expiresAt: leaseExpiresAt.getTime() }, journal);
          return { run: copy(stored), reclaimed: run.status === "running" };
        });
      }),
    extendLeases: (owner, runIds, expiresAt) =>
      access.write((journal) =>
        runIds.filter((runId) => {
          if (!holds(db.runs.get(runId), owner)) return false;
          setLease(runId, { owner, expiresAt: expiresAt.getTime() }, journal);
          return true;
        }),
      ),
    finish: (run, owner) => access.write((journal) => finishRun(db, run, owner, journal)),
    listUnfinished: (page) =>
      access.read(() => readPage({ index: db.runs.index.unfinished, group: "unfinished", page })),
    listByBot: (botId, page) =>
      access.read(() => readPage({ index: db.runs.index.byBot, group: botId, page, reverse: true })),
    deleteFinishedBefore: (before) =>
      access.write((journal) => {
        const cutoff = before.getTime();
        const doomed: string[] = [];
        for (const row of db.runs.index.finished.rows("finished")) {
          if (row.value.finishedAt!.getTime() >= cutoff) break;
          doomed.push(row.value.id);
        }
        for (const id of doomed) {
          for (const step of [...db.runSteps.index.byRun.rows(id)])
            db.runSteps.remove(step.value.id, journal);
          setLease(id, null, journal);
          db.runs.remove(id, journal);
        }
        return doomed.length;
      }),
  };

  const runSteps: RunStepRepository = {
    save: (step) => access.write((journal) => saveRunStep(db, step, journal)),
    listByRun: (botId, runId) =>
      access.read(() =>
        ownedBy(db.runs.get(runId), botId)
          ? db.runSteps.index.byRun.rows(runId).map((row) => copy(row.value.step))
          : [],
      ),
  };

  const skillVersions: SkillVersionRepository = {
    append: (version) =>
      access.write((journal) => {
        if (!skillIn(version.scope, version.skillId)) {
          throw error(
            "NOT_FOUND",
            `cannot store a skill version: the scope ${scopeKey(version.scope)} has no skill ${version.skillId}`,
          );
        }
        requireFreeId(db.skillVersions, version.id, "skill version");
        if (db.skillVersions.findUnique(key(version.skillId, String(version.version)))) {
          throw error("CONFLICT", `skill ${version.skillId} already has a version ${version.version}`);
        }
        const stored = copy(version);
        db.skillVersions.insert(stored, journal);
        return copy(stored);
      }),
    list: (owner, skillId, page) =>
      access.read(() => {
        if (!skillIn(owner, skillId)) {
          checkLimit(page.limit);
          if (page.cursor) decodeCursor(page.cursor);
          return { items: [], nextCursor: null };
        }
        return readPage({ index: db.skillVersions.index.bySkill, group: skillId, page });
      }),
    get: (owner, skillId, version) =>
      access.read(() =>
        skillIn(owner, skillId)
          ? copyOrNull(db.skillVersions.findUnique(key(skillId, String(version))))
          : null,
      ),
  };

  const teams: TeamRepository = {
    create: (team) =>
      access.write((journal) => {
        requireFreeId(db.teams, team.id, "team");
        const stored = copy(team);
        db.teams.insert(stored, journal);
        return copy(stored);
      }),
    get: (teamId) => access.read(() => copyOrNull(db.teams.get(teamId))),
    list: (page) => access.read(() => readPage({ index: db.teams.index.all, group: "all", page })),
    update: (team) =>
      access.write((journal) => {
        if (!db.teams.has(team.id)) return null;
        const stored = copy(team);
        db.teams.replace(stored, journal);
        return copy(stored);
      }),
    delete: (teamId) =>
      access.write((journal) => {
        if (!db.teams.has(teamId)) return false;
        for (const row of [...db.teamMembers.index.byTeam.rows(teamId)])
          db.teamMembers.remove(row.value.id, journal);
        for (const row of [...db.skills.index.byScope.rows(scopeKey({ kind: "team", id: teamId }))]) {
          removeSkill(row.value.id, journal);
        }
        for (const row of [...db.bots.index.byTeam.rows(teamId)]) {
          const { teamId: _teamId, ...bot } = row.value;
          db.bots.replace(copy(bot), journal);
        }
        db.teams.remove(teamId, journal);
        return true;
      }),
  };

  const teamMembers: TeamMemberRepository = {
    save: (member) =>
      access.write((journal) => {
        requireTeam(member.teamId, "a team membership");
        const id = key(member.teamId, member.userId);
        const existing = db.teamMembers.get(id);
        const stored: StoredTeamMember = {
          id,
          member: existing ? { ...copy(member), createdAt: existing.member.createdAt } : copy(member),
        };
        if (existing) db.teamMembers.replace(stored, journal);
        else db.teamMembers.insert(stored, journal);
        return copy(stored.member);
      }),
    get: (teamId, userId) => access.read(() => copyOrNull(db.teamMembers.get(key(teamId, userId))?.member)),
    listByTeam: (teamId) =>
      access.read(() => db.teamMembers.index.byTeam.rows(teamId).map((row) => copy(row.value.member))),
    listByUser: (userId) =>
      access.read(() => db.teamMembers.index.byUser.rows(userId).map((row) => copy(row.value.member))),
    delete: (teamId, userId) =>
      access.write((journal) => db.teamMembers.remove(key(teamId, userId), journal)),
  };

  const skillPromotions: SkillPromotionRepository = {
    create: (promotion) =>
      access.write((journal) => {
        requireFreeId(db.skillPromotions, promotion.id, "skill promotion");
        const stored = copy(promotion);
        db.skillPromotions.insert(stored, journal);
        return copy(stored);
      }),
    get: (promotionId) => access.read(() => copyOrNull(db.skillPromotions.get(promotionId))),
    list: (filter, page) =>
      access.read(() =>
        readPage({
          index: db.skillPromotions.index.all,
          group: "all",
          page,
          filter: (promotion) => matchesPromotion(promotion, filter),
        }),
      ),
    decide: (promotionId, decision) =>
      access.write((journal) => {
        const existing = db.skillPromotions.get(promotionId);
        if (!existing) return null;
        if (existing.status !== "pending") {
          throw error("CONFLICT", `skill promotion ${promotionId} was already ${existing.status}`);
        }
        const stored: SkillPromotion = { ...copy(existing), ...copy(decision) };
        db.skillPromotions.replace(stored, journal);
        return copy(stored);
      }),
  };

  const traces: TraceRepository = {
    create: (trace) => access.write((journal) => copy(insertTrace(db, trace, journal))),
    get: (botId, traceId) => access.read(() => copyOrNull(ownedBy(db.traces.get(traceId), botId))),
    list: ({ botId, userId, from, to }, page) =>
      access.read(() =>
        readPage({
          index: userId === undefined ? db.traces.index.byBot : db.traces.index.byUser,
          group: userId === undefined ? botId : key(botId, userId),
          page,
          ...(from ? { from: { key: from.getTime(), ord: 0 } } : {}),
          ...(to ? { stop: (trace: Trace) => trace.createdAt.getTime() >= to.getTime() } : {}),
        }),
      ),
    setFeedback: (botId, traceId, feedback) =>
      access.write((journal) => {
        const existing = ownedBy(db.traces.get(traceId), botId);
        if (!existing) return null;
        const stored: Trace = { ...copy(existing), feedback: copy(feedback) };
        db.traces.replace(stored, journal);
        return copy(stored);
      }),
    deleteOlderThan: (before) =>
      access.write((journal) => {
        const rows = db.traces.index.all.rows("all");
        const cutoff = before.getTime();
        const doomed: string[] = [];
        for (const row of rows) {
          if (row.value.createdAt.getTime() >= cutoff) break;
          doomed.push(row.value.id);
        }
        for (const id of doomed) db.traces.remove(id, journal);
        return doomed.length;
      }),
  };

  return {
    traces,
    users,
    bots,
    skills,
    skillRecords,
    conversations,
    messages,
    memories,
    usage,
    proposals,
    tools,
    toolAudit,
    approvals,
    runs,
    runSteps,
    skillVersions,
    teams,
    teamMembers,
    skillPromotions,
  };
}

function matchesPromotion(promotion: SkillPromotion, filter: SkillPromotionFilter): boolean {
  if (filter.status !== undefined && promotion.status !== filter.status) return false;
  if (filter.to !== undefined && scopeKey(promotion.to) !== scopeKey(filter.to)) return false;
  if (filter.from !== undefined && scopeKey(promotion.from) !== scopeKey(filter.from)) return false;
  return filter.skillId === undefined || promotion.skillId === filter.skillId;
}
