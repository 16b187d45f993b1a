// Cadences (C1-C3, V1-V3): create, edit the draft, clone, preview, publish, deactivate and activate,
// and deploy (what a host does on deploy: make the store match a compiled definition). Publishing and
// activating enroll the records a view cadence matches now, through enrollment.ts.
import { Criteria } from '../criteria/criteria';
import type { CriteriaResults, RecordSnapshot } from '../machine/types';
import { CadenzaError } from '../model/errors';
import type { CadenceDefinition } from '../model/types';
import { assertDefinition, canonicalJson } from '../model/validate';
import type { CadenceRow } from '../store/store';
import { parseInstant } from '../time/time';
import type { Core } from './core';
import { publishCheck } from './publish-check';
import { enrollMany } from './enrollment';
import { moduleLimits } from './limits';
import { actorId, AUTOMATION, requirePermission, type Actor } from './permissions';
import { apply, evaluate } from './step';
import type { DeployResult } from './types';

/** What a definition is checked against in this engine: its approved WhatsApp templates and stored email templates. */
const checks = (core: Core) => ({ whatsappTemplates: core.opts.whatsappTemplates, emailTemplates: [...core.templateIds] });

export async function createCadence(core: Core, input: unknown, actor: Actor): Promise<CadenceRow> {
  requirePermission(actor, 'manage');
  const def = assertDefinition(input, checks(core));
  if (await core.store.getCadence(def.id)) throw new CadenzaError('exists', 'C2', `cadence "${def.id}" already exists: edit its draft instead`);
  const created = (await core.store.listCadences(def.module)).length;
  const limit = moduleLimits(core.opts.limits).created;
  if (created >= limit) throw new CadenzaError('limit', 'C3', `module ${def.module} already has ${created} cadences (limit ${limit})`);
  const now = core.clock.now();
  const row: CadenceRow = { id: def.id, module: def.module, name: def.name, status: 'draft', draft: def, activeVersion: null, createdAt: now, updatedAt: now };
  await core.store.putCadence(row);
  await core.audit({ cadenceId: def.id, actor, event: 'created', reason: `cadence created in ${def.module}` });
  return row;
}

/** C2: edits the draft; the active version keeps running until the draft is published. */
export async function updateDraft(core: Core, id: string, input: unknown, actor: Actor): Promise<CadenceRow> {
  requirePermission(actor, 'manage');
  const row = await core.requireCadence(id);
  const def = assertDefinition(input, checks(core));
  if (def.id !== id) throw new CadenzaError('invalid_definition', 'D4', `definition id "${def.id}" does not match cadence "${id}"`);
  if (def.module !== row.module) throw new CadenzaError('invalid_definition', 'C1', `a cadence belongs to one module: ${row.module}, not ${def.module}`);
  const next = { ...row, name: def.name, draft: def, updatedAt: core.clock.now() };
  await core.store.putCadence(next);
  await core.audit({ cadenceId: id, actor, event: 'edited', reason: 'draft saved' });
  return next;
}

/** C1: clone within the module only. */
export async function cloneCadence(core: Core, id: string, newId: string, actor: Actor, module?: string): Promise<CadenceRow> {
  const row = await core.requireCadence(id);
  if (module !== undefined && module !== row.module) throw new CadenzaError('cross_module', 'C1', `a cadence of ${row.module} cannot be cloned into ${module}`);
  const source = row.draft ?? (row.activeVersion ? await core.definition(id, row.activeVersion) : undefined);
  return createCadence(core, { ...source, id: newId, name: `${source?.name ?? id} (copy)` }, actor);
}

/** E2: how many known records the draft's view would enroll now ("review your custom view count"). */
export async function previewEnrollment(core: Core, id: string, actor: Actor = AUTOMATION): Promise<{ matching: number; skippedByExit: number; alreadyEnrolled: number }> {
  requirePermission(actor, 'view', 'P2');
  const row = await core.requireCadence(id);
  const def = row.draft ?? (await core.definition(id, row.activeVersion!));
  const out = { matching: 0, skippedByExit: 0, alreadyEnrolled: 0 };
  if (def.enrollment.mode !== 'view') return out;
  await core.eachRecord(def.module, async (rec) => {
    const c = await evaluate(core, def, rec);
    if (!c.view) return;
    if (await core.store.findEnrollment(id, rec.id)) out.alreadyEnrolled++;
    else if (c.exit) out.skippedByExit++;
    else out.matching++;
  });
  return out;
}

