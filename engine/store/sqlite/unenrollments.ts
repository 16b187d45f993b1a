// SQLite: the latest un-enrollments of a cadence (Store.latestUnenrollments), on the partial index of 0007.
import type { DatabaseSync } from 'node:sqlite';
import type { Unenrollment } from '../store';

type Row = Record<string, unknown>;

export function latestUnenrollments(db: { prepare(sql: string): ReturnType<DatabaseSync['prepare']> }, cadenceId: string, limit: number): Unenrollment[] {
  const rows = db.prepare(`SELECT id, record_id, status, reason, updated_at FROM enrollments
    WHERE cadence_id = ? AND status IN ('stopped', 'failed') ORDER BY updated_at DESC, id DESC LIMIT ?`).all(cadenceId, Math.max(0, Math.floor(limit))) as Row[];
  return rows.map((r) => ({ enrollmentId: r.id as string, recordId: r.record_id as string, status: r.status as Unenrollment['status'], reason: r.reason as string, at: r.updated_at as number }));
}
