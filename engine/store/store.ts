// One interface in front of every backend (SQLite now, Postgres for scale-out). Methods are coarse:
// each is one statement or one transaction, so the runtime never builds SQL and never holds a
// transaction open across an await.
import type { Enrollment, RecordSnapshot } from '../machine/types';
import type { CadenceDefinition } from '../model/types';

export type CadenceStatus = 'draft' | 'active' | 'inactive';

export interface CadenceRow {
  id: string;
  module: string;
  name: string;
  status: CadenceStatus;
  draft: CadenceDefinition | null;
  activeVersion: number | null;
  createdAt: number;
  updatedAt: number;
}

/** A cadence's own timer (U4's un-enroll date, E7's re-check); an enrollment's lives in its row (`due_at`). */
export interface TimerRow {
  id: string;
  kind: 'unenrollDate' | 'viewRecheck' | 'backfill';
  cadenceId: string;
  dueAt: number;
  priority: number;
}

export interface OutboxRow {
  key: string;
  enrollmentId: string;
  cadenceId: string;
  nodeId: string;
  recordId: string;
  channel: string;
  payload: unknown;
  status: 'pending' | 'done' | 'dead' | 'cancelled';
  attempts: number;
  availableAt: number;
  /** When it was queued (or re-queued by a retry): the performer's hold time counts from here (D6). */
  createdAt: number;
  lastError?: string | null;
}

export interface AuditRow {
  seq?: number;
  at: number;
  cadenceId: string | null;
  enrollmentId: string | null;
  recordId: string | null;
  actor: string;
  event: string;
  reason: string;
  data?: Record<string, unknown> | null;
}

/**
 * One stored audit row per step: the entries a step logs share time, actor and enrollment, so the
 * first is the row and the rest ride along in `more` (a dispatch logs three). Fewer rows and index
 * entries per follow-up; readers get the entries back in order (`unpackAudit`).
 */
export interface PackedAudit extends Omit<AuditRow, 'seq'> {
  more: { event: string; reason: string; data: Record<string, unknown> | null }[] | null;
}

export function packAudit(rows: readonly AuditRow[]): PackedAudit[] {
  const out: PackedAudit[] = [];
  for (const a of rows) {
    const last = out[out.length - 1];
    const entry = { event: a.event, reason: a.reason, data: a.data ?? null };
    if (last && last.at === a.at && last.enrollmentId === a.enrollmentId && last.cadenceId === a.cadenceId && last.recordId === a.recordId && last.actor === a.actor) (last.more ??= []).push(entry);
    else out.push({ at: a.at, cadenceId: a.cadenceId, enrollmentId: a.enrollmentId, recordId: a.recordId, actor: a.actor, ...entry, more: null });
  }
  return out;
}

export function unpackAudit(row: AuditRow & { more?: PackedAudit['more'] }): AuditRow[] {
  const { more, ...first } = row;
  return [first, ...(more ?? []).map((m) => ({ ...first, ...m }))];
}

export interface AuditFilter {
  enrollmentId?: string;
  recordId?: string;
  cadenceId?: string;
  /** A stored seq: rows past it in `order` (a cursor). */
  after?: number;
  limit?: number;
  order?: 'asc' | 'desc';
}

/** An enrollment that left its cadence early: when, and the reason kept in `enrollments.reason`. */
export interface Unenrollment {
  enrollmentId: string;
  recordId: string;
  status: 'stopped' | 'failed';
  reason: string;
  at: number;
}

/** Most stored audit rows one read returns. */
export const AUDIT_MAX_PAGE = 10_000;

export interface ApiKeyRow {
  id: string;
  hash: string;
  name: string;
  scopes: string[];
  createdAt: number;
  revokedAt: number | null;
}

export interface CounterBump {
  scope: string;
  key: string;
  /** Refuse the whole commit when the counter is already at this value (caps under concurrency). */
  max?: number;
  /** Other counters of the same scope whose sum with this one counts against `max` (F13's day-counters of a window). */
  window?: string[];
  /** Only checks `max` (with `window`); counts nothing. */
  checkOnly?: boolean;
}

/** What a step does to an action already in the outbox (the machine's cancel/settle/requeue effects). */
export type OutboxChange =
  /**
   * Cancel unless a hand-off of it is in flight: a row still pending that was never handed to the host
   * (attempts 0) or whose last hand-off failed or lapsed (its lease is over), so no retry goes out.
   */
  | { key: string; op: 'cancel' }
  /** A failed hand-off: pending again, handed over at `at`, with what failed (D6). */
  | { key: string; op: 'retry'; at: number; error: string }
  /** Finished: delivered (its bodies dropped, a summary kept) or given up (kept whole for a retry). */
  | { key: string; op: 'done' | 'dead' }
  /** A dead row handed over again: pending, attempts and hold time from now. */
  | { key: string; op: 'requeue' };

