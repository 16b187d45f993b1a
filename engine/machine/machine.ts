// The pure core: one call per event, (enrollment, event, context) -> (enrollment', effects).
// No I/O, no wall clock: `ctx.now` is the only time. Everything the store writes besides the state is
// an effect returned here — the enrollment's one timer, queued actions, their cancellation and their
// settling — so the store applies data and holds no rule. A follow-up is executed when its performer
// confirms delivery (D5): the enrollment waits at it (`wait: 'delivery'`) until then.
import { emailOf, phoneOf } from '../model/contact';
import { completesFollowUp } from '../model/outcomes';
import { findNode, follow, sameFollowUp } from '../model/validate';
import { OUT, TRIGGER, type FollowUpNode, type OutcomeBranchNode } from '../model/types';
import { addDelay, nextDayOpen, nextOpen, parseInstant } from '../time/time';
import { actionKey, capKey, senderOf, zoneOf } from './context';
import { describe, held } from './fatigue';
import { delivered, deliveryFailed, handOffFailed, retry, skipUnsubscribed } from './verdicts';
import type { Context, Effect, Enrollment, MachineEvent, Step } from './types';

export { actionKey, capKey, senderOf, zoneOf };

export const log = (event: string, reason: string, data?: Record<string, unknown>): Effect => ({ type: 'log', event, reason, data });
export const reject = (rule: string, reason: string): Effect => ({ type: 'reject', rule, reason });

export function transition(state: Enrollment | null, event: MachineEvent, ctx: Context): Step {
  const fx: Effect[] = [];
  const next = step(state, event, ctx, fx);
  if (next && next !== state) {
    // The timer follows the state: armed iff active with a due time (U8: ending or halting cancels it).
    const timerOf = (e: Enrollment | null) => (e && e.status === 'active' ? e.dueAt : null);
    if (!state || event.type === 'timer' || timerOf(state) !== timerOf(next)) fx.push({ type: 'timer', at: timerOf(next) });
  }
  return { next: next && next !== state ? { ...next, updatedAt: ctx.now } : next, effects: fx };
}

/** The action the enrollment waits to see delivered, if any. */
const queuedKey = (s: Enrollment): string | null => (s.wait === 'delivery' && s.last?.delivery === 'queued' ? s.last.key : null);

function step(s: Enrollment | null, ev: MachineEvent, ctx: Context, fx: Effect[]): Enrollment | null {
  if (ev.type === 'enroll') return enroll(s, ev, ctx, fx);
  if (!s) {
    fx.push(reject('D4', 'no such enrollment'));
    return null;
  }
  switch (ev.type) {
    case 'reenroll':
      return reenroll(s, ev.mode, ev.version, ev.by, ctx, fx);
    case 'timer':
      return timer(s, ctx, fx);
    case 'outcome':
      return outcome(s, ev.key, ev.outcome, ctx, fx);
    case 'recordChanged': {
      if (s.status !== 'active') return s;
      const why = exitReason(s, ctx);
      if (why) return leave(s, why, fx);
      if (ctx.criteria.errors) fx.push(log('criteria', 'the record changed; some criteria cannot be decided for it, so they do not un-enroll it', { undecided: ctx.criteria.errors }));
      return s;
    }
    case 'converted':
      return s.status === 'active' ? stop(s, 'stopped', 'converted (E8)', fx) : s;
    case 'unenroll':
      if (s.status !== 'active') {
        fx.push(reject('U5', `enrollment is already ${s.status}`));
        return s;
      }
      return stop(s, 'stopped', ev.reason, fx);
    case 'deactivated': {
      if (s.status !== 'active' || s.wait === 'halted') return s;
      fx.push(log('halted', 'cadence deactivated (V3): scheduled actions dropped', { position: s.position, dueAt: s.dueAt }));
      const key = queuedKey(s);
      if (key) fx.push({ type: 'cancel', key });
      return { ...s, wait: 'halted', dueAt: null, reason: 'cadence deactivated' };
    }
    case 'activated':
      // V3: what was halted never runs later; the enrollment can be resumed on purpose (R1).
      return s.status === 'active' && s.wait === 'halted' ? stop(s, 'stopped', 'halted by deactivation (V3)', fx) : s;
    case 'published':
      return published(s, ev.next, ev.version, ctx, fx);
    case 'delivered':
      return delivered(s, ev.key, ctx, fx);
    case 'deliveryFailed':
      return deliveryFailed(s, ev.key, ev.reason, ctx, fx);
    case 'handOffFailed':
      return handOffFailed(s, ev, ctx, fx);
    case 'emailWithdrawn':
      // F8: the store took back a queued email no hand-off had in flight (its record unsubscribed).
      if (s.status === 'active' && queuedKey(s) === ev.key && s.last?.channel === 'email') return skipUnsubscribed(s, ctx, fx, 'the record unsubscribed before it was sent');
      fx.push(log('ignored', `${ev.key} withdrawn after the enrollment moved on (D3)`, { key: ev.key }));
      return s;
    case 'retry':
      return retry(s, ev.by, ctx, fx);
  }
}

