// A3: the "why" log is stored one row per step; packing and unpacking give back every entry, in order.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { packAudit, unpackAudit, type AuditRow } from '../../engine/store/store';

const row = fc.record({
  at: fc.constantFrom(1, 2), cadenceId: fc.constantFrom('c1', null), enrollmentId: fc.constantFrom('c1:a', 'c1:b', null), recordId: fc.constantFrom('a', 'b', null),
  actor: fc.constantFrom('automation', 'rep'), event: fc.string({ maxLength: 8 }), reason: fc.string({ maxLength: 12 }),
  data: fc.option(fc.dictionary(fc.string({ maxLength: 4 }), fc.jsonValue({ maxDepth: 1 })), { nil: null }),
}) as fc.Arbitrary<AuditRow>;

describe('audit packing', () => {
  it('A3 one stored row per step: every entry comes back, in order, with its step\'s time, actor and enrollment', () => {
    fc.assert(fc.property(fc.array(row, { maxLength: 30 }), (rows) => {
      const packed = packAudit(rows);
      // Round trip through JSON, as the stores do.
      const back = packed.flatMap((p) => unpackAudit(JSON.parse(JSON.stringify(p))));
      expect(back).toEqual(JSON.parse(JSON.stringify(rows.map((r) => ({ ...r, data: r.data ?? null })))));
      // Consecutive entries of one step share a row.
      for (let i = 1; i < packed.length; i++) {
        const [a, b] = [packed[i - 1], packed[i]];
        expect(a.at === b.at && a.actor === b.actor && a.enrollmentId === b.enrollmentId && a.cadenceId === b.cadenceId && a.recordId === b.recordId).toBe(false);
      }
    }), { numRuns: 300 });
  });
});
