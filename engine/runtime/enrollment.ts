// Enrollment (E1, E3, E9, R1-R5, U5, D6): records enter a cadence, come back (resume, restart, retry)
// or are taken out. `enrollMany` is the one way in, for the API, record changes and view cadences alike.
import { transition } from '../machine/machine';
import type { CriteriaResults, Effect, Enrollment, RecordSnapshot } from '../machine/types';
import { CadenzaError } from '../model/errors';
import type { CadenceDefinition } from '../model/types';
import type { Commit, CounterBump } from '../store/store';
import { bucketStart, nextBucket } from '../time/time';
import { recordIdOf, uniqueRuns, type Core } from './core';
import { actorId, requirePermission, type Actor } from './permissions';
import { apply, buildCommit, commit, commitAll, committed, context, evaluate, MAX_CONFLICTS } from './step';
import type { EnrollAnswer } from './types';

const ALREADY_ENROLLED = (recordId: string): EnrollAnswer => ({ recordId, status: 'skipped', reason: 'already enrolled; re-enroll to resume or restart', rule: 'E1' });

/** E1: one record or many; each gets an answer. Records may be given whole (they are saved first) or by id. */
export async function enroll(core: Core, cadenceId: string, records: readonly unknown[], actor: Actor): Promise<EnrollAnswer[]> {
  requirePermission(actor, 'enroll');
  const row = await core.requireCadence(cadenceId);
  if (row.status !== 'active' || !row.activeVersion) throw new CadenzaError('not_active', 'E1', `cadence "${cadenceId}" is not active: publish it first`);
  if (!Array.isArray(records)) throw new CadenzaError('invalid_records', 'D4', 'records must be a list');
  const def = await core.definition(cadenceId, row.activeVersion);
  const answers: EnrollAnswer[] = new Array(records.length);
  const valid: { i: number; id: string; rec?: RecordSnapshot }[] = [];
  records.forEach((item, i) => {
    try {
      if (typeof item === 'string') valid.push({ i, id: item });
      else {
        const rec = core.checkRecord(def.module, item);
        valid.push({ i, id: rec.id, rec });
      }
    } catch (e) {
      if (!(e instanceof CadenzaError)) throw e;
      answers[i] = { recordId: recordIdOf(item), status: 'skipped', reason: e.message, rule: e.rule ?? 'D4' };
    }
  });
  for (const run of uniqueRuns(valid, (v) => v.id)) {
    const saved = new Map((await core.saveRecords(run.flatMap((v) => (v.rec ? [v.rec] : [])))).map((r) => [r.id, r]));
    const byId = run.filter((v) => !v.rec);
    const known = new Map((await core.store.getRecords(byId.map((v) => ({ module: def.module, id: v.id })))).map((r) => [r.id, r]));
    const found: { i: number; rec: RecordSnapshot }[] = [];
    for (const v of run) {
      const rec = saved.get(v.id) ?? known.get(v.id);
      if (rec) found.push({ i: v.i, rec });
      else answers[v.i] = { recordId: v.id, status: 'skipped', reason: `unknown ${def.module} record`, rule: 'D4' };
    }
    const got = await enrollMany(core, def, row.activeVersion, found.map((f) => f.rec), actorId(actor));
    found.forEach((f, k) => (answers[f.i] = got[k]));
  }
  return answers;
}

/**
 * Enrolls distinct records into one cadence: one read of their enrollments, every transition in
 * memory, one set-based commit. Paced cadences (E9) and steps that bump capped counters go one by
 * one, since a cap refuses steps individually.
 */
