// F13 contact fatigue, pure: which limits apply to a follow-up, which day-counters they read, whether
// one holds it (and until when), and the counter bumps a dispatch commits. One counter per record,
// channel and local day (scope 'contact', `${recordId}|${channel}|${date}`): a window of N days reads N
// counters per channel, never a scan of history. The store only re-checks the sums the commit names.
import type { Channel, FatigueLimit, FollowUpNode } from '../model/types';
import { localDate, nextOpen, shiftDate, startOfDate } from '../time/time';
import type { Context } from './types';

export const CONTACT = 'contact';
/** The channels that reach the person; a task is the team's own work and never counts. */
const TOUCH: readonly Channel[] = ['email', 'whatsapp', 'call'];

export interface Applied extends FatigueLimit {
  from: 'engine' | 'cadence';
}

/** The engine's limits unless the cadence is exempt, plus the cadence's own, that cover `channel`. */
export function limitsFor(channel: Channel, ctx: Pick<Context, 'def' | 'fatigue'>): Applied[] {
  if (!TOUCH.includes(channel)) return [];
  const own = ctx.def.fatigue;
  const all: Applied[] = [
    ...(own === 'exempt' ? [] : (ctx.fatigue ?? []).map((l) => ({ ...l, from: 'engine' as const }))),
    ...(own && own !== 'exempt' ? own.limits.map((l) => ({ ...l, from: 'cadence' as const })) : []),
  ];
  return all.filter((l) => l.channel === undefined || l.channel === channel);
}

export function contactKey(recordId: string, channel: Channel, date: string): string {
  return `${recordId}|${channel}|${date}`;
}

/** The day-counters one limit sums, today's first for each channel it covers. */
function windowKeys(l: FatigueLimit, recordId: string, today: string): string[] {
  const keys: string[] = [];
  for (const ch of l.channel ? [l.channel] : TOUCH) for (let d = 0; d < l.days; d++) keys.push(contactKey(recordId, ch, shiftDate(today, -d)));
  return keys;
}

/** Every counter the follow-up's limits read (the runtime reads them into `ctx.sentToContact`). */
export function fatigueKeys(node: FollowUpNode, ctx: Context, zone: string): string[] {
  const rid = ctx.record?.id;
  if (!rid) return [];
  const limits = limitsFor(node.channel, ctx);
  if (!limits.length) return []; // no limit: no local date to work out
  const today = localDate(ctx.now, zone);
  return [...new Set(limits.flatMap((l) => windowKeys(l, rid, today)))];
}

export function describe(l: FatigueLimit): string {
  const what = l.channel ?? 'message';
  return `at most ${l.max} ${what}${l.max === 1 ? '' : 's'} ${l.days === 1 ? 'per day' : `in ${l.days} days`}`;
}

/** The limit that holds the follow-up now and the first window opening on a day every limit has room; null when it fits. */
export function held(node: FollowUpNode, ctx: Context, zone: string): { limit: Applied; until: number } | null {
  const rid = ctx.record?.id;
  if (!rid) return null;
  const limits = limitsFor(node.channel, ctx);
  if (!limits.length) return null;
  const today = localDate(ctx.now, zone);
  const n = (k: string) => ctx.sentToContact?.[k] ?? 0;
  let first: Applied | null = null;
  let shift = 0;
  for (const l of limits) {
    const chans = l.channel ? [l.channel] : TOUCH;
    const sumFrom = (k: number) => { // the window ending k days from today: its past days are today-(days-1-k) .. today
      let s = 0;
      for (const ch of chans) for (let d = 0; d < l.days - k; d++) s += n(contactKey(rid, ch, shiftDate(today, -d)));
      return s;
    };
    if (sumFrom(0) < l.max) continue;
    first ??= l;
    let k = 1;
    while (k < l.days && sumFrom(k) >= l.max) k++;
    shift = Math.max(shift, k);
  }
  if (!first) return null;
  return { limit: first, until: nextOpen(startOfDate(shiftDate(today, shift), zone), ctx.def.sendWindow, zone) };
}

/**
 * What a dispatch commits: today's counter for its channel, and one capped check per limit over its window.
 * Counted whenever limits are configured (engine-wide, exempt cadences included) or the cadence has its own;
 * with no engine limits at all, nothing else is counted, so unlimited engines pay nothing.
 */
export function fatigueBumps(node: FollowUpNode, ctx: Context, zone: string): { scope: string; key: string; max?: number; window?: string[]; checkOnly?: boolean }[] {
  const rid = ctx.record?.id;
  if (!rid || !TOUCH.includes(node.channel)) return [];
  const limits = limitsFor(node.channel, ctx);
  if (!limits.length && !(ctx.fatigue?.length)) return [];
  const today = localDate(ctx.now, zone);
  const key = contactKey(rid, node.channel, today);
  return [
    { scope: CONTACT, key },
    ...limits.map((l) => ({ scope: CONTACT, key, max: l.max, window: windowKeys(l, rid, today).filter((k) => k !== key), checkOnly: true })),
  ];
}
