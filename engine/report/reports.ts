// Reads and reports (A1, A2, A3, U9, P2): cadences, enrollments, what each follow-up came to, and the
// audit log. Nothing here writes; each read but getEnrollment needs the `view` permission.
import type { Enrollment } from '../machine/types';
import { CadenzaError } from '../model/errors';
import type { CadenceDefinition, FollowUpNode } from '../model/types';
import type { Core } from '../runtime/core';
import { AUTOMATION, requirePermission, type Actor } from '../runtime/permissions';
import type { AuditRow, CadenceRow } from '../store/store';

/** The cadences, with what is published and what is drafted (P2: view). */
export async function listCadences(core: Core, actor: Actor = AUTOMATION, module?: string): Promise<CadenceRow[]> {
  requirePermission(actor, 'view', 'P2');
  return core.store.listCadences(module);
}

export async function getCadence(core: Core, id: string, actor: Actor = AUTOMATION): Promise<{ cadence: CadenceRow; definition: CadenceDefinition | null }> {
  requirePermission(actor, 'view', 'P2');
  const cadence = await core.requireCadence(id);
  return { cadence, definition: cadence.activeVersion ? await core.definition(id, cadence.activeVersion) : null };
}

export async function listEnrollments(core: Core, cadenceId: string, filter: { status?: Enrollment['status']; after?: string; limit?: number }, actor: Actor = AUTOMATION): Promise<Enrollment[]> {
  requirePermission(actor, 'view', 'P2');
  await core.requireCadence(cadenceId);
  const statuses = ['active', 'completed', 'stopped', 'failed'];
  if (filter.status !== undefined && !statuses.includes(filter.status)) throw new CadenzaError('invalid_filter', 'D4', `status must be one of ${statuses.join(', ')}`);
  const limit = Math.min(Math.max(Number(filter.limit) || 100, 1), 1000);
  return (await core.store.listEnrollments({ cadenceId, status: filter.status, after: filter.after, limit })).map((e) => e.enrollment);
}

export async function getEnrollment(core: Core, cadenceId: string, recordId: string): Promise<Enrollment | undefined> {
  return (await core.store.findEnrollment(cadenceId, recordId))?.enrollment;
}

export async function cadenceReport(core: Core, id: string, actor: Actor = AUTOMATION) {
  requirePermission(actor, 'view', 'P2');
  const row = await core.requireCadence(id);
  const stats = await core.store.cadenceStats(id);
  const count = (s: string) => stats.byStatus.filter((r) => r.status === s).reduce((a, r) => a + r.n, 0);
  const executed = Object.fromEntries(stats.executed.map((r) => [r.nodeId, r.n]));
  const waiting = Object.fromEntries(stats.waiting.map((r) => [r.nodeId, r.n]));
  const held = Object.fromEntries(stats.held.map((r) => [r.nodeId, r.n]));
  const followUps = (row.activeVersion ? (await core.definition(id, row.activeVersion)).nodes : [])
    .filter((n): n is FollowUpNode => n.type === 'followUp')
    .map((n) => {
      const ran = executed[n.id] ?? 0;
      const outcomes = Object.fromEntries(stats.outcomes.filter((o) => o.nodeId === n.id).map((o) => [o.outcome, { count: o.n, rate: ran ? o.n / ran : 0 }]));
      // D6: actions whose performer is failing, held and retried under their key.
      return { nodeId: n.id, name: n.name ?? n.id, channel: n.channel, executed: ran, waitingForPerformer: waiting[n.id] ?? 0, heldByFatigue: held[n.id] ?? 0, outcomes };
    });
  return {
    cadenceId: id, status: row.status, version: row.activeVersion,
    enrolled: stats.byStatus.reduce((a, r) => a + r.n, 0), active: count('active'), completed: count('completed'), failed: count('failed'),
    stopped: count('stopped'),
    stoppedByReason: Object.fromEntries(stats.byStatus.filter((r) => r.status === 'stopped').map((r) => [r.reason, r.n])),
    failedByReason: Object.fromEntries(stats.byStatus.filter((r) => r.status === 'failed').map((r) => [r.reason, r.n])),
    followUps,
  };
}

/** A2: every cadence a record is or was in. */
export async function recordReport(core: Core, recordId: string, actor: Actor = AUTOMATION) {
  requirePermission(actor, 'view', 'P2');
  return (await core.store.listEnrollments({ recordId })).map(({ enrollment: e }) => ({
    cadenceId: e.cadenceId, enrollmentId: e.id, startedAt: e.startedAt, enrolledBy: e.enrolledBy, status: e.status, reason: e.reason, position: e.position, version: e.version,
  }));
}

/** A3 + U9: the ordered log of inputs and decisions of one enrollment. */
export async function why(core: Core, enrollmentId: string, actor: Actor = AUTOMATION): Promise<AuditRow[]> {
  requirePermission(actor, 'view', 'P2');
  return core.store.listAudit({ enrollmentId });
}

export async function auditLog(core: Core, filter: { recordId?: string; cadenceId?: string }, actor: Actor = AUTOMATION): Promise<AuditRow[]> {
  requirePermission(actor, 'view', 'P2');
  if (!filter.recordId && !filter.cadenceId) throw new CadenzaError('invalid_filter', 'D4', 'give recordId or cadenceId');
  return core.store.listAudit(filter);
}

