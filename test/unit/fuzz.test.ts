// Fuzzing the parsers: random JSON never crashes validation, random text never hangs or crashes the
// criteria compiler, and random records are either stored or refused with a D4 error.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Criteria, CriteriaError } from '../../engine/criteria/criteria';
import { CadenzaError } from '../../engine/model/errors';
import { validateDefinition } from '../../engine/model/validate';
import { emailCadence, harness, type Harness } from '../helpers/harness';

describe('fuzz', () => {
  it('D4 validation answers any JSON value with a list of problems, never an exception', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const problems = validateDefinition(v);
        expect(Array.isArray(problems)).toBe(true);
        for (const p of problems) expect(p.rule).toMatch(/^[A-Z]\d+$/);
      }),
      { numRuns: 1000 },
    );
    // Mutations of a valid definition: each field replaced by random JSON.
    const base = emailCadence() as unknown as Record<string, unknown>;
    fc.assert(
      fc.property(fc.constantFrom(...Object.keys(base), 'nodes.0', 'edges.0', 'nodes.0.delay'), fc.jsonValue(), (path, value) => {
        const def = JSON.parse(JSON.stringify(base));
        const parts = path.split('.');
        let obj = def;
        for (const p of parts.slice(0, -1)) obj = obj[p];
        obj[parts.at(-1)!] = value;
        expect(() => validateDefinition(def)).not.toThrow();
      }),
      { numRuns: 1000 },
    );
  });

  it('E2 D4 the criteria compiler refuses random text with a CriteriaError and evaluation stays bounded', async () => {
    const c = new Criteria({ stack: 100, timeout: 50, sequence: 10_000 });
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 60 }), fc.jsonValue(), async (text, input) => {
        try {
          await c.evaluate(text, input, 0);
        } catch (e) {
          expect(e).toBeInstanceOf(CriteriaError);
        }
      }),
      { numRuns: 500 },
    );
  });

  describe('records', () => {
    let h: Harness;
    beforeAll(async () => {
      h = await harness({ maxRecordBytes: 4096 });
    });
    afterAll(() => h.close());

    it('D4 any JSON as a record is stored or refused with a D4 error', async () => {
      await fc.assert(
        fc.asyncProperty(fc.jsonValue(), async (v) => {
          try {
            await h.rt.upsertRecord('Leads', v);
            expect(typeof (v as { id: unknown }).id === 'string' || typeof (v as { id: unknown }).id === 'number').toBe(true);
          } catch (e) {
            expect(e).toBeInstanceOf(CadenzaError);
            expect((e as CadenzaError).rule).toBe('D4');
          }
        }),
        { numRuns: 500 },
      );
    });
  });
});
