// A runtime on a real SQLite file in a fresh temp folder, a virtual clock, and a dispatch log.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtualClock } from '../../engine/runtime/clock';
import { Runtime, type DispatchedAction, type RuntimeOptions } from '../../engine/runtime/runtime';
import { SqliteStore } from '../../engine/store/sqlite/sqlite-store';
import { PostgresStore } from '../../engine/store/postgres/postgres-store';
import type { Store } from '../../engine/store/store';
import { inject } from 'vitest';
import pg from 'pg';
import type { CadenceDefinition } from '../../engine/model/types';

export const T0 = Date.parse('2026-03-02T08:00:00Z'); // a Monday
export const MIN = 60_000;
export const HOUR = 3_600_000;
export const DAY = 86_400_000;

/** Which store the suite runs on: the project sets CADENZA_TEST_STORE (one suite, two stores). */
export const STORE_KIND = process.env.CADENZA_TEST_STORE === 'postgres' ? 'postgres' : 'sqlite';

export interface Harness {
  rt: Runtime;
  clock: VirtualClock;
  store: Store;
  /** Another connection to the same database, as a second process or a restart would open. */
  openStore(): Store;
  /** Every stored row, to prove a refused input changed nothing. */
  snapshot(): Promise<Record<string, unknown[]>>;
  sent: (DispatchedAction & { at: number })[];
  dir: string;
  /** The engine restarted with other options on the same store and clock (a changed setting, a redeploy). */
  restart(options: Partial<RuntimeOptions>): Promise<void>;
  /** Moves virtual time forward, firing everything due on the way. */
  advance(ms: number): Promise<void>;
  close(): Promise<void>;
}

let databases = 0;
const TABLES = ['cadences', 'cadence_versions', 'records', 'enrollments', 'timers', 'outbox', 'audit', 'counters'];

/** A fresh database on the Postgres server the global setup provides (one per harness or scenario). */
export async function freshPostgres(): Promise<string> {
  const admin = inject('pgUrl');
  const name = `cz_${process.pid}_${Date.now().toString(36)}_${databases++}`;
  const c = new pg.Client({ connectionString: admin });
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return url.toString();
}

/** The store a host is configured with (a Node-RED config node, an n8n credential): a file in `dir`, or a fresh database. */
export async function hostStoreSpec(dir: string): Promise<string> {
  return STORE_KIND === 'postgres' ? freshPostgres() : join(dir, 'cadenza.db');
}

export async function harness(opts: Partial<RuntimeOptions> = {}, startAt = T0): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'cadenza-test-'));
  const pgUrl = STORE_KIND === 'postgres' ? await freshPostgres() : undefined;
  const openStore = (): Store => (pgUrl ? new PostgresStore(pgUrl, { max: 4 }) : new SqliteStore(join(dir, 'cadenza.db')));
  const store = openStore();
  const clock = new VirtualClock(startAt);
  const sent: (DispatchedAction & { at: number })[] = [];
  const start = async (options: Partial<RuntimeOptions>) => {
    const rt = await new Runtime({ store, clock, secret: 'test-secret', ...options }).init();
    rt.onDispatch((a) => {
      sent.push({ ...a, at: clock.now() });
    });
    return rt;
  };
  const rt = await start(opts);
  const snapshot = async () => {
    if (store instanceof SqliteStore) return Object.fromEntries(TABLES.map((t) => [t, store.db.prepare(`SELECT * FROM ${t} ORDER BY 1`).all()]));
    const p = (store as PostgresStore).pool;
    return Object.fromEntries(await Promise.all(TABLES.map(async (t) => [t, (await p.query(`SELECT * FROM ${t} ORDER BY 1`)).rows])));
  };
  const h: Harness = {
    rt, clock, store, sent, dir, openStore, snapshot,
    advance: (ms) => h.rt.runUntil(clock.now() + ms, clock),
    restart: async (options) => {
      await h.rt.stop();
      h.rt = await start(options);
    },
    close: async () => {
      await h.rt.stop();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return h;
}

/** A small email → branch → email/call definition, overridable per test. */
export function emailCadence(over: Partial<CadenceDefinition> = {}): CadenceDefinition {
  return {
    id: 'c1', name: 'Sales-ready', module: 'Leads', timezone: 'UTC',
    enrollment: { mode: 'manual' },
    nodes: [
      { id: 'e1', type: 'followUp', channel: 'email', template: { subject: 'Hi {{First_Name}}', body: '<p>Hello {{First_Name}}</p>' } },
      { id: 'e2', type: 'followUp', channel: 'email', delay: { amount: 2, unit: 'days' }, template: { subject: 'Following up', body: 'Again' } },
    ],
    edges: [{ from: 'trigger', to: 'e1' }, { from: 'e1', to: 'e2' }],
    ...over,
  };
}

export async function published(h: Harness, def: CadenceDefinition): Promise<void> {
  await h.rt.createCadence(def, 'admin');
  await h.rt.publish(def.id, 'admin');
}

export const lead = (id: string, over: Record<string, unknown> = {}) => ({ id, First_Name: `Ann${id}`, Email: `${id}@example.com`, Owner: 'u1', ...over });

/** Which follow-ups a record got, in order. */
export const sentTo = (h: Harness, recordId: string) => h.sent.filter((a) => a.recordId === recordId).map((a) => a.nodeId);
export const iso = (t: number) => new Date(t).toISOString();
