// S1: the production runtime on a virtual clock and an in-memory SQLite store. Same inputs, same
// timeline: ids, keys and times are all derived from the inputs and the virtual clock.
import { durationMs } from '../model/duration';
import { CadenzaError } from '../model/errors';
import type { CadenceDefinition, Template } from '../model/types';
import { VirtualClock } from '../runtime/clock';
import { Runtime, type DispatchedAction } from '../runtime/runtime';
import { loadSqlite } from '../store/sqlite';

export interface ScriptedOutcome {
  record: string;
  followUp: string;
  outcome: string;
  /** How long after the follow-up ran the outcome arrives ("2h"); immediately when absent. */
  after?: string;
  message?: { subject?: string; headers?: Record<string, string> };
}

export interface ScriptedChange {
  record: string;
  /** When, from the start of the simulation ("5d"). */
  after: string;
  set?: Record<string, unknown>;
  event?: 'converted' | 'unsubscribed';
}

export interface SimulationInput {
  definition: CadenceDefinition;
  records: Record<string, unknown>[];
  outcomes?: ScriptedOutcome[];
  changes?: ScriptedChange[];
  /** ISO start instant; defaults to Monday 2026-01-05 09:00 UTC so timelines are stable. */
  start?: string;
  until?: string;
  templates?: Record<string, Template>;
}

export interface TimelineEntry {
  at: string;
  record: string;
  followUp: string;
  step: string;
  channel: string;
  to?: string;
  subject?: string;
  key: string;
}

export interface SimulationResult {
  cadence: string;
  name: string;
  start: string;
  until: string;
  timeline: TimelineEntry[];
  events: { at: string; record: string; what: string }[];
  endings: { record: string; status: string; reason: string; position: string | null; enrolledAt?: string }[];
  skipped: { record: string; reason: string; rule?: string }[];
}

interface Pending {
  at: number;
  seq: number;
  run: () => Promise<void>;
}

const iso = (t: number) => new Date(t).toISOString();

