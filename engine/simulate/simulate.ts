// S1: the production runtime on a virtual clock and an in-memory SQLite store. Same inputs, same
// timeline: ids, keys and times are all derived from the inputs and the virtual clock.
import { durationMs, parseDelay } from '../model/duration';
import { CadenzaError } from '../model/errors';
import type { CadenceDefinition, Template } from '../model/types';
import { addDelay } from '../time/time';
import { checkTimeline, normalise, recordIdOf, type ScriptedChange, type ScriptedOutcome, type TimelineItem } from './timeline';
import { VirtualClock } from '../runtime/clock';
import { Runtime, type RuntimeOptions, type DispatchedAction } from '../runtime/runtime';
import type { Store } from '../store/store';
import { loadSqlite } from '../store/lazy-sqlite';

export interface SimulationInput {
  definition: CadenceDefinition;
  records: Record<string, unknown>[];
  /** What happens, when: arrivals, changes, outcomes, replies, re-enrollment, publish, (de)activation. */
  timeline?: TimelineItem[];
  /** Older forms, still read: outcomes count from their follow-up, changes from the start. */
  outcomes?: ScriptedOutcome[];
  changes?: ScriptedChange[];
  /** ISO start instant; defaults to Monday 2026-01-05 09:00 UTC so timelines are stable. */
  start?: string;
  until?: string;
  templates?: Record<string, Template>;
  /** The engine's own settings the run is under, as the host or `cadenza serve` has them: contact limits (F13), users (F6, F7), approved WhatsApp templates (C4). */
  engine?: Pick<RuntimeOptions, 'fatigue' | 'users' | 'whatsappTemplates'>;
}

export interface TimelineEntry {
  /** Order among sends and scripted events (the printed table is sorted by it). */
  n: number;
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
  /** The scripted inputs as they happened (`item` is their index in the timeline; -1 for a step that failed). */
  events: { n: number; at: string; record: string; what: string; item: number }[];
  /** Scripted items whose moment never came before `until`, and why. */
  notReached: { item: number; record?: string; what: string; reason: string }[];
  endings: { record: string; status: string; reason: string; position: string | null; enrolledAt?: string }[];
  skipped: { record: string; reason: string; rule?: string }[];
}

interface Pending {
  at: number;
  seq: number;
  item: number;
}

const iso = (t: number) => new Date(t).toISOString();

