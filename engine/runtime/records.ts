// Records (E2, E7, E8, F8): the latest snapshot of each record, and what a change sets off: its
// enrollments re-check their criteria (U2, U3) and view cadences enroll it (E2). Many records at once
// is the one path; a single record is a batch of one.
import { transition } from '../machine/machine';
import type { CriteriaResults, Effect, Enrollment, RecordSnapshot } from '../machine/types';
import { CadenzaError } from '../model/errors';
import type { Commit, StoredEnrollment } from '../store/store';
import { recordIdOf, uniqueRuns, type Core } from './core';
import { enrollMany } from './enrollment';
import { actorId, AUTOMATION, requirePermission, type Actor } from './permissions';
import { apply, buildCommit, commitAll, committed, context, evaluate } from './step';
import type { EnrollAnswer, UpsertAnswer } from './types';

/** Saves the latest snapshot of a record and reacts: un-enroll on criteria (U2, U3), enroll into views (E2). */
export async function upsertRecord(core: Core, module: string, input: unknown, actor: Actor = AUTOMATION): Promise<EnrollAnswer[]> {
  const [answer] = await upsertRecords(core, module, [input], actor);
  if ('error' in answer) throw answer.error;
  return answer.enrollments;
}

/**
 * Many records at once (an import, an n8n batch, a page of E7 re-evaluation): one read and one write
 * of the snapshots, one read of their enrollments, and per view cadence one set-based commit of the
 * enrollments they start. Each record answers on its own; a bad one (D4) is refused, the rest go on.
 */
export async function upsertRecords(core: Core, module: string, inputs: readonly unknown[], actor: Actor = AUTOMATION): Promise<UpsertAnswer[]> {
  requirePermission(actor, 'enroll'); // a saved record may enter view cadences
  if (!Array.isArray(inputs)) throw new CadenzaError('invalid_records', 'D4', 'records must be a list');
  const answers: UpsertAnswer[] = new Array(inputs.length);
  const valid: { i: number; rec: RecordSnapshot }[] = [];
  inputs.forEach((input, i) => {
    try {
      valid.push({ i, rec: core.checkRecord(module, input) });
    } catch (e) {
      if (!(e instanceof CadenzaError)) throw e;
      answers[i] = { recordId: recordIdOf(input), error: e };
    }
  });
  for (const run of uniqueRuns(valid, (v) => v.rec.id)) {
    const snapshots = await core.saveRecords(run.map((v) => v.rec));
    const results = await reactMany(core, snapshots, actor);
    run.forEach((v, k) => (answers[v.i] = { recordId: v.rec.id, enrollments: results[k] }));
  }
  return answers;
}

/** F8: no more emails from any cadence; calls and tasks continue. */
export async function unsubscribe(core: Core, module: string, id: string, actor: Actor = AUTOMATION): Promise<void> {
  requirePermission(actor, 'unenroll');
  const rec = await core.requireRecord(module, id);
  // Idempotent: a second click (or the mail client's one-click POST after the page's button) logs nothing more.
  if (rec.unsubscribed) return;
  const snap = { ...rec, unsubscribed: true };
  await core.store.putRecords([snap], core.clock.now());
  await core.audit({ recordId: id, actor, event: 'unsubscribed', reason: 'record unsubscribed from emails (F8)' });
  await withdrawEmails(core, [snap], actor);
}

/**
 * F8: an email of these (unsubscribed) records still waiting for its performer — queued, or held for a
 * retry after a failed hand-off — is taken back and the machine skips it; one a hand-off has in flight
 * keeps its outcome (D5): if that hand-off fails, the machine drops it then (handOffFailed).
 */
async function withdrawEmails(core: Core, recs: RecordSnapshot[], actor: Actor): Promise<void> {
  const unsubscribed = recs.filter((r) => r.unsubscribed);
  if (!unsubscribed.length) return;
  for (const { enrollment: e } of await core.store.enrollmentsOfRecords(unsubscribed.map((r) => r.id))) {
    const last = e.last;
    if (e.status !== 'active' || e.wait !== 'delivery' || last?.channel !== 'email' || last.delivery !== 'queued') continue;
    if (await core.store.withdrawOutbox(last.key, core.clock.now())) await apply(core, e.id, { type: 'emailWithdrawn', key: last.key }, actor);
  }
}

