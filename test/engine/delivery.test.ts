// D1-D4, A1-A3, P1-P2 and S1 against the SQLite store on a real file.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../engine/runtime/clock';
import { Runtime, type DispatchedAction } from '../../engine/runtime/runtime';
import { simulate } from '../../engine/simulate/simulate';
import { main } from '../../engine/cli/main';
import { DAY, HOUR, T0, emailCadence, harness, lead, published, sentTo, type Harness } from '../helpers/harness';

let h: Harness;
afterEach(() => h?.close());


describe('delivery guarantees', () => {
  it('D1 nothing is lost when the process stops: what fell due while it was down runs after a restart', async () => {
    h = await harness();
    await published(h, emailCadence());
    await h.rt.enroll('c1', [lead('A'), lead('B')], 'rep');
    await h.advance(0);
    expect(h.sent).toHaveLength(2);
    await h.rt.stop();
    await h.store.close();
    // Down for five days; then a new process opens the same file.
    const clock = new VirtualClock(T0 + 5 * DAY);
    const store = h.openStore();
    const rt = await new Runtime({ store, clock, secret: 'test-secret' }).init();
    const after: DispatchedAction[] = [];
    rt.onDispatch((a) => void after.push(a));
    await rt.tick();
    expect(after.map((a) => `${a.recordId}/${a.nodeId}`).sort()).toEqual(['A/e2', 'B/e2']);
    await rt.runUntil(T0 + 20 * DAY, clock);
    expect(after).toHaveLength(2);
    await store.close();
  });

  it('D1 a delivered action keeps what was sent to whom, not its bodies; a pending one keeps everything to hand over again', async () => {
    h = await harness();
    await published(h, emailCadence());
    await h.rt.enroll('c1', [lead('A')], 'rep');
    await h.advance(0);
    const done = await h.store.getOutbox('c1:A:1:e1');
    expect(done?.status).toBe('done');
    expect(done?.payload).toMatchObject({ idempotencyKey: 'c1:A:1:e1', channel: 'email', email: { to: 'A@example.com', subject: 'Hi AnnA', messageId: h.sent[0].email!.messageId } });
    expect(done?.payload).not.toHaveProperty('record');
    expect((done?.payload as DispatchedAction).email).not.toHaveProperty('html');
    expect((done?.payload as DispatchedAction).email).not.toHaveProperty('text');
    // The recorded reply still finds its follow-up by the key the summary keeps.
    expect(await h.rt.recordOutcome({ key: 'c1:A:1:e1', outcome: 'opened' })).toEqual({ outcome: 'opened', applied: true });
    // A failing host leaves the action pending, whole.
    h.rt.onDispatch(() => {
      throw new Error('smtp down');
    });
    await h.rt.enroll('c1', [lead('B')], 'rep');
    await h.advance(0);
    const pending = await h.store.getOutbox('c1:B:1:e1');
    expect(pending?.status).toBe('pending');
    expect(pending?.payload).toMatchObject({ record: { id: 'B' }, email: { html: expect.stringContaining('Hello AnnB') } });
  });

  it('D2 several workers on one store never dispatch a follow-up twice, and each action carries an idempotency key', async () => {
    h = await harness();
    await published(h, emailCadence());
    await h.rt.enroll('c1', Array.from({ length: 60 }, (_, i) => lead(`r${i}`)), 'rep');
    const workers = [h.rt];
    for (let i = 0; i < 2; i++) {
      const rt = await new Runtime({ store: h.openStore(), clock: h.clock, secret: 'test-secret', batchSize: 5 }).init();
      rt.onDispatch((a) => void h.sent.push({ ...a, at: h.clock.now() }));
      workers.push(rt);
    }
    for (const t of [0, 2 * DAY]) {
      h.clock.set(T0 + t);
      await Promise.all(workers.map((w) => w.tick()));
    }
    const keys = h.sent.map((s) => s.idempotencyKey);
    expect(keys).toHaveLength(120);
    expect(new Set(keys).size).toBe(120);
    expect(h.sent.every((s) => s.key === s.idempotencyKey && /^c1:r\d+:1:e[12]$/.test(s.key))).toBe(true);
    for (const w of workers.slice(1)) await w.store.close();
  });

  it('D1 D2 a batch handler gets each claimed batch whole; a failed batch is retried whole; a scoped tick serves only its cadences', async () => {
    h = await harness({ batchSize: 50, retry: { baseMs: 60_000, jitter: 0 } });
    await published(h, emailCadence());
    await published(h, emailCadence({ id: 'other' }));
    await h.rt.enroll('c1', Array.from({ length: 30 }, (_, i) => lead(`r${i}`)), 'rep');
    await h.rt.enroll('other', ['r0'], 'rep');
    const batches: string[][] = [];
    let fail = true;
    h.rt.onDispatchBatch((actions) => {
      batches.push(actions.map((a) => a.key));
      if (fail) throw new Error('n8n is restarting');
    });
    await h.rt.tick({ cadences: ['c1'] });
    expect(batches).toHaveLength(1);
    expect(batches[0]).toHaveLength(30);
    expect(batches[0].every((k) => k.startsWith('c1:'))).toBe(true);
    fail = false;
    h.clock.advance(60_000);
    await h.rt.tick({ cadences: ['c1'] });
    expect(batches).toHaveLength(2);
    expect(new Set(batches[1])).toEqual(new Set(batches[0])); // the same actions, the same keys
    h.clock.advance(60_000);
    await h.rt.tick({ cadences: ['c1'] });
    expect(batches).toHaveLength(2); // acknowledged: nothing left for c1
    expect(await h.store.nextDue(['other'])).toBe(T0); // still waiting for the host that serves it
    await h.rt.tick({ cadences: ['other'] });
    expect(batches[2]).toEqual(['other:r0:1:e1']);
  });

  it('D3 an outcome for an enrollment that moved on or ended is logged and changes nothing else', async () => {
    h = await harness();
    await published(h, emailCadence({ unenroll: { outcomes: ['replied'] } }));
    await h.rt.enroll('c1', [lead('A')], 'rep');
    await h.advance(2 * DAY);
    const [first, second] = h.sent;
    const before = await h.rt.getEnrollment('c1', 'A');
    expect(await h.rt.recordOutcome({ key: first.key, outcome: 'replied' })).toEqual({ outcome: 'replied', applied: false });
    const after = await h.rt.getEnrollment('c1', 'A');
    expect({ ...after, updatedAt: 0 }).toEqual({ ...before, updatedAt: 0 });
    expect((await h.rt.why(after!.id)).at(-1)).toMatchObject({ event: 'outcomeIgnored', reason: expect.stringMatching(/D3/) });
    await h.rt.recordOutcome({ key: second.key, outcome: 'opened' });
    expect((await h.rt.getEnrollment('c1', 'A'))?.status).toBe('completed');
  });

  it('D4 bad input gets a clear error naming what is wrong and leaves every stored enrollment as it was', async () => {
    h = await harness({ maxRecordBytes: 1024 });
    await published(h, emailCadence());
    await h.rt.enroll('c1', [lead('A')], 'rep');
    await h.advance(0);
    const before = await h.snapshot();
    const refusals: [() => Promise<unknown>, RegExp][] = [
      [() => h.rt.createCadence({ id: 'bad', name: 'x', module: 'Leads', enrollment: { mode: 'view', view: 'a =' }, nodes: [], edges: [] }, 'admin'), /E2 enrollment.view/],
      [() => h.rt.createCadence('not json', 'admin'), /D4 definition/],
      [() => h.rt.updateDraft('c1', { ...emailCadence(), edges: [] }, 'admin'), /trigger must lead/],
      [() => h.rt.upsertRecord('Leads', { First_Name: 'no id' }), /record.id is required/],
      [() => h.rt.upsertRecord('Leads', [1, 2]), /JSON object/],
      [() => h.rt.upsertRecord('Leads', { id: 'big', blob: 'x'.repeat(5000) }), /bytes \(limit 1024\)/],
      [() => h.rt.enroll('nope', ['A'], 'rep'), /unknown cadence "nope"/],
      [() => h.rt.recordOutcome({ key: 'c1:A:1:e1', outcome: 'teleported' }), /"teleported" is not an outcome of a email follow-up/],
      [() => h.rt.recordOutcome({ key: 'forged', outcome: 'replied' }), /no dispatched action has key "forged"/],
      [() => h.rt.reenroll('c1', 'A', 'sideways' as never, 'rep'), /mode must be/],
      [() => h.rt.unenroll('c1', 'ghost', 'rep'), /not enrolled/],
    ];
    for (const [call, msg] of refusals) await expect(call()).rejects.toThrow(msg);
    expect(await h.snapshot()).toEqual(before);
  });
});