function enroll(s: Enrollment | null, ev: Extract<MachineEvent, { type: 'enroll' }>, ctx: Context, fx: Effect[]): Enrollment | null {
  if (s) {
    fx.push(reject('E1', `already enrolled (${s.status}); re-enroll to resume or restart`));
    return s;
  }
  const rec = ctx.record;
  if (!rec) {
    fx.push(reject('D4', 'unknown record'));
    return null;
  }
  if (rec.module !== ctx.def.module) {
    fx.push(reject('C1', `record is in ${rec.module}, the cadence is for ${ctx.def.module}`));
    return null;
  }
  // Issue 14: a view or exit criteria that cannot be decided for this record never let it in.
  const undecided = (ctx.criteria.errors ?? []).find((e) => e.field === 'enrollment.view' || e.field === 'unenroll.criteria');
  if (undecided) {
    fx.push(reject(undecided.field === 'enrollment.view' ? 'E2' : 'E3', `${undecided.field} cannot be decided for this record: ${undecided.message}`));
    return null;
  }
  if (ctx.criteria.exit) {
    fx.push(reject('E3', 'matches the un-enrollment criteria'));
    return null;
  }
  const startedAt = Math.max(ev.startAt ?? ctx.now, ctx.now);
  const fresh: Enrollment = {
    id: ev.id, cadenceId: ctx.def.id, version: ev.version, recordId: rec.id, module: rec.module,
    status: 'active', run: 1, position: null, wait: null, dueAt: null, startedAt, enrolledBy: ev.by,
    reason: 'enrolled', updatedAt: ctx.now, last: null, exitChecks: [], executed: 0,
  };
  fx.push(log('enrolled', ev.by === 'automation' ? 'matched the view (E2)' : `enrolled by ${ev.by} (E1)`, { version: ev.version, startAt: startedAt }));
  return enter(fresh, follow(ctx.def, TRIGGER), ctx, fx);
}

function reenroll(s: Enrollment, mode: 'resume' | 'restart', version: number, by: string, ctx: Context, fx: Effect[]): Enrollment {
  if (s.status === 'active') {
    fx.push(reject('R1', 'enrollment is still active'));
    return s;
  }
  if (mode === 'resume') {
    if (s.status === 'completed') {
      fx.push(reject('R2', 'a completed enrollment can only be restarted'));
      return s;
    }
    if (s.status === 'failed') {
      fx.push(reject('R3', 'a failed enrollment can only be restarted'));
      return s;
    }
    if (!findNode(ctx.def, s.position)) {
      fx.push(reject('R4', `the follow-up where it stopped ("${s.position}") no longer exists: restart instead`));
      return s;
    }
  }
  if (ctx.criteria.exit) {
    fx.push(reject('E3', 'matches the un-enrollment criteria'));
    return s;
  }
  const base: Enrollment = { ...s, status: 'active', run: s.run + 1, version, enrolledBy: by, reason: mode === 'resume' ? 'resumed' : 'restarted', wait: null, dueAt: null };
  if (mode === 'restart') {
    fx.push(log('restarted', `re-enrolled by ${by} from the first follow-up (R1)`, { version }));
    return enter({ ...base, startedAt: ctx.now, anchorAt: undefined, outcomeAt: undefined, last: null, lastEmail: undefined, exitChecks: [] }, follow(ctx.def, TRIGGER), ctx, fx);
  }
  fx.push(log('resumed', `re-enrolled by ${by} at "${s.position}"; its delay counts from now (R1)`, { version }));
  // R1: the resumed step and every later step "from the enrollment" count from the resume, so the
  // gaps stay as drawn and nothing overdue fires in a burst.
  const resumed = { ...base, anchorAt: ctx.now, outcomeAt: base.outcomeAt === undefined ? undefined : ctx.now };
  const node = findNode(ctx.def, s.position)!;
  if (node.type === 'followUp') return schedule(resumed, node, ctx, fx, ctx.now);
  if (node.type === 'outcomeBranch') return waitAtBranch(resumed, node, ctx, ctx.now);
  return enter(resumed, node.id, ctx, fx);
}

