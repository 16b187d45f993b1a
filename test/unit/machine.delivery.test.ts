// D5, D6, R1 and U8 at the level of single transitions: the state each event leaves and the effects
// it returns (the store applies those effects as data).
import { describe, expect, it } from 'vitest';
import { afterFailure, DEFAULT_DELIVERY } from '../../engine/machine/delivery';
import { transition } from '../../engine/machine/machine';
import type { Context, Effect, Enrollment, MachineEvent } from '../../engine/machine/types';
import type { CadenceDefinition } from '../../engine/model/types';

const T0 = Date.parse('2026-03-02T08:00:00Z');
const HOUR = 3_600_000;
const def: CadenceDefinition = {
  id: 'c', name: 'C', module: 'Leads', timezone: 'UTC', enrollment: { mode: 'manual' },
  nodes: [
    { id: 'e1', type: 'followUp', channel: 'email', template: { subject: 's', body: 'b' } },
    { id: 'e2', type: 'followUp', channel: 'email', relativeTo: 'previous', delay: { amount: 1, unit: 'hours' }, template: { subject: 's', body: 'b' } },
  ],
  edges: [{ from: 'trigger', to: 'e1' }, { from: 'e1', to: 'e2' }],
};
const ctx = (now: number, over: Partial<Context> = {}): Context => ({
  now, def, timezone: 'UTC', templates: new Set(), defaultSender: 's@x.example', sentToday: {}, actionsLeft: Infinity,
  record: { id: 'r', module: 'Leads', data: { Email: 'r@x.example' }, unsubscribed: false }, criteria: { checks: {} }, ...over,
});
const step = (s: Enrollment | null, ev: MachineEvent, now: number) => transition(s, ev, ctx(now));
const of = <T extends Effect['type']>(fx: Effect[], type: T) => fx.filter((f): f is Extract<Effect, { type: T }> => f.type === type);

/** Enrolled at T0 and e1 fired: the action is queued and the enrollment waits for its delivery. */
function queued(): Enrollment {
  const enrolled = step(null, { type: 'enroll', id: 'c:r', version: 1, by: 'rep' }, T0).next!;
  return step(enrolled, { type: 'timer' }, T0).next!;
}

