// Publish-time validation (C4, C6, D4): every problem of a definition, each naming the node, the
// field and the rule, so a user fixes them all in one pass.
import { Criteria, CriteriaError } from '../criteria/criteria';
import { templateProblems } from '../render/html';
import { isValidZone, parseInstant } from '../time/time';
import { CadenzaError, type Problem } from './errors';
import { unknownKeyProblems } from './known-keys';
import { CHANNELS as SCHEMA_CHANNELS, DELAY_MAX, DELAY_UNITS, PATTERNS } from './formats/schema';
import { ALL_OUTCOMES, OUTCOMES, STANDARD_MODULES } from './outcomes';
import type { CadenceDefinition, CadenceNode, Delay, FollowUpNode } from './types';
import { OUT, TIMEOUT, TRIGGER } from './types';

export interface ValidateOptions {
  /** Pre-approved WhatsApp templates (C4); when given, a WhatsApp step must use one of them. */
  whatsappTemplates?: readonly string[];
  /**
   * The stored email templates of the engine (F6, F9), when known: an email's templateId must name one.
   * The hosts and `cadenza serve` have none, so there an email is written with its subject and body.
   */
  emailTemplates?: readonly string[];
  criteria?: Criteria;
}

// Names, options and bounds come from the one parameter schema the editors and the JSON Schema use.
const CHANNELS: readonly string[] = SCHEMA_CHANNELS;
const UNITS: readonly string[] = DELAY_UNITS;
const HHMM = new RegExp(PATTERNS.hhmm);
const ID = new RegExp(PATTERNS.id);
const MODULE = new RegExp(PATTERNS.module);
const EMAIL = new RegExp(PATTERNS.email);
const sharedCriteria = new Criteria();

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isPosInt = (v: unknown) => Number.isInteger(v) && (v as number) > 0;

/** F13: `{ limits: [{ channel?, max, days }] }` (the engine's settings, or a cadence's own); days at most 90. */
export function fatigueProblems(value: unknown, root: string): { field: string; message: string }[] {
  if (!isObj(value) || !Array.isArray(value.limits)) return [{ field: root, message: 'must be "exempt" or { limits: [{ channel?, max, days }] }' }];
  const out: { field: string; message: string }[] = [];
  value.limits.forEach((l: unknown, i: number) => {
    const f = `${root}.limits[${i}]`;
    if (!isObj(l)) return out.push({ field: f, message: 'must be { channel?, max, days }' });
    // A misspelt key ("chanel") would silently widen the limit to every channel.
    for (const k of Object.keys(l)) if (!['channel', 'max', 'days'].includes(k)) out.push({ field: `${f}.${k}`, message: 'unknown (known: channel, max, days)' });
    if (l.channel !== undefined && (!CHANNELS.includes(l.channel as string) || l.channel === 'task')) out.push({ field: `${f}.channel`, message: 'must be email, call or whatsapp (tasks never reach the person), or absent for all of them' });
    if (!isPosInt(l.max)) out.push({ field: `${f}.max`, message: 'must be a positive integer' });
    if (!isPosInt(l.days) || (l.days as number) > 90) out.push({ field: `${f}.days`, message: 'must be a whole number of days, 1 to 90' });
  });
  return out;
}

export function isCustomModule(module: string): boolean {
  return !(STANDARD_MODULES as readonly string[]).includes(module);
}

export interface ShapeLimits {
  /** Deepest nesting of objects and lists (default 32). */
  depth: number;
  /** Most keys and items in all (default 10 000). */
  entries: number;
  /** Longest string, in characters (default 100 000). */
  string: number;
}

export const RECORD_LIMITS: ShapeLimits = { depth: 32, entries: 10_000, string: 100_000 };
export const DEFINITION_LIMITS: ShapeLimits = { depth: 32, entries: 200_000, string: 100_000 };

/**
 * D4: the first place where `value` passes a limit, named as a field path (`record.a.b[3]`), or
 * undefined. Iterative, so a value nested 5,000 levels deep is refused, not a stack overflow (and
 * never reaches JSON.stringify, which would overflow on it).
 */
