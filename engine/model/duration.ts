import type { Delay, DelayUnit } from './types';

const UNITS: Record<string, DelayUnit> = {
  m: 'minutes', min: 'minutes', minute: 'minutes', minutes: 'minutes',
  h: 'hours', hour: 'hours', hours: 'hours',
  d: 'days', day: 'days', days: 'days',
  bd: 'businessDays', businessday: 'businessDays', businessdays: 'businessDays',
};

/** Parses "3d", "2 hours", "5bd" into a Delay; throws a plain Error naming the input otherwise. */
export function parseDelay(text: string): Delay {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*$/.exec(text);
  const unit = m && UNITS[m[2].toLowerCase()];
  if (!m || !unit) throw new Error(`"${text}" is not a duration (use e.g. 30m, 4h, 3d, 2bd)`);
  return { amount: Number(m[1]), unit };
}

/** Milliseconds of a calendar-free duration such as the simulator's --until ("30d"). */
export function durationMs(text: string): number {
  const d = parseDelay(text);
  const per = { minutes: 60_000, hours: 3_600_000, days: 86_400_000, businessDays: 86_400_000 }[d.unit];
  return d.amount * per;
}
