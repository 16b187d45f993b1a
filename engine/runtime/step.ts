// The one step pipeline: read -> criteria -> transition (the pure machine) -> one store commit of
// state, timer, outbox, audit and counters -> events to listeners. `apply` steps one enrollment and
// retries from a fresh read when another worker committed first (D2); `stepMany` steps N at once and
// hands back what it could not do in the batch, for `apply` to take one by one.
import { criteriaZone, decideAll } from '../criteria/definition';
import { CONTACT, fatigueBumps, fatigueKeys } from '../machine/fatigue';
import { capKey, transition, zoneOf } from '../machine/machine';
import type { ActionRef, Context, CriteriaResults, Effect, Enrollment, MachineEvent, RecordSnapshot } from '../machine/types';
import { CadenzaError } from '../model/errors';
import type { CadenceDefinition, FollowUpNode } from '../model/types';
import { findNode } from '../model/validate';
import { render, type ActivityPayload, type EmailPayload, type WhatsAppPayload } from '../render/render';
import type { AuditRow, Commit, CounterBump, OutboxChange, OutboxRow, StoredEnrollment } from '../store/store';
import { addDelay } from '../time/time';
import type { Core } from './core';
import { headerSafeKey } from './keys';
import { actorId, AUTOMATION, type Actor } from './permissions';
import type { DispatchedAction, StepResult } from './types';

/** How often one step is read and tried again after losing a commit race before it gives up (D2). */
export const MAX_CONFLICTS = 20;

/** All criteria of a definition against one record, at the engine clock; errors count as "no match". */
/**
 * Every criteria expression of the definition for one record, at the engine clock, in the record's or
 * the cadence's zone. What cannot be decided (an error, a time-out) is kept as an error, never read as
 * "no match": the machine refuses to enroll on it and logs it (issue 14).
 */
export async function evaluate(core: Core, def: CadenceDefinition, rec: RecordSnapshot): Promise<CriteriaResults> {
  const d = await decideAll(core.criteria, def, rec.data, core.clock.now(), criteriaZone(def, rec.data, core.opts.timezone));
  return { view: d.view, exit: d.exit, checks: d.checks, errors: d.errors.length ? d.errors.map((e) => ({ field: e.field, kind: e.kind, message: e.message })) : undefined };
}

export async function context(core: Core,
  def: CadenceDefinition, rec: RecordSnapshot | null, criteria: CriteriaResults, e: Enrollment | null,
  counter: (scope: string, key: string) => number | Promise<number> = (scope, key) => core.store.counter(scope, key),
): Promise<Context> {
  const ctx: Context = {
    now: core.clock.now(), def, record: rec, criteria, timezone: core.opts.timezone, defaultSender: core.opts.defaultSender,
    templates: core.templateIds, whatsappTemplates: core.whatsappTemplateIds, sentToday: {}, actionsLeft: Infinity,
  };
  const node = findNode(def, e?.position);
  if (e?.wait === 'due' && node?.type === 'followUp') {
    if (node.channel === 'email' && def.senderDailyCap) {
      const key = capKey(node, ctx);
      ctx.sentToday = { [key]: await counter('sender', key) };
    }
    ctx.fatigue = core.opts.fatigue?.limits;
    const keys = fatigueKeys(node, ctx, zoneOf(ctx));
    if (keys.length) ctx.sentToContact = Object.fromEntries(await Promise.all(keys.map(async (k) => [k, await counter(CONTACT, k)] as const)));
    const limit = core.opts.limits?.actionsPerCadence;
    if (limit) ctx.actionsLeft = limit - (await counter('actions', def.id));
  }
  return ctx;
}

export function renderFor(core: Core, action: ActionRef, node: FollowUpNode, rec: RecordSnapshot, now: number, zone: string, def: CadenceDefinition): Partial<DispatchedAction> {
  // F7: a task's due date in the cadence's calendar (business days skip weekends and holidays); a
  // message has none, and skips the calendar work.
  const dueAt = node.channel === 'email' || node.channel === 'whatsapp' ? 0 : addDelay(now, node.dueIn ?? { amount: 1, unit: 'days' }, zone, def.sendWindow);
  const out = render(action, node, rec, { templates: core.opts.templates ?? {}, defaultSender: core.opts.defaultSender, secret: core.opts.secret, baseUrl: core.opts.baseUrl, users: core.opts.users }, dueAt);
  if (node.channel === 'email') return { email: out as EmailPayload };
  if (node.channel === 'whatsapp') return { whatsapp: out as WhatsAppPayload };
  return { activity: out as ActivityPayload };
}

