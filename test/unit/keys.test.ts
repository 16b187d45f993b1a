// D2 D4: idempotency keys any header can carry, and back to the engine's own key.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { engineKey, headerSafeKey, recordIdProblem } from '../../engine/runtime/keys';

describe('idempotency keys', () => {
  it('D2 D4 any key becomes printable ASCII without separators, round-trips, and stays distinct', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' }), (a, b) => {
      const [ka, kb] = [headerSafeKey(a), headerSafeKey(b)];
      expect(ka).toMatch(/^[\x21-\x7e]*$/);
      expect(engineKey(ka)).toBe(a);
      if (a !== b) expect(ka).not.toBe(kb);
    }), { numRuns: 2000 });
    expect(headerSafeKey('c1:r1:1:e1')).toBe('c1:r1:1:e1'); // readable keys stay as they are
    expect(engineKey(headerSafeKey('u~c:r:1:e1'))).toBe('u~c:r:1:e1'); // even one that looks encoded
  });

  it('D4 record ids with control characters or beyond 200 characters are refused with the reason', () => {
    expect(recordIdProblem('ok-李')).toBeNull();
    expect(recordIdProblem('a\r\nb')).toMatch(/control characters/);
    expect(recordIdProblem('x'.repeat(201))).toMatch(/201 characters/);
  });
});
