// Live state for editors, read from the store (so it survives deploys and restarts): how many
// enrollments wait at each step and when the next is due, and which ones a publish would stop (V2).
import { transition } from '../machine/machine';
import type { Context, Enrollment } from '../machine/types';
import type { CadenceDefinition } from '../model/types';
import type { Store } from '../store/store';

export interface StepState {
  /** Active enrollments positioned at this node (a due step, an awaited outcome or completion). */
  waiting: number;
  /** The earliest due time among them, or null. */
  nextDue: number | null;
  /** Follow-ups executed at this node, all time (A1). */
  executed: number;
}

const PAGE = 500;

async function eachActive(store: Store, cadenceId: string, fn: (e: Enrollment) => void | Promise<void>): Promise<void> {
  let after: string | undefined;
  for (;;) {
    const page = await store.listEnrollments({ cadenceId, status: 'active', after, limit: PAGE });
    for (const s of page) await fn(s.enrollment);
    if (page.length < PAGE) return;
    after = page[page.length - 1].enrollment.id;
  }
}

/** Per node id: waiting count, next due, executed. One pass over the cadence's active enrollments. */
export async function stepStates(store: Store, cadenceId: string): Promise<Record<string, StepState>> {
  const out: Record<string, StepState> = {};
  const at = (id: string) => (out[id] ??= { waiting: 0, nextDue: null, executed: 0 });
  await eachActive(store, cadenceId, (e) => {
    if (!e.position) return;
    const s = at(e.position);
    s.waiting++;
    if (e.dueAt !== null && (s.nextDue === null || e.dueAt < s.nextDue)) s.nextDue = e.dueAt;
  });
  for (const x of (await store.cadenceStats(cadenceId)).executed) at(x.nodeId).executed = x.n;
  return out;
}

export interface WouldStop {
  recordId: string;
  nodeId: string;
  /** Not stopped now: its path (on its own version, V1) reaches this step, which `next` deletes, and fails there. Its name. */
  deleted?: string;
}

/**
 * The enrollments publishing `next` would stop (V2), decided by the machine itself on a dry run of
 * its `published` event, so the warning and the publish can never disagree.
 */
export async function wouldStop(store: Store, next: CadenceDefinition, definitionOf: (version: number) => Promise<CadenceDefinition>, now: number): Promise<WouldStop[]> {
  const out: WouldStop[] = [];
  const defs = new Map<number, Promise<CadenceDefinition>>();
  await eachActive(store, next.id, async (e) => {
    if (!defs.has(e.version)) defs.set(e.version, definitionOf(e.version));
    const ctx: Context = { now, def: await defs.get(e.version)!, record: null, criteria: { checks: {} }, timezone: 'UTC', templates: new Set(), defaultSender: '', sentToday: {}, actionsLeft: Infinity };
    const r = transition(e, { type: 'published', next, version: e.version + 1, by: 'preview' }, ctx);
    if (r.next?.status === 'stopped') return void out.push({ recordId: e.recordId, nodeId: e.position ?? '' });
    const gone = e.position ? deletedAhead(ctx.def, next, e.position) : undefined;
    if (gone) out.push({ recordId: e.recordId, nodeId: gone.id, deleted: gone.name ?? gone.id });
  });
  return out;
}

/** The first follow-up after `from` on `def`'s paths that `next` no longer has (a deleted step an enrollment would reach). */
function deletedAhead(def: CadenceDefinition, next: CadenceDefinition, from: string): { id: string; name?: string } | undefined {
  const kept = new Set(next.nodes.map((n) => n.id));
  const seen = new Set<string>([from]);
  const queue = def.edges.filter((e) => e.from === from).map((e) => e.to);
  while (queue.length) {
    const id = queue.shift()!;
    if (seen.has(id)) continue;
    seen.add(id);
    const node = def.nodes.find((n) => n.id === id);
    if (node?.type === 'followUp' && !kept.has(id)) return { id, name: node.name };
    queue.push(...def.edges.filter((e) => e.from === id).map((e) => e.to));
  }
  return undefined;
}
