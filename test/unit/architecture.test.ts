import { describe, expect, it } from 'vitest';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { violations } = require('../../scripts/check-deps.js');

describe('architecture', () => {
  it('the machine, criteria, model and time are pure, and the engine imports no host', () => {
    expect(violations()).toEqual([]);
  });
});
