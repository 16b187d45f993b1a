// `npm run bench`: engine figures, each beside a peer measured in the same run, as ratios.
// Not a test: nothing here fails on timing. Sizes are set by BENCH_SCALE (default 1).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import jsonata from 'jsonata';
import { Criteria } from '../../engine/criteria/criteria';
import { VirtualClock } from '../../engine/runtime/clock';
import { Runtime } from '../../engine/runtime/runtime';
import { SqliteStore } from '../../engine/store/sqlite/sqlite-store';
import type { CadenceDefinition } from '../../engine/model/types';

const scale = Number(process.env.BENCH_SCALE ?? 1);
const T0 = Date.parse('2026-03-02T08:00:00Z');
const rows: { what: string; ours: string; peer: string; ratio: string }[] = [];

function time<T>(fn: () => T): [T, number] {
  const t = process.hrtime.bigint();
  const out = fn();
  return [out, Number(process.hrtime.bigint() - t) / 1e6];
}

async function timeAsync<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t = process.hrtime.bigint();
  const out = await fn();
  return [out, Number(process.hrtime.bigint() - t) / 1e6];
}

const rate = (n: number, ms: number) => `${Math.round((n / ms) * 1000).toLocaleString('en-US')}/s`;
function report(what: string, ours: string, peer: string, ratio: number, unit = 'x the peer') {
  rows.push({ what, ours, peer, ratio: `${ratio.toFixed(2)} ${unit}` });
}

const definition: CadenceDefinition = {
  id: 'bench', name: 'Bench', module: 'Leads', timezone: 'UTC', enrollment: { mode: 'view', view: 'Lead_Status = "Hot"' },
  nodes: [
    { id: 'e1', type: 'followUp', channel: 'email', delay: { amount: 1, unit: 'hours' }, template: { subject: 'Hi {{First_Name}}', body: '<p>Hello {{First_Name}}</p>' } },
    { id: 'e2', type: 'followUp', channel: 'email', delay: { amount: 2, unit: 'days' }, template: { subject: 'Again', body: 'Again' } },
  ],
  edges: [{ from: 'trigger', to: 'e1' }, { from: 'e1', to: 'e2' }],
};

async function engineRun(dir: string, n: number) {
  const clock = new VirtualClock(T0);
  const store = new SqliteStore(join(dir, `engine-${n}.db`));
  const rt = await new Runtime({ store, clock, secret: 'bench', batchSize: 500 }).init();
  let sent = 0;
  rt.onDispatch(() => void sent++);
  await rt.createCadence(definition, 'bench');
  await rt.publish('bench', 'bench');
  const [, enrollMs] = await timeAsync(async () => {
    for (let i = 0; i < n; i++) await rt.upsertRecord('Leads', { id: `r${i}`, First_Name: `N${i}`, Email: `r${i}@example.com`, Lead_Status: 'Hot' });
  });
  clock.set(T0 + 3_600_000);
  const [, dispatchMs] = await timeAsync(() => rt.tick());
  await store.close();
  return { enrollMs, dispatchMs, sent };
}