/** Walks from `nodeId` through un-enroll checks to the next thing to wait for, or completes (F10). */
export function enter(s: Enrollment, nodeId: string | undefined, ctx: Context, fx: Effect[]): Enrollment {
  for (let hops = 0; hops <= ctx.def.nodes.length; hops++) {
    const node = findNode(ctx.def, nodeId);
    if (!node) {
      return { ...stop(s, 'completed', 'last follow-up done (F10)', fx), position: null };
    }
    if (node.type === 'followUp') return schedule(s, node, ctx, fx);
    // F5, D5: "no reply within 3 days" counts from when the step reached the person (its delivery), not from
    // when it was queued: after a performer outage or a D6 retry, the timeout path must not fire at once.
    if (node.type === 'outcomeBranch') return waitAtBranch(s, node, ctx, s.last?.deliveredAt ?? s.last?.at ?? ctx.now);
    // Un-enroll check: leave now if the record matches, otherwise its criteria guard the rest of the path.
    fx.push(log('criteria', `un-enroll check "${node.name ?? node.id}"`, { node: node.id, matched: !!ctx.criteria.checks[node.id] }));
    if (ctx.criteria.checks[node.id]) {
      fx.push({ type: 'left', nodeId: node.id });
      return stop({ ...s, position: node.id }, 'stopped', `exit criteria of "${node.name ?? node.id}" (U3)`, fx);
    }
    s = { ...s, exitChecks: [...s.exitChecks, node.id] };
    nodeId = follow(ctx.def, node.id);
  }
  throw new Error('cycle in cadence graph');
}

function waitAtBranch(s: Enrollment, node: OutcomeBranchNode, ctx: Context, from: number): Enrollment {
  const dueAt = node.timeout ? Math.max(ctx.now, addDelay(from, node.timeout, zoneOf(ctx), ctx.def.sendWindow)) : null;
  return { ...s, position: node.id, wait: 'outcome', dueAt };
}

/** F1 + F11: when the follow-up is due, from the enrollment or the previous completion, inside the window. */
function schedule(s: Enrollment, node: FollowUpNode, ctx: Context, fx: Effect[], anchorOverride?: number): Enrollment {
  let anchor = anchorOverride;
  if (anchor === undefined) {
    if (node.relativeTo === 'previous' && s.last) {
      if (s.last.completedAt === null) {
        fx.push(log('waiting', `"${node.id}" waits for "${s.last.nodeId}" to be completed (F1)`));
        return { ...s, position: node.id, wait: 'completion', dueAt: null, heldBy: undefined };
      }
      anchor = s.last.completedAt;
    } else if (node.relativeTo === 'outcome' && s.outcomeAt !== undefined) {
      anchor = s.outcomeAt; // F14: "one day after they opened"
    } else anchor = s.anchorAt ?? s.startedAt;
  }
  const zone = zoneOf(ctx);
  const due = Math.max(addDelay(anchor, node.delay, zone, ctx.def.sendWindow), ctx.now, s.startedAt);
  const open = nextOpen(due, ctx.def.sendWindow, zone);
  // A3: the why-log says when the send window, not the delay, set the time.
  if (open > due) fx.push(log('deferred', `"${node.name ?? node.id}" falls outside the send window: it waits for the next opening (F11)`, { due: new Date(due).toISOString(), until: new Date(open).toISOString() }));
  return { ...s, position: node.id, wait: 'due', dueAt: open, heldBy: undefined };
}

interface Exit {
  reason: string;
  /** The un-enroll check node it leaves by, for the host's "left" output. */
  nodeId?: string;
}

/** Why the enrollment must leave now, if it must; checked before any follow-up runs (U6). */
function exitReason(s: Enrollment, ctx: Context): Exit | null {
  const u = ctx.def.unenroll;
  if (u?.onDate) {
    const at = parseInstant(u.onDate, ctx.def.timezone ?? ctx.timezone);
    if (at !== undefined && at <= ctx.now) return { reason: `un-enroll date ${u.onDate} (U4)` };
  }
  if (ctx.criteria.exit) return { reason: 'matched the un-enrollment criteria (U3)' };
  for (const id of s.exitChecks) if (ctx.criteria.checks[id]) return { reason: `exit criteria of "${findNode(ctx.def, id)?.name ?? id}" (U3)`, nodeId: id };
  if (u?.onLeaveView && ctx.criteria.view === false) return { reason: 'left the view (U2)' };
  return null;
}

