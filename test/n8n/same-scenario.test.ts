// The same scenario through both adapters gives the same timeline of actions and the same final
// enrollment states: the example cadence as a Node-RED flow (in the real Node-RED runtime) and as an
// n8n workflow (through n8n-core's engine), driven by one scenario file.
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { durationMs } from '../../engine/model/duration';
import { VirtualClock } from '../../engine/runtime/clock';
import { n8nHarness, T } from '../helpers/n8n-harness';
import { hostStoreSpec } from '../helpers/harness';

/* eslint-disable @typescript-eslint/no-require-imports, @typescript-eslint/no-explicit-any */
const root = join(__dirname, '../..');
const scenario = JSON.parse(readFileSync(join(root, 'test/fixtures/scenario.sales.json'), 'utf8'));
const start = Date.parse(scenario.start);
type Line = string;

const flush = async () => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

async function viaNodeRed(): Promise<{ timeline: Line[]; endings: Line[] }> {
  const helper = require('node-red-node-test-helper');
  helper.init(require.resolve('node-red'));
  const dir = mkdtempSync(join(tmpdir(), 'cadenza-both-nr-'));
  const clock = new VirtualClock(start);
  const flow = JSON.parse(readFileSync(join(root, 'flows/node-red/sales-ready-lead.json'), 'utf8')).filter((n: any) => n.type.startsWith('cadenza-'));
  // The performers (e-mail, debug) become helper nodes that record what reaches them.
  const performers = new Set(flow.flatMap((n: any) => (n.type === 'cadenza-followup' ? n.wires[0] : [])));
  for (const id of performers) flow.push({ id, type: 'helper', z: 'tab-sales' });
  flow.push({ id: 'tab-sales', type: 'tab', label: 'sales' });
  const storePath = await hostStoreSpec(dir);
  for (const n of flow) if (n.type === 'cadenza-config') n.storePath = storePath;
  flow.push({ id: 'up', type: 'cadenza-enroll', z: 'tab-sales', cadence: 'trig-sales', action: 'update', wires: [[], []] });
  const nodes = ['cadenza-config', 'cadenza-trigger', 'cadenza-followup', 'cadenza-branch', 'cadenza-check', 'cadenza-enroll', 'cadenza-outcome'].map((n) => require(`../../dist/nodes/node-red/${n}.js`));
  helper.settings({ cadenza: { clock, manualTick: true }, userDir: dir });
  await new Promise<void>((r) => helper.startServer(r));
  await helper.load(nodes, flow);
  const seen: any[] = [];
  for (const id of performers) helper.getNode(id).on('input', (m: any) => seen.push({ at: clock.now(), ...m.cadenza }));
  const host = helper.getNode('cadenza-engine').host;
  await flush();
  await host.settled();
  try {
    for (const r of scenario.records) helper.getNode('up').receive({ payload: r });
    await flush();
    await host.settled(); // every record saved and enrolled (store I/O takes real time on Postgres)
    await drive(host.runtime, clock, seen, flush);
    const rt = host.runtime;
    const endings = (await rt.store.listEnrollments({ cadenceId: 'trig-sales' })).map((e: any) => `${e.enrollment.recordId} ${e.enrollment.status} ${e.enrollment.reason}`);
    return { timeline: seen.map(line), endings };
  } finally {
    await helper.unload();
    await helper.stopServer();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function viaN8n(): Promise<{ timeline: Line[]; endings: Line[] }> {
  const wf = JSON.parse(readFileSync(join(root, 'flows/n8n/sales-ready-lead.json'), 'utf8'));
  const h = await n8nHarness(start);
  try {
    // Built-in performer nodes (Send Email, No Op) and the webhook side are not installable here: the
    // cadence nodes are the example's, the performers are Collect nodes under the same names.
    const nodes = wf.nodes
      .filter((n: any) => n.type.includes('cadenza') || n.type === 'n8n-nodes-base.emailSend' || n.type === 'n8n-nodes-base.noOp')
      .filter((n: any) => !n.type.endsWith('cadenzaEnroll') && !n.type.endsWith('cadenzaRecordOutcome'))
      .map((n: any) => (n.type.startsWith('n8n-nodes-base.') ? { id: n.id, name: n.name, type: T.collect } : n));
    await h.activate(nodes, wf.connections);
    const engine = await h.engine();
    for (const r of scenario.records) await engine.runtime.upsertRecord('Leads', r, 'n8n');
    const timeline: any[] = [];
    const clock = h.clock;
    const tick = async () => {
      const before = h.log.length;
      await h.advance(0);
      for (const i of h.log.slice(before)) timeline.push({ ...(i.json as any).cadenza, at: clock.now() });
    };
    await drive(engine.runtime, clock, timeline, async () => undefined, tick);
    const endings = (await engine.runtime.store.listEnrollments({ cadenceId: 'wf1:trig-sales' })).map((e: any) => `${e.enrollment.recordId} ${e.enrollment.status} ${e.enrollment.reason}`);
    return { timeline: timeline.map(line), endings };
  } finally {
    await h.close();
  }
}

const line = (s: any): Line => `${new Date(s.at).toISOString()} ${s.recordId} ${s.nodeId} ${s.channel}`;

/** Plays the scenario's steps against a runtime: advance virtual time, record outcomes by key. */
async function drive(rt: any, clock: VirtualClock, seen: any[], settle: () => Promise<void>, tick?: () => Promise<void>) {
  const step = async (until: number) => {
    // Move due time by due time so each action is seen at the instant it was due.
    for (;;) {
      if (tick) await tick();
      else {
        await rt.tick();
        await settle();
      }
      const next = await rt.store.nextDue();
      if (next === null || next > until) break;
      clock.set(Math.max(next, clock.now()));
    }
    if (clock.now() < until) clock.set(until);
  };
  await step(clock.now());
  for (const s of scenario.steps) {
    if (s.advance) await step(clock.now() + durationMs(s.advance));
    if (s.outcome) {
      const action = seen.find((x) => x.recordId === s.outcome.record && x.nodeId === s.outcome.followUp);
      await rt.recordOutcome({ key: action.key, outcome: s.outcome.outcome });
    }
  }
}

describe('one scenario, two hosts', () => {
  it('S1 E2 E3 F3 F5 the Node-RED flow and the n8n workflow of the same cadence give the same timeline and endings', async () => {
    const nr = await viaNodeRed();
    const n8n = await viaN8n();
    expect(nr.timeline.length).toBeGreaterThanOrEqual(7);
    expect(n8n.timeline).toEqual(nr.timeline);
    expect(n8n.endings.sort()).toEqual(nr.endings.sort());
    expect(nr.endings.some((e) => e.startsWith('bot@junk.example'))).toBe(false); // E3: never enrolled
    expect(nr.timeline.filter((l) => l.includes('ada@example.com')).map((l) => l.split(' ')[2])).toEqual(['welcome', 'call-replied']);
  });
});
