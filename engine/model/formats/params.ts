// Flat node parameters (what a Node-RED editor or an n8n node panel stores) -> canonical pieces.
// Both hosts use these, so a trigger, a step, a branch or a check means the same in each.
import type { CadenceDefinition, CadenceNode, Channel, Delay, DelayUnit, SendWindow, UnenrollSettings } from '../types';

export type Params = Record<string, unknown>;

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined);

/** '' and absent mean "not set"; anything else must be a number (validation names it if not). */
export function num(v: unknown): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  return typeof v === 'number' ? v : Number(v);
}

/** "a, b ,c" or ["a","b"] -> ["a","b","c"]. */
export function list(v: unknown): string[] | undefined {
  if (Array.isArray(v)) return v.map(String).map((s) => s.trim()).filter(Boolean);
  const s = str(v);
  return s ? s.split(',').map((x) => x.trim()).filter(Boolean) : undefined;
}

export function delay(amount: unknown, unit: unknown): Delay | undefined {
  const a = num(amount);
  if (a === undefined) return undefined;
  return { amount: a, unit: (str(unit) ?? 'days') as DelayUnit };
}

/** A count where 0 or empty means "no limit" (n8n number fields cannot be empty). */
function limit(v: unknown): number | undefined {
  const n = num(v);
  return n === 0 ? undefined : n;
}

/** An optional delay where 0 means "none" (a branch timeout of 0 is no timeout path). */
function optionalDelay(amount: unknown, unit: unknown): Delay | undefined {
  const d = delay(amount, unit);
  return d && d.amount !== 0 ? d : undefined;
}

export function triggerSettings(p: Params): Omit<CadenceDefinition, 'id' | 'nodes' | 'edges'> {
  const mode = p.mode === 'view' ? 'view' : 'manual';
  const cap = { perHour: limit(p.capPerHour), perDay: limit(p.capPerDay) };
  const days = list(p.windowDays)?.map(Number);
  const window: SendWindow = { days: days?.length ? days : undefined, start: str(p.windowStart), end: str(p.windowEnd), holidays: list(p.holidays) };
  const unenroll: UnenrollSettings = {
    onLeaveView: p.leaveView === true || p.leaveView === 'true' ? true : undefined,
    criteria: str(p.exitCriteria),
    onDate: str(p.unenrollDate),
    outcomes: list(p.exitOutcomes),
    companyReply: p.companyReply === true || p.companyReply === 'true' ? true : undefined,
  };
  return prune({
    name: str(p.name) ?? 'Cadence',
    module: str(p.module) ?? 'Leads',
    enrollment: prune({ mode, view: mode === 'view' ? str(p.view) ?? '' : undefined, cap: cap.perHour || cap.perDay ? prune(cap) : undefined }),
    timezone: str(p.timezone),
    sendWindow: Object.values(window).some((x) => x !== undefined) ? prune(window) : undefined,
    senderDailyCap: limit(p.senderDailyCap),
    fatigue: p.fatigueExempt === true || p.fatigueExempt === 'true' ? 'exempt' : undefined, // F13: a transactional cadence
    unenroll: Object.values(unenroll).some((x) => x !== undefined) ? prune(unenroll) : undefined,
  }) as Omit<CadenceDefinition, 'id' | 'nodes' | 'edges'>;
}

export function followUpNode(id: string, p: Params): CadenceNode {
  const subject = typeof p.subject === 'string' ? p.subject : undefined;
  const body = typeof p.body === 'string' ? p.body : undefined;
  return prune({
    id, type: 'followUp' as const, name: str(p.name), channel: (str(p.channel) ?? 'email') as Channel,
    delay: delay(p.delay, p.delayUnit), relativeTo: p.relativeTo === 'previous' || p.relativeTo === 'outcome' ? p.relativeTo : undefined,
    template: subject !== undefined || body !== undefined ? prune({ subject, body: body ?? '' }) : undefined,
    templateId: str(p.templateId), sender: str(p.sender), assignee: str(p.assignee), dueIn: delay(p.dueIn, p.dueInUnit),
  }) as CadenceNode;
}

export function branchNode(id: string, p: Params): CadenceNode {
  return prune({ id, type: 'outcomeBranch' as const, name: str(p.name), outcomes: list(p.outcomes) ?? ['replied'], timeout: optionalDelay(p.timeout, p.timeoutUnit) }) as CadenceNode;
}

export function checkNode(id: string, p: Params): CadenceNode {
  return prune({ id, type: 'unenrollCheck' as const, name: str(p.name), criteria: typeof p.criteria === 'string' ? p.criteria : '' }) as CadenceNode;
}

/** The output ports of a branch, in order: its outcomes, then "timeout" when it has one. */
export function branchPorts(p: Params): string[] {
  const ports = list(p.outcomes) ?? ['replied'];
  return optionalDelay(p.timeout, p.timeoutUnit) ? [...ports, 'timeout'] : ports;
}

function prune<T extends object>(o: T): T {
  const r = o as Record<string, unknown>;
  for (const k of Object.keys(r)) if (r[k] === undefined) delete r[k];
  return o;
}
