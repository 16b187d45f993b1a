import { afterEach, describe, expect, it } from 'vitest';
import { DAY, emailCadence, harness, lead, published, type Harness } from '../helpers/harness';

let h: Harness;
afterEach(() => h?.close());

describe('smoke', () => {
  it('F1 F10 runs a two-email cadence to completion on virtual time', async () => {
    h = await harness();
    await published(h, emailCadence());
    const answers = await h.rt.enroll('c1', [lead('L1')], 'rep');
    expect(answers[0].status).toBe('enrolled');
    await h.advance(0);
    expect(h.sent.map((a) => a.nodeId)).toEqual(['e1']);
    expect(h.sent[0].email?.subject).toBe('Hi AnnL1');
    await h.advance(2 * DAY);
    expect(h.sent.map((a) => a.nodeId)).toEqual(['e1', 'e2']);
    const e = await h.rt.getEnrollment('c1', 'L1');
    expect(e?.status).toBe('completed');
  });
});