export function shapeProblem(value: unknown, root: string, limits: ShapeLimits = RECORD_LIMITS): { field: string; message: string } | undefined {
  const at = (field: string, what: string) => ({ field, message: `${field} ${what}` });
  const stack: [unknown, string, number][] = [[value, root, 0]];
  let entries = 0;
  while (stack.length) {
    const [v, path, depth] = stack.pop()!;
    if (typeof v === 'string') {
      if (v.length > limits.string) return at(path, `is longer than ${limits.string} characters`);
      continue;
    }
    if (typeof v === 'number' && !Number.isFinite(v)) return at(path, 'must be a finite number');
    if (v === null || typeof v !== 'object') continue;
    if (depth >= limits.depth) return at(path, `nests deeper than ${limits.depth} levels`);
    if (Array.isArray(v)) {
      entries += v.length;
      if (entries > limits.entries) return at(path, `makes more than ${limits.entries} fields and items in all`);
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], `${path}[${i}]`, depth + 1]);
    } else {
      const keys = Object.keys(v);
      entries += keys.length;
      if (entries > limits.entries) return at(path, `makes more than ${limits.entries} fields and items in all`);
      for (const k of keys) stack.push([(v as Record<string, unknown>)[k], /^[A-Za-z_$][\w$]*$/.test(k) ? `${path}.${k}` : `${path}[${JSON.stringify(k.slice(0, 40))}]`, depth + 1]);
    }
  }
  return undefined;
}

