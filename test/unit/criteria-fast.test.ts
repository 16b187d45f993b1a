// Differential fuzz of the criteria fast path: random records × random expressions of the subset give
// exactly what jsonata gives — values, and errors.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Criteria } from '../../engine/criteria/criteria';

const NOW = Date.parse('2026-03-02T08:00:00Z');
const FIELDS = ['Status', 'Score', 'Name', 'Created', 'Flag', 'Owner.Region', 'Missing'];
const scalar = fc.oneof(fc.constantFrom('Hot', 'hot', 'Cold', '', 'x'), fc.integer({ min: -5, max: 50 }), fc.boolean(), fc.constant(null), fc.constantFrom('2026-02-20T00:00:00Z', 'not a date', '2026-02-20', '2026-03-01T23:30', '2026-02-30'));
const value = fc.oneof({ weight: 6, arbitrary: scalar }, { weight: 1, arbitrary: fc.array(scalar, { maxLength: 2 }) }, { weight: 1, arbitrary: fc.constant(undefined) });
const record = fc.record({ Status: value, Score: value, Name: value, Created: value, Flag: value, Owner: fc.oneof(fc.record({ Region: value }), fc.constant(null), scalar) });

const lit = fc.oneof(fc.constantFrom('"Hot"', '"hot"', '""', '"x"'), fc.integer({ min: -3, max: 40 }).map(String), fc.constantFrom('true', 'false', 'null'));
const field = fc.constantFrom(...FIELDS);
const expr: fc.Arbitrary<string> = fc.letrec((tie) => ({
  atom: fc.oneof(
    { weight: 3, arbitrary: field },
    { weight: 2, arbitrary: lit },
    { weight: 1, arbitrary: field.map((f) => `-${f}`) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom('$lowercase', '$uppercase', '$exists', '$not', '$boolean', '$string', '$number', '$daysSince', '$daysUntil', '$hoursSince'), field).map(([f, a]) => `${f}(${a})`) },
    { weight: 1, arbitrary: fc.tuple(field, fc.constantFrom('"o"', '"H"', '""')).map(([a, b]) => `$contains(${a}, ${b})`) },
  ),
  cmp: fc.oneof(
    fc.tuple(tie('atom') as fc.Arbitrary<string>, fc.constantFrom('=', '!=', '<', '<=', '>', '>='), tie('atom') as fc.Arbitrary<string>).map(([a, op, b]) => `${a} ${op} ${b}`),
    fc.tuple(tie('atom') as fc.Arbitrary<string>, fc.array(lit, { maxLength: 3 })).map(([a, l]) => `${a} in [${l.join(', ')}]`),
    tie('atom') as fc.Arbitrary<string>,
  ),
  expr: fc.oneof({ weight: 3, arbitrary: tie('cmp') as fc.Arbitrary<string> }, { weight: 1, arbitrary: fc.tuple(tie('cmp') as fc.Arbitrary<string>, fc.constantFrom('and', 'or'), tie('cmp') as fc.Arbitrary<string>).map(([a, op, b]) => `(${a}) ${op} (${b})`) }),
})).expr as fc.Arbitrary<string>;