export async function enrollMany(core: Core, def: CadenceDefinition, version: number, recs: RecordSnapshot[], by: string, known?: Map<string, CriteriaResults>): Promise<EnrollAnswer[]> {
  if (!recs.length) return [];
  const exists = new Set((await core.store.getEnrollments(recs.map((r) => `${def.id}:${r.id}`))).map((e) => e.enrollment.id));
  const answers = new Map<string, EnrollAnswer>();
  const steps: { rec: RecordSnapshot; next: Enrollment; effects: Effect[]; commit: Commit }[] = [];
  const slots = pacer(core, def);
  for (const rec of recs) {
    const id = `${def.id}:${rec.id}`;
    if (exists.has(id)) {
      answers.set(rec.id, ALREADY_ENROLLED(rec.id));
      continue;
    }
    const criteria = known?.get(rec.id) ?? (await evaluate(core, def, rec));
    const ctx = await context(core, def, rec, criteria, null);
    const slot = await slots.take();
    const { next, effects } = transition(null, { type: 'enroll', id, version, by, startAt: slot.startAt }, ctx);
    const rejected = effects.find((f) => f.type === 'reject');
    if (!next || rejected) {
      slots.giveBack(slot);
      answers.set(rec.id, { recordId: rec.id, status: 'skipped', reason: rejected?.type === 'reject' ? rejected.reason : 'refused', rule: rejected?.type === 'reject' ? rejected.rule : 'E1' });
    } else steps.push({ rec, next, effects, commit: buildCommit(core, null, next, effects, def, rec, by, ctx, slot.counters) });
  }
  const applied = await commitAll(core, steps.map((x) => x.commit));
  for (const [k, x] of steps.entries()) {
    if (applied[k]) {
      committed(core, x.next, x.effects);
      answers.set(x.rec.id, { recordId: x.rec.id, status: 'enrolled', enrollmentId: x.next.id, startAt: x.next.startedAt });
    } else if (x.commit.counters.length) {
      answers.set(x.rec.id, await enrollOne(core, def, version, x.rec, by, known?.get(x.rec.id))); // a cap filled meanwhile: pace it again
    } else answers.set(x.rec.id, ALREADY_ENROLLED(x.rec.id)); // another worker enrolled it first
  }
  return recs.map((r) => answers.get(r.id)!);
}

/**
 * E9 for a batch: hands out start times bucket by bucket, reading each hour/day counter once and
 * counting the batch's own enrollments in memory (the store re-checks every cap at commit).
 */
function pacer(core: Core, def: CadenceDefinition) {
  type Slot = { startAt?: number; counters: CounterBump[] };
  const cap = def.enrollment.cap;
  const zone = def.timezone ?? core.opts.timezone;
  const seen = new Map<string, number>();
  const count = async (key: string) => {
    if (!seen.has(key)) seen.set(key, (await core.store.counters([{ scope: 'enroll', key }]))[0]?.n ?? 0);
    return seen.get(key)!;
  };
  let t = core.clock.now();
  return {
    take: async (): Promise<Slot> => {
      if (!cap?.perHour && !cap?.perDay) return { counters: [] };
      for (let i = 0; i < 100_000; i++) {
        const h = `${def.id}|h|${bucketStart(t, 'hour', zone)}`;
        const d = `${def.id}|d|${bucketStart(t, 'day', zone)}`;
        if (cap.perHour && (await count(h)) >= cap.perHour) t = nextBucket(t, 'hour', zone);
        else if (cap.perDay && (await count(d)) >= cap.perDay) t = nextBucket(t, 'day', zone);
        else {
          const counters: CounterBump[] = [];
          if (cap.perHour) (counters.push({ scope: 'enroll', key: h, max: cap.perHour }), seen.set(h, (await count(h)) + 1));
          if (cap.perDay) (counters.push({ scope: 'enroll', key: d, max: cap.perDay }), seen.set(d, (await count(d)) + 1));
          return { startAt: t, counters };
        }
      }
      throw new CadenzaError('cap', 'E9', 'enrollment queue is longer than the pacing horizon');
    },
    giveBack: (slot: Slot) => {
      for (const b of slot.counters) seen.set(b.key, (seen.get(b.key) ?? 1) - 1);
      // Earlier buckets may have room again: start looking from the slot given back.
      if (slot.startAt !== undefined && slot.startAt < t) t = slot.startAt;
    },
  };
}

