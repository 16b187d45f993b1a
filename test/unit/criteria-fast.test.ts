// Differential fuzz of the criteria fast path: random records × random expressions of the subset give
// exactly what jsonata gives — values, and errors.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Criteria } from '../../engine/criteria/criteria';

const NOW = Date.parse('2026-03-02T08:00:00Z');
const FIELDS = ['Status', 'Score', 'Name', 'Created', 'Flag', 'Owner.Region', 'Missing'];
const scalar = fc.oneof(fc.constantFrom('Hot', 'hot', 'Cold', '', 'x'), fc.integer({ min: -5, max: 50 }), fc.boolean(), fc.constant(null), fc.constantFrom('2026-02-20T00:00:00Z', 'not a date'));
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

async function outcome(c: Criteria, e: string, r: unknown): Promise<unknown> {
  try {
    return { value: await c.evaluate(e, r, NOW) };
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
      fc.asyncProperty(expr, record, async (e, r) => {
        const before = fast.fastEvaluations;
        expect(await outcome(fast, e, r)).toEqual(await outcome(reference, e, r));
        if (fast.fastEvaluations > before) covered++;
      }),
      { numRuns: 4000 },
    );
    // The fast path must actually decide a large share (the records are built to mix in arrays and
    // odd types, which it leaves to jsonata), not fall back every time.
    expect(covered).toBeGreaterThan(1400);
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
});