/**
 * Everything one machine step changes, written in one transaction (the outbox pattern). Pure data: the
 * store writes what is here and decides nothing (the machine returned it as effects).
 */
export interface Commit {
  enrollment: Enrollment;
  /** The rev read before the step; null to insert a new enrollment. */
  expectedRev: number | null;
  /** The enrollment's timer (its row's due_at): due at this time, none (null), or left as it is (undefined). */
  timer?: number | null;
  outbox: Omit<OutboxRow, 'status' | 'attempts'>[];
  outboxChanges?: OutboxChange[];
  audit: AuditRow[];
  counters: CounterBump[];
  /**
   * The committing worker hands the new outbox rows to the host itself, right after the commit: they
   * are written already leased until this time (attempts 1), exactly as a claim would leave them, so
   * no other worker takes them meanwhile and a crash before the ack hands them over when it expires.
   */
  handOffUntil?: number;
}

export interface EnrollmentFilter {
  cadenceId?: string;
  recordId?: string;
  status?: Enrollment['status'];
  /** Paging: ids greater than this. */
  after?: string;
  limit?: number;
}

export interface StoredEnrollment {
  enrollment: Enrollment;
  rev: number;
}

export interface Store {
  migrate(): Promise<void>;
  close(): Promise<void>;
  /**
   * Runs `fn` while holding a lock named `key` that every process on this store respects (PostgreSQL:
   * a session advisory lock, released if the process dies; SQLite: within the process). For rare,
   * multi-statement administrative work such as deploying a cadence, never for steps.
   */
  exclusive<T>(key: string, fn: () => Promise<T>): Promise<T>;

  getCadence(id: string): Promise<CadenceRow | undefined>;
  listCadences(module?: string): Promise<CadenceRow[]>;
  putCadence(row: CadenceRow): Promise<void>;
  /** False (nothing written) when that version exists already: another process published first. */
  addVersion(cadenceId: string, version: number, def: CadenceDefinition, at: number, by: string): Promise<boolean>;
  getVersion(cadenceId: string, version: number): Promise<CadenceDefinition | undefined>;

  /** Snapshots in one statement/transaction; ids are unique within one call. */
  putRecords(recs: readonly RecordSnapshot[], at: number): Promise<void>;
  getRecord(module: string, id: string): Promise<RecordSnapshot | undefined>;
  listRecords(module: string, after: string | null, limit: number): Promise<RecordSnapshot[]>;

  getEnrollment(id: string): Promise<StoredEnrollment | undefined>;
  findEnrollment(cadenceId: string, recordId: string): Promise<StoredEnrollment | undefined>;
  listEnrollments(filter: EnrollmentFilter): Promise<StoredEnrollment[]>;
  /** Every enrollment (any cadence, any status) of these records: one read for a batch of records. */
  enrollmentsOfRecords(recordIds: readonly string[]): Promise<StoredEnrollment[]>;
  /** Applies a step atomically; false (and nothing written) when the rev moved or a capped counter is full. */
  commit(c: Commit): Promise<boolean>;
  /**
   * Applies many steps in one transaction (set-based where the store can): each is checked and
   * written on its own terms, so one conflict refuses only that step. Returns which were applied.
   */
  commitMany(commits: Commit[]): Promise<boolean[]>;
  getEnrollments(ids: readonly string[]): Promise<StoredEnrollment[]>;
  getRecords(keys: readonly { module: string; id: string }[]): Promise<RecordSnapshot[]>;