/** The writes of one step: state, rendered outbox rows, audit rows and capped counters. */
export function buildCommit(core: Core,
  cur: StoredEnrollment | null, next: Enrollment, effects: Effect[], def: CadenceDefinition,
  rec: RecordSnapshot | null, actor: string, ctx: Context, counters: CounterBump[],
): Commit {
  const now = core.clock.now();
  const outbox = [];
  const audit: AuditRow[] = [];
  const bumps = [...counters];
  const outboxChanges: OutboxChange[] = [];
  let timer: number | null | undefined;
  for (const f of effects) {
    if (f.type === 'log') audit.push({ at: now, cadenceId: next.cadenceId, enrollmentId: next.id, recordId: next.recordId, actor, event: f.event, reason: f.reason, data: f.data ?? null });
    if (f.type === 'timer') timer = f.at;
    if (f.type === 'cancel' || f.type === 'requeue') outboxChanges.push({ key: f.key, op: f.type });
    if (f.type === 'settle') outboxChanges.push({ key: f.key, op: f.status });
    if (f.type === 'retryLater') outboxChanges.push({ key: f.key, op: 'retry', at: f.at, error: f.error });
    if (f.type !== 'dispatch') continue;
    const node = findNode(def, f.action.nodeId) as FollowUpNode;
    const payload: DispatchedAction = {
      ...f.action, idempotencyKey: headerSafeKey(f.action.key), module: next.module, attempt: 0, record: rec?.data ?? {},
      ...renderFor(core, f.action, node, rec!, now, zoneOf(ctx), def),
    };
    outbox.push({ key: f.action.key, enrollmentId: next.id, cadenceId: next.cadenceId, nodeId: node.id, recordId: next.recordId, channel: node.channel, payload, availableAt: now, createdAt: now });
    if (node.channel === 'email' && def.senderDailyCap) bumps.push({ scope: 'sender', key: capKey(node, ctx), max: def.senderDailyCap });
    bumps.push(...fatigueBumps(node, ctx, zoneOf(ctx))); // F13: counted in this commit, each limit re-checked by the store
    if (core.opts.limits?.actionsPerCadence) bumps.push({ scope: 'actions', key: def.id, max: core.opts.limits.actionsPerCadence });
  }
  return { enrollment: next, expectedRev: cur ? cur.rev : null, timer, outbox, outboxChanges, audit, counters: bumps };
}

export async function commit(core: Core,
  cur: StoredEnrollment | null, next: Enrollment, effects: Effect[], def: CadenceDefinition,
  rec: RecordSnapshot | null, actor: string, ctx: Context, counters: CounterBump[],
): Promise<boolean> {
  const c = buildCommit(core, cur, next, effects, def, rec, actor, ctx, counters);
  const ok = await core.store.commit(c);
  if (ok) (committed(core, next, effects), core.woke([c]));
  return ok;
}

export function committed(core: Core, next: Enrollment, effects: Effect[]): void {
  core.emit({ type: 'changed', enrollment: next });
  for (const f of effects) if (f.type === 'left') core.emit({ type: 'left', enrollment: next, nodeId: f.nodeId });
}

/** Read, transition, commit; retried from a fresh read when another worker committed first. */
export async function apply(core: Core, enrollmentId: string, event: MachineEvent, actor: Actor): Promise<StepResult> {
  for (let i = 0; i < MAX_CONFLICTS; i++) {
    const cur = await core.store.getEnrollment(enrollmentId);
    if (!cur) throw new CadenzaError('unknown_enrollment', 'D4', `no enrollment "${enrollmentId}"`);
    const e = cur.enrollment;
    const version = event.type === 'reenroll' ? event.version : e.version;
    const def = await core.definition(e.cadenceId, version);
    const rec = (await core.store.getRecord(e.module, e.recordId)) ?? null;
    const criteria = rec ? await evaluate(core, def, rec) : { checks: {} };
    const ctx = await context(core, def, rec, criteria, e);
    const { next, effects } = transition(e, event, ctx);
    if (!next || (next === e && effects.every((f) => f.type === 'reject'))) return { state: next, effects };
    if (next === e && !effects.length) return { state: e, effects };
    if (await commit(core, cur, next, effects, def, rec, actorId(actor), ctx, [])) return { state: next, effects };
  }
  throw new CadenzaError('conflict', 'D2', `enrollment ${enrollmentId} changed too often concurrently`);
}

