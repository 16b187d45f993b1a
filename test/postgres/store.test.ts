// PostgreSQL-only properties: the claim's plan stays O(due), a dead worker's claim ends with it, and
// several workers (separate pools, as separate processes would have) never dispatch twice.
import { afterEach, describe, expect, it } from 'vitest';
import { Runtime, type DispatchedAction } from '../../engine/runtime/runtime';
import type { PostgresStore } from '../../engine/store/postgres/postgres-store';
import { SENT_SUMMARY } from '../../engine/store/postgres/steps';
import { SENT_DROPPED } from '../../engine/store/sent';
import { DAY, MIN, T0, emailCadence, harness, lead, published, type Harness } from '../helpers/harness';

let h: Harness;
afterEach(() => h?.close());

describe('PostgreSQL store', () => {
  it('D2 the claim reads only what is due: an index range scan of the due enrollments, never a scan or hash join over waiting rows', async () => {
    h = await harness();
    const pool = (h.store as PostgresStore).pool;
    const rows = (from: string, due: string) => `INSERT INTO enrollments (id, cadence_id, record_id, module, status, rev, state, started_at, updated_at, due_at)
      SELECT ${from} || g, 'bench', ${from} || g, 'Leads', 'active', 1, jsonb_build_object('id', ${from} || g), 0, 0, ${due} FROM generate_series(1, $1::int) g`;
    await pool.query(rows("'w'", `${T0 + DAY} + g`), [100_000]); // waiting for a time
    await pool.query(rows("'o'", 'NULL'), [100_000]); // waiting for no time (an outcome, a delivery) or finished
    await pool.query(rows("'d'", `${T0} - g`), [50]); // due now
    await pool.query('ANALYZE enrollments');
    const plan = JSON.stringify((await pool.query('EXPLAIN (FORMAT JSON) SELECT state, rev FROM enrollments WHERE due_at <= $1 ORDER BY due_at, id LIMIT $2 FOR UPDATE SKIP LOCKED', [T0, 100])).rows[0]);
    expect(plan).toMatch(/"Node Type":"Index Scan"[^}]*"Index Name":"enrollments_due"/);
    expect(plan).not.toMatch(/"Node Type":"(Seq Scan|Hash Join)"/);
    const { due } = await h.store.stepDue(T0, 100, T0 + MIN, undefined, async () => []);
    expect(due).toHaveLength(50);
    expect(due.every((d) => d.enrollment.id.startsWith('d'))).toBe(true);
  });

  it('E4 E5 a record is enrolled once per cadence (unique per cadence and record) and its enrollments are found through that one index: no second index on the record', async () => {
    h = await harness();
    const pool = (h.store as PostgresStore).pool;
    await pool.query(`INSERT INTO enrollments (id, cadence_id, record_id, module, status, rev, state, started_at, updated_at)
      SELECT 'c' || (g % 5) || ':r' || g, 'c' || (g % 5), 'r' || g, 'Leads', 'active', 1, '{}'::jsonb, 0, 0 FROM generate_series(1, $1::int) g`, [100_000]);
    await pool.query('ANALYZE enrollments');
    const indexes = (await pool.query("SELECT indexname FROM pg_indexes WHERE tablename = 'enrollments' ORDER BY 1")).rows.map((r) => r.indexname);
    expect(indexes).toEqual(['enrollments_cadence_reason', 'enrollments_due', 'enrollments_left', 'enrollments_pkey', 'enrollments_record_cadence']);
    for (const [sql, args] of [['SELECT id FROM enrollments WHERE record_id = ANY($1::text[])', [['r7', 'r8']]], ['SELECT id FROM enrollments WHERE cadence_id = $1 AND record_id = $2', ['c2', 'r7']]] as const) {
      const plan = JSON.stringify((await pool.query(`EXPLAIN (FORMAT JSON) ${sql}`, args as unknown[])).rows[0]);
      expect(plan).toMatch(/"Index Name":"enrollments_record_cadence"/);
      expect(plan).not.toMatch(/"Node Type":"Seq Scan"/);
    }
    // Unique still: a second enrollment of one record in one cadence is refused by the index, whatever its id.
    await expect(pool.query("INSERT INTO enrollments (id, cadence_id, record_id, module, status, rev, state, started_at, updated_at) VALUES ('other', 'c2', 'r7', 'Leads', 'active', 1, '{}', 0, 0)"))
      .rejects.toThrow(/enrollments_record_cadence/);
  });

  it('D5 a delivered row keeps the summary of engine/store/sent.ts, built in one pass: the same value as dropping each path in turn, for every channel and for odd payloads', async () => {
    h = await harness();
    const pool = (h.store as PostgresStore).pool;
    const payloads = [
      { key: 'k', record: { id: 'r', Email: 'r@x' }, enrollmentId: 'c:r', cadenceId: 'c', recordId: 'r', nodeId: 'e1', module: 'Leads', attempt: 2, channel: 'email', version: 3,
        email: { to: 'r@x', from: 'f@x', subject: 'Hi', html: '<p>Hi</p>', text: 'Hi', headers: { 'X-Cadenza-Key': 'k' }, unsubscribeUrl: 'u', messageId: '<m@x>' } },
      { key: 'k', channel: 'task', activity: { subject: 'Call', description: 'about the renewal', dueAt: 5 }, record: {} },
      { key: 'k', channel: 'whatsapp', whatsapp: { to: '+1', template: 't', params: { a: 1 } }, nodeId: 'w' },
      { key: 'k', email: null, activity: 'text' }, // shapes the engine never writes: left as they are
      { key: 'k' },
    ];
    const old = `payload ${SENT_DROPPED.map((path) => `#- '{${path.join(',')}}'`).join(' ')}`;
    const rows = (await pool.query(`SELECT ${old} AS a, ${SENT_SUMMARY} AS b FROM jsonb_array_elements($1::jsonb) AS p(payload)`, [JSON.stringify(payloads)])).rows;
    expect(rows).toHaveLength(payloads.length);
    for (const r of rows) expect(r.b).toEqual(r.a);
    expect(rows[0].b).toEqual({ key: 'k', channel: 'email', version: 3, email: { to: 'r@x', from: 'f@x', subject: 'Hi', messageId: '<m@x>' } });
  });

  it('D1 D2 a worker that dies in the middle of a batch frees it at once (the claim is a row lock, not a lease); another worker takes the work exactly once', async () => {
    h = await harness({ leaseMs: 5 * MIN });
    await published(h, emailCadence());
    await h.rt.enroll('c1', Array.from({ length: 20 }, (_, i) => lead(`r${i}`)), 'rep');
    // A worker claims every due enrollment, as a batch does, and is cut off before it commits.
    const deadStore = h.openStore() as PostgresStore;
    const dead = await deadStore.pool.connect();
    dead.on('error', () => undefined);
    await dead.query('BEGIN');
    expect((await dead.query('SELECT id FROM enrollments WHERE due_at <= $1 ORDER BY due_at FOR UPDATE SKIP LOCKED', [T0])).rows).toHaveLength(20);
    const sent: DispatchedAction[] = [];
    const workers = await Promise.all([0, 1].map(async () => {
      const rt = await new Runtime({ store: h.openStore(), clock: h.clock, secret: 'test-secret', batchSize: 3 }).init();
      rt.onDispatch((a) => void sent.push(a));
      return rt;
    }));
    await Promise.all(workers.map((w) => w.tick()));
    expect(sent).toHaveLength(0); // claimed by the batch in flight: skipped, not waited for
    const admin = (h.store as PostgresStore).pool;
    await admin.query('SELECT pg_terminate_backend($1)', [(dead as unknown as { processID: number }).processID]);
    dead.release(true);
    await deadStore.close();
    // No clock moved: nothing had to expire.
    await Promise.all(workers.map((w) => w.tick()));
    expect(sent.map((a) => a.key).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `c1:r${i}:1:e1`).sort());
    for (const w of workers) await w.store.close();
  });

  it('D1 a running worker keeps working when another process migrates the schema (prepared statements re-plan)', async () => {
    h = await harness();
    await published(h, emailCadence());
    await h.rt.enroll('c1', [lead('a'), lead('b')], 'rep');
    const readAll = async () => [await h.store.getRecord('Leads', 'a'), await h.store.listCadences(), await h.store.getEnrollments(['c1:a']), await h.store.getRecords([{ module: 'Leads', id: 'b' }])];
    const before = await readAll();
    const pool = (h.store as PostgresStore).pool;
    for (const t of ['records', 'cadences', 'enrollments', 'outbox', 'timers']) await pool.query(`ALTER TABLE ${t} ADD COLUMN later_release INTEGER`);
    expect(await readAll()).toEqual(before);
    await h.advance(DAY);
    expect(h.sent.map((a) => a.recordId).sort()).toEqual(['a', 'b']);
  });

  it('D1 a connection cut while the store holds a client (a deploy lock) fails that call, never the process', async () => {
    h = await harness();
    const store = h.store as PostgresStore;
    const pool = store.pool;
    const emitted: unknown[] = [];
    const outcome = await store.exclusive('deploy:cut', async () => {
      // Cut the backend holding the advisory lock, and let the client see its socket close.
      const [{ pid }] = (await pool.query("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted LIMIT 1")).rows;
      await pool.query('SELECT pg_terminate_backend($1)', [pid]);
      await new Promise<void>((res) => setTimeout(res, 200)); // real I/O: the socket's close reaching the client
      return 'ran';
    }).catch((e: Error) => (emitted.push(e), 'refused'));
    expect(['ran', 'refused']).toContain(outcome);
    // The store still works afterwards: a fresh connection is taken for the next call.
    expect(await store.listCadences()).toEqual([]);
  });
});
