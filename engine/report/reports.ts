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

export async function listEnrollments(core: Core, cadenceId: string, filter: { status?: Enrollment['status']; after?: string; limit?: number | string }, actor: Actor = AUTOMATION): Promise<Enrollment[]> {
  requirePermission(actor, 'view', 'P2');
  await core.requireCadence(cadenceId);
  const statuses = ['active', 'completed', 'stopped', 'failed'];
  if (filter.status !== undefined && !statuses.includes(filter.status)) throw new CadenzaError('invalid_filter', 'D4', `status must be one of ${statuses.join(', ')}`);
  // As the audit pages do: a limit out of range is said, not quietly clamped.
  const limit = filter.limit === undefined || filter.limit === '' ? 100 : Number(filter.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw badFilter('limit', 'limit must be a whole number from 1 to 1000');
  return (await core.store.listEnrollments({ cadenceId, status: filter.status, after: filter.after, limit })).map((e) => e.enrollment);
}

export async function getEnrollment(core: Core, cadenceId: string, recordId: string): Promise<Enrollment | undefined> {
  return (await core.store.findEnrollment(cadenceId, recordId))?.enrollment;
}

/** How many of the latest un-enrollments (with their reasons) a report shows. */
export const LATEST_UNENROLLMENTS = 10;

export async function cadenceReport(core: Core, id: string, actor: Actor = AUTOMATION) {
  requirePermission(actor, 'view', 'P2');
  const row = await core.requireCadence(id);
  const stats = await core.store.cadenceStats(id);
  // Their own query (enrollments.reason), not a scan of the audit: a flood of audit rows cannot hide them.
  const latestUnenrollments = await core.store.latestUnenrollments(id, LATEST_UNENROLLMENTS);
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
    latestUnenrollments,
  };
}

/** A2: every cadence a record is or was in. */
export async function recordReport(core: Core, recordId: string, actor: Actor = AUTOMATION) {
  requirePermission(actor, 'view', 'P2');
  return (await core.store.listEnrollments({ recordId })).map(({ enrollment: e }) => ({
    cadenceId: e.cadenceId, enrollmentId: e.id, startedAt: e.startedAt, enrolledBy: e.enrolledBy, status: e.status, reason: e.reason, position: e.position, version: e.version,
  }));
}

/** How to page an audit read: a `next` from an earlier page, or where to start (default: the newest). */
export interface AuditPageQuery {
  cursor?: string;
  order?: string;
  limit?: number | string;
}

/** One page of entries, oldest first within the page; `next` reads on (older for "desc", newer for "asc"). */
export interface AuditPage {
  log: AuditRow[];
  next: string | null;
}

/** Stored rows per page, by default and at most (a row is one step: one to a few entries). */
export const AUDIT_PAGE_ROWS = 1000;

function auditBounds(q: AuditPageQuery): { order: 'asc' | 'desc'; after?: number; limit: number } {
  let limit = AUDIT_PAGE_ROWS;
  if (q.limit !== undefined && q.limit !== '') {
    limit = Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > AUDIT_PAGE_ROWS) throw badFilter('limit', `limit must be a whole number from 1 to ${AUDIT_PAGE_ROWS}`);
  }
  if (q.cursor !== undefined && q.cursor !== '') {
    // The cursor carries its direction, so following `next` needs nothing else from the caller.
    const m = /^(before|after):(\d{1,15})$/.exec(String(q.cursor));
    if (!m) throw badFilter('cursor', 'cursor must be the "next" of an earlier page (before:<seq> or after:<seq>)');
    return { order: m[1] === 'before' ? 'desc' : 'asc', after: Number(m[2]), limit };
  }
  if (q.order !== undefined && q.order !== '' && q.order !== 'asc' && q.order !== 'desc') throw badFilter('order', 'order must be "asc" (oldest first) or "desc" (newest first)');
  return { order: q.order === 'asc' ? 'asc' : 'desc', limit };
}

/**
 * A page of the audit by stored seq. By default the newest page, so the latest entries (a manual
 * un-enroll's reason after thousands of rows) are never the ones a cap cuts off; `next` leads on.
 */
async function auditPage(core: Core, filter: { enrollmentId?: string; recordId?: string; cadenceId?: string }, q: AuditPageQuery): Promise<AuditPage> {
  const b = auditBounds(q);
  // One stored row more than the page tells whether there is a next page without a second read.
  const rows = await core.store.listAudit({ ...filter, order: b.order, after: b.after, limit: b.limit + 1 });
  const seqs = [...new Set(rows.map((r) => r.seq!))];
  const more = seqs.length > b.limit;
  const page = more ? rows.filter((r) => r.seq !== seqs[b.limit]) : rows;
  const last = seqs[Math.min(seqs.length, b.limit) - 1];
  return { log: b.order === 'desc' ? page.reverse() : page, next: more ? `${b.order === 'desc' ? 'before' : 'after'}:${last}` : null };
}

/** A3 + U9: the ordered log of inputs and decisions of one enrollment, a page at a time (newest first by default). */
export async function why(core: Core, enrollmentId: string, actor: Actor = AUTOMATION, q: AuditPageQuery = {}): Promise<AuditPage> {
  requirePermission(actor, 'view', 'P2');
  const page = await auditPage(core, { enrollmentId }, q);
  // An empty page past a cursor is the end of a log, or a log that never was: only the first is a 200.
  if (!page.log.length && !(await core.store.getEnrollment(enrollmentId))) throw new CadenzaError('unknown_enrollment', 'D4', `no enrollment "${enrollmentId}"`);
  return page;
}

/** U9: the audit of a record or a cadence, a page at a time. */
export async function auditLog(core: Core, filter: { recordId?: string; cadenceId?: string }, actor: Actor = AUTOMATION, q: AuditPageQuery = {}): Promise<AuditPage> {
  requirePermission(actor, 'view', 'P2');
  if (!filter.recordId && !filter.cadenceId) throw badFilter('recordId', 'give recordId or cadenceId');
  if (filter.recordId && filter.cadenceId) throw new CadenzaError('invalid_filter', 'D4', 'give recordId or cadenceId, not both');
  return auditPage(core, filter.recordId ? { recordId: filter.recordId } : { cadenceId: filter.cadenceId }, q);
}

/** D4: a paging or filter parameter that cannot be read, named in the problems as in the message. */
function badFilter(field: string, message: string): CadenzaError {
  return new CadenzaError('invalid_filter', 'D4', message, [{ field, rule: 'D4', message }]);
}