/** Many steps in one store call; what they made due now wakes the schedulers (Core.woke). */
export async function commitAll(core: Core, commits: Commit[]): Promise<boolean[]> {
  if (!commits.length) return [];
  const applied = await core.store.commitMany(commits);
  core.woke(commits.filter((_, i) => applied[i]));
  return applied;
}

type Planned<T> = { x: T; next: Enrollment; effects: Effect[]; commit: Commit; rec: RecordSnapshot | null };

/**
 * What a process just wrote for an enrollment whose action it handed off: the state (at the rev the
 * commit gave it) and the record it read. The verdict's step starts from it instead of reading both
 * again; if anything moved the enrollment meanwhile, its rev-guarded commit fails and it is read anew.
 */
export type Written = Map<string, { stored: StoredEnrollment; rec: RecordSnapshot | null }>;

/**
 * The one step path for N enrollments (N = 1 included): one read of the enrollments, one of their
 * records, every transition in memory, one store call for all (set-based on Postgres). Capped counters
 * (F12 sender per day, C5 actions) are read once and advanced in memory, so each step sees the ones
 * before it; the store re-checks every cap. Returns the items to take one by one (conflicts with
 * another worker, nothing to do, anything unusual) and, when `canHandOff` says this process can take
 * the queued actions now (the scheduler knows its handlers and free slots), those actions, written
 * already leased so it hands them off at once.
 */
export async function stepMany<T extends { id: string; event: MachineEvent }>(
  core: Core, items: T[], actor: Actor, canHandOff?: (queued: number) => boolean, written?: Written,
): Promise<{ rest: T[]; queued: OutboxRow[] }> {
  if (!items.length) return { rest: [], queued: [] };
  const ids = [...new Set(items.map((x) => x.id))];
  const cached = ids.flatMap((id) => (written?.has(id) ? [written.get(id)!] : []));
  const known = [...cached.map((w) => w.stored), ...(cached.length === ids.length ? [] : await core.store.getEnrollments(ids.filter((id) => !written?.has(id))))];
  const plan = await planMany(core, items, known, actor, cached.map((w) => w.rec).filter((r): r is RecordSnapshot => !!r));
  const lease = handOffLease(core, plan.steps, canHandOff);
  const applied = await commitAll(core, plan.steps.map((s) => ({ ...s.commit, handOffUntil: lease })));
  return finishMany(core, plan, applied, lease);
}

/**
 * The scheduler's batch: the enrollments whose timer is due, claimed by the store while they are
 * stepped and written in the claim's own transaction (Store.stepDue). Returns what the batch left
 * (leased, for the caller to take one by one), the actions to hand off now, and how many were due.
 */
export async function stepDue(
  core: Core, now: number, limit: number, leaseUntil: number, cadences: readonly string[] | undefined, canHandOff: (queued: number) => boolean,
): Promise<{ due: number; rest: { id: string; leasedUntil: number }[]; queued: OutboxRow[]; written: Written }> {
  let plan: Awaited<ReturnType<typeof planMany<{ id: string; event: MachineEvent }>>> = { rest: [], steps: [] };
  let lease: number | undefined;
  let commits: Commit[] = [];
  const { due, applied } = await core.store.stepDue(now, limit, leaseUntil, cadences, async (rows) => {
    plan = await planMany(core, rows.map((r) => ({ id: r.enrollment.id, event: { type: 'timer' } as MachineEvent })), rows, AUTOMATION);
    lease = handOffLease(core, plan.steps, canHandOff);
    return (commits = plan.steps.map((s) => ({ ...s.commit, handOffUntil: lease })));
  });
  core.woke(commits.filter((_, i) => applied[i]));
  const { rest, queued } = finishMany(core, plan, applied, lease);
  const revs = new Map(due.map((d) => [d.enrollment.id, d.rev]));
  const written: Written = new Map();
  plan.steps.forEach((s, i) => applied[i] && lease && s.commit.outbox.length && written.set(s.next.id, { stored: { enrollment: s.next, rev: revs.get(s.next.id)! + 1 }, rec: s.rec }));
  return { due: due.length, rest: rest.map((r) => ({ id: r.id, leasedUntil: leaseUntil })), queued, written };
}

