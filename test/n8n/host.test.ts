// The n8n host glue through n8n's own engine: a batch is delivered when its execution succeeds, not
// when it is emitted (D5); a failed execution is a failed hand-off, retried under the same key (D6);
// the engine cache never keeps a failure and follows credential edits; every node using the
// credential names its test; the Tracking links sit directly under the node's webhook id.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Flaky, n8nHarness, T, type N8nHarness } from '../helpers/n8n-harness';

/* eslint-disable @typescript-eslint/no-require-imports */
const host = require('../../dist/nodes/n8n/shared/host.js') as typeof import('../../nodes/n8n/shared/host');
const T0 = Date.parse('2026-03-02T08:00:00Z');
const HOUR = 3_600_000;
let h: N8nHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
  delete process.env.EXECUTIONS_MODE;
});

const c = (node: string) => ({ node, type: 'main', index: 0 });
const welcome = (performer: string) => ({
  nodes: [
    { id: 'trig', name: 'Cadence Trigger', type: T.trigger, parameters: { module: 'Leads', cadenceName: 'Flaky mail' } },
    { id: 's1', name: 'Welcome', type: T.step, parameters: { channel: 'email', subject: 'Hi {{First_Name}}', body: '<p>Hello</p>' } },
    { id: 'mail', name: 'Send Email', type: performer },
  ],
  connections: { 'Cadence Trigger': { main: [[c('Welcome')]] }, Welcome: { main: [[c('Send Email')], []] } },
});