function leave(s: Enrollment, why: Exit, fx: Effect[]): Enrollment {
  if (why.nodeId) fx.push({ type: 'left', nodeId: why.nodeId });
  return stop(s, 'stopped', why.reason, fx);
}

export function stop(s: Enrollment, status: 'stopped' | 'failed' | 'completed', reason: string, fx: Effect[]): Enrollment {
  // U8, D5: what was queued and not yet handed off is cancelled; what was handed off keeps its outcome.
  const key = queuedKey(s);
  fx.push(log(status, reason, { position: s.position, cancelled: s.dueAt !== null ? s.position : undefined, unlessHandedOff: key ?? undefined }));
  if (key) fx.push({ type: 'cancel', key });
  return { ...s, status, reason, wait: null, dueAt: null };
}

function timer(s: Enrollment, ctx: Context, fx: Effect[]): Enrollment {
  if (s.status !== 'active' || s.dueAt === null || s.dueAt > ctx.now) return s; // stale timer
  const why = exitReason(s, ctx);
  // Criteria that could not be decided are logged as such (an active enrollment is not un-enrolled on them).
  fx.push(log('criteria', 'checked before acting (U6)', { exit: why?.reason ?? null, view: ctx.criteria.view, clock: new Date(ctx.now).toISOString(), ...(ctx.criteria.errors ? { undecided: ctx.criteria.errors } : {}) }));
  if (why) return leave(s, why, fx);
  const node = findNode(ctx.def, s.position);
  if (node?.type === 'outcomeBranch') {
    fx.push(log('branch', `no matching outcome within the timeout: taking "timeout" (F5)`, { node: node.id }));
    return enter({ ...s, outcomeAt: ctx.now }, follow(ctx.def, node.id, 'timeout'), ctx, fx);
  }
  if (node?.type !== 'followUp') return stop(s, 'failed', `follow-up "${s.position}" is missing (F9)`, fx);
  return runFollowUp(s, node, ctx, fx);
}

function runFollowUp(s: Enrollment, node: FollowUpNode, ctx: Context, fx: Effect[]): Enrollment {
  if (s.heldBy) s = { ...s, heldBy: undefined }; // decided again now
  const zone = zoneOf(ctx);
  const open = nextOpen(ctx.now, ctx.def.sendWindow, zone);
  if (open > ctx.now) {
    fx.push(log('deferred', 'outside the send window (F11)', { until: new Date(open).toISOString() }));
    return { ...s, dueAt: open };
  }
  const data = ctx.record?.data ?? {};
  // F9: an email's stored template, or a WhatsApp template (C4: its own approved list, not the email
  // templates), that is gone by the time the step is due fails the step, naming it.
  if (node.templateId !== undefined && node.channel === 'email' && !ctx.templates.has(node.templateId))
    return stop(s, 'failed', `template "${node.templateId}" was deleted (F9)`, fx);
  if (node.templateId !== undefined && node.channel === 'whatsapp' && ctx.whatsappTemplates && !ctx.whatsappTemplates.has(node.templateId))
    return stop(s, 'failed', `WhatsApp template "${node.templateId}" is no longer approved (C4, F9)`, fx);
  if (node.channel === 'email') {
    if (ctx.record?.unsubscribed) {
      fx.push(log('skipped', `"${node.id}": the record unsubscribed; no more emails (F8)`));
      const skipped = { nodeId: node.id, key: actionKey(s, node.id), channel: node.channel, at: ctx.now, completedAt: ctx.now, outcomes: [] };
      return enter({ ...s, last: skipped }, follow(ctx.def, node.id, OUT), ctx, fx);
    }
    if (!emailOf(data)) return stop(s, 'failed', `no valid email address for "${node.id}" (F9)`, fx);
    const cap = ctx.def.senderDailyCap;
    // The counter key needs the local date: worked out only when there is a cap to check.
    if (cap !== undefined && (ctx.sentToday[capKey(node, ctx)] ?? 0) >= cap) {
      const until = nextDayOpen(ctx.now, ctx.def.sendWindow, zone);
      fx.push(log('deferred', `${senderOf(node, ctx)} reached its daily cap of ${cap} (F12)`, { until: new Date(until).toISOString() }));
      return { ...s, dueAt: until };
    }
  }
  if (node.channel === 'whatsapp' && !phoneOf(data)) return stop(s, 'failed', `no valid phone number (Mobile or Phone, 7 to 15 digits) for "${node.id}" (F9)`, fx);
  const tired = held(node, ctx, zone); // F13: the record's limits across all cadences; it waits, never dropped
  if (tired) {
    fx.push(log('deferred', `contact limit: ${describe(tired.limit)} (F13)`, { until: new Date(tired.until).toISOString(), limit: tired.limit.from }));
    return { ...s, dueAt: tired.until, heldBy: 'F13' };
  }
  if (ctx.actionsLeft <= 0) return stop(s, 'failed', 'the cadence reached its action limit (C5)', fx);
  const key = actionKey(s, node.id);
  fx.push({ type: 'dispatch', action: { key, enrollmentId: s.id, cadenceId: s.cadenceId, version: s.version, recordId: s.recordId, nodeId: node.id, channel: node.channel } });
  fx.push(log('queued', `${node.channel} follow-up "${node.name ?? node.id}" handed to its performer; executed once delivered (D5)`, { key }));
  // D5: not executed yet — the path moves on when the performer confirms (`delivered`).
  const lastEmail = node.channel === 'email' ? { key, at: ctx.now } : s.lastEmail;
  return { ...s, wait: 'delivery', dueAt: null, lastEmail, last: { nodeId: node.id, key, channel: node.channel, at: ctx.now, completedAt: null, outcomes: [], delivery: 'queued', deliveredAt: null } };
}