describe('reports, audit and permissions', () => {
  it('A1 per cadence: enrolled, active, completed, stopped by reason, failed; per follow-up: executed and outcome rates', async () => {
    h = await harness();
    await published(h, emailCadence({ unenroll: { outcomes: ['replied'] } }));
    await h.rt.enroll('c1', [lead('A'), lead('B'), lead('C'), lead('D', { Email: 'broken' })], 'rep');
    await h.advance(0);
    const k = (id: string) => h.sent.find((s) => s.recordId === id)!.key;
    await h.rt.recordOutcome({ key: k('A'), outcome: 'opened' });
    await h.rt.recordOutcome({ key: k('B'), outcome: 'opened' });
    await h.rt.recordOutcome({ key: k('B'), outcome: 'replied' });
    await h.rt.unenroll('c1', 'C', 'rep');
    await h.advance(3 * DAY);
    const r = await h.rt.cadenceReport('c1');
    expect(r).toMatchObject({ enrolled: 4, active: 0, completed: 1, stopped: 2, failed: 1 });
    expect(r.stoppedByReason).toEqual({ 'outcome "replied" (U1)': 1, 'un-enrolled manually (U5)': 1 });
    const e1 = r.followUps.find((f) => f.nodeId === 'e1')!;
    expect(e1.executed).toBe(3);
    expect(e1.outcomes.opened).toEqual({ count: 2, rate: 2 / 3 });
    expect(e1.outcomes.replied.count).toBe(1);
    expect(r.followUps.find((f) => f.nodeId === 'e2')!.executed).toBe(1);
  });

  it('A2 per record: every cadence it is or was in, with start date, enrolled by and status', async () => {
    h = await harness();
    await published(h, emailCadence());
    await published(h, emailCadence({ id: 'c2' }));
    await h.rt.enroll('c1', [lead('A')], 'maria');
    h.clock.advance(HOUR);
    await h.rt.enroll('c2', ['A'], 'li');
    await h.rt.unenroll('c2', 'A', 'li');
    expect(await h.rt.recordReport('A')).toEqual([
      expect.objectContaining({ cadenceId: 'c1', startedAt: T0, enrolledBy: 'maria', status: 'active' }),
      expect.objectContaining({ cadenceId: 'c2', startedAt: T0 + HOUR, enrolledBy: 'li', status: 'stopped' }),
    ]);
  });

  it('A3 F11 "why": the ordered log of inputs and decisions behind each send or skip', async () => {
    h = await harness();
    await published(h, emailCadence({ sendWindow: { days: [1, 2, 3, 4, 5], start: '09:00', end: '17:00' }, unenroll: { criteria: 'Stage = "Lost"' } }));
    await h.rt.enroll('c1', [lead('A')], 'rep'); // 08:00: before the window opens
    await h.advance(DAY);
    const log = await h.rt.why('c1:A');
    // F11: the window, not the delay, set each send's time, and the log says so (e2 falls due after 17:00).
    expect(log.map((l) => l.event)).toEqual(['enrolled', 'deferred', 'criteria', 'queued', 'executed', 'deferred']);
    expect(log[1]).toMatchObject({ reason: '"e1" falls outside the send window: it waits for the next opening (F11)', data: { until: '2026-03-02T09:00:00.000Z' } });
    expect(log[2].data).toMatchObject({ exit: null, clock: '2026-03-02T09:00:00.000Z' });
    expect(log[3].reason).toMatch(/email follow-up "e1" handed to its performer; executed once delivered \(D5\)/);
    expect(log[4].reason).toMatch(/email follow-up "e1" delivered \(D5\)/);
    const seqs = log.map((l) => l.seq!);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
  });

  it('P1 P2 a view-only actor sees reports but changes nothing; a refusal names the missing permission', async () => {
    h = await harness();
    await published(h, emailCadence());
    await h.rt.enroll('c1', [lead('A')], 'rep');
    const viewer = { id: 'v', permissions: ['view' as const] };
    const before = await h.snapshot();
    await expect(h.rt.createCadence(emailCadence({ id: 'v1' }), viewer)).rejects.toThrow(/lacks the "manage" permission/);
    await expect(h.rt.deactivate('c1', viewer)).rejects.toThrow(/"manage"/);
    await expect(h.rt.enroll('c1', [lead('B')], viewer)).rejects.toThrow(/"enroll"/);
    await expect(h.rt.unenroll('c1', 'A', viewer)).rejects.toThrow(/"unenroll"/);
    expect(await h.snapshot()).toEqual(before);
    expect((await h.rt.cadenceReport('c1', viewer)).enrolled).toBe(1);
    await expect(h.rt.cadenceReport('c1', { id: 'x', permissions: [] })).rejects.toMatchObject({ rule: 'P2' });
    // Manage automation grants all four.
    const boss = { id: 'boss', permissions: ['manageAutomation' as const] };
    await h.rt.unenroll('c1', 'A', boss);
    expect((await h.rt.getEnrollment('c1', 'A'))?.status).toBe('stopped');
  });
});