async function enrollOne(core: Core, def: CadenceDefinition, version: number, rec: RecordSnapshot, by: string, known?: CriteriaResults): Promise<EnrollAnswer> {
  const criteria = known ?? (await evaluate(core, def, rec));
  const id = `${def.id}:${rec.id}`;
  for (let i = 0; i < MAX_CONFLICTS; i++) {
    if (await core.store.getEnrollment(id)) return ALREADY_ENROLLED(rec.id);
    const { startAt, counters } = await pacer(core, def).take(); // E9: the first hour/day bucket with room
    const ctx = await context(core, def, rec, criteria, null);
    const { next, effects } = transition(null, { type: 'enroll', id, version, by, startAt }, ctx);
    const rejected = effects.find((f) => f.type === 'reject');
    if (!next || rejected) return { recordId: rec.id, status: 'skipped', reason: rejected?.type === 'reject' ? rejected.reason : 'refused', rule: rejected?.type === 'reject' ? rejected.rule : 'E1' };
    if (await commit(core, null, next, effects, def, rec, by, ctx, counters)) return { recordId: rec.id, status: 'enrolled', enrollmentId: id, startAt: next.startedAt };
  }
  throw new CadenzaError('conflict', 'D2', `could not enroll ${rec.id}: too many concurrent changes`);
}

/** R1-R5: resume where it stopped, or restart from the first follow-up, on the active version. */
export async function reenroll(core: Core, cadenceId: string, recordId: string, mode: 'resume' | 'restart', actor: Actor): Promise<EnrollAnswer> {
  requirePermission(actor, 'enroll', 'R5');
  if (mode !== 'resume' && mode !== 'restart') throw new CadenzaError('invalid_mode', 'R1', 'mode must be "resume" or "restart"');
  const row = await core.requireCadence(cadenceId);
  if (row.status !== 'active' || !row.activeVersion) throw new CadenzaError('not_active', 'E1', `cadence "${cadenceId}" is not active`);
  const cur = await core.store.findEnrollment(cadenceId, recordId);
  if (!cur) return { recordId, status: 'skipped', reason: 'never enrolled: enroll instead', rule: 'R1' };
  const r = await apply(core, cur.enrollment.id, { type: 'reenroll', mode, version: row.activeVersion, by: actorId(actor) }, actor);
  const rej = r.effects.find((f) => f.type === 'reject');
  if (rej?.type === 'reject') return { recordId, status: 'skipped', reason: rej.reason, rule: rej.rule };
  return { recordId, status: 'enrolled', enrollmentId: cur.enrollment.id };
}

/**
 * D6: a failed enrollment runs just its failed step again, under the same key (a host that already
 * performed it recognises the key). R3's restart from the first follow-up stays available.
 */
export async function retry(core: Core, cadenceId: string, recordId: string, actor: Actor): Promise<EnrollAnswer> {
  requirePermission(actor, 'enroll', 'R5');
  const row = await core.requireCadence(cadenceId);
  if (row.status !== 'active') throw new CadenzaError('not_active', 'V3', `cadence "${cadenceId}" is ${row.status}: activate it to retry`);
  const cur = await core.store.findEnrollment(cadenceId, recordId);
  if (!cur) return { recordId, status: 'skipped', reason: 'never enrolled: enroll instead', rule: 'D6' };
  const r = await apply(core, cur.enrollment.id, { type: 'retry', by: actorId(actor) }, actor);
  const rej = r.effects.find((f) => f.type === 'reject');
  if (rej?.type === 'reject') return { recordId, status: 'skipped', reason: rej.reason, rule: rej.rule };
  return { recordId, status: 'enrolled', enrollmentId: cur.enrollment.id, reason: 'retried' };
}

/** U5: a user un-enrolls a record; every scheduled action of it is cancelled (U8). */
export async function unenroll(core: Core, cadenceId: string, recordId: string, actor: Actor, reason = 'un-enrolled manually (U5)'): Promise<Enrollment> {
  requirePermission(actor, 'unenroll');
  const cur = await core.store.findEnrollment(cadenceId, recordId);
  if (!cur) throw new CadenzaError('not_enrolled', 'U5', `record "${recordId}" is not enrolled in "${cadenceId}"`);
  const r = await apply(core, cur.enrollment.id, { type: 'unenroll', by: actorId(actor), reason }, actor);
  const rej = r.effects.find((f) => f.type === 'reject');
  if (rej?.type === 'reject') throw new CadenzaError('not_active', rej.rule, rej.reason);
  return r.state!;
}

