// The scale-out store: PostgreSQL shared by several processes. Due enrollments are claimed by the row
// locks of the transaction that steps them (FOR UPDATE SKIP LOCKED over a partial index on due_at:
// O(due)); actions handed to a performer, and the cadences' own timers, are leased (locked_until),
// because a hand-off outlives any transaction and the lease expires when a worker dies. A step's commit is one
// transaction guarded by the enrollment's rev, exactly as in SQLite.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { migrationFiles, refuseNewerSchema } from '../migration-files';
import { NUMERIC_TYPES, PreparingClient } from './client';
import { DUE_CHANNEL, DueChannel, NOTIFY_MANY_SQL } from './notify';
import { AUDIT_COLUMNS, auditJson, auditRows, writeCounted, writeSteps } from './steps';
import { listAudit } from './audit';
import { ENROLLMENT_READ, storedEnrollment } from '../enrollment-row';
import { latestUnenrollments } from './unenrollments';
import type { Enrollment, RecordSnapshot } from '../../machine/types';
import type { CadenceDefinition } from '../../model/types';
import { packAudit, type ApiKeyRow, type AuditFilter, type AuditRow, type CadenceRow, type Commit, type EnrollmentFilter, type OutboxRow, type Store, type StoredEnrollment, type TimerRow } from '../store';

type Row = Record<string, unknown>;
const MIGRATIONS = join(__dirname, 'migrations');
export class PostgresStore implements Store {
  readonly pool: pg.Pool;

  /** LISTEN for other processes' wake-ups: one connection, opened when a scheduler first subscribes. */
  private channel: DueChannel | null = null;

  /** Two batches at once need a connection each for their transactions and one each for their reads. */
  readonly batchLanes: number;

  constructor(private readonly url: string, options: { max?: number } = {}) {
    const connectionString = url;
    this.batchLanes = (options.max ?? 10) >= 4 ? 2 : 1;
    // A server that does not answer fails the call in 10 s rather than hanging a deploy or a credential test.
    this.pool = new pg.Pool({ connectionString, max: options.max ?? 10, connectionTimeoutMillis: 10_000, types: NUMERIC_TYPES as never, Client: PreparingClient as never });
    // An idle client losing its connection must not crash the process; the next query reconnects.
    this.pool.on('error', () => undefined);
  }

  private async q<T = Row>(text: string, values: unknown[] = [], client: pg.Pool | pg.PoolClient = this.pool): Promise<T[]> {
    return (await client.query(text, values)).rows as T[];
  }

  /**
   * A client taken from the pool. pg-pool drops its own 'error' listener while a client is checked out,
   * so a connection cut then (the server restarting, pg_terminate_backend) was an unhandled 'error' event
   * that killed the process. The query in flight fails anyway and release(err) drops the client.
   */
  private async checkout(): Promise<pg.PoolClient> {
    const c = await this.pool.connect();
    const ignore = () => undefined;
    c.on('error', ignore);
    const release = c.release.bind(c);
    c.release = (err?: Error | boolean) => {
      c.removeListener('error', ignore);
      return release(err);
    };
    return c;
  }

