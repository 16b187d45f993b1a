// A runtime on a real SQLite file in a fresh temp folder, a virtual clock, and a dispatch log.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtualClock } from '../../engine/runtime/clock';
import { Runtime, type DispatchedAction, type RuntimeOptions } from '../../engine/runtime/runtime';
import { SqliteStore } from '../../engine/store/sqlite/sqlite-store';
import type { CadenceDefinition } from '../../engine/model/types';

export const T0 = Date.parse('2026-03-02T08:00:00Z'); // a Monday
export const MIN = 60_000;
export const HOUR = 3_600_000;
export const DAY = 86_400_000;

export interface Harness {
  rt: Runtime;
  clock: VirtualClock;
  store: SqliteStore;
  sent: (DispatchedAction & { at: number })[];
  dir: string;
  /** Moves virtual time forward, firing everything due on the way. */
  advance(ms: number): Promise<void>;
  close(): Promise<void>;
}

export async function harness(opts: Partial<RuntimeOptions> = {}, start = T0): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'cadenza-test-'));
  const store = new SqliteStore(join(dir, 'cadenza.db'));
  const clock = new VirtualClock(start);
  const rt = await new Runtime({ store, clock, secret: 'test-secret', ...opts }).init();
  const sent: (DispatchedAction & { at: number })[] = [];
  rt.onDispatch((a) => {
    sent.push({ ...a, at: clock.now() });
  });
  return {
    rt, clock, store, sent, dir,
    advance: (ms) => rt.runUntil(clock.now() + ms, clock),
    close: async () => {
      await rt.stop();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
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
