// Every criteria expression of a definition, decided for one record, with errors kept as errors
// (issue 14): a view that cannot be decided does not enroll, exit criteria that cannot be decided do
// not let a record in, and both say why in the answer, the why-log and the report. And the publish
// check (D4): the view and the criteria run on stored records, and an error names the field and a record.
import type { CadenceDefinition } from '../model/types';
import type { Criteria, CriteriaError, Decision } from './criteria';

/** One criteria expression of a definition, with the field that holds it (as D4 errors name it). */
export interface CriteriaField {
  field: string;
  expression: string;
  /** The un-enroll check node, for `nodes[i].criteria`. */
  nodeId?: string;
}

export interface CriteriaFailure {
  field: string;
  expression: string;
  code?: string;
  kind: CriteriaError['kind'];
  message: string;
}

/** What the runtime's CriteriaResults needs, plus what could not be decided. */
export interface DecidedCriteria {
  /** undefined when there is no view, or it could not be decided (see errors). */
  view?: boolean;
  exit?: boolean;
  checks: Record<string, boolean>;
  /** Every expression that failed on this record; empty when all were decided. */
  errors: CriteriaFailure[];
}

export function criteriaFields(def: CadenceDefinition): CriteriaField[] {
  const out: CriteriaField[] = [];
  if (def.enrollment?.view) out.push({ field: 'enrollment.view', expression: def.enrollment.view });
  if (def.unenroll?.criteria) out.push({ field: 'unenroll.criteria', expression: def.unenroll.criteria });
  def.nodes.forEach((n, i) => {
    if (n.type === 'unenrollCheck' && n.criteria) out.push({ field: `nodes[${i}].criteria`, expression: n.criteria, nodeId: n.id });
  });
  return out;
}

const failure = (f: CriteriaField, e: CriteriaError): CriteriaFailure => ({ field: f.field, expression: f.expression, code: e.code, kind: e.kind, message: e.message });

/** The zone criteria read `$today()` in: the record's own `Time_Zone`, else the cadence's (E7, F11). */
export function criteriaZone(def: CadenceDefinition, data: Record<string, unknown>, fallback?: string): string | undefined {
  const own = data.Time_Zone;
  return typeof own === 'string' && own ? own : (def.timezone ?? fallback);
}

/** Decides every criteria expression of `def` for one record at the engine clock `now`. */
export async function decideAll(c: Criteria, def: CadenceDefinition, data: Record<string, unknown>, now: number, zone?: string): Promise<DecidedCriteria> {
  const out: DecidedCriteria = { checks: {}, errors: [] };
  for (const f of criteriaFields(def)) {
    const d: Decision = await c.decide(f.expression, data, now, zone);
    if (d.error) {
      out.errors.push(failure(f, d.error));
      continue;
    }
    if (f.nodeId) out.checks[f.nodeId] = d.match;
    else if (f.field === 'enrollment.view') out.view = d.match;
    else out.exit = d.match;
  }
  return out;
}

export interface RecordProblem extends CriteriaFailure {
  recordId: string;
}

/**
 * The publish check (D4): each criteria field on the given stored records; returns the first failure
 * of each field (naming the record), so the caller can refuse, or warn for time-outs. The caller pages
 * through the module; `skip` names the fields a page before already failed on (not tried again).
 */
export async function criteriaProblems(
  c: Criteria, def: CadenceDefinition, records: readonly { id: string; data: Record<string, unknown> }[], now: number, fallbackZone?: string,
  skip: ReadonlySet<string> = new Set(),
): Promise<RecordProblem[]> {
  const fields = criteriaFields(def).filter((f) => !skip.has(f.field));
  const found = new Map<string, RecordProblem>();
  for (const rec of records) {
    for (const f of fields) {
      if (found.has(f.field)) continue;
      const d = await c.decide(f.expression, rec.data, now, criteriaZone(def, rec.data, fallbackZone));
      if (d.error) found.set(f.field, { ...failure(f, d.error), recordId: rec.id });
    }
    if (found.size === fields.length) break;
  }
  return [...found.values()];
}

/** A D4 message for a publish refusal: the field, the record and what failed. */
export function problemMessage(p: RecordProblem): string {
  return `${p.field} cannot be decided for record "${p.recordId}": ${p.message}`;
}
