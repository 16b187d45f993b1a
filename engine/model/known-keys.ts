// D4: a definition's keys, each one known. A misspelt key ("sendwindow", "Delay", "timout") was read as
// absent: the cadence ran with no send window, no delay, no timeout, and nothing said so. Every object
// of a definition is closed, as schema/cadence.schema.json says; a near miss names the key it resembles.
import type { Problem } from './errors';

const DELAY = ['amount', 'unit'];
const KNOWN = {
  definition: ['$schema', 'id', 'name', 'module', 'timezone', 'enrollment', 'sendWindow', 'senderDailyCap', 'fatigue', 'unenroll', 'nodes', 'edges', 'sample'],
  enrollment: ['mode', 'view', 'cap'],
  cap: ['perHour', 'perDay'],
  sendWindow: ['days', 'start', 'end', 'holidays'],
  unenroll: ['onLeaveView', 'criteria', 'onDate', 'outcomes', 'companyReply'],
  edge: ['from', 'port', 'to'],
  template: ['subject', 'body'],
  followUp: ['id', 'type', 'name', 'channel', 'delay', 'relativeTo', 'template', 'templateId', 'sender', 'assignee', 'dueIn'],
  outcomeBranch: ['id', 'type', 'name', 'outcomes', 'timeout'],
  unenrollCheck: ['id', 'type', 'name', 'criteria'],
} as const;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Every key of the definition's objects that the engine does not read, named with its path. */
export function unknownKeyProblems(def: Obj): Problem[] {
  const out: Problem[] = [];
  const check = (o: unknown, known: readonly string[], field: string, node?: string) => {
    if (!isObj(o)) return;
    for (const k of Object.keys(o)) {
      if (known.includes(k)) continue;
      const near = nearest(k, known);
      out.push({ rule: 'D4', field: field ? `${field}.${k}` : k, message: `is not a field the engine reads${near ? ` (did you mean "${near}"?)` : ''}: known here are ${known.join(', ')}`, node });
    }
  };
  check(def, KNOWN.definition, '');
  check(def.enrollment, KNOWN.enrollment, 'enrollment');
  if (isObj(def.enrollment)) check(def.enrollment.cap, KNOWN.cap, 'enrollment.cap');
  check(def.sendWindow, KNOWN.sendWindow, 'sendWindow');
  check(def.unenroll, KNOWN.unenroll, 'unenroll');
  if (Array.isArray(def.edges)) def.edges.forEach((e, i) => check(e, KNOWN.edge, `edges[${i}]`));
  if (Array.isArray(def.nodes)) {
    def.nodes.forEach((n) => {
      if (!isObj(n) || typeof n.id !== 'string') return;
      const known = n.type === 'followUp' || n.type === 'outcomeBranch' || n.type === 'unenrollCheck' ? KNOWN[n.type] : undefined;
      if (!known) return; // an unknown type is reported by the validator itself
      check(n, known, '', n.id);
      check(n.template, KNOWN.template, 'template', n.id);
      for (const d of ['delay', 'dueIn', 'timeout']) check(n[d], DELAY, d, n.id);
    });
  }
  return out;
}

/** The known key a typo most likely meant: the same letters in another case, or at most two edits away. */
function nearest(key: string, known: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  const same = known.find((k) => k.toLowerCase() === lower);
  if (same) return same;
  let best: string | undefined;
  let bestD = 3;
  for (const k of known) {
    const d = distance(lower, k.toLowerCase());
    if (d < bestD) (best = k), (bestD = d);
  }
  return best;
}

function distance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}
