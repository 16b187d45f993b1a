// `npm run bench`: engine figures, each beside a peer measured in the same run, as ratios.
// Not a test: nothing here fails on timing. Sizes are set by BENCH_SCALE (default 1).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { execFileSync } from 'node:child_process';
import jsonata from 'jsonata';
import { n8nWaitingExecutionBytes } from './n8n-waiting';
import { median, postgresBench, ROUNDS } from './postgres';
import { sqliteLatency } from './latency';
import { Criteria } from '../../engine/criteria/criteria';
import { VirtualClock } from '../../engine/runtime/clock';
import { Runtime } from '../../engine/runtime/runtime';
import { SqliteStore } from '../../engine/store/sqlite/sqlite-store';
import { SENT_DROPPED } from '../../engine/store/sent';
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

async function engineRun(dir: string, n: number, round = 0) {
  const clock = new VirtualClock(T0);
  const store = new SqliteStore(join(dir, `engine-${n}-${round}.db`));
  const rt = await new Runtime({ store, clock, secret: 'bench', batchSize: 500 }).init();
  let sent = 0;
  rt.onDispatch(() => void sent++);
  await rt.createCadence(definition, 'bench');
  await rt.publish('bench', 'bench');
  // Records arrive in batches of 500 (an import, an n8n run's items): one upsertRecords call each.
  const [, enrollMs] = await timeAsync(async () => {
    for (let i = 0; i < n; i += 500) {
      await rt.upsertRecords('Leads', Array.from({ length: Math.min(500, n - i) }, (_, k) => ({ id: `r${i + k}`, First_Name: `N${i + k}`, Email: `r${i + k}@example.com`, Lead_Status: 'Hot' })));
    }
  });
  clock.set(T0 + 3_600_000);
  const [, dispatchMs] = await timeAsync(() => rt.tick());
  await store.close();
  // Now every enrollment has sent e1 and waits two days for e2: the live bytes stored for it, tables and
  // indexes (VACUUM drops the space of rewritten rows, which later writes would reuse anyway).
  const db = new DatabaseSync(join(dir, `engine-${n}-${round}.db`));
  db.exec('VACUUM');
  const pragma = (name: string) => Number(Object.values(db.prepare(`PRAGMA ${name}`).get()!)[0]);
  const bytesPerWaiting = ((pragma('page_count') - pragma('freelist_count')) * pragma('page_size')) / n;
  db.close();
  return { enrollMs, dispatchMs, sent, bytesPerWaiting };
}

/**
 * The same rows written with plain SQL into the same schema (Cadenza's tables and indexes), in one
 * transaction per batch as the engine does: what SQLite itself costs for the work, so the ratio is
 * the engine's overhead (validation, criteria, the machine, rendering, the audit trail's content).
 */