  private async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.checkout();
    let out: T;
    try {
      await c.query('BEGIN');
      out = await fn(c);
      await c.query('COMMIT');
    } catch (e) {
      // A cut connection can't roll back (the server already did); release(e) drops it from the pool.
      const broken = await c.query('ROLLBACK').then(() => undefined, (err: Error) => err);
      c.release(broken);
      throw e;
    }
    c.release();
    return out;
  }

  async exclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const c = await this.checkout(); // held for the lock; fn's statements use other connections
    try {
      await c.query('SELECT pg_advisory_lock(hashtextextended($1, 727172))', [key]);
    } catch (e) {
      c.release(e as Error);
      throw e;
    }
    try {
      return await fn();
    } finally {
      await c.query('SELECT pg_advisory_unlock(hashtextextended($1, 727172))', [key]).then(() => c.release(), (e: Error) => c.release(e));
    }
  }

  async migrate(): Promise<void> {
    await this.tx(async (c) => {
      // One migrator at a time, whichever process starts first.
      await c.query('SELECT pg_advisory_xact_lock(727172)');
      await c.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)');
      const done = new Set((await this.q<{ version: number }>('SELECT version FROM schema_migrations', [], c)).map((r) => r.version));
      const files = migrationFiles(MIGRATIONS);
      refuseNewerSchema([...done], files);
      for (const { version, path } of files) {
        if (done.has(version)) continue;
        await c.query(readFileSync(path, 'utf8'));
        await c.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [version, Date.now()]);
      }
    });
  }

  private closed = false;

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.channel?.close();
    await this.pool.end();
  }

  async getCadence(id: string) {
    const [r] = await this.q('SELECT * FROM cadences WHERE id = $1', [id]);
    return r && cadenceRow(r);
  }

  async listCadences(module?: string) {
    return (module ? await this.q('SELECT * FROM cadences WHERE module = $1 ORDER BY id', [module]) : await this.q('SELECT * FROM cadences ORDER BY id')).map(cadenceRow);
  }

  async putCadence(c: CadenceRow) {
    await this.q(`INSERT INTO cadences (id, module, name, status, draft, active_version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
      ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, status = EXCLUDED.status, draft = EXCLUDED.draft, active_version = EXCLUDED.active_version, updated_at = EXCLUDED.updated_at`,
    [c.id, c.module, c.name, c.status, c.draft ? JSON.stringify(c.draft) : null, c.activeVersion, c.createdAt, c.updatedAt]);
  }

  async addVersion(cadenceId: string, version: number, def: CadenceDefinition, at: number, by: string) {
    const r = await this.pool.query('INSERT INTO cadence_versions (cadence_id, version, definition, published_at, published_by) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING', [cadenceId, version, JSON.stringify(def), at, by]);
    return (r.rowCount ?? 0) > 0;
  }

  async getVersion(cadenceId: string, version: number) {
    const [r] = await this.q('SELECT definition FROM cadence_versions WHERE cadence_id = $1 AND version = $2', [cadenceId, version]);
    return r ? (r.definition as CadenceDefinition) : undefined;
  }

  async putRecords(recs: readonly RecordSnapshot[], at: number) {
    if (!recs.length) return;
    await this.q(`INSERT INTO records (module, id, data, unsubscribed, updated_at)
        SELECT x.module, x.id, x.data, x.unsubscribed, $2 FROM jsonb_to_recordset($1::jsonb) AS x(module text, id text, data jsonb, unsubscribed boolean)
      ON CONFLICT (module, id) DO UPDATE SET data = EXCLUDED.data, unsubscribed = EXCLUDED.unsubscribed, updated_at = EXCLUDED.updated_at`,
    [JSON.stringify(recs.map((r) => ({ module: r.module, id: r.id, data: r.data, unsubscribed: r.unsubscribed }))), at]);
  }

  async getRecord(module: string, id: string) {
    const [r] = await this.q(`SELECT ${RECORD_COLUMNS} FROM records WHERE module = $1 AND id = $2`, [module, id]);
    return r && recordRow(r);
  }

  async listRecords(module: string, after: string | null, limit: number) {
    return (await this.q(`SELECT ${RECORD_COLUMNS} FROM records WHERE module = $1 AND id > $2 ORDER BY id LIMIT $3`, [module, after ?? '', limit])).map(recordRow);
  }

  async getEnrollment(id: string) {
    const [r] = await this.q(`SELECT ${ENROLLMENT_READ} FROM enrollments WHERE id = $1`, [id]);
    return r && stored(r);
  }

  async findEnrollment(cadenceId: string, recordId: string) {
    const [r] = await this.q(`SELECT ${ENROLLMENT_READ} FROM enrollments WHERE cadence_id = $1 AND record_id = $2`, [cadenceId, recordId]);
    return r && stored(r);
  }

  async listEnrollments(f: EnrollmentFilter) {
    const where = ['id COLLATE "C" > $1'];
    const args: unknown[] = [f.after ?? ''];
    if (f.cadenceId) (args.push(f.cadenceId), where.push(`cadence_id = $${args.length}`));
    if (f.recordId) (args.push(f.recordId), where.push(`record_id = $${args.length}`));
    if (f.status) (args.push(f.status), where.push(`status = $${args.length}`));
    args.push(f.limit ?? 1000);
    return (await this.q(`SELECT ${ENROLLMENT_READ} FROM enrollments WHERE ${where.join(' AND ')} ORDER BY id COLLATE "C" LIMIT $${args.length}`, args)).map(stored);
  }

  async commit(c: Commit): Promise<boolean> {
    return (await this.commitMany([c]))[0];
  }

  /**
   * Set-based, and one statement: the enrollments' rev-guarded updates and inserts decide which steps
   * apply; the timers, outbox changes, new outbox rows and audit rows of exactly those follow in data-
   * modifying CTEs, each written as the commit says (no rule here). A step touches only its own
   * enrollment's timer and actions, so the CTEs (one snapshot) never write the same row twice. Capped counters (F12, E9, C5) make it a transaction: their
   * rows are locked, the steps that fit under every cap are chosen in order, and only those are written.
   */
  async commitMany(commits: Commit[]): Promise<boolean[]> {
    if (!commits.length) return [];
    if (!commits.some((c) => c.counters.length)) return writeSteps(this.pool, commits);
    return this.tx((db) => writeCounted(db, commits));
  }

  /**
   * One transaction: the due enrollments are taken FOR UPDATE SKIP LOCKED (the claim is the lock, no
   * lease written; another worker skips them, and they are free again the moment this transaction ends,
   * a crash included), stepped while locked, and written. Nothing else waits on them but writers of
   * these very enrollments (an outcome, a delivery), which then find the rev moved and read again.
   */
  async stepDue(now: number, limit: number, leaseUntil: number, cadences: readonly string[] | undefined, step: (due: StoredEnrollment[]) => Promise<Commit[]>) {
    const only = cadences ? 'AND cadence_id = ANY($3::text[])' : '';
    return this.tx(async (db) => {
      const due = (await this.q(`SELECT ${ENROLLMENT_READ} FROM enrollments WHERE due_at <= $1 ${only} ORDER BY due_at, id LIMIT $2 FOR UPDATE SKIP LOCKED`, cadences ? [now, limit, cadences] : [now, limit], db)).map(stored);
      if (!due.length) return { due, applied: [] };
      const commits = await step(due);
      const applied = !commits.length ? [] : commits.some((c) => c.counters.length) ? await writeCounted(db, commits, true) : await writeSteps(db, commits);
      const done = new Set(commits.filter((_, i) => applied[i]).map((c) => c.enrollment.id));
      const left = due.filter((d) => !done.has(d.enrollment.id));
      if (left.length) await db.query('UPDATE enrollments e SET due_at = $1 FROM jsonb_to_recordset($2::jsonb) AS x(id text, rev int) WHERE e.id = x.id AND e.rev = x.rev', [leaseUntil, JSON.stringify(left.map((d) => ({ id: d.enrollment.id, rev: d.rev })))]);
      return { due, applied };
    });
  }

  /** After the commit (a separate statement): sent even when the commit was one set-based statement. */
  async notifyDue(cadenceIds: readonly string[]) {
    await this.pool.query(NOTIFY_MANY_SQL, [DUE_CHANNEL, cadenceIds]);
  }

  /** Who hears of the wake-up channel's failures (a lost LISTEN connection, a failed reconnect). */
  private readonly channelErrors = new Set<(e: Error) => void>();

  subscribeDue(fn: (cadenceId: string | null) => void, onError?: (e: Error) => void): () => void {
    this.channel ??= new DueChannel(this.url, { onError: (e) => this.channelErrors.forEach((f) => f(e)) }).start();
    if (onError) this.channelErrors.add(onError);
    const unsubscribe = this.channel.subscribe(({ cadenceIds }) => (cadenceIds ? cadenceIds.forEach((id) => fn(id)) : fn(null)));
    return () => (unsubscribe(), onError && this.channelErrors.delete(onError));
  }

  async releaseDue(enrollmentId: string, leasedUntil: number, dueAt: number | null) {
    await this.q('UPDATE enrollments SET due_at = $1 WHERE id = $2 AND due_at = $3', [dueAt, enrollmentId, leasedUntil]);
  }

  async enrollmentsOfRecords(recordIds: readonly string[]) {
    return (await this.q(`SELECT ${ENROLLMENT_READ} FROM enrollments WHERE record_id = ANY($1::text[])`, [recordIds])).map(stored);
  }

  async getEnrollments(ids: readonly string[]) {
    return (await this.q(`SELECT ${ENROLLMENT_READ} FROM enrollments WHERE id = ANY($1::text[])`, [ids])).map(stored);
  }

  async getRecords(keys: readonly { module: string; id: string }[]) {
    return (await this.q(`SELECT r.module, r.id, r.data, r.unsubscribed FROM records r JOIN jsonb_to_recordset($1::jsonb) AS k(module text, id text) ON r.module = k.module AND r.id = k.id`, [JSON.stringify(keys)])).map(recordRow);
  }

  async setTimer(t: TimerRow) {
    await this.q(`INSERT INTO timers (id, kind, cadence_id, due_at, priority, locked_until) VALUES ($1, $2, $3, $4, $5, 0)
      ON CONFLICT (id) DO UPDATE SET due_at = EXCLUDED.due_at, priority = EXCLUDED.priority, locked_until = 0`, [t.id, t.kind, t.cadenceId, t.dueAt, t.priority]);
  }

  async deleteTimer(id: string) {
    await this.q('DELETE FROM timers WHERE id = $1', [id]);
  }

  async claimTimers(now: number, limit: number, leaseUntil: number, cadences?: readonly string[]) {
    const only = cadences ? 'AND cadence_id = ANY($5::text[])' : '';
    const rows = await this.q(`UPDATE timers SET locked_until = $1 WHERE id = ANY(ARRAY(
        SELECT id FROM timers WHERE due_at <= $2 AND locked_until <= $3 ${only} ORDER BY due_at, priority LIMIT $4 FOR UPDATE SKIP LOCKED))
      RETURNING id, kind, cadence_id, due_at, priority`, cadences ? [leaseUntil, now, now, limit, cadences] : [leaseUntil, now, now, limit]);
    return rows
      .map((r) => ({ id: r.id as string, kind: r.kind as TimerRow['kind'], cadenceId: r.cadence_id as string, dueAt: r.due_at as number, priority: r.priority as number }))
      .sort((a, b) => a.dueAt - b.dueAt || a.priority - b.priority || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)); // ties in id order: runs are reproducible
  }

  async nextDue(cadences?: readonly string[]) {
    const only = cadences ? 'AND cadence_id = ANY($1::text[])' : '';
    const args = cadences ? [cadences] : [];
    const [t] = await this.q(`SELECT MIN(GREATEST(due_at, locked_until)) AS t FROM timers WHERE TRUE ${only}`, args);
    const [o] = await this.q(`SELECT MIN(GREATEST(available_at, locked_until)) AS t FROM outbox WHERE status = 'pending' ${only}`, args);
    const [e] = await this.q(`SELECT MIN(due_at) AS t FROM enrollments WHERE due_at IS NOT NULL ${only}`, args);
    const ts = [t.t, o.t, e.t].filter((x): x is number => typeof x === 'number');
    return ts.length ? Math.min(...ts) : null;
  }

  async claimOutbox(now: number, limit: number, leaseUntil: number, cadences?: readonly string[]) {
    const only = cadences ? 'AND cadence_id = ANY($5::text[])' : '';
    const rows = await this.q(`UPDATE outbox SET locked_until = $1, attempts = attempts + 1 WHERE key = ANY(ARRAY(
        SELECT key FROM outbox WHERE status = 'pending' AND available_at <= $2 AND locked_until <= $3 ${only} ORDER BY available_at LIMIT $4 FOR UPDATE SKIP LOCKED))
      RETURNING ${OUTBOX_READ}`, cadences ? [leaseUntil, now, now, limit, cadences] : [leaseUntil, now, now, limit]);
    return rows.map(outboxRow).sort((a, b) => a.availableAt - b.availableAt || (a.key < b.key ? -1 : 1));
  }


  async withdrawOutbox(key: string, now: number) {
    return ((await this.pool.query("UPDATE outbox SET status = 'cancelled' WHERE key = $1 AND status = 'pending' AND (attempts = 0 OR locked_until <= $2)", [key, now])).rowCount ?? 0) > 0;
  }

  async getOutbox(key: string) {
    const [r] = await this.q(`SELECT ${OUTBOX_READ} FROM outbox WHERE key = $1`, [key]);
    return r && outboxRow(r);
  }

  async addOutcome(key: string, cadenceId: string, nodeId: string, outcome: string, at: number) {
    const r = await this.pool.query('INSERT INTO outcomes (key, cadence_id, node_id, outcome, at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING', [key, cadenceId, nodeId, outcome, at]);
    return (r.rowCount ?? 0) > 0;
  }

  private async insertAudit(db: pg.Pool | pg.PoolClient, rows: AuditRow[]) {
    if (!rows.length) return;
    await db.query(`INSERT INTO audit ${AUDIT_COLUMNS} ${auditRows('$1')}`, [JSON.stringify(packAudit(rows).map(auditJson))]);
  }

  async addAudit(rows: AuditRow[]) {
    await this.insertAudit(this.pool, rows);
  }

  async listAudit(f: AuditFilter) {
    return listAudit(this.pool, f);
  }

  async counters(keys: readonly { scope: string; key: string }[]) {
    if (!keys.length) return [];
    return this.q<{ scope: string; key: string; n: number }>(`SELECT c.scope, c.key, c.n FROM counters c JOIN jsonb_to_recordset($1::jsonb) AS x(scope text, key text) ON c.scope = x.scope AND c.key = x.key`, [JSON.stringify(keys)]);
  }

  async counter(scope: string, key: string) {
    const [r] = await this.q('SELECT n FROM counters WHERE scope = $1 AND key = $2', [scope, key]);
    return (r?.n as number) ?? 0;
  }

  async bumpCounter(scope: string, key: string) {
    const [r] = await this.q('INSERT INTO counters (scope, key, n) VALUES ($1, $2, 1) ON CONFLICT (scope, key) DO UPDATE SET n = counters.n + 1 RETURNING n', [scope, key]);
    return r.n as number;
  }

  async meta(key: string, fallback: string) {
    await this.q('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING', [key, fallback]);
    const [r] = await this.q('SELECT value FROM meta WHERE key = $1', [key]);
    return r.value as string;
  }

  async addApiKey(k: ApiKeyRow) {
    await this.q('INSERT INTO api_keys (id, hash, name, scopes, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6)', [k.id, k.hash, k.name, JSON.stringify(k.scopes), k.createdAt, k.revokedAt]);
  }

  async findApiKey(hash: string) {
    const [r] = await this.q('SELECT * FROM api_keys WHERE hash = $1', [hash]);
    return r && { id: r.id as string, hash: r.hash as string, name: r.name as string, scopes: r.scopes as string[], createdAt: r.created_at as number, revokedAt: (r.revoked_at as number | null) ?? null };
  }

  async listApiKeys() {
    return (await this.q('SELECT id, name, scopes, created_at, revoked_at FROM api_keys ORDER BY created_at DESC, id')).map((r) => ({
      id: r.id as string, name: r.name as string, scopes: r.scopes as string[], createdAt: r.created_at as number, revokedAt: (r.revoked_at as number | null) ?? null,
    }));
  }

  async revokeApiKey(id: string, at: number) {
    return ((await this.pool.query('UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [at, id])).rowCount ?? 0) > 0;
  }

  async findRecordsByEmail(email: string) {
    return (await this.q(`SELECT ${RECORD_COLUMNS} FROM records WHERE lower(data->>'Email') = lower($1) LIMIT 50`, [email])).map(recordRow);
  }

  async cadenceStats(cadenceId: string) {
    const byStatus = await this.q<{ status: string; reason: string; n: number }>(`SELECT status, CASE WHEN status IN ('stopped', 'failed') THEN reason ELSE '' END AS reason, COUNT(*) AS n
      FROM enrollments WHERE cadence_id = $1 GROUP BY 1, 2 ORDER BY 1, 2`, [cadenceId]);
    const executed = await this.q<{ nodeId: string; n: number }>(`SELECT node_id AS "nodeId", COUNT(*) AS n FROM outbox WHERE cadence_id = $1 AND status = 'done' GROUP BY node_id ORDER BY node_id`, [cadenceId]);
    const waiting = await this.q<{ nodeId: string; n: number }>(`SELECT node_id AS "nodeId", COUNT(*) AS n FROM outbox WHERE cadence_id = $1 AND status = 'pending' AND last_error IS NOT NULL GROUP BY node_id ORDER BY node_id`, [cadenceId]);
    const outcomes = await this.q<{ nodeId: string; outcome: string; n: number }>('SELECT node_id AS "nodeId", outcome, COUNT(*) AS n FROM outcomes WHERE cadence_id = $1 GROUP BY 1, 2 ORDER BY 1, 2', [cadenceId]);
    const held = await this.q<{ nodeId: string; n: number }>(`SELECT state->>'position' AS "nodeId", COUNT(*) AS n FROM enrollments WHERE cadence_id = $1 AND status = 'active'
      AND state->>'heldBy' = 'F13' AND state->>'wait' = 'due' GROUP BY 1 ORDER BY 1`, [cadenceId]);
    return { byStatus, executed, waiting, outcomes, held };
  }

  async latestUnenrollments(cadenceId: string, limit: number) {
    return latestUnenrollments(this.pool, cadenceId, limit);
  }
}

const RECORD_COLUMNS = 'module, id, data, unsubscribed';
const OUTBOX_READ = 'key, enrollment_id, cadence_id, node_id, record_id, channel, payload, status, attempts, available_at, created_at, last_error';

function cadenceRow(r: Row): CadenceRow {
  return {
    id: r.id as string, module: r.module as string, name: r.name as string, status: r.status as CadenceRow['status'],
    draft: (r.draft as CadenceDefinition | null) ?? null, activeVersion: (r.active_version as number | null) ?? null, createdAt: r.created_at as number, updatedAt: r.updated_at as number,
  };
}

function recordRow(r: Row): RecordSnapshot {
  return { id: r.id as string, module: r.module as string, data: r.data as Record<string, unknown>, unsubscribed: r.unsubscribed === true };
}

/** A row read with ENROLLMENT_READ (enrollment-row.ts). */
function stored(r: Row): StoredEnrollment {
  return storedEnrollment(r, r.state as Record<string, unknown>);
}

function outboxRow(r: Row): OutboxRow {
  return {
    key: r.key as string, enrollmentId: r.enrollment_id as string, cadenceId: r.cadence_id as string, nodeId: r.node_id as string, recordId: r.record_id as string,
    channel: r.channel as string, payload: r.payload, status: r.status as OutboxRow['status'], attempts: r.attempts as number, availableAt: r.available_at as number, createdAt: r.created_at as number, lastError: (r.last_error as string | null) ?? null,
  };
}
