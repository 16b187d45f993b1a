// S1: the simulator's one timeline format. Every scripted input is an item with a time — `at` an ISO
// instant, or `after` a duration counted from an explicit anchor (`from`) — and one thing that happens
// (`do`). One format for all, so "a lead arrives on Wednesday, replies 3 hours after the welcome email,
// is re-enrolled on Monday" reads the way it is run. Checked whole before anything runs (D4): an unknown
// record, anchor or follow-up is refused with the item's index and field, never silently ignored.
import { durationMs } from '../model/duration';
import type { Problem } from '../model/errors';
import type { CadenceDefinition } from '../model/types';
import type { InboundMessage } from '../model/outcomes';

export const ACTIONS = ['arrive', 'change', 'converted', 'unsubscribed', 'outcome', 'reply', 'enroll', 'unenroll', 'reenroll', 'retry', 'publish', 'deactivate', 'activate'] as const;
export type Action = (typeof ACTIONS)[number];

/** Anchors an `after` can count from: the simulation's start, the record's enrollment, or when one of its follow-ups ran. */
export type Anchor = 'start' | 'enrollment' | string;

export interface TimelineItem {
  /** An ISO instant, e.g. "2026-01-07T10:00:00Z". Exclusive with `after`. */
  at?: string;
  /** A duration ("3h", "2d") counted from `from`. */
  after?: string;
  /** "start", "enrollment" (this record's), or a follow-up id (when it ran for this record). Required with `after`. */
  from?: Anchor;
  do: Action;
  /** A record id; for `arrive` (and `enroll` of a record not seen yet) the record itself. */
  record?: string | Record<string, unknown>;
  /** `change`: the fields that change. */
  set?: Record<string, unknown>;
  /** `outcome`, `reply`: the follow-up responded to. */
  followUp?: string;
  /** `outcome`: opened, clicked, replied, completed, busy, … */
  outcome?: string;
  /** `reply`: the message; automatic replies (out-of-office headers or subjects) count as `auto-replied` (U10). */
  message?: InboundMessage & { from?: string };
  /** `reenroll`: resume where it stopped, or restart from the first follow-up (R1). */
  mode?: 'resume' | 'restart';
  /** `publish`: the new version of the cadence (same id). */
  definition?: CadenceDefinition;
}

/** The pre-timeline inputs, still accepted: outcomes count from their follow-up, changes from the start. */
export interface ScriptedOutcome {
  record: string;
  followUp: string;
  outcome: string;
  after?: string;
  message?: InboundMessage;
}
export interface ScriptedChange {
  record: string;
  after: string;
  set?: Record<string, unknown>;
  event?: 'converted' | 'unsubscribed';
}

/** One list: the timeline as given, then the older `outcomes` and `changes` in its format. */
export function normalise(timeline: unknown, outcomes: unknown, changes: unknown): unknown[] {
  const items: unknown[] = Array.isArray(timeline) ? [...timeline] : [];
  for (const o of Array.isArray(outcomes) ? outcomes : []) {
    const x = (o ?? {}) as ScriptedOutcome;
    items.push({ after: x.after ?? '0m', from: x.followUp, do: 'outcome', record: x.record, followUp: x.followUp, outcome: x.outcome, message: x.message });
  }
  for (const c of Array.isArray(changes) ? changes : []) {
    const x = (c ?? {}) as ScriptedChange;
    items.push({ after: x.after, from: 'start', do: x.event ?? 'change', record: x.record, set: x.set });
  }
  return items;
}

export const recordIdOf = (r: TimelineItem['record']): string | undefined =>
  typeof r === 'string' ? r : r && typeof r === 'object' && (typeof r.id === 'string' || typeof r.id === 'number') ? String(r.id) : undefined;

const NEEDS_RECORD: readonly Action[] = ['arrive', 'change', 'converted', 'unsubscribed', 'outcome', 'reply', 'enroll', 'unenroll', 'reenroll', 'retry'];

/**
 * Every problem of a timeline, each naming `timeline[i].field` and rule S1 (or D4 for malformed values).
 * `known` holds the ids of the sample records; records that `arrive` (or are enrolled as objects) join it.
 */
