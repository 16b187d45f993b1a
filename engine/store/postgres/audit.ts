// PostgreSQL's reads of the audit: a page by stored seq (see Store.listAudit). Columns are named (no
// `SELECT *`), so the statement can stay prepared across migrations.
import type pg from 'pg';
import { auditEntries, auditPlan } from '../audit-page';
import type { AuditFilter, AuditRow, PackedAudit } from '../store';

type Row = Record<string, unknown>;

export async function listAudit(db: pg.Pool, f: AuditFilter): Promise<AuditRow[]> {
  const p = auditPlan(f);
  const { rows } = await db.query(`SELECT seq, at, cadence_id, enrollment_id, record_id, actor, event, reason, data, more FROM audit
    WHERE ${p.column} = $1 AND seq ${p.desc ? '<' : '>'} $2 ORDER BY seq ${p.desc ? 'DESC' : 'ASC'} LIMIT $3`, [p.value, p.after, p.limit]);
  return auditEntries((rows as Row[]).map((r) => ({
    seq: r.seq as number, at: r.at as number, cadenceId: r.cadence_id as string | null, enrollmentId: r.enrollment_id as string | null, recordId: r.record_id as string | null,
    actor: r.actor as string, event: r.event as string, reason: r.reason as string, data: (r.data as Record<string, unknown> | null) ?? null, more: (r.more as PackedAudit['more']) ?? null,
  })), p.desc);
}
