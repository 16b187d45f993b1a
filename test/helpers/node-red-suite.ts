// The Node-RED node suite, run inside the real Node-RED runtime through node-red-node-test-helper.
// One file per Node-RED version calls it (4.1 and 5.x), each in its own process.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../engine/runtime/clock';
import type { NodeRedHost } from '../../nodes/node-red/host';
import { hostStoreSpec } from './harness';

/* eslint-disable @typescript-eslint/no-require-imports */
const NODES = ['cadenza-config', 'cadenza-trigger', 'cadenza-followup', 'cadenza-branch', 'cadenza-check', 'cadenza-enroll', 'cadenza-outcome']
  .map((n) => require(`../../dist/nodes/node-red/${n}.js`));

const T0 = Date.parse('2026-03-02T08:00:00Z');
const DAY = 86_400_000;
type Msg = Record<string, any>;
type FlowNode = Record<string, any>;

/** Lets Node-RED deliver what was sent (its send is asynchronous); no wall-clock waiting. */
const flush = async () => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

export function nodeRedSuite(version: string, runtimePath: string) {
  const helper = require('node-red-node-test-helper');
  let dir: string;
  let clock: VirtualClock;
  let storePath: string;
  const withStore = (flow: FlowNode[]) => flow.map((n) => (n.type === 'cadenza-config' ? { storePath, ...n } : n));

  beforeAll(() => {
    helper.init(runtimePath);
  });

  afterEach(async () => {
    await helper.unload();
    await helper.stopServer();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Loads `flow` into a fresh Node-RED with a virtual clock; collects what helper nodes receive. */
  async function start(flow: FlowNode[], reuseDir = false) {
    if (!reuseDir) {
      dir = mkdtempSync(join(tmpdir(), 'cadenza-nr-'));
      clock = new VirtualClock(T0);
      storePath = await hostStoreSpec(dir);
    }
    helper.settings({ cadenza: { clock, manualTick: true }, userDir: dir });
    await new Promise<void>((r) => helper.startServer(r));
    await helper.load(NODES, withStore(flow));
    return attach(flow);
  }

  function attach(flow: FlowNode[]) {
    const got: Record<string, Msg[]> = {};
    for (const n of flow.filter((x) => x.type === 'helper')) {
      got[n.id] = [];
      helper.getNode(n.id).on('input', (m: Msg) => got[n.id].push(m));
    }
    const host = (): NodeRedHost => helper.getNode('cfg').host;
    const settle = async () => {
      await flush();
      await host().settled();
      await flush();
    };
    /** Moves virtual time, firing what falls due, then lets Node-RED deliver. */
    const advance = async (ms: number) => {
      await host().runtime.runUntil(clock.now() + ms, clock);
      await flush();
    };
    const send = async (id: string, msg: Msg) => {
      helper.getNode(id).receive(msg);
      await flush();
      await host().settled(); // the node's engine work (store I/O, real time on Postgres) is done
      await flush();
    };
    return { got, host, settle, advance, send };
  }

  const cfg = { id: 'cfg', type: 'cadenza-config', timezone: 'UTC', sender: 'sales@acme.example' };
  const sales = (over: FlowNode = {}): FlowNode[] => [
    cfg,
    { id: 't1', type: 'cadenza-trigger', engine: 'cfg', name: 'Sales-ready', module: 'Leads', mode: 'manual', exitOutcomes: 'replied', wires: [['s1']], ...over.t1 },
    { id: 's1', type: 'cadenza-followup', name: 'Welcome', channel: 'email', subject: 'Hi {{First_Name}}', body: '<p>Hello {{First_Name}}</p>', wires: [['mail'], ['b1']], ...over.s1 },
    { id: 'b1', type: 'cadenza-branch', outcomes: ['opened', 'clicked'], timeout: 3, timeoutUnit: 'days', outputs: 3, wires: [['callStep'], ['callStep'], ['bump']], ...over.b1 },
    { id: 'callStep', type: 'cadenza-followup', name: 'Call', channel: 'call', delay: 1, delayUnit: 'days', subject: 'Call {{First_Name}}', wires: [['tasks'], []] },
    { id: 'bump', type: 'cadenza-followup', name: 'Bump', channel: 'email', subject: 'Re: Hi', body: 'Bumping this', wires: [['mail'], []], ...over.bump },
    { id: 'en', type: 'cadenza-enroll', cadence: 't1', action: 'enroll', wires: [['done'], ['skipped']] },
    { id: 'oc', type: 'cadenza-outcome', engine: 'cfg', mode: 'reply', wires: [['recorded'], ['unmatched']] },
    { id: 'mail', type: 'helper' }, { id: 'tasks', type: 'helper' }, { id: 'done', type: 'helper' }, { id: 'skipped', type: 'helper' },
    { id: 'recorded', type: 'helper' }, { id: 'unmatched', type: 'helper' },
  ];
  const lead = (id: string, over: Msg = {}) => ({ id, First_Name: `Ann${id}`, Email: `${id}@example.com`, Owner: 'rep-1', ...over });

  describe(`Node-RED ${version}`, () => {
    it('E1 S1 deploy publishes the wired cadence; Enroll answers each record; the step sends an e-mail message', async () => {
      const nr = await start(sales());
      await nr.settle();
      const row = await nr.host().runtime.store.getCadence('t1');
      expect(row).toMatchObject({ status: 'active', activeVersion: 1, module: 'Leads', name: 'Sales-ready' });
      await nr.send('en', { payload: [lead('A'), { First_Name: 'no id' }] });
      expect(nr.got.done.map((m) => m.payload)).toEqual([expect.objectContaining({ recordId: 'A', status: 'enrolled' })]);
      expect(nr.got.skipped[0].payload).toMatchObject({ status: 'skipped', rule: 'D4' });
      await nr.advance(0);
      expect(nr.got.mail).toHaveLength(1);
      const m = nr.got.mail[0];
      expect(m).toMatchObject({ to: 'A@example.com', from: 'sales@acme.example', topic: 'Hi AnnA', cadenza: { key: 't1:A:1:s1', channel: 'email' } });
      expect(m.payload).toContain('<p>Hello AnnA</p>');
      expect(m.headers['Message-ID']).toMatch(/^<cz\./);
      expect(helper.getNode('t1')).toBeTruthy();
    });

    it('F3 the first outcome decides the path: an open leads to the call, a later click changes nothing', async () => {
      const nr = await start(sales());
      await nr.settle();
      await nr.send('en', { payload: lead('A') });
      await nr.advance(0);
      const key = nr.got.mail[0].cadenza.key;
      await nr.host().runtime.recordOutcome({ key, outcome: 'opened' });
      await nr.host().runtime.recordOutcome({ key, outcome: 'clicked' });
      await nr.advance(5 * DAY);
      expect(nr.got.tasks.map((m) => m.cadenza.nodeId)).toEqual(['callStep']);
      expect(nr.got.tasks[0].payload).toMatchObject({ assignee: 'rep-1', subject: 'Call AnnA' });
      expect(nr.got.mail.map((m) => m.cadenza.nodeId)).toEqual(['s1']); // no bump: the timeout path did not run
    });

    it('F5 U1 U10 with no open the timeout path runs; an e-mail reply un-enrolls, an out-of-office does not', async () => {
      const nr = await start(sales());
      await nr.settle();
      await nr.send('en', { payload: [lead('A'), lead('B')] });
      await nr.advance(0);
      const id = (r: string) => nr.got.mail.find((m) => m.cadenza.recordId === r)!.headers['Message-ID'];
      await nr.send('oc', { topic: 'Re: Hi', header: { 'in-reply-to': id('A') } });
      await nr.send('oc', { topic: 'Out of office', header: { 'in-reply-to': id('B'), 'auto-submitted': 'auto-replied' } });
      await nr.send('oc', { topic: 'Hello?', header: {} });
      expect(nr.got.recorded.map((m) => m.payload.outcome)).toEqual(['replied', 'auto-replied']);
      expect(nr.got.unmatched).toHaveLength(1);
      await nr.advance(4 * DAY);
      expect(nr.got.mail.map((m) => `${m.cadenza.recordId}/${m.cadenza.nodeId}`)).toEqual(['A/s1', 'B/s1', 'B/bump']);
      expect(await nr.host().runtime.getEnrollment('t1', 'A')).toMatchObject({ status: 'stopped', reason: 'outcome "replied" (U1)' });
    });

    it('E3 a record matching the view and the exit criteria is skipped with its rule on the skipped output', async () => {
      const nr = await start(sales({ t1: { mode: 'view', view: 'Lead_Status = "Hot"', exitCriteria: 'Do_Not_Contact = true' } }));
      await nr.settle();
      await nr.send('en', { payload: lead('A', { Lead_Status: 'Hot', Do_Not_Contact: true }) });
      expect(nr.got.skipped[0].payload).toMatchObject({ recordId: 'A', status: 'skipped', rule: 'E3' });
      await nr.advance(DAY);
      expect(nr.got.mail).toEqual([]);
    });

    it('U6 un-enrollment on a date beats a follow-up due at the same moment', async () => {
      const nr = await start(sales({ t1: { unenrollDate: new Date(T0 + 3 * DAY).toISOString() } }));
      await nr.settle();
      await nr.send('en', { payload: lead('A') });
      await nr.advance(0);
      await nr.advance(4 * DAY); // the bump falls due exactly on the un-enroll date
      expect(nr.got.mail.map((m) => m.cadenza.nodeId)).toEqual(['s1']);
      expect((await nr.host().runtime.getEnrollment('t1', 'A'))?.reason).toMatch(/U4/);
    });

    it('V1 V2 a deploy that edits the step a record waits on stops it with "follow-up edited"; other edits leave it running', async () => {
      const deployed = (over: FlowNode) => withStore(sales(over));
      const nr = await start(sales({ bump: { delay: 4 } }));
      await nr.settle();
      await nr.send('en', { payload: [lead('A')] });
      await nr.advance(0);
      // v2 rewords the first step: A already got it and waits at the branch, so it runs on, on v1.
      await helper.setFlows(deployed({ bump: { delay: 4 }, s1: { subject: 'Hello {{First_Name}}' } }), 'nodes');
      const nr2 = attach(sales());
      await nr2.settle();
      expect((await nr2.host().runtime.store.getCadence('t1'))?.activeVersion).toBe(2);
      expect(await nr2.host().runtime.getEnrollment('t1', 'A')).toMatchObject({ status: 'active', version: 1 });
      await nr2.send('en', { payload: [lead('B')] });
      await nr2.advance(0);
      expect(nr2.got.mail.map((m) => m.topic)).toEqual(['Hello AnnB']);
      await nr2.advance(3 * DAY); // both time out at the branch and now wait on the bump (due on day 4)
      expect((await nr2.host().runtime.getEnrollment('t1', 'A'))?.position).toBe('bump');
      // v3 edits the bump itself: both enrollments waiting on it stop.
      await helper.setFlows(deployed({ bump: { delay: 4, body: 'Reworded' } }), 'full');
      const nr3 = attach(sales());
      await nr3.settle();
      expect((await nr3.host().runtime.store.getCadence('t1'))?.activeVersion).toBe(3);
      for (const id of ['A', 'B']) expect(await nr3.host().runtime.getEnrollment('t1', id)).toMatchObject({ status: 'stopped', reason: 'follow-up edited (V2)', position: 'bump' });
      await nr3.advance(3 * DAY);
      expect(nr3.got.mail).toEqual([]);
    });

    it('V1 R4 a step deleted in the editor is named before deploy with who would reach it; a record of the older version that reaches it fails at once, naming it, instead of being retried for days', async () => {
      const slowWelcome = { s1: { delay: 1, delayUnit: 'days' } };
      const nr = await start(sales(slowWelcome));
      await nr.settle();
      await nr.send('en', { payload: [lead('A')] });
      // v2 deletes the bump (the branch's timeout path ends there); A waits on the welcome, unchanged, so it runs on, on v1.
      const v2 = sales(slowWelcome).filter((n) => n.id !== 'bump').map((n) => (n.id === 'b1' ? { ...n, timeout: undefined, outputs: 2, wires: [['callStep'], ['callStep']] } : n));
      // Before the deploy, the editor's check names the deleted step and who would reach it.
      const checked = (await helper.request().post('/cadenza/check').send({ flows: withStore(v2) }).expect(200)).body;
      expect(checked.stopping).toEqual([{ cadenceId: 't1', nodeId: 'bump', records: ['A'], deleted: 'Bump' }]);
      await helper.setFlows(withStore(v2), 'full');
      const nr2 = attach(v2);
      await nr2.settle();
      expect(await nr2.host().runtime.getEnrollment('t1', 'A')).toMatchObject({ status: 'active', version: 1, position: 's1' });
      await nr2.advance(DAY);
      expect(nr2.got.mail.map((m) => m.topic)).toEqual(['Hi AnnA']);
      await nr2.advance(4 * DAY); // no open: v1's timeout path leads to the deleted bump
      expect(await nr2.host().runtime.getEnrollment('t1', 'A')).toMatchObject({
        status: 'failed', position: 'bump', reason: expect.stringMatching(/"bump" is no longer in the deployed flows; resume or restart .*\(V1, R4\)/),
      });
      expect(await nr2.host().runtime.store.getOutbox('t1:A:1:bump')).toMatchObject({ status: 'dead', attempts: 1 });
    });

    it('V3 deleting the trigger deactivates the cadence: nothing scheduled runs, and the record of it stays', async () => {
      const nr = await start(sales());
      await nr.settle();
      await nr.send('en', { payload: lead('A') });
      await nr.advance(0);
      const store = nr.host().runtime.store;
      await helper.setFlows(withStore(sales().filter((n) => n.id !== 't1')), 'full');
      const nr2 = attach(sales().filter((n) => n.id !== 't1'));
      await nr2.settle();
      await flush();
      expect((await nr2.host().runtime.store.getCadence('t1'))?.status).toBe('inactive');
      await nr2.advance(5 * DAY);
      expect(nr2.got.mail).toEqual([]);
      expect(await nr2.host().runtime.getEnrollment('t1', 'A')).toMatchObject({ status: 'active', wait: 'halted' });
      void store;
    });

    it('V3 a deploy deactivates only the cadences Node-RED created, never one made through the API on the same store', async () => {
      const nr = await start(sales());
      await nr.settle();
      const rt = nr.host().runtime;
      const def = { id: 'rest-1', name: 'From the API', module: 'Leads', enrollment: { mode: 'manual' }, nodes: [{ id: 'x', type: 'followUp', channel: 'task' }], edges: [{ from: 'trigger', to: 'x' }] };
      await rt.createCadence(def, 'admin');
      await rt.publish('rest-1', 'admin');
      await helper.setFlows(withStore(sales().filter((n) => n.id !== 't1')), 'full');
      const nr2 = attach(sales().filter((n) => n.id !== 't1'));
      await nr2.settle();
      await flush();
      expect((await nr2.host().runtime.store.getCadence('t1'))?.status).toBe('inactive');
      expect((await nr2.host().runtime.store.getCadence('rest-1'))?.status).toBe('active');
    });

    it('D1 a restart of Node-RED mid-cadence loses nothing and sends nothing twice', async () => {
      const nr = await start(sales());
      await nr.settle();
      await nr.send('en', { payload: [lead('A'), lead('B')] });
      await nr.advance(0);
      expect(nr.got.mail).toHaveLength(2);
      await helper.unload();
      await helper.stopServer();
      clock.advance(4 * DAY); // down while the timeout path fell due
      const nr2 = await start(sales(), true);
      await nr2.settle();
      await nr2.advance(0);
      expect(nr2.got.mail.map((m) => `${m.cadenza.recordId}/${m.cadenza.nodeId}`).sort()).toEqual(['A/bump', 'B/bump']);
      await nr2.advance(10 * DAY);
      expect(nr2.got.mail).toHaveLength(2);
    });

    it('U3 an Un-enroll Check stops the path for matching records and reports them on its second output', async () => {
      const flow = [
        cfg,
        { id: 't1', type: 'cadenza-trigger', engine: 'cfg', module: 'Deals', mode: 'manual', wires: [['s1']] },
        { id: 's1', type: 'cadenza-followup', channel: 'task', subject: 'Prepare', wires: [['tasks'], ['k']] },
        { id: 'k', type: 'cadenza-check', name: 'Still open?', criteria: 'Stage = "Closed Won"', wires: [['s2'], ['left']] },
        { id: 's2', type: 'cadenza-followup', channel: 'task', delay: 2, delayUnit: 'days', subject: 'Follow up', wires: [['tasks'], []] },
        { id: 'en', type: 'cadenza-enroll', cadence: 't1', action: 'enroll', wires: [['done'], ['skipped']] },
        { id: 'up', type: 'cadenza-enroll', cadence: 't1', action: 'update', wires: [['done'], ['skipped']] },
        { id: 'tasks', type: 'helper' }, { id: 'left', type: 'helper' }, { id: 'done', type: 'helper' }, { id: 'skipped', type: 'helper' },
      ];
      const nr = await start(flow);
      await nr.settle();
      await nr.send('en', { payload: [{ id: 'D1', Stage: 'Open' }, { id: 'D2', Stage: 'Open' }] });
      await nr.advance(0);
      await nr.send('up', { payload: { id: 'D2', Stage: 'Closed Won' } });
      await nr.advance(3 * DAY);
      expect(nr.got.tasks.map((m) => `${m.cadenza.recordId}/${m.cadenza.nodeId}`)).toEqual(['D1/s1', 'D2/s1', 'D1/s2']);
      expect(nr.got.left.map((m) => m.payload)).toEqual([expect.objectContaining({ recordId: 'D2', reason: 'exit criteria of "Still open?" (U3)' })]);
    });

    it('U1 D4 an e-mail in reply without our Message-ID is matched by msg.from; an outcome without one names where it goes', async () => {
      const nr = await start([...sales(), { id: 'oc2', type: 'cadenza-outcome', engine: 'cfg', mode: 'outcome', wires: [['recorded'], ['unmatched']] }]);
      await nr.settle();
      await nr.send('en', { payload: [lead('A')] });
      await nr.advance(0);
      await nr.send('oc', { topic: 'Re: Hi', from: 'A@example.com', header: {} });
      expect(nr.got.recorded.map((m) => m.payload)).toEqual([expect.objectContaining({ outcome: 'replied' })]);
      expect(await nr.host().runtime.getEnrollment('t1', 'A')).toMatchObject({ status: 'stopped', reason: 'outcome "replied" (U1)' });
      await nr.send('oc2', { payload: { key: 't1:A:1:s1' } });
      expect(nr.got.unmatched.at(-1)?.payload).toMatchObject({ rule: 'D4', reason: expect.stringMatching(/no outcome given: .*msg\.payload\.outcome or msg\.outcome/) });
    });

    it('V3 the editor\'s check says before deploy how many enrollments disabling a trigger (or its tab) stops', async () => {
      const nr = await start(sales());
      await nr.settle();
      await nr.send('en', { payload: [lead('A'), lead('B')] });
      const check = async (flow: FlowNode[]) => (await helper.request().post('/cadenza/check').send({ flows: withStore(flow) }).expect(200)).body;
      const off = sales().map((n) => (n.id === 't1' ? { ...n, d: true } : n));
      expect((await check(off)).stopping).toEqual([{ cadenceId: 't1', nodeId: 't1', records: ['A', 'B'], halts: true }]);
      const onTab = [{ id: 'tab1', type: 'tab', disabled: true }, ...sales().map((n) => ({ ...n, z: 'tab1' }))];
      expect((await check(onTab)).stopping).toEqual([{ cadenceId: 't1', nodeId: 't1', records: ['A', 'B'], halts: true }]);
      expect((await check(sales())).stopping).toEqual([]);
    });

    it('E2 D4 a publish warning reaches the trigger\'s log and status; a refused redeploy keeps the trigger red while the old version runs on', async () => {
      const nr = await start(sales({ t1: { mode: 'view', view: 'true' } }));
      await nr.settle();
      // The helper's spies may be shared by every node: read the trigger's own calls.
      const own = (spy: any, id: string) => spy.args.filter((_: unknown, i: number) => spy.thisValues[i]?.id === id).map((a: any[]) => a[0]);
      const status = () => own(helper.getNode('t1').status, 't1').at(-1);
      const warns = own(helper.getNode('t1').warn, 't1').map(String);
      expect(warns).toEqual([expect.stringMatching(/^Cadenza: enrollment\.view reads no field of the record .*every record of Leads enrolls, or none does \(E2\)/)]);
      expect(status()).toMatchObject({ fill: 'green', text: expect.stringMatching(/see warnings/) });
      // v2 is refused (an unknown channel): v1 runs on, and new leads keep the trigger red, not painted green by the live count.
      const broken = sales({ t1: { mode: 'view', view: 'true' }, s1: { channel: 'fax' } });
      await helper.setFlows(withStore(broken), 'full');
      const nr2 = attach(broken);
      await nr2.settle();
      expect(status()).toMatchObject({ fill: 'red' });
      await nr2.send('en', { payload: [lead('A')] });
      expect(await nr2.host().runtime.getEnrollment('t1', 'A')).toMatchObject({ status: 'active', version: 1 });
      await new Promise((r) => setTimeout(r, 700)); // the status refresh is a 500 ms debounce of real time (UI only)
      await nr2.settle();
      expect(status()).toMatchObject({ fill: 'red' });
    });

    it('C4 E2 D4 bad node configuration gives a node error and a red status, not a crash', async () => {
      const flow = [
        cfg,
        { id: 't1', type: 'cadenza-trigger', engine: 'cfg', module: 'Leads', mode: 'view', view: 'Lead_Status = = "x"', wires: [['s1']] },
        { id: 's1', type: 'cadenza-followup', channel: 'fax', wires: [[], []] },
        { id: 't2', type: 'cadenza-trigger', engine: 'nope', module: 'Leads', wires: [[]] },
        { id: 'en', type: 'cadenza-enroll', cadence: 't1', action: 'teleport', wires: [[], []] },
      ];
      const nr = await start(flow);
      await nr.settle();
      const statuses = (id: string) => helper.getNode(id).status.args.map((a: any[]) => a[0]);
      const errors = (id: string) => helper.getNode(id).error.args.map((a: any[]) => String(a[0]));
      expect(statuses('t1').at(-1)).toMatchObject({ fill: 'red' });
      expect(errors('t1').join('\n')).toMatch(/E2/);
      expect(statuses('s1').at(-1)).toMatchObject({ fill: 'red', text: expect.stringMatching(/C4 channel/) });
      expect(statuses('t2').at(-1)).toMatchObject({ fill: 'red' });
      expect(statuses('en').at(-1)).toMatchObject({ fill: 'red' });
      expect(await nr.host().runtime.store.getCadence('t1')).toBeUndefined(); // nothing published
    });
  });
}
