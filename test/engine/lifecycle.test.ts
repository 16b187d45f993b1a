// Cadences (C1-C3, C5), re-enrollment (R1-R5), versions and activation (V1-V3).
import { afterEach, describe, expect, it } from 'vitest';
import type { CadenceDefinition } from '../../engine/model/types';
import { Runtime } from '../../engine/runtime/runtime';
import { DAY, HOUR, MIN, STORE_KIND, T0, emailCadence, harness, lead, published, sentTo, type Harness } from '../helpers/harness';
import type { SqliteStore } from '../../engine/store/sqlite/sqlite-store';

let h: Harness;
afterEach(() => h?.close());

const tpl = (s: string) => ({ subject: s, body: s });
const three = (over: Partial<CadenceDefinition> = {}) => emailCadence({
  nodes: [
    { id: 'e1', type: 'followUp', channel: 'email', template: tpl('one') },
    { id: 'e2', type: 'followUp', channel: 'email', delay: { amount: 2, unit: 'days' }, relativeTo: 'previous', template: tpl('two') },
    { id: 'e3', type: 'followUp', channel: 'email', delay: { amount: 2, unit: 'days' }, relativeTo: 'previous', template: tpl('three') },
  ],
  edges: [{ from: 'trigger', to: 'e1' }, { from: 'e1', to: 'e2' }, { from: 'e2', to: 'e3' }],
  ...over,
});

