// The one parameter schema: each field a host editor shows for a cadence node — the name params.ts
// reads, its default, its options and its bounds. The engine's validation bounds, the JSON Schema
// (json-schema.ts), the Node-RED editor's defaults and field checks (embedded into the editor HTML at
// build) and the n8n properties' options and bounds all come from here: change a bound once.
import { ALL_OUTCOMES, OUTCOMES } from '../outcomes';

export const CHANNELS = ['email', 'task', 'call', 'whatsapp'] as const;
export const DELAY_UNITS = ['minutes', 'hours', 'days', 'businessDays'] as const;
/** The longest delay, timeout or due-in, in any unit (ten years of days). */
export const DELAY_MAX = 3650;
export const RELATIVE_TO = ['enrollment', 'previous', 'outcome'] as const;
export const ENROLLMENT_MODES = ['manual', 'view'] as const;
export const PATTERNS = {
  id: '^[A-Za-z0-9_.:-]{1,100}$',
  module: '^[A-Za-z][A-Za-z0-9_]{0,60}$',
  hhmm: '^([01]\\d|2[0-3]):[0-5]\\d$|^24:00$',
  date: '^\\d{4}-\\d{2}-\\d{2}$',
  dates: '^\\s*\\d{4}-\\d{2}-\\d{2}\\s*(,\\s*\\d{4}-\\d{2}-\\d{2}\\s*)*$',
  email: '^[^\\s@]+@[^\\s@]+$',
} as const;

export interface Param {
  name: string;
  type: 'string' | 'number' | 'boolean' | 'options' | 'list' | 'jsonata';
  /** What a new node starts with; "" means "not set" (the engine's default applies). */
  default: string | number | boolean | string[];
  options?: readonly string[];
  min?: number;
  max?: number;
  integer?: boolean;
  pattern?: string;
  required?: boolean;
}

const units = (name: string, def: string): Param => ({ name, type: 'options', default: def, options: DELAY_UNITS });
const count = (name: string): Param => ({ name, type: 'number', default: '', min: 1, integer: true });

export const PARAMS: Record<'trigger' | 'followUp' | 'branch' | 'check', readonly Param[]> = {
  trigger: [
    { name: 'module', type: 'string', default: 'Leads', pattern: PATTERNS.module, required: true },
    { name: 'mode', type: 'options', default: 'manual', options: ENROLLMENT_MODES },
    { name: 'view', type: 'jsonata', default: '' },
    { name: 'timezone', type: 'string', default: '' },
    { name: 'windowDays', type: 'string', default: '' },
    { name: 'windowStart', type: 'string', default: '', pattern: PATTERNS.hhmm },
    { name: 'windowEnd', type: 'string', default: '', pattern: PATTERNS.hhmm },
    { name: 'holidays', type: 'string', default: '', pattern: PATTERNS.dates },
    count('capPerHour'),
    count('capPerDay'),
    count('senderDailyCap'),
    { name: 'leaveView', type: 'boolean', default: false },
    { name: 'exitCriteria', type: 'jsonata', default: '' },
    { name: 'exitOutcomes', type: 'string', default: '' },
    { name: 'unenrollDate', type: 'string', default: '' },
    { name: 'companyReply', type: 'boolean', default: false },
    { name: 'fatigueExempt', type: 'boolean', default: false },
  ],
  followUp: [
    { name: 'channel', type: 'options', default: 'email', options: CHANNELS, required: true },
    { name: 'delay', type: 'number', default: 0, min: 0, max: DELAY_MAX },
    units('delayUnit', 'days'),
    { name: 'relativeTo', type: 'options', default: 'enrollment', options: RELATIVE_TO },
    { name: 'subject', type: 'string', default: '' },
    { name: 'body', type: 'string', default: '' },
    { name: 'templateId', type: 'string', default: '' },
    { name: 'sender', type: 'string', default: '', pattern: PATTERNS.email },
    { name: 'assignee', type: 'string', default: 'owner' },
    { name: 'dueIn', type: 'number', default: '', min: 0, max: DELAY_MAX },
    units('dueInUnit', 'days'),
  ],
  branch: [
    { name: 'outcomes', type: 'list', default: ['replied'], options: ALL_OUTCOMES, required: true },
    { name: 'timeout', type: 'number', default: '', min: 0, max: DELAY_MAX },
    units('timeoutUnit', 'businessDays'),
  ],
  check: [{ name: 'criteria', type: 'jsonata', default: '', required: true }],
};

/**
 * Whether one field's value fits its schema entry, as the editors check it while typing: "" is
 * "not set" unless required; numbers within bounds; listed options; patterns. Whole-definition rules
 * (C4, C6, F2, JSONata) stay in validate.ts and reach the editors through the hosts' check routes.
 */
export function paramProblem(p: Param, v: unknown): string | undefined {
  const empty = v === '' || v === undefined || v === null || (Array.isArray(v) && v.length === 0);
  if (empty) return p.required ? 'is required' : undefined;
  if (p.type === 'number') {
    const n = Number(v);
    if (!Number.isFinite(n) || (p.integer && !Number.isInteger(n))) return `must be a${p.integer ? 'n integer' : ' number'}`;
    if (p.min !== undefined && n < p.min) return `must be at least ${p.min}`;
    if (p.max !== undefined && n > p.max) return `must be at most ${p.max}`;
  }
  if (p.options) {
    const values = Array.isArray(v) ? v : [v];
    const bad = values.find((x) => !p.options!.includes(String(x)));
    if (bad !== undefined) return `"${String(bad)}" is not one of ${p.options.join(', ')}`;
    if (new Set(values).size !== values.length) return 'lists a value twice';
  }
  if (p.pattern && !new RegExp(p.pattern).test(String(v))) return `"${String(v)}" does not have the expected form`;
  return undefined;
}

/** What the editors receive: the fields, and which outcomes each channel reports. Plain JSON. */
export function editorSchema() {
  return { params: PARAMS, outcomesByChannel: OUTCOMES, delayMax: DELAY_MAX, patterns: PATTERNS };
}