/** C2, V1, V2: the draft becomes a new immutable version; enrollments waiting on an edited follow-up stop. */
export async function publish(core: Core, id: string, actor: Actor): Promise<{ version: number; stopped: number; enrolled: number; warnings?: string[] }> {
  requirePermission(actor, 'manage');
  const row = await core.requireCadence(id);
  if (!row.draft) throw new CadenzaError('no_draft', 'C2', `cadence "${id}" has no draft to publish`);
  const def = assertDefinition(row.draft, checks(core));
  if (row.status !== 'active') await checkActiveLimit(core, row.module);
  const warnings = await publishCheck(core, def);
  // D1: armed before the version goes live, so a process dying anywhere after it (the running
  // enrollments' update, the module's enrollment) leaves the enrollment of the module to finish.
  await armBackfill(core, def);
  const version = (row.activeVersion ?? 0) + 1;
  const now = core.clock.now();
  if (!(await core.store.addVersion(id, version, def, now, actorId(actor)))) {
    throw new CadenzaError('conflict', 'V1', `version ${version} of cadence "${id}" was just published by another process`);
  }
  await core.store.putCadence({ ...row, status: 'active', activeVersion: version, draft: null, updatedAt: now });
  await core.audit({ cadenceId: id, actor, event: 'published', reason: `version ${version} published` });
  let stopped = 0;
  if (row.activeVersion) {
    await core.eachEnrollment(id, 'active', async (e) => {
      const r = await apply(core, e.enrollment.id, { type: 'published', next: def, version, by: actorId(actor) }, actor);
      if (r.state?.status === 'stopped') stopped++;
    });
  }
  // Publishing an inactive cadence activates it: what was halted stays halted, never run later (V3).
  if (row.status === 'inactive') await core.eachEnrollment(id, 'active', (e) => apply(core, e.enrollment.id, { type: 'activated', by: actorId(actor) }, actor));
  await scheduleCadenceTimers(core, def);
  const enrolled = await enrollMatching(core, def);
  return { version, stopped, enrolled, ...(warnings.length ? { warnings } : {}) };
}

/** V3: halts every scheduled action of the cadence; un-enrollment still happens while inactive (U7). */
export async function deactivate(core: Core, id: string, actor: Actor): Promise<void> {
  requirePermission(actor, 'manage');
  const row = await core.requireCadence(id);
  if (row.status !== 'active') throw new CadenzaError('not_active', 'V3', `cadence "${id}" is ${row.status}`);
  await core.store.putCadence({ ...row, status: 'inactive', updatedAt: core.clock.now() });
  await core.store.deleteTimer(`e7:${id}`);
  await core.audit({ cadenceId: id, actor, event: 'deactivated', reason: 'cadence deactivated (V3)' });
  await core.eachEnrollment(id, 'active', (e) => apply(core, e.enrollment.id, { type: 'deactivated', by: actorId(actor) }, actor));
}

/** V3: halted actions never run later; newly matching records enroll again. */
export async function activate(core: Core, id: string, actor: Actor): Promise<{ enrolled: number }> {
  requirePermission(actor, 'manage');
  const row = await core.requireCadence(id);
  if (row.status === 'active') return { enrolled: 0 };
  if (!row.activeVersion) throw new CadenzaError('no_version', 'C2', `cadence "${id}" was never published`);
  await checkActiveLimit(core, row.module);
  const def = await core.definition(id, row.activeVersion);
  await armBackfill(core, def);
  await core.store.putCadence({ ...row, status: 'active', updatedAt: core.clock.now() });
  await core.audit({ cadenceId: id, actor, event: 'activated', reason: 'cadence activated (V3)' });
  await core.eachEnrollment(id, 'active', (e) => apply(core, e.enrollment.id, { type: 'activated', by: actorId(actor) }, actor));
  await scheduleCadenceTimers(core, def);
  return { enrolled: await enrollMatching(core, def) };
}

/**
 * What a host does on deploy/activation: make the store match a compiled definition. New -> created
 * and published; changed -> a new version (V1, V2); unchanged but inactive -> activated; else nothing.
 */
export async function deploy(core: Core, input: unknown, actor: Actor): Promise<DeployResult> {
  const def = assertDefinition(input, checks(core));
  // Several instances deploying the same flows at once (a cluster booting) take turns: the first
  // publishes, the others then find their definition published (unchanged).
  return core.store.exclusive(`deploy:${def.id}`, () => deployOnce(core, def, actor));
}

