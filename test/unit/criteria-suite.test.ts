// The official JSONata test suite (a subset of jsonata-js/jsonata test/test-suite at the installed
// version, MIT, in test/fixtures/jsonata-suite) run through the criteria: every case the fast path
// decides equals the suite's expected result, and Criteria.test agrees with jsonata's boolean cast of
// the expected result on all of them (an expected error is an error, never "no match").
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import jsonata from 'jsonata';
import { describe, expect, it } from 'vitest';
import { Criteria, CriteriaError } from '../../engine/criteria/criteria';
import { FALLBACK } from '../../engine/criteria/fast';

interface Case {
  name: string;
  expr?: string;
  data?: unknown;
  dataset?: string | null;
  bindings?: Record<string, unknown>;
  result?: unknown;
  undefinedResult?: boolean;
  code?: string;
  error?: { code?: string };
  timelimit?: number;
  depth?: number;
}

const suite = JSON.parse(readFileSync(join(__dirname, '../fixtures/jsonata-suite/cases.json'), 'utf8')) as { tag: string; cases: Case[]; datasets: Record<string, unknown> };
const installed = JSON.parse(readFileSync(require.resolve('jsonata/package.json'), 'utf8')).version as string;
const NOW = Date.parse('2026-03-02T08:00:00Z');

// Cases the criteria cannot take as they are: variable bindings (criteria have none), the wall clock
// ($now/$millis are the engine clock here), and the suite's own time/depth limits.
const usable = suite.cases.filter((c) => typeof c.expr === 'string' && !Object.keys(c.bindings ?? {}).length && !/\$(now|millis)\b/.test(c.expr) && !c.timelimit && !c.depth);
const codeOf = (c: Case) => c.code ?? c.error?.code;
const input = (c: Case) => ('data' in c ? c.data : typeof c.dataset === 'string' ? suite.datasets[c.dataset] : undefined);

describe('criteria on the official JSONata test suite', () => {
  it('E2 D4 the fixtures are the suite of the installed jsonata', () => {
    expect(suite.tag).toBe(`v${installed}`);
    expect(usable.length).toBeGreaterThan(400);
  });

  it('E2 every suite case the fast path decides gives the expected result (values and errors)', () => {
    const c = new Criteria();
    let decided = 0;
    for (const k of usable) {
      let compiled;
      try {
        compiled = c.compile(k.expr!);
      } catch (e) {
        expect(e, k.name).toBeInstanceOf(CriteriaError);
        expect(codeOf(k), `${k.name}: ${k.expr} compiles in jsonata`).toBeDefined();
        continue;
      }
      if (!compiled.fast) continue;
      const v = compiled.fast(input(k), NOW);
      if (v === FALLBACK) continue;
      decided++;
      expect(codeOf(k), `${k.name}: ${k.expr} must raise ${codeOf(k)}, the fast path answered ${String(v)}`).toBeUndefined();
      if (k.undefinedResult) expect(v, `${k.name}: ${k.expr}`).toBeUndefined();
      else expect(v, `${k.name}: ${k.expr}`).toEqual(k.result);
    }
    // The subset is meant for views: a good share of comparisons, booleans, fields and `in` must be its own.
    console.info(`fast path decided ${decided} of ${usable.length} suite cases`);
    expect(decided).toBeGreaterThan(60);
  });

  it('E2 U3 Criteria.test agrees with jsonata\'s boolean cast of every expected result, and an expected error is an error', async () => {
    const c = new Criteria();
    const cast = jsonata('$boolean($v)');
    for (const k of usable) {
      let got: boolean | CriteriaError;
      try {
        got = await c.test(k.expr!, input(k), NOW);
      } catch (e) {
        got = e as CriteriaError;
      }
      if (codeOf(k)) {
        expect(got, `${k.name}: ${k.expr} must fail with ${codeOf(k)}`).toBeInstanceOf(CriteriaError);
        // A bound of ours may stop a case first; otherwise the error is jsonata's own.
        if ((got as CriteriaError).kind === 'error' || (got as CriteriaError).kind === 'invalid') expect((got as CriteriaError).code, k.name).toBe(codeOf(k));
        continue;
      }
      const want = k.undefinedResult ? false : (await cast.evaluate(null, { v: k.result })) === true;
      expect(got, `${k.name}: ${k.expr}`).toBe(want);
    }
  });
});
