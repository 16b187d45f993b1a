// Latency from a record upsert to the hand-off (issue 15: "a welcome email while the visitor is still
// on the page"), p50/p99, on the real clock with the scheduler's own loop (`rt.start`):
// - SQLite, one process: the upsert and the loop share the runtime;
// - PostgreSQL, two processes: this one upserts through a runtime that never runs the loop, a child
//   (latency-child.ts) runs `rt.start()` and reports each hand-off over IPC.
// Measured from outside (before the upsert, to the handler's receipt), so it does not depend on how the
// loop is woken: a commit that makes the welcome due wakes it (in process, and through LISTEN/NOTIFY
// across processes); with the poll alone, a sample would wait for the next pass, up to a second.
import { fork } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Runtime } from '../../engine/runtime/runtime';
import { PostgresStore } from '../../engine/store/postgres/postgres-store';
import { SqliteStore } from '../../engine/store/sqlite/sqlite-store';
import type { CadenceDefinition } from '../../engine/model/types';

type Report = (what: string, ours: string, peer: string, ratio: number, unit?: string) => void;

/** The scheduler's poll interval in production (`rt.start()` default): the peer the latency is set against. */
export const POLL_MS = 1000;

/** A web form's cadence: a lead that is "New" gets the welcome email at once (no delay on the first step). */
export const welcome: CadenceDefinition = {
  id: 'welcome', name: 'Welcome', module: 'Leads', timezone: 'UTC', enrollment: { mode: 'view', view: 'Lead_Status = "New"' },
  nodes: [{ id: 'hello', type: 'followUp', channel: 'email', template: { subject: 'Welcome {{First_Name}}', body: '<p>Welcome, {{First_Name}}.</p>' } }],
  edges: [{ from: 'trigger', to: 'hello' }],
};

export const visitor = (id: string) => ({ id, First_Name: 'Visitor', Email: `${id}@x.example`, Lead_Status: 'New' });

/**
 * How many sequential samples: ~200 at scale 1, but within a time budget, since while the loop polls
 * each sample waits up to a poll interval (the row names the count it got).
 */
function plan(scale: number) {
  return { samples: Math.max(10, Math.round(200 * scale)), budgetMs: Math.max(10_000, 60_000 * scale) };
}

/**
 * A short random gap between samples, as visitors arrive. While the loop polls, a sample sent right
 * after a hand-off lands just after a pass, so it waits nearly the whole interval: the figure is then
 * close to the worst case, which is what a visitor on the page would see at that phase.
 */
const gap = () => new Promise((r) => setTimeout(r, Math.random() * 20));

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** Runs samples: `send(id)` upserts; `handedOff(id)` resolves with the hand-off's receipt time. */
async function sample(scale: number, send: (id: string) => Promise<unknown>, handedOff: (id: string) => Promise<number>) {
  const { samples, budgetMs } = plan(scale);
  const ms: number[] = [];
  const start = performance.now();
  for (let i = 0; i < samples && performance.now() - start < budgetMs; i++) {
    const id = `v${i}`;
    const got = handedOff(id);
    const t = performance.now();
    await send(id);
    ms.push((await got) - t);
    await gap();
  }
  ms.sort((a, b) => a - b);
  return { n: ms.length, p50: percentile(ms, 50), p99: percentile(ms, 99) };
}

/** Hand-offs by record id, awaited by whoever asks first (the hand-off or the sampler). */
function arrivals() {
  const seen = new Map<string, number>();
  const waiting = new Map<string, (t: number) => void>();
  return {
    arrived(id: string, t: number) {
      const w = waiting.get(id);
      if (w) (waiting.delete(id), w(t));
      else seen.set(id, t);
    },
    handedOff(id: string): Promise<number> {
      const t = seen.get(id);
      if (t !== undefined) return Promise.resolve(t);
      return new Promise((resolve) => waiting.set(id, resolve));
    },
  };
}

const ms = (x: number) => (x < 10 ? x.toFixed(1) : Math.round(x).toLocaleString('en-US'));
function row(report: Report, what: string, r: { n: number; p50: number; p99: number }) {
  report(`${what}, p50 / p99 (${r.n})`, `${ms(r.p50)} / ${ms(r.p99)} ms`, `goal 20 / 100 ms; poll ${POLL_MS.toLocaleString('en-US')} ms`, r.p50 / POLL_MS, 'x the poll (p50)');
}

export async function sqliteLatency(report: Report, dir: string, scale: number): Promise<void> {
  const rt = await new Runtime({ store: new SqliteStore(join(dir, 'latency.db')), secret: 'bench' }).init();
  await rt.createCadence(welcome, 'bench');
  await rt.publish('welcome', 'bench');
  const a = arrivals();
  rt.onDispatch((action) => void a.arrived(action.recordId, performance.now()));
  rt.start(POLL_MS);
  try {
    row(report, 'SQLite: upsert -> hand-off, one process', await sample(scale, (id) => rt.upsertRecord('Leads', visitor(id)), a.handedOff));
  } finally {
    await rt.stop();
    await rt.store.close();
  }
}

export async function postgresLatency(report: Report, url: string, scale: number): Promise<void> {
  const rt = await new Runtime({ store: new PostgresStore(url, { max: 2 }), secret: 'bench' }).init();
  await rt.createCadence(welcome, 'bench');
  await rt.publish('welcome', 'bench');
  // The child runs on this Node (npm's pinned 24) from the compiled bench folder, like memory-child.
  const child = fork(join(__dirname, 'latency-child.js'), [url, String(POLL_MS)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const a = arrivals();
  try {
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`latency child exited (${code}) before it was ready`)));
      child.on('message', (m: { ready?: true; recordId?: string }) => {
        if (m.ready) resolve();
        // Timed on receipt here (one clock for both ends); the IPC hop is part of the figure.
        else if (m.recordId) a.arrived(m.recordId, performance.now());
      });
    });
    row(report, 'Postgres: upsert -> hand-off, 2 processes', await sample(scale, (id) => rt.upsertRecord('Leads', visitor(id)), a.handedOff));
  } finally {
    child.kill('SIGTERM');
    await exited;
    await rt.store.close();
  }
}