function outcome(s: Enrollment, key: string, what: string, ctx: Context, fx: Effect[]): Enrollment {
  // An outcome (an open, a reply, a task done) proves the action was delivered, even before its performer said so.
  if (s.status === 'active' && queuedKey(s) === key) s = delivered(s, key, ctx, fx);
  // U1: an un-enroll outcome (a reply, a bounce) on any email of this run lets the record go, even once the
  // path moved on past it (a call came after the email they answered): a reply speaks for the whole
  // conversation. It decides no branch, and a late call result on an earlier call changes nothing (D3).
  const earlier = s.status === 'active' && s.last?.key !== key && key.startsWith(`${s.id}:${s.run}:`) ? findNode(ctx.def, key.slice(`${s.id}:${s.run}:`.length)) : undefined;
  if (earlier?.type === 'followUp' && earlier.channel === 'email' && ctx.def.unenroll?.outcomes?.includes(what)) {
    fx.push(log('outcome', `${what} on an earlier follow-up (${key})`, { key, outcome: what }));
    return stop(s, 'stopped', `outcome "${what}" (U1)`, fx);
  }
  if (s.status !== 'active' || s.last?.key !== key) {
    fx.push(log('outcomeIgnored', `${what} for ${key} recorded; the enrollment ${s.status === 'active' ? 'moved on' : 'ended'} (D3)`, { key, outcome: what }));
    return s;
  }
  const last = { ...s.last, outcomes: [...s.last.outcomes, what] };
  if (last.completedAt === null && completesFollowUp(last.channel, what)) last.completedAt = ctx.now;
  let next: Enrollment = { ...s, last };
  fx.push(log('outcome', `${what} on "${last.nodeId}"`, { key, outcome: what }));
  if (ctx.def.unenroll?.outcomes?.includes(what)) return stop(next, 'stopped', `outcome "${what}" (U1)`, fx);
  const node = findNode(ctx.def, s.position);
  if (s.wait === 'completion' && node?.type === 'followUp' && last.completedAt !== null) return schedule(next, node, ctx, fx);
  if (s.wait === 'outcome' && node?.type === 'outcomeBranch' && node.outcomes.includes(what)) {
    // F3: the first matching outcome decides; later ones find the enrollment moved on.
    fx.push(log('branch', `"${what}" decides the path at "${node.name ?? node.id}" (F3)`, { node: node.id }));
    next = enter({ ...next, outcomeAt: ctx.now }, follow(ctx.def, node.id, what), ctx, fx);
  }
  return next;
}

function published(s: Enrollment, nextDef: Context['def'], version: number, ctx: Context, fx: Effect[]): Enrollment {
  if (s.status !== 'active') return s;
  const waitingOnFollowUp = s.wait === 'due' || s.wait === 'completion' || s.wait === 'halted';
  const node = findNode(ctx.def, s.position);
  if (waitingOnFollowUp && node?.type === 'followUp' && !sameFollowUp(ctx.def, nextDef, node.id))
    return stop(s, 'stopped', 'follow-up edited (V2)', fx);
  fx.push(log('version', `version ${version} published; continues on version ${s.version} (V1)`));
  return s;
}
