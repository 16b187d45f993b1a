// D1 + D2 on a shared PostgreSQL: two and four worker processes dispatch the same cadence while the
// test SIGKILLs workers (and starts new ones) and cuts their database connections at random moments.
// Virtual time stands still during the faults. Once the faults stop and the live workers have drained
// what they can see, the clock moves one lease period: everything due must then be performed, without
// moving the clock further — none lost, none performed twice, none later than one lease after recovery.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { Runtime } from '../../engine/runtime/runtime';
import { PostgresStore } from '../../engine/store/postgres/postgres-store';
import fileClock from '../fixtures/file-clock.js';
import { T0, freshPostgres } from '../helpers/harness';

const WORKER = join(__dirname, '../fixtures/pg-worker.js');
const LEASE = 60_000;
const HOUR = 3_600_000;
const BATCH = 100;
/** Enrollments per scenario; each has two follow-ups. Two scenarios: 2 × 2 × 25k = 100k follow-ups. */
const RECORDS = Number(process.env.CADENZA_FAULT_RECORDS ?? 25_000);

interface Worker {
  name: string;
  proc: ChildProcess;
  idle: number;
  ready: boolean;
  exit: Promise<void>;
  stderr: string;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms)); // real processes make progress; engine time stays virtual

function rng(seed: number) {
  return () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
}

function spawnWorker(url: string, clockFile: string, name: string, dieInBatch = 0, flaky = false): Worker {
  const env = { ...process.env, BATCH: String(BATCH), DIE_IN_BATCH: String(dieInBatch), FLAKY: flaky ? '1' : '0' };
  const proc = spawn(process.execPath, [WORKER, url, clockFile, name], { stdio: ['ignore', 'pipe', 'pipe'], env });
  const w: Worker = { name, proc, idle: 0, ready: false, stderr: '', exit: new Promise((r) => proc.once('exit', () => r())) };
  proc.stdout!.on('data', (b: Buffer) => {
    const s = b.toString();
    if (s.includes('ready')) w.ready = true;
    w.idle += s.split('idle').length - 1;
  });
  proc.stderr!.on('data', (b: Buffer) => (w.stderr += b.toString()));
  return w;
}

const running: Worker[] = [];
afterEach(async () => {
  for (const w of running.splice(0)) {
    w.proc.kill('SIGKILL');
    await w.exit;
  }
});

