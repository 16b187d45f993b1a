// The Node-RED engine node carries the settings `cadenza serve` and the n8n credential take: approved
// WhatsApp templates (C4) and the retry window (D6), besides the edition limits. In the real Node-RED
// runtime (node-red-node-test-helper), on a virtual clock.
import { mkdtempSync, rmSync } from 'node:fs';
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
});
