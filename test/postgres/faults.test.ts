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

function spawnWorker(url: string, clockFile: string, name: string, dieInBatch = 0): Worker {
  const env = { ...process.env, BATCH: String(BATCH), DIE_IN_BATCH: String(dieInBatch) };
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
    expect(await count('SELECT COUNT(*) AS n FROM timers')).toBe(0);
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
