// D5 and D6 through the runtime, on both stores: a follow-up is executed when its performer confirms
// it; performers that fail, hang, refuse or recover; the retry action; keys any host can carry; R1.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { CannotRunError, type DispatchedAction } from '../../engine/runtime/runtime';
import { httpPerformer } from '../../engine/runtime/http-performer';
import { main } from '../../engine/cli/main';
import { join } from 'node:path';
import { STORE_KIND } from '../helpers/harness';
import type { CadenceDefinition } from '../../engine/model/types';
import { DAY, HOUR, MIN, T0, emailCadence, harness, iso, lead, published, type Harness } from '../helpers/harness';

let h: Harness;
let server: Server | undefined;
afterEach(async () => {
  await h?.close();
  server?.closeAllConnections();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

/** The outside tester's cadence: an email, then a task relative to it with no delay. */
const welcomeThenCall = (over: Partial<CadenceDefinition> = {}): CadenceDefinition => ({
  id: 'w', name: 'Welcome', module: 'Leads', timezone: 'UTC', enrollment: { mode: 'manual' },
  nodes: [
    { id: 'welcome', type: 'followUp', channel: 'email', template: { subject: 'Welcome {{First_Name}}', body: 'Hello' } },
    { id: 'call', type: 'followUp', channel: 'task', relativeTo: 'previous', template: { subject: 'Call {{First_Name}}', body: '' } },
  ],
  edges: [{ from: 'trigger', to: 'welcome' }, { from: 'welcome', to: 'call' }],
  ...over,
});

/** A performer that records what it performed (by key, as an idempotent host would) and fails as told. */
function performer(h: Harness, fail: (a: DispatchedAction) => Error | null | 'hang') {
  const performed = new Map<string, number>();
  const calls: string[] = [];
  h.rt.onDispatch(async (a) => {
    calls.push(a.key);
    const f = fail(a);
    if (f === 'hang') return new Promise<void>(() => undefined);
    if (f) throw f;
    performed.set(a.idempotencyKey, (performed.get(a.idempotencyKey) ?? 0) + 1);
  });
  return { performed, calls };
}

describe('D5 a follow-up is executed when its performer confirms it', () => {
  it('D5 F10 one failed send: the email is not lost, the next step waits for it, the enrollment completes only once both are delivered', async () => {
    h = await harness({ retry: { baseMs: 30_000, jitter: 0 } });
    await published(h, welcomeThenCall());
    let failures = 1;
    const p = performer(h, () => (failures-- > 0 ? new Error('dispatch URL answered 500') : null));
    await h.rt.enroll('w', [lead('A')], 'rep');
    await h.rt.tick();
    // The send failed: nothing executed, the call not overtaking it, the enrollment waiting on its performer.
    expect(await h.rt.getEnrollment('w', 'A')).toMatchObject({ status: 'active', position: 'welcome', wait: 'delivery', executed: 0 });
    expect((await h.rt.cadenceReport('w')).followUps).toMatchObject([{ nodeId: 'welcome', executed: 0, waitingForPerformer: 1 }, { nodeId: 'call', executed: 0 }]);
    const why = await h.rt.why('w:A');
    expect(why.at(-1)).toMatchObject({ event: 'waiting', reason: expect.stringMatching(/waiting for its performer: attempt 1 failed \(dispatch URL answered 500\); retry at 2026-03-02T08:00:30.000Z.*\(D6\)/) });
    await h.advance(HOUR);
    expect([...p.performed.keys()]).toEqual(['w:A:1:welcome', 'w:A:1:call']);
    expect(p.calls).toEqual(['w:A:1:welcome', 'w:A:1:welcome', 'w:A:1:call']);
    expect(await h.rt.getEnrollment('w', 'A')).toMatchObject({ status: 'completed', executed: 2 });
    const report = await h.rt.cadenceReport('w');
    expect(report).toMatchObject({ completed: 1, failed: 0 });
    expect(report.followUps).toMatchObject([{ nodeId: 'welcome', executed: 1, waitingForPerformer: 0 }, { nodeId: 'call', executed: 1 }]);
  });

  it('D5 F1 "relative to previous" counts from the delivery, not from the queueing', async () => {
    h = await harness({ retry: { baseMs: 10 * MIN, jitter: 0 } });
    await published(h, welcomeThenCall({ nodes: [
      { id: 'welcome', type: 'followUp', channel: 'email', template: { subject: 'Hi', body: 'Hello' } },
      { id: 'call', type: 'followUp', channel: 'task', relativeTo: 'previous', delay: { amount: 1, unit: 'hours' }, template: { subject: 'Call', body: '' } },
    ] }));
    let failures = 1;
    const at: Record<string, number> = {};
    h.rt.onDispatch((a) => {
      if (failures-- > 0) throw new Error('timed out');
      at[a.nodeId] = h.clock.now();
    });
    await h.rt.enroll('w', [lead('A')], 'rep');
    await h.advance(DAY);
    expect(iso(at.welcome)).toBe('2026-03-02T08:10:00.000Z');
    expect(iso(at.call)).toBe('2026-03-02T09:10:00.000Z');
  });

  it('D5 F5 an outcome branch\'s timeout ("not opened in 1 day") counts from the delivery: after a performer outage the timeout path does not fire the moment the email lands', async () => {
    h = await harness({ retry: { baseMs: 2 * HOUR, maxMs: 2 * HOUR, jitter: 0 } });
    await published(h, welcomeThenCall({ nodes: [
      { id: 'welcome', type: 'followUp', channel: 'email', template: { subject: 'Hi', body: 'Hello' } },
      { id: 'b', type: 'outcomeBranch', outcomes: ['opened'], timeout: { amount: 1, unit: 'days' } },
      { id: 'bump', type: 'followUp', channel: 'email', template: { subject: 'Bump', body: 'Still there?' } },
    ], edges: [{ from: 'trigger', to: 'welcome' }, { from: 'welcome', to: 'b' }, { from: 'b', port: 'timeout', to: 'bump' }] }));
    // The performer is down for a day and a half: the welcome lands at the first retry after that.
    const at: Record<string, number> = {};
    h.rt.onDispatch((a) => {
      if (h.clock.now() < T0 + 36 * HOUR) throw new Error('connection refused');
      at[a.nodeId] = h.clock.now();
    });
    await h.rt.enroll('w', [lead('A')], 'rep');
    await h.advance(4 * DAY);
    expect(iso(at.welcome)).toBe('2026-03-03T20:00:00.000Z');
    expect(iso(at.bump)).toBe('2026-03-04T20:00:00.000Z');
  });

  it('D5 U8 un-enrolling cancels what was not handed off; what was handed off is delivered, recorded and counted (D3)', async () => {
    // One slot: while B's performer is at work, A's action is queued and cannot be handed off.
    h = await harness({ concurrency: 1 });
    await published(h, emailCadence());
    let release: () => void = () => undefined;
    const delivered: string[] = [];
    h.rt.onDispatch((a) => new Promise<void>((r) => (release = () => (delivered.push(a.key), r()))));
    await h.rt.enroll('c1', [lead('B')], 'rep');
    const pass = h.rt.tick();
    await expect.poll(() => h.store.getOutbox('c1:B:1:e1').then((o) => o?.attempts)).toBe(1);
    await h.rt.enroll('c1', [lead('A')], 'rep');
    await h.rt.tick(); // a second pass: no free slot, so A's action stays queued
    expect(await h.store.getOutbox('c1:A:1:e1')).toMatchObject({ status: 'pending', attempts: 0 });
    await h.rt.unenroll('c1', 'A', 'rep');
    expect(await h.store.getOutbox('c1:A:1:e1')).toMatchObject({ status: 'cancelled' });
    // B was handed off, and is un-enrolled while its performer is still at work: it is not dropped.
    await h.rt.unenroll('c1', 'B', 'rep');
    expect(await h.store.getOutbox('c1:B:1:e1')).toMatchObject({ status: 'pending' });
    release();
    await pass;
    expect(delivered).toEqual(['c1:B:1:e1']);
    expect(await h.store.getOutbox('c1:B:1:e1')).toMatchObject({ status: 'done' });
    expect(await h.rt.getEnrollment('c1', 'B')).toMatchObject({ status: 'stopped', executed: 1, last: { delivery: 'delivered' } });
    expect((await h.rt.why('c1:B')).map((l) => l.event)).toContain('delivered');
    expect((await h.rt.cadenceReport('c1')).followUps[0]).toMatchObject({ nodeId: 'e1', executed: 1 });
  });

  it('D5 an outcome proves delivery: an open reported before the performer confirmed moves the path on', async () => {
    h = await harness();
    await published(h, welcomeThenCall());
    let release: () => void = () => undefined;
    h.rt.onDispatch(() => new Promise<void>((r) => (release = r))); // confirms only when the test says
    await h.rt.enroll('w', [lead('A')], 'rep');
    const pass = h.rt.tick();
    await expect.poll(() => h.store.getOutbox('w:A:1:welcome').then((o) => o?.attempts)).toBe(1);
    expect(await h.rt.recordOutcome({ key: 'w:A:1:welcome', outcome: 'opened' })).toEqual({ outcome: 'opened', applied: true });
    expect(await h.rt.getEnrollment('w', 'A')).toMatchObject({ position: 'call', wait: 'due', executed: 1, last: { delivery: 'delivered' } });
    expect(await h.store.getOutbox('w:A:1:welcome')).toMatchObject({ status: 'done' });
    // The performer's late confirmation changes nothing more (D2: counted once).
    release();
    await pass;
    expect(await h.rt.getEnrollment('w', 'A')).toMatchObject({ position: 'call', executed: 1 });
  });
});

describe('D6 performers that fail, hang, refuse and recover', () => {
  it('D6 an outage of two hours holds the follow-ups and delivers each once after recovery: none failed', async () => {
    h = await harness();
    await published(h, emailCadence());
    let down = true;
    const p = performer(h, () => (down ? new Error('connect ECONNREFUSED 127.0.0.1:9') : null));
    await h.rt.enroll('c1', Array.from({ length: 20 }, (_, i) => lead(`r${i}`)), 'rep');
    await h.advance(2 * HOUR);
    expect(p.performed.size).toBe(0);
    const report = await h.rt.cadenceReport('c1');
    expect(report).toMatchObject({ active: 20, failed: 0 });
    expect(report.followUps[0]).toMatchObject({ executed: 0, waitingForPerformer: 20 });
    down = false;
    await h.advance(3 * DAY);
    expect([...p.performed.values()].every((n) => n === 1)).toBe(true);
    expect(p.performed.size).toBe(40);
    expect(await h.rt.cadenceReport('c1')).toMatchObject({ completed: 20, failed: 0 });
  });

  it('D6 U8 F8 a follow-up held for a retry is not handed over again once its record is un-enrolled or unsubscribes; the unsubscribed one\'s task goes on', async () => {
    h = await harness({ retry: { baseMs: 10 * MIN, jitter: 0 } });
    await published(h, welcomeThenCall());
    let down = true;
    const p = performer(h, () => (down ? new Error('dispatch URL answered 500') : null));
    await h.rt.enroll('w', [lead('gone'), lead('unsub'), lead('kept')], 'rep');
    await h.rt.tick(); // every welcome's first hand-off fails: each is held for a retry in 10 minutes
    expect(p.calls).toHaveLength(3);
    await h.rt.unenroll('w', 'gone', 'rep');
    await h.rt.unsubscribe('Leads', 'unsub', 'rep');
    down = false;
    await h.advance(DAY);
    expect([...p.performed.keys()].sort()).toEqual(['w:kept:1:call', 'w:kept:1:welcome', 'w:unsub:1:call']);
    expect(p.calls.filter((k) => k.startsWith('w:gone') || k === 'w:unsub:1:welcome')).toEqual(['w:gone:1:welcome', 'w:unsub:1:welcome']);
    expect(await h.store.getOutbox('w:gone:1:welcome')).toMatchObject({ status: 'cancelled' });
    expect(await h.store.getOutbox('w:unsub:1:welcome')).toMatchObject({ status: 'cancelled' });
    expect(await h.rt.getEnrollment('w', 'gone')).toMatchObject({ status: 'stopped', executed: 0 });
    expect(await h.rt.getEnrollment('w', 'unsub')).toMatchObject({ status: 'completed', executed: 1 });
    expect((await h.rt.why('w:unsub')).map((l) => l.reason)).toContain('"welcome": the record unsubscribed before it was sent; no more emails (F8)');
  });

  it('F8 D5 an email in flight when its record unsubscribes keeps its outcome: delivered and logged as sent, and the enrollment completes only after it', async () => {
    h = await harness();
    await published(h, emailCadence({ nodes: [{ id: 'e1', type: 'followUp', channel: 'email', template: { subject: 'Hi', body: 'x' } }], edges: [{ from: 'trigger', to: 'e1' }] }));
    let release: () => void = () => undefined;
    h.rt.onDispatch(() => new Promise<void>((r) => (release = r)));
    await h.rt.enroll('c1', [lead('A')], 'rep');
    const pass = h.rt.tick();
    await expect.poll(() => h.store.getOutbox('c1:A:1:e1').then((o) => o?.attempts)).toBe(1);
    await h.rt.unsubscribe('Leads', 'A', 'rep');
    expect(await h.rt.getEnrollment('c1', 'A')).toMatchObject({ status: 'active', wait: 'delivery' }); // not completed under a send in flight
    release();
    await pass;
    expect(await h.rt.getEnrollment('c1', 'A')).toMatchObject({ status: 'completed', executed: 1, last: { delivery: 'delivered' } });
    expect((await h.rt.why('c1:A')).map((l) => l.event)).not.toContain('skipped');
  });

  it('D6 U8 a hand-off in flight when its record is un-enrolled keeps its outcome: when it fails, it is not handed over again', async () => {
    h = await harness({ retry: { baseMs: 10 * MIN, jitter: 0 } });
    await published(h, emailCadence());
    let fail: (e: Error) => void = () => undefined;
    const calls: string[] = [];
    h.rt.onDispatch((a) => new Promise<void>((_, reject) => (calls.push(a.key), (fail = reject))));
    await h.rt.enroll('c1', [lead('A')], 'rep');
    const pass = h.rt.tick();
    await expect.poll(() => h.store.getOutbox('c1:A:1:e1').then((o) => o?.attempts)).toBe(1);
    await h.rt.unenroll('c1', 'A', 'rep');
    expect(await h.store.getOutbox('c1:A:1:e1')).toMatchObject({ status: 'pending' }); // in flight: not cancelled under it
    fail(new Error('SMTP 451 try again later'));
    await pass;
    await h.advance(DAY);
    expect(calls).toEqual(['c1:A:1:e1']);
    expect(await h.store.getOutbox('c1:A:1:e1')).toMatchObject({ status: 'dead' });
    expect((await h.rt.why('c1:A')).at(-1)).toMatchObject({ event: 'ignored', reason: 'c1:A:1:e1: attempt 1 failed (SMTP 451 try again later); not handed over again: the enrollment is stopped (U8)' });
  });

  it('D6 F9 a permanent refusal fails the step at once, naming it; retry re-runs just that step under the same key', async () => {
    h = await harness();
    await published(h, emailCadence());
    let refuse = false;
    const p = performer(h, (a) => (refuse && a.nodeId === 'e2' ? new CannotRunError('550 mailbox unavailable') : null));
    await h.rt.enroll('c1', [lead('A')], 'rep');
    await h.advance(HOUR);
    refuse = true;
    await h.advance(2 * DAY);
    expect(await h.rt.getEnrollment('c1', 'A')).toMatchObject({ status: 'failed', reason: 'follow-up "e2" could not be delivered: 550 mailbox unavailable (F9, D6)' });
    expect(p.calls).toEqual(['c1:A:1:e1', 'c1:A:1:e2']);
    // R3 stays as the seeds say; the retry is ours: only e2 again, same key, e1 never repeated.
    expect(await h.rt.reenroll('c1', 'A', 'resume', 'rep')).toMatchObject({ status: 'skipped', rule: 'R3' });
    refuse = false;
    expect(await h.rt.retry('c1', 'A', 'rep')).toMatchObject({ status: 'enrolled', reason: 'retried' });
    await h.advance(HOUR);
    expect(p.calls).toEqual(['c1:A:1:e1', 'c1:A:1:e2', 'c1:A:1:e2']);
    expect(await h.rt.getEnrollment('c1', 'A')).toMatchObject({ status: 'completed', executed: 2, run: 1 });
    // Retrying what did not fail is refused with the rule.
    expect(await h.rt.retry('c1', 'A', 'rep')).toMatchObject({ status: 'skipped', rule: 'D6' });
    expect((await h.rt.cadenceReport('c1')).followUps).toMatchObject([{ nodeId: 'e1', executed: 1 }, { nodeId: 'e2', executed: 1 }]);
  });

  it.skipIf(STORE_KIND !== 'sqlite')('D6 cadenza retry <cadence> <record> requeues the failed step from the command line; a refusal exits 1 with its rule', async () => {
    h = await harness();
    await published(h, emailCadence());
    h.rt.onDispatch(() => {
      throw new CannotRunError('550 mailbox unavailable');
    });
    await h.rt.enroll('c1', [lead('A')], 'rep');
    await h.advance(HOUR);
    expect(await h.rt.getEnrollment('c1', 'A')).toMatchObject({ status: 'failed' });
    const io = { out: [] as string[], err: [] as string[] };
    const run = (args: string[]) => main(args, { out: (x) => io.out.push(x), err: (x) => io.err.push(x) });
    const store = `sqlite:${join(h.dir, 'cadenza.db')}`;
    expect(await run(['retry', 'c1', 'A', '--store', store])).toBe(0);
    expect(io.out.join('\n')).toMatch(/queued again under the same key/);
    expect(await h.store.getOutbox('c1:A:1:e1')).toMatchObject({ status: 'pending', attempts: 0 });
    expect(await run(['retry', 'c1', 'A', '--store', store])).toBe(1);
    expect(io.err.join('\n')).toMatch(/^D6: only a failed enrollment can be retried; this one is active/m);
    expect(await run(['retry', 'c1'])).toBe(2);
  });

  it('D6 F9 an SMTP refusal of the recipient (550 5.1.1) fails the step at once from its text alone; a 4xx, or a refusal of our own login, is retried', async () => {
    h = await harness({ retry: { baseMs: MIN, holdMs: DAY } });
    await published(h, emailCadence());
    const calls: string[] = [];
    h.rt.onDispatch((a) => {
      calls.push(a.recordId);
      // As a mail node reports it: a plain Error whose text carries the relay's reply, no flag.
      throw new Error({
        gone: 'Message failed: 550 5.1.1 <gone@example.com>: mailbox does not exist',
        grey: 'Message failed: 451 4.7.1 greylisted, try later',
        login: 'Invalid login: 535 5.7.8 Authentication credentials invalid', // our relay setup: every email would fail, none is the lead's fault
      }[a.recordId]);
    });
    await h.rt.enroll('c1', [lead('gone'), lead('grey'), lead('login')], 'rep');
    await h.advance(30 * MIN);
    expect(await h.rt.getEnrollment('c1', 'gone')).toMatchObject({ status: 'failed', reason: expect.stringMatching(/^follow-up "e1" could not be delivered: Message failed: 550 5\.1\.1 .*\(F9, D6\)$/) });
    expect(calls.filter((c) => c === 'gone')).toHaveLength(1);
    for (const transient of ['grey', 'login']) {
      expect(await h.rt.getEnrollment('c1', transient)).toMatchObject({ status: 'active', wait: 'delivery' });
      expect(calls.filter((c) => c === transient).length).toBeGreaterThan(1);
    }
  });

  it('D5 D6 a performer that reports a hand-off failed and then delivered (Node-RED\'s Catch, then Complete) is taken at its failure: retried under the same key, executed once', async () => {
    h = await harness({ retry: { baseMs: MIN, holdMs: DAY } });
    await published(h, emailCadence({ nodes: [emailCadence().nodes[0]], edges: [{ from: 'trigger', to: 'e1' }] }));
    const attempts: number[] = [];
    const errors: string[] = [];
    h.rt.subscribe((e) => e.type === 'error' && errors.push(e.error));
    h.rt.onDispatch((a) => {
      attempts.push(a.attempt);
      const verdict = h.rt.awaitConfirmation(a.key);
      setImmediate(async () => {
        if (a.attempt === 1) {
          await h.rt.confirmDelivery(a.key, { message: 'CRM answered 503' });
          expect(await h.rt.confirmDelivery(a.key)).toEqual({ applied: false });
        } else await h.rt.confirmDelivery(a.key);
      });
      return verdict;
    });
    await h.rt.enroll('c1', [lead('A')], 'rep');
    await h.advance(0);
    expect(await h.rt.getEnrollment('c1', 'A')).toMatchObject({ status: 'active', wait: 'delivery', executed: 0 });
    expect(errors.join()).toMatch(/"delivered" after its performer reported this hand-off failed: it is retried; ignored/);
    await h.advance(HOUR);
    expect(attempts).toEqual([1, 2]);
    expect(await h.rt.getEnrollment('c1', 'A')).toMatchObject({ status: 'completed', executed: 1 });
  });

  it('D2 D5 a verdict that comes after the hand-off timed out still counts: a late "delivered" settles the action, and no second copy goes out', async () => {
    h = await harness({ handOffTimeoutMs: 50, retry: { baseMs: MIN, holdMs: DAY } });
    await published(h, emailCadence({ nodes: [emailCadence().nodes[0]], edges: [{ from: 'trigger', to: 'e1' }] }));
    const handed: string[] = [];
    h.rt.onDispatch((a) => {
      handed.push(a.key);
      // A slow relay: it accepts the email after the hand-off's time limit (real time: this is I/O).
      setTimeout(() => void h.rt.confirmDelivery(a.key), 150);
      return h.rt.awaitConfirmation(a.key);
    });
    await h.rt.enroll('c1', [lead('A')], 'rep');
    await h.rt.tick();
    expect(await h.rt.getEnrollment('c1', 'A')).toMatchObject({ wait: 'delivery', executed: 0 }); // timed out: waiting for its retry
    await new Promise((r) => setTimeout(r, 300));
    expect(await h.rt.getEnrollment('c1', 'A')).toMatchObject({ status: 'completed', executed: 1 });
    await h.advance(DAY);
    expect(handed).toEqual(['c1:A:1:e1']);
  });

  it('D2 D5 a late verdict on an older hand-off never decides the one in flight: attempt 1\'s failure, arriving while attempt 2 sends, is ignored and attempt 2\'s delivery counts', async () => {
    h = await harness({ handOffTimeoutMs: 100, retry: { baseMs: MIN, holdMs: DAY, jitter: 0 } });
    await published(h, emailCadence({ nodes: [emailCadence().nodes[0]], edges: [{ from: 'trigger', to: 'e1' }] }));
    const handed: number[] = [];
    const errors: string[] = [];
    h.rt.subscribe((e) => e.type === 'error' && errors.push(e.error));
    let second: (() => Promise<unknown>) | undefined;
    h.rt.onDispatch((a) => {
      handed.push(a.attempt);
      const verdict = h.rt.awaitConfirmation(a.key, a.attempt);
      if (a.attempt === 2) second = () => h.rt.confirmDelivery(a.key, undefined, 2);
      return verdict;
    });
    await h.rt.enroll('c1', [lead('A')], 'rep');
    await h.rt.tick(); // attempt 1 gets no answer within the limit (real time: the performer is I/O)
    const ticking = h.advance(2 * MIN); // its retry: attempt 2 is handed off and waits for its verdict
    while (!second) await new Promise((r) => setTimeout(r, 5));
    expect(await h.rt.confirmDelivery('c1:A:1:e1', { message: 'CRM timed out' }, 1)).toEqual({ applied: false });
    expect(await second()).toEqual({ applied: true });
    await ticking;
    await h.advance(DAY);
    expect(handed).toEqual([1, 2]);
    expect(await h.rt.getEnrollment('c1', 'A')).toMatchObject({ status: 'completed', executed: 1 });
    expect(errors.join()).toMatch(/a failure for attempt 1 came while attempt 2 is in flight; ignored/);
  });

  it('D6 R5 P2 retry needs the enroll permission and an existing enrollment', async () => {
    h = await harness();
    await published(h, emailCadence());
    await expect(h.rt.retry('c1', 'A', { id: 'viewer', permissions: ['view'] })).rejects.toMatchObject({ rule: 'R5' });
    expect(await h.rt.retry('c1', 'nobody', 'rep')).toMatchObject({ status: 'skipped', rule: 'D6' });
  });

  it('D6 one hanging performer holds one slot: other deliveries and an un-enroll date happen on time', async () => {
    const onDate = iso(T0 + 2 * HOUR);
    h = await harness({ handOffTimeoutMs: 10 * 60_000, leaseMs: 60 * 60_000, stopGraceMs: 50 });
    await published(h, emailCadence({ unenroll: { onDate } }));
    const at: Record<string, number> = {};
    h.rt.onDispatch((a) => {
      if (a.recordId === 'stuck') return new Promise<void>(() => undefined); // never answers
      at[a.recordId] = h.clock.now();
    });
    await h.rt.enroll('c1', [lead('stuck')], 'rep');
    h.rt.start(5);
    await expect.poll(() => h.store.getOutbox('c1:stuck:1:e1').then((o) => o?.attempts), { timeout: 10_000 }).toBe(1);
    h.clock.set(T0 + HOUR);
    await h.rt.enroll('c1', [lead('B')], 'rep');
    await expect.poll(() => at.B, { timeout: 10_000 }).toBe(T0 + HOUR);
    h.clock.set(T0 + 2 * HOUR);
    await expect.poll(() => h.rt.getEnrollment('c1', 'B').then((e) => e?.status), { timeout: 10_000 }).toBe('stopped');
    expect((await h.rt.getEnrollment('c1', 'B'))?.reason).toMatch(/U4/);
    // Stopping waits for hand-offs in flight only for a grace period: the hung one's lease hands it over later.
    await h.rt.stop();
  });

  it('D6 the HTTP performer: 5xx, 429, time-outs and refused connections retry; other 4xx fail at once', async () => {
    const answers: number[] = [];
    let hang = false;
    server = createServer((req, res) => {
      req.resume();
      if (hang) return; // never answers
      res.writeHead(answers.shift() ?? 200).end();
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const perform = httpPerformer(url, 300);
    const action = { idempotencyKey: 'k' } as DispatchedAction;
    const verdict = (p: Promise<void>) => p.then(() => 'delivered', (e: Error & { permanent?: boolean }) => (e.permanent ? 'permanent' : 'transient'));
    answers.push(500, 429, 408, 404, 422, 204);
    expect([await verdict(perform(action) as Promise<void>), await verdict(perform(action) as Promise<void>), await verdict(perform(action) as Promise<void>)]).toEqual(['transient', 'transient', 'transient']);
    expect([await verdict(perform(action) as Promise<void>), await verdict(perform(action) as Promise<void>)]).toEqual(['permanent', 'permanent']);
    expect(await verdict(perform(action) as Promise<void>)).toBe('delivered');
    hang = true;
    expect(await verdict(perform(action) as Promise<void>)).toBe('transient');
    expect(await verdict(httpPerformer('http://127.0.0.1:9/', 300)(action) as Promise<void>)).toBe('transient');
  });

  it('D6 a 429 with Retry-After is retried no sooner than it asks, not after the 30 s backoff', async () => {
    const seen: number[] = [];
    server = createServer((req, res) => {
      req.resume();
      seen.push(h.clock.now());
      if (seen.length === 1) res.writeHead(429, { 'Retry-After': '600' }).end();
      else res.writeHead(200).end();
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    h = await harness({ retry: { baseMs: 30_000, jitter: 0 } });
    await published(h, emailCadence());
    h.rt.onDispatch(httpPerformer(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, 5000));
    await h.rt.enroll('c1', [lead('A')], 'rep');
    await h.advance(DAY);
    expect(seen.map((t) => (t - T0) / 1000)).toEqual([0, 600]);
    expect((await h.rt.why('c1:A')).map((l) => l.reason).join('\n')).toMatch(/dispatch URL answered 429 \(Retry-After 600 s\)/);
  });
});

describe('D2 D4 keys any host can carry', () => {
  it('D2 D4 a record id in any script gives an ASCII, header-safe idempotency key; an id with CR/LF is refused at upsert', async () => {
    h = await harness();
    await published(h, emailCadence());
    const headers: string[] = [];
    h.rt.onDispatch((a) => {
      headers.push(a.idempotencyKey);
      new Headers({ 'Idempotency-Key': a.idempotencyKey }); // throws on anything a header cannot carry
    });
    await h.rt.enroll('c1', [lead('U-李'), lead('a b"c', { Email: 'abc@example.com' })], 'rep');
    await h.advance(HOUR);
    expect(headers).toHaveLength(2);
    expect(headers.every((k) => /^[\x21-\x7e]+$/.test(k))).toBe(true);
    expect(new Set(headers).size).toBe(2);
    // An outcome posted back with the header-safe key finds its follow-up.
    const li = headers.find((k) => k.includes('%E6'))!;
    expect(await h.rt.recordOutcome({ key: li, outcome: 'opened' })).toEqual({ outcome: 'opened', applied: true });
    const before = await h.snapshot();
    const [answer] = await h.rt.upsertRecords('Leads', [lead('evil\r\nBcc: x@y.example')]);
    expect(answer).toMatchObject({ error: { rule: 'D4', message: expect.stringMatching(/record.id must not contain control characters/) } });
    expect(await h.snapshot()).toEqual(before);
  });
});

describe('R1 F7 timing', () => {
  it('R1 after a resume, each later step keeps its drawn gap: no burst of overdue steps', async () => {
    h = await harness();
    await published(h, emailCadence({ nodes: [
      { id: 'e1', type: 'followUp', channel: 'email', template: { subject: '1', body: '1' } },
      { id: 'e2', type: 'followUp', channel: 'email', delay: { amount: 2, unit: 'days' }, template: { subject: '2', body: '2' } },
      { id: 'e3', type: 'followUp', channel: 'email', delay: { amount: 4, unit: 'days' }, template: { subject: '3', body: '3' } },
    ], edges: [{ from: 'trigger', to: 'e1' }, { from: 'e1', to: 'e2' }, { from: 'e2', to: 'e3' }] }));
    await h.rt.enroll('c1', [lead('A')], 'rep');
    await h.advance(DAY);
    await h.rt.unenroll('c1', 'A', 'rep');
    await h.advance(9 * DAY); // long past every drawn date
    await h.rt.reenroll('c1', 'A', 'resume', 'rep');
    const resumedAt = h.clock.now();
    await h.advance(10 * DAY);
    const sent = h.sent.filter((a) => a.recordId === 'A').map((a) => [a.nodeId, a.at - resumedAt]);
    expect(sent).toEqual([['e1', -10 * DAY], ['e2', 2 * DAY], ['e3', 4 * DAY]]);
  });

  it('F7 a task due in business days skips the weekend and the window\'s holidays', async () => {
    h = await harness();
    await published(h, emailCadence({
      sendWindow: { days: [1, 2, 3, 4, 5], start: '00:00', end: '23:59', holidays: ['2026-03-09'] },
      nodes: [{ id: 't1', type: 'followUp', channel: 'task', delay: { amount: 4, unit: 'days' }, dueIn: { amount: 2, unit: 'businessDays' }, template: { subject: 'Call', body: '' } }],
      edges: [{ from: 'trigger', to: 't1' }],
    }));
    await h.rt.enroll('c1', [lead('A')], 'rep');
    await h.advance(5 * DAY);
    const [task] = h.sent;
    expect(iso(task.at)).toBe('2026-03-06T08:00:00.000Z'); // Friday
    expect(iso(task.activity!.dueAt)).toBe('2026-03-11T08:00:00.000Z'); // Mon is a holiday: Tue, Wed
  });
});
