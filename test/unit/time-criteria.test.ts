import { describe, expect, it } from 'vitest';
import { addDelay, nextOpen, nextDayOpen } from '../../engine/time/time';
import { Criteria } from '../../engine/criteria/criteria';

const at = (s: string) => Date.parse(s);
const iso = (t: number) => new Date(t).toISOString();

describe('time', () => {
  it('F1 delays in minutes, hours, days and business days', () => {
    const fri = at('2026-03-06T10:00:00Z');
    expect(iso(addDelay(fri, { amount: 90, unit: 'minutes' }, 'UTC'))).toBe('2026-03-06T11:30:00.000Z');
    expect(iso(addDelay(fri, { amount: 5, unit: 'hours' }, 'UTC'))).toBe('2026-03-06T15:00:00.000Z');
    expect(iso(addDelay(fri, { amount: 2, unit: 'days' }, 'UTC'))).toBe('2026-03-08T10:00:00.000Z');
    expect(iso(addDelay(fri, { amount: 2, unit: 'businessDays' }, 'UTC'))).toBe('2026-03-10T10:00:00.000Z');
    // A holiday on Monday pushes business days one further.
    expect(iso(addDelay(fri, { amount: 2, unit: 'businessDays' }, 'UTC', { holidays: ['2026-03-09'] }))).toBe('2026-03-11T10:00:00.000Z');
  });

  it('F1 D4 business days past the calendar\'s range or in an unknown zone are refused at once, never counted forever', () => {
    expect(() => addDelay(8_640_000_000_000_000 - 1, { amount: 3, unit: 'businessDays' }, 'Pacific/Apia')).toThrow(RangeError);
    expect(() => addDelay(at('2026-03-06T10:00:00Z'), { amount: 2, unit: 'businessDays' }, 'Not/AZone')).toThrow(/business days .* Not\/AZone/);
  });

  it('F1 a day delay keeps the local time of day across a DST change', () => {
    const before = at('2026-03-07T14:00:00Z'); // 09:00 EST, the day before spring-forward in New York
    expect(iso(addDelay(before, { amount: 1, unit: 'days' }, 'America/New_York'))).toBe('2026-03-08T13:00:00.000Z'); // 09:00 EDT
  });

  it('F11 outside the window waits for the next opening, in the given zone, skipping holidays', () => {
    const w = { days: [1, 2, 3, 4, 5], start: '09:00', end: '17:00', holidays: ['2026-03-09'] };
    expect(iso(nextOpen(at('2026-03-06T18:00:00Z'), w, 'UTC'))).toBe('2026-03-10T09:00:00.000Z'); // Fri evening -> Tue (Mon holiday)
    expect(iso(nextOpen(at('2026-03-10T12:00:00Z'), w, 'UTC'))).toBe('2026-03-10T12:00:00.000Z'); // inside: unchanged
    expect(iso(nextOpen(at('2026-03-10T05:00:00Z'), w, 'Asia/Tokyo'))).toBe('2026-03-10T05:00:00.000Z'); // 14:00 in Tokyo
    expect(iso(nextOpen(at('2026-03-10T09:00:00Z'), w, 'Asia/Tokyo'))).toBe('2026-03-11T00:00:00.000Z'); // 18:00 Tokyo -> 09:00 next day
  });

  it('F11 DST never skips or doubles an opening: one opening per local day, at the local hour', () => {
    const w = { start: '09:00', end: '10:00' };
    const opens: string[] = [];
    let t = at('2026-03-06T00:00:00Z');
    for (let i = 0; i < 5; i++) {
      const o = nextOpen(t, w, 'America/New_York');
      opens.push(iso(o));
      t = nextDayOpen(o, w, 'America/New_York');
      t = t - 1; // just before the next opening
    }
    expect(opens).toEqual(['2026-03-06T14:00:00.000Z', '2026-03-07T14:00:00.000Z', '2026-03-08T13:00:00.000Z', '2026-03-09T13:00:00.000Z', '2026-03-10T13:00:00.000Z']);
    // An opening inside the autumn repeated hour (01:30 happens twice on 2026-11-01) is still a single instant.
    const fall = { start: '01:30', end: '02:00' };
    const o1 = nextOpen(at('2026-11-01T04:00:00Z'), fall, 'America/New_York');
    expect(nextOpen(o1 + 1, fall, 'America/New_York')).toBe(o1 + 1);
    expect(nextDayOpen(o1, fall, 'America/New_York') - o1).toBeGreaterThan(23 * 3_600_000);
  });
});

describe('criteria', () => {
  it('E7 $now and the date helpers read the engine clock, not the wall clock', async () => {
    const c = new Criteria();
    const now = at('2030-01-10T00:00:00Z');
    expect(await c.evaluate('$now()', {}, now)).toBe('2030-01-10T00:00:00.000Z');
    expect(await c.test('$daysSince(Created_Time) >= 9', { Created_Time: '2030-01-01T00:00:00Z' }, now)).toBe(true);
    expect(await c.test('$daysSince(Created_Time) >= 9', { Created_Time: '2030-01-01T00:00:00Z' }, now - 86_400_000)).toBe(false);
    expect(await c.evaluate('$daysUntil(Renewal)', { Renewal: '2030-01-20' }, now)).toBe(10);
  });

  it('E2 compiles each expression once and caches it', async () => {
    const c = new Criteria();
    for (let i = 0; i < 50; i++) await c.test('Lead_Status = "Hot"', { Lead_Status: 'Hot' }, 0);
    expect(c.compilations).toBe(1);
  });

  it('D4 a hostile expression is stopped by depth and time bounds instead of hanging', async () => {
    const c = new Criteria({ stack: 50, timeout: 200, sequence: 10_000 });
    await expect(c.evaluate('($f := function($x){ $f($x + 1) }; $f(0))', {}, 0)).rejects.toMatchObject({ kind: expect.stringMatching(/^(timeout|resource)$/), message: expect.stringMatching(/was stopped/) });
    await expect(c.evaluate('[1..10000000]', {}, 0)).rejects.toThrow();
    expect(() => c.compile('Lead_Status = = "x"')).toThrow(/invalid JSONata/);
  });
});
