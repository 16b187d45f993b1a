// `cadenza serve` settings: a JSON config file (--config) and flags, flags winning. The same settings
// the Node-RED config node and the n8n credential carry: edition limits (C3), the approved WhatsApp
// templates (C4), the retry policy of failing deliveries (D6), contact limits (F13) and the user
// directory (F6, F7). A bad value is refused naming the
// field and the rule, before the store is opened.
import { readFileSync } from 'node:fs';
import { durationMs } from '../model/duration';
import { CadenzaError, type Problem } from '../model/errors';
import { fatigueProblems } from '../model/validate';
import { usersProblems } from '../model/users';
import { EDITIONS, type Edition, type LimitSettings } from '../runtime/limits';
import type { RuntimeOptions } from '../runtime/runtime';

export interface ServeConfig {
  port?: number;
  host?: string;
  store?: string;
  secret?: string;
  baseUrl?: string;
  dispatchUrl?: string;
  timezone?: string;
  defaultSender?: string;
  limits?: LimitSettings;
  whatsappTemplates?: string[];
  retry?: RuntimeOptions['retry'];
  /** F13: contact limits across all cadences, `{ limits: [{ channel?, max, days }] }`. */
  fatigue?: RuntimeOptions['fatigue'];
  /** F6, F7: the user directory, `{ id: { name?, email?, signature? } }`. */
  users?: RuntimeOptions['users'];
}

type Flags = Record<string, string | true>;

const FLAGS = ['config', 'port', 'host', 'store', 'secret', 'base-url', 'dispatch-url', 'timezone', 'sender', 'edition', 'add-ons', 'max-created', 'max-active', 'max-actions',
  'whatsapp-templates', 'retry-for', 'retry-base', 'retry-max'];

const KEYS = ['port', 'host', 'store', 'secret', 'baseUrl', 'dispatchUrl', 'timezone', 'defaultSender', 'limits', 'whatsappTemplates', 'retry', 'fatigue', 'users'];

function readConfig(path: string): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new CadenzaError('invalid_config', 'D4', `--config ${path}: ${(e as Error).message}`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new CadenzaError('invalid_config', 'D4', `--config ${path}: must be a JSON object`);
  return raw as Record<string, unknown>;
}

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

/** A duration flag ("30s", "6h") or a number of milliseconds. */
function ms(v: string): number {
  if (/^\d+$/.test(v)) return Number(v);
  const m = /^(\d+)s$/.exec(v);
  return m ? Number(m[1]) * 1000 : durationMs(v);
}

export function serveConfig(flags: Flags): ServeConfig {
  const file = typeof flags.config === 'string' ? readConfig(flags.config) : {};
  const problems: Problem[] = [];
  const bad = (field: string, rule: string, message: string) => problems.push({ field, rule, message });
  for (const k of Object.keys(file)) if (!KEYS.includes(k)) bad(k, 'D4', `unknown setting (known: ${KEYS.join(', ')})`);
  // A misspelt flag (--default-sender for --sender) must not be ignored in silence.
  for (const k of Object.keys(flags)) if (!FLAGS.includes(k)) bad(`--${k}`, 'D4', `unknown flag (known: ${FLAGS.map((f) => `--${f}`).join(', ')})`);

  const c: ServeConfig = { ...(file as ServeConfig) };
  const flag = (name: string) => (typeof flags[name] === 'string' ? (flags[name] as string) : undefined);
  if (flag('port') !== undefined) c.port = Number(flag('port'));
  c.host = flag('host') ?? str(c.host);
  c.store = flag('store') ?? str(c.store);
  c.secret = flag('secret') ?? str(c.secret);
  c.baseUrl = flag('base-url') ?? str(c.baseUrl);
  c.dispatchUrl = flag('dispatch-url') ?? str(c.dispatchUrl);
  c.timezone = flag('timezone') ?? str(c.timezone);
  c.defaultSender = flag('sender') ?? str(c.defaultSender);
  const limits: LimitSettings = { ...(typeof c.limits === 'object' && c.limits ? c.limits : {}) };
  if (flag('edition')) limits.edition = flag('edition') as Edition;
  if (flag('add-ons')) limits.addOns = Number(flag('add-ons'));
  if (flag('max-created')) limits.created = Number(flag('max-created'));
  if (flag('max-active')) limits.active = Number(flag('max-active'));
  if (flag('max-actions')) limits.actionsPerCadence = Number(flag('max-actions'));
  c.limits = limits;
  if (flag('whatsapp-templates') !== undefined) c.whatsappTemplates = flag('whatsapp-templates')!.split(',').map((s) => s.trim()).filter(Boolean);
  const retry = { ...(typeof c.retry === 'object' && c.retry ? c.retry : {}) };
  try {
    if (flag('retry-for')) retry.holdMs = ms(flag('retry-for')!);
    if (flag('retry-base')) retry.baseMs = ms(flag('retry-base')!);
    if (flag('retry-max')) retry.maxMs = ms(flag('retry-max')!);
  } catch (e) {
    bad('retry', 'D6', (e as Error).message);
  }
  c.retry = retry;

  const port = c.port ?? 8080;
  if (!Number.isInteger(port) || port < 0 || port > 65535) bad('port', 'D4', 'must be 0..65535');
  c.port = port;
  if (limits.edition !== undefined && !(limits.edition in EDITIONS)) bad('limits.edition', 'C3', `"${limits.edition}" is not one of ${Object.keys(EDITIONS).join(', ')}`);
  for (const k of ['addOns', 'created', 'active', 'actionsPerCadence'] as const) {
    const v = limits[k];
    if (v !== undefined && (!Number.isInteger(v) || v < 0)) bad(`limits.${k}`, k === 'actionsPerCadence' ? 'C5' : 'C3', 'must be a whole number ≥ 0');
  }
  if (c.whatsappTemplates !== undefined && (!Array.isArray(c.whatsappTemplates) || c.whatsappTemplates.some((t) => typeof t !== 'string' || !t))) {
    bad('whatsappTemplates', 'C4', 'must be a list of approved template ids');
  }
  for (const k of ['holdMs', 'baseMs', 'maxMs'] as const) {
    const v = retry[k];
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < (k === 'holdMs' ? 1 : 0))) bad(`retry.${k}`, 'D6', 'must be milliseconds (a number > 0)');
  }
  for (const k of Object.keys(retry)) if (!['holdMs', 'baseMs', 'maxMs', 'jitter'].includes(k)) bad(`retry.${k}`, 'D6', 'unknown (known: holdMs, baseMs, maxMs, jitter)');
  if (c.fatigue !== undefined) for (const p of fatigueProblems(c.fatigue, 'fatigue')) bad(p.field, 'F13', p.message);
  if (c.users !== undefined) for (const p of usersProblems(c.users, 'users')) bad(p.field, p.rule, p.message);
  if (problems.length) throw new CadenzaError('invalid_config', problems[0].rule, `cadenza serve: ${problems.length} bad setting${problems.length > 1 ? 's' : ''}`, problems);
  return c;
}

/** The approved WhatsApp templates for `validate`: --whatsapp-templates, or the config file's list. */
export function approvedTemplates(flags: Flags): string[] | undefined {
  if (typeof flags['whatsapp-templates'] === 'string') return flags['whatsapp-templates'].split(',').map((s) => s.trim()).filter(Boolean);
  if (typeof flags.config === 'string') {
    const t = readConfig(flags.config).whatsappTemplates;
    return Array.isArray(t) ? t.map(String) : undefined;
  }
  return undefined;
}
