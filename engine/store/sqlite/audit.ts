// SQLite's reads of the audit: a page by stored seq (see Store.listAudit).
import type { DatabaseSync } from 'node:sqlite';
import { auditEntries, auditPlan } from '../audit-page';
import type { AuditFilter, AuditRow } from '../store';

type Row = Record<string, unknown>;

export function listAudit(db: { prepare(sql: string): ReturnType<DatabaseSync['prepare']> }, f: AuditFilter): AuditRow[] {
  const p = auditPlan(f);
  const rows = db.prepare(`SELECT seq, at, cadence_id, enrollment_id, record_id, actor, event, reason, data, more FROM audit
    WHERE ${p.column} = ? AND seq ${p.desc ? '<' : '>'} ? ORDER BY seq ${p.desc ? 'DESC' : 'ASC'} LIMIT ?`).all(p.value, p.after, p.limit) as Row[];
  return auditEntries(rows.map((r) => ({
    seq: r.seq as number, at: r.at as number, cadenceId: r.cadence_id as string | null, enrollmentId: r.enrollment_id as string | null,
    recordId: r.record_id as string | null, actor: r.actor as string, event: r.event as string, reason: r.reason as string,
    data: r.data ? JSON.parse(r.data as string) : null, more: r.more ? JSON.parse(r.more as string) : null,
  })), p.desc);
}