async function scenario(workerCount: number, seed: number) {
  const url = await freshPostgres();
  const dir = mkdtempSync(join(tmpdir(), 'cadenza-faults-'));
  const clockFile = join(dir, 'clock');
  const setClock = (t: number) => writeFileSync(clockFile, String(t - T0));
  setClock(T0);
  const admin = new pg.Pool({ connectionString: url, max: 2 });
  const random = rng(seed);
  try {
    // The cadence and its enrollments, written by a process that then goes away.
    const rt = await new Runtime({ store: new PostgresStore(url), clock: fileClock(clockFile, T0), secret: 'faults' }).init();
    await rt.createCadence({
      id: 'f', name: 'Faults', module: 'Leads', timezone: 'UTC', enrollment: { mode: 'manual' },
      nodes: [
        { id: 'e1', type: 'followUp', channel: 'email', template: { subject: 'Hi {{First_Name}}', body: 'Hello' } },
        { id: 't2', type: 'followUp', channel: 'task', delay: { amount: 1, unit: 'hours' }, template: { subject: 'Call {{First_Name}}', body: '' } },
      ],
      edges: [{ from: 'trigger', to: 'e1' }, { from: 'e1', to: 't2' }],
    }, 'admin');
    await rt.publish('f', 'admin');
    for (let i = 0; i < RECORDS; i += 1000) {
      const answers = await rt.enroll('f', Array.from({ length: Math.min(1000, RECORDS - i) }, (_, k) => ({ id: `r${i + k}`, First_Name: 'N', Email: `r${i + k}@example.com` })), 'admin');
      expect(answers.every((a) => a.status === 'enrolled')).toBe(true);
    }
    await rt.store.close();
    await admin.query('CREATE TABLE host_invoked (seq bigserial PRIMARY KEY, key text NOT NULL, worker text NOT NULL); CREATE TABLE host_performed (key text PRIMARY KEY)');

    let spawned = 0;
    const workers: Worker[] = [];
    const start = (dieInBatch = 0) => {
      const w = spawnWorker(url, clockFile, `cz-w${spawned++}`, dieInBatch);
      running.push(w);
      return w;
    };
    for (let i = 0; i < workerCount; i++) workers.push(start());
    const count = async (sql: string, args: unknown[] = []) => Number((await admin.query(sql, args)).rows[0].n);
    const until = async (what: string, ok: () => boolean | Promise<boolean>) => {
      for (let i = 0; i < 3000; i++) {
        if (await ok()) return;
        await pause(50);
      }
      throw new Error(`timed out waiting for ${what}; worker errors: ${workers.map((w) => w.stderr).join('\n').slice(-2000)}`);
    };
    /** Every live worker has finished passes that found nothing: what is left is held by dead leases. */
    const quiet = async () => {
      const mark = workers.map((w) => w.idle);
      await until('workers to go idle', () => workers.every((w, i) => w.ready && w.idle >= mark[i] + 3));
    };
    await until('workers to start', () => workers.every((w) => w.ready));

    let kills = 0;
    let cuts = 0;
    let recovered = 0;
    for (const [node, dueAt] of [['e1', T0], ['t2', T0 + HOUR]] as const) {
      // Besides the random faults, one extra worker that surely dies in its second hand-off, holding leases.
      const doomed = start(2);
      await until('the doomed worker to start', () => doomed.ready);
      setClock(dueAt);
      const performed = () => count("SELECT COUNT(*) AS n FROM host_performed WHERE key LIKE '%:' || $1", [node]);
      // Faults while the work is under way: a SIGKILL (and a new worker in its place) or a connection cut.
      await until(`${node} to get under way`, async () => (await performed()) > RECORDS / 20);
      for (let f = 0; f < 6; f++) {
        await pause(50 + random() * 250);
        const k = Math.floor(random() * workers.length);
        if (random() < 0.5) {
          workers[k].proc.kill('SIGKILL');
          await workers[k].exit;
          workers[k] = start();
          kills++;
        } else {
          await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [workers[k].name]);
          cuts++;
        }
      }
      await until('new workers to start', () => workers.every((w) => w.ready));
      await quiet();
      const left = RECORDS - (await performed());
      recovered += left;
      // One lease after recovery, and no later: what the dead held is taken over and performed.
      setClock(dueAt + LEASE);
      await until(`${node} to be performed within one lease`, async () => (await performed()) === RECORDS);
      await quiet();
      expect(await count("SELECT COUNT(*) AS n FROM outbox WHERE status = 'pending' AND node_id = $1", [node])).toBe(0);
    }

    // Nothing lost, nothing doubled, and the engine's own record agrees.
    expect(await count('SELECT COUNT(*) AS n FROM host_performed')).toBe(2 * RECORDS);
    expect(await count("SELECT COUNT(*) AS n FROM host_performed p JOIN outbox o ON o.key = p.key AND o.status = 'done'")).toBe(2 * RECORDS);
    expect((await admin.query('SELECT status, COUNT(*)::int AS n FROM outbox GROUP BY status')).rows).toEqual([{ status: 'done', n: 2 * RECORDS }]);
    expect((await admin.query('SELECT status, COUNT(*)::int AS n FROM enrollments GROUP BY status')).rows).toEqual([{ status: 'completed', n: RECORDS }]);
    expect(await count('SELECT COUNT(*) AS n FROM enrollments WHERE due_at IS NOT NULL')).toBe(0);
    // Hand-offs repeated only because of faults: at most one batch in flight per kill or cut.
    const repeated = await count('SELECT COUNT(*) - COUNT(DISTINCT key) AS n FROM host_invoked');
    expect(kills + cuts).toBe(12);
    expect(repeated).toBeLessThanOrEqual((kills + cuts + 2) * BATCH);
    expect(recovered).toBeGreaterThanOrEqual(2 * BATCH); // at least the doomed workers' batches waited for their leases
    return { kills, cuts, repeated, recovered, workers: spawned };
  } finally {
    await admin.end();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('PostgreSQL under faults', () => {
  it('D1 D2 two worker processes, SIGKILLs and connection cuts: every follow-up performed once, none later than one lease after recovery', async () => {
    const r = await scenario(2, 7);
    console.log(`${2} workers:`, JSON.stringify(r));
    expect(r.workers).toBe(2 + r.kills + 2);
  }, 600_000);

  it('D1 D2 four worker processes, SIGKILLs and connection cuts: every follow-up performed once, none later than one lease after recovery', async () => {
    const r = await scenario(4, 13);
    console.log(`${4} workers:`, JSON.stringify(r));
    expect(r.workers).toBe(4 + r.kills + 2);
  }, 600_000);
});

/**
 * D5 + D6 under faults: a multi-step cadence (an email and a task falling due together, then an email
 * a day later) on workers whose performer fails at random — errors before and after performing, hands-
 * offs that never answer — while workers are SIGKILLed. The clock moves a minute at a time after the
 * faults (retries come with backoff). Every follow-up is performed exactly once, none is completed
 * undelivered, none is failed by a transient outage.
 */
async function flakyScenario(workerCount: number, seed: number, records: number) {
  const url = await freshPostgres();
  const dir = mkdtempSync(join(tmpdir(), 'cadenza-flaky-'));
  const clockFile = join(dir, 'clock');
  let now = T0;
  const setClock = (t: number) => writeFileSync(clockFile, String((now = t) - T0));
  setClock(T0);
  const admin = new pg.Pool({ connectionString: url, max: 2 });
  const random = rng(seed);
  const workers: Worker[] = [];
  try {
    const rt = await new Runtime({ store: new PostgresStore(url), clock: fileClock(clockFile, T0), secret: 'faults' }).init();
    await rt.createCadence({
      id: 'f', name: 'Flaky', module: 'Leads', timezone: 'UTC', enrollment: { mode: 'manual' },
      nodes: [
        { id: 'e1', type: 'followUp', channel: 'email', template: { subject: 'Hi', body: 'Hello' } },
        { id: 't1', type: 'followUp', channel: 'task', template: { subject: 'Call', body: '' } },
        { id: 'e2', type: 'followUp', channel: 'email', delay: { amount: 1, unit: 'days' }, template: { subject: 'Again', body: 'Again' } },
      ],
      edges: [{ from: 'trigger', to: 'e1' }, { from: 'e1', to: 't1' }, { from: 't1', to: 'e2' }],
    }, 'admin');
    await rt.publish('f', 'admin');
    await rt.enroll('f', Array.from({ length: records }, (_, k) => ({ id: `r${k}`, First_Name: 'N', Email: `r${k}@example.com` })), 'admin');
    await rt.store.close();
    await admin.query('CREATE TABLE host_invoked (seq bigserial PRIMARY KEY, key text NOT NULL, worker text NOT NULL); CREATE TABLE host_performed (key text PRIMARY KEY)');
    let spawned = 0;
    const start = () => {
      const w = spawnWorker(url, clockFile, `cz-f${spawned++}`, 0, true);
      running.push(w);
      return w;
    };
    for (let i = 0; i < workerCount; i++) workers.push(start());
    const count = async (sql: string, args: unknown[] = []) => Number((await admin.query(sql, args)).rows[0].n);
    const performed = (node: string) => count("SELECT COUNT(*) AS n FROM host_performed WHERE key LIKE '%:' || $1", [node]);
    const waitReady = async () => {
      for (let i = 0; i < 600 && !workers.every((w) => w.ready); i++) await pause(50);
    };
    await waitReady();
    let kills = 0;
    for (const [nodes, at] of [[['e1', 't1'], T0], [['e2'], T0 + 86_400_000]] as const) {
      setClock(at);
      // Faults while the first hand-offs are under way.
      for (let f = 0; f < 3; f++) {
        await pause(100 + random() * 300);
        const k = Math.floor(random() * workers.length);
        workers[k].proc.kill('SIGKILL');
        await workers[k].exit;
        workers[k] = start();
        kills++;
      }
      await waitReady();
      // Then time moves on a minute at a time: backoff retries, timed-out hand-offs and dead leases come due.
      for (let step = 0; step < 600; step++) {
        const done = await Promise.all(nodes.map((n) => performed(n)));
        const pending = await count("SELECT COUNT(*) AS n FROM outbox WHERE status = 'pending'");
        if (done.every((d) => d === records) && pending === 0) break;
        setClock(now + 60_000);
        await pause(60);
      }
      for (const n of nodes) {
        if ((await performed(n)) === records) continue;
        const stuck = (await admin.query("SELECT e.state, o.status, o.attempts, o.available_at, o.locked_until, o.last_error FROM enrollments e LEFT JOIN outbox o ON o.enrollment_id = e.id AND o.node_id = $1 WHERE NOT EXISTS (SELECT 1 FROM host_performed p WHERE p.key = e.id || ':1:' || $1) LIMIT 3", [n])).rows;
        const timers = (await admin.query('SELECT id, due_at FROM enrollments WHERE due_at IS NOT NULL ORDER BY due_at LIMIT 5')).rows;
        throw new Error(`${n}: ${await performed(n)} of ${records} performed at ${new Date(now).toISOString()}; stuck: ${JSON.stringify(stuck)} timers: ${JSON.stringify(timers)}; stderr: ${workers.map((w) => w.stderr).join('').slice(-1500)}`);
      }
    }
    // Let the last confirmations land, then check the engine's own record.
    for (let i = 0; i < 100 && (await count("SELECT COUNT(*) AS n FROM enrollments WHERE status <> 'completed'")) > 0; i++) {
      setClock(now + 60_000);
      await pause(60);
    }
    expect(await count('SELECT COUNT(*) AS n FROM host_performed')).toBe(3 * records);
    expect((await admin.query('SELECT status, COUNT(*)::int AS n FROM outbox GROUP BY status')).rows).toEqual([{ status: 'done', n: 3 * records }]);
    expect((await admin.query('SELECT status, COUNT(*)::int AS n FROM enrollments GROUP BY status')).rows).toEqual([{ status: 'completed', n: records }]);
    // None completed with an undelivered step; each counted its three deliveries once.
    expect(await count("SELECT COUNT(*) AS n FROM enrollments WHERE state->'last'->>'delivery' <> 'delivered' OR (state->>'executed')::int <> 3")).toBe(0);
    const invoked = await count('SELECT COUNT(*) AS n FROM host_invoked');
    const failures = await count("SELECT COUNT(*) AS n FROM audit WHERE event = 'waiting' OR more::text LIKE '%\"waiting\"%'");
    return { kills, invoked, repeats: invoked - 3 * records, retriesLogged: failures, workers: spawned };
  } finally {
    await admin.end();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('PostgreSQL with a performer that fails at random', () => {
  for (const [n, seed] of [[2, 5], [4, 17]] as const) {
    it(`D5 D6 ${n} worker processes, a flaky performer and SIGKILLs, a three-step cadence: each key performed once, nothing completed undelivered, nothing failed`, async () => {
      const r = await flakyScenario(n, seed, Number(process.env.CADENZA_FLAKY_RECORDS ?? 1500));
      console.log(`${n} workers, flaky performer:`, JSON.stringify(r));
      expect(r.retriesLogged).toBeGreaterThan(0);
      expect(r.kills).toBe(6);
    }, 600_000);
  }
});

