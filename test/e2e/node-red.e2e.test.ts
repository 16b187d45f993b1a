// End to end: a real Node-RED process with the package installed in its user directory, the example
// flow deployed through the Admin API, a web form posted, emails arriving at a real SMTP server on
// loopback, a reply taking the reply branch, an un-enrolled lead getting nothing more, and a restart
// mid-cadence losing and doubling nothing. Time is a file clock the test moves.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/free-port';

/* eslint-disable @typescript-eslint/no-require-imports */
const env = require('../../scripts/dev-env.js');

const T0 = Date.parse('2026-03-02T10:00:00Z'); // a Monday
const DAY = 86_400_000;

for (const version of ['node-red', 'node-red-5']) describe(`${version} ${require(`${version}/package.json`).version} end to end`, () => {
  let dir: string;
  let port: number;
  let sink: { port: number; messages: Record<string, any>[]; slow(ms: number): void; answering: string[]; waitFor(p: (m: Record<string, any>[]) => boolean, ms?: number): Promise<unknown>; close(): Promise<void> };
  let red: ChildProcess | null = null;
  const clockFile = () => join(dir, 'clock.txt');
  const setClock = (ms: number) => writeFileSync(clockFile(), String(ms));
  const url = (p: string) => `http://127.0.0.1:${port}${p}`;
  const post = async (p: string, body: unknown) => {
    const r = await fetch(url(p), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    return { status: r.status, body: await r.json().catch(() => null) };
  };
  /** The engine's own record, read straight from the SQLite file the running Node-RED writes. */
  const enrollment = (id: string) => {
    const db = new DatabaseSync(join(dir, 'cadenza.db'), { readOnly: true });
    try {
      const row = db.prepare("SELECT json_set(state, '$.status', status, '$.reason', reason, '$.recordId', record_id) AS state FROM enrollments WHERE id = ?").get(`trig-sales:${id}`) as { state: string } | undefined;
      return row ? JSON.parse(row.state) : undefined;
    } finally {
      db.close();
    }
  };
  const cadenceStatus = () => {
    try {
      const db = new DatabaseSync(join(dir, 'cadenza.db'), { readOnly: true });
      try {
        return (db.prepare("SELECT status FROM cadences WHERE id = 'trig-sales'").get() as { status: string } | undefined)?.status;
      } finally {
        db.close();
      }
    } catch {
      return undefined;
    }
  };
  const waitUntil = async (what: string, fn: () => boolean, ms = 15000) => {
    const until = Date.now() + ms;
    while (!fn()) {
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  async function startRed() {
    red = env.startNodeRed({ userDir: dir, port, settingsFile: join(dir, 'settings.js'), stdio: 'ignore', version });
    await env.waitForHttp(url('/settings'), undefined, red);
  }
  async function stopRed(signal: NodeJS.Signals = 'SIGTERM') {
    const r = red!;
    red = null;
    await new Promise((done) => {
      r.once('exit', done);
      r.kill(signal);
    });
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cadenza-e2e-'));
    env.prepareUserDir(dir);
    sink = await env.startSmtpSink(0);
    port = await freePort();
    setClock(0);
    writeFileSync(join(dir, 'settings.js'), `module.exports = {
      uiPort: ${port},
      flowFile: 'flows.json',
      credentialSecret: 'e2e',
      logging: { console: { level: 'warn' } },
      cadenza: { clock: require(${JSON.stringify(join(__dirname, '../fixtures/file-clock.js'))})(${JSON.stringify(join(dir, 'clock.txt'))}, ${T0}) },
    };\n`);
    writeFileSync(join(dir, 'flows.json'), '[]');
    await startRed();
  }, 60_000);

  afterAll(async () => {
    if (red) await stopRed('SIGKILL');
    await sink?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('D1 E2 F2 U1 U5 a web form enrolls leads, mails arrive over SMTP, a reply takes its branch, an un-enrolled lead gets nothing, a restart loses nothing', async () => {
    // Deploy the example flow through the Admin API, as the editor's Deploy button does.
    const flows = env.exampleFlows({ smtpPort: sink.port, pollMs: 50 }).filter((n: any) => n.z === 'tab-sales' || n.id === 'tab-sales' || n.type === 'cadenza-config');
    const deploy = await fetch(url('/flows'), { method: 'POST', headers: { 'Content-Type': 'application/json', 'Node-RED-Deployment-Type': 'full' }, body: JSON.stringify(flows) });
    expect(deploy.status).toBe(204);
    await waitUntil('the cadence to be published', () => cadenceStatus() === 'active');

    // The web form: four leads.
    for (const name of ['ada', 'grace', 'alan', 'edsger']) {
      const r = await post('/lead', { First_Name: name, Last_Name: 'X', Email: `${name}@example.com`, Company: `${name} Co` });
      expect(r.status).toBe(200);
      expect(r.body.enrollments[0]).toMatchObject({ status: 'enrolled' });
    }
    const bad = await post('/lead', { First_Name: 'no email' });
    expect(bad.body).toMatchObject({ status: 'skipped', rule: 'D4' });
    await sink.waitFor((m) => m.length === 4);
    const welcome = (who: string) => sink.messages.find((m) => m.to === `${who}@example.com`)!;
    expect(welcome('ada').subject).toBe('ada, thanks for your interest');
    expect(welcome('ada').html).toContain('ada Co');
    expect(welcome('ada').headers.list?.unsubscribe?.url).toMatch(/\/cadenza\/t\/unsubscribe\//);
    expect(new Set(sink.messages.map((m) => m.messageId)).size).toBe(4);

    // ada replies (matched by In-Reply-To), alan opens (the pixel on Node-RED's HTTP server), grace is un-enrolled.
    const reply = await post('/reply', { subject: 'Re: thanks', headers: { 'in-reply-to': welcome('ada').messageId } });
    expect(reply.body).toMatchObject({ outcome: 'replied', applied: true });
    const pixel = /<img src="([^"]+\.gif)"/.exec(welcome('alan').html)![1];
    expect((await fetch(pixel)).headers.get('content-type')).toBe('image/gif');
    expect((await post('/unenroll', { id: 'grace@example.com' })).body).toMatchObject({ status: 'stopped' });
    await waitUntil('the reply branch', () => enrollment('ada@example.com')?.status === 'completed');
    expect(enrollment('ada@example.com').last.nodeId).toBe('call-replied'); // F2: the reply path ran

    // Half a day later nothing new; then Node-RED goes down before alan's case study (due on day 1) is sent.
    setClock(DAY / 2);
    await waitUntil('the scheduler', () => enrollment('alan@example.com')?.position === 'glad');
    await stopRed('SIGKILL');
    setClock(4 * DAY); // days pass while it is down: the case study and the bumps fall due
    await startRed();
    await sink.waitFor((m) => m.filter((x) => x.to === 'alan@example.com').length === 2 && m.filter((x) => x.to === 'edsger@example.com').length === 2);
    const to = (who: string) => sink.messages.filter((m) => m.to === `${who}@example.com`).map((m) => m.subject);
    expect(to('alan')).toEqual(['alan, thanks for your interest', 'A case study for alan Co']);
    expect(to('edsger')).toEqual(['edsger, thanks for your interest', 'Re: edsger, thanks for your interest']);
    expect(to('grace')).toEqual(['grace, thanks for your interest']); // un-enrolled: nothing more
    expect(to('ada')).toEqual(['ada, thanks for your interest']);
    // D5: a mail counts as sent when its Complete node confirms it, a moment after the sink has it; the
    // call after the bump counts from that moment, so let it be recorded before time moves on.
    await waitUntil('the bump to be confirmed', () => enrollment('edsger@example.com')?.executed === 2);
    // Later still, nothing is sent twice.
    setClock(10 * DAY);
    await waitUntil('edsger to finish', () => enrollment('edsger@example.com')?.status === 'completed');
    expect(sink.messages).toHaveLength(6);
    expect(new Set(sink.messages.map((m) => m.messageId)).size).toBe(6);
  }, 120_000);

  it('D5 D6 an e-mail node whose SMTP relay refuses: the step waits, is retried under its key, and lands once after recovery', async () => {
    // The example flow confirms deliveries: a Complete node on the e-mail node feeds Record Outcome (delivered),
    // a Catch node feeds Record Outcome (failed).
    const before = sink.messages.length;
    setClock(20 * DAY);
    sink.refuse(2);
    const r = await post('/lead', { First_Name: 'barbara', Last_Name: 'L', Email: 'barbara@example.com', Company: 'Liskov Co' });
    expect(r.body.enrollments[0]).toMatchObject({ status: 'enrolled' });
    await waitUntil('the relay to turn the welcome email away', () => sink.refused >= 1);
    await waitUntil('the refusal to be recorded', () => enrollment('barbara@example.com')?.wait === 'delivery', 60_000);
    // Not executed, not moved on: the welcome is held for its performer.
    expect(enrollment('barbara@example.com')).toMatchObject({ status: 'active', position: 'welcome', executed: 0, last: { delivery: 'queued' } });
    // Retries come with backoff on the engine clock; the relay turns one more away, then accepts.
    // Real-time waits are generous: on a loaded machine a refusal can reach the engine only when its
    // hand-off times out (30 s) instead of through the Catch node at once; engine time still moves by hand.
    for (let t = 1; sink.refused < 2 && t <= 60; t++) {
      setClock(20 * DAY + t * 60_000);
      await new Promise((res) => setTimeout(res, 1000));
    }
    expect(sink.refused).toBe(2);
    setClock(20 * DAY + 60 * 60_000);
    await sink.waitFor((m) => m.some((x) => x.to === 'barbara@example.com'), 90_000);
    await waitUntil('the delivery to be confirmed', () => enrollment('barbara@example.com')?.executed === 1, 60_000);
    expect(enrollment('barbara@example.com')).toMatchObject({ status: 'active', position: 'responded', wait: 'outcome', last: { delivery: 'delivered' } });
    setClock(20 * DAY + 2 * 60 * 60_000);
    await new Promise((res) => setTimeout(res, 500));
    const got = sink.messages.slice(before).filter((m) => m.to === 'barbara@example.com');
    expect(got.map((m) => m.subject)).toEqual(['barbara, thanks for your interest']);
  }, 240_000);

  it('D2 D5 a full deploy, and then a SIGTERM, while the relay is still answering: each email in flight is sent once, not again after the lease', async () => {
    const before = sink.messages.length;
    const to = (who: string) => sink.messages.slice(before).filter((m) => m.to === `${who}@example.com`);
    setClock(30 * DAY);
    const flows = env.exampleFlows({ smtpPort: sink.port, pollMs: 50 }).filter((n: any) => n.z === 'tab-sales' || n.id === 'tab-sales' || n.type === 'cadenza-config');
    const redeploy = () => fetch(url('/flows'), { method: 'POST', headers: { 'Content-Type': 'application/json', 'Node-RED-Deployment-Type': 'full' }, body: JSON.stringify(flows) });
    // The relay takes 3 s to answer 250: the e-mail nodes are mid-send when the deploy closes every node.
    sink.slow(3000);
    for (const who of ['dana', 'erin']) expect((await post('/lead', { First_Name: who, Last_Name: 'D', Email: `${who}@example.com`, Company: `${who} Co` })).status).toBe(200);
    await waitUntil('the relay to be reading both welcomes', () => ['dana', 'erin'].every((w) => sink.answering.includes(`${w}@example.com`)));
    expect((await redeploy()).status).toBe(204);
    await sink.waitFor(() => to('dana').length === 1 && to('erin').length === 1, 30_000);
    // Read by the closing engine from the e-mail node itself (its Complete node was closed by the deploy).
    await waitUntil('the deliveries to be recorded', () => ['dana', 'erin'].every((w) => enrollment(`${w}@example.com`)?.last?.delivery === 'delivered'), 30_000);
    // The same with a stop (systemd and docker send SIGTERM), once the redeployed form answers again.
    let form = 0;
    for (let i = 0; i < 300 && form !== 200; i++) {
      form = (await post('/lead', { First_Name: 'fay', Last_Name: 'D', Email: 'fay@example.com', Company: 'Fay Co' })).status;
      if (form === 404) await new Promise((res) => setTimeout(res, 100));
    }
    expect(form).toBe(200);
    await waitUntil('the relay to be reading fay\'s welcome', () => sink.answering.includes('fay@example.com'));
    await stopRed('SIGTERM');
    sink.slow(0);
    expect(to('fay')).toHaveLength(1);
    // Each verdict was written before the engine closed: delivered, nothing left leased to go out again.
    for (const who of ['dana', 'erin', 'fay']) expect(enrollment(`${who}@example.com`)).toMatchObject({ executed: 1, last: { delivery: 'delivered' } });
    await startRed();
    setClock(30 * DAY + 30 * 60_000); // past any hand-off lease (11 minutes)
    await new Promise((res) => setTimeout(res, 2000));
    const got = sink.messages.slice(before).map((m) => m.to).filter((t) => /^(dana|erin|fay)@/.test(t));
    expect(got.sort()).toEqual(['dana@example.com', 'erin@example.com', 'fay@example.com']);
  }, 180_000);
});