/** Written already leased only when this process can hand the queued actions off now; otherwise they wait for a claim. */
function handOffLease(core: Core, steps: Planned<unknown>[], canHandOff?: (queued: number) => boolean): number | undefined {
  const queuedCount = steps.reduce((n, s) => n + s.commit.outbox.length, 0);
  return canHandOff && queuedCount && canHandOff(queuedCount) ? core.clock.now() + actionLeaseMs(core) : undefined;
}

/** How long a handed-off action stays leased (RuntimeOptions.handOffLeaseMs). */
export const actionLeaseMs = (core: Core): number => core.opts.handOffLeaseMs ?? core.opts.leaseMs;

function finishMany<T>(core: Core, plan: { rest: T[]; steps: Planned<T>[] }, applied: boolean[], lease: number | undefined): { rest: T[]; queued: OutboxRow[] } {
  const rest = [...plan.rest];
  const queued: OutboxRow[] = [];
  plan.steps.forEach((s, i) => {
    if (!applied[i]) return rest.push(s.x);
    committed(core, s.next, s.effects);
    if (lease) for (const o of s.commit.outbox) queued.push({ ...o, status: 'pending', attempts: 1 });
  });
  return { rest, queued };
}

/** Every transition of a batch in memory, from the enrollments as read (`known`), without writing. */
async function planMany<T extends { id: string; event: MachineEvent }>(
  core: Core, items: T[], known: StoredEnrollment[], actor: Actor, knownRecords: RecordSnapshot[] = [],
): Promise<{ rest: T[]; steps: Planned<T>[] }> {
  const rest: T[] = [];
  const byId = new Map(known.map((e) => [e.enrollment.id, e]));
  const records = new Map(knownRecords.map((r) => [`${r.module}\u0000${r.id}`, r]));
  const missing = [...byId.values()].filter((e) => !records.has(`${e.enrollment.module}\u0000${e.enrollment.recordId}`));
  if (missing.length) for (const r of await core.store.getRecords(missing.map((e) => ({ module: e.enrollment.module, id: e.enrollment.recordId })))) records.set(`${r.module}\u0000${r.id}`, r);
  const prepared: { x: T; cur: StoredEnrollment; def: CadenceDefinition; rec: RecordSnapshot | null; criteria: CriteriaResults }[] = [];
  const wanted = new Map<string, { scope: string; key: string }>();
  const seen = new Set<string>();
  for (const x of items) {
    const cur = byId.get(x.id);
    // Two events for one enrollment in one batch: the second goes one by one, after the first.
    if (!cur || seen.has(x.id)) {
      rest.push(x);
      continue;
    }
    seen.add(x.id);
    try {
      const e = cur.enrollment;
      const def = await core.definition(e.cadenceId, e.version);
      const rec = records.get(`${e.module}\u0000${e.recordId}`) ?? null;
      const criteria = rec ? await evaluate(core, def, rec) : { checks: {} };
      await context(core, def, rec, criteria, e, (scope, key) => (wanted.set(`${scope}\u0000${key}`, { scope, key }), 0));
      prepared.push({ x, cur, def, rec, criteria });
    } catch {
      rest.push(x);
    }
  }
  const counts = new Map((await core.store.counters([...wanted.values()])).map((c) => [`${c.scope}\u0000${c.key}`, c.n]));
  const steps: Planned<T>[] = [];
  for (const { x, cur, def, rec, criteria } of prepared) {
    try {
      const e = cur.enrollment;
      const ctx = await context(core, def, rec, criteria, e, (scope, key) => counts.get(`${scope}\u0000${key}`) ?? 0);
      const { next, effects } = transition(e, x.event, ctx);
      if (!next || (next === e && !effects.some((f) => f.type === 'settle' || f.type === 'retryLater')) || effects.some((f) => f.type === 'reject')) {
        rest.push(x);
        continue;
      }
      const commit = buildCommit(core, cur, next, effects, def, rec, actorId(actor), ctx, []);
      for (const b of commit.counters) if (!b.checkOnly) counts.set(`${b.scope}\u0000${b.key}`, (counts.get(`${b.scope}\u0000${b.key}`) ?? 0) + 1);
      steps.push({ x, next, effects, commit, rec });
    } catch {
      rest.push(x);
    }
  }
  return { rest, steps };
}
