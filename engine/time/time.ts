// Delays, business days and send windows, computed in a time zone with luxon. Everything takes and
// returns epoch milliseconds: an instant is scheduled once, so a DST change can move the wall-clock
// label of a send but never skip or repeat it (F11).
import { DateTime, IANAZone, Info, type Zone } from 'luxon';
import type { Delay, SendWindow } from '../model/types';

export const WEEKDAYS = [1, 2, 3, 4, 5];
const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
/** The largest epoch milliseconds a Date (and luxon) accepts. */
const MAX_TIME = 8.64e15;

// Every step asks for the same few zones several times. Luxon would lower-case and parse a zone name on
// each DateTime, and checks a name by building an Intl.DateTimeFormat (~40 µs) every time it is asked;
// both answers only depend on the name, so they are kept. Names come from records: the maps are
// bounded, and simply emptied when full.
const CACHE_MAX = 1000;
const zones = new Map<string, Zone>();
const validZones = new Map<string, boolean>();

function remember<V>(map: Map<string, V>, key: string, make: (key: string) => V): V {
  let v = map.get(key);
  if (v === undefined) {
    if (map.size >= CACHE_MAX) map.clear();
    map.set(key, (v = make(key)));
  }
  return v;
}

export function isValidZone(zone: string): boolean {
  return typeof zone === 'string' && remember(validZones, zone, (z) => IANAZone.isValidZone(z));
}

/** The luxon zone a name stands for, as DateTime.fromMillis(t, { zone: name }) would resolve it. */
const luxonZone = (name: string): Zone => remember(zones, name, (z) => Info.normalizeZone(z));

function local(t: number, zone: string): DateTime {
  return DateTime.fromMillis(t, { zone: luxonZone(zone) });
}

export function localDate(t: number, zone: string): string {
  // Luxon's own arithmetic (shift by the zone's offset, read the UTC calendar) without building a
  // DateTime; years outside 0000-9999, invalid zones and instants go through luxon for its formats.
  const z = luxonZone(zone);
  if (z.isValid && Math.abs(t) <= MAX_TIME) {
    const d = new Date(t + z.offset(t) * MINUTE);
    const year = d.getUTCFullYear();
    if (year >= 0 && year <= 9999) return d.toISOString().slice(0, 10);
  }
  return local(t, zone).toISODate() as string;
}

/** A local calendar date `days` later (or earlier, when negative): pure date arithmetic. */
export function shiftDate(date: string, days: number): string {
  return DateTime.fromISO(date, { zone: 'UTC' }).plus({ days }).toISODate() as string;
}

/** The instant a local calendar date begins in `zone`. */
export function startOfDate(date: string, zone: string): number {
  return DateTime.fromISO(date, { zone }).startOf('day').toMillis();
}

function isWorkDay(d: DateTime, days: readonly number[], holidays: readonly string[]): boolean {
  return days.includes(d.weekday) && !holidays.includes(d.toISODate() as string);
}

/**
 * F1: a delay after `from`. Minutes and hours are elapsed time; days keep the local time of day
 * across DST; business days skip weekends (or the window's days) and holidays.
 */
export function addDelay(from: number, delay: Delay | undefined, zone: string, window?: SendWindow): number {
  if (!delay || delay.amount === 0) return from;
  switch (delay.unit) {
    case 'minutes':
      return from + delay.amount * MINUTE;
    case 'hours':
      return from + delay.amount * 60 * MINUTE;
    case 'days': {
      // A zone with one fixed offset (UTC included) has no DST: a day is 24 hours, as luxon would count
      // it (whole days from a whole millisecond; anything else, or out of range, goes through luxon).
      const fixed = from + delay.amount * DAY;
      if (luxonZone(zone).isUniversal && Number.isInteger(delay.amount) && Number.isInteger(from) && Math.abs(from) <= MAX_TIME && Math.abs(fixed) <= MAX_TIME) return fixed;
      return local(from, zone).plus({ days: delay.amount }).toMillis();
    }
    case 'businessDays': {
      const days = window?.days?.length ? window.days : WEEKDAYS;
      const holidays = window?.holidays ?? [];
      let d = local(from, zone);
      for (let left = Math.ceil(delay.amount); left > 0; ) {
        d = d.plus({ days: 1 });
        // An instant past the calendar's range (or an unknown zone) is never a work day: say so, not loop forever.
        if (!d.isValid) throw new RangeError(`${delay.amount} business days from ${from} in ${zone}: ${d.invalidExplanation ?? d.invalidReason ?? 'no such date'}`);
        if (isWorkDay(d, days, holidays)) left--;
      }
      return d.toMillis();
    }
  }
}

function hm(text: string | undefined, fallback: [number, number]): [number, number] {
  if (!text) return fallback;
  const [h, m] = text.split(':').map(Number);
  return [h, m];
}

/**
 * F11: the first instant at or after `t` inside the send window, in `zone`. Without a window every
 * instant is open. Looks at most a year ahead (a window with no open day is refused at publish).
 */
export function nextOpen(t: number, window: SendWindow | undefined, zone: string): number {
  if (!window) return t;
  const days = window.days?.length ? window.days : [1, 2, 3, 4, 5, 6, 7];
  const holidays = window.holidays ?? [];
  const [sh, sm] = hm(window.start, [0, 0]);
  const [eh, em] = hm(window.end, [24, 0]);
  let day = local(t, zone).startOf('day');
  for (let i = 0; i < 400; i++, day = day.plus({ days: 1 }).startOf('day')) {
    if (!isWorkDay(day, days, holidays)) continue;
    const open = day.set({ hour: sh, minute: sm }).toMillis();
    const close = eh === 24 ? day.plus({ days: 1 }).startOf('day').toMillis() : day.set({ hour: eh, minute: em }).toMillis();
    if (t < open) return open;
    if (t < close) return t;
  }
  throw new Error('send window has no opening within a year');
}

/** F12: the window's first opening on the local day after `t` (where a capped email waits). */
export function nextDayOpen(t: number, window: SendWindow | undefined, zone: string): number {
  return nextOpen(local(t, zone).plus({ days: 1 }).startOf('day').toMillis(), window, zone);
}

/** Parses the un-enroll date (U4): a date means local midnight in the cadence zone. */
export function parseInstant(text: string, zone: string): number | undefined {
  const dt = DateTime.fromISO(text, { zone });
  return dt.isValid ? dt.toMillis() : undefined;
}

/** Start of the hour/day bucket containing `t`, for enrollment pacing (E9). */
export function bucketStart(t: number, size: 'hour' | 'day', zone: string): number {
  return local(t, zone).startOf(size).toMillis();
}

export function nextBucket(t: number, size: 'hour' | 'day', zone: string): number {
  return local(t, zone).startOf(size).plus(size === 'hour' ? { hours: 1 } : { days: 1 }).toMillis();
}
