// The sales-ready example on a real n8n 2.41.1 server: imported and published through n8n's REST API,
// fed through its webhooks, emails sent by n8n's own Send Email node to an SMTP sink, tracking links
// served by the Cadenza Tracking node on n8n's webhook server. Real time, so every wait polls with a
// generous limit and nothing asserts on durations. The tests run in order and share the server.
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { editAndPublish, eventually, exampleWorkflow, importAndPublish, postJson, startN8nServer, type N8nServer } from './server';

let s: N8nServer;
let wfId: string;
let cadence: string;
const key = (record: string, step = 'welcome') => `${cadence}:${record}:1:${step}`;
const enrollment = async (record: string) => (await s.store.findEnrollment(cadence, record))?.enrollment;
const outbox = (record: string) => s.store.getOutbox(key(record));
const postLead = (lead: Record<string, string>) => postJson(`${s.url}/webhook/lead`, lead);
const lead = (first: string, email: string) => ({ First_Name: first, Last_Name: 'Tester', Email: email, Company: `${first} Ltd` });

beforeAll(async () => {
  s = await startN8nServer();
  ({ id: wfId } = await importAndPublish(s, exampleWorkflow(s, 'sales-ready-lead.json')));
  cadence = `${wfId}:trig-sales`;
});

afterAll(async () => {
  if (process.env.CADENZA_N8N_KEEP_LOG) process.stderr.write(`n8n log: ${s?.logFile}\n`);
  await s?.close();
});

