// F14 on both stores: a follow-up on an outcome path counts its delay from the moment the outcome was
// recorded (for the timeout path, from when the timeout fired), in business days too, inside the window.
import { afterEach, describe, expect, it } from 'vitest';
import { validateDefinition } from '../../engine/model/validate';
import type { CadenceDefinition } from '../../engine/model/types';
import { DAY, HOUR, T0, harness, iso, lead, published, type Harness } from '../helpers/harness';

let h: Harness;
afterEach(() => h?.close());

/** Email, then "opened → call one business day after the open", "no open in N days → bump 3 hours after the timeout". */
const afterOutcome = (over: Partial<CadenceDefinition> = {}, timeoutDays = 2): CadenceDefinition => ({
  id: 'o', name: 'After the outcome', module: 'Leads', timezone: 'UTC', enrollment: { mode: 'manual' },
  sendWindow: { days: [1, 2, 3, 4, 5], start: '09:00', end: '17:00' },
  nodes: [
    { id: 'hello', type: 'followUp', channel: 'email', template: { subject: 'Hi', body: 'Hello' } },
    { id: 'branch', type: 'outcomeBranch', outcomes: ['opened'], timeout: { amount: timeoutDays, unit: 'days' } },
    { id: 'call', type: 'followUp', channel: 'call', relativeTo: 'outcome', delay: { amount: 1, unit: 'businessDays' }, template: { subject: 'Call', body: '' } },
    { id: 'bump', type: 'followUp', channel: 'email', relativeTo: 'outcome', delay: { amount: 3, unit: 'hours' }, template: { subject: 'Bump', body: 'Again' } },
  ],
  edges: [{ from: 'trigger', to: 'hello' }, { from: 'hello', to: 'branch' }, { from: 'branch', port: 'opened', to: 'call' }, { from: 'branch', port: 'timeout', to: 'bump' }],
  ...over,
});

describe('F14 delays from the outcome', () => {
  it('F14 F11 "call one business day after they opened": an open on Friday afternoon gives a call on Monday, inside the window', async () => {
    h = await harness();
    await published(h, afterOutcome({}, 7));
    await h.rt.enroll('o', [lead('A')], 'rep'); // Monday 08:00: the email waits for 09:00
    await h.advance(4 * DAY + 7 * HOUR); // Friday 15:00
    const [hello] = h.sent;
    expect(iso(hello.at)).toBe('2026-03-02T09:00:00.000Z');
    expect(await h.rt.recordOutcome({ key: hello.key, outcome: 'opened' })).toEqual({ outcome: 'opened', applied: true });
    expect(await h.rt.getEnrollment('o', 'A')).toMatchObject({ position: 'call', outcomeAt: T0 + 4 * DAY + 7 * HOUR });
    await h.advance(5 * DAY);
    const call = h.sent.find((a) => a.nodeId === 'call')!;
    expect(iso(call.at)).toBe('2026-03-09T15:00:00.000Z'); // Monday, one business day after Friday 15:00
  });

  it('F14 F1 across a DST change: "1 day after they opened" keeps the local time of the open', async () => {
    h = await harness();
    const def = afterOutcome({ timezone: 'America/New_York', sendWindow: undefined }, 14);
    const call = def.nodes.find((n) => n.id === 'call')!;
    Object.assign(call, { delay: { amount: 1, unit: 'days' } });
    await published(h, def);
    await h.rt.enroll('o', [lead('D')], 'rep');
    await h.advance(0);
    // Saturday 15:00 in New York (EST, UTC-5); clocks spring forward that night.
    h.clock.set(Date.parse('2026-03-07T20:00:00Z'));
    expect(await h.rt.recordOutcome({ key: h.sent[0].key, outcome: 'opened' })).toEqual({ outcome: 'opened', applied: true });
    await h.advance(3 * DAY);
    const sent = h.sent.find((a) => a.nodeId === 'call')!;
    expect(iso(sent.at)).toBe('2026-03-08T19:00:00.000Z'); // Sunday 15:00 EDT (UTC-4): one local day later
  });

  it('F14 F5 on the timeout path the delay counts from when the timeout fired', async () => {
    h = await harness();
    await published(h, afterOutcome({ sendWindow: undefined }));
    await h.rt.enroll('o', [lead('B')], 'rep');
    await h.advance(5 * DAY);
    const sent = h.sent.filter((a) => a.recordId === 'B').map((a) => [a.nodeId, iso(a.at)]);
    // hello at 08:00 Monday; no open within 2 days → timeout at Wednesday 08:00; bump 3 hours later.
    expect(sent).toEqual([['hello', '2026-03-02T08:00:00.000Z'], ['bump', '2026-03-04T11:00:00.000Z']]);
  });

  it('F14 D4 "from the outcome" with no outcome branch before the step is refused at publish, naming the node', async () => {
    const def = afterOutcome({
      nodes: [
        { id: 'hello', type: 'followUp', channel: 'email', template: { subject: 'Hi', body: 'Hello' } },
        { id: 'next', type: 'followUp', channel: 'email', relativeTo: 'outcome', delay: { amount: 1, unit: 'days' }, template: { subject: 'Next', body: 'x' } },
      ],
      edges: [{ from: 'trigger', to: 'hello' }, { from: 'hello', to: 'next' }],
    });
    expect(validateDefinition(def)).toEqual([expect.objectContaining({ rule: 'F14', node: 'next', field: 'relativeTo' })]);
    h = await harness();
    const before = await h.snapshot();
    await expect(h.rt.createCadence(def, 'admin')).rejects.toMatchObject({ rule: 'F14' });
    expect(await h.snapshot()).toEqual(before);
    expect(validateDefinition(afterOutcome())).toEqual([]);
  });
});
