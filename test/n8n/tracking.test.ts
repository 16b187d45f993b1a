// The Cadenza Tracking node on n8n's webhook path: a small HTTP server stands in for n8n's webhook
// server (it routes /webhook/<webhookId>/t/:kind/:token to the node, as n8n does for a dynamic path),
// and each request runs the node through n8n-core's WebhookContext. Emails sent by the n8n cadence
// carry links there; opening, clicking and unsubscribing reach the engine; forged links record nothing.
import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { n8nHarness, T, type N8nHarness } from '../helpers/n8n-harness';

/* eslint-disable @typescript-eslint/no-require-imports */
const wf = require('n8n-workflow') as typeof import('n8n-workflow');
const T0 = Date.parse('2026-03-02T08:00:00Z');
const node = { id: 'trk', name: 'Cadenza Tracking', type: T.tracking, webhookId: 'wh-7f3a' };

let h: N8nHarness | undefined;
let server: Server | undefined;
afterEach(async () => {
  await h?.close();
  await new Promise((r) => (server ? server.close(r) : r(null)));
});

describe('n8n tracking links', () => {
  it('F8 A1 the Tracking node serves the open pixel, click redirect and unsubscribe of n8n-sent emails; a forged link records nothing', async () => {
    const answers: unknown[] = [];
    server = createServer((req, res) => {
      const m = /^\/webhook\/wh-7f3a\/t\/([^/]+)\/([^/?]+)$/.exec(new URL(req.url!, 'http://n8n').pathname);
      if (!m) return void res.writeHead(404).end();
      Object.assign(req, { params: { kind: m[1], token: m[2] }, query: {} });
      h!.webhook(node, req, res).then((a) => answers.push(a), (e) => res.writeHead(500).end(String(e)));
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}/webhook`;
    // n8n's own URL for the node: its webhookId, then the path. The credential's Public URL is that prefix.
    const path = wf.NodeHelpers.getNodeWebhookUrl(base, 'wf', { ...node, typeVersion: 1, position: [0, 0], parameters: {} }, 't/:kind/:token', false);
    expect(path).toBe(`${base}/wh-7f3a/t/:kind/:token`);
    h = await n8nHarness(T0, { baseUrl: `${base}/wh-7f3a` });

    const c = (n: string) => ({ node: n, type: 'main', index: 0 });
    await h.activate([
      { id: 'trig', name: 'Cadence Trigger', type: T.trigger, parameters: { module: 'Leads', cadenceName: 'Tracked' } },
      { id: 's1', name: 'Welcome', type: T.step, parameters: { channel: 'email', subject: 'Hi {{First_Name}}', body: '<p>See <a href="https://acme.example/case">our case study</a></p>' } },
      { id: 'mail', name: 'Send Email', type: T.collect },
    ], { 'Cadence Trigger': { main: [[c('Welcome')]] }, Welcome: { main: [[c('Send Email')], []] } });
    const engine = await h.engine();
    await engine.runtime.enroll('wf1:trig', [{ id: 'A', First_Name: 'Ann', Email: 'a@example.com' }], 'rep');
    await h.advance(0);
    const html = String(h.seen['Send Email'][0].json.html);
    const pixel = /<img src="([^"]+\.gif)"/.exec(html)![1];
    const click = /href="([^"]+\/t\/click\/[^"]+)"/.exec(html)![1];
    const unsubscribe = String(h.seen['Send Email'][0].json.unsubscribeUrl);
    for (const link of [pixel, click, unsubscribe]) expect(link.startsWith(`${base}/wh-7f3a/t/`)).toBe(true);

    const opened = await fetch(pixel);
    expect(opened.status).toBe(200);
    expect(opened.headers.get('content-type')).toBe('image/gif');
    const clicked = await fetch(click, { redirect: 'manual' });
    expect([clicked.status, clicked.headers.get('location')]).toEqual([302, 'https://acme.example/case']);
    const outcomes = async () => (await engine.runtime.cadenceReport('wf1:trig')).followUps.flatMap((f: { outcomes?: Record<string, { count: number }> }) => Object.entries(f.outcomes ?? {}).map(([k, v]) => [k, v.count]));
    expect(await outcomes()).toEqual(expect.arrayContaining([['opened', 1], ['clicked', 1]]));

    // Unsubscribe: the GET only asks (link scanners), the POST does it (F8).
    const ask = await fetch(unsubscribe);
    expect([ask.status, await ask.text()]).toEqual([200, expect.stringContaining('<form method="post">')]);
    expect((await engine.runtime.store.getRecord('Leads', 'A'))?.unsubscribed).toBe(false);
    expect((await fetch(unsubscribe, { method: 'POST', body: 'List-Unsubscribe=One-Click' })).status).toBe(200);
    expect((await engine.runtime.store.getRecord('Leads', 'A'))?.unsubscribed).toBe(true);

    // Forged or foreign links record nothing.
    const forged = pixel.replace(/\.([A-Za-z0-9_-]+)\.gif$/, '.AAAA$1.gif');
    expect((await fetch(forged)).status).toBe(400);
    expect((await fetch(`${base}/wh-7f3a/t/nope/abc.def`)).status).toBe(404);
    expect(await outcomes()).toEqual(expect.arrayContaining([['opened', 1], ['clicked', 1]]));
    expect(answers.every((a) => JSON.stringify(a) === '{"noWebhookResponse":true}')).toBe(true);
  });
});
