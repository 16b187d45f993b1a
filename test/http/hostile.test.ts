// Hostile input at the HTTP edge (issue 14): deep nesting, wrong types, tokens on the wrong route,
// oversized bodies and floods get a clear 4xx naming the field and rule, never a 500, and change nothing.
import { createServer, type Server } from 'node:http';
import fc from 'fast-check';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cadenzaHttp } from '../../engine/http/server';
import { validateDefinition } from '../../engine/model/validate';
import { emailCadence, harness, lead, type Harness } from '../helpers/harness';

let h: Harness;
let app: Server;
const keys: Record<string, string> = {};

beforeEach(async () => {
  h = await harness();
  const handle = cadenzaHttp(h.rt, { maxBodyBytes: 1024 * 1024 });
  app = createServer((req, res) => void handle(req, res));
  for (const [name, scopes] of Object.entries({ admin: ['manageAutomation'], viewer: ['view'] })) keys[name] = (await h.rt.createApiKey(name, scopes, 'test')).key;
});
afterEach(() => h.close());

const as = (who: string) => ({ Authorization: `Bearer ${keys[who]}` });
const nested = (depth: number, leaf: unknown = 1): unknown => {
  let v: unknown = leaf;
  for (let i = 0; i < depth; i++) v = { a: v };
  return v;
};
/** JSON text with a value nested `depth` levels deep where `%DEEP%` stands (JSON.stringify itself would overflow). */
const deepJson = (template: string, depth: number) => template.replace('%DEEP%', '{"a":'.repeat(depth) + '1' + '}'.repeat(depth));
const sendJson = (t: request.Test, text: string) => t.set('Content-Type', 'application/json').send(text);
const linked = () => emailCadence({
  unenroll: { outcomes: ['replied'] },
  nodes: [{ id: 'e1', type: 'followUp', channel: 'email', template: { subject: 'Hi', body: '<a href="https://acme.test/p">p</a>' } }],
  edges: [{ from: 'trigger', to: 'e1' }],
});

async function seeded() {
  await request(app).post('/api/v1/cadences').set(as('admin')).send(linked()).expect(201);
  await request(app).post('/api/v1/cadences/c1/enrollments').set(as('admin')).send({ records: [lead('A'), lead('B')] }).expect(200);
  await h.advance(0);
}

