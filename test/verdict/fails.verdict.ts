// Fails on purpose: scripts/check-verdict.js runs it with the suite's own configuration and requires a
// non-zero exit (issue 7: the suite once exited 0 with failing tests).
import { expect, it } from 'vitest';

it('fails on purpose', () => {
  expect(1).toBe(2);
});