describe('n8n host glue', () => {
  it('D5 D6 D2 a batch whose execution fails is not delivered: retried under the same key, it lands once', async () => {
    h = await n8nHarness(T0);
    const { nodes, connections } = welcome(T.flaky);
    await h.activate(nodes, connections);
    const engine = await h.engine();
    await engine.runtime.enroll('wf1:trig', [{ id: 'A', First_Name: 'Ann', Email: 'a@example.com' }], 'rep');
    Flaky.failing = true;
    await h.advance(0).catch(() => undefined); // the execution errors: n8n shows it; the engine holds the step
    const key = 'wf1:trig:A:1:s1';
    expect(await engine.runtime.store.getOutbox(key)).toMatchObject({ status: 'pending', attempts: 1 });
    expect(h.log).toHaveLength(0);
    const why = await engine.runtime.why((await engine.runtime.store.findEnrollment('wf1:trig', 'A'))!.enrollment.id);
    // The engine holds the step under its key and says why (D6).
    const held = why.find((r) => r.event === 'waiting');
    expect(held).toMatchObject({ data: expect.objectContaining({ key }) });
    expect(held!.reason).toMatch(/Connection refused/);
    expect(await engine.runtime.getEnrollment('wf1:trig', 'A')).toMatchObject({ executed: 0 });

    Flaky.failing = false;
    await h.advance(HOUR);
    expect(h.log.map((i) => (i.json.cadenza as { key: string }).key)).toEqual([key]);
    expect(h.log[0].json.cadenza).toMatchObject({ attempt: 2 });
    expect(await engine.runtime.store.getOutbox(key)).toMatchObject({ status: 'done' });
    await h.advance(24 * HOUR);
    expect(h.log).toHaveLength(1);
  });

  it('D2 D5 F9 two emails due at once, the relay refusing one recipient for good: the other is sent once and counted, the refused one fails alone', async () => {
    h = await n8nHarness(T0);
    const { nodes, connections } = welcome(T.flaky);
    await h.activate(nodes, connections);
    const engine = await h.engine();
    Flaky.refuse = new Set(['a@example.com']);
    try {
      await engine.runtime.enroll('wf1:trig', [{ id: 'A', First_Name: 'Ann', Email: 'a@example.com' }, { id: 'B', First_Name: 'Bob', Email: 'b@example.com' }], 'rep');
      await h.advance(0).catch(() => undefined);
      await h.advance(24 * HOUR).catch(() => undefined);
    } finally {
      Flaky.refuse = new Set();
    }
    expect(h.log.map((i) => i.json.to)).toEqual(['b@example.com']);
    expect(await engine.runtime.getEnrollment('wf1:trig', 'B')).toMatchObject({ status: 'completed', executed: 1 });
    expect(await engine.runtime.getEnrollment('wf1:trig', 'A')).toMatchObject({ status: 'failed', reason: expect.stringMatching(/550 5\.1\.1/) });
  });

  it('D2 D5 editing the credential while a send is in flight: the retired engine still records its delivery, and it never goes out again', async () => {
    h = await n8nHarness(T0);
    const { nodes, connections } = welcome(T.flaky);
    await h.activate(nodes, connections);
    const engine = await h.engine();
    const key = 'wf1:trig:A:1:s1';
    let release: () => void = () => undefined;
    Flaky.gate = new Promise<void>((r) => (release = r));
    try {
      await engine.runtime.enroll('wf1:trig', [{ id: 'A', First_Name: 'Ann', Email: 'a@example.com' }], 'rep');
      // One pass of the old engine (not advance(), which would go on reading the store that engine closes once retired).
      const pass = engine.runtime.tick({ cadences: engine.cadences() }); // the execution starts and waits at the mailer
      await expect.poll(() => engine.runtime.store.getOutbox(key).then((o) => o?.attempts)).toBe(1);
      h.creds.timezone = 'Europe/Berlin'; // the credential is edited: a new engine takes over
      const fresh = await h.engine();
      expect(fresh).not.toBe(engine);
      // The send outlasts a stop's usual 5 s grace (a slow relay): real time, as a retiring engine waits in real time.
      await new Promise((r) => setTimeout(r, 5500));
      release();
      await pass;
      await expect.poll(() => fresh.runtime.store.getOutbox(key).then((o) => o?.status)).toBe('done');
    } finally {
      Flaky.gate = null;
      release();
    }
    await h.advance(HOUR);
    expect(h.log.map((i) => (i.json.cadenza as { key: string }).key)).toEqual([key]);
  });

  it('D2 D5 two cadences due at once: the one whose execution fails is held, the other counts as delivered and is never sent again', async () => {
    h = await n8nHarness(T0);
    await h.activate([
      { id: 'trig1', name: 'Sales', type: T.trigger, parameters: { module: 'Leads', cadenceName: 'Sales' } },
      { id: 's1', name: 'Sales welcome', type: T.step, parameters: { channel: 'email', subject: 'Sales hi', body: 'Hello' } },
      { id: 'mail', name: 'Send Email', type: T.collect },
      { id: 'trig2', name: 'Webinar', type: T.trigger, parameters: { module: 'Leads', cadenceName: 'Webinar' } },
      { id: 's2', name: 'Webinar welcome', type: T.step, parameters: { channel: 'email', subject: 'Webinar hi', body: 'Hello' } },
      { id: 'flaky', name: 'Flaky mailer', type: T.flaky },
    ], {
      Sales: { main: [[c('Sales welcome')]] }, 'Sales welcome': { main: [[c('Send Email')], []] },
      Webinar: { main: [[c('Webinar welcome')]] }, 'Webinar welcome': { main: [[c('Flaky mailer')], []] },
    });
    const engine = await h.engine();
    Flaky.failing = true;
    await engine.runtime.enroll('wf1:trig1', [{ id: 'A', First_Name: 'Ann', Email: 'a@example.com' }], 'rep');
    await engine.runtime.enroll('wf1:trig2', [{ id: 'A', First_Name: 'Ann', Email: 'a@example.com' }], 'rep');
    await h.advance(0).catch(() => undefined);
    expect(await engine.runtime.store.getOutbox('wf1:trig1:A:1:s1')).toMatchObject({ status: 'done' });
    expect(await engine.runtime.store.getOutbox('wf1:trig2:A:1:s2')).toMatchObject({ status: 'pending' });
    Flaky.failing = false;
    await h.advance(HOUR);
    const subjects = h.log.map((i) => i.json.subject);
    expect(subjects.sort()).toEqual(['Sales hi', 'Webinar hi']);
  });

  it('C6 an ordinary node between two steps, or swapped Action and Next Step wires, refuse activation naming the nodes and what to do', async () => {
    h = await n8nHarness(T0);
    const nodes = [
      { id: 'trig', name: 'Cadence Trigger', type: T.trigger, parameters: { module: 'Leads' } },
      { id: 's1', name: 'Welcome', type: T.step, parameters: { channel: 'email', subject: 'Hi', body: 'Hello' } },
      { id: 'wait', name: 'Wait 2 days', type: T.collect },
      { id: 's2', name: 'Bump', type: T.step, parameters: { channel: 'email', subject: 'Re: Hi', body: 'Bump' } },
      { id: 'mail', name: 'Send Email', type: T.collect },
    ];
    const between = { 'Cadence Trigger': { main: [[c('Welcome')]] }, Welcome: { main: [[c('Send Email')], [c('Wait 2 days')]] }, 'Wait 2 days': { main: [[c('Bump')]] } };
    await expect(h.activate(nodes, between)).rejects.toThrow(/C6 "Wait 2 days" is wired to the Next Step output of "Welcome".*Delay field/);
    const swapped = { 'Cadence Trigger': { main: [[c('Welcome')]] }, Welcome: { main: [[c('Bump')], [c('Send Email')]] } };
    await expect(h.activate(nodes, swapped)).rejects.toThrow(/C6 the Action output of "Welcome" leads to the cadence node "Bump"/);
    // Nothing was published by a refused activation.
    expect(await (await h.engine()).runtime.store.getCadence('wf1:trig')).toBeUndefined();
  });

  it('D4 an engine that failed to open is not kept: the next call opens the store once it can', async () => {
    h = await n8nHarness(T0);
    const dir = join(h.dir, 'later');
    const creds = { storePath: join(dir, 'cadenza.db') };
    await expect(host.engineFor(creds)).rejects.toThrow();
    mkdirSync(dir);
    const engine = await host.engineFor(creds);
    expect(await engine.runtime.store.listCadences()).toEqual([]);
  });

  it('V1 editing the credential (public URL, secret) gives a fresh engine that keeps serving the active cadences', async () => {
    h = await n8nHarness(T0);
    const { nodes, connections } = welcome(T.collect);
    await h.activate(nodes, connections);
    const before = await h.engine();
    expect(before.cadences()).toEqual(['wf1:trig']);
    const edited = await host.engineFor({ ...h.creds, baseUrl: 'https://n8n.example/webhook/abc' });
    expect(edited).not.toBe(before);
    expect(edited.cadences()).toEqual(['wf1:trig']);
    await edited.runtime.enroll('wf1:trig', [{ id: 'B', First_Name: 'Bo', Email: 'b@example.com' }], 'rep');
    await edited.runtime.tick({ cadences: edited.cadences() });
    await new Promise((r) => setTimeout(r, 50));
    expect(String(h.seen['Send Email']?.[0]?.json.unsubscribeUrl)).toMatch(/^https:\/\/n8n\.example\/webhook\/abc\/t\//);
  });

  it('D4 in queue mode a SQLite store is refused with what to do instead', async () => {
    h = await n8nHarness(T0);
    process.env.EXECUTIONS_MODE = 'queue';
    await expect(host.engineFor({ storePath: join(h.dir, 'q.db') })).rejects.toThrow(/queue mode.*postgres:\/\//);
  });

  it('D4 every node that uses the Cadenza credential names its test, and has it', async () => {
    const core = require('n8n-core');
    const loader = new core.PackageDirectoryLoader(join(__dirname, '../..'));
    await loader.loadAll();
    const users = Object.values(loader.nodeTypes as Record<string, { type: import('n8n-workflow').INodeType }>).map((n) => n.type).filter((t) => t.description.credentials?.some((x) => x.name === 'cadenzaApi'));
    expect(users.map((t) => t.description.name).sort()).toEqual(['cadenceTrigger', 'cadenzaEnroll', 'cadenzaRecordOutcome', 'cadenzaTracking']);
    for (const t of users) {
      const cred = t.description.credentials!.find((x) => x.name === 'cadenzaApi')!;
      expect([t.description.name, cred.testedBy]).toEqual([t.description.name, 'cadenzaStoreTest']);
      expect(typeof t.methods?.credentialTest?.cadenzaStoreTest).toBe('function');
    }
  });

  it('F8 the Tracking links are /webhook/<webhook id>/t/:kind/:token, as n8n registers a full path with parameters', async () => {
    const wf = require('n8n-workflow') as typeof import('n8n-workflow');
    const { CadenzaTracking } = require('../../dist/nodes/n8n/CadenzaTracking/CadenzaTracking.node.js');
    const node = { id: 'trk', name: 'Cadenza Tracking', type: T.tracking, typeVersion: 1, position: [0, 0] as [number, number], parameters: {}, webhookId: 'wh-1' };
    for (const w of new CadenzaTracking().description.webhooks) {
      expect(w.isFullPath).toBe(true);
      // What n8n stores beneath the webhook id (its dynamic-path lookup strips the id from the URL)…
      expect(wf.NodeHelpers.getNodeWebhookPath('wf', node, w.path, w.isFullPath)).toBe('t/:kind/:token');
      // …and the Production URL it shows.
      expect(wf.NodeHelpers.getNodeWebhookUrl('http://n8n/webhook', 'wf', node, w.path, w.isFullPath)).toBe('http://n8n/webhook/wh-1/t/:kind/:token');
    }
  });
});

