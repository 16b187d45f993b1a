// The HTTP API through supertest, on the real handler and a runtime on a SQLite file.
import { createServer, type Server } from 'node:http';
import fc from 'fast-check';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cadenzaHttp } from '../../engine/http/server';
import { join } from 'node:path';
import { main } from '../../engine/cli/main';
import { DAY, STORE_KIND, emailCadence, harness, lead, type Harness } from '../helpers/harness';

let h: Harness;
let app: Server;
const keys: Record<string, string> = {};

beforeEach(async () => {
  h = await harness({ maxRecordBytes: 4096 });
  const handle = cadenzaHttp(h.rt, { maxBodyBytes: 64 * 1024 });
  app = createServer((req, res) => void handle(req, res));
  for (const [name, scopes] of Object.entries({ admin: ['manageAutomation'], viewer: ['view'], manager: ['manage', 'view'], enroller: ['enroll', 'view'], remover: ['unenroll'] })) {
    keys[name] = (await h.rt.createApiKey(name, scopes, 'test')).key;
  }
});
afterEach(() => h.close());

const as = (who: string) => ({ Authorization: `Bearer ${keys[who]}` });
const def = (over = {}) => emailCadence({ unenroll: { outcomes: ['replied'] }, ...over });


async function seeded() {
  await request(app).post('/api/v1/cadences').set(as('admin')).send(def()).expect(201);
  await request(app).post('/api/v1/cadences/c1/enrollments').set(as('admin')).send({ records: [lead('A'), lead('B')] }).expect(200);
  await h.advance(0);
}