describe('hostile input at the HTTP edge', () => {
  it('D4 a record nested 5,000 levels deep is refused naming the field; in a bulk import only that record is refused', async () => {
    await seeded();
    const before = await h.snapshot();
    const one = await sendJson(request(app).put('/api/v1/records/Leads/D').set(as('admin')), deepJson('{"Email":"d@x.example","Deep":%DEEP%}', 5000)).expect(400);
    expect(one.body.error).toMatchObject({ code: 'invalid_record', rule: 'D4' });
    expect(one.body.error.message).toMatch(/^record\.Deep(\.a)+ nests deeper than 32 levels$/);
    await request(app).put('/api/v1/records/Leads/D').set(as('admin')).send({ Big: 'x'.repeat(200_000) }).expect(400);
    await request(app).post('/api/v1/cadences/c1/enrollments').set(as('admin')).send({ records: [lead('E', { Deep: nested(100) })] }).expect(400);
    expect(await h.snapshot()).toEqual(before);
    const bulk = await sendJson(request(app).post('/api/v1/records/Leads').set(as('admin')), deepJson(`{"records":[${JSON.stringify(lead('C'))},{"id":"D","Deep":%DEEP%},${JSON.stringify(lead('F'))}]}`, 5000)).expect(200);
    expect(bulk.body.results.map((r: { recordId: string; status: string }) => [r.recordId, r.status])).toEqual([['C', 'saved'], ['D', 'refused'], ['F', 'saved']]);
    expect(bulk.body.results[1].error.message).toMatch(/^records\[1\]\.Deep(\.a)+ nests deeper than 32 levels$/);
    expect(await h.store.getRecord('Leads', 'D')).toBeFalsy();
  });

  it('D4 a malformed cookie on the report page is the sign-in form, never a thrown error (it took cadenza serve down); unknown paths name the rule', async () => {
    for (const cookie of ['cadenza_key=%E0%A4%A', 'cadenza_key=%', 'cadenza_key=%ZZ; other=1']) {
      const page = await request(app).get('/cadenza/').set('Cookie', cookie);
      expect(page.status).toBe(401);
      expect(page.text).toMatch(/<form/);
    }
    await request(app).get('/api/v1/cadences').set(as('viewer')).expect(200); // still serving
    // P2: a key without the view scope is refused at sign-in, naming the scope, and gets no cookie.
    const enrollOnly = (await h.rt.createApiKey('forms', ['enroll'], 'test')).key;
    const refused = await request(app).post('/cadenza/').type('form').send({ key: enrollOnly }).expect(403);
    expect(refused.text).toMatch(/no <b>view<\/b> scope \(P2\)/);
    expect(refused.headers['set-cookie']).toBeUndefined();
    const lost = await request(app).get('/nowhere').expect(404);
    expect(lost.body.error).toMatchObject({ code: 'not_found', rule: 'D4' });
  });

  it('D4 wrong types on outcomes and replies are a 400 naming the field, not a 500; nothing changes', async () => {
    await seeded();
    const key = h.sent[0].key;
    const before = await h.snapshot();
    for (const [path, body, field] of [
      ['/api/v1/outcomes', { key, outcome: 'replied', message: { subject: { evil: true } } }, 'message.subject'],
      ['/api/v1/outcomes', { key, outcome: 'replied', message: { headers: { 'Auto-Submitted': { x: 1 } } } }, 'message.headers.Auto-Submitted'],
      ['/api/v1/outcomes', { key, outcome: 'replied', message: 'x' }, 'message'],
      ['/api/v1/replies', { subject: ['a'], from: 'A@example.com' }, 'subject'],
      ['/api/v1/replies', { subject: 'Re', headers: { 'In-Reply-To': 5 } }, 'headers.In-Reply-To'],
      ['/api/v1/replies', { subject: 'Re', inReplyTo: { a: 1 } }, 'inReplyTo'],
      ['/api/v1/replies', { subject: 'Re', from: 42 }, 'from'],
    ] as const) {
      const r = await request(app).post(path).set(as('admin')).send(body);
      expect(r.status, `${path} ${field}`).toBe(400);
      expect(r.body.error.message, field).toContain(field);
    }
    expect(await h.snapshot()).toEqual(before);
  });

  it('P2 a key without "manage" is refused with 403 before any comparison, even for an unchanged definition', async () => {
    await seeded();
    const before = await h.snapshot();
    const r = await request(app).post('/api/v1/cadences').set(as('viewer')).send(linked()).expect(403);
    expect(r.body.error.message).toMatch(/"manage"/);
    await sendJson(request(app).post('/api/v1/cadences').set(as('viewer')), deepJson('%DEEP%', 5000)).expect(403);
    expect(await h.snapshot()).toEqual(before);
  });

  it('D4 C6 a definition nested 5,000 deep or a 9,000-node chain gets problems, not a stack overflow', async () => {
    expect(validateDefinition(nested(5000))).toEqual([expect.objectContaining({ rule: 'D4', message: expect.stringMatching(/nests deeper than 32 levels/) })]);
    const n = 9000;
    const nodes = Array.from({ length: n }, (_, i) => ({ id: `t${i}`, type: 'followUp', channel: 'task', template: { subject: 's', body: '' } }));
    const edges = [{ from: 'trigger', to: 't0' }, ...nodes.slice(1).map((x, i) => ({ from: `t${i}`, to: x.id }))];
    expect(validateDefinition({ ...emailCadence(), nodes, edges })).toEqual([]);
    const cyclic = validateDefinition({ ...emailCadence(), nodes, edges: [...edges, { from: `t${n - 1}`, to: 't0' }] });
    expect(cyclic).toEqual([expect.objectContaining({ rule: 'C6', message: expect.stringMatching(/cycle through "t0"/) })]);
    const r = await sendJson(request(app).post('/api/v1/cadences').set(as('admin')), deepJson('%DEEP%', 5000));
    expect(r.status).toBe(400);
    expect(r.body.error.problems[0].message).toMatch(/^definition(\.a)+ nests deeper than 32 levels$/);
  });

  it('F6 D4 an email template whose link a record could choose is refused at publish, naming the node and the rule', async () => {
    const bad = emailCadence({ nodes: [{ id: 'e1', type: 'followUp', channel: 'email', template: { subject: 'Hi', body: '<a href="{{Website}}">site</a>' } }], edges: [{ from: 'trigger', to: 'e1' }] });
    const r = await request(app).post('/api/v1/cadences').set(as('admin')).send(bad).expect(400);
    expect(r.body.error.problems).toEqual([expect.objectContaining({ rule: 'F6', node: 'e1', field: 'template.body', message: expect.stringMatching(/never its scheme or host/) })]);
  });

  it('F6 D4 tracking: a token works on its own route only; pages carry CSP and X-Frame-Options; the unsubscribe body is bounded', async () => {
    await seeded();
    const html = h.sent[0].email!.html;
    const click = /\/t\/click\/([^"]+)"/.exec(html)![1];
    const unsub = h.sent[0].email!.unsubscribeUrl.split('/').at(-1)!;
    const open = /\/t\/open\/([^"]+)\.gif"/.exec(html)![1];
    const before = await h.snapshot();
    for (const wrong of [`/t/open/${click}.gif`, `/t/open/${unsub}.gif`, `/t/click/${open}`, `/t/click/${unsub}`, `/t/unsubscribe/${click}`]) {
      const r = await request(app).get(wrong);
      expect(r.status, wrong).toBe(400);
      expect(r.headers['content-security-policy']).toMatch(/default-src 'none'/);
      expect(r.headers['x-frame-options']).toBe('DENY');
    }
    await request(app).post(`/t/unsubscribe/${open}`).send('List-Unsubscribe=One-Click').expect(400);
    const page = await request(app).get(`/t/unsubscribe/${unsub}`).expect(200);
    expect(page.headers['content-security-policy']).toMatch(/frame-ancestors 'none'/);
    const huge = await request(app).post(`/t/unsubscribe/${unsub}`).set('Content-Type', 'application/x-www-form-urlencoded').send('x'.repeat(5 * 1024 * 1024));
    expect(huge.status).toBe(413);
    expect(await h.snapshot()).toEqual(before);
    expect((await h.store.getRecord('Leads', 'A'))?.unsubscribed).toBe(false);
  });

  it('P2 D4 the report page signs in by a POST form only (a key in a URL is ignored), bounds that body, and every page and answer forbids framing', async () => {
    const inUrl = await request(app).get(`/cadenza/?key=${keys.viewer}`);
    expect(inUrl.status).toBe(401);
    expect(inUrl.headers['set-cookie']).toBeUndefined();
    expect(inUrl.text).toMatch(/<form method="post">/);
    const bad = await request(app).post('/cadenza/').type('form').send({ key: 'nope' });
    expect(bad.status).toBe(401);
    const ok = await request(app).post('/cadenza/').type('form').send({ key: keys.viewer }).expect(303);
    expect(ok.headers.location).toBe('/cadenza/');
    expect(ok.headers['set-cookie'][0]).toMatch(/^cadenza_key=.+; HttpOnly; SameSite=Strict/);
    const page = await request(app).get('/cadenza/').set('Cookie', ok.headers['set-cookie'][0].split(';')[0]).expect(200);
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.headers['content-security-policy']).toMatch(/frame-ancestors 'none'/);
    const huge = await request(app).post('/cadenza/').type('form').send(`key=${'x'.repeat(100_000)}`);
    expect(huge.status).toBe(413);
    const api = await request(app).get('/api/v1/cadences').set(as('viewer')).expect(200);
    expect(api.headers['x-content-type-options']).toBe('nosniff');
    expect(api.headers['content-security-policy']).toMatch(/default-src 'none'/);
  });

  it('D4 fuzz: deep nesting, wrong types and floods on every write route with a full key: no 500, nothing stored changes', async () => {
    await seeded();
    const before = await h.snapshot();
    const key = h.sent[0].key;
    const deep = fc.integer({ min: 33, max: 3000 }).map((d) => nested(d, 'x'));
    const wrongType = fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 2 }), fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue(), { maxKeys: 2 }));
    const cases = fc.oneof(
      fc.tuple(fc.constant('put /api/v1/records/Leads/Z'), deep.map((d) => ({ Email: 'z@x.example', F: d }))),
      fc.tuple(fc.constant('post /api/v1/records/Leads'), deep.map((d) => ({ records: [{ id: 'Z', F: d }] }))),
      fc.tuple(fc.constant('post /api/v1/cadences/c1/enrollments'), deep.map((d) => ({ records: [{ id: 'Z', F: d }] }))),
      fc.tuple(fc.constant('post /api/v1/cadences'), deep),
      fc.tuple(fc.constant('post /api/v1/outcomes'), wrongType.map((w) => ({ key, outcome: 'replied', message: { subject: w, headers: { X: w } } }))),
      fc.tuple(fc.constant('post /api/v1/replies'), wrongType.map((w) => ({ subject: w, headers: { 'In-Reply-To': w }, inReplyTo: w, from: w }))),
      fc.tuple(fc.constant('post /api/v1/cadences/c1/enrollments/A/unenroll'), wrongType.map((w) => ({ reason: w }))),
      fc.tuple(fc.constant('post /api/v1/cadences/c1/enrollments/A/reenroll'), wrongType.map((w) => ({ mode: w }))),
    );
    await fc.assert(
      fc.asyncProperty(cases, async ([route, body]) => {
        const [method, path] = route.split(' ');
        const r = await (request(app) as unknown as Record<string, (p: string) => request.Test>)[method](path).set(as('admin')).set('Content-Type', 'application/json').send(JSON.stringify(body));
        // Wrong types that happen to be valid (a string reason) may pass; nothing may be a 500.
        expect(r.status, `${route} ${JSON.stringify(body).slice(0, 120)}`).toBeLessThan(500);
        if (route.endsWith('/records/Leads')) expect(r.body.results.map((x: { status: string }) => x.status)).toEqual(['refused']);
        else if (!/unenroll|reenroll/.test(route)) expect(r.status).toBeGreaterThanOrEqual(400);
      }),
      { numRuns: 300 },
    );
    // A flood of pixel hits and forged tokens: every one answers, none is a 500, and the opens of one
    // action reach the engine once (one audit row, not 100).
    const auditBefore = (await h.snapshot()).audit.length;
    const open = /\/t\/open\/([^"]+)\.gif"/.exec(h.sent[1].email!.html)![1];
    const statuses = await Promise.all(Array.from({ length: 200 }, (_, i) => request(app).get(i % 2 ? `/t/open/${open}.gif` : `/t/open/${open.slice(0, -2)}xx.gif`).then((r) => r.status)));
    expect(new Set(statuses)).toEqual(new Set([200, 400]));
    expect((await h.snapshot()).audit.length - auditBefore).toBeLessThanOrEqual(1);
    const after = await h.snapshot();
    // The flood may record B's "opened" outcome; everything else is as it was.
    for (const t of ['cadences', 'cadence_versions', 'records', 'timers', 'outbox', 'counters']) expect(after[t], t).toEqual(before[t]);
  });
  it('A3 U9 D4 after a flood of 10,500 audit rows a later manual un-enroll reason is on the why-log\'s first page; every older row is one cursor away, none twice', async () => {
    await request(app).post('/api/v1/cadences').set(as('admin')).send(emailCadence()).expect(201); // e2 waits two days: A stays active
    await request(app).post('/api/v1/cadences/c1/enrollments').set(as('admin')).send({ records: [lead('A')] }).expect(200);
    await h.advance(0);
    // What 10,500 distinct hits on an enrollment once wrote (each its own stored row: distinct times).
    const at = h.clock.now();
    await h.store.addAudit(Array.from({ length: 10_500 }, (_, i) => ({ at: at - 20_000 + i, cadenceId: 'c1', enrollmentId: 'c1:A', recordId: 'A', actor: 'tracking', event: 'outcome', reason: `hit ${i}`, data: null })));
    await request(app).post('/api/v1/cadences/c1/enrollments/A/unenroll').set(as('admin')).send({ reason: 'asked us to stop' }).expect(200);

    const first = await request(app).get('/api/v1/enrollments/c1:A/why').set(as('viewer')).expect(200);
    expect(first.body.log.find((l: { event: string }) => l.event === 'stopped')?.reason).toMatch(/asked us to stop/);
    expect(first.body.next).toMatch(/^before:\d+$/);
    // Oldest first within a page, and the newest page ends with the newest entry.
    const seqOf = (l: { seq: number }) => l.seq;
    expect(first.body.log.map(seqOf)).toEqual([...first.body.log.map(seqOf)].sort((a, b) => a - b));
    let cursor: string | null = first.body.next;
    const seen: number[] = [...first.body.log.map(seqOf)];
    let pages = 1;
    while (cursor) {
      const page = await request(app).get(`/api/v1/enrollments/c1:A/why?cursor=${cursor}`).set(as('viewer')).expect(200);
      expect(Math.max(...page.body.log.map(seqOf))).toBeLessThan(Math.min(...seen)); // strictly older than what came before
      seen.push(...page.body.log.map(seqOf));
      cursor = page.body.next;
      pages++;
    }
    expect(pages).toBeGreaterThanOrEqual(11); // 1,000 stored rows a page
    // Read forward from the start, the same rows come back (a step's entries share its seq).
    const forward: number[] = [];
    cursor = null;
    do {
      const page = await request(app).get(`/api/v1/enrollments/c1:A/why?${cursor ? `cursor=${cursor}` : 'order=asc'}&limit=1000`).set(as('viewer')).expect(200);
      forward.push(...page.body.log.map(seqOf));
      cursor = page.body.next;
    } while (cursor);
    expect(forward).toEqual([...seen].sort((a, b) => a - b));
    expect(new Set(forward).size).toBeGreaterThan(10_500);

    // The audit of the cadence and of the record, paged the same way.
    const audit = await request(app).get('/api/v1/audit?cadenceId=c1&limit=2').set(as('viewer')).expect(200);
    expect(audit.body.log.at(-1)).toMatchObject({ event: 'stopped', reason: expect.stringMatching(/asked us to stop/) });
    expect(audit.body.next).toMatch(/^before:/);
    const oldest = await request(app).get('/api/v1/audit?cadenceId=c1&order=asc&limit=1').set(as('viewer')).expect(200);
    expect(oldest.body.log[0]).toMatchObject({ event: 'created' });
    expect((await request(app).get('/api/v1/audit?recordId=A&limit=1').set(as('viewer')).expect(200)).body.log.at(-1).event).toBe('stopped');

    // Bad paging is a 400 naming the parameter and the rule, never a 500.
    for (const q of ['cursor=before:x', 'cursor=sideways:3', 'limit=0', 'limit=1001', 'limit=2.5', 'order=up']) {
      const r = await request(app).get(`/api/v1/enrollments/c1:A/why?${q}`).set(as('viewer')).expect(400);
      expect(r.body.error, q).toMatchObject({ rule: 'D4', message: expect.stringContaining(q.split('=')[0]), problems: [expect.objectContaining({ field: q.split('=')[0], rule: 'D4' })] });
    }
    // A cursor does not turn an unknown enrollment into an empty log.
    expect((await request(app).get('/api/v1/enrollments/c1:nobody/why?cursor=before:7').set(as('viewer')).expect(404)).body.error).toMatchObject({ code: 'unknown_enrollment' });
    expect((await request(app).get('/api/v1/audit').set(as('viewer')).expect(400)).body.error).toMatchObject({ rule: 'D4', message: expect.stringMatching(/recordId or cadenceId/) });
  });
  it('A1 U9 the report\'s latest un-enrollments come from the enrollments, so a flood of audit rows cannot hide a manual un-enroll reason', async () => {
    await request(app).post('/api/v1/cadences').set(as('admin')).send(emailCadence()).expect(201);
    await request(app).post('/api/v1/cadences/c1/enrollments').set(as('admin')).send({ records: [lead('A'), lead('B')] }).expect(200);
    await h.advance(0);
    const at = h.clock.now();
    await h.store.addAudit(Array.from({ length: 10_500 }, (_, i) => ({ at: at - 20_000 + i, cadenceId: 'c1', enrollmentId: 'c1:B', recordId: 'B', actor: 'tracking', event: 'outcome', reason: `hit ${i}`, data: null })));
    await request(app).post('/api/v1/cadences/c1/enrollments/A/unenroll').set(as('admin')).send({ reason: 'asked us to stop' }).expect(200);
    const report = await request(app).get('/api/v1/cadences/c1/report').set(as('viewer')).expect(200);
    expect(report.body.latestUnenrollments).toEqual([{ enrollmentId: 'c1:A', recordId: 'A', status: 'stopped', reason: 'asked us to stop', at: expect.any(Number) }]);
    const signIn = await request(app).post('/cadenza/').type('form').send({ key: keys.viewer }).expect(303);
    const page = await request(app).get('/cadenza/').set('Cookie', signIn.headers['set-cookie'][0].split(';')[0]).expect(200);
    expect(page.text).toMatch(/<li data-reason data-status="stopped">[^<]* · A · asked us to stop<\/li>/);
  });
});