async function deployOnce(core: Core, def: CadenceDefinition, actor: Actor): Promise<DeployResult> {
  const row = await core.store.getCadence(def.id);
  if (!row) {
    // C3: refused before anything is written, so a refused deploy leaves no draft taking a creation slot.
    await checkActiveLimit(core, def.module);
    await createCadence(core, def, actor);
    return { action: 'created', ...(await publish(core, def.id, actor)) };
  }
  const current = row.activeVersion ? await core.definition(def.id, row.activeVersion) : null;
  if (current && canonicalJson(current) === canonicalJson(def)) {
    if (row.status === 'active') return { action: 'unchanged', version: row.activeVersion!, stopped: 0, enrolled: 0 };
    const { enrolled } = await activate(core, def.id, actor);
    return { action: 'activated', version: row.activeVersion!, stopped: 0, enrolled };
  }
  await updateDraft(core, def.id, def, actor);
  return { action: 'published', ...(await publish(core, def.id, actor)) };
}

/** Active enrollments of a cadence, for host status displays. */
export async function countActive(core: Core, cadenceId: string): Promise<number> {
  const stats = await core.store.cadenceStats(cadenceId);
  return stats.byStatus.filter((r) => r.status === 'active').reduce((a, r) => a + r.n, 0);
}

/** How long the publish itself has to enroll the module's matches before the durable backfill timer takes over. */
const BACKFILL_GRACE_MS = 5 * 60_000;

/**
 * E2 on publish or activation: the records already known that match the view enroll. Durable (D1): a
 * timer is armed first and dropped when every page is done, so a process that dies mid-way (a module
 * of 20,000) finishes the job after its restart instead of leaving the rest out for good; records
 * already enrolled are skipped (E6), so running it again enrolls only what is missing.
 */
export async function enrollMatching(core: Core, def: CadenceDefinition): Promise<number> {
  if (def.enrollment.mode !== 'view') return 0;
  await armBackfill(core, def);
  const n = await enrollAllMatching(core, def);
  await core.store.deleteTimer(`e2:${def.id}`);
  return n;
}

/** The durable reminder that the module's matching records are still to enroll (fired by the scheduler after a crash). */
async function armBackfill(core: Core, def: CadenceDefinition): Promise<void> {
  if (def.enrollment.mode === 'view') await core.store.setTimer({ id: `e2:${def.id}`, kind: 'backfill', cadenceId: def.id, dueAt: core.clock.now() + BACKFILL_GRACE_MS, priority: 1 });
}

async function enrollAllMatching(core: Core, def: CadenceDefinition): Promise<number> {
  const row = await core.requireCadence(def.id);
  let n = 0;
  // Page by page: enrollMany skips records already enrolled (E6) with one read per page.
  await core.eachRecordPage(def.module, async (page) => {
    const matching: RecordSnapshot[] = [];
    const known = new Map<string, CriteriaResults>();
    for (const rec of page) {
      const criteria = await evaluate(core, def, rec);
      if (criteria.view) (matching.push(rec), known.set(rec.id, criteria));
    }
    n += (await enrollMany(core, def, row.activeVersion!, matching, AUTOMATION, known)).filter((a) => a.status === 'enrolled').length;
  });
  return n;
}

export async function scheduleCadenceTimers(core: Core, def: CadenceDefinition): Promise<void> {
  const onDate = def.unenroll?.onDate && parseInstant(def.unenroll.onDate, def.timezone ?? core.opts.timezone);
  if (onDate) await core.store.setTimer({ id: `u4:${def.id}`, kind: 'unenrollDate', cadenceId: def.id, dueAt: onDate, priority: 0 });
  else await core.store.deleteTimer(`u4:${def.id}`);
  const timed = [def.enrollment.view, def.unenroll?.criteria, ...def.nodes.map((n) => (n.type === 'unenrollCheck' ? n.criteria : undefined))]
    .some((x) => x && Criteria.dependsOnTime(x));
  if (timed) await core.store.setTimer({ id: `e7:${def.id}`, kind: 'viewRecheck', cadenceId: def.id, dueAt: core.clock.now() + core.opts.recheckMs, priority: 2 });
  else await core.store.deleteTimer(`e7:${def.id}`);
}

async function checkActiveLimit(core: Core, module: string): Promise<void> {
  const active = (await core.store.listCadences(module)).filter((c) => c.status === 'active').length;
  const limit = moduleLimits(core.opts.limits).active;
  if (active >= limit) throw new CadenzaError('limit', 'C3', `module ${module} already has ${active} active cadences (limit ${limit})`);
}

