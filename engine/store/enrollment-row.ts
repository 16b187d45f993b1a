// How an enrollment is laid out in its row, for both stores: its identity, status and times are
// columns (indexed, read by SQL), and `state` holds the rest of the machine's state. Those fields were
// kept in `state` too, twice the bytes on every step's write and in every waiting row; now they are
// left out of it on write and put back from the columns on read. Rows written before still carry them
// in `state`: the columns win, and hold the same values.
import type { Enrollment } from '../machine/types';
import type { StoredEnrollment } from './store';

/** The columns a read of an enrollment takes (its state, rev, and the fields kept only in columns). */
export const ENROLLMENT_READ = 'state, rev, id, cadence_id, record_id, module, status, reason, started_at, updated_at';

/** The state's fields its row keeps in columns, left out of `state` when written. */
export const COLUMN_FIELDS = ['id', 'cadenceId', 'recordId', 'module', 'status', 'reason', 'startedAt', 'updatedAt'] as const;

/** An enrollment's `state` as stored: without what its columns hold. */
export function stateOf(e: Enrollment): Omit<Enrollment, (typeof COLUMN_FIELDS)[number]> {
  const { id: _i, cadenceId: _c, recordId: _r, module: _m, status: _s, reason: _why, startedAt: _a, updatedAt: _u, ...rest } = e;
  return rest;
}

/** A row read with ENROLLMENT_READ, its state already parsed. */
export function storedEnrollment(r: Record<string, unknown>, state: object): StoredEnrollment {
  return {
    enrollment: {
      ...state, id: r.id, cadenceId: r.cadence_id, recordId: r.record_id, module: r.module, status: r.status, reason: r.reason,
      startedAt: Number(r.started_at), updatedAt: Number(r.updated_at),
    } as Enrollment,
    rev: r.rev as number,
  };
}