/** Returns every problem of `input` as a definition; an empty list means it can be published. */
export function validateDefinition(input: unknown, options: ValidateOptions = {}): Problem[] {
  const problems: Problem[] = [];
  const shape = shapeProblem(input, 'definition', DEFINITION_LIMITS);
  if (shape) return [{ rule: 'D4', ...shape }];
  const add = (rule: string, field: string, message: string, node?: string) => problems.push({ rule, field, message, node });
  const criteria = options.criteria ?? sharedCriteria;
  const checkExpr = (rule: string, field: string, expr: unknown, node?: string) => {
    if (typeof expr !== 'string' || !expr.trim()) return add(rule, field, 'must be a non-empty JSONata expression', node);
    try {
      for (const p of criteria.lint(expr)) add(rule, field, `JSONata "${expr.length > 80 ? expr.slice(0, 77) + '...' : expr}" ${p}`, node);
    } catch (e) {
      add(rule, field, e instanceof CriteriaError ? e.message : String(e), node);
    }
  };
  const checkDelay = (rule: string, field: string, d: unknown, node?: string) => {
    if (d === undefined) return;
    if (!isObj(d) || typeof d.amount !== 'number' || !Number.isFinite(d.amount) || d.amount < 0 || d.amount > DELAY_MAX)
      return add(rule, field, `must be {amount: 0..${DELAY_MAX}, unit}`, node);
    if (!UNITS.includes(d.unit as string)) add(rule, `${field}.unit`, `must be one of ${UNITS.join(', ')}`, node);
  };

  if (!isObj(input)) {
    add('D4', 'definition', 'must be a JSON object');
    return problems;
  }
  const def = input as Partial<CadenceDefinition> & Record<string, unknown>;
  problems.push(...unknownKeyProblems(def));
  if (typeof def.id !== 'string' || !ID.test(def.id)) add('D4', 'id', 'must be 1-100 characters of letters, digits, _ . : -');
  if (typeof def.name !== 'string' || !def.name.trim()) add('D4', 'name', 'must be a non-empty string');
  if (typeof def.module !== 'string' || !MODULE.test(def.module)) add('C1', 'module', 'must name exactly one module (e.g. Leads)');
  const module = typeof def.module === 'string' ? def.module : '';

  // Trigger settings.
  if (!isObj(def.enrollment)) add('E1', 'enrollment', 'must be {mode: "manual" | "view", view?}');
  else {
    const { mode, view, cap } = def.enrollment as Record<string, unknown>;
    if (mode !== 'manual' && mode !== 'view') add('E1', 'enrollment.mode', 'must be "manual" or "view"');
    if (mode === 'view') checkExpr('E2', 'enrollment.view', view);
    else if (view !== undefined) checkExpr('E2', 'enrollment.view', view);
    if (cap !== undefined) {
      if (!isObj(cap)) add('E9', 'enrollment.cap', 'must be {perHour?, perDay?}');
      else for (const k of ['perHour', 'perDay']) if (cap[k] !== undefined && !isPosInt(cap[k])) add('E9', `enrollment.cap.${k}`, 'must be a positive integer');
    }
  }
  if (def.timezone !== undefined && typeof def.timezone !== 'string') add('F11', 'timezone', 'must be an IANA time zone name (a string)');
  else if (def.timezone !== undefined && !isValidZone(def.timezone)) add('F11', 'timezone', `"${def.timezone}" is not an IANA time zone`);
  if (def.sendWindow !== undefined) {
    const w = def.sendWindow as unknown;
    if (!isObj(w)) add('F11', 'sendWindow', 'must be {days?, start?, end?, holidays?}');
    else {
      if (w.days !== undefined && (!Array.isArray(w.days) || w.days.length === 0 || !w.days.every((d) => Number.isInteger(d) && d >= 1 && d <= 7)))
        add('F11', 'sendWindow.days', 'must be a non-empty list of ISO weekdays 1 (Mon) .. 7 (Sun)');
      for (const k of ['start', 'end']) if (w[k] !== undefined && (typeof w[k] !== 'string' || !HHMM.test(w[k] as string))) add('F11', `sendWindow.${k}`, 'must be "HH:mm"');
      if (typeof w.start === 'string' && typeof w.end === 'string' && w.start >= w.end) add('F11', 'sendWindow', 'start must be before end');
      if (w.holidays !== undefined && (!Array.isArray(w.holidays) || !w.holidays.every((h) => typeof h === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(h) && parseInstant(h, 'UTC') !== undefined)))
        add('F11', 'sendWindow.holidays', 'must be a list of "YYYY-MM-DD" dates that exist (2026-02-30 does not)');
    }
  }
  if (def.senderDailyCap !== undefined && !isPosInt(def.senderDailyCap)) add('F12', 'senderDailyCap', 'must be a positive integer');
  if (def.fatigue !== undefined && def.fatigue !== 'exempt') for (const p of fatigueProblems(def.fatigue, 'fatigue')) add('F13', p.field, p.message);
  if (def.unenroll !== undefined) {
    const u = def.unenroll as unknown;
    if (!isObj(u)) add('U2', 'unenroll', 'must be an object');
    else {
      if (u.onLeaveView !== undefined && typeof u.onLeaveView !== 'boolean') add('U2', 'unenroll.onLeaveView', 'must be true or false');
      if (u.onLeaveView === true && !(isObj(def.enrollment) && def.enrollment.view)) add('U2', 'unenroll.onLeaveView', 'needs an enrollment view');
      if (u.criteria !== undefined) checkExpr('U3', 'unenroll.criteria', u.criteria);
      if (u.onDate !== undefined && (typeof u.onDate !== 'string' || parseInstant(u.onDate, 'UTC') === undefined)) add('U4', 'unenroll.onDate', 'must be an ISO date or date-time');
      if (u.outcomes !== undefined && (!Array.isArray(u.outcomes) || !u.outcomes.every((o) => ALL_OUTCOMES.includes(o as string))))
        add('U1', 'unenroll.outcomes', `must list outcomes among ${ALL_OUTCOMES.join(', ')}`);
      if (u.companyReply !== undefined && typeof u.companyReply !== 'boolean') add('U11', 'unenroll.companyReply', 'must be true or false');
    }
  }

  // Nodes.
  if (!Array.isArray(def.nodes) || def.nodes.length === 0) {
    add('C5', 'nodes', 'must be a non-empty list with at least one follow-up');
    return problems;
  }
  const byId = new Map<string, CadenceNode>();
  def.nodes.forEach((raw, i) => {
    const field = `nodes[${i}]`;
    if (!isObj(raw)) return add('D4', field, 'must be an object');
    const n = raw as unknown as CadenceNode;
    if (typeof n.id !== 'string' || !ID.test(n.id) || n.id === TRIGGER) return add('D4', `${field}.id`, 'must be a unique id (not "trigger")');
    if (byId.has(n.id)) return add('C6', `${field}.id`, 'is used by another node', n.id);
    byId.set(n.id, n);
    if (n.type === 'followUp') checkFollowUp(n, module, options, add, checkDelay);
    else if (n.type === 'outcomeBranch') {
      if (!Array.isArray(n.outcomes) || n.outcomes.length === 0 || !n.outcomes.every((o) => typeof o === 'string'))
        add('F2', 'outcomes', 'must list at least one outcome', n.id);
      else if (new Set(n.outcomes).size !== n.outcomes.length) add('C6', 'outcomes', 'lists an outcome twice: each outcome leads to at most one branch', n.id);
      checkDelay('F5', 'timeout', n.timeout, n.id);
    } else if (n.type === 'unenrollCheck') checkExpr('U3', 'criteria', n.criteria, n.id);
    else add('D4', `${field}.type`, 'must be "followUp", "outcomeBranch" or "unenrollCheck"', (n as { id: string }).id);
  });
  if (![...byId.values()].some((n) => n.type === 'followUp')) add('C5', 'nodes', 'must contain at least one follow-up');

  // Edges.
  if (!Array.isArray(def.edges)) {
    add('C6', 'edges', 'must be a list of {from, port?, to}');
    return problems;
  }
  const used = new Set<string>();
  const firstTarget = new Map<string, string>();
  const secondWires = new Set<string>();
  const incoming = new Map<string, string[]>();
  const next = new Map<string, string[]>();
  def.edges.forEach((raw, i) => {
    const field = `edges[${i}]`;
    if (!isObj(raw) || typeof raw.from !== 'string' || typeof raw.to !== 'string') return add('C6', field, 'must be {from, port?, to}');
    const port = raw.port === undefined ? OUT : raw.port;
    if (typeof port !== 'string') return add('C6', `${field}.port`, 'must be a string');
    const from = raw.from === TRIGGER ? undefined : byId.get(raw.from);
    if (raw.from !== TRIGGER && !from) return add('C6', `${field}.from`, `unknown node "${raw.from}"`);
    if (!byId.has(raw.to)) return add('C6', `${field}.to`, `unknown node "${raw.to}"`);
    const owner = raw.from;
    if (from?.type === 'outcomeBranch') {
      if (port !== TIMEOUT && !from.outcomes?.includes(port)) return add('C6', `${field}.port`, `"${port}" is not an outcome of this branch`, owner);
      if (port === TIMEOUT && !from.timeout) return add('F5', `${field}.port`, 'a timeout path needs the branch timeout', owner);
    } else if (port !== OUT) return add('C6', `${field}.port`, `must be "${OUT}"`, owner === TRIGGER ? undefined : owner);
    const key = `${owner}\u0000${port}`;
    const first = firstTarget.get(key);
    if (first !== undefined) {
      // Two wires from one port. Name both ends, and say it in the user's terms when they are two outcome
      // branches handling the same outcome; the second target still counts as wired (below), so it is not
      // also reported as unreachable or parentless — one mistake, one message.
      const [a, b] = [byId.get(first), byId.get(raw.to)];
      const twice = a?.type === 'outcomeBranch' && b?.type === 'outcomeBranch' ? (b.outcomes ?? []).filter((o) => a.outcomes?.includes(o)) : [];
      if (twice.length) add('C6', field, `the outcome ${twice.join(', ')} is handled twice: nodes "${first}" and "${raw.to}" (one branch per outcome: merge them into one outcome branch)`, owner === TRIGGER ? undefined : owner);
      else add('C6', field, `port "${port}" leads to both "${first}" and "${raw.to}": one path per port${a?.type === 'outcomeBranch' && b?.type === 'outcomeBranch' ? ' (list every outcome in one outcome branch)' : ''}`, owner === TRIGGER ? undefined : owner);
      secondWires.add(raw.to);
    } else firstTarget.set(key, raw.to);
    used.add(key);
    incoming.set(raw.to, [...(incoming.get(raw.to) ?? []), owner]);
    next.set(owner, [...(next.get(owner) ?? []), raw.to]);
  });
  if (!used.has(`${TRIGGER}\u0000${OUT}`)) add('C6', 'edges', 'the trigger must lead to the first node');

  for (const n of byId.values()) {
    if (n.type !== 'outcomeBranch') continue;
    const parents = incoming.get(n.id) ?? [];
    const parent = parents.length === 1 ? byId.get(parents[0]) : undefined;
    if (secondWires.has(n.id) && parents.length === 1) continue; // already reported as a second wire
    if (!parent || parent.type !== 'followUp') {
      add('F2', 'edges', 'an outcome branch must follow exactly one follow-up', n.id);
      continue;
    }
    const allowed = OUTCOMES[parent.channel] ?? [];
    for (const o of new Set(n.outcomes ?? [])) if (!allowed.includes(o)) add('C6', 'outcomes', `${JSON.stringify(o) ?? String(o)} is not an outcome of a ${parent.channel} follow-up (${allowed.join(', ')})`, n.id);
  }

  // Reachability and cycles: the path is a tree walk from the trigger, so a cycle would re-run a follow-up.
  // A depth-first walk with its own stack: a chain of 9,000 nodes is a definition, not a stack overflow.
  const state = new Map<string, 1 | 2>();
  const walk: { id: string; i: number }[] = [{ id: TRIGGER, i: 0 }];
  state.set(TRIGGER, 1);
  while (walk.length) {
    const top = walk[walk.length - 1];
    const out = next.get(top.id) ?? [];
    if (top.i >= out.length) {
      state.set(top.id, 2);
      walk.pop();
      continue;
    }
    const to = out[top.i++];
    if (state.get(to) === 1) add('C6', 'edges', `cycle through "${to}": a follow-up may not run twice in one enrollment`, top.id === TRIGGER ? undefined : top.id);
    else if (!state.has(to)) {
      state.set(to, 1);
      walk.push({ id: to, i: 0 });
    }
  }
  for (const id of byId.keys()) if (!state.has(id)) add('C6', 'edges', 'is not reachable from the trigger', id);
  // F14: "counted from the outcome" needs an outcome branch on the way from the trigger to the step.
  for (const n of byId.values()) {
    if (n.type !== 'followUp' || n.relativeTo !== 'outcome') continue;
    const seen = new Set<string>();
    const back = [...(incoming.get(n.id) ?? [])];
    let found = false;
    while (back.length && !found) {
      const id = back.pop()!;
      if (seen.has(id)) continue;
      seen.add(id);
      if (byId.get(id)?.type === 'outcomeBranch') found = true;
      else back.push(...(incoming.get(id) ?? []));
    }
    if (!found) add('F14', 'relativeTo', '"outcome" counts from the outcome that chose this path, but no outcome branch comes before this step: put it after a branch, or count from the enrollment or the previous step', n.id);
  }
  return problems;
}