/** E8: a converted lead leaves all its cadences. */
export async function convertRecord(core: Core, module: string, id: string, actor: Actor = AUTOMATION): Promise<number> {
  requirePermission(actor, 'unenroll');
  await core.requireRecord(module, id);
  let n = 0;
  for (const e of await core.store.listEnrollments({ recordId: id, status: 'active' })) {
    if (e.enrollment.module !== module) continue;
    await apply(core, e.enrollment.id, { type: 'converted' }, actor);
    n++;
  }
  return n;
}

/** A batch of saved records of one module: their enrollments re-check (U2, U3), view cadences enroll (E2). */
export async function reactMany(core: Core, recs: RecordSnapshot[], actor: Actor): Promise<EnrollAnswer[][]> {
  if (!recs.length) return [];
  const module = recs[0].module;
  const mine = new Map<string, StoredEnrollment[]>();
  for (const e of await core.store.enrollmentsOfRecords(recs.map((r) => r.id))) {
    if (e.enrollment.module !== module) continue;
    mine.set(e.enrollment.recordId, [...(mine.get(e.enrollment.recordId) ?? []), e]);
  }
  await recordsChanged(core, recs, mine, actor);
  await withdrawEmails(core, recs, actor);
  const answers = recs.map((): EnrollAnswer[] => []);
  for (const c of await core.store.listCadences(module)) {
    if (c.status !== 'active' || !c.activeVersion) continue;
    const def = await core.definition(c.id, c.activeVersion);
    if (def.enrollment.mode !== 'view') continue;
    const matching: number[] = [];
    const known = new Map<string, CriteriaResults>();
    for (let k = 0; k < recs.length; k++) {
      // E6: any enrollment, even a stopped one, blocks automatic enrollment; only a manual re-enroll brings it back.
      // The answer says so, instead of an empty list a caller cannot tell from "no view matched".
      const before = (mine.get(recs[k].id) ?? []).find((e) => e.enrollment.cadenceId === c.id)?.enrollment;
      if (before) {
        answers[k].push(before.status === 'active'
          ? { recordId: recs[k].id, cadenceId: c.id, status: 'skipped', reason: 'already enrolled; re-enroll to resume or restart', rule: 'E1', enrollmentId: before.id }
          : { recordId: recs[k].id, cadenceId: c.id, status: 'skipped', reason: `enrolled before (${before.status}: ${before.reason}); only a manual re-enrollment brings it back`, rule: 'E6', enrollmentId: before.id });
        continue;
      }
      const criteria = await evaluate(core, def, recs[k]);
      if (criteria.view) (matching.push(k), known.set(recs[k].id, criteria));
      else {
        // A view that cannot be decided for this record does not enroll it, and the answer says why (issue 14).
        const undecided = criteria.errors?.find((x) => x.field === 'enrollment.view');
        if (undecided) answers[k].push({ recordId: recs[k].id, cadenceId: c.id, status: 'skipped', rule: 'E2', reason: `enrollment.view cannot be decided for this record: ${undecided.message}` });
      }
    }
    const got = await enrollMany(core, def, c.activeVersion, matching.map((k) => recs[k]), AUTOMATION, known);
    got.forEach((a, j) => answers[matching[j]].push({ ...a, cadenceId: c.id }));
  }
  return answers;
}

/**
 * U2/U3 for a batch: each active enrollment of the changed records re-checks its criteria in memory
 * (their state and the new snapshots are at hand); what changes commits as one batch, and a step
 * another worker moved first is applied again one by one.
 */
async function recordsChanged(core: Core, recs: RecordSnapshot[], mine: Map<string, StoredEnrollment[]>, actor: Actor): Promise<void> {
  const steps: { cur: StoredEnrollment; next: Enrollment; effects: Effect[]; commit: Commit }[] = [];
  for (const rec of recs) {
    for (const cur of mine.get(rec.id) ?? []) {
      const e = cur.enrollment;
      if (e.status !== 'active') continue;
      const def = await core.definition(e.cadenceId, e.version);
      const ctx = await context(core, def, rec, await evaluate(core, def, rec), e);
      const { next, effects } = transition(e, { type: 'recordChanged' }, ctx);
      if (!next || (next === e && effects.every((f) => f.type === 'reject'))) continue;
      steps.push({ cur, next, effects, commit: buildCommit(core, cur, next, effects, def, rec, actorId(actor), ctx, []) });
    }
  }
  const applied = await commitAll(core, steps.map((x) => x.commit));
  for (const [k, x] of steps.entries()) {
    if (applied[k]) committed(core, x.next, x.effects);
    else await apply(core, x.cur.enrollment.id, { type: 'recordChanged' }, actor);
  }
}