export async function simulate(input: SimulationInput): Promise<SimulationResult> {
  if (!input || typeof input !== 'object') throw new CadenzaError('invalid_simulation', 'S1', 'simulation input must be an object');
  if (!Array.isArray(input.records)) throw new CadenzaError('invalid_simulation', 'S1', 'records must be a list of records');
  const start = input.start ? Date.parse(input.start) : Date.parse('2026-01-05T09:00:00Z');
  if (Number.isNaN(start)) throw new CadenzaError('invalid_simulation', 'S1', `start "${input.start}" is not an ISO date`);
  const until = start + durationMs(input.until ?? '30d');
  const clock = new VirtualClock(start);
  const store = new (loadSqlite().SqliteStore)(':memory:');
  const rt = await new Runtime({ store, clock, secret: 'simulation', templates: input.templates, timezone: input.definition?.timezone ?? 'UTC' }).init();
  const result: SimulationResult = { cadence: input.definition?.id, name: input.definition?.name, start: iso(start), until: iso(until), timeline: [], events: [], endings: [], skipped: [] };
  const queue: Pending[] = [];
  let seq = 0;
  const later = (at: number, run: () => Promise<void>) => queue.push({ at, seq: seq++, run });

  try {
    const def = input.definition;
    rt.onDispatch((a: DispatchedAction) => {
      const step = def.nodes.find((n) => n.id === a.nodeId)?.name ?? a.nodeId;
      result.timeline.push({ at: iso(clock.now()), record: a.recordId, followUp: a.nodeId, step, channel: a.channel, to: a.email?.to ?? a.activity?.assignee ?? a.whatsapp?.to, subject: a.email?.subject ?? a.activity?.subject, key: a.key });
      for (const o of input.outcomes ?? []) {
        if (o.record !== a.recordId || (o.followUp !== a.nodeId && o.followUp !== step)) continue;
        later(clock.now() + (o.after ? durationMs(o.after) : 0), async () => {
          result.events.push({ at: iso(clock.now()), record: o.record, what: `${o.outcome} on ${o.followUp}` });
          await rt.recordOutcome({ key: a.key, outcome: o.outcome, message: o.message }, 'simulator');
        });
      }
    });
    for (const c of input.changes ?? []) {
      later(start + durationMs(c.after), async () => {
        const module = def.module;
        const cur = await store.getRecord(module, c.record);
        if (!cur) return;
        result.events.push({ at: iso(clock.now()), record: c.record, what: c.event ?? `changed ${JSON.stringify(c.set)}` });
        if (c.event === 'converted') await rt.convertRecord(module, c.record, 'simulator');
        else if (c.event === 'unsubscribed') await rt.unsubscribe(module, c.record, 'simulator');
        else await rt.upsertRecord(module, { ...cur.data, ...c.set }, 'simulator');
      });
    }
    await rt.createCadence(def, 'simulator');
    if (def.enrollment.mode === 'view') for (const r of input.records) await rt.upsertRecord(def.module, r);
    await rt.publish(def.id, 'simulator');
    if (def.enrollment.mode === 'manual') {
      for (const a of await rt.enroll(def.id, input.records, 'simulator')) if (a.status === 'skipped') result.skipped.push({ record: a.recordId, reason: a.reason ?? '', rule: a.rule });
    }

    for (;;) {
      await rt.tick();
      queue.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const nextTimer = await store.nextDue();
      const next = Math.min(nextTimer ?? Infinity, queue[0]?.at ?? Infinity);
      if (next > until) break;
      clock.set(Math.max(next, clock.now()));
      while (queue.length && queue[0].at <= clock.now()) await queue.shift()!.run();
    }
    clock.set(Math.max(until, clock.now()));

    const enrolled = new Set<string>();
    for (const { enrollment: e } of await store.listEnrollments({ cadenceId: def.id, limit: 1_000_000 })) {
      enrolled.add(e.recordId);
      const reason = e.status === 'active' ? (e.wait === 'completion' ? 'waiting for the previous task or call to be completed' : e.wait === 'outcome' ? 'waiting for an outcome' : 'scheduled') : e.reason;
      result.endings.push({ record: e.recordId, status: e.status, reason, position: e.position, enrolledAt: iso(e.startedAt) });
    }
    if (def.enrollment.mode === 'view') {
      for (const r of input.records) {
        const rec = await store.getRecord(def.module, String(r.id));
        if (!rec || enrolled.has(rec.id)) continue;
        const exit = def.unenroll?.criteria ? await rt.criteria.test(def.unenroll.criteria, rec.data, clock.now()) : false;
        const view = await rt.criteria.test(def.enrollment.view!, rec.data, clock.now());
        result.skipped.push(view && exit ? { record: rec.id, reason: 'matches the view and the un-enrollment criteria', rule: 'E3' } : { record: rec.id, reason: 'never matched the view', rule: 'E2' });
      }
    }
    return result;
  } finally {
    await store.close();
  }
}

/** The plain-text timeline the CLI prints. */
export function formatSimulation(r: SimulationResult): string {
  const lines = [`Cadence "${r.name}" (${r.cadence}): simulated ${r.start} .. ${r.until}`, '', 'Timeline'];
  const rows = [
    ...r.timeline.map((t) => ({ at: t.at + '~1', text: `${t.record.padEnd(10)} ${t.channel.padEnd(8)} ${t.step.padEnd(16)} ${t.to ?? ''}${t.subject ? `  "${t.subject}"` : ''}` })),
    ...r.events.map((e) => ({ at: e.at + '~0', text: `${e.record.padEnd(10)} ${'<-'.padEnd(8)} ${e.what}` })),
  ].sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  for (const row of rows) lines.push(`  ${row.at.replace('T', ' ').slice(0, 16)}  ${row.text}`);
  if (!rows.length) lines.push('  (nothing sent)');
  lines.push('', 'Endings');
  for (const e of r.endings) lines.push(`  ${e.record.padEnd(10)} ${e.status.padEnd(10)} ${e.reason}${e.status === 'active' && e.position ? ` (at ${e.position})` : ''}`);
  for (const s of r.skipped) lines.push(`  ${s.record.padEnd(10)} ${'skipped'.padEnd(10)} ${s.reason}${s.rule ? ` (${s.rule})` : ''}`);
  return lines.join('\n');
}
