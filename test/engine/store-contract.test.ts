// One Store contract, run on both stores (the postgres project runs this file again on PostgreSQL): a
// commit is data the store applies as it is told — the enrollment's timer, new outbox rows and what
// happens to old ones — and it decides nothing by itself (no rule in SQL).
import { afterEach, describe, expect, it } from 'vitest';
import type { Enrollment } from '../../engine/machine/types';
import type { Commit, OutboxRow, Store } from '../../engine/store/store';
import { SqliteStore } from '../../engine/store/sqlite/sqlite-store';
import type { PostgresStore } from '../../engine/store/postgres/postgres-store';
import { DAY, MIN, T0, harness, type Harness } from '../helpers/harness';

let h: Harness;
afterEach(() => h?.close());

const enrollment = (over: Partial<Enrollment> = {}): Enrollment => ({
  id: 'c:r', cadenceId: 'c', version: 1, recordId: 'r', module: 'Leads', status: 'active', run: 1, position: 'e1', wait: 'due', dueAt: T0,
  startedAt: T0, enrolledBy: 'rep', reason: 'enrolled', updatedAt: T0, last: null, exitChecks: [], executed: 0, ...over,
});
const row = (key: string, at = T0): Omit<OutboxRow, 'status' | 'attempts'> => ({
  key, enrollmentId: 'c:r', cadenceId: 'c', nodeId: key.split(':').pop()!, recordId: 'r', channel: 'email',
  payload: { key, enrollmentId: 'c:r', cadenceId: 'c', recordId: 'r', module: 'Leads', record: { id: 'r' }, email: { to: 'r@x.example', subject: 'Hi', html: '<p>Hi</p>', text: 'Hi', messageId: '<m@x>', unsubscribeUrl: 'https://x.example/t/unsubscribe/t' } }, availableAt: at, createdAt: at,
});
const commit = (c: Partial<Commit> & { enrollment: Enrollment; expectedRev: number | null }): Commit => ({ outbox: [], audit: [], counters: [], ...c });

async function write(store: Store, c: Commit): Promise<boolean> {
  return store.commit(c);
}

