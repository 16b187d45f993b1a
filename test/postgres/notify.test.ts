// The PostgreSQL wake-up channel (issue 15): a committed pg_notify from another connection wakes the
// subscriber at once (F1: a follow-up with no delay runs when due, not a poll later); a rolled-back one
// wakes nobody; a listener whose connection is cut reconnects, wakes its subscribers once (a
// notification may have been missed; the poll stays the safety net, so none costs a step: D1), and
// never lets pg's 'error' event escape. Real server, real connections, real time (waits are for
// events, never fixed sleeps, except where the absence of something is the point).
import { createServer } from 'node:net';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { DueChannel, LISTENER_NAME, NOTIFY_MANY_SQL, notifyDue, type DueWake } from '../../engine/store/postgres/notify';
import { freshPostgres } from '../helpers/harness';

const open: { end(): Promise<void> }[] = [];
const closing: DueChannel[] = [];
afterEach(async () => {
  for (const c of closing.splice(0)) await c.close();
  for (const c of open.splice(0)) await c.end().catch(() => undefined);
});

async function client(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => undefined); // a test connection is never the subject
  await c.connect();
  open.push(c);
  return c;
}

/** A started channel on `url` that records its wakes and errors. */
async function listener(url: string, opts: ConstructorParameters<typeof DueChannel>[1] = {}) {
  const errors: Error[] = [];
  const ch = new DueChannel(url, { minBackoffMs: 20, maxBackoffMs: 200, ...opts, onError: (e) => void errors.push(e) });
  closing.push(ch);
  const wakes: DueWake[] = [];
  const waiting: { until: (w: DueWake) => boolean; resolve: (w: DueWake) => void }[] = [];
  ch.subscribe((w) => {
    wakes.push(w);
    for (const x of [...waiting]) if (x.until(w)) (waiting.splice(waiting.indexOf(x), 1), x.resolve(w));
  });
  /** The next wake (from now on) that satisfies `until`. */
  const next = (until: (w: DueWake) => boolean = () => true) => new Promise<DueWake>((resolve) => waiting.push({ until, resolve }));
  const first = next((w) => w.reason === 'listening');
  ch.start();
  await ch.ready();
  await first;
  return { ch, wakes, errors, next };
}

const names = (w: DueWake) => (w.cadenceIds ? [...w.cadenceIds].sort() : null);
const has = (id: string) => (w: DueWake) => !!w.cadenceIds?.has(id);

describe('PostgreSQL wake-up channel (LISTEN/NOTIFY)', () => {
  it('F1 a notification committed by another connection wakes the subscriber once per burst, naming the cadences', async () => {
    const url = await freshPostgres();
    const l = await listener(url);
    expect(l.wakes.map((w) => w.reason)).toEqual(['listening']); // the first connect wakes once too
    const w = await client(url);
    const woke = l.next();
    await w.query('BEGIN');
    for (const id of ['c1', 'c2', 'c1', 'c2', 'c1']) await notifyDue(w, id);
    await w.query(NOTIFY_MANY_SQL, ['cadenza_due', ['c3', 'c1']]);
    await w.query('COMMIT');
    expect(names(await woke)).toEqual(['c1', 'c2', 'c3']);
    expect((await woke).reason).toBe('notify');
    // A burst of commits on several connections: each one wakes, but never more often than they arrive.
    const more = await Promise.all([client(url), client(url)]);
    const all = l.next(has('z'));
    await Promise.all(more.map(async (c, i) => {
      for (let k = 0; k < 20; k++) await notifyDue(c, `b${i}`);
    }));
    await notifyDue(w, 'z');
    await all;
    expect(l.wakes.length).toBeLessThanOrEqual(2 + 41);
    expect(l.errors).toEqual([]);
  });

  it('F1 a notification without a cadence id wakes for every cadence', async () => {
    const url = await freshPostgres();
    const l = await listener(url);
    const woke = l.next();
    await notifyDue(await client(url));
    expect(await woke).toEqual({ reason: 'notify', cadenceIds: null });
  });

  it('F1 D1 a notification in a rolled-back transaction wakes nobody', async () => {
    const url = await freshPostgres();
    const l = await listener(url);
    const w = await client(url);
    await w.query('BEGIN');
    await notifyDue(w, 'rolled-back');
    await w.query('ROLLBACK');
    // Notifications arrive in commit order: once the marker committed after it is heard, the rolled-back
    // one would have been too.
    const marker = l.next(has('marker'));
    await notifyDue(w, 'marker');
    await marker;
    expect(l.wakes.filter((x) => x.reason === 'notify').map(names)).toEqual([['marker']]);
  });

  it('D1 after pg_terminate_backend of the listener it reconnects, wakes its subscribers once, and hears later notifications; no error escapes', async () => {
    const url = await freshPostgres();
    const l = await listener(url);
    const admin = await client(url);
    const db = new URL(url).pathname.slice(1);
    const cut = async () => {
      const back = l.next((w) => w.reason === 'listening');
      const killed = await admin.query('SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = $1 AND application_name = $2', [db, LISTENER_NAME]);
      expect(killed.rows).toEqual([{ ok: true }]);
      await back;
    };
    const before = l.wakes.length;
    await cut();
    expect(l.wakes.slice(before)).toEqual([{ reason: 'listening', cadenceIds: null }]);
    expect(l.errors.length).toBeGreaterThanOrEqual(1); // the cut was seen, and reported through onError only
    const heard = l.next(has('after'));
    await notifyDue(admin, 'after');
    expect(names(await heard)).toEqual(['after']);
    // Twice more: the backoff resets once the listener is back, and each cut costs one wake.
    await cut();
    await cut();
    expect(l.wakes.slice(before).map((w) => w.reason)).toEqual(['listening', 'notify', 'listening', 'listening']);
    expect(l.ch.listening).toBe(true);
  });

  it('D1 a server that is not there: the channel retries with backoff, never throws, and close() stops it for good', async () => {
    // A port nobody listens on: taken from the OS, then released.
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const errors: Error[] = [];
    const ch = new DueChannel(`postgres://nobody:secret@127.0.0.1:${port}/none`, { minBackoffMs: 10, maxBackoffMs: 40, onError: (e) => void errors.push(e) });
    closing.push(ch);
    const ready = ch.ready();
    ch.start();
    while (errors.length < 3) await new Promise((r) => setTimeout(r, 20));
    expect(errors.every((e) => !e.message.includes('secret'))).toBe(true);
    await ch.close();
    await expect(ready).rejects.toThrow(/closed/);
    const after = errors.length;
    await new Promise((r) => setTimeout(r, 200)); // several backoff periods: no attempt after close
    expect(errors.length).toBe(after);
    expect(ch.listening).toBe(false);
  });

  it('D1 close() ends the listener: no wake after it, and the server sees the session gone', async () => {
    const url = await freshPostgres();
    const l = await listener(url);
    const witness = await listener(url);
    await l.ch.close();
    const count = l.wakes.length;
    const heard = witness.next(has('late'));
    await notifyDue(await client(url), 'late');
    await heard;
    expect(l.wakes.length).toBe(count);
    const db = new URL(url).pathname.slice(1);
    const admin = await client(url);
    const listeners = async () => (await admin.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = $2', [db, LISTENER_NAME])).rows[0].n as number;
    // The backend exits just after the socket closes: wait for it (bounded), then it must be the witness only.
    for (let i = 0; i < 100 && (await listeners()) > 1; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await listeners()).toBe(1);
    await expect(l.ch.ready()).rejects.toThrow(/closed/);
  });
});