/** The same rows written with plain SQL: what SQLite itself costs for the work. */
function rawRun(dir: string, n: number) {
  const db = new DatabaseSync(join(dir, `raw-${n}.db`));
  db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
    CREATE TABLE records (module TEXT, id TEXT, data TEXT, PRIMARY KEY (module, id));
    CREATE TABLE enrollments (id TEXT PRIMARY KEY, state TEXT, due_at INTEGER);
    CREATE TABLE timers (id TEXT PRIMARY KEY, due_at INTEGER, locked_until INTEGER DEFAULT 0);
    CREATE INDEX timers_due ON timers(due_at);
    CREATE TABLE outbox (key TEXT PRIMARY KEY, payload TEXT, status TEXT);`);
  const insRec = db.prepare('INSERT INTO records VALUES (?, ?, ?)');
  const insEnr = db.prepare('INSERT INTO enrollments VALUES (?, ?, ?)');
  const insTimer = db.prepare('INSERT INTO timers (id, due_at) VALUES (?, ?)');
  const [, enrollMs] = time(() => {
    for (let i = 0; i < n; i++) {
      // One transaction per record, as the engine commits one per enrollment.
      db.exec('BEGIN IMMEDIATE');
      insRec.run('Leads', `r${i}`, JSON.stringify({ id: `r${i}`, Email: `r${i}@example.com`, Lead_Status: 'Hot' }));
      insEnr.run(`bench:r${i}`, JSON.stringify({ status: 'active', position: 'e1' }), T0 + 3_600_000);
      insTimer.run(`e:bench:r${i}`, T0 + 3_600_000);
      db.exec('COMMIT');
    }
  });
  const claim = db.prepare('UPDATE timers SET locked_until = ? WHERE id IN (SELECT id FROM timers WHERE due_at <= ? AND locked_until <= ? ORDER BY due_at LIMIT 500) RETURNING id');
  const upd = db.prepare('UPDATE enrollments SET state = ? WHERE id = ?');
  const out = db.prepare("INSERT INTO outbox VALUES (?, ?, 'pending')");
  const ack = db.prepare("UPDATE outbox SET status = 'done' WHERE key = ?");
  const [, dispatchMs] = time(() => {
    for (;;) {
      const due = claim.all(T0 + 7_200_000, T0 + 3_600_000, T0 + 3_600_000) as { id: string }[];
      for (const t of due) {
        db.exec('BEGIN IMMEDIATE');
        upd.run(JSON.stringify({ status: 'active', position: 'e2' }), t.id.slice(2));
        out.run(`${t.id}:e1`, JSON.stringify({ to: 'x@example.com', subject: 'Hi' }));
        db.exec('COMMIT');
        ack.run(`${t.id}:e1`);
      }
      if (due.length < 500) break;
    }
  });
  db.close();
  return { enrollMs, dispatchMs };
}

async function claimCost(dir: string, waiting: number) {
  const store = new SqliteStore(join(dir, `claim-${waiting}.db`));
  await store.migrate();
  const db = store.db;
  const ins = db.prepare("INSERT INTO timers (id, kind, cadence_id, due_at, priority) VALUES (?, 'enrollment', 'bench', ?, 1)");
  db.exec('BEGIN');
  for (let i = 0; i < waiting; i++) ins.run(`e:w${i}`, T0 + 86_400_000 + (i % 1000) * 60_000); // waiting: due tomorrow or later
  for (let i = 0; i < 100; i++) ins.run(`e:due${i}`, T0 - i); // due now
  db.exec('COMMIT');
  db.exec('ANALYZE');
  const rounds = 200;
  const [, oursMs] = await timeAsync(async () => {
    for (let r = 0; r < rounds; r++) {
      const got = await store.claimTimers(T0, 100, T0 + 1); // lease until T0+1: claimable again next round
      if (got.length !== 100) throw new Error(`claimed ${got.length}`);
      db.prepare('UPDATE timers SET locked_until = 0 WHERE due_at <= ?').run(T0);
    }
  });
  const raw = db.prepare('SELECT id FROM timers WHERE due_at <= ? ORDER BY due_at LIMIT 100');
  const [, rawMs] = time(() => {
    for (let r = 0; r < rounds; r++) if (raw.all(T0).length !== 100) throw new Error('raw');
  });
  await store.close();
  return { oursMs: oursMs / rounds, rawMs: rawMs / rounds };
}

async function criteriaRun(n: number) {
  const c = new Criteria();
  const expr = 'Lead_Status = "Hot" and $daysSince(Created_Time) < 30 and Score > 50';
  const rec = { Lead_Status: 'Hot', Created_Time: '2026-02-20T00:00:00Z', Score: 70 };
  const [, cachedMs] = await timeAsync(async () => {
    for (let i = 0; i < n; i++) await c.test(expr, rec, T0);
  });
  const [, uncachedMs] = await timeAsync(async () => {
    for (let i = 0; i < n; i++) await jsonata(expr).evaluate(rec, { daysSince: () => 10 });
  });
  return { cachedMs, uncachedMs };
}

/** Memory per waiting enrollment: ours lives in the store; the peer is a plain setTimeout per record. */
async function memoryRun(dir: string, n: number) {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const base = process.memoryUsage().heapUsed;
  const timers: NodeJS.Timeout[] = [];
  for (let i = 0; i < n; i++) timers.push(setTimeout(() => void i, 86_400_000 + i));
  gc?.();
  const peerBytes = (process.memoryUsage().heapUsed - base) / n;
  for (const t of timers) clearTimeout(t);
  timers.length = 0;
  gc?.();
  const clock = new VirtualClock(T0);
  const store = new SqliteStore(join(dir, 'memory.db'));
  const rt = await new Runtime({ store, clock, secret: 'bench' }).init();
  await rt.createCadence({ ...definition, enrollment: { mode: 'manual' } }, 'bench');
  await rt.publish('bench', 'bench');
  gc?.();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < n; i += 500) await rt.enroll('bench', Array.from({ length: Math.min(500, n - i) }, (_, k) => ({ id: `m${i + k}`, Email: 'm@example.com' })), 'bench');
  gc?.();
  const oursBytes = Math.max(0, process.memoryUsage().heapUsed - before) / n;
  await store.close();
  return { oursBytes, peerBytes };
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'cadenza-bench-'));
  try {
    const n = Math.round(3000 * scale);
    const ours = await engineRun(dir, n);
    const raw = rawRun(dir, n);
    report(`enrollments/s into a view cadence (${n} records)`, rate(n, ours.enrollMs), rate(n, raw.enrollMs) + ' raw SQLite', raw.enrollMs / ours.enrollMs);
    report(`due follow-ups dispatched/s (${ours.sent})`, rate(ours.sent, ours.dispatchMs), rate(n, raw.dispatchMs) + ' raw SQLite', raw.dispatchMs / ours.dispatchMs);
    for (const waiting of [1_000, Math.round(1_000_000 * Math.min(scale, 1))]) {
      const c = await claimCost(dir, waiting);
      report(`claim 100 due among ${waiting.toLocaleString('en-US')} waiting`, `${c.oursMs.toFixed(3)} ms`, `${c.rawMs.toFixed(3)} ms raw SELECT`, c.oursMs / c.rawMs, 'x the raw cost');
    }
    const e = Math.round(20_000 * scale);
    const cr = await criteriaRun(e);
    report(`JSONata evaluations/s (${e})`, rate(e, cr.cachedMs) + ' cached', rate(e, cr.uncachedMs) + ' compile each time', cr.uncachedMs / cr.cachedMs);
    const m = Math.round(20_000 * scale);
    const mem = await memoryRun(dir, m);
    report(`heap bytes per waiting enrollment (${m})`, `${Math.round(mem.oursBytes)} B`, `${Math.round(mem.peerBytes)} B setTimeout per record`, mem.oursBytes / Math.max(1, mem.peerBytes), 'x the peer');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const w = [40, 22, 36, 20];
  const line = (c: string[]) => c.map((x, i) => x.padEnd(w[i])).join('  ');
  console.log(line(['what', 'Cadenza', 'peer (same run)', 'ratio']));
  console.log(line(w.map((x) => '-'.repeat(x))));
  for (const r of rows) console.log(line([r.what, r.ours, r.peer, r.ratio]));
  console.log('\nRatios above 1 mean Cadenza is faster (throughput) or costlier (claim, memory) than the peer.');
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