describe('cadences', () => {
  it('C1 a cadence belongs to one module and is cloned within it, never across', async () => {
    h = await harness();
    await published(h, emailCadence());
    const copy = await h.rt.cloneCadence('c1', 'c1-copy', 'admin');
    expect(copy).toMatchObject({ module: 'Leads', status: 'draft' });
    await expect(h.rt.cloneCadence('c1', 'c1-deals', 'admin', 'Deals')).rejects.toMatchObject({ rule: 'C1' });
    await expect(h.rt.updateDraft('c1', emailCadence({ module: 'Contacts' }), 'admin')).rejects.toMatchObject({ rule: 'C1' });
    expect(await h.store.getCadence('c1-deals')).toBeUndefined();
    // A Contacts record cannot enter a Leads cadence.
    await h.rt.upsertRecord('Contacts', lead('K'));
    expect((await h.rt.enroll('c1', ['K'], 'rep'))[0]).toMatchObject({ status: 'skipped' });
  });

  it('C2 draft -> active <-> inactive; a draft is edited while the active version keeps running', async () => {
    h = await harness();
    await h.rt.createCadence(three(), 'admin');
    expect((await h.store.getCadence('c1'))?.status).toBe('draft');
    await h.rt.publish('c1', 'admin');
    await h.rt.enroll('c1', [lead('A')], 'rep');
    await h.advance(0);
    await h.rt.updateDraft('c1', three({ name: 'Edited', nodes: three().nodes.map((n) => (n.id === 'e2' ? { ...n, template: tpl('EDITED') } : n)) }), 'admin');
    expect(await h.store.getCadence('c1')).toMatchObject({ status: 'active', activeVersion: 1 });
    await h.advance(2 * DAY);
    expect(h.sent.map((s) => s.email?.subject)).toEqual(['one', 'two']); // the draft has not run
    await h.rt.deactivate('c1', 'admin');
    expect((await h.store.getCadence('c1'))?.status).toBe('inactive');
    await h.rt.activate('c1', 'admin');
    expect((await h.store.getCadence('c1'))?.status).toBe('active');
    await expect(h.rt.publish('nope', 'admin')).rejects.toMatchObject({ rule: 'D4' });
  });

  it('C3 creating or activating past the edition limit is refused and changes nothing', async () => {
    h = await harness({ limits: { edition: 'standard' } });
    for (let i = 0; i < 10; i++) await published(h, emailCadence({ id: `a${i}` }));
    await h.rt.createCadence(emailCadence({ id: 'eleventh' }), 'admin');
    await expect(h.rt.publish('eleventh', 'admin')).rejects.toMatchObject({ rule: 'C3' });
    expect(await h.store.getCadence('eleventh')).toMatchObject({ status: 'draft', activeVersion: null });
    for (let i = 11; i < 20; i++) await h.rt.createCadence(emailCadence({ id: `d${i}` }), 'admin');
    await expect(h.rt.createCadence(emailCadence({ id: 'twenty-first' }), 'admin')).rejects.toMatchObject({ rule: 'C3', message: expect.stringMatching(/limit 20/) });
    expect(await h.store.getCadence('twenty-first')).toBeUndefined();
    // Another module has its own limits; add-ons raise the active limit.
    await published(h, emailCadence({ id: 'deals-1', module: 'Deals' }));
    const h2 = await harness({ limits: { edition: 'ultimate', addOns: 40 } });
    try {
      for (let i = 0; i < 70; i++) await published(h2, emailCadence({ id: `u${i}` }));
      await expect(published(h2, emailCadence({ id: 'u70' }))).rejects.toMatchObject({ rule: 'C3' });
    } finally {
      await h2.close();
    }
  });

  it('C4 a call step never dials: it creates a call activity for the assignee', async () => {
    h = await harness();
    await published(h, emailCadence({ nodes: [{ id: 'call', type: 'followUp', channel: 'call', template: tpl('Call {{First_Name}}') }], edges: [{ from: 'trigger', to: 'call' }] }));
    await h.rt.enroll('c1', [lead('A', { Phone: '+1 555 0100' })], 'rep');
    await h.advance(0);
    expect(h.sent[0]).toMatchObject({ channel: 'call', activity: { assignee: 'u1', subject: 'Call AnnA' } });
    expect(h.sent[0].whatsapp).toBeUndefined();
  });

  it('C4 F9 a WhatsApp step sends its approved template (checked against the approved list, not the email templates); one whose approval is withdrawn fails, naming it', async () => {
    const wa = (id: string, templateId: string, over = {}) => ({ id, type: 'followUp' as const, channel: 'whatsapp' as const, templateId, ...over });
    h = await harness({ whatsappTemplates: ['welcome_v1', 'promo_v2'] });
    await published(h, emailCadence({ nodes: [wa('w1', 'welcome_v1'), wa('w2', 'promo_v2', { delay: { amount: 1, unit: 'days' } })], edges: [{ from: 'trigger', to: 'w1' }, { from: 'w1', to: 'w2' }] }));
    await h.rt.enroll('c1', [lead('A', { Mobile: '+1 555 0100' })], 'rep');
    await h.advance(0);
    expect(h.sent.map((a) => [a.nodeId, a.whatsapp?.templateId, a.whatsapp?.to])).toEqual([['w1', 'welcome_v1', '+1 555 0100']]);
    // The engine restarts with promo_v2 no longer approved: the step waiting for it fails, naming why.
    await h.restart({ whatsappTemplates: ['welcome_v1'] });
    await h.advance(2 * DAY);
    expect(h.sent).toHaveLength(1);
    expect(await h.rt.getEnrollment('c1', 'A')).toMatchObject({ status: 'failed', reason: expect.stringMatching(/WhatsApp template "promo_v2" is no longer approved \(C4, F9\)/) });
  });

  it('C4 without an approved list configured, any WhatsApp template id is sent (as the validator and the CLI say)', async () => {
    h = await harness();
    await published(h, emailCadence({ nodes: [{ id: 'w1', type: 'followUp', channel: 'whatsapp', templateId: 'anything_v9' }], edges: [{ from: 'trigger', to: 'w1' }] }));
    await h.rt.enroll('c1', [lead('A', { Phone: '+44 20 7946 0000' })], 'rep');
    await h.advance(0);
    expect(h.sent[0]).toMatchObject({ channel: 'whatsapp', whatsapp: { templateId: 'anything_v9', to: '+44 20 7946 0000' } });
    expect(await h.rt.getEnrollment('c1', 'A')).toMatchObject({ status: 'completed' });
  });

  it('F9 C4 a WhatsApp step needs a phone number: "n/a", an email or too few digits fail the step naming the fields; a Mobile that is no number falls back to Phone; a number stored as a number is sent', async () => {
    h = await harness();
    await published(h, emailCadence({ nodes: [{ id: 'w1', type: 'followUp', channel: 'whatsapp', templateId: 'hello_v1' }], edges: [{ from: 'trigger', to: 'w1' }] }));
    await h.rt.enroll('c1', [
      lead('bad', { Mobile: 'n/a' }), lead('mail', { Mobile: 'ada@example.com' }), lead('short', { Phone: '12-34' }), lead('blank', { Mobile: '  ' }),
      lead('fallback', { Mobile: 'ask reception', Phone: '+44 (20) 7946-0000' }), lead('numeric', { Mobile: 4915112345678 }),
    ], 'rep');
    await h.advance(0);
    expect(h.sent.map((a) => [a.recordId, a.whatsapp?.to]).sort()).toEqual([['fallback', '+44 (20) 7946-0000'], ['numeric', '4915112345678']]);
    for (const id of ['bad', 'mail', 'short', 'blank'])
      expect(await h.rt.getEnrollment('c1', id), id).toMatchObject({ status: 'failed', reason: 'no valid phone number (Mobile or Phone, 7 to 15 digits) for "w1" (F9)' });
  });

  it('C5 a configurable limit on actions per cadence', async () => {
    h = await harness({ limits: { actionsPerCadence: 3 } });
    await published(h, emailCadence());
    await h.rt.enroll('c1', [lead('A'), lead('B')], 'rep');
    await h.advance(3 * DAY);
    expect(h.sent).toHaveLength(3);
    const ends = [await h.rt.getEnrollment('c1', 'A'), await h.rt.getEnrollment('c1', 'B')].map((e) => e?.status).sort();
    expect(ends).toEqual(['completed', 'failed']);
  });
});

