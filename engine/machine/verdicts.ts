// The performer's verdicts on a step (D5, D6), as transitions: delivered, failed for good, failed for
// now (retried only while the enrollment still wants it), withdrawn (F8), and the retry action. Split
// from machine.ts for size; the two call each other, at call time only.
import { findNode, follow } from '../model/validate';
import { OUT } from '../model/types';
import { enter, log, reject, stop } from './machine';
import type { Context, Effect, Enrollment, MachineEvent } from './types';

/** D5: the performer confirmed; the follow-up is executed now, and the path moves on from here. */
export function delivered(s: Enrollment, key: string, ctx: Context, fx: Effect[]): Enrollment {
  fx.push({ type: 'settle', key, status: 'done' });
  const last = s.last;
  if (!last || last.key !== key) {
    fx.push(log('delivered', `${key} delivered; the enrollment had moved on (D3)`, { key }));
    return s;
  }
  if (last.delivery !== 'queued') {
    fx.push(log('delivered', `${key} confirmed again; already ${last.delivery ?? 'delivered'} (D2)`, { key }));
    return s;
  }
  const isMessage = last.channel === 'email' || last.channel === 'whatsapp';
  const next: Enrollment = {
    ...s, executed: s.executed + 1,
    last: { ...last, delivery: 'delivered', deliveredAt: ctx.now, completedAt: last.completedAt ?? (isMessage ? ctx.now : null) },
  };
  const node = findNode(ctx.def, last.nodeId);
  fx.push(log('executed', `${last.channel} follow-up "${node?.name ?? last.nodeId}" delivered (D5)`, { key }));
  if (s.status !== 'active' || s.wait !== 'delivery' || s.position !== last.nodeId) {
    fx.push(log('delivered', `delivered after the enrollment ${s.status === 'active' ? 'was halted' : 'ended'}: recorded, nothing else changes (D3, D5)`, { key }));
    return next;
  }
  return enter(next, follow(ctx.def, last.nodeId, OUT), ctx, fx);
}

/** D6, F9: the action cannot be delivered (refused, or held past the hold time): the enrollment fails naming it. */
export function deliveryFailed(s: Enrollment, key: string, reason: string, ctx: Context, fx: Effect[]): Enrollment {
  fx.push({ type: 'settle', key, status: 'dead' });
  const last = s.last;
  if (!last || last.key !== key || last.delivery !== 'queued') {
    fx.push(log('ignored', `delivery of ${key} failed after the enrollment moved on (D3)`, { key, error: reason }));
    return s;
  }
  const next: Enrollment = { ...s, last: { ...last, delivery: 'failed' } };
  if (s.status !== 'active' || s.wait !== 'delivery') {
    fx.push(log('ignored', `delivery of ${key} failed after the enrollment ${s.status === 'active' ? 'was halted' : 'ended'} (D3)`, { key, error: reason }));
    return next;
  }
  const node = findNode(ctx.def, last.nodeId);
  return stop(next, 'failed', `follow-up "${node?.name ?? last.nodeId}" could not be delivered: ${reason} (F9, D6)`, fx);
}

/**
 * D6: a hand-off failed and the policy would try again. Only while the enrollment still waits for this
 * very action: one un-enrolled, halted or moved on since does not get it (U8, V3: not executed, so
 * cancelled), and an email to a record that unsubscribed meanwhile is skipped (F8).
 */
export function handOffFailed(s: Enrollment, ev: Extract<MachineEvent, { type: 'handOffFailed' }>, ctx: Context, fx: Effect[]): Enrollment {
  const last = s.last;
  if (!last || last.key !== ev.key || last.delivery !== 'queued' || s.status !== 'active' || s.wait !== 'delivery') {
    const why = s.status !== 'active' ? `the enrollment is ${s.status} (U8)` : s.wait === 'halted' ? 'its cadence was deactivated (V3)' : 'the enrollment moved on (D3)';
    fx.push({ type: 'settle', key: ev.key, status: 'dead' });
    fx.push(log('ignored', `${ev.key}: attempt ${ev.attempt} failed (${ev.error}); not handed over again: ${why}`, { key: ev.key, attempt: ev.attempt }));
    return s;
  }
  if (unsubscribedWhileQueued(s, ctx)) return skipUnsubscribed(s, ctx, fx, `attempt ${ev.attempt} failed (${ev.error}) and the record has unsubscribed since`);
  fx.push({ type: 'retryLater', key: ev.key, at: ev.retryAt, error: ev.error });
  fx.push(log('waiting', `${last.nodeId}: ${ev.reason} (D6)`, { key: ev.key, attempt: ev.attempt }));
  return s;
}

/** An email waiting for its performer (not delivered yet) to a record that has unsubscribed (F8). */
const unsubscribedWhileQueued = (s: Enrollment, ctx: Context): boolean =>
  !!ctx.record?.unsubscribed && s.wait === 'delivery' && s.last?.channel === 'email' && s.last.delivery === 'queued';

/** F8: that email is not sent (none of its hand-offs is in flight: it was withdrawn, or its last one failed); the path goes on. */
export function skipUnsubscribed(s: Enrollment, ctx: Context, fx: Effect[], why: string): Enrollment {
  const last = s.last!;
  fx.push({ type: 'settle', key: last.key, status: 'dead' }); // withdrawn or failed: never handed over again
  fx.push(log('skipped', `"${last.nodeId}": ${why}; no more emails (F8)`, { key: last.key }));
  return enter({ ...s, last: { ...last, delivery: 'cancelled', completedAt: ctx.now } }, follow(ctx.def, last.nodeId, OUT), ctx, fx);
}

/** D6 retry: just the failed step again, under the same key; what was delivered before is not repeated. */
export function retry(s: Enrollment, by: string, ctx: Context, fx: Effect[]): Enrollment {
  if (s.status !== 'failed') {
    fx.push(reject('D6', `only a failed enrollment can be retried; this one is ${s.status}`));
    return s;
  }
  const node = findNode(ctx.def, s.position);
  if (node?.type !== 'followUp') {
    fx.push(reject('R3', `the failed follow-up ("${s.position}") is not in version ${s.version}: restart instead`));
    return s;
  }
  if (ctx.criteria.exit) {
    fx.push(reject('E3', 'matches the un-enrollment criteria'));
    return s;
  }
  const again = { ...s, status: 'active' as const, reason: 'retried', enrolledBy: s.enrolledBy };
  if (s.last?.nodeId === node.id && s.last.delivery === 'failed') {
    fx.push(log('retried', `${by} retried "${node.name ?? node.id}": handed over again under ${s.last.key} (D6)`, { key: s.last.key }));
    fx.push({ type: 'requeue', key: s.last.key });
    return { ...again, wait: 'delivery', dueAt: null, last: { ...s.last, delivery: 'queued' } };
  }
  // It failed before it was queued (F9: no address, a deleted template): run it again now, same run, same key.
  fx.push(log('retried', `${by} retried "${node.name ?? node.id}": it runs again now (D6)`));
  return { ...again, wait: 'due', dueAt: ctx.now };
}
