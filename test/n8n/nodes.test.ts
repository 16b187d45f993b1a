// The n8n nodes through n8n's own engine (n8n-core 2.41, n8n-workflow 2.41): loaded from the built
// package, the trigger activated through TriggerContext, every batch executed by WorkflowExecute.
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { n8nHarness, T, type N8nHarness } from '../helpers/n8n-harness';

/* eslint-disable @typescript-eslint/no-require-imports */
const T0 = Date.parse('2026-03-02T08:00:00Z');
const DAY = 86_400_000;
let h: N8nHarness;
afterEach(() => h?.close());

const lead = (id: string, over: Record<string, unknown> = {}) => ({ id, First_Name: `Ann${id}`, Email: `${id}@example.com`, Owner: 'rep-1', ...over });
const CADENCE = 'wf1:trig';

function sales(over: Record<string, Record<string, unknown>> = {}) {
  const nodes = [
    { id: 'trig', name: 'Cadence Trigger', type: T.trigger, parameters: { module: 'Leads', cadenceName: 'Sales-ready', exitOutcomes: ['bounced'], ...over.trig } },
    { id: 's1', name: 'Welcome', type: T.step, parameters: { channel: 'email', subject: 'Hi {{First_Name}}', body: '<p>Hello {{First_Name}}</p>', ...over.s1 } },
    { id: 'b1', name: 'Replied or Opened?', type: T.branch, parameters: { outcomes: ['replied', 'opened'], timeout: 3, timeoutUnit: 'businessDays', ...over.b1 } },
    { id: 'call', name: 'Call Them', type: T.step, parameters: { channel: 'call', subject: 'Call {{First_Name}}' } },
    { id: 'glad', name: 'Case Study', type: T.step, parameters: { channel: 'email', delay: 1, delayUnit: 'days', subject: 'A case study' } },
    { id: 'bump', name: 'Bump', type: T.step, parameters: { channel: 'email', subject: 'Re: Hi', ...over.bump } },
    { id: 'mail', name: 'Send Email', type: T.collect },
    { id: 'tasks', name: 'Create Task', type: T.collect },
  ];
  const c = (node: string) => ({ node, type: 'main', index: 0 });
  const connections = {
    'Cadence Trigger': { main: [[c('Welcome')]] },
    Welcome: { main: [[c('Send Email')], [c('Replied or Opened?')]] },
    'Replied or Opened?': { main: [[c('Call Them')], [c('Case Study')], [c('Bump')]] },
    'Call Them': { main: [[c('Create Task')], []] },
    'Case Study': { main: [[c('Send Email')], []] },
    Bump: { main: [[c('Send Email')], []] },
  };
  return { nodes, connections };
}

const enrollFlow = (action = 'enroll', cadence = CADENCE) => ({
  nodes: [{ id: 'en', name: 'Enroll', type: T.enroll, parameters: { cadence, action } }],
  connections: {},
});
const outcomeFlow = (parameters: Record<string, unknown>) => ({ nodes: [{ id: 'oc', name: 'Record Outcome', type: T.outcome, parameters }], connections: {} });
const out = (run: import('n8n-workflow').IRun, node: string, output = 0) => (run.data.resultData.runData[node]?.[0]?.data?.main?.[output] ?? []).map((i) => i.json);

