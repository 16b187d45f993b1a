import { afterEach, describe, expect, it } from 'vitest';
import type { CadenceDefinition } from '../../engine/model/types';
import { DAY, HOUR, T0, emailCadence, harness, iso, lead, published, sentTo, type Harness } from '../helpers/harness';

let h: Harness;
afterEach(() => h?.close());

const tpl = (s: string) => ({ subject: s, body: s });
const callThenEmail = (over: Partial<CadenceDefinition> = {}) => emailCadence({
  nodes: [
    { id: 'call', type: 'followUp', channel: 'call', template: tpl('call') },
    { id: 'e2', type: 'followUp', channel: 'email', delay: { amount: 2, unit: 'days' }, template: tpl('later') },
  ],
  edges: [{ from: 'trigger', to: 'call' }, { from: 'call', to: 'e2' }],
  ...over,
});

describe('un-enrollment', () => {
  it('U1 an outcome (call result "invalid number") un-enrolls the record', async () => {
    h = await harness();
    await published(h, callThenEmail({ unenroll: { outcomes: ['invalid-number'] } }));
    await h.rt.enroll('c1', [lead('A'), lead('B')], 'rep');
    await h.advance(0);
    await h.rt.recordOutcome({ key: h.sent.find((s) => s.recordId === 'A')!.key, outcome: 'invalid-number' });
    await h.rt.recordOutcome({ key: h.sent.find((s) => s.recordId === 'B')!.key, outcome: 'busy' });
    await h.advance(3 * DAY);
    expect(await h.rt.getEnrollment('c1', 'A')).toMatchObject({ status: 'stopped', reason: 'outcome "invalid-number" (U1)' });
    expect(sentTo(h, 'A')).toEqual(['call']);
    expect(sentTo(h, 'B')).toEqual(['call', 'e2']);
  });

  it('U2 leaving the view un-enrolls only when the cadence says so', async () => {
    h = await harness();
    const view = { mode: 'view' as const, view: 'Lead_Status = "Hot"' };
    await published(h, emailCadence({ id: 'keeps', enrollment: view }));
    await published(h, emailCadence({ id: 'drops', enrollment: view, unenroll: { onLeaveView: true } }));
    await h.rt.upsertRecord('Leads', lead('A', { Lead_Status: 'Hot' }));
    await h.advance(0);
    await h.rt.upsertRecord('Leads', lead('A', { Lead_Status: 'Cold' }));
    await h.advance(3 * DAY);
    expect(h.sent.filter((s) => s.cadenceId === 'keeps').map((s) => s.nodeId)).toEqual(['e1', 'e2']);
    expect(h.sent.filter((s) => s.cadenceId === 'drops').map((s) => s.nodeId)).toEqual(['e1']);
    expect(await h.rt.getEnrollment('drops', 'A')).toMatchObject({ status: 'stopped', reason: 'left the view (U2)' });
  });

  it('U3 exit criteria un-enroll as soon as the record matches them, cadence-wide or after an un-enroll check', async () => {
    h = await harness();
    await published(h, emailCadence({ module: 'Deals', unenroll: { criteria: 'Stage in ["Closed Won", "Closed Lost"]' } }));
    await published(h, emailCadence({
      id: 'checked', module: 'Deals',
      nodes: [...emailCadence().nodes.map((n) => ({ ...n })), { id: 'gate', type: 'unenrollCheck', name: 'Still open?', criteria: 'Stage = "On hold"' }, { id: 'e3', type: 'followUp', channel: 'email', delay: { amount: 4, unit: 'days' }, template: tpl('3') }],
      edges: [{ from: 'trigger', to: 'e1' }, { from: 'e1', to: 'gate' }, { from: 'gate', to: 'e2' }, { from: 'e2', to: 'e3' }],
    }));
    await h.rt.enroll('c1', [{ ...lead('D1'), Stage: 'Negotiation' }], 'rep');
    await h.rt.enroll('checked', ['D1'], 'rep');
    await h.advance(HOUR);
    const left: string[] = [];
    h.rt.subscribe((e) => e.type === 'left' && left.push(`${e.enrollment!.cadenceId}/${e.nodeId}`));
    await h.rt.upsertRecord('Deals', { ...lead('D1'), Stage: 'On hold' });
    expect(await h.rt.getEnrollment('checked', 'D1')).toMatchObject({ status: 'stopped', reason: 'exit criteria of "Still open?" (U3)' });
    expect(left).toEqual(['checked/gate']);
    expect((await h.rt.getEnrollment('c1', 'D1'))?.status).toBe('active');
    await h.rt.upsertRecord('Deals', { ...lead('D1'), Stage: 'Closed Won' });
    expect(await h.rt.getEnrollment('c1', 'D1')).toMatchObject({ status: 'stopped', reason: 'matched the un-enrollment criteria (U3)' });
    await h.advance(5 * DAY);
    expect(h.sent.map((s) => `${s.cadenceId}/${s.nodeId}`)).toEqual(['c1/e1', 'checked/e1']);
  });

  it('U4 on the un-enroll date every record still enrolled is un-enrolled', async () => {
    h = await harness();
    await published(h, emailCadence({ unenroll: { onDate: '2026-03-03T12:00:00Z' } }));
    await h.rt.enroll('c1', [lead('A'), lead('B')], 'rep');
    await h.advance(3 * DAY);
    for (const id of ['A', 'B']) expect(await h.rt.getEnrollment('c1', id)).toMatchObject({ status: 'stopped', reason: 'un-enroll date 2026-03-03T12:00:00Z (U4)' });
    expect(h.sent.map((s) => s.nodeId)).toEqual(['e1', 'e1']);
  });

  it('U5 a user un-enrolls a record manually; un-enrolling twice is refused', async () => {
    h = await harness();
    await published(h, emailCadence());
    await h.rt.enroll('c1', [lead('A')], 'rep');
    await h.rt.unenroll('c1', 'A', 'maria');
    expect(await h.rt.getEnrollment('c1', 'A')).toMatchObject({ status: 'stopped', reason: 'un-enrolled manually (U5)' });
    await expect(h.rt.unenroll('c1', 'A', 'maria')).rejects.toMatchObject({ rule: 'U5' });
    await expect(h.rt.unenroll('c1', 'nobody', 'maria')).rejects.toMatchObject({ rule: 'U5' });
  });

  it('U6 when un-enrollment and a follow-up fall due at the same moment, un-enrollment wins', async () => {
    h = await harness();
    // e2 is due exactly at T0 + 2 days, the same instant as the un-enroll date.
    await published(h, emailCadence({ unenroll: { onDate: iso(T0 + 2 * DAY) } }));
    await h.rt.enroll('c1', [lead('A')], 'rep');
    await h.advance(0);
    await h.advance(2 * DAY);
    expect(sentTo(h, 'A')).toEqual(['e1']);
    expect((await h.rt.getEnrollment('c1', 'A'))?.reason).toMatch(/U4/);
    // The same holds for a criteria change that lands on the moment a follow-up is due.
    await published(h, emailCadence({ id: 'c2', unenroll: { criteria: 'Status = "Lost"' } }));
    await h.rt.enroll('c2', [lead('B')], 'rep');
    await h.advance(0);
    await h.store.putRecords([{ id: 'B', module: 'Leads', data: lead('B', { Status: 'Lost' }), unsubscribed: false }], h.clock.now()); // changed without an event
    await h.advance(2 * DAY);
    expect(sentTo(h, 'B')).toEqual(['e1']);
    expect((await h.rt.getEnrollment('c2', 'B'))?.reason).toBe('matched the un-enrollment criteria (U3)');
  });

  it('U7 a scheduled un-enrollment happens even while the cadence is inactive', async () => {
    h = await harness();
    await published(h, emailCadence({ unenroll: { onDate: '2026-03-05' } }));
    await h.rt.enroll('c1', [lead('A')], 'rep');
    await h.advance(0);
    await h.rt.deactivate('c1', 'admin');
    expect(await h.rt.getEnrollment('c1', 'A')).toMatchObject({ status: 'active', wait: 'halted' });
    await h.advance(4 * DAY);
    expect(await h.rt.getEnrollment('c1', 'A')).toMatchObject({ status: 'stopped', reason: expect.stringMatching(/U4/) });
  });

  it('U8 un-enrollment cancels every scheduled action of the enrollment', async () => {
    h = await harness();
    await published(h, emailCadence());
    await h.rt.enroll('c1', [lead('A')], 'rep');
    await h.advance(0);
    expect(await h.store.nextDue()).toBe(T0 + 2 * DAY);
    await h.rt.unenroll('c1', 'A', 'rep');
    expect(await h.store.nextDue()).toBeNull();
    await h.advance(10 * DAY);
    expect(sentTo(h, 'A')).toEqual(['e1']);
  });

  it('U9 every enrollment change is logged with reason, time and actor, per record and per cadence', async () => {
    h = await harness();
    await published(h, emailCadence());
    await h.rt.enroll('c1', [lead('A')], 'maria');
    await h.advance(HOUR);
    await h.rt.unenroll('c1', 'A', 'li', 'asked to stop');
    const log = await h.rt.auditLog({ recordId: 'A' });
    expect(log.map((l) => [l.event, l.actor])).toEqual(expect.arrayContaining([['enrolled', 'maria'], ['executed', 'automation'], ['stopped', 'li']]));
    const stopped = log.find((l) => l.event === 'stopped')!;
    expect(stopped).toMatchObject({ reason: 'asked to stop', at: T0 + HOUR, cadenceId: 'c1' });
    const perCadence = await h.rt.auditLog({ cadenceId: 'c1' });
    expect(perCadence.map((l) => l.event)).toEqual(expect.arrayContaining(['created', 'published', 'enrolled', 'stopped']));
  });

  it('U10 an out-of-office reply is recorded as auto-replied and does not end the outreach', async () => {
    h = await harness();
    await published(h, emailCadence({ unenroll: { outcomes: ['replied'] } }));
    await h.rt.enroll('c1', [lead('A'), lead('B')], 'rep');
    await h.advance(0);
    const [a, b] = h.sent;
    expect(await h.rt.recordOutcome({ key: a.key, outcome: 'replied', message: { subject: 'Out of office until Monday', headers: { 'Auto-Submitted': 'auto-replied' } } })).toMatchObject({ outcome: 'auto-replied' });
    expect(await h.rt.recordOutcome({ key: b.key, outcome: 'replied', message: { subject: 'Re: hi', headers: {} } })).toMatchObject({ outcome: 'replied' });
    await h.advance(3 * DAY);
    expect(sentTo(h, 'A')).toEqual(['e1', 'e2']);
    expect(await h.rt.getEnrollment('c1', 'B')).toMatchObject({ status: 'stopped', reason: 'outcome "replied" (U1)' });
  });

  it('U11 a reply from someone at the same company un-enrolls everyone from that company', async () => {
    h = await harness();
    await published(h, emailCadence({ unenroll: { outcomes: ['replied'], companyReply: true } }));
    await h.rt.enroll('c1', [lead('ann', { Email: 'ann@acme.example' }), lead('bob', { Email: 'bob@acme.example' }), lead('cy', { Email: 'cy@other.example' })], 'rep');
    await h.advance(0);
    await h.rt.recordOutcome({ key: h.sent.find((s) => s.recordId === 'ann')!.key, outcome: 'replied' });
    expect(await h.rt.getEnrollment('c1', 'bob')).toMatchObject({ status: 'stopped', reason: 'ann from the same company replied (U11)' });
    expect((await h.rt.getEnrollment('c1', 'cy'))?.status).toBe('active');
  });
});