  setTimer(t: TimerRow): Promise<void>;
  deleteTimer(id: string): Promise<void>;
  /** Leases up to `limit` due cadence timers (U4, E7) in (due_at, priority) order. */
  claimTimers(now: number, limit: number, leaseUntil: number, cadences?: readonly string[]): Promise<TimerRow[]>;
  /**
   * Steps a batch of the enrollments whose timer is due (due_at <= now, oldest first, at most `limit`):
   * claims them, calls `step` with them while they stay claimed, and writes the commits it returns in
   * the same transaction. PostgreSQL claims with the row locks of that transaction (FOR UPDATE SKIP
   * LOCKED: nothing written to claim, and a crash frees the batch at once); SQLite, one writer, within
   * this process. A claimed enrollment whose step was not applied is leased (due_at = `leaseUntil`,
   * guarded by its rev), for the caller to take one by one and hand back with `releaseDue`.
   */
  stepDue(now: number, limit: number, leaseUntil: number, cadences: readonly string[] | undefined,
    step: (due: StoredEnrollment[]) => Promise<Commit[]>): Promise<{ due: StoredEnrollment[]; applied: boolean[] }>;
  /**
   * Gives back a leased enrollment timer that decided nothing: due at `dueAt`, or none when null — only
   * if it is still the lease (due at `leasedUntil`). A commit may have armed a newer timer meanwhile.
   */
  releaseDue(enrollmentId: string, leasedUntil: number, dueAt: number | null): Promise<void>;
  nextDue(cadences?: readonly string[]): Promise<number | null>;
  /**
   * How many stepDue batches one process should run at once (default 1). PostgreSQL says 2 when its
   * pool can hold both transactions and their reads: one batch is planned while the other is written.
   */
  readonly batchLanes?: number;
  /** Tells other processes that work of these cadences is due now (PostgreSQL: NOTIFY). Optional: SQLite has one process. */
  notifyDue?(cadenceIds: readonly string[]): Promise<void>;
  /**
   * Calls `fn` when another process said work is due (with its cadence id), and once with null after the
   * channel reconnects (a notification may have been missed meanwhile); `onError` hears why the channel
   * went down or could not come back (it keeps retrying). Returns the way to unsubscribe.
   */
  subscribeDue?(fn: (cadenceId: string | null) => void, onError?: (e: Error) => void): () => void;

  claimOutbox(now: number, limit: number, leaseUntil: number, cadences?: readonly string[]): Promise<OutboxRow[]>;
  getOutbox(key: string): Promise<OutboxRow | undefined>;
  /** Takes back a pending action no hand-off has in flight (never handed off, or its lease is over): true if it did (F8). */
  withdrawOutbox(key: string, now: number): Promise<boolean>;

  addOutcome(key: string, cadenceId: string, nodeId: string, outcome: string, at: number): Promise<boolean>;
  addAudit(rows: AuditRow[]): Promise<void>;
  /**
   * The audit of one enrollment, record or cadence, a page at a time by stored seq: `limit` stored rows
   * (default and at most 10,000; a packed row unpacks to several entries sharing its seq) past the
   * `after` seq in `order` ('asc': oldest first, seq > after; 'desc': newest first, seq < after, and the
   * entries of a row in reverse too). Paged because a long-lived enrollment passes any fixed cap, and a
   * cap that cuts the newest rows hides exactly what a reader came for.
   */
  listAudit(filter: AuditFilter): Promise<AuditRow[]>;
  counter(scope: string, key: string): Promise<number>;
  /** Many counters in one read (those absent are left out: their value is 0). */
  counters(keys: readonly { scope: string; key: string }[]): Promise<{ scope: string; key: string; n: number }[]>;
  /** Returns the stored value, or stores and returns `fallback` when there is none (first writer wins). */
  meta(key: string, fallback: string): Promise<string>;
  bumpCounter(scope: string, key: string): Promise<number>;

  addApiKey(row: ApiKeyRow): Promise<void>;
  findApiKey(hash: string): Promise<ApiKeyRow | undefined>;
  /** Every key, newest first, without its hash (P1: keys are listed and revoked, never shown again). */
  listApiKeys(): Promise<Omit<ApiKeyRow, 'hash'>[]>;
  /** Sets revokedAt once; false for an unknown or already revoked key. */
  revokeApiKey(id: string, at: number): Promise<boolean>;
  /** Records of a module whose Email is this address (reply matching by sender, U11). */
  findRecordsByEmail(email: string): Promise<RecordSnapshot[]>;

  /** The latest enrollments of a cadence that were un-enrolled (stopped) or failed, newest first (the report's "latest un-enrollments"). */
  latestUnenrollments(cadenceId: string, limit: number): Promise<Unenrollment[]>;

  /** A1 as data: enrollment counts by status/reason, executed (delivered, D5) and outcomes per follow-up. */
  cadenceStats(cadenceId: string): Promise<{
    byStatus: { status: string; reason: string; n: number }[];
    executed: { nodeId: string; n: number }[];
    /** Actions whose performer failed and that wait for a retry (D6: "waiting for its performer"). */
    waiting: { nodeId: string; n: number }[];
    outcomes: { nodeId: string; outcome: string; n: number }[];
    /** F13: active enrollments whose due follow-up a contact limit holds, per follow-up. */
    held: { nodeId: string; n: number }[];
  }>;
}
