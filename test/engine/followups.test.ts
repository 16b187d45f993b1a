import { afterEach, describe, expect, it } from 'vitest';
import { CannotRunError, Runtime } from '../../engine/runtime/runtime';
import { verifyToken } from '../../engine/render/render';
import type { CadenceDefinition, Delay } from '../../engine/model/types';
import { DAY, HOUR, MIN, T0, emailCadence, harness, iso, lead, published, sentTo, type Harness } from '../helpers/harness';

let h: Harness;
afterEach(() => h?.close());

const tpl = (s: string) => ({ subject: s, body: s });

/** email e1 -> branch on `outcomes` (optional timeout) -> per-outcome follow-ups. */
function branching(outcomes: string[], timeout?: Delay): CadenceDefinition {
  const nodes: CadenceDefinition['nodes'] = [
    { id: 'e1', type: 'followUp', channel: 'email', template: tpl('first') },
    { id: 'b', type: 'outcomeBranch', outcomes, timeout },
    ...outcomes.map((o) => ({ id: `on-${o}`, type: 'followUp' as const, channel: 'email' as const, delay: { amount: 1, unit: 'hours' as const }, relativeTo: 'previous' as const, template: tpl(o) })),
  ];
  const edges = [{ from: 'trigger', to: 'e1' }, { from: 'e1', to: 'b' }, ...outcomes.map((o) => ({ from: 'b', port: o, to: `on-${o}` }))];
  if (timeout) {
    nodes.push({ id: 'on-timeout', type: 'followUp', channel: 'task', template: tpl('no response') });
    edges.push({ from: 'b', port: 'timeout', to: 'on-timeout' });
  }
  return emailCadence({ nodes, edges });
}