export async function simulate(input: SimulationInput): Promise<SimulationResult> {
  if (!input || typeof input !== 'object') throw new CadenzaError('invalid_simulation', 'S1', 'simulation input must be an object');
  if (!Array.isArray(input.records)) throw new CadenzaError('invalid_simulation', 'S1', 'records must be a list of records');
  const def = input.definition;
  if (!def || typeof def !== 'object' || !Array.isArray(def.nodes)) throw new CadenzaError('invalid_simulation', 'S1', 'definition must be a cadence definition');
  const start = input.start ? Date.parse(input.start) : Date.parse('2026-01-05T09:00:00Z');
  if (Number.isNaN(start)) throw new CadenzaError('invalid_simulation', 'S1', `start "${input.start}" is not an ISO date`);
  let untilMs: number;
  try {
    untilMs = durationMs(input.until ?? '30d');
  } catch (e) {
    throw new CadenzaError('invalid_simulation', 'S1', `until: ${(e as Error).message}`);
  }
  const until = start + untilMs;
  const items = normalise(input.timeline, input.outcomes, input.changes) as TimelineItem[];
  const known = new Set(input.records.map((r) => recordIdOf(r as TimelineItem['record'])).filter((x): x is string => !!x));
  // D6's retry action: checked by presence so the simulator runs on a runtime with or without it.
  const canRetry = typeof (Runtime.prototype as unknown as { retry?: unknown }).retry === 'function';
  const problems = checkTimeline(items, def, known, start, canRetry);
  if (problems.length) throw new CadenzaError('invalid_simulation', 'S1', `the timeline has ${problems.length} problem${problems.length > 1 ? 's' : ''}`, problems);

  const clock = new VirtualClock(start);
  const store = new (loadSqlite().SqliteStore)(':memory:');
  const zone = def.timezone ?? 'UTC';
  const rt = await new Runtime({ store, clock, secret: 'simulation', templates: input.templates, timezone: zone, ...input.engine }).init();
  const result: SimulationResult = { cadence: def.id, name: def.name, start: iso(start), until: iso(until), timeline: [], events: [], notReached: [], endings: [], skipped: [] };
  const queue: Pending[] = [];
  let seq = 0;
  let n = 0; // one order for sends and inputs, so the printed table and --json list them alike
  const later = (at: number, item: number) => queue.push({ at, seq: seq++, item });
  // `after` counts like a follow-up delay: business days skip weekends in the cadence's zone.
  const when = (from: number, after: string) => addDelay(from, parseDelay(after), zone);
  const names = new Map<string, string>();
  const learn = (d: CadenceDefinition) => d.nodes.forEach((x) => names.set(x.id, x.name ?? x.id));
  learn(def);
  const keys = new Map<string, string>(); // record|followUp -> key of its latest dispatch
  const waiting = new Set<number>(); // items anchored on a moment that has not come yet

  try {
    items.forEach((it, i) => {
      if (it.at !== undefined) later(Date.parse(it.at), i);
      else if (it.from === 'start') later(when(start, it.after!), i);
      else waiting.add(i);
    });
    rt.onDispatch((a: DispatchedAction) => {
      result.timeline.push({ n: n++, at: iso(clock.now()), record: a.recordId, followUp: a.nodeId, step: names.get(a.nodeId) ?? a.nodeId, channel: a.channel, to: a.email?.to ?? a.activity?.assignee ?? a.whatsapp?.to, subject: a.email?.subject ?? a.activity?.subject, key: a.key });
      keys.set(`${a.recordId}|${a.nodeId}`, a.key);
      for (const i of waiting) {
        const it = items[i];
        if (it.from === a.nodeId && recordIdOf(it.record) === a.recordId) {
          waiting.delete(i);
          later(when(clock.now(), it.after!), i);
        }
      }
    });
    // A step that cannot run (F9) is part of what the week shows: print it where it happens.
    const statusOf = new Map<string, string>();
    rt.subscribe((ev) => {
      const e = ev.type === 'changed' ? ev.enrollment : undefined;
      if (!e || e.cadenceId !== def.id) return;
      if (e.status === 'failed' && statusOf.get(e.recordId) !== 'failed') result.events.push({ n: n++, at: iso(clock.now()), record: e.recordId, what: `failed: ${e.reason}`, item: -1 });
      statusOf.set(e.recordId, e.status);
    });
    const enrollmentAnchors = async () => {
      for (const i of waiting) {
        const it = items[i];
        if (it.from !== 'enrollment') continue;
        const e = await store.findEnrollment(def.id, recordIdOf(it.record)!);
        if (!e) continue;
        waiting.delete(i);
        later(Math.max(clock.now(), when(e.enrollment.startedAt, it.after!)), i);
      }
    };

    const fire = async (i: number): Promise<void> => {
      const it = items[i];
      const id = recordIdOf(it.record);
      const note = (what: string) => result.events.push({ n: n++, at: iso(clock.now()), record: id ?? '(cadence)', what, item: i });
      const current = async () => {
        const cur = id ? await store.getRecord(def.module, id) : undefined;
        if (!cur) throw new CadenzaError('invalid_simulation', 'S1', `timeline[${i}].record: record "${id}" has not arrived by ${iso(clock.now())}; script its "arrive" earlier`);
        return cur;
      };
      try {
        await act(it, id, note, current);
      } catch (e) {
        if (e instanceof CadenzaError && e.code !== 'invalid_simulation') note(`${it.do} refused: ${e.message} (${e.rule})`);
        else throw e;
      }
    };
    const act = async (it: TimelineItem, id: string | undefined, note: (what: string) => void, current: () => Promise<{ data: Record<string, unknown> }>) => {
      const who = 'simulator';
      switch (it.do) {
        case 'arrive': {
          const answers = await rt.upsertRecord(def.module, it.record, who);
          const mine = answers.find((x) => x.status === 'enrolled');
          note(`arrives${mine ? ', enrolled' : ''}`);
          return;
        }
        case 'change': {
          const cur = await current();
          await rt.upsertRecord(def.module, { ...cur.data, ...it.set }, who);
          return note(`changed ${JSON.stringify(it.set)}`);
        }
        case 'converted':
          await current();
          await rt.convertRecord(def.module, id!, who);
          return note('converted');
        case 'unsubscribed':
          await current();
          await rt.unsubscribe(def.module, id!, who);
          return note('unsubscribed');
        case 'outcome':
        case 'reply': {
          const key = keys.get(`${id}|${it.followUp}`);
          const asked = it.do === 'reply' ? 'replied' : it.outcome!;
          if (!key) return note(`${asked} on ${it.followUp}: not recorded, ${it.followUp} has not run for ${id}`);
          const r = await rt.recordOutcome({ key, outcome: asked, message: it.message ?? (it.do === 'reply' ? {} : undefined) }, who);
          const what = r.outcome === 'auto-replied' ? `auto-reply (out-of-office) to ${it.followUp}` : `${r.outcome} on ${it.followUp}`;
          return note(r.applied ? what : `${what} (recorded; the enrollment had moved on: D3)`);
        }
        case 'enroll': {
          const data = typeof it.record === 'object' ? it.record : (await current()).data;
          if (typeof it.record === 'object') await rt.upsertRecord(def.module, it.record, who);
          const [a] = await rt.enroll(def.id, [data], who);
          return note(a.status === 'enrolled' ? 'enrolled by hand' : `enroll skipped: ${a.reason}${a.rule ? ` (${a.rule})` : ''}`);
        }
        case 'unenroll':
          await rt.unenroll(def.id, id!, who);
          return note('un-enrolled by hand');
        case 'reenroll': {
          const a = await rt.reenroll(def.id, id!, it.mode!, who);
          return note(a.status === 'enrolled' ? `re-enrolled (${it.mode})` : `re-enroll (${it.mode}) skipped: ${a.reason}${a.rule ? ` (${a.rule})` : ''}`);
        }
        case 'retry': {
          const a = await rt.retry(def.id, id!, who);
          return note(a.status === 'enrolled' ? 'retried the failed step (same key)' : `retry skipped: ${a.reason}${a.rule ? ` (${a.rule})` : ''}`);
        }
        case 'publish': {
          await rt.updateDraft(def.id, it.definition, who);
          const r = await rt.publish(def.id, who);
          learn(it.definition!);
          return note(`published version ${r.version}: ${r.stopped} stopped, ${r.enrolled} enrolled`);
        }
        case 'deactivate':
          await rt.deactivate(def.id, who);
          return note('cadence deactivated');
        case 'activate': {
          const r = await rt.activate(def.id, who);
          return note(`cadence activated: ${r.enrolled} enrolled`);
        }
      }
    };

    await rt.createCadence(def, 'simulator');
    if (def.enrollment.mode === 'view') for (const r of input.records) await rt.upsertRecord(def.module, r);
    await rt.publish(def.id, 'simulator');
    if (def.enrollment.mode === 'manual') {
      for (const a of await rt.enroll(def.id, input.records, 'simulator')) if (a.status === 'skipped') result.skipped.push({ record: a.recordId, reason: a.reason ?? '', rule: a.rule });
    }

    // F13: a follow-up held by a contact limit shows where it was held, with the limit and until when.
    // Read on from the last stored row seen (a cursor, not a count: the audit is read a page at a time).
    let audited = 0;
    const held = async () => {
      if (typeof def.fatigue !== 'object') return;
      for (;;) {
        const page = await rt.auditPage({ cadenceId: def.id }, undefined, { cursor: `after:${audited}` });
        for (const r of page.log) {
          if (r.event === 'deferred' && r.reason.includes('(F13)')) result.events.push({ n: n++, at: iso(r.at), record: r.recordId ?? '(cadence)', what: `held: ${r.reason} until ${String((r.data as { until?: string } | null)?.until ?? '').slice(0, 16).replace('T', ' ')}`, item: -1 });
          audited = Math.max(audited, r.seq ?? 0);
        }
        if (!page.next) return;
      }
    };
    for (;;) {
      await rt.tick();
      await held();
      await enrollmentAnchors();
      queue.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const nextTimer = await store.nextDue();
      const next = Math.min(nextTimer ?? Infinity, queue[0]?.at ?? Infinity);
      if (next > until) break;
      clock.set(Math.max(next, clock.now()));
      while (queue.length && queue[0].at <= clock.now()) {
        await fire(queue.shift()!.item);
        await enrollmentAnchors();
      }
    }
    clock.set(Math.max(until, clock.now()));
    await conclude(result, { input, def, store, rt, now: clock.now(), known, items, waiting, queue });
    return result;
  } finally {
    await store.close();
  }
}