describe('re-enrollment', () => {
  it('R1 a stopped enrollment resumes at the step where it stopped, its delay counting from the re-enrollment (no burst)', async () => {
    h = await harness();
    await published(h, three());
    await h.rt.enroll('c1', [lead('A')], 'rep');
    await h.advance(0);
    await h.rt.unenroll('c1', 'A', 'rep');
    await h.advance(10 * DAY); // e2 and e3 would both be overdue now
    expect(await h.rt.reenroll('c1', 'A', 'resume', 'rep')).toMatchObject({ status: 'enrolled' });
    const resumedAt = h.clock.now();
    await h.advance(HOUR);
    expect(sentTo(h, 'A')).toEqual(['e1']);
    await h.advance(5 * DAY);
    expect(h.sent.map((s) => [s.nodeId, (s.at - resumedAt) / DAY])).toEqual([['e1', -10], ['e2', 2], ['e3', 4]]);
  });

  it('R1 restart begins again from the first follow-up, with fresh idempotency keys', async () => {
    h = await harness();
    await published(h, three());
    await h.rt.enroll('c1', [lead('A')], 'rep');
    await h.advance(2 * DAY);
    await h.rt.unenroll('c1', 'A', 'rep');
    await h.rt.reenroll('c1', 'A', 'restart', 'rep');
    await h.advance(0);
    expect(sentTo(h, 'A')).toEqual(['e1', 'e2', 'e1']);
    expect(new Set(h.sent.map((s) => s.key)).size).toBe(3);
  });

  it('R2 a completed enrollment can only be restarted', async () => {
    h = await harness();
    await published(h, three());
    await h.rt.enroll('c1', [lead('A')], 'rep');
    await h.advance(5 * DAY);
    expect((await h.rt.getEnrollment('c1', 'A'))?.status).toBe('completed');
    expect(await h.rt.reenroll('c1', 'A', 'resume', 'rep')).toMatchObject({ status: 'skipped', rule: 'R2' });
    expect(await h.rt.reenroll('c1', 'A', 'restart', 'rep')).toMatchObject({ status: 'enrolled' });
  });

  it('R3 a failed enrollment can only be restarted from follow-up 1, once the cause is fixed', async () => {
    h = await harness();
    await published(h, three());
    await h.rt.enroll('c1', [lead('A', { Email: '' })], 'rep');
    await h.advance(0);
    expect((await h.rt.getEnrollment('c1', 'A'))?.status).toBe('failed');
    expect(await h.rt.reenroll('c1', 'A', 'resume', 'rep')).toMatchObject({ status: 'skipped', rule: 'R3' });
    await h.rt.upsertRecord('Leads', lead('A'));
    await h.rt.reenroll('c1', 'A', 'restart', 'rep');
    await h.advance(0);
    expect(sentTo(h, 'A')).toEqual(['e1']);
  });

  it('R4 if the follow-up where it stopped no longer exists, it can only be restarted', async () => {
    h = await harness();
    await published(h, three());
    await h.rt.enroll('c1', [lead('A')], 'rep');
    await h.advance(0);
    await h.rt.unenroll('c1', 'A', 'rep'); // stopped waiting on e2
    const without = three();
    without.nodes = without.nodes.filter((n) => n.id !== 'e2');
    without.edges = [{ from: 'trigger', to: 'e1' }, { from: 'e1', to: 'e3' }];
    await h.rt.updateDraft('c1', without, 'admin');
    await h.rt.publish('c1', 'admin');
    expect(await h.rt.reenroll('c1', 'A', 'resume', 'rep')).toMatchObject({ status: 'skipped', rule: 'R4' });
    expect(await h.rt.reenroll('c1', 'A', 'restart', 'rep')).toMatchObject({ status: 'enrolled' });
    expect((await h.rt.getEnrollment('c1', 'A'))?.version).toBe(2);
  });

  it('R5 only actors allowed to enroll may re-enroll', async () => {
    h = await harness();
    await published(h, three());
    await h.rt.enroll('c1', [lead('A')], 'rep');
    await h.rt.unenroll('c1', 'A', 'rep');
    const viewer = { id: 'v', permissions: ['view' as const, 'unenroll' as const] };
    await expect(h.rt.reenroll('c1', 'A', 'resume', viewer)).rejects.toMatchObject({ rule: 'R5', message: expect.stringMatching(/"enroll"/) });
    expect((await h.rt.getEnrollment('c1', 'A'))?.status).toBe('stopped');
    expect(await h.rt.reenroll('c1', 'A', 'resume', { id: 'e', permissions: ['enroll'] })).toMatchObject({ status: 'enrolled' });
  });
});

