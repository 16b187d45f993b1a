// Tracking links and replies, through a real HTTP server on loopback.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { cadenzaHttp } from '../../engine/http/server';
import { emailCadence, harness, lead, published, sentTo, DAY, type Harness } from '../helpers/harness';

let h: Harness;
let server: Server | undefined;
afterEach(async () => {
  await new Promise((r) => (server ? server.close(r) : r(null)));
  server = undefined;
  await h?.close();
});

async function serve(): Promise<string> {
  const handle = cadenzaHttp(h.rt);
  server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server!.address() as AddressInfo).port}`;
}

const branchOnOpen = () => emailCadence({
  nodes: [
    { id: 'e1', type: 'followUp', channel: 'email', template: { subject: 'Hi', body: '<p>See <a href="https://example.com/pricing?a=1&amp;b=2">pricing</a></p>' } },
    { id: 'b', type: 'outcomeBranch', outcomes: ['opened', 'clicked'] },
    { id: 'opened', type: 'followUp', channel: 'task', template: { subject: 'opened', body: '' } },
    { id: 'clicked', type: 'followUp', channel: 'call', template: { subject: 'clicked', body: '' } },
  ],
  edges: [{ from: 'trigger', to: 'e1' }, { from: 'e1', to: 'b' }, { from: 'b', port: 'opened', to: 'opened' }, { from: 'b', port: 'clicked', to: 'clicked' }],
});

describe('tracking links', () => {
  it('F8 the signed unsubscribe link unsubscribes the record; a forged one is refused', async () => {
    h = await harness();
    const base = await serve();
    await published(h, emailCadence());
    await h.rt.enroll('c1', [lead('A')], 'rep');
    await h.advance(0);
    const url = h.sent[0].email!.unsubscribeUrl.replace('http://localhost:1880', base);
    const forged = url.slice(0, -3) + 'abc';
    expect((await fetch(forged)).status).toBe(400);
    expect((await fetch(forged, { method: 'POST' })).status).toBe(400);
    // GET only asks (a link scanner must not unsubscribe anyone); POST is the one-click.
    const ask = await fetch(url);
    expect(await ask.text()).toMatch(/<form method="post">/);
    expect((await h.store.getRecord('Leads', 'A'))?.unsubscribed).toBe(false);
    const res = await fetch(url, { method: 'POST', body: 'List-Unsubscribe=One-Click' });
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/unsubscribed/);
    expect((await h.store.getRecord('Leads', 'A'))?.unsubscribed).toBe(true);
    // A second click (or the mail client's one-click after the page's button) answers the same and logs nothing more.
    const again = await fetch(url, { method: 'POST', body: 'List-Unsubscribe=One-Click' });
    expect([again.status, await again.text()]).toEqual([200, expect.stringMatching(/unsubscribed/)]);
    expect((await h.store.listAudit({ recordId: 'A' })).filter((a) => a.event === 'unsubscribed')).toHaveLength(1);
    await h.advance(3 * DAY);
    expect(sentTo(h, 'A')).toEqual(['e1']);
  });

  it('F2 F5 an open pixel records "opened" and a click redirects to the signed target and records "clicked"', async () => {
    h = await harness();
    const base = await serve();
    await published(h, branchOnOpen());
    await h.rt.enroll('c1', [lead('A'), lead('B')], 'rep');
    await h.advance(0);
    const html = (id: string) => h.sent.find((s) => s.recordId === id)!.email!.html.replaceAll('http://localhost:1880', base);
    const pixel = /<img src="([^"]+\.gif)"/.exec(html('A'))![1];
    const pix = await fetch(pixel);
    expect(pix.headers.get('content-type')).toBe('image/gif');
    const click = /href="([^"]+\/t\/click\/[^"]+)"/.exec(html('B'))![1];
    const r = await fetch(click, { redirect: 'manual' });
    expect(r.status).toBe(302);
    expect(r.headers.get('location')).toBe('https://example.com/pricing?a=1&b=2');
    await h.advance(DAY);
    expect(sentTo(h, 'A')).toEqual(['e1', 'opened']);
    expect(sentTo(h, 'B')).toEqual(['e1', 'clicked']);
  });
});

describe('replies by mail', () => {
  it('U1 U10 a reply is matched by In-Reply-To to its follow-up; an out-of-office is auto-replied', async () => {
    h = await harness();
    await published(h, emailCadence({ unenroll: { outcomes: ['replied'] } }));
    await h.rt.enroll('c1', [lead('A'), lead('B')], 'rep');
    await h.advance(0);
    const id = (r: string) => h.sent.find((s) => s.recordId === r)!.email!.messageId;
    expect(await h.rt.recordReply({ subject: 'Automatic reply: away', headers: { 'In-Reply-To': id('A'), 'Auto-Submitted': 'auto-replied' } })).toMatchObject({ outcome: 'auto-replied' });
    expect(await h.rt.recordReply({ subject: 'Re: Hi', references: `<other@x> ${id('B')}` })).toMatchObject({ outcome: 'replied', applied: true });
    expect(await h.rt.recordReply({ subject: 'Re: Hi', inReplyTo: '<cz.Zm9yZ2Vk.AAAAAAAAAAAAAAAA@x>' })).toBeNull();
    expect((await h.rt.getEnrollment('c1', 'A'))?.status).toBe('active');
    expect(await h.rt.getEnrollment('c1', 'B')).toMatchObject({ status: 'stopped', reason: 'outcome "replied" (U1)' });
  });

  it('U1 D3 a reply matched by its sender after a call came next (the performer set its own Message-ID) still lets the record go; it decides no branch', async () => {
    h = await harness();
    await published(h, emailCadence({
      unenroll: { outcomes: ['replied'] },
      nodes: [
        { id: 'welcome', type: 'followUp', channel: 'email', template: { subject: 'Hi', body: 'Hello' } },
        { id: 'call', type: 'followUp', channel: 'call', relativeTo: 'previous', template: { subject: 'Call', body: '' } },
        { id: 'bump', type: 'followUp', channel: 'email', delay: { amount: 2, unit: 'days' }, relativeTo: 'previous', template: { subject: 'Bump', body: 'Still there?' } },
      ],
      edges: [{ from: 'trigger', to: 'welcome' }, { from: 'welcome', to: 'call' }, { from: 'call', to: 'bump' }],
    }));
    await h.rt.enroll('c1', [lead('A')], 'rep');
    await h.advance(0);
    expect(sentTo(h, 'A')).toEqual(['welcome', 'call']);
    expect(await h.rt.recordReply({ subject: 'Re: Hi', from: 'Ann <A@example.com>' })).toMatchObject({ key: 'c1:A:1:welcome', outcome: 'replied' });
    expect(await h.rt.getEnrollment('c1', 'A')).toMatchObject({ status: 'stopped', reason: 'outcome "replied" (U1)' });
    await h.advance(5 * DAY);
    expect(sentTo(h, 'A')).toEqual(['welcome', 'call']);
  });
});
