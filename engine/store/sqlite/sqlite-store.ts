// The embedded default store: Node's built-in SQLite (no native build), one file, WAL.
// node:sqlite is synchronous, so each method below runs to completion without interleaving:
// a method is a transaction, and no transaction ever spans an await.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { migrationFiles, refuseNewerSchema } from '../migration-files';
import { cadenceRow, outboxRow, recordRow, stored } from './rows';
import { applyOutboxChanges, CANCEL_IDLE } from './outbox';
import { ENROLLMENT_READ, stateOf } from '../enrollment-row';
import { leaseLock } from './lock';
import { DueClaims } from './due';
import { listAudit } from './audit';
import { latestUnenrollments } from './unenrollments';
import type { Enrollment, RecordSnapshot } from '../../machine/types';
import type { CadenceDefinition } from '../../model/types';
import { packAudit, type ApiKeyRow, type AuditFilter, type AuditRow, type CadenceRow, type Commit, type EnrollmentFilter, type Store, type StoredEnrollment, type TimerRow } from '../store';

type Row = Record<string, unknown>;

export const MIGRATIONS_DIR = join(__dirname, 'migrations');

export class SqliteStore implements Store {
  readonly db: DatabaseSync;
  private readonly statements = new Map<string, StatementSync>();

  /** `path` is a file, or ":memory:" for the simulator. */
  constructor(readonly path: string) {
    this.db = new DatabaseSync(path);
    this.db.exec('PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;');
    if (path !== ':memory:') this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;');
  }

  /** A prepared statement, cached (the lock module's way in). */
  prepare(sql: string): StatementSync {
    return this.q(sql);
  }

