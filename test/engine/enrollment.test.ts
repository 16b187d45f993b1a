import { afterEach, describe, expect, it } from 'vitest';
import { DAY, HOUR, MIN, T0, emailCadence, harness, lead, published, sentTo, type Harness } from '../helpers/harness';

let h: Harness;
afterEach(() => h?.close());

const viewCadence = (over = {}) => emailCadence({ enrollment: { mode: 'view', view: 'Lead_Status = "Hot"' }, ...over });

describe('enrollment', () => {
  it('E1 enrolls one or many records at once, each with an answer', async () => {
    h = await harness();
    await published(h, emailCadence());
    await h.rt.upsertRecord('Leads', lead('known'));
    const answers = await h.rt.enroll('c1', [lead('A'), lead('B'), 'known', 'ghost', { First_Name: 'no id' }], 'rep');
    expect(answers.map((a) => [a.recordId, a.status])).toEqual([
      ['A', 'enrolled'], ['B', 'enrolled'], ['known', 'enrolled'], ['ghost', 'skipped'], ['(missing id)', 'skipped'],
    ]);
    expect(answers[3].reason).toMatch(/unknown Leads record/);
    expect(answers[4]).toMatchObject({ rule: 'D4' });
    const again = await h.rt.enroll('c1', ['A'], 'rep');
    expect(again[0]).toMatchObject({ status: 'skipped', rule: 'E1' });
  });

  it('E1 refuses enrollment into a cadence that is not published', async () => {
    h = await harness();
    await h.rt.createCadence(emailCadence(), 'admin');
    await expect(h.rt.enroll('c1', [lead('A')], 'rep')).rejects.toMatchObject({ rule: 'E1' });
    expect(await h.rt.getEnrollment('c1', 'A')).toBeUndefined();
  });

  it('E2 view enrollment: records already known enroll on publish, new and changed ones as they arrive; preview counts first', async () => {
    h = await harness();
    await h.rt.upsertRecord('Leads', lead('old-hot', { Lead_Status: 'Hot' }));
    await h.rt.upsertRecord('Leads', lead('old-cold', { Lead_Status: 'Cold' }));
    await h.rt.createCadence(viewCadence(), 'admin');
    expect(await h.rt.previewEnrollment('c1')).toEqual({ matching: 1, skippedByExit: 0, alreadyEnrolled: 0 });
    const pub = await h.rt.publish('c1', 'admin');
    expect(pub.enrolled).toBe(1);
    await h.rt.upsertRecord('Leads', lead('new-hot', { Lead_Status: 'Hot' }));
    await h.rt.upsertRecord('Leads', lead('old-cold', { Lead_Status: 'Hot' }));
    await h.advance(0);
    expect(h.sent.map((a) => a.recordId).sort()).toEqual(['new-hot', 'old-cold', 'old-hot']);
    expect((await h.rt.getEnrollment('c1', 'new-hot'))?.enrolledBy).toBe('automation');
  });

  it('E3 a record matching both the view and the un-enrollment criteria is skipped, not enrolled', async () => {
    h = await harness();
    await published(h, viewCadence({ unenroll: { criteria: 'Do_Not_Call = true' } }));
    const answers = await h.rt.upsertRecord('Leads', lead('A', { Lead_Status: 'Hot', Do_Not_Call: true }));
    expect(answers).toEqual([expect.objectContaining({ status: 'skipped', rule: 'E3' })]);
    const manual = await h.rt.enroll('c1', ['A'], 'rep');
    expect(manual[0]).toMatchObject({ status: 'skipped', rule: 'E3' });
    await h.advance(DAY);
    expect(h.sent).toEqual([]);
    expect(await h.rt.getEnrollment('c1', 'A')).toBeUndefined();
  });

  it('E4 a record may be active in several cadences at once', async () => {
    h = await harness();
    await published(h, emailCadence());
    await published(h, emailCadence({ id: 'c2', name: 'Second' }));
    await h.rt.enroll('c1', [lead('A')], 'rep');
    await h.rt.enroll('c2', ['A'], 'rep');
    await h.advance(0);
    expect(h.sent.map((a) => a.cadenceId).sort()).toEqual(['c1', 'c2']);
    expect((await h.rt.recordReport('A')).map((r) => r.status)).toEqual(['active', 'active']);
  });

  it('E5 each enrollment keeps start date, enrolled by, status, position and reason', async () => {
    h = await harness();
    await published(h, emailCadence());
    await h.rt.enroll('c1', [lead('A')], 'maria');
    await h.advance(0);
    const e = await h.rt.getEnrollment('c1', 'A');
    expect(e).toMatchObject({ startedAt: T0, enrolledBy: 'maria', status: 'active', position: 'e2', reason: 'enrolled' });
    await h.rt.unenroll('c1', 'A', 'maria', 'no longer relevant');
    expect(await h.rt.getEnrollment('c1', 'A')).toMatchObject({ status: 'stopped', reason: 'no longer relevant', position: 'e2' });
  });

  it('E6 a record that left the view is not re-enrolled automatically when it matches again; a manual re-enroll brings it back', async () => {
    h = await harness();
    await published(h, viewCadence({ unenroll: { onLeaveView: true } }));
    await h.rt.upsertRecord('Leads', lead('A', { Lead_Status: 'Hot' }));
    await h.advance(0);
    await h.rt.upsertRecord('Leads', lead('A', { Lead_Status: 'Cold' }));
    expect(await h.rt.getEnrollment('c1', 'A')).toMatchObject({ status: 'stopped', reason: 'left the view (U2)' });
    const again = await h.rt.upsertRecord('Leads', lead('A', { Lead_Status: 'Hot' }));
    // Not enrolled again, and the answer says why (it used to be an empty list).
    expect(again).toEqual([{ recordId: 'A', cadenceId: 'c1', status: 'skipped', rule: 'E6', enrollmentId: 'c1:A', reason: 'enrolled before (stopped: left the view (U2)); only a manual re-enrollment brings it back' }]);
    expect((await h.rt.getEnrollment('c1', 'A'))?.status).toBe('stopped');
    expect(await h.rt.reenroll('c1', 'A', 'resume', 'rep')).toMatchObject({ status: 'enrolled' });
    expect((await h.rt.getEnrollment('c1', 'A'))?.status).toBe('active');
  });

  it('E7 a time-dependent view is re-evaluated as time passes, with the engine clock', async () => {
    h = await harness({ recheckMs: HOUR });
    await published(h, emailCadence({ enrollment: { mode: 'view', view: '$daysSince(Created_Time) >= 3' } }));
    await h.rt.upsertRecord('Leads', lead('A', { Created_Time: new Date(T0).toISOString() }));
    await h.advance(2 * DAY);
    expect(h.sent).toEqual([]);
    await h.advance(1 * DAY + HOUR);
    expect(sentTo(h, 'A')).toEqual(['e1']);
    // Days are calendar days (UTC here): the third day since Monday 08:00 begins Thursday at midnight.
    const at = h.sent[0].at;
    expect(at).toBeGreaterThanOrEqual(Date.parse('2026-03-05T00:00:00Z'));
    expect(at).toBeLessThanOrEqual(Date.parse('2026-03-05T00:00:00Z') + HOUR);
  });

  it('E7 F11 $daysSince counts calendar days in the cadence\'s zone: a lead created at 23:00 Berlin is 1 day old at midnight there', async () => {
    h = await harness({ recheckMs: 10 * MIN });
    await published(h, emailCadence({ timezone: 'Europe/Berlin', enrollment: { mode: 'view', view: '$daysSince(Created_Time) >= 1' } }));
    // 23:00 on 2 March in Berlin (22:00 UTC), a wall time read in the cadence's zone.
    await h.rt.upsertRecord('Leads', lead('A', { Created_Time: '2026-03-02T23:00' }));
    const midnight = Date.parse('2026-03-02T23:00:00Z'); // 00:00 on 3 March in Berlin
    await h.advance(midnight - 5 * MIN - h.clock.now());
    expect(h.sent).toEqual([]);
    await h.advance(30 * MIN);
    expect(sentTo(h, 'A')).toEqual(['e1']);
    // Enrolled within a recheck of midnight, about an hour after creation: not 24 hours later.
    expect(h.sent[0].at).toBeGreaterThanOrEqual(midnight);
    expect(h.sent[0].at).toBeLessThanOrEqual(midnight + 10 * MIN);
  });

  it('E8 a converted lead leaves all its cadences', async () => {
    h = await harness();
    await published(h, emailCadence());
    await published(h, emailCadence({ id: 'c2', name: 'Other' }));
    await h.rt.enroll('c1', [lead('A')], 'rep');
    await h.rt.enroll('c2', ['A'], 'rep');
    expect(await h.rt.convertRecord('Leads', 'A')).toBe(2);
    await h.advance(5 * DAY);
    expect(h.sent).toEqual([]);
    for (const r of await h.rt.recordReport('A')) expect(r).toMatchObject({ status: 'stopped', reason: 'converted (E8)' });
  });

  it('E9 an enrollment cap per hour spreads a bulk enrollment; none is lost', async () => {
    h = await harness();
    await published(h, emailCadence({ enrollment: { mode: 'manual', cap: { perHour: 2 } } }));
    const answers = await h.rt.enroll('c1', ['A', 'B', 'C', 'D', 'E'].map((id) => lead(id)), 'rep');
    expect(answers.every((a) => a.status === 'enrolled')).toBe(true);
    await h.advance(4 * HOUR);
    const firsts = h.sent.filter((a) => a.nodeId === 'e1').map((a) => (a.at - T0) / HOUR);
    expect(firsts).toEqual([0, 0, 1, 1, 2]);
  });
});
