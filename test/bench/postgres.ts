// Postgres figures for `npm run bench`, each beside a peer on the same database in the same run:
// enrollment vs a raw batched INSERT, dispatch with 1/2/4 workers vs a raw SKIP LOCKED claim loop and
// vs pg-boss doing the same work (due jobs, no-op handler, batch fetch + burst as its docs advise).
import { fork } from 'node:child_process';
import { join } from 'node:path';
import pg from 'pg';
import { startPgServer } from '../helpers/pg-process';
import { postgresLatency } from './latency';
import { RowsWritten, delta } from './pg-stats';
import { ownCpuMs, serverCpuOf } from './cpu';
import { VirtualClock } from '../../engine/runtime/clock';
import { Runtime } from '../../engine/runtime/runtime';
import { PostgresStore } from '../../engine/store/postgres/postgres-store';
import type { CadenceDefinition } from '../../engine/model/types';

const T0 = Date.parse('2026-03-02T08:00:00Z');
/** CPU milliseconds of a run: the database server's (null without /proc) and the worker's or client's own. */
type Cpu = { db: number | null; own: number };
type Report = (what: string, ours: string, peer: string, ratio: number, unit?: string) => void;
const rate = (n: number, ms: number) => `${Math.round((n / ms) * 1000).toLocaleString('en-US')}/s`;
const since = (t: bigint) => Number(process.hrtime.bigint() - t) / 1e6;

async function server(): Promise<{ url: string; stop: () => Promise<void> }> {
  if (process.env.CADENZA_BENCH_PG_URL) return { url: process.env.CADENZA_BENCH_PG_URL, stop: async () => {} };
  return startPgServer(['-c', 'max_connections=200', '-c', 'synchronous_commit=off']);
}

let dbs = 0;
async function database(admin: string): Promise<string> {
  const name = `bench_${dbs++}`;
  const c = new pg.Client({ connectionString: admin });
  await c.connect();
  await c.query(`DROP DATABASE IF EXISTS ${name}`);
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  const u = new URL(admin);
  u.pathname = `/${name}`;
  return u.toString();
}

// The view cadence sends e1 at once and waits two days for e2 (the state the bytes figure measures).
const definition = (mode: 'view' | 'manual'): CadenceDefinition => ({
  id: 'bench', name: 'Bench', module: 'Leads', timezone: 'UTC', enrollment: mode === 'view' ? { mode, view: 'Lead_Status = "Hot"' } : { mode },
  nodes: [
    { id: 'e1', type: 'followUp', channel: 'email', template: { subject: 'Hi {{First_Name}}', body: '<p>Hello {{First_Name}}</p>' } },
    ...(mode === 'view' ? [{ id: 'e2', type: 'followUp' as const, channel: 'email' as const, delay: { amount: 2, unit: 'days' as const }, template: { subject: 'Again', body: 'Again' } }] : []),
  ],
  edges: [{ from: 'trigger', to: 'e1' }, ...(mode === 'view' ? [{ from: 'e1', to: 'e2' }] : [])],
});

async function runtimeOn(url: string, clock: VirtualClock, pool = 4) {
  const store = new PostgresStore(url, { max: pool });
  return new Runtime({ store, clock, secret: 'bench', batchSize: 200 }).init();
}

