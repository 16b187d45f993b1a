// PostgreSQL-only properties: the claim's plan stays O(due), leases of a dead worker expire, and
// several workers (separate pools, as separate processes would have) never dispatch twice.
import { afterEach, describe, expect, it } from 'vitest';
import { Runtime, type DispatchedAction } from '../../engine/runtime/runtime';
import type { PostgresStore } from '../../engine/store/postgres/postgres-store';
import { DAY, MIN, T0, emailCadence, harness, lead, published, type Harness } from '../helpers/harness';

let h: Harness;
afterEach(() => h?.close());

describe('PostgreSQL store', () => {
  it('D2 the claim reads only what is due: an index range scan, never a scan or hash join over waiting rows', async () => {
    h = await harness();
    const pool = (h.store as PostgresStore).pool;
    await pool.query(`INSERT INTO timers (id, kind, cadence_id, due_at, priority) SELECT 'e:w' || g, 'enrollment', 'bench', ${T0 + DAY} + g, 1 FROM generate_series(1, 100000) g`);
    await pool.query(`INSERT INTO timers (id, kind, cadence_id, due_at, priority) SELECT 'e:d' || g, 'enrollment', 'bench', ${T0} - g, 1 FROM generate_series(1, 50) g`);
    await pool.query('ANALYZE timers');
    const plan = JSON.stringify((await pool.query(`EXPLAIN (FORMAT JSON) UPDATE timers SET locked_until = $1 WHERE id = ANY(ARRAY(
        SELECT id FROM timers WHERE due_at <= $2 AND locked_until <= $3 ORDER BY due_at, priority LIMIT $4 FOR UPDATE SKIP LOCKED)) RETURNING id`, [T0 + MIN, T0, T0, 100])).rows[0]);
    expect(plan).toMatch(/"Node Type":"Index Scan"[^}]*"Index Name":"timers_due"/);
    expect(plan).not.toMatch(/"Node Type":"(Seq Scan|Hash Join)"/);
    const claimed = await h.store.claimTimers(T0, 100, T0 + MIN);
    expect(claimed).toHaveLength(50);
    expect(claimed.every((t) => t.id.startsWith('e:d'))).toBe(true);
  });

  it('D1 D2 a worker that dies holding a lease loses it when the lease ends; another worker takes the work exactly once', async () => {
    h = await harness({ leaseMs: 5 * MIN });
    await published(h, emailCadence());
    await h.rt.enroll('c1', Array.from({ length: 20 }, (_, i) => lead(`r${i}`)), 'rep');
    // A worker claims every due timer and dies before doing anything with them.
    const dead = h.openStore();
    expect(await dead.claimTimers(T0, 100, T0 + 5 * MIN)).toHaveLength(20);
    await dead.close();
    const sent: DispatchedAction[] = [];
    const workers = await Promise.all([0, 1].map(async () => {
      const rt = await new Runtime({ store: h.openStore(), clock: h.clock, secret: 'test-secret', batchSize: 3 }).init();
      rt.onDispatch((a) => void sent.push(a));
      return rt;
    }));
    await Promise.all(workers.map((w) => w.tick()));
    expect(sent).toHaveLength(0); // still leased
    h.clock.set(T0 + 5 * MIN);
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
