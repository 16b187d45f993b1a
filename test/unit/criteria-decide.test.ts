// Errors and time-outs are outcomes, not "no match" (issue 14): what the runtime gets for one record,
// and the publish check that names the field and a stored record.
import { afterAll, describe, expect, it } from 'vitest';
import { Criteria, DEFAULT_LIMITS } from '../../engine/criteria/criteria';
import { criteriaProblems, criteriaZone, decideAll, problemMessage } from '../../engine/criteria/definition';
import type { CadenceDefinition } from '../../engine/model/types';
import { validateDefinition } from '../../engine/model/validate';
import { Sandbox } from '../../engine/sandbox/sandbox';
import { emailCadence } from '../helpers/harness';

const NOW = Date.parse('2026-03-02T08:00:00Z');
const def: CadenceDefinition = {
  ...emailCadence({ enrollment: { mode: 'view', view: 'Lead_Status = "Hot"' }, unenroll: { criteria: '$number(Score) > 90 or Stage = "Closed Won"' } }),
};

describe('criteria decisions', () => {
  const sandbox = new Sandbox({ workers: 1 });
  afterAll(() => sandbox.close());

  it('U3 E3 exit criteria that fail on a record are an error naming the field and jsonata\'s code, not "no match"', async () => {
    const c = new Criteria();
    const d = await decideAll(c, def, { Lead_Status: 'Hot', Score: 'n/a', Stage: 'Open' }, NOW);
    expect(d.view).toBe(true);
    expect(d.exit).toBeUndefined();
    expect(d.errors).toEqual([expect.objectContaining({ field: 'unenroll.criteria', code: 'D3030', kind: 'error' })]);
    const ok = await decideAll(c, def, { Lead_Status: 'Hot', Score: 95 }, NOW);
    expect(ok).toEqual({ view: true, exit: true, checks: {}, errors: [] });
  });

  it('E2 D4 the publish check runs the view and the criteria on stored records and names the field and the first failing record', async () => {
    const c = new Criteria(DEFAULT_LIMITS, 100, true, sandbox);
    const hostile = { ...def, enrollment: { mode: 'view' as const, view: '$contains(Account_Name, /^([A-Za-z]+ ?)+$/)' } };
    const problems = await criteriaProblems(c, hostile, [
      { id: 'ok', data: { Account_Name: 'Acme', Score: 1 } },
      { id: 'L7', data: { Account_Name: 'abcdefghijklmnopqrstuvwxyzabcde1', Score: 'n/a' } },
    ], NOW);
    expect(problems).toEqual([
      expect.objectContaining({ field: 'enrollment.view', recordId: 'L7', kind: 'timeout' }),
      expect.objectContaining({ field: 'unenroll.criteria', recordId: 'L7', code: 'D3030' }),
    ]);
    expect(problemMessage(problems[1])).toMatch(/^unenroll\.criteria cannot be decided for record "L7": JSONata .* failed \(D3030\)/);
  });

  it('E7 F11 criteria read $today() in the record\'s zone, else the cadence\'s', () => {
    expect(criteriaZone({ ...def, timezone: 'Europe/Berlin' }, {})).toBe('Europe/Berlin');
    expect(criteriaZone({ ...def, timezone: 'Europe/Berlin' }, { Time_Zone: 'Asia/Tokyo' })).toBe('Asia/Tokyo');
  });

  it('E2 U3 D4 a call without $ (not(Flag)) fails on every record, so publishing refuses it naming the field and the fix', () => {
    const problems = validateDefinition({ ...def, enrollment: { mode: 'view', view: 'not(Flag)' }, unenroll: { criteria: 'Stage = "Won" or contains(Name, "x")' } });
    expect(problems).toEqual([
      expect.objectContaining({ rule: 'E2', field: 'enrollment.view', message: expect.stringMatching(/not\(…\), which is a field, not a function: did you mean \$not\(…\)\?/) }),
      expect.objectContaining({ rule: 'U3', field: 'unenroll.criteria', message: expect.stringMatching(/did you mean \$contains/) }),
    ]);
    expect(validateDefinition({ ...def, enrollment: { mode: 'view', view: '$not(Flag) and Owner.Name = "x"' } })).toEqual([]);
  });
});