export async function postgresBench(report: Report, scale: number, n8nBytes: number): Promise<void> {
  const { url: admin, stop } = await server();
  try {
    // Enrollment into a view cadence vs a raw batched INSERT of the same rows.
    const n = Math.round(4000 * scale);
    {
      const url = await database(admin);
      const clock = new VirtualClock(T0);
      const rt = await runtimeOn(url, clock);
      await rt.createCadence(definition('view'), 'bench');
      await rt.publish('bench', 'bench');
      const lead = (i: number) => ({ id: `r${i}`, First_Name: 'N', Email: `r${i}@x.example`, Lead_Status: 'Hot' });
      let t = process.hrtime.bigint();
      for (let i = 0; i < n; i += 500) await rt.upsertRecords('Leads', Array.from({ length: Math.min(500, n - i) }, (_, k) => lead(i + k)), 'bench');
      const ours = since(t);
      // One at a time too (a web form posting leads): one transaction per record.
      const single = Math.round(n / 10);
      t = process.hrtime.bigint();
      for (let i = 0; i < single; i++) await rt.upsertRecord('Leads', lead(n + i), 'bench');
      const oneByOne = since(t);
      // The same rows, plain SQL, same schema (a second database Cadenza migrated), one transaction per 500.
      const rawUrl = await database(admin);
      const schema = new PostgresStore(rawUrl);
      await schema.migrate();
      await schema.close();
      const r = new pg.Client({ connectionString: rawUrl });
      await r.connect();
      t = process.hrtime.bigint();
      for (let i = 0; i < n; i += 500) {
        const ids = Array.from({ length: Math.min(500, n - i) }, (_, k) => `r${i + k}`);
        // As the engine stores it: the fields its columns hold are not repeated in the state.
        const state = () => ({ version: 1, run: 1, position: 'e1', wait: 'due', dueAt: T0, enrolledBy: 'automation', last: null, exitChecks: [], executed: 0 });
        await r.query('BEGIN');
        await r.query(`INSERT INTO records (module, id, data, unsubscribed, updated_at) SELECT 'Leads', x.id, x.data, false, ${T0} FROM jsonb_to_recordset($1::jsonb) AS x(id text, data jsonb)`,
          [JSON.stringify(ids.map((id) => ({ id, data: { id, First_Name: 'N', Email: `${id}@x.example`, Lead_Status: 'Hot' } })))]);
        await r.query(`INSERT INTO enrollments (id, cadence_id, record_id, module, status, reason, rev, state, started_at, updated_at, due_at) SELECT 'bench:' || x.id, 'bench', x.id, 'Leads', 'active', 'enrolled', 1, x.state, ${T0}, ${T0}, ${T0}
          FROM jsonb_to_recordset($1::jsonb) AS x(id text, state jsonb)`, [JSON.stringify(ids.map((id) => ({ id, state: state() })))]);
        await r.query(`INSERT INTO audit (at, cadence_id, enrollment_id, record_id, actor, event, reason, data) SELECT ${T0}, 'bench', 'bench:' || id, id, 'automation', 'enrolled', 'enrolled by automation (E2)', '{"version":1}' FROM unnest($1::text[]) id`, [ids]);
        await r.query('COMMIT');
      }
      const raw = since(t);
      await r.end();
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      // Every enrollment sends e1 and waits for e2: the live bytes the database holds for each, tables and
      // indexes (VACUUM FULL drops the space of old row versions, which later writes would reuse anyway).
      rt.onDispatchBatch(() => undefined);
      while ((await rt.tick()).dispatched > 0);
      await c.query('VACUUM FULL');
      if (process.env.CADENZA_BENCH_TABLES === '1') console.log((await c.query("SELECT relname, pg_total_relation_size(c.oid) / $1 AS per FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 2 DESC", [n + single])).rows);
      const size = Number((await c.query("SELECT SUM(pg_total_relation_size(c.oid)) AS b FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'm')")).rows[0].b);
      await c.end();
      await rt.store.close();
      report(`Postgres: enrollments/s into a view, batches of 500 (${n})`, rate(n, ours), `${rate(n, raw)} raw INSERTs, same rows`, raw / ours);
      report(`Postgres: the same, one record per call (${single})`, rate(single, oneByOne), `${rate(n, ours)} in batches`, ours / n / (oneByOne / single), 'x batched');
      report('bytes per waiting enrollment (Postgres, + indexes)', `${Math.round(size / (n + single)).toLocaleString('en-US')} B`, `${n8nBytes.toLocaleString('en-US')} B n8n waiting execution`, size / (n + single) / n8nBytes, 'x the peer');
    }

    // Dispatch with 1, 2 and 4 worker processes vs a raw SKIP LOCKED claim loop and pg-boss over as many
    // rows. One worker, the loop and pg-boss run ROUNDS times, taking turns, and each reports its median:
    // on a shared machine a single run swings by up to 1.5x, and so do the peers.
    // 16,000 follow-ups per run: a worker is a fresh process, and over its first few thousand steps it is
    // still compiling its hot paths (4,000 measured ~30% slower); workers in production live for weeks.
    const d = Math.round(16_000 * scale);
    const runs = { one: [] as number[], raw: [] as number[], boss: [] as number[] };
    const cpu = { one: [] as Cpu[], raw: [] as Cpu[], boss: [] as Cpu[] };
    let cadenzaRows = { perStep: 0, tables: {} as Record<string, number> };
    let bossRows = { perJob: 0, tables: {} as Record<string, number> };
    for (let round = 0; round < ROUNDS; round++) {
      const one = await cadenzaDispatch(admin, 1, d, round === 0);
      runs.one.push(one.ms);
      cpu.one.push(one.cpu);
      if (one.rows) cadenzaRows = one.rows;
      const loop = await rawClaimLoop(admin, d);
      runs.raw.push(loop.ms);
      cpu.raw.push(loop.cpu);
      const boss = await pgBoss(admin, d);
      runs.boss.push(boss.ms);
      cpu.boss.push(boss.cpu);
      if (round === 0) bossRows = boss.rows;
    }
    const oneWorker = median(runs.one);
    report(`Postgres: due follow-ups dispatched/s, 1 worker (${d}, median of ${ROUNDS})`, rate(d, oneWorker), '', 1, '');
    for (const workers of [2, 4, 'capped' as const]) {
      const { ms } = await cadenzaDispatch(admin, workers, d, false);
      const what = workers === 'capped' ? '1 worker, sender cap' : `${workers} workers`;
      report(`Postgres: due follow-ups dispatched/s, ${what} (${d})`, rate(d, ms), `${rate(d, oneWorker)} with 1 worker`, oneWorker / ms, 'x one worker');
    }
    const raw = median(runs.raw);
    report(`Postgres: raw SKIP LOCKED claim loop (${d} rows, median of ${ROUNDS})`, rate(d, raw), `Cadenza 1 worker ${rate(d, oneWorker)}`, raw / oneWorker, 'Cadenza/raw');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const version = require('pg-boss/package.json').version as string;
    const boss = median(runs.boss);
    report(`Postgres: pg-boss ${version}, 1 worker (${d} jobs, median of ${ROUNDS})`, rate(d, boss), `Cadenza 1 worker ${rate(d, oneWorker)}`, boss / oneWorker, 'Cadenza/pg-boss');
    // Where the time goes: CPU per follow-up on each side, medians over the same rounds. Cadenza's run keeps
    // both cores busy, so its rate follows its total: to go faster, a side has to do less. The peers leave
    // a core partly idle (one connection, one process), so theirs is a cost per job, not a rate.
    const per = (xs: Cpu[], side: keyof Cpu) => (xs.some((x) => x[side] === null) ? null : (median(xs.map((x) => x[side]!)) * 1000) / d);
    const us = (v: number | null) => (v === null ? '?' : `${Math.round(v)} µs`);
    const split = (xs: Cpu[]) => ({ db: per(xs, 'db'), own: per(xs, 'own') });
    const [ours, loop, theirs] = [split(cpu.one), split(cpu.raw), split(cpu.boss)];
    if (ours.db !== null && theirs.db !== null && loop.db !== null) {
      const total = (x: { db: number | null; own: number | null }) => x.db! + x.own!;
      report(`Postgres: CPU per follow-up, database + worker, 1 worker (${d}, median of ${ROUNDS})`, `${us(ours.db)} + ${us(ours.own)}`, `pg-boss ${us(theirs.db)} + ${us(theirs.own)} per job`, total(ours) / total(theirs), 'x pg-boss');
      report('Postgres: the same, beside the raw claim loop', `${us(ours.db)} + ${us(ours.own)}`, `raw loop ${us(loop.db)} + ${us(loop.own)} per row`, total(ours) / total(loop), 'x the raw loop');
    }
    report(`Postgres: rows written per follow-up, 1 worker (${d})`, cadenzaRows.perStep.toFixed(2), `${bossRows.perJob.toFixed(2)} per pg-boss job`, cadenzaRows.perStep / bossRows.perJob, 'x pg-boss');
    if (process.env.CADENZA_BENCH_TABLES === '1') console.log('rows written in dispatch:', { cadenza: cadenzaRows.tables, pgBoss: bossRows.tables });
    // Upsert -> hand-off across two processes, on a database of its own.
    {
      await postgresLatency(report, await database(admin), scale);
    }
  } finally {
    await stop();
  }
}