describe('delivery states in the machine', () => {
  it('D5 a due follow-up is queued, not executed: the enrollment waits for its delivery and its timer is dropped', () => {
    const enrolled = step(null, { type: 'enroll', id: 'c:r', version: 1, by: 'rep' }, T0);
    expect(of(enrolled.effects, 'timer')).toEqual([{ type: 'timer', at: T0 }]);
    const fired = step(enrolled.next, { type: 'timer' }, T0);
    expect(fired.next).toMatchObject({ status: 'active', position: 'e1', wait: 'delivery', dueAt: null, executed: 0, last: { key: 'c:r:1:e1', delivery: 'queued', completedAt: null } });
    expect(of(fired.effects, 'dispatch').map((f) => f.action.key)).toEqual(['c:r:1:e1']);
    expect(of(fired.effects, 'timer')).toEqual([{ type: 'timer', at: null }]);
  });

  it('D5 F1 delivered: executed now, the outbox entry settled, and "relative to previous" counts from this moment', () => {
    const r = step(queued(), { type: 'delivered', key: 'c:r:1:e1' }, T0 + 5 * 60_000);
    expect(r.next).toMatchObject({ executed: 1, position: 'e2', wait: 'due', dueAt: T0 + 5 * 60_000 + HOUR, last: { delivery: 'delivered', deliveredAt: T0 + 5 * 60_000, completedAt: T0 + 5 * 60_000 } });
    expect(of(r.effects, 'settle')).toEqual([{ type: 'settle', key: 'c:r:1:e1', status: 'done' }]);
    expect(of(r.effects, 'timer')).toEqual([{ type: 'timer', at: T0 + 5 * 60_000 + HOUR }]);
  });

  it('D2 D3 a confirmation that arrives twice, or after the enrollment moved on, settles the entry and changes nothing else', () => {
    const once = step(queued(), { type: 'delivered', key: 'c:r:1:e1' }, T0).next!;
    const twice = step(once, { type: 'delivered', key: 'c:r:1:e1' }, T0 + 1000);
    expect(twice.next).toBe(once);
    expect(of(twice.effects, 'settle')).toEqual([{ type: 'settle', key: 'c:r:1:e1', status: 'done' }]);
    const other = step(once, { type: 'delivered', key: 'c:r:0:e1' }, T0 + 1000);
    expect(other.next).toBe(once);
  });

  it('D5 F10 the last follow-up completes the enrollment only when it is delivered', () => {
    let s = step(queued(), { type: 'delivered', key: 'c:r:1:e1' }, T0).next!;
    s = step(s, { type: 'timer' }, T0 + HOUR).next!;
    expect(s).toMatchObject({ status: 'active', wait: 'delivery', position: 'e2' });
    s = step(s, { type: 'delivered', key: 'c:r:1:e2' }, T0 + HOUR).next!;
    expect(s).toMatchObject({ status: 'completed', executed: 2 });
  });

  it('D5 U8 leaving while an action is queued cancels it (the store keeps it if it was handed off); a halt does the same (V3)', () => {
    const left = step(queued(), { type: 'unenroll', by: 'rep', reason: 'manual' }, T0);
    expect(left.next).toMatchObject({ status: 'stopped' });
    expect(of(left.effects, 'cancel')).toEqual([{ type: 'cancel', key: 'c:r:1:e1' }]);
    const halted = step(queued(), { type: 'deactivated', by: 'rep' }, T0);
    expect(halted.next).toMatchObject({ status: 'active', wait: 'halted' });
    expect(of(halted.effects, 'cancel')).toEqual([{ type: 'cancel', key: 'c:r:1:e1' }]);
    // Delivered after it left: recorded and counted, nothing else (D3).
    const late = step(left.next, { type: 'delivered', key: 'c:r:1:e1' }, T0 + 1000);
    expect(late.next).toMatchObject({ status: 'stopped', executed: 1, last: { delivery: 'delivered' } });
    expect(of(late.effects, 'dispatch')).toEqual([]);
  });

  it('D6 F9 a failed delivery fails the enrollment naming the step; retry requeues the same key; retry of anything else is refused', () => {
    const failed = step(queued(), { type: 'deliveryFailed', key: 'c:r:1:e1', reason: '550 no such user' }, T0);
    expect(failed.next).toMatchObject({ status: 'failed', reason: 'follow-up "e1" could not be delivered: 550 no such user (F9, D6)', last: { delivery: 'failed' } });
    expect(of(failed.effects, 'settle')).toEqual([{ type: 'settle', key: 'c:r:1:e1', status: 'dead' }]);
    const retried = step(failed.next, { type: 'retry', by: 'rep' }, T0 + HOUR);
    expect(retried.next).toMatchObject({ status: 'active', wait: 'delivery', run: 1, last: { key: 'c:r:1:e1', delivery: 'queued' } });
    expect(of(retried.effects, 'requeue')).toEqual([{ type: 'requeue', key: 'c:r:1:e1' }]);
    expect(of(retried.effects, 'dispatch')).toEqual([]);
    expect(of(step(retried.next, { type: 'retry', by: 'rep' }, T0 + HOUR).effects, 'reject')).toEqual([{ type: 'reject', rule: 'D6', reason: 'only a failed enrollment can be retried; this one is active' }]);
  });

  it('D6 F9 a step that failed before it was queued (no address) runs again now on retry, same run and key', () => {
    const enrolled = transition(null, { type: 'enroll', id: 'c:r', version: 1, by: 'rep' }, ctx(T0, { record: { id: 'r', module: 'Leads', data: { Email: 'nope' }, unsubscribed: false } })).next!;
    const failed = transition(enrolled, { type: 'timer' }, ctx(T0, { record: { id: 'r', module: 'Leads', data: { Email: 'nope' }, unsubscribed: false } })).next!;
    expect(failed).toMatchObject({ status: 'failed', position: 'e1' });
    const retried = step(failed, { type: 'retry', by: 'rep' }, T0 + HOUR);
    expect(retried.next).toMatchObject({ status: 'active', wait: 'due', dueAt: T0 + HOUR, run: 1 });
    const sent = step(retried.next, { type: 'timer' }, T0 + HOUR);
    expect(of(sent.effects, 'dispatch').map((f) => f.action.key)).toEqual(['c:r:1:e1']);
  });

  it('D5 an outcome for a queued action proves its delivery, then counts as an outcome', () => {
    const r = step(queued(), { type: 'outcome', key: 'c:r:1:e1', outcome: 'opened' }, T0 + 1000);
    expect(r.next).toMatchObject({ executed: 1, position: 'e2', last: { delivery: 'delivered', outcomes: ['opened'] } });
    expect(of(r.effects, 'settle')).toEqual([{ type: 'settle', key: 'c:r:1:e1', status: 'done' }]);
  });

  it('R1 a resume anchors the steps "from the enrollment" at the resume', () => {
    const stopped = step(queued(), { type: 'unenroll', by: 'rep', reason: 'manual' }, T0).next!;
    const resumed = step(stopped, { type: 'reenroll', mode: 'resume', version: 1, by: 'rep' }, T0 + 10 * 24 * HOUR).next!;
    expect(resumed).toMatchObject({ status: 'active', run: 2, anchorAt: T0 + 10 * 24 * HOUR, position: 'e1', dueAt: T0 + 10 * 24 * HOUR });
  });

  it('D6 the retry policy: backoff with jitter inside the hold time, then give up; permanent failures give up at once', () => {
    const p = { ...DEFAULT_DELIVERY, jitter: 0 };
    expect(afterFailure(p, 1, T0, T0, { message: 'x', permanent: false }, 0.5)).toMatchObject({ retryAt: T0 + 30_000 });
    expect(afterFailure(p, 4, T0, T0, { message: 'x', permanent: false }, 0.5)).toMatchObject({ retryAt: T0 + 240_000 });
    expect(afterFailure(p, 30, T0, T0, { message: 'x', permanent: false }, 0.5)).toMatchObject({ retryAt: T0 + HOUR });
    const jittered = afterFailure({ ...p, jitter: 0.2 }, 1, T0, T0, { message: 'x', permanent: false }, 0.999) as { retryAt: number };
    expect(jittered.retryAt - T0).toBeGreaterThan(30_000);
    expect(jittered.retryAt - T0).toBeLessThanOrEqual(36_000);
    // Never past the hold time; at its end, give up naming the last error.
    expect(afterFailure(p, 30, T0, T0 + 3 * 24 * HOUR - 1000, { message: 'x', permanent: false }, 0.5)).toMatchObject({ retryAt: T0 + 3 * 24 * HOUR });
    expect(afterFailure(p, 31, T0, T0 + 3 * 24 * HOUR, { message: '503', permanent: false }, 0.5)).toEqual({ giveUp: 'its performer kept failing for 3 days (last: 503)' });
    expect(afterFailure(p, 1, T0, T0, { message: '550', permanent: true }, 0.5)).toEqual({ giveUp: '550' });
  });
});