async function rawRun(dir: string, n: number, round = 0) {
  const store = new SqliteStore(join(dir, `raw-${n}-${round}.db`));
  await store.migrate();
  const db = store.db;
  const insRec = db.prepare('INSERT INTO records (module, id, data, unsubscribed, updated_at) VALUES (?, ?, ?, 0, ?)');
  const insEnr = db.prepare("INSERT INTO enrollments (id, cadence_id, record_id, module, status, reason, rev, state, started_at, updated_at, due_at) VALUES (?, 'bench', ?, 'Leads', 'active', 'enrolled', 1, ?, ?, ?, ?)");
  const insAudit = db.prepare("INSERT INTO audit (at, cadence_id, enrollment_id, record_id, actor, event, reason, data) VALUES (?, 'bench', ?, ?, 'automation', ?, ?, ?)");
  const [, enrollMs] = time(() => {
    for (let i = 0; i < n; i++) {
      if (i % 500 === 0) db.exec('BEGIN IMMEDIATE');
      insRec.run('Leads', `r${i}`, JSON.stringify({ id: `r${i}`, First_Name: `N${i}`, Email: `r${i}@example.com`, Lead_Status: 'Hot' }), T0);
      insEnr.run(`bench:r${i}`, `r${i}`, benchState(i, 'e1', T0 + 3_600_000), T0, T0, T0 + 3_600_000);
      insAudit.run(T0, `bench:r${i}`, `r${i}`, 'enrolled', 'enrolled by automation (E2)', JSON.stringify({ version: 1, startAt: T0 }));
      if (i % 500 === 499 || i === n - 1) db.exec('COMMIT');
    }
  });
  // The claim a single writer needs: read the due rows (SQLite has one writer; nothing to lock). Then
  // what the engine writes per follow-up: the step (enrollment, outbox row, its audit row: one packed
  // row per step) and, once delivered, the verdict's step (outbox row done, enrollment, audit row).
  const claim = db.prepare('SELECT id FROM enrollments WHERE due_at <= ? ORDER BY due_at LIMIT 500');
  const upd = db.prepare('UPDATE enrollments SET state = ?, rev = rev + 1, updated_at = ?, due_at = ? WHERE id = ?');
  const out = db.prepare("INSERT INTO outbox (key, enrollment_id, cadence_id, node_id, record_id, channel, payload, status, attempts, available_at, created_at) VALUES (?, ?, 'bench', 'e1', ?, 'email', ?, 'pending', 1, ?, ?)");
  const insStep = db.prepare("INSERT INTO audit (at, cadence_id, enrollment_id, record_id, actor, event, reason, data, more) VALUES (?, 'bench', ?, ?, 'automation', ?, ?, ?, ?)");
  const ack = db.prepare(`UPDATE outbox SET status = 'done', done_at = ?, payload = json_remove(payload, ${SENT_DROPPED.map((p) => `'$.${p.join('.')}'`).join(', ')}) WHERE key = ?`);
  const now = T0 + 3_600_000;
  const [, dispatchMs] = time(() => {
    for (;;) {
      const due = claim.all(now) as { id: string }[];
      db.exec('BEGIN IMMEDIATE');
      for (const t of due) {
        const id = t.id;
        const rec = id.slice('bench:'.length);
        upd.run(benchState(Number(rec.slice(1)), 'e1', null), now, null, id);
        out.run(`${id}:1:e1`, id, rec, benchPayload(rec), now, now);
        insStep.run(now, id, rec, 'criteria', 'checked before acting (U6)', JSON.stringify({ exit: null, view: true }), JSON.stringify([{ event: 'queued', reason: 'email follow-up "e1" handed to its performer (D5)', data: { key: `${id}:1:e1` } }]));
      }
      db.exec('COMMIT');
      db.exec('BEGIN IMMEDIATE');
      for (const t of due) {
        const id = t.id;
        const rec = id.slice('bench:'.length);
        ack.run(now, `${id}:1:e1`);
        upd.run(benchState(Number(rec.slice(1)), 'e2', now + 2 * 86_400_000), now, now + 2 * 86_400_000, id);
        insStep.run(now, id, rec, 'executed', 'email follow-up "e1" delivered (D5)', JSON.stringify({ key: `${id}:1:e1` }), null);
      }
      db.exec('COMMIT');
      if (due.length < 500) break;
    }
  });
  await store.close();
  return { enrollMs, dispatchMs };
}

/** An enrollment's state as the engine stores it (same fields, same size; its columns' fields are not repeated in it). */
function benchState(i: number, position: string, dueAt: number | null): string {
  return JSON.stringify({ run: 1, position, wait: dueAt === null ? 'delivery' : 'due', dueAt, version: 1, enrolledBy: 'automation', executed: position === 'e1' ? 0 : 1, exitChecks: [],
    last: position === 'e1' && dueAt !== null ? null : { nodeId: 'e1', key: `bench:r${i}:1:e1`, channel: 'email', at: T0, completedAt: T0, outcomes: [], delivery: dueAt === null ? 'queued' : 'delivered' } });
}