describe('Store contract (both stores)', () => {
  it('D1 an enrollment\'s identity, status and times are kept in its columns, not twice: its stored state leaves them out and every read puts them back', async () => {
    h = await harness();
    const s = h.store;
    const e = enrollment({ status: 'active', reason: 'enrolled' });
    expect(await write(s, commit({ enrollment: e, expectedRev: null, timer: T0 }))).toBe(true);
    const moved = { ...e, status: 'stopped' as const, reason: 'replied (U1)', updatedAt: T0 + MIN };
    expect(await write(s, commit({ enrollment: moved, expectedRev: 1, timer: null }))).toBe(true);
    const [row] = (await h.snapshot()).enrollments as Record<string, unknown>[];
    const state = typeof row.state === 'string' ? JSON.parse(row.state) : row.state;
    for (const field of ['id', 'cadenceId', 'recordId', 'module', 'status', 'reason', 'startedAt', 'updatedAt']) expect(state).not.toHaveProperty(field);
    expect(state).toMatchObject({ position: 'e1', run: 1, enrolledBy: 'rep' });
    // Every read gives back the whole enrollment, as written.
    expect(await s.getEnrollment('c:r')).toEqual({ enrollment: moved, rev: 2 });
    expect(await s.findEnrollment('c', 'r')).toEqual({ enrollment: moved, rev: 2 });
    expect(await s.listEnrollments({ cadenceId: 'c', status: 'stopped' })).toEqual([{ enrollment: moved, rev: 2 }]);
    expect(await s.enrollmentsOfRecords(['r'])).toEqual([{ enrollment: moved, rev: 2 }]);
    expect(await s.getEnrollments(['c:r'])).toEqual([{ enrollment: moved, rev: 2 }]);
    // In the order the machine declares its fields, as before: an API answer reads the same.
    expect(Object.keys((await s.getEnrollment('c:r'))!.enrollment)).toEqual(Object.keys(moved));
    // A row written by an earlier version (its state repeating the columns) reads the same, in the same order.
    const old = { ...enrollment({ recordId: 'o' }), id: 'c:o', heldBy: 'F13' as const };
    const sql = 'INSERT INTO enrollments (id, cadence_id, record_id, module, status, reason, rev, state, started_at, updated_at) VALUES';
    if (s instanceof SqliteStore) s.db.prepare(`${sql} (?, ?, ?, ?, ?, ?, 1, ?, ?, ?)`).run(old.id, 'c', 'o', 'Leads', 'active', 'enrolled', JSON.stringify(old), T0, T0);
    else await (s as PostgresStore).pool.query(`${sql} ($1, $2, $3, $4, $5, $6, 1, $7, $8, $9)`, [old.id, 'c', 'o', 'Leads', 'active', 'enrolled', JSON.stringify(old), T0, T0]);
    const read = (await s.getEnrollment('c:o'))!.enrollment;
    expect(read).toEqual(old);
    expect(Object.keys(read)).toEqual(Object.keys(old));
  });

  it('D1 D4 a database a newer version migrated is refused, naming both schema versions, before anything is read or written', async () => {
    h = await harness();
    const sql = 'INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)';
    if (h.store instanceof SqliteStore) h.store.db.exec(sql);
    else await (h.store as PostgresStore).pool.query(sql);
    const older = h.openStore();
    try {
      await expect(older.migrate()).rejects.toThrow(/migrated by a newer Cadenza \(schema version 999; this version knows up to \d+\): upgrade this process/);
    } finally {
      await older.close();
    }
  });

  it('D1 U8 the enrollment\'s timer is what the commit says: set, moved, deleted, or left alone', async () => {
    h = await harness();
    const s = h.store;
    expect(await write(s, commit({ enrollment: enrollment(), expectedRev: null, timer: T0 + MIN }))).toBe(true);
    expect(await s.nextDue()).toBe(T0 + MIN);
    // The state says something else, but the commit leaves the timer alone: the store derives nothing.
    expect(await write(s, commit({ enrollment: enrollment({ status: 'stopped', dueAt: null }), expectedRev: 1 }))).toBe(true);
    expect(await s.nextDue()).toBe(T0 + MIN);
    expect(await write(s, commit({ enrollment: enrollment({ dueAt: T0 + 5 * MIN }), expectedRev: 2, timer: T0 + 5 * MIN }))).toBe(true);
    expect(await s.nextDue()).toBe(T0 + 5 * MIN);
    expect(await write(s, commit({ enrollment: enrollment({ dueAt: null }), expectedRev: 3, timer: null }))).toBe(true);
    expect(await s.nextDue()).toBeNull();
    // A commit against a moved rev writes nothing at all.
    expect(await write(s, commit({ enrollment: enrollment(), expectedRev: 1, timer: T0 }))).toBe(false);
    expect(await s.nextDue()).toBeNull();
  });

  it('D5 U8 cancel takes only a row never handed off; done keeps a summary; dead keeps it whole; requeue hands a dead row over again', async () => {
    h = await harness();
    const s = h.store;
    await write(s, commit({ enrollment: enrollment(), expectedRev: null, outbox: [row('c:r:1:a'), row('c:r:1:b'), row('c:r:1:c'), row('c:r:1:d')] }));
    // b and c are handed off (claimed: attempts 1).
    const claimed = await s.claimOutbox(T0, 2, T0 + MIN);
    expect(claimed.map((r) => r.key).sort()).toEqual(['c:r:1:a', 'c:r:1:b']);
    const [handed, never] = ['c:r:1:a', 'c:r:1:c'];
    await write(s, commit({ enrollment: enrollment(), expectedRev: 1, outboxChanges: [{ key: handed, op: 'cancel' }, { key: never, op: 'cancel' }] }));
    expect(await s.getOutbox(handed)).toMatchObject({ status: 'pending', attempts: 1 });
    expect(await s.getOutbox(never)).toMatchObject({ status: 'cancelled' });
    await write(s, commit({ enrollment: enrollment({ updatedAt: T0 + MIN }), expectedRev: 2, outboxChanges: [{ key: 'c:r:1:a', op: 'done' }, { key: 'c:r:1:b', op: 'dead' }] }));
    const done = await s.getOutbox('c:r:1:a');
    expect(done).toMatchObject({ status: 'done', payload: { key: 'c:r:1:a', email: { to: 'r@x.example', subject: 'Hi', messageId: '<m@x>' } } });
    expect(done!.payload).not.toHaveProperty('record');
    expect((done!.payload as { email: object }).email).not.toHaveProperty('html');
    // Nor what the row's columns hold already, nor the signed link: a delivered row is a small summary.
    for (const field of ['enrollmentId', 'cadenceId', 'recordId', 'module']) expect(done!.payload).not.toHaveProperty(field);
    expect((done!.payload as { email: object }).email).not.toHaveProperty('unsubscribeUrl');
    expect(await s.getOutbox('c:r:1:b')).toMatchObject({ status: 'dead', payload: { record: { id: 'r' }, email: { html: '<p>Hi</p>' } } });
    // A settle never turns a finished row back: done stays done, cancelled stays cancelled.
    await write(s, commit({ enrollment: enrollment(), expectedRev: 3, outboxChanges: [{ key: 'c:r:1:a', op: 'dead' }, { key: never, op: 'done' }] }));
    expect(await s.getOutbox('c:r:1:a')).toMatchObject({ status: 'done' });
    expect(await s.getOutbox(never)).toMatchObject({ status: 'cancelled' });
    await write(s, commit({ enrollment: enrollment({ updatedAt: T0 + 2 * MIN }), expectedRev: 4, outboxChanges: [{ key: 'c:r:1:b', op: 'requeue' }] }));
    expect(await s.getOutbox('c:r:1:b')).toMatchObject({ status: 'pending', attempts: 0, availableAt: T0 + 2 * MIN, createdAt: T0 + 2 * MIN });
    expect((await s.claimOutbox(T0 + 2 * MIN, 10, T0 + 3 * MIN)).map((r) => r.key).sort()).toEqual(['c:r:1:b', 'c:r:1:d']);
  });

  it('D6 a transient failure releases the row for later and keeps its error; the report counts it as waiting for its performer', async () => {
    h = await harness();
    const s = h.store;
    await write(s, commit({ enrollment: enrollment(), expectedRev: null, outbox: [row('c:r:1:e1')] }));
    await s.claimOutbox(T0, 10, T0 + MIN);
    // The machine's retry of a failed hand-off, written in its step's commit (D6).
    await write(s, commit({ enrollment: enrollment(), expectedRev: 1, outboxChanges: [{ key: 'c:r:1:e1', op: 'retry', at: T0 + 30_000, error: '503' }] }));
    expect(await s.getOutbox('c:r:1:e1')).toMatchObject({ status: 'pending', attempts: 1, availableAt: T0 + 30_000, lastError: '503' });
    expect(await s.claimOutbox(T0 + 29_000, 10, T0 + MIN)).toEqual([]);
    expect((await s.claimOutbox(T0 + 30_000, 10, T0 + MIN)).map((r) => r.attempts)).toEqual([2]);
    expect((await s.cadenceStats('c')).waiting).toEqual([{ nodeId: 'e1', n: 1 }]);
  });

  it('D1 D2 a batch is claimed while it is stepped: a second claimer skips it, a failed batch writes nothing and frees it at once', async () => {
    h = await harness();
    const s = h.store;
    for (const id of ['a', 'b', 'c']) await write(s, commit({ enrollment: enrollment({ id: `c:${id}`, recordId: id }), expectedRev: null, timer: T0 }));
    let inside: string[] = [];
    const first = s.stepDue(T0, 2, T0 + MIN, undefined, async (due) => {
      // While this batch is being stepped, another claim takes only what the batch did not.
      const other = await s.stepDue(T0, 10, T0 + MIN, undefined, async (d) => ((inside = d.map((x) => x.enrollment.id)), []));
      expect(other.due).toHaveLength(1);
      return due.map((d) => commit({ enrollment: { ...d.enrollment, dueAt: T0 + 9 * MIN }, expectedRev: d.rev, timer: T0 + 9 * MIN }));
    });
    const { due, applied } = await first;
    expect(applied).toEqual([true, true]);
    expect([...due.map((d) => d.enrollment.id), ...inside].sort()).toEqual(['c:a', 'c:b', 'c:c']);
    // The one the second claim left alone was leased (rev-guarded) for its caller to take one by one.
    expect(await s.nextDue()).toBe(T0 + MIN);
    await s.releaseDue(inside[0], T0 + MIN, T0 + 9 * MIN);
    expect(await s.nextDue()).toBe(T0 + 9 * MIN);
    // A batch that throws writes nothing, and its enrollments are claimable again at once.
    await expect(s.stepDue(T0 + 9 * MIN, 10, T0 + 10 * MIN, undefined, async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    expect((await s.stepDue(T0 + 9 * MIN, 10, T0 + 10 * MIN, undefined, async () => [])).due).toHaveLength(3);
  });

  it('D1 D2 a lease is given back only if it is still the lease: a newer commit\'s timer survives', async () => {
    h = await harness();
    const s = h.store;
    await write(s, commit({ enrollment: enrollment(), expectedRev: null, timer: T0 }));
    const { due } = await s.stepDue(T0, 10, T0 + MIN, undefined, async () => []);
    expect(due).toHaveLength(1);
    expect(await s.nextDue()).toBe(T0 + MIN);
    // Meanwhile another worker's commit re-arms it for later.
    await write(s, commit({ enrollment: enrollment({ dueAt: T0 + 9 * MIN }), expectedRev: 1, timer: T0 + 9 * MIN }));
    await s.releaseDue(due[0].enrollment.id, T0 + MIN, null);
    expect(await s.nextDue()).toBe(T0 + 9 * MIN);
  });
  it('A3 U9 the audit is read a page at a time by stored seq, either way: a step\'s packed entries stay together, newest first reverses them too', async () => {
    h = await harness();
    const s = h.store;
    const entry = (at: number, event: string, enrollmentId = 'c:r') => ({ at, cadenceId: 'c', enrollmentId, recordId: 'r', actor: 'a', event, reason: event, data: null });
    // Three steps: the second logs three entries at one moment (one stored row), and another enrollment's row in between.
    await s.addAudit([entry(T0, 'enrolled')]);
    await s.addAudit([entry(T0 + MIN, 'criteria'), entry(T0 + MIN, 'queued'), entry(T0 + MIN, 'executed')]);
    await s.addAudit([entry(T0 + MIN, 'other', 'c:x')]);
    await s.addAudit([entry(T0 + 2 * MIN, 'stopped')]);
    const events = (rows: { event: string }[]) => rows.map((r) => r.event);
    const all = await s.listAudit({ enrollmentId: 'c:r' });
    expect(events(all)).toEqual(['enrolled', 'criteria', 'queued', 'executed', 'stopped']);
    expect(events(await s.listAudit({ enrollmentId: 'c:r', order: 'desc' }))).toEqual(['stopped', 'executed', 'queued', 'criteria', 'enrolled']);
    // `limit` counts stored rows; `after` is a seq, exclusive, in the direction read.
    const [first, second] = [all[0].seq!, all[1].seq!];
    expect(events(await s.listAudit({ enrollmentId: 'c:r', limit: 2 }))).toEqual(['enrolled', 'criteria', 'queued', 'executed']);
    expect(events(await s.listAudit({ enrollmentId: 'c:r', after: first, limit: 1 }))).toEqual(['criteria', 'queued', 'executed']);
    expect(events(await s.listAudit({ enrollmentId: 'c:r', order: 'desc', limit: 1 }))).toEqual(['stopped']);
    expect(events(await s.listAudit({ enrollmentId: 'c:r', order: 'desc', after: all[4].seq!, limit: 1 }))).toEqual(['executed', 'queued', 'criteria']);
    expect(events(await s.listAudit({ enrollmentId: 'c:r', order: 'desc', after: second }))).toEqual(['enrolled']);
    expect(events(await s.listAudit({ cadenceId: 'c', order: 'desc', limit: 2 }))).toEqual(['stopped', 'other']);
    expect(events(await s.listAudit({ recordId: 'r', after: all[4].seq! }))).toEqual([]);
    // A flood past the old fixed cap: the newest row is one read away, and paging forward reaches it too.
    await s.addAudit(Array.from({ length: 10_050 }, (_, i) => entry(T0 + 3 * MIN + i, 'outcome')));
    await s.addAudit([entry(T0 + DAY, 'unenrolled')]);
    expect(events(await s.listAudit({ enrollmentId: 'c:r', order: 'desc', limit: 1 }))).toEqual(['unenrolled']);
    const capped = await s.listAudit({ enrollmentId: 'c:r' });
    expect(new Set(capped.map((r) => r.seq)).size).toBe(10_000);
    const rest = await s.listAudit({ enrollmentId: 'c:r', after: capped.at(-1)!.seq! });
    expect(rest.at(-1)!.event).toBe('unenrolled');
    expect(new Set([...capped, ...rest].map((r) => r.seq)).size).toBe(10_054);
  });
  it('A1 U9 the latest un-enrollments are their own query: stopped and failed enrollments of one cadence, newest first, with their reasons', async () => {
    h = await harness();
    const s = h.store;
    const put = async (id: string, over: Partial<Enrollment>) => {
      expect(await write(s, commit({ enrollment: enrollment({ id: `c:${id}`, recordId: id, ...over }), expectedRev: null }))).toBe(true);
    };
    await put('a', { status: 'stopped', reason: 'un-enrolled manually (U5)', updatedAt: T0 + 3 * MIN });
    await put('b', { status: 'failed', reason: 'no email address (F9)', updatedAt: T0 + 5 * MIN });
    await put('c', { status: 'active', reason: 'enrolled', updatedAt: T0 + 9 * MIN });
    await put('d', { status: 'completed', reason: 'completed (F10)', updatedAt: T0 + 9 * MIN });
    await put('e', { status: 'stopped', reason: 'outcome "replied" (U1)', updatedAt: T0 + MIN });
    await put('x', { cadenceId: 'other', status: 'stopped', reason: 'elsewhere', updatedAt: T0 + 9 * MIN });
    expect(await s.latestUnenrollments('c', 10)).toEqual([
      { enrollmentId: 'c:b', recordId: 'b', status: 'failed', reason: 'no email address (F9)', at: T0 + 5 * MIN },
      { enrollmentId: 'c:a', recordId: 'a', status: 'stopped', reason: 'un-enrolled manually (U5)', at: T0 + 3 * MIN },
      { enrollmentId: 'c:e', recordId: 'e', status: 'stopped', reason: 'outcome "replied" (U1)', at: T0 + MIN },
    ]);
    expect((await s.latestUnenrollments('c', 1)).map((u) => u.recordId)).toEqual(['b']);
    // An enrollment that is un-enrolled later moves to the front with its new reason.
    expect(await write(s, commit({ enrollment: enrollment({ id: 'c:c', recordId: 'c', status: 'stopped', reason: 'left the view (U2)', updatedAt: T0 + 10 * MIN }), expectedRev: 1 }))).toBe(true);
    expect((await s.latestUnenrollments('c', 2)).map((u) => [u.recordId, u.reason])).toEqual([['c', 'left the view (U2)'], ['b', 'no email address (F9)']]);
    expect(await s.latestUnenrollments('none', 5)).toEqual([]);
  });
});
