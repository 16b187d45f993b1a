// What both stores share to read the audit a page at a time: which indexed column the filter names,
// the bounds of a page, and the entries of stored (packed) rows in the order asked for.
import { AUDIT_MAX_PAGE, unpackAudit, type AuditFilter, type AuditRow, type PackedAudit } from './store';

export interface AuditPlan {
  /** audit_enrollment, audit_record and audit_cadence are (column, seq) indexes: either order walks one. */
  column: 'enrollment_id' | 'record_id' | 'cadence_id';
  value: string;
  desc: boolean;
  /** The cursor as a seq bound (exclusive): no cursor is everything in that direction. */
  after: number;
  limit: number;
}

export function auditPlan(f: AuditFilter): AuditPlan {
  const desc = f.order === 'desc';
  const after = typeof f.after === 'number' && Number.isFinite(f.after) ? f.after : desc ? Number.MAX_SAFE_INTEGER : 0;
  const limit = Math.min(Math.max(Math.floor(f.limit ?? AUDIT_MAX_PAGE), 1), AUDIT_MAX_PAGE);
  const column = f.enrollmentId ? 'enrollment_id' : f.recordId ? 'record_id' : 'cadence_id';
  return { column, value: f.enrollmentId ?? f.recordId ?? f.cadenceId ?? '', desc, after, limit };
}

/** Stored rows (already in the page's order) to entries; newest first reverses a row's entries too. */
export function auditEntries(rows: (AuditRow & { more: PackedAudit['more'] })[], desc: boolean): AuditRow[] {
  return rows.flatMap((r) => (desc ? unpackAudit(r).reverse() : unpackAudit(r)));
}
