// The Node-RED engine node carries the settings `cadenza serve` and the n8n credential take: approved
// WhatsApp templates (C4), the retry window (D6), contact limits (F13) and the user directory (F6, F7),
// besides the edition limits. In the real Node-RED runtime (node-red-node-test-helper), on a virtual clock.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../engine/runtime/clock';

/* eslint-disable @typescript-eslint/no-require-imports */
const helper = require('node-red-node-test-helper');
const NODES = ['cadenza-config', 'cadenza-trigger', 'cadenza-followup'].map((n) => require(`../../dist/nodes/node-red/${n}.js`));
let dir: string;

beforeAll(() => helper.init(require.resolve('node-red')));
afterEach(async () => {
  await helper.unload();
  await helper.stopServer();
  rmSync(dir, { recursive: true, force: true });
});

const flush = async () => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

describe('Node-RED engine node settings', () => {
  it('C4 D6 approved WhatsApp templates refuse any other at deploy, with a red status naming C4', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cadenza-nrcfg-'));
    helper.settings({ cadenza: { clock: new VirtualClock(Date.parse('2026-03-02T08:00:00Z')), manualTick: true }, userDir: dir });
    await new Promise<void>((r) => helper.startServer(r));
    const cfg = { id: 'cfg', type: 'cadenza-config', storePath: join(dir, 'c.db'), whatsappTemplates: 'welcome_v1, reminder_v2', retryHours: 12 };
    const flow = (templateId: string) => [
      cfg,
      { id: 't1', type: 'cadenza-trigger', engine: 'cfg', name: 'WA', module: 'Leads', mode: 'manual', wires: [['s1']] },
      { id: 's1', type: 'cadenza-followup', name: 'Hello', channel: 'whatsapp', templateId, wires: [[], []] },
    ];
    await helper.load(NODES, flow('promo_v9'));
    const host = helper.getNode('cfg').host;
    await flush();
    await host.settled();
    expect(await host.runtime.store.getCadence('t1')).toBeUndefined(); // refused: nothing published
    const statuses = helper.getNode('s1').status.args.map((a: unknown[]) => a[0]);
    expect(statuses.at(-1)).toMatchObject({ fill: 'red', text: expect.stringMatching(/C4 templateId/) });
    // The retry window reaches the runtime's delivery policy.
    expect(host.runtime.deliveryPolicy.holdMs).toBe(12 * 3_600_000);
  });

  it('F13 F6 contact limits and the user directory set on the engine node hold a second email to the next day and merge the owner\'s signature', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cadenza-nrcfg-'));
    const clock = new VirtualClock(Date.parse('2026-03-02T08:00:00Z')); // a Monday
    helper.settings({ cadenza: { clock, manualTick: true }, userDir: dir });
    await new Promise<void>((r) => helper.startServer(r));
    const cfg = {
      id: 'cfg', type: 'cadenza-config', storePath: join(dir, 'c.db'),
      contactLimits: '[{"channel": "email", "max": 1, "days": 1}]',
      userDirectory: '{"u1": {"name": "Ann Lee", "signature": "<p>-- Ann, Sales</p>"}}',
    };
    await helper.load(NODES, [
      cfg,
      { id: 't1', type: 'cadenza-trigger', engine: 'cfg', name: 'Two emails', module: 'Leads', mode: 'manual', wires: [['s1']] },
      { id: 's1', type: 'cadenza-followup', name: 'Hello', channel: 'email', subject: 'Hi', body: '<p>Hello</p>{{{Owner.signature}}}', wires: [['out'], ['s2']] },
      { id: 's2', type: 'cadenza-followup', name: 'Again', channel: 'email', delay: 1, delayUnit: 'hours', subject: 'Again', body: 'Again', wires: [['out'], []] },
      { id: 'out', type: 'helper' },
    ]);
    const host = helper.getNode('cfg').host;
    await flush();
    await host.settled();
    const got: Record<string, any>[] = [];
    helper.getNode('out').on('input', (msg: Record<string, any>) => got.push(msg));
    await host.runtime.enroll('t1', [{ id: 'A', Email: 'a@example.com', Owner: 'u1' }], 'rep');
    await host.runtime.tick();
    await flush();
    expect(got).toHaveLength(1);
    expect(got[0].payload).toContain('<p>-- Ann, Sales</p>'); // from the directory, as HTML
    clock.set(clock.now() + 2 * 3_600_000);
    await host.runtime.tick();
    await flush();
    expect(got).toHaveLength(1); // held: one email a day to this person
    expect(await host.runtime.getEnrollment('t1', 'A')).toMatchObject({ status: 'active', heldBy: 'F13' });
    clock.set(Date.parse('2026-03-03T08:00:00Z'));
    await host.runtime.tick();
    await flush();
    expect(got.map((m) => m.topic)).toEqual(['Hi', 'Again']);
  });

  it('F13 F7 a bad contact limit or user directory keeps the engine from starting and says which field and rule, in the log and on the cadence nodes', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cadenza-nrcfg-'));
    helper.settings({ cadenza: { clock: new VirtualClock(Date.parse('2026-03-02T08:00:00Z')), manualTick: true }, userDir: dir });
    await new Promise<void>((r) => helper.startServer(r));
    const cfg = { id: 'cfg', type: 'cadenza-config', storePath: join(dir, 'c.db'), contactLimits: '[{"max": 3, "days": 0}]', userDirectory: '{"u1": {"email": "not an address"}}' };
    await helper.load([...NODES, require('../../dist/nodes/node-red/cadenza-enroll.js')], [cfg, { id: 't1', type: 'cadenza-trigger', engine: 'cfg', name: 'T', module: 'Leads', mode: 'manual', wires: [[]] },
      { id: 'en', type: 'cadenza-enroll', cadence: 't1', action: 'enroll', wires: [['ok'], ['skipped']] }, { id: 'ok', type: 'helper' }, { id: 'skipped', type: 'helper' }]);
    await flush();
    // A web form wired to the enroll node gets an answer on "skipped" (nothing stored), not a hang.
    const answered = new Promise<Record<string, any>>((r) => helper.getNode('skipped').on('input', r));
    helper.getNode('en').receive({ payload: { id: 'L1', Email: 'l1@example.com' } });
    expect((await answered).payload).toMatchObject({ status: 'skipped', rule: 'D1', reason: expect.stringMatching(/^nothing was stored: 2 bad engine settings/) });
    const engine = helper.getNode('cfg');
    expect(engine.host).toBeUndefined();
    const logged = engine.error.args.map((a: unknown[]) => String(a[0])).join('\n');
    expect(logged).toMatch(/2 bad engine settings/);
    expect(logged).toMatch(/F13 contactLimits\[0\]\.days: must be a whole number of days, 1 to 90/);
    expect(logged).toMatch(/F7 users\.u1\.email: must be an email address/);
    expect(existsSync(join(dir, 'c.db'))).toBe(false); // refused before the store was opened
    // The helper's status spy is shared by every node: the trigger's own calls are those made on it.
    const spy = helper.getNode('t1').status;
    const status = spy.args.filter((_: unknown, i: number) => spy.thisValues[i]?.id === 't1').map((a: unknown[]) => a[0]).at(-1);
    expect(status).toMatchObject({ fill: 'red', text: expect.stringMatching(/contactLimits/) });
  });
});