describe('simulation', () => {
  const file = (name: string) => join(__dirname, '../../flows/cadences', name);
  const load = (name: string) => {
    const { sample, ...definition } = JSON.parse(readFileSync(file(name), 'utf8'));
    return { definition, ...sample };
  };

  it('S1 the simulator reports what is sent to whom and when, and how each enrollment ends; same inputs, same timeline', async () => {
    const input = load('sales-ready-lead.json');
    const a = await simulate(input);
    const b = await simulate(JSON.parse(JSON.stringify(input)));
    expect(a).toEqual(b);
    const ends = Object.fromEntries(a.endings.map((e) => [e.record, `${e.status}: ${e.reason}`]));
    expect(ends.L3).toBe('stopped: outcome "replied" (U1)');
    expect(ends.L4).toMatch(/^completed/); // its reply was an out-of-office (U10)
    expect(a.skipped).toEqual([{ record: 'L5', reason: 'matches the view and the un-enrollment criteria', rule: 'E3' }]);
    const l1 = a.timeline.filter((t) => t.record === 'L1').map((t) => t.followUp);
    expect(l1).toEqual(['welcome', 'call', 'last-note']);
    const l2 = a.timeline.filter((t) => t.record === 'L2').map((t) => t.followUp);
    expect(l2).toEqual(['welcome', 'bump', 'linkedin', 'last-note']);
    // Every send is inside the cadence's window (09:00-17:00 New York, weekdays) or the record's own zone.
    for (const t of a.timeline.filter((x) => x.record !== 'L4')) {
      const hour = Number(new Intl.DateTimeFormat('en-US', { timeZone: 'America/New_York', hour: 'numeric', hourCycle: 'h23' }).format(new Date(t.at)));
      expect(hour).toBeGreaterThanOrEqual(9);
      expect(hour).toBeLessThan(17);
    }
  });

  it('S1 the simulator runs draft definitions the same way: the production code path, no stored state needed', async () => {
    const r = await simulate({ definition: emailCadence(), records: [lead('A')], start: '2026-03-02T08:00:00Z', until: '3d' });
    expect(r.timeline.map((t) => [t.followUp, t.at])).toEqual([['e1', '2026-03-02T08:00:00.000Z'], ['e2', '2026-03-04T08:00:00.000Z']]);
    expect(r.endings[0]).toMatchObject({ status: 'completed' });
  });

  it('S1 cadenza simulate and validate run every example with no other argument', async () => {
    for (const name of ['sales-ready-lead.json', 'webinar-follow-up.json', 'customer-onboarding.json', 'renewal.json', 'demo-request.json']) {
      const out: string[] = [];
      const err: string[] = [];
      expect(await main(['validate', file(name)], { out: (s) => out.push(s), err: (s) => err.push(s) })).toBe(0);
      expect(await main(['simulate', file(name)], { out: (s) => out.push(s), err: (s) => err.push(s) })).toBe(0);
      expect(err).toEqual([]);
      expect(out.join('\n')).toMatch(/Timeline[\s\S]*Endings/);
      const json: string[] = [];
      expect(await main(['simulate', file(name), '--json', '--until', '60d'], { out: (s) => json.push(s), err: () => {} })).toBe(0);
      expect(JSON.parse(json[0]).timeline.length).toBeGreaterThan(0);
    }
  });

  it('S1 an exported Node-RED flow or n8n workflow is dry-run as the host would compile it', async () => {
    const flow = join(__dirname, '../../flows/node-red/sales-ready-lead.json');
    const samples = join(__dirname, '../../flows/samples');
    const out: string[] = [];
    const code = await main(['simulate', flow, '--records', join(samples, 'leads.json'), '--outcomes', join(samples, 'lead-outcomes.json'), '--until', '10d', '--json'], { out: (s) => out.push(s), err: (s) => out.push(s) });
    expect(code).toBe(0);
    const r = JSON.parse(out[0]);
    const path = (who: string) => r.timeline.filter((t: { record: string }) => t.record === who).map((t: { followUp: string }) => t.followUp);
    expect(path('ada@example.com')).toEqual(['welcome', 'call-replied']); // replied -> call
    expect(path('alan@example.com')).toEqual(['welcome', 'glad']); // opened -> case study
    expect(path('grace@example.com')).toEqual(['welcome', 'bump', 'call-bump']); // silent -> bump, then a call
    // The same cadence exported from n8n dry-runs to the same timeline.
    const n8nOut: string[] = [];
    expect(await main(['simulate', join(__dirname, '../../flows/n8n/sales-ready-lead.json'), '--records', join(samples, 'leads.json'), '--outcomes', join(samples, 'lead-outcomes.json'), '--until', '10d', '--json'], { out: (s) => n8nOut.push(s), err: (s) => n8nOut.push(s) })).toBe(0);
    const strip = (x: { timeline: { key: string }[] }) => x.timeline.map(({ key: _k, ...t }) => t);
    expect(strip(JSON.parse(n8nOut[0]))).toEqual(strip(r));
    // A flow with several triggers asks which one.
    const tmp = mkdtempSync(join(tmpdir(), 'cadenza-flow-'));
    const all = join(tmp, 'all.json');
    writeFileSync(all, JSON.stringify([...JSON.parse(readFileSync(flow, 'utf8')), ...JSON.parse(readFileSync(join(__dirname, '../../flows/node-red/renewal.json'), 'utf8'))]));
    const err: string[] = [];
    expect(await main(['simulate', all, '--records', join(samples, 'leads.json')], { out: () => {}, err: (s) => err.push(s) })).toBe(1);
    expect(err.join()).toMatch(/has 2 cadences.*--cadence/);
    rmSync(tmp, { recursive: true, force: true });
  });

  it('S1 F13 F6 a dry run is under the engine\'s own settings: a Node-RED export\'s engine node, or cadenza serve\'s --config', async () => {
    const flow = JSON.parse(readFileSync(join(__dirname, '../../flows/node-red/sales-ready-lead.json'), 'utf8'));
    const samples = join(__dirname, '../../flows/samples');
    const tmp = mkdtempSync(join(tmpdir(), 'cadenza-sim-'));
    const run = async (file: string, ...more: string[]) => {
      const out: string[] = [];
      expect(await main(['simulate', file, '--records', join(samples, 'leads.json'), '--outcomes', join(samples, 'lead-outcomes.json'), '--until', '10d', '--json', ...more], { out: (x) => out.push(x), err: (x) => out.push(x) })).toBe(0);
      return JSON.parse(out[0]).timeline as { record: string; followUp: string; at: string }[];
    };
    const day = (t: { at: string }) => t.at.slice(0, 10);
    const plain = join(tmp, 'plain.json');
    writeFileSync(plain, JSON.stringify(flow));
    const limited = join(tmp, 'limited.json');
    writeFileSync(limited, JSON.stringify(flow.map((n: { type: string }) => (n.type === 'cadenza-config' ? { ...n, contactLimits: '[{"channel": "email", "max": 1, "days": 3}]' } : n))));
    const before = await run(plain);
    const after = await run(limited);
    // Alan opens the welcome and is sent the case study the next day; with one email in 3 days, 3 days after the welcome.
    const glad = (tl: typeof before) => tl.find((t) => t.record === 'alan@example.com' && t.followUp === 'glad')!;
    expect(day(glad(before))).toBe('2026-01-06');
    expect(day(glad(after))).toBe('2026-01-08');
    // The same limit from a config file, for a definition that has no engine node.
    const config = join(tmp, 'cadenza.json');
    writeFileSync(config, JSON.stringify({ fatigue: { limits: [{ channel: 'email', max: 1, days: 3 }] } }));
    expect(day(glad(await run(plain, '--config', config)))).toBe('2026-01-08');
    rmSync(tmp, { recursive: true, force: true });
  });

  it('S1 D4 the CLI names every problem of a bad definition with its rule and exits 1', async () => {
    const err: string[] = [];
    const tmp = mkdtempSync(join(tmpdir(), 'cadenza-cli-'));
    const bad = join(tmp, 'bad.json');
    const def = JSON.parse(readFileSync(file('renewal.json'), 'utf8'));
    def.nodes[1].channel = 'fax';
    def.enrollment.view = 'Type = ';
    writeFileSync(bad, JSON.stringify(def));
    expect(await main(['validate', bad], { out: () => {}, err: (s) => err.push(s) })).toBe(1);
    expect(err.join('\n')).toMatch(/E2 enrollment.view/);
    expect(err.join('\n')).toMatch(/C4 node "review-call" channel/);
    expect(await main(['simulate'], { out: () => {}, err: () => {} })).toBe(2);
    expect(await main(['simulate', '/no/such/file.json'], { out: () => {}, err: (s) => err.push(s) })).toBe(1);
    expect(err.at(-1)).toMatch(/cannot read/);
    rmSync(tmp, { recursive: true, force: true });
  });
});

void sentTo;