describe('versions and activation', () => {
  it('V1 records already enrolled continue on their version; records enrolled after publishing use the new one', async () => {
    h = await harness();
    await published(h, three());
    await h.rt.enroll('c1', [lead('old')], 'rep');
    await h.advance(0);
    const v2 = three({ nodes: [...three().nodes, { id: 'e4', type: 'followUp', channel: 'email', delay: { amount: 1, unit: 'days' }, relativeTo: 'previous', template: tpl('four') }], edges: [...three().edges, { from: 'e3', to: 'e4' }] });
    await h.rt.updateDraft('c1', v2, 'admin');
    expect(await h.rt.publish('c1', 'admin')).toMatchObject({ version: 2, stopped: 0 });
    await h.rt.enroll('c1', [lead('new')], 'rep');
    await h.advance(10 * DAY);
    expect(sentTo(h, 'old')).toEqual(['e1', 'e2', 'e3']);
    expect(sentTo(h, 'new')).toEqual(['e1', 'e2', 'e3', 'e4']);
    expect(h.sent.filter((s) => s.recordId === 'old').map((s) => s.version)).toEqual([1, 1, 1]);
  });

  it('V1 instances deploying the same definition at once publish it once; each answers', async () => {
    h = await harness();
    const others = await Promise.all([0, 1, 2].map(() => new Runtime({ store: h.openStore(), clock: h.clock, secret: 'test-secret' }).init()));
    const def = emailCadence({ enrollment: { mode: 'view', view: 'Lead_Status = "Hot"' } });
    await h.rt.upsertRecord('Leads', lead('A', { Lead_Status: 'Hot' }));
    const answers = await Promise.all([h.rt, ...others].map((rt) => rt.deploy(def, 'admin')));
    expect(answers.map((a) => a.action).sort()).toEqual(['created', 'unchanged', 'unchanged', 'unchanged']);
    expect(answers.every((a) => a.version === 1)).toBe(true);
    expect((await h.rt.getCadence('c1')).cadence).toMatchObject({ status: 'active', activeVersion: 1 });
    expect(await h.store.getVersion('c1', 2)).toBeUndefined();
    expect((await h.rt.listEnrollments('c1', {})).map((e) => e.recordId)).toEqual(['A']);
    for (const rt of others) await rt.store.close();
  });

  it.skipIf(STORE_KIND !== 'sqlite')('V1 a deploy lock left by a process that died is taken over once its lease has ended (SQLite)', async () => {
    h = await harness();
    const store = h.store as SqliteStore;
    store.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run('lock:deploy:c1', JSON.stringify({ owner: 'dead', until: Date.now() - 1 }));
    expect((await h.rt.deploy(emailCadence(), 'admin')).action).toBe('created');
    expect(store.db.prepare("SELECT key FROM meta WHERE key LIKE 'lock:%'").all()).toEqual([]); // released after use
  });

  it('V2 an enrollment waiting on an edited follow-up is stopped with reason "follow-up edited", and can resume', async () => {
    h = await harness();
    await published(h, three());
    await h.rt.enroll('c1', [lead('waiting-e2')], 'rep');
    await h.advance(0);
    const edited = three({ nodes: three().nodes.map((n) => (n.id === 'e2' ? { ...n, template: tpl('two, reworded') } : n)) });
    await h.rt.updateDraft('c1', edited, 'admin');
    expect(await h.rt.publish('c1', 'admin')).toMatchObject({ stopped: 1 });
    expect(await h.rt.getEnrollment('c1', 'waiting-e2')).toMatchObject({ status: 'stopped', reason: 'follow-up edited (V2)', position: 'e2' });
    await h.advance(3 * DAY);
    expect(sentTo(h, 'waiting-e2')).toEqual(['e1']);
    await h.rt.reenroll('c1', 'waiting-e2', 'resume', 'rep');
    await h.advance(3 * DAY);
    expect(h.sent.filter((s) => s.recordId === 'waiting-e2').map((s) => s.email?.subject)).toEqual(['one', 'two, reworded']);
  });

  it('V2 renaming a follow-up edits nothing: who waits on it carries on, and gets it under its new name', async () => {
    h = await harness();
    await published(h, three());
    await h.rt.enroll('c1', [lead('A')], 'rep');
    await h.advance(0);
    const renamed = three({ nodes: three().nodes.map((n) => (n.id === 'e2' ? { ...n, name: 'Second touch, renamed' } : n)) });
    await h.rt.updateDraft('c1', renamed, 'admin');
    expect(await h.rt.publish('c1', 'admin')).toMatchObject({ stopped: 0 });
    expect(await h.rt.getEnrollment('c1', 'A')).toMatchObject({ status: 'active', position: 'e2' });
    await h.advance(3 * DAY);
    expect(sentTo(h, 'A')).toEqual(['e1', 'e2']);
  });

  it('V3 deactivating halts every scheduled action; halted actions do not run on reactivation; newly matching records enroll', async () => {
    h = await harness();
    await published(h, three({ enrollment: { mode: 'view', view: 'Hot = true' } }));
    await h.rt.upsertRecord('Leads', lead('A', { Hot: true }));
    await h.advance(0);
    await h.rt.deactivate('c1', 'admin');
    await h.rt.upsertRecord('Leads', lead('B', { Hot: true })); // arrives while inactive
    await h.advance(5 * DAY);
    expect(h.sent.map((s) => `${s.recordId}/${s.nodeId}`)).toEqual(['A/e1']);
    const { enrolled } = await h.rt.activate('c1', 'admin');
    expect(enrolled).toBe(1);
    await h.advance(5 * DAY);
    expect(sentTo(h, 'A')).toEqual(['e1']);
    expect(sentTo(h, 'B')).toEqual(['e1', 'e2', 'e3']);
    expect(await h.rt.getEnrollment('c1', 'A')).toMatchObject({ status: 'stopped', reason: 'halted by deactivation (V3)' });
    expect(h.sent.find((s) => s.recordId === 'B')!.at).toBe(T0 + 5 * DAY);
  });
  it('D4 the publish check reads every stored record, page by page: a record that cannot be decided past the first 500 is named', async () => {
    h = await harness();
    const id = (i: number) => `L${String(i).padStart(4, '0')}`;
    await h.store.putRecords(Array.from({ length: 1200 }, (_, i) => ({ id: id(i), module: 'Leads', data: lead(id(i), { Score: i === 1100 ? 'n/a' : i % 100 }), unsubscribed: false })), T0);
    await h.rt.createCadence(emailCadence({ enrollment: { mode: 'view', view: '$number(Score) > 200' } }), 'admin');
    const r = await h.rt.publish('c1', 'admin');
    expect(r.warnings).toEqual([expect.stringMatching(/^enrollment\.view cannot be decided for record "L1100": .*D3030/)]);
    expect(r.enrolled).toBe(0); // nothing scores over 200; L1100 is skipped with the reason
  });

  it('D1 E2 a publish that dies while enrolling the module\'s matches finishes after the restart: every match enrolls once', async () => {
    h = await harness({ publishCheckMs: 0 }); // the check reads one record: the pages read after it are the enrollment's
    const id = (i: number) => `L${String(i).padStart(4, '0')}`;
    await h.store.putRecords(Array.from({ length: 1200 }, (_, i) => ({ id: id(i), module: 'Leads', data: lead(id(i), { Score: i % 2 }), unsubscribed: false })), T0);
    await h.rt.createCadence(emailCadence({ enrollment: { mode: 'view', view: 'Score = 1' } }), 'admin');
    // The process dies reading the second page of records (after the first 500 were enrolled).
    const listRecords = h.store.listRecords.bind(h.store);
    let pages = 0;
    h.store.listRecords = async (...args: Parameters<typeof listRecords>) => {
      if (args[1] !== null && ++pages === 1) throw new Error('the process died here');
      return listRecords(...args);
    };
    await expect(h.rt.publish('c1', 'admin')).rejects.toThrow('the process died here');
    expect((await h.rt.cadenceReport('c1')).enrolled).toBe(250);
    // After the restart, the publish's enrollment of the module is finished by its timer.
    await h.advance(10 * MIN);
    const report = await h.rt.cadenceReport('c1');
    expect(report.enrolled).toBe(600);
    expect(await h.store.nextDue()).not.toBe(T0 + 5 * MIN); // the backfill timer is gone once done
  });

  it('D1 E2 a new version whose publish dies while updating the running enrollments still enrolls the module\'s new matches after the restart', async () => {
    h = await harness();
    await h.store.putRecords([lead('A', { Score: 1 }), lead('B', { Score: 0 })].map((d) => ({ id: d.id, module: 'Leads', data: d, unsubscribed: false })), T0);
    await h.rt.createCadence(emailCadence({ enrollment: { mode: 'view', view: 'Score = 1' } }), 'admin');
    await h.rt.publish('c1', 'admin');
    await h.rt.updateDraft('c1', emailCadence({ enrollment: { mode: 'view', view: 'Score >= 0' } }), 'admin');
    // The process dies while v2 walks the running enrollments (v2 is live, the module not yet enrolled).
    const list = h.store.listEnrollments.bind(h.store);
    let once = true;
    h.store.listEnrollments = async (f) => {
      if (once && f.status === 'active') (once = false), (() => { throw new Error('the process died here'); })();
      return list(f);
    };
    await expect(h.rt.publish('c1', 'admin')).rejects.toThrow('the process died here');
    expect(await h.rt.getEnrollment('c1', 'B')).toBeUndefined();
    await h.advance(10 * MIN);
    expect(await h.rt.getEnrollment('c1', 'B')).toMatchObject({ status: expect.any(String), version: 2 });
  });

  it('D4 E2 a view that runs out of time on a stored record is refused at publish, naming the field and the record: it is not published to cost every record its time limit', async () => {
    h = await harness();
    await h.store.putRecords([
      { id: 'ok', module: 'Leads', data: lead('ok', { Account_Name: 'Acme' }), unsubscribed: false },
      { id: 'L7', module: 'Leads', data: lead('L7', { Account_Name: 'abcdefghijklmnopqrstuvwxyzabcde1' }), unsubscribed: false },
    ], T0);
    await h.rt.createCadence(emailCadence({ enrollment: { mode: 'view', view: '$contains(Account_Name, /^([A-Za-z]+ ?)+$/)' } }), 'admin');
    const refused = await h.rt.publish('c1', 'admin').catch((e: unknown) => e);
    expect(refused).toMatchObject({ rule: 'D4', message: expect.stringMatching(/^enrollment\.view cannot be decided for record "L7": .*ran out of time: simplify it/) });
    expect(await h.store.getCadence('c1')).toMatchObject({ status: 'draft', activeVersion: null });
    expect(await h.rt.getEnrollment('c1', 'ok')).toBeUndefined();
  });

  it('D4 the publish check keeps a time budget: past it the publish goes on, saying how many records it checked', async () => {
    // A budget of 0 ms: the check stops after its first record (a real clock, never a sleep).
    h = await harness({ publishCheckMs: 0 });
    const id = (i: number) => `L${String(i).padStart(4, '0')}`;
    await h.store.putRecords(Array.from({ length: 600 }, (_, i) => ({ id: id(i), module: 'Leads', data: lead(id(i), { Score: i === 599 ? 'n/a' : i }), unsubscribed: false })), T0);
    await h.rt.createCadence(emailCadence({ enrollment: { mode: 'view', view: '$number(Score) > 200' } }), 'admin');
    const r = await h.rt.publish('c1', 'admin');
    expect(r.warnings).toEqual(['the publish check stopped after 1 stored Leads records (time budget 0 ms); the rest are checked as they enroll']);
    expect(r.version).toBe(1);
    // The records it did not check are still decided one by one: the undecidable one is not enrolled.
    expect(r.enrolled).toBe(398); // Scores 201..598
    expect(await h.rt.getEnrollment('c1', 'L0599')).toBeUndefined();
  });

  it('E2 a view that reads no field of the record publishes with a warning that it decides the same for every record', async () => {
    h = await harness();
    await h.rt.upsertRecord('Leads', lead('A'));
    await h.rt.createCadence(emailCadence({ enrollment: { mode: 'view', view: '42' } }), 'admin');
    expect((await h.rt.publish('c1', 'admin')).warnings).toEqual([expect.stringMatching(/^enrollment\.view reads no field of the record \(42\): it decides the same for every record, so every record of Leads enrolls, or none does \(E2\)$/)]);
    await h.rt.createCadence(emailCadence({ id: 'c2', enrollment: { mode: 'view', view: '$.Lead_Status = "Hot" or $exists(Email)' } }), 'admin');
    expect((await h.rt.publish('c2', 'admin')).warnings ?? []).toEqual([]);
  });
});