/** Runs per figure whose median is reported (run.ts's SQLite figures too). */
export const ROUNDS = 3;
export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * `workers` processes dispatch `d` due follow-ups of a fresh database ("capped": one worker, with a
 * per-sender daily cap, never reached, that every send must check and count). With `countRows`, the
 * rows written per follow-up too, read from pg_stat_user_tables around the dispatch only.
 */
async function cadenzaDispatch(admin: string, workers: number | 'capped', d: number, countRows: boolean) {
  const url = await database(admin);
  const setup = await runtimeOn(url, new VirtualClock(T0), 8);
  await setup.createCadence({ ...definition('manual'), ...(workers === 'capped' ? { senderDailyCap: 1_000_000 } : {}) }, 'bench');
  await setup.publish('bench', 'bench');
  for (let i = 0; i < d; i += 500) await setup.enroll('bench', Array.from({ length: Math.min(500, d - i) }, (_, k) => ({ id: `r${i + k}`, Email: `r${i + k}@x.example` })), 'bench');
  await setup.store.close();
  const stats = countRows ? await RowsWritten.open(url) : null;
  const before = await stats?.read();
  const { out: { ms, workerCpuMs }, serverMs } = await serverCpuOf(url, () => dispatchInWorkers(url, workers === 'capped' ? 1 : workers, d));
  let rows: { perStep: number; tables: Record<string, number> } | null = null;
  if (stats && before) {
    const after = await stats.read();
    rows = { perStep: (after.total - before.total) / d, tables: delta(before, after) };
    await stats.close();
  }
  return { ms, rows, cpu: { db: serverMs, own: workerCpuMs } };
}