/** A rendered email action of the engine's size: the record copy, bodies with three signed links, headers. */
function benchPayload(rec: string): string {
  const link = (kind: string) => `http://localhost:1880/t/${kind}/${Buffer.from(`{"k":"bench:${rec}:1:e1","r":"${rec}","m":"Leads"}`).toString('base64url')}.${'x'.repeat(43)}`;
  return JSON.stringify({ key: `bench:${rec}:1:e1`, idempotencyKey: `bench:${rec}:1:e1`, enrollmentId: `bench:${rec}`, cadenceId: 'bench', version: 1, recordId: rec, nodeId: 'e1', channel: 'email', module: 'Leads', attempt: 0,
    record: { id: rec, First_Name: 'N', Email: `${rec}@example.com`, Lead_Status: 'Hot' },
    email: { to: `${rec}@example.com`, from: 'cadenza@localhost', subject: 'Hi N', html: `<p>Hello N</p><img src="${link('open')}.gif" width="1" height="1" alt=""><p><a href="${link('unsubscribe')}">Unsubscribe</a></p>`,
      text: `Hello N\n\nUnsubscribe: ${link('unsubscribe')}`, messageId: `<cz.${rec}.xxxxxxxxxxxxxxxx@localhost>`, unsubscribeUrl: link('unsubscribe'),
      headers: { 'List-Unsubscribe': `<${link('unsubscribe')}>`, 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click', 'X-Cadenza-Key': `bench:${rec}:1:e1` } } });
}

async function claimCost(dir: string, waiting: number) {
  const store = new SqliteStore(join(dir, `claim-${waiting}.db`));
  await store.migrate();
  const db = store.db;
  const ins = db.prepare("INSERT INTO enrollments (id, cadence_id, record_id, module, status, rev, state, started_at, updated_at, due_at) VALUES (?, 'bench', ?, 'Leads', 'active', 1, ?, 0, 0, ?)");
  db.exec('BEGIN');
  for (let i = 0; i < waiting; i++) ins.run(`w${i}`, `w${i}`, `{"id":"w${i}"}`, T0 + 86_400_000 + (i % 1000) * 60_000); // waiting: due tomorrow or later
  for (let i = 0; i < 100; i++) ins.run(`due${i}`, `due${i}`, `{"id":"due${i}"}`, T0 - i); // due now
  db.exec('COMMIT');
  db.exec('ANALYZE');
  const rounds = 200;
  const again = db.prepare('UPDATE enrollments SET due_at = ? WHERE due_at = ?');
  const [, oursMs] = await timeAsync(async () => {
    for (let r = 0; r < rounds; r++) {
      // A batch that steps nothing leases what it claimed (until T0+1); made due again for the next round.
      const { due } = await store.stepDue(T0, 100, T0 + 1, undefined, async () => []);
      if (due.length !== 100) throw new Error(`claimed ${due.length}`);
      again.run(T0 - 1, T0 + 1);
    }
  });
  const raw = db.prepare('SELECT id FROM enrollments WHERE due_at <= ? ORDER BY due_at LIMIT 100');
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

const mb = (b: number) => `${(b / 1024 / 1024).toFixed(0)} MB`;

/** RSS of a separate process: the engine holding N waiting enrollments, or N setTimeout timers. */
function childMemory(mode: 'waiting' | 'timers', n: number): { rss: number } {
  const out = execFileSync(process.execPath, ['--expose-gc', join(__dirname, 'memory-child.js'), mode, String(n)], { encoding: 'utf8', maxBuffer: 1 << 20 });
  return JSON.parse(out);
}

/** The same view through the fast path and through jsonata (both cached), on the engine clock. */
async function fastPath(n: number) {
  const expr = 'Lead_Status = "Hot" and $daysSince(Created_Time) < 30 and Score > 50';
  const rec = { Lead_Status: 'Hot', Created_Time: '2026-02-20T00:00:00Z', Score: 70 };
  const fast = new Criteria();
  const slow = new Criteria(undefined, undefined, false);
  let hits = 0;
  const [, fastMs] = await timeAsync(async () => {
    for (let i = 0; i < n; i++) {
      const r = fast.test(expr, rec, T0);
      if (r === true || (r !== false && (await r))) hits++;
    }
  });
  if (hits !== n) throw new Error('the fast path answered differently');
  const [, jsonataMs] = await timeAsync(async () => {
    for (let i = 0; i < n; i++) await slow.test(expr, rec, T0);
  });
  if (fast.fastEvaluations !== n) throw new Error('the benchmark expression left the fast path');
  return { fastMs, jsonataMs };
}

/**
 * D6: a performer that takes 50 ms to answer (an SMTP relay, a CRM API). The dispatcher keeps
 * `concurrency` hand-offs in flight; the peer is the same engine handing off one at a time.
 */
async function slowPerformer(dir: string, n: number, concurrency: number) {
  const clock = new VirtualClock(T0);
  const store = new SqliteStore(join(dir, `slow-${concurrency}.db`));
  const rt = await new Runtime({ store, clock, secret: 'bench', concurrency }).init();
  let delivered = 0;
  rt.onDispatch(() => new Promise<void>((r) => setTimeout(() => (delivered++, r()), 50)));
  await rt.createCadence({ ...definition, enrollment: { mode: 'manual' }, nodes: [{ ...definition.nodes[0], delay: undefined }], edges: [{ from: 'trigger', to: 'e1' }] } as CadenceDefinition, 'bench');
  await rt.publish('bench', 'bench');
  await rt.enroll('bench', Array.from({ length: n }, (_, i) => ({ id: `r${i}`, First_Name: 'N', Email: `r${i}@example.com` })), 'bench');
  const [, ms] = await timeAsync(() => rt.tick());
  await store.close();
  if (delivered !== n) throw new Error(`slow performer: ${delivered} of ${n} delivered`);
  return ms;
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'cadenza-bench-'));
  try {
    const n8nBytes = await n8nWaitingExecutionBytes({ id: 'r1', First_Name: 'N1', Email: 'r1@example.com', Lead_Status: 'Hot' });
    if (process.env.CADENZA_BENCH_ONLY_PG !== '1') await sqliteBench(dir, n8nBytes);
    if (process.env.CADENZA_BENCH_SKIP_PG !== '1') await postgresBench(report, scale, n8nBytes);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  printTable();
}

async function sqliteBench(dir: string, n8n: number) {
  {
    // The engine and its raw peer take turns, ROUNDS times, and each reports its median: single runs
    // this short swing by up to 1.5x on a shared machine, the peer's as much as the engine's.
    const n = Math.round(3000 * scale);
    const rounds: { ours: Awaited<ReturnType<typeof engineRun>>; raw: Awaited<ReturnType<typeof rawRun>> }[] = [];
    for (let r = 0; r < ROUNDS; r++) rounds.push({ ours: await engineRun(dir, n, r), raw: await rawRun(dir, n, r) });
    const mid = (f: (x: (typeof rounds)[number]) => number) => median(rounds.map(f));
    const ours = { ...rounds[0].ours, enrollMs: mid((x) => x.ours.enrollMs), dispatchMs: mid((x) => x.ours.dispatchMs) };
    const raw = { enrollMs: mid((x) => x.raw.enrollMs), dispatchMs: mid((x) => x.raw.dispatchMs) };
    report(`SQLite: enrollments/s into a view, batches of 500 (${n}, median of ${ROUNDS})`, rate(n, ours.enrollMs), rate(n, raw.enrollMs) + ' raw INSERTs, same rows', raw.enrollMs / ours.enrollMs);
    report(`SQLite: due follow-ups dispatched/s (${ours.sent}, median of ${ROUNDS})`, rate(ours.sent, ours.dispatchMs), rate(n, raw.dispatchMs) + ' raw SQL, same rows', raw.dispatchMs / ours.dispatchMs);
    const slow = Math.round(160 * scale);
    const [parallel, serial] = [await slowPerformer(dir, slow, 16), await slowPerformer(dir, slow, 1)];
    report(`delivered/s, performer answering in 50 ms, 16 in flight (${slow})`, rate(slow, parallel), `${rate(slow, serial)} one at a time`, serial / parallel);
    await sqliteLatency(report, dir, scale);
    for (const waiting of [1_000, Math.round(1_000_000 * Math.min(scale, 1))]) {
      const c = await claimCost(dir, waiting);
      report(`claim 100 due among ${waiting.toLocaleString('en-US')} waiting`, `${c.oursMs.toFixed(3)} ms`, `${c.rawMs.toFixed(3)} ms raw SELECT`, c.oursMs / c.rawMs, 'x the raw cost');
    }
    const e = Math.round(20_000 * scale);
    const cr = await criteriaRun(e);
    report(`criteria evaluations/s, compiled once (${e})`, rate(e, cr.cachedMs), rate(e, cr.uncachedMs) + " compiling each time", cr.uncachedMs / cr.cachedMs);
    // Ten times as many: both sides are fast enough that a short run is mostly noise.
    const f = 10 * e;
    const fast = await fastPath(f);
    report(`view evaluations/s, fast path (${f})`, rate(f, fast.fastMs), `${rate(f, fast.jsonataMs)} compiled jsonata`, fast.jsonataMs / fast.fastMs);
    const million = Math.round(1_000_000 * Math.min(scale, 1));
    const memOurs = childMemory('waiting', million);
    const memPeer = childMemory('timers', million);
    report(`RSS with ${million.toLocaleString('en-US')} waiting enrollments`, `${mb(memOurs.rss)}`, `${mb(memPeer.rss)} with as many setTimeout timers`, memOurs.rss / memPeer.rss, 'x the peer');
    report('bytes per waiting enrollment (SQLite, + indexes)', `${Math.round(ours.bytesPerWaiting).toLocaleString('en-US')} B`,
      `${n8n.toLocaleString('en-US')} B n8n waiting execution`, ours.bytesPerWaiting / n8n, 'x the peer');
  }
}

function printTable() {
  const w = ['what', 'ours', 'peer', 'ratio'].map((k, i) => Math.max([66, 22, 40, 20][i], ...rows.map((r) => r[k as keyof (typeof rows)[number]].length)));
  const line = (c: string[]) => c.map((x, i) => x.padEnd(w[i])).join('  ');
  console.log(line(['what', 'Cadenza', 'peer (same run)', 'ratio']));
  console.log(line(w.map((x) => '-'.repeat(x))));
  for (const r of rows) console.log(line([r.what, r.ours, r.peer, r.ratio]));
  console.log('\nRatios above 1 mean Cadenza is faster (throughput) or costlier (claim, memory, CPU and rows per follow-up) than the peer.');
  console.log(`Machine: ${require('node:os').cpus().length} cores, ${Math.round(require('node:os').totalmem() / 2 ** 30)} GiB, Node ${process.version}.`);
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