describe('HTTP API', () => {
  it('P1 P2 keys are listed without their secret and revoked by id: a revoked key stops at once, and only manage may do either', async () => {
    const list = await request(app).get('/api/v1/keys').set(as('admin')).expect(200);
    expect(list.body.keys.map((k: { name: string }) => k.name).sort()).toEqual(['admin', 'enroller', 'manager', 'remover', 'viewer']);
    expect(JSON.stringify(list.body)).not.toMatch(/cz_|hash/);
    const viewerId = list.body.keys.find((k: { name: string }) => k.name === 'viewer').id;
    const refused = await request(app).delete(`/api/v1/keys/${viewerId}`).set(as('viewer')).expect(403);
    expect(refused.body.error).toMatchObject({ rule: 'P2' });
    await request(app).get('/api/v1/keys').set(as('enroller')).expect(403);
    await request(app).get('/api/v1/cadences').set(as('viewer')).expect(200);
    await request(app).delete(`/api/v1/keys/${viewerId}`).set(as('manager')).expect(200);
    await request(app).get('/api/v1/cadences').set(as('viewer')).expect(401);
    expect((await request(app).delete(`/api/v1/keys/${viewerId}`).set(as('admin')).expect(409)).body.error).toMatchObject({ rule: 'P1' });
    expect((await request(app).delete('/api/v1/keys/nope').set(as('admin')).expect(404)).body.error).toMatchObject({ rule: 'D4' });
    const after = await request(app).get('/api/v1/keys').set(as('admin')).expect(200);
    expect(after.body.keys.find((k: { id: string }) => k.id === viewerId).revokedAt).toEqual(expect.any(Number));
    // And from the command line, on the same store.
    if (STORE_KIND === 'sqlite') {
      const out: string[] = [];
      const err: string[] = [];
      const store = `sqlite:${join(h.dir, 'cadenza.db')}`;
      expect(await main(['keys', 'list', '--store', store], { out: (x) => out.push(x), err: (x) => err.push(x) })).toBe(0);
      expect(out.find((l) => l.includes(' viewer '))).toMatch(/revoked \d{4}-/);
      const enrollerId = list.body.keys.find((k: { name: string }) => k.name === 'enroller').id;
      expect(await main(['keys', 'revoke', enrollerId, '--store', store], { out: (x) => out.push(x), err: (x) => err.push(x) })).toBe(0);
      await request(app).get('/api/v1/cadences').set(as('enroller')).expect(401);
      expect(await main(['keys', 'revoke', '--store', store], { out: (x) => out.push(x), err: (x) => err.push(x) })).toBe(2);
    }
  });

  it('P1 the OpenAPI document is served without a key; every other route needs one', async () => {
    const doc = await request(app).get('/api/v1/openapi.json').expect(200);
    expect(doc.body.openapi).toBe('3.1.0');
    expect(Object.keys(doc.body.paths)).toContain('/cadences/{id}/enrollments');
    const r = await request(app).get('/api/v1/cadences').expect(401);
    expect(r.body.error).toMatchObject({ code: 'unauthorized', rule: 'P1' });
    await request(app).get('/api/v1/cadences').set('Authorization', 'Bearer cz_forged_key').expect(401);
    await request(app).get('/api/v1/cadences').set('X-API-Key', keys.viewer).expect(200);
  });

  it('C2 V1 publishing a definition creates the cadence, then publishes versions; D4 a bad one is refused with every problem', async () => {
    const created = await request(app).post('/api/v1/cadences').set(as('manager')).send(def()).expect(201);
    expect(created.body).toMatchObject({ action: 'created', version: 1 });
    const again = await request(app).post('/api/v1/cadences').set(as('manager')).send(def()).expect(200);
    expect(again.body.action).toBe('unchanged');
    const v2 = await request(app).post('/api/v1/cadences').set(as('manager')).send(def({ name: 'Renamed' })).expect(200);
    expect(v2.body).toMatchObject({ action: 'published', version: 2 });
    const bad = await request(app).post('/api/v1/cadences').set(as('manager')).send({ ...def(), id: 'bad', enrollment: { mode: 'view', view: 'a = =' }, nodes: [{ id: 'x', type: 'followUp', channel: 'fax' }], edges: [] }).expect(400);
    expect(bad.body.error.problems.map((p: { rule: string; field: string }) => `${p.rule} ${p.field}`)).toEqual(expect.arrayContaining(['E2 enrollment.view', 'C4 channel']));
    const got = await request(app).get('/api/v1/cadences/c1').set(as('viewer')).expect(200);
    expect(got.body).toMatchObject({ cadence: { id: 'c1', status: 'active', activeVersion: 2 }, definition: { name: 'Renamed' } });
    await request(app).get('/api/v1/cadences/nope').set(as('viewer')).expect(404);
  });

  it('P2 each route refuses a key without its scope, names the scope, and changes nothing', async () => {
    await seeded();
    const before = await h.snapshot();
    const refusals: [string, string, string, unknown][] = [
      ['viewer', 'post', '/api/v1/cadences', def({ id: 'c9' })],
      ['viewer', 'post', '/api/v1/cadences/c1/deactivate', undefined],
      ['enroller', 'post', '/api/v1/cadences/c1/clone', { id: 'c1b' }],
      ['viewer', 'post', '/api/v1/cadences/c1/enrollments', { records: [lead('C')] }],
      ['manager', 'post', '/api/v1/cadences/c1/enrollments/A/unenroll', {}],
      ['viewer', 'post', '/api/v1/cadences/c1/enrollments/A/reenroll', { mode: 'restart' }],
      ['remover', 'get', '/api/v1/cadences/c1/report', undefined],
      ['viewer', 'put', '/api/v1/records/Leads/Z', { Email: 'z@x.example' }],
      ['remover', 'post', '/api/v1/records/Leads', { records: [lead('Z')] }],
      ['viewer', 'post', '/api/v1/records/Leads/A/converted', undefined],
      ['enroller', 'post', '/api/v1/records/Leads/A/unsubscribed', undefined],
      ['viewer', 'post', '/api/v1/outcomes', { key: 'c1:A:1:e1', outcome: 'opened' }],
      ['remover', 'get', '/api/v1/enrollments/c1:A/why', undefined],
      ['remover', 'get', '/api/v1/audit?cadenceId=c1', undefined],
    ];
    for (const [who, method, path, body] of refusals) {
      const req = (request(app) as unknown as Record<string, (p: string) => request.Test>)[method](path).set(as(who));
      const r = await (body === undefined ? req : req.send(body as object)).expect(403);
      expect(r.body.error.message, `${who} ${method} ${path}`).toMatch(/lacks the "(view|manage|enroll|unenroll)" permission/);
    }
    expect(await h.snapshot()).toEqual(before);
  });

  it('E1 R1 U5 A1 A2 A3 enrollments, re-enrollment, un-enrollment and reports', async () => {
    await seeded();
    const list = await request(app).get('/api/v1/cadences/c1/enrollments?status=active').set(as('viewer')).expect(200);
    expect(list.body.enrollments.map((e: { recordId: string }) => e.recordId)).toEqual(['A', 'B']);
    await request(app).get('/api/v1/cadences/c1/enrollments?status=dancing').set(as('viewer')).expect(400);
    // D4: a page size out of range is refused naming it, as the audit pages do, not quietly clamped.
    for (const bad of ['-1', '1e9', '2.5', 'ten']) expect((await request(app).get(`/api/v1/cadences/c1/enrollments?limit=${bad}`).set(as('viewer')).expect(400)).body.error).toMatchObject({ rule: 'D4', problems: [{ field: 'limit' }] });
    expect((await request(app).get('/api/v1/cadences/c1/enrollments?limit=1').set(as('viewer')).expect(200)).body.enrollments).toHaveLength(1);
    const un = await request(app).post('/api/v1/cadences/c1/enrollments/A/unenroll').set(as('remover')).send({ reason: 'asked us to stop' }).expect(200);
    expect(un.body).toMatchObject({ status: 'stopped', reason: 'asked us to stop' });
    await request(app).post('/api/v1/cadences/c1/enrollments/A/unenroll').set(as('remover')).send({}).expect(409);
    const re = await request(app).post('/api/v1/cadences/c1/enrollments/A/reenroll').set(as('enroller')).send({ mode: 'resume' }).expect(200);
    expect(re.body.status).toBe('enrolled');
    await request(app).post('/api/v1/cadences/c1/enrollments/A/reenroll').set(as('enroller')).send({ mode: 'sideways' }).expect(400);
    const report = await request(app).get('/api/v1/cadences/c1/report').set(as('viewer')).expect(200);
    expect(report.body).toMatchObject({ enrolled: 2, active: 2 });
    const rel = await request(app).get('/api/v1/records/A/enrollments').set(as('viewer')).expect(200);
    expect(rel.body.enrollments[0]).toMatchObject({ cadenceId: 'c1', status: 'active', enrolledBy: 'key:enroller' }); // re-enrolled by
    const why = await request(app).get('/api/v1/enrollments/c1:A/why').set(as('viewer')).expect(200);
    expect(why.body.log.map((l: { event: string }) => l.event)).toEqual(expect.arrayContaining(['enrolled', 'executed', 'stopped', 'resumed']));
    expect(why.body.log.find((l: { event: string }) => l.event === 'stopped').actor).toBe('key:remover'); // U9 names who
    await request(app).get('/api/v1/enrollments/nope/why').set(as('viewer')).expect(404);
  });

  it('C1 C3 E2 V3 clone within the module, preview, deactivate and activate', async () => {
    await seeded();
    await request(app).post('/api/v1/cadences/c1/clone').set(as('manager')).send({ id: 'c1-copy' }).expect(201);
    const cross = await request(app).post('/api/v1/cadences/c1/clone').set(as('manager')).send({ id: 'c1-deals', module: 'Deals' }).expect(409);
    expect(cross.body.error.rule).toBe('C1');
    await request(app).post('/api/v1/cadences').set(as('manager')).send(def({ id: 'hot', enrollment: { mode: 'view', view: 'Hot = true' } })).expect(201);
    await request(app).put('/api/v1/records/Leads/H1').set(as('enroller')).send({ Email: 'h1@x.example', Hot: false }).expect(200);
    const prev = await request(app).get('/api/v1/cadences/hot/preview').set(as('viewer')).expect(200);
    expect(prev.body).toEqual({ matching: 0, skippedByExit: 0, alreadyEnrolled: 0 });
    await request(app).post('/api/v1/cadences/c1/deactivate').set(as('manager')).expect(200);
    await request(app).post('/api/v1/cadences/c1/deactivate').set(as('manager')).expect(409);
    await request(app).post('/api/v1/cadences/c1/activate').set(as('manager')).expect(200);
  });

  it('E8 F8 U1 U10 P2 records, outcomes and replies', async () => {
    await seeded();
    const key = h.sent.find((s) => s.recordId === 'A')!.key;
    const oc = await request(app).post('/api/v1/outcomes').set(as('enroller')).send({ key, outcome: 'opened' }).expect(200);
    expect(oc.body).toEqual({ outcome: 'opened', applied: true });
    await request(app).post('/api/v1/outcomes').set(as('enroller')).send({ key, outcome: 'teleported' }).expect(400);
    await request(app).post('/api/v1/outcomes').set(as('enroller')).send({ key: 'forged', outcome: 'opened' }).expect(404);
    const mid = h.sent.find((s) => s.recordId === 'B')!.email!.messageId;
    const ooo = await request(app).post('/api/v1/replies').set(as('enroller')).send({ subject: 'Out of office', headers: { 'In-Reply-To': mid, 'Auto-Submitted': 'auto-replied' } }).expect(200);
    expect(ooo.body.outcome).toBe('auto-replied');
    const byAddress = await request(app).post('/api/v1/replies').set(as('enroller')).send({ subject: 'Re: hi', from: 'Ann <A@example.com>' }).expect(200);
    expect(byAddress.body).toMatchObject({ matched: true, outcome: 'replied' }); // matched by the sender's address
    await request(app).post('/api/v1/replies').set(as('enroller')).send({ subject: 'who?', from: 'nobody@example.com' }).expect(404);
    // P2: a view-only key is refused before any matching, so its answer never tells who is enrolled.
    for (const from of ['nobody@example.com', 'Bee <B@example.com>']) {
      const r = await request(app).post('/api/v1/replies').set(as('viewer')).send({ subject: 'probe', from }).expect(403);
      expect(r.body.error).toMatchObject({ rule: 'P2' });
    }
    expect((await h.rt.getEnrollment('c1', 'A'))?.status).toBe('stopped');
    await request(app).post('/api/v1/records/Leads/B/unsubscribed').set(as('remover')).expect(200);
    expect((await h.store.getRecord('Leads', 'B'))?.unsubscribed).toBe(true);
    const conv = await request(app).post('/api/v1/records/Leads/B/converted').set(as('remover')).expect(200);
    expect(conv.body.left).toBe(1);
    await request(app).post('/api/v1/records/Leads/ghost/converted').set(as('remover')).expect(404);
    await request(app).put('/api/v1/records/Leads/B').set(as('enroller')).send({ id: 'other', Email: 'b@x.example' }).expect(400);
    await h.advance(3 * DAY);
    expect(h.sent.filter((s) => s.nodeId === 'e2')).toEqual([]);
  });

  it('D4 malformed, oversized, non-JSON bodies and unknown routes get clear errors; nothing changes', async () => {
    await seeded();
    const before = await h.snapshot();
    const bad = await request(app).post('/api/v1/outcomes').set(as('admin')).set('Content-Type', 'application/json').send('{"key": ').expect(400);
    expect(bad.body.error.code).toBe('malformed_json');
    await request(app).post('/api/v1/outcomes').set(as('admin')).set('Content-Type', 'text/plain').send('key=1').expect(415);
    const big = await request(app).post('/api/v1/cadences/c1/enrollments').set(as('admin')).send({ records: [{ id: 'x', blob: 'x'.repeat(70 * 1024) }] }).expect(413);
    expect(big.body.error.code).toBe('payload_too_large');
    const rec = await request(app).put('/api/v1/records/Leads/R').set(as('admin')).send({ blob: 'x'.repeat(5000) }).expect(413);
    expect(rec.body.error.rule).toBe('D4');
    await request(app).post('/api/v1/cadences/c1/enrollments').set(as('admin')).send({ records: [] }).expect(400);
    await request(app).post('/api/v1/cadences/c1/enrollments').set(as('admin')).send([1, 2]).expect(400);
    await request(app).get('/api/v1/nothing/here').set(as('admin')).expect(404);
    await request(app).delete('/api/v1/cadences').set(as('admin')).expect(405);
    await request(app).get('/api/v1/cadences/%E0%A4%A').set(as('admin')).expect(400);
    expect(await h.snapshot()).toEqual(before);
  });

  it('E2 D4 a bulk import saves many records in one call; each answers, a bad one is refused by rule and the rest are saved', async () => {
    await seeded();
    await request(app).post('/api/v1/cadences').set(as('admin')).send(def({ id: 'hot', enrollment: { mode: 'view', view: 'Lead_Status = "Hot"' } })).expect(201);
    const r = await request(app).post('/api/v1/records/Leads').set(as('enroller'))
      .send({ records: [lead('H1', { Lead_Status: 'Hot' }), { First_Name: 'no id' }, lead('C1', { Lead_Status: 'Cold' })] }).expect(200);
    expect(r.body.results).toEqual([
      { recordId: 'H1', status: 'saved', enrollments: [expect.objectContaining({ status: 'enrolled', enrollmentId: 'hot:H1' })] },
      { recordId: '(missing id)', status: 'refused', error: expect.objectContaining({ rule: 'D4', message: expect.stringMatching(/record.id is required/) }) },
      { recordId: 'C1', status: 'saved', enrollments: [] },
    ]);
    expect(await h.store.getRecord('Leads', 'C1')).toMatchObject({ data: { Lead_Status: 'Cold' } });
    for (const bad of [{}, { records: [] }, { records: 'x' }, { records: Array(1001).fill(lead('X')) }]) {
      const e = await request(app).post('/api/v1/records/Leads').set(as('enroller')).send(bad);
      expect([400, 413]).toContain(e.status);
    }
  });

  it('D4 fuzz: thousands of random JSON bodies on every write route: no 500, stored state unchanged', async () => {
    await seeded();
    const before = await h.snapshot();
    const routes: [string, string][] = [
      ['post', '/api/v1/cadences'], ['post', '/api/v1/cadences/c1/clone'], ['post', '/api/v1/cadences/c1/enrollments/A/reenroll'],
      ['post', '/api/v1/outcomes'], ['post', '/api/v1/replies'], ['post', '/api/v1/cadences/c1/enrollments'], ['post', '/api/v1/records/Leads'],
    ];
    let calls = 0;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...routes), fc.oneof(fc.jsonValue(), fc.record({ records: fc.array(fc.jsonValue(), { maxLength: 3 }), key: fc.string(), outcome: fc.string(), mode: fc.string(), id: fc.string() })), async ([method, path], body) => {
        calls++;
        const r = await (request(app) as unknown as Record<string, (p: string) => request.Test>)[method](path).set(as('viewer')).set('Content-Type', 'application/json').send(JSON.stringify(body));
        expect(r.status).toBeLessThan(500);
      }),
      { numRuns: 1500 },
    );
    expect(calls).toBe(1500);
    expect(await h.snapshot()).toEqual(before);
  });
});
