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

/**
 * The order an enrollment's fields are declared in (machine/types.ts): reads give every enrollment its
 * fields in this order, whether its row was written before or after the columns left `state`, so an
 * API answer never mixes two orders (a client that diffs or hashes raw JSON sees no change).
 */
const ORDER = ['id', 'cadenceId', 'version', 'recordId', 'module', 'status', 'run', 'position', 'wait', 'dueAt', 'startedAt', 'anchorAt',
  'outcomeAt', 'enrolledBy', 'reason', 'updatedAt', 'last', 'exitChecks', 'executed', 'heldBy'];

/** A row read with ENROLLMENT_READ, its state already parsed. */
export function storedEnrollment(r: Record<string, unknown>, state: Record<string, unknown>): StoredEnrollment {
  const columns: Record<string, unknown> = {
    id: r.id, cadenceId: r.cadence_id, recordId: r.record_id, module: r.module, status: r.status, reason: r.reason,
    startedAt: Number(r.started_at), updatedAt: Number(r.updated_at),
  };
  const e: Record<string, unknown> = {};
  for (const k of ORDER) {
    if (k in columns) e[k] = columns[k];
    else if (k in state) e[k] = state[k];
  }
  for (const k of Object.keys(state)) if (!(k in e)) e[k] = state[k]; // a field added later keeps its value
  return { enrollment: e as unknown as Enrollment, rev: r.rev as number };
}