describe('follow-ups', () => {
  it('F1 timing relative to the enrollment or to the previous follow-up, in minutes, hours, days and business days', async () => {
    h = await harness({}, Date.parse('2026-03-06T10:00:00Z')); // a Friday
    const start = h.clock.now();
    await published(h, emailCadence({
      nodes: [
        { id: 'a', type: 'followUp', channel: 'email', delay: { amount: 30, unit: 'minutes' }, template: tpl('a') },
        { id: 'b', type: 'followUp', channel: 'email', delay: { amount: 2, unit: 'hours' }, relativeTo: 'previous', template: tpl('b') },
        { id: 'c', type: 'followUp', channel: 'email', delay: { amount: 1, unit: 'days' }, template: tpl('c') },
        { id: 'd', type: 'followUp', channel: 'email', delay: { amount: 2, unit: 'businessDays' }, relativeTo: 'previous', template: tpl('d') },
      ],
      edges: [{ from: 'trigger', to: 'a' }, { from: 'a', to: 'b' }, { from: 'b', to: 'c' }, { from: 'c', to: 'd' }],
    }));
    await h.rt.enroll('c1', [lead('A')], 'rep');
    await h.advance(10 * DAY);
    expect(h.sent.map((s) => [s.nodeId, iso(s.at)])).toEqual([
      ['a', iso(start + 30 * MIN)],
      ['b', iso(start + 150 * MIN)],
      ['c', iso(start + DAY)], // relative to enrollment: Saturday 10:00
      ['d', '2026-03-10T10:00:00.000Z'], // two business days after Saturday: Tuesday
    ]);
  });

  it('F2 a follow-up conditioned on its parent\'s outcome runs only on that outcome', async () => {
    h = await harness();
    await published(h, branching(['opened', 'clicked']));
    await h.rt.enroll('c1', [lead('A'), lead('B')], 'rep');
    await h.advance(0);
    const keyA = h.sent.find((s) => s.recordId === 'A')!.key;
    await h.rt.recordOutcome({ key: keyA, outcome: 'clicked' });
    await h.advance(DAY);
    expect(sentTo(h, 'A')).toEqual(['e1', 'on-clicked']);
    expect(sentTo(h, 'B')).toEqual(['e1']);
  });

  it('F3 only one path runs: the first outcome that matches a branch decides', async () => {
    h = await harness();
    await published(h, branching(['opened', 'replied']));
    await h.rt.enroll('c1', [lead('A')], 'rep');
    await h.advance(0);
    const key = h.sent[0].key;
    await h.rt.recordOutcome({ key, outcome: 'opened' });
    await h.rt.recordOutcome({ key, outcome: 'replied' });
    await h.advance(DAY);
    expect(sentTo(h, 'A')).toEqual(['e1', 'on-opened']);
  });

  it('F4 a pending task does not hold back later emails unless the path waits on its completion', async () => {
    h = await harness();
    const def = (relativeTo: 'enrollment' | 'previous') => emailCadence({
      nodes: [
        { id: 't', type: 'followUp', channel: 'task', template: tpl('prepare') },
        { id: 'e', type: 'followUp', channel: 'email', delay: { amount: 1, unit: 'days' }, relativeTo, template: tpl('mail') },
      ],
      edges: [{ from: 'trigger', to: 't' }, { from: 't', to: 'e' }],
    });
    await published(h, { ...def('enrollment'), id: 'free' });
    await published(h, { ...def('previous'), id: 'waits' });
    await h.rt.enroll('free', [lead('A')], 'rep');
    await h.rt.enroll('waits', ['A'], 'rep');
    await h.advance(3 * DAY);
    expect(h.sent.filter((s) => s.cadenceId === 'free').map((s) => s.nodeId)).toEqual(['t', 'e']);
    expect(h.sent.filter((s) => s.cadenceId === 'waits').map((s) => s.nodeId)).toEqual(['t']);
    const task = h.sent.find((s) => s.cadenceId === 'waits')!;
    await h.rt.recordOutcome({ key: task.key, outcome: 'completed' });
    await h.advance(DAY);
    const mail = h.sent.filter((s) => s.cadenceId === 'waits').at(-1)!;
    expect(mail.nodeId).toBe('e');
    expect(mail.at).toBe(T0 + 4 * DAY); // one day after the completion, not after the enrollment
  });

  it('F5 an email whose open is never detected stays sent: the opened branch never fires; a timeout path fires instead', async () => {
    h = await harness();
    await published(h, branching(['opened'], { amount: 3, unit: 'businessDays' }));
    await h.rt.enroll('c1', [lead('A')], 'rep'); // Monday 08:00
    await h.advance(2 * DAY);
    expect(sentTo(h, 'A')).toEqual(['e1']);
    expect((await h.rt.getEnrollment('c1', 'A'))?.wait).toBe('outcome');
    await h.advance(2 * DAY);
    expect(sentTo(h, 'A')).toEqual(['e1', 'on-timeout']);
    expect(h.sent[1].at).toBe(T0 + 3 * DAY);
  });

  it('F6 emails merge escaped fields, carry a unique Message-ID and a signed unsubscribe link', async () => {
    h = await harness({ defaultSender: 'sales@acme.example', users: { u1: { signature: 'Maria, Acme' } } });
    await published(h, emailCadence({ nodes: [{ id: 'e1', type: 'followUp', channel: 'email', template: { subject: 'Hi {{First_Name}}', body: '<p>Hi {{First_Name}}</p>{{Owner.signature}}' } }], edges: [{ from: 'trigger', to: 'e1' }] }));
    await h.rt.enroll('c1', [lead('A', { First_Name: '<script>alert(1)</script>' }), lead('B')], 'rep');
    await h.advance(0);
    const [a, b] = h.sent;
    expect(a.email!.html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(a.email!.html).not.toContain('<script>');
    expect(a.email!.html).toContain('Maria, Acme');
    expect(a.email!.subject).toBe('Hi <script>alert(1)</script>'); // headers are not HTML
    expect(a.email!.from).toBe('sales@acme.example');
    expect(a.email!.messageId).toMatch(/^<cz\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{16}@acme\.example>$/);
    expect(a.email!.messageId).not.toBe(b.email!.messageId);
    const token = a.email!.unsubscribeUrl.split('/').at(-1)!;
    expect(verifyToken(token, 'test-secret')).toMatchObject({ r: 'A', k: a.key });
    expect(verifyToken(token, 'other-secret')).toBeNull();
    expect(verifyToken(token.slice(0, -2) + 'xx', 'test-secret')).toBeNull();
    expect(a.email!.headers['List-Unsubscribe']).toContain(a.email!.unsubscribeUrl);
  });

  it('F7 tasks and calls go to the record owner or a named user, with a due date, and notify the assignee', async () => {
    h = await harness();
    await published(h, emailCadence({
      nodes: [
        { id: 't', type: 'followUp', channel: 'task', dueIn: { amount: 2, unit: 'days' }, template: { subject: 'Research {{Company}}', body: '' } },
        { id: 'c', type: 'followUp', channel: 'call', assignee: 'u-manager', template: { subject: 'Call {{First_Name}}', body: '' } },
      ],
      edges: [{ from: 'trigger', to: 't' }, { from: 't', to: 'c' }],
    }));
    await h.rt.enroll('c1', [lead('A', { Owner: 'u-owner', Company: 'Acme' })], 'rep');
    await h.advance(0);
    expect(h.sent[0].activity).toMatchObject({ assignee: 'u-owner', subject: 'Research Acme', dueAt: T0 + 2 * DAY, notify: true });
    expect(h.sent[1].activity).toMatchObject({ assignee: 'u-manager', subject: 'Call AnnA', notify: true });
    expect(h.sent[1].email).toBeUndefined(); // C4: a call step never dials, it creates an activity
  });

  it('F8 a record that unsubscribed gets no more emails from any cadence; its tasks continue', async () => {
    h = await harness();
    const def = emailCadence({
      nodes: [
        { id: 'e1', type: 'followUp', channel: 'email', template: tpl('1') },
        { id: 't', type: 'followUp', channel: 'task', delay: { amount: 1, unit: 'days' }, template: tpl('t') },
        { id: 'e2', type: 'followUp', channel: 'email', delay: { amount: 2, unit: 'days' }, template: tpl('2') },
      ],
      edges: [{ from: 'trigger', to: 'e1' }, { from: 'e1', to: 't' }, { from: 't', to: 'e2' }],
    });
    await published(h, def);
    await published(h, { ...def, id: 'c2' });
    await h.rt.enroll('c1', [lead('A')], 'rep');
    await h.advance(0);
    await h.rt.unsubscribe('Leads', 'A');
    await h.rt.enroll('c2', ['A'], 'rep');
    await h.advance(3 * DAY);
    expect(h.sent.map((s) => `${s.cadenceId}/${s.nodeId}`)).toEqual(['c1/e1', 'c1/t', 'c2/t']);
    expect((await h.rt.getEnrollment('c1', 'A'))?.status).toBe('completed');
    // A later record update does not silently re-subscribe it.
    await h.rt.upsertRecord('Leads', lead('A', { Note: 'updated' }));
    expect((await h.store.getRecord('Leads', 'A'))?.unsubscribed).toBe(true);
  });

  it('F6 a merge field reads the record\'s own fields only: {{constructor}}, {{__proto__}} or {{Owner.toString}} print nothing, not an object\'s internals', async () => {
    h = await harness();
    await published(h, emailCadence({ nodes: [{ id: 'e1', type: 'followUp', channel: 'email', template: { subject: 'Hi {{constructor}}{{__proto__}}{{toString}}|{{First_Name.length}}', body: '<p>{{Owner.toString}}{{hasOwnProperty}}x</p>' } }], edges: [{ from: 'trigger', to: 'e1' }] }));
    await h.rt.enroll('c1', [lead('A')], 'rep');
    await h.advance(0);
    expect(h.sent[0].email).toMatchObject({ subject: 'Hi |' });
    expect(h.sent[0].email!.html).toMatch(/^<p>x<\/p>/);
  });

  it('F6 F9 an email whose templateId names no stored template is refused when drafted, naming the field; without stored templates (the hosts, cadenza serve) it says to write the subject and body', async () => {
    const tpl = (id: string) => emailCadence({ id, nodes: [{ id: 'e1', type: 'followUp', channel: 'email', templateId: 'welcome' }], edges: [{ from: 'trigger', to: 'e1' }] });
    h = await harness();
    const before = await h.snapshot();
    await expect(h.rt.createCadence(tpl('none'), 'admin')).rejects.toMatchObject({ rule: 'F6', problems: [expect.objectContaining({ field: 'templateId', node: 'e1', message: expect.stringMatching(/no stored email templates; write the subject and body/) })] });
    expect(await h.snapshot()).toEqual(before);
    await h.restart({ templates: { promo: { subject: 'Promo', body: 'x' } } });
    await expect(h.rt.createCadence(tpl('other'), 'admin')).rejects.toMatchObject({ problems: [expect.objectContaining({ rule: 'F6', field: 'templateId', message: 'no stored email template "welcome"' })] });
    await h.restart({ templates: { welcome: { subject: 'Hi {{First_Name}}', body: 'Hello' } } });
    await published(h, tpl('ok'));
    await h.rt.enroll('ok', [lead('A')], 'rep');
    await h.advance(0);
    expect(h.sent[0]).toMatchObject({ nodeId: 'e1', email: { subject: 'Hi AnnA' } });
  });

  it('F9 D6 a follow-up that cannot run moves the enrollment to failed with the reason', async () => {
    // The template "gone" exists when the cadence is published, and not when its step is due.
    h = await harness({ templates: { promo: { subject: 'Promo', body: 'x' }, gone: { subject: 'Soon gone', body: 'x' } } });
    await published(h, emailCadence({ id: 'tpl', nodes: [{ id: 'e1', type: 'followUp', channel: 'email', templateId: 'gone', delay: { amount: 1, unit: 'hours' } }], edges: [{ from: 'trigger', to: 'e1' }] }));
    await h.rt.enroll('tpl', [lead('B')], 'rep');
    await h.restart({ templates: { promo: { subject: 'Promo', body: 'x' } }, retry: { baseMs: MIN, holdMs: HOUR } });
    await published(h, emailCadence());
    await h.rt.enroll('c1', [lead('noaddr', { Email: 'not-an-address' })], 'rep');
    await h.advance(HOUR);
    expect(await h.rt.getEnrollment('c1', 'noaddr')).toMatchObject({ status: 'failed', reason: expect.stringMatching(/no valid email address/) });
    expect(await h.rt.getEnrollment('tpl', 'B')).toMatchObject({ status: 'failed', reason: expect.stringMatching(/template "gone" was deleted/) });
    expect(h.sent).toEqual([]);
    // The host says the activity cannot be created: failed at once, naming the step, no retries.
    let refusals = 0;
    h.rt.onDispatch(() => {
      refusals++;
      throw new CannotRunError('mailbox does not exist');
    });
    await h.rt.enroll('c1', [lead('C')], 'rep');
    await h.advance(DAY);
    expect(refusals).toBe(1);
    expect(await h.rt.getEnrollment('c1', 'C')).toMatchObject({ status: 'failed', reason: 'follow-up "e1" could not be delivered: mailbox does not exist (F9, D6)' });
    // A transient failure is retried with backoff for the hold time (one hour here), then the step fails.
    let calls = 0;
    h.rt.onDispatch(() => {
      calls++;
      throw new Error('SMTP 451 try later');
    });
    await h.rt.enroll('c1', [lead('D')], 'rep');
    await h.advance(30 * MIN);
    expect(await h.rt.getEnrollment('c1', 'D')).toMatchObject({ status: 'active', wait: 'delivery' });
    await h.advance(2 * HOUR);
    expect(calls).toBeGreaterThanOrEqual(5);
    expect(await h.rt.getEnrollment('c1', 'D')).toMatchObject({ status: 'failed', reason: expect.stringMatching(/^follow-up "e1" could not be delivered: its performer kept failing for 1 hours \(last: SMTP 451 try later\) \(F9, D6\)$/) });
  });

  it('F10 after the last follow-up of its path the enrollment is completed', async () => {
    h = await harness();
    await published(h, branching(['replied']));
    await h.rt.enroll('c1', [lead('A')], 'rep');
    await h.advance(0);
    await h.rt.recordOutcome({ key: h.sent[0].key, outcome: 'replied' });
    await h.advance(DAY);
    expect(await h.rt.getEnrollment('c1', 'A')).toMatchObject({ status: 'completed', reason: 'last follow-up done (F10)' });
    expect(await h.store.nextDue()).toBeNull();
  });

  it('F11 a follow-up due outside the send window waits for the next opening, in the record\'s zone when it has one', async () => {
    h = await harness({}, Date.parse('2026-03-06T20:00:00Z')); // Friday 20:00 UTC
    await published(h, emailCadence({ timezone: 'Europe/London', sendWindow: { days: [1, 2, 3, 4, 5], start: '09:00', end: '17:00' }, nodes: [emailCadence().nodes[0]], edges: [{ from: 'trigger', to: 'e1' }] }));
    await h.rt.enroll('c1', [lead('london'), lead('tokyo', { Time_Zone: 'Asia/Tokyo' }), lead('la', { Time_Zone: 'America/Los_Angeles' })], 'rep');
    await h.advance(4 * DAY);
    const at = Object.fromEntries(h.sent.map((s) => [s.recordId, iso(s.at)]));
    expect(at).toEqual({
      la: '2026-03-06T20:00:00.000Z', // 12:00 Friday in Los Angeles: inside
      tokyo: '2026-03-09T00:00:00.000Z', // Monday 09:00 in Tokyo
      london: '2026-03-09T09:00:00.000Z', // Monday 09:00 in London
    });
  });

  it('F11 a daily follow-up across the spring DST change is sent once a day at the local hour', async () => {
    h = await harness({}, Date.parse('2026-03-06T14:00:00Z')); // 09:00 EST
    const nodes = [0, 1, 2, 3].map((d) => ({ id: `d${d}`, type: 'followUp' as const, channel: 'email' as const, delay: { amount: d, unit: 'days' as const }, template: tpl(`day ${d}`) }));
    await published(h, emailCadence({ timezone: 'America/New_York', sendWindow: { start: '09:00', end: '17:00' }, nodes, edges: [{ from: 'trigger', to: 'd0' }, ...nodes.slice(1).map((n, i) => ({ from: `d${i}`, to: n.id }))] }));
    await h.rt.enroll('c1', [lead('A')], 'rep');
    await h.advance(5 * DAY);
    expect(h.sent.map((s) => iso(s.at))).toEqual(['2026-03-06T14:00:00.000Z', '2026-03-07T14:00:00.000Z', '2026-03-08T13:00:00.000Z', '2026-03-09T13:00:00.000Z']);
  });

  it('F12 over the daily cap per sender, emails wait for the next day\'s window; none is dropped', async () => {
    h = await harness({ defaultSender: 'rep@acme.example' });
    await published(h, emailCadence({ senderDailyCap: 2, sendWindow: { start: '08:00', end: '18:00' }, nodes: [emailCadence().nodes[0]], edges: [{ from: 'trigger', to: 'e1' }] }));
    await h.rt.enroll('c1', ['A', 'B', 'C', 'D', 'E'].map((id) => lead(id)), 'rep');
    await h.advance(5 * DAY);
    const perDay = h.sent.map((s) => iso(s.at).slice(0, 10));
    expect(perDay).toEqual(['2026-03-02', '2026-03-02', '2026-03-03', '2026-03-03', '2026-03-04']);
    expect(h.sent.slice(2).every((s) => iso(s.at).endsWith('T08:00:00.000Z'))).toBe(true);
    expect(new Set(h.sent.map((s) => s.recordId)).size).toBe(5);
  });

  it('F12 D2 three workers racing on one store send exactly the daily cap per sender each day, in batches; none twice, none dropped', async () => {
    h = await harness({ defaultSender: 'rep@acme.example', batchSize: 8 });
    await published(h, emailCadence({ senderDailyCap: 7, sendWindow: { start: '08:00', end: '18:00' }, nodes: [emailCadence().nodes[0]], edges: [{ from: 'trigger', to: 'e1' }] }));
    await h.rt.enroll('c1', Array.from({ length: 30 }, (_, i) => lead(`r${i}`)), 'rep');
    const others = await Promise.all([0, 1].map(async () => {
      const rt = await new Runtime({ store: h.openStore(), clock: h.clock, secret: 'test-secret', defaultSender: 'rep@acme.example', batchSize: 8 }).init();
      rt.onDispatch((a) => void h.sent.push({ ...a, at: h.clock.now() }));
      return rt;
    }));
    const workers = [h.rt, ...others];
    for (let day = 0; day < 6; day++) {
      h.clock.set(T0 + day * DAY);
      for (let pass = 0; pass < 3; pass++) await Promise.all(workers.map((w) => w.tick()));
    }
    const perDay = new Map<string, number>();
    for (const s of h.sent) perDay.set(iso(s.at).slice(0, 10), (perDay.get(iso(s.at).slice(0, 10)) ?? 0) + 1);
    expect([...perDay.values()]).toEqual([7, 7, 7, 7, 2]);
    expect(new Set(h.sent.map((s) => s.key)).size).toBe(30);
    for (const rt of others) await rt.store.close();
  });
});