/** Endings, skipped records and the scripted items that never came, as of the end of the simulation. */
async function conclude(result: SimulationResult, x: { input: SimulationInput; def: CadenceDefinition; store: Store; rt: Runtime; now: number; known: Set<string>; items: TimelineItem[]; waiting: Set<number>; queue: Pending[] }) {
  const { def, store, rt, now, items } = x;
  const enrolled = new Set<string>();
  for (const { enrollment: e } of await store.listEnrollments({ cadenceId: def.id, limit: 1_000_000 })) {
    enrolled.add(e.recordId);
    const reason = e.status === 'active' ? (e.wait === 'completion' ? 'waiting for the previous task or call to be completed' : e.wait === 'outcome' ? 'waiting for an outcome' : 'scheduled') : e.reason;
    result.endings.push({ record: e.recordId, status: e.status, reason, position: e.position, enrolledAt: iso(e.startedAt) });
  }
  if (def.enrollment.mode === 'view') {
    const arrived = items.filter((it) => it.do === 'arrive').map((it) => recordIdOf(it.record)!);
    for (const id of new Set([...x.known, ...arrived])) {
      const rec = await store.getRecord(def.module, id);
      if (!rec || enrolled.has(rec.id)) continue;
      const exit = def.unenroll?.criteria ? await rt.criteria.test(def.unenroll.criteria, rec.data, now) : false;
      const view = await rt.criteria.test(def.enrollment.view!, rec.data, now);
      result.skipped.push(view && exit ? { record: rec.id, reason: 'matches the view and the un-enrollment criteria', rule: 'E3' } : { record: rec.id, reason: 'never matched the view', rule: 'E2' });
    }
  }
  const describe = (it: TimelineItem) => `${it.do}${it.outcome ? ` ${it.outcome}` : ''}${it.followUp ? ` on ${it.followUp}` : ''}`;
  for (const i of x.waiting) {
    const it = items[i];
    const id = recordIdOf(it.record);
    result.notReached.push({ item: i, record: id, what: describe(it), reason: it.from === 'enrollment' ? `${id} was never enrolled` : `${it.from} never ran for ${id}` });
  }
  for (const p of [...x.queue].sort((a, b) => a.at - b.at || a.seq - b.seq)) {
    const it = items[p.item];
    result.notReached.push({ item: p.item, record: recordIdOf(it.record), what: describe(it), reason: `due ${iso(p.at)}, after the end of the simulation` });
  }
  result.notReached.sort((a, b) => a.item - b.item);
}

export { formatSimulation } from './format';