export function checkTimeline(items: unknown[], def: CadenceDefinition, known: ReadonlySet<string>, start: number, canRetry: boolean): Problem[] {
  const problems: Problem[] = [];
  const bad = (i: number, field: string, message: string, rule = 'S1') => problems.push({ rule, field: `timeline[${i}]${field ? '.' + field : ''}`, message });
  const followUps = new Set<string>();
  const collect = (d: CadenceDefinition | undefined) => {
    for (const n of d?.nodes ?? []) if (n.type === 'followUp') followUps.add(n.id);
  };
  collect(def);
  const ids = new Set(known);
  items.forEach((raw) => {
    const it = raw as TimelineItem;
    if (it && typeof it === 'object' && (it.do === 'arrive' || it.do === 'enroll') && typeof it.record === 'object') {
      const id = recordIdOf(it.record);
      if (id) ids.add(id);
    }
    if (it && typeof it === 'object' && it.do === 'publish') collect(it.definition);
  });
  items.forEach((raw, i) => {
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return bad(i, '', 'must be an object like {"after": "2d", "from": "start", "do": "change", "record": "L1", "set": {…}}', 'D4');
    const it = raw as TimelineItem;
    if (!ACTIONS.includes(it.do)) return bad(i, 'do', `"${String(it.do)}" is not one of ${ACTIONS.join(', ')}`);
    if ((it.at === undefined) === (it.after === undefined)) bad(i, it.at === undefined ? 'at' : 'after', 'give exactly one of "at" (an ISO instant) or "after" (a duration) with "from"');
    if (it.at !== undefined) {
      const t = typeof it.at === 'string' ? Date.parse(it.at) : NaN;
      if (Number.isNaN(t)) bad(i, 'at', `"${String(it.at)}" is not an ISO instant (e.g. 2026-01-07T10:00:00Z)`, 'D4');
      else if (t < start) bad(i, 'at', `${it.at} is before the simulation starts (${new Date(start).toISOString()})`);
      if (it.from !== undefined) bad(i, 'from', '"from" goes with "after", not with "at"');
    }
    if (it.after !== undefined) {
      try {
        if (typeof it.after !== 'string') throw new Error(`${JSON.stringify(it.after)} is not a duration (use e.g. 30m, 4h, 3d, 2bd)`);
        durationMs(it.after);
      } catch (e) {
        bad(i, 'after', (e as Error).message, 'D4');
      }
      if (it.from === undefined) bad(i, 'from', `"after" needs an anchor: "start", "enrollment" or a follow-up id (${[...followUps].join(', ')})`);
      else if (it.from !== 'start' && it.from !== 'enrollment' && !followUps.has(it.from)) {
        bad(i, 'from', `"${String(it.from)}" is not an anchor: use "start", "enrollment" or a follow-up id (${[...followUps].join(', ')})`);
      } else if (it.from !== 'start' && it.record === undefined) bad(i, 'from', `"${it.from}" is the record's own moment: name the record`);
    }
    const id = recordIdOf(it.record);
    if (NEEDS_RECORD.includes(it.do)) {
      if (it.record === undefined) bad(i, 'record', `"${it.do}" needs a record id`);
      else if (!id) bad(i, 'record', 'must be a record id, or a record object with an id', 'D4');
      else if (!ids.has(id)) bad(i, 'record', `record "${id}" is unknown: it is not in the sample records and never arrives (add {"do": "arrive", "record": {"id": "${id}", …}} before it)`);
      if (it.do === 'arrive' && typeof it.record !== 'object') bad(i, 'record', '"arrive" needs the record itself: {"id": …, "Email": …}');
    }
    if ((it.do === 'outcome' || it.do === 'reply') && !followUps.has(String(it.followUp))) bad(i, 'followUp', `"${String(it.followUp)}" is not a follow-up of the cadence (${[...followUps].join(', ')})`);
    if (it.do === 'outcome' && typeof it.outcome !== 'string') bad(i, 'outcome', 'name the outcome: opened, clicked, replied, bounced, completed, busy, …');
    if (it.do === 'change' && (typeof it.set !== 'object' || it.set === null)) bad(i, 'set', '"change" needs the fields that change: {"set": {"Lead_Status": "Junk"}}');
    if (it.do === 'reenroll' && it.mode !== 'resume' && it.mode !== 'restart') bad(i, 'mode', 'must be "resume" or "restart" (R1)');
    if (it.do === 'publish' && (typeof it.definition !== 'object' || it.definition === null)) bad(i, 'definition', '"publish" needs the new definition');
    else if (it.do === 'publish' && it.definition!.id !== def.id) bad(i, 'definition.id', `must be "${def.id}", the simulated cadence`);
    if (it.do === 'retry' && !canRetry) bad(i, 'do', 'this engine has no retry action yet (D6)');
  });
  return problems;
}
