// What an Enroll node does with its input, once for both hosts: enroll and update (one set-based
// engine call for all records), re-enroll, retry a failed step (D6), un-enroll, convert or unsubscribe. A refusal (CadenzaError)
// becomes a "skipped" result with its reason and rule — nothing changed for that record; anything else throws.
import { CadenzaError } from '../model/errors';
import type { Actor } from './permissions';
import type { Runtime } from './runtime';

export const RECORD_ACTIONS = ['enroll', 'update', 'resume', 'restart', 'retry', 'unenroll', 'convert', 'unsubscribe'] as const;
export type RecordAction = (typeof RECORD_ACTIONS)[number];

export interface ActionResult {
  ok: boolean;
  payload: Record<string, unknown>;
  error?: CadenzaError;
}

/** The id of a record given whole or as an id. */
export function recordIdOf(p: unknown): string | undefined {
  if (typeof p === 'string' || typeof p === 'number') return String(p);
  return p && typeof p === 'object' && 'id' in p && (p as { id: unknown }).id !== undefined ? String((p as { id: unknown }).id) : undefined;
}

const skipped = (recordId: string | undefined, err: CadenzaError): ActionResult => ({
  ok: false, error: err, payload: { recordId: recordId ?? null, status: 'skipped', reason: err.message, rule: err.rule },
});

export async function runRecordAction(
  rt: Runtime, cadenceId: string, module: string, action: RecordAction, records: readonly unknown[], actor: Actor, reason?: string,
): Promise<ActionResult[]> {
  if (action === 'enroll') {
    try {
      return (await rt.enroll(cadenceId, records, actor)).map((a) => ({ ok: a.status === 'enrolled', payload: { ...a } }));
    } catch (err) {
      if (err instanceof CadenzaError) return records.map((r) => skipped(recordIdOf(r), err));
      throw err;
    }
  }
  if (action === 'update') {
    try {
      return (await rt.upsertRecords(module, records, actor)).map((a) =>
        'error' in a ? skipped(a.recordId, a.error) : { ok: true, payload: { recordId: a.recordId, enrollments: a.enrollments } });
    } catch (err) {
      if (err instanceof CadenzaError) return records.map((r) => skipped(recordIdOf(r), err));
      throw err;
    }
  }
  const results: ActionResult[] = [];
  for (const rec of records) {
    const id = recordIdOf(rec);
    try {
      if (!id) throw new CadenzaError('invalid_record', 'D4', 'the input must be a record id or a record with an id');
      results.push(await one(rt, cadenceId, module, action, id, actor, reason));
    } catch (err) {
      if (!(err instanceof CadenzaError)) throw err;
      results.push(skipped(id, err));
    }
  }
  return results;
}

async function one(rt: Runtime, cadenceId: string, module: string, action: Exclude<RecordAction, 'enroll' | 'update'>, id: string, actor: Actor, reason?: string): Promise<ActionResult> {
  switch (action) {
    case 'resume':
    case 'restart': {
      const a = await rt.reenroll(cadenceId, id, action, actor);
      return { ok: a.status === 'enrolled', payload: { ...a } };
    }
    case 'retry': {
      const a = await rt.retry(cadenceId, id, actor);
      return { ok: a.status === 'enrolled', payload: { ...a } };
    }
    case 'unenroll': {
      const e = await rt.unenroll(cadenceId, id, actor, reason);
      return { ok: true, payload: { recordId: id, status: e.status, reason: e.reason } };
    }
    case 'convert':
      return { ok: true, payload: { recordId: id, left: await rt.convertRecord(module, id, actor) } };
    case 'unsubscribe':
      await rt.unsubscribe(module, id, actor);
      return { ok: true, payload: { recordId: id, unsubscribed: true } };
  }
}