function checkFollowUp(
  n: FollowUpNode,
  module: string,
  options: ValidateOptions,
  add: (rule: string, field: string, message: string, node?: string) => void,
  checkDelay: (rule: string, field: string, d: unknown, node?: string) => void,
): void {
  if (!CHANNELS.includes(n.channel)) return add('C4', 'channel', 'must be email, task, call or whatsapp', n.id);
  if (n.channel === 'call' && isCustomModule(module)) add('C4', 'channel', `call steps are not allowed in the custom module "${module}"`, n.id);
  if (n.channel === 'whatsapp') {
    if (module !== 'Leads' && module !== 'Contacts') add('C4', 'channel', 'WhatsApp steps are allowed only in Leads and Contacts', n.id);
    if (typeof n.templateId !== 'string') add('C4', 'templateId', 'a WhatsApp step needs a pre-approved template', n.id);
    else if (options.whatsappTemplates && !options.whatsappTemplates.includes(n.templateId))
      add('C4', 'templateId', `"${n.templateId}" is not a pre-approved WhatsApp template`, n.id);
  }
  checkDelay('F1', 'delay', n.delay, n.id);
  if (n.relativeTo !== undefined && n.relativeTo !== 'enrollment' && n.relativeTo !== 'previous' && n.relativeTo !== 'outcome') add('F1', 'relativeTo', 'must be "enrollment", "previous" or "outcome"', n.id);
  if (n.template !== undefined) {
    const t = n.template as unknown;
    if (!isObj(t) || typeof t.body !== 'string' || (t.subject !== undefined && typeof t.subject !== 'string'))
      add('F6', 'template', 'must be {subject?: string, body: string}', n.id);
    else if (n.channel === 'email') for (const p of templateProblems(t.body as string)) add('F6', 'template.body', p, n.id);
  }
  if (n.templateId !== undefined && typeof n.templateId !== 'string') add('F6', 'templateId', 'must be a string', n.id);
  else if (n.channel === 'email' && n.templateId !== undefined && options.emailTemplates && !options.emailTemplates.includes(n.templateId))
    add('F6', 'templateId', options.emailTemplates.length ? `no stored email template "${n.templateId}"` : `"${n.templateId}": this engine has no stored email templates; write the subject and body instead (a template id is for WhatsApp)`, n.id);
  if (n.channel === 'email' && !n.template && !n.templateId) add('F6', 'template', 'an email needs a template or templateId', n.id);
  if (n.channel === 'email' && n.template && !n.template.subject) add('F6', 'template.subject', 'an email needs a subject', n.id);
  if (n.sender !== undefined && (typeof n.sender !== 'string' || !EMAIL.test(n.sender))) add('F6', 'sender', 'must be an email address', n.id);
  if (n.assignee !== undefined && (typeof n.assignee !== 'string' || !n.assignee)) add('F7', 'assignee', 'must be "owner" or a user id', n.id);
  checkDelay('F7', 'dueIn', n.dueIn, n.id);
}

