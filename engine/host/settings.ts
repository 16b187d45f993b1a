// The engine settings both editors carry as text fields (the Node-RED engine node, the n8n credential),
// read into Runtime options in one place: the same fields, the same rules, the same errors in both.
// `cadenza serve` takes the same settings as JSON (engine/cli/config.ts) and checks them with the same
// functions. A bad value is refused naming its field and rule; nothing is half-applied.
import { CadenzaError, type Problem } from '../model/errors';
import { usersProblems, type Users } from '../model/users';
import { list } from '../model/formats/params';
import { fatigueProblems } from '../model/validate';
import type { RuntimeOptions } from '../runtime/types';

export interface HostSettingsText {
  /** Comma-separated approved WhatsApp template ids; empty accepts any (C4). */
  whatsappTemplates?: string;
  /** How long a failing performer's follow-ups are retried, in hours (D6). */
  retryHours?: number | string | null;
  /** F13: the engine's contact limits, JSON: `[{ "channel": "email", "max": 3, "days": 7 }]`. */
  contactLimits?: string;
  /** F6, F7: the user directory, JSON: `{ "u1": { "name", "email", "signature" } }`. */
  users?: string;
}

/**
 * The settings as a Node-RED engine node (`cadenza-config`) holds them. Its user directory is stored as
 * `userDirectory`: Node-RED keeps the nodes that use a config node in its `users` property.
 */
export function nodeRedEngineSettings(cfg: Record<string, unknown>): HostSettingsText {
  const text = (k: string) => (typeof cfg[k] === 'string' ? (cfg[k] as string) : undefined);
  return { whatsappTemplates: text('whatsappTemplates'), retryHours: cfg.retryHours as number | undefined, contactLimits: text('contactLimits'), users: text('userDirectory') };
}

/** A JSON text field, parsed; empty is "not set". */
function json(text: string | undefined, field: string, rule: string, problems: Problem[]): unknown {
  if (typeof text !== 'string' || !text.trim()) return undefined;
  try {
    return JSON.parse(text);
  } catch (e) {
    problems.push({ rule, field, message: `is not valid JSON: ${(e as Error).message}` });
    return undefined;
  }
}

/**
 * The Runtime options of a host's engine settings, or a CadenzaError naming every bad field
 * (`invalid_options`, with `problems`).
 */
export function hostOptions(t: HostSettingsText): Pick<RuntimeOptions, 'whatsappTemplates' | 'retry' | 'fatigue' | 'users'> {
  const problems: Problem[] = [];
  const whatsappTemplates = list(t.whatsappTemplates);
  // Empty, null or 0 (what older saved settings hold when nobody filled the field in) means the default.
  const hours = t.retryHours === undefined || t.retryHours === null || Number(t.retryHours) === 0 ? undefined : Number(t.retryHours);
  if (hours !== undefined && !(hours > 0)) problems.push({ rule: 'D6', field: 'retryHours', message: 'must be a number of hours above 0 (empty or 0: the default, 72)' });
  const limits = json(t.contactLimits, 'contactLimits', 'F13', problems);
  if (limits !== undefined) {
    if (!Array.isArray(limits)) problems.push({ rule: 'F13', field: 'contactLimits', message: 'must be a list: [{ "channel": "email", "max": 3, "days": 7 }]' });
    else problems.push(...fatigueProblems({ limits }, 'contactLimits').map((p) => ({ rule: 'F13', ...p, field: p.field.replace(/^contactLimits\.limits/, 'contactLimits') })));
  }
  const users = json(t.users, 'users', 'F7', problems);
  if (users !== undefined) problems.push(...usersProblems(users, 'users'));
  if (problems.length) throw new CadenzaError('invalid_options', problems[0].rule, `${problems.length} bad engine setting${problems.length > 1 ? 's' : ''}`, problems);
  return {
    whatsappTemplates,
    retry: hours !== undefined ? { holdMs: hours * 3_600_000 } : undefined,
    fatigue: Array.isArray(limits) && limits.length ? { limits } : undefined,
    users: users as Users | undefined,
  };
}
