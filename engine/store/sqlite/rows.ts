// How SQLite rows become the store's types: JSON columns parsed, integers as booleans.
import type { RecordSnapshot } from '../../machine/types';
import { storedEnrollment } from '../enrollment-row';
import type { CadenceRow, OutboxRow, StoredEnrollment } from '../store';

type Row = Record<string, unknown>;

export function cadenceRow(r: Row): CadenceRow {
  return {
    id: r.id as string, module: r.module as string, name: r.name as string, status: r.status as CadenceRow['status'],
    draft: r.draft ? JSON.parse(r.draft as string) : null, activeVersion: (r.active_version as number | null) ?? null,
    createdAt: r.created_at as number, updatedAt: r.updated_at as number,
  };
}

export function recordRow(r: Row): RecordSnapshot {
  return { id: r.id as string, module: r.module as string, data: JSON.parse(r.data as string), unsubscribed: r.unsubscribed === 1 };
}

/** A row read with ENROLLMENT_READ (enrollment-row.ts). */
export function stored(r: Row): StoredEnrollment {
  return storedEnrollment(r, JSON.parse(r.state as string) as Record<string, unknown>);
}

export function outboxRow(r: Row): OutboxRow {
  return {
    key: r.key as string, enrollmentId: r.enrollment_id as string, cadenceId: r.cadence_id as string, nodeId: r.node_id as string,
    recordId: r.record_id as string, channel: r.channel as string, payload: JSON.parse(r.payload as string), status: r.status as OutboxRow['status'],
    attempts: r.attempts as number, availableAt: r.available_at as number, createdAt: r.created_at as number, lastError: (r.last_error as string | null) ?? null,
  };
}