/** The floor: claim 200 due jobs with SKIP LOCKED and mark them done, in a loop, on a bare table. */
async function rawClaimLoop(admin: string, d: number): Promise<{ ms: number; cpu: Cpu }> {
  const url = await database(admin);
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query('CREATE TABLE jobs (id bigserial PRIMARY KEY, due_at bigint NOT NULL, locked_until bigint NOT NULL DEFAULT 0, done boolean NOT NULL DEFAULT false); CREATE INDEX jobs_due ON jobs (due_at) WHERE NOT done');
  await c.query(`INSERT INTO jobs (due_at) SELECT ${T0} FROM generate_series(1, ${d})`);
  await c.end();
  const { out, serverMs } = await serverCpuOf(url, async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    const cpu = process.cpuUsage();
    const t = process.hrtime.bigint();
    for (;;) {
      const rows = (await c.query(`UPDATE jobs SET locked_until = $1 WHERE id = ANY(ARRAY(SELECT id FROM jobs WHERE NOT done AND due_at <= $2 AND locked_until <= $2 ORDER BY due_at LIMIT 200 FOR UPDATE SKIP LOCKED)) RETURNING id`, [T0 + 60_000, T0])).rows;
      if (!rows.length) break;
      await c.query('UPDATE jobs SET done = true WHERE id = ANY($1::bigint[])', [rows.map((r) => r.id)]);
    }
    const ms = since(t);
    const own = ownCpuMs(cpu);
    await c.end();
    return { ms, own };
  });
  return { ms: out.ms, cpu: { db: serverMs, own: out.own } };
}

/** pg-boss doing the same work: as many due jobs, a no-op handler, batch fetch with burst (as its docs advise). */
async function pgBoss(admin: string, d: number) {
  const url = await database(admin);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { PgBoss } = require('pg-boss');
  const open = async () => {
    const b = new PgBoss({ connectionString: url, supervise: false, schedule: false });
    b.on('error', () => undefined);
    await b.start();
    return b;
  };
  // The jobs are inserted by one instance that then stops, so its writes are counted before the run.
  const producer = await open();
  await producer.createQueue('bench');
  for (let i = 0; i < d; i += 500) await producer.insert('bench', Array.from({ length: Math.min(500, d - i) }, (_, k) => ({ data: { i: i + k } })));
  await producer.stop({ graceful: false });
  const stats = await RowsWritten.open(url);
  const before = await stats.read();
  const { out, serverMs } = await serverCpuOf(url, async () => {
    const boss = await open();
    const cpu = process.cpuUsage(); // from its start on, as a Cadenza worker's is from after its init
    let done = 0;
    const t = process.hrtime.bigint();
    await new Promise<void>((resolve) => {
      void boss.work('bench', { batchSize: 200, pollingIntervalSeconds: 0.5, burstWhenBatchFull: true }, async (jobs: unknown[]) => {
        done += jobs.length;
        if (done >= d) resolve();
      });
    });
    const ms = since(t);
    // Graceful: the last batch's completion is written before the pool closes (it is part of the work).
    await boss.stop({ graceful: true, timeout: 10_000 }).catch(() => undefined);
    return { ms, own: ownCpuMs(cpu) };
  });
  const after = await stats.read();
  await stats.close();
  return { ms: out.ms, cpu: { db: serverMs, own: out.own }, rows: { perJob: (after.total - before.total) / d, tables: delta(before, after) } };
}

/**
 * Dispatch by `n` worker processes (dispatch-child.ts), each a runtime of its own, as in production:
 * timed from the go signal to the last follow-up handed off; resolves once every worker has exited
 * (its store closed, so its table statistics are flushed).
 */
async function dispatchInWorkers(url: string, n: number, d: number): Promise<{ ms: number; workerCpuMs: number }> {
  const kids = Array.from({ length: n }, () => fork(join(__dirname, 'dispatch-child.js'), [url, String(T0)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  const exited = kids.map((k) => new Promise<void>((resolve) => k.once('exit', () => resolve())));
  let sent = 0;
  let workerCpuMs = 0;
  let done: () => void = () => undefined;
  const all = new Promise<void>((resolve) => (done = resolve));
  await Promise.all(kids.map((k) => new Promise<void>((resolve, reject) => {
    k.once('exit', (code) => reject(new Error(`dispatch worker exited (${code}) before it was ready`)));
    k.on('message', (m: { ready?: true; sent?: number; cpuMs?: number }) => {
      if (m.ready) resolve();
      if (m.cpuMs) workerCpuMs += m.cpuMs;
      if (m.sent && (sent += m.sent) >= d) done();
    });
  })));
  const t = process.hrtime.bigint();
  for (const k of kids) k.send({ go: true });
  await all;
  const ms = since(t);
  for (const k of kids) k.send({ stop: true });
  await Promise.all(exited);
  return { ms, workerCpuMs };
}