async function outcome(c: Criteria, e: string, r: unknown, zone?: string): Promise<unknown> {
  try {
    return { value: await c.evaluate(e, r, NOW, zone) };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

describe('criteria fast path', () => {
  it('E2 E7 D4 differential: the fast path and jsonata agree on values and errors for random records and expressions', async () => {
    const fast = new Criteria();
    const reference = new Criteria(undefined, undefined, false);
    let covered = 0;
    await fc.assert(
      fc.asyncProperty(expr, record, fc.constantFrom(undefined, 'UTC', 'Europe/Berlin'), async (e, r, zone) => {
        const before = fast.fastEvaluations;
        expect(await outcome(fast, e, r, zone)).toEqual(await outcome(reference, e, r, zone));
        if (fast.fastEvaluations > before) covered++;
      }),
      { numRuns: 4000 },
    );
    // The fast path must actually decide a large share (the records are built to mix in arrays and
    // odd types, which it leaves to jsonata), not fall back every time.
    expect(covered).toBeGreaterThan(1400);
  });

  it('E2 the subset compiles to the fast path: every operator and function it claims, and the benchmark\'s view', () => {
    const c = new Criteria();
    for (const e of [
      'Lead_Status = "Hot" and $daysSince(Created_Time) < 30 and Score > 50', 'A != 1 or B <= 2 or C >= 3', 'Status in ["Hot", "Warm"]', '-Score < 0',
      '$lowercase(A) = "x"', '$uppercase(A) = "X"', '$exists(A)', '$not(A)', '$boolean(A)', '$string(A) = "1"', '$number(A) = 1', '$contains(A, "x")',
      '$daysSince(A) > 1', '$hoursSince(A) > 1', '$daysUntil(A) < 3', '$millis() > 0', 'Owner.Region = "EU"', 'true', 'null',
    ]) expect(c.compile(e).fast, e).toBeTypeOf('function');
  });

  it('E2 expressions outside the subset fall back to jsonata with the same answers', async () => {
    const fast = new Criteria();
    for (const [e, r, want] of [
      ['$count(Tags) > 1', { Tags: [1, 2] }, true],
      ['Tags[0] = "a"', { Tags: ['a'] }, true],
      ['$substring(Name, 0, 2) = "Ad"', { Name: 'Ada' }, true],
    ] as const) expect(await fast.test(e, r, NOW)).toBe(want);
    expect(fast.fastEvaluations).toBe(0);
  });

  it('E2 D4 predicates, group-by, stages and not(x) are never decided by the fast path: the answers are jsonata\'s', async () => {
    const fast = new Criteria();
    const reference = new Criteria(undefined, undefined, false);
    const rec = { Status: 'Hot', Flag: false, Missing: undefined };
    for (const e of [
      '"Hot"[1]', '$exists(Status)[false]', '$not(Flag)[1]', 'Status in ["Hot","Cold"][1]', 'Status{"k":1}', '"a"{"k":1}',
      'Status[0]', 'Status[]', 'not(Flag)', '$contains(Missing, 5)', '$contains(Status, 5)', '$lowercase(Missing)[0]',
    ]) {
      // (JSON: jsonata marks its sequences with properties of its own; the values are what count.)
      expect(JSON.stringify(await outcome(fast, e, rec)), e).toEqual(JSON.stringify(await outcome(reference, e, rec)));
      // The verdict too: an error stays an error, never "no match".
      const d = await fast.decide(e, rec, NOW);
      const r = await reference.decide(e, rec, NOW);
      expect(d.error?.code ?? d.match, e).toEqual(r.error?.code ?? r.match);
    }
    expect(fast.fastEvaluations).toBe(0);
    expect((await fast.decide('not(Flag)', rec, NOW)).error?.code).toBe('T1005'); // "did you mean $not?"
    expect((await fast.decide('$contains(Missing, 5)', rec, NOW)).error?.code).toBe('T0410');
  });

  it('E2 U3 truthiness is jsonata\'s boolean cast: {} [] functions and lambdas are no match, an array matches when a member does', async () => {
    const c = new Criteria();
    for (const [e, want] of [
      ['{}', false], ['[[],{}]', false], ['$lowercase', false], ['function($x){$x}', false], ['{"a":1}', true],
      ['[0, ""]', false], ['[0, "x"]', true], ['[[0]]', false], ['"x"', true], ['null', false], ['Missing', false],
    ] as const) {
      expect(await c.test(e, {}, NOW), e).toBe(want);
      expect(await c.test(`$boolean(${e})`, {}, NOW), e).toBe(want);
    }
  });

  it('D4 U3 an expression that fails on a record is an error, not "no match"; the error names jsonata\'s code and the expression', async () => {
    const c = new Criteria();
    const d = await c.decide('$number(Score) > 90 or Stage = "Closed Won"', { Score: 'n/a', Stage: 'Open' }, NOW);
    expect(d.match).toBeUndefined();
    expect(d.error).toMatchObject({ code: 'D3030', kind: 'error', expression: '$number(Score) > 90 or Stage = "Closed Won"' });
    expect(d.error!.message).toMatch(/failed \(D3030\)/);
    await expect(c.test('$number(Score) > 90', { Score: 'n/a' }, NOW)).rejects.toMatchObject({ code: 'D3030' });
    expect(await c.decide('Stage = = 1', {}, NOW)).toMatchObject({ error: { kind: 'invalid' } });
  });

  it('E7 F11 a date without an offset is a wall time in the zone given, never in the server\'s zone', async () => {
    const c = new Criteria();
    const t = Date.parse('2026-03-01T23:30:00Z'); // 00:30 on 2 March in Berlin
    expect(await c.evaluate('$daysSince(Closing_Date)', { Closing_Date: '2026-03-01' }, t, 'Europe/Berlin')).toBe(1);
    expect(await c.evaluate('$daysSince(Closing_Date)', { Closing_Date: '2026-03-01' }, t)).toBe(0);
    expect(await c.evaluate('$hoursSince(Called)', { Called: '2026-03-01T23:00' }, t, 'Europe/Berlin')).toBe(1);
    // Across New York's spring-forward (2026-03-08 02:00 → 03:00): midnight EST to 08:00 EDT is 7 hours.
    expect(await c.evaluate('$hoursSince(D)', { D: '2026-03-08' }, Date.parse('2026-03-08T12:00:00Z'), 'America/New_York')).toBe(7);
    expect(await c.evaluate('$daysUntil(D)', { D: '2026-02-30' }, t)).toBeUndefined();
    // The fast path decides dates in any zone (it repeats the bindings' zone arithmetic).
    const before = c.fastEvaluations;
    c.test('$daysSince(D) > 0', { D: '2026-02-01' }, t, 'UTC');
    c.test('$daysSince(D) > 0', { D: '2026-02-01T10:00' }, t, 'Europe/Berlin');
    expect(c.fastEvaluations).toBe(before + 2);
  });

  it('E7 F11 $today() is the date in the zone given (the record\'s or the cadence\'s), not UTC', async () => {
    const c = new Criteria();
    const t = Date.parse('2026-03-01T23:30:00Z'); // 00:30 on 2 March in Berlin
    expect(await c.evaluate('$today()', {}, t, 'Europe/Berlin')).toBe('2026-03-02');
    expect(await c.evaluate('$today()', {}, t, 'America/New_York')).toBe('2026-03-01');
    expect(await c.evaluate('$today()', {}, t)).toBe('2026-03-01');
    expect(await c.test('$substring(Created_Time, 0, 10) = $today()', { Created_Time: '2026-03-02T00:10:00+01:00' }, t, 'Europe/Berlin')).toBe(true);
  });
  it('E7 F11 the fast path and the bindings agree on $daysSince, $daysUntil, $hoursSince and $today around midnight and DST changes, in any zone', async () => {
    const fast = new Criteria();
    const reference = new Criteria(undefined, undefined, false);
    // Instants near midnight and across the 2026 DST changes of Berlin (29 Mar, 25 Oct) and New York (8 Mar, 1 Nov).
    const marks = ['2026-03-28T22:30:00Z', '2026-03-29T00:30:00Z', '2026-03-29T22:10:00Z', '2026-10-24T21:59:00Z', '2026-10-25T22:59:00Z',
      '2026-03-08T04:30:00Z', '2026-03-08T07:30:00Z', '2026-11-01T05:30:00Z', '2026-11-01T06:30:00Z', '2026-12-31T23:30:00Z'].map(Date.parse);
    const instant = fc.tuple(fc.constantFrom(...marks), fc.integer({ min: -3 * 3_600_000, max: 3 * 3_600_000 })).map(([m, d]) => m + d);
    const date = fc.oneof(
      instant.map((t) => new Date(t).toISOString()),
      instant.map((t) => new Date(t).toISOString().slice(0, 16)), // a wall time in the zone
      instant.map((t) => new Date(t).toISOString().slice(0, 10)),
      instant,
      fc.constantFrom('2026-03-29T02:30', '2026-11-01T01:30', 'not a date', '2026-02-30'),
    );
    let fastOnes = 0;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('$daysSince(D)', '$daysUntil(D)', '$hoursSince(D)', '$daysSince(D) >= 1', '$today()'), date, instant,
        fc.constantFrom(undefined, 'UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata', 'Not/AZone'), async (e, d, now, zone) => {
          const before = fast.fastEvaluations;
          const got = await fast.evaluate(e, { D: d }, now, zone);
          if (fast.fastEvaluations > before) fastOnes++;
          expect(got, `${e} D=${String(d)} now=${new Date(now).toISOString()} ${zone}`).toEqual(await reference.evaluate(e, { D: d }, now, zone));
        }),
      { numRuns: 3000 },
    );
    expect(fastOnes).toBeGreaterThan(1500);
  });

  it('E7 F11 $daysSince and $daysUntil count calendar days in the zone, not 24-hour periods: midnight and DST days', async () => {
    for (const c of [new Criteria(), new Criteria(undefined, undefined, false)]) {
      const at = (iso: string, zone: string, e: string, d: string) => c.evaluate(e, { D: d }, Date.parse(iso), zone);
      // 00:30 on 3 March in Berlin; 23:00 the evening before is 1 day ago, though 90 minutes passed.
      expect(await at('2026-03-02T23:30:00Z', 'Europe/Berlin', '$daysSince(D)', '2026-03-02T23:00')).toBe(1);
      expect(await at('2026-03-02T23:30:00Z', 'Europe/Berlin', '$daysSince(D)', '2026-03-02T22:00:00Z')).toBe(1); // the same instant, given in UTC
      expect(await at('2026-03-02T23:30:00Z', 'UTC', '$daysSince(D)', '2026-03-02T22:00:00Z')).toBe(0); // in UTC it is still the 2nd
      expect(await at('2026-03-02T23:30:00Z', 'Europe/Berlin', '$hoursSince(D)', '2026-03-02T23:00')).toBe(1); // hours are elapsed hours
      // Spring forward (29 March, a 23-hour day): 00:10 on the 30th, the 29th's midnight was 23 h 10 min ago: 1 day.
      expect(await at('2026-03-29T22:10:00Z', 'Europe/Berlin', '$daysSince(D)', '2026-03-29')).toBe(1);
      // Fall back (25 October, a 25-hour day): 23:59 that day, its midnight was 24 h 59 min ago: still the same day.
      expect(await at('2026-10-25T22:59:00Z', 'Europe/Berlin', '$daysSince(D)', '2026-10-25')).toBe(0);
      expect(await at('2026-10-25T22:59:00Z', 'Europe/Berlin', '$today()', '')).toBe('2026-10-25');
      // $daysUntil: at 00:30, 23:00 the same evening is today (0), and 00:10 tomorrow is 1 day away.
      expect(await at('2026-03-02T23:30:00Z', 'Europe/Berlin', '$daysUntil(D)', '2026-03-03T23:00')).toBe(0);
      expect(await at('2026-03-02T22:50:00Z', 'Europe/Berlin', '$daysUntil(D)', '2026-03-03T00:10')).toBe(1);
      // New York's spring forward: 23:30 on 8 March is the same day as 00:30 that morning.
      expect(await at('2026-03-09T03:30:00Z', 'America/New_York', '$daysSince(D)', '2026-03-08T00:30')).toBe(0);
    }
  });
});
