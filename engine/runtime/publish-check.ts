// The publish check (issue 14, D4): before a version is published, its view and criteria run on the
// module's stored records. An expression broken on its own, or one that runs out of time or memory on a
// record, refuses the publish, naming the field and a record; one that fails only on some records' data publishes with a warning
// (those records are skipped with the reason when they would enroll). Every record is read, a page at a
// time, but within a time budget: a module of millions must not hold a deploy for minutes, so past the
// budget the check says how many records it covered and the rest are decided as they enroll.
import { criteriaFields, criteriaProblems, problemMessage, type RecordProblem } from '../criteria/definition';
import jsonata from 'jsonata';
import { CadenzaError } from '../model/errors';
import type { CadenceDefinition } from '../model/types';
import { PAGE, type Core } from './core';

/** Default time budget of the check, in ms of wall time (a resource bound, like the sandbox's deadline). */
export const PUBLISH_CHECK_MS = 3000;

/** Throws the D4 refusal, or returns the warnings to publish with. */
export async function publishCheck(core: Core, def: CadenceDefinition): Promise<string[]> {
  const constant = constantView(def);
  return [...(constant ? [constant] : []), ...(await checkOnRecords(core, def))];
}

/**
 * E2: a view that reads nothing of the record (`42`, `true`, a bare date test) decides the same for every
 * record: the whole module enrolls, or none of it. Published, with that said (it may be meant).
 */
function constantView(def: CadenceDefinition): string | undefined {
  const view = def.enrollment?.mode === 'view' ? def.enrollment.view : undefined;
  if (typeof view !== 'string' || !view.trim()) return undefined;
  let ast: unknown;
  try {
    ast = jsonata(view).ast();
  } catch {
    return undefined; // a view that does not parse is refused elsewhere, naming why
  }
  const reads = (n: unknown): boolean => {
    if (!n || typeof n !== 'object') return false;
    const node = n as { type?: unknown; value?: unknown };
    if (node.type === 'name' || (node.type === 'variable' && (node.value === '' || node.value === '$'))) return true;
    return Object.values(n).some((v) => (Array.isArray(v) ? v.some(reads) : typeof v === 'object' && reads(v)));
  };
  return reads(ast) ? undefined : `enrollment.view reads no field of the record (${view.length > 40 ? `${view.slice(0, 40)}…` : view}): it decides the same for every record, so every record of ${def.module} enrolls, or none does (E2)`;
}

async function checkOnRecords(core: Core, def: CadenceDefinition): Promise<string[]> {
  const fields = criteriaFields(def);
  if (!fields.length) return [];
  const budget = core.opts.publishCheckMs ?? PUBLISH_CHECK_MS;
  const start = performance.now();
  const now = core.clock.now();
  const found = new Map<string, RecordProblem>();
  const skip = new Set<string>();
  let checked = 0;
  let after: string | null = null;
  for (;;) {
    const page = await core.store.listRecords(def.module, after, PAGE);
    for (let i = 0; i < page.length; i++) {
      for (const p of await criteriaProblems(core.criteria, def, [page[i]], now, core.opts.timezone, skip)) {
        // The first refusal ends the check: it is the answer, whatever the other records hold.
        if (p.kind === 'invalid') throw new CadenzaError('invalid_definition', 'D4', problemMessage(p));
        // Out of time or memory on a stored record: every record it meets would pay the limit again (a
        // publish enrolling the module, each upsert), and the view still decides nothing. Refused.
        if (p.kind === 'timeout' || p.kind === 'resource')
          throw new CadenzaError('invalid_definition', 'D4', `${problemMessage(p)}. An expression must decide each record at once; this one ran out of ${p.kind === 'timeout' ? 'time' : 'memory'}: simplify it (a regex with nested repetition, a recursion, a huge range)`);
        found.set(p.field, p);
        skip.add(p.field);
      }
      checked++;
      // Every field has its warning: the other records cannot add one.
      if (found.size === fields.length) return [...found.values()].map(problemMessage);
      // Checked after each record, not each page: one page of records that each run to their time-out is already long.
      const more = i < page.length - 1 || page.length === PAGE;
      if (more && performance.now() - start >= budget) {
        return [...[...found.values()].map(problemMessage),
          `the publish check stopped after ${checked} stored ${def.module} records (time budget ${budget} ms); the rest are checked as they enroll`];
      }
    }
    if (page.length < PAGE) return [...found.values()].map(problemMessage);
    after = page[page.length - 1].id;
  }
}