describe('n8n nodes (n8n-core 2.41)', () => {
  it('E1 S1 D2 activation publishes the drawn cadence; Enroll answers each item; each due action arrives at the performer in an execution of its own', async () => {
    h = await n8nHarness(T0);
    const { nodes, connections } = sales();
    await h.activate(nodes, connections);
    const row = await (await h.engine()).runtime.store.getCadence(CADENCE);
    expect(row).toMatchObject({ status: 'active', activeVersion: 1, name: 'Sales-ready', module: 'Leads' });
    const run = await h.run(enrollFlow().nodes, {}, [{ json: lead('A') }, { json: lead('B') }, { json: lead('C') }, { json: { First_Name: 'no id' } }]);
    expect(out(run, 'Enroll', 0).map((j) => j.recordId)).toEqual(['A', 'B', 'C']);
    expect(out(run, 'Enroll', 1)).toEqual([expect.objectContaining({ status: 'skipped', rule: 'D4' })]);
    await h.advance(0);
    expect(h.runs.filter((r) => r.mode === 'trigger')).toHaveLength(3); // an execution's result is one verdict: one per email
    const sent = h.seen['Send Email'].map((i) => i.json);
    expect(sent.map((j) => j.to)).toEqual(['A@example.com', 'B@example.com', 'C@example.com']);
    expect(sent[0]).toMatchObject({ subject: 'Hi AnnA', from: 'sales@acme.example', cadenza: { key: `${CADENCE}:A:1:s1`, nodeId: 's1' } });
    expect(sent[0].cadenza).not.toHaveProperty('route');
  });

  it('F2 F3 F5 branches are routed right: a reply takes its output, a later open changes nothing, silence takes the timeout', async () => {
    h = await n8nHarness(T0);
    const { nodes, connections } = sales();
    await h.activate(nodes, connections);
    await h.run(enrollFlow().nodes, {}, [{ json: lead('A') }, { json: lead('B') }, { json: lead('C') }]);
    await h.advance(0);
    const key = (r: string) => (h.seen['Send Email'].find((i) => (i.json.cadenza as { recordId: string }).recordId === r)!.json.cadenza as { key: string }).key;
    const replied = await h.run(outcomeFlow({ mode: 'outcome', key: key('A'), outcome: 'replied' }).nodes, {}, [{ json: {} }]);
    expect(out(replied, 'Record Outcome')).toEqual([expect.objectContaining({ outcome: 'replied', applied: true })]);
    await h.run(outcomeFlow({ mode: 'outcome', key: key('A'), outcome: 'opened' }).nodes, {}, [{ json: {} }]);
    await h.run(outcomeFlow({ mode: 'outcome', key: key('B'), outcome: 'opened' }).nodes, {}, [{ json: {} }]);
    await h.advance(5 * DAY);
    const to = (node: string) => (h.seen[node] ?? []).map((i) => `${(i.json.cadenza as { recordId: string }).recordId}/${(i.json.cadenza as { nodeId: string }).nodeId}`);
    expect(to('Create Task')).toEqual(['A/call']);
    expect(to('Send Email')).toEqual(['A/s1', 'B/s1', 'C/s1', 'B/glad', 'C/bump']);
  });

  it('U1 U10 an email reply from an email trigger is matched by In-Reply-To; an out-of-office is auto-replied', async () => {
    h = await n8nHarness(T0);
    const { nodes, connections } = sales({ trig: { exitOutcomes: ['replied'] } });
    await h.activate(nodes, connections);
    await h.run(enrollFlow().nodes, {}, [{ json: lead('A') }, { json: lead('B') }]);
    await h.advance(0);
    const mid = (r: string) => h.seen['Send Email'].find((i) => (i.json.cadenza as { recordId: string }).recordId === r)!.json.messageId;
    const run = await h.run(outcomeFlow({ mode: 'reply' }).nodes, {}, [
      { json: { subject: 'Re: Hi', headers: { 'in-reply-to': mid('A') } } },
      { json: { subject: 'Automatic reply: away', headers: { 'in-reply-to': mid('B'), 'auto-submitted': 'auto-replied' } } },
      { json: { subject: 'hello', headers: {} } },
    ]);
    expect(out(run, 'Record Outcome', 0).map((j) => j.outcome)).toEqual(['replied', 'auto-replied']);
    expect(out(run, 'Record Outcome', 1)).toHaveLength(1);
    const rt = (await h.engine()).runtime;
    expect(await rt.getEnrollment(CADENCE, 'A')).toMatchObject({ status: 'stopped', reason: 'outcome "replied" (U1)' });
    expect((await rt.getEnrollment(CADENCE, 'B'))?.status).toBe('active');
  });

  it('U1 U10 a reply as n8n\'s Email Trigger (IMAP) gives it ("simple": From on top, other headers under metadata; "resolved": from.text) is matched by its sender, as Send Email sets its own Message-ID', async () => {
    h = await n8nHarness(T0);
    const { nodes, connections } = sales({ trig: { exitOutcomes: ['replied'] } });
    await h.activate(nodes, connections);
    await h.run(enrollFlow().nodes, {}, [{ json: lead('A') }, { json: lead('B') }, { json: lead('C') }]);
    await h.advance(0);
    const run = await h.run(outcomeFlow({ mode: 'reply' }).nodes, {}, [
      { json: { from: 'Ann <A@example.com>', subject: 'Re: Hi', metadata: { 'in-reply-to': '<n8n-set-this@mail.example>' }, textPlain: 'Yes please' } },
      { json: { from: { text: 'Bob <B@example.com>', value: [{ address: 'B@example.com' }] }, subject: 'Re: Hi', inReplyTo: '<n8n-set-this-too@mail.example>', headers: {} } },
      { json: { from: 'C@example.com', subject: 'Automatic reply: away', metadata: { 'auto-submitted': 'auto-replied' } } },
    ]);
    expect(out(run, 'Record Outcome', 0).map((j) => j.outcome)).toEqual(['replied', 'replied', 'auto-replied']);
    const rt = (await h.engine()).runtime;
    for (const r of ['A', 'B']) expect(await rt.getEnrollment(CADENCE, r)).toMatchObject({ status: 'stopped', reason: 'outcome "replied" (U1)' });
    expect((await rt.getEnrollment(CADENCE, 'C'))?.status).toBe('active');
  });

  it('E3 a record matching the view and the exit criteria is skipped, with its rule, on the Skipped output', async () => {
    h = await n8nHarness(T0);
    const { nodes, connections } = sales({ trig: { mode: 'view', view: 'Lead_Status = "Hot"', exitCriteria: 'Do_Not_Contact = true' } });
    await h.activate(nodes, connections);
    const run = await h.run(enrollFlow('update').nodes, {}, [{ json: lead('A', { Lead_Status: 'Hot', Do_Not_Contact: true }) }, { json: lead('B', { Lead_Status: 'Hot' }) }]);
    expect(out(run, 'Enroll', 0).map((j) => (j.enrollments as { status: string; rule?: string }[])[0])).toEqual([
      expect.objectContaining({ status: 'skipped', rule: 'E3' }),
      expect.objectContaining({ status: 'enrolled' }),
    ]);
    await h.advance(DAY);
    expect(h.seen['Send Email'].map((i) => i.json.to)).toEqual(['B@example.com']);
  });

  it('U6 un-enrollment on a date beats a follow-up due at the same moment', async () => {
    h = await n8nHarness(T0);
    const { nodes, connections } = sales({ trig: { unenrollDate: new Date(T0 + 3 * DAY).toISOString() } });
    await h.activate(nodes, connections);
    await h.run(enrollFlow().nodes, {}, [{ json: lead('A') }]);
    await h.advance(4 * DAY); // the timeout path's bump falls due exactly on the un-enroll date
    expect(h.seen['Send Email'].map((i) => (i.json.cadenza as { nodeId: string }).nodeId)).toEqual(['s1']);
    expect((await (await h.engine()).runtime.getEnrollment(CADENCE, 'A'))?.reason).toMatch(/U4/);
  });

  it('V1 V2 saving an active workflow publishes a new version; a record waiting on an edited step stops', async () => {
    h = await n8nHarness(T0);
    let wf = sales({ bump: { delay: 4 } });
    await h.activate(wf.nodes, wf.connections);
    await h.run(enrollFlow().nodes, {}, [{ json: lead('A') }]);
    await h.advance(3 * DAY); // A timed out at the branch and waits on the bump (due day 4)
    await h.deactivate();
    wf = sales({ bump: { delay: 4, body: 'Reworded' } });
    await h.activate(wf.nodes, wf.connections, 'update');
    const rt = (await h.engine()).runtime;
    expect((await rt.store.getCadence(CADENCE))?.activeVersion).toBe(2);
    expect(await rt.getEnrollment(CADENCE, 'A')).toMatchObject({ status: 'stopped', reason: 'follow-up edited (V2)', position: 'bump' });
    await h.run(enrollFlow().nodes, {}, [{ json: lead('B') }]);
    await h.advance(2 * DAY);
    expect(h.seen['Send Email'].map((i) => `${(i.json.cadenza as { recordId: string }).recordId}/${(i.json.cadenza as { version: number }).version}`)).toEqual(['A/1', 'B/2']);
  });

  it('V1 V2 a publish n8n does not re-register the trigger for (only a step changed) is deployed by the next production execution; an editor run publishes nothing', async () => {
    h = await n8nHarness(T0);
    let wf = sales({ bump: { delay: 4 } });
    await h.activate(wf.nodes, wf.connections);
    await h.run(enrollFlow().nodes, {}, [{ json: lead('A') }]);
    await h.advance(3 * DAY); // A timed out at the branch and waits on the bump (due day 4)
    // Published again with the bump reworded: n8n 2.41 keeps the trigger registered (its parameters are equal).
    wf = sales({ bump: { delay: 4, body: 'Reworded' } });
    const enroll = { id: 'en', name: 'Enroll', type: T.enroll, parameters: { cadence: '__this_workflow__', action: 'enroll' } };
    const rt = (await h.engine()).runtime;
    // An editor's manual run of the draft must not publish it.
    await h.run([enroll, ...wf.nodes], wf.connections, [{ json: lead('Z') }]).catch(() => undefined);
    expect((await rt.store.getCadence(CADENCE))?.activeVersion).toBe(1);
    const run = await h.runPublished([enroll, ...wf.nodes], wf.connections, [{ json: lead('B') }]);
    expect(out(run, 'Enroll', 0).map((j) => j.recordId)).toEqual(['B']);
    expect((await rt.store.getCadence(CADENCE))?.activeVersion).toBe(2);
    expect(await rt.getEnrollment(CADENCE, 'A')).toMatchObject({ status: 'stopped', reason: 'follow-up edited (V2)', position: 'bump' });
    expect(await rt.getEnrollment(CADENCE, 'B')).toMatchObject({ status: 'active', version: 2 });
  });

  it('V1 V2 a due batch reaching a step of a newer published graph deploys it, by the engine that serves the cadence', async () => {
    h = await n8nHarness(T0);
    let wf = sales({ bump: { delay: 4 } });
    await h.activate(wf.nodes, wf.connections);
    await h.run(enrollFlow().nodes, {}, [{ json: lead('A') }]);
    await h.advance(3 * DAY);
    const engine = await h.engine();
    const graph = engine.served.get(CADENCE)!.hash;
    wf = sales({ bump: { delay: 4, body: 'Reworded' } });
    // An execution the trigger started carries the hash of the graph it compiled; this one runs the newer graph.
    const [welcome] = wf.nodes.filter((n) => n.id === 's1');
    await h.runPublished([welcome, ...wf.nodes.filter((n) => n.id !== 's1')], wf.connections, [{ json: { cadenza: { cadenceId: CADENCE, graph, route: {} } } }]);
    expect((await engine.runtime.store.getCadence(CADENCE))?.activeVersion).toBe(2);
    expect(engine.served.get(CADENCE)!.hash).not.toBe(graph);
    expect(await engine.runtime.getEnrollment(CADENCE, 'A')).toMatchObject({ status: 'stopped', reason: 'follow-up edited (V2)' });
  });

  it('V3 deactivating the workflow halts the cadence: what fell due meanwhile never runs; a restart loses nothing (D1)', async () => {
    h = await n8nHarness(T0);
    const wf = sales();
    await h.activate(wf.nodes, wf.connections);
    await h.run(enrollFlow().nodes, {}, [{ json: lead('A') }, { json: lead('B') }]);
    await h.advance(0);
    // A restart (n8n activates with "init"): the timeout path that fell due while down runs.
    await h.deactivate();
    h.clock.advance(4 * DAY);
    await h.activate(wf.nodes, wf.connections, 'init');
    await h.advance(0);
    expect(h.seen['Send Email'].map((i) => (i.json.cadenza as { nodeId: string }).nodeId)).toEqual(['s1', 's1', 'bump', 'bump']);
    // Switched off by the user, then on again: nothing that fell due in between is sent.
    await h.run(enrollFlow().nodes, {}, [{ json: lead('C') }]);
    await h.advance(0);
    await h.deactivate();
    h.clock.advance(5 * DAY);
    await h.advance(0);
    await h.activate(wf.nodes, wf.connections, 'activate');
    await h.advance(5 * DAY);
    expect(h.seen['Send Email'].filter((i) => (i.json.cadenza as { recordId: string }).recordId === 'C').map((i) => (i.json.cadenza as { nodeId: string }).nodeId)).toEqual(['s1']);
    expect(await (await h.engine()).runtime.getEnrollment(CADENCE, 'C')).toMatchObject({ status: 'stopped', reason: 'halted by deactivation (V3)' });
  });

  it('D4 the credential test opens the store, and names what is wrong when it cannot', async () => {
    h = await n8nHarness(T0);
    const core = require('n8n-core');
    const loader = new core.PackageDirectoryLoader(join(__dirname, '../..'));
    await loader.loadAll();
    expect(Object.keys(loader.credentialTypes)).toEqual(['cadenzaApi']);
    const trigger = loader.nodeTypes.cadenceTrigger.type;
    const test = trigger.methods.credentialTest.cadenzaStoreTest;
    expect(await test.call({}, { id: '1', name: 'ok', type: 'cadenzaApi', data: { storePath: join(h.dir, 'other.db') } })).toMatchObject({ status: 'OK' });
    const bad = await test.call({}, { id: '2', name: 'bad', type: 'cadenzaApi', data: { storePath: '/proc/no-such-dir/cadenza.db' } });
    expect(bad).toMatchObject({ status: 'Error', message: expect.stringMatching(/Cannot open the Cadenza store/) });
    // A Postgres store nobody answers for: a clear error, quickly, and never the password.
    const down = await test.call({}, { id: '3', name: 'down', type: 'cadenzaApi', data: { storePath: 'postgres://cadenza:s3cret-pw@127.0.0.1:1/cadenza' } });
    expect(down).toMatchObject({ status: 'Error', message: expect.stringMatching(/Cannot open the Cadenza store: .*ECONNREFUSED/) });
    expect(JSON.stringify(down)).not.toContain('s3cret-pw');
  });

  it('C4 D4 bad parameters give a NodeOperationError naming the parameter', async () => {
    h = await n8nHarness(T0);
    const wf = sales({ s1: { channel: 'fax' }, trig: { view: 'a = = b', mode: 'view' } });
    await expect(h.activate(wf.nodes, wf.connections)).rejects.toThrow(/parameter "enrollment.view"/);
    await expect(h.run([{ id: 'x', name: 'Step', type: T.step, parameters: { channel: 'fax' } }], {}, [{ json: {} }])).rejects.toThrow(/C4 "Step" parameter "channel"/);
    await expect(h.run(enrollFlow('enroll', 'nope').nodes, {}, [{ json: lead('A') }])).rejects.toThrow(/Parameter "cadence": unknown cadence "nope"/);
  });

  it('F6 D4 an n8n expression in a cadence node\'s field is refused at activation, naming the node and the field: it would be sent as the text "=…"', async () => {
    h = await n8nHarness(T0);
    const wf = sales({ s1: { subject: '={{ $json.First_Name }} hi' } });
    await expect(h.activate(wf.nodes, wf.connections)).rejects.toThrow(/D4 "Welcome" field "subject" is an n8n expression: .*merge fields such as \{\{First_Name\}\}/);
    expect(await (await h.engine()).runtime.store.getCadence(CADENCE)).toBeUndefined(); // nothing published
  });
});
