// PostgreSQL: the latest un-enrollments of a cadence (Store.latestUnenrollments), on the partial index of 0007.
import type pg from 'pg';
import type { Unenrollment } from '../store';

type Row = Record<string, unknown>;

export async function latestUnenrollments(db: pg.Pool, cadenceId: string, limit: number): Promise<Unenrollment[]> {
  const { rows } = await db.query(`SELECT id, record_id, status, reason, updated_at FROM enrollments
    WHERE cadence_id = $1 AND status IN ('stopped', 'failed') ORDER BY updated_at DESC, id COLLATE "C" DESC LIMIT $2`, [cadenceId, Math.max(0, Math.floor(limit))]);
  return (rows as Row[]).map((r) => ({ enrollmentId: r.id as string, recordId: r.record_id as string, status: r.status as Unenrollment['status'], reason: r.reason as string, at: r.updated_at as number }));
}
