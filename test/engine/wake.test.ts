// Issue 15: no waiting for the poll. The scheduler runs with a poll interval of an hour, so anything
// handed off here within seconds was handed off because a commit woke it — never because a poll came.
// (Real time only bounds how long the test waits; engine time is the virtual clock.)
import { afterEach, describe, expect, it } from 'vitest';
import pg from 'pg';
import { Runtime, type DispatchedAction } from '../../engine/runtime/runtime';
import type { PostgresStore } from '../../engine/store/postgres/postgres-store';
import { LISTENER_NAME } from '../../engine/store/postgres/notify';
import { emailCadence, harness, lead, published, STORE_KIND, type Harness } from '../helpers/harness';

let h: Harness;
afterEach(() => h?.close());

const HOUR_POLL = 3_600_000;
async function until(what: string, ok: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 800; i++) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${what}: not within 20 s (the poll is an hour away)`);
}

describe('Scheduler wake-up (issue 15)', () => {
  it('E2 D1 a record that matches the view is welcomed at once: the enrollment wakes the scheduler, no poll', async () => {
    h = await harness();
    await published(h, emailCadence({ enrollment: { mode: 'view', view: 'Lead_Status = "Hot"' } }));
    h.rt.start(HOUR_POLL);
    await new Promise((r) => setTimeout(r, 50)); // the first pass has run and found nothing
    await h.rt.upsertRecord('Leads', lead('a', { Lead_Status: 'Hot' }), 'form');
    await until('the welcome handed off', () => h.sent.length === 1);
    expect(h.sent.map((a) => [a.recordId, a.nodeId])).toEqual([['a', 'e1']]);
    // Delivered (the handler returned), and the next follow-up waits its two days: nothing more now.
    await until('the delivery recorded', async () => (await h.rt.getEnrollment('c1', 'a'))?.last?.delivery === 'delivered');
    expect(h.sent).toHaveLength(1);
  });

  it('F1 D5 a follow-up with no delay after a delivered one goes out at once: the delivery wakes the loop', async () => {
    h = await harness();
    const def = emailCadence();
    def.nodes[1] = { ...def.nodes[1], delay: undefined } as (typeof def.nodes)[1];
    await published(h, def);
    h.rt.start(HOUR_POLL);
    await new Promise((r) => setTimeout(r, 50)); // the first pass has run and found nothing
    await h.rt.enroll('c1', [lead('a'), lead('b')], 'rep');
    await until('both follow-ups of both records handed off', () => h.sent.length === 4);
    expect(h.sent.map((a) => `${a.recordId}:${a.nodeId}`).sort()).toEqual(['a:e1', 'a:e2', 'b:e1', 'b:e2']);
    await until('both completed', async () => (await h.rt.getEnrollment('c1', 'b'))?.status === 'completed');
  });

  // SQLite has one process per file; across processes is PostgreSQL's LISTEN/NOTIFY.
  it.skipIf(STORE_KIND !== 'postgres')('E2 D1 across processes: a record upserted by one process is handed off by another at once (LISTEN/NOTIFY), no poll', async () => {
    h = await harness();
    await published(h, emailCadence({ enrollment: { mode: 'view', view: 'Lead_Status = "Hot"' } }));
    const worker = await new Runtime({ store: h.openStore(), clock: h.clock, secret: 'test-secret' }).init();
    const got: DispatchedAction[] = [];
    worker.onDispatch((a) => void got.push(a));
    worker.start(HOUR_POLL);
    try {
      await new Promise((r) => setTimeout(r, 300)); // listening, and the first pass found nothing
      for (const id of ['a', 'b', 'c']) {
        await h.rt.upsertRecord('Leads', lead(id, { Lead_Status: 'Hot' }), 'form'); // h.rt never runs a scheduler here
        await until(`${id}'s welcome handed off by the other process`, () => got.some((a) => a.recordId === id));
      }
      expect(got.map((a) => `${a.recordId}:${a.nodeId}`)).toEqual(['a:e1', 'b:e1', 'c:e1']);
      expect(h.sent).toHaveLength(0);
    } finally {
      await worker.stop();
      await worker.store.close();
    }
  });

  it.skipIf(STORE_KIND !== 'postgres')('D1 a wake-up channel cut under a running scheduler is said as an error event, comes back by itself, and wakes it again', async () => {
    h = await harness();
    await published(h, emailCadence({ enrollment: { mode: 'view', view: 'Lead_Status = "Hot"' } }));
    const worker = await new Runtime({ store: h.openStore(), clock: h.clock, secret: 'test-secret' }).init();
    const got: DispatchedAction[] = [];
    const errors: string[] = [];
    worker.onDispatch((a) => void got.push(a));
    worker.subscribe((e) => e.type === 'error' && errors.push(e.error ?? ''));
    worker.start(HOUR_POLL);
    const admin = new pg.Client({ connectionString: (h.store as PostgresStore).pool.options.connectionString });
    await admin.connect();
    try {
      await new Promise((r) => setTimeout(r, 300)); // listening, and the first pass found nothing
      const db = (await admin.query('SELECT current_database() AS d')).rows[0].d;
      const killed = await admin.query('SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = $1 AND application_name = $2', [db, LISTENER_NAME]);
      expect(killed.rows).toEqual([{ ok: true }]);
      await until('the cut said as an error event', () => errors.length > 0);
      expect(errors[0]).toMatch(/^wake-up channel \(LISTEN\): .+; reconnecting/);
      await until('listening again', async () => (await admin.query('SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND application_name = $2', [db, LISTENER_NAME])).rowCount === 1);
      await h.rt.upsertRecord('Leads', lead('a', { Lead_Status: 'Hot' }), 'form');
      await until("a's welcome handed off by the other process after the reconnect", () => got.some((a) => a.recordId === 'a'));
    } finally {
      await admin.end();
      await worker.stop();
      await worker.store.close();
    }
  });
});