/** Throws a CadenzaError listing every problem, or returns the input typed as a definition. */
export function assertDefinition(input: unknown, options?: ValidateOptions): CadenceDefinition {
  const problems = validateDefinition(input, options);
  if (problems.length) throw new CadenzaError('invalid_definition', problems[0].rule, 'The cadence definition is invalid', problems);
  return input as CadenceDefinition;
}

export function findNode(def: CadenceDefinition, id: string | null | undefined): CadenceNode | undefined {
  return id ? def.nodes.find((n) => n.id === id) : undefined;
}

/** Where a port leads, or undefined at the end of a path. */
export function follow(def: CadenceDefinition, from: string, port: string = OUT): string | undefined {
  return def.edges.find((e) => e.from === from && (e.port ?? OUT) === port)?.to;
}

/** JSON with object keys sorted: equal values compare equal whatever order a store kept them in. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x));
}

/** V2: whether the follow-up `id` does the same in both versions. Its name is a label: renaming it edits nothing. */
export function sameFollowUp(a: CadenceDefinition, b: CadenceDefinition, id: string): boolean {
  const na = findNode(a, id);
  const nb = findNode(b, id);
  if (!na || !nb) return false;
  const { name: _a, ...ra } = na;
  const { name: _b, ...rb } = nb;
  return canonicalJson(ra) === canonicalJson(rb);
}

export function delayOf(d: Delay | undefined): Delay {
  return d ?? { amount: 0, unit: 'minutes' };
}

/** The problems of one node on its own (fields, JSONata), without the graph around it. */
export function validateNode(n: unknown, module = 'Leads', options?: ValidateOptions): Problem[] {
  const id = (n as { id?: unknown })?.id;
  const def = { id: 'node-check', name: 'node check', module, enrollment: { mode: 'manual' }, nodes: [n], edges: [] };
  // Without its wires: what needs the graph (its edges, F14's branch before it) is the whole flow's to say.
  return validateDefinition(def, options).filter((p) => p.node === id && p.field !== 'edges' && p.rule !== 'F14');
}

/** The problems of a trigger's settings on their own (module, view, window, caps, un-enroll properties). */
export function validateTrigger(settings: Omit<CadenceDefinition, 'nodes' | 'edges'>, options?: ValidateOptions): Problem[] {
  const probe = { id: '__probe', type: 'followUp', channel: 'task' };
  const def = { ...settings, nodes: [probe], edges: [{ from: TRIGGER, to: probe.id }] };
  return validateDefinition(def, options).filter((p) => !p.node && !p.field.startsWith('nodes') && !p.field.startsWith('edges'));
}