  private q(sql: string): StatementSync {
    let st = this.statements.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.statements.set(sql, st);
    }
    return st;
  }

  /** Runs `fn` in one IMMEDIATE transaction (writers queue on the busy timeout instead of failing late). */
  tx<T>(fn: () => T): T {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const out = fn();
      this.db.exec('COMMIT');
      return out;
    } catch (e) {
      this.db.exec('ROLLBACK');
      throw e;
    }
  }

  /**
   * A lock row in `meta`, so processes sharing the file take turns too. Its lease (wall-clock time:
   * this is I/O coordination, not cadence time) frees it within 30 s if the holder dies.
   */
  async exclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return leaseLock(this, key, fn);
  }

  async migrate(): Promise<void> {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)');
    const files = migrationFiles(MIGRATIONS_DIR);
    refuseNewerSchema((this.db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map((r) => r.version), files);
    for (const { version, path } of files) {
      this.tx(() => {
        if (this.q('SELECT 1 FROM schema_migrations WHERE version = ?').get(version)) return;
        this.db.exec(readFileSync(path, 'utf8'));
        this.q('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(version, Date.now());
      });
    }
  }

  async close(): Promise<void> {
    this.statements.clear();
    if (this.db.isOpen) this.db.close();
  }

  // Cadences ---------------------------------------------------------------------------------------

  async getCadence(id: string) {
    const r = this.q('SELECT * FROM cadences WHERE id = ?').get(id) as Row | undefined;
    return r && cadenceRow(r);
  }

  async listCadences(module?: string) {
    const rows = (module ? this.q('SELECT * FROM cadences WHERE module = ? ORDER BY id').all(module) : this.q('SELECT * FROM cadences ORDER BY id').all()) as Row[];
    return rows.map(cadenceRow);
  }

  async putCadence(c: CadenceRow) {
    this.q(`INSERT INTO cadences (id, module, name, status, draft, active_version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (id) DO UPDATE SET name = excluded.name, status = excluded.status, draft = excluded.draft,
      active_version = excluded.active_version, updated_at = excluded.updated_at`).run(
      c.id, c.module, c.name, c.status, c.draft ? JSON.stringify(c.draft) : null, c.activeVersion, c.createdAt, c.updatedAt);
  }

  async addVersion(cadenceId: string, version: number, def: CadenceDefinition, at: number, by: string) {
    return this.q('INSERT INTO cadence_versions (cadence_id, version, definition, published_at, published_by) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING').run(cadenceId, version, JSON.stringify(def), at, by).changes > 0;
  }

  async getVersion(cadenceId: string, version: number) {
    const r = this.q('SELECT definition FROM cadence_versions WHERE cadence_id = ? AND version = ?').get(cadenceId, version) as Row | undefined;
    return r ? (JSON.parse(r.definition as string) as CadenceDefinition) : undefined;
  }

  // Records ----------------------------------------------------------------------------------------

  private putRecordSync(rec: RecordSnapshot, at: number) {
    this.q(`INSERT INTO records (module, id, data, unsubscribed, updated_at) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (module, id) DO UPDATE SET data = excluded.data, unsubscribed = excluded.unsubscribed, updated_at = excluded.updated_at`).run(
      rec.module, rec.id, JSON.stringify(rec.data), rec.unsubscribed ? 1 : 0, at);
  }

  async putRecords(recs: readonly RecordSnapshot[], at: number) {
    this.tx(() => {
      for (const r of recs) this.putRecordSync(r, at);
    });
  }

  async getRecord(module: string, id: string) {
    const r = this.q('SELECT * FROM records WHERE module = ? AND id = ?').get(module, id) as Row | undefined;
    return r && recordRow(r);
  }

  async listRecords(module: string, after: string | null, limit: number) {
    return (this.q('SELECT * FROM records WHERE module = ? AND id > ? ORDER BY id LIMIT ?').all(module, after ?? '', limit) as Row[]).map(recordRow);
  }

  // Enrollments ------------------------------------------------------------------------------------

  async getEnrollment(id: string) {
    const r = this.q(`SELECT ${ENROLLMENT_READ} FROM enrollments WHERE id = ?`).get(id) as Row | undefined;
    return r && stored(r);
  }

  async findEnrollment(cadenceId: string, recordId: string) {
    const r = this.q(`SELECT ${ENROLLMENT_READ} FROM enrollments WHERE cadence_id = ? AND record_id = ?`).get(cadenceId, recordId) as Row | undefined;
    return r && stored(r);
  }

  async listEnrollments(f: EnrollmentFilter) {
    const where: string[] = ['id > ?'];
    const args: (string | number)[] = [f.after ?? ''];
    if (f.cadenceId) (where.push('cadence_id = ?'), args.push(f.cadenceId));
    if (f.recordId) (where.push('record_id = ?'), args.push(f.recordId));
    if (f.status) (where.push('status = ?'), args.push(f.status));
    args.push(f.limit ?? 1000);
    return (this.q(`SELECT ${ENROLLMENT_READ} FROM enrollments WHERE ${where.join(' AND ')} ORDER BY id LIMIT ?`).all(...args) as Row[]).map(stored);
  }

  async commit(c: Commit): Promise<boolean> {
    const e = c.enrollment;
    try {
      return this.commitSync(c, e);
    } catch (err) {
      if (err instanceof CapReached) return false; // the caller re-reads the counter and defers (F12)
      throw err;
    }
  }

  async commitMany(commits: Commit[]): Promise<boolean[]> {
    // One transaction (one fsync) for the batch. A step refused by its rev writes nothing (the check is
    // its first write); only a step with capped counters can be refused after writing, so only those
    // take a savepoint (savepoints make SQLite journal every change: several times slower).
    return this.tx(() =>
      commits.map((c, i) => {
        if (!c.counters.length) return this.writeStep(c, c.enrollment);
        this.db.exec(`SAVEPOINT s${i}`);
        try {
          const ok = this.writeStep(c, c.enrollment);
          this.db.exec(ok ? `RELEASE s${i}` : `ROLLBACK TO s${i}; RELEASE s${i}`);
          return ok;
        } catch (err) {
          this.db.exec(`ROLLBACK TO s${i}; RELEASE s${i}`);
          if (err instanceof CapReached) return false;
          throw err;
        }
      }),
    );
  }

  async enrollmentsOfRecords(recordIds: readonly string[]) {
    return (this.q(`SELECT ${ENROLLMENT_READ} FROM enrollments WHERE record_id IN (SELECT value FROM json_each(?))`).all(JSON.stringify(recordIds)) as Row[]).map(stored);
  }

  async getEnrollments(ids: readonly string[]) {
    return (this.q(`SELECT ${ENROLLMENT_READ} FROM enrollments WHERE id IN (SELECT value FROM json_each(?))`).all(JSON.stringify(ids)) as Row[]).map(stored);
  }

  async getRecords(keys: readonly { module: string; id: string }[]) {
    return (this.q(`SELECT r.* FROM records r JOIN json_each(?) k ON r.module = json_extract(k.value, '$.module') AND r.id = json_extract(k.value, '$.id')`).all(JSON.stringify(keys)) as Row[]).map(recordRow);
  }

  private commitSync(c: Commit, e: Enrollment): boolean {
    return this.tx(() => this.writeStep(c, e));
  }

  /** The writes of one step, inside a transaction the caller holds; false when its rev moved. */
  private writeStep(c: Commit, e: Enrollment): boolean {
    const state = JSON.stringify(stateOf(e));
    if (c.expectedRev === null) {
      const r = this.q(`INSERT INTO enrollments (id, cadence_id, record_id, module, status, reason, rev, state, started_at, updated_at, due_at)
        VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?) ON CONFLICT DO NOTHING`).run(e.id, e.cadenceId, e.recordId, e.module, e.status, e.reason, state, e.startedAt, e.updatedAt, c.timer ?? null);
      if (r.changes === 0) return false;
    } else {
      // The timer is the row's due_at: set as the commit says, or left as it is.
      const r = this.q(`UPDATE enrollments SET status = ?, reason = ?, state = ?, rev = rev + 1, started_at = ?, updated_at = ?, due_at = CASE WHEN ? THEN ? ELSE due_at END
        WHERE id = ? AND rev = ?`).run(e.status, e.reason, state, e.startedAt, e.updatedAt, c.timer !== undefined ? 1 : 0, c.timer ?? null, e.id, c.expectedRev);
      if (r.changes === 0) return false;
    }
    // Every cap first (F13: summed over its window), then the counts, so a step never sees its own bump.
    const n = (scope: string, key: string) => ((this.q('SELECT n FROM counters WHERE scope = ? AND key = ?').get(scope, key) as Row | undefined)?.n as number | undefined) ?? 0;
    for (const b of c.counters) if (b.max !== undefined && [b.key, ...(b.window ?? [])].reduce((s, k) => s + n(b.scope, k), 0) >= b.max) throw new CapReached();
    for (const b of c.counters) if (!b.checkOnly) this.q('INSERT INTO counters (scope, key, n) VALUES (?, ?, 1) ON CONFLICT (scope, key) DO UPDATE SET n = n + 1').run(b.scope, b.key);
    const at = e.updatedAt;
    applyOutboxChanges((sql) => this.q(sql), c.outboxChanges ?? [], at);
    for (const o of c.outbox) {
      this.q(`INSERT INTO outbox (key, enrollment_id, cadence_id, node_id, record_id, channel, payload, status, attempts, available_at, locked_until, created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)`).run(o.key, o.enrollmentId, o.cadenceId, o.nodeId, o.recordId, o.channel, JSON.stringify(o.payload),
        c.handOffUntil ? 1 : 0, o.availableAt, c.handOffUntil ?? 0, o.createdAt);
    }
    this.insertAudit(c.audit);
    return true;
  }

  // Timers -----------------------------------------------------------------------------------------

  private setTimerSync(t: TimerRow) {
    this.q(`INSERT INTO timers (id, kind, cadence_id, due_at, priority, locked_until) VALUES (?, ?, ?, ?, ?, 0)
      ON CONFLICT (id) DO UPDATE SET due_at = excluded.due_at, priority = excluded.priority, locked_until = 0`).run(t.id, t.kind, t.cadenceId, t.dueAt, t.priority);
  }

  async setTimer(t: TimerRow) {
    this.setTimerSync(t);
  }

  async deleteTimer(id: string) {
    this.q('DELETE FROM timers WHERE id = ?').run(id);
  }

  private readonly due = new DueClaims(this);

  stepDue(now: number, limit: number, leaseUntil: number, cadences: readonly string[] | undefined, step: (due: StoredEnrollment[]) => Promise<Commit[]>) {
    return this.due.step(now, limit, leaseUntil, cadences, step);
  }

  async releaseDue(enrollmentId: string, leasedUntil: number, dueAt: number | null) {
    this.q('UPDATE enrollments SET due_at = ? WHERE id = ? AND due_at = ?').run(dueAt, enrollmentId, leasedUntil);
  }

  async claimTimers(now: number, limit: number, leaseUntil: number, cadences?: readonly string[]) {
    // State-guarded UPDATE … RETURNING: SQLite's shape of SKIP LOCKED (one writer at a time).
    const only = cadences ? `AND cadence_id IN (SELECT value FROM json_each(?))` : '';
    const args = cadences ? [leaseUntil, now, now, JSON.stringify(cadences), limit] : [leaseUntil, now, now, limit];
    const rows = this.q(`UPDATE timers SET locked_until = ? WHERE id IN (
        SELECT id FROM timers WHERE due_at <= ? AND locked_until <= ? ${only} ORDER BY due_at, priority LIMIT ?)
      RETURNING id, kind, cadence_id, due_at, priority`).all(...args) as Row[];
    return rows
      .map((r) => ({ id: r.id as string, kind: r.kind as TimerRow['kind'], cadenceId: r.cadence_id as string, dueAt: r.due_at as number, priority: r.priority as number }))
      .sort((a, b) => a.dueAt - b.dueAt || a.priority - b.priority || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)); // ties in id order: runs are reproducible
  }

  async nextDue(cadences?: readonly string[]) {
    // A leased row is not claimable before its lease ends, so that is when it is next "due".
    const only = cadences ? 'AND cadence_id IN (SELECT value FROM json_each(?))' : '';
    const args = cadences ? [JSON.stringify(cadences)] : [];
    const t = this.q(`SELECT MIN(MAX(due_at, locked_until)) AS t FROM timers WHERE 1 = 1 ${only}`).get(...args) as Row;
    const o = this.q(`SELECT MIN(MAX(available_at, locked_until)) AS t FROM outbox WHERE status = 'pending' ${only}`).get(...args) as Row;
    const e = this.q(`SELECT MIN(due_at) AS t FROM enrollments WHERE due_at IS NOT NULL ${only}`).get(...args) as Row;
    const ts = [t.t, o.t, e.t].filter((x): x is number => typeof x === 'number');
    return ts.length ? Math.min(...ts) : null;
  }

  // Outbox -----------------------------------------------------------------------------------------

  async claimOutbox(now: number, limit: number, leaseUntil: number, cadences?: readonly string[]) {
    const only = cadences ? `AND cadence_id IN (SELECT value FROM json_each(?))` : '';
    const args = cadences ? [leaseUntil, now, now, JSON.stringify(cadences), limit] : [leaseUntil, now, now, limit];
    const rows = this.q(`UPDATE outbox SET locked_until = ?, attempts = attempts + 1 WHERE key IN (
        SELECT key FROM outbox WHERE status = 'pending' AND available_at <= ? AND locked_until <= ? ${only} ORDER BY available_at LIMIT ?)
      RETURNING *`).all(...args) as Row[];
    return rows.map(outboxRow).sort((a, b) => a.availableAt - b.availableAt || (a.key < b.key ? -1 : 1));
  }


  async withdrawOutbox(key: string, now: number) {
    return this.q(CANCEL_IDLE).run(key, now).changes > 0;
  }

  async getOutbox(key: string) {
    const r = this.q('SELECT * FROM outbox WHERE key = ?').get(key) as Row | undefined;
    return r && outboxRow(r);
  }

  // Outcomes, audit, counters, reports ----------------------------------------------------------------

  async addOutcome(key: string, cadenceId: string, nodeId: string, outcome: string, at: number) {
    return this.q('INSERT INTO outcomes (key, cadence_id, node_id, outcome, at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING').run(key, cadenceId, nodeId, outcome, at).changes > 0;
  }

  private insertAudit(rows: AuditRow[]) {
    const st = this.q('INSERT INTO audit (at, cadence_id, enrollment_id, record_id, actor, event, reason, data, more) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
    for (const a of packAudit(rows)) st.run(a.at, a.cadenceId, a.enrollmentId, a.recordId, a.actor, a.event, a.reason, a.data ? JSON.stringify(a.data) : null, a.more ? JSON.stringify(a.more) : null);
  }

  async addAudit(rows: AuditRow[]) {
    this.tx(() => this.insertAudit(rows));
  }

  async listAudit(f: AuditFilter) {
    return listAudit(this, f);
  }

  async counters(keys: readonly { scope: string; key: string }[]) {
    if (!keys.length) return [];
    return (this.q(`SELECT c.scope, c.key, c.n FROM counters c JOIN json_each(?) k ON c.scope = json_extract(k.value, '$.scope') AND c.key = json_extract(k.value, '$.key')`)
      .all(JSON.stringify(keys)) as { scope: string; key: string; n: number }[]).map((r) => ({ scope: r.scope, key: r.key, n: r.n }));
  }

  async counter(scope: string, key: string) {
    return ((this.q('SELECT n FROM counters WHERE scope = ? AND key = ?').get(scope, key) as Row | undefined)?.n as number) ?? 0;
  }

  async meta(key: string, fallback: string) {
    this.q('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING').run(key, fallback);
    return (this.q('SELECT value FROM meta WHERE key = ?').get(key) as Row).value as string;
  }

  async bumpCounter(scope: string, key: string) {
    const r = this.q('INSERT INTO counters (scope, key, n) VALUES (?, ?, 1) ON CONFLICT (scope, key) DO UPDATE SET n = n + 1 RETURNING n').get(scope, key) as Row;
    return r.n as number;
  }

  async addApiKey(k: ApiKeyRow) {
    this.q('INSERT INTO api_keys (id, hash, name, scopes, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)').run(k.id, k.hash, k.name, JSON.stringify(k.scopes), k.createdAt, k.revokedAt);
  }

  async listApiKeys() {
    return (this.q('SELECT id, name, scopes, created_at, revoked_at FROM api_keys ORDER BY created_at DESC, id').all() as Row[]).map((r) => ({
      id: r.id as string, name: r.name as string, scopes: JSON.parse(r.scopes as string) as string[], createdAt: r.created_at as number, revokedAt: (r.revoked_at as number | null) ?? null,
    }));
  }

  async revokeApiKey(id: string, at: number) {
    return this.q('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(at, id).changes > 0;
  }

  async findApiKey(hash: string) {
    const r = this.q('SELECT * FROM api_keys WHERE hash = ?').get(hash) as Row | undefined;
    return r && { id: r.id as string, hash: r.hash as string, name: r.name as string, scopes: JSON.parse(r.scopes as string), createdAt: r.created_at as number, revokedAt: (r.revoked_at as number | null) ?? null };
  }

  async findRecordsByEmail(email: string) {
    return (this.q("SELECT * FROM records WHERE lower(json_extract(data, '$.Email')) = lower(?) LIMIT 50").all(email) as Row[]).map(recordRow);
  }

  async cadenceStats(cadenceId: string) {
    const byStatus = this.q(`SELECT status, CASE WHEN status IN ('stopped', 'failed') THEN reason ELSE '' END AS reason, COUNT(*) AS n
      FROM enrollments WHERE cadence_id = ? GROUP BY 1, 2 ORDER BY 1, 2`).all(cadenceId) as { status: string; reason: string; n: number }[];
    const executed = this.q("SELECT node_id AS nodeId, COUNT(*) AS n FROM outbox WHERE cadence_id = ? AND status = 'done' GROUP BY node_id ORDER BY node_id").all(cadenceId) as { nodeId: string; n: number }[];
    const waiting = this.q("SELECT node_id AS nodeId, COUNT(*) AS n FROM outbox WHERE cadence_id = ? AND status = 'pending' AND last_error IS NOT NULL GROUP BY node_id ORDER BY node_id").all(cadenceId) as { nodeId: string; n: number }[];
    const outcomes = this.q('SELECT node_id AS nodeId, outcome, COUNT(*) AS n FROM outcomes WHERE cadence_id = ? GROUP BY 1, 2 ORDER BY 1, 2').all(cadenceId) as { nodeId: string; outcome: string; n: number }[];
    const held = this.q(`SELECT json_extract(state, '$.position') AS nodeId, COUNT(*) AS n FROM enrollments WHERE cadence_id = ? AND status = 'active'
      AND json_extract(state, '$.heldBy') = 'F13' AND json_extract(state, '$.wait') = 'due' GROUP BY 1 ORDER BY 1`).all(cadenceId) as { nodeId: string; n: number }[];
    return { byStatus: byStatus.map((r) => ({ ...r })), executed: executed.map((r) => ({ ...r })), waiting: waiting.map((r) => ({ ...r })), outcomes: outcomes.map((r) => ({ ...r })), held: held.map((r) => ({ ...r })) };
  }

  async latestUnenrollments(cadenceId: string, limit: number) {
    return latestUnenrollments(this, cadenceId, limit);
  }
}



export class CapReached extends Error {
  constructor() {
    super('counter at its cap');
  }
}
