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
    // UTC cadences keep the fast path for dates; a named zone hands them to the bindings.
    const before = c.fastEvaluations;
    c.test('$daysSince(D) > 0', { D: '2026-02-01' }, t, 'UTC');
    expect(c.fastEvaluations).toBe(before + 1);
  });

  it('E7 F11 $today() is the date in the zone given (the record\'s or the cadence\'s), not UTC', async () => {
    const c = new Criteria();
    const t = Date.parse('2026-03-01T23:30:00Z'); // 00:30 on 2 March in Berlin
    expect(await c.evaluate('$today()', {}, t, 'Europe/Berlin')).toBe('2026-03-02');
    expect(await c.evaluate('$today()', {}, t, 'America/New_York')).toBe('2026-03-01');
    expect(await c.evaluate('$today()', {}, t)).toBe('2026-03-01');
    expect(await c.test('$substring(Created_Time, 0, 10) = $today()', { Created_Time: '2026-03-02T00:10:00+01:00' }, t, 'Europe/Berlin')).toBe(true);
  });
});