describe('n8n 2.41.1 server: the sales-ready example', () => {
  it("E2 F6 D5 E1 D4 the README's lead, posted to the webhook, enrolls by the view and its welcome email arrives through n8n's Send Email; a refused lead gets its reason, not a 500", async () => {
    const answer = await postLead({ First_Name: 'Ada', Last_Name: 'Lovelace', Email: 'ada@example.com', Company: 'Analytical Ltd' });
    expect(answer.status).toBe(200);
    expect(answer.json).toMatchObject({ recordId: 'ada@example.com', enrollments: [{ status: 'enrolled' }] });
    // E1 D4: a lead the engine refuses gets its reason back, not a bare 500 (the example answers from both outputs).
    const refused = await postLead({ First_Name: 'No email' });
    expect([refused.status, refused.json]).toMatchObject([200, { status: 'skipped', rule: 'D4' }]);
    const [mail] = await eventually(() => (s.sink.to('ada@example.com').length ? s.sink.to('ada@example.com') : undefined), 'the welcome email');
    expect(mail.subject).toBe('Ada, thanks for your interest');
    expect(mail.html).toContain('Thanks for reaching out about Analytical Ltd');
    // D5: delivered once the execution that carried it succeeded.
    await eventually(async () => (await outbox('ada@example.com'))?.status === 'done', 'the welcome to count as delivered');
    expect(await enrollment('ada@example.com')).toMatchObject({ status: 'active', version: 1, position: 'responded', executed: 1 });
  });

  it('F8 A1 the open pixel and the unsubscribe link reach the Tracking node at /webhook/<id>/t/…: opened moves the branch, the POST unsubscribes', async () => {
    const { html } = s.sink.to('ada@example.com')[0];
    const prefix = `${s.url}/webhook/${s.trackingWebhookId}/t/`;
    const pixel = /<img src="([^"]+)"/.exec(html)![1];
    const unsubscribe = /href="([^"]+\/t\/unsubscribe\/[^"]+)"/.exec(html)![1];
    expect(pixel.startsWith(`${prefix}open/`)).toBe(true);
    expect(unsubscribe.startsWith(`${prefix}unsubscribe/`)).toBe(true);

    const opened = await fetch(pixel);
    expect([opened.status, opened.headers.get('content-type')]).toEqual([200, 'image/gif']);
    // F2/F3: the branch took its "opened" output, so the case study is next.
    await eventually(async () => (await enrollment('ada@example.com'))?.position === 'glad', 'the opened branch');
    const stats = await s.store.cadenceStats(cadence);
    expect(stats.outcomes).toEqual(expect.arrayContaining([expect.objectContaining({ nodeId: 'welcome', outcome: 'opened', n: 1 })]));

    const ask = await fetch(unsubscribe);
    expect([ask.status, await ask.text()]).toEqual([200, expect.stringContaining('<form method="post">')]);
    expect((await s.store.getRecord('Leads', 'ada@example.com'))?.unsubscribed).toBe(false);
    expect((await fetch(unsubscribe, { method: 'POST', body: 'List-Unsubscribe=One-Click', headers: { 'content-type': 'application/x-www-form-urlencoded' } })).status).toBe(200);
    expect((await s.store.getRecord('Leads', 'ada@example.com'))?.unsubscribed).toBe(true);
    expect((await fetch(`${prefix}open/forged.token.gif`)).status).toBe(400);
  });

  it('D6 D2 D5 a Send Email the SMTP server refuses fails its execution; retried under the same key, the email lands once', async () => {
    s.sink.state.refusing = true;
    onTestFinished(() => void (s.sink.state.refusing = false));
    expect((await postLead(lead('Cy', 'cy@example.com'))).json).toMatchObject({ enrollments: [{ status: 'enrolled' }] });
    await eventually(async () => s.sink.refusedCount() > 0 && (await outbox('cy@example.com'))?.attempts, 'the first, refused attempt');
    const held = await outbox('cy@example.com');
    expect(held).toMatchObject({ status: 'pending' });
    // n8n shows the failed execution; the engine logged the failed hand-off under the step's key.
    const failedRuns = await eventually(async () => (await s.rest.call('GET', `/executions?filter=${encodeURIComponent(JSON.stringify({ workflowId: wfId, status: ['error'] }))}`)).results?.length, 'an error execution in n8n');
    expect(failedRuns).toBeGreaterThan(0);
    const holds = await eventually(async () => (await s.store.listAudit({ cadenceId: cadence })).filter((a) => a.event === 'waiting'), 'the hold in the why-log');
    expect(holds.every((a) => (a.data as { key?: string })?.key === key('cy@example.com'))).toBe(true);
    expect(holds[0].reason).toMatch(/451|rejected/);
    // D5: not executed while undelivered.
    expect(await enrollment('cy@example.com')).toMatchObject({ status: 'active', executed: 0 });
    expect(s.sink.to('cy@example.com')).toHaveLength(0);

    s.sink.state.refusing = false;
    await eventually(async () => (await outbox('cy@example.com'))?.status === 'done', 'the retried welcome to be delivered', 300_000);
    expect(s.sink.to('cy@example.com').map((m) => m.subject)).toEqual(['Cy, thanks for your interest']);
    expect((await outbox('cy@example.com'))!.attempts).toBeGreaterThan(1);
    expect(await enrollment('cy@example.com')).toMatchObject({ status: 'active', executed: 1, position: 'responded' });
  });

  it('V1 V2 editing Follow-up Steps and publishing deploys version 2: new leads get the edited email, enrolled leads stay on version 1, one waiting on an edited step stops; the click link reaches the Tracking node', async () => {
    // Ada opened her welcome and waits on "Opened: share a case study" (due in a day).
    expect(await enrollment('ada@example.com')).toMatchObject({ status: 'active', position: 'glad' });
    await editAndPublish(s, wfId, (n) => (n.name === 'Welcome email'
      ? { ...n, parameters: { ...n.parameters, subject: 'Welcome aboard, {{First_Name}}', body: '<p>Hi {{First_Name}}, <a href="https://acme.test/demo">book a demo</a>.</p>' } }
      : n.name === 'Opened: share a case study' ? { ...n, parameters: { ...n.parameters, subject: 'How {{Company}} could use us' } } : n));
    expect((await postLead(lead('Dee', 'dee@example.com'))).json).toMatchObject({ enrollments: [{ status: 'enrolled' }] });
    const [mail] = await eventually(() => (s.sink.to('dee@example.com').length ? s.sink.to('dee@example.com') : undefined), "the new lead's welcome");
    expect(mail.subject).toBe('Welcome aboard, Dee');
    expect((await s.store.getCadence(cadence))?.activeVersion).toBe(2);
    expect(await enrollment('dee@example.com')).toMatchObject({ version: 2, status: 'active' });
    // V1: what ran before the publish is untouched and the enrolled lead continues on its version.
    expect(await enrollment('cy@example.com')).toMatchObject({ version: 1, status: 'active', executed: 1 });
    expect(s.sink.to('cy@example.com')).toHaveLength(1);
    // V2: the step Ada waits on was edited, so her enrollment stops (resumable, R1).
    expect(await enrollment('ada@example.com')).toMatchObject({ status: 'stopped', reason: 'follow-up edited (V2)', version: 1 });

    const click = /href="([^"]+\/t\/click\/[^"]+)"/.exec(mail.html)![1];
    const clicked = await fetch(click, { redirect: 'manual' });
    expect([clicked.status, clicked.headers.get('location')]).toEqual([302, 'https://acme.test/demo']);
    await eventually(async () => (await s.store.cadenceStats(cadence)).outcomes.some((o) => o.outcome === 'clicked'), 'the click outcome');
  });

  it('D1 D5 a welcome that was due while n8n was down is sent once after the restart; enrollments carry on (no V3 halt on restart)', async () => {
    s.sink.state.refusing = true;
    onTestFinished(() => void (s.sink.state.refusing = false));
    const before = s.sink.refusedCount();
    await postLead(lead('Eve', 'eve@example.com'));
    await eventually(async () => s.sink.refusedCount() > before && (await outbox('eve@example.com'))?.status === 'pending', 'the refused welcome');
    await s.stop();
    s.sink.state.refusing = false;
    await s.restart();
    await eventually(async () => (await outbox('eve@example.com'))?.status === 'done', 'the welcome after the restart', 300_000);
    expect(s.sink.to('eve@example.com').map((m) => m.subject)).toEqual(['Welcome aboard, Eve']);
    expect(await enrollment('dee@example.com')).toMatchObject({ status: 'active' });
    expect((await s.store.getCadence(cadence))?.status).toBe('active');
    // The server serves webhooks again: a new lead after the restart is welcomed too.
    await postLead(lead('Fay', 'fay@example.com'));
    await eventually(() => s.sink.to('fay@example.com').length === 1, "the next lead's welcome");
  });
});
